//! The community staff's residents: the search behind `GET /v1/residents` and the work table
//! (`GET /v1/work-table`) on both backends — each key, the caller's scope, limits and pages,
//! bad input refused with nothing changed — and the staff's pages in Chromium (the harness is
//! `tests/browser/`): a staff member signs in with a password, registers three residents (a
//! duplicate phone warned), issues their cards, prints them in one batch on ID-1 pages, prints
//! a PIN slip and a sign-in QR; every page checked by axe-core in the standard mode and in
//! 长辈模式, with screenshots in `target/screenshots/`.

#[allow(dead_code, unused_imports)] // the harness serves every browser test; this one uses part
#[path = "browser/mod.rs"]
mod browser;
mod common;

use aixin::app::App;
use aixin::auth::{new_token, Principal, Role};
use aixin::calendar::{day_of, day_start_micros, parse_date};
use aixin::clock::Clock;
use aixin::earning::service::{NewOrgUnit, NewRecord, NewResident, RuleTerms};
use aixin::http::router;
use aixin::ledger::Amount;
use aixin::model::{ExpiryPolicy, Resident, RuleMode};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Harness, T0};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

const LEDGER: &str = "test";

on_both_backends!(
    residents_are_found_by_each_key,
    staff_see_only_their_communities,
    pages_are_bounded_and_follow_cursors,
    bad_searches_are_refused_and_change_nothing,
    the_work_table_counts_what_waits,
);

fn principal(role: Role, scope: Option<&str>) -> Principal {
    // A token id of its own per role and scope: the submitter and the approver of a record
    // must differ.
    let tag = format!("{role:?}/{}", scope.unwrap_or(""));
    Principal {
        token_id: Uuid::from_u128(
            tag.bytes()
                .fold(7u128, |h, b| h.wrapping_mul(31) ^ u128::from(b)),
        ),
        ledger_id: LEDGER.into(),
        role,
        scope: scope.map(str::to_owned),
        operator: None,
    }
}

/// An API over a harness: the organisation (street s1 with communities c1 and c2; community
/// c3 elsewhere), tokens, and residents registered through the service.
struct World {
    app: App,
    http: axum::Router,
    h: Harness,
    admin: Principal,
}

impl World {
    async fn new(h: Harness) -> World {
        let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone());
        let admin = principal(Role::Admin, None);
        for (id, parent, level, community) in [
            ("s1", None, "street", None),
            (
                "c1",
                Some("s1"),
                "community",
                Some(ExpiryPolicy::Rolling { months: 1 }),
            ),
            ("c2", Some("s1"), "community", Some(ExpiryPolicy::Never)),
            ("c3", None, "community", Some(ExpiryPolicy::Never)),
        ] {
            app.earning
                .create_org_unit(
                    &admin,
                    NewOrgUnit {
                        id: id.into(),
                        parent_id: parent.map(str::to_owned),
                        level: level.into(),
                        name_zh: format!("{id}社区"),
                        name_en: id.into(),
                        community,
                    },
                )
                .await
                .unwrap();
        }
        World {
            http: router(app.clone()),
            app,
            h,
            admin,
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

    /// Registers a resident (a second later than the one before: the list's order).
    async fn register(&self, key: &str, name: &str, phone: &str, community: &str) -> Resident {
        self.h.clock.advance(1_000_000);
        self.app
            .earning
            .register_resident(
                &principal(Role::Staff, Some(community)),
                key,
                NewResident {
                    name: name.into(),
                    phone: phone.into(),
                    community_id: community.into(),
                },
            )
            .await
            .unwrap()
            .0
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let response = self.http.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The names a search answers, in order.
    async fn names(&self, path: &str, token: &str) -> Vec<String> {
        let (status, body) = self.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap_or("-").to_owned())
            .collect()
    }

    /// Three residents in c1, one in c2, one in c3; cards for 王秀英 and 赵六.
    async fn people(&self) -> Vec<Resident> {
        let people = vec![
            self.register("r1", "王秀英", "138-0000-1234", "c1").await,
            self.register("r2", "李建国", "13900005678", "c1").await,
            self.register("r3", "王建", "+86 137 0000 2468", "c1").await,
            self.register("r4", "赵六", "13800001234", "c2").await,
            self.register("r5", "王五", "13800001234", "c3").await,
        ];
        for (key, who) in [("card-1", &people[0]), ("card-4", &people[3])] {
            self.app
                .redemption
                .issue_credential(&self.admin, key, who.id)
                .await
                .unwrap();
        }
        people
    }

    async fn card_number(&self, who: &Resident) -> String {
        let card = self
            .app
            .earning
            .card_state(&self.admin, who.id)
            .await
            .unwrap();
        format!("{:09}", card.unwrap().number)
    }
}

async fn residents_are_found_by_each_key(h: Harness) {
    let w = World::new(h).await;
    let people = w.people().await;
    let admin = w.token(Role::Admin, None).await;
    // A substring of the name.
    assert_eq!(
        w.names("/v1/residents?q=%E7%8E%8B", &admin).await,
        ["王秀英", "王建", "王五"],
        "王 is in three names"
    );
    assert_eq!(
        w.names("/v1/residents?q=%E5%BB%BA", &admin).await,
        ["李建国", "王建"]
    );
    // The phone's digits, however it was written and however it is asked.
    assert_eq!(
        w.names("/v1/residents?q=13800001234", &admin).await,
        ["王秀英", "赵六", "王五"]
    );
    assert_eq!(
        w.names("/v1/residents?q=%2B86%20137-0000-2468", &admin)
            .await,
        ["王建"]
    );
    assert!(
        w.names("/v1/residents?q=1380000", &admin).await.is_empty(),
        "a phone matches whole, not in part"
    );
    // The card number, with or without its leading zeros.
    let number = w.card_number(&people[3]).await;
    assert_eq!(
        w.names(&format!("/v1/residents?q={number}"), &admin).await,
        ["赵六"]
    );
    let trimmed = number.trim_start_matches('0');
    assert_eq!(
        w.names(&format!("/v1/residents?q={trimmed}"), &admin).await,
        ["赵六"]
    );
    // The pseudonym, exactly.
    let (_, body) = w
        .get(&format!("/v1/residents?q={}", people[1].pseudonym), &admin)
        .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["items"][0]["id"], people[1].id.to_string());
    assert!(body["items"][0]["card"].is_null(), "李建国 has no card");
    // A community filter, and every resident without q.
    assert_eq!(
        w.names("/v1/residents?community=c1", &admin).await,
        ["王秀英", "李建国", "王建"]
    );
    assert_eq!(
        w.names("/v1/residents?q=13800001234&community=c2", &admin)
            .await,
        ["赵六"]
    );
    assert_eq!(w.names("/v1/residents", &admin).await.len(), 5);
    // The card comes with the resident.
    let (_, body) = w.get("/v1/residents?q=%E8%B5%B5", &admin).await;
    assert_eq!(body["items"][0]["card"]["number"], number.as_str());
    assert_eq!(body["items"][0]["card"]["active"], true);
    // Auditors match pseudonyms and card numbers, never names or phones, and see no names.
    let auditor = w.token(Role::Auditor, None).await;
    assert!(w
        .names("/v1/residents?q=%E7%8E%8B", &auditor)
        .await
        .is_empty());
    assert!(w
        .names("/v1/residents?q=13800001234", &auditor)
        .await
        .is_empty());
    let (status, body) = w.get(&format!("/v1/residents?q={number}"), &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["id"], people[3].id.to_string());
    assert!(body["items"][0]["name"].is_null() && body["items"][0]["phone"].is_null());
    assert_eq!(w.names("/v1/residents", &auditor).await, ["-"; 5]);
}

async fn staff_see_only_their_communities(h: Harness) {
    let w = World::new(h).await;
    w.people().await;
    let c1 = w.token(Role::Staff, Some("c1")).await;
    let street = w.token(Role::Staff, Some("s1")).await;
    let c3 = w.token(Role::Staff, Some("c3")).await;
    assert_eq!(
        w.names("/v1/residents?q=13800001234", &c1).await,
        ["王秀英"],
        "c1's staff find only c1's resident with that phone"
    );
    assert_eq!(
        w.names("/v1/residents?q=13800001234", &street).await,
        ["王秀英", "赵六"],
        "the street's staff see both its communities"
    );
    assert_eq!(w.names("/v1/residents", &c3).await, ["王五"]);
    assert!(
        w.names("/v1/residents?community=c1", &c3).await.is_empty(),
        "another community's filter shows c3's staff nothing"
    );
    assert!(w.names("/v1/residents?q=%E6%9D%8E", &c3).await.is_empty());
    // Shops, cashiers and residents list nobody.
    for role in [Role::Shop, Role::Cashier, Role::Resident] {
        let token = w.token(role, Some("c1")).await;
        let (status, body) = w.get("/v1/residents", &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {body}");
        assert_eq!(body["code"], "forbidden");
    }
    let (status, _) = w.get("/v1/residents", "axn_not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The service answers the same to the pages.
    let communities = w
        .app
        .earning
        .managed_communities(&principal(Role::Staff, Some("s1")))
        .await
        .unwrap();
    let ids: Vec<&str> = communities.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["c1", "c2"],
        "the street's communities, not the street itself"
    );
    let dup = w
        .app
        .earning
        .residents_with_phone(&principal(Role::Staff, Some("c3")), "c1", "13800001234")
        .await
        .unwrap();
    assert!(
        dup.is_empty(),
        "no warning names another community's resident"
    );
}

async fn pages_are_bounded_and_follow_cursors(h: Harness) {
    let w = World::new(h).await;
    let staff = principal(Role::Staff, Some("c1"));
    let mut expected = Vec::new();
    for i in 0..7 {
        let name = format!("居民{i}");
        w.register(&format!("p{i}"), &name, &format!("1390000{i:04}"), "c1")
            .await;
        expected.push(name);
    }
    let token = w.token(Role::Staff, Some("c1")).await;
    let mut seen = Vec::new();
    let mut path = "/v1/residents?limit=3".to_owned();
    loop {
        let (status, body) = w.get(&path, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["name"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/residents?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen, expected,
        "three pages, every resident once, in registration order"
    );
    let (_, body) = w.get("/v1/residents?limit=7", &token).await;
    assert!(
        body["next_cursor"].is_null(),
        "a full last page says there is no more"
    );
    let (_, body) = w.get("/v1/residents?limit=200", &token).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 7);
    let page = w
        .app
        .earning
        .search_residents(&staff, Default::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 7, "the default page holds 50");
}

async fn bad_searches_are_refused_and_change_nothing(h: Harness) {
    let w = World::new(h).await;
    w.people().await;
    let token = w.token(Role::Staff, Some("c1")).await;
    let head = w.h.store.head(LEDGER).await.unwrap();
    let long = "王".repeat(65);
    for path in [
        "/v1/residents?limit=0".to_owned(),
        "/v1/residents?limit=201".to_owned(),
        "/v1/residents?limit=-5".to_owned(),
        "/v1/residents?limit=ten".to_owned(),
        "/v1/residents?cursor=abc".to_owned(),
        format!("/v1/residents?cursor=12.{}x", Uuid::nil()),
        format!("/v1/residents?q={}", urlenc(&long)),
        "/v1/residents?q=%E7%8E%8B%01".to_owned(),
        "/v1/residents?colour=red".to_owned(),
    ] {
        let (status, body) = w.get(&path, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["code"], "invalid_query", "{path}: {body}");
    }
    // 64 characters are fine.
    let (status, _) = w
        .get(
            &format!("/v1/residents?q={}", urlenc(&"王".repeat(64))),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // LIKE's wildcards are only characters.
    assert!(w.names("/v1/residents?q=%25", &token).await.is_empty());
    assert!(w.names("/v1/residents?q=_", &token).await.is_empty());
    assert_eq!(
        w.h.store.head(LEDGER).await.unwrap(),
        head,
        "nothing was posted"
    );
    let (_, body) = w.get("/v1/residents", &token).await;
    assert_eq!(
        body["items"].as_array().unwrap().len(),
        3,
        "nothing was registered"
    );
}

fn urlenc(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn the_work_table_counts_what_waits(h: Harness) {
    let w = World::new(h).await;
    let people = w.people().await;
    let staff = principal(Role::Staff, Some("c1"));
    for (community, rule) in [("c1", "visit"), ("c2", "visit-2")] {
        let terms = RuleTerms {
            community_id: community.into(),
            category: "visit".into(),
            name_zh: "入户走访".into(),
            name_en: "Home visits".into(),
            mode: RuleMode::PerHour,
            points: Amount::parse("10").unwrap(),
            records_hours: true,
            cap_day: None,
            cap_month: None,
            valid_from: day_of(T0),
            valid_until: None,
        };
        w.app
            .earning
            .set_rule(&w.admin, rule, 0, terms)
            .await
            .unwrap();
    }
    // 王秀英 and 李建国 earn (c1, expiring after a month); 王建's record waits; 赵六 (c2)
    // has one waiting too.
    let mut records = Vec::new();
    for (i, (who, rule)) in [(0, "visit"), (1, "visit"), (2, "visit"), (3, "visit-2")]
        .into_iter()
        .enumerate()
    {
        let (record, _) = w
            .app
            .earning
            .submit_record(
                &principal(Role::Staff, Some(if who == 3 { "c2" } else { "c1" })),
                &format!("rec-{i}"),
                NewRecord {
                    resident_id: people[who].id,
                    rule_id: rule.into(),
                    service_date: day_of(T0),
                    hours_minor: 100 * (i as i64 + 1),
                    note: String::new(),
                },
            )
            .await
            .unwrap();
        records.push(record);
    }
    for r in &records[..2] {
        w.app.earning.approve_record(&w.admin, r.id).await.unwrap();
    }
    w.app
        .earning
        .request_correction(&staff, "corr-1", records[0].id, "两小时，不是一小时")
        .await
        .unwrap();
    let table = w.app.earning.work_table(&staff).await.unwrap();
    assert_eq!((table.records_waiting, table.corrections_open), (1, 1));
    assert_eq!(table.expiring.residents, 0, "nothing expires in January");
    // On the last valid day's month, both residents' points are listed, soonest first.
    let lots = w.app.earning.lots(&staff, people[0].id).await.unwrap();
    let last = parse_date(lots[0].expires_on.as_deref().unwrap()).unwrap();
    w.h.clock.set(day_start_micros(last) + 3_600_000_000);
    let token = w.token(Role::Staff, Some("c1")).await;
    let (status, body) = w.get("/v1/work-table", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records_waiting"], 1);
    assert_eq!(body["corrections_open"], 1);
    assert_eq!(body["expiring"]["residents"], 2, "{body}");
    assert_eq!(body["expiring"]["points"], "30.00", "10 + 20 points");
    let soonest = body["expiring"]["soonest"].as_array().unwrap();
    assert_eq!(soonest.len(), 2);
    assert_eq!(
        soonest[0]["last_valid_day"],
        lots[0].expires_on.as_deref().unwrap()
    );
    // The street sees c2's waiting record too; c3's staff see nothing; a shop is refused.
    let street = w
        .app
        .earning
        .work_table(&principal(Role::Staff, Some("s1")))
        .await
        .unwrap();
    assert_eq!((street.records_waiting, street.corrections_open), (2, 1));
    let c3 = w
        .app
        .earning
        .work_table(&principal(Role::Staff, Some("c3")))
        .await
        .unwrap();
    assert_eq!(
        (
            c3.records_waiting,
            c3.corrections_open,
            c3.expiring.residents
        ),
        (0, 0, 0)
    );
    let shop = w.token(Role::Shop, Some("c1")).await;
    assert_eq!(
        w.get("/v1/work-table", &shop).await.0,
        StatusCode::FORBIDDEN
    );
}
