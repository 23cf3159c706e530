//! The PostgreSQL batch transaction: about a dozen statements per batch, whatever its size.
//!
//! Rows travel as arrays expanded by `UNNEST`, so each statement has one fixed text and is
//! prepared once per connection; lists are looked up one index probe per element (see
//! `postgres/mod.rs`). The order of the statements is the driver's (`store::batch`).

use std::collections::{BTreeMap, HashMap};

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::PgStore;
use crate::ledger::lots::{Lot, LotMove};
use crate::ledger::plan::{AccountState, KnownKey, ReversalTarget};
use crate::ledger::presence::{CredentialState, ReceiptRow};
use crate::ledger::{Head, PostedEntry, Posting, Unit};
use crate::store::batch::BatchTx;
use crate::store::sql::ledger::{head_from, HeadRow};
use crate::store::{hash32, metadata_text, parse_kind, StoreError};

/// A batch transaction on one of the writer's connections.
pub(super) struct PgBatch(Transaction<'static, Postgres>);

impl PgBatch {
    pub(super) async fn begin(writer: &PgPool) -> Result<PgBatch, StoreError> {
        let mut tx = writer.begin().await?;
        // The batch relies on READ COMMITTED: after waiting for the lock it must see what the
        // previous batch committed. Set it explicitly, whatever the server's default.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *tx)
            .await?;
        Ok(PgBatch(tx))
    }
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

impl BatchTx for PgBatch {
    async fn lock(&mut self, ledger_id: &str) -> Result<Option<Head>, StoreError> {
        // The ledger-wide lock: held until commit, it orders batches from every process. NO KEY
        // UPDATE does not conflict with the KEY SHARE locks that foreign-key checks take, so
        // opening accounts and tokens never waits for a batch.
        let row: Option<HeadRow> = sqlx::query_as(
            "SELECT head_seq, head_hash, head_posted_at FROM ledgers WHERE id = $1 FOR NO KEY UPDATE",
        )
        .bind(ledger_id)
        .fetch_optional(&mut *self.0)
        .await?;
        row.map(head_from).transpose()
    }

    async fn accounts(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, AccountState>, StoreError> {
        Ok(PgStore::read_accounts(&mut self.0, ledger_id, ids)
            .await?
            .into_iter()
            .map(|a| {
                let state = AccountState {
                    kind: a.kind,
                    balances: a.balances,
                };
                (a.id, state)
            })
            .collect())
    }

    async fn known_keys(
        &mut self,
        ledger_id: &str,
        keys: &[String],
    ) -> Result<HashMap<String, KnownKey>, StoreError> {
        // `idempotency_key = ANY($2)` would scan every entry of the ledger for a batch of a few
        // hundred keys: a cost growing with the journal, paid by every batch.
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT e.idempotency_key, e.request_hash, e.id FROM UNNEST($2::text[]) AS wanted (key)
             CROSS JOIN LATERAL (SELECT idempotency_key, request_hash, id FROM entries
                                 WHERE ledger_id = $1 AND idempotency_key = wanted.key OFFSET 0) e",
        )
        .bind(ledger_id)
        .bind(keys)
        .fetch_all(&mut *self.0)
        .await?;
        rows.into_iter()
            .map(|row| {
                let known = KnownKey {
                    fingerprint: hash32(&row.request_hash)?,
                    entry_id: row.id,
                };
                Ok((row.idempotency_key, known))
            })
            .collect()
    }

    async fn open_lots(
        &mut self,
        ledger_id: &str,
        accounts: &[Uuid],
    ) -> Result<Vec<Lot>, StoreError> {
        let rows: Vec<LotRow> = sqlx::query_as(
            "SELECT l.id, l.account_id, l.entry_seq, l.amount_minor, l.remaining_minor, l.expires_on
             FROM UNNEST($2::uuid[]) AS wanted (account) CROSS JOIN LATERAL (
                 SELECT id, account_id, entry_seq, amount_minor, remaining_minor, expires_on FROM lots
                 WHERE ledger_id = $1 AND account_id = wanted.account AND remaining_minor > 0 OFFSET 0) l",
        )
        .bind(ledger_id)
        .bind(accounts)
        .fetch_all(&mut *self.0)
        .await?;
        Ok(rows.into_iter().map(lot_from).collect())
    }

    async fn targets(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<(HashMap<Uuid, ReversalTarget>, Vec<Lot>), StoreError> {
        let rows: Vec<TargetRow> = sqlx::query_as(
            "SELECT e.id, e.seq, e.kind, e.reverses,
                    EXISTS (SELECT 1 FROM entries r WHERE r.ledger_id = e.ledger_id AND r.reverses = e.id) AS reversed
             FROM entries e WHERE e.ledger_id = $1 AND e.id = ANY($2)",
        )
        .bind(ledger_id)
        .bind(ids)
        .fetch_all(&mut *self.0)
        .await?;
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let mut postings: BTreeMap<i64, Vec<Posting>> = BTreeMap::new();
        for (seq, posting) in PgStore::postings_of(&mut self.0, ledger_id, &seqs).await? {
            postings.entry(seq).or_default().push(posting);
        }
        let mut moves: BTreeMap<i64, Vec<LotMove>> = BTreeMap::new();
        let mut move_lot_ids = Vec::new();
        for m in self.lot_moves_of(ledger_id, &seqs).await? {
            move_lot_ids.push(m.lot_id);
            moves.entry(m.entry_seq).or_default().push(m);
        }
        let lots = self
            .lots_of_targets(ledger_id, &move_lot_ids, &seqs)
            .await?;
        let mut targets = HashMap::new();
        for row in rows {
            let target = ReversalTarget {
                seq: row.seq,
                kind: parse_kind(&row.kind)?,
                reverses: row.reverses,
                postings: postings.remove(&row.seq).unwrap_or_default(),
                already_reversed: row.reversed,
                lot_moves: moves.remove(&row.seq).unwrap_or_default(),
            };
            targets.insert(row.id, target);
        }
        Ok((targets, lots))
    }

    async fn counters(
        &mut self,
        ledger_id: &str,
        keys: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        PgStore::counter_values(&mut *self.0, ledger_id, keys).await
    }

    async fn records(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        // FOR UPDATE: a concurrent decision on the same record (a rejection) waits for this
        // batch, or this batch sees its result.
        Ok(sqlx::query_as(
            "SELECT r.id, r.status FROM UNNEST($2::uuid[]) AS wanted (id) CROSS JOIN LATERAL (
                 SELECT id, status FROM service_records
                 WHERE ledger_id = $1 AND id = wanted.id OFFSET 0 FOR UPDATE) r",
        )
        .bind(ledger_id)
        .bind(ids)
        .fetch_all(&mut *self.0)
        .await?)
    }

    async fn credentials(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, CredentialState)>, StoreError> {
        let rows: Vec<(Uuid, i64, bool, i64, i64, i64)> = sqlx::query_as(
            "SELECT c.id, c.generation, c.active, c.last_step, c.failures, c.foreign_failures
             FROM UNNEST($2::uuid[]) AS wanted (id) CROSS JOIN LATERAL (
                 SELECT id, generation, active, last_step, failures, foreign_failures
                 FROM credentials WHERE ledger_id = $1 AND id = wanted.id OFFSET 0) c",
        )
        .bind(ledger_id)
        .bind(ids)
        .fetch_all(&mut *self.0)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, generation, active, last_step, failures, foreign_failures)| {
                    let state = CredentialState {
                        generation,
                        active,
                        last_step,
                        failures,
                        foreign_failures,
                    };
                    (id, state)
                },
            )
            .collect())
    }

    async fn shop_failures(
        &mut self,
        ledger_id: &str,
        hour: i64,
        shops: &[Uuid],
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT f.shop_id, f.failures FROM UNNEST($3::uuid[]) AS wanted (shop) CROSS JOIN LATERAL (
                 SELECT shop_id, failures FROM code_failures
                 WHERE ledger_id = $1 AND hour = $2 AND shop_id = wanted.shop OFFSET 0) f",
        )
        .bind(ledger_id)
        .bind(hour)
        .bind(shops)
        .fetch_all(&mut *self.0)
        .await?)
    }

    async fn insert_entries(
        &mut self,
        ledger_id: &str,
        entries: &[PostedEntry],
        fingerprints: &[&[u8; 32]],
    ) -> Result<(), StoreError> {
        let column = |f: fn(&PostedEntry) -> i64| entries.iter().map(f).collect::<Vec<_>>();
        let text = |f: fn(&PostedEntry) -> &str| entries.iter().map(f).collect::<Vec<_>>();
        let hashes: Vec<&[u8]> = fingerprints.iter().map(|f| f.as_slice()).collect();
        let metadata: Vec<String> = entries.iter().map(|e| metadata_text(&e.metadata)).collect();
        sqlx::query(
            "INSERT INTO entries (ledger_id, seq, id, kind, idempotency_key, request_hash, actor, memo,
                                  metadata, reverses, posted_at, prev_hash, hash)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::text[],
                                      $8::text[], $9::text[], $10::uuid[], $11::bigint[], $12::bytea[], $13::bytea[])",
        )
        .bind(ledger_id)
        .bind(column(|e| e.seq))
        .bind(entries.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind(text(|e| e.kind.as_str()))
        .bind(text(|e| &e.idempotency_key))
        .bind(hashes)
        .bind(text(|e| &e.actor))
        .bind(text(|e| &e.memo))
        .bind(metadata)
        .bind(entries.iter().map(|e| e.reverses).collect::<Vec<_>>())
        .bind(column(|e| e.posted_at_micros))
        .bind(entries.iter().map(|e| e.prev_hash.as_slice()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.hash.as_slice()).collect::<Vec<_>>())
        .execute(&mut *self.0)
        .await?;
        self.insert_postings(ledger_id, entries).await
    }

    async fn upsert_balances(
        &mut self,
        ledger_id: &str,
        balances: &[(Uuid, Unit, i64)],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO balances (ledger_id, account_id, unit, balance_minor)
             SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::bigint[])
             ON CONFLICT (ledger_id, account_id, unit) DO UPDATE SET balance_minor = excluded.balance_minor",
        )
        .bind(ledger_id)
        .bind(balances.iter().map(|b| b.0).collect::<Vec<_>>())
        .bind(balances.iter().map(|b| b.1.as_str()).collect::<Vec<_>>())
        .bind(balances.iter().map(|b| b.2).collect::<Vec<_>>())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn upsert_lots(&mut self, ledger_id: &str, lots: &[Lot]) -> Result<(), StoreError> {
        let column = |f: fn(&Lot) -> i64| lots.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO lots (ledger_id, id, account_id, entry_seq, amount_minor, remaining_minor, expires_on)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])
             ON CONFLICT (ledger_id, id) DO UPDATE SET remaining_minor = excluded.remaining_minor",
        )
        .bind(ledger_id)
        .bind(column(|l| l.id))
        .bind(lots.iter().map(|l| l.account).collect::<Vec<_>>())
        .bind(column(|l| l.entry_seq))
        .bind(column(|l| l.amount_minor))
        .bind(column(|l| l.remaining_minor))
        .bind(lots.iter().map(|l| l.expires_on.as_deref()).collect::<Vec<_>>())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn insert_lot_moves(
        &mut self,
        ledger_id: &str,
        moves: &[LotMove],
        indexes: &[i32],
    ) -> Result<(), StoreError> {
        let column = |f: fn(&LotMove) -> i64| moves.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO lot_moves (ledger_id, entry_seq, idx, lot_id, account_id, amount_minor)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::bigint[], $5::uuid[], $6::bigint[])",
        )
        .bind(ledger_id)
        .bind(column(|m| m.entry_seq))
        .bind(indexes)
        .bind(column(|m| m.lot_id))
        .bind(moves.iter().map(|m| m.account).collect::<Vec<_>>())
        .bind(column(|m| m.amount_minor))
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn upsert_counters(
        &mut self,
        ledger_id: &str,
        counters: &[(String, i64)],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO counters (ledger_id, key, value_minor) SELECT $1, * FROM UNNEST($2::text[], $3::bigint[])
             ON CONFLICT (ledger_id, key) DO UPDATE SET value_minor = excluded.value_minor",
        )
        .bind(ledger_id)
        .bind(counters.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
        .bind(counters.iter().map(|(_, v)| *v).collect::<Vec<_>>())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn update_record(
        &mut self,
        ledger_id: &str,
        record: Uuid,
        status: &str,
        entry: &PostedEntry,
    ) -> Result<(), StoreError> {
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
        .bind(entry.id)
        .bind(&entry.actor)
        .bind(entry.posted_at_micros)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn move_head(
        &mut self,
        ledger_id: &str,
        old_seq: i64,
        head: &Head,
    ) -> Result<bool, StoreError> {
        let moved = sqlx::query(
            "UPDATE ledgers SET head_seq = $2, head_hash = $3, head_posted_at = $4 WHERE id = $1 AND head_seq = $5",
        )
        .bind(ledger_id)
        .bind(head.seq)
        .bind(head.hash.as_slice())
        .bind(head.posted_at_micros)
        .bind(old_seq)
        .execute(&mut *self.0)
        .await?;
        Ok(moved.rows_affected() == 1)
    }

    async fn update_credentials(
        &mut self,
        ledger_id: &str,
        credentials: &BTreeMap<Uuid, CredentialState>,
        now_micros: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE credentials c SET last_step = u.last_step, failures = u.failures,
                 foreign_failures = u.foreign_failures, updated_at = $6
             FROM UNNEST($2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[])
                 AS u(id, last_step, failures, foreign_failures)
             WHERE c.ledger_id = $1 AND c.id = u.id",
        )
        .bind(ledger_id)
        .bind(credentials.keys().copied().collect::<Vec<_>>())
        .bind(
            credentials
                .values()
                .map(|c| c.last_step)
                .collect::<Vec<_>>(),
        )
        .bind(credentials.values().map(|c| c.failures).collect::<Vec<_>>())
        .bind(
            credentials
                .values()
                .map(|c| c.foreign_failures)
                .collect::<Vec<_>>(),
        )
        .bind(now_micros)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn add_shop_failures(
        &mut self,
        ledger_id: &str,
        hour: i64,
        failures: &BTreeMap<Uuid, i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO code_failures (ledger_id, shop_id, hour, failures)
             SELECT $1, u.shop, $2, u.n FROM UNNEST($3::uuid[], $4::bigint[]) AS u(shop, n)
             ON CONFLICT (ledger_id, shop_id, hour)
             DO UPDATE SET failures = code_failures.failures + excluded.failures",
        )
        .bind(ledger_id)
        .bind(hour)
        .bind(failures.keys().copied().collect::<Vec<_>>())
        .bind(failures.values().copied().collect::<Vec<_>>())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn insert_receipts(
        &mut self,
        ledger_id: &str,
        receipts: &[ReceiptRow],
    ) -> Result<(), StoreError> {
        let ids = |f: fn(&ReceiptRow) -> Uuid| receipts.iter().map(f).collect::<Vec<_>>();
        let text = |f: fn(&ReceiptRow) -> &str| receipts.iter().map(f).collect::<Vec<_>>();
        let column = |f: fn(&ReceiptRow) -> i64| receipts.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO receipts (ledger_id, id, entry_seq, entry_id, kind, shop_id, shop_name,
                 resident_id, resident_pseudonym, community_id, refund_of, total_minor,
                 balance_after_minor, posted_at, lines)
             SELECT $1, * FROM UNNEST($2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::uuid[],
                 $7::text[], $8::uuid[], $9::text[], $10::text[], $11::uuid[], $12::bigint[],
                 $13::bigint[], $14::bigint[], $15::text[])",
        )
        .bind(ledger_id)
        .bind(ids(|r| r.draft.id))
        .bind(column(|r| r.entry_seq))
        .bind(ids(|r| r.entry_id))
        .bind(text(|r| &r.draft.kind))
        .bind(ids(|r| r.draft.shop_id))
        .bind(text(|r| &r.draft.shop_name))
        .bind(ids(|r| r.draft.resident_id))
        .bind(text(|r| &r.draft.resident_pseudonym))
        .bind(text(|r| &r.draft.community_id))
        .bind(
            receipts
                .iter()
                .map(|r| r.draft.refund_of)
                .collect::<Vec<_>>(),
        )
        .bind(column(|r| r.draft.total_minor))
        .bind(column(|r| r.balance_after_minor))
        .bind(column(|r| r.posted_at_micros))
        .bind(text(|r| &r.draft.lines_json))
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn entries(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<PostedEntry>, StoreError> {
        PgStore::entries_by_ids(&mut self.0, ledger_id, ids).await
    }

    async fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }
}

impl PgBatch {
    async fn insert_postings(
        &mut self,
        ledger_id: &str,
        entries: &[PostedEntry],
    ) -> Result<(), StoreError> {
        let postings = || {
            entries.iter().flat_map(|e| {
                e.postings
                    .iter()
                    .enumerate()
                    .map(move |(index, p)| (e.seq, index as i32, p))
            })
        };
        sqlx::query(
            "INSERT INTO postings (ledger_id, entry_seq, idx, account_id, unit, side, amount_minor)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::uuid[], $5::text[], $6::text[], $7::bigint[])",
        )
        .bind(ledger_id)
        .bind(postings().map(|(seq, _, _)| seq).collect::<Vec<_>>())
        .bind(postings().map(|(_, idx, _)| idx).collect::<Vec<_>>())
        .bind(postings().map(|(_, _, p)| p.account).collect::<Vec<_>>())
        .bind(postings().map(|(_, _, p)| p.unit.as_str()).collect::<Vec<_>>())
        .bind(postings().map(|(_, _, p)| p.side.as_str()).collect::<Vec<_>>())
        .bind(postings().map(|(_, _, p)| p.amount.minor()).collect::<Vec<_>>())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    /// The lot moves of the entries `seqs`, by entry and position.
    async fn lot_moves_of(
        &mut self,
        ledger_id: &str,
        seqs: &[i64],
    ) -> Result<Vec<LotMove>, StoreError> {
        let rows: Vec<LotMoveRow> = sqlx::query_as(
            "SELECT m.entry_seq, m.lot_id, m.account_id, m.amount_minor
             FROM UNNEST($2::bigint[]) AS wanted (seq) CROSS JOIN LATERAL (
                 SELECT entry_seq, idx, lot_id, account_id, amount_minor FROM lot_moves
                 WHERE ledger_id = $1 AND entry_seq = wanted.seq OFFSET 0) m
             ORDER BY m.entry_seq, m.idx",
        )
        .bind(ledger_id)
        .bind(seqs)
        .fetch_all(&mut *self.0)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| LotMove {
                entry_seq: row.entry_seq,
                lot_id: row.lot_id,
                account: row.account_id,
                amount_minor: row.amount_minor,
            })
            .collect())
    }

    /// The lots `lot_ids` (those the targets moved) and those the entries `seqs` created.
    async fn lots_of_targets(
        &mut self,
        ledger_id: &str,
        lot_ids: &[i64],
        seqs: &[i64],
    ) -> Result<Vec<Lot>, StoreError> {
        let rows: Vec<LotRow> = sqlx::query_as(
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
        .bind(lot_ids)
        .bind(seqs)
        .fetch_all(&mut *self.0)
        .await?;
        Ok(rows.into_iter().map(lot_from).collect())
    }
}
