//! The till: basket first, then the scan completes the exchange (the 付款码 cashier flow).
//!
//! One form holds the basket (a quantity per catalogue item), the code field and the basket's
//! idempotency key, so a double Enter or a second scan of the same code posts once and shows
//! the same receipt. Without JavaScript the form works as it is (a scanner gun types the digits
//! and Enter); `till.js` adds big +/− buttons, the running total, submitting a full code that
//! arrives without Enter, full-width digit normalising, the camera and the keypad.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use uuid::Uuid;

use super::i18n::{day_words, plain_number};
use super::resident::try_page;
use super::{done, Ctx, Lang, PageError, PageResult, M};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::calendar::day_of;
use crate::error::{Error, ErrorCode};
use crate::redeem::service::{Exchange, Shown};
use crate::store::redeem::{Item, Shop};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/till", get(till))
        .route("/till/redeem", post(redeem))
        .route("/till/card", post(card))
        .route("/till/receipts/{id}", get(receipt))
        .route("/till/today", get(today))
        .route("/till/refund", get(refund_page).post(refund))
}

/// Most distinct items one basket may hold (the service checks its own bound too).
const BASKET_LINES_MAX: usize = 64;
/// Most of one item in a basket.
const QUANTITY_MAX: u32 = 999;

/// The shop a till session works for.
fn shop_of(p: &Principal) -> Result<Uuid, PageError> {
    if !matches!(p.role, Role::Shop | Role::Cashier) {
        return Err(PageError::Refused(Error::not_found()));
    }
    p.scope
        .as_deref()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| PageError::Refused(Error::not_found()))
}

fn clerk(ctx: &Ctx) -> Result<(Principal, Uuid), PageError> {
    let p = ctx.principal()?.clone();
    let shop = shop_of(&p)?;
    Ok((p, shop))
}

/// One catalogue item as the till shows it.
pub struct TillItem {
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub price: String,
    pub price_minor: i64,
    pub stock: Option<i64>,
    pub cap_day: Option<i64>,
    pub quantity: u32,
    pub field: String,
}

#[derive(askama::Template)]
#[template(path = "till.html")]
struct TillPage<'a> {
    ctx: &'a Ctx,
    shop: String,
    items: Vec<TillItem>,
    key: String,
    total: String,
    /// The code layout, for the page's check that a scanned code is whole.
    code_digits: usize,
    code_prefix: &'static str,
    /// After a refusal, its sentence. The code typed before it is never kept: a presented
    /// code is spent.
    refusal: Option<String>,
    /// After a refusal that came once the code or card was accepted: the resident's masked
    /// name and points (nothing else about them).
    presented: Option<String>,
    /// The shop's owner: a link to the owner pages.
    owner: bool,
}

/// The form's name for an item's quantity.
fn field_of(sku: &str) -> String {
    format!("q.{sku}")
}

fn item_name(lang: Lang, item: &Item) -> String {
    match lang {
        Lang::En if !item.name_en.is_empty() => item.name_en.clone(),
        _ => item.name_zh.clone(),
    }
}

fn shop_name(lang: Lang, shop: &Shop) -> String {
    match lang {
        Lang::En if !shop.name_en.is_empty() => shop.name_en.clone(),
        _ => shop.name_zh.clone(),
    }
}

/// A new idempotency key for the next basket.
fn new_key(app: &App) -> String {
    format!("till-{}", app.entropy.uuid())
}

async fn till(State(app): State<App>, ctx: Ctx) -> Response {
    done(show_till(app, ctx, Vec::new(), None, None).await)
}

/// The till with `basket` chosen and, after a refusal, its sentence.
async fn show_till(
    app: App,
    ctx: Ctx,
    basket: Vec<(String, u32)>,
    refusal: Option<String>,
    presented: Option<String>,
) -> PageResult {
    let (p, shop_id) = try_page!(ctx, clerk(&ctx));
    let (shop, catalogue) = try_page!(ctx, app.redemption.till(&p).await);
    let owner = app.redemption.is_owner(&p, shop_id).await.unwrap_or(false);
    let items: Vec<TillItem> = catalogue
        .into_iter()
        .map(|(item, stock)| {
            let quantity = basket
                .iter()
                .find(|(sku, _)| *sku == item.sku)
                .map_or(0, |(_, q)| *q);
            TillItem {
                name: item_name(ctx.lang, &item),
                unit: item.unit.clone(),
                price: plain_number(item.price_minor),
                price_minor: item.price_minor,
                stock,
                cap_day: item.cap_day,
                quantity,
                field: field_of(&item.sku),
                sku: item.sku,
            }
        })
        .collect();
    let total: i64 = items
        .iter()
        .map(|i| i.price_minor * i64::from(i.quantity))
        .sum();
    let status = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = TillPage {
        ctx: &ctx,
        shop: shop_name(ctx.lang, &shop),
        items,
        key: new_key(&app),
        total: plain_number(total),
        code_digits: crate::ledger::code::CODE_DIGITS,
        code_prefix: crate::ledger::code::CODE_PREFIX,
        refusal,
        presented,
        owner,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html_status(status, html))
}

/// The basket and the shown code or card of a till form.
struct TillForm {
    key: String,
    basket: Vec<(String, u32)>,
    code: String,
    card: String,
    pin: String,
}

/// Digits as a scanner or a person typed them: full-width digits (U+FF10–FF19) become ASCII;
/// spaces and dashes (from reading the grouped digits aloud) are dropped.
pub fn normalise_digits(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            '\u{FF10}'..='\u{FF19}' => char::from_u32(c as u32 - 0xFF10 + '0' as u32),
            ' ' | '-' | '\u{3000}' | '\t' => None,
            other => Some(other),
        })
        .take(64)
        .collect()
}

fn parse_form(fields: Vec<(String, String)>) -> Result<TillForm, Error> {
    let mut form = TillForm {
        key: String::new(),
        basket: Vec::new(),
        code: String::new(),
        card: String::new(),
        pin: String::new(),
    };
    for (name, value) in fields.into_iter().take(BASKET_LINES_MAX + 8) {
        match name.as_str() {
            "key" => form.key = value.chars().take(128).collect(),
            "code" => form.code = normalise_digits(&value),
            "card" => form.card = normalise_digits(&value),
            "pin" => form.pin = normalise_digits(&value),
            _ => {
                if let Some(sku) = name.strip_prefix("q.") {
                    let value = normalise_digits(&value);
                    let quantity: u32 = if value.is_empty() {
                        0
                    } else {
                        value
                            .parse()
                            .ok()
                            .filter(|q| *q <= QUANTITY_MAX)
                            .ok_or_else(|| Error::bare(ErrorCode::BasketInvalid))?
                    };
                    if quantity > 0 && !form.basket.iter().any(|(s, _)| s == sku) {
                        form.basket.push((sku.to_owned(), quantity));
                    }
                }
            }
        }
    }
    Ok(form)
}

async fn redeem(
    State(app): State<App>,
    ctx: Ctx,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    done(redeem_inner(app, ctx, fields).await)
}

async fn redeem_inner(app: App, ctx: Ctx, fields: Vec<(String, String)>) -> PageResult {
    let (p, _) = try_page!(ctx, clerk(&ctx));
    let form = match parse_form(fields) {
        Ok(form) => form,
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            return show_till(app, ctx, Vec::new(), Some(sentence), None).await;
        }
    };
    let shown = if !form.card.is_empty() {
        Shown::Card {
            number: form.card.clone(),
            pin: form.pin.clone(),
        }
    } else {
        Shown::Code(form.code.clone())
    };
    let key = if form.key.is_empty() {
        new_key(&app)
    } else {
        form.key.clone()
    };
    match app
        .redemption
        .redeem_at_till(&p, &key, shown, &form.basket)
        .await
    {
        Ok(exchange) => {
            let to = format!("/till/receipts/{}", exchange.signed.receipt.id);
            Ok(ctx.redirect(&to))
        }
        Err(refused) => {
            let sentence = super::sentence(ctx.lang, &refused.error);
            let presented = refused
                .presented
                .as_ref()
                .map(|r| super::owner::presented_line(ctx.lang, r));
            show_till(app, ctx, form.basket, Some(sentence), presented).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "handover.html")]
struct HandOverPage<'a> {
    ctx: &'a Ctx,
    key: String,
    card: String,
    basket: Vec<(String, u32)>,
    total: String,
}

/// The card path's second step: the basket and card number kept, the PIN typed by the
/// resident on a screen that shows nothing else.
async fn card(
    State(app): State<App>,
    ctx: Ctx,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    done(card_inner(app, ctx, fields).await)
}

async fn card_inner(app: App, ctx: Ctx, fields: Vec<(String, String)>) -> PageResult {
    let (p, _) = try_page!(ctx, clerk(&ctx));
    let form = try_page!(ctx, parse_form(fields));
    if form.card.is_empty() || form.basket.is_empty() {
        let error = Error::bare(if form.basket.is_empty() {
            ErrorCode::BasketInvalid
        } else {
            ErrorCode::RedemptionCodeInvalid
        });
        let sentence = super::sentence(ctx.lang, &error);
        return show_till(app, ctx, form.basket, Some(sentence), None).await;
    }
    let (_, catalogue) = try_page!(ctx, app.redemption.till(&p).await);
    let total: i64 = form
        .basket
        .iter()
        .filter_map(|(sku, q)| {
            catalogue
                .iter()
                .find(|(i, _)| i.sku == *sku)
                .map(|(i, _)| i.price_minor * i64::from(*q))
        })
        .sum();
    let page = HandOverPage {
        ctx: &ctx,
        key: if form.key.is_empty() {
            new_key(&app)
        } else {
            form.key
        },
        card: form.card,
        basket: form
            .basket
            .into_iter()
            .map(|(sku, q)| (field_of(&sku), q))
            .collect(),
        total: plain_number(total),
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

// ---- Receipts ----

pub struct ReceiptLineView {
    pub name: String,
    pub quantity: u32,
    pub points: String,
}

#[derive(askama::Template)]
#[template(path = "receipt.html")]
struct ReceiptPage<'a> {
    ctx: &'a Ctx,
    refund: bool,
    shop: String,
    resident: String,
    lines: Vec<ReceiptLineView>,
    total: String,
    balance_after: String,
    when: String,
    qr: String,
    compact: String,
    key_id: String,
    seq: i64,
    refunded: bool,
    /// On the till: print and next-sale buttons.
    at_till: bool,
    paper_css: String,
}

/// The receipt page (for the till, and for the resident's history).
pub fn receipt_page(
    ctx: Ctx,
    exchange: Exchange,
    resident_name: Option<String>,
    at_till: bool,
) -> PageResult {
    let r = &exchange.signed.receipt;
    let when = format!(
        "{} {}",
        day_words(ctx.lang, day_of(r.posted_at_micros)),
        clock_time(r.posted_at_micros)
    );
    let page = ReceiptPage {
        ctx: &ctx,
        refund: r.kind == crate::redeem::receipt::ReceiptKind::Refund,
        shop: r.shop_name.clone(),
        resident: match resident_name {
            Some(name) => format!("{name}（{}）", r.resident),
            None => r.resident.clone(),
        },
        lines: r
            .lines
            .iter()
            .map(|l| ReceiptLineView {
                name: l.name.clone(),
                quantity: l.quantity,
                points: plain_number(l.points_minor),
            })
            .collect(),
        total: plain_number(r.total_minor),
        balance_after: plain_number(r.balance_after_minor),
        when,
        qr: crate::redeem::receipt::qr_svg(&exchange.signed.compact).unwrap_or_default(),
        compact: exchange.signed.compact.clone(),
        key_id: r.key_id.clone(),
        seq: r.entry_seq,
        refunded: exchange.refunded_by.is_some(),
        at_till,
        paper_css: ctx.asset(if ctx.paper == 80 {
            "print-80.css"
        } else {
            "print-58.css"
        }),
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

async fn receipt(State(app): State<App>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    done(receipt_inner(app, ctx, id).await)
}

async fn receipt_inner(app: App, ctx: Ctx, id: Uuid) -> PageResult {
    let (p, _) = try_page!(ctx, clerk(&ctx));
    let exchange = try_page!(ctx, app.redemption.receipt(&p, id).await);
    let name = app.redemption.masked_resident_name(&p, id).await.ok();
    receipt_page(ctx, exchange, name.filter(|n| !n.is_empty()), true)
}

/// The time of day (UTC+8, the calendar's days) of a moment: "14:05".
fn clock_time(micros: i64) -> String {
    let seconds = (micros.div_euclid(1_000_000) + crate::calendar::CALENDAR_UTC_OFFSET_SECONDS)
        .rem_euclid(86_400);
    format!("{:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

// ---- Today's takings ----

#[derive(askama::Template)]
#[template(path = "today.html")]
struct TodayPage<'a> {
    ctx: &'a Ctx,
    day: String,
    redemptions: usize,
    refunds: usize,
    redeemed: String,
    refunded: String,
    net: String,
    receipts: Vec<(String, String, String, String)>,
}

async fn today(State(app): State<App>, ctx: Ctx) -> Response {
    done(today_inner(app, ctx).await)
}

async fn today_inner(app: App, ctx: Ctx) -> PageResult {
    let (p, shop) = try_page!(ctx, clerk(&ctx));
    let day = day_of(app.clock.now_micros());
    let s = try_page!(ctx, app.redemption.statement(&p, shop, day, day).await);
    let receipts = s
        .receipts
        .iter()
        .map(|r| {
            (
                format!("/till/receipts/{}", r.receipt_id),
                clock_time(r.posted_at_micros),
                match (r.kind.as_str(), ctx.lang) {
                    ("refund", Lang::Zh) => "退货".to_owned(),
                    ("refund", Lang::En) => "refund".to_owned(),
                    (_, Lang::Zh) => "兑换".to_owned(),
                    (_, Lang::En) => "exchange".to_owned(),
                },
                plain_number(r.points_minor),
            )
        })
        .collect();
    let page = TodayPage {
        ctx: &ctx,
        day: day_words(ctx.lang, day),
        redemptions: s.redemptions,
        refunds: s.refunds,
        redeemed: plain_number(s.redeemed_minor),
        refunded: plain_number(s.refunded_minor),
        net: plain_number(s.net_minor),
        receipts,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

// ---- Refunds ----

#[derive(askama::Template)]
#[template(path = "refund.html")]
struct RefundPage<'a> {
    ctx: &'a Ctx,
    key: String,
    refusal: Option<String>,
    text: String,
}

#[derive(serde::Deserialize, Default)]
struct RefundQuery {
    receipt: Option<String>,
}

async fn refund_page(State(app): State<App>, ctx: Ctx, Query(q): Query<RefundQuery>) -> Response {
    done(refund_form(app, ctx, q.receipt.unwrap_or_default(), None))
}

fn refund_form(app: App, ctx: Ctx, text: String, refusal: Option<String>) -> PageResult {
    let _ = try_page!(ctx, clerk(&ctx));
    let status = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = RefundPage {
        ctx: &ctx,
        key: new_key(&app),
        refusal,
        text,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html_status(status, html))
}

#[derive(serde::Deserialize)]
struct RefundForm {
    key: String,
    receipt: String,
}

async fn refund(State(app): State<App>, ctx: Ctx, Form(form): Form<RefundForm>) -> Response {
    done(refund_inner(app, ctx, form).await)
}

async fn refund_inner(app: App, ctx: Ctx, form: RefundForm) -> PageResult {
    let (p, _) = try_page!(ctx, clerk(&ctx));
    let text: String = form.receipt.trim().chars().take(4096).collect();
    let verified = try_page!(
        ctx,
        app.redemption
            .verify_receipt(Some(&p.ledger_id), &text)
            .await
    );
    let receipt = match verified.0 {
        Ok(receipt) => receipt,
        Err(_) => {
            let sentence = match ctx.lang {
                Lang::Zh => "这不是本系统的有效小票（或内容有改动）。请扫描小票上的二维码。",
                Lang::En => "This is not a valid receipt of this system (or it was changed). Scan the QR code on the receipt.",
            };
            return refund_form(app, ctx, text, Some(sentence.to_owned()));
        }
    };
    let key: String = form.key.chars().take(128).collect();
    match app.redemption.refund(&p, &key, receipt.id, None).await {
        Ok(exchange) => {
            let to = format!("/till/receipts/{}", exchange.signed.receipt.id);
            Ok(ctx.redirect(&to))
        }
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            refund_form(app, ctx, text, Some(sentence))
        }
    }
}

// ---- Barcodes ----

/// A Code 128 barcode of `digits` as inline SVG (set C, an odd last digit in set B).
pub fn code128_svg(digits: &str) -> String {
    let even = digits.len() - digits.len() % 2;
    let mut data = format!("\u{0106}{}", &digits[..even]);
    if even < digits.len() {
        data.push('\u{0181}');
        data.push_str(&digits[even..]);
    }
    let Ok(code) = barcoders::sym::code128::Code128::new(data) else {
        return String::new();
    };
    let modules = code.encode();
    let quiet = 10;
    let width = modules.len() + 2 * quiet;
    let mut path = String::new();
    let mut i = 0;
    while i < modules.len() {
        if modules[i] == 1 {
            let start = i;
            while i < modules.len() && modules[i] == 1 {
                i += 1;
            }
            path.push_str(&format!(
                "M{} 0h{}v60h-{}z",
                quiet + start,
                i - start,
                i - start
            ));
        } else {
            i += 1;
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} 60\" \
         preserveAspectRatio=\"none\" aria-hidden=\"true\"><rect width=\"{width}\" height=\"60\" \
         fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}
