//! The administrator's pages proven in Chromium (the harness is `tests/browser/`): an
//! administrator signs in, creates a staff user on the page and gets the one-time link with its
//! QR code; the new user opens the link, sets a password and signs in; the administrator
//! disables the user and the user's session ends at once; a token is created (its secret shown
//! once, working as a bearer token) and revoked from the page (then refused); the signing key is
//! rotated from the page; a unit is added to the organisation tree. Every page passes axe-core
//! (WCAG 2.2 A/AA) in the standard mode and in 长辈模式, with screenshots in
//! `target/screenshots/`.
//!
//! Skipped (loudly) only when Chromium or chromedriver is not installed and neither `CI` nor
//! `AIXIN_REQUIRE_BROWSER=1` is set.

#[allow(unused_imports)]
#[path = "browser/mod.rs"]
mod browser;
mod common;

use std::time::Duration;

use aixin::app::App;
use aixin::auth::{Principal, Role};
use aixin::earning::service::NewOrgUnit;
use aixin::keys::{KeyRing, KeyStatus, SharedKeys};
use aixin::model::ExpiryPolicy;
use browser::*;
use common::T0;
use fantoccini::{Client, Locator};
use serde_json::Value;

const LEDGER: &str = "test";
const ADMIN_PASSWORD: &str = "admin password 2026";
const STAFF_PASSWORD: &str = "staff password 2026";
const WAIT: Duration = Duration::from_secs(10);

struct World {
    server: Server,
    app: App,
    key_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("aixin-keys.json");
    let entropy = aixin::clock::SeededEntropy::new(12);
    let (ring, _) = KeyRing::load_or_create(&key_file, entropy.as_ref(), T0).unwrap();
    let keys = SharedKeys::from_file(key_file.clone(), ring);
    let server_keys = keys.clone();
    let server = Server::start_with(move |app| {
        aixin::http::router(app.with_keys(server_keys)).layer(axum::Extension(aixin::web::Site {
            ledger: LEDGER.into(),
        }))
    })
    .await;
    server.clock.set(T0);
    let app = server.app.clone().with_keys(keys);
    let operator = Principal::operator(LEDGER, "test-admin");
    for (id, parent, level, zh, en) in [
        ("s1", None, "street", "幸福街道", "Xingfu Street"),
        ("c1", Some("s1"), "community", "幸福社区", "Xingfu"),
    ] {
        app.earning
            .create_org_unit(
                &operator,
                NewOrgUnit {
                    id: id.into(),
                    parent_id: parent.map(str::to_owned),
                    level: level.into(),
                    name_zh: zh.into(),
                    name_en: en.into(),
                    community: (level == "community").then_some(ExpiryPolicy::Never),
                },
            )
            .await
            .unwrap();
    }
    let (_, link) = app
        .sessions
        .create_user(&operator, Role::Admin, None, "管理员老周")
        .await
        .unwrap();
    app.sessions
        .set_password(LEDGER, &link.secret, ADMIN_PASSWORD)
        .await
        .unwrap();
    World {
        server,
        app,
        key_file,
        _dir: dir,
    }
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

async fn goto(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    wait_for_js(c, "document.readyState === 'complete'", WAIT).await;
}

async fn main_text(c: &Client) -> String {
    js(c, "return document.querySelector('main').innerText")
        .await
        .as_str()
        .unwrap_or("")
        .to_owned()
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

/// Clicks `css` and waits for the next page.
async fn click_to(c: &Client, css: &str) {
    js(c, "window.__old = true;").await;
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    wait_for_js(
        c,
        "!window.__old && document.readyState === 'complete'",
        WAIT,
    )
    .await;
}

async fn fill(c: &Client, css: &str, text: &str) {
    let field = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn choose(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
}

async fn sign_in(c: &Client, w: &World, name: &str, password: &str, next: &str) {
    let _ = c.delete_cookie(aixin::web::SESSION_COOKIE).await;
    goto(c, &w.server.url(&format!("/signin?next={next}"))).await;
    fill(c, "#staff-name", name).await;
    fill(c, "#staff-password", password).await;
    click_to(c, "form[action='/signin/password'] button").await;
}

async fn session_cookie(c: &Client) -> String {
    c.get_named_cookie(aixin::web::SESSION_COOKIE)
        .await
        .expect("a session cookie")
        .value()
        .to_owned()
}

async fn set_session(c: &Client, w: &World, value: &str) {
    if !c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&w.server.url)
    {
        goto(c, &w.server.url("/signin")).await;
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

/// The status of `GET /v1/ledger` with `token` as bearer token.
async fn api_status(w: &World, token: &str) -> u16 {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<axum::body::Bytes>>();
    let request = axum::http::Request::get(w.server.url("/v1/ledger"))
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Empty::new())
        .unwrap();
    client.request(request).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_runs_users_tokens_keys_and_the_organisation() {
    let w = world().await;
    let Some(browser) = Browser::start(BrowserOptions::default()).await else {
        return;
    };
    let c = &browser.client;

    sign_in(c, &w, "管理员老周", ADMIN_PASSWORD, "/admin").await;
    assert_eq!(path(c).await, "/admin");
    assert!(main_text(c).await.contains("API 令牌"));
    screenshot(c, "admin-home").await;
    let admin_cookie = session_cookie(c).await;

    // A staff user for the community: the one-time link and its QR code.
    goto(c, &w.server.url("/admin/users")).await;
    fill(c, "#name", "陈工作").await;
    choose(c, "#role", "staff").await;
    choose(c, "#scope", "c1").await;
    click_to(c, "#new-user button[type=submit]").await;
    let link = js(
        c,
        "const e = document.getElementById('set-password-link'); return e ? e.innerText : ''",
    )
    .await
    .as_str()
    .unwrap()
    .trim()
    .to_owned();
    assert!(
        link.starts_with(&format!("{}/set-password/axl_", w.server.url)),
        "{link}: {}",
        main_text(c).await
    );
    let qr = js(
        c,
        "return document.querySelectorAll('#one-time-link svg').length",
    )
    .await;
    assert_eq!(qr, 1, "no QR code");
    screenshot(c, "admin-user-link").await;
    // A refused form says why and keeps what was typed: the same name again.
    fill(c, "#name", "陈工作").await;
    choose(c, "#scope", "c1").await;
    click_to(c, "#new-user button[type=submit]").await;
    let refusal = js(c, "return document.querySelector('.refusal').innerText").await;
    assert!(!refusal.as_str().unwrap().is_empty());
    assert_eq!(
        js(c, "return document.getElementById('name').value").await,
        "陈工作"
    );
    let users = w
        .app
        .sessions
        .users(&Principal::operator(LEDGER, "t"))
        .await
        .unwrap();
    assert_eq!(users.len(), 2, "the refused form created a user");

    // The new user opens the link, sets a password and signs in.
    let _ = c.delete_cookie(aixin::web::SESSION_COOKIE).await;
    goto(c, &link).await;
    fill(c, "#password", STAFF_PASSWORD).await;
    click_to(c, "main form button[type=submit]").await;
    assert!(main_text(c).await.contains("密码已设置") || main_text(c).await.contains("登录"));
    sign_in(c, &w, "陈工作", STAFF_PASSWORD, "/").await;
    assert_ne!(path(c).await, "/signin", "{}", main_text(c).await);
    let staff_cookie = session_cookie(c).await;
    // Staff may not use the administrator's pages.
    goto(c, &w.server.url("/admin/users")).await;
    let refused = main_text(c).await;
    assert!(!refused.contains("陈工作"), "{refused}");
    assert!(
        js(c, "return !!document.querySelector('.refusal')").await == true,
        "{refused}"
    );
    // Nor export the ledger: the audit service refuses staff.
    goto(c, &w.server.url("/audit")).await;
    assert!(js(c, "return !!document.querySelector('.refusal')").await == true);
    goto(c, &w.server.url("/audit/export?from=1&to=1")).await;
    assert!(js(c, "return !!document.querySelector('.refusal')").await == true);
    let staff = w
        .app
        .principal_of_session(&staff_cookie)
        .await
        .unwrap()
        .expect("the staff session is live");
    assert_eq!(staff.principal.role, Role::Staff);
    assert_eq!(staff.principal.scope.as_deref(), Some("c1"));

    // The administrator disables the user: the user's session ends at once.
    set_session(c, &w, &admin_cookie).await;
    goto(c, &w.server.url("/admin/users")).await;
    click_to(c, "tr[data-user='陈工作'] form[action$='/disable'] button").await;
    assert!(main_text(c).await.contains("已停用"));
    screenshot(c, "admin-user-disabled").await;
    assert!(w
        .app
        .principal_of_session(&staff_cookie)
        .await
        .unwrap()
        .is_none());
    set_session(c, &w, &staff_cookie).await;
    goto(c, &w.server.url("/signed-in")).await;
    assert_eq!(path(c).await, "/signin", "the disabled user is still in");

    // A token: shown once, works, revoked from the page, refused.
    set_session(c, &w, &admin_cookie).await;
    goto(c, &w.server.url("/admin/tokens")).await;
    choose(c, "#role", "auditor").await;
    fill(c, "#label", "外部审计脚本").await;
    fill(c, "#days", "30").await;
    click_to(c, "#new-token button[type=submit]").await;
    let secret = js(
        c,
        "return document.getElementById('token-secret').innerText",
    )
    .await
    .as_str()
    .unwrap()
    .trim()
    .to_owned();
    assert!(secret.starts_with("axn_") && secret.len() == 68, "{secret}");
    screenshot(c, "admin-token-made").await;
    assert_eq!(api_status(&w, &secret).await, 200);
    goto(c, &w.server.url("/admin/tokens")).await;
    let html = js(c, "return document.documentElement.outerHTML").await;
    assert!(
        !html.as_str().unwrap().contains(&secret[4..]),
        "shown twice"
    );
    assert!(main_text(c).await.contains("外部审计脚本"));
    let row = js(
        c,
        "return [...document.querySelectorAll('#tokens tr[data-token]')].find(r => r.innerText.includes('外部审计脚本')).dataset.token",
    )
    .await;
    let row = row.as_str().unwrap().to_owned();
    click_to(c, &format!("tr[data-token='{row}'] button")).await;
    assert!(main_text(c).await.contains("令牌已撤销"));
    assert_eq!(api_status(&w, &secret).await, 401);

    // The signing keys: rotated from the page; the retired key can be revoked there.
    goto(c, &w.server.url("/admin/keys")).await;
    assert!(main_text(c).await.contains("注意"));
    click_to(c, "form[action='/admin/keys/rotate'] button").await;
    assert!(main_text(c).await.contains("已生成新密钥"));
    let ring = KeyRing::load(&w.key_file).unwrap();
    assert_eq!(ring.active().id, "k2");
    assert_eq!(ring.signing_keys()[0].status, KeyStatus::Retired);
    let revoke = js(
        c,
        "return document.querySelectorAll('form[action=\"/admin/keys/k1/revoke\"]').length",
    )
    .await;
    assert_eq!(revoke, 1);
    let active_revocable = js(
        c,
        "return document.querySelectorAll('form[action=\"/admin/keys/k2/revoke\"]').length",
    )
    .await;
    assert_eq!(active_revocable, 0);
    screenshot(c, "admin-keys").await;

    // The organisation: a grid under the community, shown in the tree under it.
    goto(c, &w.server.url("/org")).await;
    fill(c, "#unit-id", "c1-g1").await;
    choose(c, "#parent", "c1").await;
    fill(c, "#level", "grid").await;
    fill(c, "#name-zh", "第一网格").await;
    fill(c, "#name-en", "Grid 1").await;
    click_to(c, "#new-unit button[type=submit]").await;
    assert!(main_text(c).await.contains("组织单位已创建"));
    let nested = js(
        c,
        "return !!document.querySelector('li[data-unit=\"s1\"] li[data-unit=\"c1\"] li[data-unit=\"c1-g1\"]')",
    )
    .await;
    assert_eq!(nested, true, "{}", main_text(c).await);
    screenshot(c, "admin-org").await;

    // Every page, standard and 长辈模式.
    let pages = [
        ("admin-home", "/admin"),
        ("admin-users", "/admin/users"),
        ("admin-tokens", "/admin/tokens"),
        ("admin-keys", "/admin/keys"),
        ("admin-org", "/org"),
    ];
    let mut problems = Vec::new();
    for mode in ["standard", "large"] {
        for (name, path) in pages {
            goto(c, &w.server.url(&format!("{path}?mode={mode}"))).await;
            let what = format!("{name} ({mode})");
            for v in axe_check(c).await {
                problems.push(format!("{what}: axe {v}"));
            }
            if mode == "large" {
                for (target, width, height) in min_target_size(c).await {
                    if width < 60.0 || height < 60.0 {
                        problems.push(format!("{what}: {target} is {width}×{height} px"));
                    }
                }
            }
            let wide = js(
                c,
                "return [document.documentElement.scrollWidth, innerWidth]",
            )
            .await;
            if wide[0].as_f64() > wide[1].as_f64() {
                problems.push(format!("{what}: wider than the screen {wide}"));
            }
            screenshot(c, &format!("{name}-{mode}")).await;
        }
    }
    // The one-time link page in 长辈模式 too (a reset link, made on the page).
    goto(c, &w.server.url("/admin/users?mode=large")).await;
    click_to(
        c,
        "tr[data-user='管理员老周'] form[action$='/reset'] button",
    )
    .await;
    assert!(main_text(c).await.contains("/set-password/axl_"));
    for v in axe_check(c).await {
        problems.push(format!("admin-user-link (large): axe {v}"));
    }
    screenshot(c, "admin-user-link-large").await;
    goto(c, &w.server.url("/admin?mode=standard&lang=en")).await;
    assert!(main_text(c).await.contains("API tokens"));
    browser.close().await;
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
