//! Shared test harness: every store test runs once on SQLite (a fresh file) and once on
//! PostgreSQL (a fresh schema in the database `AIXIN_TEST_POSTGRES_URL` names).
//!
//! Without `AIXIN_TEST_POSTGRES_URL` the PostgreSQL half of each test prints a loud SKIPPED line
//! and passes; with `AIXIN_REQUIRE_POSTGRES=1` (set by `.ci/run`) it fails instead.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use aixin::clock::{ManualClock, SeededEntropy};
use aixin::ledger::{AccountKind, Amount, EntryDraft, EntryKind, Posting, Side, Unit};
use aixin::store::postgres::PgStore;
use aixin::store::sqlite::SqliteStore;
use aixin::store::{Account, NewAccount, Opened, Store};
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use uuid::Uuid;

/// A fixed start time for tests: 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600_000_000;

/// Runs each named `async fn(Harness)` on both backends as `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::common::Harness::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(harness) = $crate::common::Harness::postgres().await {
                    super::$name(harness).await
                }
            }
        }
    )* };
}

/// Direct access under the store, for tests that play an attacker with database access.
pub enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

pub struct Harness {
    pub store: Arc<dyn Store>,
    pub stores: aixin::store::Stores,
    pub raw: Raw,
    pub clock: Arc<ManualClock>,
    pub entropy: Arc<SeededEntropy>,
    /// A second, independent store on the same database: another "process".
    pub url_or_path: Target,
    _cleanup: Cleanup,
}

#[derive(Clone)]
pub enum Target {
    Sqlite(String),
    Postgres { url: String, schema: String },
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema { url: String, schema: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::Schema { url, schema } = self {
            let (url, schema) = (url.clone(), schema.clone());
            // Drop runs inside the test's runtime; a separate thread with its own runtime may block.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub fn postgres_url() -> Option<String> {
    std::env::var("AIXIN_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

fn postgres_required() -> bool {
    std::env::var("AIXIN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

impl Harness {
    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.sqlite");
        let url = format!("sqlite:{}", path.display());
        let store = SqliteStore::connect(&url).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        let raw = Raw::Sqlite(store.pool().clone());
        Harness::finish(
            aixin::store::Stores::of(store),
            raw,
            Target::Sqlite(url),
            Cleanup::Dir(dir),
        )
        .await
    }

    /// A harness on a fresh PostgreSQL schema, or `None` (after a loud message) when no server
    /// is configured and none is required.
    pub async fn postgres() -> Option<Harness> {
        let Some(url) = postgres_url() else {
            assert!(
                !postgres_required(),
                "AIXIN_REQUIRE_POSTGRES=1 but AIXIN_TEST_POSTGRES_URL is not set"
            );
            eprintln!(
                "\n*** SKIPPED: PostgreSQL half of this test (set AIXIN_TEST_POSTGRES_URL to run it; .ci/run does) ***\n"
            );
            return None;
        };
        let schema = format!("aixin_test_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at AIXIN_TEST_POSTGRES_URL: {e}"));
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create schema");
        let store = pg_store(&url, &schema).await;
        store.migrate().await.expect("migrate postgres");
        let raw = Raw::Postgres(store.pool().clone());
        let target = Target::Postgres {
            url: url.clone(),
            schema: schema.clone(),
        };
        Some(
            Harness::finish(
                aixin::store::Stores::of(store),
                raw,
                target,
                Cleanup::Schema { url, schema },
            )
            .await,
        )
    }

    async fn finish(
        stores: aixin::store::Stores,
        raw: Raw,
        target: Target,
        cleanup: Cleanup,
    ) -> Harness {
        let store = stores.ledger.clone();
        store.ensure_ledger("test", T0).await.expect("ledger");
        Harness {
            store,
            stores,
            raw,
            clock: ManualClock::new(T0),
            entropy: SeededEntropy::new(7),
            url_or_path: target,
            _cleanup: cleanup,
        }
    }

    /// Another store on the same database, as a second `aixin serve` process would have.
    pub async fn second_store(&self) -> Arc<dyn Store> {
        match &self.url_or_path {
            Target::Sqlite(url) => {
                Arc::new(SqliteStore::connect(url).await.expect("second sqlite"))
            }
            Target::Postgres { url, schema } => Arc::new(pg_store(url, schema).await),
        }
    }

    /// Every contract on the same database through new connections: a restarted "process".
    pub async fn second_stores(&self) -> aixin::store::Stores {
        match &self.url_or_path {
            Target::Sqlite(url) => {
                aixin::store::Stores::of(SqliteStore::connect(url).await.expect("second sqlite"))
            }
            Target::Postgres { url, schema } => {
                aixin::store::Stores::of(pg_store(url, schema).await)
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.raw, Raw::Postgres(_))
    }

    /// Opens an account in ledger `test` (or `ledger`).
    pub async fn open_in(
        &self,
        ledger: &str,
        kind: AccountKind,
        owner: Option<&str>,
        community: Option<&str>,
    ) -> Account {
        let account = NewAccount {
            id: aixin::clock::Entropy::uuid(self.entropy.as_ref()),
            kind,
            owner_id: owner.map(str::to_owned),
            community_id: community.map(str::to_owned),
            label: format!("{kind} account"),
        };
        match self
            .store
            .open_account(ledger, &account, T0)
            .await
            .expect("open account")
        {
            Opened::Created(a) => a,
            other => panic!("expected a new account, got {other:?}"),
        }
    }

    pub async fn open(&self, kind: AccountKind) -> Uuid {
        self.open_in("test", kind, None, None).await.id
    }

    /// Runs SQL as an attacker with full database access would: journal triggers and foreign
    /// keys are off for this one connection. Returns rows affected.
    pub async fn tamper(&self, statements: &[&str]) {
        match &self.raw {
            Raw::Sqlite(pool) => {
                let mut conn = pool.acquire().await.expect("conn");
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut *conn)
                    .await
                    .expect("fk off");
                for trigger in [
                    "entries_refuse_update",
                    "entries_refuse_delete",
                    "postings_refuse_update",
                    "postings_refuse_delete",
                ] {
                    sqlx::query(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                        .execute(&mut *conn)
                        .await
                        .expect("drop trigger");
                }
                for sql in statements {
                    sqlx::query(sql)
                        .execute(&mut *conn)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *conn)
                    .await
                    .expect("fk on");
            }
            Raw::Postgres(pool) => {
                let mut conn = pool.acquire().await.expect("conn");
                sqlx::query("SET session_replication_role = replica")
                    .execute(&mut *conn)
                    .await
                    .expect("replica");
                for sql in statements {
                    sqlx::query(sql)
                        .execute(&mut *conn)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
                sqlx::query("SET session_replication_role = origin")
                    .execute(&mut *conn)
                    .await
                    .expect("origin");
            }
        }
    }

    /// Runs one statement with the database's protections in place; returns its error text.
    pub async fn try_exec(&self, sql: &str) -> Result<u64, String> {
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(|e| e.to_string())
    }
}

async fn pg_store(url: &str, schema: &str) -> PgStore {
    let options = PgConnectOptions::from_str(url)
        .expect("postgres url")
        .options([("search_path", schema)]);
    PgStore::connect_with(options)
        .await
        .expect("connect postgres")
}

pub fn amount(text: &str) -> Amount {
    Amount::parse(text).expect("test amount")
}

/// A two-posting entry moving `value` of `unit` from `from` to `to`.
pub fn transfer(kind: EntryKind, from: Uuid, to: Uuid, unit: Unit, value: &str) -> EntryDraft {
    EntryDraft {
        kind,
        postings: vec![
            Posting {
                account: from,
                unit,
                side: Side::Debit,
                amount: amount(value),
            },
            Posting {
                account: to,
                unit,
                side: Side::Credit,
                amount: amount(value),
            },
        ],
        memo: String::new(),
        metadata: BTreeMap::new(),
        reverses: None,
    }
}

/// The exact mirror of `draft`, reversing entry `target`.
pub fn reversal_of(draft: &EntryDraft, target: Uuid, kind: EntryKind) -> EntryDraft {
    EntryDraft {
        kind,
        postings: draft
            .postings
            .iter()
            .map(|p| Posting {
                side: p.side.opposite(),
                ..p.clone()
            })
            .collect(),
        memo: "reversal".to_owned(),
        metadata: BTreeMap::new(),
        reverses: Some(target),
    }
}

/// The invariant check of TRUST.md: the chain verifies (which includes: every entry balances per
/// unit, every stored balance equals its postings, no account below its policy), and the sum
/// over all accounts of each unit is zero.
pub async fn assert_invariants(store: &dyn Store, ledger: &str) {
    let verified = store.verify(ledger).await.expect("verify");
    assert!(verified.is_ok(), "verification failed: {verified:?}");
    let mut totals: BTreeMap<Unit, i64> = BTreeMap::new();
    for balance in store.balances(ledger).await.expect("balances") {
        *totals.entry(balance.unit).or_default() += balance.balance_minor;
    }
    for (unit, total) in totals {
        assert_eq!(total, 0, "sum over all accounts of {unit} is not zero");
    }
}
