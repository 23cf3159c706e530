//! The shop owner's pages proven in Chromium (the harness is `tests/browser/`): an owner's day —
//! signing in with a password, restocking in one step, adding an item and a clerk, pairing a
//! till in another browser where the clerk signs in and the till names the presented resident
//! (masked, with points) on a refusal, removing the clerk (whose next page load is signed out at
//! once), downloading the statement CSV (UTF-8 BOM, CRLF, Chinese), and community staff
//! registering a shop on `/shops`; and every owner page checked by axe-core in the standard mode
//! and in 长辈模式, with screenshots in `target/screenshots/owner-*`.
//!
//! Skipped (loudly) only when Chromium or chromedriver is not installed and neither `CI` nor
//! `AIXIN_REQUIRE_BROWSER=1` is set.

#[path = "browser/mod.rs"]
#[allow(unused_imports)]
mod browser;
mod common;

use aixin::auth::{Principal, Role};
use aixin::earning::service::{NewOrgUnit, NewResident};
use aixin::ledger::{Amount, EntryKind, Unit};
use aixin::model::ExpiryPolicy;
use aixin::redeem::service::{IssuedCredential, NewItem, NewShop, Shown, StockChange};
use aixin::store::redeem::Shop;
use browser::*;
use common::{transfer, T0};
use fantoccini::{Client, Locator};
use serde_json::Value;

const LEDGER: &str = "test";
const PASSWORD: &str = "correct horse battery staple";
const CLIENT: &str = "198.51.100.7";
const CLERK: &str = "小李";
const CLERK_PIN: &str = "482915";

struct World {
    server: Server,
    shop: Shop,
    card: IssuedCredential,
    owner: Principal,
    /// A staff user's session cookie (community c1).
    staff_cookie: String,
}

impl World {
    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

async fn world() -> World {
    let server = Server::start_with(|app| {
        aixin::http::router(app).layer(axum::Extension(aixin::web::Site {
            ledger: LEDGER.into(),
        }))
    })
    .await;
    server.clock.set(T0 + 3 * 3_600_000_000);
    let app = server.app.clone();
    let admin = Principal::operator(LEDGER, "test-admin");
    let (unit, _) = app
        .earning
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
    let issuance = unit.community.unwrap().issuance_account;
    let (shop, _) = app
        .redemption
        .create_shop(
            &admin,
            "shop-1",
            NewShop {
                name_zh: "爱心粮油店".into(),
                name_en: "Love Grain".into(),
                community_id: "c1".into(),
                serves: Vec::new(),
                refund_window_days: None,
            },
        )
        .await
        .unwrap();
    app.redemption
        .put_item(
            &admin,
            shop.id,
            "RICE",
            NewItem {
                name_zh: "东北大米".into(),
                name_en: "Rice".into(),
                unit: "袋".into(),
                price: Amount::parse("10").unwrap(),
                track_stock: true,
                cap_day: Some(5),
                cap_month: None,
                active: true,
            },
        )
        .await
        .unwrap();
    app.redemption
        .move_stock(
            &admin,
            "stock-1",
            shop.id,
            "RICE",
            StockChange {
                delta: 3,
                reason: "restock".into(),
                note: String::new(),
            },
        )
        .await
        .unwrap();
    let (resident, _) = app
        .earning
        .register_resident(
            &admin,
            "resident-1",
            NewResident {
                name: "王秀英".into(),
                phone: "138 0000 1234".into(),
                community_id: "c1".into(),
            },
        )
        .await
        .unwrap();
    app.journal
        .post(
            &admin,
            "earn-1".to_owned(),
            transfer(
                EntryKind::Earn,
                issuance,
                resident.account_id,
                Unit::Points,
                "100",
            ),
        )
        .await
        .unwrap();
    let card = app
        .redemption
        .issue_credential(&admin, "card-1", resident.id)
        .await
        .unwrap();
    // The shop's owner and a community staff member, as users with passwords.
    let mut sessions = Vec::new();
    for (role, scope, name) in [
        (Role::Shop, shop.id.to_string(), "王店主"),
        (Role::Staff, "c1".to_owned(), "社区小陈"),
    ] {
        let (_, link) = app
            .sessions
            .create_user(&admin, role, Some(&scope), name)
            .await
            .unwrap();
        app.sessions
            .set_password(LEDGER, &link.secret, PASSWORD)
            .await
            .unwrap();
        sessions.push(
            app.sessions
                .sign_in_password(LEDGER, name, PASSWORD, CLIENT)
                .await
                .unwrap(),
        );
    }
    let staff_cookie = sessions.pop().unwrap().cookie;
    let owner = sessions.pop().unwrap().signed_in.principal;
    World {
        server,
        shop,
        card,
        owner,
        staff_cookie,
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

async fn path(c: &Client) -> String {
    js_string(c, "return location.pathname").await
}

async fn main_text(c: &Client) -> String {
    js_string(
        c,
        "return (document.querySelector('main') || document.body).innerText",
    )
    .await
}

async fn text_of(c: &Client, id: &str) -> String {
    js_string(
        c,
        &format!("const e = document.getElementById('{id}'); return e ? e.innerText : ''"),
    )
    .await
}

async fn goto(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    wait_for_js(c, "document.readyState === 'complete'", WAIT).await;
}

async fn click_to(c: &Client, css: &str) {
    js(c, "window.__aixinOld = true;").await;
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    wait_for_js(
        c,
        "!window.__aixinOld && document.readyState === 'complete'",
        WAIT,
    )
    .await;
}

async fn fill(c: &Client, id: &str, value: &str) {
    let field = c
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("find #{id}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn set_session(c: &Client, w: &World, value: &str) {
    let here = c.current_url().await.unwrap();
    if !here.as_str().starts_with(&w.server.url) {
        goto(c, &w.url("/signin")).await;
    }
    let _ = c.delete_cookie(aixin::web::SESSION_COOKIE).await;
    let cookie = cookie::Cookie::build((aixin::web::SESSION_COOKIE.to_owned(), value.to_owned()))
        .domain("127.0.0.1")
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .build();
    c.add_cookie(cookie).await.unwrap();
}

/// Text smaller than 22 px in 长辈模式 (as tests/pages.rs measures it).
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

/// axe-core WCAG A/AA, the screen's width, and in 长辈模式 the target and text sizes of the page
/// shown now; every problem found is pushed.
async fn check_page(c: &Client, what: &str, large: bool, problems: &mut Vec<String>) {
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
}

// ---- An owner's day ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owners_day() {
    // Proves the owner's pages as a shop runs them: the owner signs in with a password on any
    // computer, restocks in one step, adds an item and a clerk with a PIN, pairs a till that the
    // clerk signs in on (another browser), where a refused sale names the resident masked with
    // their points; the owner removes the clerk and the clerk's next page load is signed out at
    // once; the statement's CSV opens in Chinese Excel (BOM, CRLF, Chinese headers); community
    // staff register a shop on /shops.
    let w = world().await;
    let Some(owner) = Browser::start(BrowserOptions::till()).await else {
        return;
    };
    let c = &owner.client;

    // Sign in with name and password; the till links the owner to the owner pages.
    goto(c, &w.url("/signin")).await;
    fill(c, "staff-name", "王店主").await;
    fill(c, "staff-password", PASSWORD).await;
    click_to(c, "section[aria-labelledby=staff] button[type=submit]").await;
    goto(c, &w.url("/till")).await;
    assert_eq!(path(c).await, "/till", "{}", main_text(c).await);
    click_to(c, "#owner-pages").await;
    assert_eq!(path(c).await, "/shop");
    let home = main_text(c).await;
    assert!(home.contains("今日收入"), "{home}");
    assert!(home.contains("东北大米（RICE）：库存 3"), "{home}");
    screenshot(c, "owner-home").await;

    // Restock in one step: a number and a button in the item's row.
    goto(c, &w.url("/shop/items")).await;
    assert_eq!(text_of(c, "stock-RICE").await, "3");
    fill(c, "qty-RICE", "5").await;
    click_to(c, "#restock-RICE").await;
    assert!(
        main_text(c).await.contains("已补货"),
        "{}",
        main_text(c).await
    );
    assert_eq!(text_of(c, "stock-RICE").await, "8");
    click_to(c, "#history-RICE").await;
    let moves = text_of(c, "moves").await;
    assert!(
        moves.contains("+5") && moves.contains("补货") && moves.contains('8'),
        "{moves}"
    );
    // A bad price is refused with a sentence and keeps what was typed.
    fill(c, "sku", "OIL").await;
    fill(c, "name_zh", "花生油").await;
    fill(c, "unit", "桶").await;
    fill(c, "price", "25.555").await;
    click_to(c, "#save-item").await;
    assert!(!text_of(c, "refusal").await.is_empty());
    assert_eq!(
        js_string(c, "return document.getElementById('name_zh').value").await,
        "花生油"
    );
    fill(c, "price", "25.5").await;
    click_to(c, "#save-item").await;
    let items = main_text(c).await;
    assert!(
        items.contains("商品已保存") && items.contains("花生油"),
        "{items}"
    );
    assert!(text_of(c, "items").await.contains("25.5"));
    screenshot(c, "owner-items").await;

    // Add a clerk with a PIN (an easy PIN is refused first), and pair a till.
    goto(c, &w.url("/shop/staff")).await;
    fill(c, "clerk-name", CLERK).await;
    fill(c, "clerk-pin", "123456").await;
    click_to(c, "#add-clerk").await;
    assert!(!text_of(c, "refusal").await.is_empty(), "an easy PIN");
    assert!(!text_of(c, "staff").await.contains(CLERK), "nobody added");
    fill(c, "clerk-pin", CLERK_PIN).await;
    click_to(c, "#add-clerk").await;
    assert!(
        main_text(c).await.contains("店员已添加"),
        "{}",
        main_text(c).await
    );
    assert!(text_of(c, "staff").await.contains(CLERK));
    click_to(c, "#pair").await;
    let link = js_string(
        c,
        "return document.getElementById('pairing-link').getAttribute('href')",
    )
    .await;
    assert!(link.contains("/till/pair/axl_"), "{link}");
    assert!(js(c, "return !!document.querySelector('#pairing svg')").await == Value::Bool(true));
    screenshot(c, "owner-staff-pairing").await;

    // The till, in another browser: paired by the link, the clerk signs in with the PIN.
    let Some(till) = Browser::start(BrowserOptions::till()).await else {
        return;
    };
    let t = &till.client;
    goto(t, &link).await;
    click_to(t, "main form button[type=submit]").await;
    assert!(
        main_text(t).await.contains("配对完成"),
        "{}",
        main_text(t).await
    );
    goto(t, &w.url("/signin")).await;
    t.find(Locator::Id("clerk-name"))
        .await
        .unwrap()
        .select_by_label(CLERK)
        .await
        .unwrap();
    fill(t, "clerk-pin", CLERK_PIN).await;
    click_to(t, "section[aria-labelledby=clerk] button[type=submit]").await;
    assert_eq!(path(t).await, "/till", "{}", main_text(t).await);
    assert!(js(t, "return !document.getElementById('owner-pages')").await == Value::Bool(true));
    // 6 bags is over the daily cap of 5: refused once the card was accepted, so the clerk sees
    // the resident masked with their points, and nothing else about them.
    js(t, "document.getElementById('q.RICE').value = '6';").await;
    js(
        t,
        &format!(
            "document.querySelector('#card').closest('details').open = true; \
             document.getElementById('card').value = '{}';",
            w.card.number
        ),
    )
    .await;
    click_to(t, "button[formaction='/till/card']").await;
    fill(t, "pin", &w.card.card_pin).await;
    click_to(t, "main form button[type=submit]").await;
    let presented = text_of(t, "presented").await;
    assert!(
        presented.contains("王*英") && presented.contains("100"),
        "{presented} / {}",
        main_text(t).await
    );
    assert!(
        !main_text(t).await.contains("王秀英"),
        "never the full name"
    );
    let mut problems = Vec::new();
    check_page(t, "till with the presented resident", false, &mut problems).await;
    screenshot(t, "owner-till-presented").await;

    // The owner removes the clerk (after a confirmation); the clerk's next page load is the
    // sign-in page.
    goto(c, &w.url("/shop/staff")).await;
    click_to(c, "a[id^='remove-']").await;
    assert_eq!(text_of(c, "remove-name").await, CLERK);
    screenshot(c, "owner-remove").await;
    click_to(c, "#confirm-remove").await;
    assert!(
        main_text(c).await.contains("已移除"),
        "{}",
        main_text(c).await
    );
    goto(t, &w.url("/till")).await;
    assert_eq!(
        path(t).await,
        "/signin",
        "the removed clerk is signed out at once"
    );
    assert!(
        js(
            t,
            "return [...document.querySelectorAll('#clerk-name option')].map(o => o.textContent)"
        )
        .await
        .as_array()
        .is_none_or(|names| names.iter().all(|n| n != CLERK)),
        "the till no longer offers the removed clerk"
    );
    till.close().await;

    // A sale by the owner, then the statement and its CSV as Chinese Excel opens it.
    w.server
        .app
        .redemption
        .redeem(
            &w.owner,
            "owner-sale",
            Shown::Card {
                number: w.card.number.clone(),
                pin: w.card.card_pin.clone(),
            },
            &[("RICE".into(), 3)],
        )
        .await
        .unwrap();
    goto(c, &w.url("/shop/statement")).await;
    assert_eq!(text_of(c, "net").await, "30");
    screenshot(c, "owner-statement").await;
    let fetched = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.getElementById('csv').href).then(async (r) => done({
               type: r.headers.get('content-type'),
               disposition: r.headers.get('content-disposition'),
               bytes: Array.from(new Uint8Array(await r.arrayBuffer())),
             }));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fetched["type"], "text/csv; charset=utf-8");
    assert!(fetched["disposition"]
        .as_str()
        .unwrap()
        .starts_with("attachment; filename=\"statement-"));
    let bytes: Vec<u8> = fetched["bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 with a byte-order mark");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(
        text.contains("小票编号,类型,时间,社区,居民（化名）,积分,流水号\r\n"),
        "{text}"
    );
    assert!(
        text.contains(",兑换,") && text.contains(",30.00,"),
        "{text}"
    );
    assert!(text.starts_with("店铺,爱心粮油店,期间,"), "{text}");
    assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");

    goto(c, &w.url("/shop/settlements")).await;
    assert!(text_of(c, "settle-title").await.contains("日结"));
    screenshot(c, "owner-settlements").await;

    // The next day, community staff settle the day of the sale on the same page (日结 over the
    // settle service); the settlement is listed.
    let now = aixin::clock::Clock::now_micros(w.server.clock.as_ref());
    let sale_day = aixin::calendar::format_date(aixin::calendar::day_of(now));
    w.server.clock.set(now + 86_400_000_000);
    let staff_cookie = w
        .server
        .app
        .sessions
        .sign_in_password(LEDGER, "社区小陈", PASSWORD, CLIENT)
        .await
        .unwrap()
        .cookie;
    set_session(c, &w, &staff_cookie).await;
    goto(c, &w.url(&format!("/shop/settlements?shop={}", w.shop.id))).await;
    assert!(
        main_text(c).await.contains("还没有结算记录"),
        "{}",
        main_text(c).await
    );
    js(
        c,
        &format!(
            "document.getElementById('from').value = '{sale_day}'; \
             document.getElementById('to').value = '{sale_day}';"
        ),
    )
    .await;
    click_to(c, "#settle").await;
    assert!(
        main_text(c).await.contains("已结算"),
        "{}",
        main_text(c).await
    );
    let settled = text_of(c, "settlements").await;
    assert!(
        settled.contains(&sale_day) && settled.contains("30"),
        "{settled}"
    );
    // Settling the same day again settles nothing twice: refused with a sentence, nothing changed.
    js(
        c,
        &format!(
            "document.getElementById('from').value = '{sale_day}'; \
             document.getElementById('to').value = '{sale_day}';"
        ),
    )
    .await;
    click_to(c, "#settle").await;
    assert!(
        text_of(c, "refusal")
            .await
            .contains("上次结算以后没有要结算的积分"),
        "{}",
        main_text(c).await
    );
    assert_eq!(
        js(
            c,
            "return document.querySelectorAll('#settlements tbody tr').length"
        )
        .await,
        1
    );
    screenshot(c, "owner-settled-by-staff").await;

    // Community staff see the shop on /shops and register another.
    goto(c, &w.url("/shops")).await;
    assert!(text_of(c, "shops").await.contains("爱心粮油店"));
    fill(c, "name_zh", "幸福便利店").await;
    fill(c, "community_id", "c1").await;
    click_to(c, "#create-shop").await;
    assert_eq!(path(c).await, "/shop/items");
    assert!(
        main_text(c).await.contains("商铺已登记"),
        "{}",
        main_text(c).await
    );
    goto(c, &w.url("/shops")).await;
    assert!(text_of(c, "shops").await.contains("幸福便利店"));
    screenshot(c, "owner-shops-staff").await;
    let _ = &w.shop;
    owner.close().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- Every owner page, accessible in both modes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_owner_page_is_accessible_in_both_modes() {
    // Every page of the owner's area (and /shops), in the standard mode and in 长辈模式: no
    // axe-core WCAG 2.2 A/AA violation, no wider than the screen; in 长辈模式 every control at
    // least 60×60 px and all text at least 22 px. At a desktop's size (the pages are desktop
    // first) and at a phone's (an owner checks stock from the phone too).
    tour(BrowserOptions::till(), "desktop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_owner_page_is_accessible_on_a_phone() {
    tour(BrowserOptions::phone(), "phone").await;
}

async fn tour(options: BrowserOptions, size: &str) {
    let w = world().await;
    let Some(browser) = Browser::start(options).await else {
        return;
    };
    let c = &browser.client;
    let app = &w.server.app;
    let (clerk, _, _) = app
        .redemption
        .add_shop_staff_as(
            &w.owner,
            "clerk-1",
            w.shop.id,
            CLERK,
            aixin::redeem::service::StaffRole::Clerk,
        )
        .await
        .unwrap();
    app.sessions
        .set_clerk_pin(&w.owner, clerk.token_id, CLERK_PIN)
        .await
        .unwrap();
    app.sessions
        .pairing_link(&w.owner, w.shop.id, "收银台1")
        .await
        .unwrap();
    app.redemption
        .redeem(
            &w.owner,
            "sale-1",
            Shown::Card {
                number: w.card.number.clone(),
                pin: w.card.card_pin.clone(),
            },
            &[("RICE".into(), 2)],
        )
        .await
        .unwrap();
    let owner_cookie = app
        .sessions
        .sign_in_password(LEDGER, "王店主", PASSWORD, CLIENT)
        .await
        .unwrap()
        .cookie;
    let pages = [
        ("home", "/shop".to_owned()),
        ("items", "/shop/items".to_owned()),
        ("items-edit", "/shop/items?edit=RICE".to_owned()),
        ("items-history", "/shop/items?history=RICE".to_owned()),
        ("staff", "/shop/staff".to_owned()),
        (
            "remove",
            format!("/shop/staff/remove?staff={}", clerk.token_id),
        ),
        ("statement", "/shop/statement".to_owned()),
        ("settlements", "/shop/settlements".to_owned()),
        ("shops", "/shops".to_owned()),
    ];
    let mut problems = Vec::new();
    for mode in ["standard", "large"] {
        let large = mode == "large";
        for (who, cookie) in [("owner", &owner_cookie), ("staff", &w.staff_cookie)] {
            set_session(c, &w, cookie).await;
            goto(c, &w.url(&format!("/signin?mode={mode}"))).await;
            for (name, page) in &pages {
                let page = if who == "staff" {
                    if *name == "remove" {
                        continue;
                    }
                    let sep = if page.contains('?') { '&' } else { '?' };
                    if *name == "shops" {
                        page.clone()
                    } else {
                        format!("{page}{sep}shop={}", w.shop.id)
                    }
                } else {
                    page.clone()
                };
                goto(c, &w.url(&page)).await;
                let what = format!("{name} as {who} ({mode}, {size})");
                if !js_string(c, "return document.title")
                    .await
                    .contains("爱心积分")
                {
                    problems.push(format!("{what}: {}", main_text(c).await));
                }
                check_page(c, &what, large, &mut problems).await;
                screenshot(c, &format!("owner-{name}-{who}-{mode}-{size}")).await;
            }
        }
    }
    // The language switch keeps the shop an administrator or staff member is looking at.
    set_session(c, &w, &w.staff_cookie).await;
    goto(
        c,
        &w.url(&format!("/shop/items?shop={}&mode=standard", w.shop.id)),
    )
    .await;
    click_to(c, "header.bar a[hreflang=en]").await;
    let english = main_text(c).await;
    assert!(
        english.contains("Items and stock") && english.contains("Rice"),
        "{english}"
    );
    screenshot(c, &format!("owner-items-staff-en-{size}")).await;
    browser.close().await;
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
