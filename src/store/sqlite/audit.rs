//! The audit aggregates as SQLite computes them (the other audit queries are shared).

use sqlx::SqlitePool;
use uuid::Uuid;

use super::SqliteStore;
use crate::ledger::Unit;
use crate::store::sql::Id;
use crate::store::StoreError;

impl SqliteStore {
    /// Per (account, unit), the signed sum of the postings of entries 1..=`through_seq`.
    pub(super) async fn balances_through_native(
        pool: &SqlitePool,
        ledger_id: &str,
        through_seq: i64,
    ) -> Result<Vec<(Uuid, Unit, i64)>, StoreError> {
        // Grouped by account alone and walked in the order of `postings_by_account`, so SQLite
        // aggregates as it reads instead of sorting every posting (a sorter would hold them all
        // in memory: temp_store is memory). Memory stays one row per account.
        let rows: Vec<(Id, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT account_id,
                    sum(CASE WHEN unit = 'points' THEN 1 ELSE 0 END),
                    sum(CASE WHEN unit = 'points' THEN
                        CASE side WHEN 'credit' THEN amount_minor ELSE -amount_minor END ELSE 0 END),
                    sum(CASE WHEN unit = 'hours' THEN 1 ELSE 0 END),
                    sum(CASE WHEN unit = 'hours' THEN
                        CASE side WHEN 'credit' THEN amount_minor ELSE -amount_minor END ELSE 0 END)
             FROM postings INDEXED BY postings_by_account
             WHERE ledger_id = $1 AND entry_seq <= $2
             GROUP BY account_id",
        )
        .bind(ledger_id)
        .bind(through_seq)
        .fetch_all(pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len() * 2);
        for (Id(account), points_n, points, hours_n, hours) in rows {
            if points_n > 0 {
                out.push((account, Unit::Points, points));
            }
            if hours_n > 0 {
                out.push((account, Unit::Hours, hours));
            }
        }
        Ok(out)
    }

    /// The sequence number of the last entry posted before `micros` (0 if none).
    pub(super) async fn last_seq_before_native(
        pool: &SqlitePool,
        ledger_id: &str,
        micros: i64,
    ) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT max(seq) FROM entries WHERE ledger_id = $1 AND posted_at < $2",
        )
        .bind(ledger_id)
        .bind(micros)
        .fetch_one(pool)
        .await?;
        Ok(seq.unwrap_or(0))
    }
}
