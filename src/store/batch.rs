//! The batch driver: the one write path, in one order, over either backend's native statements.
//!
//! A batch is one transaction: lock the ledger, read what the planner needs, plan, write the
//! planned rows, read back the entries the batch replays, commit, and only then remember the
//! receipts the batch wrote. That sequence is written here once; [`BatchTx`] is what each
//! backend supplies: its native statements, each a point lookup or write per row on SQLite
//! (cached rusqlite statements) and one set-based statement per kind of row on PostgreSQL.
//!
//! SQLite's statements are synchronous (the batch runs whole on the writer's blocking thread),
//! so its implementation never waits and its driver future completes on the first poll;
//! PostgreSQL's are sqlx futures. The driver is the same `async fn` for both.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::redeem::RecentReceipts;
use super::{move_indexes, outcomes_from_plan, Outcome, StoreError};
use crate::ledger::lots::{Lot, LotMove};
use crate::ledger::plan::{AccountState, KnownKey, ReversalTarget};
use crate::ledger::presence::{hour_of, CredentialState, ReceiptRow, RedeemState};
use crate::ledger::{
    head_ahead_micros, plan_batch, BatchPlan, BatchState, Head, Planned, PostedEntry, Unit,
    WriteRequest, HEAD_AHEAD_MAX_MICROS,
};

/// The native statements of one backend's batch transaction. Lists are never empty: the driver
/// skips a lookup or a write that has nothing to do.
pub(crate) trait BatchTx {
    /// Takes the ledger-wide lock (unless beginning the transaction took it) and reads the head.
    async fn lock(&mut self, ledger_id: &str) -> Result<Option<Head>, StoreError>;
    /// The accounts among `ids` that exist, with their balances.
    async fn accounts(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, AccountState>, StoreError>;
    /// The idempotency keys among `keys` that were used before.
    async fn known_keys(
        &mut self,
        ledger_id: &str,
        keys: &[String],
    ) -> Result<HashMap<String, KnownKey>, StoreError>;
    /// The open lots of these accounts.
    async fn open_lots(
        &mut self,
        ledger_id: &str,
        accounts: &[Uuid],
    ) -> Result<Vec<Lot>, StoreError>;
    /// The reversal targets among `ids` that exist, and every lot they moved or created.
    async fn targets(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<(HashMap<Uuid, ReversalTarget>, Vec<Lot>), StoreError>;
    /// The limit counters among `keys` that exist.
    async fn counters(
        &mut self,
        ledger_id: &str,
        keys: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError>;
    /// The states of the guarded records among `ids` that exist.
    async fn records(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, String)>, StoreError>;
    /// The credentials among `ids` that exist.
    async fn credentials(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, CredentialState)>, StoreError>;
    /// The failed attempts of these shops in `hour` (shops without any are absent).
    async fn shop_failures(
        &mut self,
        ledger_id: &str,
        hour: i64,
        shops: &[Uuid],
    ) -> Result<Vec<(Uuid, i64)>, StoreError>;

    /// New entries with their postings; `fingerprints[i]` is that of `entries[i]`'s request.
    async fn insert_entries(
        &mut self,
        ledger_id: &str,
        entries: &[PostedEntry],
        fingerprints: &[&[u8; 32]],
    ) -> Result<(), StoreError>;
    async fn upsert_balances(
        &mut self,
        ledger_id: &str,
        balances: &[(Uuid, Unit, i64)],
    ) -> Result<(), StoreError>;
    async fn upsert_lots(&mut self, ledger_id: &str, lots: &[Lot]) -> Result<(), StoreError>;
    /// Lot moves, each with its position within its entry (`indexes`).
    async fn insert_lot_moves(
        &mut self,
        ledger_id: &str,
        moves: &[LotMove],
        indexes: &[i32],
    ) -> Result<(), StoreError>;
    async fn upsert_counters(
        &mut self,
        ledger_id: &str,
        counters: &[(String, i64)],
    ) -> Result<(), StoreError>;
    /// Moves a guarded record to `status`, linking it to `entry` if that approves it.
    async fn update_record(
        &mut self,
        ledger_id: &str,
        record: Uuid,
        status: &str,
        entry: &PostedEntry,
    ) -> Result<(), StoreError>;
    /// Moves the head from `old_seq` to `head`; false if it was not at `old_seq`.
    async fn move_head(
        &mut self,
        ledger_id: &str,
        old_seq: i64,
        head: &Head,
    ) -> Result<bool, StoreError>;
    async fn update_credentials(
        &mut self,
        ledger_id: &str,
        credentials: &BTreeMap<Uuid, CredentialState>,
        now_micros: i64,
    ) -> Result<(), StoreError>;
    /// Adds failed attempts to the shops' counts of `hour`.
    async fn add_shop_failures(
        &mut self,
        ledger_id: &str,
        hour: i64,
        failures: &BTreeMap<Uuid, i64>,
    ) -> Result<(), StoreError>;
    async fn insert_receipts(
        &mut self,
        ledger_id: &str,
        receipts: &[ReceiptRow],
    ) -> Result<(), StoreError>;

    /// Posted entries with their postings (for replays), in any order.
    async fn entries(
        &mut self,
        ledger_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<PostedEntry>, StoreError>;
    async fn commit(self) -> Result<(), StoreError>;
}

/// Reads, plans and writes one batch in the transaction `tx`, commits it, and remembers its
/// receipts in `recent`. An error means nothing was written (the transaction rolls back when
/// `tx` is dropped uncommitted).
pub(crate) async fn commit_batch<T: BatchTx>(
    mut tx: T,
    recent: &RecentReceipts,
    ledger_id: &str,
    now_micros: i64,
    requests: &[WriteRequest],
) -> Result<Vec<Outcome>, StoreError> {
    let head = tx
        .lock(ledger_id)
        .await?
        .ok_or_else(|| StoreError::NoSuchLedger(ledger_id.to_owned()))?;
    // A head ahead of the clock is survivable (entries are stamped at the head's time, codes are
    // judged by the clock) but means a clock is wrong somewhere: said once per batch.
    let ahead = head_ahead_micros(&head, now_micros);
    if ahead > HEAD_AHEAD_MAX_MICROS {
        tracing::warn!(
            ledger = %ledger_id,
            head_ahead_seconds = ahead / 1_000_000,
            "the ledger's head is ahead of this server's clock; entries are stamped at the head's time"
        );
    }
    let state = read_state(&mut tx, ledger_id, head, now_micros, requests).await?;
    let plan = plan_batch(ledger_id, now_micros, state, requests);
    write_plan(&mut tx, ledger_id, &head, &plan, requests, now_micros).await?;
    let replayed = replayed(&mut tx, ledger_id, &plan).await?;
    tx.commit().await?;
    recent.remember(ledger_id, &plan);
    outcomes_from_plan(
        plan.outcomes,
        plan.entries.into_iter().map(Some).collect(),
        &replayed,
    )
}

/// Everything the planner needs for `requests`, read under the lock.
async fn read_state<T: BatchTx>(
    tx: &mut T,
    ledger_id: &str,
    head: Head,
    now_micros: i64,
    requests: &[WriteRequest],
) -> Result<BatchState, StoreError> {
    let (account_ids, keys, target_ids) = BatchState::lookups(requests);
    let (counter_keys, record_ids) = BatchState::extra_lookups(requests);
    let accounts = tx.accounts(ledger_id, &account_ids).await?;
    let known_keys = tx.known_keys(ledger_id, &keys).await?;
    // Open lots of the accounts the batch debits (only resident accounts have any).
    let debited = BatchState::debited_accounts(requests);
    let mut lots = BTreeMap::new();
    if !debited.is_empty() {
        lots.extend(
            tx.open_lots(ledger_id, &debited)
                .await?
                .into_iter()
                .map(|l| (l.id, l)),
        );
    }
    let mut targets = HashMap::new();
    if !target_ids.is_empty() {
        let (found, their_lots) = tx.targets(ledger_id, &target_ids).await?;
        targets = found;
        lots.extend(their_lots.into_iter().map(|l| (l.id, l)));
    }
    let mut counters = HashMap::new();
    if !counter_keys.is_empty() {
        counters.extend(tx.counters(ledger_id, &counter_keys).await?);
    }
    let mut records = HashMap::new();
    if !record_ids.is_empty() {
        records.extend(tx.records(ledger_id, &record_ids).await?);
    }
    let redeem = read_redeem_state(tx, ledger_id, now_micros, requests).await?;
    Ok(BatchState {
        head,
        accounts,
        known_keys,
        targets,
        lots,
        counters,
        records,
        redeem,
    })
}

/// The credentials and shop attempt counts of the batch's presentations.
async fn read_redeem_state<T: BatchTx>(
    tx: &mut T,
    ledger_id: &str,
    now_micros: i64,
    requests: &[WriteRequest],
) -> Result<RedeemState, StoreError> {
    let mut state = RedeemState::default();
    let (credentials, shops) =
        RedeemState::lookups(requests.iter().filter_map(|r| r.presentation.as_ref()));
    if credentials.is_empty() {
        return Ok(state);
    }
    state
        .credentials
        .extend(tx.credentials(ledger_id, &credentials).await?);
    state.shop_failures.extend(
        tx.shop_failures(ledger_id, hour_of(now_micros), &shops)
            .await?,
    );
    Ok(state)
}

/// Writes the planned rows, moves the head (guarded by the old one), and writes what the
/// batch's presentations changed, which stands whatever became of the entries.
async fn write_plan<T: BatchTx>(
    tx: &mut T,
    ledger_id: &str,
    old_head: &Head,
    plan: &BatchPlan,
    requests: &[WriteRequest],
    now_micros: i64,
) -> Result<(), StoreError> {
    if !plan.entries.is_empty() {
        let fingerprints: HashMap<Uuid, &[u8; 32]> = requests
            .iter()
            .map(|r| (r.entry_id, &r.fingerprint))
            .collect();
        let fingerprints = plan
            .entries
            .iter()
            .map(|e| fingerprints.get(&e.id).copied())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StoreError::Corrupt("posted entry without its request".to_owned()))?;
        tx.insert_entries(ledger_id, &plan.entries, &fingerprints)
            .await?;
        tx.upsert_balances(ledger_id, &plan.balances).await?;
        write_extras(tx, ledger_id, plan).await?;
        if !tx.move_head(ledger_id, old_head.seq, &plan.head).await? {
            return Err(StoreError::Corrupt(
                "the ledger head moved under the write lock".to_owned(),
            ));
        }
    }
    let presence = &plan.presence;
    if !presence.credentials.is_empty() {
        tx.update_credentials(ledger_id, &presence.credentials, now_micros)
            .await?;
    }
    if !presence.shop_failures.is_empty() {
        tx.add_shop_failures(ledger_id, hour_of(now_micros), &presence.shop_failures)
            .await?;
    }
    if !plan.receipts.is_empty() {
        tx.insert_receipts(ledger_id, &plan.receipts).await?;
    }
    Ok(())
}

/// Lots, lot moves, counters and guarded records of a batch.
async fn write_extras<T: BatchTx>(
    tx: &mut T,
    ledger_id: &str,
    plan: &BatchPlan,
) -> Result<(), StoreError> {
    if !plan.lots.is_empty() {
        tx.upsert_lots(ledger_id, &plan.lots).await?;
    }
    if !plan.lot_moves.is_empty() {
        let indexes = move_indexes(&plan.lot_moves);
        tx.insert_lot_moves(ledger_id, &plan.lot_moves, &indexes)
            .await?;
    }
    if !plan.counters.is_empty() {
        tx.upsert_counters(ledger_id, &plan.counters).await?;
    }
    for (record, status, entry_id) in &plan.records {
        let entry = plan
            .entries
            .iter()
            .find(|e| e.id == *entry_id)
            .ok_or_else(|| StoreError::Corrupt("guarded record without its entry".to_owned()))?;
        tx.update_record(ledger_id, *record, status, entry).await?;
    }
    Ok(())
}

/// The entries the batch answers as replays, by id.
async fn replayed<T: BatchTx>(
    tx: &mut T,
    ledger_id: &str,
    plan: &BatchPlan,
) -> Result<BTreeMap<Uuid, PostedEntry>, StoreError> {
    let mut ids: Vec<Uuid> = plan
        .outcomes
        .iter()
        .filter_map(|o| match o {
            Planned::Replayed(id) => Some(*id),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    ids.sort_unstable();
    ids.dedup();
    let entries = tx.entries(ledger_id, &ids).await?;
    Ok(entries.into_iter().map(|e| (e.id, e)).collect())
}
