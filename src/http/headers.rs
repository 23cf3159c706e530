//! Headers every answer carries, whatever route (or refusal) produced it:
//!
//! - `X-Content-Type-Options: nosniff`, so a browser never reads a JSON body or an SVG code as
//!   something else than its declared type;
//! - `Cache-Control: no-store`, unless the handler chose its own: answers carry personal data
//!   and secrets (a credential's PIN and secret, a resident's current code and its SVG, a new
//!   shop token), and no browser or proxy cache should keep any of them. Applying it to every
//!   answer means a new route that answers a secret cannot forget it.

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The middleware (`axum::middleware::from_fn(security_headers)`).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
