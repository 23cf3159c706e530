//! The administrator's operations (`src/admin.rs`, users in `src/session.rs`) and their API
//! (`src/http/admin.rs`), on both backends: every one refused in the service to staff, auditors,
//! shops, cashiers and residents; a token's secret shown once and stored only as its SHA-256;
//! revoking a token ends its sessions at once; rotating the signing key keeps old receipts
//! verifying (revoking the old key then stops them); bad input changes nothing.

mod common;

use aixin::admin::{Holder, NewToken};
use aixin::app::App;
use aixin::auth::{hash_token, new_token, Principal, Role};
use aixin::earning::service::{NewOrgUnit, NewResident};
use aixin::error::ErrorCode;
use aixin::keys::{KeyRing, KeyStatus, SharedKeys};
use aixin::ledger::{Amount, EntryKind, Unit};
use aixin::model::ExpiryPolicy;
use aixin::redeem::service::{NewItem, NewShop, Shown};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{transfer, Harness, T0};
use http_body_util::BodyExt;
use tower::ServiceExt;

on_both_backends!(
    every_admin_operation_is_refused_to_everyone_else,
    a_token_is_shown_once_stored_hashed_and_revoking_it_ends_its_sessions,
    rotating_keeps_old_receipts_verifying_and_revoking_stops_them,
    bad_input_changes_nothing,
    staff_see_their_subtree_of_the_organisation,
    the_api_does_it_all_with_an_admin_token,
);

const LEDGER: &str = "test";
const PASSWORD: &str = "correct horse battery staple";

struct World {
    h: Harness,
    app: App,
    admin: Principal,
    key_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn token_principal(h: &Harness, role: Role, scope: Option<&str>) -> (Principal, String) {
    let (secret, record) = new_token(
        h.entropy.as_ref(),
        T0,
        LEDGER,
        role,
        scope.map(str::to_owned),
        format!("test {}", role.as_str()),
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

/// Two communities under a street, a resident of c1, and the app signing with a key file.
async fn world(h: Harness) -> World {
    h.clock.set(T0);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys.json");
    let (ring, _) = KeyRing::load_or_create(&key_file, h.entropy.as_ref(), T0).unwrap();
    let keys = SharedKeys::from_file(key_file.clone(), ring);
    let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone()).with_keys(keys);
    let admin = Principal::operator(LEDGER, "test-admin");
    for (id, parent, community) in [
        ("street", None, None),
        ("c1", Some("street"), Some(ExpiryPolicy::Never)),
        ("c1-grid", Some("c1"), None),
        ("c2", Some("street"), Some(ExpiryPolicy::Never)),
    ] {
        app.earning
            .create_org_unit(
                &admin,
                NewOrgUnit {
                    id: id.into(),
                    parent_id: parent.map(str::to_owned),
                    level: if community.is_some() {
                        "community"
                    } else {
                        "street"
                    }
                    .into(),
                    name_zh: format!("{id}单位"),
                    name_en: id.into(),
                    community,
                },
            )
            .await
            .unwrap();
    }
    World {
        h,
        app,
        admin,
        key_file,
        _dir: dir,
    }
}

/// Every token row, as (id, hash hex, role, label), and whether any text of the table holds
/// `secret`.
async fn token_table_holds(h: &Harness, secret: &str) -> bool {
    let rows: Vec<String> = match &h.raw {
        common::Raw::Sqlite(pool) => sqlx::query_scalar(
            "SELECT id || ' ' || hex(token_hash) || ' ' || role || ' ' || label || ' ' || coalesce(scope, '') FROM api_tokens",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        common::Raw::Postgres(pool) => sqlx::query_scalar(
            "SELECT id::text || ' ' || encode(token_hash, 'hex') || ' ' || role || ' ' || label || ' ' || coalesce(scope, '') FROM api_tokens",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    assert!(!rows.is_empty());
    let hex_secret = secret.to_ascii_lowercase();
    rows.iter().any(|r| {
        let r = r.to_ascii_lowercase();
        r.contains(&hex_secret) || r.contains(&hex_secret["axn_".len()..])
    })
}

async fn every_admin_operation_is_refused_to_everyone_else(h: Harness) {
    // Proves each admin operation refuses staff, auditor, shop, cashier and resident principals
    // in the service (forbidden), and that nothing was created by the refused calls.
    let w = world(h).await;
    let (resident, _) = w
        .app
        .earning
        .register_resident(
            &w.admin,
            "r1",
            NewResident {
                name: "王秀英".into(),
                phone: "13800001234".into(),
                community_id: "c1".into(),
            },
        )
        .await
        .unwrap();
    let (target, _) = w
        .app
        .sessions
        .create_user(&w.admin, Role::Staff, Some("c1"), "李工作")
        .await
        .unwrap();
    let (victim, _) = w
        .app
        .admin
        .create_token(
            &w.admin,
            NewToken {
                role: "auditor".into(),
                label: "外审".into(),
                ..NewToken::default()
            },
        )
        .await
        .unwrap();
    let tokens_before = w.app.admin.tokens(&w.admin, true).await.unwrap().len();
    let keys_before = w.app.admin.signing_keys(&w.admin).unwrap();
    let resident_scope = resident.id.to_string();
    let shop_scope = uuid::Uuid::from_u128(7).to_string();
    for (role, scope) in [
        (Role::Staff, Some("c1")),
        (Role::Auditor, None),
        (Role::Shop, Some(shop_scope.as_str())),
        (Role::Cashier, Some(shop_scope.as_str())),
        (Role::Resident, Some(resident_scope.as_str())),
    ] {
        let (p, _) = token_principal(&w.h, role, scope).await;
        let who = role.as_str();
        let forbidden = |r: Result<(), aixin::error::Error>, what: &str| {
            let e = r.expect_err(&format!("{who} may {what}"));
            assert_eq!(e.code, ErrorCode::Forbidden, "{who} {what}: {e}");
        };
        forbidden(w.app.sessions.users(&p).await.map(drop), "list users");
        forbidden(
            w.app
                .sessions
                .create_user(&p, Role::Staff, Some("c1"), &format!("new-{who}"))
                .await
                .map(drop),
            "create a user",
        );
        forbidden(
            w.app
                .sessions
                .password_reset_link(&p, target.id)
                .await
                .map(drop),
            "reset a password",
        );
        forbidden(
            w.app.sessions.disable_user(&p, target.id).await.map(drop),
            "disable a user",
        );
        forbidden(w.app.admin.tokens(&p, true).await.map(drop), "list tokens");
        forbidden(
            w.app
                .admin
                .create_token(
                    &p,
                    NewToken {
                        role: "admin".into(),
                        label: "mine now".into(),
                        ..NewToken::default()
                    },
                )
                .await
                .map(drop),
            "create a token",
        );
        forbidden(
            w.app.admin.revoke_token(&p, victim.id).await.map(drop),
            "revoke a token",
        );
        forbidden(w.app.admin.signing_keys(&p).map(drop), "list keys");
        forbidden(w.app.admin.rotate_key(&p).await.map(drop), "rotate a key");
        forbidden(
            w.app.admin.revoke_key(&p, "k1").await.map(drop),
            "revoke a key",
        );
        if !matches!(role, Role::Staff | Role::Auditor) {
            forbidden(w.app.admin.org_units(&p).await.map(drop), "list units");
        }
    }
    // Nothing the refused calls named changed: the user is active with no second link used,
    // the victim token live, no user or key added. (The five principals' own tokens were added
    // by the test.)
    let users = w.app.sessions.users(&w.admin).await.unwrap();
    assert_eq!(users.len(), 1);
    assert!(users[0].disabled_at_micros.is_none());
    let tokens = w.app.admin.tokens(&w.admin, true).await.unwrap();
    assert_eq!(tokens.len(), tokens_before + 5);
    let victim = tokens.iter().find(|t| t.id == victim.id).unwrap();
    assert!(victim.revoked_at_micros.is_none());
    assert_eq!(w.app.admin.signing_keys(&w.admin).unwrap(), keys_before);
}

async fn a_token_is_shown_once_stored_hashed_and_revoking_it_ends_its_sessions(h: Harness) {
    // Proves the secret is answered once (the list has no secret), only its SHA-256 is stored,
    // the token works as a bearer token until revoked, and revoking a token ends every session
    // standing for it (here a user's session through their shop-staff-free token is not
    // revocable: token_of_user; a resident's sign-in token is).
    let w = world(h).await;
    let (info, secret) = w
        .app
        .admin
        .create_token(
            &w.admin,
            NewToken {
                role: "staff".into(),
                scope: Some("c1".into()),
                label: "社区平板".into(),
                expires_in_days: Some(30),
            },
        )
        .await
        .unwrap();
    assert!(secret.starts_with("axn_") && secret.len() == 68);
    assert_eq!(info.holder, Holder::Api);
    assert_eq!(info.scope.as_deref(), Some("c1"));
    assert_eq!(info.expires_at_micros, Some(T0 + 30 * 86_400 * 1_000_000));
    assert!(!token_table_holds(&w.h, &secret).await);
    let stored =
        w.h.store
            .token_by_hash(&hash_token(&secret))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stored.id, info.id);
    let listed = w.app.admin.tokens(&w.admin, false).await.unwrap();
    let shown = format!("{listed:?}");
    assert!(!shown.contains(&secret[4..]), "the list shows the secret");
    assert!(listed.iter().any(|t| t.id == info.id));
    let header = format!("Bearer {secret}");
    let p = w.app.principal_of_bearer(Some(&header)).await.unwrap();
    assert_eq!((p.role, p.scope.as_deref()), (Role::Staff, Some("c1")));

    // A user's session, then its token: refused, the session lives on.
    let (user, link) = w
        .app
        .sessions
        .create_user(&w.admin, Role::Staff, Some("c1"), "李工作")
        .await
        .unwrap();
    w.app
        .sessions
        .set_password(LEDGER, &link.secret, PASSWORD)
        .await
        .unwrap();
    let session = w
        .app
        .sessions
        .sign_in_password(LEDGER, "李工作", PASSWORD, "192.0.2.1")
        .await
        .unwrap();
    let e = w
        .app
        .admin
        .revoke_token(&w.admin, user.token_id)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TokenOfUser);
    let listed_user = w.app.admin.token(&w.admin, user.token_id).await.unwrap();
    assert_eq!(listed_user.holder, Holder::User);
    assert_eq!(listed_user.holder_name.as_deref(), Some("李工作"));
    assert!(w
        .app
        .principal_of_session(&session.cookie)
        .await
        .unwrap()
        .is_some());

    // A resident's sign-in session: revoking its token ends it at once.
    let (resident, _) = w
        .app
        .earning
        .register_resident(
            &w.admin,
            "r1",
            NewResident {
                name: "王秀英".into(),
                phone: "13800001234".into(),
                community_id: "c1".into(),
            },
        )
        .await
        .unwrap();
    let staff = w.app.principal_of_session(&session.cookie).await.unwrap();
    let staff = staff.unwrap().principal;
    let sign_in = w
        .app
        .sessions
        .resident_sign_in_link(&staff, resident.id)
        .await
        .unwrap();
    let phone = w
        .app
        .sessions
        .sign_in_link(LEDGER, &sign_in.secret, false, "192.0.2.2")
        .await
        .unwrap();
    let resident_token = phone.signed_in.principal.token_id;
    let without = w.app.admin.tokens(&w.admin, false).await.unwrap();
    assert!(without.iter().all(|t| t.id != resident_token));
    let with = w.app.admin.tokens(&w.admin, true).await.unwrap();
    let t = with.iter().find(|t| t.id == resident_token).unwrap();
    assert_eq!(t.holder, Holder::ResidentSignIn);
    assert!(w
        .app
        .principal_of_session(&phone.cookie)
        .await
        .unwrap()
        .is_some());
    let revoked = w
        .app
        .admin
        .revoke_token(&w.admin, resident_token)
        .await
        .unwrap();
    assert!(revoked.revoked_at_micros.is_some());
    assert!(w
        .app
        .principal_of_session(&phone.cookie)
        .await
        .unwrap()
        .is_none());
    // Revoking the API token: its bearer use ends; again: nothing changes.
    let first = w.app.admin.revoke_token(&w.admin, info.id).await.unwrap();
    assert!(w.app.principal_of_bearer(Some(&header)).await.is_err());
    w.h.clock.advance(1_000_000);
    let again = w.app.admin.revoke_token(&w.admin, info.id).await.unwrap();
    assert_eq!(first.revoked_at_micros, again.revoked_at_micros);
    // The admin cannot revoke the token they are using.
    let (admin_p, _) = token_principal(&w.h, Role::Admin, None).await;
    let e = w
        .app
        .admin
        .revoke_token(&admin_p, admin_p.token_id)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden);
}

async fn rotating_keeps_old_receipts_verifying_and_revoking_stops_them(h: Harness) {
    // Proves a receipt signed before a rotation still verifies after it (with the running
    // ring and with the key file as saved), a new receipt is signed by the new key, revoking
    // the active key is refused, and revoking the retired key stops the old receipt verifying.
    let w = world(h).await;
    let admin = &w.admin;
    let staff = token_principal(&w.h, Role::Staff, Some("c1")).await.0;
    let (shop, _) = w
        .app
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
    w.app
        .redemption
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
    let (resident, _) = w
        .app
        .earning
        .register_resident(
            admin,
            "r1",
            NewResident {
                name: "王秀英".into(),
                phone: "13800001234".into(),
                community_id: "c1".into(),
            },
        )
        .await
        .unwrap();
    let issuance = w
        .app
        .earning
        .org_unit(admin, "c1")
        .await
        .unwrap()
        .community
        .unwrap()
        .issuance_account;
    w.app
        .journal
        .post(
            admin,
            "earn-1".into(),
            transfer(
                EntryKind::Earn,
                issuance,
                resident.account_id,
                Unit::Points,
                "100",
            ),
        )
        .await
        .unwrap();
    let card = w
        .app
        .redemption
        .issue_credential(admin, "card-1", resident.id)
        .await
        .unwrap();
    let (owner, _, _) = w
        .app
        .redemption
        .add_shop_staff_as(
            &staff,
            "owner",
            shop.id,
            "王店主",
            aixin::redeem::service::StaffRole::Owner,
        )
        .await
        .unwrap();
    let owner_p = Principal {
        token_id: owner.token_id,
        ledger_id: LEDGER.into(),
        role: Role::Shop,
        scope: Some(shop.id.to_string()),
        operator: None,
    };
    let shown = || Shown::Card {
        number: card.number.clone(),
        pin: card.card_pin.clone(),
    };
    let old = w
        .app
        .redemption
        .redeem(&owner_p, "sale-1", shown(), &[("RICE".into(), 1)])
        .await
        .unwrap();
    let old_compact = old.signed.compact.clone();
    let verifies = |compact: &str| {
        let app = w.app.clone();
        let compact = compact.to_owned();
        async move {
            let (verified, known, _) = app
                .redemption
                .verify_receipt(Some(LEDGER), &compact)
                .await
                .unwrap();
            verified.is_ok() && known
        }
    };
    assert!(verifies(&old_compact).await);

    let new_key = w.app.admin.rotate_key(admin).await.unwrap();
    assert_eq!(new_key.id, "k2");
    assert_eq!(new_key.status, KeyStatus::Active);
    let keys = w.app.admin.signing_keys(admin).unwrap();
    let statuses: Vec<(&str, KeyStatus)> = keys.iter().map(|k| (k.id.as_str(), k.status)).collect();
    assert_eq!(
        statuses,
        [("k1", KeyStatus::Retired), ("k2", KeyStatus::Active)]
    );
    // The key file says the same (a second server reading it verifies alike).
    let saved = KeyRing::load(&w.key_file).unwrap();
    assert_eq!(saved.active().id, "k2");
    assert!(aixin::redeem::receipt::verify_compact(&saved, &old_compact).is_ok());
    assert!(
        verifies(&old_compact).await,
        "rotation broke an old receipt"
    );
    let new = w
        .app
        .redemption
        .redeem(&owner_p, "sale-2", shown(), &[("RICE".into(), 1)])
        .await
        .unwrap();
    assert!(verifies(&new.signed.compact).await);
    assert_eq!(new.signed.receipt.key_id, "k2");
    assert_eq!(old.signed.receipt.key_id, "k1");

    let e = w.app.admin.revoke_key(admin, "k2").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::SigningKeyActive);
    let e = w.app.admin.revoke_key(admin, "k9").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownSigningKey);
    assert_eq!(w.app.admin.signing_keys(admin).unwrap(), keys);

    let revoked = w.app.admin.revoke_key(admin, "k1").await.unwrap();
    assert_eq!(revoked.status, KeyStatus::Revoked);
    assert!(
        !verifies(&old_compact).await,
        "a revoked key still verifies"
    );
    assert!(verifies(&new.signed.compact).await);
    let saved = KeyRing::load(&w.key_file).unwrap();
    assert!(aixin::redeem::receipt::verify_compact(&saved, &old_compact).is_err());
    // The key list never carries secret material.
    let file = std::fs::read_to_string(&w.key_file).unwrap();
    let shown = format!("{:?}", w.app.admin.signing_keys(admin).unwrap());
    for key in saved.signing_keys() {
        let hex = hex::encode(key.secret);
        assert!(file.contains(&hex));
        assert!(!shown.contains(&hex));
    }
}

async fn bad_input_changes_nothing(h: Harness) {
    // Proves malformed or unknown roles, scopes, labels and lifetimes are refused with a clear
    // code and leave the token and user tables as they were.
    let w = world(h).await;
    let before = w.app.admin.tokens(&w.admin, true).await.unwrap();
    let resident_like = uuid::Uuid::from_u128(42).to_string();
    for (new, code) in [
        (("root", None, "x", None), ErrorCode::InvalidBody),
        (("staff", None, "x", None), ErrorCode::InvalidBody),
        (
            ("staff", Some("nowhere"), "x", None),
            ErrorCode::UnknownOrgUnit,
        ),
        (
            ("shop", Some("not-a-uuid"), "x", None),
            ErrorCode::InvalidBody,
        ),
        (
            ("shop", Some(resident_like.as_str()), "x", None),
            ErrorCode::InvalidBody,
        ),
        (
            ("resident", Some(resident_like.as_str()), "x", None),
            ErrorCode::UnknownResident,
        ),
        (("admin", Some("c1"), "x", None), ErrorCode::InvalidBody),
        (
            ("auditor", None, "a\u{202e}b", None),
            ErrorCode::TextInvisible,
        ),
        (("auditor", None, "x", Some(0)), ErrorCode::InvalidBody),
        (
            ("auditor", None, "x", Some(100_000)),
            ErrorCode::InvalidBody,
        ),
    ] {
        let (role, scope, label, days) = new;
        let e = w
            .app
            .admin
            .create_token(
                &w.admin,
                NewToken {
                    role: role.into(),
                    scope: scope.map(str::to_owned),
                    label: label.into(),
                    expires_in_days: days,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, code, "{new:?}: {e}");
    }
    let long = "长".repeat(101);
    let e = w
        .app
        .admin
        .create_token(
            &w.admin,
            NewToken {
                role: "auditor".into(),
                label: long,
                ..NewToken::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::FieldTooLong);
    assert_eq!(w.app.admin.tokens(&w.admin, true).await.unwrap(), before);
    for (role, scope, name) in [
        (Role::Staff, None, "a"),
        (Role::Staff, Some("nowhere"), "b"),
        (Role::Auditor, Some("c1"), "c"),
        (Role::Shop, None, "d"),
        (Role::Admin, None, ""),
        (Role::Admin, None, "x\u{0007}"),
    ] {
        assert!(w
            .app
            .sessions
            .create_user(&w.admin, role, scope, name)
            .await
            .is_err());
    }
    assert!(w.app.sessions.users(&w.admin).await.unwrap().is_empty());
    assert_eq!(w.app.admin.tokens(&w.admin, true).await.unwrap(), before);
    let e = w
        .app
        .admin
        .revoke_token(&w.admin, uuid::Uuid::from_u128(9))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
}

async fn staff_see_their_subtree_of_the_organisation(h: Harness) {
    // Proves the organisation list is the whole tree for admin and auditor and only the unit
    // and what is below it for staff.
    let w = world(h).await;
    let ids = |units: Vec<aixin::model::OrgUnit>| -> Vec<String> {
        units.into_iter().map(|u| u.id).collect()
    };
    let all = ids(w.app.admin.org_units(&w.admin).await.unwrap());
    assert_eq!(all, ["c1", "c1-grid", "c2", "street"]);
    let (auditor, _) = token_principal(&w.h, Role::Auditor, None).await;
    assert_eq!(ids(w.app.admin.org_units(&auditor).await.unwrap()), all);
    let (c1, _) = token_principal(&w.h, Role::Staff, Some("c1")).await;
    assert_eq!(
        ids(w.app.admin.org_units(&c1).await.unwrap()),
        ["c1", "c1-grid"]
    );
    let (street, _) = token_principal(&w.h, Role::Staff, Some("street")).await;
    assert_eq!(ids(w.app.admin.org_units(&street).await.unwrap()), all);
    let (nowhere, _) = token_principal(&w.h, Role::Staff, Some("gone")).await;
    assert!(w.app.admin.org_units(&nowhere).await.unwrap().is_empty());
}

async fn call(
    app: &App,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let router = aixin::http::router(app.clone());
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "aixin.test")
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = router.oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

async fn the_api_does_it_all_with_an_admin_token(h: Harness) {
    // Proves every admin endpoint works over HTTP with an admin bearer token and answers 403
    // problem+json to a staff token; the created token's secret appears in the create answer
    // only; the set-password link from the API sets the password.
    let w = world(h).await;
    let (_, admin) = token_principal(&w.h, Role::Admin, None).await;
    let (_, staff) = token_principal(&w.h, Role::Staff, Some("c1")).await;
    let app = &w.app;

    let (status, created) = call(
        app,
        "POST",
        "/v1/users",
        &admin,
        Some(serde_json::json!({"name": "赵审计", "role": "auditor"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let url = created["set_password"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://aixin.test/set-password/axl_"),
        "{url}"
    );
    let secret = url.rsplit('/').next().unwrap();
    app.sessions
        .set_password(LEDGER, secret, PASSWORD)
        .await
        .unwrap();
    let user_id = created["user"]["id"].as_str().unwrap().to_owned();
    let (status, users) = call(app, "GET", "/v1/users", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users[0]["name"], "赵审计");
    assert_eq!(users[0]["has_password"], true);
    let (status, link) = call(
        app,
        "POST",
        &format!("/v1/users/{user_id}/password-reset-link"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(link["path"]
        .as_str()
        .unwrap()
        .starts_with("/set-password/axl_"));
    let (status, disabled) = call(
        app,
        "POST",
        &format!("/v1/users/{user_id}/disable"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(disabled["disabled"], true);

    let (status, made) = call(
        app,
        "POST",
        "/v1/tokens",
        &admin,
        Some(serde_json::json!({"role": "auditor", "label": "外部审计"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token_secret = made["secret"].as_str().unwrap().to_owned();
    let token_id = made["token"]["id"].as_str().unwrap().to_owned();
    let (status, list) = call(app, "GET", "/v1/tokens", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(&token_secret[4..]));
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == token_id.as_str() && t["holder"] == "api"));
    let (status, _) = call(app, "GET", "/v1/ledger", &token_secret, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, revoked) = call(
        app,
        "POST",
        &format!("/v1/tokens/{token_id}/revoke"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = call(app, "GET", "/v1/ledger", &token_secret, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, keys) = call(app, "GET", "/v1/keys", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys[0]["status"], "active");
    let (status, rotated) = call(app, "POST", "/v1/keys/rotate", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rotated["id"], "k2");
    let (status, problem) = call(app, "POST", "/v1/keys/k2/revoke", &admin, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["code"], "signing_key_active");
    let (status, k1) = call(app, "POST", "/v1/keys/k1/revoke", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(k1["status"], "revoked");

    let (status, units) = call(app, "GET", "/v1/org-units", &staff, None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = units["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c1", "c1-grid"]);
    assert_eq!(units["units"][1]["parent_id"], "c1");

    for (method, path) in [
        ("GET", "/v1/users".to_owned()),
        ("POST", format!("/v1/users/{user_id}/password-reset-link")),
        ("GET", "/v1/tokens".to_owned()),
        ("POST", "/v1/keys/rotate".to_owned()),
        ("GET", "/v1/keys".to_owned()),
    ] {
        let (status, problem) = call(app, method, &path, &staff, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(problem["code"], "forbidden");
    }
    let (status, problem) = call(
        app,
        "POST",
        "/v1/tokens",
        &staff,
        Some(serde_json::json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    // The organisation list and its creation share a path.
    let (status, _) = call(
        app,
        "POST",
        "/v1/org-units",
        &admin,
        Some(serde_json::json!({"id": "c3", "level": "community", "name_zh": "三社区", "name_en": "C3"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, doc) = call(app, "GET", "/v1/openapi.json", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/v1/org-units"]["get"].is_object());
    assert!(doc["paths"]["/v1/org-units"]["post"].is_object());
    assert!(doc["paths"]["/v1/tokens/{id}/revoke"]["post"].is_object());
}
