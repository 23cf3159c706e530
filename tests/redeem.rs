//! Redemption over the API, on both backends: the code and receipt promises of TRUST.md, a full
//! shop day (catalogue, stock, redeem, refund, settle), and concurrency.

mod common;

use std::sync::Arc;

use aixin::app::App;
use aixin::auth::{new_token, Role};
use aixin::clock::Clock;
use aixin::http::router;
use aixin::keys::{KeyRing, SharedKeys};
use aixin::ledger::code;
use axum::body::Body;
use axum::http::{Method, Request};
use common::{assert_invariants, Harness, Raw, T0};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const LEDGER: &str = "redeem";

struct Reply {
    status: u16,
    body: Value,
}

#[derive(Clone)]
struct Api {
    app: axum::Router,
}

impl Api {
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
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}

impl Api {
    /// `POST /v1/receipts/verify` with the given Authorization header, or none.
    async fn public_verify(&self, authorization: Option<&str>, compact: &str) -> Reply {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/receipts/verify")
            .header("content-type", "application/json");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let request = request
            .body(Body::from(json!({"receipt": compact}).to_string()))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// (status, body text) of a GET.
    async fn text(&self, token: &str, path: &str) -> (u16, String) {
        let request = Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

/// A programme with one community, residents with points and credentials, and a shop with
/// an owner, a clerk and a catalogue.
struct World {
    h: Harness,
    api: Api,
    keys: KeyRing,
    admin: String,
    staff: String,
    owner: String,
    clerk: String,
    shop: String,
    residents: Vec<(String, String)>, // (resident id, card number)
    pins: Vec<String>,
    /// Each resident's code secret as provisioned to their phone (hex).
    secrets: Vec<String>,
    /// The community's issuance account.
    issuance: String,
}

async fn token(h: &Harness, role: Role, scope: Option<String>) -> String {
    let (secret, record) = new_token(
        h.entropy.as_ref(),
        h.clock.now_micros(),
        LEDGER,
        role,
        scope,
        String::new(),
        None,
    );
    h.store.insert_token(&record).await.unwrap();
    secret
}

async fn world(h: Harness, residents: usize, points: &str) -> World {
    world_in(h, residents, points, "c1", "爱心粮油店").await
}

/// The same world, with the community's id and the shop's name given.
async fn world_in(
    h: Harness,
    residents: usize,
    points: &str,
    community: &str,
    shop_name: &str,
) -> World {
    h.clock.set(T0);
    h.store.ensure_ledger(LEDGER, T0).await.unwrap();
    let keys = KeyRing::generate(h.entropy.as_ref(), T0);
    let state = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone())
        .with_keys(SharedKeys::fixed(keys.clone()));
    let api = Api { app: router(state) };
    let admin = token(&h, Role::Admin, None).await;
    let r = api
        .call(&admin, Method::POST, "/v1/org-units", None, Some(json!({"id": community, "level": "community", "name_zh": "幸福社区", "name_en": "Xingfu", "community": {"expiry_policy": "never"}})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let issuance = r.body["issuance_account"].as_str().unwrap().to_owned();
    let staff = token(&h, Role::Staff, Some(community.into())).await;
    let r = api
        .call(&staff, Method::POST, "/v1/shops", Some("shop-1"), Some(json!({"name_zh": shop_name, "name_en": "Love Grain & Oil", "community_id": community})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let shop = r.body["id"].as_str().unwrap().to_owned();
    let mut tokens = Vec::new();
    for (name, owner) in [("王店主", true), ("小李", false)] {
        let r = api
            .call(
                &staff,
                Method::POST,
                &format!("/v1/shops/{shop}/staff"),
                Some(if owner { "staff-owner" } else { "staff-clerk" }),
                Some(json!({"name": name, "owner": owner})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        tokens.push(r.body["token"].as_str().unwrap().to_owned());
    }
    let (owner, clerk) = (tokens[0].clone(), tokens[1].clone());
    for (sku, name, price, stock, cap) in [
        ("RICE5", "东北大米 5kg", "50", Some(100), Some(2)),
        ("OIL1", "花生油 1L", "30", None, None),
        ("FLOUR", "面粉 2.5kg", "20", Some(5), None),
    ] {
        let r = api
            .call(&owner, Method::PUT, &format!("/v1/shops/{shop}/items/{sku}"), None, Some(json!({"name_zh": name, "unit": "袋", "price": price, "track_stock": stock.is_some(), "cap_day": cap})))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        if let Some(n) = stock {
            let r = api
                .call(
                    &owner,
                    Method::POST,
                    &format!("/v1/shops/{shop}/items/{sku}/stock"),
                    Some(&format!("stock-{sku}")),
                    Some(json!({"delta": n, "reason": "restock", "note": "进货"})),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body["level"], n);
        }
    }
    let mut people = Vec::new();
    let mut pins = Vec::new();
    let mut secrets = Vec::new();
    for i in 0..residents {
        let r = api
            .call(&staff, Method::POST, "/v1/residents", Some(&format!("res-{i}")), Some(json!({"name": format!("居民{i}"), "phone": "13800000000", "community_id": community})))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        let account = r.body["account_id"].as_str().unwrap().to_owned();
        let r = api
            .call(
                &admin,
                Method::POST,
                "/v1/entries",
                Some(&format!("earn-{i}")),
                Some(json!({"kind": "earn", "postings": [
                {"account": &issuance, "unit": "points", "side": "debit", "amount": points},
                {"account": account, "unit": "points", "side": "credit", "amount": points}]})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let r = api
            .call(
                &staff,
                Method::POST,
                &format!("/v1/residents/{id}/credential"),
                Some(&format!("card-{id}")),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        people.push((id, r.body["number"].as_str().unwrap().to_owned()));
        pins.push(r.body["card_pin"].as_str().unwrap().to_owned());
        secrets.push(r.body["secret"].as_str().unwrap().to_owned());
    }
    World {
        h,
        api,
        keys,
        admin,
        staff,
        owner,
        clerk,
        shop,
        residents: people,
        pins,
        secrets,
        issuance,
    }
}

impl World {
    async fn code(&self, resident: usize) -> String {
        let r = self
            .api
            .call(
                &self.staff,
                Method::GET,
                &format!("/v1/residents/{}/code", self.residents[resident].0),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["code"].as_str().unwrap().to_owned()
    }

    async fn redeem(&self, token: &str, key: &str, shown: Value, items: Value) -> Reply {
        let mut body = shown;
        body["items"] = items;
        self.api
            .call(
                token,
                Method::POST,
                "/v1/redemptions",
                Some(key),
                Some(body),
            )
            .await
    }

    async fn balance(&self, resident: usize) -> String {
        let r = self
            .api
            .call(
                &self.staff,
                Method::GET,
                &format!("/v1/residents/{}", self.residents[resident].0),
                None,
                None,
            )
            .await;
        r.body["balance"]["points"].as_str().unwrap().to_owned()
    }
}

on_both_backends!(
    a_shop_day_redeems_refunds_and_settles,
    fifty_concurrent_redemptions_of_one_code_succeed_once,
    a_refused_redemption_still_spends_its_code,
    codes_are_accepted_within_sixty_seconds_and_refused_at_ninety,
    a_lockout_survives_a_restart_and_reissue_unlocks,
    concurrent_card_redemptions_never_overspend,
    stock_holds_under_concurrency,
    caps_hold_under_concurrency,
    a_shop_past_its_attempt_limit_is_refused_alike_for_every_number,
    adding_a_clerk_twice_with_one_key_makes_one_token,
    issuing_a_card_twice_with_one_key_keeps_the_card,
    codes_are_judged_by_the_clock_not_by_the_head,
    a_shop_that_does_not_serve_a_resident_cannot_lock_their_card,
    the_guessing_bound_is_the_number_the_spec_states,
    an_unknown_number_takes_as_long_as_a_known_one,
    a_payment_apps_code_is_named_and_counts_nothing,
    a_code_shown_after_a_sale_is_accepted,
    a_resident_sees_the_shops_that_serve_their_community,
    the_counter_settles_up_to_now_and_nothing_twice,
    a_shop_settled_by_whole_days_before_is_not_settled_twice,
    concurrent_approvals_share_a_cap_and_lose_no_hours,
);

async fn a_shop_day_redeems_refunds_and_settles(h: Harness) {
    let w = world(h, 1, "200").await;
    let code = w.code(0).await;
    let r = w
        .redeem(
            &w.clerk,
            "till-1",
            json!({"code": code}),
            json!([{"sku": "RICE5", "quantity": 2}, {"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["total"], "130.00");
    assert_eq!(r.body["balance_after"], "70.00");
    let receipt = r.body["id"].as_str().unwrap().to_owned();
    let compact = r.body["compact"].as_str().unwrap().to_owned();
    // The answer came from the receipt the batch just wrote, kept in memory: it is exactly the
    // row another process reads from the database.
    let receipt_id = uuid::Uuid::parse_str(&receipt).unwrap();
    let elsewhere = w.h.second_stores().await;
    let from_db = elsewhere
        .redeem
        .receipt(LEDGER, receipt_id)
        .await
        .unwrap()
        .expect("stored receipt");
    let from_memory =
        w.h.stores
            .redeem
            .receipt_by_entry(LEDGER, from_db.entry_id)
            .await
            .unwrap();
    assert_eq!(from_memory.as_ref(), Some(&from_db));
    assert_eq!(
        elsewhere
            .redeem
            .receipt_by_entry(LEDGER, from_db.entry_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&from_db)
    );
    // The same request again answers the same receipt, and posts nothing more.
    let again = w
        .redeem(
            &w.clerk,
            "till-1",
            json!({"code": code}),
            json!([{"sku": "RICE5", "quantity": 2}, {"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["id"], receipt.as_str());
    assert_eq!(w.balance(0).await, "70.00");
    // Online verification, and offline against the same keys.
    let v = w
        .api
        .call(
            &w.staff,
            Method::POST,
            "/v1/receipts/verify",
            None,
            Some(json!({"receipt": compact})),
        )
        .await;
    assert_eq!(v.body["valid"], true, "{}", v.body);
    assert_eq!(v.body["known"], true);
    assert!(aixin::redeem::receipt::verify_compact(&w.keys, &compact).is_ok());
    // The check is public: without a token, or with one that is no token, it answers the same;
    // one changed character is not valid.
    for authorization in [None, Some("Bearer axn_not-a-token")] {
        let v = w.api.public_verify(authorization, &compact).await;
        assert_eq!(v.status, 200, "{}", v.body);
        assert_eq!(v.body["valid"], true, "{}", v.body);
        assert_eq!(v.body["known"], true, "{}", v.body);
        assert_eq!(v.body["receipt"]["shop_name"], "爱心粮油店", "{}", v.body);
    }
    let mut altered: Vec<char> = compact.chars().collect();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let v = w.api.public_verify(None, &altered).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["valid"], false, "{}", v.body);
    assert_eq!(v.body["known"], false, "{}", v.body);
    assert!(v.body["receipt"].is_null(), "{}", v.body);
    // The cap of 2 rice a day is used up.
    let r = w
        .redeem(
            &w.clerk,
            "till-2",
            json!({"code": w_code_next(&w, 0).await}),
            json!([{"sku": "RICE5", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.body["code"], "item_daily_cap_exceeded", "{}", r.body);
    // The clerk who redeemed may not refund; the owner may, in part.
    let path = format!("/v1/receipts/{receipt}/refund");
    let r = w
        .api
        .call(
            &w.clerk,
            Method::POST,
            &path,
            Some("refund-1"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.body["code"], "refunder_is_redeemer", "{}", r.body);
    let r = w
        .api
        .call(
            &w.owner,
            Method::POST,
            &path,
            Some("refund-1"),
            Some(json!({"items": [{"sku": "RICE5", "quantity": 3}]})),
        )
        .await;
    assert_eq!(r.body["code"], "refund_exceeds_redemption", "{}", r.body);
    let r = w
        .api
        .call(
            &w.owner,
            Method::POST,
            &path,
            Some("refund-1"),
            Some(json!({"items": [{"sku": "RICE5", "quantity": 1}]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["kind"], "refund");
    assert_eq!(r.body["total"], "50.00");
    assert_eq!(r.body["balance_after"], "120.00");
    assert!(
        aixin::redeem::receipt::verify_compact(&w.keys, r.body["compact"].as_str().unwrap())
            .is_ok()
    );
    // The redemption now shows as refunded, online; a second refund is refused.
    let v = w
        .api
        .call(
            &w.staff,
            Method::POST,
            "/v1/receipts/verify",
            None,
            Some(json!({"receipt": compact})),
        )
        .await;
    assert_eq!(v.body["refunded_by"], r.body["id"]);
    let r2 = w
        .api
        .call(
            &w.owner,
            Method::POST,
            &path,
            Some("refund-2"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r2.body["code"], "already_reversed", "{}", r2.body);
    // Stock: 100 − 2 + 1.
    let items = w
        .api
        .call(
            &w.owner,
            Method::GET,
            &format!("/v1/shops/{}/items", w.shop),
            None,
            None,
        )
        .await;
    let rice = items
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sku"] == "RICE5")
        .unwrap();
    assert_eq!(rice["stock"], 99);
    // Settle yesterday once the day is over: net 130 − 50 = 80.
    w.h.clock.advance(86_400_000_000);
    let day = aixin::calendar::format_date(aixin::calendar::day_of(T0));
    let path = format!("/v1/shops/{}/settlements", w.shop);
    let r = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("settle-1"),
            Some(json!({"from": day, "to": day})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["net"], "80.00");
    assert_eq!(r.body["redemptions"], 1);
    assert_eq!(r.body["refunds"], 1);
    let r = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("settle-2"),
            Some(json!({"from": day, "to": day})),
        )
        .await;
    assert_eq!(r.body["code"], "nothing_to_settle", "{}", r.body);
    let shop = w
        .api
        .call(
            &w.owner,
            Method::GET,
            &format!("/v1/shops/{}", w.shop),
            None,
            None,
        )
        .await;
    let account = w
        .api
        .call(
            &w.admin,
            Method::GET,
            &format!("/v1/accounts/{}", shop.body["account_id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(
        account.body["balances"]["points"], "0.00",
        "{}",
        account.body
    );
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

/// A code of the next time step (so it is not dead after the last one was used).
async fn w_code_next(w: &World, resident: usize) -> String {
    w.h.clock.advance(30_000_000);
    w.code(resident).await
}

async fn fifty_concurrent_redemptions_of_one_code_succeed_once(h: Harness) {
    let w = world(h, 1, "1000").await;
    let code = w.code(0).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let w_api = w.api.clone();
        let clerk = w.clerk.clone();
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            w_api
                .call(
                    &clerk,
                    Method::POST,
                    "/v1/redemptions",
                    Some(&format!("k{i}")),
                    Some(json!({"code": code, "items": [{"sku": "OIL1", "quantity": 1}]})),
                )
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => ok += 1,
            // A replayed code is a failed attempt; past the shop's hourly limit the shop is
            // refused outright.
            _ => assert!(
                ["redemption_code_invalid", "shop_attempts_exhausted"]
                    .contains(&r.body["code"].as_str().unwrap_or_default()),
                "{}",
                r.body
            ),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(w.balance(0).await, "970.00");
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn a_refused_redemption_still_spends_its_code(h: Harness) {
    let w = world(h, 1, "40").await;
    let code = w.code(0).await;
    let r = w
        .redeem(
            &w.clerk,
            "a",
            json!({"code": code}),
            json!([{"sku": "RICE5", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.body["code"], "insufficient_balance", "{}", r.body);
    let r = w
        .redeem(
            &w.clerk,
            "b",
            json!({"code": code}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    // Every invalid case answers the same body.
    let mut wrong = code.clone().into_bytes();
    wrong[12] = b'0' + (wrong[12] - b'0' + 1) % 10;
    let typo = w
        .redeem(
            &w.clerk,
            "c",
            json!({"code": String::from_utf8(wrong).unwrap()}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(typo.body, r.body);
    let unknown = code::encode(1, 123_456);
    let nobody = w
        .redeem(
            &w.clerk,
            "d",
            json!({"code": unknown}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(nobody.body, r.body);
    assert_eq!(w.balance(0).await, "40.00");
}

async fn codes_are_accepted_within_sixty_seconds_and_refused_at_ninety(h: Harness) {
    let w = world(h, 1, "1000").await;
    let mut n = 0;
    for (offset, accepted) in [(60i64, true), (-60, true), (90, false), (-90, false)] {
        // Each probe starts on a fresh step well after the last, so older steps are not dead.
        w.h.clock.advance(600_000_000);
        let shown_at = w.h.clock.now_micros();
        let c = w.code(0).await;
        w.h.clock.set(shown_at + offset * 1_000_000);
        n += 1;
        let r = w
            .redeem(
                &w.clerk,
                &format!("skew-{n}"),
                json!({"code": c}),
                json!([{"sku": "OIL1", "quantity": 1}]),
            )
            .await;
        if accepted {
            assert_eq!(r.status, 201, "offset {offset}: {}", r.body);
        } else {
            assert_eq!(
                r.body["code"], "redemption_code_invalid",
                "offset {offset}: {}",
                r.body
            );
        }
        w.h.clock.set(shown_at);
    }
    // A newer step kills older codes.
    w.h.clock.advance(600_000_000);
    let old = w.code(0).await;
    w.h.clock.advance(30_000_000);
    let new = w.code(0).await;
    let r = w
        .redeem(
            &w.clerk,
            "new",
            json!({"code": new}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = w
        .redeem(
            &w.clerk,
            "old",
            json!({"code": old}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
}

async fn a_lockout_survives_a_restart_and_reissue_unlocks(h: Harness) {
    let w = world(h, 1, "1000").await;
    let number = w.residents[0].1.clone();
    let wrong_pin = if w.pins[0] == "000000" {
        "111111"
    } else {
        "000000"
    };
    for i in 0..aixin::ledger::presence::CREDENTIAL_FAILURES_MAX {
        let r = w
            .redeem(
                &w.clerk,
                &format!("guess-{i}"),
                json!({"card": {"number": number, "pin": wrong_pin}}),
                json!([{"sku": "OIL1", "quantity": 1}]),
            )
            .await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    }
    // A new process on the same database, same keys: the right PIN is still refused.
    let stores = w.h.second_stores().await;
    let state = App::new(stores, w.h.clock.clone(), w.h.entropy.clone())
        .with_keys(SharedKeys::fixed(w.keys.clone()));
    let restarted = World {
        api: Api { app: router(state) },
        ..w
    };
    let right = json!({"card": {"number": number, "pin": restarted.pins[0]}});
    let r = restarted
        .redeem(
            &restarted.clerk,
            "after-restart",
            right.clone(),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    // Re-issue: a new PIN works, the old one does not.
    let r = restarted
        .api
        .call(
            &restarted.staff,
            Method::POST,
            &format!("/v1/residents/{}/credential", restarted.residents[0].0),
            Some("reissue-after-lock"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new_pin = r.body["card_pin"].as_str().unwrap().to_owned();
    let r = restarted
        .redeem(
            &restarted.clerk,
            "reissued",
            json!({"card": {"number": number, "pin": new_pin}}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn concurrent_card_redemptions_never_overspend(h: Harness) {
    let w = world(h, 1, "100").await;
    let number = w.residents[0].1.clone();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let api = w.api.clone();
        let clerk = w.clerk.clone();
        let body = json!({"card": {"number": number, "pin": w.pins[0]}, "items": [{"sku": "OIL1", "quantity": 1}]});
        tasks.push(tokio::spawn(async move {
            api.call(
                &clerk,
                Method::POST,
                "/v1/redemptions",
                Some(&format!("c{i}")),
                Some(body),
            )
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 201 {
            ok += 1;
        } else {
            assert_eq!(r.body["code"], "insufficient_balance", "{}", r.body);
        }
    }
    assert_eq!(ok, 3, "100 points buy three 30-point bottles");
    assert_eq!(w.balance(0).await, "10.00");
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn stock_holds_under_concurrency(h: Harness) {
    let w = Arc::new(world(h, 12, "100").await);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"card": {"number": w.residents[i].1, "pin": w.pins[i]}, "items": [{"sku": "FLOUR", "quantity": 1}]});
            w.api.call(&w.clerk, Method::POST, "/v1/redemptions", Some(&format!("f{i}")), Some(body)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 201 {
            ok += 1;
        } else {
            assert_eq!(r.body["code"], "out_of_stock", "{}", r.body);
        }
    }
    assert_eq!(ok, 5, "five bags of flour in stock");
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn caps_hold_under_concurrency(h: Harness) {
    // RICE5 allows 2 a day per resident: 10 concurrent single bags, one resident, 2 succeed.
    let w = Arc::new(world(h, 1, "1000").await);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"card": {"number": w.residents[0].1, "pin": w.pins[0]}, "items": [{"sku": "RICE5", "quantity": 1}]});
            w.api.call(&w.clerk, Method::POST, "/v1/redemptions", Some(&format!("cap{i}")), Some(body)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 201 {
            ok += 1;
        } else {
            assert_eq!(r.body["code"], "item_daily_cap_exceeded", "{}", r.body);
        }
    }
    assert_eq!(ok, 2);
    assert_eq!(w.balance(0).await, "900.00");
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn a_shop_past_its_attempt_limit_is_refused_alike_for_every_number(h: Harness) {
    // Guessing numbers at one shop: past the hourly limit the shop is refused, and a known
    // number answers exactly as an unknown one, so the refusal does not reveal which exist.
    let w = world(h, 1, "1000").await;
    let limit = aixin::ledger::presence::SHOP_FAILURES_PER_HOUR_MAX;
    for i in 0..limit {
        let guess = code::encode(900_000_000 + i as u32, 123_456);
        let r = w
            .redeem(
                &w.clerk,
                &format!("guess-{i}"),
                json!({"code": guess}),
                json!([{"sku": "OIL1", "quantity": 1}]),
            )
            .await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    }
    let unknown = w
        .redeem(
            &w.clerk,
            "unknown",
            json!({"code": code::encode(1, 1)}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    let known = w
        .redeem(
            &w.clerk,
            "known",
            json!({"card": {"number": w.residents[0].1, "pin": w.pins[0]}}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(unknown.status, 429, "{}", unknown.body);
    assert_eq!(unknown.body["code"], "shop_attempts_exhausted");
    assert_eq!(known.body, unknown.body);
    // Nothing was debited.
    assert_eq!(w.balance(0).await, "1000.00");
}

async fn adding_a_clerk_twice_with_one_key_makes_one_token(h: Harness) {
    // Proves POST /v1/shops/{id}/staff is idempotent by key: a retry answers the same clerk and
    // the same working token (one live shop token, not two), another body with the key is
    // refused, and the call without a key is refused before anything is created.
    let w = world(h, 1, "10").await;
    let path = format!("/v1/shops/{}/staff", w.shop);
    let body = json!({"name": "小张", "owner": false});
    let live_before =
        w.h.store
            .count_live_tokens(LEDGER, "shop", w.h.clock.now_micros())
            .await
            .unwrap();
    let first = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("clerk-zhang"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("clerk-zhang"),
            Some(body),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["token"], first.body["token"]);
    assert_eq!(again.body["token_id"], first.body["token_id"]);
    let live_after =
        w.h.store
            .count_live_tokens(LEDGER, "shop", w.h.clock.now_micros())
            .await
            .unwrap();
    assert_eq!(live_after, live_before + 1);
    let token = first.body["token"].as_str().unwrap();
    let r = w
        .api
        .call(
            token,
            Method::GET,
            &format!("/v1/shops/{}", w.shop),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "the retried token works: {}", r.body);
    let other = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("clerk-zhang"),
            Some(json!({"name": "小王"})),
        )
        .await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(other.body["code"], "idempotency_key_reused");
    let keyless = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            None,
            Some(json!({"name": "小赵"})),
        )
        .await;
    assert_eq!(keyless.status, 400, "{}", keyless.body);
    assert_eq!(keyless.body["code"], "missing_idempotency_key");
}

async fn codes_are_judged_by_the_clock_not_by_the_head(h: Harness) {
    // Proves that with the ledger's head ahead of the server's clock (a history dated into the
    // future, or another server with a fast clock) a phone's current code is still accepted,
    // that entries keep being stamped no earlier than the head, and that a head too far ahead
    // is reported by /healthz.
    let w = world(h, 1, "1000").await;
    let health = w.api.call("", Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(
        health.body["clock"],
        json!({"head_ahead_seconds": 0, "ok": true}),
        "{}",
        health.body
    );
    // An entry posted an hour from now (a card, so no code step is spent), then the clock goes
    // back: the head is 50 minutes ahead of it.
    let ahead = T0 + 3_600_000_000;
    w.h.clock.set(ahead);
    let card = json!({"card": {"number": w.residents[0].1, "pin": w.pins[0]}});
    let oil = json!([{"sku": "OIL1", "quantity": 1}]);
    let r = w.redeem(&w.clerk, "ahead", card, oil.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    w.h.clock.set(T0 + 600_000_000);
    let now = w.h.clock.now_micros();
    let secret: [u8; 32] = hex::decode(&w.secrets[0]).unwrap().try_into().unwrap();
    let number: u32 = w.residents[0].1.parse().unwrap();
    let phone = code::encode(number, code::otp(&secret, number, code::step_of(now)));
    let r = w
        .redeem(&w.clerk, "by-clock", json!({"code": phone}), oil)
        .await;
    assert_eq!(r.status, 201, "the phone's current code: {}", r.body);
    // Chain time never runs backwards: the new entry is stamped at the head's time.
    let head = w.h.store.head(LEDGER).await.unwrap().unwrap();
    assert_eq!(head.posted_at_micros, ahead);
    assert_eq!(r.body["entry_seq"], head.seq);
    // The head is 3 000 s ahead, past the bound: reported, still 200.
    let health = w.api.call("", Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(
        health.body["clock"],
        json!({"head_ahead_seconds": 3000, "ok": false}),
        "{}",
        health.body
    );
    // The field is in the OpenAPI document.
    let api = w
        .api
        .call("", Method::GET, "/v1/openapi.json", None, None)
        .await;
    let clock = &api.body["components"]["schemas"]["ClockCheck"]["properties"];
    assert!(
        clock["head_ahead_seconds"].is_object() && clock["ok"].is_object(),
        "{}",
        api.body["components"]["schemas"]["Health"]
    );
    // Within the bound it is not a problem.
    let max = aixin::ledger::HEAD_AHEAD_MAX_MICROS;
    w.h.clock.set(ahead - max);
    let health = w.api.call("", Method::GET, "/healthz", None, None).await;
    assert_eq!(
        health.body["clock"],
        json!({"head_ahead_seconds": max / 1_000_000, "ok": true}),
        "{}",
        health.body
    );
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

/// A shop of a second community, `c2`, which does not serve the world's residents, selling the
/// same oil; its owner's token (the till's).
async fn foreign_shop(w: &World, key: &str) -> String {
    let r = w
        .api
        .call(&w.admin, Method::POST, "/v1/org-units", Some("c2"), Some(json!({"id": "c2", "level": "community", "name_zh": "和平社区", "name_en": "Heping", "community": {"expiry_policy": "never"}})))
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    let r = w
        .api
        .call(
            &w.admin,
            Method::POST,
            "/v1/shops",
            Some(key),
            Some(json!({"name_zh": "外区小店", "name_en": "Elsewhere", "community_id": "c2"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let shop = r.body["id"].as_str().unwrap().to_owned();
    let r = w
        .api
        .call(
            &w.admin,
            Method::POST,
            &format!("/v1/shops/{shop}/staff"),
            Some(&format!("{key}-owner")),
            Some(json!({"name": "外区店主", "owner": true})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let owner = r.body["token"].as_str().unwrap().to_owned();
    let r = w
        .api
        .call(
            &owner,
            Method::PUT,
            &format!("/v1/shops/{shop}/items/OIL1"),
            None,
            Some(json!({"name_zh": "花生油 1L", "unit": "瓶", "price": "30"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    owner
}

fn wrong_pin(w: &World, resident: usize) -> &'static str {
    if w.pins[resident] == "000000" {
        "111111"
    } else {
        "000000"
    }
}

async fn a_shop_that_does_not_serve_a_resident_cannot_lock_their_card(h: Harness) {
    // Proves that wrong PINs from a shop that does not serve the resident's community never lock
    // the credential (they exhaust only that side's own allowance), while wrong PINs from a
    // serving shop still lock it at the limit.
    let w = world(h, 1, "1000").await;
    let foreign = foreign_shop(&w, "elsewhere").await;
    let number = w.residents[0].1.clone();
    let wrong = json!({"card": {"number": number, "pin": wrong_pin(&w, 0)}});
    let right = json!({"card": {"number": number, "pin": w.pins[0]}});
    let oil = json!([{"sku": "OIL1", "quantity": 1}]);
    for i in 0..20 {
        let r = w
            .redeem(&foreign, &format!("guess-{i}"), wrong.clone(), oil.clone())
            .await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    }
    let r = w
        .redeem(&w.clerk, "resident", right.clone(), oil.clone())
        .await;
    assert_eq!(
        r.status, 201,
        "the card still works where it is served: {}",
        r.body
    );
    // Still so in a new process (the counts are in the database).
    let stores = w.h.second_stores().await;
    let state = App::new(stores, w.h.clock.clone(), w.h.entropy.clone())
        .with_keys(SharedKeys::fixed(w.keys.clone()));
    let w = World {
        api: Api { app: router(state) },
        ..w
    };
    for i in 20..25 {
        let r = w
            .redeem(&foreign, &format!("guess-{i}"), wrong.clone(), oil.clone())
            .await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    }
    let r = w
        .redeem(&w.clerk, "resident-2", right.clone(), oil.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // A serving shop's wrong PINs lock the card at the limit.
    for i in 0..aixin::ledger::presence::CREDENTIAL_FAILURES_MAX {
        let r = w
            .redeem(&w.clerk, &format!("local-{i}"), wrong.clone(), oil.clone())
            .await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    }
    let r = w.redeem(&w.clerk, "locked", right, oil).await;
    assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    assert_eq!(w.balance(0).await, "940.00");
}

async fn the_guessing_bound_is_the_number_the_spec_states(h: Harness) {
    // Proves the bound `ledger-specs/redemption-code.md` states: whatever number of shops an
    // attacker controls, a credential takes at most GUESSES_PER_CREDENTIAL_MAX wrong proofs
    // (NON_SERVING_FAILURES_MAX from shops that do not serve it, all together, and
    // CREDENTIAL_FAILURES_MAX in a row from shops that do) before every shop refuses it.
    use aixin::ledger::presence::{
        CREDENTIAL_FAILURES_MAX, GUESSES_PER_CREDENTIAL_MAX, NON_SERVING_FAILURES_MAX,
    };
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/redemption-code.md"),
    )
    .unwrap();
    let stated = format!("at most {GUESSES_PER_CREDENTIAL_MAX} wrong guesses per credential");
    assert!(spec.contains(&stated), "the spec states {stated:?}");
    assert_eq!(
        GUESSES_PER_CREDENTIAL_MAX,
        CREDENTIAL_FAILURES_MAX + NON_SERVING_FAILURES_MAX
    );

    let w = world(h, 1, "1000").await;
    let foreign = [
        foreign_shop(&w, "elsewhere-1").await,
        foreign_shop(&w, "elsewhere-2").await,
    ];
    let number = w.residents[0].1.clone();
    let wrong = json!({"card": {"number": number, "pin": wrong_pin(&w, 0)}});
    let right = json!({"card": {"number": number, "pin": w.pins[0]}});
    let oil = json!([{"sku": "OIL1", "quantity": 1}]);
    let mut n = 0;
    let mut key = || {
        n += 1;
        format!("k{n}")
    };
    // Wrong PINs from two shops that do not serve the resident, taking turns. While the right
    // PIN is still checked there it answers `shop_not_serving`; once their shared allowance is
    // used up it answers like a wrong one.
    let mut counted = 0;
    loop {
        let probe = w
            .redeem(&foreign[0], &key(), right.clone(), oil.clone())
            .await;
        if probe.body["code"] == "redemption_code_invalid" {
            break;
        }
        assert_eq!(probe.body["code"], "shop_not_serving", "{}", probe.body);
        assert!(counted < 100, "no bound");
        let r = w
            .redeem(&foreign[counted % 2], &key(), wrong.clone(), oil.clone())
            .await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
        counted += 1;
    }
    assert_eq!(counted as i64, NON_SERVING_FAILURES_MAX);
    let probe = w
        .redeem(&foreign[1], &key(), right.clone(), oil.clone())
        .await;
    assert_eq!(
        probe.body["code"], "redemption_code_invalid",
        "{}",
        probe.body
    );
    // The serving shop: CREDENTIAL_FAILURES_MAX − 1 wrong PINs in a row leave the card usable
    // (and a success starts the count again); CREDENTIAL_FAILURES_MAX lock it.
    for _ in 1..CREDENTIAL_FAILURES_MAX {
        let r = w.redeem(&w.clerk, &key(), wrong.clone(), oil.clone()).await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    }
    let r = w.redeem(&w.clerk, &key(), right.clone(), oil.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    for _ in 0..CREDENTIAL_FAILURES_MAX {
        let r = w.redeem(&w.clerk, &key(), wrong.clone(), oil.clone()).await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
        counted += 1;
    }
    assert_eq!(counted as i64, GUESSES_PER_CREDENTIAL_MAX);
    for token in [&w.clerk, &foreign[0], &foreign[1]] {
        let r = w.redeem(token, &key(), right.clone(), oil.clone()).await;
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    }
    // Re-issuing (a new PIN) restores both allowances.
    let r = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &format!("/v1/residents/{}/credential", w.residents[0].0),
            Some("reissue-after-guessing"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new_pin = r.body["card_pin"].as_str().unwrap().to_owned();
    let renewed = json!({"card": {"number": number, "pin": new_pin}});
    let r = w
        .redeem(&foreign[0], &key(), renewed.clone(), oil.clone())
        .await;
    assert_eq!(r.body["code"], "shop_not_serving", "{}", r.body);
    let r = w.redeem(&w.clerk, &key(), renewed, oil).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn an_unknown_number_takes_as_long_as_a_known_one(h: Harness) {
    // Proves that the till's time does not tell whether a card number exists: a known number
    // with a wrong PIN and an unknown number take the same path (a presentation that fails,
    // through the writer), answer the same body, and their timings overlap. Samples alternate,
    // so load on the machine hits both alike; the comparison is of medians, with a tolerance.
    let w = world(h, 1, "1000").await;
    let known = json!({"card": {"number": w.residents[0].1, "pin": wrong_pin(&w, 0)}});
    let unknown = json!({"card": {"number": "999999999", "pin": "123456"}});
    let oil = json!([{"sku": "OIL1", "quantity": 1}]);
    let mut times: [Vec<std::time::Duration>; 2] = [Vec::new(), Vec::new()];
    let mut bodies: [Option<Value>; 2] = [None, None];
    for i in 0..240 {
        // Stay under the shop's hourly attempt limit: a new hour every 80 attempts.
        if i % 80 == 0 {
            w.h.clock.advance(3_600_000_000);
        }
        let which = i % 2;
        let shown = if which == 0 { &known } else { &unknown };
        let started = std::time::Instant::now();
        let r = w
            .redeem(&w.clerk, &format!("t{i}"), shown.clone(), oil.clone())
            .await;
        let took = started.elapsed();
        assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
        // The first 40 warm caches and connections up.
        if i >= 40 {
            times[which].push(took);
        }
        match &bodies[which] {
            None => bodies[which] = Some(r.body),
            Some(first) => assert_eq!(first, &r.body),
        }
    }
    assert_eq!(bodies[0], bodies[1], "one answer for both");
    for t in &mut times {
        t.sort_unstable();
    }
    let median = |t: &Vec<std::time::Duration>| t[t.len() / 2].as_secs_f64();
    let (known_median, unknown_median) = (median(&times[0]), median(&times[1]));
    let ratio = known_median.max(unknown_median) / known_median.min(unknown_median);
    eprintln!(
        "medians: known {:.3} ms, unknown {:.3} ms",
        known_median * 1e3,
        unknown_median * 1e3
    );
    assert!(
        ratio < 1.5,
        "medians: known {:.3} ms, unknown {:.3} ms",
        known_median * 1e3,
        unknown_median * 1e3
    );
    let slower = times[0]
        .iter()
        .filter(|t| t.as_secs_f64() > unknown_median)
        .count();
    assert!(
        slower < times[0].len(),
        "every known sample is slower than the unknown median"
    );
}

on_both_backends!(
    spreadsheet_formulas_are_neutralised_in_every_csv,
    invisible_and_bidirectional_text_is_refused_and_changes_nothing,
);

/// A shop name that a spreadsheet would turn into a link.
const HYPERLINK: &str = "=HYPERLINK(\"http://x\",\"y\")";

/// Asserts that no cell of `text` would start a formula in a spreadsheet: every cell starting
/// with `=`, `+`, `-`, `@`, tab or CR is a negative number.
fn assert_spreadsheet_safe(text: &str) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
            let number = cell.strip_prefix('-').is_some_and(|n| {
                let (whole, frac) = n.split_once('.').unwrap_or((n, "0"));
                [whole, frac]
                    .iter()
                    .all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            });
            assert!(!risky || number, "{cell:?} would be a formula in\n{text}");
        }
    }
}

async fn spreadsheet_formulas_are_neutralised_in_every_csv(h: Harness) {
    // Proves a shop named like a formula, a community whose id reads as one, and memos,
    // metadata and idempotency keys starting with `=`, `+`, `-`, `@` or a tab reach every CSV
    // (the trial balance, both shop statements, the bundle's entries.csv and postings.csv)
    // behind a single quote, quoted, while negative amounts stay numbers; and the bundle still
    // verifies with aixin and with the independent Python verifier.
    let w = world_in(h, 1, "200", "-2-3", HYPERLINK).await;
    let resident = w
        .api
        .call(
            &w.staff,
            Method::GET,
            &format!("/v1/residents/{}", w.residents[0].0),
            None,
            None,
        )
        .await;
    let account = resident.body["account_id"].as_str().unwrap().to_owned();
    let memos = ["=1+2", "+1", "@SUM(A1)", "-1+1", "\t=1+2"];
    for (i, memo) in memos.iter().enumerate() {
        let key = if i == 0 {
            "=1+2".to_owned()
        } else {
            format!("memo-{i}")
        };
        let r = w
            .api
            .call(
                &w.admin,
                Method::POST,
                "/v1/entries",
                Some(&key),
                Some(
                    json!({"kind": "earn", "memo": memo, "metadata": {"note": memo}, "postings": [
                    {"account": &w.issuance, "unit": "points", "side": "debit", "amount": "1.00"},
                    {"account": &account, "unit": "points", "side": "credit", "amount": "1.00"}]}),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{memo:?}: {}", r.body);
    }
    let code = w.code(0).await;
    let r = w
        .redeem(
            &w.clerk,
            "till-1",
            json!({"code": code}),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let receipt = r.body["id"].as_str().unwrap().to_owned();
    let r = w
        .api
        .call(
            &w.owner,
            Method::POST,
            &format!("/v1/receipts/{receipt}/refund"),
            Some("refund-1"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let quoted_link = "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"";
    let (status, tb) = w
        .api
        .text(&w.admin, "/v1/reports/trial-balance?format=csv")
        .await;
    assert_eq!(status, 200, "{tb}");
    assert!(tb.contains(quoted_link), "{tb}");
    assert!(tb.contains(",\"'-2-3\","), "{tb}");
    assert_spreadsheet_safe(&tb);

    let day = aixin::calendar::format_date(aixin::calendar::day_of(T0));
    let (status, statement) = w
        .api
        .text(
            &w.owner,
            &format!(
                "/v1/shops/{}/statement?from={day}&to={day}&format=csv",
                w.shop
            ),
        )
        .await;
    assert_eq!(status, 200, "{statement}");
    assert!(statement.contains(",\"'-2-3\","), "{statement}");
    assert_spreadsheet_safe(&statement);

    let (status, report) = w
        .api
        .text(
            &w.admin,
            &format!("/v1/reports/shops/{}?format=csv", w.shop),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert!(
        report.contains(",-30.00,"),
        "a negative amount stays a number: {report}"
    );
    assert_spreadsheet_safe(&report);

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    aixin::audit::export::export_bundle(
        &w.h.stores,
        LEDGER,
        None,
        None,
        &w.keys,
        w.h.clock.now_micros(),
        &bundle,
    )
    .await
    .expect("export");
    let entries = std::fs::read_to_string(bundle.join("entries.csv")).unwrap();
    for written in [
        ",\"'=1+2\",",
        ",\"'+1\",",
        ",\"'@SUM(A1)\",",
        ",\"'-1+1\",",
        ",\"'\t=1+2\",",
        // The metadata object starts with `{`; the key `=1+2` is an idempotency key.
        "{\"\"note\"\":\"\"=1+2\"\"}",
    ] {
        assert!(entries.contains(written), "{written:?} in\n{entries}");
    }
    assert_spreadsheet_safe(&entries);
    assert_spreadsheet_safe(&std::fs::read_to_string(bundle.join("postings.csv")).unwrap());
    aixin::audit::verify::verify_bundle(
        &aixin::audit::verify::DirSource(bundle.clone()),
        Some(&w.keys),
        None,
    )
    .expect("the bundle verifies");
    let key_file = dir.path().join("keys.json");
    w.keys.save(&key_file).unwrap();
    let tool =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/tools/check_bundle.py");
    let out = std::process::Command::new("python3")
        .arg(tool)
        .arg(&bundle)
        .arg("--keys")
        .arg(&key_file)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("OK: "),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Characters that show nothing or reorder what is shown, as the review named them and more.
const INVISIBLE: [char; 17] = [
    '\u{202E}', '\u{FEFF}', '\u{2028}', '\u{2029}', '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}',
    '\u{202D}', '\u{2066}', '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{2064}',
    '\u{00AD}',
];

async fn invisible_and_bidirectional_text_is_refused_and_changes_nothing(h: Harness) {
    // Proves a bidirectional control or an invisible format character in a resident's name, a
    // shop's name, a shop clerk's name, an item's name or unit, an entry's memo or metadata
    // value, or an account's label is refused with 422 `text_invisible` (naming the field where
    // a service checks one), and that nothing was stored: the ledger head, the catalogue and
    // the idempotency keys are as before (a retry with the key and clean text creates).
    let w = world(h, 1, "200").await;
    let head = |w: &World| {
        let api = w.api.clone();
        let admin = w.admin.clone();
        async move {
            let r = api
                .call(&admin, Method::GET, "/v1/ledger", None, None)
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            (r.body["head_seq"].clone(), r.body["head_hash"].clone())
        }
    };
    let catalogue = |w: &World| {
        let api = w.api.clone();
        let (owner, shop) = (w.owner.clone(), w.shop.clone());
        async move {
            let r = api
                .call(
                    &owner,
                    Method::GET,
                    &format!("/v1/shops/{shop}/items"),
                    None,
                    None,
                )
                .await;
            r.body
        }
    };
    let resident = w
        .api
        .call(
            &w.staff,
            Method::GET,
            &format!("/v1/residents/{}", w.residents[0].0),
            None,
            None,
        )
        .await;
    let account = resident.body["account_id"].as_str().unwrap().to_owned();
    let (head_before, items_before) = (head(&w).await, catalogue(&w).await);
    for c in INVISIBLE {
        let text = format!("王{c}秀英");
        let n = c as u32;
        let earn = |memo: &str, note: &str| {
            json!({"kind": "earn", "memo": memo, "metadata": {"note": note}, "postings": [
                {"account": &w.issuance, "unit": "points", "side": "debit", "amount": "1.00"},
                {"account": &account, "unit": "points", "side": "credit", "amount": "1.00"}]})
        };
        let shop_path = format!("/v1/shops/{}", w.shop);
        // (what, token, method, path, idempotency key, body, the field named)
        type Case<'a> = (
            &'a str,
            &'a String,
            Method,
            String,
            Option<String>,
            Value,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "resident name",
                &w.staff,
                Method::POST,
                "/v1/residents".into(),
                Some(format!("res-{n:x}")),
                json!({"name": text, "phone": "13800000000", "community_id": "c1"}),
                Some("name"),
            ),
            (
                "shop name",
                &w.staff,
                Method::POST,
                "/v1/shops".into(),
                Some(format!("shop-{n:x}")),
                json!({"name_zh": text, "community_id": "c1"}),
                Some("name_zh"),
            ),
            (
                "shop english name",
                &w.staff,
                Method::POST,
                "/v1/shops".into(),
                Some(format!("shop-en-{n:x}")),
                json!({"name_zh": "小店", "name_en": text, "community_id": "c1"}),
                Some("name_en"),
            ),
            (
                "clerk name",
                &w.staff,
                Method::POST,
                format!("{shop_path}/staff"),
                Some(format!("clerk-{n:x}")),
                json!({"name": text, "owner": false}),
                Some("name"),
            ),
            (
                "item name",
                &w.owner,
                Method::PUT,
                format!("{shop_path}/items/BAD"),
                None,
                json!({"name_zh": text, "unit": "袋", "price": "5"}),
                Some("name_zh"),
            ),
            (
                "item unit",
                &w.owner,
                Method::PUT,
                format!("{shop_path}/items/BAD"),
                None,
                json!({"name_zh": "大米", "unit": text, "price": "5"}),
                Some("unit"),
            ),
            (
                "memo",
                &w.admin,
                Method::POST,
                "/v1/entries".into(),
                Some(format!("memo-{n:x}")),
                earn(&text, "ok"),
                None,
            ),
            (
                "metadata value",
                &w.admin,
                Method::POST,
                "/v1/entries".into(),
                Some(format!("meta-{n:x}")),
                earn("ok", &text),
                None,
            ),
            (
                "account label",
                &w.admin,
                Method::POST,
                "/v1/accounts".into(),
                Some(format!("acct-{n:x}")),
                json!({"kind": "adjustment", "label": text}),
                None,
            ),
        ];
        for (what, token, method, path, key, body, field) in cases {
            let r = w
                .api
                .call(token, method, &path, key.as_deref(), Some(body))
                .await;
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (422, Some("text_invisible")),
                "U+{n:04X} in the {what}: {}",
                r.body
            );
            if let Some(field) = field {
                assert_eq!(r.body["field"], field, "U+{n:04X} in the {what}");
            }
        }
    }
    assert_eq!(head(&w).await, head_before, "no entry was posted");
    assert_eq!(catalogue(&w).await, items_before, "no item was stored");
    // The refused requests' keys are free: clean text under them creates.
    let c = INVISIBLE[0] as u32;
    let r = w
        .api
        .call(
            &w.staff,
            Method::POST,
            "/v1/residents",
            Some(&format!("res-{c:x}")),
            Some(json!({"name": "王秀英", "phone": "13800000000", "community_id": "c1"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = w
        .api
        .call(
            &w.staff,
            Method::POST,
            "/v1/shops",
            Some(&format!("shop-{c:x}")),
            Some(json!({"name_zh": "小店", "community_id": "c1"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn issuing_a_card_twice_with_one_key_keeps_the_card(h: Harness) {
    // Proves POST /v1/residents/{id}/credential is idempotent by key: a retry answers the same
    // number, generation, secret and PIN and the printed card keeps working; only a new key
    // re-issues (next generation, new PIN); a call without a key changes nothing.
    let w = world(h, 1, "100").await;
    let path = format!("/v1/residents/{}/credential", w.residents[0].0);
    let first = w
        .api
        .call(&w.staff, Method::POST, &path, Some("card-again"), None)
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = w
        .api
        .call(&w.staff, Method::POST, &path, Some("card-again"), None)
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    for field in [
        "credential_id",
        "number",
        "generation",
        "secret",
        "card_pin",
    ] {
        assert_eq!(again.body[field], first.body[field], "{field}");
    }
    let pin = first.body["card_pin"].as_str().unwrap();
    let card = first.body["number"].as_str().unwrap();
    let r = w
        .api
        .call(&w.clerk, Method::POST, "/v1/redemptions", Some("after-retry"), Some(json!({"card": {"number": card, "pin": pin}, "items": [{"sku": "OIL1", "quantity": 1}]})))
        .await;
    assert_eq!(
        r.status, 201,
        "the card still works after the retry: {}",
        r.body
    );
    let keyless = w.api.call(&w.staff, Method::POST, &path, None, None).await;
    assert_eq!(
        keyless.body["code"], "missing_idempotency_key",
        "{}",
        keyless.body
    );
    let reissued = w
        .api
        .call(&w.staff, Method::POST, &path, Some("card-new"), None)
        .await;
    assert_eq!(reissued.status, 200, "{}", reissued.body);
    assert_eq!(
        reissued.body["generation"].as_i64(),
        first.body["generation"].as_i64().map(|g| g + 1)
    );
    assert_eq!(reissued.body["number"], first.body["number"]);
}

/// Every failed-attempt count of the world's ledger: the credentials' failures at serving and
/// at non-serving shops, and the shops' hourly failures, each summed.
async fn failure_counts(w: &World) -> (i64, i64, i64) {
    let sql = "SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT),
                      CAST(COALESCE(SUM(foreign_failures), 0) AS BIGINT),
                      CAST((SELECT COALESCE(SUM(failures), 0) FROM code_failures) AS BIGINT)
               FROM credentials";
    match &w.h.raw {
        Raw::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
        Raw::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn a_payment_apps_code_is_named_and_counts_nothing(h: Harness) {
    // Proves TRUST.md's "the till names a foreign code and counts no failed attempt": an Alipay
    // code (Alipay's own example, and a retired layout-1 code of the resident's own number,
    // check digit and all, which is an Alipay code), a WeChat Pay code and a UnionPay code, as a
    // code or typed into the card's number, are each refused at once as `foreign_payment_code`
    // naming the app; nothing is posted, no count moves, and after more of them than the lock
    // limit the resident's own code still works.
    let w = world(h, 1, "100").await;
    let number = &w.residents[0].1;
    let layout1 = {
        let body = format!("28{number}123456");
        let check = code::damm(body.as_bytes());
        format!("{body}{check}")
    };
    let oil = json!([{"sku": "OIL1", "quantity": 1}]);
    let counts = failure_counts(&w).await;
    assert_eq!(counts, (0, 0, 0));
    let head = w.h.store.head(LEDGER).await.unwrap().unwrap();
    let cases = [
        (json!({"code": "289431869362714645"}), "alipay"),
        (json!({"code": layout1}), "alipay"),
        (json!({"code": "1345 6789 0123 4567 89"}), "wechat"),
        (json!({"code": "6212345678901234567"}), "unionpay"),
        (
            json!({"card": {"number": "134567890123456789", "pin": "123456"}}),
            "wechat",
        ),
    ];
    let mut n = 0;
    for round in 0..3 {
        for (shown, app) in &cases {
            n += 1;
            let r = w
                .redeem(
                    &w.clerk,
                    &format!("foreign-{n}"),
                    shown.clone(),
                    oil.clone(),
                )
                .await;
            assert_eq!(r.status, 422, "round {round}, {shown}: {}", r.body);
            assert_eq!(
                r.body["code"], "foreign_payment_code",
                "{shown}: {}",
                r.body
            );
            assert_eq!(r.body["type"], "urn:aixin:problem:foreign_payment_code");
            assert_eq!(r.body["app"], *app, "{shown}: {}", r.body);
        }
    }
    assert!(n > aixin::ledger::presence::CREDENTIAL_FAILURES_MAX as usize);
    assert_eq!(
        failure_counts(&w).await,
        counts,
        "no failed attempt counted"
    );
    assert_eq!(
        w.h.store.head(LEDGER).await.unwrap().unwrap(),
        head,
        "nothing posted"
    );
    assert_eq!(w.balance(0).await, "100.00");
    // The resident's own code: accepted.
    let own = w.code(0).await;
    let r = w
        .redeem(&w.clerk, "own", json!({"code": own}), oil.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(w.balance(0).await, "70.00");
    // And a wrong aixin code does count (the counts above could move).
    let mut wrong = own.into_bytes();
    wrong.swap(20, 21);
    if wrong[20] == wrong[21] {
        wrong.swap(11, 12);
    }
    let r = w
        .redeem(
            &w.clerk,
            "typo",
            json!({"code": String::from_utf8(wrong).unwrap()}),
            oil.clone(),
        )
        .await;
    assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    let r = w
        .redeem(
            &w.clerk,
            "wrong-pin",
            json!({"card": {"number": number, "pin": wrong_pin(&w, 0)}}),
            oil,
        )
        .await;
    assert_eq!(r.body["code"], "redemption_code_invalid", "{}", r.body);
    assert_eq!(
        failure_counts(&w).await,
        (1, 0, 1),
        "only the wrong PIN counted, not the typo"
    );
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn a_code_shown_after_a_sale_is_accepted(h: Harness) {
    // Proves that the code GET /v1/residents/{id}/code answers after a sale, in the same 30 s
    // step, is accepted at the till (the step just used is dead, so it is the next step's), that
    // the answer carries what a phone needs to make the same code offline, and that a resident
    // who used up the window is told how long to wait rather than shown a code the till refuses.
    let w = world(h, 1, "1000").await;
    let oil = json!([{"sku": "OIL1", "quantity": 1}]);
    let secret: [u8; 32] = hex::decode(&w.secrets[0]).unwrap().try_into().unwrap();
    let number: u32 = w.residents[0].1.parse().unwrap();
    // 10 s into a step.
    w.h.clock.set(T0 + 10_000_000);
    let now = w.h.clock.now_micros();
    let now_step = code::step_of(now);
    let current = |w: &World| {
        let path = format!("/v1/residents/{}/code", w.residents[0].0);
        let api = w.api.clone();
        let staff = w.staff.clone();
        async move {
            let r = api.call(&staff, Method::GET, &path, None, None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body
        }
    };
    let first = current(&w).await;
    assert_eq!(first["layout"], 2);
    assert_eq!(first["number"], w.residents[0].1);
    assert_eq!(first["step"], now_step);
    assert_eq!(first["last_used_step"], Value::Null);
    assert_eq!(first["expires_in_seconds"], 20);
    assert_eq!(first["valid_in_seconds"], 0);
    let mut last = None;
    for (i, ahead) in [0i64, 1, 2].into_iter().enumerate() {
        let shown = if i == 0 {
            first.clone()
        } else {
            current(&w).await
        };
        let step = now_step + ahead;
        assert_eq!(shown["step"], step, "{shown}");
        assert_eq!(shown["last_used_step"], json!(last), "{shown}");
        assert_eq!(shown["expires_in_seconds"], 20 + 30 * ahead, "{shown}");
        assert_eq!(shown["valid_in_seconds"], 0, "{shown}");
        // What a phone makes offline from the secret, the number and the last used step.
        let offline = code::code_for_step(&secret, number, code::step_to_show(now_step, last));
        assert_eq!(shown["code"], offline);
        let r = w
            .redeem(
                &w.clerk,
                &format!("sale-{i}"),
                json!({"code": shown["code"]}),
                oil.clone(),
            )
            .await;
        assert_eq!(r.status, 201, "sale {i} with {shown}: {}", r.body);
        last = Some(step);
    }
    // Three sales in one step: the next unused step is beyond the window. The answer says how
    // long to wait; at that moment the code is accepted.
    let waiting = current(&w).await;
    assert_eq!(waiting["step"], now_step + 3);
    assert_eq!(waiting["valid_in_seconds"], 20, "{waiting}");
    w.h.clock.advance(20_000_000);
    let r = w
        .redeem(&w.clerk, "sale-3", json!({"code": waiting["code"]}), oil)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(w.balance(0).await, "880.00");
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn a_resident_sees_the_shops_that_serve_their_community(h: Harness) {
    // Proves the resident's "love shops" list: the shops serving their community with the items
    // on sale, not a shop of another community; only the resident themself may ask.
    let w = world(h, 1, "100").await;
    let _other_owner = foreign_shop(&w, "elsewhere").await;
    let app = App::new(w.h.stores.clone(), w.h.clock.clone(), w.h.entropy.clone());
    let resident = uuid::Uuid::parse_str(&w.residents[0].0).unwrap();
    let me = aixin::auth::Principal {
        token_id: uuid::Uuid::nil(),
        ledger_id: LEDGER.into(),
        role: Role::Resident,
        scope: Some(resident.to_string()),
        operator: None,
    };
    let shops = app
        .redemption
        .shops_for_resident(&me, resident)
        .await
        .unwrap();
    let ids: Vec<String> = shops.iter().map(|(s, _)| s.id.to_string()).collect();
    assert_eq!(ids, vec![w.shop.clone()], "only the shop serving c1");
    assert!(shops[0].1.iter().any(|i| i.sku == "RICE5" && i.active));
    let as_staff = aixin::auth::Principal {
        role: Role::Staff,
        scope: Some("c1".into()),
        ..me.clone()
    };
    let refused = app
        .redemption
        .shops_for_resident(&as_staff, resident)
        .await
        .unwrap_err();
    assert_eq!(refused.code, aixin::error::ErrorCode::NotFound);
    let someone_else = aixin::auth::Principal {
        scope: Some(uuid::Uuid::nil().to_string()),
        ..me
    };
    assert!(app
        .redemption
        .shops_for_resident(&someone_else, resident)
        .await
        .is_err());
}

async fn the_counter_settles_up_to_now_and_nothing_twice(h: Harness) {
    // Proves 日结 at the counter: a settlement at 10:00 covers the day so far, an exchange at
    // 10:05 falls into the settlement at 18:00 (and only it), a repeated request settles
    // nothing twice and answers the settlement it made, and of concurrent settlements exactly
    // one posts.
    let w = world(h, 1, "1000").await;
    let hour = 3_600_000_000;
    w.h.clock.set(T0 + 2 * hour); // 10:00 in Beijing
    let day = aixin::calendar::format_date(aixin::calendar::day_of(T0));
    let card = || json!({"card": {"number": w.residents[0].1, "pin": w.pins[0]}});
    let path = format!("/v1/shops/{}/settlements", w.shop);
    let period = json!({"from": day, "to": day});
    let r = w
        .redeem(
            &w.clerk,
            "r1",
            card(),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let first_receipt = r.body["id"].clone();
    let s1 = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("s1"),
            Some(period.clone()),
        )
        .await;
    assert_eq!(s1.status, 201, "{}", s1.body);
    assert_eq!(s1.body["net"], "30.00");
    assert_eq!(s1.body["receipts"][0]["receipt_id"], first_receipt);
    assert_eq!(s1.body["receipts"].as_array().unwrap().len(), 1);

    w.h.clock.set(T0 + 2 * hour + 5 * 60_000_000); // 10:05
    let r = w
        .redeem(
            &w.clerk,
            "r2",
            card(),
            json!([{"sku": "OIL1", "quantity": 2}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let second_receipt = r.body["id"].clone();

    w.h.clock.set(T0 + 10 * hour); // 18:00
    let s2 = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("s2"),
            Some(period.clone()),
        )
        .await;
    assert_eq!(s2.status, 201, "{}", s2.body);
    assert_eq!(s2.body["net"], "60.00", "{}", s2.body);
    assert_eq!(s2.body["redemptions"], 1);
    let receipts = s2.body["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1, "{}", s2.body);
    assert_eq!(receipts[0]["receipt_id"], second_receipt);
    assert_eq!(s2.body["after_seq"], s1.body["through_seq"]);

    // The entry says exactly what it settled.
    let entry = w
        .api
        .call(
            &w.admin,
            Method::GET,
            &format!("/v1/entries/{}", s2.body["entry_id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    let (after, through) = (
        s2.body["after_seq"].as_i64().unwrap(),
        s2.body["through_seq"].as_i64().unwrap(),
    );
    assert_eq!(
        entry.body["memo"],
        format!(
            "结算 {day} – {day}，分录 {}–{through} / settlement of entries {}–{through}",
            after + 1,
            after + 1
        )
    );
    assert_eq!(entry.body["metadata"]["through_seq"], through.to_string());
    assert_eq!(entry.body["metadata"]["receipts"], "1");

    // A repeat answers the same settlement; another request finds nothing left.
    let again = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("s2"),
            Some(period.clone()),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["entry_id"], s2.body["entry_id"]);
    assert_eq!(again.body["net"], "60.00");
    let none = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &path,
            Some("s3"),
            Some(period.clone()),
        )
        .await;
    assert_eq!(none.body["code"], "nothing_to_settle", "{}", none.body);

    // Concurrent settlements of one more exchange: exactly one posts.
    w.h.clock.advance(60_000_000);
    let r = w
        .redeem(
            &w.clerk,
            "r3",
            card(),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (api, staff, path, period) =
            (w.api.clone(), w.staff.clone(), path.clone(), period.clone());
        tasks.push(tokio::spawn(async move {
            api.call(
                &staff,
                Method::POST,
                &path,
                Some(&format!("c{i}")),
                Some(period),
            )
            .await
        }));
    }
    let mut posted = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            201 => {
                posted += 1;
                assert_eq!(r.body["net"], "30.00", "{}", r.body);
            }
            _ => assert!(
                ["nothing_to_settle", "period_already_settled"]
                    .contains(&r.body["code"].as_str().unwrap_or("")),
                "{}",
                r.body
            ),
        }
    }
    assert_eq!(posted, 1);
    let settlement = s1.body["settlement_account"].as_str().unwrap().to_owned();
    let account = w
        .api
        .call(
            &w.admin,
            Method::GET,
            &format!("/v1/accounts/{settlement}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        account.body["balances"]["points"], "120.00",
        "{}",
        account.body
    );
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn a_shop_settled_by_whole_days_before_is_not_settled_twice(h: Harness) {
    // Proves a ledger whose shop was settled by whole days (before settlements ran up to now,
    // with no `settled-seq:` counter) goes on from the latest day settled: that day's exchange
    // is not settled again, the next day's is.
    let w = world(h, 1, "1000").await;
    let card = || json!({"card": {"number": w.residents[0].1, "pin": w.pins[0]}});
    let day1 = aixin::calendar::day_of(T0);
    let r = w
        .redeem(
            &w.clerk,
            "r1",
            card(),
            json!([{"sku": "OIL1", "quantity": 1}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let shop = w
        .api
        .call(
            &w.admin,
            Method::GET,
            &format!("/v1/shops/{}", w.shop),
            None,
            None,
        )
        .await;
    let unit = w
        .api
        .call(&w.admin, Method::GET, "/v1/org-units/c1", None, None)
        .await;
    // The settlement of day 1 as the earlier code posted it: by whole days, no sequence range.
    let day = aixin::calendar::format_date(day1);
    let old = w
        .api
        .call(
            &w.admin,
            Method::POST,
            "/v1/entries",
            Some("old-settle"),
            Some(json!({"kind": "settle", "memo": format!("结算 {day} – {day}"),
                "metadata": {"shop": w.shop, "from": day, "to": day, "receipts": "1"},
                "postings": [
                    {"account": shop.body["account_id"], "unit": "points", "side": "debit", "amount": "30"},
                    {"account": unit.body["settlement_account"], "unit": "points", "side": "credit", "amount": "30"}]})),
        )
        .await;
    assert_eq!(old.status, 201, "{}", old.body);
    w.h.clock.advance(86_400_000_000);
    let r = w
        .redeem(
            &w.clerk,
            "r2",
            card(),
            json!([{"sku": "OIL1", "quantity": 2}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let day2 = aixin::calendar::format_date(aixin::calendar::day_of(w.h.clock.now_micros()));
    let s = w
        .api
        .call(
            &w.staff,
            Method::POST,
            &format!("/v1/shops/{}/settlements", w.shop),
            Some("new-settle"),
            Some(json!({"from": day, "to": day2})),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.body["net"], "60.00", "{}", s.body);
    assert_eq!(
        s.body["receipts"].as_array().unwrap().len(),
        1,
        "{}",
        s.body
    );
    assert_eq!(s.body["to"], day2, "{}", s.body);
    assert_eq!(s.body["after_seq"], 3, "{}", s.body); // entries 1–3: the earn, the sale, the old settlement
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}

async fn concurrent_approvals_share_a_cap_and_lose_no_hours(h: Harness) {
    // Proves approvals racing for one monthly cap: every record is approved, the points add up
    // to the cap exactly (the planner refuses a stale estimate and the award is worked out
    // again), and every hour is credited.
    let w = world(h, 1, "1").await;
    let day =
        |d: i64| aixin::calendar::format_date(aixin::calendar::day_of(T0 + d * 86_400_000_000));
    let r = w
        .api
        .call(&w.staff, Method::PUT, "/v1/rules/visit", None, Some(json!({"expected_version": 0, "community_id": "c1", "category": "visit",
            "name_zh": "入户走访", "name_en": "Home visit", "mode": "per_hour", "points": "10", "records_hours": true, "cap_month": "50",
            "valid_from": day(0)})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    w.h.clock.advance(6 * 86_400_000_000);
    let mut records = Vec::new();
    for d in 0..6 {
        let r = w
            .api
            .call(&w.staff, Method::POST, "/v1/service-records", Some(&format!("rec-{d}")),
                Some(json!({"resident_id": w.residents[0].0, "rule_id": "visit", "service_date": day(d), "hours": "2"})))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        records.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let mut tasks = Vec::new();
    for id in records {
        let (api, admin) = (w.api.clone(), w.admin.clone());
        tasks.push(tokio::spawn(async move {
            api.call(
                &admin,
                Method::POST,
                &format!("/v1/service-records/{id}/approve"),
                None,
                None,
            )
            .await
        }));
    }
    let (mut points, mut capped) = (0i64, 0i64);
    let minor = |v: &Value| -> i64 { v.as_str().unwrap().replace('.', "").parse().unwrap() };
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["status"], "approved", "{}", r.body);
        points += minor(&r.body["points"]);
        capped += minor(&r.body["capped_points"]);
    }
    assert_eq!((points, capped), (5_000, 7_000));
    let me = w
        .api
        .call(
            &w.staff,
            Method::GET,
            &format!("/v1/residents/{}", w.residents[0].0),
            None,
            None,
        )
        .await;
    assert_eq!(me.body["balance"]["points"], "51.00", "{}", me.body);
    assert_eq!(me.body["balance"]["hours"], "12.00", "{}", me.body);
    assert_invariants(w.h.store.as_ref(), LEDGER).await;
}
