//! [`RedeemStore`](crate::store::redeem::RedeemStore) on both backends, outside the batch: every
//! statement but one list lookup is the same on SQLite and PostgreSQL, so it is written once.

use super::{opt, Id};
use crate::store::redeem::{Credential, Item, StoredReceipt};
use crate::store::{hash32, StoreError};

/// Implements [`RedeemStore`](crate::store::redeem::RedeemStore) for `$store` (with a field
/// `pool: sqlx::Pool<_>`). The store provides, as associated functions and methods:
/// - `begin_write(&Pool) -> Transaction`, for a write of several statements;
/// - `locked(&self, ledger_id) -> Transaction`: a transaction ordered with the batches (which
///   read stock and credentials under the ledger-wide lock);
/// - `counter_values(&Pool, ledger_id, &[String]) -> Vec<(String, i64)>`, the counters that exist;
/// - `recent(&self) -> &RecentReceipts`, the receipts of the latest committed batches.
macro_rules! redeem_store {
    ($store:ident) => {
        const _: () = {
            use std::collections::HashMap;

            use uuid::Uuid;

            use $crate::store::earning::Inserted;
            use $crate::store::redeem::{
                stock_key, Credential, CredentialHolder, Issued, Item, RedeemStore, Shop,
                ShopStaff, StockMove, StockMoved, StoredReceipt,
            };
            use $crate::store::sql::redeem::*;
            use $crate::store::sql::Id;
            use $crate::store::{parse_uuid, StoreError};

            #[async_trait::async_trait]
            impl RedeemStore for $store {
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
                    .bind(Id(shop.id))
                    .bind(&shop.name_zh)
                    .bind(&shop.name_en)
                    .bind(&shop.community_id)
                    .bind(Id(shop.account_id))
                    .bind(i32::try_from(shop.refund_window_days).unwrap_or(i32::MAX))
                    .bind(&shop.created_by)
                    .bind(shop.created_at_micros)
                    .execute(&mut *tx)
                    .await?;
                    let created = done.rows_affected() == 1;
                    if created {
                        for community in &shop.communities {
                            sqlx::query(
                                "INSERT INTO shop_communities (ledger_id, shop_id, community_id) VALUES ($1, $2, $3)
                                 ON CONFLICT DO NOTHING",
                            )
                            .bind(ledger_id)
                            .bind(Id(shop.id))
                            .bind(community)
                            .execute(&mut *tx)
                            .await?;
                        }
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
                    .bind(Id(id))
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let mut communities: Vec<String> = sqlx::query_scalar(
                        "SELECT community_id FROM shop_communities WHERE ledger_id = $1 AND shop_id = $2",
                    )
                    .bind(ledger_id)
                    .bind(Id(id))
                    .fetch_all(&self.pool)
                    .await?;
                    // Sorted here, not by the database: collations differ between backends.
                    communities.sort_unstable();
                    Ok(Some(Shop {
                        id: row.id.0,
                        name_zh: row.name_zh,
                        name_en: row.name_en,
                        community_id: row.community_id,
                        account_id: row.account_id.0,
                        refund_window_days: i64::from(row.refund_window_days),
                        communities,
                        created_by: row.created_by,
                        created_at_micros: row.created_at,
                    }))
                }

                async fn shops_serving(
                    &self,
                    ledger_id: &str,
                    community_id: &str,
                ) -> Result<Vec<Uuid>, StoreError> {
                    let ids: Vec<Id> = sqlx::query_scalar(
                        "SELECT shop_id FROM shop_communities WHERE ledger_id = $1 AND community_id = $2
                         ORDER BY shop_id LIMIT $3",
                    )
                    .bind(ledger_id)
                    .bind(community_id)
                    .bind($crate::store::redeem::SHOPS_SERVING_MAX)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(ids.into_iter().map(|id| id.0).collect())
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
                    .bind(Id(staff.token_id))
                    .bind(Id(staff.shop_id))
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
                    let row: Option<(Id, Id, String, bool)> = sqlx::query_as(
                        "SELECT token_id, shop_id, name, is_owner FROM shop_staff WHERE ledger_id = $1 AND token_id = $2",
                    )
                    .bind(ledger_id)
                    .bind(Id(token_id))
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(|(token_id, shop_id, name, owner)| ShopStaff {
                        token_id: token_id.0,
                        shop_id: shop_id.0,
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
                    .bind(Id(item.id))
                    .bind(Id(item.shop_id))
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
                        "SELECT {ITEM_COLUMNS} FROM items WHERE ledger_id = $1 AND shop_id = $2"
                    ))
                    .bind(ledger_id)
                    .bind(Id(shop_id))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut items: Vec<Item> = rows.into_iter().map(item_from).collect();
                    // Sorted here, not by the database: collations differ between backends.
                    items.sort_by(|a, b| a.sku.cmp(&b.sku));
                    Ok(items)
                }

                async fn stock_levels(
                    &self,
                    ledger_id: &str,
                    items: &[Uuid],
                ) -> Result<HashMap<Uuid, i64>, StoreError> {
                    let keys: Vec<String> = items.iter().map(|i| stock_key(*i)).collect();
                    let rows = Self::counter_values(&self.pool, ledger_id, &keys).await?;
                    let mut levels = HashMap::new();
                    for (key, value) in rows {
                        let id = key.strip_prefix("stock:").unwrap_or_default();
                        levels.insert(parse_uuid(id)?, -value);
                    }
                    Ok(levels)
                }

                async fn move_stock(&self, ledger_id: &str, mv: &StockMove) -> Result<StockMoved, StoreError> {
                    let mut tx = self.locked(ledger_id).await?;
                    let earlier: Option<(i64, String, i64)> = sqlx::query_as(
                        "SELECT delta, reason, level FROM stock_moves WHERE ledger_id = $1 AND id = $2",
                    )
                    .bind(ledger_id)
                    .bind(Id(mv.id))
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
                    .bind(Id(mv.id))
                    .bind(Id(mv.item_id))
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
                    .bind(Id(item))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|r| StockMove {
                            id: r.id.0,
                            item_id: r.item_id.0,
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
                    let row: Option<(Id, Id, i64, i64, bool, i64, i64, String, String, Id)> =
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
                        account_id: account_id.0,
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
                    .bind(Id(resident))
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
                    key: &str,
                    now_micros: i64,
                ) -> Result<Issued, StoreError> {
                    let mut tx = self.locked(ledger_id).await?;
                    let replay: Option<CredentialRow> = sqlx::query_as(&format!(
                        "SELECT {CREDENTIAL_COLUMNS} FROM credentials
                         WHERE ledger_id = $1 AND resident_id = $2 AND issue_key = $3"
                    ))
                    .bind(ledger_id)
                    .bind(Id(resident))
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(row) = replay {
                        return Ok(Issued::Replayed(credential_from(row)?));
                    }
                    let updated = sqlx::query(
                        "UPDATE credentials SET generation = generation + 1, active = TRUE, failures = 0,
                             foreign_failures = 0, issue_key = $4, updated_at = $3
                         WHERE ledger_id = $1 AND resident_id = $2",
                    )
                    .bind(ledger_id)
                    .bind(Id(resident))
                    .bind(now_micros)
                    .bind(key)
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
                                 last_step, failures, issue_key, updated_at)
                             VALUES ($1, $2, $3, $4, 1, TRUE, 0, 0, $6, $5)",
                        )
                        .bind(ledger_id)
                        .bind(Id(new_id))
                        .bind(Id(resident))
                        .bind(i64::from(number))
                        .bind(now_micros)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let row: CredentialRow = sqlx::query_as(&format!(
                        "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE ledger_id = $1 AND resident_id = $2"
                    ))
                    .bind(ledger_id)
                    .bind(Id(resident))
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
                    .bind(Id(resident))
                    .bind(now_micros)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
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
                    .bind(Id(id))
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(receipt_from).transpose()
                }

                async fn receipt_by_entry(
                    &self,
                    ledger_id: &str,
                    entry_id: Uuid,
                ) -> Result<Option<StoredReceipt>, StoreError> {
                    if let Some(receipt) = self.recent().get(ledger_id, entry_id) {
                        return Ok(Some(receipt));
                    }
                    let row: Option<ReceiptRow> = sqlx::query_as(&format!(
                        "{RECEIPT_SELECT} WHERE r.ledger_id = $1 AND r.entry_id = $2"
                    ))
                    .bind(ledger_id)
                    .bind(Id(entry_id))
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
                    .bind(Id(receipt))
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
                    .bind(Id(shop))
                    .bind(from_micros)
                    .bind(to_micros)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(receipt_from).collect()
                }
            }
        };
    };
}

pub(crate) use redeem_store;

#[derive(sqlx::FromRow)]
pub(crate) struct ShopRow {
    pub(crate) id: Id,
    pub(crate) name_zh: String,
    pub(crate) name_en: String,
    pub(crate) community_id: String,
    pub(crate) account_id: Id,
    pub(crate) refund_window_days: i32,
    pub(crate) created_by: String,
    pub(crate) created_at: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ItemRow {
    id: Id,
    shop_id: Id,
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

pub(crate) const ITEM_COLUMNS: &str = "id, shop_id, sku, name_zh, name_en, unit, price_minor, track_stock, cap_day, cap_month, active, updated_at";

pub(crate) fn item_from(row: ItemRow) -> Item {
    Item {
        id: row.id.0,
        shop_id: row.shop_id.0,
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
pub(crate) struct CredentialRow {
    pub(crate) id: Id,
    pub(crate) resident_id: Id,
    pub(crate) number: i64,
    pub(crate) generation: i64,
    pub(crate) active: bool,
    pub(crate) last_step: i64,
    pub(crate) failures: i64,
}

pub(crate) fn credential_from(row: CredentialRow) -> Result<Credential, StoreError> {
    Ok(Credential {
        id: row.id.0,
        resident_id: row.resident_id.0,
        number: u32::try_from(row.number)
            .map_err(|_| StoreError::Corrupt("credential number out of range".to_owned()))?,
        generation: row.generation,
        active: row.active,
        last_step: row.last_step,
        failures: row.failures,
    })
}

pub(crate) const CREDENTIAL_COLUMNS: &str =
    "id, resident_id, number, generation, active, last_step, failures";

#[derive(sqlx::FromRow)]
pub(crate) struct ReceiptRow {
    id: Id,
    entry_id: Id,
    entry_seq: i64,
    hash: Vec<u8>,
    kind: String,
    shop_id: Id,
    shop_name: String,
    resident_id: Id,
    resident_pseudonym: String,
    community_id: String,
    refund_of: Option<Id>,
    total_minor: i64,
    balance_after_minor: i64,
    posted_at: i64,
    lines: String,
}

pub(crate) const RECEIPT_SELECT: &str =
    "SELECT r.id, r.entry_id, r.entry_seq, e.hash, r.kind, r.shop_id, r.shop_name,
    r.resident_id, r.resident_pseudonym, r.community_id, r.refund_of, r.total_minor,
    r.balance_after_minor, r.posted_at, r.lines
    FROM receipts r JOIN entries e ON e.ledger_id = r.ledger_id AND e.seq = r.entry_seq";

pub(crate) fn receipt_from(row: ReceiptRow) -> Result<StoredReceipt, StoreError> {
    Ok(StoredReceipt {
        id: row.id.0,
        entry_id: row.entry_id.0,
        entry_seq: row.entry_seq,
        entry_hash: hash32(&row.hash)?,
        kind: row.kind,
        shop_id: row.shop_id.0,
        shop_name: row.shop_name,
        resident_id: row.resident_id.0,
        resident_pseudonym: row.resident_pseudonym,
        community_id: row.community_id,
        refund_of: opt(row.refund_of),
        total_minor: row.total_minor,
        balance_after_minor: row.balance_after_minor,
        posted_at_micros: row.posted_at,
        lines_json: row.lines,
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct StockMoveRow {
    pub(crate) id: Id,
    pub(crate) item_id: Id,
    pub(crate) delta: i64,
    pub(crate) reason: String,
    pub(crate) note: String,
    pub(crate) actor: String,
    pub(crate) level: i64,
    pub(crate) at: i64,
}
