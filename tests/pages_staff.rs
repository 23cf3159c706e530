//! The community staff's residents: the search behind `GET /v1/residents` and the work table
//! (`GET /v1/work-table`) on both backends — each key, the caller's scope, limits and pages,
//! bad input refused with nothing changed — and the staff's pages in Chromium (the harness is
//! `tests/browser/`): a staff member signs in with a password, registers three residents (a
//! duplicate phone warned), issues their cards, prints them in one batch on ID-1 pages, prints
//! a PIN slip and a sign-in QR; every page checked by axe-core in the standard mode and in
//! 长辈模式, with screenshots in `target/screenshots/`.

#[allow(unused_imports)] // the harness serves every browser test; this one uses part
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
    the_pages_keep_to_the_staff_communities,
);

#[test]
fn the_openapi_document_has_the_search_beside_the_registration() {
    let doc = serde_json::to_value(aixin::http::openapi_document()).unwrap();
    let residents = &doc["paths"]["/v1/residents"];
    assert!(
        residents["post"].is_object(),
        "POST /v1/residents is still documented"
    );
    let get = &residents["get"];
    let params: Vec<&str> = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["q", "community", "limit", "cursor"]);
    for status in ["200", "400", "401", "403"] {
        assert!(
            get["responses"][status].is_object(),
            "GET /v1/residents answers {status}"
        );
    }
    assert!(doc["paths"]["/v1/work-table"]["get"]["responses"]["200"].is_object());
    assert!(doc["components"]["schemas"]["ResidentList"].is_object());
}

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

    /// Registers a resident through the service as staff of `community`.
    async fn register_in(
        app: &App,
        key: &str,
        name: &str,
        phone: &str,
        community: &str,
    ) -> Resident {
        app.earning
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
    let printed = format!("{}%20{}%20{}", &number[..3], &number[3..6], &number[6..]);
    assert_eq!(
        w.names(&format!("/v1/residents?q={printed}"), &admin).await,
        ["赵六"],
        "as printed on the card"
    );
    let wide: String = number
        .chars()
        .map(|d| char::from_u32(0xFF10 + d.to_digit(10).unwrap()).unwrap())
        .collect();
    assert_eq!(
        w.names(&format!("/v1/residents?q={}", urlenc(&wide)), &admin)
            .await,
        ["赵六"],
        "typed in full-width digits"
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
    // GET and POST share the path: registering through the API still works beside the search.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/residents")
        .header("authorization", format!("Bearer {admin}"))
        .header("idempotency-key", "api-1")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"name": "钱七", "phone": "13100000000", "community_id": "c3"})
                .to_string(),
        ))
        .unwrap();
    let response = w.http.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        w.names("/v1/residents?q=13100000000", &admin).await,
        ["钱七"]
    );
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
    assert_eq!(w.names("/v1/residents", &auditor).await, ["-"; 6]);
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
        .residents_with_phone(
            &principal(Role::Staff, Some("c3")),
            "c1",
            "13800001234",
            "k",
        )
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

/// A staff member of `community` signed in with a password: their session cookie.
async fn staff_cookie(w: &World, community: &str, name: &str) -> String {
    let (_, link) = w
        .app
        .sessions
        .create_user(&w.admin, Role::Staff, Some(community), name)
        .await
        .unwrap();
    w.app
        .sessions
        .set_password(LEDGER, &link.secret, "a-long-enough-secret")
        .await
        .unwrap();
    let session = w
        .app
        .sessions
        .sign_in_password(LEDGER, name, "a-long-enough-secret", "127.0.0.1")
        .await
        .unwrap();
    format!("aixin_session={}", session.cookie)
}

/// A page request from this site's own pages: the status, the redirect and the text.
async fn page(
    w: &World,
    method: Method,
    path: &str,
    cookie: &str,
    form: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:8080")
        .header("origin", "http://127.0.0.1:8080")
        .header("cookie", cookie);
    if form.is_some() {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    let body = form.map_or_else(Body::empty, |f| Body::from(f.to_owned()));
    let response = w
        .http
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        location,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn the_pages_keep_to_the_staff_communities(h: Harness) {
    let w = World::new(h).await;
    let people = w.people().await;
    let mine = staff_cookie(&w, "c1", "干部甲").await;
    let other = staff_cookie(&w, "c3", "干部乙").await;
    let (li, wang) = (&people[1], &people[0]);
    // Nobody signed in goes to the sign-in page.
    let (status, to, _) = page(&w, Method::GET, "/staff", "", None).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/signin?next=/staff")
    );
    // Staff of c3 see nothing of c1's residents, and issue them nothing.
    for path in [
        format!("/staff/residents/{}", li.id),
        format!("/staff/cards?resident={}", wang.id),
        format!("/staff/sign-in-card?resident={}", li.id),
    ] {
        let (status, _, html) = page(&w, Method::GET, &path, &other, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !html.contains("李建国") && !html.contains("王秀英"),
            "{path}: {html}"
        );
    }
    let key = format!("page-{}", Uuid::from_u128(9));
    let (status, _, _) = page(
        &w,
        Method::POST,
        &format!("/staff/residents/{}/card", li.id),
        &other,
        Some(&format!("key={key}")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.app.earning.card_state(&w.admin, li.id).await.unwrap(),
        None
    );
    let (_, _, html) = page(
        &w,
        Method::GET,
        "/staff/residents?q=%E7%8E%8B",
        &other,
        None,
    )
    .await;
    assert!(
        html.contains("王五") && !html.contains("王秀英"),
        "c3 finds its own only"
    );
    let register = |community: &str, phone: &str, key: &str, confirm: bool| {
        format!(
            "key={key}&name=%E5%BC%A0%E4%B8%89&phone={phone}&community={community}{}",
            if confirm { "&confirm=yes" } else { "" }
        )
    };
    let count = || async {
        w.app
            .earning
            .search_residents(&w.admin, Default::default())
            .await
            .unwrap()
            .items
            .len()
    };
    assert_eq!(count().await, 5);
    // Registering into another community is refused; so are a bad phone and a stranger's key.
    let k1 = format!("page-{}", Uuid::from_u128(1));
    let (status, _, html) = page(
        &w,
        Method::POST,
        "/staff/residents",
        &other,
        Some(&register("c1", "13600000000", &k1, true)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("不归您管理"), "{html}");
    let (status, _, html) = page(
        &w,
        Method::POST,
        "/staff/residents",
        &mine,
        Some(&register("c1", "12ab", &k1, true)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("电话号码要 5 到 20 位"), "{html}");
    let (status, _, _) = page(
        &w,
        Method::POST,
        "/staff/residents",
        &mine,
        Some(&register("c1", "13600000000", "till-1", true)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(count().await, 5, "nothing was registered");
    // A phone c1 has already: warned, not registered; confirmed: registered once however
    // often the form is sent.
    let (status, _, html) = page(
        &w,
        Method::POST,
        "/staff/residents",
        &mine,
        Some(&register("c1", "13800001234", &k1, false)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("已经登记过") && html.contains(&format!("/staff/residents/{}", wang.id)));
    assert_eq!(count().await, 5);
    for _ in 0..2 {
        let (status, to, _) = page(
            &w,
            Method::POST,
            "/staff/residents",
            &mine,
            Some(&register("c1", "13800001234", &k1, true)),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(to.starts_with("/staff/residents/"), "{to}");
    }
    // Sent again unconfirmed with the same key (a retry), it warns of 王秀英 again and changes
    // nothing.
    let (status, _, html) = page(
        &w,
        Method::POST,
        "/staff/residents",
        &mine,
        Some(&register("c1", "13800001234", &k1, false)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(count().await, 6);
    // Bounded: a long search, a batch of more than 100.
    let (status, _, html) = page(
        &w,
        Method::GET,
        &format!("/staff/residents?q={}", urlenc(&"王".repeat(65))),
        &mine,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("最多 64 个字"), "{html}");
    let many: Vec<String> = (0..101)
        .map(|i| format!("resident={}", Uuid::from_u128(i + 1)))
        .collect();
    let (status, _, _) = page(
        &w,
        Method::GET,
        &format!("/staff/cards?{}", many.join("&")),
        &mine,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A re-issue needs its box ticked; the old card keeps working until it is.
    let before = w
        .app
        .earning
        .card_state(&w.admin, wang.id)
        .await
        .unwrap()
        .unwrap();
    let card_path = format!("/staff/residents/{}/card", wang.id);
    let (status, _, _) = page(
        &w,
        Method::POST,
        &card_path,
        &mine,
        Some(&format!("key={key}")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        w.app
            .earning
            .card_state(&w.admin, wang.id)
            .await
            .unwrap()
            .unwrap(),
        before
    );
    let (status, _, html) = page(
        &w,
        Method::POST,
        &card_path,
        &mine,
        Some(&format!("key={key}&confirm=yes")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"pin\""), "the slip shows the PIN");
    let after = w
        .app
        .earning
        .card_state(&w.admin, wang.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.generation, before.generation + 1);
    // The cards page prints the number only in the QR code: the one SVG is the number's.
    let (status, _, html) = page(
        &w,
        Method::GET,
        &format!("/staff/cards?resident={}", wang.id),
        &mine,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let qr = aixin::redeem::receipt::qr_svg(&format!("{:09}", after.number)).unwrap();
    assert!(html.contains(qr.as_str()));
    assert_eq!(html.matches("<svg").count(), 1);
}

// ---- The staff's pages in Chromium ----

use browser::{
    assert_accessible, axe_check, min_target_size, pdf_page_count, print_pdf, screenshot,
    wait_for_js, Browser, BrowserOptions, Server, WAIT,
};
use fantoccini::{Client, Locator};

const STAFF_NAME: &str = "社区小陈";
const STAFF_PASSWORD: &str = "correct horse battery";

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

async fn goto(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    wait_for_js(c, "document.readyState === 'complete'", WAIT).await;
}

/// Clicks and waits for the page the click leads to.
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

async fn fill(c: &Client, id: &str, text: &str) {
    let field = c
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("find #{id}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Text under 22 px that a person would read (from tests/pages.rs).
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

/// axe-core's WCAG A/AA rules on the page, and in 长辈模式 its targets, text sizes and width;
/// every problem is pushed onto `problems`; a screenshot is kept.
async fn check_page(c: &Client, name: &str, large: bool, problems: &mut Vec<String>) {
    let what = format!("{name} ({})", if large { "large" } else { "standard" });
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
    let min = if large { 60.0 } else { 44.0 };
    for (target, width, height) in min_target_size(c).await {
        if width < min || height < min {
            problems.push(format!("{what}: {target} is {width}×{height} px"));
        }
    }
    if large {
        for small in js(c, SMALL_TEXT).await.as_array().unwrap() {
            problems.push(format!("{what}: small text {small}"));
        }
    }
    screenshot(
        c,
        &format!("staff-{name}-{}", if large { "large" } else { "standard" }),
    )
    .await;
}

/// `pdfinfo`'s page size of the PDF at `path`, in millimetres.
fn pdf_page_mm(path: &std::path::Path) -> (f64, f64) {
    let out = std::process::Command::new("pdfinfo")
        .arg(path)
        .output()
        .expect("pdfinfo (poppler-utils) is required");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Page size:"))
        .unwrap_or_else(|| panic!("pdfinfo gave no page size:\n{text}"));
    let mut numbers = line
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok());
    let (w, h) = (numbers.next().unwrap(), numbers.next().unwrap());
    (w * 25.4 / 72.0, h * 25.4 / 72.0)
}

fn pdf_text(path: &std::path::Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is required");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Prints the page to PDF (the driver's paper 85.6 mm wide; the page's `@page` decides) and
/// checks every page is ID-1 size (85.6 × 54 mm) and that there are `pages` of them.
async fn print_id1(c: &Client, name: &str, pages: usize) -> std::path::PathBuf {
    let pdf = browser::artifact(&format!("staff-{name}.pdf"));
    print_pdf(c, 8.56, &pdf).await;
    assert_eq!(pdf_page_count(&pdf), pages, "{name}: one card a page");
    let (w, h) = pdf_page_mm(&pdf);
    assert!(
        (w - 85.6).abs() < 0.5 && (h - 54.0).abs() < 0.5,
        "{name}: pages of {w:.1} × {h:.1} mm, not ID-1 (85.6 × 54)"
    );
    pdf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_staff_member_registers_residents_and_prints_their_cards() {
    let server = Server::start_with(|app| {
        aixin::http::router(app).layer(axum::Extension(aixin::web::Site {
            ledger: LEDGER.into(),
        }))
    })
    .await;
    server.clock.set(T0);
    let app = server.app.clone();
    let admin = principal(Role::Admin, None);
    app.earning
        .create_org_unit(
            &admin,
            NewOrgUnit {
                id: "c1".into(),
                parent_id: None,
                level: "community".into(),
                name_zh: "幸福社区".into(),
                name_en: "Xingfu".into(),
                community: Some(ExpiryPolicy::Rolling { months: 1 }),
            },
        )
        .await
        .unwrap();
    // 赵大爷 earned points a month ago; the day he may last spend them is today, so the work
    // table names him.
    let elder = World::register_in(&app, "elder", "赵大爷", "13500000001", "c1").await;
    let terms = RuleTerms {
        community_id: "c1".into(),
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
    app.earning
        .set_rule(&admin, "visit", 0, terms)
        .await
        .unwrap();
    let (record, _) = app
        .earning
        .submit_record(
            &principal(Role::Staff, Some("c1")),
            "elder-visit",
            NewRecord {
                resident_id: elder.id,
                rule_id: "visit".into(),
                service_date: day_of(T0),
                hours_minor: 250,
                note: String::new(),
            },
        )
        .await
        .unwrap();
    app.earning.approve_record(&admin, record.id).await.unwrap();
    let lots = app.earning.lots(&admin, elder.id).await.unwrap();
    let last = parse_date(lots[0].expires_on.as_deref().unwrap()).unwrap();
    server.clock.set(day_start_micros(last) + 3_600_000_000);
    let (_, link) = app
        .sessions
        .create_user(&admin, Role::Staff, Some("c1"), STAFF_NAME)
        .await
        .unwrap();
    let Some(browser) = Browser::start(BrowserOptions::till()).await else {
        return;
    };
    let c = &browser.client;
    let url = |p: &str| server.url(p);
    let mut problems = Vec::new();

    // The staff member sets a password by the one-time link and signs in with it.
    goto(c, &url(&format!("/set-password/{}", link.secret))).await;
    fill(c, "password", STAFF_PASSWORD).await;
    click_to(c, "main form button[type=submit]").await;
    let text = main_text(c).await;
    assert!(
        c.find(Locator::Css(".notice")).await.is_ok(),
        "password set: {text}"
    );
    goto(c, &url("/signin?next=/staff")).await;
    fill(c, "staff-name", STAFF_NAME).await;
    fill(c, "staff-password", STAFF_PASSWORD).await;
    click_to(c, "form[action='/signin/password'] button").await;
    assert_eq!(path(c).await, "/staff", "signed in: {}", main_text(c).await);
    let text = main_text(c).await;
    assert!(text.contains("工作台") && text.contains("待审批"), "{text}");
    assert_eq!(
        js_string(
            c,
            "return document.getElementById('records-waiting').innerText"
        )
        .await,
        "0"
    );
    let soonest = js_string(c, "return document.getElementById('soonest').innerText").await;
    assert!(
        soonest.contains("赵大爷") && soonest.contains("25 分将于"),
        "{soonest}"
    );
    assert!(main_text(c).await.contains("1 位居民"));
    // One click to the resident: balance, history in plain words, the lot's last day.
    click_to(c, "#soonest a").await;
    assert_eq!(path(c).await, format!("/staff/residents/{}", elder.id));
    assert_eq!(
        js_string(c, "return document.getElementById('points').innerText").await,
        "25"
    );
    let history = js_string(c, "return document.getElementById('history').innerText").await;
    assert!(
        history.contains("入户走访 2.5小时") && history.contains("+25"),
        "{history}"
    );
    let lots_text = js_string(c, "return document.getElementById('lots').innerText").await;
    let day = format!(
        "{}年{}月{}日",
        last.year(),
        u8::from(last.month()),
        last.day()
    );
    assert!(lots_text.contains(&day), "{lots_text}");
    check_page(c, "resident-points", false, &mut problems).await;
    goto(c, &url("/staff")).await;
    assert_eq!(
        js_string(
            c,
            "return document.querySelector('a[href=\"/staff/approvals\"].button') ? 'yes' : ''"
        )
        .await,
        "yes",
        "the approvals are one click away"
    );
    check_page(c, "work-table", false, &mut problems).await;

    // Three residents; a double submit of the first form registers one.
    let people = [
        ("王秀英", "13800001234"),
        ("李建国", "13900005678"),
        ("张桂兰", "138-0000-1234"),
    ];
    let mut ids = Vec::new();
    let mut pins = Vec::new();
    for (i, (name, phone)) in people.iter().enumerate() {
        goto(c, &url("/staff/residents")).await;
        fill(c, "name", name).await;
        fill(c, "phone", phone).await;
        if i == 0 {
            js(
                c,
                "const f = document.getElementById('register-form');
                 const body = new URLSearchParams(new FormData(f));
                 window.__posts = Promise.all([1, 2].map(() => fetch('/staff/residents', {method: 'POST', body})));",
            )
            .await;
            wait_for_js(c, "window.__posts && (window.__posts.then(() => window.__posted = true), window.__posted)", WAIT).await;
            check_page(c, "residents", false, &mut problems).await;
        }
        click_to(c, "#register").await;
        if i == 2 {
            // The same phone (written otherwise) in the same community: warned, with 王秀英
            // linked, and registered only when confirmed.
            let warning =
                js_string(c, "return document.getElementById('duplicate').innerText").await;
            assert!(
                warning.contains("已经登记过") && warning.contains("王秀英"),
                "{warning}"
            );
            let linked = js_string(
                c,
                "return document.querySelector('#duplicate a').getAttribute('href')",
            )
            .await;
            assert_eq!(linked, format!("/staff/residents/{}", ids[0]));
            assert_eq!(path(c).await, "/staff/residents", "nothing registered yet");
            check_page(c, "duplicate", false, &mut problems).await;
            click_to(c, "#register-anyway").await;
        }
        let here = path(c).await;
        let text = main_text(c).await;
        let id: Uuid = here
            .strip_prefix("/staff/residents/")
            .unwrap_or_else(|| panic!("{name}: landed on {here}: {text}"))
            .parse()
            .unwrap();
        assert!(main_text(c).await.contains("已登记"));
        assert_eq!(
            js_string(c, "return document.getElementById('card-state').innerText").await,
            "未发卡"
        );
        if i == 0 {
            check_page(c, "resident", false, &mut problems).await;
        }
        // Issue the card: the PIN once, on its own slip.
        click_to(c, "#issue").await;
        let pin = js_string(c, "return document.getElementById('pin').innerText").await;
        assert_eq!(pin.len(), 6, "{}", main_text(c).await);
        assert!(
            app.redemption
                .card_pin_matches(LEDGER, id, &pin)
                .await
                .unwrap(),
            "the slip's PIN is the card's"
        );
        if i == 0 {
            check_page(c, "pin-slip", false, &mut problems).await;
            let slip = print_id1(c, "pin-slip", 1).await;
            assert!(pdf_text(&slip).contains(&pin), "the slip carries the PIN");
        }
        ids.push(id);
        pins.push(pin);
    }
    let everyone = app
        .earning
        .search_residents(&principal(Role::Staff, Some("c1")), Default::default())
        .await
        .unwrap();
    assert_eq!(
        everyone.items.len(),
        4,
        "three posts of the first form made one resident"
    );

    // The resident's page says a re-issue revokes the old card, and asks to confirm.
    goto(c, &url(&format!("/staff/residents/{}", ids[0]))).await;
    let card = app
        .earning
        .card_state(&admin, ids[0])
        .await
        .unwrap()
        .unwrap();
    let warning = js_string(
        c,
        "return document.getElementById('reissue-warning').innerText",
    )
    .await;
    let printed = format!("{:09}", card.number);
    let grouped = format!("{} {} {}", &printed[..3], &printed[3..6], &printed[6..]);
    assert!(
        warning.contains("作废") && warning.contains(&grouped),
        "{warning}"
    );
    assert_eq!(
        js(c, "return document.getElementById('confirm').required").await,
        true
    );

    // Find by the search box, then select all three and print their cards in one document.
    // By keyboard alone: the search box has the focus; type and press Enter.
    goto(c, &url("/staff/residents")).await;
    assert_eq!(js_string(c, "return document.activeElement.id").await, "q");
    js(c, "window.__aixinOld = true;").await;
    c.active_element()
        .await
        .unwrap()
        .send_keys("王\u{E007}")
        .await
        .unwrap();
    wait_for_js(
        c,
        "!window.__aixinOld && document.readyState === 'complete'",
        WAIT,
    )
    .await;
    let found = js(
        c,
        "return [...document.querySelectorAll('#found tbody tr')].map(r => r.innerText)",
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    goto(c, &url("/staff/residents?community=c1")).await;
    check_page(c, "found", false, &mut problems).await;
    for id in &ids {
        c.find(Locator::Id(&format!("pick-{id}")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    let all = js_string(
        c,
        "return document.getElementById('print-all').getAttribute('href')",
    )
    .await;
    assert_eq!(all.matches("resident=").count(), 4, "everyone found: {all}");
    click_to(c, "#print-selected").await;
    assert_eq!(path(c).await, "/staff/cards");
    assert_eq!(
        js(c, "return document.querySelectorAll('.idcard').length").await,
        3
    );
    // The document as the server sent it (not as the browser serialises it back).
    let source = c
        .execute_async(
            "const done = arguments[0]; fetch(location.href).then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .unwrap();
    let source = source.as_str().unwrap();
    for id in &ids {
        let card = app.earning.card_state(&admin, *id).await.unwrap().unwrap();
        let number = format!("{:09}", card.number);
        let qr = aixin::redeem::receipt::qr_svg(&number).unwrap();
        assert!(
            source.contains(qr.as_str()),
            "the card's QR code is of the number {number} only"
        );
    }
    check_page(c, "cards", false, &mut problems).await;
    let cards = print_id1(c, "cards", 3).await;
    let text = pdf_text(&cards);
    for (i, (name, _)) in people.iter().enumerate() {
        assert!(text.contains(name), "{name} is on a card:\n{text}");
        assert!(!text.contains(&pins[i]), "no PIN on any card");
    }

    // The sign-in QR code, printed from the resident's page.
    goto(c, &url(&format!("/staff/residents/{}", ids[1]))).await;
    click_to(c, "#sign-in-qr").await;
    click_to(c, "form button.huge").await;
    assert!(c.find(Locator::Css("#sign-in-card svg")).await.is_ok());
    check_page(c, "sign-in-card", false, &mut problems).await;
    let qr_pdf = browser::artifact("staff-sign-in-card.pdf");
    print_pdf(c, 5.8, &qr_pdf).await;
    assert!(pdf_text(&qr_pdf).contains("李建国"));

    // In English too.
    goto(c, &url(&format!("/staff/residents/{}?lang=en", elder.id))).await;
    let text = main_text(c).await;
    assert!(
        text.contains("Home visits 2.5 h") && text.contains("Lots of points"),
        "{text}"
    );
    check_page(c, "resident-en", false, &mut problems).await;
    goto(c, &url("/staff?lang=zh")).await;

    // 长辈模式: every page again, the POST answers too (a warned phone, a re-issue's slip).
    goto(c, &url("/staff?mode=large")).await;
    for (name, p) in [
        ("work-table", "/staff".to_owned()),
        ("residents", "/staff/residents".to_owned()),
        ("found", "/staff/residents?community=c1".to_owned()),
        ("resident", format!("/staff/residents/{}", ids[0])),
        (
            "cards",
            format!("/staff/cards?resident={}&resident={}", ids[0], ids[1]),
        ),
        (
            "sign-in-card",
            format!("/staff/sign-in-card?resident={}", ids[0]),
        ),
    ] {
        goto(c, &url(&p)).await;
        check_page(c, name, true, &mut problems).await;
    }
    goto(c, &url("/staff/residents")).await;
    fill(c, "name", "王秀英").await;
    fill(c, "phone", "138 0000 1234").await;
    click_to(c, "#register").await;
    assert!(c.find(Locator::Id("duplicate")).await.is_ok());
    check_page(c, "duplicate", true, &mut problems).await;
    goto(c, &url(&format!("/staff/residents/{}", ids[0]))).await;
    c.find(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_to(c, "#issue").await;
    check_page(c, "pin-slip", true, &mut problems).await;
    let after = app
        .earning
        .card_state(&admin, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.generation, card.generation + 1, "re-issued");
    assert!(
        !app.redemption
            .card_pin_matches(LEDGER, ids[0], &pins[0])
            .await
            .unwrap(),
        "the old card's PIN works no more"
    );
    assert_eq!(
        app.earning
            .search_residents(&admin, Default::default())
            .await
            .unwrap()
            .items
            .len(),
        4,
        "the warned registration in 长辈模式 was not confirmed"
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let _ = assert_accessible;
    browser.close().await;
}
