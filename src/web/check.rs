//! The public receipt check: anyone, signed in or not, scans or pastes a receipt and sees
//! whether aixin signed it.

use axum::Router;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}
