//! The administrator's API: users, API tokens and signing keys, so nothing needs a shell on
//! the server.

use axum::Router;
use utoipa::OpenApi;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}

#[derive(OpenApi)]
#[openapi()]
pub struct AdminDoc;
