//! [`RedeemStore`](crate::store::redeem::RedeemStore) on PostgreSQL: the shared statements, and
//! what PostgreSQL does its own way (the batch's redemption statements are in `batch.rs`).

use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::store::redeem::RecentReceipts;
use crate::store::StoreError;

crate::store::sql::redeem::redeem_store!(PgStore);
crate::store::sql::owner::owner_store!(PgStore);

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

    fn recent(&self) -> &RecentReceipts {
        &self.recent
    }
}
