//! The public receipt check (`/verify`) proven in Chromium: a real exchange at a shop, its
//! receipt checked signed out — pasted (✓ with the shop and the items), the same text with one
//! character changed (✗ saying it was altered), scanned with the camera — and the page checked
//! by axe-core in the standard mode and in 长辈模式, with screenshots in `target/screenshots/`.
//!
//! Skipped (loudly) only when Chromium or chromedriver is not installed and neither `CI` nor
//! `AIXIN_REQUIRE_BROWSER=1` is set.

#[path = "browser/mod.rs"]
mod browser;
mod common;

use aixin::auth::{Principal, Role};
use aixin::calendar::day_of;
use aixin::earning::service::{NewOrgUnit, NewRecord, NewResident, RuleTerms};
use aixin::ledger::Amount;
use aixin::model::{ExpiryPolicy, RuleMode};
use aixin::redeem::receipt::SignedReceipt;
use aixin::redeem::service::{NewItem, NewShop, Shown, StaffRole};
use browser::*;
use common::T0;
use fantoccini::{Client, Locator};
use serde_json::Value;

const LEDGER: &str = "test";

/// A community, a shop with rice and eggs, a resident with points, and one exchange: two
/// boxes of eggs and a bag of rice. Answers the server and the exchange's signed receipt.
async fn an_exchange() -> (Server, SignedReceipt) {
    let server = Server::start_with(|app| {
        aixin::http::router(app).layer(axum::Extension(aixin::web::Site {
            ledger: LEDGER.into(),
        }))
    })
    .await;
    server.clock.set(T0 + 3_600_000_000); // 09:00 in Beijing
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
    let r = &app.redemption;
    let (shop, _) = r
        .create_shop(
            &admin,
            "shop-1",
            NewShop {
                name_zh: "爱心粮油店".into(),
                name_en: "Love Grain & Oil".into(),
                community_id: "c1".into(),
                serves: Vec::new(),
                refund_window_days: None,
            },
        )
        .await
        .unwrap();
    for (sku, name, price) in [("RICE5", "大米5kg", "40"), ("EGG", "鸡蛋", "20")] {
        let item = NewItem {
            name_zh: name.into(),
            name_en: String::new(),
            unit: "份".into(),
            price: Amount::parse(price).unwrap(),
            track_stock: false,
            cap_day: None,
            cap_month: None,
            active: true,
        };
        r.put_item(&admin, shop.id, sku, item).await.unwrap();
    }
    let (clerk, _, _) = r
        .add_shop_staff_as(&admin, "clerk", shop.id, "小李", StaffRole::Clerk)
        .await
        .unwrap();
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
        .set_rule(&admin, "visit", 0, terms)
        .await
        .unwrap();
    let (resident, _) = app
        .earning
        .register_resident(
            &admin,
            "wang",
            NewResident {
                name: "王秀英".into(),
                phone: "13800001234".into(),
                community_id: "c1".into(),
            },
        )
        .await
        .unwrap();
    // The points come from service recorded by one and approved by another.
    let recorder = Principal::operator(LEDGER, "test-recorder");
    let (record, _) = app
        .earning
        .submit_record(
            &recorder,
            "visit-1",
            NewRecord {
                resident_id: resident.id,
                rule_id: "visit".into(),
                service_date: day_of(T0),
                hours_minor: 500,
                note: String::new(),
            },
        )
        .await
        .unwrap();
    app.earning.approve_record(&admin, record.id).await.unwrap();
    r.issue_credential(&admin, "card", resident.id)
        .await
        .unwrap();
    let own = Principal {
        token_id: uuid::Uuid::nil(),
        ledger_id: LEDGER.into(),
        role: Role::Resident,
        scope: Some(resident.id.to_string()),
        operator: None,
    };
    let code = r.current_code(&own, resident.id).await.unwrap().code;
    let at_the_till = Principal {
        token_id: clerk.token_id,
        ledger_id: LEDGER.into(),
        role: Role::Shop,
        scope: Some(shop.id.to_string()),
        operator: None,
    };
    let sale = r
        .redeem(
            &at_the_till,
            "sale-1",
            Shown::Code(code),
            &[("EGG".into(), 2), ("RICE5".into(), 1)],
        )
        .await
        .unwrap();
    (server, sale.signed)
}

/// `POST /verify` as a browser without JavaScript sends the form: the status and the page.
async fn post_form(server: &Server, text: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let router = aixin::http::router(server.app.clone()).layer(axum::Extension(aixin::web::Site {
        ledger: LEDGER.into(),
    }));
    let body = format!(
        "receipt={}",
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
    );
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/verify")
        .header("host", "127.0.0.1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

async fn text_of(c: &Client, css: &str) -> String {
    match js(
        c,
        &format!("const e = document.querySelector('{css}'); return e ? e.innerText : '';"),
    )
    .await
    {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

async fn goto(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    wait_for_js(c, "document.readyState === 'complete'", WAIT).await;
}

/// Pastes `text` into the page's field and presses 核验, waiting for the answer page.
async fn check(c: &Client, text: &str) {
    let field = c.find(Locator::Css("#receipt-text")).await.unwrap();
    field.clear().await.unwrap();
    js(
        c,
        &format!(
            "document.getElementById('receipt-text').value = {};",
            serde_json::to_string(text).unwrap()
        ),
    )
    .await;
    js(c, "window.__aixinOld = true;").await;
    c.find(Locator::Css("#check-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_js(
        c,
        "!window.__aixinOld && document.readyState === 'complete'",
        WAIT,
    )
    .await;
}

/// The receipt's text with one character changed (in its middle, where the signed content is).
fn altered(compact: &str) -> String {
    let mut chars: Vec<char> = compact.chars().collect();
    let at = chars.len() / 2;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// axe-core and, in 长辈模式, the sizes of controls and text; the problems found.
async fn page_problems(c: &Client, what: &str, large: bool) -> Vec<String> {
    let mut problems = Vec::new();
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
        let class = js(c, "return document.documentElement.className").await;
        if class != "large" {
            problems.push(format!("{what}: <html class={class}>"));
        }
        for (target, width, height) in min_target_size(c).await {
            if width < 60.0 || height < 60.0 {
                problems.push(format!("{what}: {target} is {width}×{height} px"));
            }
        }
        let small = js(
            c,
            "const small = [];
             const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
             for (let n = walk.nextNode(); n; n = walk.nextNode()) {
               const text = n.textContent.trim();
               const el = n.parentElement;
               if (!text || !el || el.closest('svg, .sr-only, noscript') || el.getClientRects().length === 0) continue;
               const px = parseFloat(getComputedStyle(el).fontSize);
               if (px < 22) small.push([el.tagName.toLowerCase(), text.slice(0, 24), px]);
             }
             return small;",
        )
        .await;
        for s in small.as_array().unwrap() {
            problems.push(format!("{what}: small text {s}"));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_checks_a_receipt_on_the_public_page() {
    // Proves the public receipt check: signed out, a real receipt's text gives ✓ with the shop,
    // the items, the time and the signing key; the same text with one changed character gives
    // ✗ saying it was altered; without JavaScript the form post alone does it; the page passes
    // axe (WCAG 2.2 A/AA) in both modes and 长辈模式's sizes, at phone and till sizes.
    let (server, signed) = an_exchange().await;
    let Some(browser) = Browser::start(BrowserOptions::phone()).await else {
        return;
    };
    let c = &browser.client;
    let mut problems = Vec::new();

    // Reached from the sign-in page, signed out.
    goto(c, &server.url("/signin")).await;
    c.find(Locator::Css("#check-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_js(c, "location.pathname === '/verify'", WAIT).await;
    assert!(c
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .all(|k| k.name() != aixin::web::SESSION_COOKIE));
    problems.extend(page_problems(c, "empty", false).await);
    screenshot(c, "check-empty").await;

    check(c, &signed.compact).await;
    let verdict = text_of(c, "#verdict").await;
    assert!(verdict.contains('✓'), "{verdict}");
    assert!(verdict.contains("真实有效"), "{verdict}");
    assert_eq!(text_of(c, "#check-shop").await, "爱心粮油店");
    let items = text_of(c, "#check-items").await;
    for want in ["鸡蛋（EGG）", "大米5kg（RICE5）", "80"] {
        assert!(items.contains(want), "{want} in {items}");
    }
    assert_eq!(
        text_of(c, "#check-time").await,
        format!("{} 09:00", aixin::calendar::format_date(day_of(T0)))
    );
    assert_eq!(text_of(c, "#check-key").await, signed.receipt.key_id);
    problems.extend(page_problems(c, "valid", false).await);
    screenshot(c, "check-valid").await;

    // One character changed: ✗, in plain words.
    check(c, &altered(&signed.compact)).await;
    let verdict = text_of(c, "#verdict").await;
    assert!(verdict.contains('✗'), "{verdict}");
    assert!(!verdict.contains('✓'), "{verdict}");
    let why = text_of(c, "#verdict-why").await;
    assert!(
        why.contains("改动") || why.contains("不是爱心积分小票"),
        "{why}"
    );
    assert!(text_of(c, "#check-shop").await.is_empty());
    problems.extend(page_problems(c, "altered", false).await);
    screenshot(c, "check-altered").await;

    // In English and in 长辈模式.
    goto(c, &server.url("/verify?lang=en")).await;
    check(c, &signed.compact).await;
    assert!(text_of(c, "#verdict").await.contains("Genuine"));
    goto(c, &server.url("/verify?lang=zh&mode=large")).await;
    problems.extend(page_problems(c, "empty (large)", true).await);
    check(c, &signed.compact).await;
    assert!(text_of(c, "#verdict").await.contains('✓'));
    problems.extend(page_problems(c, "valid (large)", true).await);
    screenshot(c, "check-valid-large").await;
    check(c, &altered(&signed.compact)).await;
    assert!(text_of(c, "#verdict").await.contains('✗'));
    problems.extend(page_problems(c, "altered (large)", true).await);
    screenshot(c, "check-altered-large").await;
    goto(c, &server.url("/verify?mode=standard")).await;
    browser.close().await;

    // Without JavaScript: the form post alone answers the same.
    let (status, html) = post_form(&server, &signed.compact).await;
    assert_eq!(status, 200);
    assert!(html.contains('✓') && html.contains("爱心粮油店"), "{html}");
    let (status, html) = post_form(&server, &altered(&signed.compact)).await;
    assert_eq!(status, 422);
    assert!(html.contains('✗') && !html.contains('✓'), "{html}");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_reads_the_receipts_qr_code_on_the_public_page() {
    // Proves the check started from the camera: the receipt's QR code in front of a signed-out
    // phone's camera on /verify, decoded in the page by the vendored decoder, and ✓ follows.
    let (server, signed) = an_exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("receipt.y4m");
    y4m_qr(&signed.compact, &video);
    let Some(browser) = Browser::start(BrowserOptions::phone().camera(&video)).await else {
        return;
    };
    let c = &browser.client;
    goto(c, &server.url("/verify")).await;
    wait_for_js(
        c,
        "!document.getElementById('camera-box').hidden && !document.getElementById('camera').disabled",
        WAIT,
    )
    .await;
    js(c, "window.__aixinOld = true;").await;
    c.find(Locator::Css("#camera"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_js(
        c,
        "!window.__aixinOld && document.readyState === 'complete' && !!document.getElementById('verdict')",
        std::time::Duration::from_secs(30),
    )
    .await;
    let verdict = text_of(c, "#verdict").await;
    assert!(verdict.contains('✓'), "{verdict}");
    assert_eq!(text_of(c, "#check-shop").await, "爱心粮油店");
    screenshot(c, "check-by-camera").await;
    browser.close().await;
}
