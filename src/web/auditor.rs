//! The auditor's pages (export, checkpoints, reports) and the public receipt check.

use axum::Router;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}
