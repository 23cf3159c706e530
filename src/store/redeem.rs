//! The store contract for redemption: shops, staff, catalogue, stock, credentials, attempt
//! counts and receipts. Both backends run the same statements for it (`sql/redeem.rs`) but
//! one list lookup. Redemption and refund entries, with their receipts and code effects, go
//! through the writer (`batch.rs`); this is the state around them.

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use super::earning::Inserted;
use super::StoreError;

/// Counter key of an item's stock: the counter holds minus the units in stock, so that a sale of
/// `q` is the limit "+q, at most 0".
pub fn stock_key(item: Uuid) -> String {
    format!("stock:{item}")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shop {
    pub id: Uuid,
    pub name_zh: String,
    pub name_en: String,
    pub community_id: String,
    pub account_id: Uuid,
    pub refund_window_days: i64,
    /// Communities whose residents the shop serves (always includes its own).
    pub communities: Vec<String>,
    pub created_by: String,
    pub created_at_micros: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShopStaff {
    pub token_id: Uuid,
    pub shop_id: Uuid,
    pub name: String,
    pub owner: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub sku: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub price_minor: i64,
    pub track_stock: bool,
    pub cap_day: Option<i64>,
    pub cap_month: Option<i64>,
    pub active: bool,
    pub updated_at_micros: i64,
}

/// A stock change other than a sale or refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockMove {
    pub id: Uuid,
    pub item_id: Uuid,
    pub delta: i64,
    pub reason: String,
    pub note: String,
    pub actor: String,
    /// Units in stock after the move.
    pub level: i64,
    pub at_micros: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub id: Uuid,
    pub resident_id: Uuid,
    pub number: u32,
    pub generation: i64,
    pub active: bool,
    pub last_step: i64,
    pub failures: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReceipt {
    pub id: Uuid,
    pub entry_id: Uuid,
    pub entry_seq: i64,
    pub entry_hash: [u8; 32],
    pub kind: String,
    pub shop_id: Uuid,
    pub shop_name: String,
    pub resident_id: Uuid,
    pub resident_pseudonym: String,
    pub community_id: String,
    pub refund_of: Option<Uuid>,
    pub total_minor: i64,
    pub balance_after_minor: i64,
    pub posted_at_micros: i64,
    pub lines_json: String,
}

/// What a stock move did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockMoved {
    /// Moved; the new level.
    Moved(i64),
    /// A move with this id was recorded before, with the same item, delta and reason; the level
    /// it left.
    Replayed(i64),
    /// The move would take the level (given) below zero; nothing was written.
    Insufficient(i64),
    /// A move with this id was recorded before with other content.
    IdReused,
}

/// A credential with what the till needs of its resident, read together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialHolder {
    pub credential: Credential,
    pub pseudonym: String,
    pub community_id: String,
    pub account_id: Uuid,
}

/// Issuing a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issued {
    Issued(Credential),
    /// This key issued the credential as it is now; nothing was changed.
    Replayed(Credential),
    /// The proposed number is taken; draw another.
    NumberTaken,
}

#[async_trait]
pub trait RedeemStore: OwnerStore + Send + Sync + 'static {
    /// Creates a shop with its partner communities; idempotent on the id.
    async fn insert_shop(&self, ledger_id: &str, shop: &Shop)
        -> Result<Inserted<Shop>, StoreError>;
    async fn shop(&self, ledger_id: &str, id: Uuid) -> Result<Option<Shop>, StoreError>;
    /// The shops that serve residents of `community_id` (at most [`SHOPS_SERVING_MAX`]).
    async fn shops_serving(
        &self,
        ledger_id: &str,
        community_id: &str,
    ) -> Result<Vec<Uuid>, StoreError>;
    async fn insert_shop_staff(
        &self,
        ledger_id: &str,
        staff: &ShopStaff,
        now_micros: i64,
    ) -> Result<(), StoreError>;
    async fn shop_staff(
        &self,
        ledger_id: &str,
        token_id: Uuid,
    ) -> Result<Option<ShopStaff>, StoreError>;
    /// Creates or replaces a catalogue item (same id, same shop). Returns false if the SKU is
    /// taken by another item of the shop.
    async fn put_item(&self, ledger_id: &str, item: &Item) -> Result<bool, StoreError>;
    async fn items(&self, ledger_id: &str, shop_id: Uuid) -> Result<Vec<Item>, StoreError>;
    /// Units in stock per item (items never stocked are absent).
    async fn stock_levels(
        &self,
        ledger_id: &str,
        items: &[Uuid],
    ) -> Result<HashMap<Uuid, i64>, StoreError>;
    /// Moves stock under the ledger lock, recording the move; idempotent on the move's id.
    async fn move_stock(&self, ledger_id: &str, mv: &StockMove) -> Result<StockMoved, StoreError>;
    async fn stock_moves(
        &self,
        ledger_id: &str,
        item: Uuid,
        limit: i64,
    ) -> Result<Vec<StockMove>, StoreError>;
    /// The credential with this number and its resident, in one read.
    async fn credential_holder(
        &self,
        ledger_id: &str,
        number: u32,
    ) -> Result<Option<CredentialHolder>, StoreError>;
    async fn credential_of(
        &self,
        ledger_id: &str,
        resident: Uuid,
    ) -> Result<Option<Credential>, StoreError>;
    /// Issues the resident's credential under the ledger lock: a new one with `number`, or the
    /// existing one re-issued (next generation, active, no failures of either kind; its number
    /// kept).
    async fn issue_credential(
        &self,
        ledger_id: &str,
        resident: Uuid,
        new_id: Uuid,
        number: u32,
        key: &str,
        now_micros: i64,
    ) -> Result<Issued, StoreError>;
    /// Revokes the resident's credential under the ledger lock; false if there is none.
    async fn revoke_credential(
        &self,
        ledger_id: &str,
        resident: Uuid,
        now_micros: i64,
    ) -> Result<bool, StoreError>;
    async fn receipt(&self, ledger_id: &str, id: Uuid)
        -> Result<Option<StoredReceipt>, StoreError>;
    async fn receipt_by_entry(
        &self,
        ledger_id: &str,
        entry_id: Uuid,
    ) -> Result<Option<StoredReceipt>, StoreError>;
    /// The refund receipt of a redemption receipt, if it was refunded.
    async fn refund_of(
        &self,
        ledger_id: &str,
        receipt: Uuid,
    ) -> Result<Option<StoredReceipt>, StoreError>;
    /// A shop's receipts posted in `[from, to)` (microseconds), oldest first, at most `limit`.
    async fn shop_receipts(
        &self,
        ledger_id: &str,
        shop: Uuid,
        from_micros: i64,
        to_micros: i64,
        limit: i64,
    ) -> Result<Vec<StoredReceipt>, StoreError>;
}

/// A member of a shop's staff as the owner's list shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffMember {
    pub staff: ShopStaff,
    /// Whether they have a PIN to sign in at the shop's paired tills.
    pub has_pin: bool,
    /// A cashier (scan only) rather than a clerk or owner.
    pub cashier: bool,
    pub added_at_micros: i64,
    /// When they were removed (their token revoked, sessions ended, PIN deleted).
    pub removed_at_micros: Option<i64>,
}

/// A settlement entry of a shop: what left the shop's account, and the period it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementRow {
    pub entry_id: Uuid,
    pub entry_seq: i64,
    pub posted_at_micros: i64,
    pub points_minor: i64,
    /// The entry's metadata `from` and `to` (YYYY-MM-DD).
    pub from: String,
    pub to: String,
}

/// Owner-page reads and the removal of a clerk (src/redeem/owner.rs), on both backends from the
/// same statements (`sql/redeem.rs`).
#[async_trait]
pub trait OwnerStore: Send + Sync + 'static {
    /// Shop ids after `after` (by id), at most `limit`.
    async fn shop_ids(
        &self,
        ledger_id: &str,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// A shop's staff, removed ones included, by name, at most `limit`.
    async fn staff_of_shop(
        &self,
        ledger_id: &str,
        shop: Uuid,
        limit: i64,
    ) -> Result<Vec<StaffMember>, StoreError>;
    /// Removes a member of shop staff in one transaction: marks the row removed, revokes their
    /// token, ends their sessions and deletes their PIN. False when they were removed before.
    async fn remove_shop_staff(
        &self,
        ledger_id: &str,
        token_id: Uuid,
        now_micros: i64,
    ) -> Result<bool, StoreError>;
    /// A shop's receipts posted in `[from, to)` with an entry sequence above `after_seq`, by
    /// sequence, at most `limit`.
    async fn shop_receipts_after(
        &self,
        ledger_id: &str,
        shop: Uuid,
        from_micros: i64,
        to_micros: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredReceipt>, StoreError>;
    /// The settlement entries debiting `shop_account` with a sequence below `before_seq`, newest
    /// first, at most `limit`.
    async fn settlements(
        &self,
        ledger_id: &str,
        shop_account: Uuid,
        before_seq: i64,
        limit: i64,
    ) -> Result<Vec<SettlementRow>, StoreError>;
}

/// Receipts written by this process's most recent batches, by entry id: a bounded write-through
/// cache of rows that never change once committed, so that the till's answer right after a
/// redemption or refund does not read back what its own batch has just written. Filled only
/// after a commit succeeded; a miss (an older receipt, one written by another process, a replay)
/// reads the database.
#[derive(Default)]
pub(crate) struct RecentReceipts {
    inner: std::sync::Mutex<RecentInner>,
}

#[derive(Default)]
struct RecentInner {
    by_entry: HashMap<Uuid, (String, StoredReceipt)>,
    order: std::collections::VecDeque<Uuid>,
}

/// At most this many receipts are kept (a few seconds of a busy till network).
const RECENT_RECEIPTS_MAX: usize = 4096;

impl RecentReceipts {
    /// Remembers the receipts of a committed batch.
    pub(crate) fn remember(&self, ledger_id: &str, plan: &crate::ledger::BatchPlan) {
        if plan.receipts.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for row in &plan.receipts {
            // The batch's entries have contiguous sequence numbers, in order.
            let Some(entry) = plan.entries.first().and_then(|first| {
                let at = usize::try_from(row.entry_seq - first.seq).ok()?;
                plan.entries.get(at).filter(|e| e.id == row.entry_id)
            }) else {
                continue;
            };
            let d = &row.draft;
            let stored = StoredReceipt {
                id: d.id,
                entry_id: row.entry_id,
                entry_seq: row.entry_seq,
                entry_hash: entry.hash,
                kind: d.kind.clone(),
                shop_id: d.shop_id,
                shop_name: d.shop_name.clone(),
                resident_id: d.resident_id,
                resident_pseudonym: d.resident_pseudonym.clone(),
                community_id: d.community_id.clone(),
                refund_of: d.refund_of,
                total_minor: d.total_minor,
                balance_after_minor: row.balance_after_minor,
                posted_at_micros: row.posted_at_micros,
                lines_json: d.lines_json.clone(),
            };
            if inner
                .by_entry
                .insert(row.entry_id, (ledger_id.to_owned(), stored))
                .is_none()
            {
                inner.order.push_back(row.entry_id);
            }
        }
        while inner.order.len() > RECENT_RECEIPTS_MAX {
            if let Some(oldest) = inner.order.pop_front() {
                inner.by_entry.remove(&oldest);
            }
        }
    }

    /// The receipt of `entry_id` in `ledger_id`, if a recent batch of this process wrote it.
    pub(crate) fn get(&self, ledger_id: &str, entry_id: Uuid) -> Option<StoredReceipt> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .by_entry
            .get(&entry_id)
            .filter(|(ledger, _)| ledger == ledger_id)
            .map(|(_, receipt)| receipt.clone())
    }
}

/// Most shops [`RedeemStore::shops_serving`] answers: a community is served by a handful.
pub const SHOPS_SERVING_MAX: i64 = 100;
