//! The till and the resident's pages proven in Chromium (the harness is `tests/browser/`): a
//! shop's day at the till from pairing to today's takings, the camera decoding a code in the
//! page, the resident's phone (sign-in link, balance, a code that refreshes by itself, offline
//! too, and notices a sale), the session cookie and cross-site forms, and every page checked by
//! axe-core in the standard mode and in 长辈模式 at phone and till sizes, with screenshots in
//! `target/screenshots/`.
//!
//! Data is set up through the services, as an operator, community staff and the shop would;
//! the server's clock is frozen (the harness's `ManualClock`) wherever a code matters.
//!
//! Skipped (loudly) only when Chromium or chromedriver is not installed and neither `CI` nor
//! `AIXIN_REQUIRE_BROWSER=1` is set.

#[path = "browser/mod.rs"]
mod browser;
mod common;

use std::time::Instant;

use aixin::auth::{new_token, Principal, Role};
use aixin::calendar::day_of;
use aixin::clock::Clock;
use aixin::earning::service::{NewOrgUnit, NewRecord, NewResident, RuleTerms};
use aixin::ledger::{code, Amount};
use aixin::model::{ExpiryPolicy, Resident, RuleMode};
use aixin::redeem::service::{IssuedCredential, NewItem, NewShop, Shown, StaffRole, StockChange};
use aixin::store::redeem::{Shop, ShopStaff};
use aixin::web::i18n::plain_number;
use browser::*;
use common::T0;
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use uuid::Uuid;

const LEDGER: &str = "test";
/// One code step in microseconds.
const STEP: i64 = code::STEP_SECONDS * 1_000_000;
const SECOND: i64 = 1_000_000;
const CLERK_A: &str = "小李";
const CLERK_B: &str = "小王";
const PIN_A: &str = "482915";
const PIN_B: &str = "305718";
const PIN_OTHER: &str = "770412";
/// The client the services count sign-in attempts against when a test signs in through them.
const CLIENT: &str = "198.51.100.7";
/// Alipay's documented example of a payment code, and a code in WeChat Pay's range.
const ALIPAY: &str = "289431869362714645";
const WECHAT: &str = "134567890123456789";

// ---- The world: a community, a shop, clerks, residents with points and cards ----

/// A resident with a card.
struct Person {
    resident: Resident,
    card: IssuedCredential,
}

impl Person {
    fn id(&self) -> Uuid {
        self.resident.id
    }

    /// The resident as their own session stands for them.
    fn principal(&self) -> Principal {
        Principal {
            token_id: Uuid::nil(),
            ledger_id: LEDGER.into(),
            role: Role::Resident,
            scope: Some(self.id().to_string()),
            operator: None,
        }
    }

    fn secret(&self) -> [u8; 32] {
        hex::decode(&self.card.secret).unwrap().try_into().unwrap()
    }

    fn number(&self) -> u32 {
        self.card.number.parse().unwrap()
    }
}

struct World {
    server: Server,
    admin: Principal,
    staff: Principal,
    /// 爱心粮油店: 大米5kg 40 (3 in stock, 2 a day each), 面粉5kg 30, 鸡蛋 20 (not counted).
    shop: Shop,
    clerk_a: ShopStaff,
    /// The clerk of 幸福便利店, another shop of the community, and its one sale.
    other_clerk: ShopStaff,
    other_receipt: Uuid,
    /// 王秀英 (300 points), 李建国 (100, of which 20 spent at the other shop), 张桂兰 (10).
    people: Vec<Person>,
}

/// What a refusal must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    head: i64,
    balances: Vec<i64>,
    stock: Vec<(String, Option<i64>)>,
}

fn item(name: &str, unit: &str, price: &str, track: bool, cap_day: Option<i64>) -> NewItem {
    NewItem {
        name_zh: name.into(),
        name_en: String::new(),
        unit: unit.into(),
        price: Amount::parse(price).unwrap(),
        track_stock: track,
        cap_day,
        cap_month: None,
        active: true,
    }
}

async fn world() -> World {
    let server = Server::start_with(|app| {
        aixin::http::router(app).layer(axum::Extension(aixin::web::Site {
            ledger: LEDGER.into(),
        }))
    })
    .await;
    server.clock.set(T0);
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
    let (_, record) = new_token(
        server.harness.entropy.as_ref(),
        T0,
        LEDGER,
        Role::Staff,
        Some("c1".into()),
        String::new(),
        None,
    );
    server.harness.store.insert_token(&record).await.unwrap();
    let staff = Principal {
        token_id: record.id,
        ledger_id: LEDGER.into(),
        role: Role::Staff,
        scope: Some("c1".into()),
        operator: None,
    };
    let shop_of = |name_zh: &str, name_en: &str| NewShop {
        name_zh: name_zh.into(),
        name_en: name_en.into(),
        community_id: "c1".into(),
        serves: Vec::new(),
        refund_window_days: None,
    };
    let r = &app.redemption;
    let (shop, _) = r
        .create_shop(&staff, "shop-1", shop_of("爱心粮油店", "Love Grain & Oil"))
        .await
        .unwrap();
    for (sku, new) in [
        ("RICE5", item("大米5kg", "袋", "40", true, Some(2))),
        ("FLOUR5", item("面粉5kg", "袋", "30", false, None)),
        ("EGG", item("鸡蛋", "盒", "20", false, None)),
    ] {
        r.put_item(&staff, shop.id, sku, new).await.unwrap();
    }
    let stock = StockChange {
        delta: 3,
        reason: "restock".into(),
        note: "进货".into(),
    };
    r.move_stock(&staff, "stock-rice", shop.id, "RICE5", stock)
        .await
        .unwrap();
    let (other_shop, _) = r
        .create_shop(
            &staff,
            "shop-2",
            shop_of("幸福便利店", "Xingfu Corner Shop"),
        )
        .await
        .unwrap();
    r.put_item(
        &staff,
        other_shop.id,
        "EGG",
        item("鸡蛋", "盒", "20", false, None),
    )
    .await
    .unwrap();
    let mut clerks = Vec::new();
    for (key, shop_id, name, pin) in [
        ("clerk-a", shop.id, CLERK_A, PIN_A),
        ("clerk-b", shop.id, CLERK_B, PIN_B),
        ("clerk-other", other_shop.id, "小赵", PIN_OTHER),
    ] {
        let (member, _, _) = r
            .add_shop_staff_as(&staff, key, shop_id, name, StaffRole::Clerk)
            .await
            .unwrap();
        app.sessions
            .set_clerk_pin(&staff, member.token_id, pin)
            .await
            .unwrap();
        clerks.push(member);
    }
    let terms = RuleTerms {
        community_id: "c1".into(),
        category: "visit".into(),
        name_zh: "入户走访".into(),
        name_en: "Home visits".into(),
        mode: RuleMode::PerHour,
        points: Amount::parse("20").unwrap(),
        records_hours: true,
        cap_day: None,
        cap_month: None,
        valid_from: day_of(T0),
        valid_until: None,
    };
    app.earning
        .set_rule(&staff, "visit", 0, terms)
        .await
        .unwrap();
    let mut people = Vec::new();
    for (i, (name, phone, hours_minor)) in [
        ("王秀英", "13800001234", 1500),
        ("李建国", "13900005678", 500),
        ("张桂兰", "13700002468", 50),
    ]
    .into_iter()
    .enumerate()
    {
        let (resident, _) = app
            .earning
            .register_resident(
                &staff,
                &format!("resident-{i}"),
                NewResident {
                    name: name.into(),
                    phone: phone.into(),
                    community_id: "c1".into(),
                },
            )
            .await
            .unwrap();
        let new = NewRecord {
            resident_id: resident.id,
            rule_id: "visit".into(),
            service_date: day_of(T0),
            hours_minor,
            note: String::new(),
        };
        let (record, _) = app
            .earning
            .submit_record(&staff, &format!("record-{i}"), new)
            .await
            .unwrap();
        app.earning.approve_record(&admin, record.id).await.unwrap();
        let card = r
            .issue_credential(&staff, &format!("card-{i}"), resident.id)
            .await
            .unwrap();
        people.push(Person { resident, card });
    }
    let other_clerk = clerks.pop().unwrap();
    clerks.pop(); // 小王, who signs in by name and PIN
    let clerk_a = clerks.pop().unwrap();
    let mut w = World {
        server,
        admin,
        staff,
        shop,
        clerk_a,
        other_clerk,
        other_receipt: Uuid::nil(),
        people,
    };
    // 李建国 buys eggs at the other shop.
    let code = w.code_of(1).await;
    let other = w.clerk_principal(&w.other_clerk);
    let sale = r
        .redeem(
            &other,
            "other-sale",
            Shown::Code(code),
            &[("EGG".into(), 1)],
        )
        .await
        .unwrap();
    w.other_receipt = sale.signed.receipt.id;
    // The day starts at 08:10 in the shop (T0 is 08:00 Beijing time).
    w.server.clock.set(T0 + 600 * SECOND);
    w
}

impl World {
    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn clerk_principal(&self, clerk: &ShopStaff) -> Principal {
        Principal {
            token_id: clerk.token_id,
            ledger_id: LEDGER.into(),
            role: Role::Shop,
            scope: Some(clerk.shop_id.to_string()),
            operator: None,
        }
    }

    /// Resident `i`'s code now. When codes were used so fast that the next one lies beyond the
    /// till's window, the clock moves on to when it is valid (as a resident would wait).
    async fn code_of(&self, i: usize) -> String {
        let p = self.people[i].principal();
        let r = &self.server.app.redemption;
        let mut code = r.current_code(&p, self.people[i].id()).await.unwrap();
        if code.valid_in_seconds > 0 {
            self.server.clock.advance(code.valid_in_seconds * SECOND);
            code = r.current_code(&p, self.people[i].id()).await.unwrap();
            assert_eq!(code.valid_in_seconds, 0);
        }
        code.code
    }

    async fn balance(&self, i: usize) -> i64 {
        self.server
            .app
            .earning
            .balance(&self.admin, self.people[i].id())
            .await
            .unwrap()
            .points_minor
    }

    async fn head(&self) -> i64 {
        self.server
            .app
            .store
            .head(LEDGER)
            .await
            .unwrap()
            .map_or(0, |h| h.seq)
    }

    async fn snapshot(&self) -> Snapshot {
        let mut balances = Vec::new();
        for i in 0..self.people.len() {
            balances.push(self.balance(i).await);
        }
        let stock = self
            .server
            .app
            .redemption
            .catalogue(&self.staff, self.shop.id)
            .await
            .unwrap()
            .into_iter()
            .map(|(item, level)| (item.sku, level))
            .collect();
        Snapshot {
            head: self.head().await,
            balances,
            stock,
        }
    }

    /// Failed code attempts counted: every credential's and every shop's (this hour's and
    /// before).
    async fn failures(&self) -> (Vec<i64>, i64) {
        let mut credentials = Vec::new();
        for p in &self.people {
            let c = self
                .server
                .app
                .redemption
                .store
                .credential_of(LEDGER, p.id())
                .await
                .unwrap()
                .unwrap();
            credentials.push(c.failures);
        }
        let sum = "SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT) FROM code_failures";
        let shops: i64 = match &self.server.harness.raw {
            common::Raw::Sqlite(pool) => sqlx::query_scalar(sum).fetch_one(pool).await,
            common::Raw::Postgres(pool) => sqlx::query_scalar(sum).fetch_one(pool).await,
        }
        .unwrap();
        (credentials, shops)
    }

    /// A till device paired with `shop` through the service; its secret.
    async fn paired_device(&self, shop: Uuid) -> String {
        let s = &self.server.app.sessions;
        let link = s.pairing_link(&self.staff, shop, "收银台2").await.unwrap();
        s.redeem_pairing_link(LEDGER, &link.secret, None)
            .await
            .unwrap()
            .secret
    }

    /// A clerk's session cookie on `device`.
    async fn clerk_cookie(&self, device: &str, name: &str, pin: &str) -> String {
        self.server
            .app
            .sessions
            .sign_in_clerk(LEDGER, device, name, pin, CLIENT)
            .await
            .unwrap()
            .cookie
    }

    /// Resident `i`'s session cookie (signed in with a fresh link).
    async fn resident_cookie(&self, i: usize) -> String {
        let s = &self.server.app.sessions;
        let link = s
            .resident_sign_in_link(&self.staff, self.people[i].id())
            .await
            .unwrap();
        s.sign_in_link(LEDGER, &link.secret, true, CLIENT)
            .await
            .unwrap()
            .cookie
    }
}

// ---- Page helpers ----

/// Items and quantities put in the till's basket.
type Basket<'a> = &'a [(&'a str, u32)];

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

async fn path(c: &Client) -> String {
    js_string(c, "return location.pathname").await
}

/// The text of the page's main part as a person sees it.
async fn main_text(c: &Client) -> String {
    js_string(
        c,
        "return (document.querySelector('main') || document.body).innerText",
    )
    .await
}

async fn refusal(c: &Client) -> String {
    js_string(
        c,
        "const r = document.querySelector('.refusal'); return r ? r.innerText : ''",
    )
    .await
}

/// Marks the current document; [`wait_new_page`] then waits until another one has loaded.
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

async fn goto(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    wait_for_js(c, "document.readyState === 'complete'", WAIT).await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Clicks and waits for the page the click leads to.
async fn click_to(c: &Client, css: &str) {
    mark(c).await;
    click(c, css).await;
    wait_new_page(c).await;
}

/// Puts `n` of `sku` in the basket with the item's + button.
async fn plus(c: &Client, sku: &str, n: u32) {
    let css = format!(".item[data-sku='{sku}'] .qty > button:last-child");
    wait_for_js(c, &format!("document.querySelector(\"{css}\")"), WAIT).await;
    for _ in 0..n {
        click(c, &css).await;
    }
}

/// The till with a fresh basket of `basket`.
async fn fresh_till(c: &Client, w: &World, basket: &[(&str, u32)]) {
    goto(c, &w.url("/till")).await;
    assert_eq!(path(c).await, "/till");
    for (sku, n) in basket {
        plus(c, sku, *n).await;
    }
}

/// Types `text` into the till's code field like a scanner (or a person) and waits for the page
/// that answers.
async fn scan(c: &Client, text: &str, per_key_ms: u64, enter: bool) {
    let field = c.find(Locator::Id("code")).await.unwrap();
    mark(c).await;
    type_like_scanner(c, Some(&field), text, per_key_ms, enter).await;
    wait_new_page(c).await;
}

/// Full-width digits (U+FF10–FF19), as some scanner and IME setups type them.
fn full_width(digits: &str) -> String {
    digits
        .chars()
        .map(|d| char::from_u32(0xFF10 + d.to_digit(10).unwrap()).unwrap())
        .collect()
}

/// Puts a session or device cookie into the browser (on the site's origin).
async fn set_cookie(c: &Client, w: &World, name: &str, value: &str) {
    let here = c.current_url().await.unwrap();
    if !here.as_str().starts_with(&w.server.url) {
        goto(c, &w.url("/signin")).await;
    }
    let cookie = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .domain("127.0.0.1")
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .build();
    c.add_cookie(cookie).await.unwrap();
}

/// The HTTP status the current page was answered with.
async fn status(c: &Client) -> u64 {
    js(
        c,
        "return performance.getEntriesByType('navigation')[0].responseStatus",
    )
    .await
    .as_u64()
    .unwrap()
}

/// A chromedriver command fantoccini has no method for: Chromium's network conditions.
#[derive(Debug)]
struct NetworkConditions {
    offline: bool,
}

impl fantoccini::wd::WebDriverCompatibleCommand for NetworkConditions {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.expect("a session");
        base_url.join(&format!("session/{session}/chromium/network_conditions"))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "network_conditions": {
            "offline": self.offline, "latency": 0,
            "download_throughput": -1, "upload_throughput": -1,
        }});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

async fn set_offline(c: &Client, offline: bool) {
    c.issue_cmd(NetworkConditions { offline })
        .await
        .unwrap_or_else(|e| panic!("network conditions (offline {offline}): {e}"));
}

// ---- 1. A day at the till ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_at_the_till() {
    // Proves the till's flow as a shop runs it: pairing, a clerk's PIN sign-in, a basket built
    // with the + buttons, a scanner with and without Enter, typing, full-width digits, the next
    // code accepted in the same step, every refusal in its sentence changing nothing (foreign
    // payment codes counting no attempt), a double submit posting once, a one-page 58 mm
    // receipt, a refund by another clerk (not by the one who sold), and today's takings.
    let w = world().await;
    let Some(browser) = Browser::start(BrowserOptions::till()).await else {
        return;
    };
    let c = &browser.client;
    let started = Instant::now();

    // Pair this browser, then sign in as clerk A with name and PIN.
    let link = w
        .server
        .app
        .sessions
        .pairing_link(&w.staff, w.shop.id, "收银台1")
        .await
        .unwrap();
    goto(c, &w.url(&format!("/till/pair/{}", link.secret))).await;
    click_to(c, "main form button[type=submit]").await;
    assert!(
        main_text(c).await.contains("配对完成"),
        "{}",
        main_text(c).await
    );
    click_to(c, "main a[href='/signin']").await;
    sign_in_clerk(c, CLERK_A, PIN_A).await;
    assert_eq!(path(c).await, "/till");
    screenshot(c, "day-till").await;

    // Sale 1: 面粉5kg + 鸡蛋 with the + buttons, a scanner gun with Enter.
    let before = w.snapshot().await;
    plus(c, "FLOUR5", 1).await;
    plus(c, "EGG", 1).await;
    assert_eq!(
        js_string(c, "return document.getElementById('total').textContent").await,
        "50"
    );
    let code1 = w.code_of(0).await;
    let step1 = code::step_of(w.server.clock.now_micros());
    scan(c, &code1, SCANNER_MS, true).await;
    assert!(
        path(c).await.starts_with("/till/receipts/"),
        "{}",
        main_text(c).await
    );
    let receipt1 = c.current_url().await.unwrap().to_string();
    let text = main_text(c).await;
    for words in ["兑换成功", "面粉5kg", "鸡蛋", "兑换后余额：250 分", "−50"] {
        assert!(text.contains(words), "receipt lacks {words:?}:\n{text}");
    }
    let compact1 = js_string(
        c,
        "return document.querySelector('details code').textContent",
    )
    .await;
    let after = w.snapshot().await;
    assert_eq!(after.head, before.head + 1, "exactly one entry");
    assert_eq!(after.balances[0], before.balances[0] - 5000);
    screenshot(c, "day-receipt").await;

    // Sale 2, in the same step: the resident's next code; a scanner without Enter (the page
    // submits a whole code by itself).
    click_to(c, "#next").await;
    plus(c, "EGG", 1).await;
    let code2 = w.code_of(0).await;
    assert_eq!(
        code::step_of(w.server.clock.now_micros()),
        step1,
        "the same step"
    );
    assert_ne!(code2, code1);
    scan(c, &code2, SCANNER_MS, false).await;
    assert!(
        main_text(c).await.contains("兑换成功"),
        "{}",
        main_text(c).await
    );
    assert_eq!(w.balance(0).await, before.balances[0] - 7000);

    // Sale 3: typed by a person, 120 ms a digit, no Enter.
    click_to(c, "#next").await;
    plus(c, "EGG", 1).await;
    let code3 = w.code_of(0).await;
    scan(c, &code3, PERSON_MS, false).await;
    assert!(
        main_text(c).await.contains("兑换成功"),
        "{}",
        main_text(c).await
    );

    // Sale 4: full-width digits from a scanner with Enter.
    click_to(c, "#next").await;
    plus(c, "EGG", 1).await;
    let code4 = w.code_of(0).await;
    scan(c, &full_width(&code4), SCANNER_MS, true).await;
    assert!(
        main_text(c).await.contains("兑换成功"),
        "{}",
        main_text(c).await
    );
    assert_eq!(w.balance(0).await, before.balances[0] - 11000);
    assert_eq!(w.head().await, before.head + 4);
    eprintln!("four sales: {:?}", started.elapsed());

    // 王秀英 takes the day's 2 bags of rice (1 left in stock).
    fresh_till(c, &w, &[("RICE5", 2)]).await;
    let code = w.code_of(0).await;
    scan(c, &code, SCANNER_MS, true).await;
    assert!(
        main_text(c).await.contains("大米5kg"),
        "{}",
        main_text(c).await
    );

    // Refusals: each says why in its sentence and changes nothing.
    let refusals: [(usize, Basket, Option<&str>, &str); 4] = [
        (2, &[("EGG", 1)], None, "积分不足（余额 10 分，还差 10 分）"),
        (0, &[("EGG", 1)], Some(code1.as_str()), "该码已使用"),
        (1, &[("RICE5", 2)], None, "库存不足：大米5kg 仅剩 1 件"),
        (0, &[("RICE5", 1)], None, "今日限兑 2 件"),
    ];
    for (person, basket, stale, sentence) in refusals {
        fresh_till(c, &w, basket).await;
        let shown = match stale {
            Some(code) => code.to_owned(),
            None => w.code_of(person).await,
        };
        let before = w.snapshot().await;
        scan(c, &shown, SCANNER_MS, true).await;
        let said = refusal(c).await;
        assert!(
            said.contains(sentence),
            "expected {sentence:?}, the till says {said:?}"
        );
        assert_eq!(w.snapshot().await, before, "{sentence}: nothing changed");
        screenshot(c, &format!("day-refusal-{person}-{}", basket[0].0)).await;
    }
    // Payment apps' codes: named, nothing changed, no attempt counted (Alipay with Enter, WeChat
    // as a scanner burst without Enter).
    for (foreign, enter, sentence) in [
        (ALIPAY, true, "这是支付宝付款码"),
        (WECHAT, false, "这是微信付款码"),
    ] {
        fresh_till(c, &w, &[("EGG", 1)]).await;
        let (before, failures) = (w.snapshot().await, w.failures().await);
        scan(c, foreign, SCANNER_MS, enter).await;
        let said = refusal(c).await;
        assert!(
            said.contains(sentence),
            "expected {sentence:?}, the till says {said:?}"
        );
        assert_eq!(w.snapshot().await, before, "{sentence}: nothing changed");
        assert_eq!(
            w.failures().await,
            failures,
            "{sentence}: no attempt counted"
        );
    }
    screenshot(c, "day-refusal-alipay-wechat").await;
    eprintln!("refusals done: {:?}", started.elapsed());

    // A double submit: Enter twice at scanner speed, then the same form (same hidden key) sent
    // again twice at once by script: one entry, one receipt.
    fresh_till(c, &w, &[("EGG", 1)]).await;
    js(
        c,
        "const f = document.getElementById('till'); f.addEventListener('submit', () => \
         sessionStorage.setItem('replay', new URLSearchParams(new FormData(f)).toString()));",
    )
    .await;
    let before = w.snapshot().await;
    let code = w.code_of(0).await;
    let enter: char = fantoccini::key::Key::Enter.into();
    scan(c, &format!("{code}{enter}"), SCANNER_MS, true).await;
    assert!(
        main_text(c).await.contains("兑换成功"),
        "{}",
        main_text(c).await
    );
    let receipt = path(c).await;
    let replies = c
        .execute_async(
            "const done = arguments[0]; const body = sessionStorage.getItem('replay'); \
             const post = () => fetch('/till/redeem', { method: 'POST', body, headers: \
             { 'content-type': 'application/x-www-form-urlencoded' } }) \
             .then((r) => [r.status, new URL(r.url).pathname, body.includes('key=till-')]); \
             Promise.all([post(), post()]).then(done, (e) => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        replies,
        json!([[200, receipt, true], [200, receipt, true]]),
        "the replayed basket answers the same receipt"
    );
    let after = w.snapshot().await;
    assert_eq!(
        after.head,
        before.head + 1,
        "one entry for the double submit"
    );
    assert_eq!(after.balances[0], before.balances[0] - 2000);

    // Print: one page of 5.8 cm.
    let pdf = artifact("day-receipt-58mm.pdf");
    print_pdf(c, 5.8, &pdf).await;
    assert_eq!(
        pdf_page_count(&pdf),
        1,
        "the receipt prints on one 58 mm page"
    );

    // Refunds: clerk A may not refund their own sale; clerk B may.
    goto(c, &w.url("/till/refund")).await;
    refund(c, &compact1).await;
    let said = refusal(c).await;
    assert!(said.contains("办理兑换的店员不能给自己退货"), "{said}");
    screenshot(c, "day-refund-own-sale").await;
    click_to(c, "header form button[type=submit]").await;
    assert_eq!(path(c).await, "/signin");
    sign_in_clerk(c, CLERK_B, PIN_B).await;
    assert_eq!(path(c).await, "/till");
    let before = w.snapshot().await;
    goto(c, &w.url("/till/refund")).await;
    refund(c, &compact1).await;
    assert!(
        path(c).await.starts_with("/till/receipts/"),
        "{}",
        main_text(c).await
    );
    assert_ne!(c.current_url().await.unwrap().to_string(), receipt1);
    let text = main_text(c).await;
    assert!(text.contains("已退货") && text.contains("+50"), "{text}");
    let after = w.snapshot().await;
    assert_eq!(after.head, before.head + 1);
    assert_eq!(after.balances[0], before.balances[0] + 5000);
    screenshot(c, "day-refund-receipt").await;

    // Today's takings: exactly the statement's net.
    goto(c, &w.url("/till/today")).await;
    let day = day_of(w.server.clock.now_micros());
    let statement = w
        .server
        .app
        .redemption
        .statement(&w.staff, w.shop.id, day, day)
        .await
        .unwrap();
    let net = js_string(c, "return document.getElementById('net').textContent").await;
    assert_eq!(net, plain_number(statement.net_minor));
    assert_eq!((statement.redemptions, statement.refunds), (6, 1));
    let text = main_text(c).await;
    assert!(
        text.contains(&format!("兑换笔数\t{}", statement.redemptions)),
        "{text}"
    );
    screenshot(c, "day-today").await;
    eprintln!("a day at the till: {:?}", started.elapsed());
    browser.close().await;
}

/// Signs in on the paired till's sign-in page with a clerk's name and PIN.
async fn sign_in_clerk(c: &Client, name: &str, pin: &str) {
    assert_eq!(path(c).await, "/signin");
    c.find(Locator::Id("clerk-name"))
        .await
        .unwrap()
        .select_by_label(name)
        .await
        .unwrap();
    c.find(Locator::Id("clerk-pin"))
        .await
        .unwrap()
        .send_keys(pin)
        .await
        .unwrap();
    click_to(c, "section[aria-labelledby=clerk] button[type=submit]").await;
}

/// Pastes a receipt's text on the refund page and sends it.
async fn refund(c: &Client, compact: &str) {
    let field = c.find(Locator::Id("receipt-text")).await.unwrap();
    field.send_keys(compact).await.unwrap();
    click_to(c, "main form button[type=submit]").await;
}

// ---- 2. The camera ----

/// Records, in the tab's session storage, every file the page loads and every load the CSP
/// refuses, so the next page (after the form's navigation) can still read them.
const WATCH_LOADS: &str = "
  const keep = () => sessionStorage.setItem('loads', JSON.stringify(
    performance.getEntriesByType('resource').map((e) => e.name)));
  addEventListener('pagehide', keep);
  document.addEventListener('securitypolicyviolation', (e) => {
    const seen = JSON.parse(sessionStorage.getItem('blocked') || '[]');
    seen.push(e.blockedURI + ' ' + e.violatedDirective);
    sessionStorage.setItem('blocked', JSON.stringify(seen));
  });";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_reads_the_residents_qr_code() {
    // Proves the till's camera: the resident's code as a QR code in front of the (fake)
    // camera is decoded in the page by the vendored decoder, served from this site, and the
    // exchange completes; the page loads nothing from anywhere else.
    camera(y4m_qr, "qr").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_reads_the_residents_barcode() {
    // The same with the Code 128 barcode the code page also shows.
    camera(y4m_code128, "code128").await;
}

/// A sale at the till with the camera reading the resident's code from a video `write` makes.
async fn camera(write: fn(&str, &std::path::Path), what: &str) {
    let w = world().await;
    let code = w.code_of(0).await;
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("code.y4m");
    write(&code, &video);
    let Some(browser) = Browser::start(BrowserOptions::till().camera(&video)).await else {
        return;
    };
    let c = &browser.client;
    let started = Instant::now();
    let device = w.paired_device(w.shop.id).await;
    let session = w.clerk_cookie(&device, CLERK_A, PIN_A).await;
    set_cookie(c, &w, aixin::web::DEVICE_COOKIE, &device).await;
    set_cookie(c, &w, aixin::web::SESSION_COOKIE, &session).await;
    fresh_till(c, &w, &[("EGG", 1)]).await;
    js(c, WATCH_LOADS).await;
    wait_for_js(
        c,
        "!document.getElementById('camera-box').hidden && !document.getElementById('camera').disabled",
        WAIT,
    )
    .await;
    let before = w.snapshot().await;
    click_to(c, "#camera").await;
    assert!(
        path(c).await.starts_with("/till/receipts/"),
        "{}",
        main_text(c).await
    );
    assert!(main_text(c).await.contains("兑换成功"));
    let after = w.snapshot().await;
    assert_eq!(after.head, before.head + 1);
    assert_eq!(after.balances[0], before.balances[0] - 2000);
    eprintln!(
        "camera ({what}): receipt {:?} after the till opened",
        started.elapsed()
    );

    let loads: Vec<String> =
        serde_json::from_str(&js_string(c, "return sessionStorage.getItem('loads') || '[]'").await)
            .unwrap();
    assert!(
        loads
            .iter()
            .any(|l| l.ends_with("/vendor/zxing_reader.wasm")),
        "the decoder's wasm came from this site: {loads:?}"
    );
    for load in &loads {
        assert!(
            load.starts_with(&w.server.url),
            "loaded from elsewhere: {load}"
        );
    }
    let blocked = js_string(c, "return sessionStorage.getItem('blocked') || '[]'").await;
    assert_eq!(blocked, "[]", "loads the CSP refused");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_starts_from_the_receipts_qr_code_on_the_camera() {
    // Proves the refund started by scanning the receipt: clerk A's sale, its printed QR code in
    // front of clerk B's camera on the refund page, and the refund receipt follows; the
    // redemption is refunded once.
    let w = world().await;
    let code = w.code_of(0).await;
    let sale = w
        .server
        .app
        .redemption
        .redeem(
            &w.clerk_principal(&w.clerk_a),
            "camera-refund-sale",
            Shown::Code(code),
            &[("EGG".into(), 1)],
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("receipt.y4m");
    y4m_qr(&sale.signed.compact, &video);
    let Some(browser) = Browser::start(BrowserOptions::till().camera(&video)).await else {
        return;
    };
    let c = &browser.client;
    let device = w.paired_device(w.shop.id).await;
    let session = w.clerk_cookie(&device, CLERK_B, PIN_B).await;
    set_cookie(c, &w, aixin::web::DEVICE_COOKIE, &device).await;
    set_cookie(c, &w, aixin::web::SESSION_COOKIE, &session).await;
    goto(c, &w.url("/till/refund")).await;
    wait_for_js(
        c,
        "!document.getElementById('camera-box').hidden && !document.getElementById('camera').disabled",
        WAIT,
    )
    .await;
    let balance = w.balance(0).await;
    click_to(c, "#camera").await;
    assert!(
        path(c).await.starts_with("/till/receipts/"),
        "{}",
        main_text(c).await
    );
    assert!(
        main_text(c).await.contains("已退货"),
        "{}",
        main_text(c).await
    );
    assert_eq!(w.balance(0).await, balance + 2000);
    let refunded = w
        .server
        .app
        .redemption
        .receipt(&w.clerk_principal(&w.clerk_a), sale.signed.receipt.id)
        .await
        .unwrap();
    assert!(refunded.refunded_by.is_some());
    screenshot(c, "day-refund-by-camera").await;
    browser.close().await;
}

// ---- 3. The resident's phone ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_residents_phone_shows_a_code_that_refreshes_by_itself() {
    // Proves the resident's pages on a phone: a printed sign-in link (remembering the phone),
    // the balance in large digits, the code page showing exactly the server's code, refreshing
    // by itself across a step boundary, also with the network cut, and after a sale saying
    // 兑换成功 with the new balance and moving on to a code the till accepts; and phone number +
    // card PIN sign-in.
    let w = world().await;
    let Some(browser) = Browser::start(BrowserOptions::phone()).await else {
        return;
    };
    let c = &browser.client;
    let started = Instant::now();
    let me = &w.people[0];
    let p = me.principal();
    let r = &w.server.app.redemption;
    let boundary = |micros: i64| (code::step_of(micros) + 1) * STEP;

    // The printed link: 记住这部手机 is ticked; sign in.
    let link = w
        .server
        .app
        .sessions
        .resident_sign_in_link(&w.staff, me.id())
        .await
        .unwrap();
    goto(c, &w.url(&format!("/r/{}", link.secret))).await;
    let remember = c.find(Locator::Css("input[name=remember]")).await.unwrap();
    assert!(
        remember.is_selected().await.unwrap(),
        "记住这部手机 is ticked"
    );
    click_to(c, "main form button[type=submit]").await;
    assert_eq!(path(c).await, "/me");
    let cookie = c
        .get_named_cookie(aixin::web::SESSION_COOKIE)
        .await
        .unwrap();
    assert!(
        cookie.expires().is_some(),
        "a remembered phone keeps its cookie"
    );
    let points = js_string(c, "return document.getElementById('points').textContent").await;
    assert_eq!(points, plain_number(w.balance(0).await));
    // The love shops that serve the resident's community, with what they offer.
    goto(c, &w.url("/me/shops")).await;
    let shops = main_text(c).await;
    assert!(
        shops.contains("爱心粮油店") && shops.contains("大米5kg") && shops.contains("40 分"),
        "{shops}"
    );
    goto(c, &w.url("/me")).await;
    let size = js(
        c,
        "return parseFloat(getComputedStyle(document.getElementById('points')).fontSize)",
    )
    .await;
    assert!(
        size.as_f64().unwrap() >= 40.0,
        "the balance in large digits: {size} px"
    );
    screenshot(c, "phone-me").await;

    // The code page, 3 s before a step ends: the server's code, then the next step's by itself.
    let b1 = boundary(w.server.clock.now_micros());
    w.server.clock.set(b1 - 3 * SECOND);
    goto(c, &w.url("/me/code")).await;
    let shown = wait_for_code(c, None).await;
    assert_eq!(shown, r.current_code(&p, me.id()).await.unwrap().code);
    screenshot(c, "phone-code").await;
    let next = wait_for_code(c, Some(&shown)).await;
    assert_eq!(
        next,
        code::code_for_step(&me.secret(), me.number(), b1 / STEP)
    );
    w.server.clock.set(b1 + SECOND);
    assert_eq!(next, r.current_code(&p, me.id()).await.unwrap().code);
    eprintln!(
        "phone: refreshed across a step after {:?}",
        started.elapsed()
    );

    // With the network cut: still refreshing, from the phone's own secret.
    let b2 = b1 + 2 * STEP;
    w.server.clock.set(b2 - 3 * SECOND);
    goto(c, &w.url("/me/code")).await;
    let shown = wait_for_code(c, None).await;
    assert_eq!(shown, r.current_code(&p, me.id()).await.unwrap().code);
    set_offline(c, true).await;
    let fetched = c
        .execute_async(
            "const done = arguments[0]; fetch('/me/code/status', { cache: 'no-store' })\
             .then((r) => done('online ' + r.status), (e) => done('offline'));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fetched, "offline", "the network is cut");
    let offline = wait_for_code(c, Some(&shown)).await;
    assert_eq!(
        offline,
        code::code_for_step(&me.secret(), me.number(), b2 / STEP)
    );
    screenshot(c, "phone-code-offline").await;

    // The code shown is accepted at the till; back online the page says so and moves on.
    w.server.clock.set(b2 + SECOND);
    let clerk = w.clerk_principal(&w.clerk_a);
    let balance = w.balance(0).await;
    r.redeem(
        &clerk,
        "phone-sale",
        Shown::Code(offline.clone()),
        &[("EGG".into(), 1)],
    )
    .await
    .expect("the code the phone showed offline is accepted");
    assert_eq!(w.balance(0).await, balance - 2000);
    set_offline(c, false).await;
    wait_for_js(c, "!document.getElementById('done').hidden", WAIT).await;
    let done = js_string(c, "return document.getElementById('done').innerText").await;
    assert!(
        done.contains("兑换成功") && done.contains(&plain_number(balance - 2000)),
        "{done}"
    );
    let after_sale = wait_for_code(c, Some(&offline)).await;
    assert_eq!(after_sale, r.current_code(&p, me.id()).await.unwrap().code);
    screenshot(c, "phone-code-after-sale").await;

    // The till takes the new code (this browser as the clerk's till for a moment).
    let device = w.paired_device(w.shop.id).await;
    let session = w.clerk_cookie(&device, CLERK_A, PIN_A).await;
    c.delete_cookie(aixin::web::SESSION_COOKIE).await.unwrap();
    set_cookie(c, &w, aixin::web::SESSION_COOKIE, &session).await;
    fresh_till(c, &w, &[("EGG", 1)]).await;
    scan(c, &after_sale, SCANNER_MS, true).await;
    assert!(
        main_text(c).await.contains("兑换成功"),
        "{}",
        main_text(c).await
    );
    assert_eq!(w.balance(0).await, balance - 4000);

    // Phone number and the card's PIN.
    c.delete_cookie(aixin::web::SESSION_COOKIE).await.unwrap();
    goto(c, &w.url("/signin")).await;
    c.find(Locator::Id("phone"))
        .await
        .unwrap()
        .send_keys("138 0000 1234")
        .await
        .unwrap();
    c.find(Locator::Id("phone-pin"))
        .await
        .unwrap()
        .send_keys(&me.card.card_pin)
        .await
        .unwrap();
    click_to(c, "section[aria-labelledby=resident] button[type=submit]").await;
    assert_eq!(path(c).await, "/me", "{}", main_text(c).await);
    let points = js_string(c, "return document.getElementById('points').textContent").await;
    assert_eq!(points, plain_number(balance - 4000));
    eprintln!("the resident's phone: {:?}", started.elapsed());
    browser.close().await;
}

/// The digits the code page shows (`#code[data-digits]`, and `#digits` without its spaces),
/// once the page's own generator has drawn them (the QR code's label is then the grouped
/// digits), and different from `not` when given.
async fn wait_for_code(c: &Client, not: Option<&str>) -> String {
    let not = not.unwrap_or("");
    let value = wait_for_js(
        c,
        &format!(
            "(() => {{ const box = document.getElementById('code'); \
               const label = document.getElementById('qr').getAttribute('aria-label'); \
               const digits = document.getElementById('digits').textContent.replace(/\\s/g, ''); \
               return box.dataset.digits !== '{not}' && label === document.getElementById('digits').textContent \
                 && digits === box.dataset.digits && box.dataset.digits; }})()"
        ),
        WAIT,
    )
    .await;
    value.as_str().unwrap().to_owned()
}

// ---- 4. Security in the browser ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_cross_site_forms_and_other_peoples_pages() {
    // Proves in a browser: the session and device cookies are HttpOnly and SameSite=Lax; a
    // form another origin auto-submits to the till is refused (403) and posts nothing; a
    // clerk's session gets the not-found page for a resident's page and another shop's receipt.
    let w = world().await;
    let Some(browser) = Browser::start(BrowserOptions::till()).await else {
        return;
    };
    let c = &browser.client;
    let link = w
        .server
        .app
        .sessions
        .pairing_link(&w.staff, w.shop.id, "收银台1")
        .await
        .unwrap();
    goto(c, &w.url(&format!("/till/pair/{}", link.secret))).await;
    click_to(c, "main form button[type=submit]").await;
    goto(c, &w.url("/signin")).await;
    sign_in_clerk(c, CLERK_A, PIN_A).await;
    assert_eq!(path(c).await, "/till");
    for name in [aixin::web::SESSION_COOKIE, aixin::web::DEVICE_COOKIE] {
        let cookie = c.get_named_cookie(name).await.unwrap();
        assert_eq!(cookie.http_only(), Some(true), "{name} is HttpOnly");
        assert_eq!(
            cookie.same_site(),
            Some(cookie::SameSite::Lax),
            "{name} is SameSite=Lax"
        );
        assert_eq!(cookie.path(), Some("/"), "{name}");
    }

    // Another origin (another port of 127.0.0.1) posts a whole basket with a live code.
    let code = w.code_of(0).await;
    let evil_page = format!(
        "<!doctype html><html lang=en><title>Win a prize</title><form method=post \
         action=\"{}/till/redeem\"><input name=key value=evil-1><input name=q.EGG value=1>\
         <input name=code value={code}></form><script>document.forms[0].submit()</script></html>",
        w.server.url
    );
    let evil = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let evil_url = format!("http://{}", evil.local_addr().unwrap());
    let evil_router = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = evil_page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let evil_task = tokio::spawn(async move { axum::serve(evil, evil_router).await.unwrap() });
    let before = w.snapshot().await;
    c.goto(&evil_url).await.unwrap();
    wait_for_js(
        c,
        &format!(
            "location.href === '{}/till/redeem' && document.readyState === 'complete'",
            w.server.url
        ),
        WAIT,
    )
    .await;
    assert_eq!(status(c).await, 403);
    let text = js_string(c, "return document.body.innerText").await;
    assert!(text.contains("这个请求来自别的网站，已拒绝"), "{text}");
    assert_eq!(w.snapshot().await, before, "nothing was posted");
    let now = w
        .server
        .app
        .redemption
        .current_code(&w.people[0].principal(), w.people[0].id())
        .await
        .unwrap();
    assert_eq!(now.code, code, "the code was not even presented");
    screenshot(c, "security-cross-site").await;
    evil_task.abort();

    // A clerk's session: a resident's page and another shop's receipt are not found.
    for page in [
        "/me".to_owned(),
        "/me/code".to_owned(),
        format!("/till/receipts/{}", w.other_receipt),
    ] {
        goto(c, &w.url(&page)).await;
        assert_eq!(status(c).await, 404, "{page}");
        let said = refusal(c).await;
        assert!(
            said.contains("没有找到，或您没有权限查看"),
            "{page}: {said}"
        );
    }
    screenshot(c, "security-not-found").await;
    browser.close().await;
}

// ---- 5. Accessibility and 长辈模式 ----

/// Who is signed in for a page of the tour.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Resident,
    Clerk,
}

/// How a page of the tour is reached.
enum Reach {
    Get(String),
    /// The till after a code that is no code (its refusal shown).
    TillRefusal,
    /// The card path's hand-over page (the till's card form sent).
    HandOver,
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

/// Visits every page in both modes, checks each with axe-core (WCAG 2.2 A/AA) and, in
/// 长辈模式, the sizes of controls and text, and saves a screenshot of each.
async fn tour(options: BrowserOptions, size: &str) {
    let w = world().await;
    let Some(browser) = Browser::start(options).await else {
        return;
    };
    let c = &browser.client;
    let started = Instant::now();
    let app = &w.server.app;
    // A sale to show on the receipt pages and in the history.
    let code = w.code_of(0).await;
    let clerk = w.clerk_principal(&w.clerk_a);
    let sale = app
        .redemption
        .redeem(
            &clerk,
            "tour-sale",
            Shown::Code(code),
            &[("EGG".into(), 2), ("FLOUR5".into(), 1)],
        )
        .await
        .unwrap();
    let receipt = sale.signed.receipt.id;
    let entry = app
        .redemption
        .store
        .receipt(LEDGER, receipt)
        .await
        .unwrap()
        .unwrap()
        .entry_id;
    let device = w.paired_device(w.shop.id).await;
    let clerk_session = w.clerk_cookie(&device, CLERK_A, PIN_A).await;
    let resident_session = w.resident_cookie(0).await;
    let s = &app.sessions;
    let resident_link = s
        .resident_sign_in_link(&w.staff, w.people[1].id())
        .await
        .unwrap();
    let pairing = s
        .pairing_link(&w.staff, w.shop.id, "收银台3")
        .await
        .unwrap();
    let (_, password_link) = s
        .create_user(&w.admin, Role::Staff, Some("c1"), "社区小陈")
        .await
        .unwrap();
    let get = |path: String| Reach::Get(path);
    let pages: Vec<(&str, Who, Reach)> = vec![
        ("signin", Who::Nobody, get("/signin".into())),
        (
            "link",
            Who::Nobody,
            get(format!("/r/{}", resident_link.secret)),
        ),
        (
            "pair",
            Who::Nobody,
            get(format!("/till/pair/{}", pairing.secret)),
        ),
        (
            "set-password",
            Who::Nobody,
            get(format!("/set-password/{}", password_link.secret)),
        ),
        ("error", Who::Nobody, get("/no-such-page".into())),
        ("me", Who::Resident, get("/me".into())),
        ("code", Who::Resident, get("/me/code".into())),
        ("history", Who::Resident, get("/me/history".into())),
        ("shops", Who::Resident, get("/me/shops".into())),
        (
            "my-receipt",
            Who::Resident,
            get(format!("/me/receipts/{entry}")),
        ),
        ("till", Who::Clerk, get("/till".into())),
        ("till-refusal", Who::Clerk, Reach::TillRefusal),
        ("handover", Who::Clerk, Reach::HandOver),
        (
            "receipt",
            Who::Clerk,
            get(format!("/till/receipts/{receipt}")),
        ),
        ("today", Who::Clerk, get("/till/today".into())),
        ("refund", Who::Clerk, get("/till/refund".into())),
    ];
    let mut problems = Vec::new();
    if size == "till" {
        set_cookie(c, &w, aixin::web::DEVICE_COOKIE, &device).await;
    }
    for mode in ["standard", "large"] {
        let large = mode == "large";
        // `?mode=` sets the cookie; every later page keeps the mode.
        let _ = c.delete_cookie(aixin::web::SESSION_COOKIE).await;
        goto(c, &w.url(&format!("/signin?mode={mode}"))).await;
        let mut signed_in = Who::Nobody;
        for (name, who, reach) in &pages {
            if *who != signed_in {
                let _ = c.delete_cookie(aixin::web::SESSION_COOKIE).await;
                match who {
                    Who::Nobody => {}
                    Who::Resident => {
                        set_cookie(c, &w, aixin::web::SESSION_COOKIE, &resident_session).await
                    }
                    Who::Clerk => {
                        set_cookie(c, &w, aixin::web::SESSION_COOKIE, &clerk_session).await
                    }
                }
                signed_in = *who;
            }
            match reach {
                Reach::Get(path) => goto(c, &w.url(path)).await,
                Reach::TillRefusal => {
                    fresh_till(c, &w, &[("EGG", 1)]).await;
                    scan(c, "123", SCANNER_MS, true).await;
                    assert!(refusal(c).await.contains("无效"), "{}", main_text(c).await);
                }
                Reach::HandOver => {
                    fresh_till(c, &w, &[("EGG", 1)]).await;
                    js(
                        c,
                        &format!(
                            "document.querySelector('#card').closest('details').open = true; \
                             document.getElementById('card').value = '{}';",
                            w.people[0].card.number
                        ),
                    )
                    .await;
                    click_to(c, "button[formaction='/till/card']").await;
                    assert!(main_text(c).await.contains("请把设备交给居民"));
                }
            }
            if *name == "code" {
                wait_for_code(c, None).await;
            }
            let what = format!("{name} ({mode}, {size})");
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
                let body = js(
                    c,
                    "return parseFloat(getComputedStyle(document.body).fontSize)",
                )
                .await;
                if body.as_f64().unwrap() < 22.0 {
                    problems.push(format!("{what}: body text {body} px"));
                }
                for small in js(c, SMALL_TEXT).await.as_array().unwrap() {
                    problems.push(format!("{what}: small text {small}"));
                }
                if *name == "me" {
                    let points = js(
                        c,
                        "return parseFloat(getComputedStyle(document.getElementById('points')).fontSize)",
                    )
                    .await;
                    if points.as_f64().unwrap() < 40.0 {
                        problems.push(format!("{what}: the balance is {points} px"));
                    }
                }
            }
            screenshot(c, &format!("{name}-{mode}-{size}")).await;
        }
    }
    eprintln!(
        "tour at {size} size: {} pages in {:?}",
        pages.len() * 2,
        started.elapsed()
    );
    browser.close().await;
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_at_phone_size_is_accessible_in_both_modes() {
    // Proves the TRUST row "large mode meets the elderly-use rules" on a phone: every page, in
    // the standard mode and in 长辈模式, has no axe-core WCAG 2.2 A/AA violation and fits the
    // screen; in 长辈模式 every control measures ≥ 60×60 px, all text ≥ 22 px, the balance ≥ 40 px.
    tour(BrowserOptions::phone(), "phone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_at_till_size_is_accessible_in_both_modes() {
    // The same at a till's screen (1280×800), on a paired till.
    tour(BrowserOptions::till(), "till").await;
}
