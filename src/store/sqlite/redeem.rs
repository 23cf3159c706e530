//! [`RedeemStore`](crate::store::redeem::RedeemStore) on SQLite: the shared statements, and what
//! SQLite does its own way (the batch's redemption statements are in `batch.rs`).

use serde_json::json;
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::SqliteStore;
use crate::store::redeem::RecentReceipts;
use crate::store::StoreError;

crate::store::sql::redeem::redeem_store!(SqliteStore);
crate::store::sql::owner::owner_store!(SqliteStore);

impl SqliteStore {
    /// IMMEDIATE takes SQLite's write lock, which every batch holds too: the transaction is
    /// ordered with the batches that sell stock and check codes.
    async fn locked(&self, _ledger_id: &str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Self::begin_write(&self.pool).await
    }

    /// The values of the limit counters `keys` that exist.
    async fn counter_values(
        pool: &SqlitePool,
        ledger_id: &str,
        keys: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, value_minor FROM counters
             WHERE ledger_id = $1 AND key IN (SELECT value FROM json_each($2))",
        )
        .bind(ledger_id)
        .bind(json!(keys).to_string())
        .fetch_all(pool)
        .await?)
    }

    fn recent(&self) -> &RecentReceipts {
        &self.writer.recent
    }
}
