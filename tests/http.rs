//! The HTTP API end to end (through the router, without a socket, plus one real socket), on
//! both backends: bad input, idempotency, object-level authorization, token storage.

mod common;

use std::sync::Arc;

use aixin::app::App;
use aixin::auth::{new_token, Role};
use aixin::clock::Clock;
use aixin::http::router;
use aixin::ledger::AccountKind;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use common::{assert_invariants, Harness};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

on_both_backends!(
    bad_input_gets_problem_and_changes_nothing,
    idempotency_over_http,
    authorization_matrix,
    tokens_are_stored_only_as_hashes,
    server_errors_reveal_nothing,
    auditor_verifies_the_journal_independently,
    staff_operations_refuse_other_roles_in_the_service,
    every_error_answer_is_problem_json,
    a_key_given_twice_in_json_is_refused,
    the_openapi_document_declares_every_idempotency_key,
);

struct Api {
    app: Router,
    h: Harness,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Api {
    fn new(h: Harness) -> Api {
        let state = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone());
        Api {
            app: router(state),
            h,
        }
    }

    async fn token(&self, role: Role, scope: Option<&str>) -> String {
        self.token_with(role, scope, None).await
    }

    async fn token_with(&self, role: Role, scope: Option<&str>, ttl: Option<i64>) -> String {
        let (secret, record) = new_token(
            self.h.entropy.as_ref(),
            self.h.clock.now_micros(),
            "test",
            role,
            scope.map(str::to_owned),
            String::new(),
            ttl,
        );
        self.h.store.insert_token(&record).await.unwrap();
        secret
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body)),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    async fn open(
        &self,
        admin: &str,
        kind: &str,
        owner: Option<&str>,
        community: Option<&str>,
    ) -> Uuid {
        let key = Uuid::new_v4().to_string();
        let reply = self
            .send(
                Method::POST,
                "/v1/accounts",
                Some(admin),
                Some(&key),
                Some(json!({"kind": kind, "owner_id": owner, "community_id": community, "label": "x"}).to_string()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body["id"].as_str().unwrap().parse().unwrap()
    }

    async fn head_seq(&self) -> i64 {
        self.h.store.head("test").await.unwrap().unwrap().seq
    }
}

fn earn_body(from: Uuid, to: Uuid, amount: &str) -> String {
    json!({"kind": "earn", "postings": [
        {"account": from, "unit": "points", "side": "debit", "amount": amount},
        {"account": to, "unit": "points", "side": "credit", "amount": amount}]})
    .to_string()
}

fn assert_problem(reply: &Reply, status: StatusCode, code: &str, case: &str) {
    assert_eq!(reply.status, status, "{case}: {}", reply.text);
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{case}"
    );
    assert_eq!(
        reply.body["type"],
        format!("urn:aixin:problem:{code}"),
        "{case}: {}",
        reply.text
    );
    assert_eq!(reply.body["code"], code, "{case}");
    assert_eq!(reply.body["status"], status.as_u16(), "{case}");
    for leak in ["sqlx", "SQL", "panicked", "database", "src/"] {
        assert!(
            !reply.text.contains(leak),
            "{case}: body leaks {leak:?}: {}",
            reply.text
        );
    }
}

async fn bad_input_gets_problem_and_changes_nothing(h: Harness) {
    // Proves malformed JSON, unknown fields, bad amounts, unknown ids, oversized bodies and
    // missing or wrong tokens each get problem+json with their stable code, and the ledger is
    // unchanged after every one of them.
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let issuance = api.open(&admin, "issuance", None, None).await;
    let alice = api.open(&admin, "resident", Some("R1"), None).await;
    let expiry = api.open(&admin, "expiry", None, None).await;
    let reply = api
        .send(
            Method::POST,
            "/v1/entries",
            Some(&admin),
            Some("seed"),
            Some(earn_body(issuance, alice, "10")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let before = api.h.store.balances("test").await.unwrap();
    let revoked = api.token(Role::Admin, None).await;
    let revoked_record = api
        .h
        .store
        .token_by_hash(&aixin::auth::hash_token(&revoked))
        .await
        .unwrap()
        .unwrap();
    api.h
        .store
        .revoke_token(revoked_record.id, api.h.clock.now_micros())
        .await
        .unwrap();
    let expiring = api.token_with(Role::Admin, None, Some(1_000_000)).await;
    api.h.clock.advance(2_000_000);

    let posting = |amount: Value| {
        json!({"kind": "earn", "postings": [
            {"account": issuance, "unit": "points", "side": "debit", "amount": amount},
            {"account": alice, "unit": "points", "side": "credit", "amount": amount}]})
        .to_string()
    };
    let many_postings = {
        let legs: Vec<Value> = (0..65)
            .map(|i| {
                json!({"account": if i % 2 == 0 { issuance } else { alice }, "unit": "points",
                            "side": if i % 2 == 0 { "debit" } else { "credit" }, "amount": "1"})
            })
            .collect();
        json!({"kind": "earn", "postings": legs}).to_string()
    };
    let ghost = Uuid::new_v4();
    struct Case {
        name: &'static str,
        token: Option<String>,
        key: Option<&'static str>,
        body: Option<String>,
        status: StatusCode,
        code: &'static str,
    }
    let admin_case = |name, body: String, status, code| Case {
        name,
        token: Some(admin.clone()),
        key: Some("k"),
        body: Some(body),
        status,
        code,
    };
    let cases = vec![
        admin_case("malformed json", "{\"kind\": ".to_owned(), StatusCode::BAD_REQUEST, "malformed_json"),
        admin_case("unknown field", json!({"kind": "earn", "postings": [], "sneaky": 1}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        admin_case("amount as number", posting(json!(10)), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        admin_case("negative amount", posting(json!("-10")), StatusCode::UNPROCESSABLE_ENTITY, "amount_negative"),
        admin_case("zero amount", posting(json!("0.00")), StatusCode::UNPROCESSABLE_ENTITY, "amount_zero"),
        admin_case("over-precise amount", posting(json!("1.001")), StatusCode::UNPROCESSABLE_ENTITY, "amount_too_precise"),
        admin_case("over-bound amount", posting(json!("100000000.01")), StatusCode::UNPROCESSABLE_ENTITY, "amount_too_large"),
        admin_case("non-numeric amount", posting(json!("ten")), StatusCode::UNPROCESSABLE_ENTITY, "amount_not_a_number"),
        admin_case("exponent amount", posting(json!("1e3")), StatusCode::UNPROCESSABLE_ENTITY, "amount_not_a_number"),
        admin_case("unknown kind", json!({"kind": "gift", "postings": []}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_entry_kind"),
        admin_case("unknown unit", json!({"kind": "earn", "postings": [{"account": alice, "unit": "yuan", "side": "credit", "amount": "1"}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_unit"),
        admin_case("unknown side", json!({"kind": "earn", "postings": [{"account": alice, "unit": "points", "side": "up", "amount": "1"}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_side"),
        admin_case("bad account id", json!({"kind": "earn", "postings": [{"account": "nope", "unit": "points", "side": "up", "amount": "1"}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        admin_case("unknown account", earn_body(issuance, ghost, "1"), StatusCode::UNPROCESSABLE_ENTITY, "unknown_account"),
        admin_case("overdraft", json!({"kind": "expire", "postings": [
            {"account": alice, "unit": "points", "side": "debit", "amount": "10.01"},
            {"account": expiry, "unit": "points", "side": "credit", "amount": "10.01"}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "insufficient_balance"),
        admin_case("kind mismatch", earn_body(alice, issuance, "1"), StatusCode::UNPROCESSABLE_ENTITY, "entry_kind_mismatch"),
        admin_case("NUL in memo", json!({"kind": "earn", "memo": "a\u{0}b", "postings": serde_json::from_str::<Value>(&earn_body(issuance, alice, "1")).unwrap()["postings"]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "text_invalid"),
        admin_case("control char in metadata", json!({"kind": "earn", "metadata": {"k": "\u{1b}[31m"}, "postings": serde_json::from_str::<Value>(&earn_body(issuance, alice, "1")).unwrap()["postings"]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "text_invalid"),
        admin_case("huge digits amount", posting(json!("1000000000000000000000000000")), StatusCode::UNPROCESSABLE_ENTITY, "amount_too_large"),
        admin_case("too many postings", many_postings, StatusCode::UNPROCESSABLE_ENTITY, "too_many_postings"),
        admin_case("memo too long", json!({"kind": "earn", "memo": "长".repeat(200), "postings": serde_json::from_str::<Value>(&earn_body(issuance, alice, "1")).unwrap()["postings"]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "memo_too_long"),
        admin_case("huge body", format!("{{\"kind\": \"earn\", \"memo\": \"{}\", \"postings\": []}}", "x".repeat(100_000)), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        Case { name: "no idempotency key", token: Some(admin.clone()), key: None, body: Some(earn_body(issuance, alice, "1")), status: StatusCode::BAD_REQUEST, code: "missing_idempotency_key" },
        Case { name: "bad idempotency key", token: Some(admin.clone()), key: Some("has space"), body: Some(earn_body(issuance, alice, "1")), status: StatusCode::BAD_REQUEST, code: "invalid_idempotency_key" },
        Case { name: "no token", token: None, key: Some("k"), body: Some(earn_body(issuance, alice, "1")), status: StatusCode::UNAUTHORIZED, code: "unauthorized" },
        Case { name: "wrong token", token: Some(format!("axn_{}", "0".repeat(64))), key: Some("k"), body: Some(earn_body(issuance, alice, "1")), status: StatusCode::UNAUTHORIZED, code: "unauthorized" },
        Case { name: "malformed token", token: Some("hunter2".to_owned()), key: Some("k"), body: Some(earn_body(issuance, alice, "1")), status: StatusCode::UNAUTHORIZED, code: "unauthorized" },
        Case { name: "revoked token", token: Some(revoked.clone()), key: Some("k"), body: Some(earn_body(issuance, alice, "1")), status: StatusCode::UNAUTHORIZED, code: "unauthorized" },
        Case { name: "expired token", token: Some(expiring.clone()), key: Some("k"), body: Some(earn_body(issuance, alice, "1")), status: StatusCode::UNAUTHORIZED, code: "unauthorized" },
    ];
    for case in cases {
        let reply = api
            .send(
                Method::POST,
                "/v1/entries",
                case.token.as_deref(),
                case.key,
                case.body,
            )
            .await;
        assert_problem(&reply, case.status, case.code, case.name);
        assert_eq!(api.head_seq().await, 1, "{}: the ledger changed", case.name);
    }
    // Without a JSON content type.
    let request = Request::post("/v1/entries")
        .header("authorization", format!("Bearer {admin}"))
        .header("idempotency-key", "k")
        .body(Body::from(earn_body(issuance, alice, "1")))
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Unknown and malformed ids in paths answer 404; unknown routes and methods too.
    for (method, path, status, code) in [
        (
            Method::GET,
            format!("/v1/accounts/{ghost}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/v1/accounts/not-a-uuid".to_owned(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            format!("/v1/entries/{ghost}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            format!("/v1/accounts/{alice}/entries?limit=0"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("/v1/accounts/{alice}/entries?limit=999"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("/v1/accounts/{alice}/entries?cursor=abc"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("/v1/accounts/{alice}/entries?bogus=1"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            "/v1/nothing-here".to_owned(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/v1/entries".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ] {
        let reply = api.send(method, &path, Some(&admin), None, None).await;
        assert_problem(&reply, status, code, &path);
    }
    assert_eq!(
        api.h.store.balances("test").await.unwrap().len(),
        before.len()
    );
    for (a, b) in api
        .h
        .store
        .balances("test")
        .await
        .unwrap()
        .iter()
        .zip(&before)
    {
        assert_eq!(
            (a.account, a.unit, a.balance_minor),
            (b.account, b.unit, b.balance_minor)
        );
    }
    assert_invariants(api.h.store.as_ref(), "test").await;
}

async fn idempotency_over_http(h: Harness) {
    // Proves over HTTP: same key + same body → the same response and one posting; same key +
    // different body → 422 idempotency_key_reused; opening an account twice → the same account.
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let issuance = api.open(&admin, "issuance", None, None).await;
    let alice = api.open(&admin, "resident", Some("R1"), None).await;
    let first = api
        .send(
            Method::POST,
            "/v1/entries",
            Some(&admin),
            Some("pay-1"),
            Some(earn_body(issuance, alice, "3")),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    api.h.clock.advance(10_000_000);
    let again = api
        .send(
            Method::POST,
            "/v1/entries",
            Some(&admin),
            Some("pay-1"),
            Some(earn_body(issuance, alice, "3")),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(
        again.body, first.body,
        "a retry must get the original response"
    );
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = api
        .send(
            Method::POST,
            "/v1/entries",
            Some(&admin),
            Some("pay-1"),
            Some(earn_body(issuance, alice, "4")),
        )
        .await;
    assert_problem(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "reused key",
    );
    assert_eq!(api.head_seq().await, 1);
    let account = api
        .send(
            Method::GET,
            &format!("/v1/accounts/{alice}"),
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_eq!(account.body["balances"]["points"], "3.00");

    let open = json!({"kind": "shop", "owner_id": "S9", "label": "惠民超市"}).to_string();
    let a = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&admin),
            Some("shop-9"),
            Some(open.clone()),
        )
        .await;
    let b = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&admin),
            Some("shop-9"),
            Some(open),
        )
        .await;
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a.body["id"], b.body["id"]);
    let changed = json!({"kind": "shop", "owner_id": "S10", "label": "惠民超市"}).to_string();
    let c = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&admin),
            Some("shop-9"),
            Some(changed),
        )
        .await;
    assert_problem(
        &c,
        StatusCode::CONFLICT,
        "account_exists",
        "changed account",
    );
}

async fn authorization_matrix(h: Harness) {
    // Proves object-level authorization: every route × every role × own/foreign object; only
    // allowed cells succeed, a foreign object answers 404 (not 403), and a role that may not use
    // a route at all gets 403. (tests/signin.rs checks the cashier against every service
    // operation.)
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let issuance = api.open(&admin, "issuance", None, Some("c1")).await;
    let foreign_issuance = api.open(&admin, "issuance", None, Some("c2")).await;
    let own_resident = api.open(&admin, "resident", Some("R1"), Some("c1")).await;
    let foreign_resident = api.open(&admin, "resident", Some("R2"), Some("c2")).await;
    let own_shop = api.open(&admin, "shop", Some("S1"), Some("c1")).await;
    let foreign_shop = api.open(&admin, "shop", Some("S2"), Some("c2")).await;
    let mut entry_of = std::collections::HashMap::new();
    for (i, (from, to)) in [
        (issuance, own_resident),
        (foreign_issuance, foreign_resident),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = api
            .send(
                Method::POST,
                "/v1/entries",
                Some(&admin),
                Some(&format!("e{i}")),
                Some(earn_body(from, to, "5")),
            )
            .await;
        entry_of.insert(to, reply.body["id"].as_str().unwrap().to_owned());
    }
    for (i, (from, to)) in [(own_resident, own_shop), (foreign_resident, foreign_shop)]
        .into_iter()
        .enumerate()
    {
        let body = json!({"kind": "redeem", "postings": [
            {"account": from, "unit": "points", "side": "debit", "amount": "1"},
            {"account": to, "unit": "points", "side": "credit", "amount": "1"}]})
        .to_string();
        let reply = api
            .send(
                Method::POST,
                "/v1/entries",
                Some(&admin),
                Some(&format!("r{i}")),
                Some(body),
            )
            .await;
        entry_of.insert(to, reply.body["id"].as_str().unwrap().to_owned());
    }
    // (role, scope, its own account, a foreign account)
    let principals = [
        (Role::Admin, None, own_resident, foreign_resident),
        (Role::Auditor, None, own_resident, foreign_resident),
        (Role::Staff, Some("c1"), own_resident, foreign_resident),
        (Role::Shop, Some("S1"), own_shop, foreign_shop),
        (Role::Resident, Some("R1"), own_resident, foreign_resident),
        // A cashier (scan only) sees no account, not even its shop's.
        (Role::Cashier, Some("S1"), own_shop, foreign_shop),
    ];
    let mut cells = 0;
    for (role, scope, own, foreign) in principals {
        let token = api.token(role, scope).await;
        let sees_all = matches!(role, Role::Admin | Role::Auditor);
        for (object, is_own) in [(own, true), (foreign, false)] {
            let allowed = (is_own && role != Role::Cashier) || sees_all;
            let expect = if allowed {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            for path in [
                format!("/v1/accounts/{object}"),
                format!("/v1/accounts/{object}/entries"),
                format!("/v1/entries/{}", entry_of[&object]),
            ] {
                let reply = api.send(Method::GET, &path, Some(&token), None, None).await;
                assert_eq!(
                    reply.status, expect,
                    "{role:?} {path} own={is_own}: {}",
                    reply.text
                );
                if !allowed {
                    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found", &path);
                }
                cells += 1;
            }
        }
        for path in ["/v1/verify", "/v1/ledger", "/v1/entries"] {
            let reply = api.send(Method::GET, path, Some(&token), None, None).await;
            let expect = if sees_all {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(reply.status, expect, "{role:?} {path}");
            cells += 1;
        }
        let before = api.head_seq().await;
        let post = api
            .send(
                Method::POST,
                "/v1/entries",
                Some(&token),
                Some(&format!("try-{}", role.as_str())),
                Some(earn_body(issuance, own_resident, "1")),
            )
            .await;
        let open = api
            .send(
                Method::POST,
                "/v1/accounts",
                Some(&token),
                Some(&format!("open-{}", role.as_str())),
                Some(json!({"kind": "resident"}).to_string()),
            )
            .await;
        if role == Role::Admin {
            assert_eq!(
                (post.status, open.status),
                (StatusCode::CREATED, StatusCode::CREATED)
            );
        } else {
            assert_problem(&post, StatusCode::FORBIDDEN, "forbidden", "post entry");
            assert_problem(&open, StatusCode::FORBIDDEN, "forbidden", "open account");
            assert_eq!(api.head_seq().await, before);
        }
        cells += 2;
    }
    assert_eq!(cells, 6 * (6 + 3 + 2));
    let verify = api
        .send(Method::GET, "/v1/verify", Some(&admin), None, None)
        .await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
}

async fn tokens_are_stored_only_as_hashes(h: Harness) {
    // Proves a database dump holds no raw token: only its SHA-256 is stored.
    let api = Api::new(h);
    let token = api.token(Role::Admin, None).await;
    assert!(token.starts_with("axn_") && token.len() == 68);
    let hash = hex::encode(aixin::auth::hash_token(&token));
    let dump: String = match &api.h.raw {
        common::Raw::Sqlite(pool) => {
            sqlx::query("PRAGMA wal_checkpoint(FULL)")
                .execute(pool)
                .await
                .unwrap();
            let common::Target::Sqlite(url) = &api.h.url_or_path else {
                unreachable!()
            };
            let path = url.trim_start_matches("sqlite:");
            let mut bytes = std::fs::read(path).unwrap();
            bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
            let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(hex::encode(stored), hash);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        common::Raw::Postgres(pool) => {
            let rows: Vec<String> = sqlx::query_scalar("SELECT t::text FROM api_tokens t")
                .fetch_all(pool)
                .await
                .unwrap();
            let joined = rows.join("\n");
            assert!(joined.contains(&hash), "the hash is what is stored");
            joined
        }
    };
    assert!(!dump.contains(&token), "the raw token is in the database");
    assert!(
        !dump.contains(&token[4..]),
        "the token's secret part is in the database"
    );
}

async fn server_errors_reveal_nothing(h: Harness) {
    // Proves a 5xx answer is problem+json with a generic body: the database's own error text
    // (here: a missing table) goes to the log, not to the client.
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let alice = api.open(&admin, "resident", Some("R1"), None).await;
    api.h
        .tamper(&["ALTER TABLE balances RENAME TO balances_gone"])
        .await;
    let reply = api
        .send(
            Method::GET,
            &format!("/v1/accounts/{alice}"),
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_problem(
        &reply,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "broken store",
    );
    assert!(!reply.text.contains("balances"), "{}", reply.text);
    assert_eq!(reply.body["detail"], "Internal error");
}

#[tokio::test]
async fn serves_on_a_real_socket() {
    // Proves the app answers over a real TCP socket (port 0), not only through the router.
    let h = Harness::sqlite().await;
    let state = App::new(
        h.stores.clone(),
        Arc::new(aixin::clock::SystemClock),
        Arc::new(aixin::clock::OsEntropy),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"status":"ok","clock":{"head_ahead_seconds":0,"ok":true}}"#),
        "{response}"
    );
    server.abort();
}

#[tokio::test]
async fn openapi_lists_every_route() {
    // Proves the OpenAPI document is generated from the code and covers each route.
    let api = Api::new(Harness::sqlite().await);
    let reply = api
        .send(Method::GET, "/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let paths = reply.body["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/v1/ledger",
        "/v1/verify",
        "/v1/accounts",
        "/v1/accounts/{id}",
        "/v1/accounts/{id}/entries",
        "/v1/entries",
        "/v1/entries/{id}",
        "/v1/shops",
        "/v1/shops/{id}/items/{sku}",
        "/v1/residents/{id}/code",
        "/v1/redemptions",
        "/v1/receipts/{id}",
        "/v1/receipts/{id}/refund",
        "/v1/receipts/verify",
        "/v1/shops/{id}/settlements",
        "/v1/audit/export",
        "/v1/audit/checkpoints",
        "/v1/reports/trial-balance",
        "/v1/reports/communities/{id}",
        "/v1/reports/shops/{id}",
    ] {
        assert!(paths.contains_key(path), "{path} missing from OpenAPI");
    }
    assert!(reply.body["components"]["securitySchemes"]["bearer"].is_object());
    // Anyone may check a receipt: that operation alone needs no token.
    let verify = &paths["/v1/receipts/verify"]["post"];
    assert!(verify.is_object());
    assert!(verify.get("security").is_none(), "{verify}");
    assert!(paths["/v1/receipts/{id}"]["get"]["security"].is_array());
    let _ = AccountKind::ALL;
}

async fn auditor_verifies_the_journal_independently(h: Harness) {
    // Proves an auditor can page through the whole journal over the API and check it with the
    // independent Python verifier written from ledger-specs/hash-chain.md alone — and that the
    // same verifier rejects the export once one amount is changed.
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let auditor = api.token(Role::Auditor, None).await;
    let issuance = api.open(&admin, "issuance", None, None).await;
    let alice = api.open(&admin, "resident", Some("R1"), None).await;
    let shop = api.open(&admin, "shop", Some("S1"), None).await;
    for i in 0..5 {
        api.h.clock.advance(1_500_000);
        let body = json!({"kind": "earn", "memo": format!("志愿服务 第{i}次"), "metadata": {"activity": "巡逻", "n": i.to_string()},
            "postings": [
                {"account": issuance, "unit": "points", "side": "debit", "amount": "12.34"},
                {"account": alice, "unit": "points", "side": "credit", "amount": "12.34"},
                {"account": issuance, "unit": "hours", "side": "debit", "amount": "1.5"},
                {"account": alice, "unit": "hours", "side": "credit", "amount": "1.5"}]});
        let reply = api
            .send(
                Method::POST,
                "/v1/entries",
                Some(&admin),
                Some(&format!("e{i}")),
                Some(body.to_string()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    let redeem = json!({"kind": "redeem", "postings": [
        {"account": alice, "unit": "points", "side": "debit", "amount": "30"},
        {"account": shop, "unit": "points", "side": "credit", "amount": "30"}]});
    let reply = api
        .send(
            Method::POST,
            "/v1/entries",
            Some(&admin),
            Some("r"),
            Some(redeem.to_string()),
        )
        .await;
    let redeem_id = reply.body["id"].as_str().unwrap().to_owned();
    let refund = json!({"kind": "refund", "reverses": redeem_id, "postings": [
        {"account": shop, "unit": "points", "side": "debit", "amount": "10"},
        {"account": alice, "unit": "points", "side": "credit", "amount": "10"}]});
    let reply = api
        .send(
            Method::POST,
            "/v1/entries",
            Some(&admin),
            Some("f"),
            Some(refund.to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    let mut entries: Vec<Value> = Vec::new();
    let mut after = 0;
    for _ in 0..10 {
        let page = api
            .send(
                Method::GET,
                &format!("/v1/entries?after_seq={after}&limit=3"),
                Some(&auditor),
                None,
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        entries.extend(page.body["entries"].as_array().unwrap().iter().cloned());
        match page.body["next_after_seq"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(entries.len(), 7);
    // A page that ends exactly at the head carries no cursor to an empty page.
    let exact = api
        .send(
            Method::GET,
            "/v1/entries?limit=7",
            Some(&auditor),
            None,
            None,
        )
        .await;
    assert_eq!(exact.body["entries"].as_array().unwrap().len(), 7);
    assert!(exact.body["next_after_seq"].is_null(), "{}", exact.text);
    let head = api
        .send(Method::GET, "/v1/ledger", Some(&auditor), None, None)
        .await
        .body;
    let Some(python) = which_python() else {
        eprintln!("\n*** SKIPPED: the Python half of auditor_verifies_the_journal_independently (no python3) ***\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("journal.json");
    std::fs::write(&good, json!({"entries": entries, "head": head}).to_string()).unwrap();
    let checker = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/ledger-specs/tools/check_chain.py"
    );
    let run = |file: &std::path::Path| {
        std::process::Command::new(&python)
            .arg(checker)
            .arg(file)
            .output()
            .unwrap()
    };
    let ok = run(&good);
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        ok.status.success() && out.starts_with("OK: ledger test: 7 entries"),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    entries[3]["postings"][1]["amount"] = json!("12.35");
    let bad = dir.path().join("tampered.json");
    std::fs::write(&bad, json!({"entries": entries, "head": head}).to_string()).unwrap();
    let caught = run(&bad);
    let out = String::from_utf8_lossy(&caught.stdout).into_owned();
    assert_eq!(caught.status.code(), Some(1), "{out}");
    assert!(out.starts_with("FAIL seq 4 "), "{out}");
}

fn which_python() -> Option<String> {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "python3".to_owned())
}

/// The first column (without backticks) of the markdown table whose header starts `header`, in
/// `text`, and each row's cells.
fn doc_table(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(header)).skip(2);
    let mut rows = Vec::new();
    for line in lines.by_ref() {
        if !line.starts_with('|') {
            break;
        }
        rows.push(
            line.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect(),
        );
    }
    assert!(!rows.is_empty(), "no table {header:?}");
    rows
}

#[tokio::test]
async fn the_journal_pages_as_the_spec_says() {
    // Proves ledger-specs/hash-chain.md §8.1 names what GET /v1/entries does: its query
    // parameters are the ones the OpenAPI document lists and the only ones the route accepts,
    // their bounds and defaults are the code's, a page has exactly the documented members, and
    // following next_after_seq from after_seq=0 reads the whole journal once, in order.
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/ledger-specs/hash-chain.md"
    ))
    .unwrap();
    let section = &spec[spec.find("### 8.1").expect("§8.1")..spec.find("## 9.").unwrap()];
    let params = doc_table(section, "| query parameter |");
    let members = doc_table(section, "| member |");
    let names = |rows: &[Vec<String>]| rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>();
    assert_eq!(names(&params), ["after_seq", "limit"]);
    let limit = &params[1];
    assert_eq!(
        limit[1],
        format!("integer, 1 to {}", aixin::store::PAGE_LIMIT_MAX)
    );
    assert_eq!(limit[2], aixin::http::PAGE_LIMIT_DEFAULT.to_string());
    assert_eq!(params[0][2], "0");

    let api = Api::new(Harness::sqlite().await);
    let openapi = api
        .send(Method::GET, "/v1/openapi.json", None, None, None)
        .await
        .body;
    let listed: Vec<String> = openapi["paths"]["/v1/entries"]["get"]["parameters"]
        .as_array()
        .expect("GET /v1/entries parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, names(&params), "the OpenAPI document's parameters");
    let mut schema: Vec<String> = openapi["components"]["schemas"]["JournalPage"]["properties"]
        .as_object()
        .expect("JournalPage schema")
        .keys()
        .cloned()
        .collect();
    schema.sort();
    assert_eq!(
        schema,
        names(&members),
        "the OpenAPI document's page members"
    );

    let admin = api.token(Role::Admin, None).await;
    let auditor = api.token(Role::Auditor, None).await;
    let issuance = api.open(&admin, "issuance", None, None).await;
    let resident = api.open(&admin, "resident", Some("R1"), None).await;
    for i in 0..5 {
        let reply = api
            .send(
                Method::POST,
                "/v1/entries",
                Some(&admin),
                Some(&format!("page-{i}")),
                Some(earn_body(issuance, resident, "1")),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    let get = |query: String| {
        let api = &api;
        let auditor = auditor.clone();
        async move {
            api.send(
                Method::GET,
                &format!("/v1/entries{query}"),
                Some(&auditor),
                None,
                None,
            )
            .await
        }
    };
    // Paging as documented: from the default start, following next_after_seq to null.
    let mut seqs = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = get(query).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let mut keys: Vec<&String> = page.body.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            names(&members).iter().collect::<Vec<_>>(),
            "{}",
            page.text
        );
        seqs.extend(
            page.body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match &page.body["next_after_seq"] {
            Value::Null => break,
            next => query = format!("?after_seq={next}&limit=2"),
        }
    }
    assert_eq!(seqs, (1..=5).collect::<Vec<i64>>());
    let past = get("?after_seq=99".into()).await;
    assert_eq!(past.body, json!({"entries": [], "next_after_seq": null}));
    let defaults = get(String::new()).await;
    assert_eq!(defaults.body["entries"].as_array().unwrap().len(), 5);
    // Every documented parameter is accepted at its bounds; anything else is invalid_query.
    let max = aixin::store::PAGE_LIMIT_MAX;
    assert_eq!(
        get(format!("?after_seq=0&limit={max}")).await.status,
        StatusCode::OK
    );
    for bad in [
        format!("?limit={}", max + 1),
        "?limit=0".to_owned(),
        "?after_seq=-1".to_owned(),
        "?cursor=3".to_owned(),
    ] {
        let reply = get(bad.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
        assert_eq!(reply.body["code"], "invalid_query", "{bad}: {}", reply.text);
    }
}

async fn staff_operations_refuse_other_roles_in_the_service(h: Harness) {
    // Proves the services themselves refuse roles other than staff and admin with `forbidden`
    // (no HTTP handler pre-checks roles): over HTTP, and called directly as another edge would.
    let api = Api::new(h);
    let resident = Uuid::from_u128(7);
    let calls: [(Method, String, &str); 5] = [
        (
            Method::POST,
            "/v1/residents".into(),
            r#"{"name":"王秀英","phone":"13800000000","community_id":"binhu"}"#,
        ),
        (
            Method::PUT,
            "/v1/rules/visit".into(),
            r#"{"community_id":"binhu","category":"visit","name_zh":"走访","name_en":"Visit","mode":"per_hour","points":"10","records_hours":true,"valid_from":"2026-01-01","expected_version":0}"#,
        ),
        (
            Method::POST,
            "/v1/shops".into(),
            r#"{"name_zh":"爱心店","community_id":"binhu"}"#,
        ),
        (
            Method::POST,
            format!("/v1/residents/{resident}/credential"),
            "",
        ),
        (
            Method::DELETE,
            format!("/v1/residents/{resident}/credential"),
            "",
        ),
    ];
    for (role, scope) in [
        (Role::Auditor, None),
        (Role::Shop, Some("00000000-0000-0000-0000-000000000001")),
        (Role::Resident, Some("00000000-0000-0000-0000-000000000007")),
        (Role::Cashier, Some("00000000-0000-0000-0000-000000000001")),
    ] {
        let token = api.token(role, scope).await;
        for (method, path, body) in &calls {
            let body = (!body.is_empty()).then(|| body.to_string());
            let r = api
                .send(method.clone(), path, Some(&token), Some("k-1"), body)
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{role:?} {method} {path}: {}",
                r.text
            );
            assert_eq!(r.body["code"], "forbidden");
        }
    }
    let app = App::new(
        api.h.stores.clone(),
        api.h.clock.clone(),
        api.h.entropy.clone(),
    );
    let auditor = aixin::auth::Principal {
        token_id: Uuid::from_u128(1),
        ledger_id: "test".into(),
        role: Role::Auditor,
        scope: None,
        operator: None,
    };
    let refused = app
        .redemption
        .revoke_credential(&auditor, resident)
        .await
        .unwrap_err();
    assert_eq!(refused.code, aixin::error::ErrorCode::Forbidden);
}

async fn every_error_answer_is_problem_json(h: Harness) {
    // Proves refusals written outside aixin's own extractors (a raw body over the limit, a path
    // that is not UTF-8) are problem+json with a stable code, like every other error answer.
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let huge = format!("resident,hours\n{}", "x,1\n".repeat(20_000));
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/rosters?community_id=c&rule_id=r&service_date=2026-01-01&title=t")
        .header("authorization", format!("Bearer {admin}"))
        .header("idempotency-key", "big-roster")
        .header("content-type", "text/csv")
        .body(Body::from(huge))
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], "body_too_large");
    for path in ["/v1/rules/%FF", "/v1/org-units/%FF%FE", "/v1/nowhere"] {
        let r = api.send(Method::GET, path, Some(&admin), None, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "{path}"
        );
        assert_eq!(r.body["code"], "not_found", "{path}");
    }
    let r = api
        .send(
            Method::PUT,
            "/v1/rules/%FF",
            Some(&admin),
            None,
            Some("{}".into()),
        )
        .await;
    assert_eq!(
        r.headers["content-type"], "application/problem+json",
        "{}",
        r.text
    );
}

async fn a_key_given_twice_in_json_is_refused(h: Harness) {
    // Proves a body that names a metadata key twice is refused (serde would keep the last value)
    // and posts nothing.
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let body = r#"{"kind":"earn","memo":"m","metadata":{"activity":"visit","activity":"cleanup"},
        "postings":[{"account":"00000000-0000-0000-0000-000000000001","unit":"points","side":"debit","amount":"1"},
                    {"account":"00000000-0000-0000-0000-000000000002","unit":"points","side":"credit","amount":"1"}]}"#;
    let r = api
        .send(
            Method::POST,
            "/v1/entries",
            Some(&admin),
            Some("dup-1"),
            Some(body.into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["code"], "invalid_body");
    assert!(r.text.contains("duplicate key"), "{}", r.text);
    assert!(api
        .h
        .store
        .head("test")
        .await
        .unwrap()
        .is_none_or(|h| h.seq == 0));
}

async fn the_openapi_document_declares_every_idempotency_key(h: Harness) {
    // Proves the OpenAPI document declares `Idempotency-Key` on exactly the operations that
    // refuse a request without one, and gives every operation its problem+json error answers.
    let api = Api::new(h);
    let admin = api.token(Role::Admin, None).await;
    let doc = serde_json::to_value(aixin::http::openapi_document()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["post", "put", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let declared = operation["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
            });
            let uri = path
                .replace("{rule_id}", "r")
                .replace("{sku}", "X")
                .replace("{id}", "00000000-0000-0000-0000-000000000009");
            let method_value = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = api
                .send(method_value, &uri, Some(&admin), None, Some("{}".into()))
                .await;
            let refused_for_key = r.body["code"] == "missing_idempotency_key";
            assert_eq!(
                declared, refused_for_key,
                "{method} {path}: declared {declared}, answered {}",
                r.text
            );
            if operation.get("security").is_some() {
                assert_eq!(
                    operation["responses"]["401"]["content"]["application/problem+json"]["schema"]
                        ["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path}"
                );
            } else {
                // A public operation (the receipt check) never answers 401.
                assert_eq!(
                    path, "/v1/receipts/verify",
                    "{method} {path} has no security"
                );
                assert!(
                    operation["responses"].get("401").is_none(),
                    "{method} {path}"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} write operations in the document"
    );
}
