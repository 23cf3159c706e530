//! The administrator's API: users, API tokens and signing keys, so nothing needs a shell on
//! the server, and the organisation tree as a list. Every decision is the services' (users:
//! [`crate::session`], the rest: [`crate::admin`]); these handlers parse and render.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::earning::OrgUnitView;
use super::{Body, Error};
use crate::admin::{KeyInfo, NewToken, TokenInfo};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::calendar::format_time;
use crate::error::{ErrorCode, Fields};
use crate::session::{Link, User};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route(
            "/v1/users/{id}/password-reset-link",
            post(password_reset_link),
        )
        .route("/v1/users/{id}/disable", post(disable_user))
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{id}/revoke", post(revoke_token))
        .route("/v1/keys", get(list_keys))
        .route("/v1/keys/rotate", post(rotate_key))
        .route("/v1/keys/{id}/revoke", post(revoke_key))
        .route("/v1/org-units", get(list_org_units))
}

// ---- Views ----

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    /// admin, staff or auditor.
    pub role: String,
    /// The organisation unit a staff user manages.
    pub scope: Option<String>,
    pub has_password: bool,
    pub disabled: bool,
    pub created_at: String,
    pub disabled_at: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            name: u.name.clone(),
            role: u.role.as_str().to_owned(),
            scope: u.scope.clone(),
            has_password: u.has_password,
            disabled: u.disabled_at_micros.is_some(),
            created_at: format_time(u.created_at_micros),
            disabled_at: u.disabled_at_micros.map(format_time),
        }
    }
}

/// A one-time link that sets a user's password: works once, until `expires_at`.
#[derive(Serialize, ToSchema)]
pub struct LinkView {
    /// The page's path, `/set-password/axl_…`.
    pub path: String,
    /// The whole link, from the request's `Host` (hand it to the person).
    pub url: Option<String>,
    pub expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedUserView {
    pub user: UserView,
    pub set_password: LinkView,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub role: String,
    pub scope: Option<String>,
    pub label: String,
    /// api (made for a program or person), user (a user's own), shop_staff, resident_sign_in.
    pub holder: String,
    /// The user's or shop staff member's name.
    pub holder_name: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&TokenInfo> for TokenView {
    fn from(t: &TokenInfo) -> Self {
        TokenView {
            id: t.id,
            role: t.role.as_str().to_owned(),
            scope: t.scope.clone(),
            label: t.label.clone(),
            holder: t.holder.as_str().to_owned(),
            holder_name: t.holder_name.clone(),
            created_at: format_time(t.created_at_micros),
            expires_at: t.expires_at_micros.map(format_time),
            revoked_at: t.revoked_at_micros.map(format_time),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedTokenView {
    pub token: TokenView,
    /// The bearer token, `axn_` + 64 hex digits: shown only in this answer (only its SHA-256 is
    /// stored).
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    /// active (signs), retired (still verifies), revoked (verifies nothing).
    pub status: String,
    pub created_at: String,
}

impl From<&KeyInfo> for KeyView {
    fn from(k: &KeyInfo) -> Self {
        KeyView {
            id: k.id.clone(),
            status: key_status(k.status).to_owned(),
            created_at: format_time(k.created_at_micros),
        }
    }
}

pub fn key_status(status: crate::keys::KeyStatus) -> &'static str {
    match status {
        crate::keys::KeyStatus::Active => "active",
        crate::keys::KeyStatus::Retired => "retired",
        crate::keys::KeyStatus::Revoked => "revoked",
    }
}

// ---- Bodies ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    /// The name they sign in with (unique in the ledger, at most 64 characters).
    pub name: String,
    #[schema(pattern = r"^(admin|staff|auditor)$")]
    pub role: String,
    /// The organisation unit a staff user manages (none for admin and auditor).
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    #[schema(pattern = r"^(admin|staff|shop|cashier|resident|auditor)$")]
    pub role: String,
    /// The organisation unit (staff), shop id (shop, cashier) or resident id (resident).
    #[serde(default)]
    pub scope: Option<String>,
    /// Who holds the token (at most 100 characters).
    #[serde(default)]
    pub label: String,
    /// Expire after this many days (1 to 3650; default never).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensQuery {
    /// Include residents' sign-in tokens.
    residents: Option<bool>,
}

/// `/set-password/{secret}` and, from the request's Host, the whole link.
pub fn link_view(parts_host: Option<&str>, tls: bool, link: &Link) -> LinkView {
    let path = format!("/set-password/{}", link.secret);
    let scheme = if tls { "https" } else { "http" };
    LinkView {
        url: parts_host.map(|host| format!("{scheme}://{host}{path}")),
        path,
        expires_at: format_time(link.expires_at_micros),
    }
}

/// The request's Host and whether it came over TLS, for the links in an answer.
struct Origin {
    host: Option<String>,
    tls: bool,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin {
            host: parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    h.len() <= 255
                        && h.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                })
                .map(str::to_owned),
            tls: parts.extensions.get::<crate::web::OverTls>().is_some(),
        })
    }
}

fn uuid_of(id: Result<Path<String>, PathRejection>, what: &str) -> Result<Uuid, Error> {
    let Path(id) = id?;
    Uuid::parse_str(&id).map_err(|_| Error::new(ErrorCode::NotFound, format!("no {what} {id:?}")))
}

// ---- Users ----

/// Every user of the ledger, by name. Admin.
#[utoipa::path(get, path = "/v1/users", security(("bearer" = [])),
    responses((status = 200, body = [UserView]), (status = 403)))]
async fn list_users(State(app): State<App>, p: Principal) -> Result<Json<Vec<UserView>>, Error> {
    let users = app.sessions.users(&p).await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

/// Creates a user (admin, staff scoped to an organisation unit, or auditor) and answers the
/// one-time link that sets their password (valid 72 hours). Admin.
#[utoipa::path(post, path = "/v1/users", security(("bearer" = [])), request_body = UserBody,
    responses((status = 201, body = CreatedUserView), (status = 403), (status = 409), (status = 422)))]
async fn create_user(
    State(app): State<App>,
    p: Principal,
    origin: Origin,
    Body(body): Body<UserBody>,
) -> Result<Response, Error> {
    let role = Role::parse(body.role.trim()).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidBody,
            "role must be admin, staff or auditor",
        )
        .with_fields(Fields {
            field: Some("role".into()),
            ..Fields::default()
        })
    })?;
    let scope = body
        .scope
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let (user, link) = app
        .sessions
        .create_user(&p, role, scope, &body.name)
        .await?;
    let view = CreatedUserView {
        user: UserView::from(&user),
        set_password: link_view(origin.host.as_deref(), origin.tls, &link),
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// A new one-time link that sets the user's password (an earlier unused one stops working;
/// the password stays what it was until the link is used). Admin.
#[utoipa::path(post, path = "/v1/users/{id}/password-reset-link", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = LinkView), (status = 403), (status = 404)))]
async fn password_reset_link(
    State(app): State<App>,
    p: Principal,
    origin: Origin,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<LinkView>, Error> {
    let id = uuid_of(id, "user")?;
    let link = app.sessions.password_reset_link(&p, id).await?;
    Ok(Json(link_view(origin.host.as_deref(), origin.tls, &link)))
}

/// Disables a user: their sessions end at once and they can no longer sign in. Admin (not
/// oneself).
#[utoipa::path(post, path = "/v1/users/{id}/disable", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = UserView), (status = 403), (status = 404)))]
async fn disable_user(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<UserView>, Error> {
    let id = uuid_of(id, "user")?;
    let user = app.sessions.disable_user(&p, id).await?;
    Ok(Json(UserView::from(&user)))
}

// ---- Tokens ----

/// The ledger's tokens, newest first (at most 500), never their secrets; residents' sign-in
/// tokens only with `residents=true`. Admin.
#[utoipa::path(get, path = "/v1/tokens", security(("bearer" = [])),
    params(("residents" = Option<bool>, Query, description = "include residents' sign-in tokens")),
    responses((status = 200, body = [TokenView]), (status = 403)))]
async fn list_tokens(
    State(app): State<App>,
    p: Principal,
    query: Result<Query<TokensQuery>, QueryRejection>,
) -> Result<Json<Vec<TokenView>>, Error> {
    let Query(query) = query?;
    let tokens = app
        .admin
        .tokens(&p, query.residents.unwrap_or(false))
        .await?;
    Ok(Json(tokens.iter().map(TokenView::from).collect()))
}

/// Creates a token and answers its secret, shown only this once. Admin.
#[utoipa::path(post, path = "/v1/tokens", security(("bearer" = [])), request_body = TokenBody,
    responses((status = 201, body = CreatedTokenView), (status = 403), (status = 422)))]
async fn create_token(
    State(app): State<App>,
    p: Principal,
    Body(body): Body<TokenBody>,
) -> Result<Response, Error> {
    let (token, secret) = app
        .admin
        .create_token(
            &p,
            NewToken {
                role: body.role,
                scope: body.scope,
                label: body.label,
                expires_in_days: body.expires_in_days,
            },
        )
        .await?;
    let view = CreatedTokenView {
        token: TokenView::from(&token),
        secret,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Revokes a token; the sessions standing for it end at once. A user's own token is refused
/// (`token_of_user`: disable the user). Admin.
#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = TokenView), (status = 403), (status = 404), (status = 409)))]
async fn revoke_token(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TokenView>, Error> {
    let id = uuid_of(id, "token")?;
    let token = app.admin.revoke_token(&p, id).await?;
    Ok(Json(TokenView::from(&token)))
}

// ---- Signing keys ----

/// The signing keys: id, status and when made; never secret material. Admin.
#[utoipa::path(get, path = "/v1/keys", security(("bearer" = [])),
    responses((status = 200, body = [KeyView]), (status = 403)))]
async fn list_keys(State(app): State<App>, p: Principal) -> Result<Json<Vec<KeyView>>, Error> {
    let keys = app.admin.signing_keys(&p)?;
    Ok(Json(keys.iter().map(KeyView::from).collect()))
}

/// Retires the active signing key (it still verifies what it signed) and makes a new one
/// active; answers the new key. Admin.
#[utoipa::path(post, path = "/v1/keys/rotate", security(("bearer" = [])),
    responses((status = 200, body = KeyView), (status = 403)))]
async fn rotate_key(State(app): State<App>, p: Principal) -> Result<Json<KeyView>, Error> {
    let key = app.admin.rotate_key(&p).await?;
    Ok(Json(KeyView::from(&key)))
}

/// Revokes a retired signing key: receipts, checkpoints and bundles it signed no longer
/// verify. The active key is refused (`signing_key_active`). Admin.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = KeyView), (status = 403), (status = 409), (status = 422)))]
async fn revoke_key(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<KeyView>, Error> {
    let Path(id) = id?;
    let key = app.admin.revoke_key(&p, &id).await?;
    Ok(Json(KeyView::from(&key)))
}

// ---- The organisation ----

#[derive(Serialize, ToSchema)]
pub struct OrgUnitsView {
    /// By id; each names its parent, so the tree is `parent_id` → `id`.
    pub units: Vec<OrgUnitView>,
}

/// The organisation units the caller may see, flat with their parents: admin and auditor all,
/// staff their unit and everything below it.
#[utoipa::path(get, path = "/v1/org-units", security(("bearer" = [])),
    responses((status = 200, body = OrgUnitsView), (status = 403)))]
async fn list_org_units(State(app): State<App>, p: Principal) -> Result<Json<OrgUnitsView>, Error> {
    let units = app.admin.org_units(&p).await?;
    Ok(Json(OrgUnitsView {
        units: units.iter().map(OrgUnitView::from).collect(),
    }))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list_users,
        create_user,
        password_reset_link,
        disable_user,
        list_tokens,
        create_token,
        revoke_token,
        list_keys,
        rotate_key,
        revoke_key,
        list_org_units
    ),
    components(schemas(
        UserView,
        LinkView,
        CreatedUserView,
        TokenView,
        CreatedTokenView,
        KeyView,
        UserBody,
        TokenBody,
        OrgUnitsView
    ))
)]
pub struct AdminDoc;
