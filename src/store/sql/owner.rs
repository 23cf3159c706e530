//! [`OwnerStore`](crate::store::redeem::OwnerStore) on both backends: the shop owner's lists and
//! the removal of a clerk, the same statements on SQLite and PostgreSQL.

/// Implements [`OwnerStore`](crate::store::redeem::OwnerStore) for `$store` (with a field
/// `pool: sqlx::Pool<_>` and `begin_write(&Pool) -> Transaction`).
macro_rules! owner_store {
    ($store:ident) => {
        const _: () = {
            use uuid::Uuid;

            use $crate::store::redeem::{OwnerStore, SettlementRow, ShopStaff, StaffMember, StoredReceipt};
            use $crate::store::sql::redeem::{receipt_from, ReceiptRow, RECEIPT_SELECT};
            use $crate::store::sql::Id;
            use $crate::store::StoreError;

            #[async_trait::async_trait]
            impl OwnerStore for $store {
                async fn shop_ids(
                    &self,
                    ledger_id: &str,
                    after: Option<Uuid>,
                    limit: i64,
                ) -> Result<Vec<Uuid>, StoreError> {
                    let ids: Vec<Id> = sqlx::query_scalar(
                        "SELECT id FROM shops WHERE ledger_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    )
                    .bind(ledger_id)
                    .bind(Id(after.unwrap_or(Uuid::nil())))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(ids.into_iter().map(|id| id.0).collect())
                }

                async fn staff_of_shop(
                    &self,
                    ledger_id: &str,
                    shop: Uuid,
                    limit: i64,
                ) -> Result<Vec<StaffMember>, StoreError> {
                    type Row = (Id, Id, String, bool, i64, Option<i64>, Option<String>, Option<String>);
                    let rows: Vec<Row> =
                        sqlx::query_as(
                            "SELECT st.token_id, st.shop_id, st.name, st.is_owner, st.created_at, st.removed_at,
                                 p.pin_hash, t.role
                             FROM shop_staff st LEFT JOIN clerk_pins p
                                 ON p.ledger_id = st.ledger_id AND p.token_id = st.token_id
                             LEFT JOIN api_tokens t ON t.id = st.token_id
                             WHERE st.ledger_id = $1 AND st.shop_id = $2 LIMIT $3",
                        )
                        .bind(ledger_id)
                        .bind(Id(shop))
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                    let mut staff: Vec<StaffMember> = rows
                        .into_iter()
                        .map(|(token_id, shop_id, name, owner, added, removed, pin, role)| StaffMember {
                            staff: ShopStaff {
                                token_id: token_id.0,
                                shop_id: shop_id.0,
                                name,
                                owner,
                            },
                            has_pin: pin.is_some(),
                            cashier: role.as_deref() == Some("cashier"),
                            added_at_micros: added,
                            removed_at_micros: removed,
                        })
                        .collect();
                    // Sorted here, not by the database: collations differ between backends.
                    staff.sort_by(|a, b| {
                        (&a.staff.name, a.staff.token_id).cmp(&(&b.staff.name, b.staff.token_id))
                    });
                    Ok(staff)
                }

                async fn remove_shop_staff(
                    &self,
                    ledger_id: &str,
                    token_id: Uuid,
                    now_micros: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = Self::begin_write(&self.pool).await?;
                    let removed = sqlx::query(
                        "UPDATE shop_staff SET removed_at = $3
                         WHERE ledger_id = $1 AND token_id = $2 AND removed_at IS NULL",
                    )
                    .bind(ledger_id)
                    .bind(Id(token_id))
                    .bind(now_micros)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    // Again on a retry: whatever a first attempt left undone is done now.
                    sqlx::query(
                        "UPDATE api_tokens SET revoked_at = $3
                         WHERE ledger_id = $1 AND id = $2 AND revoked_at IS NULL",
                    )
                    .bind(ledger_id)
                    .bind(Id(token_id))
                    .bind(now_micros)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE sessions SET revoked_at = $3
                         WHERE ledger_id = $1 AND token_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(ledger_id)
                    .bind(Id(token_id))
                    .bind(now_micros)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM clerk_pins WHERE ledger_id = $1 AND token_id = $2")
                        .bind(ledger_id)
                        .bind(Id(token_id))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(removed)
                }

                async fn shop_receipts_after(
                    &self,
                    ledger_id: &str,
                    shop: Uuid,
                    from_micros: i64,
                    to_micros: i64,
                    after_seq: i64,
                    limit: i64,
                ) -> Result<Vec<StoredReceipt>, StoreError> {
                    let rows: Vec<ReceiptRow> = sqlx::query_as(&format!(
                        "{RECEIPT_SELECT} WHERE r.ledger_id = $1 AND r.shop_id = $2 AND r.posted_at >= $3
                         AND r.posted_at < $4 AND r.entry_seq > $5 ORDER BY r.entry_seq LIMIT $6"
                    ))
                    .bind(ledger_id)
                    .bind(Id(shop))
                    .bind(from_micros)
                    .bind(to_micros)
                    .bind(after_seq)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(receipt_from).collect()
                }

                async fn settlements(
                    &self,
                    ledger_id: &str,
                    shop_account: Uuid,
                    before_seq: i64,
                    limit: i64,
                ) -> Result<Vec<SettlementRow>, StoreError> {
                    let rows: Vec<(Id, i64, i64, i64, String)> = sqlx::query_as(
                        "SELECT e.id, e.seq, e.posted_at, p.amount_minor, e.metadata
                         FROM postings p JOIN entries e ON e.ledger_id = p.ledger_id AND e.seq = p.entry_seq
                         WHERE p.ledger_id = $1 AND p.account_id = $2 AND p.side = 'debit'
                             AND p.unit = 'points' AND p.entry_seq < $3 AND e.kind = 'settle'
                         ORDER BY p.entry_seq DESC LIMIT $4",
                    )
                    .bind(ledger_id)
                    .bind(Id(shop_account))
                    .bind(before_seq)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map(|(id, seq, at, amount, metadata)| {
                            let meta = $crate::store::parse_metadata(&metadata)?;
                            Ok(SettlementRow {
                                entry_id: id.0,
                                entry_seq: seq,
                                posted_at_micros: at,
                                points_minor: amount,
                                from: meta.get("from").cloned().unwrap_or_default(),
                                to: meta.get("to").cloned().unwrap_or_default(),
                            })
                        })
                        .collect()
                }
            }
        };
    };
}

pub(crate) use owner_store;
