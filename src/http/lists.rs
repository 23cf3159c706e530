//! Lists and searches: paged, bounded and scoped to the caller like every other read.

use axum::Router;
use utoipa::OpenApi;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}

#[derive(OpenApi)]
#[openapi()]
pub struct ListsDoc;
