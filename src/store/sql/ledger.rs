//! [`Store`](crate::store::Store) on both backends: the statements they share, and the rows.

use std::collections::BTreeMap;

use super::{opt, Id};
use crate::ledger::verify::StoredBalance;
use crate::ledger::{Head, PostedEntry, Posting};
use crate::store::{
    amount_from_minor, hash32, parse_account_kind, parse_kind, parse_metadata, parse_side,
    parse_unit, Account, StoreError, TokenRecord,
};

/// Implements [`Store`](crate::store::Store) for `$store` (with fields `pool: sqlx::Pool<$db>`)
/// from the statements both backends share. The store provides, as associated functions, what
/// is native to its backend:
/// - `begin_read(&Pool) -> Transaction`: one consistent snapshot for a multi-statement read;
/// - `begin_write(&Pool) -> Transaction`: a transaction that writes (SQLite takes its write lock
///   up front, so that the transaction never has to upgrade a read lock);
/// - `read_accounts(&mut Connection, ledger_id, &[Uuid]) -> Vec<Account>` (sorted by id);
/// - `entries_by_ids(&mut Connection, ledger_id, &[Uuid]) -> Vec<PostedEntry>` (by seq);
/// - `postings_of(&mut Connection, ledger_id, &[i64]) -> Vec<(i64, Posting)>` (by seq, index);
/// - `write_batch(&self, ledger_id, now_micros, &[WriteRequest]) -> Vec<Outcome>`;
/// - `balances_through_native(&Pool, ledger_id, through_seq)` and
///   `last_seq_before_native(&Pool, ledger_id, micros)`: the two audit aggregates, which each
///   backend computes its own way.
macro_rules! ledger_store {
    ($store:ident, $db:ty, $backend:expr, $migrator:path) => {
        const _: () = {
            use uuid::Uuid;

            use $crate::ledger::Checkpoint;
            use $crate::ledger::verify::{ChainVerifier, Problem, StoredBalance, Summary};
            use $crate::ledger::{Head, PostedEntry, Unit, WriteRequest};
            use $crate::store::sql::ledger::*;
            use $crate::store::sql::Id;
            use $crate::store::{Account, Backend, NewAccount, Opened, Outcome, Store, StoreError, TokenRecord};

            /// The shared statements, also used by the backend's own queries.
            impl $store {
                /// Loads the postings of the given entries and attaches them.
                pub(crate) async fn with_postings(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    ledger_id: &str,
                    mut entries: Vec<PostedEntry>,
                ) -> Result<Vec<PostedEntry>, StoreError> {
                    if entries.is_empty() {
                        return Ok(entries);
                    }
                    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
                    let postings = Self::postings_of(conn, ledger_id, &seqs).await?;
                    $crate::store::attach_postings(&mut entries, postings)?;
                    Ok(entries)
                }

                /// Up to `limit` entries after `after_seq`, in sequence order, with their postings.
                async fn page_after(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    ledger_id: &str,
                    after_seq: i64,
                    limit: i64,
                ) -> Result<Vec<PostedEntry>, StoreError> {
                    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
                        "SELECT {} FROM entries WHERE ledger_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                        ENTRY_COLUMNS
                    ))
                    .bind(ledger_id)
                    .bind(after_seq)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                    let entries = entries_from(ledger_id, rows)?;
                    Self::with_postings(conn, ledger_id, entries).await
                }

                async fn read_head(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    ledger_id: &str,
                ) -> Result<Option<Head>, StoreError> {
                    let row: Option<HeadRow> = sqlx::query_as(
                        "SELECT head_seq, head_hash, head_posted_at FROM ledgers WHERE id = $1",
                    )
                    .bind(ledger_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    row.map(head_from).transpose()
                }

                async fn read_balances(
                    conn: &mut <$db as sqlx::Database>::Connection,
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
                        .map(balance_from)
                        .collect()
                }

                /// Recomputes the chain and the balances from one snapshot: the entries in pages,
                /// then the stored balances and the open lots against what the pages summed up.
                async fn verify_in(
                    pool: sqlx::Pool<$db>,
                    ledger_id: String,
                ) -> Result<
                    Result<Summary, Problem>,
                    StoreError,
                > {
                    let ledger_id = ledger_id.as_str();
                    let mut tx = Self::begin_read(&pool).await?;
                    let head = Self::read_head(&mut tx, ledger_id)
                        .await?
                        .ok_or_else(|| StoreError::NoSuchLedger(ledger_id.to_owned()))?;
                    let mut verifier = ChainVerifier::new(ledger_id);
                    let mut after = 0i64;
                    loop {
                        let page =
                            Self::page_after(&mut tx, ledger_id, after, $crate::store::VERIFY_PAGE)
                                .await?;
                        let Some(last) = page.last() else { break };
                        after = last.seq;
                        for entry in &page {
                            if let Err(problem) = verifier.push(entry) {
                                return Ok(Err(problem));
                            }
                        }
                    }
                    let balances = Self::read_balances(&mut tx, ledger_id).await?;
                    let sums: Vec<(Id, i64)> = sqlx::query_as(
                        "SELECT account_id, CAST(sum(remaining_minor) AS BIGINT) FROM lots
                         WHERE ledger_id = $1 GROUP BY account_id",
                    )
                    .bind(ledger_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let lot_sums: std::collections::BTreeMap<Uuid, i64> =
                        sums.into_iter().map(|(a, sum)| (a.0, sum)).collect();
                    tx.commit().await?;
                    let lots_checked = $crate::ledger::verify::check_lots(&balances, &lot_sums);
                    Ok(verifier
                        .finish(&head, balances)
                        .and_then(|summary| lots_checked.map(|()| summary)))
                }

                async fn open_account_in(
                    pool: sqlx::Pool<$db>,
                    ledger_id: String,
                    account: NewAccount,
                    now_micros: i64,
                ) -> Result<Opened, StoreError> {
                    let ledger_id = ledger_id.as_str();
                    let mut tx = Self::begin_write(&pool).await?;
                    if Self::read_head(&mut tx, ledger_id).await?.is_none() {
                        return Err(StoreError::NoSuchLedger(ledger_id.to_owned()));
                    }
                    let inserted = sqlx::query(
                        "INSERT INTO accounts (ledger_id, id, kind, owner_id, community_id, label, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ledger_id, id) DO NOTHING",
                    )
                    .bind(ledger_id)
                    .bind(Id(account.id))
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
                        for unit in account.kind.units() {
                            sqlx::query(
                                "INSERT INTO balances (ledger_id, account_id, unit, balance_minor)
                                 VALUES ($1, $2, $3, 0)",
                            )
                            .bind(ledger_id)
                            .bind(Id(account.id))
                            .bind(unit.as_str())
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    let stored = Self::read_accounts(&mut tx, ledger_id, &[account.id])
                        .await?
                        .pop()
                        .ok_or_else(|| StoreError::Corrupt("account vanished".to_owned()))?;
                    tx.commit().await?;
                    Ok(if inserted {
                        Opened::Created(stored)
                    } else if $crate::store::same_attributes(&stored, &account) {
                        Opened::Existing(stored)
                    } else {
                        Opened::Conflict(stored)
                    })
                }

                async fn account_entries_in(
                    pool: sqlx::Pool<$db>,
                    ledger_id: String,
                    account: Uuid,
                    before_seq: Option<i64>,
                    limit: i64,
                ) -> Result<Vec<PostedEntry>, StoreError> {
                    let ledger_id = ledger_id.as_str();
                    let mut tx = Self::begin_read(&pool).await?;
                    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
                        "SELECT {} FROM entries WHERE ledger_id = $1 AND seq IN (
                             SELECT DISTINCT entry_seq FROM postings
                             WHERE ledger_id = $1 AND account_id = $2 AND entry_seq < $3
                             ORDER BY entry_seq DESC LIMIT $4)
                         ORDER BY seq DESC",
                        ENTRY_COLUMNS
                    ))
                    .bind(ledger_id)
                    .bind(Id(account))
                    .bind(before_seq.unwrap_or(i64::MAX))
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                    let entries = entries_from(ledger_id, rows)?;
                    let entries = Self::with_postings(&mut tx, ledger_id, entries).await?;
                    tx.commit().await?;
                    Ok(entries)
                }
            }

            #[async_trait::async_trait]
            impl Store for $store {
                fn backend(&self) -> Backend {
                    $backend
                }

                async fn migrate(&self) -> Result<(), StoreError> {
                    $migrator.run(&self.pool).await?;
                    Ok(())
                }

                async fn ensure_ledger(
                    &self,
                    ledger_id: &str,
                    now_micros: i64,
                ) -> Result<(), StoreError> {
                    let genesis = $crate::ledger::chain::genesis_hash(ledger_id);
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
                    self.write_batch(ledger_id, now_micros, requests).await
                }

                async fn open_account(
                    &self,
                    ledger_id: &str,
                    account: &NewAccount,
                    now_micros: i64,
                ) -> Result<Opened, StoreError> {
                    detached(Self::open_account_in(
                        self.pool.clone(),
                        ledger_id.to_owned(),
                        account.clone(),
                        now_micros,
                    ))
                    .await
                }

                async fn account(
                    &self,
                    ledger_id: &str,
                    id: Uuid,
                ) -> Result<Option<Account>, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Ok(Self::read_accounts(&mut conn, ledger_id, &[id]).await?.pop())
                }

                async fn accounts(
                    &self,
                    ledger_id: &str,
                    ids: &[Uuid],
                ) -> Result<Vec<Account>, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::read_accounts(&mut conn, ledger_id, ids).await
                }

                async fn entry(
                    &self,
                    ledger_id: &str,
                    id: Uuid,
                ) -> Result<Option<PostedEntry>, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Ok(Self::entries_by_ids(&mut conn, ledger_id, &[id]).await?.pop())
                }

                async fn account_entries(
                    &self,
                    ledger_id: &str,
                    account: Uuid,
                    before_seq: Option<i64>,
                    limit: i64,
                ) -> Result<Vec<PostedEntry>, StoreError> {
                    detached(Self::account_entries_in(
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
                    Self::page_after(&mut conn, ledger_id, after_seq, limit).await
                }

                async fn head(
                    &self,
                    ledger_id: &str,
                ) -> Result<Option<Head>, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::read_head(&mut conn, ledger_id).await
                }

                async fn balances(
                    &self,
                    ledger_id: &str,
                ) -> Result<Vec<StoredBalance>, StoreError> {
                    // A single statement sees one snapshot.
                    let mut conn = self.pool.acquire().await?;
                    Self::read_balances(&mut conn, ledger_id).await
                }

                async fn verify(
                    &self,
                    ledger_id: &str,
                ) -> Result<
                    Result<Summary, Problem>,
                    StoreError,
                > {
                    detached(Self::verify_in(
                        self.pool.clone(),
                        ledger_id.to_owned(),
                    ))
                    .await
                }

                async fn snapshot(
                    &self,
                    ledger_id: &str,
                ) -> Result<
                    (Head, Vec<StoredBalance>),
                    StoreError,
                > {
                    let mut tx = Self::begin_read(&self.pool).await?;
                    let head = Self::read_head(&mut tx, ledger_id)
                        .await?
                        .ok_or_else(|| StoreError::NoSuchLedger(ledger_id.to_owned()))?;
                    let balances = Self::read_balances(&mut tx, ledger_id).await?;
                    tx.commit().await?;
                    Ok((head, balances))
                }

                async fn all_accounts(
                    &self,
                    ledger_id: &str,
                ) -> Result<Vec<Account>, StoreError> {
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
                    Self::balances_through_native(&self.pool, ledger_id, through_seq).await
                }

                async fn last_seq_before(
                    &self,
                    ledger_id: &str,
                    micros: i64,
                ) -> Result<i64, StoreError> {
                    Self::last_seq_before_native(&self.pool, ledger_id, micros).await
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
                    .bind($crate::store::totals_text(&checkpoint.totals))
                    .bind(&checkpoint.key_id)
                    .bind(checkpoint.tag.as_slice())
                    .bind(now_micros)
                    .execute(&self.pool)
                    .await?;
                    self.checkpoints(&checkpoint.ledger_id, checkpoint.seq, checkpoint.seq)
                        .await?
                        .pop()
                        .ok_or_else(|| {
                            StoreError::Corrupt(
                                "checkpoint just stored is missing".to_owned(),
                            )
                        })
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
                            $crate::store::checkpoint_from(ledger_id, seq, &head, &totals, key_id, &tag)
                        })
                        .collect()
                }

                async fn insert_token(
                    &self,
                    token: &TokenRecord,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO api_tokens (id, ledger_id, token_hash, role, scope, label, created_at, expires_at, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(Id(token.id))
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

                async fn revoke_token(
                    &self,
                    id: Uuid,
                    now_micros: i64,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
                    )
                    .bind(Id(id))
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
        };
    };
}

pub(crate) use ledger_store;

/// Runs a store operation as its own task, so that dropping the caller's future (a client that
/// disconnected) cannot interrupt it between `BEGIN` and `COMMIT` (sqlx 0.8's `begin` is not
/// cancel-safe on PostgreSQL).
pub(crate) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(work)
        .await
        .map_err(|e| StoreError::Corrupt(format!("store task failed: {e}")))?
}

#[derive(sqlx::FromRow)]
pub(crate) struct HeadRow {
    head_seq: i64,
    head_hash: Vec<u8>,
    head_posted_at: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    id: Id,
    kind: String,
    owner_id: Option<String>,
    community_id: Option<String>,
    label: String,
    created_at: i64,
    unit: Option<String>,
    balance_minor: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct EntryRow {
    seq: i64,
    id: Id,
    kind: String,
    idempotency_key: String,
    actor: String,
    memo: String,
    metadata: String,
    reverses: Option<Id>,
    posted_at: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct PostingRow {
    entry_seq: i64,
    account_id: Id,
    unit: String,
    side: String,
    amount_minor: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: Id,
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
pub(crate) struct BalanceRow {
    account_id: Id,
    kind: String,
    unit: String,
    balance_minor: i64,
}

pub(crate) const ENTRY_COLUMNS: &str =
    "seq, id, kind, idempotency_key, actor, memo, metadata, reverses, posted_at, prev_hash, hash";

/// The columns of [`AccountRow`], accounts joined with their balances as `a` and `b`.
pub(crate) const ACCOUNT_COLUMNS: &str =
    "a.id, a.kind, a.owner_id, a.community_id, a.label, a.created_at, b.unit, b.balance_minor";

pub(crate) fn head_from(row: HeadRow) -> Result<Head, StoreError> {
    Ok(Head {
        seq: row.head_seq,
        hash: hash32(&row.head_hash)?,
        posted_at_micros: row.head_posted_at,
    })
}

pub(crate) fn entries_from(
    ledger_id: &str,
    rows: Vec<EntryRow>,
) -> Result<Vec<PostedEntry>, StoreError> {
    rows.into_iter()
        .map(|row| {
            Ok(PostedEntry {
                ledger_id: ledger_id.to_owned(),
                seq: row.seq,
                id: row.id.0,
                kind: parse_kind(&row.kind)?,
                postings: Vec::new(),
                memo: row.memo,
                metadata: parse_metadata(&row.metadata)?,
                reverses: opt(row.reverses),
                actor: row.actor,
                idempotency_key: row.idempotency_key,
                posted_at_micros: row.posted_at,
                prev_hash: hash32(&row.prev_hash)?,
                hash: hash32(&row.hash)?,
            })
        })
        .collect()
}

pub(crate) fn postings_from(rows: Vec<PostingRow>) -> Result<Vec<(i64, Posting)>, StoreError> {
    rows.into_iter()
        .map(|row| {
            Ok((
                row.entry_seq,
                Posting {
                    account: row.account_id.0,
                    unit: parse_unit(&row.unit)?,
                    side: parse_side(&row.side)?,
                    amount: amount_from_minor(row.amount_minor)?,
                },
            ))
        })
        .collect()
}

/// Accounts from their rows joined with their balances (one row per balance, by account).
pub(crate) fn accounts_from(
    ledger_id: &str,
    rows: Vec<AccountRow>,
) -> Result<Vec<Account>, StoreError> {
    let mut accounts: Vec<Account> = Vec::new();
    for row in rows {
        if accounts.last().map(|a| a.id) != Some(row.id.0) {
            accounts.push(Account {
                ledger_id: ledger_id.to_owned(),
                id: row.id.0,
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

pub(crate) fn token_from(row: TokenRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: row.id.0,
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

pub(crate) fn balance_from(row: BalanceRow) -> Result<StoredBalance, StoreError> {
    Ok(StoredBalance {
        account: row.account_id.0,
        kind: parse_account_kind(&row.kind)?,
        unit: parse_unit(&row.unit)?,
        balance_minor: row.balance_minor,
    })
}
