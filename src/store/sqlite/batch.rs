//! The SQLite writer connection and its batch statements, through rusqlite. The order they run
//! in is the driver's (`store::batch`).
//!
//! sqlx runs every SQLite statement on a worker thread of its own and hands each result back to
//! the async caller: tens of microseconds and a thread hop per statement. A batch is instead run
//! whole on a blocking thread, on one rusqlite connection to the same file (rusqlite and sqlx
//! link the same `libsqlite3-sys`), with cached prepared statements: one hop per batch, and a
//! statement execution per row costs about what a row of a set-based statement would, without
//! building and parsing JSON. sqlx keeps the pool for reads, accounts, tokens and migrations.
//!
//! Durability is the same as the pool's: WAL with `synchronous=FULL` (the WAL is fsynced at
//! every commit), one `BEGIN IMMEDIATE` transaction per batch, and the caller is answered only
//! after `COMMIT` returned.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use uuid::Uuid;

use crate::ledger::lots::{Lot, LotMove};
use crate::ledger::plan::{AccountState, KnownKey, ReversalTarget};
use crate::ledger::presence::{CredentialState, ReceiptRow};
use crate::ledger::{Head, PostedEntry, Posting, Unit, WriteRequest};
use crate::store::batch::{self, BatchTx};
use crate::store::redeem::RecentReceipts;
use crate::store::{
    amount_from_minor, hash32, metadata_text, parse_account_kind, parse_kind, parse_metadata,
    parse_side, parse_unit, parse_uuid, Outcome, StoreError,
};

/// Statements the writer keeps prepared (every statement of the batch path fits).
const STATEMENT_CACHE: usize = 64;

/// The one connection batches are written through. SQLite has one writer at a time anyway, and
/// reads (a long verification, many history pages) can never starve writes of a connection.
#[derive(Clone)]
pub(crate) struct BatchWriter {
    conn: Arc<Mutex<Connection>>,
    /// Receipts of the latest committed batches (see [`RecentReceipts`]).
    pub(crate) recent: Arc<RecentReceipts>,
}

/// How the writer connection is opened: the pool's settings, plus a bigger page cache.
pub(crate) struct WriterSettings {
    pub busy_timeout: Duration,
    pub wal_autocheckpoint_pages: u32,
    pub cache_kib: u32,
}

impl BatchWriter {
    /// Opens the database file at `path` (which the pool has created) as the batch writer.
    pub(crate) fn open(path: &Path, settings: &WriterSettings) -> Result<BatchWriter, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(settings.busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "the writer connection is in journal mode {mode:?}, not WAL"
            )));
        }
        // An acknowledged write survives power loss: the WAL is fsynced at every commit.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        if synchronous != 2 {
            return Err(StoreError::Corrupt(format!(
                "the writer connection has synchronous={synchronous}, not FULL (2)"
            )));
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            settings.wal_autocheckpoint_pages,
        )?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "cache_size", -i64::from(settings.cache_kib))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(BatchWriter {
            conn: Arc::new(Mutex::new(conn)),
            recent: Arc::default(),
        })
    }

    /// Reads, plans and writes one batch in one transaction on a blocking thread; answers after
    /// the commit (and its fsync) or with an error, in which case nothing was written.
    pub(crate) async fn commit_batch(
        &self,
        ledger_id: &str,
        now_micros: i64,
        requests: &[WriteRequest],
    ) -> Result<Vec<Outcome>, StoreError> {
        let conn = self.conn.clone();
        let recent = self.recent.clone();
        let ledger_id = ledger_id.to_owned();
        let requests = requests.to_vec();
        // Once started, the batch runs to its commit or rollback even if the caller goes away.
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // IMMEDIATE takes SQLite's write lock up front: the ledger-wide lock for this batch.
            let tx = SqliteBatch(conn.transaction_with_behavior(TransactionBehavior::Immediate)?);
            // Every statement here is synchronous, so the driver completes on its first poll.
            batch::commit_batch(tx, &recent, &ledger_id, now_micros, &requests)
                .now_or_never()
                .unwrap_or_else(|| Err(StoreError::Corrupt("the SQLite batch waited".to_owned())))
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("batch task failed: {e}")))?
    }
}

/// A batch transaction on the writer's connection; every lookup and every row is one execution
/// of a cached statement.
struct SqliteBatch<'c>(Transaction<'c>);

impl BatchTx for SqliteBatch<'_> {
    async fn lock(&mut self, ledger_id: &str) -> Result<Option<Head>, StoreError> {
        // The lock is the write lock `BEGIN IMMEDIATE` took.
        let row = self
            .0
            .prepare_cached(
                "SELECT head_seq, head_hash, head_posted_at FROM ledgers WHERE id = ?1",
            )?
            .query_row([ledger_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        row.map(|(seq, hash, posted_at_micros)| {
            Ok(Head {
                seq,
                hash: hash32(&hash)?,
                posted_at_micros,
            })
        })
        .transpose()
    }

    async fn accounts(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, AccountState>, StoreError> {
        let mut accounts = HashMap::with_capacity(ids.len());
        let mut statement = self.0.prepare_cached(
            "SELECT a.kind, b.unit, b.balance_minor
             FROM accounts a LEFT JOIN balances b ON b.ledger_id = a.ledger_id AND b.account_id = a.id
             WHERE a.ledger_id = ?1 AND a.id = ?2",
        )?;
        for id in ids {
            let text = IdText::new(id);
            let mut rows = statement.query(params![ledger_id, text.as_str()])?;
            let mut state: Option<AccountState> = None;
            while let Some(row) = rows.next()? {
                let state = match &mut state {
                    Some(state) => state,
                    None => state.insert(AccountState {
                        kind: parse_account_kind(row.get_ref(0)?.as_str()?)?,
                        balances: BTreeMap::new(),
                    }),
                };
                if let (Some(unit), Some(balance)) = (
                    row.get_ref(1)?.as_str_or_null()?,
                    row.get::<_, Option<i64>>(2)?,
                ) {
                    state.balances.insert(parse_unit(unit)?, balance);
                }
            }
            if let Some(state) = state {
                accounts.insert(*id, state);
            }
        }
        Ok(accounts)
    }

    async fn known_keys(
        &mut self,
        ledger_id: &str,
        keys: &[String],
    ) -> Result<HashMap<String, KnownKey>, StoreError> {
        let mut known = HashMap::new();
        let mut statement = self.0.prepare_cached(
            "SELECT request_hash, id FROM entries WHERE ledger_id = ?1 AND idempotency_key = ?2",
        )?;
        for key in keys {
            let mut rows = statement.query(params![ledger_id, key])?;
            if let Some(row) = rows.next()? {
                known.insert(
                    key.clone(),
                    KnownKey {
                        fingerprint: hash32(row.get_ref(0)?.as_blob()?)?,
                        entry_id: parse_uuid(row.get_ref(1)?.as_str()?)?,
                    },
                );
            }
        }
        Ok(known)
    }

    async fn open_lots(
        &mut self,
        ledger_id: &str,
        accounts: &[Uuid],
    ) -> Result<Vec<Lot>, StoreError> {
        let mut lots = Vec::new();
        let mut statement = self.0.prepare_cached(&format!(
            "SELECT {LOT_COLUMNS} FROM lots
             WHERE ledger_id = ?1 AND account_id = ?2 AND remaining_minor > 0"
        ))?;
        for account in accounts {
            let text = IdText::new(account);
            let mut rows = statement.query(params![ledger_id, text.as_str()])?;
            while let Some(row) = rows.next()? {
                lots.push(lot_from_row(row)?);
            }
        }
        Ok(lots)
    }

    async fn targets(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<(HashMap<Uuid, ReversalTarget>, Vec<Lot>), StoreError> {
        let mut targets = HashMap::new();
        let mut lots = Vec::new();
        for target_id in ids {
            let text = IdText::new(target_id);
            let row = self
                .0
                .prepare_cached(
                    "SELECT e.seq, e.kind, e.reverses,
                            EXISTS (SELECT 1 FROM entries r WHERE r.ledger_id = e.ledger_id AND r.reverses = e.id)
                     FROM entries e WHERE e.ledger_id = ?1 AND e.id = ?2",
                )?
                .query_row(params![ledger_id, text.as_str()], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .optional()?;
            let Some((seq, kind, reverses, already_reversed)) = row else {
                continue;
            };
            let lot_moves = lot_moves_of(&self.0, ledger_id, seq)?;
            lots.extend(lots_of_target(&self.0, ledger_id, seq, &lot_moves)?);
            targets.insert(
                *target_id,
                ReversalTarget {
                    seq,
                    kind: parse_kind(&kind)?,
                    reverses: reverses.as_deref().map(parse_uuid).transpose()?,
                    postings: postings_of(&self.0, ledger_id, seq)?,
                    already_reversed,
                    lot_moves,
                },
            );
        }
        Ok((targets, lots))
    }

    async fn counters(
        &mut self,
        ledger_id: &str,
        keys: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut counters = Vec::new();
        let mut statement = self
            .0
            .prepare_cached("SELECT value_minor FROM counters WHERE ledger_id = ?1 AND key = ?2")?;
        for key in keys {
            let value: Option<i64> = statement
                .query_row(params![ledger_id, key], |r| r.get(0))
                .optional()?;
            if let Some(value) = value {
                counters.push((key.clone(), value));
            }
        }
        Ok(counters)
    }

    async fn records(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        let mut records = Vec::new();
        let mut statement = self.0.prepare_cached(
            "SELECT status FROM service_records WHERE ledger_id = ?1 AND id = ?2",
        )?;
        for id in ids {
            let text = IdText::new(id);
            let status: Option<String> = statement
                .query_row(params![ledger_id, text.as_str()], |r| r.get(0))
                .optional()?;
            if let Some(status) = status {
                records.push((*id, status));
            }
        }
        Ok(records)
    }

    async fn credentials(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, CredentialState)>, StoreError> {
        let mut credentials = Vec::new();
        let mut select = self.0.prepare_cached(
            "SELECT generation, active, last_step, failures, foreign_failures FROM credentials
             WHERE ledger_id = ?1 AND id = ?2",
        )?;
        for id in ids {
            let text = IdText::new(id);
            let row = select
                .query_row(params![ledger_id, text.as_str()], |r| {
                    Ok(CredentialState {
                        generation: r.get(0)?,
                        active: r.get::<_, i64>(1)? != 0,
                        last_step: r.get(2)?,
                        failures: r.get(3)?,
                        foreign_failures: r.get(4)?,
                    })
                })
                .optional()?;
            if let Some(c) = row {
                credentials.push((*id, c));
            }
        }
        Ok(credentials)
    }

    async fn shop_failures(
        &mut self,
        ledger_id: &str,
        hour: i64,
        shops: &[Uuid],
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        let mut failures = Vec::new();
        let mut select = self.0.prepare_cached(
            "SELECT failures FROM code_failures WHERE ledger_id = ?1 AND shop_id = ?2 AND hour = ?3",
        )?;
        for shop in shops {
            let text = IdText::new(shop);
            let n: Option<i64> = select
                .query_row(params![ledger_id, text.as_str(), hour], |r| r.get(0))
                .optional()?;
            if let Some(n) = n {
                failures.push((*shop, n));
            }
        }
        Ok(failures)
    }

    async fn insert_entries(
        &mut self,
        ledger_id: &str,
        entries: &[PostedEntry],
        fingerprints: &[&[u8; 32]],
    ) -> Result<(), StoreError> {
        let mut insert_entry = self.0.prepare_cached(
            "INSERT INTO entries (ledger_id, seq, id, kind, idempotency_key, request_hash, actor, memo,
                                  metadata, reverses, posted_at, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let mut insert_posting = self.0.prepare_cached(
            "INSERT INTO postings (ledger_id, entry_seq, idx, account_id, unit, side, amount_minor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (entry, fingerprint) in entries.iter().zip(fingerprints) {
            let id = IdText::new(&entry.id);
            let reverses = entry.reverses.as_ref().map(IdText::new);
            insert_entry.execute(params![
                ledger_id,
                entry.seq,
                id.as_str(),
                entry.kind.as_str(),
                entry.idempotency_key,
                fingerprint.as_slice(),
                entry.actor,
                entry.memo,
                metadata_text(&entry.metadata),
                reverses.as_ref().map(IdText::as_str),
                entry.posted_at_micros,
                entry.prev_hash.as_slice(),
                entry.hash.as_slice(),
            ])?;
            for (index, posting) in entry.postings.iter().enumerate() {
                let account = IdText::new(&posting.account);
                insert_posting.execute(params![
                    ledger_id,
                    entry.seq,
                    index as i64,
                    account.as_str(),
                    posting.unit.as_str(),
                    posting.side.as_str(),
                    posting.amount.minor(),
                ])?;
            }
        }
        Ok(())
    }

    async fn upsert_balances(
        &mut self,
        ledger_id: &str,
        balances: &[(Uuid, Unit, i64)],
    ) -> Result<(), StoreError> {
        let mut upsert = self.0.prepare_cached(
            "INSERT INTO balances (ledger_id, account_id, unit, balance_minor) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (ledger_id, account_id, unit) DO UPDATE SET balance_minor = excluded.balance_minor",
        )?;
        for (account, unit, balance) in balances {
            let account = IdText::new(account);
            upsert.execute(params![ledger_id, account.as_str(), unit.as_str(), balance])?;
        }
        Ok(())
    }

    async fn upsert_lots(&mut self, ledger_id: &str, lots: &[Lot]) -> Result<(), StoreError> {
        let mut upsert = self.0.prepare_cached(
            "INSERT INTO lots (ledger_id, id, account_id, entry_seq, amount_minor, remaining_minor, expires_on)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (ledger_id, id) DO UPDATE SET remaining_minor = excluded.remaining_minor",
        )?;
        for lot in lots {
            let account = IdText::new(&lot.account);
            upsert.execute(params![
                ledger_id,
                lot.id,
                account.as_str(),
                lot.entry_seq,
                lot.amount_minor,
                lot.remaining_minor,
                lot.expires_on,
            ])?;
        }
        Ok(())
    }

    async fn insert_lot_moves(
        &mut self,
        ledger_id: &str,
        moves: &[LotMove],
        indexes: &[i32],
    ) -> Result<(), StoreError> {
        let mut insert = self.0.prepare_cached(
            "INSERT INTO lot_moves (ledger_id, entry_seq, idx, lot_id, account_id, amount_minor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (lot_move, idx) in moves.iter().zip(indexes) {
            let account = IdText::new(&lot_move.account);
            insert.execute(params![
                ledger_id,
                lot_move.entry_seq,
                idx,
                lot_move.lot_id,
                account.as_str(),
                lot_move.amount_minor,
            ])?;
        }
        Ok(())
    }

    async fn upsert_counters(
        &mut self,
        ledger_id: &str,
        counters: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let mut upsert = self.0.prepare_cached(
            "INSERT INTO counters (ledger_id, key, value_minor) VALUES (?1, ?2, ?3)
             ON CONFLICT (ledger_id, key) DO UPDATE SET value_minor = excluded.value_minor",
        )?;
        for (key, value) in counters {
            upsert.execute(params![ledger_id, key, value])?;
        }
        Ok(())
    }

    async fn update_record(
        &mut self,
        ledger_id: &str,
        record: Uuid,
        status: &str,
        entry: &PostedEntry,
    ) -> Result<(), StoreError> {
        let record = IdText::new(&record);
        let entry_id = IdText::new(&entry.id);
        self.0
            .prepare_cached(
                // Approval links the earn entry and its decider; a later state (reversed) keeps them.
                "UPDATE service_records SET status = ?3,
                        entry_id = CASE WHEN ?3 = 'approved' THEN ?4 ELSE entry_id END,
                        decided_by = CASE WHEN ?3 = 'approved' THEN ?5 ELSE decided_by END,
                        decided_at = CASE WHEN ?3 = 'approved' THEN ?6 ELSE decided_at END
                 WHERE ledger_id = ?1 AND id = ?2",
            )?
            .execute(params![
                ledger_id,
                record.as_str(),
                status,
                entry_id.as_str(),
                entry.actor,
                entry.posted_at_micros,
            ])?;
        Ok(())
    }

    async fn move_head(
        &mut self,
        ledger_id: &str,
        old_seq: i64,
        head: &Head,
    ) -> Result<bool, StoreError> {
        let moved = self
            .0
            .prepare_cached(
                "UPDATE ledgers SET head_seq = ?2, head_hash = ?3, head_posted_at = ?4 WHERE id = ?1 AND head_seq = ?5",
            )?
            .execute(params![
                ledger_id,
                head.seq,
                head.hash.as_slice(),
                head.posted_at_micros,
                old_seq,
            ])?;
        Ok(moved == 1)
    }

    async fn update_credentials(
        &mut self,
        ledger_id: &str,
        credentials: &BTreeMap<Uuid, CredentialState>,
        now_micros: i64,
    ) -> Result<(), StoreError> {
        let mut update = self.0.prepare_cached(
            "UPDATE credentials SET last_step = ?3, failures = ?4, foreign_failures = ?5,
                 updated_at = ?6
             WHERE ledger_id = ?1 AND id = ?2",
        )?;
        for (id, c) in credentials {
            let id = IdText::new(id);
            update.execute(params![
                ledger_id,
                id.as_str(),
                c.last_step,
                c.failures,
                c.foreign_failures,
                now_micros
            ])?;
        }
        Ok(())
    }

    async fn add_shop_failures(
        &mut self,
        ledger_id: &str,
        hour: i64,
        failures: &BTreeMap<Uuid, i64>,
    ) -> Result<(), StoreError> {
        let mut upsert = self.0.prepare_cached(
            "INSERT INTO code_failures (ledger_id, shop_id, hour, failures) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (ledger_id, shop_id, hour) DO UPDATE SET failures = failures + excluded.failures",
        )?;
        for (shop, n) in failures {
            let shop = IdText::new(shop);
            upsert.execute(params![ledger_id, shop.as_str(), hour, n])?;
        }
        Ok(())
    }

    async fn insert_receipts(
        &mut self,
        ledger_id: &str,
        receipts: &[ReceiptRow],
    ) -> Result<(), StoreError> {
        let mut insert = self.0.prepare_cached(
            "INSERT INTO receipts (ledger_id, id, entry_seq, entry_id, kind, shop_id, shop_name,
                 resident_id, resident_pseudonym, community_id, refund_of, total_minor,
                 balance_after_minor, posted_at, lines)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for r in receipts {
            let d = &r.draft;
            let refund_of = d.refund_of.as_ref().map(IdText::new);
            insert.execute(params![
                ledger_id,
                IdText::new(&d.id).as_str(),
                r.entry_seq,
                IdText::new(&r.entry_id).as_str(),
                d.kind,
                IdText::new(&d.shop_id).as_str(),
                d.shop_name,
                IdText::new(&d.resident_id).as_str(),
                d.resident_pseudonym,
                d.community_id,
                refund_of.as_ref().map(IdText::as_str),
                d.total_minor,
                r.balance_after_minor,
                r.posted_at_micros,
                d.lines_json
            ])?;
        }
        Ok(())
    }

    async fn entries(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<PostedEntry>, StoreError> {
        ids.iter()
            .map(|id| {
                entry_by_id(&self.0, ledger_id, *id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("replayed entry {id} missing")))
            })
            .collect()
    }

    async fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit()?)
    }
}

/// A UUID in its stored form (lowercase hyphenated text), without allocating.
struct IdText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl IdText {
    fn new(id: &Uuid) -> IdText {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut buf);
        IdText(buf)
    }

    fn as_str(&self) -> &str {
        // encode_lower writes ASCII only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

const LOT_COLUMNS: &str = "id, account_id, entry_seq, amount_minor, remaining_minor, expires_on";

fn lot_from_row(r: &rusqlite::Row<'_>) -> Result<Lot, StoreError> {
    Ok(Lot {
        id: r.get(0)?,
        account: parse_uuid(r.get_ref(1)?.as_str()?)?,
        entry_seq: r.get(2)?,
        amount_minor: r.get(3)?,
        remaining_minor: r.get(4)?,
        expires_on: r.get(5)?,
    })
}

/// The lot moves of the entry `seq`, in order.
fn lot_moves_of(conn: &Connection, ledger_id: &str, seq: i64) -> Result<Vec<LotMove>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT lot_id, account_id, amount_minor FROM lot_moves
         WHERE ledger_id = ?1 AND entry_seq = ?2 ORDER BY idx",
    )?;
    let mut rows = statement.query(params![ledger_id, seq])?;
    let mut lot_moves = Vec::new();
    while let Some(row) = rows.next()? {
        lot_moves.push(LotMove {
            entry_seq: seq,
            lot_id: row.get(0)?,
            account: parse_uuid(row.get_ref(1)?.as_str()?)?,
            amount_minor: row.get(2)?,
        });
    }
    Ok(lot_moves)
}

/// Every lot the entry `seq` moved (its `lot_moves`) or created.
fn lots_of_target(
    conn: &Connection,
    ledger_id: &str,
    seq: i64,
    lot_moves: &[LotMove],
) -> Result<Vec<Lot>, StoreError> {
    let mut lots = Vec::new();
    let mut by_id = conn.prepare_cached(&format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE ledger_id = ?1 AND id = ?2"
    ))?;
    for lot_move in lot_moves {
        let mut rows = by_id.query(params![ledger_id, lot_move.lot_id])?;
        if let Some(row) = rows.next()? {
            lots.push(lot_from_row(row)?);
        }
    }
    let mut by_entry = conn.prepare_cached(&format!(
        "SELECT {LOT_COLUMNS} FROM lots WHERE ledger_id = ?1 AND entry_seq = ?2"
    ))?;
    let mut rows = by_entry.query(params![ledger_id, seq])?;
    while let Some(row) = rows.next()? {
        lots.push(lot_from_row(row)?);
    }
    Ok(lots)
}

fn postings_of(conn: &Connection, ledger_id: &str, seq: i64) -> Result<Vec<Posting>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT account_id, unit, side, amount_minor FROM postings
         WHERE ledger_id = ?1 AND entry_seq = ?2 ORDER BY idx",
    )?;
    let mut rows = statement.query(params![ledger_id, seq])?;
    let mut postings = Vec::new();
    while let Some(row) = rows.next()? {
        postings.push(Posting {
            account: parse_uuid(row.get_ref(0)?.as_str()?)?,
            unit: parse_unit(row.get_ref(1)?.as_str()?)?,
            side: parse_side(row.get_ref(2)?.as_str()?)?,
            amount: amount_from_minor(row.get(3)?)?,
        });
    }
    Ok(postings)
}

/// A posted entry with its postings (for replays).
fn entry_by_id(
    conn: &Connection,
    ledger_id: &str,
    id: Uuid,
) -> Result<Option<PostedEntry>, StoreError> {
    let text = IdText::new(&id);
    let mut statement = conn.prepare_cached(
        "SELECT seq, kind, idempotency_key, actor, memo, metadata, reverses, posted_at, prev_hash, hash
         FROM entries WHERE ledger_id = ?1 AND id = ?2",
    )?;
    let mut rows = statement.query(params![ledger_id, text.as_str()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let seq: i64 = row.get(0)?;
    let mut entry = PostedEntry {
        ledger_id: ledger_id.to_owned(),
        seq,
        id,
        kind: parse_kind(row.get_ref(1)?.as_str()?)?,
        postings: Vec::new(),
        idempotency_key: row.get(2)?,
        actor: row.get(3)?,
        memo: row.get(4)?,
        metadata: parse_metadata(row.get_ref(5)?.as_str()?)?,
        reverses: row
            .get_ref(6)?
            .as_str_or_null()?
            .map(parse_uuid)
            .transpose()?,
        posted_at_micros: row.get(7)?,
        prev_hash: hash32(row.get_ref(8)?.as_blob()?)?,
        hash: hash32(row.get_ref(9)?.as_blob()?)?,
    };
    drop(rows);
    entry.postings = postings_of(conn, ledger_id, seq)?;
    Ok(Some(entry))
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(error: rusqlite::types::FromSqlError) -> Self {
        StoreError::Corrupt(format!("stored value: {error}"))
    }
}
