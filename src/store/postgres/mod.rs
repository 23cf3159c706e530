//! The PostgreSQL store, for real deployments and for several `aixin serve` processes sharing
//! one database.
//!
//! A batch locks its ledger's row (`SELECT ... FOR NO KEY UPDATE`), which serialises batches of
//! that ledger across every process while other ledgers proceed in parallel. Rows travel as
//! arrays and are expanded with `UNNEST`, so each statement has one fixed text however large the
//! batch (`batch.rs`). Everything else runs the statements both backends share (`store::sql`)
//! and the few native ones here.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::sql::ledger::{
    accounts_from, entries_from, postings_from, AccountRow, EntryRow, PostingRow, ACCOUNT_COLUMNS,
    ENTRY_COLUMNS,
};
use super::{Account, Outcome, StoreError};
use crate::ledger::{PostedEntry, Posting, WriteRequest};

mod audit;
mod batch;
mod redeem;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections for reads and account/token writes.
const POOL_CONNECTIONS_MAX: u32 = 16;
/// Connections for batches (one writer per ledger uses one at a time).
const WRITER_CONNECTIONS_MAX: u32 = 4;

pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Connections reserved for the writer, so reads (a long verification, many history pages)
    /// can never starve writes of a connection.
    pub(crate) writer: PgPool,
    /// Receipts of the latest committed batches (see [`super::redeem::RecentReceipts`]).
    pub(crate) recent: super::redeem::RecentReceipts,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options (tests use this to give each test its own schema).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        // An acknowledged write is on disk: never let a server default weaken this.
        let options = options.options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .connect_with(options.clone())
            .await?;
        let writer = PgPoolOptions::new()
            .max_connections(WRITER_CONNECTIONS_MAX)
            .connect_with(options)
            .await?;
        Ok(PgStore {
            pool,
            writer,
            recent: Default::default(),
        })
    }

    /// The pool, for tests that must reach under the store (tamper and trigger tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

super::sql::ledger::ledger_store!(PgStore, Postgres, Backend::Postgres, MIGRATOR);
super::sql::earning::earning_store!(PgStore);
super::sql::session::session_store!(PgStore, Postgres);

/// What is native to PostgreSQL below the shared statements (see `store::sql`).
///
/// Lists are looked up one index probe per element (`UNNEST ... CROSS JOIN LATERAL (... OFFSET
/// 0)`, the OFFSET keeping the subquery from being flattened): with `col = ANY($2)` on the second
/// column of a key, a table without fresh statistics (any young ledger) is planned as a scan of
/// the ledger's whole index once a list has a few hundred elements.
impl PgStore {
    /// REPEATABLE READ: every statement of the transaction reads the same snapshot.
    async fn begin_read(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(pool.begin().await?)
    }

    async fn write_batch(
        &self,
        ledger_id: &str,
        now_micros: i64,
        requests: &[WriteRequest],
    ) -> Result<Vec<Outcome>, StoreError> {
        let tx = batch::PgBatch::begin(&self.writer).await?;
        super::batch::commit_batch(tx, &self.recent, ledger_id, now_micros, requests).await
    }

    /// Accounts with their balances, by id.
    async fn read_accounts(
        conn: &mut PgConnection,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<Account>, StoreError> {
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT a.id, a.kind, a.owner_id, a.community_id, a.label, a.created_at, a.unit, a.balance_minor
             FROM UNNEST($2::uuid[]) AS wanted (id) CROSS JOIN LATERAL (
                 SELECT {ACCOUNT_COLUMNS}
                 FROM accounts a LEFT JOIN balances b ON b.ledger_id = a.ledger_id AND b.account_id = a.id
                 WHERE a.ledger_id = $1 AND a.id = wanted.id OFFSET 0) a
             ORDER BY a.id, a.unit"
        ))
        .bind(ledger_id)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        accounts_from(ledger_id, rows)
    }

    async fn entries_by_ids(
        conn: &mut PgConnection,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<PostedEntry>, StoreError> {
        let rows: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE ledger_id = $1 AND id = ANY($2) ORDER BY seq"
        ))
        .bind(ledger_id)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        let entries = entries_from(ledger_id, rows)?;
        Self::with_postings(conn, ledger_id, entries).await
    }

    /// The postings of the entries `seqs`, as (entry seq, posting), by seq then index.
    async fn postings_of(
        conn: &mut PgConnection,
        ledger_id: &str,
        seqs: &[i64],
    ) -> Result<Vec<(i64, Posting)>, StoreError> {
        let rows: Vec<PostingRow> = sqlx::query_as(
            "SELECT p.entry_seq, p.account_id, p.unit, p.side, p.amount_minor
             FROM UNNEST($2::bigint[]) AS wanted (seq) CROSS JOIN LATERAL (
                 SELECT entry_seq, idx, account_id, unit, side, amount_minor FROM postings
                 WHERE ledger_id = $1 AND entry_seq = wanted.seq OFFSET 0) p
             ORDER BY p.entry_seq, p.idx",
        )
        .bind(ledger_id)
        .bind(seqs)
        .fetch_all(&mut *conn)
        .await?;
        postings_from(rows)
    }

    /// The values of the limit counters `keys` that exist.
    async fn counter_values<'c>(
        executor: impl sqlx::PgExecutor<'c>,
        ledger_id: &str,
        keys: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.key, c.value_minor FROM UNNEST($2::text[]) AS wanted (key) CROSS JOIN LATERAL (
                 SELECT key, value_minor FROM counters WHERE ledger_id = $1 AND key = wanted.key OFFSET 0) c",
        )
        .bind(ledger_id)
        .bind(keys)
        .fetch_all(executor)
        .await?)
    }
}
