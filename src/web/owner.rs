//! The shop owner's pages: the owner's home (today's takings, stock running low), catalogue and
//! stock (restock in one step), staff and till devices (add a clerk with a PIN, remove one —
//! their sessions end at once —, pair and unpair tills), statements by date range with a CSV
//! that Chinese Excel opens as it is, settlements (日结); and `/shops`, the shops a caller may
//! see (admin, staff, a shop) with the form that registers one.
//!
//! The shop is the signed-in shop account's own (`role` shop), or for an administrator or
//! community staff the `shop` named in the query or form. Every check is the services'.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use uuid::Uuid;

use super::i18n::{day_words, messages, plain_number};
use super::resident::try_page;
use super::{done, Ctx, Lang, PageError, PageResult, M};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::calendar::{day_of, format_date, parse_date};
use crate::error::{Error, ErrorCode};
use crate::ledger::{format_minor, Amount};
use crate::redeem::service::{NewItem, NewShop, StaffRole, Statement, StockChange};
use crate::store::redeem::Shop;

messages! {
    enum S;
    SettledInto => "结算入账社区", "Settled into the account of";
    SettledIntoHint => "本店服务几个社区时，所有居民兑换的积分都结算进本店所属社区的结算账户；按社区的明细说明积分来自哪里，社区之间在账外结清。", "When the shop serves several communities, every resident's points settle into the settlement account of the shop's own community; the lines by community show where the points came from, and communities square up between themselves outside the ledger.";
    OwnerHome => "店铺管理", "Shop management";
    Items => "商品与库存", "Items and stock";
    Staff => "店员与收银机", "Staff and tills";
    StatementTitle => "对账单", "Statement";
    Settlements => "结算记录", "Settlements";
    ToTill => "去收银台", "Go to the till";
    TodayTakings => "今日收入", "Today's takings";
    Exchanges => "兑换笔数", "Exchanges";
    RefundsCount => "退货笔数", "Refunds";
    NetPoints => "净收积分", "Net points";
    LowStock => "库存不足", "Stock running low";
    NoLowStock => "所有商品库存充足。", "Every item has enough stock.";
    Sku => "编号", "Code";
    Name => "名称", "Name";
    NameZh => "中文名称", "Name (Chinese)";
    NameEn => "英文名称（可不填）", "Name (English, optional)";
    Unit => "单位", "Unit";
    Price => "价格（积分）", "Price (points)";
    CapDay => "每人每日限购", "Per resident per day";
    NoCap => "不限", "none";
    Stock => "库存", "Stock";
    NotCounted => "不计库存", "not counted";
    Restock => "补货", "Restock";
    RestockQty => "补货数量", "Units to add";
    Edit => "修改", "Edit";
    AddItem => "添加商品", "Add an item";
    EditItem => "修改商品", "Edit the item";
    TrackStock => "计算库存", "Count stock";
    OnSale => "在售", "On sale";
    OffSale => "已下架", "Not on sale";
    Save => "保存", "Save";
    Restocked => "已补货。", "Restocked.";
    ItemSaved => "商品已保存。", "The item is saved.";
    StaffList => "店员", "Staff";
    RoleCol => "身份", "Role";
    OwnerRole => "店主", "Owner";
    ClerkRole => "店员", "Clerk";
    CashierRole => "收银员（只能扫码）", "Cashier (scan only)";
    PinCol => "收银机PIN", "Till PIN";
    PinSet => "已设置", "set";
    PinNone => "未设置", "not set";
    Added => "加入时间", "Added";
    Removed => "已移除", "Removed";
    Remove => "移除", "Remove";
    AddClerk => "添加店员", "Add a clerk";
    ClerkName => "姓名（收银机上显示）", "Name (shown at the till)";
    Pin => "6位PIN（在收银机登录用）", "6-digit PIN (to sign in at the till)";
    PinHint => "不要用123456、111111这类简单数字。", "Not an easy one such as 123456 or 111111.";
    ClerkAdded => "店员已添加，可在已配对的收银机上用姓名和PIN登录。", "The clerk is added and can sign in at a paired till with their name and PIN.";
    ConfirmRemove => "确认移除这位店员？", "Remove this member of staff?";
    RemoveEffect => "移除后，此人在所有收银机和电脑上的登录立刻失效，PIN也被删除。此操作不能撤销；以后可以重新添加。", "Once removed, their sign-in ends at once on every till and computer and their PIN is deleted. This cannot be undone; you can add them again later.";
    ConfirmRemoveButton => "确认移除", "Remove";
    Cancel => "取消", "Cancel";
    StaffRemoved => "已移除。此人的登录已失效。", "Removed. Their sign-in has ended.";
    Devices => "收银机", "Till devices";
    DeviceLabel => "收银机名称", "Device name";
    Paired => "配对时间", "Paired";
    State => "状态", "State";
    InUse => "使用中", "in use";
    Unpaired => "已解除", "unpaired";
    Unpair => "解除配对", "Unpair";
    DeviceUnpaired => "已解除配对，这台收银机上的登录已结束。", "Unpaired; the sign-ins on that device have ended.";
    PairNew => "配对新收银机", "Pair a new till";
    PairHint => "在要配对的收银机上打开下面的链接（或扫描二维码），24小时内有效，只能用一次。", "Open this link on the till to pair (or scan the QR code). It works once, within 24 hours.";
    NoDevices => "还没有配对的收银机。", "No till is paired yet.";
    From => "从", "From";
    To => "到", "To";
    Show => "查看", "Show";
    DownloadCsv => "下载CSV（Excel可直接打开）", "Download CSV (opens in Excel)";
    ByCommunity => "按社区", "By community";
    Community => "社区", "Community";
    Redeemed => "兑换", "Redeemed";
    Refunded => "退货", "Refunded";
    Time => "时间", "Time";
    Kind => "类型", "Kind";
    Exchange => "兑换", "exchange";
    RefundKind => "退货", "refund";
    Resident => "居民（化名）", "Resident (pseudonym)";
    PointsCol => "积分", "Points";
    NoReceipts => "这段时间没有兑换。", "No exchanges in this period.";
    MoreInCsv => "只显示前200笔；CSV里有全部。", "Only the first 200 are shown; the CSV has them all.";
    SettleNow => "日结（结算到今天）", "Settle now (日结, up to today)";
    SettleHint => "把这段时间的净收积分结算给社区。同一天不会结算两次。", "Settles the period's net points with the community. No day is settled twice.";
    Settled => "已结算。", "Settled.";
    Period => "结算期间", "Period";
    When => "结算时间", "Settled at";
    NoSettlements => "还没有结算记录。", "Nothing has been settled yet.";
    ShopsTitle => "商铺", "Shops";
    Serves => "服务的社区", "Communities served";
    HomeCommunity => "所属社区", "Home community";
    Open => "打开", "Open";
    NoShops => "没有可查看的商铺。", "There is no shop you may see.";
    NextPage => "下一页", "Next page";
    NewShop => "登记商铺", "Register a shop";
    ShopNameZh => "店名（中文）", "Shop name (Chinese)";
    ShopNameEn => "店名（英文，可不填）", "Shop name (English, optional)";
    CommunityId => "所属社区编号", "Home community id";
    ServesMore => "也服务的其他社区编号（用空格或逗号分开，可不填）", "Other communities served (ids, separated by spaces or commas; optional)";
    RefundDays => "可退货天数（0–90）", "Refund window in days (0–90)";
    Register => "登记", "Register";
    ShopCreated => "商铺已登记。", "The shop is registered.";
    Presented => "顾客", "Customer";
    History => "库存记录", "Stock history";
    Change => "变动", "Change";
    Reason => "原因", "Reason";
    After => "变动后", "After";
    NoMoves => "还没有补货或盘点记录（销售和退货在小票上）。", "No restock or count yet (sales and refunds are on the receipts).";
    HasPoints => "现有积分", "has points";
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/shop", get(home))
        .route("/shop/items", get(items).post(save_item))
        .route("/shop/items/restock", post(restock))
        .route("/shop/staff", get(staff).post(add_clerk))
        .route("/shop/staff/remove", get(remove_page).post(remove))
        .route("/shop/devices/pair", post(pair))
        .route("/shop/devices/unpair", post(unpair))
        .route("/shop/statement", get(statement))
        .route("/shop/statement.csv", get(statement_csv))
        .route("/shop/settlements", get(settlements).post(settle))
        .route("/shops", get(shops).post(create_shop))
}

/// Most form fields one owner form may carry.
const FORM_FIELDS_MAX: usize = 32;
/// Stock at or below this is a warning on the owner's home.
const LOW_STOCK: i64 = 5;
/// Most receipts the statement page lists (the CSV has them all).
const STATEMENT_ROWS_MAX: usize = 200;

type Fields = Vec<(String, String)>;

/// A form field's value (the first of its name), trimmed, at most 256 characters.
fn field(fields: &Fields, name: &str) -> String {
    fields
        .iter()
        .take(FORM_FIELDS_MAX)
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim().chars().take(256).collect())
        .unwrap_or_default()
}

#[derive(serde::Deserialize, Default)]
struct Which {
    shop: Option<String>,
    done: Option<String>,
    edit: Option<String>,
    history: Option<String>,
    staff: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

/// The shop these pages are about: the one named (an administrator, community staff), else the
/// signed-in shop account's own.
async fn the_shop(
    app: &App,
    ctx: &mut Ctx,
    named: Option<&str>,
) -> Result<(Principal, Shop), PageError> {
    let p = ctx.principal()?.clone();
    let id = match named.map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => Uuid::parse_str(text).map_err(|_| Error::not_found())?,
        None => match (p.role, p.scope.as_deref().map(Uuid::parse_str)) {
            (Role::Shop, Some(Ok(id))) => id,
            _ => return Err(PageError::Refused(Error::not_found())),
        },
    };
    let shop = app.redemption.shop(&p, id).await?;
    if p.role != Role::Shop && !ctx.path.contains('?') {
        // The language and mode switches keep the shop named.
        ctx.path = format!("{}?shop={}", ctx.path, shop.id);
    }
    Ok((p, shop))
}

fn shop_name(lang: Lang, shop: &Shop) -> String {
    match lang {
        Lang::En if !shop.name_en.is_empty() => shop.name_en.clone(),
        _ => shop.name_zh.clone(),
    }
}

/// What every owner page shows at its top: the shop, the area bar, a notice or a refusal.
pub struct Head {
    pub shop: String,
    /// `?shop=…` for the links (empty for the shop's own account).
    pub q: String,
    pub shop_id: String,
    pub here: &'static str,
    pub notice: Option<&'static str>,
    pub refusal: Option<String>,
    pub at_till: bool,
}

fn head(ctx: &Ctx, p: &Principal, shop: &Shop, here: &'static str) -> Head {
    let own = p.role == Role::Shop;
    Head {
        shop: shop_name(ctx.lang, shop),
        q: if own {
            String::new()
        } else {
            format!("?shop={}", shop.id)
        },
        shop_id: shop.id.to_string(),
        here,
        notice: None,
        refusal: None,
        at_till: own,
    }
}

fn notice_of(done: Option<&str>) -> Option<S> {
    Some(match done? {
        "restocked" => S::Restocked,
        "item" => S::ItemSaved,
        "clerk" => S::ClerkAdded,
        "removed" => S::StaffRemoved,
        "unpaired" => S::DeviceUnpaired,
        "settled" => S::Settled,
        "shop" => S::ShopCreated,
        _ => return None,
    })
}

/// `path` with the shop named for an administrator or staff, and `extra` query pairs.
fn link(head: &Head, path: &str, extra: &str) -> String {
    match (head.q.is_empty(), extra.is_empty()) {
        (true, true) => path.to_owned(),
        (true, false) => format!("{path}?{extra}"),
        (false, true) => format!("{path}{}", head.q),
        (false, false) => format!("{path}{}&{extra}", head.q),
    }
}

fn new_key(app: &App) -> String {
    format!("owner-{}", app.entropy.uuid())
}

fn render(ctx: Ctx, status: StatusCode, rendered: askama::Result<String>) -> PageResult {
    Ok(ctx.html_status(status, rendered))
}

fn status_of(head: &Head) -> StatusCode {
    if head.refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

// ---- Home ----

#[derive(askama::Template)]
#[template(path = "owner_home.html")]
struct HomePage<'a> {
    ctx: &'a Ctx,
    head: Head,
    day: String,
    redemptions: usize,
    refunds: usize,
    net: String,
    low: Vec<(String, String, i64)>,
}

async fn home(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    done(home_inner(app, ctx, q).await)
}

async fn home_inner(app: App, mut ctx: Ctx, q: Which) -> PageResult {
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, q.shop.as_deref()).await);
    let today = day_of(app.clock.now_micros());
    let s = try_page!(
        ctx,
        app.redemption.statement(&p, shop.id, today, today).await
    );
    let catalogue = try_page!(ctx, app.redemption.catalogue(&p, shop.id).await);
    let low = catalogue
        .into_iter()
        .filter_map(|(item, stock)| {
            let stock = stock.filter(|s| *s <= LOW_STOCK && item.active)?;
            let name = match ctx.lang {
                Lang::En if !item.name_en.is_empty() => item.name_en.clone(),
                _ => item.name_zh.clone(),
            };
            Some((item.sku, name, stock))
        })
        .collect();
    let mut head = head(&ctx, &p, &shop, "/shop");
    head.notice = notice_of(q.done.as_deref()).map(|m| ctx.t(m));
    let page = HomePage {
        ctx: &ctx,
        day: day_words(ctx.lang, today),
        redemptions: s.redemptions,
        refunds: s.refunds,
        net: plain_number(s.net_minor),
        low,
        head,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, StatusCode::OK, html)
}

// ---- Items ----

pub struct ItemRow {
    pub history: String,
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub price: String,
    pub cap_day: Option<i64>,
    pub stock: Option<i64>,
    pub active: bool,
    pub edit: String,
}

/// The add/edit form's values.
#[derive(Default)]
pub struct ItemForm {
    pub editing: bool,
    pub sku: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub price: String,
    pub cap_day: String,
    pub track_stock: bool,
    pub active: bool,
}

/// A stock move as the history lists it: when, the change, the reason, the level after.
type MoveRow = (String, String, &'static str, i64);

#[derive(askama::Template)]
#[template(path = "owner_items.html")]
struct ItemsPage<'a> {
    ctx: &'a Ctx,
    head: Head,
    rows: Vec<ItemRow>,
    /// The stock moves of the item asked for: its name, then (when, change, reason, level).
    history: Option<(String, Vec<MoveRow>)>,
    form: ItemForm,
    key: String,
}

async fn items(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    let notice = notice_of(q.done.as_deref());
    let pick = (q.edit, q.history);
    done(show_items(app, ctx, q.shop, pick, notice, None, None).await)
}

async fn show_items(
    app: App,
    mut ctx: Ctx,
    shop: Option<String>,
    (edit, history): (Option<String>, Option<String>),
    notice: Option<S>,
    refusal: Option<String>,
    form: Option<ItemForm>,
) -> PageResult {
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop.as_deref()).await);
    let catalogue = try_page!(ctx, app.redemption.catalogue(&p, shop.id).await);
    let history = match history {
        Some(sku) => {
            let moves = try_page!(ctx, app.redemption.stock_history(&p, shop.id, &sku).await);
            let name = catalogue
                .iter()
                .find(|(i, _)| i.sku == sku)
                .map(|(i, _)| format!("{}（{}）", i.name_zh, i.sku))
                .unwrap_or(sku);
            let rows = moves
                .iter()
                .rev()
                .map(|m| {
                    let reason = match (m.reason.as_str(), ctx.lang) {
                        ("restock", Lang::Zh) => "补货",
                        ("count", Lang::Zh) => "盘点",
                        ("damaged", Lang::Zh) => "损坏",
                        ("returned_to_supplier", Lang::Zh) => "退回供应商",
                        ("restock", _) => "restock",
                        ("count", _) => "count",
                        ("damaged", _) => "damaged",
                        _ => "returned to supplier",
                    };
                    let change = if m.delta > 0 {
                        format!("+{}", m.delta)
                    } else {
                        m.delta.to_string()
                    };
                    (when(ctx.lang, m.at_micros), change, reason, m.level)
                })
                .collect();
            Some((name, rows))
        }
        None => None,
    };
    let mut head = head(&ctx, &p, &shop, "/shop/items");
    head.notice = notice.map(|m| ctx.t(m));
    head.refusal = refusal;
    let form = form.unwrap_or_else(|| {
        match catalogue
            .iter()
            .find(|(i, _)| Some(&i.sku) == edit.as_ref())
        {
            Some((i, _)) => ItemForm {
                editing: true,
                sku: i.sku.clone(),
                name_zh: i.name_zh.clone(),
                name_en: i.name_en.clone(),
                unit: i.unit.clone(),
                price: format_minor(i.price_minor),
                cap_day: i.cap_day.map(|c| c.to_string()).unwrap_or_default(),
                track_stock: i.track_stock,
                active: i.active,
            },
            None => ItemForm {
                track_stock: true,
                active: true,
                ..ItemForm::default()
            },
        }
    });
    let rows = catalogue
        .into_iter()
        .map(|(i, stock)| ItemRow {
            history: link(
                &head,
                "/shop/items",
                &format!("history={}", super::urlencode(&i.sku)),
            ),
            edit: link(
                &head,
                "/shop/items",
                &format!("edit={}", super::urlencode(&i.sku)),
            ),
            name: match ctx.lang {
                Lang::En if !i.name_en.is_empty() => i.name_en.clone(),
                _ => i.name_zh.clone(),
            },
            sku: i.sku,
            unit: i.unit,
            price: plain_number(i.price_minor),
            cap_day: i.cap_day,
            stock,
            active: i.active,
        })
        .collect();
    let status = status_of(&head);
    let page = ItemsPage {
        ctx: &ctx,
        head,
        rows,
        history,
        form,
        key: new_key(&app),
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, status, html)
}

async fn restock(State(app): State<App>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    done(restock_inner(app, ctx, fields).await)
}

async fn restock_inner(app: App, mut ctx: Ctx, fields: Fields) -> PageResult {
    let shop_field = Some(field(&fields, "shop")).filter(|s| !s.is_empty());
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop_field.as_deref()).await);
    let sku = field(&fields, "sku");
    let quantity = super::till::normalise_digits(&field(&fields, "quantity"));
    let key = field(&fields, "key");
    let result = match quantity.parse::<i64>() {
        Ok(q) if q > 0 => {
            app.redemption
                .move_stock(
                    &p,
                    &key,
                    shop.id,
                    &sku,
                    StockChange {
                        delta: q,
                        reason: "restock".to_owned(),
                        note: String::new(),
                    },
                )
                .await
        }
        _ => Err(Error::new(
            ErrorCode::InvalidBody,
            "the units to add must be a whole number above 0",
        )),
    };
    let head = head(&ctx, &p, &shop, "/shop/items");
    match result {
        Ok(_) => {
            let to = link(&head, "/shop/items", "done=restocked");
            Ok(ctx.redirect(&to))
        }
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            show_items(
                app,
                ctx,
                shop_field,
                (None, None),
                None,
                Some(sentence),
                None,
            )
            .await
        }
    }
}

async fn save_item(State(app): State<App>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    done(save_item_inner(app, ctx, fields).await)
}

/// A whole number of at most 9 digits from a form (full-width digits too), or None when empty.
fn whole(text: &str, name: &str) -> Result<Option<i64>, Error> {
    let digits = super::till::normalise_digits(text);
    if digits.is_empty() {
        return Ok(None);
    }
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| digits.len() <= 9 && *n >= 0)
        .map(Some)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidBody,
                format!("{name} must be a whole number"),
            )
            .with_fields(crate::error::Fields {
                field: Some(name.to_owned()),
                ..Default::default()
            })
        })
}

async fn save_item_inner(app: App, mut ctx: Ctx, fields: Fields) -> PageResult {
    let shop_field = Some(field(&fields, "shop")).filter(|s| !s.is_empty());
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop_field.as_deref()).await);
    let form = ItemForm {
        editing: field(&fields, "editing") == "1",
        sku: field(&fields, "sku"),
        name_zh: field(&fields, "name_zh"),
        name_en: field(&fields, "name_en"),
        unit: field(&fields, "unit"),
        price: field(&fields, "price"),
        cap_day: field(&fields, "cap_day"),
        track_stock: !field(&fields, "track_stock").is_empty(),
        active: !field(&fields, "active").is_empty(),
    };
    let result = async {
        let price = Amount::parse(&super::till::normalise_digits(&form.price))
            .map_err(|e| Error::new(ErrorCode::from(e), format!("price: {e}")))?;
        let cap_day = whole(&form.cap_day, "cap_day")?.filter(|c| *c > 0);
        app.redemption
            .put_item(
                &p,
                shop.id,
                &form.sku,
                NewItem {
                    name_zh: form.name_zh.clone(),
                    name_en: form.name_en.clone(),
                    unit: form.unit.clone(),
                    price,
                    track_stock: form.track_stock,
                    cap_day,
                    cap_month: None,
                    active: form.active,
                },
            )
            .await
    }
    .await;
    let head = head(&ctx, &p, &shop, "/shop/items");
    match result {
        Ok(_) => {
            let to = link(&head, "/shop/items", "done=item");
            Ok(ctx.redirect(&to))
        }
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            show_items(
                app,
                ctx,
                shop_field,
                (None, None),
                None,
                Some(sentence),
                Some(form),
            )
            .await
        }
    }
}

// ---- Staff and devices ----

pub struct StaffRow {
    pub token_id: String,
    pub name: String,
    pub role: &'static str,
    pub has_pin: bool,
    pub added: String,
    pub removed: Option<String>,
    pub remove: String,
    pub me: bool,
}

pub struct DeviceRow {
    pub id: String,
    pub label: String,
    pub paired: String,
    pub unpaired: bool,
}

#[derive(askama::Template)]
#[template(path = "owner_staff.html")]
struct StaffPage<'a> {
    ctx: &'a Ctx,
    head: Head,
    staff: Vec<StaffRow>,
    devices: Vec<DeviceRow>,
    key: String,
    name: String,
    /// A pairing link just made: its URL and QR code.
    pairing: Option<(String, String)>,
}

async fn staff(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    let notice = notice_of(q.done.as_deref());
    done(show_staff(app, ctx, q.shop, notice, None, String::new(), None).await)
}

fn when(lang: Lang, micros: i64) -> String {
    let d = day_of(micros);
    let seconds = (micros.div_euclid(1_000_000) + crate::calendar::CALENDAR_UTC_OFFSET_SECONDS)
        .rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}",
        day_words(lang, d),
        seconds / 3600,
        seconds % 3600 / 60
    )
}

async fn show_staff(
    app: App,
    mut ctx: Ctx,
    shop: Option<String>,
    notice: Option<S>,
    refusal: Option<String>,
    name: String,
    pairing: Option<(String, String)>,
) -> PageResult {
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop.as_deref()).await);
    let members = try_page!(ctx, app.redemption.shop_staff_list(&p, shop.id).await);
    let devices = try_page!(ctx, app.sessions.devices(&p, shop.id).await);
    let mut head = head(&ctx, &p, &shop, "/shop/staff");
    head.notice = notice.map(|m| ctx.t(m));
    head.refusal = refusal;
    let staff = members
        .iter()
        .map(|m| StaffRow {
            token_id: m.staff.token_id.to_string(),
            name: m.staff.name.clone(),
            role: ctx.t(if m.staff.owner {
                S::OwnerRole
            } else if m.cashier {
                S::CashierRole
            } else {
                S::ClerkRole
            }),
            has_pin: m.has_pin,
            added: when(ctx.lang, m.added_at_micros),
            removed: m.removed_at_micros.map(|r| when(ctx.lang, r)),
            remove: link(
                &head,
                "/shop/staff/remove",
                &format!("staff={}", m.staff.token_id),
            ),
            me: m.staff.token_id == p.token_id,
        })
        .collect();
    let devices = devices
        .iter()
        .rev()
        .map(|d| DeviceRow {
            id: d.id.to_string(),
            label: d.label.clone(),
            paired: when(ctx.lang, d.paired_at_micros),
            unpaired: d.unpaired_at_micros.is_some(),
        })
        .collect();
    let status = status_of(&head);
    let page = StaffPage {
        ctx: &ctx,
        head,
        staff,
        devices,
        key: new_key(&app),
        name,
        pairing,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, status, html)
}

async fn add_clerk(State(app): State<App>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    done(add_clerk_inner(app, ctx, fields).await)
}

async fn add_clerk_inner(app: App, mut ctx: Ctx, fields: Fields) -> PageResult {
    let shop_field = Some(field(&fields, "shop")).filter(|s| !s.is_empty());
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop_field.as_deref()).await);
    let name = field(&fields, "name");
    let pin = super::till::normalise_digits(&field(&fields, "pin"));
    let role = if field(&fields, "role") == "cashier" {
        StaffRole::Cashier
    } else {
        StaffRole::Clerk
    };
    let key = field(&fields, "key");
    let result = async {
        // The PIN is checked first: a clerk is not added with a PIN that would be refused.
        crate::session::check_pin(&pin)?;
        let (member, _, _) = app
            .redemption
            .add_shop_staff_as(&p, &key, shop.id, &name, role)
            .await?;
        app.sessions.set_clerk_pin(&p, member.token_id, &pin).await
    }
    .await;
    let head = head(&ctx, &p, &shop, "/shop/staff");
    match result {
        Ok(()) => {
            let to = link(&head, "/shop/staff", "done=clerk");
            Ok(ctx.redirect(&to))
        }
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            show_staff(app, ctx, shop_field, None, Some(sentence), name, None).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "owner_remove.html")]
struct RemovePage<'a> {
    ctx: &'a Ctx,
    head: Head,
    token_id: String,
    name: String,
    back: String,
}

async fn remove_page(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    done(remove_page_inner(app, ctx, q).await)
}

async fn remove_page_inner(app: App, mut ctx: Ctx, q: Which) -> PageResult {
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, q.shop.as_deref()).await);
    let members = try_page!(ctx, app.redemption.shop_staff_list(&p, shop.id).await);
    let wanted = q
        .staff
        .as_deref()
        .and_then(|s| Uuid::parse_str(s.trim()).ok());
    let member = try_page!(
        ctx,
        members
            .into_iter()
            .find(|m| Some(m.staff.token_id) == wanted && m.removed_at_micros.is_none())
            .ok_or_else(Error::not_found)
    );
    let head = head(&ctx, &p, &shop, "/shop/staff");
    let page = RemovePage {
        ctx: &ctx,
        back: link(&head, "/shop/staff", ""),
        head,
        token_id: member.staff.token_id.to_string(),
        name: member.staff.name,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, StatusCode::OK, html)
}

async fn remove(State(app): State<App>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    done(remove_inner(app, ctx, fields).await)
}

async fn remove_inner(app: App, mut ctx: Ctx, fields: Fields) -> PageResult {
    let shop_field = Some(field(&fields, "shop")).filter(|s| !s.is_empty());
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop_field.as_deref()).await);
    let staff = try_page!(
        ctx,
        Uuid::parse_str(&field(&fields, "staff")).map_err(|_| Error::not_found())
    );
    try_page!(
        ctx,
        app.redemption.remove_shop_staff(&p, shop.id, staff).await
    );
    let head = head(&ctx, &p, &shop, "/shop/staff");
    let to = link(&head, "/shop/staff", "done=removed");
    Ok(ctx.redirect(&to))
}

async fn pair(
    State(app): State<App>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    done(pair_inner(app, ctx, headers, fields).await)
}

async fn pair_inner(app: App, mut ctx: Ctx, headers: HeaderMap, fields: Fields) -> PageResult {
    let shop_field = Some(field(&fields, "shop")).filter(|s| !s.is_empty());
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop_field.as_deref()).await);
    let label = field(&fields, "label");
    match app.sessions.pairing_link(&p, shop.id, &label).await {
        Ok(link) => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1:8080");
            let scheme = if ctx.secure { "https" } else { "http" };
            let url = format!("{scheme}://{host}/till/pair/{}", link.secret);
            let qr = crate::redeem::receipt::qr_svg(&url).unwrap_or_default();
            show_staff(
                app,
                ctx,
                shop_field,
                None,
                None,
                String::new(),
                Some((url, qr)),
            )
            .await
        }
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            show_staff(
                app,
                ctx,
                shop_field,
                None,
                Some(sentence),
                String::new(),
                None,
            )
            .await
        }
    }
}

async fn unpair(State(app): State<App>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    done(unpair_inner(app, ctx, fields).await)
}

async fn unpair_inner(app: App, mut ctx: Ctx, fields: Fields) -> PageResult {
    let shop_field = Some(field(&fields, "shop")).filter(|s| !s.is_empty());
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop_field.as_deref()).await);
    let device = Uuid::parse_str(&field(&fields, "device")).ok();
    let devices = try_page!(ctx, app.sessions.devices(&p, shop.id).await);
    let device = try_page!(
        ctx,
        devices
            .iter()
            .find(|d| Some(d.id) == device)
            .map(|d| d.id)
            .ok_or_else(Error::not_found)
    );
    try_page!(ctx, app.sessions.unpair_device(&p, device).await);
    let head = head(&ctx, &p, &shop, "/shop/staff");
    let to = link(&head, "/shop/staff", "done=unpaired");
    Ok(ctx.redirect(&to))
}

// ---- Statements ----

pub struct ReceiptRow {
    pub when: String,
    pub kind: &'static str,
    pub community: String,
    pub resident: String,
    pub points: String,
    pub href: String,
}

#[derive(askama::Template)]
#[template(path = "owner_statement.html")]
struct StatementPage<'a> {
    ctx: &'a Ctx,
    head: Head,
    from: String,
    to: String,
    statement: Option<Statement>,
    rows: Vec<ReceiptRow>,
    more: bool,
    csv: String,
    net: String,
    /// Per community: id, redeemed, refunded, net.
    communities: Vec<(String, String, String, String)>,
}

/// The period of a statement form: both days given, or today.
fn period_of(
    app: &App,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(time::Date, time::Date), Error> {
    let today = day_of(app.clock.now_micros());
    let parse = |text: Option<&str>| match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(today),
        Some(t) => parse_date(t)
            .ok_or_else(|| Error::new(ErrorCode::DateInvalid, "a date is written YYYY-MM-DD")),
    };
    Ok((parse(from)?, parse(to)?))
}

async fn statement(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    done(statement_inner(app, ctx, q).await)
}

async fn statement_inner(app: App, mut ctx: Ctx, q: Which) -> PageResult {
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, q.shop.as_deref()).await);
    let mut head = head(&ctx, &p, &shop, "/shop/statement");
    let from_text = q.from.clone().unwrap_or_default();
    let to_text = q.to.clone().unwrap_or_default();
    let result = match period_of(&app, q.from.as_deref(), q.to.as_deref()) {
        Ok((from, to)) => app
            .redemption
            .statement(&p, shop.id, from, to)
            .await
            .map(|s| (from, to, s)),
        Err(e) => Err(e),
    };
    let (from, to, statement) = match result {
        Ok((from, to, s)) => (format_date(from), format_date(to), Some(s)),
        Err(error) => {
            head.refusal = Some(super::sentence(ctx.lang, &error));
            (from_text, to_text, None)
        }
    };
    let rows = statement
        .iter()
        .flat_map(|s| s.receipts.iter())
        .take(STATEMENT_ROWS_MAX)
        .map(|r| ReceiptRow {
            when: when(ctx.lang, r.posted_at_micros),
            kind: ctx.t(if r.kind == "refund" {
                S::RefundKind
            } else {
                S::Exchange
            }),
            community: r.community_id.clone(),
            resident: r.resident.clone(),
            points: plain_number(r.points_minor),
            href: format!("/till/receipts/{}", r.receipt_id),
        })
        .collect();
    let more = statement
        .as_ref()
        .is_some_and(|s| s.receipts.len() > STATEMENT_ROWS_MAX);
    let csv = link(
        &head,
        "/shop/statement.csv",
        &format!(
            "from={}&to={}",
            super::urlencode(&from),
            super::urlencode(&to)
        ),
    );
    let net = statement
        .as_ref()
        .map(|s| plain_number(s.net_minor))
        .unwrap_or_default();
    let communities = statement
        .iter()
        .flat_map(|s| s.by_community.iter())
        .map(|c| {
            (
                c.community_id.clone(),
                plain_number(c.redeemed_minor),
                plain_number(c.refunded_minor),
                plain_number(c.net_minor),
            )
        })
        .collect();
    let status = status_of(&head);
    let page = StatementPage {
        ctx: &ctx,
        head,
        from,
        to,
        statement,
        rows,
        more,
        csv,
        net,
        communities,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, status, html)
}

/// A statement as CSV for Chinese Excel: UTF-8 with a byte-order mark (without it Excel reads
/// GBK), CRLF line ends, Chinese headers, amounts as exact decimals, every cell quoted as it
/// needs and a cell that a spreadsheet would read as a formula (= + - @) prefixed with `'`.
pub fn statement_csv_text(shop: &str, s: &Statement) -> String {
    let mut out = String::from("\u{FEFF}");
    let mut record = |fields: &[&str]| {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::audit::format::spreadsheet_cell(&mut out, f);
        }
        out.push_str("\r\n");
    };
    record(&[
        "店铺",
        shop,
        "期间",
        &format_date(s.from),
        &format_date(s.to),
    ]);
    record(&[
        "兑换笔数",
        &s.redemptions.to_string(),
        "退货笔数",
        &s.refunds.to_string(),
        "净收积分",
        &format_minor(s.net_minor),
        "结算入账社区",
        &s.settlement_community_id,
    ]);
    record(&[
        "小票编号",
        "类型",
        "时间",
        "社区",
        "居民（化名）",
        "积分",
        "流水号",
    ]);
    for r in &s.receipts {
        record(&[
            &r.receipt_id.to_string(),
            if r.kind == "refund" {
                "退货"
            } else {
                "兑换"
            },
            &crate::calendar::format_time(r.posted_at_micros),
            &r.community_id,
            &r.resident,
            &format_minor(r.points_minor),
            &r.entry_seq.to_string(),
        ]);
    }
    out
}

async fn statement_csv(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    done(statement_csv_inner(app, ctx, q).await)
}

async fn statement_csv_inner(app: App, mut ctx: Ctx, q: Which) -> PageResult {
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, q.shop.as_deref()).await);
    let (from, to) = try_page!(ctx, period_of(&app, q.from.as_deref(), q.to.as_deref()));
    let s = try_page!(ctx, app.redemption.statement(&p, shop.id, from, to).await);
    let body = statement_csv_text(&shop.name_zh, &s);
    let name = format!(
        "attachment; filename=\"statement-{}-{}.csv\"",
        format_date(from),
        format_date(to)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response())
}

// ---- Settlements ----

pub struct SettlementRow {
    pub period: String,
    pub when: String,
    pub points: String,
    pub seq: i64,
}

#[derive(askama::Template)]
#[template(path = "owner_settlements.html")]
struct SettlementsPage<'a> {
    ctx: &'a Ctx,
    head: Head,
    rows: Vec<SettlementRow>,
    from: String,
    to: String,
    key: String,
}

async fn settlements(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    let notice = notice_of(q.done.as_deref());
    done(show_settlements(app, ctx, q.shop, notice, None).await)
}

async fn show_settlements(
    app: App,
    mut ctx: Ctx,
    shop: Option<String>,
    notice: Option<S>,
    refusal: Option<String>,
) -> PageResult {
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop.as_deref()).await);
    let (rows, _) = try_page!(
        ctx,
        app.redemption
            .settlements(&p, shop.id, None, Some(100))
            .await
    );
    let today = day_of(app.clock.now_micros());
    // The next period starts the day after the last one settled (or the shop's first day).
    let from = rows
        .first()
        .and_then(|r| parse_date(&r.to))
        .and_then(|d| d.next_day())
        .unwrap_or_else(|| day_of(shop.created_at_micros))
        .min(today);
    let mut head = head(&ctx, &p, &shop, "/shop/settlements");
    head.notice = notice.map(|m| ctx.t(m));
    head.refusal = refusal;
    let rows = rows
        .iter()
        .map(|r| SettlementRow {
            period: if r.from == r.to {
                r.from.clone()
            } else {
                format!("{} – {}", r.from, r.to)
            },
            when: when(ctx.lang, r.posted_at_micros),
            points: plain_number(r.points_minor),
            seq: r.entry_seq,
        })
        .collect();
    let status = status_of(&head);
    let page = SettlementsPage {
        ctx: &ctx,
        head,
        rows,
        from: format_date(from),
        to: format_date(today),
        key: new_key(&app),
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, status, html)
}

async fn settle(State(app): State<App>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    done(settle_inner(app, ctx, fields).await)
}

async fn settle_inner(app: App, mut ctx: Ctx, fields: Fields) -> PageResult {
    let shop_field = Some(field(&fields, "shop")).filter(|s| !s.is_empty());
    let (p, shop) = try_page!(ctx, the_shop(&app, &mut ctx, shop_field.as_deref()).await);
    let from = field(&fields, "from");
    let to = field(&fields, "to");
    let key = field(&fields, "key");
    let result = match period_of(&app, Some(&from), Some(&to)) {
        Ok((from, to)) => app
            .redemption
            .settle(&p, &key, shop.id, from, to)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            let head = head(&ctx, &p, &shop, "/shop/settlements");
            let to = link(&head, "/shop/settlements", "done=settled");
            Ok(ctx.redirect(&to))
        }
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            show_settlements(app, ctx, shop_field, None, Some(sentence)).await
        }
    }
}

// ---- The shops a caller may see ----

pub struct ShopRow {
    pub name: String,
    pub community: String,
    pub serves: String,
    pub links: Option<(String, String, String)>,
}

#[derive(askama::Template)]
#[template(path = "owner_shops.html")]
struct ShopsPage<'a> {
    ctx: &'a Ctx,
    rows: Vec<ShopRow>,
    next: Option<String>,
    may_create: bool,
    notice: Option<&'static str>,
    refusal: Option<String>,
    key: String,
    form: (String, String, String, String, String),
    staff_bar: bool,
}

async fn shops(State(app): State<App>, ctx: Ctx, Query(q): Query<Which>) -> Response {
    let notice = notice_of(q.done.as_deref());
    done(show_shops(app, ctx, q.after, notice, None, Default::default()).await)
}

async fn show_shops(
    app: App,
    ctx: Ctx,
    after: Option<String>,
    notice: Option<S>,
    refusal: Option<String>,
    form: (String, String, String, String, String),
) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let after = after.and_then(|a| Uuid::parse_str(a.trim()).ok());
    let page_of = try_page!(ctx, app.redemption.shops(&p, after, Some(50)).await);
    let own = p.role == Role::Shop;
    let rows = page_of
        .shops
        .iter()
        .map(|l| {
            let q = if own {
                String::new()
            } else {
                format!("?shop={}", l.shop.id)
            };
            ShopRow {
                name: shop_name(ctx.lang, &l.shop),
                community: l.shop.community_id.clone(),
                serves: l.shop.communities.join("、"),
                links: l.runs.then(|| {
                    (
                        format!("/shop{q}"),
                        format!("/shop/items{q}"),
                        format!("/shop/statement{q}"),
                    )
                }),
            }
        })
        .collect();
    let status = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let form = if form.4.is_empty() {
        (form.0, form.1, form.2, form.3, "7".to_owned())
    } else {
        form
    };
    let page = ShopsPage {
        ctx: &ctx,
        rows,
        next: page_of.next.map(|n| format!("/shops?after={n}")),
        may_create: matches!(p.role, Role::Admin | Role::Staff),
        notice: notice.map(|m| ctx.t(m)),
        refusal,
        key: new_key(&app),
        form,
        staff_bar: p.role == Role::Staff,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, status, html)
}

async fn create_shop(State(app): State<App>, ctx: Ctx, Form(fields): Form<Fields>) -> Response {
    done(create_shop_inner(app, ctx, fields).await)
}

async fn create_shop_inner(app: App, ctx: Ctx, fields: Fields) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let form = (
        field(&fields, "name_zh"),
        field(&fields, "name_en"),
        field(&fields, "community_id"),
        field(&fields, "serves"),
        field(&fields, "refund_window_days"),
    );
    let key = field(&fields, "key");
    let result = async {
        let window = whole(&form.4, "refund_window_days")?;
        let serves: Vec<String> = form
            .3
            .split(|c: char| c == ',' || c == '，' || c == '、' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .take(crate::redeem::service::SHOP_COMMUNITIES_MAX + 1)
            .map(str::to_owned)
            .collect();
        app.redemption
            .create_shop(
                &p,
                &key,
                NewShop {
                    name_zh: form.0.clone(),
                    name_en: form.1.clone(),
                    community_id: form.2.clone(),
                    serves,
                    refund_window_days: window,
                },
            )
            .await
    }
    .await;
    match result {
        Ok((shop, _)) => {
            let to = format!("/shop/items?shop={}&done=shop", shop.id);
            Ok(ctx.redirect(&to))
        }
        Err(error) => {
            let sentence = super::sentence(ctx.lang, &error);
            show_shops(app, ctx, None, None, Some(sentence), form).await
        }
    }
}

/// For the till: the presented resident's line (masked name and points), in the page's words.
pub fn presented_line(lang: Lang, presented: &crate::redeem::owner::Presented) -> String {
    format!(
        "{}：{} · {} {} {}",
        S::Presented.text(lang),
        presented.masked_name,
        S::HasPoints.text(lang),
        plain_number(presented.points_minor),
        M::Points.text(lang)
    )
}

use super::i18n::Text as _;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redeem::service::StatementReceipt;

    #[test]
    fn the_statement_csv_opens_in_chinese_excel_and_runs_no_formula() {
        let day = time::macros::date!(2026 - 01 - 01);
        let receipt = |kind: &str, community: &str, points| StatementReceipt {
            receipt_id: Uuid::nil(),
            kind: kind.to_owned(),
            posted_at_micros: 1_767_225_600_000_000,
            community_id: community.to_owned(),
            resident: "R-1".to_owned(),
            points_minor: points,
            entry_seq: 7,
        };
        let s = Statement {
            shop_id: Uuid::nil(),
            from: day,
            to: day,
            redemptions: 1,
            refunds: 1,
            redeemed_minor: 1234,
            refunded_minor: 1000,
            net_minor: 234,
            settlement_community_id: "c1".to_owned(),
            settlement_account: Uuid::nil(),
            by_community: Vec::new(),
            receipts: vec![
                receipt("redemption", "=HYPERLINK(\"x\")", 1234),
                receipt("refund", "+c2,@x", 1000),
            ],
            after_seq: None,
            through_seq: None,
            entry_id: None,
            entry_seq: None,
        };
        let csv = statement_csv_text("-粮油店", &s);
        assert!(csv.starts_with('\u{FEFF}'), "a byte-order mark");
        assert!(!csv.replace("\r\n", "").contains('\n'), "CRLF only");
        let lines: Vec<&str> = csv.trim_start_matches('\u{FEFF}').split("\r\n").collect();
        assert_eq!(
            lines[0], "店铺,\"'-粮油店\",期间,2026-01-01,2026-01-01",
            "a cell starting with - is prefixed"
        );
        assert_eq!(
            lines[1],
            "兑换笔数,1,退货笔数,1,净收积分,2.34,结算入账社区,c1"
        );
        assert_eq!(lines[2], "小票编号,类型,时间,社区,居民（化名）,积分,流水号");
        assert!(
            lines[3].contains(",兑换,")
                && lines[3].contains(",\"'=HYPERLINK(\"\"x\"\")\",R-1,12.34,7"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].contains(",退货,") && lines[4].contains(",\"'+c2,@x\",R-1,10.00,7"),
            "{}",
            lines[4]
        );
        assert_eq!(lines[5], "", "the file ends with a line end");
    }
}
