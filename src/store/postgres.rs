//! The PostgreSQL store, for real deployments and for several `aixin serve` processes sharing
//! one database.
//!
//! A batch locks its ledger's row (`SELECT ... FOR UPDATE`), which serialises batches of that
//! ledger across every process while other ledgers proceed in parallel. Rows travel as arrays
//! and are expanded with `UNNEST`, so each statement has one fixed text however large the batch.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    amount_from_minor, attach_postings, hash32, metadata_text, move_indexes, outcomes_from_plan,
    parse_account_kind, parse_kind, parse_metadata, parse_side, parse_unit, same_attributes,
    Account, Backend, NewAccount, Opened, Outcome, Store, StoreError, TokenRecord, VERIFY_PAGE,
};
use crate::ledger::chain::genesis_hash;
use crate::ledger::lots::{Lot, LotMove};
use crate::ledger::plan::{AccountState, KnownKey, ReversalTarget};
use crate::ledger::verify::{ChainVerifier, Problem, StoredBalance, Summary};
use crate::ledger::Checkpoint;
use crate::ledger::{
    plan_batch, BatchState, Head, Planned, PostedEntry, Posting, Unit, WriteRequest,
};

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

#[derive(sqlx::FromRow)]
struct HeadRow {
    head_seq: i64,
    head_hash: Vec<u8>,
    head_posted_at: i64,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: Uuid,
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
    id: Uuid,
    kind: String,
    idempotency_key: String,
    actor: String,
    memo: String,
    metadata: String,
    reverses: Option<Uuid>,
    posted_at: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct PostingRow {
    entry_seq: i64,
    account_id: Uuid,
    unit: String,
    side: String,
    amount_minor: i64,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    idempotency_key: String,
    request_hash: Vec<u8>,
    id: Uuid,
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    id: Uuid,
    seq: i64,
    kind: String,
    reverses: Option<Uuid>,
    reversed: bool,
}

#[derive(sqlx::FromRow)]
struct LotRow {
    id: i64,
    account_id: Uuid,
    entry_seq: i64,
    amount_minor: i64,
    remaining_minor: i64,
    expires_on: Option<String>,
}

#[derive(sqlx::FromRow)]
struct LotMoveRow {
    entry_seq: i64,
    lot_id: i64,
    account_id: Uuid,
    amount_minor: i64,
}

fn lot_from(row: LotRow) -> Lot {
    Lot {
        id: row.id,
        account: row.account_id,
        entry_seq: row.entry_seq,
        amount_minor: row.amount_minor,
        remaining_minor: row.remaining_minor,
        expires_on: row.expires_on,
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
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
    account_id: Uuid,
    kind: String,
    unit: String,
    balance_minor: i64,
}

const ENTRY_COLUMNS: &str =
    "seq, id, kind, idempotency_key, actor, memo, metadata, reverses, posted_at, prev_hash, hash";

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
        id: row.id,
        kind: parse_kind(&row.kind)?,
        postings: Vec::new(),
        memo: row.memo,
        metadata: parse_metadata(&row.metadata)?,
        reverses: row.reverses,
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
            account: row.account_id,
            unit: parse_unit(&row.unit)?,
            side: parse_side(&row.side)?,
            amount: amount_from_minor(row.amount_minor)?,
        },
    ))
}

fn accounts_from(ledger_id: &str, rows: Vec<AccountRow>) -> Result<Vec<Account>, StoreError> {
    let mut accounts: Vec<Account> = Vec::new();
    for row in rows {
        if accounts.last().map(|a| a.id) != Some(row.id) {
            accounts.push(Account {
                ledger_id: ledger_id.to_owned(),
                id: row.id,
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
        id: row.id,
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

async fn with_postings(
    conn: &mut PgConnection,
    ledger_id: &str,
    mut entries: Vec<PostedEntry>,
) -> Result<Vec<PostedEntry>, StoreError> {
    if entries.is_empty() {
        return Ok(entries);
    }
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    let postings = postings_of(conn, ledger_id, &seqs).await?;
    attach_postings(&mut entries, postings)?;
    Ok(entries)
}

/// The postings of the entries `seqs`, as (entry seq, posting), by seq then index: one index
/// probe per seq (see `read_batch_state` on why lists are probed one element at a time).
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
    rows.into_iter().map(posting_from).collect()
}

/// The values of the limit counters `keys` that exist (one probe per key).
pub(crate) async fn counter_values<'c>(
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

/// Up to `limit` entries after `after_seq`, in sequence order, with their postings.
async fn page_after(
    conn: &mut PgConnection,
    ledger_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<PostedEntry>, StoreError> {
    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE ledger_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
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
    let entries = rows
        .into_iter()
        .map(|r| entry_from(ledger_id, r))
        .collect::<Result<Vec<_>, _>>()?;
    with_postings(conn, ledger_id, entries).await
}

async fn read_head(
    conn: &mut PgConnection,
    ledger_id: &str,
    lock: bool,
) -> Result<Option<Head>, StoreError> {
    let sql = if lock {
        // NO KEY UPDATE: does not conflict with the KEY SHARE locks that foreign-key checks take,
        // so opening accounts and tokens never waits for a batch.
        "SELECT head_seq, head_hash, head_posted_at FROM ledgers WHERE id = $1 FOR NO KEY UPDATE"
    } else {
        "SELECT head_seq, head_hash, head_posted_at FROM ledgers WHERE id = $1"
    };
    let row: Option<HeadRow> = sqlx::query_as(sql)
        .bind(ledger_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(head_from).transpose()
}

async fn read_accounts(
    conn: &mut PgConnection,
    ledger_id: &str,
    ids: &[Uuid],
) -> Result<Vec<Account>, StoreError> {
    let rows: Vec<AccountRow> = sqlx::query_as(
        // One primary-key lookup per wanted id (OFFSET 0 keeps the subquery from being
        // flattened): with `a.id = ANY($2)` the planner prefers scanning the ledger's whole
        // account table once a batch names a few hundred accounts.
        "SELECT a.id, a.kind, a.owner_id, a.community_id, a.label, a.created_at, a.unit, a.balance_minor
         FROM UNNEST($2::uuid[]) AS wanted (id) CROSS JOIN LATERAL (
             SELECT a.id, a.kind, a.owner_id, a.community_id, a.label, a.created_at, b.unit, b.balance_minor
             FROM accounts a LEFT JOIN balances b ON b.ledger_id = a.ledger_id AND b.account_id = a.id
             WHERE a.ledger_id = $1 AND a.id = wanted.id OFFSET 0) a
         ORDER BY a.id, a.unit",
    )
    .bind(ledger_id)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    accounts_from(ledger_id, rows)
}

async fn read_batch_state(
    conn: &mut PgConnection,
    ledger_id: &str,
    head: Head,
    requests: &[WriteRequest],
) -> Result<BatchState, StoreError> {
    let (account_ids, keys, target_ids) = BatchState::lookups(requests);
    let accounts = read_accounts(conn, ledger_id, &account_ids)
        .await?
        .into_iter()
        .map(|a| {
            (
                a.id,
                AccountState {
                    kind: a.kind,
                    balances: a.balances,
                },
            )
        })
        .collect();
    let key_rows: Vec<KeyRow> = sqlx::query_as(
        // One unique-index lookup per key. `idempotency_key = ANY($2)` makes the planner scan
        // every entry of the ledger for a batch of a few hundred keys: a cost growing with the
        // journal, paid by every batch.
        "SELECT e.idempotency_key, e.request_hash, e.id FROM UNNEST($2::text[]) AS wanted (key)
         CROSS JOIN LATERAL (SELECT idempotency_key, request_hash, id FROM entries
                             WHERE ledger_id = $1 AND idempotency_key = wanted.key OFFSET 0) e",
    )
    .bind(ledger_id)
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    let mut known_keys = HashMap::new();
    for row in key_rows {
        known_keys.insert(
            row.idempotency_key,
            KnownKey {
                fingerprint: hash32(&row.request_hash)?,
                entry_id: row.id,
            },
        );
    }
    let mut targets = HashMap::new();
    // Open lots of the accounts the batch debits (only resident accounts have any). Every
    // lookup below that takes a list is one index probe per element (UNNEST + LATERAL, OFFSET 0
    // against flattening): with `col = ANY($2)` on the second column of a key, a table without
    // fresh statistics (any young ledger) is planned as a scan of the ledger's whole index.
    let open_lots: Vec<LotRow> = sqlx::query_as(
        "SELECT l.id, l.account_id, l.entry_seq, l.amount_minor, l.remaining_minor, l.expires_on
         FROM UNNEST($2::uuid[]) AS wanted (account) CROSS JOIN LATERAL (
             SELECT id, account_id, entry_seq, amount_minor, remaining_minor, expires_on FROM lots
             WHERE ledger_id = $1 AND account_id = wanted.account AND remaining_minor > 0 OFFSET 0) l",
    )
    .bind(ledger_id)
    .bind(BatchState::debited_accounts(requests))
    .fetch_all(&mut *conn)
    .await?;
    let mut lots: BTreeMap<i64, Lot> = open_lots.into_iter().map(|r| (r.id, lot_from(r))).collect();
    if !target_ids.is_empty() {
        let rows: Vec<TargetRow> = sqlx::query_as(
            "SELECT e.id, e.seq, e.kind, e.reverses,
                    EXISTS (SELECT 1 FROM entries r WHERE r.ledger_id = e.ledger_id AND r.reverses = e.id) AS reversed
             FROM entries e WHERE e.ledger_id = $1 AND e.id = ANY($2)",
        )
        .bind(ledger_id)
        .bind(&target_ids)
        .fetch_all(&mut *conn)
        .await?;
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let mut postings: BTreeMap<i64, Vec<Posting>> = BTreeMap::new();
        for (seq, posting) in postings_of(conn, ledger_id, &seqs).await? {
            postings.entry(seq).or_default().push(posting);
        }
        let move_rows: Vec<LotMoveRow> = sqlx::query_as(
            "SELECT m.entry_seq, m.lot_id, m.account_id, m.amount_minor
             FROM UNNEST($2::bigint[]) AS wanted (seq) CROSS JOIN LATERAL (
                 SELECT entry_seq, idx, lot_id, account_id, amount_minor FROM lot_moves
                 WHERE ledger_id = $1 AND entry_seq = wanted.seq OFFSET 0) m
             ORDER BY m.entry_seq, m.idx",
        )
        .bind(ledger_id)
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await?;
        let mut moves: BTreeMap<i64, Vec<LotMove>> = BTreeMap::new();
        let mut move_lot_ids = Vec::new();
        for row in move_rows {
            move_lot_ids.push(row.lot_id);
            moves.entry(row.entry_seq).or_default().push(LotMove {
                entry_seq: row.entry_seq,
                lot_id: row.lot_id,
                account: row.account_id,
                amount_minor: row.amount_minor,
            });
        }
        let target_lots: Vec<LotRow> = sqlx::query_as(
            "SELECT l.id, l.account_id, l.entry_seq, l.amount_minor, l.remaining_minor, l.expires_on
             FROM UNNEST($2::bigint[]) AS wanted (id) CROSS JOIN LATERAL (
                 SELECT id, account_id, entry_seq, amount_minor, remaining_minor, expires_on FROM lots
                 WHERE ledger_id = $1 AND id = wanted.id OFFSET 0) l
             UNION
             SELECT l.id, l.account_id, l.entry_seq, l.amount_minor, l.remaining_minor, l.expires_on
             FROM UNNEST($3::bigint[]) AS wanted (seq) CROSS JOIN LATERAL (
                 SELECT id, account_id, entry_seq, amount_minor, remaining_minor, expires_on FROM lots
                 WHERE ledger_id = $1 AND entry_seq = wanted.seq OFFSET 0) l",
        )
        .bind(ledger_id)
        .bind(&move_lot_ids)
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await?;
        for row in target_lots {
            lots.insert(row.id, lot_from(row));
        }
        for row in rows {
            targets.insert(
                row.id,
                ReversalTarget {
                    seq: row.seq,
                    kind: parse_kind(&row.kind)?,
                    reverses: row.reverses,
                    postings: postings.remove(&row.seq).unwrap_or_default(),
                    already_reversed: row.reversed,
                    lot_moves: moves.remove(&row.seq).unwrap_or_default(),
                },
            );
        }
    }
    let (counter_keys, record_ids) = BatchState::extra_lookups(requests);
    let mut counters = HashMap::new();
    if !counter_keys.is_empty() {
        counters.extend(counter_values(&mut *conn, ledger_id, &counter_keys).await?);
    }
    let mut records = HashMap::new();
    if !record_ids.is_empty() {
        // FOR UPDATE: a concurrent decision on the same record (a rejection) waits for this
        // batch, or this batch sees its result.
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT r.id, r.status FROM UNNEST($2::uuid[]) AS wanted (id) CROSS JOIN LATERAL (
                 SELECT id, status FROM service_records
                 WHERE ledger_id = $1 AND id = wanted.id OFFSET 0 FOR UPDATE) r",
        )
        .bind(ledger_id)
        .bind(&record_ids)
        .fetch_all(&mut *conn)
        .await?;
        records.extend(rows);
    }
    Ok(BatchState {
        head,
        accounts,
        known_keys,
        targets,
        lots,
        counters,
        records,
        redeem: Default::default(),
    })
}

async fn write_plan(
    conn: &mut PgConnection,
    ledger_id: &str,
    old_head: &Head,
    plan: &crate::ledger::BatchPlan,
    requests: &[WriteRequest],
) -> Result<(), StoreError> {
    if plan.entries.is_empty() {
        return Ok(());
    }
    let fingerprints: HashMap<Uuid, &[u8; 32]> = requests
        .iter()
        .map(|r| (r.entry_id, &r.fingerprint))
        .collect();
    let n = plan.entries.len();
    let mut seq = Vec::with_capacity(n);
    let mut id = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut key = Vec::with_capacity(n);
    let mut request_hash = Vec::with_capacity(n);
    let mut actor = Vec::with_capacity(n);
    let mut memo = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut reverses: Vec<Option<Uuid>> = Vec::with_capacity(n);
    let mut posted_at = Vec::with_capacity(n);
    let mut prev_hash = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let (mut p_seq, mut p_idx, mut p_account, mut p_unit, mut p_side, mut p_amount) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for entry in &plan.entries {
        let fingerprint = fingerprints
            .get(&entry.id)
            .ok_or_else(|| StoreError::Corrupt("posted entry without its request".to_owned()))?;
        seq.push(entry.seq);
        id.push(entry.id);
        kind.push(entry.kind.as_str());
        key.push(entry.idempotency_key.as_str());
        request_hash.push(fingerprint.to_vec());
        actor.push(entry.actor.as_str());
        memo.push(entry.memo.as_str());
        metadata.push(metadata_text(&entry.metadata));
        reverses.push(entry.reverses);
        posted_at.push(entry.posted_at_micros);
        prev_hash.push(entry.prev_hash.to_vec());
        hash.push(entry.hash.to_vec());
        for (index, posting) in entry.postings.iter().enumerate() {
            p_seq.push(entry.seq);
            p_idx.push(index as i32);
            p_account.push(posting.account);
            p_unit.push(posting.unit.as_str());
            p_side.push(posting.side.as_str());
            p_amount.push(posting.amount.minor());
        }
    }
    sqlx::query(
        "INSERT INTO entries (ledger_id, seq, id, kind, idempotency_key, request_hash, actor, memo,
                              metadata, reverses, posted_at, prev_hash, hash)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::text[],
                                  $8::text[], $9::text[], $10::uuid[], $11::bigint[], $12::bytea[], $13::bytea[])",
    )
    .bind(ledger_id)
    .bind(&seq)
    .bind(&id)
    .bind(&kind)
    .bind(&key)
    .bind(&request_hash)
    .bind(&actor)
    .bind(&memo)
    .bind(&metadata)
    .bind(&reverses)
    .bind(&posted_at)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO postings (ledger_id, entry_seq, idx, account_id, unit, side, amount_minor)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::uuid[], $5::text[], $6::text[], $7::bigint[])",
    )
    .bind(ledger_id)
    .bind(&p_seq)
    .bind(&p_idx)
    .bind(&p_account)
    .bind(&p_unit)
    .bind(&p_side)
    .bind(&p_amount)
    .execute(&mut *conn)
    .await?;
    let b_account: Vec<Uuid> = plan.balances.iter().map(|b| b.0).collect();
    let b_unit: Vec<&str> = plan.balances.iter().map(|b| b.1.as_str()).collect();
    let b_balance: Vec<i64> = plan.balances.iter().map(|b| b.2).collect();
    sqlx::query(
        "INSERT INTO balances (ledger_id, account_id, unit, balance_minor)
         SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::bigint[])
         ON CONFLICT (ledger_id, account_id, unit) DO UPDATE SET balance_minor = excluded.balance_minor",
    )
    .bind(ledger_id)
    .bind(&b_account)
    .bind(&b_unit)
    .bind(&b_balance)
    .execute(&mut *conn)
    .await?;
    write_plan_extras(conn, ledger_id, plan).await?;
    let moved = sqlx::query(
        "UPDATE ledgers SET head_seq = $2, head_hash = $3, head_posted_at = $4 WHERE id = $1 AND head_seq = $5",
    )
    .bind(ledger_id)
    .bind(plan.head.seq)
    .bind(plan.head.hash.as_slice())
    .bind(plan.head.posted_at_micros)
    .bind(old_head.seq)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(StoreError::Corrupt(
            "the ledger head moved under the write lock".to_owned(),
        ));
    }
    Ok(())
}

/// Lots, lot moves, counters and guarded records of a batch.
async fn write_plan_extras(
    conn: &mut PgConnection,
    ledger_id: &str,
    plan: &crate::ledger::BatchPlan,
) -> Result<(), StoreError> {
    if !plan.lots.is_empty() {
        let id: Vec<i64> = plan.lots.iter().map(|l| l.id).collect();
        let account: Vec<Uuid> = plan.lots.iter().map(|l| l.account).collect();
        let seq: Vec<i64> = plan.lots.iter().map(|l| l.entry_seq).collect();
        let amount: Vec<i64> = plan.lots.iter().map(|l| l.amount_minor).collect();
        let remaining: Vec<i64> = plan.lots.iter().map(|l| l.remaining_minor).collect();
        let expires: Vec<Option<String>> = plan.lots.iter().map(|l| l.expires_on.clone()).collect();
        sqlx::query(
            "INSERT INTO lots (ledger_id, id, account_id, entry_seq, amount_minor, remaining_minor, expires_on)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])
             ON CONFLICT (ledger_id, id) DO UPDATE SET remaining_minor = excluded.remaining_minor",
        )
        .bind(ledger_id)
        .bind(&id)
        .bind(&account)
        .bind(&seq)
        .bind(&amount)
        .bind(&remaining)
        .bind(&expires)
        .execute(&mut *conn)
        .await?;
    }
    if !plan.lot_moves.is_empty() {
        let seq: Vec<i64> = plan.lot_moves.iter().map(|m| m.entry_seq).collect();
        let idx: Vec<i32> = move_indexes(&plan.lot_moves);
        let lot: Vec<i64> = plan.lot_moves.iter().map(|m| m.lot_id).collect();
        let account: Vec<Uuid> = plan.lot_moves.iter().map(|m| m.account).collect();
        let amount: Vec<i64> = plan.lot_moves.iter().map(|m| m.amount_minor).collect();
        sqlx::query(
            "INSERT INTO lot_moves (ledger_id, entry_seq, idx, lot_id, account_id, amount_minor)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::bigint[], $5::uuid[], $6::bigint[])",
        )
        .bind(ledger_id)
        .bind(&seq)
        .bind(&idx)
        .bind(&lot)
        .bind(&account)
        .bind(&amount)
        .execute(&mut *conn)
        .await?;
    }
    if !plan.counters.is_empty() {
        let key: Vec<&str> = plan.counters.iter().map(|(k, _)| k.as_str()).collect();
        let value: Vec<i64> = plan.counters.iter().map(|(_, v)| *v).collect();
        sqlx::query(
            "INSERT INTO counters (ledger_id, key, value_minor) SELECT $1, * FROM UNNEST($2::text[], $3::bigint[])
             ON CONFLICT (ledger_id, key) DO UPDATE SET value_minor = excluded.value_minor",
        )
        .bind(ledger_id)
        .bind(&key)
        .bind(&value)
        .execute(&mut *conn)
        .await?;
    }
    for (record, status, entry_id) in &plan.records {
        let entry = plan
            .entries
            .iter()
            .find(|e| e.id == *entry_id)
            .ok_or_else(|| StoreError::Corrupt("guarded record without its entry".to_owned()))?;
        sqlx::query(
            // Approval links the earn entry and its decider; a later state (reversed) keeps them.
            "UPDATE service_records SET status = $3,
                    entry_id = CASE WHEN $3 = 'approved' THEN $4 ELSE entry_id END,
                    decided_by = CASE WHEN $3 = 'approved' THEN $5 ELSE decided_by END,
                    decided_at = CASE WHEN $3 = 'approved' THEN $6 ELSE decided_at END
             WHERE ledger_id = $1 AND id = $2",
        )
        .bind(ledger_id)
        .bind(record)
        .bind(status)
        .bind(entry_id)
        .bind(&entry.actor)
        .bind(entry.posted_at_micros)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn read_balances(
    conn: &mut PgConnection,
    ledger_id: &str,
) -> Result<Vec<StoredBalance>, StoreError> {
    let rows: Vec<BalanceRow> = sqlx::query_as(
        "SELECT b.account_id, a.kind, b.unit, b.balance_minor FROM balances b
         JOIN accounts a ON a.ledger_id = b.ledger_id AND a.id = b.account_id
         WHERE b.ledger_id = $1 ORDER BY b.account_id, b.unit",
    )
    .bind(ledger_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StoredBalance {
                account: r.account_id,
                kind: parse_account_kind(&r.kind)?,
                unit: parse_unit(&r.unit)?,
                balance_minor: r.balance_minor,
            })
        })
        .collect()
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ensure_ledger(&self, ledger_id: &str, now_micros: i64) -> Result<(), StoreError> {
        let genesis = genesis_hash(ledger_id);
        sqlx::query(
            "INSERT INTO ledgers (id, created_at, genesis_hash, head_seq, head_hash, head_posted_at)
             VALUES ($1, $2, $3, 0, $3, 0) ON CONFLICT (id) DO NOTHING",
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
        let mut tx = self.writer.begin().await?;
        // The batch relies on READ COMMITTED: after waiting for the lock it must see what the
        // previous batch committed. Set it explicitly, whatever the server's default.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *tx)
            .await?;
        // The ledger-wide lock: held until commit, it orders batches from every process.
        let head = read_head(&mut tx, ledger_id, true)
            .await?
            .ok_or_else(|| StoreError::NoSuchLedger(ledger_id.to_owned()))?;
        let mut state = read_batch_state(&mut tx, ledger_id, head, requests).await?;
        state.redeem =
            super::postgres_redeem::read_redeem_state(&mut tx, ledger_id, requests, now_micros)
                .await?;
        let plan = plan_batch(ledger_id, now_micros, state, requests);
        write_plan(&mut tx, ledger_id, &head, &plan, requests).await?;
        super::postgres_redeem::write_redeem_effects(&mut tx, ledger_id, &plan, now_micros).await?;
        let replay_ids: Vec<Uuid> = plan
            .outcomes
            .iter()
            .filter_map(|o| match o {
                Planned::Replayed(id) => Some(*id),
                _ => None,
            })
            .collect();
        let replayed: BTreeMap<Uuid, PostedEntry> = if replay_ids.is_empty() {
            BTreeMap::new()
        } else {
            entries_by_ids(&mut tx, ledger_id, &replay_ids)
                .await?
                .into_iter()
                .map(|e| (e.id, e))
                .collect()
        };
        tx.commit().await?;
        self.recent.remember(ledger_id, &plan);
        outcomes_from_plan(
            plan.outcomes,
            plan.entries.into_iter().map(Some).collect(),
            &replayed,
        )
    }

    async fn open_account(
        &self,
        ledger_id: &str,
        account: &NewAccount,
        now_micros: i64,
    ) -> Result<Opened, StoreError> {
        // Spawned: sqlx 0.8's `begin` is not cancel-safe on PostgreSQL, and a handler future is
        // dropped when its client disconnects.
        detached(open_account_in(
            self.pool.clone(),
            ledger_id.to_owned(),
            account.clone(),
            now_micros,
        ))
        .await
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
        detached(account_entries_in(
            self.pool.clone(),
            ledger_id.to_owned(),
            account,
            before_seq,
            limit,
        ))
        .await
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
        read_head(&mut conn, ledger_id, false).await
    }

    async fn balances(&self, ledger_id: &str) -> Result<Vec<StoredBalance>, StoreError> {
        // A single statement sees one snapshot under READ COMMITTED.
        let mut conn = self.pool.acquire().await?;
        read_balances(&mut conn, ledger_id).await
    }

    async fn verify(&self, ledger_id: &str) -> Result<Result<Summary, Problem>, StoreError> {
        detached(verify_in(self.pool.clone(), ledger_id.to_owned())).await
    }

    async fn snapshot(&self, ledger_id: &str) -> Result<(Head, Vec<StoredBalance>), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let head = read_head(&mut tx, ledger_id, false)
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
             WHERE a.ledger_id = $1 ORDER BY a.id, b.unit",
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
        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT account_id, unit,
                    sum(CASE side WHEN 'credit' THEN amount_minor ELSE -amount_minor END)::BIGINT
             FROM postings WHERE ledger_id = $1 AND entry_seq <= $2
             GROUP BY account_id, unit",
        )
        .bind(ledger_id)
        .bind(through_seq)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(a, u, sum)| Ok((a, parse_unit(&u)?, sum)))
            .collect()
    }

    async fn last_seq_before(&self, ledger_id: &str, micros: i64) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar(
            // Times never decrease along the chain (the planner clamps them), so the last entry
            // before `micros` is the highest seq of the latest time before it: two probes of
            // entries_by_time (posted_at, ledger_id).
            "SELECT max(seq)::BIGINT FROM entries
             WHERE ledger_id = $1 AND posted_at = (
                 SELECT max(posted_at) FROM entries WHERE ledger_id = $1 AND posted_at < $2)",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ledger_id, seq) DO NOTHING",
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
             WHERE ledger_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(token.id)
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
             FROM api_tokens WHERE token_hash = $1",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(token_from).transpose()
    }

    async fn revoke_token(&self, id: Uuid, now_micros: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
        )
        .bind(id)
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
            "SELECT count(*) FROM api_tokens WHERE ledger_id = $1 AND role = $2 AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(ledger_id)
        .bind(role)
        .bind(now_micros)
        .fetch_one(&self.pool)
        .await?)
    }
}

async fn open_account_in(
    pool: PgPool,
    ledger_id: String,
    account: NewAccount,
    now_micros: i64,
) -> Result<Opened, StoreError> {
    let ledger_id = ledger_id.as_str();
    let account = &account;

    let mut tx = pool.begin().await?;
    if read_head(&mut tx, ledger_id, false).await?.is_none() {
        return Err(StoreError::NoSuchLedger(ledger_id.to_owned()));
    }
    let inserted = sqlx::query(
        "INSERT INTO accounts (ledger_id, id, kind, owner_id, community_id, label, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ledger_id, id) DO NOTHING",
    )
    .bind(ledger_id)
    .bind(account.id)
    .bind(account.kind.as_str())
    .bind(&account.owner_id)
    .bind(&account.community_id)
    .bind(&account.label)
    .bind(now_micros)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        let units: Vec<&str> = account.kind.units().map(|u| u.as_str()).collect();
        sqlx::query(
            "INSERT INTO balances (ledger_id, account_id, unit, balance_minor)
                 SELECT $1, $2, unit, 0 FROM UNNEST($3::text[]) AS unit",
        )
        .bind(ledger_id)
        .bind(account.id)
        .bind(&units)
        .execute(&mut *tx)
        .await?;
    }
    let stored = read_accounts(&mut tx, ledger_id, &[account.id])
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("account vanished".to_owned()))?;
    tx.commit().await?;
    Ok(if inserted {
        Opened::Created(stored)
    } else if same_attributes(&stored, account) {
        Opened::Existing(stored)
    } else {
        Opened::Conflict(stored)
    })
}

async fn account_entries_in(
    pool: PgPool,
    ledger_id: String,
    account: Uuid,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<PostedEntry>, StoreError> {
    let ledger_id = ledger_id.as_str();

    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE ledger_id = $1 AND seq IN (
                 SELECT DISTINCT entry_seq FROM postings
                 WHERE ledger_id = $1 AND account_id = $2 AND entry_seq < $3
                 ORDER BY entry_seq DESC LIMIT $4)
             ORDER BY seq DESC"
    ))
    .bind(ledger_id)
    .bind(account)
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

async fn verify_in(
    pool: PgPool,
    ledger_id: String,
) -> Result<Result<Summary, Problem>, StoreError> {
    let ledger_id = ledger_id.as_str();

    // REPEATABLE READ: every page, the head and the balances come from one snapshot.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let head = read_head(&mut tx, ledger_id, false)
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
    let sums: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT account_id, sum(remaining_minor)::bigint FROM lots WHERE ledger_id = $1 GROUP BY account_id")
            .bind(ledger_id)
            .fetch_all(&mut *tx)
            .await?;
    let lot_sums: std::collections::BTreeMap<Uuid, i64> = sums.into_iter().collect();
    tx.commit().await?;
    let lots_checked = crate::ledger::verify::check_lots(&balances, &lot_sums);
    Ok(verifier
        .finish(&head, balances)
        .and_then(|summary| lots_checked.map(|()| summary)))
}

/// Runs a store operation as its own task, so that dropping the caller's future (a client that
/// disconnected) cannot interrupt it between `BEGIN` and `COMMIT`.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(work)
        .await
        .map_err(|e| StoreError::Corrupt(format!("store task failed: {e}")))?
}
