//! The resident's pages, phone first: the balance in large digits, the code to show at the
//! till (like a 付款码: a barcode, a QR code and the digits, refreshing by itself and made on
//! the phone so it works offline), the history in plain words, expiring points.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use uuid::Uuid;

use super::i18n::{day_words, expiring_words, month_words, plain_number, signed_points};
use super::{done, Ctx, Lang, PageError, PageResult, M};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::calendar::day_of;
use crate::error::Error;
use crate::ledger::EntryKind;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/me", get(home))
        .route("/me/code", get(code_page))
        .route("/me/code/status", get(code_status))
        .route("/me/history", get(history))
        .route("/me/receipts/{entry}", get(receipt))
        .route("/me/shops", get(shops))
}

/// The resident a session stands for; anyone else gets "not found".
fn resident_of(p: &Principal) -> Result<Uuid, PageError> {
    if p.role != Role::Resident {
        return Err(PageError::Refused(Error::not_found()));
    }
    p.scope
        .as_deref()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| PageError::Refused(Error::not_found()))
}

macro_rules! try_page {
    ($ctx:ident, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(error) => return Err(Box::new(($ctx, $crate::web::PageError::from(error)))),
        }
    };
}
pub(crate) use try_page;

/// The signed-in resident's id, or the sign-in page / not found.
fn me(ctx: &Ctx) -> Result<(Principal, Uuid), PageError> {
    let p = ctx.principal()?.clone();
    let id = resident_of(&p)?;
    Ok((p, id))
}

#[derive(askama::Template)]
#[template(path = "me.html")]
struct HomePage<'a> {
    ctx: &'a Ctx,
    points: String,
    hours: String,
    expiring: Vec<String>,
}

async fn home(State(app): State<App>, ctx: Ctx) -> Response {
    done(home_inner(app, ctx).await)
}

async fn home_inner(app: App, ctx: Ctx) -> PageResult {
    let (p, id) = try_page!(ctx, me(&ctx));
    let balance = try_page!(ctx, app.earning.balance(&p, id).await);
    let page = HomePage {
        ctx: &ctx,
        points: plain_number(balance.points_minor),
        hours: plain_number(balance.hours_minor),
        expiring: balance
            .expiring
            .iter()
            .map(|e| expiring_words(ctx.lang, e.points_minor, e.last_valid_day))
            .collect(),
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

#[derive(askama::Template)]
#[template(path = "code.html")]
struct CodePage<'a> {
    ctx: &'a Ctx,
    /// The digits grouped in fives for reading aloud (as code.js groups them).
    grouped: String,
    digits: String,
    qr: String,
    barcode: String,
    seconds_left: i64,
    points: String,
    /// For the page's own generator: the secret, the number, the last step used, the time.
    secret: String,
    number: String,
    last_used: String,
    server_now: i64,
}

/// Digits in groups of five: "72305 11704 21536 97121 95956".
pub fn grouped(digits: &str) -> String {
    let chars: Vec<char> = digits.chars().collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn code_page(State(app): State<App>, ctx: Ctx) -> Response {
    done(code_inner(app, ctx).await)
}

async fn code_inner(app: App, ctx: Ctx) -> PageResult {
    let (p, id) = try_page!(ctx, me(&ctx));
    let code = match app.redemption.current_code(&p, id).await {
        Ok(code) => code,
        Err(e) if e.code == crate::error::ErrorCode::CredentialRevoked => {
            let html = askama::Template::render(&NoCodePage { ctx: &ctx });
            return Ok(ctx.html(html));
        }
        Err(e) => return Err(Box::new((ctx, e.into()))),
    };
    let secret = try_page!(ctx, app.redemption.phone_secret(&p, id).await);
    let balance = try_page!(ctx, app.earning.balance(&p, id).await);
    let qr = crate::redeem::receipt::qr_svg(&code.code).unwrap_or_default();
    let barcode = super::till::code128_svg(&code.code);
    let page = CodePage {
        ctx: &ctx,
        grouped: grouped(&code.code),
        digits: code.code.clone(),
        qr,
        barcode,
        seconds_left: code.expires_in_seconds,
        points: plain_number(balance.points_minor),
        secret,
        number: code.number.clone(),
        last_used: code
            .last_used_step
            .map(|s| s.to_string())
            .unwrap_or_default(),
        server_now: app.clock.now_micros().div_euclid(1_000_000),
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

#[derive(askama::Template)]
#[template(path = "no_code.html")]
struct NoCodePage<'a> {
    ctx: &'a Ctx,
}

/// What the code page polls: the balance, so it notices a redemption and can say 兑换成功.
#[derive(serde::Serialize)]
struct CodeStatus {
    points: String,
    step: i64,
    last_used_step: Option<i64>,
}

async fn code_status(State(app): State<App>, ctx: Ctx) -> Response {
    let Ok((p, id)) = me(&ctx) else {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    };
    let (balance, code) = match (
        app.earning.balance(&p, id).await,
        app.redemption.current_code(&p, id).await,
    ) {
        (Ok(b), Ok(c)) => (b, c),
        _ => return axum::http::StatusCode::NOT_FOUND.into_response(),
    };
    Json(CodeStatus {
        points: plain_number(balance.points_minor),
        step: code.step,
        last_used_step: code.last_used_step,
    })
    .into_response()
}

/// One month of history.
struct Month {
    title: String,
    lines: Vec<Line>,
}

struct Line {
    what: String,
    when: String,
    points: String,
    receipt: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "history.html")]
struct HistoryPage<'a> {
    ctx: &'a Ctx,
    months: Vec<Month>,
    more: Option<String>,
}

#[derive(serde::Deserialize)]
struct Before {
    before: Option<i64>,
}

/// Lines a history page shows.
const HISTORY_PAGE: i64 = 50;

async fn history(
    State(app): State<App>,
    ctx: Ctx,
    axum::extract::Query(q): axum::extract::Query<Before>,
) -> Response {
    done(history_inner(app, ctx, q.before).await)
}

/// The rule's name in `lang` from an earning's memo "中文名 / English name" (the Chinese one
/// when the English is empty).
fn rule_name(lang: Lang, memo: &str) -> Option<String> {
    let (zh, en) = memo.split_once(" / ")?;
    let (zh, en) = (zh.trim(), en.trim());
    let name = if lang == Lang::En && !en.is_empty() {
        en
    } else {
        zh
    };
    (!name.is_empty()).then(|| name.to_owned())
}

/// A history line in plain words: "入户走访 2.5小时", "爱心粮油店 大米5kg×1".
pub(super) fn what_of(lang: Lang, item: &crate::earning::service::HistoryItem) -> String {
    let zh = lang == Lang::Zh;
    match item.kind {
        EntryKind::Earn => {
            // An approved record's memo names its rule in both languages ("入户走访 / Home
            // visits"); the activity is the rule's category code ("visit"), which no resident
            // should have to read.
            let activity = rule_name(lang, &item.memo)
                .or_else(|| item.activity.clone())
                .or_else(|| item.rule.clone())
                .unwrap_or_else(|| item.memo.clone());
            let hours = plain_number(item.hours_minor.abs());
            if zh {
                format!("{activity} {hours}小时")
            } else {
                format!("{activity} {hours} h")
            }
        }
        EntryKind::Redeem => {
            let shop = item.shop.clone().unwrap_or_default();
            let goods = item.memo.trim_start_matches("兑换").trim();
            format!("{shop} {goods}")
        }
        EntryKind::Refund => {
            let shop = item.shop.clone().unwrap_or_default();
            if zh {
                format!("{shop} 退货")
            } else {
                format!("{shop} refund")
            }
        }
        EntryKind::Expire => if zh { "积分到期" } else { "Points expired" }.to_owned(),
        _ => {
            if zh {
                format!("更正 {}", item.memo)
            } else {
                format!("Correction {}", item.memo)
            }
        }
    }
}

async fn history_inner(app: App, ctx: Ctx, before: Option<i64>) -> PageResult {
    let (p, id) = try_page!(ctx, me(&ctx));
    let (items, more) = try_page!(ctx, app.earning.history(&p, id, before, HISTORY_PAGE).await);
    let mut months: Vec<Month> = Vec::new();
    for item in &items {
        let day = day_of(item.posted_at_micros);
        let title = month_words(ctx.lang, day.year(), day.month());
        let line = Line {
            what: what_of(ctx.lang, item),
            when: day_words(ctx.lang, day),
            points: signed_points(item.points_minor),
            receipt: matches!(item.kind, EntryKind::Redeem | EntryKind::Refund)
                .then(|| format!("/me/receipts/{}", item.entry_id)),
        };
        match months.last_mut() {
            Some(m) if m.title == title => m.lines.push(line),
            _ => months.push(Month {
                title,
                lines: vec![line],
            }),
        }
    }
    let more = more
        .then(|| {
            items
                .last()
                .map(|i| format!("/me/history?before={}", i.seq))
        })
        .flatten();
    let page = HistoryPage {
        ctx: &ctx,
        months,
        more,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

async fn receipt(State(app): State<App>, ctx: Ctx, Path(entry): Path<Uuid>) -> Response {
    done(receipt_inner(app, ctx, entry).await)
}

async fn receipt_inner(app: App, ctx: Ctx, entry: Uuid) -> PageResult {
    let (p, _) = try_page!(ctx, me(&ctx));
    let exchange = try_page!(ctx, app.redemption.receipt_of_entry(&p, entry).await);
    super::till::receipt_page(ctx, exchange, None, false)
}

/// A love shop as the resident's page lists it.
struct ShopView {
    name: String,
    offers: Vec<(String, String)>,
}

#[derive(askama::Template)]
#[template(path = "shops.html")]
struct ShopsPage<'a> {
    ctx: &'a Ctx,
    shops: Vec<ShopView>,
}

async fn shops(State(app): State<App>, ctx: Ctx) -> Response {
    done(shops_inner(app, ctx).await)
}

async fn shops_inner(app: App, ctx: Ctx) -> PageResult {
    let (p, id) = try_page!(ctx, me(&ctx));
    let found = try_page!(ctx, app.redemption.shops_for_resident(&p, id).await);
    let en = ctx.lang == Lang::En;
    let shops = found
        .into_iter()
        .map(|(shop, items)| ShopView {
            name: if en && !shop.name_en.is_empty() {
                shop.name_en
            } else {
                shop.name_zh
            },
            offers: items
                .into_iter()
                .map(|i| {
                    let name = if en && !i.name_en.is_empty() {
                        i.name_en
                    } else {
                        i.name_zh
                    };
                    (name, plain_number(i.price_minor))
                })
                .collect(),
        })
        .collect();
    let page = ShopsPage { ctx: &ctx, shops };
    let html = askama::Template::render(&page);
    Ok(ctx.html(html))
}
