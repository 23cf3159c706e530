//! Community staff's record work: recording service for many residents in a row, the approval
//! queue, roster upload, corrections, rules and the community report.

use axum::Router;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}
