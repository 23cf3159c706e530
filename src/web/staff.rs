//! The community staff's pages, desktop first and fully keyboard operable: the work table
//! (`/staff`: what waits, each one click away), finding and registering residents
//! (`/staff/residents`: one search box; a phone already registered in the community is warned
//! and needs a confirm), a resident's page (`/staff/residents/{id}`: balance, history, lots,
//! the card; issue or re-issue it, the PIN shown once on a slip of its own), the cards printed
//! on ID-1 pages, one a page and many at once (`/staff/cards?resident=…`), and the one-time
//! sign-in QR code a resident without a password scans (`/staff/sign-in-card`).
//!
//! Every form works without JavaScript; every decision is the services' (`earning/search.rs`,
//! `Earning::register_resident`, `Redemption::issue_credential`).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use uuid::Uuid;

use super::i18n::{day_words, expiring_words, plain_number, signed_points};
use super::resident::try_page;
use super::{done, Ctx, Lang, PageResult, M};
use crate::app::App;
use crate::auth::Principal;
use crate::calendar::{day_of, parse_date};
use crate::earning::search::ResidentSearch;
use crate::earning::service::NewResident;
use crate::error::{Error, ErrorCode};
use crate::model::{OrgUnit, Resident};
use crate::store::earning::CardState;

super::i18n::messages! {
    enum S;
    WorkTable => "工作台", "Work table";
    RecordsWaiting => "待审批的服务记录", "Service records waiting for approval";
    CorrectionsOpen => "待处理的更正申请", "Correction requests to handle";
    ExpiringMonth => "本月到期的积分", "Points expiring this month";
    ToApprovals => "去审批", "Go to approvals";
    ToCorrections => "去处理更正", "Go to corrections";
    ToExpiring => "查看居民名单", "See the residents";
    ExpiringNone => "本月没有到期的积分。", "No points expire this month.";
    ExpiringSoonest => "最先到期的居民", "Residents whose points expire soonest";
    Residents => "居民", "Residents";
    FindResident => "查找居民", "Find a resident";
    SearchLabel => "姓名、电话、卡号或代号", "Name, phone, card number or pseudonym";
    SearchButton => "查找", "Find";
    Community => "社区", "Community";
    AllCommunities => "全部社区", "All communities";
    NoneFound => "没有找到居民。", "No resident found.";
    Name => "姓名", "Name";
    Phone => "电话", "Phone";
    Card => "兑换卡", "Card";
    NoCard => "未发卡", "No card";
    Revoked => "已作废", "Revoked";
    Select => "选择", "Select";
    PrintSelected => "打印所选居民的卡", "Print the cards of the selected residents";
    PrintAll => "打印本页全部居民的卡", "Print the cards of everyone on this page";
    NextPage => "下一页", "Next page";
    Register => "登记新居民", "Register a resident";
    RegisterButton => "登记", "Register";
    DuplicateTitle => "这个电话在本社区已经登记过", "This phone is already registered in this community";
    DuplicateHint => "请先看看是不是同一个人。确实是另一位居民，再点“仍然登记”。", "Check whether it is the same person first. Only if it is someone else, press “Register anyway”.";
    RegisterAnyway => "仍然登记", "Register anyway";
    Cancel => "取消", "Cancel";
    Balance => "积分", "Points";
    Hours => "服务时长", "Volunteer hours";
    History => "积分记录", "History";
    NoHistory => "还没有积分记录。", "No history yet.";
    MoreHistory => "更早的记录", "Earlier entries";
    Lots => "积分批次", "Lots of points";
    LotEarned => "获得", "Earned";
    LotLeft => "剩余", "Left";
    LotLastDay => "最后有效日", "Last valid day";
    NeverExpires => "长期有效", "Never expires";
    NoLots => "没有未用完的积分。", "No points left.";
    CardNumber => "卡号", "Card number";
    CardActive => "有效", "Active";
    CardStatus => "状态", "State";
    CardGeneration => "第几张卡", "Card issue";
    CardFailures => "输错次数", "Wrong attempts";
    IssueCard => "发兑换卡", "Issue a card";
    ReissueCard => "补发兑换卡", "Re-issue the card";
    ReissueWarning => "补发新卡后，旧卡（卡号 {}）立即作废，不能再用。", "Re-issuing makes the old card (number {}) stop working at once.";
    ReissueConfirm => "我知道旧卡会作废", "I understand the old card stops working";
    PrintCard => "打印兑换卡", "Print the card";
    SignInQr => "打印登录二维码", "Print the sign-in QR code";
    Pseudonym => "代号", "Pseudonym";
    PinSlip => "兑换卡密码条", "Card PIN slip";
    PinLabel => "密码", "PIN";
    PinOnce => "密码只显示这一次。请现在打印这张密码条，交给居民本人，和卡分开保管。", "The PIN is shown this once only. Print this slip now and hand it to the resident, to be kept apart from the card.";
    PinKeep => "请妥善保管，不要告诉别人，不要和卡放在一起。", "Keep it safe, tell no one, and keep it apart from the card.";
    PrintHint => "按 Ctrl+P 打印。", "Press Ctrl+P to print.";
    Cards => "打印兑换卡", "Print cards";
    CardsCount => "共 {} 张卡，每页一张（85.6 × 54 毫米）。", "{} cards, one a page (85.6 × 54 mm).";
    CardsMissing => "这些居民还没有有效的兑换卡，没有打印：", "These residents have no active card and are not printed:";
    CardsNone => "没有可以打印的卡。请先在居民页发卡。", "No card to print. Issue cards on the residents' pages first.";
    CardLine => "爱心积分兑换卡", "Aixin points card";
    BackToResident => "回到居民页", "Back to the resident";
    Registered => "已登记。", "Registered.";
    Colon => "：", ": ";
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/staff", get(work_table))
        .route("/staff/residents", get(residents).post(register))
        .route("/staff/residents/{id}", get(resident_page))
        .route("/staff/residents/{id}/card", post(issue_card))
        .route("/staff/cards", get(cards))
        .route("/staff/sign-in-card", get(card_page).post(card))
}

/// Residents printed in one batch at most.
pub const CARDS_BATCH_MAX: usize = 100;
/// History lines a resident's page shows at once.
const HISTORY_LINES: i64 = 20;

fn render(ctx: Ctx, page: askama::Result<String>) -> PageResult {
    Ok(ctx.html(page))
}

/// A community's name in the page's language.
fn unit_name(lang: Lang, unit: &OrgUnit) -> String {
    if lang == Lang::En && !unit.name_en.is_empty() {
        unit.name_en.clone()
    } else {
        unit.name_zh.clone()
    }
}

/// The names of the communities `p` manages, by id.
async fn community_names(
    app: &App,
    ctx: &Ctx,
    p: &Principal,
) -> Result<Vec<(String, String)>, Error> {
    Ok(app
        .earning
        .managed_communities(p)
        .await?
        .iter()
        .map(|u| (u.id.clone(), unit_name(ctx.lang, u)))
        .collect())
}

fn name_of(names: &[(String, String)], id: &str) -> String {
    names
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| id.to_owned())
}

/// A card number as printed: "012 345 678".
fn grouped_number(number: i64) -> String {
    let digits = format!("{number:09}");
    format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..])
}

/// A new idempotency key for a form.
fn new_key(app: &App) -> String {
    format!("page-{}", app.entropy.uuid())
}

/// A key a form carried back: ours, or refused.
fn form_key(text: &str) -> Result<String, Error> {
    text.strip_prefix("page-")
        .and_then(|u| Uuid::parse_str(u).ok())
        .map(|_| text.to_owned())
        .ok_or_else(|| Error::bare(ErrorCode::InvalidIdempotencyKey))
}

fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.chars().take(256).collect())
        .unwrap_or_default()
}

// ---- The work table ----

struct Soon {
    href: String,
    name: String,
    community: String,
    words: String,
}

#[derive(askama::Template)]
#[template(path = "staff_home.html")]
struct HomePage<'a> {
    ctx: &'a Ctx,
    here: String,
    records_waiting: i64,
    corrections_open: i64,
    expiring_points: String,
    expiring_residents: i64,
    soonest: Vec<Soon>,
}

async fn work_table(State(app): State<App>, ctx: Ctx) -> Response {
    done(work_table_inner(app, ctx).await)
}

async fn work_table_inner(app: App, ctx: Ctx) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let names = try_page!(ctx, community_names(&app, &ctx, &p).await);
    let table = try_page!(ctx, app.earning.work_table(&p).await);
    let soonest = table
        .expiring
        .soonest
        .iter()
        .map(|e| Soon {
            href: format!("/staff/residents/{}", e.resident_id),
            name: e.name.clone().unwrap_or_default(),
            community: name_of(&names, &e.community_id),
            words: parse_date(&e.last_valid_day)
                .map(|d| expiring_words(ctx.lang, e.points_minor, d))
                .unwrap_or_default(),
        })
        .collect();
    let page = HomePage {
        ctx: &ctx,
        here: "/staff".into(),
        records_waiting: table.records_waiting,
        corrections_open: table.corrections_open,
        expiring_points: plain_number(table.expiring.points_minor),
        expiring_residents: table.expiring.residents,
        soonest,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, html)
}

// ---- Find and register ----

struct Found {
    id: String,
    name: String,
    phone: String,
    community: String,
    card: String,
}

/// What the register form shows again: the values, and the residents a phone repeats.
#[derive(Default)]
struct Registering {
    name: String,
    phone: String,
    community: String,
    key: String,
    duplicates: Vec<(String, String, String)>,
}

#[derive(askama::Template)]
#[template(path = "staff_residents.html")]
struct ResidentsPage<'a> {
    ctx: &'a Ctx,
    here: String,
    q: String,
    community: String,
    communities: Vec<(String, String)>,
    searched: bool,
    found: Vec<Found>,
    /// The cards of everyone found on this page, in one print document.
    print_all: String,
    next: Option<String>,
    form: Registering,
}

#[derive(serde::Deserialize)]
struct Find {
    q: Option<String>,
    community: Option<String>,
    cursor: Option<String>,
}

fn card_words(ctx: &Ctx, card: &Option<CardState>) -> String {
    match card {
        None => ctx.t(S::NoCard).to_owned(),
        Some(c) if c.active => grouped_number(c.number),
        Some(c) => format!("{} ({})", grouped_number(c.number), ctx.t(S::Revoked)),
    }
}

async fn residents(State(app): State<App>, ctx: Ctx, Query(find): Query<Find>) -> Response {
    let form = Registering {
        key: new_key(&app),
        ..Registering::default()
    };
    done(residents_inner(app, ctx, find, form).await)
}

async fn residents_inner(app: App, ctx: Ctx, find: Find, form: Registering) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let communities = try_page!(ctx, community_names(&app, &ctx, &p).await);
    let q = find.q.unwrap_or_default();
    let community = find.community.unwrap_or_default();
    let searched = !q.trim().is_empty() || !community.is_empty() || find.cursor.is_some();
    let (found, next) = if searched {
        let page = try_page!(
            ctx,
            app.earning
                .search_residents(
                    &p,
                    ResidentSearch {
                        q: Some(q.clone()),
                        community: Some(community.clone()),
                        limit: None,
                        cursor: find.cursor,
                    },
                )
                .await
        );
        let found = page
            .items
            .iter()
            .map(|f| Found {
                id: f.resident.id.to_string(),
                name: f.resident.name.clone(),
                phone: f.resident.phone.clone(),
                community: name_of(&communities, &f.resident.community_id),
                card: card_words(&ctx, &f.card),
            })
            .collect();
        let next = page.next_cursor.map(|c| {
            format!(
                "/staff/residents?q={}&community={}&cursor={}",
                super::urlencode(&q),
                super::urlencode(&community),
                super::urlencode(&c)
            )
        });
        (found, next)
    } else {
        (Vec::new(), None)
    };
    let print_all = format!(
        "/staff/cards?{}",
        found
            .iter()
            .map(|f| format!("resident={}", f.id))
            .collect::<Vec<_>>()
            .join("&")
    );
    let page = ResidentsPage {
        ctx: &ctx,
        print_all,
        here: "/staff/residents".into(),
        q,
        community,
        communities,
        searched,
        found,
        next,
        form,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, html)
}

async fn register(
    State(app): State<App>,
    ctx: Ctx,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    done(register_inner(app, ctx, fields).await)
}

async fn register_inner(app: App, ctx: Ctx, fields: Vec<(String, String)>) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let key = try_page!(ctx, form_key(&field(&fields, "key")));
    let new = NewResident {
        name: field(&fields, "name").trim().to_owned(),
        phone: field(&fields, "phone").trim().to_owned(),
        community_id: field(&fields, "community"),
    };
    if field(&fields, "confirm") != "yes" {
        let same = try_page!(
            ctx,
            app.earning
                .residents_with_phone(&p, &new.community_id, &new.phone, &key)
                .await
        );
        if !same.is_empty() {
            let form = Registering {
                name: new.name,
                phone: new.phone,
                community: new.community_id,
                key,
                duplicates: same
                    .iter()
                    .map(|r: &Resident| {
                        (
                            format!("/staff/residents/{}", r.id),
                            r.name.clone(),
                            r.phone.clone(),
                        )
                    })
                    .collect(),
            };
            let find = Find {
                q: None,
                community: None,
                cursor: None,
            };
            return residents_inner(app, ctx, find, form).await;
        }
    }
    let (resident, _) = try_page!(ctx, app.earning.register_resident(&p, &key, new).await);
    Ok(ctx.redirect(&format!("/staff/residents/{}?registered=1", resident.id)))
}

// ---- A resident ----

struct HistoryLine {
    what: String,
    when: String,
    points: String,
}

struct LotLine {
    earned: String,
    left: String,
    last_day: String,
}

#[derive(askama::Template)]
#[template(path = "staff_resident.html")]
struct ResidentPage<'a> {
    ctx: &'a Ctx,
    here: String,
    id: String,
    name: String,
    phone: String,
    pseudonym: String,
    community: String,
    registered: bool,
    points: String,
    hours: String,
    expiring: Vec<String>,
    history: Vec<HistoryLine>,
    more: Option<String>,
    lots: Vec<LotLine>,
    card: Option<CardState>,
    card_number: String,
    reissue_warning: String,
    key: String,
}

#[derive(serde::Deserialize)]
struct ResidentQuery {
    before: Option<i64>,
    registered: Option<String>,
}

async fn resident_page(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<ResidentQuery>,
) -> Response {
    done(resident_inner(app, ctx, id, q).await)
}

async fn resident_inner(app: App, ctx: Ctx, id: String, q: ResidentQuery) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let id = try_page!(ctx, resident_id(Some(&id)));
    let r = try_page!(ctx, app.earning.resident(&p, id).await);
    let names = try_page!(ctx, community_names(&app, &ctx, &p).await);
    let balance = try_page!(ctx, app.earning.balance(&p, id).await);
    let (items, more) = try_page!(
        ctx,
        app.earning.history(&p, id, q.before, HISTORY_LINES).await
    );
    let lots = try_page!(ctx, app.earning.lots(&p, id).await);
    let card = try_page!(ctx, app.earning.card_state(&p, id).await);
    let history = items
        .iter()
        .map(|item| HistoryLine {
            what: super::resident::what_of(ctx.lang, item),
            when: day_words(ctx.lang, day_of(item.posted_at_micros)),
            points: signed_points(item.points_minor),
        })
        .collect();
    let more = more
        .then(|| {
            items
                .last()
                .map(|i| format!("/staff/residents/{id}?before={}", i.seq))
        })
        .flatten();
    let lots = lots
        .iter()
        .map(|l| LotLine {
            earned: plain_number(l.amount_minor),
            left: plain_number(l.remaining_minor),
            last_day: match l.expires_on.as_deref().and_then(parse_date) {
                Some(d) => day_words(ctx.lang, d),
                None => ctx.t(S::NeverExpires).to_owned(),
            },
        })
        .collect();
    let card_number = card
        .as_ref()
        .map(|c| grouped_number(c.number))
        .unwrap_or_default();
    let page = ResidentPage {
        ctx: &ctx,
        here: "/staff/residents".into(),
        id: id.to_string(),
        community: name_of(&names, &r.community_id),
        name: r.name,
        phone: r.phone,
        pseudonym: r.pseudonym,
        registered: q.registered.is_some(),
        points: plain_number(balance.points_minor),
        hours: plain_number(balance.hours_minor),
        expiring: balance
            .expiring
            .iter()
            .map(|e| expiring_words(ctx.lang, e.points_minor, e.last_valid_day))
            .collect(),
        history,
        more,
        lots,
        reissue_warning: ctx.t(S::ReissueWarning).replace("{}", &card_number),
        card_number,
        card,
        key: new_key(&app),
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, html)
}

// ---- Issuing a card: the PIN once, on its own slip ----

#[derive(askama::Template)]
#[template(path = "staff_pin.html")]
struct PinPage<'a> {
    ctx: &'a Ctx,
    id: String,
    name: String,
    community: String,
    number: String,
    pin: String,
}

async fn issue_card(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    done(issue_inner(app, ctx, id, fields).await)
}

async fn issue_inner(app: App, ctx: Ctx, id: String, fields: Vec<(String, String)>) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let id = try_page!(ctx, resident_id(Some(&id)));
    let key = try_page!(ctx, form_key(&field(&fields, "key")));
    let before = try_page!(ctx, app.earning.card_state(&p, id).await);
    if before.as_ref().is_some_and(|c| c.active) && field(&fields, "confirm") != "yes" {
        // A re-issue revokes the old card: not without the box ticked (the form requires it;
        // this is for a form sent without it).
        return Err(Box::new((
            ctx,
            Error::new(ErrorCode::InvalidBody, "tick the box to re-issue").into(),
        )));
    }
    let issued = try_page!(ctx, app.redemption.issue_credential(&p, &key, id).await);
    let r = try_page!(ctx, app.earning.resident(&p, id).await);
    let names = try_page!(ctx, community_names(&app, &ctx, &p).await);
    let number = issued
        .number
        .parse::<i64>()
        .map(grouped_number)
        .unwrap_or(issued.number);
    let page = PinPage {
        ctx: &ctx,
        id: id.to_string(),
        community: name_of(&names, &r.community_id),
        name: r.name,
        number,
        pin: issued.card_pin,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, html)
}

// ---- Printing cards ----

struct PrintedCard {
    name: String,
    community: String,
    number: String,
    qr: String,
}

#[derive(askama::Template)]
#[template(path = "staff_cards.html")]
struct CardsPage<'a> {
    ctx: &'a Ctx,
    cards: Vec<PrintedCard>,
    missing: Vec<(String, String)>,
    count_words: String,
    back: String,
}

async fn cards(State(app): State<App>, ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    done(cards_inner(app, ctx, query).await)
}

/// The residents a query names (`resident=ID`, repeated), in order, once each.
fn residents_of(query: Option<&str>) -> Result<Vec<Uuid>, Error> {
    let mut ids = Vec::new();
    for pair in query.unwrap_or("").split('&') {
        let Some(("resident", value)) = pair.split_once('=') else {
            continue;
        };
        let id = Uuid::parse_str(value.trim())
            .map_err(|_| Error::new(ErrorCode::InvalidQuery, "resident is not an id"))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
        if ids.len() > CARDS_BATCH_MAX {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                format!("at most {CARDS_BATCH_MAX} residents at once"),
            ));
        }
    }
    if ids.is_empty() {
        return Err(Error::bare(ErrorCode::UnknownResident));
    }
    Ok(ids)
}

async fn cards_inner(app: App, ctx: Ctx, query: Option<String>) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let ids = try_page!(ctx, residents_of(query.as_deref()));
    let names = try_page!(ctx, community_names(&app, &ctx, &p).await);
    let mut cards = Vec::new();
    let mut missing = Vec::new();
    let mut seen: BTreeMap<Uuid, ()> = BTreeMap::new();
    for id in &ids {
        seen.insert(*id, ());
        let r = try_page!(ctx, app.earning.resident(&p, *id).await);
        match try_page!(ctx, app.earning.card_state(&p, *id).await) {
            Some(c) if c.active => {
                let digits = format!("{:09}", c.number);
                cards.push(PrintedCard {
                    // The QR code carries the number and nothing else.
                    qr: crate::redeem::receipt::qr_svg(&digits).unwrap_or_default(),
                    number: grouped_number(c.number),
                    community: name_of(&names, &r.community_id),
                    name: r.name,
                });
            }
            _ => missing.push((format!("/staff/residents/{id}"), r.name)),
        }
    }
    let back = if ids.len() == 1 {
        format!("/staff/residents/{}", ids[0])
    } else {
        "/staff/residents".to_owned()
    };
    let page = CardsPage {
        ctx: &ctx,
        count_words: ctx.t(S::CardsCount).replace("{}", &cards.len().to_string()),
        cards,
        missing,
        back,
    };
    let html = askama::Template::render(&page);
    drop(page);
    render(ctx, html)
}

// ---- The resident's one-time sign-in QR code ----

#[derive(serde::Deserialize)]
struct Which {
    resident: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "sign_in_card.html")]
struct CardPage<'a> {
    ctx: &'a Ctx,
    here: String,
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
        here: "/staff/residents".into(),
        resident: id.to_string(),
        name: r.name,
        link,
        expires,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_print_in_threes() {
        assert_eq!(grouped_number(12_345_678), "012 345 678");
        assert_eq!(grouped_number(999_999_999), "999 999 999");
    }

    #[test]
    fn a_batch_names_residents_once_and_is_bounded() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let q = format!("resident={a}&x=1&resident={b}&resident={a}");
        assert_eq!(residents_of(Some(&q)).unwrap(), [a, b]);
        assert_eq!(
            residents_of(Some("resident=nope")).unwrap_err().code,
            ErrorCode::InvalidQuery
        );
        assert_eq!(
            residents_of(None).unwrap_err().code,
            ErrorCode::UnknownResident
        );
        let many: Vec<String> = (0..=CARDS_BATCH_MAX as u128)
            .map(|i| format!("resident={}", Uuid::from_u128(i + 1)))
            .collect();
        assert_eq!(
            residents_of(Some(&many.join("&"))).unwrap_err().code,
            ErrorCode::InvalidQuery
        );
    }

    #[test]
    fn forms_carry_only_our_keys() {
        assert!(form_key(&format!("page-{}", Uuid::from_u128(5))).is_ok());
        for bad in ["", "page-", "page-x", "till-0000", "anything"] {
            assert_eq!(
                form_key(bad).unwrap_err().code,
                ErrorCode::InvalidIdempotencyKey
            );
        }
    }
}
