//! The administrator's pages: the organisation tree, shops, users, API tokens and signing keys.

use axum::Router;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}
