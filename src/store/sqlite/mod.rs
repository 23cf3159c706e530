//! The embedded SQLite store: one file, WAL mode, synchronous=FULL.
//!
//! Reads, accounts, tokens and migrations go through an sqlx pool, with the statements both
//! backends share (`store::sql`) and the few native ones here. Batches go through one rusqlite
//! connection to the same file, on a blocking thread (`batch.rs`): a whole batch in one thread
//! hop, with cached prepared statements.

use std::str::FromStr;
use std::time::Duration;

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use uuid::Uuid;

use super::sql::ledger::{
    accounts_from, entries_from, postings_from, AccountRow, EntryRow, PostingRow, ACCOUNT_COLUMNS,
    ENTRY_COLUMNS,
};
use super::{Account, Outcome, StoreError};
use crate::ledger::{PostedEntry, Posting, WriteRequest};
use batch::{BatchWriter, WriterSettings};

mod audit;
mod batch;
mod redeem;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool (readers, plus one writer at a time per ledger).
const POOL_CONNECTIONS_MAX: u32 = 8;
/// WAL pages after which a commit checkpoints (SQLite's default is 1,000). A batch writes a few
/// hundred pages, so the default checkpoints after nearly every batch, copying the same hot index
/// pages back into the database file again and again. Durability is unaffected: a commit is
/// durable once its WAL frames are synced; a checkpoint only moves them into the main file.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;
/// Page cache of the writer's connection, in KiB (SQLite's default is 2 MiB). A batch touches
/// index pages all over the file; with a cache this size they stay cached from one batch to the
/// next instead of being read back from the OS.
const WRITER_CACHE_KIB: u32 = 64 * 1024;

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// The one connection batches are written through (rusqlite, on a blocking thread).
    pub(crate) writer: BatchWriter,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file a `sqlite:` URL names.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged write survives power loss: the WAL is fsynced at every commit.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            // Statement journals (kept only to undo one failed statement inside a transaction,
            // never needed for durability) stay in memory instead of a temporary file.
            .pragma("temp_store", "memory");
        create_owner_only(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .connect_with(options)
            .await?;
        // The pool has created the file; the writer opens the same one by its full path.
        let path: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(&pool)
                .await?;
        if path.is_empty() {
            // An in-memory or temporary database is private to one connection.
            return Err(StoreError::UnsupportedUrl);
        }
        let settings = WriterSettings {
            busy_timeout: BUSY_TIMEOUT,
            wal_autocheckpoint_pages: WAL_AUTOCHECKPOINT_PAGES,
            cache_kib: WRITER_CACHE_KIB,
        };
        let writer = tokio::task::spawn_blocking(move || {
            BatchWriter::open(std::path::Path::new(&path), &settings)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("opening the writer failed: {e}")))??;
        Ok(SqliteStore { pool, writer })
    }

    /// The pool, for tests that must reach under the store (tamper and trigger tests).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Creates a missing database file readable and writable by its owner only (SQLite gives its
/// WAL and shared-memory files the same mode), before SQLite would create it world-readable.
fn create_owner_only(path: &std::path::Path) -> Result<(), StoreError> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Database(sqlx::Error::Io(e))),
    }
}

super::sql::ledger::ledger_store!(SqliteStore, Sqlite, Backend::Sqlite, MIGRATOR);
super::sql::earning::earning_store!(SqliteStore);
super::sql::session::session_store!(SqliteStore, Sqlite);

/// What is native to SQLite below the shared statements (see `store::sql`).
impl SqliteStore {
    /// A read transaction: in WAL mode its first read fixes a snapshot, so concurrent writers
    /// neither block nor disturb it.
    async fn begin_read(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(pool.begin().await?)
    }

    /// IMMEDIATE takes the write lock up front: a deferred transaction that reads first would
    /// have to upgrade its lock, and fail at once if another writer got there first.
    async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn write_batch(
        &self,
        ledger_id: &str,
        now_micros: i64,
        requests: &[WriteRequest],
    ) -> Result<Vec<Outcome>, StoreError> {
        self.writer
            .commit_batch(ledger_id, now_micros, requests)
            .await
    }

    async fn read_accounts(
        conn: &mut SqliteConnection,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<Account>, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS}
             FROM accounts a LEFT JOIN balances b ON b.ledger_id = a.ledger_id AND b.account_id = a.id
             WHERE a.ledger_id = $1 AND a.id IN (SELECT value FROM json_each($2))
             ORDER BY a.id, b.unit"
        ))
        .bind(ledger_id)
        .bind(json!(ids).to_string())
        .fetch_all(&mut *conn)
        .await?;
        accounts_from(ledger_id, rows)
    }

    async fn entries_by_ids(
        conn: &mut SqliteConnection,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<PostedEntry>, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries
             WHERE ledger_id = $1 AND id IN (SELECT value FROM json_each($2)) ORDER BY seq"
        ))
        .bind(ledger_id)
        .bind(json!(ids).to_string())
        .fetch_all(&mut *conn)
        .await?;
        let entries = entries_from(ledger_id, rows)?;
        Self::with_postings(conn, ledger_id, entries).await
    }

    async fn postings_of(
        conn: &mut SqliteConnection,
        ledger_id: &str,
        seqs: &[i64],
    ) -> Result<Vec<(i64, Posting)>, StoreError> {
        let rows: Vec<PostingRow> = sqlx::query_as(
            "SELECT entry_seq, account_id, unit, side, amount_minor FROM postings
             WHERE ledger_id = $1 AND entry_seq IN (SELECT value FROM json_each($2))
             ORDER BY entry_seq, idx",
        )
        .bind(ledger_id)
        .bind(json!(seqs).to_string())
        .fetch_all(&mut *conn)
        .await?;
        postings_from(rows)
    }
}
