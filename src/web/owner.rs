//! The shop owner's pages: catalogue and stock, staff and till devices, statements and
//! settlements.

use axum::Router;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}
