//! The web edge without a browser: the headers every page carries, no external URL in any
//! page, the embedded files and their caching, language and mode selection, cross-site POSTs
//! refused, and the API's paths still answering problem+json. The browser suite
//! (`tests/browser.rs`) drives the same pages in Chromium.

mod common;

use aixin::app::App;
use aixin::clock::Clock;
use aixin::web::{assets, CSP};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use common::Harness;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn site() -> (Router, Harness) {
    let h = Harness::sqlite().await;
    let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone());
    (aixin::http::router(app), h)
}

async fn get(
    app: &Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::builder().method(Method::GET).uri(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Every page a visitor can reach without signing in.
const PUBLIC_PAGES: &[&str] = &[
    "/signin",
    "/verify",
    "/r/not-a-real-link",
    "/set-password/not-a-real-link",
    "/till/pair/not-a-real-link",
    "/no-such-page",
];

/// Every `src`, `href` and `action` of a page.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\"", "action=\"", "formaction=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
        }
    }
    out
}

#[tokio::test]
async fn pages_carry_the_policy_and_reference_nothing_outside() {
    let (app, _h) = site().await;
    for path in PUBLIC_PAGES {
        let (status, headers, html) = get(&app, path, &[]).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
        assert!(CSP.starts_with("default-src 'self';") && CSP.contains("frame-ancestors 'none'"));
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin", "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let refs = references(&html);
        assert!(!refs.is_empty(), "{path} has no links at all");
        for r in refs {
            assert!(
                r.starts_with('/') && !r.starts_with("//")
                    || r.starts_with('#')
                    || r.starts_with('?'),
                "{path} references {r:?}, which is not on this site"
            );
        }
        assert!(
            html.contains("<html lang=\"zh-CN\""),
            "{path}: Chinese first"
        );
    }
}

#[tokio::test]
async fn every_embedded_file_is_served_immutable_under_this_builds_version_only() {
    let (app, _h) = site().await;
    for asset in assets::ASSETS {
        let (status, headers, _) = get(&app, &assets::path(asset.name), &[]).await;
        assert_eq!(status, StatusCode::OK, "{}", asset.name);
        assert_eq!(headers[header::CONTENT_TYPE], asset.content_type);
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let stale = format!("/assets/000000000000/{}", asset.name);
        assert_eq!(get(&app, &stale, &[]).await.0, StatusCode::NOT_FOUND);
        // Our own scripts name no other host. The vendored ones are kept byte for byte as npm
        // ships them: zxing's loader has a CDN fallback, which scan.js overrides before the
        // first use and the CSP (`connect-src 'self'`, `script-src 'self'`) would refuse anyway.
        assert!(CSP.contains("connect-src 'self'") && CSP.contains("script-src 'self'"));
        let ours = !asset.name.starts_with("vendor/");
        if ours && (asset.name.ends_with(".js") || asset.name.ends_with(".mjs")) {
            assert!(asset.content_type.starts_with("text/javascript"));
            let text = std::str::from_utf8(asset.bytes).unwrap();
            for bad in ["https://", "http://", "//cdn", "unpkg", "jsdelivr"] {
                let hits: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains(bad) && !l.trim_start().starts_with("//"))
                    .filter(|l| !l.contains("http://www.w3.org/2000/svg"))
                    .collect();
                assert!(
                    hits.is_empty(),
                    "{} loads from outside: {hits:?}",
                    asset.name
                );
            }
        }
    }
    // The pages name the files of this build.
    let (_, _, html) = get(&app, "/signin", &[]).await;
    assert!(html.contains(&assets::path("app.css")));
}

#[tokio::test]
async fn language_comes_from_the_query_then_the_cookie_then_the_browser() {
    let (app, _h) = site().await;
    let (_, headers, html) = get(&app, "/signin?lang=en", &[]).await;
    assert!(html.contains("<html lang=\"en\""));
    let cookies: Vec<&str> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("lang=en")),
        "{cookies:?}"
    );
    let (_, _, html) = get(&app, "/signin", &[("cookie", "lang=en")]).await;
    assert!(html.contains("<html lang=\"en\""));
    let (_, _, html) = get(&app, "/signin", &[("accept-language", "en-US,en;q=0.9")]).await;
    assert!(html.contains("<html lang=\"en\""));
    // The query wins over the cookie, the cookie over the browser.
    let (_, _, html) = get(
        &app,
        "/signin?lang=zh",
        &[("cookie", "lang=en"), ("accept-language", "en")],
    )
    .await;
    assert!(html.contains("<html lang=\"zh-CN\""));
    // The switch to the other language is marked as that language.
    assert!(html.contains("lang=\"en\" hreflang=\"en\">English</a>"));
}

#[tokio::test]
async fn large_mode_is_chosen_and_remembered() {
    let (app, _h) = site().await;
    let (_, headers, html) = get(&app, "/signin?mode=large", &[]).await;
    assert!(html.contains("class=\"large\""));
    assert!(headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("mode=large")));
    let (_, _, html) = get(&app, "/signin", &[("cookie", "mode=large")]).await;
    assert!(html.contains("class=\"large\""));
    let (_, _, html) = get(&app, "/signin", &[]).await;
    assert!(!html.contains("class=\"large\""));
}

/// Every state-changing route of the pages.
const FORMS: &[&str] = &[
    "/signin/password",
    "/signin/phone",
    "/signin/clerk",
    "/signout",
    "/r/some-link",
    "/set-password/some-link",
    "/till/pair/some-link",
    "/till/redeem",
    "/till/card",
    "/till/refund",
    "/staff/residents",
    "/staff/rules/edit",
    "/staff/residents/00000000-0000-0000-0000-000000000001/card",
    "/staff/sign-in-card?resident=00000000-0000-0000-0000-000000000001",
    "/verify",
    "/admin/users",
    "/admin/users/00000000-0000-0000-0000-000000000001/reset",
    "/admin/users/00000000-0000-0000-0000-000000000001/disable",
    "/admin/tokens",
    "/admin/tokens/00000000-0000-0000-0000-000000000001/revoke",
    "/admin/keys/rotate",
    "/admin/keys/k1/revoke",
    "/org",
    // records (community staff's record pages)
    "/staff/service",
    "/staff/approvals",
    "/staff/approvals/00000000-0000-0000-0000-000000000000/reject",
    "/staff/rosters/preview",
    "/staff/rosters/confirm",
    "/staff/rosters/00000000-0000-0000-0000-000000000000/approve",
    "/staff/corrections",
    "/staff/corrections/00000000-0000-0000-0000-000000000000/resolve",
    // The owner's pages and /shops (src/web/owner.rs).
    "/shop/items",
    "/shop/items/restock",
    "/shop/staff",
    "/shop/staff/remove",
    "/shop/devices/pair",
    "/shop/devices/unpair",
    "/shop/settlements",
    "/shops",
];

/// Every page route that takes a POST, read from the page modules' source: each must be in
/// [`FORMS`], so a new form cannot skip the cross-site check's test.
#[test]
fn every_page_post_route_is_in_the_cross_site_list() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut routes = Vec::new();
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices(".route(") {
            let rest = &text[at + ".route(".len()..];
            let end = rest
                .find(".route(")
                .unwrap_or(rest.len())
                .min(rest.find(';').unwrap_or(rest.len()));
            let call = &rest[..end];
            let Some(start) = call.find('"') else {
                continue;
            };
            let route = &call[start + 1..];
            let route = &route[..route.find('"').unwrap()];
            if call.contains("post(") {
                routes.push(route.to_owned());
            }
        }
    }
    assert!(routes.len() >= 30, "found only {routes:?}");
    let matches = |route: &str, form: &str| {
        let form = form.split('?').next().unwrap();
        let (r, f): (Vec<&str>, Vec<&str>) =
            (route.split('/').collect(), form.split('/').collect());
        r.len() == f.len() && r.iter().zip(&f).all(|(a, b)| a.starts_with('{') || a == b)
    };
    for route in &routes {
        assert!(
            FORMS.iter().any(|form| matches(route, form)),
            "{route} takes a POST but is not in FORMS (the cross-site test)"
        );
    }
}

#[tokio::test]
async fn a_cross_site_post_is_refused_on_every_form() {
    let (app, _h) = site().await;
    for path in FORMS {
        for (name, value) in [
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
            ("origin", "http://evil.example"),
            // A cross-origin form under the pages' `same-origin` referrer policy.
            ("origin", "null"),
        ] {
            let request = Request::builder()
                .method(Method::POST)
                .uri(*path)
                .header("host", "127.0.0.1:8080")
                .header(name, value)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("name=a&password=b&key=k&code=1"))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} with {name}: {value}"
            );
        }
        // The same form from this site's own page passes the check (and gets its own answer).
        let request = Request::builder()
            .method(Method::POST)
            .uri(*path)
            .header("host", "127.0.0.1:8080")
            .header("origin", "http://127.0.0.1:8080")
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("name=a&password=b&key=k&code=1"))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_ne!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} from this site"
        );
    }
}

#[tokio::test]
async fn pages_that_need_a_session_send_the_visitor_to_sign_in() {
    let (app, _h) = site().await;
    for path in [
        "/me",
        "/me/code",
        "/me/history",
        "/till",
        "/till/today",
        "/till/refund",
        "/shop",
        "/shop/items",
        "/shop/staff",
        "/shop/statement",
        "/shop/statement.csv",
        "/shop/settlements",
        "/shops",
        "/staff/rules/edit",
    ] {
        let (status, headers, _) = get(&app, path, &[]).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(headers[header::LOCATION], format!("/signin?next={path}"));
    }
    // A made-up session value is nobody.
    let (status, _, _) = get(&app, "/me", &[("cookie", "aixin_session=axs_made_up")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_api_still_answers_problems_and_pages_answer_pages() {
    let (app, _h) = site().await;
    let (status, headers, _) = get(&app, "/v1/no-such-route", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));
    let (status, headers, html) = get(&app, "/no-such-page", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(html.contains("没有这个页面"));
}

/// A staff member signed in to the pages of `community`, as a cookie header value.
async fn staff_cookie(app: &App, ledger: &str, community: &str, name: &str) -> String {
    let operator = aixin::auth::Principal::operator(ledger, "test");
    let (_, link) = app
        .sessions
        .create_user(&operator, aixin::auth::Role::Staff, Some(community), name)
        .await
        .unwrap();
    app.sessions
        .set_password(ledger, &link.secret, "a-long-enough-secret")
        .await
        .unwrap();
    let session = app
        .sessions
        .sign_in_password(ledger, name, "a-long-enough-secret", "127.0.0.1")
        .await
        .unwrap();
    format!("aixin_session={}", session.cookie)
}

#[tokio::test]
async fn staff_print_a_one_time_sign_in_qr_code_for_a_resident_of_their_community() {
    let h = Harness::sqlite().await;
    let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone());
    let ledger = "test";
    h.stores
        .ledger
        .ensure_ledger(ledger, h.clock.now_micros())
        .await
        .unwrap();
    let site = aixin::web::Site {
        ledger: ledger.to_owned(),
    };
    let router = aixin::http::router(app.clone()).layer(axum::Extension(site));
    let operator = aixin::auth::Principal::operator(ledger, "test");
    for (id, name, name_en) in [("c1", "幸福社区", "Xingfu"), ("c2", "和平社区", "Heping")]
    {
        app.earning
            .create_org_unit(
                &operator,
                aixin::earning::service::NewOrgUnit {
                    id: id.into(),
                    parent_id: None,
                    level: "community".into(),
                    name_zh: name.into(),
                    name_en: name_en.into(),
                    community: Some(aixin::model::ExpiryPolicy::Never),
                },
            )
            .await
            .unwrap();
    }
    let (resident, _) = app
        .earning
        .register_resident(
            &operator,
            "r1",
            aixin::earning::service::NewResident {
                name: "王秀英".into(),
                phone: "13800000001".into(),
                community_id: "c1".into(),
            },
        )
        .await
        .unwrap();
    let mine = staff_cookie(&app, ledger, "c1", "干部甲").await;
    let other = staff_cookie(&app, ledger, "c2", "干部乙").await;
    let path = format!("/staff/sign-in-card?resident={}", resident.id);
    let (status, _, html) = get(&router, &path, &[("cookie", &mine)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("王秀英") && html.contains("生成并打印登录二维码"),
        "{html}"
    );
    let post = |cookie: String| {
        Request::builder()
            .method(Method::POST)
            .uri(&path)
            .header("host", "127.0.0.1:8080")
            .header("origin", "http://127.0.0.1:8080")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap()
    };
    let response = router.clone().oneshot(post(mine.clone())).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8_lossy(&body).into_owned();
    assert!(html.contains("<svg"), "the card shows a QR code");
    let at = html.find("http://127.0.0.1:8080/r/axl_").expect("the link");
    let secret: String = html[at + "http://127.0.0.1:8080/r/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    // The printed link signs the resident in, once.
    let session = app
        .sessions
        .sign_in_link(ledger, &secret, true, "10.0.0.9")
        .await
        .unwrap();
    assert_eq!(
        session.signed_in.principal.role,
        aixin::auth::Role::Resident
    );
    assert_eq!(
        session.signed_in.principal.scope.as_deref(),
        Some(resident.id.to_string().as_str())
    );
    assert!(app
        .sessions
        .sign_in_link(ledger, &secret, true, "10.0.0.9")
        .await
        .is_err());
    // Staff of another community neither see the resident nor make a link for them.
    let (status, _, _) = get(&router, &path, &[("cookie", &other)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = router.clone().oneshot(post(other)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn staff_set_a_rule_and_its_next_version_from_the_page() {
    let h = Harness::sqlite().await;
    let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone());
    let ledger = "test";
    h.stores
        .ledger
        .ensure_ledger(ledger, h.clock.now_micros())
        .await
        .unwrap();
    let site = aixin::web::Site {
        ledger: ledger.to_owned(),
    };
    let router = aixin::http::router(app.clone()).layer(axum::Extension(site));
    let operator = aixin::auth::Principal::operator(ledger, "test");
    for (id, name, name_en) in [("c1", "幸福社区", "Xingfu"), ("c2", "和平社区", "Heping")]
    {
        app.earning
            .create_org_unit(
                &operator,
                aixin::earning::service::NewOrgUnit {
                    id: id.into(),
                    parent_id: None,
                    level: "community".into(),
                    name_zh: name.into(),
                    name_en: name_en.into(),
                    community: Some(aixin::model::ExpiryPolicy::Never),
                },
            )
            .await
            .unwrap();
    }
    let mine = staff_cookie(&app, ledger, "c1", "干部甲").await;
    let post = |cookie: &str, form: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/staff/rules/edit")
            .header("host", "127.0.0.1:8080")
            .header("origin", "http://127.0.0.1:8080")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(Body::from(form.to_owned()))
            .unwrap()
    };
    let send = |request: Request<Body>| {
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .map(|v| v.to_str().unwrap().to_owned());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                location,
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
    };
    let (status, _, html) = get(&router, "/staff/rules/edit", &[("cookie", &mine)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("设置积分规则") && html.contains("value=\"c1\""),
        "{html}"
    );
    let form = |points: &str, cap_day: &str, version: i64, community: &str| {
        format!(
            "rule_id=visit&expected_version={version}&community_id={community}&category=visit\
             &name_zh=%E5%85%A5%E6%88%B7%E8%B5%B0%E8%AE%BF&name_en=Home+visit&mode=per_hour\
             &points={points}&records_hours=1&cap_day={cap_day}&cap_month=&valid_from=2026-01-01&valid_until="
        )
    };
    // A monthly cap is absent; a daily cap below one hour's points is fine per hour, but not a
    // number: refused in a sentence, the form kept, nothing stored.
    let (status, _, html) = send(post(&mine, &form("10", "abc", 0, "c1"))).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("每日上限不是数字"), "{html}");
    assert!(
        html.contains("value=\"Home visit\""),
        "what was typed stays: {html}"
    );
    assert!(app.earning.rule_versions(&operator, "visit").await.is_err());
    // Saved: version 1.
    let (status, location, _) = send(post(&mine, &form("10", "40", 0, "c1"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/staff/rules?saved=1"));
    let versions = app.earning.rule_versions(&operator, "visit").await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].points.to_string(), "10.00");
    // The page for the next version shows the current terms.
    let (_, _, html) = get(
        &router,
        "/staff/rules/edit?rule=visit",
        &[("cookie", &mine)],
    )
    .await;
    assert!(
        html.contains("v1") && html.contains("value=\"40.00\""),
        "{html}"
    );
    // A stale form (expected version 0 again) is refused; the right one makes version 2.
    let (_, _, html) = send(post(&mine, &form("12", "40", 0, "c1"))).await;
    assert!(html.contains("别人刚刚改过这条规则"), "{html}");
    let (status, _, _) = send(post(&mine, &form("12", "40", 1, "c1"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let versions = app.earning.rule_versions(&operator, "visit").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].points.to_string(), "12.00");
    // Another community's rule: refused by the service, nothing stored.
    let other = form("10", "", 0, "c2").replace("rule_id=visit", "rule_id=clean");
    let (_, _, html) = send(post(&mine, &other)).await;
    assert!(html.contains("refusal"), "{html}");
    assert!(app.earning.rule_versions(&operator, "clean").await.is_err());
}

#[tokio::test]
async fn an_administrator_creates_a_shop_owner_who_signs_in_to_the_shop_pages() {
    let h = Harness::sqlite().await;
    let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone());
    let ledger = "test";
    h.stores
        .ledger
        .ensure_ledger(ledger, h.clock.now_micros())
        .await
        .unwrap();
    let site = aixin::web::Site {
        ledger: ledger.to_owned(),
    };
    let router = aixin::http::router(app.clone()).layer(axum::Extension(site));
    let operator = aixin::auth::Principal::operator(ledger, "test");
    app.earning
        .create_org_unit(
            &operator,
            aixin::earning::service::NewOrgUnit {
                id: "c1".into(),
                parent_id: None,
                level: "community".into(),
                name_zh: "幸福社区".into(),
                name_en: "Xingfu".into(),
                community: Some(aixin::model::ExpiryPolicy::Never),
            },
        )
        .await
        .unwrap();
    let (shop, _) = app
        .redemption
        .create_shop(
            &operator,
            "shop-1",
            aixin::redeem::service::NewShop {
                name_zh: "爱心粮油店".into(),
                name_en: "Love Grain Shop".into(),
                community_id: "c1".into(),
                serves: Vec::new(),
                refund_window_days: None,
            },
        )
        .await
        .unwrap();
    // The administrator, signed in to the pages.
    let (_, link) = app
        .sessions
        .create_user(&operator, aixin::auth::Role::Admin, None, "管理员")
        .await
        .unwrap();
    app.sessions
        .set_password(ledger, &link.secret, "a-long-enough-secret")
        .await
        .unwrap();
    let admin = app
        .sessions
        .sign_in_password(ledger, "管理员", "a-long-enough-secret", "127.0.0.1")
        .await
        .unwrap();
    let admin = format!("aixin_session={}", admin.cookie);
    let (status, _, html) = get(&router, "/admin/users", &[("cookie", &admin)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("value=\"shop\"") && html.contains(&format!("value=\"{}\"", shop.id)),
        "the shop-owner role and the shop as its scope are offered: {html}"
    );
    let form = format!("name=%E5%BA%97%E4%B8%BB&role=shop&scope={}", shop.id);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/admin/users")
        .header("host", "127.0.0.1:8080")
        .header("origin", "http://127.0.0.1:8080")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &admin)
        .body(Body::from(form))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8_lossy(&body).into_owned();
    let at = html.find("/set-password/axl_").expect("the one-time link");
    let secret: String = html[at + "/set-password/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    // The owner sets a password by the link and reaches the shop's pages with it.
    app.sessions
        .set_password(ledger, &secret, "owner-long-secret")
        .await
        .unwrap();
    let owner = app
        .sessions
        .sign_in_password(ledger, "店主", "owner-long-secret", "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(owner.signed_in.principal.role, aixin::auth::Role::Shop);
    let owner = format!("aixin_session={}", owner.cookie);
    let (status, _, html) = get(&router, "/shop", &[("cookie", &owner)]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("爱心粮油店"), "{html}");
    // Staff pages stay closed to the owner.
    let (status, _, _) = get(&router, "/admin/users", &[("cookie", &owner)]).await;
    assert_ne!(status, StatusCode::OK);
}
