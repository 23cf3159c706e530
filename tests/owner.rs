//! What the shop owner's pages stand on (`src/redeem/owner.rs`, the owner endpoints of
//! `src/http/redeem.rs`, the shop owner user of `src/session.rs`), on both backends: the shops
//! a caller may see, paged and scoped; removing a clerk ends their token, sessions and PIN at
//! once; receipts by day and settlements, paged; an owner signs in with a password; the till
//! names the presented resident (masked, with points) only once the code or card was accepted;
//! bad input is refused and changes nothing.

mod common;

use std::collections::BTreeMap;

use aixin::app::App;
use aixin::auth::{new_token, Principal, Role};
use aixin::clock::Clock;
use aixin::earning::service::NewOrgUnit;
use aixin::earning::service::NewResident;
use aixin::error::ErrorCode;
use aixin::keys::{KeyRing, SharedKeys};
use aixin::ledger::{Amount, EntryKind, Unit};
use aixin::model::{ExpiryPolicy, Resident};
use aixin::redeem::service::{IssuedCredential, NewItem, NewShop, Shown, StaffRole};
use aixin::session::NewSession;
use aixin::store::redeem::{Shop, ShopStaff};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{transfer, Harness, T0};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

on_both_backends!(
    removing_a_clerk_ends_their_token_sessions_and_pin_at_once,
    shop_lists_are_scoped_and_paged,
    receipts_by_day_and_settlements_are_paged,
    a_shop_owner_user_signs_in_with_a_password,
    the_till_names_the_presented_resident_only_after_acceptance,
    the_owner_api_answers_scoped_and_refuses_bad_input,
);

const LEDGER: &str = "test";
const PIN: &str = "482915";
const PASSWORD: &str = "correct horse battery staple";
const CLIENT: &str = "198.51.100.7";
const DAY: i64 = 86_400_000_000;

struct World {
    h: Harness,
    app: App,
    admin: Principal,
    staff: Principal,
    staff2: Principal,
    shop: Shop,
    owner: (ShopStaff, String),
    clerk: (ShopStaff, String),
    resident: Resident,
    card: IssuedCredential,
    stranger_card: IssuedCredential,
}

async fn token_principal(h: &Harness, role: Role, scope: Option<&str>) -> (Principal, String) {
    let (secret, record) = new_token(
        h.entropy.as_ref(),
        h.clock.now_micros(),
        LEDGER,
        role,
        scope.map(str::to_owned),
        String::new(),
        None,
    );
    h.store.insert_token(&record).await.unwrap();
    let p = Principal {
        token_id: record.id,
        ledger_id: LEDGER.into(),
        role,
        scope: scope.map(str::to_owned),
        operator: None,
    };
    (p, secret)
}

fn shop_principal(member: &ShopStaff) -> Principal {
    Principal {
        token_id: member.token_id,
        ledger_id: LEDGER.into(),
        role: Role::Shop,
        scope: Some(member.shop_id.to_string()),
        operator: None,
    }
}

async fn world(h: Harness) -> World {
    h.clock.set(T0 + 3 * 3_600_000_000);
    let keys = SharedKeys::fixed(KeyRing::generate(h.entropy.as_ref(), T0));
    let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone()).with_keys(keys);
    let admin = Principal::operator(LEDGER, "test-admin");
    let mut issuance = BTreeMap::new();
    for id in ["c1", "c2"] {
        let (unit, _) = app
            .earning
            .create_org_unit(
                &admin,
                NewOrgUnit {
                    id: id.into(),
                    parent_id: None,
                    level: "community".into(),
                    name_zh: format!("{id}社区"),
                    name_en: id.into(),
                    community: Some(ExpiryPolicy::Never),
                },
            )
            .await
            .unwrap();
        issuance.insert(id, unit.community.unwrap().issuance_account);
    }
    let (staff, _) = token_principal(&h, Role::Staff, Some("c1")).await;
    let (staff2, _) = token_principal(&h, Role::Staff, Some("c2")).await;
    let (shop, _) = app
        .redemption
        .create_shop(
            &staff,
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
            &staff,
            shop.id,
            "RICE",
            NewItem {
                name_zh: "东北大米".into(),
                name_en: "Rice".into(),
                unit: "袋".into(),
                price: Amount::parse("10").unwrap(),
                track_stock: false,
                cap_day: None,
                cap_month: None,
                active: true,
            },
        )
        .await
        .unwrap();
    let mut members = Vec::new();
    for (key, name, role) in [
        ("owner", "王店主", StaffRole::Owner),
        ("clerk", "小李", StaffRole::Clerk),
    ] {
        let (member, secret, _) = app
            .redemption
            .add_shop_staff_as(&staff, key, shop.id, name, role)
            .await
            .unwrap();
        members.push((member, secret));
    }
    let mut residents = Vec::new();
    for (community, phone) in [("c1", "138 0000 1234"), ("c2", "139 0000 9999")] {
        let (resident, _) = app
            .earning
            .register_resident(
                &admin,
                &format!("resident-{community}"),
                NewResident {
                    name: "王秀英".into(),
                    phone: phone.into(),
                    community_id: community.into(),
                },
            )
            .await
            .unwrap();
        app.journal
            .post(
                &admin,
                format!("earn-{community}"),
                transfer(
                    EntryKind::Earn,
                    issuance[community],
                    resident.account_id,
                    Unit::Points,
                    "100",
                ),
            )
            .await
            .unwrap();
        residents.push(resident);
    }
    let card = app
        .redemption
        .issue_credential(&admin, "card-1", residents[0].id)
        .await
        .unwrap();
    let stranger_card = app
        .redemption
        .issue_credential(&admin, "card-2", residents[1].id)
        .await
        .unwrap();
    let clerk = members.pop().unwrap();
    let owner = members.pop().unwrap();
    let resident = residents.remove(0);
    World {
        h,
        app,
        admin,
        staff,
        staff2,
        shop,
        owner,
        clerk,
        resident,
        card,
        stranger_card,
    }
}

impl World {
    /// A till paired with the shop (its secret), with PINs for the owner and the clerk.
    async fn till(&self) -> String {
        let link = self
            .app
            .sessions
            .pairing_link(&self.staff, self.shop.id, "收银台 1")
            .await
            .unwrap();
        let paired = self
            .app
            .sessions
            .redeem_pairing_link(LEDGER, &link.secret, None)
            .await
            .unwrap();
        for (member, _) in [&self.owner, &self.clerk] {
            self.app
                .sessions
                .set_clerk_pin(&self.staff, member.token_id, PIN)
                .await
                .unwrap();
        }
        paired.secret
    }

    async fn clerk_session(&self, till: &str, name: &str) -> NewSession {
        self.app
            .sessions
            .sign_in_clerk(LEDGER, till, name, PIN, CLIENT)
            .await
            .unwrap()
    }

    async fn principal(&self, cookie: &str) -> Option<Principal> {
        self.app
            .sessions
            .principal_of_session(cookie)
            .await
            .unwrap()
            .map(|s| s.principal)
    }

    fn card(&self, card: &IssuedCredential) -> Shown {
        Shown::Card {
            number: card.number.clone(),
            pin: card.card_pin.clone(),
        }
    }

    fn owner_p(&self) -> Principal {
        shop_principal(&self.owner.0)
    }

    fn clerk_p(&self) -> Principal {
        shop_principal(&self.clerk.0)
    }
}

async fn removing_a_clerk_ends_their_token_sessions_and_pin_at_once(h: Harness) {
    // Proves the TRUST row "removing a clerk takes effect at once" through the owner's own
    // removal: the clerk's till session ends on its next request, their API token with it, their
    // PIN is deleted (the till no longer offers them) and they cannot sign in again.
    let w = world(h).await;
    let till = w.till().await;
    let clerk = w.clerk_session(&till, "小李").await;
    let owner = w.clerk_session(&till, "王店主").await;
    assert!(w.principal(&clerk.cookie).await.is_some());
    let bearer = format!("Bearer {}", w.clerk.1);
    assert!(w.app.principal_of_bearer(Some(&bearer)).await.is_ok());
    let listed = w
        .app
        .redemption
        .shop_staff_list(&w.owner_p(), w.shop.id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|m| m.has_pin && m.removed_at_micros.is_none()));

    // Who may not remove: the clerk (not an owner), staff of another community, oneself.
    let refused = w
        .app
        .redemption
        .remove_shop_staff(&w.clerk_p(), w.shop.id, w.owner.0.token_id)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let refused = w
        .app
        .redemption
        .remove_shop_staff(&w.staff2, w.shop.id, w.clerk.0.token_id)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotFound);
    let refused = w
        .app
        .redemption
        .remove_shop_staff(&w.owner_p(), w.shop.id, w.owner.0.token_id)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let refused = w
        .app
        .redemption
        .remove_shop_staff(&w.owner_p(), w.shop.id, Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotFound);
    assert!(
        w.principal(&clerk.cookie).await.is_some(),
        "nothing changed"
    );

    let removed = w
        .app
        .redemption
        .remove_shop_staff(&w.owner_p(), w.shop.id, w.clerk.0.token_id)
        .await
        .unwrap();
    assert_eq!(removed.staff.name, "小李");
    assert!(removed.removed_at_micros.is_some());
    assert!(!removed.has_pin, "the PIN is deleted");
    assert!(
        w.principal(&clerk.cookie).await.is_none(),
        "the clerk's next request is signed out"
    );
    assert_eq!(
        w.app
            .principal_of_bearer(Some(&bearer))
            .await
            .unwrap_err()
            .code,
        ErrorCode::Unauthorized
    );
    assert_eq!(
        w.app.sessions.till_clerks(LEDGER, &till).await.unwrap(),
        vec!["王店主".to_owned()]
    );
    let again = w
        .app
        .sessions
        .sign_in_clerk(LEDGER, &till, "小李", PIN, CLIENT)
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::SignInFailed);
    assert!(
        w.principal(&owner.cookie).await.is_some(),
        "the owner works on"
    );
    // No PIN for a removed member; removing again answers them as removed.
    let refused = w
        .app
        .sessions
        .set_clerk_pin(&w.owner_p(), w.clerk.0.token_id, PIN)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotFound);
    let again = w
        .app
        .redemption
        .remove_shop_staff(&w.staff, w.shop.id, w.clerk.0.token_id)
        .await
        .unwrap();
    assert_eq!(again.removed_at_micros, removed.removed_at_micros);
    // The owner adds a clerk (and a cashier), never another owner.
    let (new, _, created) = w
        .app
        .redemption
        .add_shop_staff_as(&w.owner_p(), "clerk-2", w.shop.id, "小王", StaffRole::Clerk)
        .await
        .unwrap();
    assert!(created);
    w.app
        .sessions
        .set_clerk_pin(&w.owner_p(), new.token_id, PIN)
        .await
        .unwrap();
    w.clerk_session(&till, "小王").await;
    let refused = w
        .app
        .redemption
        .add_shop_staff_as(&w.owner_p(), "owner-2", w.shop.id, "大王", StaffRole::Owner)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let refused = w
        .app
        .redemption
        .add_shop_staff_as(&w.clerk_p(), "clerk-3", w.shop.id, "小赵", StaffRole::Clerk)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let names: Vec<String> = w
        .app
        .redemption
        .shop_staff_list(&w.staff, w.shop.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.staff.name)
        .collect();
    assert_eq!(names, vec!["小李", "小王", "王店主"]);
}

async fn shop_lists_are_scoped_and_paged(h: Harness) {
    let w = world(h).await;
    let app = &w.app;
    let new = |name: &str, community: &str, serves: &[&str]| NewShop {
        name_zh: name.into(),
        name_en: String::new(),
        community_id: community.into(),
        serves: serves.iter().map(|s| s.to_string()).collect(),
        refund_window_days: None,
    };
    let (c2_shop, _) = app
        .redemption
        .create_shop(&w.staff2, "s2", new("二社区店", "c2", &[]))
        .await
        .unwrap();
    // Serves c1's residents too: c1's staff see it, but do not run it.
    let (shared, _) = app
        .redemption
        .create_shop(&w.admin, "s3", new("两社区店", "c2", &["c1"]))
        .await
        .unwrap();

    // An administrator pages through all three.
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..5 {
        let page = app
            .redemption
            .shops(&w.admin, after, Some(1))
            .await
            .unwrap();
        assert!(page.shops.len() <= 1);
        seen.extend(page.shops.iter().map(|l| (l.shop.id, l.runs)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut all = vec![w.shop.id, c2_shop.id, shared.id];
    all.sort();
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        all,
        "by id, each once"
    );
    assert!(seen.iter().all(|s| s.1));

    let staff1 = app.redemption.shops(&w.staff, None, None).await.unwrap();
    let mut mine: Vec<(Uuid, bool)> = staff1.shops.iter().map(|l| (l.shop.id, l.runs)).collect();
    mine.sort();
    let mut expected = vec![(w.shop.id, true), (shared.id, false)];
    expected.sort();
    assert_eq!(mine, expected);
    assert!(staff1.next.is_none());
    let staff2 = app.redemption.shops(&w.staff2, None, None).await.unwrap();
    assert_eq!(staff2.shops.len(), 2);
    assert!(staff2.shops.iter().all(|l| l.runs));

    let own = app
        .redemption
        .shops(&w.owner_p(), None, None)
        .await
        .unwrap();
    assert_eq!(own.shops.len(), 1);
    assert_eq!(own.shops[0].shop.id, w.shop.id);
    let (resident, _) =
        token_principal(&w.h, Role::Resident, Some(&w.resident.id.to_string())).await;
    assert_eq!(
        app.redemption
            .shops(&resident, None, None)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    for limit in [0, -1, 201] {
        let refused = app
            .redemption
            .shops(&w.admin, None, Some(limit))
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidQuery, "limit {limit}");
    }
    // Another community's staff see neither the shop's staff nor its devices.
    assert_eq!(
        app.redemption
            .shop_staff_list(&w.staff2, w.shop.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        app.sessions
            .devices(&w.staff2, w.shop.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        app.redemption
            .shop_staff_list(&w.clerk_p(), w.shop.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden,
        "a clerk is not the owner"
    );
}

async fn receipts_by_day_and_settlements_are_paged(h: Harness) {
    let w = world(h).await;
    let app = &w.app;
    let basket = vec![("RICE".to_owned(), 1u32)];
    let mut receipts = Vec::new();
    for key in ["r1", "r2", "r3"] {
        let x = app
            .redemption
            .redeem(&w.clerk_p(), key, w.card(&w.card), &basket)
            .await
            .unwrap();
        receipts.push(x.signed.receipt.id);
    }
    let today = aixin::calendar::day_of(w.h.clock.now_micros());
    let (page1, next) = app
        .redemption
        .receipts_of_day(&w.owner_p(), w.shop.id, today, None, Some(2))
        .await
        .unwrap();
    assert_eq!(
        page1.iter().map(|r| r.receipt_id).collect::<Vec<_>>(),
        receipts[..2]
    );
    let (page2, next2) = app
        .redemption
        .receipts_of_day(&w.owner_p(), w.shop.id, today, next, Some(2))
        .await
        .unwrap();
    assert_eq!(
        page2.iter().map(|r| r.receipt_id).collect::<Vec<_>>(),
        receipts[2..]
    );
    assert!(next2.is_none());
    assert!(page1.iter().all(|r| r.points_minor == 1000));
    let other_day = today.previous_day().unwrap();
    let (none, _) = app
        .redemption
        .receipts_of_day(&w.staff, w.shop.id, other_day, None, None)
        .await
        .unwrap();
    assert!(none.is_empty());
    for p in [&w.staff2] {
        assert_eq!(
            app.redemption
                .receipts_of_day(p, w.shop.id, today, None, None)
                .await
                .unwrap_err()
                .code,
            ErrorCode::NotFound
        );
    }
    assert_eq!(
        app.redemption
            .receipts_of_day(&w.owner_p(), w.shop.id, today, None, Some(501))
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidQuery
    );

    // Settled the next day (by the rule as it is today: a period that has ended).
    let (none, next) = app
        .redemption
        .settlements(&w.owner_p(), w.shop.id, None, None)
        .await
        .unwrap();
    assert!(none.is_empty() && next.is_none());
    w.h.clock.set(w.h.clock.now_micros() + DAY);
    let (statement, _) = app
        .redemption
        .settle(&w.staff, "settle-1", w.shop.id, today, today)
        .await
        .unwrap();
    let (rows, next) = app
        .redemption
        .settlements(&w.owner_p(), w.shop.id, None, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(next.is_none());
    assert_eq!(rows[0].points_minor, 3000);
    assert_eq!(rows[0].from, aixin::calendar::format_date(today));
    assert_eq!(rows[0].to, aixin::calendar::format_date(today));
    assert_eq!(Some(rows[0].entry_id), statement.entry_id);
    assert_eq!(
        app.redemption
            .settlements(&w.staff2, w.shop.id, None, None)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
}

async fn a_shop_owner_user_signs_in_with_a_password(h: Harness) {
    let w = world(h).await;
    let app = &w.app;
    let shop = w.shop.id.to_string();
    // Bad input: no shop, an unknown shop, not an admin.
    for scope in [None, Some("nonsense"), Some(&*Uuid::new_v4().to_string())] {
        let refused = app
            .sessions
            .create_user(&w.admin, Role::Shop, scope, "店主甲")
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidBody, "{scope:?}");
    }
    let refused = app
        .sessions
        .create_user(&w.staff, Role::Shop, Some(&shop), "店主甲")
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert!(app.sessions.users(&w.admin).await.unwrap().is_empty());

    let (user, link) = app
        .sessions
        .create_user(&w.admin, Role::Shop, Some(&shop), "店主甲")
        .await
        .unwrap();
    assert_eq!(user.role, Role::Shop);
    app.sessions
        .set_password(LEDGER, &link.secret, PASSWORD)
        .await
        .unwrap();
    let session = app
        .sessions
        .sign_in_password(LEDGER, "店主甲", PASSWORD, CLIENT)
        .await
        .unwrap();
    let p = session.signed_in.principal.clone();
    assert_eq!(p.role, Role::Shop);
    assert_eq!(p.scope.as_deref(), Some(shop.as_str()));
    assert_eq!(session.signed_in.name, "店主甲");
    assert!(app.redemption.is_owner(&p, w.shop.id).await.unwrap());
    // The owner pages' services answer them; so does the till.
    assert_eq!(
        app.redemption
            .shop_staff_list(&p, w.shop.id)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(app.redemption.till(&p).await.unwrap().0.id, w.shop.id);
    let x = app
        .redemption
        .redeem(&p, "by-owner", w.card(&w.card), &[("RICE".to_owned(), 1)])
        .await
        .unwrap();
    assert_eq!(x.signed.receipt.total_minor, 1000);
    // Disabling the user ends the session.
    app.sessions.disable_user(&w.admin, user.id).await.unwrap();
    assert!(w.principal(&session.cookie).await.is_none());
}

async fn the_till_names_the_presented_resident_only_after_acceptance(h: Harness) {
    let w = world(h).await;
    let app = &w.app;
    let clerk = w.clerk_p();
    // 11 bags at 10 points: more than the resident's 100 points. The card was accepted, so the
    // clerk learns the masked name and the points.
    let refused = app
        .redemption
        .redeem_at_till(&clerk, "t1", w.card(&w.card), &[("RICE".to_owned(), 11)])
        .await
        .unwrap_err();
    assert_eq!(refused.error.code, ErrorCode::InsufficientBalance);
    let presented = refused.presented.expect("the resident is named");
    assert_eq!(presented.masked_name, "王*英");
    assert_eq!(presented.points_minor, 10_000);
    // A wrong PIN, an unknown number, another community's resident: nobody is named.
    let wrong_pin = Shown::Card {
        number: w.card.number.clone(),
        pin: if w.card.card_pin == "000000" {
            "000001".into()
        } else {
            "000000".into()
        },
    };
    let refused = app
        .redemption
        .redeem_at_till(&clerk, "t2", wrong_pin, &[("RICE".to_owned(), 11)])
        .await
        .unwrap_err();
    assert_eq!(refused.error.code, ErrorCode::RedemptionCodeInvalid);
    assert!(refused.presented.is_none());
    let unknown = Shown::Card {
        number: if w.card.number == "000000017" {
            "000000018".into()
        } else {
            "000000017".into()
        },
        pin: "123457".into(),
    };
    let refused = app
        .redemption
        .redeem_at_till(&clerk, "t3", unknown, &[("RICE".to_owned(), 11)])
        .await
        .unwrap_err();
    assert!(refused.presented.is_none(), "{:?}", refused.error.code);
    let refused = app
        .redemption
        .redeem_at_till(
            &clerk,
            "t4",
            w.card(&w.stranger_card),
            &[("RICE".to_owned(), 1)],
        )
        .await
        .unwrap_err();
    assert_eq!(refused.error.code, ErrorCode::ShopNotServing);
    assert!(refused.presented.is_none());
    // An item not in the catalogue: refused after the card, so named; the balance unchanged.
    let refused = app
        .redemption
        .redeem_at_till(&clerk, "t5", w.card(&w.card), &[("NOPE".to_owned(), 1)])
        .await
        .unwrap_err();
    assert_eq!(refused.error.code, ErrorCode::UnknownItem);
    assert_eq!(refused.presented.map(|p| p.points_minor), Some(10_000));
    // The sale goes through; the receipt carries the masked name and the balance after.
    let x = app
        .redemption
        .redeem_at_till(&clerk, "t6", w.card(&w.card), &[("RICE".to_owned(), 2)])
        .await
        .unwrap();
    assert_eq!(x.signed.receipt.balance_after_minor, 8_000);
    let name = app
        .redemption
        .masked_resident_name(&clerk, x.signed.receipt.id)
        .await
        .unwrap();
    assert_eq!(name, "王*英");
}

struct Reply {
    status: StatusCode,
    body: Value,
}

async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let request = match body {
        Some(b) => {
            request = request.header("content-type", "application/json");
            request.body(Body::from(b.to_owned()))
        }
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn the_owner_api_answers_scoped_and_refuses_bad_input(h: Harness) {
    let w = world(h).await;
    let router = aixin::http::router(w.app.clone());
    let (_, staff) = token_principal(&w.h, Role::Staff, Some("c1")).await;
    let (_, staff2) = token_principal(&w.h, Role::Staff, Some("c2")).await;
    let owner = &w.owner.1;
    let shop = w.shop.id;

    let r = send(&router, Method::GET, "/v1/shops", owner, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["shops"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["shops"][0]["id"], shop.to_string());
    assert_eq!(r.body["shops"][0]["runs"], true);
    let r = send(&router, Method::GET, "/v1/shops", &staff2, None).await;
    assert_eq!(r.body["shops"].as_array().unwrap().len(), 0);
    for bad in [
        "/v1/shops?limit=0",
        "/v1/shops?after=nope",
        "/v1/shops?limit=x",
    ] {
        let r = send(&router, Method::GET, bad, owner, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["code"], "invalid_query", "{bad}");
    }

    let staff_path = format!("/v1/shops/{shop}/staff");
    let r = send(&router, Method::GET, &staff_path, owner, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = send(&router, Method::GET, &staff_path, &staff2, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // PIN: a bad one changes nothing; a good one lets the clerk in at a paired till.
    let clerk_id = w.clerk.0.token_id;
    let pin_path = format!("/v1/shops/{shop}/staff/{clerk_id}/pin");
    let r = send(
        &router,
        Method::PUT,
        &pin_path,
        owner,
        Some(r#"{"pin":"123456"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["code"], "pin_invalid");
    let r = send(
        &router,
        Method::PUT,
        &pin_path,
        owner,
        Some(r#"{"pin":"482915"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Devices: a pairing link, the device, unpairing it.
    let r = send(
        &router,
        Method::POST,
        &format!("/v1/shops/{shop}/devices/pairing-link"),
        owner,
        Some(r#"{"label":"收银台 2"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let path = r.body["path"].as_str().unwrap().to_owned();
    let secret = path.strip_prefix("/till/pair/").unwrap();
    let paired = w
        .app
        .sessions
        .redeem_pairing_link(LEDGER, secret, None)
        .await
        .unwrap();
    let clerk = w.clerk_session(&paired.secret, "小李").await;
    let r = send(
        &router,
        Method::GET,
        &format!("/v1/shops/{shop}/devices"),
        owner,
        None,
    )
    .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["label"], "收银台 2");

    // Removal through the API ends the clerk's session at once.
    let r = send(
        &router,
        Method::DELETE,
        &format!("/v1/shops/{shop}/staff/{clerk_id}"),
        &staff2,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(w.principal(&clerk.cookie).await.is_some());
    let r = send(
        &router,
        Method::DELETE,
        &format!("/v1/shops/{shop}/staff/{clerk_id}"),
        owner,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["removed_at"].is_string());
    assert_eq!(r.body["has_pin"], false);
    assert!(w.principal(&clerk.cookie).await.is_none());
    let r = send(&router, Method::GET, "/v1/shops", &w.clerk.1, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let device = paired.device.id;
    let r = send(
        &router,
        Method::DELETE,
        &format!("/v1/shops/{shop}/devices/{}", Uuid::new_v4()),
        owner,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(
        &router,
        Method::DELETE,
        &format!("/v1/shops/{shop}/devices/{device}"),
        owner,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["unpaired_at"].is_string());

    // Receipts by day and settlements: bad input, then an answer.
    for bad in ["day=2026-13-01", "day=yesterday", "day=2026-01-01&limit=0"] {
        let r = send(
            &router,
            Method::GET,
            &format!("/v1/shops/{shop}/receipts?{bad}"),
            &staff,
            None,
        )
        .await;
        assert!(r.status.is_client_error(), "{bad}: {}", r.status);
    }
    let r = send(
        &router,
        Method::GET,
        &format!("/v1/shops/{shop}/receipts?day=2026-01-01"),
        &staff,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["receipts"].as_array().unwrap().len(), 0);
    let r = send(
        &router,
        Method::GET,
        &format!("/v1/shops/{shop}/settlements?limit=500"),
        &staff,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(
        &router,
        Method::GET,
        &format!("/v1/shops/{shop}/settlements"),
        &staff,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["settlements"].as_array().unwrap().len(), 0);
    let _ = &w.resident;
}
