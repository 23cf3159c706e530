//! Redemption over HTTP: shops, staff, catalogue, stock, credentials and codes, redemptions,
//! receipts, refunds, statements and settlement. Thin handlers over
//! [`crate::redeem::Redemption`].

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Body, Error, IdempotencyKey};
use crate::app::App;
use crate::audit::format::csv_record;
use crate::auth::Principal;
use crate::calendar::format_time;
use crate::calendar::parse_date;
use crate::error::ErrorCode;
use crate::ledger::{format_minor, Amount};
use crate::redeem::receipt::{qr_svg, ReceiptError};
use crate::redeem::service::{
    CommunityLine, CurrentCode, Exchange, IssuedCredential, NewItem, NewShop, Shown, Statement,
    StatementReceipt, StockChange,
};
use crate::store::redeem::{Item, Shop};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/shops", post(create_shop).get(list_shops))
        .route("/v1/shops/{id}", get(get_shop))
        .route("/v1/shops/{id}/staff", post(add_staff).get(list_staff))
        .route("/v1/shops/{id}/staff/{staff_id}", delete(remove_staff))
        .route("/v1/shops/{id}/staff/{staff_id}/pin", put(set_staff_pin))
        .route("/v1/shops/{id}/receipts", get(receipts_of_day))
        .route("/v1/shops/{id}/devices", get(list_devices))
        .route("/v1/shops/{id}/devices/pairing-link", post(pairing_link))
        .route("/v1/shops/{id}/devices/{device_id}", delete(unpair_device))
        .route("/v1/shops/{id}/items", get(catalogue))
        .route("/v1/shops/{id}/items/{sku}", put(put_item))
        .route(
            "/v1/shops/{id}/items/{sku}/stock",
            post(move_stock).get(stock_history),
        )
        .route("/v1/shops/{id}/statement", get(statement))
        .route(
            "/v1/shops/{id}/settlements",
            post(settle).get(list_settlements),
        )
        .route(
            "/v1/residents/{id}/credential",
            post(issue_credential).delete(revoke_credential),
        )
        .route("/v1/residents/{id}/code", get(current_code))
        .route("/v1/residents/{id}/code.svg", get(current_code_svg))
        .route("/v1/redemptions", post(redeem))
        .route("/v1/receipts/verify", post(verify_receipt))
        .route("/v1/receipts/{id}", get(get_receipt))
        .route("/v1/receipts/{id}/qr.svg", get(receipt_qr))
        .route("/v1/receipts/{id}/refund", post(refund))
}

fn status(fresh: bool) -> StatusCode {
    if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

fn svg(body: String) -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], body).into_response()
}

// ---- Shops ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopBody {
    pub name_zh: String,
    #[serde(default)]
    pub name_en: String,
    pub community_id: String,
    /// Further communities whose residents the shop serves.
    #[serde(default)]
    pub serves: Vec<String>,
    pub refund_window_days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ShopView {
    pub id: Uuid,
    pub name_zh: String,
    pub name_en: String,
    pub community_id: String,
    pub communities: Vec<String>,
    pub account_id: Uuid,
    pub refund_window_days: i64,
    pub created_at: String,
}

fn shop_view(s: &Shop) -> ShopView {
    ShopView {
        id: s.id,
        name_zh: s.name_zh.clone(),
        name_en: s.name_en.clone(),
        community_id: s.community_id.clone(),
        communities: s.communities.clone(),
        account_id: s.account_id,
        refund_window_days: s.refund_window_days,
        created_at: format_time(s.created_at_micros),
    }
}

/// Registers a love shop (admin, or staff over every community it serves).
#[utoipa::path(post, path = "/v1/shops", security(("bearer" = [])), request_body = ShopBody,
    responses((status = 201, body = ShopView), (status = 200, body = ShopView)))]
async fn create_shop(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<ShopBody>,
) -> Result<Response, Error> {
    let (shop, fresh) = app
        .redemption
        .create_shop(
            &p,
            &key,
            NewShop {
                name_zh: body.name_zh,
                name_en: body.name_en,
                community_id: body.community_id,
                serves: body.serves,
                refund_window_days: body.refund_window_days,
            },
        )
        .await?;
    Ok((status(fresh), Json(shop_view(&shop))).into_response())
}

#[utoipa::path(get, path = "/v1/shops/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = ShopView), (status = 404)))]
async fn get_shop(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<ShopView>, Error> {
    let Path(id) = id?;
    Ok(Json(shop_view(&app.redemption.shop(&p, id).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffBody {
    pub name: String,
    #[serde(default)]
    pub owner: bool,
}

#[derive(Serialize, ToSchema)]
pub struct StaffView {
    pub token_id: Uuid,
    /// The shop token, shown only this once.
    pub token: String,
    pub name: String,
    pub owner: bool,
}

/// Adds shop staff and returns their `shop` token (admin, or staff over the shop's community).
/// Needs an Idempotency-Key: the same key and body again answers the same clerk and token (200).
#[utoipa::path(post, path = "/v1/shops/{id}/staff", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "Client-chosen key; a retry answers the same clerk and token")),
    request_body = StaffBody,
    responses((status = 201, body = StaffView), (status = 200, body = StaffView, description = "The clerk this key added before")))]
async fn add_staff(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    id: Result<Path<Uuid>, PathRejection>,
    Body(body): Body<StaffBody>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let (staff, token, fresh) = app
        .redemption
        .add_shop_staff(&p, &key, id, &body.name, body.owner)
        .await?;
    Ok((
        super::earning::created(fresh),
        Json(StaffView {
            token_id: staff.token_id,
            token,
            name: staff.name,
            owner: staff.owner,
        }),
    )
        .into_response())
}

// ---- Catalogue and stock ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    pub name_zh: String,
    #[serde(default)]
    pub name_en: String,
    /// 袋, 桶, 瓶 ...
    pub unit: String,
    /// Points per unit, a decimal string.
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub price: String,
    #[serde(default)]
    pub track_stock: bool,
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub cap_day: Option<i64>,
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub cap_month: Option<i64>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, ToSchema)]
pub struct ItemView {
    pub id: Uuid,
    pub sku: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub price: String,
    pub track_stock: bool,
    /// Units in stock, when tracked.
    pub stock: Option<i64>,
    pub cap_day: Option<i64>,
    pub cap_month: Option<i64>,
    pub active: bool,
}

fn item_view(i: &Item, stock: Option<i64>) -> ItemView {
    ItemView {
        id: i.id,
        sku: i.sku.clone(),
        name_zh: i.name_zh.clone(),
        name_en: i.name_en.clone(),
        unit: i.unit.clone(),
        price: format_minor(i.price_minor),
        track_stock: i.track_stock,
        stock,
        cap_day: i.cap_day,
        cap_month: i.cap_month,
        active: i.active,
    }
}

#[utoipa::path(get, path = "/v1/shops/{id}/items", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [ItemView])))]
async fn catalogue(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Vec<ItemView>>, Error> {
    let Path(id) = id?;
    let items = app.redemption.catalogue(&p, id).await?;
    Ok(Json(items.iter().map(|(i, s)| item_view(i, *s)).collect()))
}

/// Creates or changes a catalogue item by its SKU (the shop's staff, admin, staff over it).
#[utoipa::path(put, path = "/v1/shops/{id}/items/{sku}", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("sku" = String, Path)), request_body = ItemBody,
    responses((status = 200, body = ItemView)))]
async fn put_item(
    State(app): State<App>,
    p: Principal,
    path: Result<Path<(Uuid, String)>, PathRejection>,
    Body(body): Body<ItemBody>,
) -> Result<Json<ItemView>, Error> {
    let Path((id, sku)) = path?;
    let price = Amount::parse(&body.price)
        .map_err(|e| Error::new(ErrorCode::from(e), format!("price: {e}")))?;
    let (item, stock) = app
        .redemption
        .put_item(
            &p,
            id,
            &sku,
            NewItem {
                name_zh: body.name_zh,
                name_en: body.name_en,
                unit: body.unit,
                price,
                track_stock: body.track_stock,
                cap_day: body.cap_day,
                cap_month: body.cap_month,
                active: body.active,
            },
        )
        .await?;
    Ok(Json(item_view(&item, stock)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockBody {
    /// Units added (positive) or removed (negative).
    pub delta: i64,
    /// restock, count, damaged or returned_to_supplier.
    pub reason: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Serialize, ToSchema)]
pub struct StockView {
    pub level: i64,
}

/// Moves an item's stock, recording why.
#[utoipa::path(post, path = "/v1/shops/{id}/items/{sku}/stock", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("sku" = String, Path)), request_body = StockBody,
    responses((status = 200, body = StockView)))]
async fn move_stock(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    path: Result<Path<(Uuid, String)>, PathRejection>,
    Body(body): Body<StockBody>,
) -> Result<Json<StockView>, Error> {
    let Path((id, sku)) = path?;
    let level = app
        .redemption
        .move_stock(
            &p,
            &key,
            id,
            &sku,
            StockChange {
                delta: body.delta,
                reason: body.reason,
                note: body.note,
            },
        )
        .await?;
    Ok(Json(StockView { level }))
}

#[derive(Serialize, ToSchema)]
pub struct StockMoveView {
    pub delta: i64,
    pub reason: String,
    pub note: String,
    pub actor: String,
    pub level: i64,
    pub at: String,
}

/// The item's latest stock moves other than sales and refunds (those are on receipts).
#[utoipa::path(get, path = "/v1/shops/{id}/items/{sku}/stock", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("sku" = String, Path)), responses((status = 200, body = [StockMoveView])))]
async fn stock_history(
    State(app): State<App>,
    p: Principal,
    path: Result<Path<(Uuid, String)>, PathRejection>,
) -> Result<Json<Vec<StockMoveView>>, Error> {
    let Path((id, sku)) = path?;
    let moves = app.redemption.stock_history(&p, id, &sku).await?;
    Ok(Json(
        moves
            .into_iter()
            .map(|m| StockMoveView {
                delta: m.delta,
                reason: m.reason,
                note: m.note,
                actor: m.actor,
                level: m.level,
                at: format_time(m.at_micros),
            })
            .collect(),
    ))
}

// ---- Credentials and codes ----

/// Issues or re-issues a resident's redemption credential (staff, admin). The answer carries
/// the secret for the resident's phone and the PIN for the printed card.
#[utoipa::path(post, path = "/v1/residents/{id}/credential", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = IssuedCredential)))]
async fn issue_credential(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let issued = app.redemption.issue_credential(&p, &key, id).await?;
    Ok(Json(issued).into_response())
}

#[utoipa::path(delete, path = "/v1/residents/{id}/credential", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 204)))]
async fn revoke_credential(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<StatusCode, Error> {
    let Path(id) = id?;
    app.redemption.revoke_credential(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The code to show now (the resident, or staff on their behalf).
#[utoipa::path(get, path = "/v1/residents/{id}/code", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = CurrentCode)))]
async fn current_code(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    Ok(Json(app.redemption.current_code(&p, id).await?).into_response())
}

/// The code to show now as a QR image (numeric mode).
#[utoipa::path(get, path = "/v1/residents/{id}/code.svg", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, content_type = "image/svg+xml")))]
async fn current_code_svg(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let code = app.redemption.current_code(&p, id).await?;
    let image = qr_svg(&code.code).ok_or_else(|| Error::bare(ErrorCode::Internal))?;
    Ok(svg(image))
}

// ---- Redemptions and receipts ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    pub number: String,
    pub pin: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    /// The 25-digit code (layout 2) as scanned or typed; a payment app's code is refused as
    /// `foreign_payment_code`.
    pub code: Option<String>,
    /// Or a printed card's number and PIN.
    pub card: Option<CardBody>,
    pub items: Vec<LineBody>,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptLineView {
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub quantity: u32,
    pub unit_points: String,
    pub points: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptView {
    pub id: Uuid,
    /// redemption or refund.
    pub kind: String,
    pub refund_of: Option<Uuid>,
    pub shop_id: Uuid,
    pub shop_name: String,
    pub resident: String,
    pub lines: Vec<ReceiptLineView>,
    pub total: String,
    pub balance_after: String,
    pub entry_seq: i64,
    pub entry_hash: String,
    pub posted_at: String,
    pub key_id: String,
    /// HMAC-SHA256 tag, hex.
    pub signature: String,
    /// The compact signed form (what the QR code holds); verify it offline.
    pub compact: String,
    /// The refund receipt, if this redemption was refunded.
    pub refunded_by: Option<Uuid>,
}

fn receipt_view(x: &Exchange) -> ReceiptView {
    let r = &x.signed.receipt;
    ReceiptView {
        id: r.id,
        kind: r.kind.as_str().to_owned(),
        refund_of: r.refund_of,
        shop_id: r.shop_id,
        shop_name: r.shop_name.clone(),
        resident: r.resident.clone(),
        lines: r
            .lines
            .iter()
            .map(|l| ReceiptLineView {
                sku: l.sku.clone(),
                name: l.name.clone(),
                unit: l.unit.clone(),
                quantity: l.quantity,
                unit_points: format_minor(l.unit_points_minor),
                points: format_minor(l.points_minor),
            })
            .collect(),
        total: format_minor(r.total_minor),
        balance_after: format_minor(r.balance_after_minor),
        entry_seq: r.entry_seq,
        entry_hash: hex::encode(r.entry_hash),
        posted_at: format_time(r.posted_at_micros),
        key_id: r.key_id.clone(),
        signature: hex::encode(x.signed.tag),
        compact: x.signed.compact.clone(),
        refunded_by: x.refunded_by,
    }
}

fn basket(items: &[LineBody]) -> Vec<(String, u32)> {
    items.iter().map(|l| (l.sku.clone(), l.quantity)).collect()
}

/// Redeems a basket with a resident's code or card, at the caller's shop (a `shop` token).
#[utoipa::path(post, path = "/v1/redemptions", security(("bearer" = [])), request_body = RedeemBody,
    responses((status = 201, body = ReceiptView), (status = 200, body = ReceiptView)))]
async fn redeem(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<RedeemBody>,
) -> Result<Response, Error> {
    let shown = match (body.code, body.card) {
        (Some(code), None) => Shown::Code(code),
        (None, Some(card)) => Shown::Card {
            number: card.number,
            pin: card.pin,
        },
        _ => {
            return Err(Error::new(
                ErrorCode::InvalidBody,
                "give either code or card",
            ))
        }
    };
    let exchange = app
        .redemption
        .redeem(&p, &key, shown, &basket(&body.items))
        .await?;
    Ok((status(exchange.created), Json(receipt_view(&exchange))).into_response())
}

#[utoipa::path(get, path = "/v1/receipts/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = ReceiptView), (status = 404)))]
async fn get_receipt(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<ReceiptView>, Error> {
    let Path(id) = id?;
    Ok(Json(receipt_view(&app.redemption.receipt(&p, id).await?)))
}

#[utoipa::path(get, path = "/v1/receipts/{id}/qr.svg", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "image/svg+xml")))]
async fn receipt_qr(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let exchange = app.redemption.receipt(&p, id).await?;
    let image = qr_svg(&exchange.signed.compact).ok_or_else(|| Error::bare(ErrorCode::Internal))?;
    Ok(svg(image))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// What to refund; all of the redemption when absent.
    pub items: Option<Vec<LineBody>>,
}

/// Refunds a redemption fully or in part (the shop owner, or staff other than who redeemed).
#[utoipa::path(post, path = "/v1/receipts/{id}/refund", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = RefundBody, responses((status = 201, body = ReceiptView)))]
async fn refund(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    id: Result<Path<Uuid>, PathRejection>,
    Body(body): Body<RefundBody>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let wanted = body.items.as_deref().map(basket);
    let exchange = app
        .redemption
        .refund(&p, &key, id, wanted.as_deref())
        .await?;
    Ok((status(exchange.created), Json(receipt_view(&exchange))).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The compact form (what the receipt's QR code holds).
    pub receipt: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptCheckView {
    pub valid: bool,
    /// Why not: malformed, unknown_key, revoked_key or bad_signature.
    pub reason: Option<String>,
    /// Whether this ledger holds the receipt with the same entry.
    pub known: bool,
    pub refunded_by: Option<Uuid>,
    pub receipt: Option<ReceiptFields>,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptFields {
    pub id: Uuid,
    pub kind: String,
    pub shop_name: String,
    pub resident: String,
    pub total: String,
    pub entry_seq: i64,
    pub posted_at: String,
    pub key_id: String,
}

/// Verifies a receipt: public, no token needed (one sent is ignored) — anyone holding a
/// receipt may check it. `known` and `refunded_by` come from the ledger the receipt names, and
/// only for a receipt whose signature verifies.
#[utoipa::path(post, path = "/v1/receipts/verify", request_body = VerifyBody,
    responses((status = 200, body = ReceiptCheckView)))]
async fn verify_receipt(
    State(app): State<App>,
    Body(body): Body<VerifyBody>,
) -> Result<Json<ReceiptCheckView>, Error> {
    let (verified, known, refunded_by) = app.redemption.verify_receipt(None, &body.receipt).await?;
    Ok(Json(match verified {
        Ok(r) => ReceiptCheckView {
            valid: true,
            reason: None,
            known,
            refunded_by,
            receipt: Some(ReceiptFields {
                id: r.id,
                kind: r.kind.as_str().to_owned(),
                shop_name: r.shop_name,
                resident: r.resident,
                total: format_minor(r.total_minor),
                entry_seq: r.entry_seq,
                posted_at: format_time(r.posted_at_micros),
                key_id: r.key_id,
            }),
        },
        Err(e) => ReceiptCheckView {
            valid: false,
            reason: Some(
                match e {
                    ReceiptError::Malformed => "malformed",
                    ReceiptError::UnknownKey => "unknown_key",
                    ReceiptError::RevokedKey => "revoked_key",
                    ReceiptError::BadSignature => "bad_signature",
                }
                .to_owned(),
            ),
            known: false,
            refunded_by: None,
            receipt: None,
        },
    }))
}

// ---- Statements and settlement ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    /// First day, YYYY-MM-DD (UTC+8).
    pub from: String,
    /// Last day, included.
    pub to: String,
    /// json (default) or csv.
    pub format: Option<String>,
}

fn period(from: &str, to: &str) -> Result<(time::Date, time::Date), Error> {
    let parse = |name: &str, text: &str| {
        parse_date(text).ok_or_else(|| {
            Error::new(
                ErrorCode::DateInvalid,
                format!("{name} must be a date written YYYY-MM-DD"),
            )
        })
    };
    Ok((parse("from", from)?, parse("to", to)?))
}

/// The statement's receipts as CSV, written like every aixin CSV (formula-like cells
/// neutralised: `audit::format::spreadsheet_cell`).
fn statement_csv(s: &Statement) -> Result<String, Error> {
    let mut out = csv_record(&[
        "receipt_id",
        "kind",
        "posted_at",
        "community_id",
        "resident",
        "points",
        "entry_seq",
    ]);
    for r in &s.receipts {
        out.push_str(&csv_record(&[
            &r.receipt_id.to_string(),
            &r.kind,
            &format_time(r.posted_at_micros),
            &r.community_id,
            &r.resident,
            &format_minor(r.points_minor),
            &r.entry_seq.to_string(),
        ]));
    }
    Ok(out)
}

/// A shop's statement for a period: redemptions, refunds and net points, as JSON or CSV.
#[utoipa::path(get, path = "/v1/shops/{id}/statement", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("from" = String, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"), ("to" = String, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"), ("format" = Option<String>, Query, pattern = r"^(json|csv)$")),
    responses((status = 200, body = Statement)))]
async fn statement(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let Query(q) = query?;
    let (from, to) = period(&q.from, &q.to)?;
    let s = app.redemption.statement(&p, id, from, to).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(s).into_response()),
        Some("csv") => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            statement_csv(&s)?,
        )
            .into_response()),
        Some(_) => Err(Error::new(
            ErrorCode::InvalidQuery,
            "format must be json or csv",
        )),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
}

/// Settles a shop for a period that has ended: an entry from the shop to its community's
/// settlement account for the net points; a day cannot be settled twice.
#[utoipa::path(post, path = "/v1/shops/{id}/settlements", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = SettleBody, responses((status = 201, body = Statement)))]
async fn settle(
    State(app): State<App>,
    p: Principal,
    IdempotencyKey(key): IdempotencyKey,
    id: Result<Path<Uuid>, PathRejection>,
    Body(body): Body<SettleBody>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let (from, to) = period(&body.from, &body.to)?;
    let (statement, fresh) = app.redemption.settle(&p, &key, id, from, to).await?;
    Ok((status(fresh), Json(statement)).into_response())
}

// ---- Owners: lists, staff removal, devices ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopsQuery {
    /// The `next` of the page before.
    pub after: Option<Uuid>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ListedShopView {
    #[serde(flatten)]
    pub shop: ShopView,
    /// Whether the caller runs the shop (its catalogue, staff and statements) or only sees
    /// that it serves their community.
    pub runs: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ShopsPageView {
    pub shops: Vec<ListedShopView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<Uuid>,
}

/// The shops the caller may see, by id: an admin or auditor all; staff those serving a
/// community they manage; shop staff their own.
#[utoipa::path(get, path = "/v1/shops", security(("bearer" = [])),
    params(("after" = Option<Uuid>, Query), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = ShopsPageView)))]
async fn list_shops(
    State(app): State<App>,
    p: Principal,
    query: Result<Query<ShopsQuery>, QueryRejection>,
) -> Result<Json<ShopsPageView>, Error> {
    let Query(q) = query?;
    let page = app.redemption.shops(&p, q.after, q.limit).await?;
    Ok(Json(ShopsPageView {
        shops: page
            .shops
            .iter()
            .map(|l| ListedShopView {
                shop: shop_view(&l.shop),
                runs: l.runs,
            })
            .collect(),
        next: page.next,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct StaffMemberView {
    pub token_id: Uuid,
    pub name: String,
    pub owner: bool,
    /// Whether they can sign in at the shop's paired tills (a PIN is set).
    pub has_pin: bool,
    pub added_at: String,
    /// Set once removed: their token is revoked, their sessions ended, their PIN deleted.
    pub removed_at: Option<String>,
}

fn member_view(m: &crate::store::redeem::StaffMember) -> StaffMemberView {
    StaffMemberView {
        token_id: m.staff.token_id,
        name: m.staff.name.clone(),
        owner: m.staff.owner,
        has_pin: m.has_pin,
        added_at: format_time(m.added_at_micros),
        removed_at: m.removed_at_micros.map(format_time),
    }
}

/// A shop's staff, removed members included, by name (at most 500): admin, staff over the
/// shop, its owner.
#[utoipa::path(get, path = "/v1/shops/{id}/staff", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [StaffMemberView]), (status = 403), (status = 404)))]
async fn list_staff(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Vec<StaffMemberView>>, Error> {
    let Path(id) = id?;
    let staff = app.redemption.shop_staff_list(&p, id).await?;
    Ok(Json(staff.iter().map(member_view).collect()))
}

/// Removes a member of the shop's staff: at once their token is revoked, every session signed
/// in with it ends and their till PIN is deleted (admin, staff over the shop, its owner; not
/// oneself). Again: the member as removed before.
#[utoipa::path(delete, path = "/v1/shops/{id}/staff/{staff_id}", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("staff_id" = Uuid, Path, description = "The member's token id")),
    responses((status = 200, body = StaffMemberView), (status = 403), (status = 404)))]
async fn remove_staff(
    State(app): State<App>,
    p: Principal,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
) -> Result<Json<StaffMemberView>, Error> {
    let Path((id, staff_id)) = path?;
    let member = app.redemption.remove_shop_staff(&p, id, staff_id).await?;
    Ok(Json(member_view(&member)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// Six digits, not an easy one.
    #[schema(pattern = r"^[0-9]{6}$")]
    pub pin: String,
}

/// Sets the PIN a member of shop staff signs in with at the shop's paired tills.
#[utoipa::path(put, path = "/v1/shops/{id}/staff/{staff_id}/pin", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("staff_id" = Uuid, Path)), request_body = PinBody,
    responses((status = 204), (status = 403), (status = 404)))]
async fn set_staff_pin(
    State(app): State<App>,
    p: Principal,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    Body(body): Body<PinBody>,
) -> Result<StatusCode, Error> {
    let Path((id, staff_id)) = path?;
    let member = app
        .redemption
        .shop_staff_list(&p, id)
        .await?
        .into_iter()
        .find(|m| m.staff.token_id == staff_id && m.removed_at_micros.is_none())
        .ok_or_else(crate::error::Error::not_found)?;
    app.sessions
        .set_clerk_pin(&p, member.staff.token_id, &body.pin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    /// The calendar day (UTC+8), YYYY-MM-DD.
    pub day: String,
    /// The `next` of the page before (an entry sequence).
    pub after: Option<i64>,
    /// 1 to 500 (default 50).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptsPageView {
    pub receipts: Vec<StatementReceipt>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<i64>,
}

/// A shop's receipts of one day, in order (admin, auditor, staff over the shop, its staff).
#[utoipa::path(get, path = "/v1/shops/{id}/receipts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("day" = String, Query, format = Date), ("after" = Option<i64>, Query),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = ReceiptsPageView)))]
async fn receipts_of_day(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<DayQuery>, QueryRejection>,
) -> Result<Json<ReceiptsPageView>, Error> {
    let Path(id) = id?;
    let Query(q) = query?;
    let (day, _) = period(&q.day, &q.day)?;
    let (receipts, next) = app
        .redemption
        .receipts_of_day(&p, id, day, q.after, q.limit)
        .await?;
    Ok(Json(ReceiptsPageView { receipts, next }))
}

#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    pub id: Uuid,
    pub label: String,
    pub paired_at: String,
    pub unpaired_at: Option<String>,
}

fn device_view(d: &crate::session::TillDevice) -> DeviceView {
    DeviceView {
        id: d.id,
        label: d.label.clone(),
        paired_at: format_time(d.paired_at_micros),
        unpaired_at: d.unpaired_at_micros.map(format_time),
    }
}

/// A shop's till devices, paired and unpaired (admin, staff over the shop, its owner).
#[utoipa::path(get, path = "/v1/shops/{id}/devices", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [DeviceView])))]
async fn list_devices(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Vec<DeviceView>>, Error> {
    let Path(id) = id?;
    let devices = app.sessions.devices(&p, id).await?;
    Ok(Json(devices.iter().map(device_view).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairingBody {
    /// The device's name (柜台 1), 1 to 64 characters.
    pub label: String,
}

#[derive(Serialize, ToSchema)]
pub struct PairingLinkView {
    /// The path to open on the till device (once, within 24 hours): `/till/pair/{secret}`.
    pub path: String,
    pub expires_at: String,
}

/// A one-time link that pairs a till device with the shop; an earlier unused one stops working.
#[utoipa::path(post, path = "/v1/shops/{id}/devices/pairing-link", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = PairingBody,
    responses((status = 201, body = PairingLinkView)))]
async fn pairing_link(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
    Body(body): Body<PairingBody>,
) -> Result<Response, Error> {
    let Path(id) = id?;
    let link = app.sessions.pairing_link(&p, id, &body.label).await?;
    Ok((
        StatusCode::CREATED,
        Json(PairingLinkView {
            path: format!("/till/pair/{}", link.secret),
            expires_at: format_time(link.expires_at_micros),
        }),
    )
        .into_response())
}

/// Unpairs one of the shop's devices; the sessions signed in on it end.
#[utoipa::path(delete, path = "/v1/shops/{id}/devices/{device_id}", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("device_id" = Uuid, Path)),
    responses((status = 200, body = DeviceView), (status = 404)))]
async fn unpair_device(
    State(app): State<App>,
    p: Principal,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
) -> Result<Json<DeviceView>, Error> {
    let Path((id, device_id)) = path?;
    if !app
        .sessions
        .devices(&p, id)
        .await?
        .iter()
        .any(|d| d.id == device_id)
    {
        return Err(crate::error::Error::not_found());
    }
    let device = app.sessions.unpair_device(&p, device_id).await?;
    Ok(Json(device_view(&device)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementsQuery {
    /// The `next` of the page before (an entry sequence).
    pub before: Option<i64>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SettlementView {
    pub entry_id: Uuid,
    pub entry_seq: i64,
    pub posted_at: String,
    /// The period settled, YYYY-MM-DD.
    pub from: String,
    pub to: String,
    /// Points moved from the shop to the settlement account.
    pub points: String,
}

#[derive(Serialize, ToSchema)]
pub struct SettlementsPageView {
    pub settlements: Vec<SettlementView>,
    /// Pass as `before` for the next page; absent on the last.
    pub next: Option<i64>,
}

/// A shop's settlements, newest first (admin, auditor, staff over the shop, its staff).
#[utoipa::path(get, path = "/v1/shops/{id}/settlements", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("before" = Option<i64>, Query), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = SettlementsPageView)))]
async fn list_settlements(
    State(app): State<App>,
    p: Principal,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<SettlementsQuery>, QueryRejection>,
) -> Result<Json<SettlementsPageView>, Error> {
    let Path(id) = id?;
    let Query(q) = query?;
    let (rows, next) = app
        .redemption
        .settlements(&p, id, q.before, q.limit)
        .await?;
    Ok(Json(SettlementsPageView {
        settlements: rows
            .iter()
            .map(|r| SettlementView {
                entry_id: r.entry_id,
                entry_seq: r.entry_seq,
                posted_at: format_time(r.posted_at_micros),
                from: r.from.clone(),
                to: r.to.clone(),
                points: format_minor(r.points_minor),
            })
            .collect(),
        next,
    }))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_shop,
        get_shop,
        add_staff,
        catalogue,
        put_item,
        move_stock,
        stock_history,
        issue_credential,
        revoke_credential,
        current_code,
        current_code_svg,
        redeem,
        get_receipt,
        receipt_qr,
        refund,
        verify_receipt,
        statement,
        settle,
        list_shops,
        list_staff,
        remove_staff,
        set_staff_pin,
        receipts_of_day,
        list_devices,
        pairing_link,
        unpair_device,
        list_settlements
    ),
    components(schemas(
        IssuedCredential,
        CurrentCode,
        Statement,
        CommunityLine,
        StatementReceipt,
        ShopBody,
        ShopView,
        StaffBody,
        StaffView,
        ItemBody,
        ItemView,
        StockBody,
        StockView,
        StockMoveView,
        LineBody,
        CardBody,
        RedeemBody,
        ReceiptLineView,
        ReceiptView,
        RefundBody,
        VerifyBody,
        ReceiptCheckView,
        ReceiptFields,
        PeriodQuery,
        SettleBody,
        ShopsQuery,
        ListedShopView,
        ShopsPageView,
        StaffMemberView,
        PinBody,
        DayQuery,
        ReceiptsPageView,
        DeviceView,
        PairingBody,
        PairingLinkView,
        SettlementsQuery,
        SettlementView,
        SettlementsPageView
    ))
)]
pub struct RedeemDoc;
