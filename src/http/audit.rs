//! Audit and report routes: the bundle as a streamed tar, checkpoints, and reports.
//! Admin and auditor see everything; staff see the reports of communities they manage (and of
//! shops in them); a shop token sees its own statement.

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::TryStreamExt;
use serde::Deserialize;

use super::Error;
use crate::app::App;
use crate::audit::export::Bound;
use crate::audit::format;
use crate::auth::Principal;
use crate::error::ErrorCode;

/// Routes that answer within the request time limit.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/audit/checkpoints", get(list_checkpoints))
        .route("/v1/reports/trial-balance", get(trial_balance))
        .route("/v1/reports/communities/{id}", get(community_report))
        .route("/v1/reports/shops/{id}", get(shop_report))
}

/// The export: it writes the whole bundle before the first byte is sent, so it is not bound by
/// the request time limit.
pub fn streaming_routes() -> Router<App> {
    Router::new().route("/v1/audit/export", get(export_bundle))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
    as_of: Option<String>,
    format: Option<String>,
}

fn bound(text: Option<&str>, name: &str) -> Result<Option<Bound>, Error> {
    text.map(|t| {
        Bound::parse(t).ok_or_else(|| {
            Error::new(
                ErrorCode::AuditBoundInvalid,
                format!("{name} {t:?} is neither a sequence number nor a date (YYYY-MM-DD)"),
            )
        })
    })
    .transpose()
}

/// CSV when `format=csv`, else JSON.
fn wants_csv(query: &RangeQuery) -> Result<bool, Error> {
    match query.format.as_deref() {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(Error::new(
            ErrorCode::InvalidQuery,
            format!("format {other:?} is not json or csv"),
        )),
    }
}

fn csv_response(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The audit bundle of `[from, to]` as a tar (ledger-specs/audit-bundle.md). Admin and auditor.
#[utoipa::path(get, path = "/v1/audit/export", security(("bearer" = [])),
    params(("from" = Option<String>, Query, pattern = r"^([0-9]{1,18}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$", description = "first entry: sequence number or YYYY-MM-DD (UTC+8)"),
           ("to" = Option<String>, Query, pattern = r"^([0-9]{1,18}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$", description = "last entry: sequence number or YYYY-MM-DD (UTC+8)")),
    responses((status = 200, content_type = "application/x-tar"), (status = 400), (status = 403), (status = 422)))]
async fn export_bundle(
    State(app): State<App>,
    principal: Principal,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(query) = query?;
    let (from, to) = (
        bound(query.from.as_deref(), "from")?,
        bound(query.to.as_deref(), "to")?,
    );
    let bundle = app.audit.export_tar(&principal, from, to).await?;
    let mut chunks = bundle.chunks;
    let stream = futures_util::stream::poll_fn(move |cx| chunks.poll_recv(cx)).map_ok(Bytes::from);
    let name = format!("attachment; filename=\"{}\"", bundle.file_name);
    let mut response = (StatusCode::OK, HttpBody::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Stored signed checkpoints, one checkpoint line's object each, in sequence order. Admin and
/// auditor.
#[utoipa::path(get, path = "/v1/audit/checkpoints", security(("bearer" = [])),
    params(("from" = Option<i64>, Query, minimum = 0), ("to" = Option<i64>, Query, minimum = 0)),
    responses((status = 200), (status = 403)))]
async fn list_checkpoints(
    State(app): State<App>,
    principal: Principal,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, Error> {
    let Query(query) = query?;
    let seq = |text: Option<&str>, default: i64| match bound(text, "bound")? {
        None => Ok(default),
        Some(Bound::Seq(n)) => Ok(n),
        Some(Bound::Day(_)) => Err(Error::new(
            ErrorCode::AuditBoundInvalid,
            "checkpoints are listed by sequence number",
        )),
    };
    let (from, to) = (
        seq(query.from.as_deref(), 0)?,
        seq(query.to.as_deref(), i64::MAX)?,
    );
    let checkpoints = app
        .audit
        .checkpoints(&principal, from, to)
        .await?
        .iter()
        .map(|c| serde_json::from_str(&format::checkpoint_line(c)).unwrap_or_default())
        .collect::<Vec<serde_json::Value>>();
    Ok(Json(serde_json::json!({ "checkpoints": checkpoints })))
}

/// Every account's balance after an entry or day, in debit and credit columns. Admin, auditor.
#[utoipa::path(get, path = "/v1/reports/trial-balance", security(("bearer" = [])),
    params(("as_of" = Option<String>, Query, pattern = r"^([0-9]{1,18}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$", description = "sequence number or YYYY-MM-DD (default: now)"),
           ("format" = Option<String>, Query, pattern = r"^(json|csv)$", description = "json (default) or csv")),
    responses((status = 200), (status = 403)))]
async fn trial_balance(
    State(app): State<App>,
    principal: Principal,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(query) = query?;
    let csv = wants_csv(&query)?;
    let as_of = bound(query.as_of.as_deref(), "as_of")?;
    let report = app.audit.trial_balance(&principal, as_of).await?;
    Ok(if csv {
        csv_response(report.to_csv())
    } else {
        Json(report).into_response()
    })
}

/// A community's issued, redeemed, refunded, expired and outstanding points, by rule and by
/// shop. Admin, auditor, and staff who manage the community.
#[utoipa::path(get, path = "/v1/reports/communities/{id}", security(("bearer" = [])),
    params(("id" = String, Path), ("as_of" = Option<String>, Query, pattern = r"^([0-9]{1,18}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$"), ("format" = Option<String>, Query, pattern = r"^(json|csv)$")),
    responses((status = 200), (status = 404)))]
async fn community_report(
    State(app): State<App>,
    principal: Principal,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let Query(query) = query?;
    let csv = wants_csv(&query)?;
    let as_of = bound(query.as_of.as_deref(), "as_of")?;
    let report = app.audit.community_report(&principal, &id, as_of).await?;
    Ok(if csv {
        csv_response(report.to_csv())
    } else {
        Json(report.to_json()).into_response()
    })
}

/// A shop's points entry by entry over a range. Admin, auditor, staff who manage the shop's
/// community, and the shop itself.
#[utoipa::path(get, path = "/v1/reports/shops/{id}", security(("bearer" = [])),
    params(("id" = String, Path), ("from" = Option<String>, Query, pattern = r"^([0-9]{1,18}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$"), ("to" = Option<String>, Query, pattern = r"^([0-9]{1,18}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$"),
           ("format" = Option<String>, Query, pattern = r"^(json|csv)$")),
    responses((status = 200), (status = 404)))]
async fn shop_report(
    State(app): State<App>,
    principal: Principal,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let Query(query) = query?;
    let csv = wants_csv(&query)?;
    let (from, to) = (
        bound(query.from.as_deref(), "from")?,
        bound(query.to.as_deref(), "to")?,
    );
    let report = app.audit.shop_report(&principal, &id, from, to).await?;
    Ok(if csv {
        csv_response(report.to_csv())
    } else {
        Json(report).into_response()
    })
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    export_bundle,
    list_checkpoints,
    trial_balance,
    community_report,
    shop_report
))]
pub struct AuditDoc;
