//! The auditor's pages: export a bundle by sequence or date range (the same tar, byte for
//! byte, as `GET /v1/audit/export` and as the files `aixin audit export` writes), with the
//! commands that verify it offline beside it; the signed checkpoints to download and keep; the
//! reports (trial balance, community, shop) with CSV that Chinese Excel opens as it should.
//! Everything is decided by the audit service: admin and auditor may export and see the
//! checkpoints; the reports answer whoever the service lets see them.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::TryStreamExt;

use super::i18n::messages;
use super::resident::try_page;
use super::{done, Ctx, Lang, PageResult, M};
use crate::app::App;
use crate::audit::export::Bound;
use crate::audit::format;
use crate::audit::service::excel_csv;
use crate::auth::Principal;
use crate::error::{Error, ErrorCode};

messages! {
    enum S;
    Export => "导出审计包", "Export an audit bundle";
    Checkpoints => "签名检查点", "Signed checkpoints";
    Reports => "报表", "Reports";
    AreaNav => "审计", "Audit";
    ExportIntro => "审计包是一段账本的全部记录：分录、过账、账户、规则、检查点和账簿，带签名的清单。下载后可以离线核验，不需要网络和数据库。", "An audit bundle holds a range of the ledger in full: entries, postings, accounts, rules, checkpoints and the books, with a signed manifest. Once downloaded it is verified offline, with no network and no database.";
    Head => "账本当前", "The ledger now";
    Entries => "条分录", "entries";
    ByDate => "按日期导出", "Export by date";
    BySeq => "按序号导出", "Export by sequence number";
    FromDay => "起始日期（含）", "From day (included)";
    ToDay => "截止日期（含）", "To day (included)";
    FromSeq => "起始序号（含）", "From number (included)";
    ToSeq => "截止序号（含）", "To number (included)";
    DayHint => "日期按北京时间（UTC+8）。", "Days are in China Standard Time (UTC+8).";
    Download => "下载审计包（.tar）", "Download the bundle (.tar)";
    VerifyTitle => "离线核验", "Verify it offline";
    VerifyIntro => "在自己的电脑上运行下面的命令。第一条用 aixin 程序直接核验下载的文件；后两条用独立的 Python 核验程序（ledger-specs/tools/check_bundle.py，只按公开的格式说明编写）。", "Run these commands on your own computer. The first checks the downloaded file with the aixin program itself; the last two use the independent Python checker (ledger-specs/tools/check_bundle.py, written from the published format alone).";
    VerifyKeys => "加上 --keys 和管理员交给你的密钥文件，签名也会核验；加上 --checkpoint 和以前保存的检查点，可以确认这次的记录接续以前的、没有被改写。", "Add --keys with the key file the administrator hands you to check the signatures too; add --checkpoint with a checkpoint you kept from before to confirm this history extends it, unrewritten.";
    CheckpointsIntro => "检查点是账本在某一条分录时的签名快照（该条的哈希和各类账户的合计）。请下载保存：以后核验新的审计包时用 --checkpoint 指定它，可以确认之前的记录没有被改写。", "A checkpoint is a signed snapshot of the ledger at one entry (its hash and the totals of each kind of account). Download and keep them: verifying a later bundle with --checkpoint proves the history before it was not rewritten.";
    DownloadCheckpoints => "下载全部检查点（.jsonl）", "Download every checkpoint (.jsonl)";
    NoCheckpoints => "还没有检查点。服务器每天自动签一个。", "No checkpoints yet. The server signs one every day.";
    Seq => "序号", "Number";
    HeadHash => "哈希", "Hash";
    Key => "签名密钥", "Signing key";
    Shown => "显示最近", "Showing the latest";
    TrialBalance => "试算平衡表", "Trial balance";
    TrialIntro => "每个账户在某条分录或某天之后的余额，分借方和贷方两栏；账目平衡时两栏合计相等。", "Every account's balance after an entry or a day, in debit and credit columns; when the books balance the two totals are equal.";
    AsOf => "截至（序号或日期，留空为现在）", "As of (a number or a day; empty for now)";
    Show => "显示", "Show";
    DownloadCsv => "下载 CSV（Excel 可直接打开）", "Download CSV (opens in Excel)";
    Community => "社区报表", "Community report";
    CommunityIntro => "社区发放、兑换、退回、过期和尚未使用的积分，按规则和按商铺。", "A community's issued, redeemed, refunded, expired and outstanding points, by rule and by shop.";
    CommunityPick => "社区", "Community";
    ShopReport => "商铺报表", "Shop report";
    ShopIntro => "一个商铺在一段时间内逐条的积分往来。", "A shop's points entry by entry over a range.";
    ShopId => "商铺编号", "Shop id";
    FindShop => "在商铺列表里找编号", "Find the id in the list of shops";
    FromBound => "从（序号或日期，可留空）", "From (a number or a day; may be empty)";
    ToBound => "到（序号或日期，可留空）", "To (a number or a day; may be empty)";
    RowsShown => "这里显示前 200 行；完整内容请下载 CSV。", "The first 200 rows are shown here; download the CSV for everything.";
    Admin => "管理", "Administration";
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/audit", get(export_page))
        .route("/audit/export", get(export))
        .route("/audit/checkpoints", get(checkpoints_page))
        .route("/audit/checkpoints.jsonl", get(checkpoints_file))
        .route("/audit/reports", get(reports_page))
        .route("/audit/reports/trial-balance.csv", get(trial_balance_csv))
        .route("/audit/reports/community.csv", get(community_csv))
        .route("/audit/reports/shop.csv", get(shop_csv))
}

/// Most report rows a page shows (the CSV has them all).
const ROWS_SHOWN: usize = 200;
/// Most checkpoints the page lists (the download has them all).
const CHECKPOINTS_SHOWN: usize = 200;

/// The range and report fields of a form; empty means "not given".
#[derive(serde::Deserialize, Default)]
struct Form {
    from: Option<String>,
    to: Option<String>,
    as_of: Option<String>,
    id: Option<String>,
    community: Option<String>,
    shop: Option<String>,
    shop_from: Option<String>,
    shop_to: Option<String>,
}

fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

fn bound(text: &Option<String>, name: &str) -> Result<Option<Bound>, Error> {
    given(text)
        .map(|t| {
            Bound::parse(t).ok_or_else(|| {
                Error::new(
                    ErrorCode::AuditBoundInvalid,
                    format!("{name} {t:?} is neither a sequence number nor a date (YYYY-MM-DD)"),
                )
            })
        })
        .transpose()
}

/// A file to download, under `name`.
fn attachment(content_type: &'static str, name: &str, body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn csv_download(name: &str, csv: &str) -> Response {
    attachment("text/csv; charset=utf-8", name, Body::from(excel_csv(csv)))
}

/// A CSV's first rows, as a table: (header, rows).
fn preview(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv.as_bytes());
    let head = reader
        .headers()
        .map(|h| h.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let rows = reader
        .records()
        .take(ROWS_SHOWN)
        .filter_map(|r| r.ok())
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect();
    (head, rows)
}

// ---- Export ----

#[derive(askama::Template)]
#[template(path = "audit_export.html")]
struct ExportPage<'a> {
    ctx: &'a Ctx,
    here: &'static str,
    admin: bool,
    ledger: String,
    head_seq: i64,
    head_hash: String,
    today: String,
    month_start: String,
    /// The file name the download will have for the whole ledger (for the commands).
    example: String,
}

async fn export_page(State(app): State<App>, ctx: Ctx) -> Response {
    done(export_page_inner(app, ctx).await)
}

async fn export_page_inner(app: App, ctx: Ctx) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let head = try_page!(ctx, app.journal.head(&p).await);
    let today = crate::calendar::day_of(app.clock.now_micros());
    let month_start = today.replace_day(1).unwrap_or(today);
    let page = ExportPage {
        ctx: &ctx,
        here: "/audit",
        admin: p.role == crate::auth::Role::Admin,
        example: format!("aixin-{}-1-{}.tar", p.ledger_id, head.seq),
        ledger: p.ledger_id.clone(),
        head_seq: head.seq,
        head_hash: hex::encode(head.hash),
        today: today.to_string(),
        month_start: month_start.to_string(),
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

/// The bundle's tar, streamed: the same service and bytes as `GET /v1/audit/export`.
async fn export(State(app): State<App>, ctx: Ctx, Query(form): Query<Form>) -> Response {
    done(export_inner(app, ctx, form).await)
}

async fn export_inner(app: App, ctx: Ctx, form: Form) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let from = try_page!(ctx, bound(&form.from, "from"));
    let to = try_page!(ctx, bound(&form.to, "to"));
    let bundle = try_page!(ctx, app.audit.export_tar(&p, from, to).await);
    let mut chunks = bundle.chunks;
    let stream = futures_util::stream::poll_fn(move |cx| chunks.poll_recv(cx)).map_ok(Bytes::from);
    Ok(attachment(
        "application/x-tar",
        &bundle.file_name,
        Body::from_stream(stream),
    ))
}

// ---- Checkpoints ----

struct CheckpointRow {
    seq: i64,
    hash: String,
    key: String,
}

#[derive(askama::Template)]
#[template(path = "audit_checkpoints.html")]
struct CheckpointsPage<'a> {
    ctx: &'a Ctx,
    here: &'static str,
    admin: bool,
    rows: Vec<CheckpointRow>,
    total: usize,
}

async fn checkpoints_page(State(app): State<App>, ctx: Ctx) -> Response {
    done(checkpoints_inner(app, ctx).await)
}

async fn checkpoints_inner(app: App, ctx: Ctx) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let all = try_page!(ctx, app.audit.checkpoints(&p, 0, i64::MAX).await);
    let rows = all
        .iter()
        .rev()
        .take(CHECKPOINTS_SHOWN)
        .map(|c| CheckpointRow {
            seq: c.seq,
            hash: hex::encode(c.head_hash),
            key: c.key_id.clone(),
        })
        .collect();
    let page = CheckpointsPage {
        ctx: &ctx,
        here: "/audit/checkpoints",
        admin: p.role == crate::auth::Role::Admin,
        rows,
        total: all.len(),
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

/// Every stored checkpoint, one line each, exactly as in a bundle's `checkpoints.jsonl` (and
/// as `--checkpoint FILE` reads it: the last line counts).
async fn checkpoints_file(State(app): State<App>, ctx: Ctx) -> Response {
    done(checkpoints_file_inner(app, ctx).await)
}

async fn checkpoints_file_inner(app: App, ctx: Ctx) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let all = try_page!(ctx, app.audit.checkpoints(&p, 0, i64::MAX).await);
    let text: String = all.iter().map(format::checkpoint_line).collect();
    let last = all.last().map_or(0, |c| c.seq);
    Ok(attachment(
        "application/jsonl; charset=utf-8",
        &format!("aixin-{}-checkpoints-{last}.jsonl", p.ledger_id),
        Body::from(text),
    ))
}

// ---- Reports ----

/// A report shown on the page: its table's first rows and the link to its CSV.
struct Shown {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    csv: String,
    more: bool,
}

impl Shown {
    fn of(csv: &str, link: String) -> Shown {
        let (head, rows) = preview(csv);
        let more = csv.lines().count() > ROWS_SHOWN + 1;
        Shown {
            head,
            rows,
            csv: link,
            more,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "audit_reports.html")]
struct ReportsPage<'a> {
    ctx: &'a Ctx,
    here: &'static str,
    admin: bool,
    as_of: String,
    communities: Vec<(String, String)>,
    community: String,
    shop: String,
    shop_from: String,
    shop_to: String,
    trial: Option<Shown>,
    community_report: Option<Shown>,
    shop_report: Option<Shown>,
    /// The sentence of a report the service refused (the others still show).
    refusal: Option<String>,
}

fn query_of(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", super::urlencode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

async fn reports_page(State(app): State<App>, ctx: Ctx, Query(form): Query<Form>) -> Response {
    done(reports_inner(app, ctx, form).await)
}

async fn reports_inner(app: App, ctx: Ctx, form: Form) -> PageResult {
    let p = try_page!(ctx, ctx.principal()).clone();
    let as_of_text = given(&form.as_of).unwrap_or("").to_owned();
    let as_of = try_page!(ctx, bound(&form.as_of, "as_of"));
    let trial = try_page!(ctx, app.audit.trial_balance(&p, as_of).await);
    let trial = Shown::of(
        &trial.to_csv(),
        format!(
            "/audit/reports/trial-balance.csv{}",
            query_of(&[("as_of", &as_of_text)])
        ),
    );
    let units = try_page!(ctx, app.admin.org_units(&p).await);
    let communities: Vec<(String, String)> = units
        .iter()
        .filter(|u| u.community.is_some())
        .map(|u| {
            let name = match ctx.lang {
                Lang::Zh => &u.name_zh,
                Lang::En => &u.name_en,
            };
            (u.id.clone(), format!("{name}（{}）", u.id))
        })
        .collect();
    let mut refusal = None;
    let community = given(&form.community).unwrap_or("").to_owned();
    let community_report = if community.is_empty() {
        None
    } else {
        match app.audit.community_report(&p, &community, as_of).await {
            Ok(r) => Some(Shown::of(
                &r.to_csv(),
                format!(
                    "/audit/reports/community.csv{}",
                    query_of(&[("id", &community), ("as_of", &as_of_text)])
                ),
            )),
            Err(e) => {
                refusal = Some(super::sentence(ctx.lang, &e));
                None
            }
        }
    };
    let shop = given(&form.shop).unwrap_or("").to_owned();
    let shop_from = given(&form.shop_from).unwrap_or("").to_owned();
    let shop_to = given(&form.shop_to).unwrap_or("").to_owned();
    let shop_report = if shop.is_empty() {
        None
    } else {
        let from = try_page!(ctx, bound(&form.shop_from, "from"));
        let to = try_page!(ctx, bound(&form.shop_to, "to"));
        match app.audit.shop_report(&p, &shop, from, to).await {
            Ok(r) => Some(Shown::of(
                &r.to_csv(),
                format!(
                    "/audit/reports/shop.csv{}",
                    query_of(&[("id", &shop), ("from", &shop_from), ("to", &shop_to)])
                ),
            )),
            Err(e) => {
                refusal = Some(super::sentence(ctx.lang, &e));
                None
            }
        }
    };
    let page = ReportsPage {
        ctx: &ctx,
        here: "/audit/reports",
        admin: p.role == crate::auth::Role::Admin,
        as_of: as_of_text,
        communities,
        community,
        shop,
        shop_from,
        shop_to,
        trial: Some(trial),
        community_report,
        shop_report,
        refusal,
    };
    let html = askama::Template::render(&page);
    drop(page);
    Ok(ctx.html(html))
}

fn principal(ctx: &Ctx) -> Result<Principal, super::PageError> {
    Ok(ctx.principal()?.clone())
}

async fn trial_balance_csv(State(app): State<App>, ctx: Ctx, Query(f): Query<Form>) -> Response {
    done(
        async {
            let p = try_page!(ctx, principal(&ctx));
            let as_of = try_page!(ctx, bound(&f.as_of, "as_of"));
            let r = try_page!(ctx, app.audit.trial_balance(&p, as_of).await);
            let name = format!("aixin-{}-trial-balance-{}.csv", p.ledger_id, r.as_of_seq);
            Ok(csv_download(&name, &r.to_csv()))
        }
        .await,
    )
}

async fn community_csv(State(app): State<App>, ctx: Ctx, Query(f): Query<Form>) -> Response {
    done(
        async {
            let p = try_page!(ctx, principal(&ctx));
            let id = given(&f.id).unwrap_or("").to_owned();
            let as_of = try_page!(ctx, bound(&f.as_of, "as_of"));
            let r = try_page!(ctx, app.audit.community_report(&p, &id, as_of).await);
            let name = format!("aixin-{}-community-{}.csv", p.ledger_id, safe_name(&id));
            Ok(csv_download(&name, &r.to_csv()))
        }
        .await,
    )
}

async fn shop_csv(State(app): State<App>, ctx: Ctx, Query(f): Query<Form>) -> Response {
    done(
        async {
            let p = try_page!(ctx, principal(&ctx));
            let id = given(&f.id).unwrap_or("").to_owned();
            let from = try_page!(ctx, bound(&f.from, "from"));
            let to = try_page!(ctx, bound(&f.to, "to"));
            let r = try_page!(ctx, app.audit.shop_report(&p, &id, from, to).await);
            let name = format!("aixin-{}-shop-{}.csv", p.ledger_id, safe_name(&id));
            Ok(csv_download(&name, &r.to_csv()))
        }
        .await,
    )
}

/// An id as part of a file name: letters, digits, `-` and `_` only.
fn safe_name(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn report_csv_opens_in_excel() {
        let csv = "a,b\n\"x\ny\",\"'=1+1\"\n";
        let out = super::excel_csv(csv);
        assert_eq!(out, "\u{feff}a,b\r\n\"x\ny\",\"'=1+1\"\r\n");
    }
}
