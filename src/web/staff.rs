//! What staff print for a resident who signs in by phone: a one-time sign-in QR code (the
//! resident scans it with the phone's camera and is in, with no password to remember). The
//! pages for the rest of the staff's work come with the staff pages.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use uuid::Uuid;

use super::resident::try_page;
use super::{done, Ctx, Lang, PageResult, M};
use crate::app::App;
use crate::error::{Error, ErrorCode};

pub fn routes() -> Router<App> {
    Router::new().route("/staff/sign-in-card", get(card_page).post(card))
}

#[derive(serde::Deserialize)]
struct Which {
    resident: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "sign_in_card.html")]
struct CardPage<'a> {
    ctx: &'a Ctx,
    resident: String,
    name: String,
    /// After the POST: the link and its QR code.
    link: Option<(String, String)>,
    expires: String,
}

fn resident_id(text: Option<&str>) -> Result<Uuid, Error> {
    text.and_then(|t| Uuid::parse_str(t.trim()).ok())
        .ok_or_else(|| Error::bare(ErrorCode::UnknownResident))
}

async fn card_page(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    done(show(app, ctx, q.resident, None, String::new()).await)
}

async fn card(
    State(app): State<App>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<Which>,
) -> Response {
    done(make(app, ctx, headers, q.resident).await)
}

async fn make(app: App, ctx: Ctx, headers: HeaderMap, resident: Option<String>) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let id = try_page!(ctx, resident_id(resident.as_deref()));
    let link = try_page!(ctx, app.sessions.resident_sign_in_link(&p, id).await);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let scheme = if ctx.secure { "https" } else { "http" };
    let url = format!("{scheme}://{host}/r/{}", link.secret);
    let qr = crate::redeem::receipt::qr_svg(&url).unwrap_or_default();
    let expires = super::i18n::day_words(ctx.lang, crate::calendar::day_of(link.expires_at_micros));
    show(app, ctx, resident, Some((url, qr)), expires).await
}

async fn show(
    app: App,
    ctx: Ctx,
    resident: Option<String>,
    link: Option<(String, String)>,
    expires: String,
) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let id = try_page!(ctx, resident_id(resident.as_deref()));
    let r = try_page!(ctx, app.earning.resident(&p, id).await);
    let page = CardPage {
        ctx: &ctx,
        resident: id.to_string(),
        name: r.name,
        link,
        expires,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}
