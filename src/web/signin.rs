//! Signing in and out: staff, administrators and auditors by name and password; shop clerks by
//! name and PIN on a paired till device; residents by the one-time QR link staff print for them
//! (which can remember the phone) or by phone number and the PIN of their card. Every way ends
//! in a session cookie that the sign-in service maps to the same principal a token is.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{cookie_value, done, home_of, session_name, Ctx, Lang, PageError, Visitor, M};
use super::{PageResult, DEVICE_COOKIE};
use crate::app::App;
use crate::error::Error;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(front))
        .route("/signin", get(signin_page))
        .route("/signin/password", post(password))
        .route("/signin/phone", post(phone))
        .route("/signin/clerk", post(clerk))
        .route("/signout", post(signout))
        .route("/signed-in", get(signed_in))
        .route("/r/{secret}", get(link_page).post(link))
        .route(
            "/set-password/{secret}",
            get(set_password_page).post(set_password),
        )
        .route("/till/pair/{secret}", get(pair_page).post(pair))
}

/// The ledger the pages serve (`aixin serve --ledger`), added by `serve` as an extension.
#[derive(Clone, Debug)]
pub struct Site {
    pub ledger: String,
}

fn ledger_of(headers_site: Option<&Site>) -> String {
    headers_site.map_or_else(|| "default".to_owned(), |s| s.ledger.clone())
}

/// Who the session cookie `value` stands for, if it is live.
pub async fn visitor(app: &App, value: &str) -> Option<Visitor> {
    bridge::visitor(app, value).await
}

/// Where a signed-in person starts; the sign-in page for anyone else.
async fn front(ctx: Ctx) -> Response {
    match &ctx.visitor {
        Some(v) => {
            let to = home_of(v.principal.role);
            ctx.redirect(to)
        }
        None => ctx.redirect("/signin"),
    }
}

#[derive(askama::Template)]
#[template(path = "signin.html")]
struct SigninPage<'a> {
    ctx: &'a Ctx,
    /// A paired till device: offer the clerk's sign-in first.
    device: bool,
    /// The clerks who may sign in on this device, to choose from.
    clerks: Vec<String>,
    refusal: Option<String>,
    next: String,
    /// What was typed before a refusal (never the secret), so nobody types it twice.
    name: String,
    phone: String,
}

#[derive(Deserialize, Default)]
struct Next {
    next: Option<String>,
}

/// A safe place to go after signing in: a path of this site, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

async fn signin_page(
    State(app): State<App>,
    site: Option<axum::Extension<Site>>,
    ctx: Ctx,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<Next>,
) -> Response {
    let (device, clerks) = device_of(&app, site.as_deref(), &headers).await;
    let page = SigninPage {
        ctx: &ctx,
        device,
        clerks,
        refusal: None,
        next: safe_next(q.next.as_deref()),
        name: String::new(),
        phone: String::new(),
    };
    let html = askama::Template::render(&page);
    drop(page);
    ctx.html(html)
}

#[derive(Deserialize)]
struct PasswordForm {
    name: String,
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
struct PhoneForm {
    phone: String,
    pin: String,
    remember: Option<String>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct ClerkForm {
    name: String,
    pin: String,
}

/// Whether this browser is a paired till, and who may sign in on it.
async fn device_of(app: &App, site: Option<&Site>, headers: &HeaderMap) -> (bool, Vec<String>) {
    match cookie_value(headers, DEVICE_COOKIE) {
        Some(secret) => {
            let ledger = ledger_of(site);
            let paired = matches!(app.sessions.till_device(&ledger, secret).await, Ok(Some(_)));
            let clerks = if paired {
                bridge::clerks(app, &ledger, secret).await
            } else {
                Vec::new()
            };
            (paired, clerks)
        }
        None => (false, Vec::new()),
    }
}

/// The client a sign-in attempt is counted against: the connection's peer address.
fn client_of(client: Option<&super::ClientAddr>) -> String {
    client.map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// After a sign-in attempt: the session cookie and the next page, or the sign-in page again
/// with the refusal's sentence and what was typed.
fn signed_in_or_again(
    mut ctx: Ctx,
    result: Result<bridge::NewSession, Error>,
    next: String,
    (device, clerks): (bool, Vec<String>),
    name: String,
    phone: String,
) -> Response {
    match result {
        Ok(session) => {
            let cookie = ctx.cookie(
                session_name(ctx.secure),
                &session.value,
                session.max_age_seconds,
            );
            ctx.set_cookie(cookie);
            let to = if next == "/" {
                home_of(session.role).to_owned()
            } else {
                next
            };
            ctx.redirect(&to)
        }
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            let page = SigninPage {
                ctx: &ctx,
                device,
                clerks,
                refusal: Some(sentence),
                next,
                name,
                phone,
            };
            let html = askama::Template::render(&page);
            drop(page);
            ctx.html_status(axum::http::StatusCode::UNAUTHORIZED, html)
        }
    }
}

async fn password(
    State(app): State<App>,
    site: Option<axum::Extension<Site>>,
    client: Option<axum::Extension<super::ClientAddr>>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let ledger = ledger_of(site.as_deref());
    let client = client_of(client.as_deref());
    let result = bridge::password(&app, &ledger, &form.name, &form.password, &client).await;
    let next = safe_next(form.next.as_deref());
    let device = device_of(&app, site.as_deref(), &headers).await;
    signed_in_or_again(ctx, result, next, device, form.name, String::new())
}

async fn phone(
    State(app): State<App>,
    site: Option<axum::Extension<Site>>,
    client: Option<axum::Extension<super::ClientAddr>>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<PhoneForm>,
) -> Response {
    let ledger = ledger_of(site.as_deref());
    let client = client_of(client.as_deref());
    let remember = form.remember.is_some();
    let result = bridge::phone(&app, &ledger, &form.phone, &form.pin, remember, &client).await;
    let next = safe_next(form.next.as_deref());
    let device = device_of(&app, site.as_deref(), &headers).await;
    signed_in_or_again(ctx, result, next, device, String::new(), form.phone)
}

async fn clerk(
    State(app): State<App>,
    site: Option<axum::Extension<Site>>,
    client: Option<axum::Extension<super::ClientAddr>>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<ClerkForm>,
) -> Response {
    let ledger = ledger_of(site.as_deref());
    let client = client_of(client.as_deref());
    let device = cookie_value(&headers, DEVICE_COOKIE)
        .unwrap_or("")
        .to_owned();
    let result = bridge::clerk(&app, &ledger, &device, &form.name, &form.pin, &client).await;
    let device = device_of(&app, site.as_deref(), &headers).await;
    signed_in_or_again(
        ctx,
        result,
        "/till".to_owned(),
        device,
        form.name,
        String::new(),
    )
}

async fn signout(State(app): State<App>, mut ctx: Ctx, headers: HeaderMap) -> Response {
    if let Some(value) = cookie_value(&headers, session_name(ctx.secure)) {
        bridge::sign_out(&app, value).await;
    }
    let gone = ctx.cookie(session_name(ctx.secure), "", Some(0));
    ctx.set_cookie(gone);
    ctx.redirect("/signin")
}

#[derive(askama::Template)]
#[template(path = "signed_in.html")]
struct SignedInPage<'a> {
    ctx: &'a Ctx,
    name: String,
    role: &'static str,
}

async fn signed_in(ctx: Ctx) -> Response {
    done(signed_in_inner(ctx))
}

fn signed_in_inner(ctx: Ctx) -> PageResult {
    let Some(v) = ctx.visitor.clone() else {
        return Err(Box::new((ctx, PageError::SignIn)));
    };
    let page = SignedInPage {
        ctx: &ctx,
        name: v.name,
        role: v.principal.role.as_str(),
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

// ---- The resident's printed sign-in link ----

#[derive(askama::Template)]
#[template(path = "link.html")]
struct LinkPage<'a> {
    ctx: &'a Ctx,
    action: String,
    refusal: Option<String>,
}

/// Opening the link only shows a button: link previews and prefetching browsers must not use
/// up a one-time link.
async fn link_page(ctx: Ctx, Path(secret): Path<String>) -> Response {
    let page = LinkPage {
        ctx: &ctx,
        action: format!("/r/{}", super::urlencode(&secret)),
        refusal: None,
    };
    let html = askama::Template::render(&page);
    drop(page);
    ctx.html(html)
}

#[derive(Deserialize)]
struct LinkForm {
    remember: Option<String>,
}

async fn link(
    State(app): State<App>,
    site: Option<axum::Extension<Site>>,
    client: Option<axum::Extension<super::ClientAddr>>,
    mut ctx: Ctx,
    Path(secret): Path<String>,
    Form(form): Form<LinkForm>,
) -> Response {
    let ledger = ledger_of(site.as_deref());
    let client = client_of(client.as_deref());
    let remember = form.remember.is_some();
    match bridge::link(&app, &ledger, &secret, remember, &client).await {
        Ok(session) => {
            let cookie = ctx.cookie(
                session_name(ctx.secure),
                &session.value,
                session.max_age_seconds,
            );
            ctx.set_cookie(cookie);
            ctx.redirect("/me")
        }
        Err(error) => {
            let page = LinkPage {
                ctx: &ctx,
                action: format!("/r/{}", super::urlencode(&secret)),
                refusal: Some(super::sentence(ctx.lang, &error)),
            };
            let html = askama::Template::render(&page);
            drop(page);
            ctx.html_status(axum::http::StatusCode::UNAUTHORIZED, html)
        }
    }
}

// ---- Setting a password from a one-time link ----

#[derive(askama::Template)]
#[template(path = "set_password.html")]
struct SetPasswordPage<'a> {
    ctx: &'a Ctx,
    action: String,
    refusal: Option<String>,
    done: bool,
}

async fn set_password_page(ctx: Ctx, Path(secret): Path<String>) -> Response {
    let page = SetPasswordPage {
        ctx: &ctx,
        action: format!("/set-password/{}", super::urlencode(&secret)),
        refusal: None,
        done: false,
    };
    let html = askama::Template::render(&page);
    drop(page);
    ctx.html(html)
}

#[derive(Deserialize)]
struct SetPasswordForm {
    password: String,
}

async fn set_password(
    State(app): State<App>,
    site: Option<axum::Extension<Site>>,
    ctx: Ctx,
    Path(secret): Path<String>,
    Form(form): Form<SetPasswordForm>,
) -> Response {
    let ledger = ledger_of(site.as_deref());
    let result = bridge::set_password(&app, &ledger, &secret, &form.password).await;
    let page = SetPasswordPage {
        ctx: &ctx,
        action: format!("/set-password/{}", super::urlencode(&secret)),
        refusal: result.as_ref().err().map(|e| super::sentence(ctx.lang, e)),
        done: result.is_ok(),
    };
    let html = askama::Template::render(&page);
    drop(page);
    ctx.html(html)
}

// ---- Pairing a till device ----

#[derive(askama::Template)]
#[template(path = "pair.html")]
struct PairPage<'a> {
    ctx: &'a Ctx,
    action: String,
    refusal: Option<String>,
    done: bool,
}

async fn pair_page(ctx: Ctx, Path(secret): Path<String>) -> Response {
    let page = PairPage {
        ctx: &ctx,
        action: format!("/till/pair/{}", super::urlencode(&secret)),
        refusal: None,
        done: false,
    };
    let html = askama::Template::render(&page);
    drop(page);
    ctx.html(html)
}

#[derive(Deserialize)]
struct PairForm {
    label: String,
}

/// How long a till device stays paired in the browser (until unpaired on the server).
const DEVICE_COOKIE_SECONDS: i64 = 400 * 24 * 3600;

async fn pair(
    State(app): State<App>,
    site: Option<axum::Extension<Site>>,
    mut ctx: Ctx,
    Path(secret): Path<String>,
    Form(form): Form<PairForm>,
) -> Response {
    let ledger = ledger_of(site.as_deref());
    let result = bridge::pair(&app, &ledger, &secret, &form.label).await;
    if let Ok(device) = &result {
        let cookie = ctx.cookie(DEVICE_COOKIE, device, Some(DEVICE_COOKIE_SECONDS));
        ctx.set_cookie(cookie);
    }
    let page = PairPage {
        ctx: &ctx,
        action: format!("/till/pair/{}", super::urlencode(&secret)),
        refusal: result.as_ref().err().map(|e| super::sentence(ctx.lang, e)),
        done: result.is_ok(),
    };
    let html = askama::Template::render(&page);
    drop(page);
    ctx.html(html)
}

/// The calls into the sign-in service ([`crate::session::Sessions`]), in the shape the pages
/// need: a cookie value, how long the browser keeps it, and where the person starts.
mod bridge {
    use crate::app::App;
    use crate::auth::Role;
    use crate::error::Error;
    use crate::session::NewSession as Opened;

    use super::Visitor;

    pub struct NewSession {
        pub value: String,
        /// None: the cookie ends with the browser (only a remembered phone keeps it).
        pub max_age_seconds: Option<i64>,
        pub role: Role,
    }

    fn cookie_of(app: &App, opened: Opened) -> NewSession {
        let s = opened.signed_in;
        let max_age_seconds = s
            .remember
            .then(|| (s.expires_at_micros - app.clock.now_micros()).div_euclid(1_000_000));
        NewSession {
            value: opened.cookie,
            max_age_seconds,
            role: s.principal.role,
        }
    }

    pub async fn visitor(app: &App, value: &str) -> Option<Visitor> {
        let signed_in = app.sessions.principal_of_session(value).await.ok()??;
        Some(Visitor {
            principal: signed_in.principal,
            name: signed_in.name,
        })
    }

    pub async fn password(
        app: &App,
        ledger: &str,
        name: &str,
        password: &str,
        client: &str,
    ) -> Result<NewSession, Error> {
        let opened = app
            .sessions
            .sign_in_password(ledger, name, password, client)
            .await?;
        Ok(cookie_of(app, opened))
    }

    pub async fn phone(
        app: &App,
        ledger: &str,
        phone: &str,
        pin: &str,
        remember: bool,
        client: &str,
    ) -> Result<NewSession, Error> {
        let opened = app
            .sessions
            .sign_in_phone(ledger, phone, pin, remember, client)
            .await?;
        Ok(cookie_of(app, opened))
    }

    pub async fn clerk(
        app: &App,
        ledger: &str,
        device: &str,
        name: &str,
        pin: &str,
        client: &str,
    ) -> Result<NewSession, Error> {
        let opened = app
            .sessions
            .sign_in_clerk(ledger, device, name, pin, client)
            .await?;
        Ok(cookie_of(app, opened))
    }

    pub async fn link(
        app: &App,
        ledger: &str,
        secret: &str,
        remember: bool,
        client: &str,
    ) -> Result<NewSession, Error> {
        let opened = app
            .sessions
            .sign_in_link(ledger, secret, remember, client)
            .await?;
        Ok(cookie_of(app, opened))
    }

    pub async fn sign_out(app: &App, value: &str) {
        if let Err(error) = app.sessions.sign_out(value).await {
            tracing::warn!(code = error.code.code(), "sign-out failed");
        }
    }

    pub async fn set_password(
        app: &App,
        ledger: &str,
        secret: &str,
        password: &str,
    ) -> Result<(), Error> {
        app.sessions
            .set_password(ledger, secret, password)
            .await
            .map(|_| ())
    }

    pub async fn pair(app: &App, ledger: &str, secret: &str, label: &str) -> Result<String, Error> {
        let label = label.trim();
        let label = (!label.is_empty()).then_some(label);
        Ok(app
            .sessions
            .redeem_pairing_link(ledger, secret, label)
            .await?
            .secret)
    }

    /// The clerks who can sign in on this device, to pick from.
    pub async fn clerks(app: &App, ledger: &str, device: &str) -> Vec<String> {
        app.sessions
            .till_clerks(ledger, device)
            .await
            .unwrap_or_default()
    }
}
