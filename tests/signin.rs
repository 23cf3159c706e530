//! Signing in to the web pages (`src/session.rs`), on both backends: a session resolves to its
//! token's principal and ends when signed out, idle, past its end, or when its token is revoked;
//! one-time links work once; attempt limits per account and per client are counted in the
//! database and survive a restart; no session value, link or device secret is stored; passwords
//! and PINs are Argon2id at OWASP's cost; the cashier role may scan and nothing else.

mod common;

use std::collections::BTreeMap;

use aixin::app::App;
use aixin::auth::{new_token, Principal, Role};
use aixin::clock::Clock;
use aixin::earning::service::{NewOrgUnit, NewRecord, NewResident, NewRoster, Resolution};
use aixin::earning::service::{RosterLine, RuleTerms};
use aixin::error::ErrorCode;
use aixin::journal::AccountRequest;
use aixin::keys::{KeyRing, SharedKeys};
use aixin::ledger::{AccountKind, Amount, EntryKind, Unit};
use aixin::model::{ExpiryPolicy, Resident, RuleMode};
use aixin::redeem::service::{IssuedCredential, NewItem, NewShop, Shown, StaffRole, StockChange};
use aixin::session::{NewSession, SessionKind};
use aixin::store::redeem::{Shop, ShopStaff};
use common::{transfer, Harness, Raw, Target, T0};
use uuid::Uuid;

on_both_backends!(
    the_database_holds_no_session_link_or_device_secret,
    a_session_is_its_tokens_principal,
    sign_out_idle_and_end_close_a_session,
    revoking_a_clerk_token_ends_their_session_at_once,
    one_time_links_work_once,
    attempt_limits_per_account_and_client_survive_a_restart,
    concurrent_guesses_do_not_overtake_the_limit,
    residents_sign_in_with_phone_and_card_pin,
    every_wrong_part_gets_the_same_answer,
    managing_sign_in_is_authorized_in_the_service,
    passwords_and_pins_are_argon2id_at_owasp_cost,
    cashiers_may_scan_and_nothing_else,
    the_demo_opens_to_a_browser,
);

const LEDGER: &str = "test";
const HOUR: i64 = 3_600_000_000;
const MINUTE: i64 = 60_000_000;
const PASSWORD: &str = "correct horse battery staple";
const PIN: &str = "482915";
const CLIENT: &str = "198.51.100.7";

/// One community with a shop (an owner, a clerk and a cashier), a resident with points and a
/// card, and a community elsewhere.
struct World {
    h: Harness,
    app: App,
    admin: Principal,
    staff: Principal,
    shop: Shop,
    owner: (ShopStaff, String),
    clerk: (ShopStaff, String),
    cashier: (ShopStaff, String),
    resident: Resident,
    card: IssuedCredential,
    /// A resident of the other community.
    stranger: Resident,
}

async fn token_principal(h: &Harness, role: Role, scope: Option<&str>) -> Principal {
    let (_, record) = new_token(
        h.entropy.as_ref(),
        h.clock.now_micros(),
        LEDGER,
        role,
        scope.map(str::to_owned),
        String::new(),
        None,
    );
    h.store.insert_token(&record).await.unwrap();
    Principal {
        token_id: record.id,
        ledger_id: LEDGER.into(),
        role,
        scope: scope.map(str::to_owned),
        operator: None,
    }
}

async fn world(h: Harness) -> World {
    h.clock.set(T0);
    let keys = SharedKeys::fixed(KeyRing::generate(h.entropy.as_ref(), T0));
    let app = App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone()).with_keys(keys);
    world_with(h, app).await
}

async fn world_with(h: Harness, app: App) -> World {
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
    let staff = token_principal(&h, Role::Staff, Some("c1")).await;
    let new_shop = NewShop {
        name_zh: "爱心粮油店".into(),
        name_en: "Love Grain".into(),
        community_id: "c1".into(),
        serves: Vec::new(),
        refund_window_days: None,
    };
    let (shop, _) = app
        .redemption
        .create_shop(&staff, "shop-1", new_shop)
        .await
        .unwrap();
    let item = NewItem {
        name_zh: "东北大米".into(),
        name_en: "Rice".into(),
        unit: "袋".into(),
        price: Amount::parse("10").unwrap(),
        track_stock: false,
        cap_day: None,
        cap_month: None,
        active: true,
    };
    app.redemption
        .put_item(&staff, shop.id, "RICE", item)
        .await
        .unwrap();
    let terms = RuleTerms {
        community_id: "c1".into(),
        category: "visit".into(),
        name_zh: "走访".into(),
        name_en: "Visit".into(),
        mode: RuleMode::PerHour,
        points: Amount::parse("10").unwrap(),
        records_hours: true,
        cap_day: None,
        cap_month: None,
        valid_from: aixin::calendar::day_of(T0),
        valid_until: None,
    };
    app.earning
        .set_rule(&staff, "visit", 0, terms)
        .await
        .unwrap();
    let mut members = Vec::new();
    for (key, name, role) in [
        ("owner", "王店主", StaffRole::Owner),
        ("clerk", "小李", StaffRole::Clerk),
        ("cashier", "小张", StaffRole::Cashier),
    ] {
        let (member, secret, _) = app
            .redemption
            .add_shop_staff_as(&staff, key, shop.id, name, role)
            .await
            .unwrap();
        members.push((member, secret));
    }
    let mut residents = Vec::new();
    for (community, phone) in [("c1", "138 0000-1234"), ("c2", "139 0000 9999")] {
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
    let cashier = members.pop().unwrap();
    let clerk = members.pop().unwrap();
    let owner = members.pop().unwrap();
    let stranger = residents.pop().unwrap();
    let resident = residents.pop().unwrap();
    World {
        h,
        app,
        admin,
        staff,
        shop,
        owner,
        clerk,
        cashier,
        resident,
        card,
        stranger,
    }
}

impl World {
    /// A user of `role` who has set their password.
    async fn user(&self, role: Role, scope: Option<&str>, name: &str) -> aixin::session::User {
        let (user, link) = self
            .app
            .sessions
            .create_user(&self.admin, role, scope, name)
            .await
            .unwrap();
        assert!(link.secret.starts_with("axl_") && link.secret.len() == 68);
        self.app
            .sessions
            .set_password(LEDGER, &link.secret, PASSWORD)
            .await
            .unwrap();
        user
    }

    /// A till paired with the shop (its secret), and PINs for the shop's clerks.
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
        assert_eq!(paired.device.label, "收银台 1");
        assert_eq!(paired.device.shop_id, self.shop.id);
        for (member, _) in [&self.owner, &self.clerk, &self.cashier] {
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

    async fn resident_session(&self, remember: bool) -> NewSession {
        let link = self
            .app
            .sessions
            .resident_sign_in_link(&self.staff, self.resident.id)
            .await
            .unwrap();
        self.app
            .sessions
            .sign_in_link(LEDGER, &link.secret, remember, CLIENT)
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

    fn card(&self) -> Shown {
        Shown::Card {
            number: self.card.number.clone(),
            pin: self.card.card_pin.clone(),
        }
    }
}

/// Every text and blob of every table, as text (blobs in hex), and for SQLite the file's bytes.
async fn dump(h: &Harness) -> (String, Vec<u8>) {
    match &h.raw {
        Raw::Sqlite(pool) => {
            sqlx::query("PRAGMA wal_checkpoint(FULL)")
                .execute(pool)
                .await
                .unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let mut text = String::new();
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                for column in columns {
                    let values: Vec<Option<String>> = sqlx::query_scalar(&format!(
                        "SELECT CASE typeof({column}) WHEN 'blob' THEN hex({column}) ELSE CAST({column} AS TEXT) END FROM {table}"
                    ))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                    for v in values.into_iter().flatten() {
                        text.push_str(&v.to_lowercase());
                        text.push('\n');
                    }
                }
            }
            let Target::Sqlite(url) = &h.url_or_path else {
                unreachable!()
            };
            let path = url.trim_start_matches("sqlite:");
            let mut bytes = std::fs::read(path).unwrap();
            bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
            (text, bytes)
        }
        Raw::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            assert!(tables.iter().any(|t| t == "sessions"), "{tables:?}");
            let mut text = String::new();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                for row in rows {
                    text.push_str(&row.to_lowercase());
                    text.push('\n');
                }
            }
            (text, Vec::new())
        }
    }
}

async fn the_database_holds_no_session_link_or_device_secret(h: Harness) {
    // Proves the TRUST row "a database dump holds no raw session value": after users, clerks
    // and residents have signed in, no table (every text and blob column, and the SQLite file
    // itself) holds a session cookie, a one-time link, a device secret or a password — only
    // their hashes.
    let w = world(h).await;
    let (_, link) = w
        .app
        .sessions
        .create_user(&w.admin, Role::Auditor, None, "审计员")
        .await
        .unwrap();
    w.app
        .sessions
        .set_password(LEDGER, &link.secret, PASSWORD)
        .await
        .unwrap();
    let user = w
        .app
        .sessions
        .sign_in_password(LEDGER, "审计员", PASSWORD, CLIENT)
        .await
        .unwrap();
    let pairing = w
        .app
        .sessions
        .pairing_link(&w.staff, w.shop.id, "收银台")
        .await
        .unwrap();
    let device = w
        .app
        .sessions
        .redeem_pairing_link(LEDGER, &pairing.secret, None)
        .await
        .unwrap()
        .secret;
    w.app
        .sessions
        .set_clerk_pin(&w.staff, w.clerk.0.token_id, PIN)
        .await
        .unwrap();
    let clerk = w.clerk_session(&device, "小李").await;
    let resident_link = w
        .app
        .sessions
        .resident_sign_in_link(&w.staff, w.resident.id)
        .await
        .unwrap();
    let resident = w
        .app
        .sessions
        .sign_in_link(LEDGER, &resident_link.secret, true, CLIENT)
        .await
        .unwrap();
    let unused = w
        .app
        .sessions
        .resident_sign_in_link(&w.staff, w.stranger.id)
        .await;
    assert_eq!(
        unused.unwrap_err().code,
        ErrorCode::NotFound,
        "c2 is not theirs"
    );
    let unused = w
        .app
        .sessions
        .resident_sign_in_link(&w.admin, w.stranger.id)
        .await
        .unwrap();
    let secrets = [
        ("user session", user.cookie.clone()),
        ("clerk session", clerk.cookie.clone()),
        ("resident session", resident.cookie.clone()),
        ("set-password link", link.secret.clone()),
        ("pairing link", pairing.secret.clone()),
        ("resident link", resident_link.secret.clone()),
        ("unused resident link", unused.secret.clone()),
        ("device secret", device.clone()),
    ];
    for (what, secret) in &secrets {
        assert_eq!(secret.len(), 68, "{what}: a prefix and 256 bits in hex");
    }
    let (text, bytes) = dump(&w.h).await;
    assert!(text.contains(&hex::encode(aixin::auth::hash_token(&user.cookie))));
    let bytes_text = String::from_utf8_lossy(&bytes);
    for (what, secret) in &secrets {
        let digits = &secret[4..];
        assert!(!text.contains(digits), "the {what} is in a table");
        assert!(
            !bytes_text.contains(digits),
            "the {what} is in the database file"
        );
    }
    for haystack in [&text, &bytes_text.to_lowercase()] {
        assert!(
            !haystack.contains(&PASSWORD.to_lowercase()),
            "a password is stored"
        );
    }
    // And each still works: the hashes are what the lookups use.
    for session in [&user, &clerk, &resident] {
        assert!(w.principal(&session.cookie).await.is_some());
    }
}

async fn a_session_is_its_tokens_principal(h: Harness) {
    // Proves a session answers exactly the principal its token would: a clerk's session equals
    // the clerk's staff token used as a bearer token (so redemptions record the same actor and
    // the same clerk cannot refund them at the till either), a user's is their own token's, a
    // resident's is a resident token scoped to them.
    let w = world(h).await;
    let till = w.till().await;
    let session = w.clerk_session(&till, "小李").await;
    assert!(session.cookie.starts_with("axs_"));
    let signed_in = w
        .app
        .sessions
        .principal_of_session(&session.cookie)
        .await
        .unwrap()
        .unwrap();
    let bearer = w
        .app
        .principal_of_bearer(Some(&format!("Bearer {}", w.clerk.1)))
        .await
        .unwrap();
    assert_eq!(signed_in.principal, bearer);
    assert_eq!(signed_in.principal.token_id, w.clerk.0.token_id);
    assert_eq!(
        (signed_in.kind, signed_in.name.as_str()),
        (SessionKind::Clerk, "小李")
    );
    assert_eq!(signed_in, session.signed_in);
    // The clerk redeems through the session's principal and cannot refund it; the owner can.
    let exchange = w
        .app
        .redemption
        .redeem(
            &signed_in.principal,
            "sale-1",
            w.card(),
            &[("RICE".into(), 1)],
        )
        .await
        .unwrap();
    let receipt = exchange.signed.receipt.id;
    let refused = w
        .app
        .redemption
        .refund(&bearer, "refund-1", receipt, None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::RefunderIsRedeemer);
    let owner = w.clerk_session(&till, "王店主").await;
    let owner = w.principal(&owner.cookie).await.unwrap();
    assert_eq!(owner.token_id, w.owner.0.token_id);
    w.app
        .redemption
        .refund(&owner, "refund-2", receipt, None)
        .await
        .unwrap();

    let user = w.user(Role::Staff, Some("c1"), "社区干部").await;
    let session = w
        .app
        .sessions
        .sign_in_password(LEDGER, " 社区干部 ", PASSWORD, CLIENT)
        .await
        .unwrap();
    let staff = w.principal(&session.cookie).await.unwrap();
    assert_eq!(
        staff,
        Principal {
            token_id: user.token_id,
            ledger_id: LEDGER.into(),
            role: Role::Staff,
            scope: Some("c1".into()),
            operator: None,
        }
    );
    assert_eq!(session.signed_in.kind, SessionKind::User);
    assert_eq!(session.signed_in.name, "社区干部");
    // Staff act through the session as their token would.
    w.app.earning.resident(&staff, w.resident.id).await.unwrap();
    let token =
        w.h.stores
            .sessions
            .token(user.token_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (token.role.as_str(), token.scope.as_deref()),
        ("staff", Some("c1"))
    );

    let resident = w.resident_session(false).await;
    let me = w.principal(&resident.cookie).await.unwrap();
    assert_eq!(
        (me.role, me.scope.clone()),
        (Role::Resident, Some(w.resident.id.to_string()))
    );
    assert_eq!(resident.signed_in.name, "王秀英");
    // The resident sees their own code and balance; a second sign-in reuses their identity.
    w.app
        .redemption
        .current_code(&me, w.resident.id)
        .await
        .unwrap();
    let again = w.resident_session(true).await;
    assert_eq!(w.principal(&again.cookie).await.unwrap(), me);
}

async fn sign_out_idle_and_end_close_a_session(h: Harness) {
    // Proves a session ends when signed out, when unused for its idle time, and at its absolute
    // end however busy (injected clock); using it moves the idle end (at most once a minute);
    // "remember this phone" gives residents a long session.
    let w = world(h).await;
    w.user(Role::Admin, None, "管理员").await;
    let sign_in = || {
        w.app
            .sessions
            .sign_in_password(LEDGER, "管理员", PASSWORD, CLIENT)
    };
    let a = sign_in().await.unwrap();
    let b = sign_in().await.unwrap();
    assert_ne!(a.cookie, b.cookie);
    w.app.sessions.sign_out(&a.cookie).await.unwrap();
    assert!(w.principal(&a.cookie).await.is_none(), "signed out");
    assert!(
        w.principal(&b.cookie).await.is_some(),
        "the other session lives"
    );
    w.app.sessions.sign_out("axs_not-a-session").await.unwrap();
    assert!(w.principal("").await.is_none());
    assert!(w.principal(&b.cookie.to_uppercase()).await.is_none());

    // Idle: 12 hours unused ends it; used every 11 hours it lives until 7 days.
    let start = w.h.clock.now_micros();
    let idle = sign_in().await.unwrap();
    let busy = sign_in().await.unwrap();
    assert_eq!(busy.signed_in.expires_at_micros, start + 7 * 24 * HOUR);
    for _ in 0..14 {
        w.h.clock.advance(11 * HOUR);
        if w.h.clock.now_micros() >= start + 7 * 24 * HOUR {
            break;
        }
        let s = w
            .app
            .sessions
            .principal_of_session(&busy.cookie)
            .await
            .unwrap()
            .expect("a session used every 11 hours lives");
        assert_eq!(
            s.idle_expires_at_micros,
            (w.h.clock.now_micros() + 12 * HOUR).min(start + 7 * 24 * HOUR)
        );
    }
    assert!(
        w.principal(&idle.cookie).await.is_none(),
        "idle for 12 hours"
    );
    w.h.clock.set(start + 7 * 24 * HOUR);
    assert!(w.principal(&busy.cookie).await.is_none(), "past its end");

    // The idle end moves at most once a minute.
    let s = sign_in().await.unwrap();
    let opened = s.signed_in.idle_expires_at_micros;
    w.h.clock.advance(30_000_000);
    let seen = w
        .app
        .sessions
        .principal_of_session(&s.cookie)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seen.idle_expires_at_micros, opened,
        "not moved within a minute"
    );
    w.h.clock.advance(MINUTE);
    let seen = w
        .app
        .sessions
        .principal_of_session(&s.cookie)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.idle_expires_at_micros, opened + 90_000_000);

    // Residents: a short session unless the phone is remembered (180 days, idle 30 days).
    let now = w.h.clock.now_micros();
    let short = w.resident_session(false).await;
    let long = w.resident_session(true).await;
    assert!(!short.signed_in.remember && long.signed_in.remember);
    assert_eq!(short.signed_in.expires_at_micros, now + 12 * HOUR);
    assert_eq!(long.signed_in.expires_at_micros, now + 180 * 24 * HOUR);
    assert_eq!(long.signed_in.idle_expires_at_micros, now + 30 * 24 * HOUR);
    w.h.clock.advance(2 * HOUR);
    assert!(w.principal(&short.cookie).await.is_none(), "idle an hour");
    assert!(w.principal(&long.cookie).await.is_some());
    w.h.clock.advance(29 * 24 * HOUR);
    assert!(
        w.principal(&long.cookie).await.is_some(),
        "used within 30 days"
    );
    w.h.clock.advance(31 * 24 * HOUR);
    assert!(w.principal(&long.cookie).await.is_none(), "idle 31 days");

    // A clerk's session lasts a shop day.
    let till = w.till().await;
    let clerk = w.clerk_session(&till, "小李").await;
    let now = w.h.clock.now_micros();
    assert_eq!(clerk.signed_in.expires_at_micros, now + 16 * HOUR);
    w.h.clock.advance(16 * HOUR);
    assert!(
        w.principal(&clerk.cookie).await.is_none(),
        "a shop day is over"
    );

    // Signing out everywhere: the holder or an admin.
    let one = sign_in().await.unwrap();
    let two = sign_in().await.unwrap();
    let me = w.principal(&one.cookie).await.unwrap();
    let ended = w
        .app
        .sessions
        .revoke_sessions_of(&me, me.token_id)
        .await
        .unwrap();
    assert_eq!(ended, 2);
    assert!(w.principal(&two.cookie).await.is_none());
    let refused = w
        .app
        .sessions
        .revoke_sessions_of(&w.staff, me.token_id)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
}

async fn revoking_a_clerk_token_ends_their_session_at_once(h: Harness) {
    // Proves the TRUST row "removing a clerk takes effect at once": revoking the clerk's staff
    // token ends their till session on its next request (and their API token with it), and they
    // cannot sign in again; unpairing a till ends the sessions on it and refuses sign-in there;
    // disabling a user ends theirs.
    let w = world(h).await;
    let till = w.till().await;
    let clerk = w.clerk_session(&till, "小李").await;
    let other = w.clerk_session(&till, "王店主").await;
    assert!(w.principal(&clerk.cookie).await.is_some());
    let now = w.h.clock.now_micros();
    assert!(w
        .h
        .store
        .revoke_token(w.clerk.0.token_id, now)
        .await
        .unwrap());
    assert!(
        w.principal(&clerk.cookie).await.is_none(),
        "the next request is refused"
    );
    let api = w
        .app
        .principal_of_bearer(Some(&format!("Bearer {}", w.clerk.1)))
        .await
        .unwrap_err();
    assert_eq!(api.code, ErrorCode::Unauthorized);
    let again = w
        .app
        .sessions
        .sign_in_clerk(LEDGER, &till, "小李", PIN, CLIENT)
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::SignInFailed);
    assert!(
        w.principal(&other.cookie).await.is_some(),
        "the owner works on"
    );

    let devices = w.app.sessions.devices(&w.staff, w.shop.id).await.unwrap();
    assert_eq!(devices.len(), 1);
    let device = w
        .app
        .sessions
        .till_device(LEDGER, &till)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device, devices[0]);
    assert_eq!(
        w.app.sessions.till_clerks(LEDGER, &till).await.unwrap(),
        vec!["小张".to_owned(), "小李".to_owned(), "王店主".to_owned()]
    );
    let unpaired = w
        .app
        .sessions
        .unpair_device(&w.staff, device.id)
        .await
        .unwrap();
    assert!(unpaired.unpaired_at_micros.is_some());
    assert!(
        w.principal(&other.cookie).await.is_none(),
        "unpairing ends the till's sessions"
    );
    assert!(w
        .app
        .sessions
        .till_device(LEDGER, &till)
        .await
        .unwrap()
        .is_none());
    assert!(w
        .app
        .sessions
        .till_clerks(LEDGER, &till)
        .await
        .unwrap()
        .is_empty());
    let refused = w
        .app
        .sessions
        .sign_in_clerk(LEDGER, &till, "王店主", PIN, CLIENT)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SignInFailed);

    let user = w.user(Role::Auditor, None, "审计员").await;
    let session = w
        .app
        .sessions
        .sign_in_password(LEDGER, "审计员", PASSWORD, CLIENT)
        .await
        .unwrap();
    let disabled = w
        .app
        .sessions
        .disable_user(&w.admin, user.id)
        .await
        .unwrap();
    assert!(disabled.disabled_at_micros.is_some());
    assert!(w.principal(&session.cookie).await.is_none());
    let refused = w
        .app
        .sessions
        .sign_in_password(LEDGER, "审计员", PASSWORD, CLIENT)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SignInFailed);
}

async fn one_time_links_work_once(h: Harness) {
    // Proves every one-time link works once: setting a password, a resident's sign-in, pairing
    // a till; an expired link and a replaced one do not work; a new password ends the user's
    // sessions.
    let w = world(h).await;
    let (user, link) = w
        .app
        .sessions
        .create_user(&w.admin, Role::Admin, None, "李主任")
        .await
        .unwrap();
    assert!(!user.has_password);
    let refused = w
        .app
        .sessions
        .sign_in_password(LEDGER, "李主任", PASSWORD, "203.0.113.1")
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SignInFailed, "no password yet");
    let short = w
        .app
        .sessions
        .set_password(LEDGER, &link.secret, "too short")
        .await
        .unwrap_err();
    assert_eq!(short.code, ErrorCode::PasswordInvalid);
    let long = "x".repeat(129);
    let long = w
        .app
        .sessions
        .set_password(LEDGER, &link.secret, &long)
        .await
        .unwrap_err();
    assert_eq!(long.code, ErrorCode::PasswordInvalid);
    let set = w
        .app
        .sessions
        .set_password(LEDGER, &link.secret, PASSWORD)
        .await
        .unwrap();
    assert!(set.has_password);
    let twice = w
        .app
        .sessions
        .set_password(LEDGER, &link.secret, "another password")
        .await
        .unwrap_err();
    assert_eq!(twice.code, ErrorCode::SignInFailed);
    let session = w
        .app
        .sessions
        .sign_in_password(LEDGER, "李主任", PASSWORD, CLIENT)
        .await
        .unwrap();
    // A reset link: the old one dies when a new one is made; using it ends the sessions.
    let first = w
        .app
        .sessions
        .password_reset_link(&w.admin, user.id)
        .await
        .unwrap();
    let second = w
        .app
        .sessions
        .password_reset_link(&w.admin, user.id)
        .await
        .unwrap();
    let replaced = w
        .app
        .sessions
        .set_password(LEDGER, &first.secret, "another password")
        .await
        .unwrap_err();
    assert_eq!(replaced.code, ErrorCode::SignInFailed);
    assert!(w.principal(&session.cookie).await.is_some());
    w.app
        .sessions
        .set_password(LEDGER, &second.secret, "another password")
        .await
        .unwrap();
    assert!(
        w.principal(&session.cookie).await.is_none(),
        "a new password ends sessions"
    );
    w.app
        .sessions
        .sign_in_password(LEDGER, "李主任", "another password", CLIENT)
        .await
        .unwrap();
    // Expired after 72 hours.
    let third = w
        .app
        .sessions
        .password_reset_link(&w.admin, user.id)
        .await
        .unwrap();
    w.h.clock.advance(72 * HOUR);
    let expired = w
        .app
        .sessions
        .set_password(LEDGER, &third.secret, "a third password")
        .await
        .unwrap_err();
    assert_eq!(expired.code, ErrorCode::SignInFailed);

    // A resident's printed link: once; a re-issued one replaces it.
    let link = w
        .app
        .sessions
        .resident_sign_in_link(&w.staff, w.resident.id)
        .await
        .unwrap();
    w.app
        .sessions
        .sign_in_link(LEDGER, &link.secret, false, CLIENT)
        .await
        .unwrap();
    let again = w
        .app
        .sessions
        .sign_in_link(LEDGER, &link.secret, false, CLIENT)
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::SignInFailed);
    let old = w
        .app
        .sessions
        .resident_sign_in_link(&w.staff, w.resident.id)
        .await
        .unwrap();
    let new = w
        .app
        .sessions
        .resident_sign_in_link(&w.staff, w.resident.id)
        .await
        .unwrap();
    let replaced = w
        .app
        .sessions
        .sign_in_link(LEDGER, &old.secret, false, CLIENT)
        .await
        .unwrap_err();
    assert_eq!(replaced.code, ErrorCode::SignInFailed);
    w.app
        .sessions
        .sign_in_link(LEDGER, &new.secret, false, CLIENT)
        .await
        .unwrap();
    // A link of another ledger, or of another purpose, names nothing.
    let wrong = w
        .app
        .sessions
        .sign_in_link("elsewhere", &new.secret, false, CLIENT)
        .await
        .unwrap_err();
    assert_eq!(wrong.code, ErrorCode::SignInFailed);

    // Pairing: once; the label may be given on the device.
    let pairing = w
        .app
        .sessions
        .pairing_link(&w.staff, w.shop.id, "前台")
        .await
        .unwrap();
    let wrong_purpose = w
        .app
        .sessions
        .sign_in_link(LEDGER, &pairing.secret, false, CLIENT)
        .await
        .unwrap_err();
    assert_eq!(wrong_purpose.code, ErrorCode::SignInFailed);
    let paired = w
        .app
        .sessions
        .redeem_pairing_link(LEDGER, &pairing.secret, Some("后门收银"))
        .await
        .unwrap();
    assert_eq!(paired.device.label, "后门收银");
    assert!(paired.secret.starts_with("axd_"));
    let twice = w
        .app
        .sessions
        .redeem_pairing_link(LEDGER, &pairing.secret, None)
        .await
        .unwrap_err();
    assert_eq!(twice.code, ErrorCode::SignInFailed);
}

async fn attempt_limits_per_account_and_client_survive_a_restart(h: Harness) {
    // Proves failed sign-ins are counted in the database per account (5 in 15 minutes) and per
    // client (30): past either limit even the right password is refused with
    // `too_many_attempts` and a `retry_after`, and a new App over the same database (a
    // restarted server) still refuses; 15 minutes later it works again.
    let w = world(h).await;
    w.user(Role::Staff, Some("c1"), "张三").await;
    for i in 0..5 {
        let e = w
            .app
            .sessions
            .sign_in_password(LEDGER, "张三", "wrong password", &format!("192.0.2.{i}"))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignInFailed, "attempt {i}");
    }
    let limited = w
        .app
        .sessions
        .sign_in_password(LEDGER, "张三", PASSWORD, "192.0.2.99")
        .await
        .unwrap_err();
    assert_eq!(limited.code, ErrorCode::TooManyAttempts);
    let wait = limited.fields.retry_after.unwrap();
    assert!((1..=15 * 60).contains(&wait), "{wait}");

    let restarted = App::new(
        w.h.second_stores().await,
        w.h.clock.clone(),
        w.h.entropy.clone(),
    );
    let still = restarted
        .sessions
        .sign_in_password(LEDGER, "张三", PASSWORD, "192.0.2.100")
        .await
        .unwrap_err();
    assert_eq!(
        still.code,
        ErrorCode::TooManyAttempts,
        "the count survives a restart"
    );

    // Per client: 30 failures from one address, each for another name.
    let client = "203.0.113.66";
    for i in 0..30 {
        let e = w
            .app
            .sessions
            .sign_in_password(LEDGER, &format!("nobody-{i}"), "guess", client)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignInFailed, "attempt {i}");
    }
    w.user(Role::Auditor, None, "李四").await;
    let limited = restarted
        .sessions
        .sign_in_password(LEDGER, "李四", PASSWORD, client)
        .await
        .unwrap_err();
    assert_eq!(limited.code, ErrorCode::TooManyAttempts);
    let phone = restarted
        .sessions
        .sign_in_phone(LEDGER, "13800001234", &w.card.card_pin, false, client)
        .await
        .unwrap_err();
    assert_eq!(
        phone.code,
        ErrorCode::TooManyAttempts,
        "every way of signing in counts"
    );
    restarted
        .sessions
        .sign_in_password(LEDGER, "李四", PASSWORD, "203.0.113.67")
        .await
        .unwrap();

    w.h.clock.advance(15 * MINUTE);
    restarted
        .sessions
        .sign_in_password(LEDGER, "张三", PASSWORD, "192.0.2.99")
        .await
        .unwrap();
    restarted
        .sessions
        .sign_in_password(LEDGER, "李四", PASSWORD, client)
        .await
        .unwrap();

    // Clerk PINs count per clerk at the shop.
    let till = w.till().await;
    for i in 0..5 {
        let e = w
            .app
            .sessions
            .sign_in_clerk(
                LEDGER,
                &till,
                "小李",
                "111111",
                &format!("192.0.2.{}", 10 + i),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignInFailed);
    }
    let limited = w
        .app
        .sessions
        .sign_in_clerk(LEDGER, &till, "小李", PIN, "192.0.2.50")
        .await
        .unwrap_err();
    assert_eq!(limited.code, ErrorCode::TooManyAttempts);
    w.clerk_session(&till, "王店主").await;
}

async fn concurrent_guesses_do_not_overtake_the_limit(h: Harness) {
    // Proves an attempt is counted before it is tried: of 20 wrong passwords for one account
    // sent at once (from 20 clients) at most 5 are tried (`sign_in_failed`), the rest refused
    // untried (`too_many_attempts`, and not counted); tried ones and later ones add up to
    // exactly the limit of 5 in the window.
    let w = world(h).await;
    w.user(Role::Admin, None, "王五").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let sessions = w.app.sessions.clone();
        tasks.push(tokio::spawn(async move {
            sessions
                .sign_in_password(LEDGER, "王五", "wrong password", &format!("192.0.2.{i}"))
                .await
                .unwrap_err()
                .code
        }));
    }
    let mut tried = 0;
    for task in tasks {
        match task.await.unwrap() {
            ErrorCode::SignInFailed => tried += 1,
            ErrorCode::TooManyAttempts => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(tried <= 5, "{tried} guesses were tried");
    let mut later = 0;
    loop {
        let e = w
            .app
            .sessions
            .sign_in_password(LEDGER, "王五", "wrong password", "192.0.2.100")
            .await
            .unwrap_err();
        match e.code {
            ErrorCode::SignInFailed => later += 1,
            ErrorCode::TooManyAttempts => break,
            other => panic!("{other:?}"),
        }
        assert!(later <= 5);
    }
    assert_eq!(tried + later, 5, "{tried} at once, {later} after");
}

async fn residents_sign_in_with_phone_and_card_pin(h: Harness) {
    // Proves a resident signs in with their phone (however spaced) and the PIN on their card,
    // and not with another PIN, another phone, or after the card is revoked; a new card's PIN
    // replaces the old one.
    let w = world(h).await;
    let sessions = &w.app.sessions;
    let s = sessions
        .sign_in_phone(LEDGER, "138-0000-1234", &w.card.card_pin, false, CLIENT)
        .await
        .unwrap();
    let me = w.principal(&s.cookie).await.unwrap();
    assert_eq!(me.scope, Some(w.resident.id.to_string()));
    assert_eq!(s.signed_in.kind, SessionKind::Resident);
    let wrong_pin = if w.card.card_pin == "000001" {
        "000002"
    } else {
        "000001"
    };
    for (phone, pin) in [
        ("13800001234", wrong_pin),
        ("13900009999", w.card.card_pin.as_str()),
        ("1380000123", w.card.card_pin.as_str()),
        ("not a phone", w.card.card_pin.as_str()),
    ] {
        let e = sessions
            .sign_in_phone(LEDGER, phone, pin, false, CLIENT)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignInFailed, "{phone} {pin}");
    }
    let reissued = w
        .app
        .redemption
        .issue_credential(&w.staff, "card-2", w.resident.id)
        .await
        .unwrap();
    if reissued.card_pin != w.card.card_pin {
        let old = sessions
            .sign_in_phone(LEDGER, "13800001234", &w.card.card_pin, false, CLIENT)
            .await
            .unwrap_err();
        assert_eq!(old.code, ErrorCode::SignInFailed);
    }
    let s = sessions
        .sign_in_phone(
            LEDGER,
            "13800001234",
            &reissued.card_pin,
            true,
            "192.0.2.200",
        )
        .await
        .unwrap();
    assert!(s.signed_in.remember);
    w.app
        .redemption
        .revoke_credential(&w.staff, w.resident.id)
        .await
        .unwrap();
    let revoked = sessions
        .sign_in_phone(
            LEDGER,
            "13800001234",
            &reissued.card_pin,
            false,
            "192.0.2.201",
        )
        .await
        .unwrap_err();
    assert_eq!(revoked.code, ErrorCode::SignInFailed);
}

async fn every_wrong_part_gets_the_same_answer(h: Harness) {
    // Proves nothing tells which part of a sign-in was wrong: an unknown name, a wrong password,
    // a disabled user, a wrong PIN, an unknown clerk, a bad device and a bad link all answer the
    // same code and detail.
    let w = world(h).await;
    let till = w.till().await;
    w.user(Role::Staff, Some("c1"), "赵六").await;
    let s = &w.app.sessions;
    let mut answers = Vec::new();
    let mut client = 0;
    let mut next = || {
        client += 1;
        format!("192.0.2.{client}")
    };
    answers.push(
        s.sign_in_password(LEDGER, "赵六", "wrong password", &next())
            .await,
    );
    answers.push(
        s.sign_in_password(LEDGER, "无此人", PASSWORD, &next())
            .await,
    );
    answers.push(s.sign_in_password("other", "赵六", PASSWORD, &next()).await);
    answers.push(
        s.sign_in_clerk(LEDGER, &till, "小李", "999999", &next())
            .await,
    );
    answers.push(s.sign_in_clerk(LEDGER, &till, "无此人", PIN, &next()).await);
    answers.push(
        s.sign_in_clerk(LEDGER, "axd_nothing", "小李", PIN, &next())
            .await,
    );
    answers.push(s.sign_in_clerk("other", &till, "小李", PIN, &next()).await);
    answers.push(
        s.sign_in_link(LEDGER, &format!("axl_{}", "0".repeat(64)), false, &next())
            .await,
    );
    answers.push(
        s.sign_in_phone(LEDGER, "13800001234", "abc", false, &next())
            .await,
    );
    for (i, answer) in answers.into_iter().enumerate() {
        let e = answer.unwrap_err();
        assert_eq!(
            (e.code, e.detail.as_str()),
            (ErrorCode::SignInFailed, ErrorCode::SignInFailed.title()),
            "case {i}"
        );
        assert_eq!(e.fields, Default::default(), "case {i}");
    }
}

async fn managing_sign_in_is_authorized_in_the_service(h: Harness) {
    // Proves who may manage sign-in: only admins create, reset and disable users (names unique
    // per ledger; staff need a unit, admins and auditors none); tills are run by an admin,
    // staff over the shop's community or the shop's owner (a clerk is refused, another shop is
    // not found); a clerk's PIN is 6 digits and not an easy one; resident links come from staff
    // over the resident's community.
    let w = world(h).await;
    let s = &w.app.sessions;
    let refused = s
        .create_user(&w.staff, Role::Staff, Some("c1"), "某人")
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    for (role, scope, code) in [
        (Role::Staff, None, ErrorCode::InvalidBody),
        (Role::Staff, Some("nowhere"), ErrorCode::UnknownOrgUnit),
        (Role::Auditor, Some("c1"), ErrorCode::InvalidBody),
        (Role::Shop, Some("c1"), ErrorCode::InvalidBody),
        (Role::Cashier, None, ErrorCode::InvalidBody),
    ] {
        let e = s
            .create_user(&w.admin, role, scope, "某人")
            .await
            .unwrap_err();
        assert_eq!(e.code, code, "{role:?} {scope:?}");
    }
    let (user, _) = s
        .create_user(&w.admin, Role::Staff, Some("c1"), "某人")
        .await
        .unwrap();
    let taken = s
        .create_user(&w.admin, Role::Auditor, None, "某人")
        .await
        .unwrap_err();
    assert_eq!(taken.code, ErrorCode::NameTaken);
    let bad_name = s
        .create_user(&w.admin, Role::Auditor, None, "a\u{200b}b")
        .await
        .unwrap_err();
    assert_eq!(bad_name.code, ErrorCode::TextInvisible);
    let users = s.users(&w.admin).await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["某人"]
    );
    assert_eq!(s.user_named(&w.admin, "某人").await.unwrap(), user);
    for e in [
        s.users(&w.staff).await.unwrap_err(),
        s.password_reset_link(&w.staff, user.id).await.unwrap_err(),
        s.disable_user(&w.staff, user.id).await.unwrap_err(),
    ] {
        assert_eq!(e.code, ErrorCode::Forbidden);
    }
    let missing = s
        .password_reset_link(&w.admin, Uuid::from_u128(9))
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);

    let clerk = w
        .app
        .principal_of_bearer(Some(&format!("Bearer {}", w.clerk.1)))
        .await
        .unwrap();
    let owner = w
        .app
        .principal_of_bearer(Some(&format!("Bearer {}", w.owner.1)))
        .await
        .unwrap();
    let elsewhere = token_principal(&w.h, Role::Staff, Some("c2")).await;
    let resident = token_principal(&w.h, Role::Resident, Some(&w.resident.id.to_string())).await;
    let auditor = token_principal(&w.h, Role::Auditor, None).await;
    assert_eq!(
        s.pairing_link(&clerk, w.shop.id, "x")
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        s.pairing_link(&elsewhere, w.shop.id, "x")
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    for p in [&resident, &auditor] {
        assert_eq!(
            s.pairing_link(p, w.shop.id, "x").await.unwrap_err().code,
            ErrorCode::Forbidden
        );
        assert_eq!(
            s.set_clerk_pin(p, w.clerk.0.token_id, PIN)
                .await
                .unwrap_err()
                .code,
            ErrorCode::Forbidden
        );
    }
    assert_eq!(
        s.pairing_link(&owner, Uuid::from_u128(5), "x")
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    let link = s.pairing_link(&owner, w.shop.id, "x").await.unwrap();
    let till = s
        .redeem_pairing_link(LEDGER, &link.secret, None)
        .await
        .unwrap();
    assert_eq!(
        s.unpair_device(&clerk, till.device.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        s.unpair_device(&elsewhere, till.device.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    for pin in ["123456", "000000", "12345", "abcdef"] {
        assert_eq!(
            s.set_clerk_pin(&owner, w.clerk.0.token_id, pin)
                .await
                .unwrap_err()
                .code,
            ErrorCode::PinInvalid,
            "{pin}"
        );
    }
    assert_eq!(
        s.set_clerk_pin(&clerk, w.clerk.0.token_id, PIN)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        s.set_clerk_pin(&owner, Uuid::from_u128(3), PIN)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    s.set_clerk_pin(&owner, w.clerk.0.token_id, PIN)
        .await
        .unwrap();
    s.sign_in_clerk(LEDGER, &till.secret, "小李", PIN, CLIENT)
        .await
        .unwrap();
    s.unpair_device(&owner, till.device.id).await.unwrap();

    assert_eq!(
        s.resident_sign_in_link(&elsewhere, w.resident.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        s.resident_sign_in_link(&clerk, w.resident.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    s.resident_sign_in_link(&w.staff, w.resident.id)
        .await
        .unwrap();
}

async fn passwords_and_pins_are_argon2id_at_owasp_cost(h: Harness) {
    // Proves the TRUST row "Passwords (for the web pages) are Argon2id": the stored PHC strings
    // of a password and of a clerk's PIN name argon2id, version 19, and memory, iterations and
    // lanes at OWASP's recommendation (m = 19 MiB, t = 2, p = 1) or above; each has its own salt.
    let w = world(h).await;
    let a = w.user(Role::Admin, None, "甲").await;
    let b = w.user(Role::Admin, None, "乙").await;
    let store = &w.h.stores.sessions;
    let mut phcs = Vec::new();
    for user in [a, b] {
        let stored = store.user(LEDGER, user.id).await.unwrap().unwrap();
        phcs.push(stored.password_hash.unwrap());
    }
    w.till().await;
    let clerks = store
        .clerks_with_pins(LEDGER, w.shop.id, None)
        .await
        .unwrap();
    assert_eq!(clerks.len(), 3);
    phcs.extend(clerks.into_iter().map(|(_, phc)| phc));
    for phc in &phcs {
        let parts: Vec<&str> = phc.split('$').collect();
        assert_eq!(parts.len(), 6, "{phc}");
        assert_eq!((parts[1], parts[2]), ("argon2id", "v=19"), "{phc}");
        let params: BTreeMap<&str, u32> = parts[3]
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k, v.parse().unwrap())
            })
            .collect();
        assert!(params["m"] >= 19_456, "{phc}");
        assert!(params["t"] >= 2, "{phc}");
        assert!(params["p"] >= 1, "{phc}");
        assert!(!phc.contains(PASSWORD) && !phc.contains(PIN));
    }
    let salts: std::collections::BTreeSet<&str> =
        phcs.iter().map(|p| p.split('$').nth(4).unwrap()).collect();
    assert_eq!(salts.len(), phcs.len(), "salts repeat");
    assert_ne!(phcs[0], phcs[1], "the same password hashes differently");
}

async fn cashiers_may_scan_and_nothing_else(h: Harness) {
    // Proves the cashier role (a scan-only clerk): signed in at a till, a cashier redeems at
    // its shop and reads that shop's receipts, and every other operation of every service
    // refuses it (forbidden, or not found for an object), where a clerk of the same shop may
    // do some of them.
    let w = world(h).await;
    let till = w.till().await;
    let session = w.clerk_session(&till, "小张").await;
    let cashier = w.principal(&session.cookie).await.unwrap();
    assert_eq!(cashier.role, Role::Cashier);
    assert_eq!(cashier.scope, Some(w.shop.id.to_string()));
    let clerk = w
        .app
        .principal_of_bearer(Some(&format!("Bearer {}", w.clerk.1)))
        .await
        .unwrap();

    let sale = w
        .app
        .redemption
        .redeem(&cashier, "cashier-sale", w.card(), &[("RICE".into(), 1)])
        .await
        .unwrap();
    let receipt = sale.signed.receipt.id;
    assert_eq!(sale.signed.receipt.shop_id, w.shop.id);
    w.app.redemption.receipt(&cashier, receipt).await.unwrap();
    let posted =
        w.h.store
            .entries_after(LEDGER, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.kind == EntryKind::Redeem)
            .unwrap();
    assert_eq!(posted.actor, format!("token:{}", w.cashier.0.token_id));

    let refusals = refusals_of(&w, &cashier, receipt, posted.id).await;
    let mut allowed_to_clerk = 0;
    for (operation, refused) in &refusals {
        assert!(
            matches!(refused, Some(ErrorCode::Forbidden | ErrorCode::NotFound)),
            "a cashier may not {operation}: {refused:?}"
        );
    }
    for (operation, refused) in refusals_of(&w, &clerk, receipt, posted.id).await {
        if refused.is_none() {
            allowed_to_clerk += 1;
        } else {
            assert!(!operation.is_empty());
        }
    }
    assert!(
        refusals.len() >= 40,
        "{} operations checked",
        refusals.len()
    );
    assert!(
        allowed_to_clerk >= 5,
        "a clerk may do {allowed_to_clerk} of them"
    );
}

/// Every operation but redeeming and reading a receipt, called as `p` with good arguments:
/// (operation, the refusal's code or None when it succeeded).
async fn refusals_of(
    w: &World,
    p: &Principal,
    receipt: Uuid,
    entry: Uuid,
) -> Vec<(&'static str, Option<ErrorCode>)> {
    fn code<T>(r: Result<T, aixin::error::Error>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }
    let (app, shop, resident) = (&w.app, w.shop.id, w.resident.id);
    let today = aixin::calendar::day_of(w.h.clock.now_micros());
    let account = w.shop.account_id;
    let key = Uuid::new_v4().to_string();
    let terms = RuleTerms {
        community_id: "c1".into(),
        category: "visit".into(),
        name_zh: "走访".into(),
        name_en: "Visit".into(),
        mode: RuleMode::PerHour,
        points: Amount::parse("10").unwrap(),
        records_hours: true,
        cap_day: None,
        cap_month: None,
        valid_from: today,
        valid_until: None,
    };
    let record = NewRecord {
        resident_id: resident,
        rule_id: "visit".into(),
        service_date: today,
        hours_minor: 100,
        note: String::new(),
    };
    let roster = NewRoster {
        community_id: "c1".into(),
        rule_id: "visit".into(),
        service_date: today,
        title: "走访".into(),
        lines: vec![RosterLine {
            resident: resident.to_string(),
            hours: "1".into(),
        }],
    };
    let item = NewItem {
        name_zh: "面粉".into(),
        name_en: "Flour".into(),
        unit: "袋".into(),
        price: Amount::parse("5").unwrap(),
        track_stock: true,
        cap_day: None,
        cap_month: None,
        active: true,
    };
    let change = StockChange {
        delta: 5,
        reason: "restock".into(),
        note: String::new(),
    };
    let new_shop = NewShop {
        name_zh: "新店".into(),
        name_en: "New".into(),
        community_id: "c1".into(),
        serves: Vec::new(),
        refund_window_days: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let s = &app.sessions;
    let e = &app.earning;
    let r = &app.redemption;
    let j = &app.journal;
    let a = &app.audit;
    let some = Uuid::from_u128(77);
    vec![
        ("read the head", code(j.head(p).await)),
        ("verify", code(j.verify(p).await)),
        ("check the clock", code(j.clock_check(p).await)),
        (
            "open an account",
            code(
                j.open_account(
                    p,
                    &key,
                    AccountRequest {
                        id: None,
                        kind: AccountKind::Resident,
                        owner_id: None,
                        community_id: None,
                        label: "x".into(),
                    },
                )
                .await,
            ),
        ),
        ("read the shop's account", code(j.account(p, account).await)),
        (
            "read the shop's history",
            code(j.account_entries(p, account, None, 10).await),
        ),
        (
            "post an entry",
            code(
                j.post(
                    p,
                    key.clone(),
                    transfer(
                        EntryKind::Adjust,
                        account,
                        w.resident.account_id,
                        Unit::Points,
                        "1",
                    ),
                )
                .await,
            ),
        ),
        ("read the journal", code(j.entries_after(p, 0, 10).await)),
        ("read the redemption's entry", code(j.entry(p, entry).await)),
        (
            "create an organisation unit",
            code(
                e.create_org_unit(
                    p,
                    NewOrgUnit {
                        id: "c9".into(),
                        parent_id: None,
                        level: "community".into(),
                        name_zh: "x".into(),
                        name_en: "x".into(),
                        community: None,
                    },
                )
                .await,
            ),
        ),
        ("read an organisation unit", code(e.org_unit(p, "c1").await)),
        (
            "register a resident",
            code(
                e.register_resident(
                    p,
                    &key,
                    NewResident {
                        name: "x".into(),
                        phone: "13800000000".into(),
                        community_id: "c1".into(),
                    },
                )
                .await,
            ),
        ),
        ("read a resident", code(e.resident(p, resident).await)),
        ("read a balance", code(e.balance(p, resident).await)),
        ("read lots", code(e.lots(p, resident).await)),
        (
            "read a history",
            code(e.history(p, resident, None, 10).await),
        ),
        ("set a rule", code(e.set_rule(p, "visit", 1, terms).await)),
        ("read a rule", code(e.rule_versions(p, "visit").await)),
        (
            "submit a record",
            code(e.submit_record(p, &key, record).await),
        ),
        ("read a record", code(e.record(p, some).await)),
        ("approve a record", code(e.approve_record(p, some).await)),
        (
            "reject a record",
            code(e.reject_record(p, some, "no").await),
        ),
        (
            "record a roster",
            code(e.create_roster(p, &key, roster).await),
        ),
        ("read a roster", code(e.roster(p, some).await)),
        ("approve a roster", code(e.approve_roster(p, some).await)),
        (
            "request a correction",
            code(e.request_correction(p, &key, some, "x").await),
        ),
        ("read a correction", code(e.correction(p, some).await)),
        (
            "resolve a correction",
            code(
                e.resolve_correction(p, some, Resolution::Decline { note: "x".into() })
                    .await,
            ),
        ),
        ("run expiry", code(e.run_expiry(p, today).await)),
        (
            "create a shop",
            code(r.create_shop(p, &key, new_shop).await),
        ),
        ("read the shop", code(r.shop(p, shop).await)),
        (
            "add staff",
            code(r.add_shop_staff(p, &key, shop, "x", false).await),
        ),
        (
            "change the catalogue",
            code(r.put_item(p, shop, "FLOUR", item).await),
        ),
        ("read the catalogue", code(r.catalogue(p, shop).await)),
        (
            "move stock",
            code(r.move_stock(p, &key, shop, "RICE", change).await),
        ),
        (
            "read stock moves",
            code(r.stock_history(p, shop, "RICE").await),
        ),
        (
            "issue a card",
            code(r.issue_credential(p, &key, resident).await),
        ),
        (
            "revoke a card",
            code(r.revoke_credential(p, w.stranger.id).await),
        ),
        (
            "show a resident's code",
            code(r.current_code(p, resident).await),
        ),
        ("refund", code(r.refund(p, &key, receipt, None).await)),
        (
            "read a statement",
            code(r.statement(p, shop, today, today).await),
        ),
        ("settle", code(r.settle(p, &key, shop, today, today).await)),
        (
            "export an audit bundle",
            code(a.export(p, None, None, dir.path()).await),
        ),
        ("list checkpoints", code(a.checkpoints(p, 0, 10).await)),
        (
            "read the trial balance",
            code(a.trial_balance(p, None).await),
        ),
        (
            "read a community report",
            code(a.community_report(p, "c1", None).await),
        ),
        (
            "read the shop report",
            code(a.shop_report(p, &shop.to_string(), None, None).await),
        ),
        (
            "create a user",
            code(s.create_user(p, Role::Auditor, None, "x").await),
        ),
        ("list users", code(s.users(p).await)),
        (
            "make a pairing link",
            code(s.pairing_link(p, shop, "x").await),
        ),
        ("list tills", code(s.devices(p, shop).await)),
        (
            "set a PIN",
            code(s.set_clerk_pin(p, w.clerk.0.token_id, "305718").await),
        ),
        (
            "make a resident link",
            code(s.resident_sign_in_link(p, resident).await),
        ),
        (
            "end another's sessions",
            code(s.revoke_sessions_of(p, w.owner.0.token_id).await),
        ),
    ]
}

async fn the_demo_opens_to_a_browser(h: Harness) {
    // Proves what `aixin seed-demo` prints lets a browser in: each demo user sets a password
    // through their link and signs in with it; the pairing link pairs a till on which the demo
    // clerk signs in with the printed PIN; the resident signs in with their link and with their
    // phone and card PIN (the cards derive from the same keys as the server's App).
    let keys = SharedKeys::fixed(KeyRing::generate(&aixin::clock::OsEntropy, T0));
    let demo_ledger = "demo";
    let report = aixin::seed::seed_demo_with_keys(
        h.stores.clone(),
        keys.clone(),
        demo_ledger,
        120,
        2026,
        T0,
    )
    .await
    .unwrap();
    let app = App::new(
        h.stores.clone(),
        h.clock.clone(),
        std::sync::Arc::new(aixin::clock::OsEntropy),
    )
    .with_keys(keys);
    let demo = aixin::seed::open_to_browsers(&app, demo_ledger, &report)
        .await
        .unwrap();
    let s = &app.sessions;
    let roles: Vec<Role> = demo.users.iter().map(|u| u.0).collect();
    assert_eq!(roles, [Role::Admin, Role::Staff, Role::Auditor]);
    for (role, name, link) in &demo.users {
        s.set_password(demo_ledger, &link.secret, PASSWORD)
            .await
            .unwrap();
        let session = s
            .sign_in_password(demo_ledger, name, PASSWORD, CLIENT)
            .await
            .unwrap();
        assert_eq!(session.signed_in.principal.role, *role);
    }
    let till = s
        .redeem_pairing_link(demo_ledger, &demo.pairing.secret, None)
        .await
        .unwrap();
    assert_eq!(till.device.shop_id, demo.shop_id);
    let clerk = s
        .sign_in_clerk(
            demo_ledger,
            &till.secret,
            &demo.clerk,
            &demo.clerk_pin,
            CLIENT,
        )
        .await
        .unwrap();
    assert_eq!(clerk.signed_in.principal.role, Role::Shop);
    assert_eq!(
        clerk.signed_in.principal.scope,
        Some(demo.shop_id.to_string())
    );
    let resident = s
        .sign_in_link(demo_ledger, &demo.resident_link.secret, true, CLIENT)
        .await
        .unwrap();
    assert_eq!(resident.signed_in.name, demo.resident_name);
    let me = resident.signed_in.principal;
    let id: Uuid = me.scope.as_deref().unwrap().parse().unwrap();
    app.redemption.current_code(&me, id).await.unwrap();
    let by_phone = s
        .sign_in_phone(
            demo_ledger,
            &demo.resident_phone,
            &demo.resident_card_pin,
            false,
            CLIENT,
        )
        .await
        .unwrap();
    assert_eq!(by_phone.signed_in.principal, me);
}
