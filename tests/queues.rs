//! Staff's work lists (`src/earning/queues.rs`) and their API on both backends: service records,
//! corrections and rosters by state, oldest first and paged; rules with their versions; all
//! scoped to the communities the caller manages; bounded and refusing bad input; the batch
//! approval keeping recorder ≠ approver; a card number finding only the caller's residents.

mod common;

use aixin::app::App;
use aixin::auth::{new_token, Principal, Role};
use aixin::calendar::day_of;
use aixin::clock::Clock;
use aixin::earning::queues::ListQuery;
use aixin::earning::service::{
    NewOrgUnit, NewRecord, NewResident, NewRoster, RosterLine, RuleTerms,
};
use aixin::error::ErrorCode;
use aixin::http::router;
use aixin::ledger::Amount;
use aixin::model::{ExpiryPolicy, RuleMode};
use axum::body::Body;
use axum::http::{Method, Request};
use common::{Harness, T0};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

on_both_backends!(
    lists_are_scoped_paged_and_bounded,
    the_list_api_answers_pages
);

const LEDGER: &str = "test";

fn staff(scope: &str, n: u128) -> Principal {
    Principal {
        token_id: Uuid::from_u128(n),
        ledger_id: LEDGER.into(),
        role: Role::Staff,
        scope: Some(scope.into()),
        operator: None,
    }
}

struct World {
    app: App,
    admin: Principal,
    /// Residents of c1 (two), c2 (one, under the same street) and c9 (another street).
    c1: Vec<Uuid>,
    c2: Uuid,
    c9: Uuid,
}

async fn world(h: &Harness) -> World {
    h.clock.set(T0 + 40 * 86_400_000_000);
    let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone());
    let admin = Principal::operator(LEDGER, "test-admin");
    for (id, parent, community) in [
        ("s1", None, false),
        ("c1", Some("s1"), true),
        ("c2", Some("s1"), true),
        ("s9", None, false),
        ("c9", Some("s9"), true),
    ] {
        app.earning
            .create_org_unit(
                &admin,
                NewOrgUnit {
                    id: id.into(),
                    parent_id: parent.map(str::to_owned),
                    level: if community { "community" } else { "street" }.into(),
                    name_zh: format!("{id}社区"),
                    name_en: id.into(),
                    community: community.then_some(ExpiryPolicy::Never),
                },
            )
            .await
            .unwrap();
    }
    for community in ["c1", "c2", "c9"] {
        app.earning
            .set_rule(
                &admin,
                &format!("visit-{community}"),
                0,
                RuleTerms {
                    community_id: community.into(),
                    category: "visit".into(),
                    name_zh: "入户走访".into(),
                    name_en: "Home visits".into(),
                    mode: RuleMode::PerHour,
                    points: Amount::parse("10").unwrap(),
                    records_hours: true,
                    cap_day: Some(Amount::parse("40").unwrap()),
                    cap_month: None,
                    valid_from: day_of(T0),
                    valid_until: None,
                },
            )
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for (i, community) in ["c1", "c1", "c2", "c9"].iter().enumerate() {
        let (r, _) = app
            .earning
            .register_resident(
                &admin,
                &format!("resident-{i}"),
                NewResident {
                    name: format!("居民{i}"),
                    phone: format!("1380000000{i}"),
                    community_id: (*community).into(),
                },
            )
            .await
            .unwrap();
        ids.push(r.id);
    }
    World {
        app,
        admin,
        c1: vec![ids[0], ids[1]],
        c2: ids[2],
        c9: ids[3],
    }
}

async fn record(
    w: &World,
    by: &Principal,
    resident: Uuid,
    rule: &str,
    key: &str,
    h: &Harness,
) -> Uuid {
    h.clock.advance(1_000);
    let (r, _) = w
        .app
        .earning
        .submit_record(
            by,
            key,
            NewRecord {
                resident_id: resident,
                rule_id: rule.into(),
                service_date: day_of(h.clock.now_micros()),
                hours_minor: 200,
                note: String::new(),
            },
        )
        .await
        .unwrap();
    r.id
}

fn submitted() -> ListQuery {
    ListQuery {
        state: "submitted".into(),
        ..ListQuery::default()
    }
}

async fn lists_are_scoped_paged_and_bounded(h: Harness) {
    // Proves: each list holds what its caller manages and nothing else (a community's staff,
    // a street's staff over its communities, an administrator over all), oldest first across
    // pages; bad input is refused; the batch approval refuses the recorder's own records and
    // approves another's; card numbers find residents of the caller's communities only.
    let w = world(&h).await;
    let (a, b) = (staff("c1", 1), staff("c1", 2));
    let street = staff("s1", 3);
    let other = staff("c9", 4);
    let r1 = record(&w, &a, w.c1[0], "visit-c1", "k1", &h).await;
    let r2 = record(&w, &a, w.c1[1], "visit-c1", "k2", &h).await;
    let r3 = record(&w, &street, w.c2, "visit-c2", "k3", &h).await;
    let r9 = record(&w, &other, w.c9, "visit-c9", "k9", &h).await;
    let q = &w.app.earning;

    let ids = |page: &aixin::earning::queues::Page<aixin::earning::queues::QueuedRecord>| {
        page.items.iter().map(|x| x.record.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&q.records_in_state(&b, &submitted()).await.unwrap()),
        vec![r1, r2]
    );
    assert_eq!(
        ids(&q.records_in_state(&street, &submitted()).await.unwrap()),
        vec![r1, r2, r3]
    );
    assert_eq!(
        ids(&q.records_in_state(&other, &submitted()).await.unwrap()),
        vec![r9]
    );
    assert_eq!(
        ids(&q.records_in_state(&w.admin, &submitted()).await.unwrap()),
        vec![r1, r2, r3, r9]
    );
    // One community of the street's; a community someone does not manage is refused.
    let only_c2 = ListQuery {
        community: Some("c2".into()),
        ..submitted()
    };
    assert_eq!(
        ids(&q.records_in_state(&street, &only_c2).await.unwrap()),
        vec![r3]
    );
    assert_eq!(
        q.records_in_state(&b, &only_c2).await.unwrap_err().code,
        ErrorCode::Forbidden
    );

    // Pages of one, in order, ending without a cursor.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = q
            .records_in_state(
                &street,
                &ListQuery {
                    limit: Some(1),
                    after: after.clone(),
                    ..submitted()
                },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 1);
        seen.extend(ids(&page));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, vec![r1, r2, r3]);

    // Bad input changes nothing and says what is wrong.
    for bad in [
        ListQuery {
            state: "pending".into(),
            ..ListQuery::default()
        },
        ListQuery {
            limit: Some(0),
            ..submitted()
        },
        ListQuery {
            limit: Some(201),
            ..submitted()
        },
        ListQuery {
            after: Some("not-a-cursor".into()),
            ..submitted()
        },
    ] {
        assert_eq!(
            q.records_in_state(&b, &bad).await.unwrap_err().code,
            ErrorCode::InvalidQuery
        );
    }
    let resident = Principal {
        role: Role::Resident,
        scope: Some(w.c1[0].to_string()),
        ..b.clone()
    };
    assert_eq!(
        q.records_in_state(&resident, &submitted())
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );

    // The batch: the recorder's own are refused (and stay submitted), another's go through.
    let mine = q.approve_records(&a, &[r1, r2]).await.unwrap();
    assert!(mine.approved.is_empty());
    assert_eq!(mine.refused.len(), 2);
    assert!(mine
        .refused
        .iter()
        .all(|(_, e)| e.code == ErrorCode::ApproverIsSubmitter));
    assert_eq!(
        q.approve_records(&b, &[]).await.unwrap_err().code,
        ErrorCode::InvalidBody
    );
    let too_many: Vec<Uuid> = (0..101).map(|i| Uuid::from_u128(i + 100)).collect();
    assert_eq!(
        q.approve_records(&b, &too_many).await.unwrap_err().code,
        ErrorCode::InvalidBody
    );
    let theirs = q.approve_records(&b, &[r1, r2, r9]).await.unwrap();
    assert_eq!(theirs.approved.len(), 2);
    assert_eq!(theirs.refused.len(), 1, "c9's record is not b's to approve");
    assert_eq!(theirs.refused[0].0, r9);
    let approved = ListQuery {
        state: "approved".into(),
        ..ListQuery::default()
    };
    assert_eq!(
        ids(&q.records_in_state(&b, &approved).await.unwrap()),
        vec![r1, r2]
    );
    assert_eq!(
        ids(&q.records_in_state(&b, &submitted()).await.unwrap()),
        Vec::<Uuid>::new()
    );

    // Corrections by state, scoped the same way.
    let (c, _) = q
        .request_correction(&a, "fix-1", r1, "时长记错了")
        .await
        .unwrap();
    let open = ListQuery {
        state: "open".into(),
        ..ListQuery::default()
    };
    let page = q.corrections_in_state(&b, &open).await.unwrap();
    assert_eq!(
        page.items.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![c.id]
    );
    assert!(q
        .corrections_in_state(&other, &open)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        q.corrections_in_state(&b, &submitted())
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidQuery
    );
    // The correction's record is found from its entry.
    let entry = q.record(&b, r1).await.unwrap().0.entry_id.unwrap();
    let (found, _, _) = q.record_of_entry(&b, entry).await.unwrap();
    assert_eq!(found.id, r1);
    assert_eq!(
        q.record_of_entry(&other, entry).await.unwrap_err().code,
        ErrorCode::UnknownRecord
    );

    // Rules: each caller's communities' rules, with their versions.
    let rules = |p: &Principal| {
        let p = p.clone();
        let q = q.clone();
        async move {
            q.rules_list(&p, None, None, None)
                .await
                .unwrap()
                .items
                .iter()
                .map(|v| v[0].rule_id.clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(rules(&b).await, vec!["visit-c1"]);
    assert_eq!(rules(&street).await, vec!["visit-c1", "visit-c2"]);
    let first = q.rules_list(&w.admin, None, None, Some(1)).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let rest = q
        .rules_list(&w.admin, None, first.next.as_deref(), Some(10))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next.is_none());

    // The communities each caller may choose from.
    let names =
        |units: Vec<aixin::model::OrgUnit>| units.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(names(q.communities_managed(&b).await.unwrap()), vec!["c1"]);
    assert_eq!(
        names(q.communities_managed(&street).await.unwrap()),
        vec!["c1", "c2"]
    );
    assert_eq!(
        names(q.communities_managed(&w.admin).await.unwrap()),
        vec!["c1", "c2", "c9"]
    );
    assert_eq!(
        q.communities_managed(&resident).await.unwrap_err().code,
        ErrorCode::Forbidden
    );

    // Rosters: the preview names the bad line and records nothing; the list by state.
    let pseudonym = q.resident(&b, w.c1[0]).await.unwrap().pseudonym;
    let new = NewRoster {
        community_id: "c1".into(),
        rule_id: "visit-c1".into(),
        service_date: day_of(h.clock.now_micros()).previous_day().unwrap(),
        title: "清扫楼道".into(),
        lines: vec![
            RosterLine {
                resident: pseudonym.clone(),
                hours: "2".into(),
            },
            RosterLine {
                resident: "AX-NOBODY0".into(),
                hours: "2".into(),
            },
            RosterLine {
                resident: w.c1[1].to_string(),
                hours: "25".into(),
            },
        ],
    };
    let (_, problems) = q.check_roster(&b, &new).await.unwrap();
    let named: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.code)).collect();
    assert_eq!(named, vec![(2, "unknown_resident"), (3, "hours_invalid")]);
    // A day to come, or a rule of another community, is refused before any line is looked at.
    let tomorrow = day_of(h.clock.now_micros()).next_day().unwrap();
    let future = NewRoster {
        service_date: tomorrow,
        ..new.clone()
    };
    assert_eq!(
        q.check_roster(&b, &future).await.unwrap_err().code,
        ErrorCode::DateInvalid
    );
    let foreign = NewRoster {
        rule_id: "visit-c2".into(),
        ..new.clone()
    };
    assert_eq!(
        q.check_roster(&b, &foreign).await.unwrap_err().code,
        ErrorCode::UnknownRule
    );
    let waiting = ListQuery {
        state: "submitted".into(),
        ..ListQuery::default()
    };
    assert!(q
        .rosters_in_state(&b, &waiting)
        .await
        .unwrap()
        .items
        .is_empty());
    let good = NewRoster {
        lines: vec![RosterLine {
            resident: pseudonym,
            hours: "2".into(),
        }],
        ..new
    };
    let (roster, _, _) = q.create_roster(&a, "roster-1", good).await.unwrap();
    let listed = q.rosters_in_state(&b, &waiting).await.unwrap();
    assert_eq!(
        listed.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![roster.id]
    );
    assert!(q
        .rosters_in_state(&other, &waiting)
        .await
        .unwrap()
        .items
        .is_empty());
    // A roster's lines are not in the standalone queue (they are approved with the roster).
    let standalone = ListQuery {
        standalone: true,
        ..submitted()
    };
    assert!(q
        .records_in_state(&b, &standalone)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        q.records_in_state(&b, &submitted())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // A card number finds its resident for the staff of that community only.
    let card = w
        .app
        .redemption
        .issue_credential(&w.admin, "card-1", w.c1[0])
        .await
        .unwrap();
    let cards = w.app.redemption.store.as_ref();
    let found = q.resident_by_card(&b, cards, &card.number).await.unwrap();
    assert_eq!(found.id, w.c1[0]);
    for (who, number) in [
        (&other, card.number.as_str()),
        (&b, "999999999"),
        (&b, "12ab"),
    ] {
        assert_eq!(
            q.resident_by_card(who, cards, number)
                .await
                .unwrap_err()
                .code,
            ErrorCode::UnknownResident,
            "{number}"
        );
    }
}

async fn call(
    app: &axum::Router,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            request = request.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn the_list_api_answers_pages(h: Harness) {
    // Proves the HTTP edge of the lists: pages with `next`, problem codes for bad queries, a
    // caller outside the community seeing nothing, the batch approval's answer.
    let w = world(&h).await;
    let a = staff("c1", 1);
    let r1 = record(&w, &a, w.c1[0], "visit-c1", "k1", &h).await;
    let r2 = record(&w, &a, w.c1[1], "visit-c1", "k2", &h).await;
    let mut tokens = Vec::new();
    for (role, scope) in [(Role::Staff, "c1"), (Role::Staff, "c9")] {
        let (secret, token) = new_token(
            h.entropy.as_ref(),
            h.clock.now_micros(),
            LEDGER,
            role,
            Some(scope.into()),
            format!("staff-{scope}"),
            None,
        );
        h.store.insert_token(&token).await.unwrap();
        tokens.push(secret);
    }
    let api = router(w.app.clone());
    let (status, page) = call(
        &api,
        &tokens[0],
        Method::GET,
        "/v1/service-records?state=submitted&limit=1",
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["id"], json!(r1.to_string()));
    assert_eq!(page["items"][0]["community_id"], json!("c1"));
    assert_eq!(page["items"][0]["hours"], json!("2.00"));
    let next = page["next"].as_str().unwrap().to_owned();
    let (_, page) = call(
        &api,
        &tokens[0],
        Method::GET,
        &format!("/v1/service-records?state=submitted&after={next}"),
        None,
    )
    .await;
    assert_eq!(page["items"][0]["id"], json!(r2.to_string()));
    assert!(page["next"].is_null());
    let (_, page) = call(
        &api,
        &tokens[1],
        Method::GET,
        "/v1/service-records?state=submitted",
        None,
    )
    .await;
    assert_eq!(page["items"], json!([]));
    for bad in [
        "/v1/service-records?state=nope",
        "/v1/service-records?state=submitted&limit=500",
        "/v1/service-records?state=submitted&after=zzz",
        "/v1/service-records",
        "/v1/corrections?state=submitted",
    ] {
        let (status, problem) = call(&api, &tokens[0], Method::GET, bad, None).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let (status, _) = call(
        &api,
        &tokens[1],
        Method::GET,
        "/v1/service-records?state=submitted&community=c1",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, answer) = call(
        &api,
        &tokens[0],
        Method::POST,
        "/v1/service-records/approve-batch",
        Some(json!({"ids": [r1, r2]})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["approved"].as_array().unwrap().len(), 2, "{answer}");
    let (status, rules) = call(&api, &tokens[0], Method::GET, "/v1/rules", None).await;
    assert_eq!(status, 200);
    assert_eq!(rules["items"][0]["rule_id"], json!("visit-c1"));
    assert_eq!(rules["items"][0]["versions"][0]["points"], json!("10.00"));
    assert_eq!(rules["items"].as_array().unwrap().len(), 1);
    let (status, corrections) = call(
        &api,
        &tokens[0],
        Method::GET,
        "/v1/corrections?state=open",
        None,
    )
    .await;
    assert_eq!((status, corrections["items"].clone()), (200, json!([])));
    let (status, rosters) = call(
        &api,
        &tokens[0],
        Method::GET,
        "/v1/rosters?state=submitted",
        None,
    )
    .await;
    assert_eq!((status, rosters["items"].clone()), (200, json!([])));
}
