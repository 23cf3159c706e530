//! The HTTP API: thin handlers over the store, the writer and the ledger rules.
//!
//! Every route is under `/v1` except `/healthz`. Errors are RFC 9457 problem+json (see
//! [`problem`]). `fn router` builds the whole app so tests can drive it without a socket.

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::app::App;
use crate::auth::Principal;
use crate::calendar::format_time;
use crate::journal::AccountRequest;

use crate::error::ErrorCode;
use crate::ledger::entry::idempotency_key_is_valid;
use crate::ledger::verify::{Problem, Summary};
use crate::ledger::{
    format_minor, AccountKind, Amount, EntryDraft, EntryKind, PostedEntry, Posting, Side, Unit,
};
use crate::store::{Account, Outcome, PAGE_LIMIT_MAX};

pub mod admin;
pub mod audit;
pub mod earning;
pub mod headers;
pub mod lists;
pub mod problem;
pub mod redeem;

pub use problem::{Body, Error};

/// Largest request body accepted, in bytes. An entry of 64 postings fits in well under 16 KiB.
pub const BODY_MAX_BYTES: usize = 64 * 1024;
/// History page size when the client does not ask for one.
pub const PAGE_LIMIT_DEFAULT: i64 = 50;

/// Longest a request may take before it is answered 503 (a write already queued still commits;
/// a retry with the same idempotency key returns it).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The whole application.
pub fn router(state: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/ledger", get(get_ledger))
        .route("/v1/verify", get(verify))
        .route("/v1/accounts", post(open_account))
        .route("/v1/accounts/{id}", get(get_account))
        .route("/v1/accounts/{id}/entries", get(account_entries))
        .route("/v1/entries", post(post_entry).get(list_entries))
        .route("/v1/entries/{id}", get(get_entry))
        .merge(earning::routes())
        .merge(redeem::routes())
        .merge(audit::routes())
        .merge(lists::routes())
        .merge(admin::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(|| async { Error::bare(ErrorCode::MethodNotAllowed) })
        .layer(DefaultBodyLimit::max(BODY_MAX_BYTES))
        .layer(axum::middleware::from_fn(time_limit))
        .merge(audit::streaming_routes().layer(DefaultBodyLimit::max(BODY_MAX_BYTES)))
        .layer(axum::middleware::from_fn(problem::problems_only))
        .merge(crate::web::routes())
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// A path no route has: problem+json under the API's paths, a page everywhere else.
async fn fallback(ctx: crate::web::Ctx, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path == "/v1" || path.starts_with("/v1/") || path == "/healthz" {
        Error::bare(ErrorCode::NotFound).into_response()
    } else {
        crate::web::not_found(ctx).await
    }
}

/// Answers 503 problem+json when a request outlives [`REQUEST_TIMEOUT`].
async fn time_limit(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::new(
            ErrorCode::Unavailable,
            "the request took too long; retry with the same idempotency key",
        )
        .into_response(),
    }
}

impl FromRequestParts<App> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &App) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.principal_of_bearer(header).await
    }
}

// ---- Views: what the API answers. Amounts are strings with two decimals. ----

#[derive(Serialize, ToSchema)]
pub struct PostingView {
    pub account: Uuid,
    /// `points` or `hours`.
    pub unit: String,
    /// `debit` (out of the account) or `credit` (into it).
    pub side: String,
    #[schema(example = "10.00")]
    pub amount: String,
}

#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub id: Uuid,
    pub ledger: String,
    pub seq: i64,
    pub kind: String,
    pub memo: String,
    pub metadata: BTreeMap<String, String>,
    pub reverses: Option<Uuid>,
    pub actor: String,
    pub idempotency_key: String,
    /// RFC 3339, UTC (fractional seconds without trailing zeros).
    pub posted_at: String,
    /// Microseconds since the Unix epoch: the value the hash covers.
    pub posted_at_micros: i64,
    pub postings: Vec<PostingView>,
    /// Hex SHA-256 of the previous entry (or the genesis hash).
    pub prev_hash: String,
    /// Hex SHA-256 of this entry's byte layout (ledger-specs/hash-chain.md).
    pub hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    pub ledger: String,
    pub kind: String,
    pub owner_id: Option<String>,
    pub community_id: Option<String>,
    pub label: String,
    pub created_at: String,
    /// Balance per unit the account may hold, e.g. `{"points": "12.50", "hours": "3.00"}`.
    pub balances: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
pub struct EntriesPage {
    pub entries: Vec<EntryView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerView {
    pub ledger: String,
    pub head_seq: i64,
    pub head_hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyView {
    pub ok: bool,
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Summary>,
    /// The first problem found: `seq` (where in the journal), `kind` and `detail`.
    #[schema(value_type = Option<Object>)]
    pub problem: Option<Problem>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// The furthest any ledger's head is ahead of this server's clock; absent when the database
    /// cannot be read. `ok: false` (more than 300 s) means a clock is wrong somewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<crate::journal::ClockCheck>,
}

// ---- Request bodies. Unknown fields are refused; amounts are strings. ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingBody {
    pub account: Uuid,
    #[schema(pattern = r"^(points|hours)$")]
    pub unit: String,
    #[schema(pattern = r"^(debit|credit)$")]
    pub side: String,
    #[schema(example = "10.00")]
    pub amount: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostEntryBody {
    /// earn, redeem, refund, settle, expire, adjust or reversal.
    #[schema(pattern = r"^(earn|redeem|refund|settle|expire|adjust|reversal)$")]
    pub kind: String,
    pub postings: Vec<PostingBody>,
    #[serde(default)]
    pub memo: String,
    #[serde(default, deserialize_with = "problem::unique_keys")]
    pub metadata: BTreeMap<String, String>,
    /// For refund and reversal entries: the id of the entry reversed.
    #[serde(default)]
    pub reverses: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountBody {
    /// Client-chosen id; when absent it is derived from the Idempotency-Key.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// resident, shop, issuance, settlement, expiry or adjustment.
    #[schema(pattern = r"^(resident|shop|issuance|settlement|expiry|adjustment)$")]
    pub kind: String,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub community_id: Option<String>,
    #[serde(default)]
    pub label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalQuery {
    pub after_seq: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct JournalPage {
    pub entries: Vec<EntryView>,
    /// Pass as `after_seq` for the next page; absent when this page reached the head.
    pub next_after_seq: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl PostEntryBody {
    /// Parses the body into a draft, checking everything that needs no database.
    pub fn into_draft(self) -> Result<EntryDraft, Error> {
        let kind = EntryKind::parse(&self.kind).ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownEntryKind,
                format!("unknown entry kind {:?}", self.kind),
            )
        })?;
        if self.postings.len() > crate::ledger::entry::POSTINGS_MAX {
            return Err(Error::from(crate::ledger::LedgerError::TooManyPostings));
        }
        let postings = self
            .postings
            .into_iter()
            .enumerate()
            .map(|(index, p)| {
                let unit = Unit::parse(&p.unit).ok_or_else(|| {
                    Error::new(
                        ErrorCode::UnknownUnit,
                        format!("postings[{index}]: unknown unit {:?}", p.unit),
                    )
                })?;
                let side = Side::parse(&p.side).ok_or_else(|| {
                    Error::new(
                        ErrorCode::UnknownSide,
                        format!("postings[{index}]: side must be debit or credit"),
                    )
                })?;
                let amount = Amount::parse(&p.amount).map_err(|e| {
                    Error::new(ErrorCode::from(e), format!("postings[{index}]: {e}"))
                })?;
                Ok(Posting {
                    account: p.account,
                    unit,
                    side,
                    amount,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let draft = EntryDraft {
            kind,
            postings,
            memo: self.memo,
            metadata: self.metadata,
            reverses: self.reverses,
        };
        draft.check()?;
        Ok(draft)
    }
}

/// A page size from the query: 1 to [`PAGE_LIMIT_MAX`], [`PAGE_LIMIT_DEFAULT`] when absent.
pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, Error> {
    let limit = limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if (1..=PAGE_LIMIT_MAX).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::new(
            ErrorCode::InvalidQuery,
            format!("limit must be 1 to {PAGE_LIMIT_MAX}"),
        ))
    }
}

/// Page size and "before this sequence number" cursor of a newest-first history page.
pub(crate) fn page_params(
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<(i64, Option<i64>), Error> {
    let limit = page_limit(limit)?;
    let before =
        match cursor {
            None => None,
            Some(text) => Some(text.parse::<i64>().ok().filter(|seq| *seq > 0).ok_or_else(
                || Error::new(ErrorCode::InvalidQuery, "cursor is not one this API gave"),
            )?),
        };
    Ok((limit, before))
}

impl From<&PostedEntry> for EntryView {
    fn from(e: &PostedEntry) -> Self {
        EntryView {
            id: e.id,
            ledger: e.ledger_id.clone(),
            seq: e.seq,
            kind: e.kind.as_str().to_owned(),
            memo: e.memo.clone(),
            metadata: e.metadata.clone(),
            reverses: e.reverses,
            actor: e.actor.clone(),
            idempotency_key: e.idempotency_key.clone(),
            posted_at: format_time(e.posted_at_micros),
            posted_at_micros: e.posted_at_micros,
            postings: e
                .postings
                .iter()
                .map(|p| PostingView {
                    account: p.account,
                    unit: p.unit.as_str().to_owned(),
                    side: p.side.as_str().to_owned(),
                    amount: p.amount.to_string(),
                })
                .collect(),
            prev_hash: hex::encode(e.prev_hash),
            hash: hex::encode(e.hash),
        }
    }
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id,
            ledger: a.ledger_id.clone(),
            kind: a.kind.as_str().to_owned(),
            owner_id: a.owner_id.clone(),
            community_id: a.community_id.clone(),
            label: a.label.clone(),
            created_at: format_time(a.created_at_micros),
            balances: a
                .balances
                .iter()
                .map(|(unit, minor)| (unit.as_str().to_owned(), format_minor(*minor)))
                .collect(),
        }
    }
}

/// The `Idempotency-Key` header of a write that needs one, read before the body so that a
/// missing key is the first thing a client hears about. Every operation that takes it is in
/// [`KEYED_OPERATIONS`], which the OpenAPI document declares the header from.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        idempotency_key(&parts.headers).map(IdempotencyKey)
    }
}

/// The operations that need an `Idempotency-Key` (method, path as in the OpenAPI document);
/// `tests/http.rs` checks this list against what every route answers without one.
pub const KEYED_OPERATIONS: &[(&str, &str)] = &[
    ("post", "/v1/accounts"),
    ("post", "/v1/entries"),
    ("post", "/v1/residents"),
    ("post", "/v1/service-records"),
    ("post", "/v1/rosters"),
    ("post", "/v1/corrections"),
    ("post", "/v1/shops"),
    ("post", "/v1/shops/{id}/staff"),
    ("post", "/v1/residents/{id}/credential"),
    ("post", "/v1/shops/{id}/items/{sku}/stock"),
    ("post", "/v1/redemptions"),
    ("post", "/v1/receipts/{id}/refund"),
    ("post", "/v1/shops/{id}/settlements"),
];

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<String, Error> {
    let value = headers
        .get("idempotency-key")
        .ok_or_else(|| Error::bare(ErrorCode::MissingIdempotencyKey))?;
    value
        .to_str()
        .ok()
        .filter(|k| idempotency_key_is_valid(k))
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be 1 to 128 printable ASCII characters without spaces",
            )
        })
}

// ---- Handlers ----

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
async fn healthz(State(app): State<App>) -> Json<Health> {
    let clock = app
        .journal
        .clock_health()
        .await
        .inspect_err(|e| tracing::warn!(detail = %e.detail, "health: cannot read the heads"))
        .ok();
    Json(Health {
        status: "ok",
        clock,
    })
}

#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "This document")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}

/// The whole OpenAPI document: every area's operations, each with the header it needs and
/// every error answer it can give.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(earning::EarningDoc::openapi());
    doc.merge(redeem::RedeemDoc::openapi());
    doc.merge(audit::AuditDoc::openapi());
    doc.merge(lists::ListsDoc::openapi());
    doc.merge(admin::AdminDoc::openapi());
    problem::complete_document(&mut doc, KEYED_OPERATIONS);
    doc
}

/// The ledger's head. Admin and auditor.
#[utoipa::path(get, path = "/v1/ledger", security(("bearer" = [])),
    responses((status = 200, body = LedgerView), (status = 401), (status = 403)))]
async fn get_ledger(
    State(app): State<App>,
    principal: Principal,
) -> Result<Json<LedgerView>, Error> {
    let head = app.journal.head(&principal).await?;
    Ok(Json(LedgerView {
        ledger: principal.ledger_id,
        head_seq: head.seq,
        head_hash: hex::encode(head.hash),
    }))
}

/// Recomputes the chain and every balance. Admin and auditor.
#[utoipa::path(get, path = "/v1/verify", security(("bearer" = [])),
    responses((status = 200, body = VerifyView), (status = 401), (status = 403)))]
async fn verify(State(app): State<App>, principal: Principal) -> Result<Json<VerifyView>, Error> {
    Ok(Json(match app.journal.verify(&principal).await? {
        Ok(summary) => VerifyView {
            ok: true,
            summary: Some(summary),
            problem: None,
        },
        Err(problem) => VerifyView {
            ok: false,
            summary: None,
            problem: Some(problem),
        },
    }))
}

/// Opens an account. Admin. Idempotent on the account id: the id is the body's `id`, or, when
/// absent, derived from the ledger and the Idempotency-Key. Opening an existing id with the same
/// attributes answers 200 with the account as it is now; with other attributes, 409
/// `account_exists`.
#[utoipa::path(post, path = "/v1/accounts", security(("bearer" = [])), request_body = OpenAccountBody,
    params(("Idempotency-Key" = String, Header, description = "Client-chosen key; repeats return the same account")),
    responses((status = 201, body = AccountView), (status = 200, body = AccountView, description = "Already opened by the same request"),
              (status = 409, description = "account_exists"), (status = 422)))]
async fn open_account(
    State(app): State<App>,
    principal: Principal,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<OpenAccountBody>,
) -> Result<Response, Error> {
    let kind = AccountKind::parse(&body.kind).ok_or_else(|| {
        Error::new(
            ErrorCode::UnknownAccountKind,
            format!("unknown account kind {:?}", body.kind),
        )
    })?;
    let request = AccountRequest {
        id: body.id,
        kind,
        owner_id: body.owner_id,
        community_id: body.community_id,
        label: body.label,
    };
    let (account, created) = app.journal.open_account(&principal, &key, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(AccountView::from(&account))).into_response())
}

/// An account and its balances.
#[utoipa::path(get, path = "/v1/accounts/{id}", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AccountView), (status = 404)))]
async fn get_account(
    State(app): State<App>,
    principal: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<AccountView>, Error> {
    let Path(id) = id?;
    let account = app.journal.account(&principal, id).await?;
    Ok(Json(AccountView::from(&account)))
}

/// The entries touching an account, newest first, in pages.
#[utoipa::path(get, path = "/v1/accounts/{id}/entries", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
           ("cursor" = Option<String>, Query, pattern = r"^[1-9][0-9]{0,17}$", description = "next_cursor of the previous page")),
    responses((status = 200, body = EntriesPage), (status = 400), (status = 404)))]
async fn account_entries(
    State(app): State<App>,
    principal: Principal,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<EntriesPage>, Error> {
    let Path(id) = id?;
    let Query(query) = query?;
    let (limit, before) = page_params(query.limit, query.cursor.as_deref())?;
    let page = app
        .journal
        .account_entries(&principal, id, before, limit)
        .await?;
    let next_cursor = if page.more {
        page.entries.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Json(EntriesPage {
        entries: page.entries.iter().map(EntryView::from).collect(),
        next_cursor,
    }))
}

/// Posts an entry. Admin. Needs an Idempotency-Key: the same key and body again answers the
/// original entry (with `Idempotent-Replayed: true`); the same key with another body is refused.
#[utoipa::path(post, path = "/v1/entries", security(("bearer" = [])), request_body = PostEntryBody,
    params(("Idempotency-Key" = String, Header, description = "Client-chosen key, 1..=128 printable ASCII")),
    responses((status = 201, body = EntryView), (status = 400), (status = 401), (status = 403),
              (status = 409), (status = 413), (status = 422), (status = 503)))]
async fn post_entry(
    State(app): State<App>,
    principal: Principal,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<PostEntryBody>,
) -> Result<Response, Error> {
    let draft = body.into_draft()?;
    match app.journal.post(&principal, key, draft).await? {
        Outcome::Posted(entry) => {
            Ok((StatusCode::CREATED, Json(EntryView::from(&entry))).into_response())
        }
        Outcome::Replayed(entry) => {
            let mut response = (StatusCode::CREATED, Json(EntryView::from(&entry))).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        Outcome::Refused(refusal) => Err(refusal.into()),
    }
}

/// The whole journal in sequence order, for auditors and independent verifiers. Admin and auditor.
#[utoipa::path(get, path = "/v1/entries", security(("bearer" = [])),
    params(("after_seq" = Option<i64>, Query, minimum = 0, description = "return entries after this sequence number (default 0)"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50")),
    responses((status = 200, body = JournalPage), (status = 400), (status = 403)))]
async fn list_entries(
    State(app): State<App>,
    principal: Principal,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> Result<Json<JournalPage>, Error> {
    let Query(query) = query?;
    let limit = page_limit(query.limit)?;
    let after = query.after_seq.unwrap_or(0);
    let page = app.journal.entries_after(&principal, after, limit).await?;
    let next_after_seq = if page.more {
        page.entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(JournalPage {
        entries: page.entries.iter().map(EntryView::from).collect(),
        next_after_seq,
    }))
}

/// One entry. Visible to admin and auditor, and to anyone who can see one of its accounts.
#[utoipa::path(get, path = "/v1/entries/{id}", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EntryView), (status = 404)))]
async fn get_entry(
    State(app): State<App>,
    principal: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<EntryView>, Error> {
    let Path(id) = id?;
    let entry = app.journal.entry(&principal, id).await?;
    Ok(Json(EntryView::from(&entry)))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "aixin", description = "A double-entry ledger of community volunteer points. Errors are RFC 9457 problem+json with type urn:aixin:problem:<code>; see ledger-specs/errors.md."),
    paths(healthz, openapi, get_ledger, verify, open_account, get_account, account_entries, post_entry, list_entries, get_entry),
    components(schemas(PostingView, EntryView, AccountView, EntriesPage, JournalPage, LedgerView, VerifyView, Health,
                       PostingBody, PostEntryBody, OpenAccountBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
