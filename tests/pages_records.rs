//! Community staff's record pages proven in Chromium (the harness is `tests/browser/`): staff A
//! records service for three residents by typing their card numbers as a scanner does, staff B
//! approves them in one batch (A cannot approve their own, and sees why), a GBK roster with one
//! bad line is refused whole with the line named, fixed, uploaded again, submitted by A and
//! approved by B, a correction is asked for and resolved; and every page added here is checked
//! by axe-core in the standard mode and in 长辈模式, with screenshots in `target/screenshots/`.
//!
//! Data is set up through the services, as an operator would; the server's clock is frozen.

#[path = "browser/mod.rs"]
#[allow(unused_imports)] // the harness serves every browser test file
mod browser;
mod common;

use aixin::auth::{Principal, Role};
use aixin::calendar::{day_of, format_date};
use aixin::clock::Clock;
use aixin::earning::queues::ListQuery;
use aixin::earning::service::{NewOrgUnit, NewRecord, NewResident, RuleTerms};
use aixin::ledger::Amount;
use aixin::model::{ExpiryPolicy, Resident, RuleMode};
use browser::*;
use common::T0;
use fantoccini::{Client, Locator};
use serde_json::Value;

const LEDGER: &str = "test";
const DAY: i64 = 86_400_000_000;
const CLIENT: &str = "198.51.100.9";
const STAFF_A: &str = "社区小陈";
const STAFF_B: &str = "社区小王";
const PASSWORD: &str = "correct horse battery";

struct World {
    server: Server,
    admin: Principal,
    /// Residents with a card: 王秀英, 李建国, 张桂兰.
    people: Vec<(Resident, String)>,
    a: (Principal, String),
    b: (Principal, String),
}

impl World {
    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

/// A staff user of c1 with a password, its principal and a session cookie.
async fn staff_user(server: &Server, admin: &Principal, name: &str) -> (Principal, String) {
    let s = &server.app.sessions;
    let (user, link) = s
        .create_user(admin, Role::Staff, Some("c1"), name)
        .await
        .unwrap();
    s.set_password(LEDGER, &link.secret, PASSWORD)
        .await
        .unwrap();
    let session = s
        .sign_in_password(LEDGER, name, PASSWORD, CLIENT)
        .await
        .unwrap();
    let principal = Principal {
        token_id: user.token_id,
        ledger_id: LEDGER.into(),
        role: Role::Staff,
        scope: Some("c1".into()),
        operator: None,
    };
    (principal, session.cookie)
}

async fn world() -> World {
    let server = Server::start_with(|app| {
        aixin::http::router(app).layer(axum::Extension(aixin::web::Site {
            ledger: LEDGER.into(),
        }))
    })
    .await;
    server.clock.set(T0 + 30 * DAY);
    let app = server.app.clone();
    let admin = Principal::operator(LEDGER, "test-admin");
    app.earning
        .create_org_unit(
            &admin,
            NewOrgUnit {
                id: "c1".into(),
                parent_id: None,
                level: "community".into(),
                name_zh: "幸福社区".into(),
                name_en: "Xingfu".into(),
                community: Some(ExpiryPolicy::Never),
            },
        )
        .await
        .unwrap();
    app.earning
        .set_rule(
            &admin,
            "visit",
            0,
            RuleTerms {
                community_id: "c1".into(),
                category: "visit".into(),
                name_zh: "入户走访".into(),
                name_en: "Home visits".into(),
                mode: RuleMode::PerHour,
                points: Amount::parse("10").unwrap(),
                records_hours: true,
                cap_day: Some(Amount::parse("40").unwrap()),
                cap_month: None,
                valid_from: day_of(T0),
                valid_until: None,
            },
        )
        .await
        .unwrap();
    let mut people = Vec::new();
    for (i, name) in ["王秀英", "李建国", "张桂兰"].iter().enumerate() {
        let (resident, _) = app
            .earning
            .register_resident(
                &admin,
                &format!("r{i}"),
                NewResident {
                    name: (*name).into(),
                    phone: format!("1390000000{i}"),
                    community_id: "c1".into(),
                },
            )
            .await
            .unwrap();
        let card = app
            .redemption
            .issue_credential(&admin, &format!("card{i}"), resident.id)
            .await
            .unwrap();
        people.push((resident, card.number));
    }
    let a = staff_user(&server, &admin, STAFF_A).await;
    let b = staff_user(&server, &admin, STAFF_B).await;
    World {
        server,
        admin,
        people,
        a,
        b,
    }
}

// ---- Page helpers ----

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

async fn js_string(c: &Client, script: &str) -> String {
    match js(c, script).await {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

async fn main_text(c: &Client) -> String {
    js_string(c, "return document.querySelector('main').innerText").await
}

async fn goto(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    wait_for_js(c, "document.readyState === 'complete'", WAIT).await;
}

async fn mark(c: &Client) {
    js(c, "window.__aixinOld = true;").await;
}

async fn wait_new_page(c: &Client) {
    wait_for_js(
        c,
        "!window.__aixinOld && document.readyState === 'complete'",
        WAIT,
    )
    .await;
}

async fn click_to(c: &Client, css: &str) {
    mark(c).await;
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    wait_new_page(c).await;
}

async fn status(c: &Client) -> u64 {
    js(
        c,
        "return performance.getEntriesByType('navigation')[0].responseStatus",
    )
    .await
    .as_u64()
    .unwrap()
}

/// Signs the browser in as the session `cookie` (on the site's origin).
async fn sign_in_as(c: &Client, w: &World, cookie: &str) {
    goto(c, &w.url("/signin")).await;
    let _ = c.delete_cookie(aixin::web::SESSION_COOKIE).await;
    let cookie = cookie::Cookie::build((aixin::web::SESSION_COOKIE, cookie.to_owned()))
        .domain("127.0.0.1")
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .build();
    c.add_cookie(cookie).await.unwrap();
}

/// A roster file as Chinese Excel saves it: GBK, CRLF.
fn gbk_file(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let (bytes, _, bad) = encoding_rs::GBK.encode(text);
    assert!(!bad);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the file is really GBK"
    );
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    path
}

/// Uploads `file` as the roster "清扫楼道" of `day` on the roster page, to its preview.
async fn upload(c: &Client, w: &World, day: &str, file: &std::path::Path) {
    goto(c, &w.url("/staff/rosters")).await;
    js(
        c,
        &format!(
            "document.getElementById('date').value = '{day}'; \
             document.getElementById('title').value = '清扫楼道';"
        ),
    )
    .await;
    c.find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    click_to(c, "#preview-button").await;
}

fn submitted() -> ListQuery {
    ListQuery {
        state: "submitted".into(),
        ..ListQuery::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_day_of_records() {
    // Proves the staff's record day from the browser alone: service recorded in a row by card
    // number (Enter submits, the form keeps the rule, date and hours and the focus returns to
    // the card field, the running list grows), the recorder cannot approve their own records
    // and sees why, another staff member approves them in one batch, a GBK roster with one bad
    // line is refused whole naming the line, then accepted and approved by the other staff
    // member, and a correction is asked for from the entry and resolved.
    let w = world().await;
    let Some(browser) = Browser::start(BrowserOptions::till()).await else {
        return;
    };
    let c = &browser.client;
    let app = w.server.app.clone();

    // ---- A records service for three residents by card ----
    sign_in_as(c, &w, &w.a.1).await;
    goto(c, &w.url("/staff/service")).await;
    js(c, "document.getElementById('hours').value = '2';").await;
    for (i, (resident, number)) in w.people.iter().enumerate() {
        let focused = js_string(c, "return document.activeElement.id").await;
        assert_eq!(focused, "card", "the card field has the focus for card {i}");
        mark(c).await;
        type_like_scanner(c, None, number, SCANNER_MS, true).await;
        wait_new_page(c).await;
        let run = js_string(c, "return document.getElementById('run').innerText").await;
        assert!(run.contains(&resident.name), "{run}");
        assert_eq!(
            js_string(c, "return document.getElementById('hours').value").await,
            "2",
            "the hours are kept"
        );
    }
    let run = js_string(c, "return document.getElementById('run').innerText").await;
    assert_eq!(
        run.matches("20").count(),
        3,
        "three lines of 20 points: {run}"
    );
    screenshot(c, "records-service-run").await;
    // A card of nobody: refused in words, nothing recorded, the form kept.
    mark(c).await;
    type_like_scanner(c, None, "999999999", SCANNER_MS, true).await;
    wait_new_page(c).await;
    assert_eq!(status(c).await, 422);
    let refusal = js_string(c, "return document.querySelector('.refusal').innerText").await;
    assert!(refusal.contains("居民"), "{refusal}");
    let queue = app
        .earning
        .records_in_state(&w.admin, &submitted())
        .await
        .unwrap();
    assert_eq!(queue.items.len(), 3);

    // ---- A cannot approve their own ----
    goto(c, &w.url("/staff/approvals")).await;
    let text = main_text(c).await;
    assert_eq!(
        text.matches("您录入的，须由其他工作人员审批").count(),
        3,
        "{text}"
    );
    let enabled = js(
        c,
        "return [...document.querySelectorAll('#queue input[type=checkbox]')].filter(x => !x.disabled).length",
    )
    .await;
    assert_eq!(enabled, 0, "A's own records cannot be selected");
    screenshot(c, "records-approvals-own").await;

    // ---- B approves all three in one batch, by keyboard ----
    sign_in_as(c, &w, &w.b.1).await;
    goto(c, &w.url("/staff/approvals")).await;
    for i in 0..3 {
        js(
            c,
            &format!("document.querySelectorAll('#queue input[type=checkbox]')[{i}].focus();"),
        )
        .await;
        type_like_scanner(c, None, " ", 0, false).await;
    }
    let ticked = js(
        c,
        "return document.querySelectorAll('#queue input[type=checkbox]:checked').length",
    )
    .await;
    assert_eq!(ticked, 3);
    click_to(c, "#approve-selected").await;
    let batch = js_string(c, "return document.getElementById('batch').innerText").await;
    assert!(batch.contains("已批准 3 条"), "{batch}");
    assert!(main_text(c).await.contains("没有待审批的记录"));
    screenshot(c, "records-approvals-batch").await;
    for (resident, _) in &w.people {
        let balance = app.earning.balance(&w.admin, resident.id).await.unwrap();
        assert_eq!(balance.points_minor, 2000, "{}", resident.name);
    }

    // ---- A uploads a GBK roster with one bad line: refused whole, the line named ----
    sign_in_as(c, &w, &w.a.1).await;
    let dir = tempfile::tempdir().unwrap();
    let pseudonyms: Vec<String> = w.people.iter().map(|(r, _)| r.pseudonym.clone()).collect();
    let bad = gbk_file(
        dir.path(),
        "roster-bad.csv",
        &format!(
            "居民编号或卡号,姓名,服务时长（小时）\r\n{},王秀英,2\r\n{},李建国,两小时\r\n{},张桂兰,1.5\r\n",
            pseudonyms[0], w.people[1].1, pseudonyms[2]
        ),
    );
    let yesterday = format_date(day_of(w.server.clock.now_micros()).previous_day().unwrap());
    upload(c, &w, &yesterday, &bad).await;
    assert_eq!(status(c).await, 422);
    let refusal = js_string(c, "return document.getElementById('refusal').innerText").await;
    assert!(refusal.contains("整个文件都没有记录"), "{refusal}");
    let line = js_string(c, "return document.getElementById('line-3').innerText").await;
    assert!(
        line.contains("第 3 行") && line.contains("两小时") && line.contains("不超过 24"),
        "{line}"
    );
    let good_line = js_string(c, "return document.getElementById('line-2').innerText").await;
    assert!(
        good_line.contains("王秀英") && good_line.contains("可以"),
        "{good_line}"
    );
    assert!(
        c.find(Locator::Id("confirm-roster")).await.is_err(),
        "no way to submit a bad file"
    );
    let waiting = ListQuery {
        state: "submitted".into(),
        ..ListQuery::default()
    };
    assert!(app
        .earning
        .rosters_in_state(&w.admin, &waiting)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(app
        .earning
        .records_in_state(&w.admin, &submitted())
        .await
        .unwrap()
        .items
        .is_empty());
    screenshot(c, "records-roster-refused").await;
    // A file over 1 MiB is refused as it arrives, in words.
    let big = dir.path().join("roster-big.csv");
    std::fs::write(&big, vec![b'1'; 1_300_000]).unwrap();
    upload(c, &w, &yesterday, &big).await;
    let refusal = js_string(c, "return document.getElementById('refusal').innerText").await;
    assert!(refusal.contains("1 MB"), "{refusal}");

    // ---- fixed, uploaded again, confirmed ----
    let good = gbk_file(
        dir.path(),
        "roster-good.csv",
        &format!(
            "居民编号或卡号,姓名,服务时长（小时）\r\n{},王秀英,2\r\n{},李建国,2\r\n{},张桂兰,1.5\r\n",
            pseudonyms[0], w.people[1].1, pseudonyms[2]
        ),
    );
    upload(c, &w, &yesterday, &good).await;
    assert_eq!(status(c).await, 200);
    let preview = js_string(c, "return document.getElementById('preview').innerText").await;
    assert_eq!(preview.matches("可以").count(), 3, "{preview}");
    screenshot(c, "records-roster-preview").await;
    // The confirm step carries the lines; changed on the way, they are checked again in full.
    let id_line = js_string(
        c,
        "return document.querySelector('#confirm input[name=lines]').value",
    )
    .await;
    let first = id_line
        .lines()
        .next()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    js(
        c,
        &format!("document.querySelector('#confirm input[name=lines]').value = '{first},99';"),
    )
    .await;
    click_to(c, "#confirm-roster").await;
    assert_eq!(status(c).await, 422);
    let refusal = js_string(c, "return document.getElementById('refusal').innerText").await;
    assert!(
        refusal.contains("名册没有记录") && refusal.contains("时长不对"),
        "{refusal}"
    );
    assert!(app
        .earning
        .rosters_in_state(&w.admin, &waiting)
        .await
        .unwrap()
        .items
        .is_empty());
    upload(c, &w, &yesterday, &good).await;
    click_to(c, "#confirm-roster").await;
    let roster_path = js_string(c, "return location.pathname").await;
    assert!(roster_path.starts_with("/staff/rosters/"), "{roster_path}");
    assert!(main_text(c)
        .await
        .contains("您提交的名册，须由其他工作人员审批"));
    assert!(c.find(Locator::Id("approve-roster")).await.is_err());

    // ---- B approves the roster on its page ----
    sign_in_as(c, &w, &w.b.1).await;
    goto(c, &w.url(&roster_path)).await;
    click_to(c, "#approve-roster").await;
    assert_eq!(
        js_string(
            c,
            "return document.getElementById('roster-state').innerText"
        )
        .await,
        "已批准"
    );
    screenshot(c, "records-roster-approved").await;
    let balance = app
        .earning
        .balance(&w.admin, w.people[2].0.id)
        .await
        .unwrap();
    assert_eq!(balance.points_minor, 2000 + 1500);

    // ---- A asks for a correction from the entry; B resolves it ----
    let approved = app
        .earning
        .records_in_state(
            &w.admin,
            &ListQuery {
                state: "approved".into(),
                standalone: true,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    let first = approved
        .items
        .iter()
        .map(|q| q.record.clone())
        .find(|r| r.resident_id == w.people[0].0.id)
        .unwrap();
    let entry = first.entry_id.unwrap();
    sign_in_as(c, &w, &w.a.1).await;
    goto(c, &w.url(&format!("/staff/corrections/new?entry={entry}"))).await;
    let text = main_text(c).await;
    assert!(text.contains(&w.people[0].0.name), "{text}");
    let reason = c.find(Locator::Id("reason")).await.unwrap();
    type_like_scanner(c, Some(&reason), "实际只服务了1小时", 0, false).await;
    click_to(c, "#send").await;
    assert!(main_text(c).await.contains("更正请求已提交"));
    sign_in_as(c, &w, &w.b.1).await;
    goto(c, &w.url("/staff/corrections")).await;
    let card = js_string(c, "return document.querySelector('.correction').innerText").await;
    assert!(
        card.contains("实际只服务了1小时") && card.contains("王秀英") && card.contains("20"),
        "the request beside the original: {card}"
    );
    screenshot(c, "records-corrections").await;
    js(
        c,
        "document.querySelector('.correction input[value=replace]').checked = true; \
         document.querySelector('.correction input[name=hours]').value = '1';",
    )
    .await;
    click_to(c, ".correction button[type=submit]").await;
    assert!(
        main_text(c).await.contains("更正已处理"),
        "{}",
        main_text(c).await
    );
    let balance = app
        .earning
        .balance(&w.admin, w.people[0].0.id)
        .await
        .unwrap();
    assert_eq!(
        balance.points_minor,
        2000 + 1000,
        "20 reversed, 10 credited"
    );

    // ---- the rules in plain words and the report ----
    goto(c, &w.url("/staff/rules")).await;
    assert!(
        main_text(c)
            .await
            .contains("入户走访：每小时10分，每人每日最多40分"),
        "{}",
        main_text(c).await
    );
    goto(c, &w.url("/staff/report")).await;
    let totals = js_string(c, "return document.getElementById('totals').innerText").await;
    // Issued: 3×20 approved, a roster of 20+20+15, the correction's new credit of 10; the
    // correction's reversal of 20 is an adjustment; residents hold 105.
    assert!(totals.contains("发放积分\t125"), "{totals}");
    assert!(totals.contains("调整与冲正\t-20"), "{totals}");
    assert!(totals.contains("居民持有积分（期末）\t105"), "{totals}");
    screenshot(c, "records-report").await;
    // The CSV downloads open correctly in Chinese Excel: UTF-8 with a BOM, Chinese headers.
    for (path, first_line) in [
        ("/staff/report.csv", "项目,明细,数值"),
        (
            "/staff/rosters/template.csv",
            "居民编号或卡号,姓名,服务时长（小时）",
        ),
    ] {
        let got = c
            .execute_async(
                &format!(
                    "const done = arguments[0]; fetch('{path}').then(r => r.arrayBuffer()).then(b => {{ \
                       const bytes = new Uint8Array(b); \
                       done([Array.from(bytes.slice(0, 3)), new TextDecoder().decode(bytes.slice(3))]); }});"
                ),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            got[0],
            serde_json::json!([0xEF, 0xBB, 0xBF]),
            "{path} starts with a BOM"
        );
        let text = got[1].as_str().unwrap();
        assert!(text.starts_with(first_line), "{path}: {text}");
        if path.starts_with("/staff/report") {
            assert!(text.contains("发放积分,,125"), "{text}");
        }
    }
    browser.close().await;
}

/// Every visible text smaller than 22 px: `[element, text, px]`.
const SMALL_TEXT: &str = "
  const small = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const text = n.textContent.trim();
    const el = n.parentElement;
    if (!text || !el || el.closest('svg, .sr-only, noscript') || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    const px = parseFloat(style.fontSize);
    if (px < 22) small.push([el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''), text.slice(0, 24), px]);
  }
  return small;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_page_is_accessible_in_both_modes() {
    // Proves every page added for the staff's record work has no axe-core WCAG 2.2 A/AA
    // violation in the standard mode and in 长辈模式, fits a desktop screen, and in 长辈模式
    // has every control ≥ 60×60 px and all text ≥ 22 px; each with a screenshot.
    let w = world().await;
    let app = w.server.app.clone();
    // Something in every list: a record of A's and one of B's waiting, an approved record with
    // an open correction, a roster waiting with a preview refused.
    let mut ids = Vec::new();
    for (i, who) in [&w.a.0, &w.b.0, &w.b.0].iter().enumerate() {
        let (r, _) = app
            .earning
            .submit_record(
                who,
                &format!("k{i}"),
                NewRecord {
                    resident_id: w.people[i].0.id,
                    rule_id: "visit".into(),
                    service_date: day_of(w.server.clock.now_micros()),
                    hours_minor: 150,
                    note: String::new(),
                },
            )
            .await
            .unwrap();
        ids.push(r.id);
    }
    app.earning.approve_record(&w.a.0, ids[2]).await.unwrap();
    let entry = app
        .earning
        .record(&w.a.0, ids[2])
        .await
        .unwrap()
        .0
        .entry_id
        .unwrap();
    app.earning
        .request_correction(&w.b.0, "c1", ids[2], "日期记错了")
        .await
        .unwrap();
    let (roster, _, _) = app
        .earning
        .create_roster(
            &w.a.0,
            "roster",
            aixin::earning::service::NewRoster {
                community_id: "c1".into(),
                rule_id: "visit".into(),
                service_date: day_of(w.server.clock.now_micros()).previous_day().unwrap(),
                title: "重阳节活动".into(),
                lines: vec![aixin::earning::service::RosterLine {
                    resident: w.people[0].0.pseudonym.clone(),
                    hours: "3".into(),
                }],
            },
        )
        .await
        .unwrap();
    let Some(browser) = Browser::start(BrowserOptions::till()).await else {
        return;
    };
    let c = &browser.client;
    let dir = tempfile::tempdir().unwrap();
    let bad = gbk_file(
        dir.path(),
        "bad.csv",
        "居民编号或卡号,姓名,服务时长（小时）\r\nAX-NOBODY00,某人,2\r\n",
    );
    let pages = [
        ("service", "/staff/service".to_owned()),
        ("approvals", "/staff/approvals".to_owned()),
        ("rosters", "/staff/rosters".to_owned()),
        ("roster-preview", String::new()),
        ("roster", format!("/staff/rosters/{}", roster.id)),
        ("corrections", "/staff/corrections".to_owned()),
        (
            "correction-new",
            format!("/staff/corrections/new?entry={entry}"),
        ),
        ("rules", "/staff/rules?saved=1".to_owned()),
        ("rule-new", "/staff/rules/edit".to_owned()),
        ("rule-edit", "/staff/rules/edit?rule=visit".to_owned()),
        ("report", "/staff/report".to_owned()),
    ];
    let mut problems = Vec::new();
    sign_in_as(c, &w, &w.a.1).await;
    for mode in ["standard", "large"] {
        let large = mode == "large";
        goto(c, &w.url(&format!("/staff/rules?mode={mode}"))).await;
        for (name, path) in &pages {
            if path.is_empty() {
                goto(c, &w.url("/staff/rosters")).await;
                js(c, "document.getElementById('title').value = '测试';").await;
                c.find(Locator::Id("file"))
                    .await
                    .unwrap()
                    .send_keys(bad.to_str().unwrap())
                    .await
                    .unwrap();
                click_to(c, "#preview-button").await;
                assert!(main_text(c).await.contains("第 2 行"));
            } else {
                goto(c, &w.url(path)).await;
                let code = status(c).await;
                if code != 200 {
                    problems.push(format!("{name}: status {code}: {}", main_text(c).await));
                }
            }
            let what = format!("{name} ({mode})");
            let class = js_string(c, "return document.documentElement.className").await;
            if (class == "large") != large {
                problems.push(format!("{what}: <html class={class:?}>"));
            }
            for v in axe_check(c).await {
                problems.push(format!("{what}: axe {v}"));
            }
            let wide = js(
                c,
                "return [document.documentElement.scrollWidth, innerWidth]",
            )
            .await;
            if wide[0].as_f64() > wide[1].as_f64() {
                problems.push(format!("{what}: wider than the screen {wide}"));
            }
            if large {
                for (target, width, height) in min_target_size(c).await {
                    if width < 60.0 || height < 60.0 {
                        problems.push(format!("{what}: {target} is {width}×{height} px"));
                    }
                }
                for small in js(c, SMALL_TEXT).await.as_array().unwrap() {
                    problems.push(format!("{what}: small text {small}"));
                }
            }
            screenshot(c, &format!("records-{name}-{mode}")).await;
        }
    }
    // The English pages too (the standard mode).
    goto(c, &w.url("/staff/approvals?lang=en&mode=standard")).await;
    let text = main_text(c).await;
    assert!(
        text.contains("Approve selected") && text.contains("You recorded this"),
        "{text}"
    );
    for v in axe_check(c).await {
        problems.push(format!("approvals (en): axe {v}"));
    }
    screenshot(c, "records-approvals-en").await;
    browser.close().await;
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
