//! [`RedeemStore`] on PostgreSQL, and the redemption part of a PostgreSQL batch.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::earning::Inserted;
use super::postgres::PgStore;
use super::redeem::{
    stock_key, Credential, CredentialHolder, Issued, Item, RedeemStore, Shop, ShopStaff, StockMove,
    StockMoved, StoredReceipt,
};
use super::{hash32, StoreError};
use crate::ledger::presence::{hour_of, CredentialState, RedeemState};
use crate::ledger::{BatchPlan, WriteRequest};

/// Reads the credentials and shop attempt counts of a batch's presentations.
pub(crate) async fn read_redeem_state(
    conn: &mut PgConnection,
    ledger_id: &str,
    requests: &[WriteRequest],
    now_micros: i64,
) -> Result<RedeemState, StoreError> {
    let mut state = RedeemState::default();
    let (credentials, shops) =
        RedeemState::lookups(requests.iter().filter_map(|r| r.presentation.as_ref()));
    if credentials.is_empty() {
        return Ok(state);
    }
    let rows: Vec<(Uuid, i64, bool, i64, i64)> = sqlx::query_as(
        "SELECT c.id, c.generation, c.active, c.last_step, c.failures
         FROM UNNEST($2::uuid[]) AS wanted (id) CROSS JOIN LATERAL (
             SELECT id, generation, active, last_step, failures FROM credentials
             WHERE ledger_id = $1 AND id = wanted.id OFFSET 0) c",
    )
    .bind(ledger_id)
    .bind(&credentials)
    .fetch_all(&mut *conn)
    .await?;
    for (id, generation, active, last_step, failures) in rows {
        state.credentials.insert(
            id,
            CredentialState {
                generation,
                active,
                last_step,
                failures,
            },
        );
    }
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT f.shop_id, f.failures FROM UNNEST($3::uuid[]) AS wanted (shop) CROSS JOIN LATERAL (
             SELECT shop_id, failures FROM code_failures
             WHERE ledger_id = $1 AND hour = $2 AND shop_id = wanted.shop OFFSET 0) f",
    )
    .bind(ledger_id)
    .bind(hour_of(now_micros))
    .bind(&shops)
    .fetch_all(&mut *conn)
    .await?;
    state.shop_failures.extend(rows);
    Ok(state)
}

/// Writes what a batch's presentations changed and the receipts of its entries.
pub(crate) async fn write_redeem_effects(
    conn: &mut PgConnection,
    ledger_id: &str,
    plan: &BatchPlan,
    now_micros: i64,
) -> Result<(), StoreError> {
    if !plan.presence.credentials.is_empty() {
        let ids: Vec<Uuid> = plan.presence.credentials.keys().copied().collect();
        let steps: Vec<i64> = plan
            .presence
            .credentials
            .values()
            .map(|c| c.last_step)
            .collect();
        let failures: Vec<i64> = plan
            .presence
            .credentials
            .values()
            .map(|c| c.failures)
            .collect();
        sqlx::query(
            "UPDATE credentials c SET last_step = u.last_step, failures = u.failures, updated_at = $5
             FROM UNNEST($2::uuid[], $3::bigint[], $4::bigint[]) AS u(id, last_step, failures)
             WHERE c.ledger_id = $1 AND c.id = u.id",
        )
        .bind(ledger_id)
        .bind(&ids)
        .bind(&steps)
        .bind(&failures)
        .bind(now_micros)
        .execute(&mut *conn)
        .await?;
    }
    if !plan.presence.shop_failures.is_empty() {
        let shops: Vec<Uuid> = plan.presence.shop_failures.keys().copied().collect();
        let counts: Vec<i64> = plan.presence.shop_failures.values().copied().collect();
        sqlx::query(
            "INSERT INTO code_failures (ledger_id, shop_id, hour, failures)
             SELECT $1, u.shop, $2, u.n FROM UNNEST($3::uuid[], $4::bigint[]) AS u(shop, n)
             ON CONFLICT (ledger_id, shop_id, hour)
             DO UPDATE SET failures = code_failures.failures + excluded.failures",
        )
        .bind(ledger_id)
        .bind(hour_of(now_micros))
        .bind(&shops)
        .bind(&counts)
        .execute(&mut *conn)
        .await?;
    }
    if !plan.receipts.is_empty() {
        let r = &plan.receipts;
        let ids: Vec<Uuid> = r.iter().map(|r| r.draft.id).collect();
        let seqs: Vec<i64> = r.iter().map(|r| r.entry_seq).collect();
        let entries: Vec<Uuid> = r.iter().map(|r| r.entry_id).collect();
        let kinds: Vec<&str> = r.iter().map(|r| r.draft.kind.as_str()).collect();
        let shops: Vec<Uuid> = r.iter().map(|r| r.draft.shop_id).collect();
        let shop_names: Vec<&str> = r.iter().map(|r| r.draft.shop_name.as_str()).collect();
        let residents: Vec<Uuid> = r.iter().map(|r| r.draft.resident_id).collect();
        let pseudonyms: Vec<&str> = r
            .iter()
            .map(|r| r.draft.resident_pseudonym.as_str())
            .collect();
        let communities: Vec<&str> = r.iter().map(|r| r.draft.community_id.as_str()).collect();
        let refund_of: Vec<Option<Uuid>> = r.iter().map(|r| r.draft.refund_of).collect();
        let totals: Vec<i64> = r.iter().map(|r| r.draft.total_minor).collect();
        let after: Vec<i64> = r.iter().map(|r| r.balance_after_minor).collect();
        let posted: Vec<i64> = r.iter().map(|r| r.posted_at_micros).collect();
        let lines: Vec<&str> = r.iter().map(|r| r.draft.lines_json.as_str()).collect();
        sqlx::query(
            "INSERT INTO receipts (ledger_id, id, entry_seq, entry_id, kind, shop_id, shop_name,
                 resident_id, resident_pseudonym, community_id, refund_of, total_minor,
                 balance_after_minor, posted_at, lines)
             SELECT $1, * FROM UNNEST($2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::uuid[],
                 $7::text[], $8::uuid[], $9::text[], $10::text[], $11::uuid[], $12::bigint[],
                 $13::bigint[], $14::bigint[], $15::text[])",
        )
        .bind(ledger_id)
        .bind(&ids)
        .bind(&seqs)
        .bind(&entries)
        .bind(&kinds)
        .bind(&shops)
        .bind(&shop_names)
        .bind(&residents)
        .bind(&pseudonyms)
        .bind(&communities)
        .bind(&refund_of)
        .bind(&totals)
        .bind(&after)
        .bind(&posted)
        .bind(&lines)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ShopRow {
    id: Uuid,
    name_zh: String,
    name_en: String,
    community_id: String,
    account_id: Uuid,
    refund_window_days: i32,
    created_by: String,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: Uuid,
    shop_id: Uuid,
    sku: String,
    name_zh: String,
    name_en: String,
    unit: String,
    price_minor: i64,
    track_stock: bool,
    cap_day: Option<i64>,
    cap_month: Option<i64>,
    active: bool,
    updated_at: i64,
}

const ITEM_COLUMNS: &str = "id, shop_id, sku, name_zh, name_en, unit, price_minor, track_stock, cap_day, cap_month, active, updated_at";

fn item_from(row: ItemRow) -> Item {
    Item {
        id: row.id,
        shop_id: row.shop_id,
        sku: row.sku,
        name_zh: row.name_zh,
        name_en: row.name_en,
        unit: row.unit,
        price_minor: row.price_minor,
        track_stock: row.track_stock,
        cap_day: row.cap_day,
        cap_month: row.cap_month,
        active: row.active,
        updated_at_micros: row.updated_at,
    }
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: Uuid,
    resident_id: Uuid,
    number: i64,
    generation: i64,
    active: bool,
    last_step: i64,
    failures: i64,
}

fn credential_from(row: CredentialRow) -> Result<Credential, StoreError> {
    Ok(Credential {
        id: row.id,
        resident_id: row.resident_id,
        number: u32::try_from(row.number)
            .map_err(|_| StoreError::Corrupt("credential number out of range".to_owned()))?,
        generation: row.generation,
        active: row.active,
        last_step: row.last_step,
        failures: row.failures,
    })
}

const CREDENTIAL_COLUMNS: &str = "id, resident_id, number, generation, active, last_step, failures";

#[derive(sqlx::FromRow)]
struct ReceiptRow {
    id: Uuid,
    entry_id: Uuid,
    entry_seq: i64,
    hash: Vec<u8>,
    kind: String,
    shop_id: Uuid,
    shop_name: String,
    resident_id: Uuid,
    resident_pseudonym: String,
    community_id: String,
    refund_of: Option<Uuid>,
    total_minor: i64,
    balance_after_minor: i64,
    posted_at: i64,
    lines: String,
}

const RECEIPT_SELECT: &str =
    "SELECT r.id, r.entry_id, r.entry_seq, e.hash, r.kind, r.shop_id, r.shop_name,
    r.resident_id, r.resident_pseudonym, r.community_id, r.refund_of, r.total_minor,
    r.balance_after_minor, r.posted_at, r.lines
    FROM receipts r JOIN entries e ON e.ledger_id = r.ledger_id AND e.seq = r.entry_seq";

fn receipt_from(row: ReceiptRow) -> Result<StoredReceipt, StoreError> {
    Ok(StoredReceipt {
        id: row.id,
        entry_id: row.entry_id,
        entry_seq: row.entry_seq,
        entry_hash: hash32(&row.hash)?,
        kind: row.kind,
        shop_id: row.shop_id,
        shop_name: row.shop_name,
        resident_id: row.resident_id,
        resident_pseudonym: row.resident_pseudonym,
        community_id: row.community_id,
        refund_of: row.refund_of,
        total_minor: row.total_minor,
        balance_after_minor: row.balance_after_minor,
        posted_at_micros: row.posted_at,
        lines_json: row.lines,
    })
}

#[derive(sqlx::FromRow)]
struct StockMoveRow {
    id: Uuid,
    item_id: Uuid,
    delta: i64,
    reason: String,
    note: String,
    actor: String,
    level: i64,
    at: i64,
}

impl PgStore {
    /// A transaction on a writer connection holding the ledger-wide lock, so that it is ordered
    /// with the batches (which read the same rows under that lock).
    async fn locked(&self, ledger_id: &str) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *tx)
            .await?;
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM ledgers WHERE id = $1 FOR NO KEY UPDATE")
                .bind(ledger_id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Err(StoreError::NoSuchLedger(ledger_id.to_owned()));
        }
        Ok(tx)
    }
}

#[async_trait]
impl RedeemStore for PgStore {
    async fn insert_shop(
        &self,
        ledger_id: &str,
        shop: &Shop,
    ) -> Result<Inserted<Shop>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO shops (ledger_id, id, name_zh, name_en, community_id, account_id,
                 refund_window_days, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (ledger_id, id) DO NOTHING",
        )
        .bind(ledger_id)
        .bind(shop.id)
        .bind(&shop.name_zh)
        .bind(&shop.name_en)
        .bind(&shop.community_id)
        .bind(shop.account_id)
        .bind(i32::try_from(shop.refund_window_days).unwrap_or(i32::MAX))
        .bind(&shop.created_by)
        .bind(shop.created_at_micros)
        .execute(&mut *tx)
        .await?;
        let created = done.rows_affected() == 1;
        if created {
            sqlx::query(
                "INSERT INTO shop_communities (ledger_id, shop_id, community_id)
                 SELECT $1, $2, c FROM UNNEST($3::text[]) AS c ON CONFLICT DO NOTHING",
            )
            .bind(ledger_id)
            .bind(shop.id)
            .bind(&shop.communities)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let stored = self
            .shop(ledger_id, shop.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("shop vanished".to_owned()))?;
        Ok(if created {
            Inserted::Created(stored)
        } else {
            Inserted::Existing(stored)
        })
    }

    async fn shop(&self, ledger_id: &str, id: Uuid) -> Result<Option<Shop>, StoreError> {
        let row: Option<ShopRow> = sqlx::query_as(
            "SELECT id, name_zh, name_en, community_id, account_id, refund_window_days, created_by,
                 created_at FROM shops WHERE ledger_id = $1 AND id = $2",
        )
        .bind(ledger_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let communities: Vec<String> = sqlx::query_scalar(
            "SELECT community_id FROM shop_communities WHERE ledger_id = $1 AND shop_id = $2
             ORDER BY community_id COLLATE \"C\"",
        )
        .bind(ledger_id)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(Shop {
            id: row.id,
            name_zh: row.name_zh,
            name_en: row.name_en,
            community_id: row.community_id,
            account_id: row.account_id,
            refund_window_days: i64::from(row.refund_window_days),
            communities,
            created_by: row.created_by,
            created_at_micros: row.created_at,
        }))
    }

    async fn insert_shop_staff(
        &self,
        ledger_id: &str,
        staff: &ShopStaff,
        now_micros: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO shop_staff (ledger_id, token_id, shop_id, name, is_owner, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ledger_id)
        .bind(staff.token_id)
        .bind(staff.shop_id)
        .bind(&staff.name)
        .bind(staff.owner)
        .bind(now_micros)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn shop_staff(
        &self,
        ledger_id: &str,
        token_id: Uuid,
    ) -> Result<Option<ShopStaff>, StoreError> {
        let row: Option<(Uuid, Uuid, String, bool)> = sqlx::query_as(
            "SELECT token_id, shop_id, name, is_owner FROM shop_staff WHERE ledger_id = $1 AND token_id = $2",
        )
        .bind(ledger_id)
        .bind(token_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(token_id, shop_id, name, owner)| ShopStaff {
            token_id,
            shop_id,
            name,
            owner,
        }))
    }

    async fn put_item(&self, ledger_id: &str, item: &Item) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO items (ledger_id, id, shop_id, sku, name_zh, name_en, unit, price_minor,
                 track_stock, cap_day, cap_month, active, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (ledger_id, id) DO UPDATE SET sku = excluded.sku, name_zh = excluded.name_zh,
                 name_en = excluded.name_en, unit = excluded.unit, price_minor = excluded.price_minor,
                 track_stock = excluded.track_stock, cap_day = excluded.cap_day,
                 cap_month = excluded.cap_month, active = excluded.active, updated_at = excluded.updated_at
             WHERE items.shop_id = excluded.shop_id",
        )
        .bind(ledger_id)
        .bind(item.id)
        .bind(item.shop_id)
        .bind(&item.sku)
        .bind(&item.name_zh)
        .bind(&item.name_en)
        .bind(&item.unit)
        .bind(item.price_minor)
        .bind(item.track_stock)
        .bind(item.cap_day)
        .bind(item.cap_month)
        .bind(item.active)
        .bind(item.updated_at_micros)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn items(&self, ledger_id: &str, shop_id: Uuid) -> Result<Vec<Item>, StoreError> {
        let rows: Vec<ItemRow> = sqlx::query_as(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE ledger_id = $1 AND shop_id = $2 ORDER BY sku COLLATE \"C\""
        ))
        .bind(ledger_id)
        .bind(shop_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(item_from).collect())
    }

    async fn stock_levels(
        &self,
        ledger_id: &str,
        items: &[Uuid],
    ) -> Result<HashMap<Uuid, i64>, StoreError> {
        let keys: Vec<String> = items.iter().map(|i| stock_key(*i)).collect();
        let rows = super::postgres::counter_values(&self.pool, ledger_id, &keys).await?;
        let mut levels = HashMap::new();
        for (key, value) in rows {
            let id = key.strip_prefix("stock:").unwrap_or_default();
            levels.insert(super::parse_uuid(id)?, -value);
        }
        Ok(levels)
    }

    async fn move_stock(&self, ledger_id: &str, mv: &StockMove) -> Result<StockMoved, StoreError> {
        let mut tx = self.locked(ledger_id).await?;
        let earlier: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT delta, reason, level FROM stock_moves WHERE ledger_id = $1 AND id = $2",
        )
        .bind(ledger_id)
        .bind(mv.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((delta, reason, level)) = earlier {
            return Ok(if delta == mv.delta && reason == mv.reason {
                StockMoved::Replayed(level)
            } else {
                StockMoved::IdReused
            });
        }
        let key = stock_key(mv.item_id);
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT value_minor FROM counters WHERE ledger_id = $1 AND key = $2",
        )
        .bind(ledger_id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let level = -current.unwrap_or(0);
        let next = level.saturating_add(mv.delta);
        if next < 0 {
            return Ok(StockMoved::Insufficient(level));
        }
        sqlx::query(
            "INSERT INTO counters (ledger_id, key, value_minor) VALUES ($1, $2, $3)
             ON CONFLICT (ledger_id, key) DO UPDATE SET value_minor = excluded.value_minor",
        )
        .bind(ledger_id)
        .bind(&key)
        .bind(-next)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO stock_moves (ledger_id, id, item_id, delta, reason, note, actor, level, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(ledger_id)
        .bind(mv.id)
        .bind(mv.item_id)
        .bind(mv.delta)
        .bind(&mv.reason)
        .bind(&mv.note)
        .bind(&mv.actor)
        .bind(next)
        .bind(mv.at_micros)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StockMoved::Moved(next))
    }

    async fn stock_moves(
        &self,
        ledger_id: &str,
        item: Uuid,
        limit: i64,
    ) -> Result<Vec<StockMove>, StoreError> {
        let rows: Vec<StockMoveRow> = sqlx::query_as(
            "SELECT id, item_id, delta, reason, note, actor, level, at FROM stock_moves
             WHERE ledger_id = $1 AND item_id = $2 ORDER BY at DESC, id LIMIT $3",
        )
        .bind(ledger_id)
        .bind(item)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StockMove {
                id: r.id,
                item_id: r.item_id,
                delta: r.delta,
                reason: r.reason,
                note: r.note,
                actor: r.actor,
                level: r.level,
                at_micros: r.at,
            })
            .collect())
    }

    async fn credential_holder(
        &self,
        ledger_id: &str,
        number: u32,
    ) -> Result<Option<CredentialHolder>, StoreError> {
        let row: Option<(Uuid, Uuid, i64, i64, bool, i64, i64, String, String, Uuid)> =
            sqlx::query_as(
                "SELECT c.id, c.resident_id, c.number, c.generation, c.active, c.last_step, c.failures,
                        r.pseudonym, r.community_id, r.account_id
                 FROM credentials c JOIN residents r ON r.ledger_id = c.ledger_id AND r.id = c.resident_id
                 WHERE c.ledger_id = $1 AND c.number = $2",
            )
            .bind(ledger_id)
            .bind(i64::from(number))
            .fetch_optional(&self.pool)
            .await?;
        let Some((
            id,
            resident_id,
            number,
            generation,
            active,
            last_step,
            failures,
            pseudonym,
            community_id,
            account_id,
        )) = row
        else {
            return Ok(None);
        };
        Ok(Some(CredentialHolder {
            credential: credential_from(CredentialRow {
                id,
                resident_id,
                number,
                generation,
                active,
                last_step,
                failures,
            })?,
            pseudonym,
            community_id,
            account_id,
        }))
    }

    async fn credential_of(
        &self,
        ledger_id: &str,
        resident: Uuid,
    ) -> Result<Option<Credential>, StoreError> {
        let row: Option<CredentialRow> = sqlx::query_as(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE ledger_id = $1 AND resident_id = $2"
        ))
        .bind(ledger_id)
        .bind(resident)
        .fetch_optional(&self.pool)
        .await?;
        row.map(credential_from).transpose()
    }

    async fn issue_credential(
        &self,
        ledger_id: &str,
        resident: Uuid,
        new_id: Uuid,
        number: u32,
        now_micros: i64,
    ) -> Result<Issued, StoreError> {
        let mut tx = self.locked(ledger_id).await?;
        let updated = sqlx::query(
            "UPDATE credentials SET generation = generation + 1, active = TRUE, failures = 0, updated_at = $3
             WHERE ledger_id = $1 AND resident_id = $2",
        )
        .bind(ledger_id)
        .bind(resident)
        .bind(now_micros)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let taken: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM credentials WHERE ledger_id = $1 AND number = $2",
            )
            .bind(ledger_id)
            .bind(i64::from(number))
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Ok(Issued::NumberTaken);
            }
            sqlx::query(
                "INSERT INTO credentials (ledger_id, id, resident_id, number, generation, active,
                     last_step, failures, updated_at)
                 VALUES ($1, $2, $3, $4, 1, TRUE, 0, 0, $5)",
            )
            .bind(ledger_id)
            .bind(new_id)
            .bind(resident)
            .bind(i64::from(number))
            .bind(now_micros)
            .execute(&mut *tx)
            .await?;
        }
        let row: CredentialRow = sqlx::query_as(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE ledger_id = $1 AND resident_id = $2"
        ))
        .bind(ledger_id)
        .bind(resident)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Issued::Issued(credential_from(row)?))
    }

    async fn revoke_credential(
        &self,
        ledger_id: &str,
        resident: Uuid,
        now_micros: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.locked(ledger_id).await?;
        let done = sqlx::query(
            "UPDATE credentials SET active = FALSE, updated_at = $3 WHERE ledger_id = $1 AND resident_id = $2",
        )
        .bind(ledger_id)
        .bind(resident)
        .bind(now_micros)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_shop_failure(
        &self,
        ledger_id: &str,
        shop: Uuid,
        hour: i64,
    ) -> Result<i64, StoreError> {
        let after: i64 = sqlx::query_scalar(
            "INSERT INTO code_failures (ledger_id, shop_id, hour, failures) VALUES ($1, $2, $3, 1)
             ON CONFLICT (ledger_id, shop_id, hour) DO UPDATE SET failures = code_failures.failures + 1
             RETURNING failures",
        )
        .bind(ledger_id)
        .bind(shop)
        .bind(hour)
        .fetch_one(&self.pool)
        .await?;
        Ok(after - 1)
    }

    async fn receipt(
        &self,
        ledger_id: &str,
        id: Uuid,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        let row: Option<ReceiptRow> = sqlx::query_as(&format!(
            "{RECEIPT_SELECT} WHERE r.ledger_id = $1 AND r.id = $2"
        ))
        .bind(ledger_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(receipt_from).transpose()
    }

    async fn receipt_by_entry(
        &self,
        ledger_id: &str,
        entry_id: Uuid,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        if let Some(receipt) = self.recent.get(ledger_id, entry_id) {
            return Ok(Some(receipt));
        }
        let row: Option<ReceiptRow> = sqlx::query_as(&format!(
            "{RECEIPT_SELECT} WHERE r.ledger_id = $1 AND r.entry_id = $2"
        ))
        .bind(ledger_id)
        .bind(entry_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(receipt_from).transpose()
    }

    async fn refund_of(
        &self,
        ledger_id: &str,
        receipt: Uuid,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        let row: Option<ReceiptRow> = sqlx::query_as(&format!(
            "{RECEIPT_SELECT} WHERE r.ledger_id = $1 AND r.refund_of = $2"
        ))
        .bind(ledger_id)
        .bind(receipt)
        .fetch_optional(&self.pool)
        .await?;
        row.map(receipt_from).transpose()
    }

    async fn shop_receipts(
        &self,
        ledger_id: &str,
        shop: Uuid,
        from_micros: i64,
        to_micros: i64,
        limit: i64,
    ) -> Result<Vec<StoredReceipt>, StoreError> {
        let rows: Vec<ReceiptRow> = sqlx::query_as(&format!(
            "{RECEIPT_SELECT} WHERE r.ledger_id = $1 AND r.shop_id = $2 AND r.posted_at >= $3
             AND r.posted_at < $4 ORDER BY r.posted_at, r.entry_seq LIMIT $5"
        ))
        .bind(ledger_id)
        .bind(shop)
        .bind(from_micros)
        .bind(to_micros)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(receipt_from).collect()
    }
}
