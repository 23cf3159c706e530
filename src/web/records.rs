//! Community staff's record work: recording service for many residents in a row, the approval
//! queue, roster upload, corrections, rules and the community report.
//!
//! Every page is a form that works without JavaScript (post/redirect/get) and by keyboard
//! alone; every decision is the services' (`Earning`, its work lists in `earning::queues`, and
//! `Audit` for the report). The roster upload is read here (UTF-8 with or without BOM, or GBK
//! as Chinese Excel saves it), previewed line by line before anything is recorded, and
//! submitted by a confirm step that the roster service checks again in full.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use sha2::{Digest, Sha256};
use time::Date;
use uuid::Uuid;

use super::i18n::{day_words, plain_number, Text};
use super::resident::try_page;
use super::{done, sentence, Ctx, Lang, PageError, PageResult, M};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::calendar::{day_of, format_date, parse_date};
use crate::earning::queues::{ListQuery, QueuedRecord, BATCH_APPROVE_MAX};
use crate::earning::service::{parse_hours, NewRecord, NewRoster, Resolution, RosterLine};
use crate::error::{Error, ErrorCode, LineProblem};
use crate::model::{self, Rule, RuleMode, ROSTER_LINES_MAX};

super::i18n::messages! {
    enum R;
    Service => "记录服务", "Record service";
    ServiceHint => "先选规则、日期和时长，再逐个刷卡或输入卡号，每按一次回车记一条。", "Choose the rule, date and hours once, then scan or type each card number; each Enter records one.";
    Rule => "规则", "Rule";
    Date => "服务日期", "Service date";
    Hours => "时长（小时）", "Hours";
    Card => "卡号", "Card number";
    RecordIt => "记录", "Record";
    Recorded => "本次已记录", "Recorded just now";
    NothingYet => "还没有记录。", "Nothing recorded yet.";
    Resident => "居民", "Resident";
    Points => "积分", "Points";
    State => "状态", "State";
    Approvals => "审批", "Approvals";
    ApprovalsHint => "最早提交的在前。勾选后点“批准所选”；退回须写原因。", "Oldest first. Tick records and press “Approve selected”; a rejection needs a reason.";
    ApproveSelected => "批准所选", "Approve selected";
    Select => "选择", "Select";
    RecordedBy => "录入人", "Recorded by";
    Yours => "您录入的，须由其他工作人员审批", "You recorded this; another staff member must approve it";
    Reason => "原因", "Reason";
    Reject => "退回", "Reject";
    QueueEmpty => "没有待审批的记录。", "No records are waiting.";
    NextPage => "下一页", "Next page";
    RostersWaiting => "待审批的名册", "Rosters waiting";
    Rejected => "已退回。", "Rejected.";
    Rosters => "名册上传", "Rosters";
    RostersHint => "下载模板，用 Excel 填好后另存为 CSV（UTF-8 或 GBK 都可以），再上传。上传后先预览，有错的行会逐行说明；没有错才能提交。提交后须由另一位工作人员审批。", "Download the template, fill it in with Excel and save it as CSV (UTF-8 or GBK), then upload it. You see a preview first, with every bad line explained; only a file without errors can be submitted. Another staff member then approves it.";
    Template => "下载模板（CSV）", "Download the template (CSV)";
    File => "CSV 文件", "CSV file";
    Title => "活动名称", "Event title";
    Preview => "上传并预览", "Upload and preview";
    PreviewTitle => "预览", "Preview";
    Number => "居民编号或卡号", "Resident number or card";
    Line => "行", "Line";
    Name => "姓名", "Name";
    Problem => "问题", "Problem";
    LineOk => "✓ 可以", "✓ fine";
    Confirm => "提交名册", "Submit the roster";
    RosterTitle => "名册", "Roster";
    ApproveRoster => "批准此名册", "Approve this roster";
    YoursRoster => "您提交的名册，须由其他工作人员审批。", "You submitted this roster; another staff member must approve it.";
    Submitted => "待审批", "Waiting for approval";
    Approved => "已批准", "Approved";
    RejectedState => "已退回", "Rejected";
    Reversed => "已冲正", "Reversed";
    Corrections => "更正", "Corrections";
    CorrectionsHint => "居民或工作人员提出的更正，左边是请求，右边是原记录。", "Corrections asked for by residents or staff: the request on the left, the original record on the right.";
    Request => "更正请求", "Request";
    Original => "原记录", "Original record";
    RequestedBy => "提出人", "Asked by";
    ApprovedBy => "审批人", "Approved by";
    Posted => "入账时间", "Posted at";
    Resolve => "处理", "Resolve";
    ActionReverse => "冲正（收回这笔积分）", "Reverse (take the points back)";
    ActionReplace => "冲正并按新时长重记", "Reverse and credit new hours";
    ActionDecline => "不更正（保持原样）", "Decline (keep it as it is)";
    NewHours => "新时长（重记时填）", "New hours (for a new credit)";
    Note => "说明", "Note";
    NoCorrections => "没有待处理的更正。", "No corrections are open.";
    NewCorrection => "申请更正", "Ask for a correction";
    Send => "提交", "Send";
    CorrectionSent => "更正请求已提交，等待处理。", "The correction request is sent and waits to be resolved.";
    Resolved => "更正已处理。", "The correction is resolved.";
    Rules => "积分规则", "Rules";
    RulesHint => "每条规则的各个版本，最新的在最后。", "Every version of each rule, the newest last.";
    Current => "现行", "current";
    NoRules => "还没有积分规则。", "There are no rules yet.";
    Report => "社区报表", "Community report";
    Community => "社区", "Community";
    From => "从", "From";
    To => "到", "To";
    Show => "查看", "Show";
    Download => "下载 CSV", "Download CSV";
    Issued => "发放积分", "Points issued";
    Redeemed => "兑换积分", "Points exchanged";
    Refunded => "退回积分", "Points refunded";
    Expired => "过期积分", "Points expired";
    Adjusted => "调整与冲正", "Adjustments and reversals";
    HoursTotal => "服务时长", "Service hours";
    Outstanding => "居民持有积分（期末）", "Points residents hold (at the end)";
    ByRule => "按规则发放", "Issued by rule";
    ByShop => "按商铺兑换", "Exchanged by shop";
    Batch => "批量审批结果", "Result of the batch";
    Lines => "人数", "People";
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/staff/service", get(service_page).post(service_record))
        .route("/staff/approvals", get(approvals_page).post(approve_batch))
        .route("/staff/approvals/{id}/reject", post(reject))
        .route("/staff/rosters", get(rosters_page))
        .route("/staff/rosters/template.csv", get(template_csv))
        .route(
            "/staff/rosters/preview",
            post(preview).layer(DefaultBodyLimit::max(UPLOAD_MAX + 64 * 1024)),
        )
        .route("/staff/rosters/confirm", post(confirm))
        .route("/staff/rosters/{id}", get(roster_page))
        .route("/staff/rosters/{id}/approve", post(approve_roster))
        .route(
            "/staff/corrections",
            get(corrections_page).post(request_correction),
        )
        .route("/staff/corrections/new", get(new_correction))
        .route("/staff/corrections/{id}/resolve", post(resolve))
        .route("/staff/rules", get(rules_page))
        .route("/staff/report", get(report_page))
        .route("/staff/report.csv", get(report_csv))
}

/// Largest roster file taken (bytes).
pub const UPLOAD_MAX: usize = 1024 * 1024;
/// Records the service page lists as recorded in this run.
const RUN_MAX: usize = 30;
/// A page of a work list.
const PAGE: usize = 50;

/// The signed-in staff member (or administrator); anyone else is told the page is not theirs.
fn staff(ctx: &Ctx) -> Result<Principal, PageError> {
    let p = ctx.principal()?.clone();
    if matches!(p.role, Role::Staff | Role::Admin) {
        Ok(p)
    } else {
        Err(PageError::Refused(Error::not_found()))
    }
}

fn render(ctx: Ctx, status: StatusCode, html: askama::Result<String>) -> PageResult {
    Ok(ctx.html_status(status, html))
}

macro_rules! show {
    ($ctx:ident, $status:expr, $page:expr) => {{
        let html = askama::Template::render(&$page);
        render($ctx, $status, html)
    }};
}

fn rule_name(lang: Lang, rule: &Rule) -> String {
    match lang {
        Lang::En if !rule.name_en.is_empty() => rule.name_en.clone(),
        _ => rule.name_zh.clone(),
    }
}

/// A rule version in plain words: "入户走访：每小时10分，每人每日最多40分，自2026年3月1日起".
pub fn rule_words(lang: Lang, rule: &Rule) -> String {
    let points = plain_number(rule.points.minor());
    let mut parts = Vec::new();
    match (lang, rule.mode) {
        (Lang::Zh, RuleMode::PerHour) => parts.push(format!("每小时{points}分")),
        (Lang::Zh, RuleMode::PerActivity) => parts.push(format!("每次{points}分")),
        (Lang::En, RuleMode::PerHour) => parts.push(format!("{points} points an hour")),
        (Lang::En, RuleMode::PerActivity) => parts.push(format!("{points} points an activity")),
    }
    if let Some(cap) = rule.cap_day {
        let cap = plain_number(cap.minor());
        parts.push(match lang {
            Lang::Zh => format!("每人每日最多{cap}分"),
            Lang::En => format!("at most {cap} a day per resident"),
        });
    }
    if let Some(cap) = rule.cap_month {
        let cap = plain_number(cap.minor());
        parts.push(match lang {
            Lang::Zh => format!("每人每月最多{cap}分"),
            Lang::En => format!("at most {cap} a month per resident"),
        });
    }
    let from = day_words(lang, rule.valid_from);
    parts.push(match (lang, rule.valid_until) {
        (Lang::Zh, None) => format!("自{from}起"),
        (Lang::Zh, Some(until)) => format!("{from}至{}", day_words(lang, until)),
        (Lang::En, None) => format!("from {from}"),
        (Lang::En, Some(until)) => format!("from {from} to {}", day_words(lang, until)),
    });
    if rule.records_hours {
        parts.push(match lang {
            Lang::Zh => "计入服务时长".to_owned(),
            Lang::En => "hours are counted".to_owned(),
        });
    }
    let sep = if lang == Lang::Zh { "，" } else { ", " };
    let colon = if lang == Lang::Zh { "：" } else { ": " };
    format!("{}{colon}{}", rule_name(lang, rule), parts.join(sep))
}

fn state_words(lang: Lang, state: &str) -> &'static str {
    match state {
        model::status::SUBMITTED => R::Submitted.text(lang),
        model::status::APPROVED => R::Approved.text(lang),
        model::status::REJECTED => R::RejectedState.text(lang),
        model::status::REVERSED => R::Reversed.text(lang),
        _ => "?",
    }
}

/// A moment as people read it, in the calendar's time zone: "2026年12月1日 14:05".
fn when(lang: Lang, micros: i64) -> String {
    let seconds = (micros.div_euclid(1_000_000) + crate::calendar::CALENDAR_UTC_OFFSET_SECONDS)
        .rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}",
        day_words(lang, day_of(micros)),
        seconds / 3600,
        seconds % 3600 / 60
    )
}

/// Who did something, as the pages show an actor: "您" for the visitor, else "工作人员" and the
/// start of their token's id (the services record actors by token, not by name).
fn actor_name(lang: Lang, p: &Principal, actor: &str) -> String {
    if actor == p.actor() {
        return match lang {
            Lang::Zh => "您".to_owned(),
            Lang::En => "you".to_owned(),
        };
    }
    let id = actor.split_once(':').map_or(actor, |(_, id)| id);
    let short: String = id.chars().take(8).collect();
    match lang {
        Lang::Zh => format!("工作人员 {short}"),
        Lang::En => format!("staff {short}"),
    }
}

fn today(app: &App) -> Date {
    day_of(app.clock.now_micros())
}

/// The version of `rule_id` that applies on `day`, from `rules` (the versions the caller sees).
async fn rule_version(app: &App, p: &Principal, rule_id: &str, day: Date) -> Option<Rule> {
    let versions = app.earning.rule_versions(p, rule_id).await.ok()?;
    versions.into_iter().rev().find(|v| v.valid_on(day))
}

/// The points a record will earn (or earned) under its rule, in plain words.
async fn points_of(app: &App, p: &Principal, rule_id: &str, day: Date, hours: i64) -> String {
    match rule_version(app, p, rule_id, day).await {
        Some(rule) => rule
            .points_for(hours)
            .map(|a| plain_number(a.minor()))
            .unwrap_or_default(),
        None => String::new(),
    }
}

// ---- Recording service in a row ----

#[derive(serde::Deserialize, Default)]
struct ServiceQuery {
    rule: Option<String>,
    date: Option<String>,
    hours: Option<String>,
    done: Option<String>,
}

#[derive(serde::Deserialize)]
struct ServiceForm {
    rule: String,
    date: String,
    hours: String,
    card: String,
    key: String,
    #[serde(default)]
    done: String,
}

struct RunLine {
    name: String,
    card_or_pseudonym: String,
    hours: String,
    points: String,
    state: &'static str,
}

#[derive(askama::Template)]
#[template(path = "records_service.html")]
struct ServicePage<'a> {
    ctx: &'a Ctx,
    here: String,
    rules: Vec<(String, String)>,
    rule: String,
    date: String,
    today: String,
    hours: String,
    key: String,
    done: String,
    run: Vec<RunLine>,
    refusal: Option<String>,
}

async fn service_page(State(app): State<App>, ctx: Ctx, Query(q): Query<ServiceQuery>) -> Response {
    done(show_service(app, ctx, q, None).await)
}

async fn show_service(app: App, ctx: Ctx, q: ServiceQuery, refusal: Option<String>) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let day = today(&app);
    let rules = try_page!(ctx, app.earning.rules_on(&p, day).await);
    let rule = q
        .rule
        .filter(|r| rules.iter().any(|x| &x.rule_id == r))
        .or_else(|| rules.first().map(|r| r.rule_id.clone()))
        .unwrap_or_default();
    let ids: Vec<Uuid> = q
        .done
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter_map(|t| Uuid::parse_str(t.trim()).ok())
        .take(RUN_MAX)
        .collect();
    let mut run = Vec::new();
    for id in &ids {
        if let Ok((record, resident)) = app.earning.record(&p, *id).await {
            run.push(RunLine {
                name: resident.name.clone(),
                card_or_pseudonym: resident.pseudonym.clone(),
                hours: plain_number(record.hours_minor),
                points: points_of(
                    &app,
                    &p,
                    &record.rule_id,
                    record.service_date,
                    record.hours_minor,
                )
                .await,
                state: state_words(ctx.lang, &record.status),
            });
        }
    }
    let status = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ServicePage {
        ctx: &ctx,
        here: "/staff/service".into(),
        rules: rules
            .iter()
            .map(|r| (r.rule_id.clone(), rule_words(ctx.lang, r)))
            .collect(),
        rule,
        date: q
            .date
            .filter(|d| parse_date(d).is_some())
            .unwrap_or_else(|| format_date(day)),
        today: format_date(day),
        hours: q.hours.unwrap_or_else(|| "1".to_owned()),
        key: format!("service-page-{}", app.entropy.uuid()),
        done: ids
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(","),
        run,
        refusal,
    };
    show!(ctx, status, page)
}

async fn service_record(State(app): State<App>, ctx: Ctx, Form(f): Form<ServiceForm>) -> Response {
    done(record_one(app, ctx, f).await)
}

async fn record_one(app: App, ctx: Ctx, f: ServiceForm) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let keep = |done: String| ServiceQuery {
        rule: Some(f.rule.clone()),
        date: Some(f.date.clone()),
        hours: Some(f.hours.clone()),
        done: Some(done),
    };
    let attempt = async {
        let resident = app
            .earning
            .resident_by_card(&p, app.redemption.store.as_ref(), &f.card)
            .await?;
        let service_date =
            parse_date(f.date.trim()).ok_or_else(|| Error::bare(ErrorCode::DateInvalid))?;
        let hours_minor = parse_hours(f.hours.trim())?;
        let key: String = f.key.chars().take(128).collect();
        app.earning
            .submit_record(
                &p,
                &key,
                NewRecord {
                    resident_id: resident.id,
                    rule_id: f.rule.clone(),
                    service_date,
                    hours_minor,
                    note: String::new(),
                },
            )
            .await
    };
    match attempt.await {
        Ok((record, _)) => {
            let mut ids = vec![record.id.to_string()];
            ids.extend(
                f.done
                    .split(',')
                    .filter(|t| !t.is_empty() && *t != record.id.to_string())
                    .take(RUN_MAX - 1)
                    .map(str::to_owned),
            );
            let to = format!(
                "/staff/service?rule={}&date={}&hours={}&done={}",
                super::urlencode(&f.rule),
                super::urlencode(&f.date),
                super::urlencode(&f.hours),
                ids.join(",")
            );
            Ok(ctx.redirect(&to))
        }
        Err(e) => {
            let words = sentence(ctx.lang, &e);
            show_service(app, ctx, keep(f.done.clone()), Some(words)).await
        }
    }
}

// ---- The approval queue ----

#[derive(serde::Deserialize, Default)]
struct AfterQuery {
    after: Option<String>,
    done: Option<String>,
}

struct QueueRow {
    id: String,
    name: String,
    pseudonym: String,
    rule: String,
    date: String,
    hours: String,
    points: String,
    recorder: String,
    submitted: String,
    mine: bool,
}

#[derive(askama::Template)]
#[template(path = "records_approvals.html")]
struct ApprovalsPage<'a> {
    ctx: &'a Ctx,
    here: String,
    rows: Vec<QueueRow>,
    next: Option<String>,
    rosters: Vec<(String, String, String)>,
    notice: Option<String>,
    /// After a batch: how many were approved and, for each refused record, who and why.
    approved: Option<usize>,
    refused: Vec<(String, String)>,
    batch_max: usize,
}

async fn approvals_page(State(app): State<App>, ctx: Ctx, Query(q): Query<AfterQuery>) -> Response {
    let notice =
        (q.done.as_deref() == Some("rejected")).then(|| R::Rejected.text(ctx.lang).to_owned());
    done(show_approvals(app, ctx, q.after, notice, None).await)
}

async fn queue_row(app: &App, p: &Principal, lang: Lang, q: &QueuedRecord) -> QueueRow {
    let r = &q.record;
    let rule = rule_version(app, p, &r.rule_id, r.service_date).await;
    QueueRow {
        id: r.id.to_string(),
        name: q.resident.name.clone(),
        pseudonym: q.resident.pseudonym.clone(),
        rule: rule
            .as_ref()
            .map_or_else(|| r.rule_id.clone(), |x| rule_name(lang, x)),
        date: day_words(lang, r.service_date),
        hours: plain_number(r.hours_minor),
        points: rule
            .and_then(|x| x.points_for(r.hours_minor).ok())
            .map(|a| plain_number(a.minor()))
            .unwrap_or_default(),
        recorder: actor_name(lang, p, &r.submitted_by),
        submitted: when(lang, r.submitted_at_micros),
        mine: r.submitted_by == p.actor(),
    }
}

async fn show_approvals(
    app: App,
    ctx: Ctx,
    after: Option<String>,
    notice: Option<String>,
    batch: Option<(usize, Vec<(String, String)>)>,
) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let list = ListQuery {
        state: model::status::SUBMITTED.to_owned(),
        limit: Some(PAGE),
        after,
        standalone: true,
        ..ListQuery::default()
    };
    let page = try_page!(ctx, app.earning.records_in_state(&p, &list).await);
    let mut rows = Vec::with_capacity(page.items.len());
    for q in &page.items {
        rows.push(queue_row(&app, &p, ctx.lang, q).await);
    }
    let rosters = try_page!(
        ctx,
        app.earning
            .rosters_in_state(
                &p,
                &ListQuery {
                    state: model::status::SUBMITTED.to_owned(),
                    limit: Some(PAGE),
                    ..ListQuery::default()
                },
            )
            .await
    );
    let (approved, refused) = match batch {
        Some((n, refused)) => (Some(n), refused),
        None => (None, Vec::new()),
    };
    let view = ApprovalsPage {
        ctx: &ctx,
        here: "/staff/approvals".into(),
        rows,
        next: page.next,
        rosters: rosters
            .items
            .iter()
            .map(|r| {
                (
                    format!("/staff/rosters/{}", r.id),
                    r.title.clone(),
                    day_words(ctx.lang, r.service_date),
                )
            })
            .collect(),
        notice,
        approved,
        refused,
        batch_max: BATCH_APPROVE_MAX,
    };
    show!(ctx, StatusCode::OK, view)
}

async fn approve_batch(State(app): State<App>, ctx: Ctx, body: Bytes) -> Response {
    done(approve_inner(app, ctx, body).await)
}

async fn approve_inner(app: App, ctx: Ctx, body: Bytes) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let ids: Vec<Uuid> = form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| Uuid::parse_str(&v).ok())
        .take(BATCH_APPROVE_MAX + 1)
        .collect();
    if ids.is_empty() {
        let words = match ctx.lang {
            Lang::Zh => "没有勾选任何记录。请先勾选要批准的记录。",
            Lang::En => "No record was ticked. Tick the records to approve first.",
        };
        return show_approvals(app, ctx, None, Some(words.to_owned()), None).await;
    }
    let outcome = try_page!(ctx, app.earning.approve_records(&p, &ids).await);
    let mut refused = Vec::new();
    for (id, error) in &outcome.refused {
        let who = match app.earning.record(&p, *id).await {
            Ok((record, resident)) => format!(
                "{}（{}）",
                resident.name,
                day_words(ctx.lang, record.service_date)
            ),
            Err(_) => id.to_string(),
        };
        refused.push((who, sentence(ctx.lang, error)));
    }
    let approved = outcome.approved.len();
    show_approvals(app, ctx, None, None, Some((approved, refused))).await
}

#[derive(serde::Deserialize)]
struct ReasonForm {
    reason: String,
}

async fn reject(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(f): Form<ReasonForm>,
) -> Response {
    done(reject_inner(app, ctx, id, f).await)
}

async fn reject_inner(app: App, ctx: Ctx, id: Uuid, f: ReasonForm) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    try_page!(
        ctx,
        app.earning.reject_record(&p, id, f.reason.trim()).await
    );
    Ok(ctx.redirect("/staff/approvals?done=rejected"))
}

// ---- Rosters: template, upload, preview, confirm, approve ----

/// The template's header line and one example line.
pub const TEMPLATE_HEADER: &str = "居民编号或卡号,姓名,服务时长（小时）";
const TEMPLATE_EXAMPLE: &str = "AX-0000ABCD,张秀英,2";

/// A CSV answer that opens correctly in Chinese Excel: UTF-8 with a BOM.
fn csv_download(name: &str, text: &str) -> Response {
    let mut body = Vec::with_capacity(text.len() + 3);
    body.extend_from_slice(b"\xEF\xBB\xBF");
    body.extend_from_slice(text.as_bytes());
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn template_csv() -> Response {
    csv_download(
        "roster-template.csv",
        &format!("{TEMPLATE_HEADER}\r\n{TEMPLATE_EXAMPLE}\r\n"),
    )
}

/// One line of an uploaded roster as read: the line of the file (from 1, the header is line 1)
/// and its three cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvLine {
    pub line: usize,
    pub resident: String,
    pub name: String,
    pub hours: String,
}

/// Why a roster file could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CsvProblem {
    TooLarge,
    /// The upload itself could not be read (cut off or malformed).
    Upload,
    /// Neither UTF-8 nor GBK.
    Encoding,
    /// The first line does not name the columns.
    Header,
    NoLines,
    TooManyLines,
    /// A line the CSV reader could not read (an unclosed quote).
    Unreadable(usize),
}

/// The text of an uploaded file: UTF-8 (a BOM is dropped) when it is valid UTF-8, else GBK
/// (what Chinese Excel saves as "CSV"), else refused.
pub fn decode_upload(bytes: &[u8]) -> Result<String, CsvProblem> {
    if bytes.len() > UPLOAD_MAX {
        return Err(CsvProblem::TooLarge);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|t| t.into_owned())
        .ok_or(CsvProblem::Encoding)
}

/// Reads a roster file: the columns found by their header (居民编号/卡号, 姓名, 时长 — or
/// resident, name, hours), every non-blank line with its line number in the file.
pub fn read_roster_csv(bytes: &[u8]) -> Result<Vec<CsvLine>, CsvProblem> {
    let text = decode_upload(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|_| CsvProblem::Header)?.clone();
    let find = |words: &[&str]| {
        headers.iter().position(|h| {
            let h = h.trim().to_lowercase();
            words.iter().any(|w| h.contains(w))
        })
    };
    let resident = find(&["编号", "卡号", "resident"]).ok_or(CsvProblem::Header)?;
    let hours = find(&["时长", "小时", "hours"]).ok_or(CsvProblem::Header)?;
    let name = find(&["姓名", "name"]);
    let mut lines = Vec::new();
    // The line of the file a row starts on, counted as a person counts them (blank lines and
    // the header included).
    let line_at = |byte: u64| {
        // A record's position is where the reader took it up, which can be the line breaks
        // (and blank lines) before it: its line is that of its first other byte.
        let bytes = text.as_bytes();
        let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        bytes[..start].iter().filter(|b| **b == b'\n').count() + 1
    };
    for row in reader.records() {
        let row =
            row.map_err(|e| CsvProblem::Unreadable(e.position().map_or(0, |p| line_at(p.byte()))))?;
        if row.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        if lines.len() == ROSTER_LINES_MAX {
            return Err(CsvProblem::TooManyLines);
        }
        let cell = |i: Option<usize>| i.and_then(|i| row.get(i)).unwrap_or("").trim().to_owned();
        lines.push(CsvLine {
            line: row.position().map_or(0, |p| line_at(p.byte())),
            resident: cell(Some(resident)),
            name: cell(name),
            hours: cell(Some(hours)),
        });
    }
    if lines.is_empty() {
        return Err(CsvProblem::NoLines);
    }
    Ok(lines)
}

fn csv_problem_words(lang: Lang, problem: &CsvProblem) -> String {
    let zh = lang == Lang::Zh;
    match problem {
        CsvProblem::TooLarge => if zh {
            "文件太大（最多 1 MB）。请把名册分成几个文件上传。"
        } else {
            "The file is too large (at most 1 MB). Split the roster into several files."
        }
        .to_owned(),
        CsvProblem::Upload => if zh {
            "文件没有上传完整。请重新选择文件再上传一次（文件不能超过 1 MB）。"
        } else {
            "The file did not arrive whole. Choose it again and upload once more (at most 1 MB)."
        }
        .to_owned(),
        CsvProblem::Encoding => if zh {
            "读不懂这个文件的文字编码。请在 Excel 里“另存为”CSV（UTF-8 或默认的 CSV）后再上传。"
        } else {
            "The file's text encoding cannot be read. Save it from Excel as CSV (UTF-8 or the default CSV) and upload again."
        }
        .to_owned(),
        CsvProblem::Header => if zh {
            "第 1 行要写列名：居民编号或卡号、姓名、服务时长（小时）。请用下载的模板填写。"
        } else {
            "Line 1 must name the columns: resident number or card, name, hours. Use the downloaded template."
        }
        .to_owned(),
        CsvProblem::NoLines => if zh {
            "文件里没有居民。请在列名下面每行填一位居民。"
        } else {
            "The file lists no residents. Put one resident on each line under the column names."
        }
        .to_owned(),
        CsvProblem::TooManyLines => if zh {
            format!("一个名册最多 {ROSTER_LINES_MAX} 人。请分成几个文件上传。")
        } else {
            format!("A roster holds at most {ROSTER_LINES_MAX} people. Split it into several files.")
        },
        CsvProblem::Unreadable(line) => if zh {
            format!("第 {line} 行读不出来（可能有没配对的引号）。请检查这一行。")
        } else {
            format!("Line {line} cannot be read (perhaps an unmatched quote). Check that line.")
        },
    }
}

/// What is wrong with a roster line and how to fix it, in the visitor's language.
fn line_problem_words(lang: Lang, code: &str, line: &CsvLine) -> String {
    let zh = lang == Lang::Zh;
    match code {
        // A refusal from the roster service names the line, not its text.
        "unknown_resident" | "hours_invalid" if line.resident.is_empty() && line.hours.is_empty() => {
            if code == "unknown_resident" {
                if zh { "找不到这位居民，或不是本社区的居民。请核对居民编号或卡号。" } else { "No such resident in this community. Check the resident number or card." }
            } else if zh {
                "时长不对。请填大于 0、不超过 24 的小时数，如 2 或 1.5。"
            } else {
                "The hours are not right. Write more than 0 and at most 24, like 2 or 1.5."
            }
            .to_owned()
        }
        "unknown_resident" => {
            if zh {
                format!("找不到居民“{}”（或不是本社区的居民）。请核对居民编号（如 AX-0000ABCD）或卡号。", line.resident)
            } else {
                format!("No resident “{}” in this community. Check the resident number (like AX-0000ABCD) or card number.", line.resident)
            }
        }
        "hours_invalid" => {
            if zh {
                format!("时长“{}”不对。请填大于 0、不超过 24 的小时数，如 2 或 1.5。", line.hours)
            } else {
                format!("The hours “{}” are not right. Write more than 0 and at most 24, like 2 or 1.5.", line.hours)
            }
        }
        "duplicate_service" => if zh {
            "这位居民在名册里重复出现，或这天已经记录过这项服务。请删去重复的一行。"
        } else {
            "This resident is listed twice, or this service is already recorded for that day. Delete the repeated line."
        }
        .to_owned(),
        "name_mismatch" => if zh {
            "姓名和居民编号对不上。请核对是不是填错了人。"
        } else {
            "The name does not match the resident number. Check that it is the right person."
        }
        .to_owned(),
        "daily_cap_exceeded" | "monthly_cap_exceeded" => if zh {
            "这位居民这项服务的积分已到上限。请删去这一行或改天再记。"
        } else {
            "This resident has reached the cap for this activity. Delete the line or record it another day."
        }
        .to_owned(),
        other => {
            if zh {
                format!("这一行不能记录（{other}）。请检查这一行。")
            } else {
                format!("This line cannot be recorded ({other}). Check it.")
            }
        }
    }
}

#[derive(askama::Template)]
#[template(path = "records_rosters.html")]
struct RostersPage<'a> {
    ctx: &'a Ctx,
    here: String,
    rules: Vec<(String, String)>,
    rule: String,
    date: String,
    today: String,
    title: String,
    waiting: Vec<(String, String, String, String)>,
    /// After an upload: the refusal of the whole file, and each line with its problems.
    refusal: Option<String>,
    preview: Vec<PreviewLine>,
    /// A file without problems: the lines to submit (resident id, hours), one a line.
    confirm: Option<String>,
    /// The event being confirmed, in words: the rule, the day, the title.
    event: String,
}

struct PreviewLine {
    line: usize,
    resident: String,
    name: String,
    hours: String,
    problems: Vec<String>,
}

async fn rosters_page(State(app): State<App>, ctx: Ctx) -> Response {
    done(show_rosters(app, ctx, Upload::default()).await)
}

/// What the roster page shows after an upload or a refused confirm.
#[derive(Default)]
struct Upload {
    rule: String,
    date: String,
    title: String,
    refusal: Option<String>,
    preview: Vec<PreviewLine>,
    confirm: Option<String>,
    event: String,
}

async fn show_rosters(app: App, ctx: Ctx, upload: Upload) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let day = today(&app);
    let rules = try_page!(ctx, app.earning.rules_on(&p, day).await);
    let waiting = try_page!(
        ctx,
        app.earning
            .rosters_in_state(
                &p,
                &ListQuery {
                    state: model::status::SUBMITTED.to_owned(),
                    limit: Some(PAGE),
                    ..ListQuery::default()
                },
            )
            .await
    );
    let status = if upload.refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = RostersPage {
        ctx: &ctx,
        here: "/staff/rosters".into(),
        rules: rules
            .iter()
            .map(|r| (r.rule_id.clone(), rule_words(ctx.lang, r)))
            .collect(),
        rule: upload.rule,
        date: if upload.date.is_empty() {
            format_date(day)
        } else {
            upload.date
        },
        today: format_date(day),
        title: upload.title,
        waiting: waiting
            .items
            .iter()
            .map(|r| {
                (
                    format!("/staff/rosters/{}", r.id),
                    r.title.clone(),
                    day_words(ctx.lang, r.service_date),
                    actor_name(ctx.lang, &p, &r.submitted_by),
                )
            })
            .collect(),
        refusal: upload.refusal,
        preview: upload.preview,
        confirm: upload.confirm,
        event: upload.event,
    };
    show!(ctx, status, page)
}

async fn preview(State(app): State<App>, ctx: Ctx, multipart: Multipart) -> Response {
    done(preview_inner(app, ctx, multipart).await)
}

/// The form fields of an upload; the file is read up to the size bound and no further.
async fn read_upload(
    mut multipart: Multipart,
) -> Result<(BTreeMap<String, String>, Vec<u8>), CsvProblem> {
    let mut fields = BTreeMap::new();
    let mut file = Vec::new();
    // A body cut off (over the route's limit) or malformed is refused, never read in part.
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| CsvProblem::Upload)?
    {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            while let Some(chunk) = field.chunk().await.map_err(|_| CsvProblem::Upload)? {
                if file.len() + chunk.len() > UPLOAD_MAX {
                    return Err(CsvProblem::TooLarge);
                }
                file.extend_from_slice(&chunk);
            }
        } else if fields.len() < 8 {
            let text = field.text().await.map_err(|_| CsvProblem::Upload)?;
            fields.insert(name, text.chars().take(512).collect());
        }
    }
    Ok((fields, file))
}

/// The roster's event from the form: the rule's community, the day, the title.
async fn roster_event(
    app: &App,
    p: &Principal,
    rule: &str,
    date: &str,
    title: &str,
    lines: Vec<RosterLine>,
) -> Result<NewRoster, Error> {
    let service_date =
        parse_date(date.trim()).ok_or_else(|| Error::bare(ErrorCode::DateInvalid))?;
    let versions = app
        .earning
        .rule_versions(p, rule)
        .await
        .map_err(|_| Error::bare(ErrorCode::UnknownRule))?;
    let community_id = versions
        .first()
        .map(|v| v.community_id.clone())
        .ok_or_else(|| Error::bare(ErrorCode::UnknownRule))?;
    Ok(NewRoster {
        community_id,
        rule_id: rule.to_owned(),
        service_date,
        title: title.trim().to_owned(),
        lines,
    })
}

async fn preview_inner(app: App, ctx: Ctx, multipart: Multipart) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let (fields, file) = match read_upload(multipart).await {
        Ok(read) => read,
        Err(problem) => {
            let refusal = Some(csv_problem_words(ctx.lang, &problem));
            return show_rosters(
                app,
                ctx,
                Upload {
                    refusal,
                    ..Upload::default()
                },
            )
            .await;
        }
    };
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let mut upload = Upload {
        rule: field("rule"),
        date: field("date"),
        title: field("title"),
        ..Upload::default()
    };
    let lines = match read_roster_csv(&file) {
        Ok(lines) => lines,
        Err(problem) => {
            upload.refusal = Some(csv_problem_words(ctx.lang, &problem));
            return show_rosters(app, ctx, upload).await;
        }
    };
    // Card numbers become the resident they belong to (of the caller's communities only).
    let mut roster_lines = Vec::with_capacity(lines.len());
    for line in &lines {
        let named = line.resident.trim();
        let resident = if crate::ledger::code::parse_number(named).is_some() {
            match app
                .earning
                .resident_by_card(&p, app.redemption.store.as_ref(), named)
                .await
            {
                Ok(r) => r.id.to_string(),
                Err(_) => named.to_owned(),
            }
        } else {
            named.to_owned()
        };
        roster_lines.push(RosterLine {
            resident,
            hours: line.hours.clone(),
        });
    }
    let new = match roster_event(
        &app,
        &p,
        &upload.rule,
        &upload.date,
        &upload.title,
        roster_lines,
    )
    .await
    {
        Ok(new) => new,
        Err(e) => {
            upload.refusal = Some(sentence(ctx.lang, &e));
            return show_rosters(app, ctx, upload).await;
        }
    };
    if let Err(e) = crate::earning::service::check_text("title", &new.title, true) {
        upload.refusal = Some(sentence(ctx.lang, &e));
        return show_rosters(app, ctx, upload).await;
    }
    let (checked, problems) = match app.earning.check_roster(&p, &new).await {
        Ok(checked) => checked,
        Err(e) => {
            upload.refusal = Some(sentence(ctx.lang, &e));
            return show_rosters(app, ctx, upload).await;
        }
    };
    let mut preview = Vec::with_capacity(lines.len());
    let mut bad = 0;
    for (index, (line, checked)) in lines.iter().zip(&checked).enumerate() {
        let mut words: Vec<String> = problems
            .iter()
            .filter(|x| x.line == index + 1)
            .map(|x| line_problem_words(ctx.lang, x.code, line))
            .collect();
        if let Some(r) = &checked.resident {
            if !line.name.trim().is_empty() && line.name.trim() != r.name {
                words.push(line_problem_words(ctx.lang, "name_mismatch", line));
            }
        }
        if !words.is_empty() {
            bad += 1;
        }
        preview.push(PreviewLine {
            line: line.line,
            resident: line.resident.clone(),
            name: checked
                .resident
                .as_ref()
                .map_or_else(|| line.name.clone(), |r| r.name.clone()),
            hours: line.hours.clone(),
            problems: words,
        });
    }
    if bad > 0 {
        upload.refusal = Some(match ctx.lang {
            Lang::Zh => format!("有 {bad} 行有问题，整个文件都没有记录。请按下面的说明改好后重新上传。"),
            Lang::En => format!("{bad} lines have problems, so nothing in the file was recorded. Fix them as said below and upload again."),
        });
    } else {
        let rule = rule_version(&app, &p, &new.rule_id, new.service_date).await;
        upload.event = format!(
            "{} · {} · {}",
            new.title,
            day_words(ctx.lang, new.service_date),
            rule.as_ref()
                .map_or_else(|| new.rule_id.clone(), |r| rule_words(ctx.lang, r))
        );
        upload.confirm = Some(
            new.lines
                .iter()
                .zip(&checked)
                .filter_map(|(l, c)| {
                    c.resident
                        .as_ref()
                        .map(|r| format!("{},{}", r.id, l.hours.trim()))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    upload.preview = preview;
    show_rosters(app, ctx, upload).await
}

#[derive(serde::Deserialize)]
struct ConfirmForm {
    rule: String,
    date: String,
    title: String,
    lines: String,
}

async fn confirm(State(app): State<App>, ctx: Ctx, Form(f): Form<ConfirmForm>) -> Response {
    done(confirm_inner(app, ctx, f).await)
}

async fn confirm_inner(app: App, ctx: Ctx, f: ConfirmForm) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let lines: Vec<RosterLine> = f
        .lines
        .lines()
        .take(ROSTER_LINES_MAX + 1)
        .filter_map(|l| l.split_once(','))
        .map(|(resident, hours)| RosterLine {
            resident: resident.trim().to_owned(),
            hours: hours.trim().to_owned(),
        })
        .collect();
    // The same content confirmed twice (a double click) is one roster; the roster service
    // checks every line again, whatever the form carried.
    let mut digest = Sha256::new();
    for part in [&f.rule, &f.date, &f.title, &f.lines] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    let key = format!("roster-page-{}", hex::encode(&digest.finalize()[..16]));
    let new = match roster_event(&app, &p, &f.rule, &f.date, &f.title, lines).await {
        Ok(new) => new,
        Err(e) => return Err(Box::new((ctx, e.into()))),
    };
    match app.earning.create_roster(&p, &key, new).await {
        Ok((roster, _, _)) => Ok(ctx.redirect(&format!("/staff/rosters/{}", roster.id))),
        Err(e) => {
            let refusal = Some(roster_refusal(ctx.lang, &e));
            let upload = Upload {
                rule: f.rule,
                date: f.date,
                title: f.title,
                refusal,
                ..Upload::default()
            };
            show_rosters(app, ctx, upload).await
        }
    }
}

/// A roster refusal: the sentence, and each bad line named.
fn roster_refusal(lang: Lang, e: &Error) -> String {
    if e.lines.is_empty() {
        return sentence(lang, e);
    }
    let named: Vec<String> = e
        .lines
        .iter()
        .map(|LineProblem { line, code, .. }| {
            let blank = CsvLine {
                line: *line,
                resident: String::new(),
                name: String::new(),
                hours: String::new(),
            };
            match lang {
                Lang::Zh => format!("第 {line} 人：{}", line_problem_words(lang, code, &blank)),
                Lang::En => format!("Person {line}: {}", line_problem_words(lang, code, &blank)),
            }
        })
        .collect();
    let head = match lang {
        Lang::Zh => "名册没有记录，原因：",
        Lang::En => "The roster was not recorded: ",
    };
    format!("{head}{}", named.join(" "))
}

struct RosterRow {
    name: String,
    pseudonym: String,
    hours: String,
    points: String,
    state: &'static str,
}

#[derive(askama::Template)]
#[template(path = "records_roster.html")]
struct RosterPage<'a> {
    ctx: &'a Ctx,
    here: String,
    id: String,
    title: String,
    rule: String,
    date: String,
    submitted_by: String,
    state: &'static str,
    waiting: bool,
    mine: bool,
    rows: Vec<RosterRow>,
    refusal: Option<String>,
}

async fn roster_page(State(app): State<App>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    done(show_roster(app, ctx, id, None).await)
}

async fn show_roster(app: App, ctx: Ctx, id: Uuid, refusal: Option<String>) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let (roster, records) = try_page!(ctx, app.earning.roster(&p, id).await);
    let rule = rule_version(&app, &p, &roster.rule_id, roster.service_date).await;
    let mut rows = Vec::with_capacity(records.len());
    for r in &records {
        let resident = app.earning.resident(&p, r.resident_id).await.ok();
        rows.push(RosterRow {
            name: resident
                .as_ref()
                .map(|x| x.name.clone())
                .unwrap_or_default(),
            pseudonym: resident.map(|x| x.pseudonym).unwrap_or_default(),
            hours: plain_number(r.hours_minor),
            points: rule
                .as_ref()
                .and_then(|x| x.points_for(r.hours_minor).ok())
                .map(|a| plain_number(a.minor()))
                .unwrap_or_default(),
            state: state_words(ctx.lang, &r.status),
        });
    }
    let status = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = RosterPage {
        ctx: &ctx,
        here: "/staff/rosters".into(),
        id: id.to_string(),
        title: roster.title.clone(),
        rule: rule
            .as_ref()
            .map_or_else(|| roster.rule_id.clone(), |r| rule_words(ctx.lang, r)),
        date: day_words(ctx.lang, roster.service_date),
        submitted_by: actor_name(ctx.lang, &p, &roster.submitted_by),
        state: state_words(ctx.lang, &roster.status),
        waiting: roster.status == model::status::SUBMITTED,
        mine: roster.submitted_by == p.actor(),
        rows,
        refusal,
    };
    show!(ctx, status, page)
}

async fn approve_roster(State(app): State<App>, ctx: Ctx, Path(id): Path<Uuid>) -> Response {
    done(approve_roster_inner(app, ctx, id).await)
}

async fn approve_roster_inner(app: App, ctx: Ctx, id: Uuid) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    match app.earning.approve_roster(&p, id).await {
        Ok(_) => Ok(ctx.redirect(&format!("/staff/rosters/{id}"))),
        Err(e) if e.code == ErrorCode::NotFound => Err(Box::new((ctx, e.into()))),
        Err(e) => {
            let words = roster_refusal(ctx.lang, &e);
            show_roster(app, ctx, id, Some(words)).await
        }
    }
}

// ---- Corrections ----

/// A record as the correction pages show it beside the request.
struct Original {
    name: String,
    pseudonym: String,
    rule: String,
    date: String,
    hours: String,
    points: String,
    state: &'static str,
    recorded_by: String,
    approved_by: String,
    posted: String,
}

struct OpenCorrection {
    id: String,
    reason: String,
    requested_by: String,
    requested: String,
    original: Original,
}

#[derive(askama::Template)]
#[template(path = "records_corrections.html")]
struct CorrectionsPage<'a> {
    ctx: &'a Ctx,
    here: String,
    open: Vec<OpenCorrection>,
    next: Option<String>,
    notice: Option<String>,
}

async fn original_of(
    app: &App,
    p: &Principal,
    lang: Lang,
    record_id: Uuid,
) -> Result<Original, Error> {
    let (record, resident) = app.earning.record(p, record_id).await?;
    let entry = app.earning.entry_of_record(p, &record).await?;
    let rule = rule_version(app, p, &record.rule_id, record.service_date).await;
    let credited: i64 = entry
        .as_ref()
        .map(|e| {
            e.postings
                .iter()
                .filter(|x| {
                    x.account == resident.account_id
                        && x.unit == crate::ledger::Unit::Points
                        && x.side == crate::ledger::Side::Credit
                })
                .map(|x| x.amount.minor())
                .sum()
        })
        .unwrap_or(0);
    Ok(Original {
        name: resident.name.clone(),
        pseudonym: resident.pseudonym.clone(),
        rule: rule
            .as_ref()
            .map_or_else(|| record.rule_id.clone(), |r| rule_name(lang, r)),
        date: day_words(lang, record.service_date),
        hours: plain_number(record.hours_minor),
        points: plain_number(credited),
        state: state_words(lang, &record.status),
        recorded_by: actor_name(lang, p, &record.submitted_by),
        approved_by: record
            .decided_by
            .as_deref()
            .map(|a| actor_name(lang, p, a))
            .unwrap_or_default(),
        posted: entry
            .as_ref()
            .map(|e| when(lang, e.posted_at_micros))
            .unwrap_or_default(),
    })
}

async fn corrections_page(
    State(app): State<App>,
    ctx: Ctx,
    Query(q): Query<AfterQuery>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("sent") => Some(R::CorrectionSent.text(ctx.lang).to_owned()),
        Some("resolved") => Some(R::Resolved.text(ctx.lang).to_owned()),
        _ => None,
    };
    done(show_corrections(app, ctx, q.after, notice).await)
}

async fn show_corrections(
    app: App,
    ctx: Ctx,
    after: Option<String>,
    notice: Option<String>,
) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let list = ListQuery {
        state: "open".to_owned(),
        limit: Some(PAGE),
        after,
        ..ListQuery::default()
    };
    let page = try_page!(ctx, app.earning.corrections_in_state(&p, &list).await);
    let mut open = Vec::with_capacity(page.items.len());
    for c in &page.items {
        let original = try_page!(ctx, original_of(&app, &p, ctx.lang, c.record_id).await);
        open.push(OpenCorrection {
            id: c.id.to_string(),
            reason: c.reason.clone(),
            requested_by: actor_name(ctx.lang, &p, &c.requested_by),
            requested: when(ctx.lang, c.requested_at_micros),
            original,
        });
    }
    let view = CorrectionsPage {
        ctx: &ctx,
        here: "/staff/corrections".into(),
        open,
        next: page.next,
        notice,
    };
    show!(ctx, StatusCode::OK, view)
}

#[derive(serde::Deserialize)]
struct ResolveForm {
    action: String,
    #[serde(default)]
    hours: String,
    #[serde(default)]
    note: String,
}

async fn resolve(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(f): Form<ResolveForm>,
) -> Response {
    done(resolve_inner(app, ctx, id, f).await)
}

async fn resolve_inner(app: App, ctx: Ctx, id: Uuid, f: ResolveForm) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let note = f.note.trim().to_owned();
    let resolution = match f.action.as_str() {
        "reverse" => Resolution::Reverse { note },
        "replace" => Resolution::Replace {
            hours_minor: try_page!(ctx, parse_hours(f.hours.trim())),
            note,
        },
        "decline" => Resolution::Decline { note },
        _ => return Err(Box::new((ctx, Error::bare(ErrorCode::InvalidBody).into()))),
    };
    try_page!(
        ctx,
        app.earning.resolve_correction(&p, id, resolution).await
    );
    Ok(ctx.redirect("/staff/corrections?done=resolved"))
}

#[derive(serde::Deserialize)]
struct NewCorrectionQuery {
    entry: Option<Uuid>,
    record: Option<Uuid>,
}

#[derive(askama::Template)]
#[template(path = "records_correction_new.html")]
struct NewCorrectionPage<'a> {
    ctx: &'a Ctx,
    here: String,
    record: String,
    key: String,
    original: Original,
}

async fn new_correction(
    State(app): State<App>,
    ctx: Ctx,
    query: Result<Query<NewCorrectionQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    done(new_correction_inner(app, ctx, query.ok().map(|q| q.0)).await)
}

async fn new_correction_inner(app: App, ctx: Ctx, q: Option<NewCorrectionQuery>) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let unknown = || Error::bare(ErrorCode::UnknownRecord);
    let record_id = match q {
        Some(NewCorrectionQuery {
            entry: Some(entry), ..
        }) => {
            try_page!(ctx, app.earning.record_of_entry(&p, entry).await)
                .0
                .id
        }
        Some(NewCorrectionQuery {
            record: Some(record),
            ..
        }) => record,
        _ => return Err(Box::new((ctx, unknown().into()))),
    };
    let original = try_page!(ctx, original_of(&app, &p, ctx.lang, record_id).await);
    let page = NewCorrectionPage {
        ctx: &ctx,
        here: "/staff/corrections".into(),
        record: record_id.to_string(),
        key: format!("correction-page-{}", app.entropy.uuid()),
        original,
    };
    show!(ctx, StatusCode::OK, page)
}

#[derive(serde::Deserialize)]
struct CorrectionForm {
    record: Uuid,
    reason: String,
    key: String,
}

async fn request_correction(
    State(app): State<App>,
    ctx: Ctx,
    Form(f): Form<CorrectionForm>,
) -> Response {
    done(request_inner(app, ctx, f).await)
}

async fn request_inner(app: App, ctx: Ctx, f: CorrectionForm) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let key: String = f.key.chars().take(128).collect();
    try_page!(
        ctx,
        app.earning
            .request_correction(&p, &key, f.record, f.reason.trim())
            .await
    );
    Ok(ctx.redirect("/staff/corrections?done=sent"))
}

// ---- Rules ----

struct RuleGroup {
    id: String,
    name: String,
    community: String,
    versions: Vec<(i64, String, bool)>,
}

#[derive(askama::Template)]
#[template(path = "records_rules.html")]
struct RulesPage<'a> {
    ctx: &'a Ctx,
    here: String,
    /// Just saved from the rule editor (`/staff/rules/edit`).
    saved: bool,
    rules: Vec<RuleGroup>,
    next: Option<String>,
}

#[derive(serde::Deserialize)]
struct RulesQuery {
    after: Option<String>,
    saved: Option<String>,
}

async fn rules_page(State(app): State<App>, ctx: Ctx, Query(q): Query<RulesQuery>) -> Response {
    done(show_rules(app, ctx, q.after, q.saved.is_some()).await)
}

async fn show_rules(app: App, ctx: Ctx, after: Option<String>, saved: bool) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let page = try_page!(
        ctx,
        app.earning
            .rules_list(&p, None, after.as_deref(), Some(PAGE))
            .await
    );
    let day = today(&app);
    let rules = page
        .items
        .iter()
        .map(|versions| {
            let current = versions
                .iter()
                .rev()
                .find(|v| v.valid_on(day))
                .map(|v| v.version);
            let last = versions
                .last()
                .map(|v| rule_name(ctx.lang, v))
                .unwrap_or_default();
            RuleGroup {
                id: versions[0].rule_id.clone(),
                name: last,
                community: versions[0].community_id.clone(),
                versions: versions
                    .iter()
                    .map(|v| {
                        (
                            v.version,
                            rule_words(ctx.lang, v),
                            Some(v.version) == current,
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let view = RulesPage {
        ctx: &ctx,
        here: "/staff/rules".into(),
        saved,
        rules,
        next: page.next,
    };
    show!(ctx, StatusCode::OK, view)
}

// ---- The community report ----

#[derive(serde::Deserialize, Default)]
struct ReportQuery {
    community: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

struct Period {
    community: String,
    /// The communities the caller may choose from: (id, Chinese name, English name).
    communities: Vec<(String, String, String)>,
    from: Option<Date>,
    to: Date,
    summary: crate::audit::reports::CommunitySummary,
}

/// The community's report over the period: what `to` shows less what the day before `from`
/// showed (outstanding points are at the end of the period).
async fn period(app: &App, p: &Principal, q: &ReportQuery) -> Result<Period, Error> {
    use crate::audit::export::Bound;
    // No community given: the caller's own unit if it is a community, else the first one.
    let managed = app.earning.communities_managed(p).await?;
    let community = q
        .community
        .clone()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            p.scope
                .clone()
                .filter(|s| managed.iter().any(|u| &u.id == s))
        })
        .or_else(|| managed.first().map(|u| u.id.clone()))
        .ok_or_else(|| Error::bare(ErrorCode::UnknownCommunity))?;
    let to = match q.to.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => parse_date(t).ok_or_else(|| Error::bare(ErrorCode::DateInvalid))?,
        None => today(app),
    };
    // No start given: the month `to` falls in.
    let from = match q.from.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(parse_date(t).ok_or_else(|| Error::bare(ErrorCode::DateInvalid))?),
        None => to.replace_day(1).ok(),
    };
    if from.is_some_and(|f| f > to) {
        return Err(Error::new(ErrorCode::DateInvalid, "from is after to"));
    }
    let mut summary = app
        .audit
        .community_report(p, &community, Some(Bound::Day(to)))
        .await?;
    if let Some(before) = from.and_then(|f| f.previous_day()) {
        let start = app
            .audit
            .community_report(p, &community, Some(Bound::Day(before)))
            .await?;
        let less = |a: &mut BTreeMap<String, i64>, b: &BTreeMap<String, i64>| {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() -= v;
            }
            a.retain(|_, v| *v != 0);
        };
        less(&mut summary.issued_by_rule, &start.issued_by_rule);
        less(&mut summary.redeemed_by_shop, &start.redeemed_by_shop);
        less(&mut summary.refunded_by_shop, &start.refunded_by_shop);
        summary.expired -= start.expired;
        summary.adjusted -= start.adjusted;
        summary.hours -= start.hours;
    }
    Ok(Period {
        community,
        communities: managed
            .iter()
            .map(|u| (u.id.clone(), u.name_zh.clone(), u.name_en.clone()))
            .collect(),
        from,
        to,
        summary,
    })
}

#[derive(askama::Template)]
#[template(path = "records_report.html")]
struct ReportPage<'a> {
    ctx: &'a Ctx,
    here: String,
    community: String,
    communities: Vec<(String, String)>,
    from: String,
    to: String,
    totals: Vec<(&'static str, String)>,
    by_rule: Vec<(String, String)>,
    by_shop: Vec<(String, String)>,
    csv: String,
}

async fn report_page(State(app): State<App>, ctx: Ctx, Query(q): Query<ReportQuery>) -> Response {
    done(show_report(app, ctx, q).await)
}

fn totals(lang: Lang, s: &crate::audit::reports::CommunitySummary) -> Vec<(&'static str, String)> {
    vec![
        (R::Issued.text(lang), plain_number(s.issued())),
        (R::Redeemed.text(lang), plain_number(s.redeemed())),
        (R::Refunded.text(lang), plain_number(s.refunded())),
        (R::Expired.text(lang), plain_number(s.expired)),
        (R::Adjusted.text(lang), plain_number(s.adjusted)),
        (R::HoursTotal.text(lang), plain_number(s.hours)),
        (R::Outstanding.text(lang), plain_number(s.outstanding)),
    ]
}

async fn show_report(app: App, ctx: Ctx, q: ReportQuery) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let period = try_page!(ctx, period(&app, &p, &q).await);
    let mut rules: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(page) = app.earning.rules_list(&p, None, None, Some(200)).await {
        for versions in page.items {
            if let Some(last) = versions.last() {
                rules.insert(last.rule_id.clone(), rule_name(ctx.lang, last));
            }
        }
    }
    let s = &period.summary;
    let from = period.from.map(format_date).unwrap_or_default();
    let to = format_date(period.to);
    let page = ReportPage {
        ctx: &ctx,
        here: "/staff/report".into(),
        csv: format!(
            "/staff/report.csv?community={}&from={from}&to={to}",
            super::urlencode(&period.community)
        ),
        community: period.community.clone(),
        communities: period
            .communities
            .iter()
            .map(|(id, zh, en)| {
                let name = if ctx.lang == Lang::En && !en.is_empty() {
                    en
                } else {
                    zh
                };
                (id.clone(), name.clone())
            })
            .collect(),
        from,
        to,
        totals: totals(ctx.lang, s),
        by_rule: s
            .issued_by_rule
            .iter()
            .map(|(k, v)| {
                (
                    rules.get(k).cloned().unwrap_or_else(|| k.clone()),
                    plain_number(*v),
                )
            })
            .collect(),
        by_shop: s
            .redeemed_by_shop
            .iter()
            .map(|(k, v)| (k.clone(), plain_number(*v)))
            .collect(),
    };
    show!(ctx, StatusCode::OK, page)
}

async fn report_csv(State(app): State<App>, ctx: Ctx, Query(q): Query<ReportQuery>) -> Response {
    done(report_csv_inner(app, ctx, q).await)
}

fn csv_cell(text: &str) -> String {
    // A leading =, +, - or @ would be a formula in Excel.
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

async fn report_csv_inner(app: App, ctx: Ctx, q: ReportQuery) -> PageResult {
    let p = try_page!(ctx, staff(&ctx));
    let period = try_page!(ctx, period(&app, &p, &q).await);
    let lang = ctx.lang;
    let s = &period.summary;
    let mut out = String::new();
    let from = period.from.map(format_date).unwrap_or_default();
    let head = match lang {
        Lang::Zh => "项目,明细,数值\r\n",
        Lang::En => "item,detail,value\r\n",
    };
    out.push_str(head);
    out.push_str(&format!(
        "{},{},{}\r\n",
        csv_cell(R::Community.text(lang)),
        csv_cell(&period.community),
        csv_cell(&format!("{from}~{}", format_date(period.to)))
    ));
    for (name, value) in totals(lang, s) {
        out.push_str(&format!("{},,{value}\r\n", csv_cell(name)));
    }
    for (rule, v) in &s.issued_by_rule {
        out.push_str(&format!(
            "{},{},{}\r\n",
            csv_cell(R::ByRule.text(lang)),
            csv_cell(rule),
            plain_number(*v)
        ));
    }
    for (shop, v) in &s.redeemed_by_shop {
        out.push_str(&format!(
            "{},{},{}\r\n",
            csv_cell(R::ByShop.text(lang)),
            csv_cell(shop),
            plain_number(*v)
        ));
    }
    let name = format!(
        "community-{}-{}.csv",
        period
            .community
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
        format_date(period.to)
    );
    Ok(csv_download(&name, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbk(text: &str) -> Vec<u8> {
        let (bytes, _, bad) = encoding_rs::GBK.encode(text);
        assert!(!bad);
        bytes.into_owned()
    }

    #[test]
    fn the_roster_reader_takes_utf8_with_and_without_bom_and_gbk() {
        let text =
            format!("{TEMPLATE_HEADER}\r\nAX-00000001,张秀英,2\r\n\r\n123456789,王建国,1.5\r\n");
        let expected = vec![
            CsvLine {
                line: 2,
                resident: "AX-00000001".into(),
                name: "张秀英".into(),
                hours: "2".into(),
            },
            CsvLine {
                line: 4,
                resident: "123456789".into(),
                name: "王建国".into(),
                hours: "1.5".into(),
            },
        ];
        let plain = text.as_bytes().to_vec();
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        let gbk = gbk(&text);
        assert!(
            std::str::from_utf8(&gbk).is_err(),
            "the GBK bytes are not UTF-8"
        );
        for bytes in [plain, bom, gbk] {
            assert_eq!(read_roster_csv(&bytes).unwrap(), expected);
        }
    }

    #[test]
    fn the_roster_reader_names_what_it_cannot_read() {
        assert_eq!(read_roster_csv(b"a,b\r\n1,2\r\n"), Err(CsvProblem::Header));
        assert_eq!(
            read_roster_csv(TEMPLATE_HEADER.as_bytes()),
            Err(CsvProblem::NoLines)
        );
        // Bytes that are neither UTF-8 nor GBK (0xFF never starts a GBK character).
        assert_eq!(
            read_roster_csv(b"resident,hours\r\n\xFF\xFF,1\r\n"),
            Err(CsvProblem::Encoding)
        );
        let big = vec![b'a'; UPLOAD_MAX + 1];
        assert_eq!(read_roster_csv(&big), Err(CsvProblem::TooLarge));
        let mut many = String::from("resident,hours\n");
        for _ in 0..=ROSTER_LINES_MAX {
            many.push_str("AX-1,1\n");
        }
        assert_eq!(
            read_roster_csv(many.as_bytes()),
            Err(CsvProblem::TooManyLines)
        );
        // A bad line is read as it is (the preview names it); the line number counts the header.
        let lines = read_roster_csv("resident,name,hours\nAX-1,甲,abc\n".as_bytes()).unwrap();
        assert_eq!(lines[0].line, 2);
        assert_eq!(lines[0].hours, "abc");
        let words = line_problem_words(Lang::Zh, "hours_invalid", &lines[0]);
        assert!(
            words.contains("“abc”") && words.contains("不超过 24"),
            "{words}"
        );
    }

    #[test]
    fn rules_read_in_plain_words() {
        let rule = Rule {
            rule_id: "visit".into(),
            version: 1,
            community_id: "c".into(),
            category: "visit".into(),
            name_zh: "入户走访".into(),
            name_en: "Home visits".into(),
            mode: RuleMode::PerHour,
            points: crate::ledger::Amount::from_minor(1000).unwrap(),
            records_hours: false,
            cap_day: Some(crate::ledger::Amount::from_minor(4000).unwrap()),
            cap_month: None,
            valid_from: Date::from_calendar_date(2026, time::Month::March, 1).unwrap(),
            valid_until: None,
            created_by: "x".into(),
            created_at_micros: 0,
        };
        assert_eq!(
            rule_words(Lang::Zh, &rule),
            "入户走访：每小时10分，每人每日最多40分，自2026年3月1日起"
        );
        assert_eq!(
            rule_words(Lang::En, &rule),
            "Home visits: 10 points an hour, at most 40 a day per resident, from 1 March 2026"
        );
    }

    #[test]
    fn report_cells_cannot_be_formulas() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}
