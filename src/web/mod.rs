//! The web pages: server-rendered HTML for the till and the resident's phone, from the same
//! binary and over the same services as the API. A page resolves the visitor's session to the
//! same [`Principal`] a token stands for and calls the services with it, so every rule and every
//! authorization check stays in the services.
//!
//! - words come from [`i18n`] (Chinese first; `?lang=`, then the `lang` cookie, then
//!   `Accept-Language`); 长辈模式 (`?mode=large`, remembered in the `mode` cookie) enlarges text
//!   and every control;
//! - every file a page loads is embedded ([`assets`]); the CSP allows nothing else;
//! - pages work without JavaScript (forms, post/redirect/get); scripts only improve them;
//! - every state-changing form is checked against cross-site requests ([`same_site_only`]).

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::app::App;
use crate::auth::{Principal, Role};
use crate::error::Error;

mod admin;
pub mod assets;
mod auditor;
mod check;
pub mod i18n;
mod owner;
mod records;
mod refusal;
mod resident;
mod rules;
mod signin;
mod staff;
mod till;

pub use i18n::{Lang, M};
pub use refusal::sentence;
pub use signin::Site;

/// The Content-Security-Policy of every page: nothing from anywhere else; scripts only from
/// this origin's files (and WebAssembly for the camera's barcode decoder); no inline script or
/// style; no framing; forms post only here.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Cookie names.
pub const SESSION_COOKIE: &str = "aixin_session";
pub const DEVICE_COOKIE: &str = "aixin_till";
const LANG_COOKIE: &str = "lang";
const MODE_COOKIE: &str = "mode";
const PAPER_COOKIE: &str = "paper";
/// How long a preference (language, mode, paper) is remembered.
const PREFERENCE_SECONDS: i64 = 400 * 24 * 3600;

/// Every page route; merged into [`crate::http::router`].
pub fn routes() -> Router<App> {
    Router::new()
        .route("/assets/{version}/{*name}", get(assets::serve))
        .merge(signin::routes())
        .merge(resident::routes())
        .merge(till::routes())
        .merge(staff::routes())
        .merge(records::routes())
        .merge(owner::routes())
        .merge(auditor::routes())
        .merge(admin::routes())
        .merge(check::routes())
        .merge(rules::routes())
        .layer(axum::middleware::from_fn(same_site_only))
        .layer(axum::middleware::from_fn(page_headers))
        .layer(tower_http::compression::CompressionLayer::new())
}

/// Who is signed in on this browser, as the services know them.
#[derive(Clone, Debug)]
pub struct Visitor {
    pub principal: Principal,
    /// The name shown in the page's bar.
    pub name: String,
}

/// What every page knows about its request: language, mode, who is signed in, and the
/// preference cookies to set on the answer.
pub struct Ctx {
    pub lang: Lang,
    pub large: bool,
    pub visitor: Option<Visitor>,
    /// The path of this request (for the language and mode switches).
    pub path: String,
    /// Whether the request came over TLS (cookies then get `Secure` and the `__Host-` prefix).
    pub secure: bool,
    /// The till's receipt paper width in millimetres (58 or 80).
    pub paper: u16,
    cookies: Vec<String>,
}

impl Ctx {
    pub fn t(&self, m: impl i18n::Text) -> &'static str {
        m.text(self.lang)
    }

    pub fn asset(&self, name: &str) -> String {
        assets::path(name)
    }

    /// The link that shows this page in the other language.
    pub fn lang_link(&self) -> String {
        format!(
            "{}{}lang={}",
            self.path,
            self.query_sep(),
            self.lang.other().code()
        )
    }

    /// `&` when the path already carries a query (a page that keeps one, such as the shop an
    /// administrator looks at), else `?`.
    fn query_sep(&self) -> char {
        if self.path.contains('?') {
            '&'
        } else {
            '?'
        }
    }

    /// The link that switches between 长辈模式 and the standard mode.
    pub fn mode_link(&self) -> String {
        let mode = if self.large { "standard" } else { "large" };
        format!("{}{}mode={mode}", self.path, self.query_sep())
    }

    pub fn other_lang(&self) -> Lang {
        self.lang.other()
    }

    /// The signed-in principal, or the sign-in page.
    pub fn principal(&self) -> Result<&Principal, PageError> {
        self.visitor
            .as_ref()
            .map(|v| &v.principal)
            .ok_or(PageError::SignIn)
    }

    /// Adds a `Set-Cookie` to the answer.
    pub fn set_cookie(&mut self, cookie: String) {
        self.cookies.push(cookie);
    }

    /// A cookie with this site's flags: `HttpOnly`, `SameSite=Lax`, `Path=/`, and under TLS
    /// `Secure` (the session cookie then also takes the `__Host-` prefix, see [`session_name`]).
    pub fn cookie(&self, name: &str, value: &str, max_age_seconds: Option<i64>) -> String {
        let mut c = cookie::Cookie::build((name.to_owned(), value.to_owned()))
            .path("/")
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .secure(self.secure);
        if let Some(seconds) = max_age_seconds {
            c = c.max_age(cookie::time::Duration::seconds(seconds));
        }
        c.build().to_string()
    }

    /// Answers a rendered page (see the handlers: render with `&ctx`, then hand the text here).
    pub fn html(self, rendered: askama::Result<String>) -> Response {
        self.html_status(StatusCode::OK, rendered)
    }

    pub fn html_status(self, status: StatusCode, rendered: askama::Result<String>) -> Response {
        match rendered {
            Ok(html) => self.finish((status, Html(html)).into_response()),
            Err(error) => {
                tracing::error!(%error, "a page failed to render");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }

    /// A redirect after a form (post/redirect/get), keeping this context's cookies.
    pub fn redirect(self, to: &str) -> Response {
        self.finish(Redirect::to(to).into_response())
    }

    fn finish(self, mut response: Response) -> Response {
        for cookie in self.cookies {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }
}

/// The session cookie's name: `__Host-aixin_session` under TLS (bound to this host, `Secure`,
/// `Path=/`), plain `aixin_session` over `http://127.0.0.1`.
pub fn session_name(secure: bool) -> &'static str {
    if secure {
        "__Host-aixin_session"
    } else {
        SESSION_COOKIE
    }
}

/// Marks requests that came over TLS (inserted by `aixin serve --tls-cert`).
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// The peer address of the connection (inserted by `aixin serve`), which sign-in attempts are
/// counted against.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::SocketAddr);

pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<App> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Ctx, Self::Rejection> {
        let secure = parts.extensions.get::<OverTls>().is_some();
        let query = parts.uri.query();
        let mut cookies = Vec::new();
        let mut ctx_cookie = |name: &str, value: &str| {
            let c = cookie::Cookie::build((name.to_owned(), value.to_owned()))
                .path("/")
                .same_site(cookie::SameSite::Lax)
                .secure(secure)
                .max_age(cookie::time::Duration::seconds(PREFERENCE_SECONDS));
            cookies.push(c.build().to_string());
        };
        let asked_lang = query_value(query, "lang").and_then(Lang::parse);
        if let Some(lang) = asked_lang {
            ctx_cookie(LANG_COOKIE, lang.code());
        }
        let lang = asked_lang
            .or_else(|| cookie_value(&parts.headers, LANG_COOKIE).and_then(Lang::parse))
            .or_else(|| {
                parts
                    .headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or(Lang::Zh);
        let asked_mode = query_value(query, "mode").filter(|m| matches!(*m, "large" | "standard"));
        if let Some(mode) = asked_mode {
            ctx_cookie(MODE_COOKIE, mode);
        }
        let large =
            asked_mode.or_else(|| cookie_value(&parts.headers, MODE_COOKIE)) == Some("large");
        let asked_paper = query_value(query, "paper").filter(|p| matches!(*p, "58" | "80"));
        if let Some(paper) = asked_paper {
            ctx_cookie(PAPER_COOKIE, paper);
        }
        let paper = match asked_paper.or_else(|| cookie_value(&parts.headers, PAPER_COOKIE)) {
            Some("80") => 80,
            _ => 58,
        };
        let visitor = match cookie_value(&parts.headers, session_name(secure)) {
            Some(value) => signin::visitor(app, value).await,
            None => None,
        };
        Ok(Ctx {
            lang,
            large,
            visitor,
            path: parts.uri.path().to_owned(),
            secure,
            paper,
            cookies,
        })
    }
}

/// Why a page could not be shown, rendered as a page that says what to do next.
#[derive(Debug)]
pub enum PageError {
    /// Nobody is signed in (or the session ended): the sign-in page.
    SignIn,
    /// The services refused.
    Refused(Error),
}

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        PageError::Refused(error)
    }
}

/// A page with the error's sentence and a way on.
#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: &'a Ctx,
    sentence: String,
    status: u16,
}

impl PageError {
    /// Renders the error in the visitor's language.
    pub fn page(self, ctx: Ctx) -> Response {
        match self {
            PageError::SignIn => {
                let to = format!("/signin?next={}", urlencode(&ctx.path));
                ctx.redirect(&to)
            }
            PageError::Refused(error) => {
                let status = error.code.status();
                let sentence = sentence(ctx.lang, &error);
                let page = ErrorPage {
                    ctx: &ctx,
                    sentence,
                    status: status.as_u16(),
                };
                let html = askama::Template::render(&page);
                drop(page);
                ctx.html_status(status, html)
            }
        }
    }
}

/// The answer of a page handler: the page, or the error rendered as one (boxed: a `Ctx` is
/// large, and the page path is the common one).
pub type PageResult = Result<Response, Box<(Ctx, PageError)>>;

/// Turns a handler's `Err((ctx, error))` into the error page.
pub fn done(result: PageResult) -> Response {
    match result {
        Ok(response) => response,
        Err(refused) => {
            let (ctx, error) = *refused;
            error.page(ctx)
        }
    }
}

/// Percent-encodes a path for a query value.
pub fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The page a role starts on.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Resident => "/me",
        Role::Shop | Role::Cashier => "/till",
        Role::Staff => "/staff",
        Role::Admin => "/admin",
        Role::Auditor => "/audit",
    }
}

/// Headers of every page and file: the CSP, a referrer for this origin only (links can carry
/// one-time secrets, which must not reach another site), the camera for this origin only, and
/// `no-store` for pages (they carry personal data).
///
/// `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` with
/// every form POST, and over plain `http://` to a LAN address (a shop's till) it sends no
/// `Sec-Fetch-Site` either, so [`same_site_only`] could not tell our own forms from another
/// site's and would refuse them all (seen in Chromium: pairing a till was refused).
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    set_page_headers(response.headers_mut());
    response
}

fn set_page_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=(), payment=()"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// Refuses (403) a state-changing request that another site made the browser send: the
/// browser's `Sec-Fetch-Site` must say `same-origin` (or `none`, typed by the user), and an
/// `Origin`, when sent, must be this host. Browsers send at least one of them on every POST;
/// a client that sends neither is not a browser acting for someone else. `Origin: null` (what a
/// browser sends for a cross-origin form under our `same-origin` referrer policy, or from a
/// sandboxed frame) is not this host, so it is refused.
pub async fn same_site_only(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| matches!(site, "same-origin" | "none"));
    let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            host.is_some() && origin_host == host
        }
    };
    if site_ok && origin_ok {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            Html(CROSS_SITE_REFUSED),
        )
            .into_response()
    }
}

const CROSS_SITE_REFUSED: &str = "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\">\
<title>403</title><p>这个请求来自别的网站，已拒绝，没有做任何改动。请回到爱心积分页面再操作。</p>\
<p lang=\"en\">This request came from another site and was refused; nothing was changed. \
Go back to the aixin page and try again there.</p></html>";

/// The page for a path no route has (the API's paths answer problem+json instead).
pub async fn not_found(ctx: Ctx) -> Response {
    let page = ErrorPage {
        sentence: ctx.t(M::NotFound).to_owned(),
        status: 404,
        ctx: &ctx,
    };
    let html = askama::Template::render(&page);
    drop(page);
    let mut response = ctx.html_status(StatusCode::NOT_FOUND, html);
    set_page_headers(response.headers_mut());
    response
}
