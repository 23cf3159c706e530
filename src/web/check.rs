//! The public receipt check: anyone, signed in or not, scans or pastes a receipt and sees
//! whether aixin signed it — a large ✓ with the shop, the items, the time and the signing key,
//! or a large ✗ saying in plain words what is wrong. A form post without JavaScript; with it,
//! the camera reads the receipt's QR code (the vendored decoder the refund page uses).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};

use super::i18n::plain_number;
use super::{done, Ctx, Lang, PageResult, M};
use crate::app::App;
use crate::redeem::receipt::{Receipt, ReceiptError, ReceiptKind};

pub fn routes() -> Router<App> {
    Router::new().route("/verify", get(check_page).post(check))
}

/// The longest text the page reads (a receipt's compact form is well under it).
const TEXT_MAX_CHARS: usize = 4096;

super::i18n::messages! {
    enum C;
    Title => "小票核验", "Check a receipt";
    Intro => "任何人都可以核验爱心积分小票：扫描小票上的二维码，或粘贴二维码里的文字。无需登录。",
        "Anyone can check an aixin receipt: scan the QR code on it, or paste the text the QR code holds. No sign-in needed.";
    TextLabel => "小票二维码里的文字", "The text in the receipt's QR code";
    Check => "核验", "Check";
    Camera => "用摄像头扫描二维码", "Scan the QR code with the camera";
    CameraOff => "无法使用摄像头：请粘贴小票二维码里的文字。", "The camera is not available: paste the text from the receipt's QR code.";
    Valid => "真实有效：这张小票由本系统签发，内容未被改动。", "Genuine: this receipt was signed by this system and has not been changed.";
    Invalid => "无效小票", "Not a valid receipt";
    Shop => "商店", "Shop";
    Kind => "类型", "Kind";
    Redemption => "兑换", "Redemption";
    RefundKind => "退货", "Refund";
    Time => "时间", "Time";
    Items => "商品", "Items";
    Quantity => "数量", "Quantity";
    Points => "积分", "Points";
    Total => "合计", "Total";
    Resident => "居民（化名）", "Resident (pseudonym)";
    Entry => "账本分录", "Ledger entry";
    Key => "签名密钥", "Signing key";
    Refunded => "这笔兑换已退货。", "This redemption has been refunded.";
    NotKnown => "签名有效，但本系统的账本里没有这张小票（可能来自另一套账本）。", "The signature is valid, but this system's ledger does not hold this receipt (it may come from another ledger).";
    Malformed => "这不是爱心积分小票的内容，或者内容不完整。请扫描小票上的二维码，或完整粘贴其中的文字。",
        "This is not the text of an aixin receipt, or part of it is missing. Scan the receipt's QR code, or paste all of its text.";
    Altered => "小票内容被改动过：签名与内容对不上。这张小票不可信。", "The receipt has been altered: its signature does not match its content. Do not trust it.";
    UnknownKey => "签名所用的密钥本系统不认识：这不是本系统签发的小票。", "It is signed with a key this system does not know: this system did not issue this receipt.";
    RevokedKey => "签名所用的密钥已被作废：这张小票不再被认可，请联系社区或商店。", "It is signed with a key that has been revoked: the receipt is no longer recognised; ask the community or the shop.";
    Empty => "请粘贴小票二维码里的文字。", "Paste the text from the receipt's QR code.";
    Again => "再核验一张", "Check another receipt";
}

/// What the check found.
enum Outcome {
    Valid(Box<Shown>),
    /// What is wrong, in plain words.
    Invalid(C),
}

/// A verified receipt as the page shows it.
struct Shown {
    shop: String,
    refund: bool,
    when: String,
    resident: String,
    lines: Vec<Line>,
    total: String,
    seq: i64,
    key_id: String,
    known: bool,
    refunded: bool,
}

struct Line {
    name: String,
    sku: String,
    quantity: u32,
    points: String,
}

#[derive(askama::Template)]
#[template(path = "check.html")]
struct CheckPage<'a> {
    ctx: &'a Ctx,
    text: String,
    outcome: Option<Outcome>,
}

#[derive(serde::Deserialize, Default)]
struct CheckForm {
    #[serde(default)]
    receipt: String,
}

/// `YYYY-MM-DD HH:MM` in the deployment's calendar (UTC+8).
fn when(micros: i64) -> String {
    let seconds = (micros.div_euclid(1_000_000) + crate::calendar::CALENDAR_UTC_OFFSET_SECONDS)
        .rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}",
        crate::calendar::format_date(crate::calendar::day_of(micros)),
        seconds / 3600,
        seconds % 3600 / 60
    )
}

fn shown(r: Receipt, known: bool, refunded: bool) -> Shown {
    Shown {
        shop: r.shop_name,
        refund: r.kind == ReceiptKind::Refund,
        when: when(r.posted_at_micros),
        resident: r.resident,
        lines: r
            .lines
            .into_iter()
            .map(|l| Line {
                name: l.name,
                sku: l.sku,
                quantity: l.quantity,
                points: plain_number(l.points_minor),
            })
            .collect(),
        total: plain_number(r.total_minor),
        seq: r.entry_seq,
        key_id: r.key_id,
        known,
        refunded,
    }
}

async fn check_page(State(app): State<App>, ctx: Ctx, Query(q): Query<CheckForm>) -> Response {
    // `?receipt=` checks at once (a link or a QR code that carries the text).
    let text = q.receipt;
    if text.trim().is_empty() {
        done(render(ctx, String::new(), None))
    } else {
        done(check_text(app, ctx, text).await)
    }
}

async fn check(State(app): State<App>, ctx: Ctx, Form(form): Form<CheckForm>) -> Response {
    done(check_text(app, ctx, form.receipt).await)
}

async fn check_text(app: App, ctx: Ctx, text: String) -> PageResult {
    let text: String = text.trim().chars().take(TEXT_MAX_CHARS).collect();
    if text.is_empty() {
        return render(ctx, text, Some(Outcome::Invalid(C::Empty)));
    }
    // The public check: the ledger is the one the receipt names, whoever is signed in.
    let (verified, known, refunded_by) =
        super::resident::try_page!(ctx, app.redemption.verify_receipt(None, &text).await);
    let outcome = match verified {
        Ok(receipt) => Outcome::Valid(Box::new(shown(receipt, known, refunded_by.is_some()))),
        Err(e) => Outcome::Invalid(match e {
            ReceiptError::Malformed => C::Malformed,
            ReceiptError::BadSignature => C::Altered,
            ReceiptError::UnknownKey => C::UnknownKey,
            ReceiptError::RevokedKey => C::RevokedKey,
        }),
    };
    render(ctx, text, Some(outcome))
}

fn render(ctx: Ctx, text: String, outcome: Option<Outcome>) -> PageResult {
    let status = match outcome {
        Some(Outcome::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let page = CheckPage {
        ctx: &ctx,
        text,
        outcome,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html_status(status, html))
}
