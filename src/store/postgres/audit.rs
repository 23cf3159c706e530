//! The audit aggregates as PostgreSQL computes them (the other audit queries are shared).

use sqlx::PgPool;
use uuid::Uuid;

use super::PgStore;
use crate::ledger::Unit;
use crate::store::{parse_unit, StoreError};

impl PgStore {
    /// Per (account, unit), the signed sum of the postings of entries 1..=`through_seq`.
    pub(super) async fn balances_through_native(
        pool: &PgPool,
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
        .fetch_all(pool)
        .await?;
        rows.into_iter()
            .map(|(a, u, sum)| Ok((a, parse_unit(&u)?, sum)))
            .collect()
    }

    /// The sequence number of the last entry posted before `micros` (0 if none).
    pub(super) async fn last_seq_before_native(
        pool: &PgPool,
        ledger_id: &str,
        micros: i64,
    ) -> Result<i64, StoreError> {
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
        .fetch_one(pool)
        .await?;
        Ok(seq.unwrap_or(0))
    }
}
