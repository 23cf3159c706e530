//! The embedded SQLite store: one file, WAL mode, synchronous=FULL.
//!
//! Reads, accounts, tokens and migrations go through an sqlx pool. Batches go through one
//! rusqlite connection to the same file, on a blocking thread (`sqlite_batch.rs`): a whole batch
//! in one thread hop, with cached prepared statements.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::sqlite_batch::{BatchWriter, WriterSettings};
use super::{
    amount_from_minor, attach_postings, hash32, parse_account_kind, parse_kind, parse_metadata,
    parse_side, parse_unit, same_attributes, Account, Backend, NewAccount, Opened, Outcome, Store,
    StoreError, TokenRecord, VERIFY_PAGE,
};
use crate::ledger::chain::genesis_hash;
use crate::ledger::verify::{ChainVerifier, Problem, StoredBalance, Summary};
use crate::ledger::Checkpoint;
use crate::ledger::{Head, PostedEntry, Posting, Unit, WriteRequest};

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

#[derive(sqlx::FromRow)]
struct HeadRow {
    head_seq: i64,
    head_hash: Vec<u8>,
    head_posted_at: i64,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    kind: String,
    owner_id: Option<String>,
    community_id: Option<String>,
    label: String,
    created_at: i64,
    unit: Option<String>,
    balance_minor: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    seq: i64,
    id: String,
    kind: String,
    idempotency_key: String,
    actor: String,
    memo: String,
    metadata: String,
    reverses: Option<String>,
    posted_at: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct PostingRow {
    entry_seq: i64,
    account_id: String,
    unit: String,
    side: String,
    amount_minor: i64,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    ledger_id: String,
    token_hash: Vec<u8>,
    role: String,
    scope: Option<String>,
    label: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct BalanceRow {
    account_id: String,
    kind: String,
    unit: String,
    balance_minor: i64,
}

const ENTRY_COLUMNS: &str =
    "seq, id, kind, idempotency_key, actor, memo, metadata, reverses, posted_at, prev_hash, hash";

use super::parse_uuid as uuid;

fn head_from(row: HeadRow) -> Result<Head, StoreError> {
    Ok(Head {
        seq: row.head_seq,
        hash: hash32(&row.head_hash)?,
        posted_at_micros: row.head_posted_at,
    })
}

fn entry_from(ledger_id: &str, row: EntryRow) -> Result<PostedEntry, StoreError> {
    Ok(PostedEntry {
        ledger_id: ledger_id.to_owned(),
        seq: row.seq,
        id: uuid(&row.id)?,
        kind: parse_kind(&row.kind)?,
        postings: Vec::new(),
        memo: row.memo,
        metadata: parse_metadata(&row.metadata)?,
        reverses: row.reverses.as_deref().map(uuid).transpose()?,
        actor: row.actor,
        idempotency_key: row.idempotency_key,
        posted_at_micros: row.posted_at,
        prev_hash: hash32(&row.prev_hash)?,
        hash: hash32(&row.hash)?,
    })
}

fn posting_from(row: PostingRow) -> Result<(i64, Posting), StoreError> {
    Ok((
        row.entry_seq,
        Posting {
            account: uuid(&row.account_id)?,
            unit: parse_unit(&row.unit)?,
            side: parse_side(&row.side)?,
            amount: amount_from_minor(row.amount_minor)?,
        },
    ))
}

fn accounts_from(ledger_id: &str, rows: Vec<AccountRow>) -> Result<Vec<Account>, StoreError> {
    let mut accounts: Vec<Account> = Vec::new();
    for row in rows {
        let id = uuid(&row.id)?;
        if accounts.last().map(|a| a.id) != Some(id) {
            accounts.push(Account {
                ledger_id: ledger_id.to_owned(),
                id,
                kind: parse_account_kind(&row.kind)?,
                owner_id: row.owner_id,
                community_id: row.community_id,
                label: row.label,
                created_at_micros: row.created_at,
                balances: BTreeMap::new(),
            });
        }
        if let (Some(unit), Some(balance), Some(account)) =
            (row.unit, row.balance_minor, accounts.last_mut())
        {
            account.balances.insert(parse_unit(&unit)?, balance);
        }
    }
    Ok(accounts)
}

fn token_from(row: TokenRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: uuid(&row.id)?,
        ledger_id: row.ledger_id,
        token_hash: hash32(&row.token_hash)?,
        role: row.role,
        scope: row.scope,
        label: row.label,
        created_at_micros: row.created_at,
        expires_at_micros: row.expires_at,
        revoked_at_micros: row.revoked_at,
    })
}

/// Loads the postings of the given entries and attaches them.
async fn with_postings(
    conn: &mut SqliteConnection,
    ledger_id: &str,
    mut entries: Vec<PostedEntry>,
) -> Result<Vec<PostedEntry>, StoreError> {
    if entries.is_empty() {
        return Ok(entries);
    }
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    let rows: Vec<PostingRow> = sqlx::query_as(
        "SELECT entry_seq, account_id, unit, side, amount_minor FROM postings
         WHERE ledger_id = ?1 AND entry_seq IN (SELECT value FROM json_each(?2))
         ORDER BY entry_seq, idx",
    )
    .bind(ledger_id)
    .bind(json!(seqs).to_string())
    .fetch_all(&mut *conn)
    .await?;
    let postings = rows
        .into_iter()
        .map(posting_from)
        .collect::<Result<Vec<_>, _>>()?;
    attach_postings(&mut entries, postings)?;
    Ok(entries)
}

/// Up to `limit` entries after `after_seq`, in sequence order, with their postings.
async fn page_after(
    conn: &mut SqliteConnection,
    ledger_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<PostedEntry>, StoreError> {
    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE ledger_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))
    .bind(ledger_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let entries = rows
        .into_iter()
        .map(|r| entry_from(ledger_id, r))
        .collect::<Result<Vec<_>, _>>()?;
    with_postings(conn, ledger_id, entries).await
}

async fn entries_by_ids(
    conn: &mut SqliteConnection,
    ledger_id: &str,
    ids: &[Uuid],
) -> Result<Vec<PostedEntry>, StoreError> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM entries
         WHERE ledger_id = ?1 AND id IN (SELECT value FROM json_each(?2)) ORDER BY seq"
    ))
    .bind(ledger_id)
    .bind(json!(ids).to_string())
    .fetch_all(&mut *conn)
    .await?;
    let entries = rows
        .into_iter()
        .map(|r| entry_from(ledger_id, r))
        .collect::<Result<Vec<_>, _>>()?;
    with_postings(conn, ledger_id, entries).await
}

async fn read_head(
    conn: &mut SqliteConnection,
    ledger_id: &str,
) -> Result<Option<Head>, StoreError> {
    let row: Option<HeadRow> =
        sqlx::query_as("SELECT head_seq, head_hash, head_posted_at FROM ledgers WHERE id = ?1")
            .bind(ledger_id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(head_from).transpose()
}

async fn read_accounts(
    conn: &mut SqliteConnection,
    ledger_id: &str,
    ids: &[Uuid],
) -> Result<Vec<Account>, StoreError> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let rows: Vec<AccountRow> = sqlx::query_as(
        "SELECT a.id, a.kind, a.owner_id, a.community_id, a.label, a.created_at, b.unit, b.balance_minor
         FROM accounts a LEFT JOIN balances b ON b.ledger_id = a.ledger_id AND b.account_id = a.id
         WHERE a.ledger_id = ?1 AND a.id IN (SELECT value FROM json_each(?2))
         ORDER BY a.id, b.unit",
    )
    .bind(ledger_id)
    .bind(json!(ids).to_string())
    .fetch_all(&mut *conn)
    .await?;
    accounts_from(ledger_id, rows)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ensure_ledger(&self, ledger_id: &str, now_micros: i64) -> Result<(), StoreError> {
        let genesis = genesis_hash(ledger_id);
        sqlx::query(
            "INSERT INTO ledgers (id, created_at, genesis_hash, head_seq, head_hash, head_posted_at)
             VALUES (?1, ?2, ?3, 0, ?3, 0) ON CONFLICT (id) DO NOTHING",
        )
        .bind(ledger_id)
        .bind(now_micros)
        .bind(genesis.as_slice())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ledgers(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM ledgers ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn commit_batch(
        &self,
        ledger_id: &str,
        now_micros: i64,
        requests: &[WriteRequest],
    ) -> Result<Vec<Outcome>, StoreError> {
        self.writer
            .commit_batch(ledger_id, now_micros, requests)
            .await
    }

    async fn open_account(
        &self,
        ledger_id: &str,
        account: &NewAccount,
        now_micros: i64,
    ) -> Result<Opened, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(existing) = read_accounts(&mut tx, ledger_id, &[account.id])
            .await?
            .pop()
        {
            tx.rollback().await?;
            return Ok(if same_attributes(&existing, account) {
                Opened::Existing(existing)
            } else {
                Opened::Conflict(existing)
            });
        }
        if read_head(&mut tx, ledger_id).await?.is_none() {
            return Err(StoreError::NoSuchLedger(ledger_id.to_owned()));
        }
        sqlx::query(
            "INSERT INTO accounts (ledger_id, id, kind, owner_id, community_id, label, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(ledger_id)
        .bind(account.id.to_string())
        .bind(account.kind.as_str())
        .bind(&account.owner_id)
        .bind(&account.community_id)
        .bind(&account.label)
        .bind(now_micros)
        .execute(&mut *tx)
        .await?;
        for unit in account.kind.units() {
            sqlx::query("INSERT INTO balances (ledger_id, account_id, unit, balance_minor) VALUES (?1, ?2, ?3, 0)")
                .bind(ledger_id)
                .bind(account.id.to_string())
                .bind(unit.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let created = read_accounts(&mut tx, ledger_id, &[account.id])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("account vanished".to_owned()))?;
        tx.commit().await?;
        Ok(Opened::Created(created))
    }

    async fn account(&self, ledger_id: &str, id: Uuid) -> Result<Option<Account>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(read_accounts(&mut conn, ledger_id, &[id]).await?.pop())
    }

    async fn accounts(&self, ledger_id: &str, ids: &[Uuid]) -> Result<Vec<Account>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_accounts(&mut conn, ledger_id, ids).await
    }

    async fn entry(&self, ledger_id: &str, id: Uuid) -> Result<Option<PostedEntry>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(entries_by_ids(&mut conn, ledger_id, &[id]).await?.pop())
    }

    async fn account_entries(
        &self,
        ledger_id: &str,
        account: Uuid,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<PostedEntry>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE ledger_id = ?1 AND seq IN (
                 SELECT DISTINCT entry_seq FROM postings
                 WHERE ledger_id = ?1 AND account_id = ?2 AND entry_seq < ?3
                 ORDER BY entry_seq DESC LIMIT ?4)
             ORDER BY seq DESC"
        ))
        .bind(ledger_id)
        .bind(account.to_string())
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let entries = rows
            .into_iter()
            .map(|r| entry_from(ledger_id, r))
            .collect::<Result<Vec<_>, _>>()?;
        let entries = with_postings(&mut tx, ledger_id, entries).await?;
        tx.commit().await?;
        Ok(entries)
    }

    async fn entries_after(
        &self,
        ledger_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<PostedEntry>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        page_after(&mut conn, ledger_id, after_seq, limit).await
    }

    async fn head(&self, ledger_id: &str) -> Result<Option<Head>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_head(&mut conn, ledger_id).await
    }

    async fn balances(&self, ledger_id: &str) -> Result<Vec<StoredBalance>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_balances(&mut conn, ledger_id).await
    }

    async fn verify(&self, ledger_id: &str) -> Result<Result<Summary, Problem>, StoreError> {
        // One read transaction: in WAL mode its first read fixes a snapshot, so concurrent
        // writers neither block nor disturb the verification.
        let mut tx = self.pool.begin().await?;
        let head = read_head(&mut tx, ledger_id)
            .await?
            .ok_or_else(|| StoreError::NoSuchLedger(ledger_id.to_owned()))?;
        let mut verifier = ChainVerifier::new(ledger_id);
        let mut after = 0i64;
        loop {
            let page = page_after(&mut tx, ledger_id, after, VERIFY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for entry in &page {
                if let Err(problem) = verifier.push(entry) {
                    return Ok(Err(problem));
                }
            }
        }
        let balances = read_balances(&mut tx, ledger_id).await?;
        let sums: Vec<(String, i64)> =
            sqlx::query_as("SELECT account_id, sum(remaining_minor) FROM lots WHERE ledger_id = ?1 GROUP BY account_id")
                .bind(ledger_id)
                .fetch_all(&mut *tx)
                .await?;
        let mut lot_sums = std::collections::BTreeMap::new();
        for (a, sum) in sums {
            lot_sums.insert(uuid(&a)?, sum);
        }
        tx.commit().await?;
        let lots_checked = crate::ledger::verify::check_lots(&balances, &lot_sums);
        Ok(verifier
            .finish(&head, balances)
            .and_then(|summary| lots_checked.map(|()| summary)))
    }

    async fn snapshot(&self, ledger_id: &str) -> Result<(Head, Vec<StoredBalance>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let head = read_head(&mut tx, ledger_id)
            .await?
            .ok_or_else(|| StoreError::NoSuchLedger(ledger_id.to_owned()))?;
        let balances = read_balances(&mut tx, ledger_id).await?;
        tx.commit().await?;
        Ok((head, balances))
    }

    async fn all_accounts(&self, ledger_id: &str) -> Result<Vec<Account>, StoreError> {
        let rows: Vec<AccountRow> = sqlx::query_as(
            "SELECT a.id, a.kind, a.owner_id, a.community_id, a.label, a.created_at, b.unit, b.balance_minor
             FROM accounts a LEFT JOIN balances b ON b.ledger_id = a.ledger_id AND b.account_id = a.id
             WHERE a.ledger_id = ?1 ORDER BY a.id, b.unit",
        )
        .bind(ledger_id)
        .fetch_all(&self.pool)
        .await?;
        let mut accounts = accounts_from(ledger_id, rows)?;
        accounts.sort_by_key(|a| a.id);
        Ok(accounts)
    }

    async fn balances_through(
        &self,
        ledger_id: &str,
        through_seq: i64,
    ) -> Result<Vec<(Uuid, Unit, i64)>, StoreError> {
        // Grouped by account alone and walked in the order of `postings_by_account`, so SQLite
        // aggregates as it reads instead of sorting every posting (a sorter would hold them all
        // in memory: temp_store is memory). Memory stays one row per account.
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT account_id,
                    sum(CASE WHEN unit = 'points' THEN 1 ELSE 0 END),
                    sum(CASE WHEN unit = 'points' THEN
                        CASE side WHEN 'credit' THEN amount_minor ELSE -amount_minor END ELSE 0 END),
                    sum(CASE WHEN unit = 'hours' THEN 1 ELSE 0 END),
                    sum(CASE WHEN unit = 'hours' THEN
                        CASE side WHEN 'credit' THEN amount_minor ELSE -amount_minor END ELSE 0 END)
             FROM postings INDEXED BY postings_by_account
             WHERE ledger_id = ?1 AND entry_seq <= ?2
             GROUP BY account_id",
        )
        .bind(ledger_id)
        .bind(through_seq)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len() * 2);
        for (account, points_n, points, hours_n, hours) in rows {
            let account = uuid(&account)?;
            if points_n > 0 {
                out.push((account, Unit::Points, points));
            }
            if hours_n > 0 {
                out.push((account, Unit::Hours, hours));
            }
        }
        Ok(out)
    }

    async fn last_seq_before(&self, ledger_id: &str, micros: i64) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT max(seq) FROM entries WHERE ledger_id = ?1 AND posted_at < ?2",
        )
        .bind(ledger_id)
        .bind(micros)
        .fetch_one(&self.pool)
        .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn insert_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        now_micros: i64,
    ) -> Result<Checkpoint, StoreError> {
        sqlx::query(
            "INSERT INTO checkpoints (ledger_id, seq, head_hash, totals, key_id, tag, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (ledger_id, seq) DO NOTHING",
        )
        .bind(&checkpoint.ledger_id)
        .bind(checkpoint.seq)
        .bind(checkpoint.head_hash.as_slice())
        .bind(super::totals_text(&checkpoint.totals))
        .bind(&checkpoint.key_id)
        .bind(checkpoint.tag.as_slice())
        .bind(now_micros)
        .execute(&self.pool)
        .await?;
        self.checkpoints(&checkpoint.ledger_id, checkpoint.seq, checkpoint.seq)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("checkpoint just stored is missing".to_owned()))
    }

    async fn checkpoints(
        &self,
        ledger_id: &str,
        from_seq: i64,
        to_seq: i64,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let rows: Vec<(i64, Vec<u8>, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, head_hash, totals, key_id, tag FROM checkpoints
             WHERE ledger_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq",
        )
        .bind(ledger_id)
        .bind(from_seq)
        .bind(to_seq)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(seq, head, totals, key_id, tag)| {
                super::checkpoint_from(ledger_id, seq, &head, &totals, key_id, &tag)
            })
            .collect()
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, ledger_id, token_hash, role, scope, label, created_at, expires_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(token.id.to_string())
        .bind(&token.ledger_id)
        .bind(token.token_hash.as_slice())
        .bind(&token.role)
        .bind(&token.scope)
        .bind(&token.label)
        .bind(token.created_at_micros)
        .bind(token.expires_at_micros)
        .bind(token.revoked_at_micros)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_by_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT id, ledger_id, token_hash, role, scope, label, created_at, expires_at, revoked_at
             FROM api_tokens WHERE token_hash = ?1",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(token_from).transpose()
    }

    async fn revoke_token(&self, id: Uuid, now_micros: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        )
        .bind(id.to_string())
        .bind(now_micros)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_live_tokens(
        &self,
        ledger_id: &str,
        role: &str,
        now_micros: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM api_tokens WHERE ledger_id = ?1 AND role = ?2 AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(ledger_id)
        .bind(role)
        .bind(now_micros)
        .fetch_one(&self.pool)
        .await?)
    }
}

async fn read_balances(
    conn: &mut SqliteConnection,
    ledger_id: &str,
) -> Result<Vec<StoredBalance>, StoreError> {
    let rows: Vec<BalanceRow> = sqlx::query_as(
        "SELECT b.account_id, a.kind, b.unit, b.balance_minor FROM balances b
         JOIN accounts a ON a.ledger_id = b.ledger_id AND a.id = b.account_id
         WHERE b.ledger_id = ?1 ORDER BY b.account_id, b.unit",
    )
    .bind(ledger_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StoredBalance {
                account: uuid(&r.account_id)?,
                kind: parse_account_kind(&r.kind)?,
                unit: parse_unit(&r.unit)?,
                balance_minor: r.balance_minor,
            })
        })
        .collect()
}
