//! Findings of a security review, over the API on both backends: a write route answers an
//! object the caller may not see exactly as it answers an id that exists nowhere (so existence
//! does not leak); every answer carries `nosniff` and answers with secrets are never cached;
//! concurrent audit exports are bounded.

mod common;

use aixin::app::App;
use aixin::auth::{new_token, Role};
use aixin::clock::Clock;
use aixin::http::router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use common::{Harness, T0};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

on_both_backends!(
    foreign_objects_answer_like_missing_ones_on_write_routes,
    answers_carry_nosniff_and_secrets_are_not_cached,
    audit_exports_beyond_the_bound_are_refused_as_overloaded,
);

const LEDGER: &str = "sec";

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

struct Api {
    app: axum::Router,
    state: App,
    h: Harness,
}

impl Api {
    fn new(h: Harness) -> Api {
        let state = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone());
        Api {
            app: router(state.clone()),
            state,
            h,
        }
    }

    async fn token(&self, role: Role, scope: Option<&str>) -> String {
        let (secret, record) = new_token(
            self.h.entropy.as_ref(),
            self.h.clock.now_micros(),
            LEDGER,
            role,
            scope.map(str::to_owned),
            String::new(),
            None,
        );
        self.h.store.insert_token(&record).await.unwrap();
        secret
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// `call` that must answer `status`; the body.
    async fn ok(
        &self,
        token: &str,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let r = self.call(token, method.clone(), path, key, body).await;
        assert!(
            (200..300).contains(&r.status) && r.status / 100 == status / 100,
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        r.body
    }
}

/// One community's objects, as its own staff made them.
struct Community {
    id: String,
    staff: String,
    shop: String,
    owner: String,
    resident: String,
    /// A submitted record (awaiting approval), an approved one, a correction of the approved one.
    pending: String,
    approved: String,
    correction: String,
    roster: String,
    receipt: String,
}

async fn community(api: &Api, admin: &str, c: &str) -> Community {
    let unit = api
        .ok(admin, Method::POST, "/v1/org-units", None, Some(json!({"id": c, "level": "community", "name_zh": "社区", "name_en": c, "community": {"expiry_policy": "never"}})), 201)
        .await;
    let issuance = unit["issuance_account"].as_str().unwrap().to_owned();
    let staff = api.token(Role::Staff, Some(c)).await;
    let rule = format!("{c}-visit");
    api.ok(&staff, Method::PUT, &format!("/v1/rules/{rule}"), None, Some(json!({"community_id": c, "category": "visit", "name_zh": "走访", "name_en": "Visit", "mode": "per_hour", "points": "10", "records_hours": true, "valid_from": "2025-12-01", "expected_version": 0})), 200).await;
    let shop = api
        .ok(
            &staff,
            Method::POST,
            "/v1/shops",
            Some(&format!("shop-{c}")),
            Some(json!({"name_zh": "爱心店", "community_id": c})),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owner = api
        .ok(
            &staff,
            Method::POST,
            &format!("/v1/shops/{shop}/staff"),
            Some(&format!("owner-{c}")),
            Some(json!({"name": "店主", "owner": true})),
            201,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    api.ok(&owner, Method::PUT, &format!("/v1/shops/{shop}/items/RICE"), None, Some(json!({"name_zh": "大米", "unit": "袋", "price": "5", "track_stock": false, "cap_day": null})), 200).await;
    let resident = api
        .ok(
            &staff,
            Method::POST,
            "/v1/residents",
            Some(&format!("res-{c}")),
            Some(json!({"name": "王秀英", "phone": "13800000000", "community_id": c})),
            201,
        )
        .await;
    let (resident, account) = (
        resident["id"].as_str().unwrap().to_owned(),
        resident["account_id"].as_str().unwrap().to_owned(),
    );
    api.ok(
        admin,
        Method::POST,
        "/v1/entries",
        Some(&format!("earn-{c}")),
        Some(json!({"kind": "earn", "postings": [
        {"account": issuance, "unit": "points", "side": "debit", "amount": "100"},
        {"account": account, "unit": "points", "side": "credit", "amount": "100"}]})),
        201,
    )
    .await;
    api.ok(
        &staff,
        Method::POST,
        &format!("/v1/residents/{resident}/credential"),
        Some(&format!("card-{resident}")),
        None,
        200,
    )
    .await;
    let record = |day: &str| json!({"resident_id": resident, "rule_id": rule, "service_date": day, "hours": "1"});
    let pending = api
        .ok(
            &staff,
            Method::POST,
            "/v1/service-records",
            Some(&format!("rec-a-{c}")),
            Some(record("2025-12-30")),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approved = api
        .ok(
            &staff,
            Method::POST,
            "/v1/service-records",
            Some(&format!("rec-b-{c}")),
            Some(record("2025-12-29")),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.ok(
        admin,
        Method::POST,
        &format!("/v1/service-records/{approved}/approve"),
        None,
        None,
        200,
    )
    .await;
    let correction = api
        .ok(
            &staff,
            Method::POST,
            "/v1/corrections",
            Some(&format!("cor-{c}")),
            Some(json!({"record_id": approved, "reason": "写错了"})),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let roster = api
        .ok(&staff, Method::POST, "/v1/rosters", Some(&format!("ros-{c}")), Some(json!({"community_id": c, "rule_id": rule, "service_date": "2025-12-28", "title": "清扫", "lines": [{"resident": resident, "hours": "2"}]})), 201)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = api
        .ok(
            &staff,
            Method::GET,
            &format!("/v1/residents/{resident}/code"),
            None,
            None,
            200,
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let receipt = api
        .ok(
            &owner,
            Method::POST,
            "/v1/redemptions",
            Some(&format!("red-{c}")),
            Some(json!({"code": code, "items": [{"sku": "RICE", "quantity": 1}]})),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Community {
        id: c.to_owned(),
        staff,
        shop,
        owner,
        resident,
        pending,
        approved,
        correction,
        roster,
        receipt,
    }
}

/// Every write route that names an object, for the objects of `c` (or of nobody, when `c`'s ids
/// are random): (method, path, body).
fn writes(c: &Community) -> Vec<(Method, String, Option<Value>)> {
    let (shop, resident) = (&c.shop, &c.resident);
    vec![
        (
            Method::POST,
            format!("/v1/shops/{shop}/staff"),
            Some(json!({"name": "x"})),
        ),
        (
            Method::PUT,
            format!("/v1/shops/{shop}/items/RICE"),
            Some(
                json!({"name_zh": "大米", "unit": "袋", "price": "6", "track_stock": false, "cap_day": null}),
            ),
        ),
        (
            Method::POST,
            format!("/v1/shops/{shop}/items/RICE/stock"),
            Some(json!({"delta": 1, "reason": "restock"})),
        ),
        (
            Method::POST,
            format!("/v1/shops/{shop}/settlements"),
            Some(json!({"from": "2025-12-01", "to": "2025-12-31"})),
        ),
        (
            Method::POST,
            format!("/v1/residents/{resident}/credential"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/residents/{resident}/credential"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/service-records/{}/approve", c.pending),
            None,
        ),
        (
            Method::POST,
            format!("/v1/service-records/{}/reject", c.pending),
            Some(json!({"reason": "x"})),
        ),
        (
            Method::POST,
            format!("/v1/rosters/{}/approve", c.roster),
            None,
        ),
        (
            Method::POST,
            format!("/v1/corrections/{}/resolve", c.correction),
            Some(json!({"action": "decline"})),
        ),
        (
            Method::POST,
            format!("/v1/receipts/{}/refund", c.receipt),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/corrections".into(),
            Some(json!({"record_id": c.approved, "reason": "x"})),
        ),
        (
            Method::POST,
            "/v1/service-records".into(),
            Some(
                json!({"resident_id": resident, "rule_id": "c1-visit", "service_date": "2025-12-27", "hours": "1"}),
            ),
        ),
        (
            Method::POST,
            "/v1/rosters".into(),
            Some(
                json!({"community_id": "c1", "rule_id": "c1-visit", "service_date": "2025-12-26", "title": "t", "lines": [{"resident": resident, "hours": "1"}]}),
            ),
        ),
    ]
}

/// The same ids as `c`'s, none of which exists.
fn nobody(c: &Community) -> Community {
    let random = || Uuid::new_v4().to_string();
    Community {
        id: c.id.clone(),
        staff: c.staff.clone(),
        shop: random(),
        owner: c.owner.clone(),
        resident: random(),
        pending: random(),
        approved: random(),
        correction: random(),
        roster: random(),
        receipt: random(),
    }
}

async fn foreign_objects_answer_like_missing_ones_on_write_routes(h: Harness) {
    // Proves no write route tells an object the caller may not see from one that does not
    // exist: every role × every write route naming an object, with community c2's object and
    // with a random id, answers the same status and code (and changes nothing either way).
    h.clock.set(T0);
    h.store.ensure_ledger(LEDGER, T0).await.unwrap();
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let c1 = community(&api, &admin, "c1").await;
    let c2 = community(&api, &admin, "c2").await;
    let missing = nobody(&c2);
    let principals = [
        ("staff of c1", c1.staff.clone()),
        ("shop owner of c1", c1.owner.clone()),
        (
            "resident of c1",
            api.token(Role::Resident, Some(&c1.resident)).await,
        ),
        ("auditor", api.token(Role::Auditor, None).await),
    ];
    let mut leaks = Vec::new();
    let mut cells = 0;
    for (who, token) in &principals {
        for ((method, foreign, body), (_, absent, absent_body)) in
            writes(&c2).into_iter().zip(writes(&missing))
        {
            let key = format!("k-{}", Uuid::new_v4());
            let a = api
                .call(token, method.clone(), &foreign, Some(&key), body)
                .await;
            let key = format!("k-{}", Uuid::new_v4());
            let b = api
                .call(token, method.clone(), &absent, Some(&key), absent_body)
                .await;
            cells += 1;
            if (a.status, &a.body["code"]) != (b.status, &b.body["code"]) {
                leaks.push(format!(
                    "{who}: {method} {foreign}: foreign {} {} / missing {} {}",
                    a.status, a.body["code"], b.status, b.body["code"]
                ));
            }
            assert!(
                a.status >= 400,
                "{who} {method} {foreign} succeeded: {}",
                a.body
            );
        }
    }
    assert_eq!(cells, principals.len() * writes(&c2).len());
    assert!(leaks.is_empty(), "existence leaks:\n{}", leaks.join("\n"));
}

async fn answers_carry_nosniff_and_secrets_are_not_cached(h: Harness) {
    // Proves every answer (success, refusal, unknown route) carries
    // `X-Content-Type-Options: nosniff`, and the answers that carry secrets (a credential, the
    // current code and its SVG, a new shop token) carry `Cache-Control: no-store`.
    h.clock.set(T0);
    h.store.ensure_ledger(LEDGER, T0).await.unwrap();
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let c1 = community(&api, &admin, "c1").await;
    let (shop, resident) = (&c1.shop, &c1.resident);
    let cases = [
        (
            Method::POST,
            format!("/v1/residents/{resident}/credential"),
            None,
            200,
        ),
        (
            Method::GET,
            format!("/v1/residents/{resident}/code"),
            None,
            200,
        ),
        (
            Method::GET,
            format!("/v1/residents/{resident}/code.svg"),
            None,
            200,
        ),
        (
            Method::POST,
            format!("/v1/shops/{shop}/staff"),
            Some(json!({"name": "小李"})),
            201,
        ),
        (Method::GET, "/v1/ledger".into(), None, 200),
        (Method::GET, "/v1/no-such-route".into(), None, 404),
        (Method::GET, "/healthz".into(), None, 200),
        (Method::GET, "/v1/audit/export".into(), None, 200),
    ];
    for (method, path, body, status) in cases {
        let key =
            (path.ends_with("/staff") || path.ends_with("/credential")).then_some("nosniff-key");
        let r = api.call(&c1.staff, method.clone(), &path, key, body).await;
        let r = if r.status == 403 {
            // The ledger and the export are the admin's.
            api.call(&admin, method.clone(), &path, None, None).await
        } else {
            r
        };
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        let header = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(
            header("x-content-type-options"),
            Some("nosniff"),
            "{method} {path}"
        );
        assert_eq!(header("cache-control"), Some("no-store"), "{method} {path}");
    }
    let refused = api
        .call("axn_nonsense", Method::GET, "/v1/ledger", None, None)
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.headers.get("x-content-type-options").unwrap(),
        "nosniff"
    );
}

async fn audit_exports_beyond_the_bound_are_refused_as_overloaded(h: Harness) {
    // Proves at most `EXPORTS_MAX` bundle exports run at once: with every slot taken, the next
    // export answers 503 `overloaded` (problem+json) at once; with a slot free it succeeds.
    h.clock.set(T0);
    h.store.ensure_ledger(LEDGER, T0).await.unwrap();
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let slots = api.state.audit.exports.clone();
    let held = slots
        .clone()
        .try_acquire_many_owned(aixin::audit::service::EXPORTS_MAX as u32)
        .expect("every slot is free");
    let r = api
        .call(&admin, Method::GET, "/v1/audit/export", None, None)
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["code"], "overloaded");
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    drop(held);
    let r = api
        .call(&admin, Method::GET, "/v1/audit/export", None, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        slots.available_permits(),
        aixin::audit::service::EXPORTS_MAX
    );
}
