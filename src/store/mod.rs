//! The store contract and its two native implementations.
//!
//! One trait per contract ([`Store`], [`earning::EarningStore`], [`redeem::RedeemStore`],
//! [`session::SessionStore`]);
//! [`sqlite::SqliteStore`] and [`postgres::PgStore`] implement them, each in its own folder with
//! its native SQL (no `sqlx::Any`). The statements the two dialects agree on are written once
//! (`sql/`), and so is the order of the one write path (`batch.rs`) over each backend's native
//! batch statements. The conformance tests in `tests/` run every store test against both.
//! Ledger rules are not decided here: a batch is read under the ledger lock, planned by
//! [`crate::ledger::plan_batch`], and written.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::ledger::verify::{Problem, StoredBalance, Summary};
use crate::ledger::{AccountKind, EntryKind, Head, LedgerError, PostedEntry, Unit, WriteRequest};
use crate::ledger::{Checkpoint, Total};

mod batch;
pub mod earning;
pub mod postgres;
pub mod redeem;
pub mod session;
mod sql;
pub mod sqlite;

/// Longest ledger id, in bytes. Ledger ids are lowercase ASCII letters, digits, '-' and '_'.
pub const LEDGER_ID_MAX_BYTES: usize = 64;
/// Longest account label, owner id or community id, in bytes.
pub const ACCOUNT_TEXT_MAX_BYTES: usize = 128;
/// Most entries a page of history may hold.
pub const PAGE_LIMIT_MAX: i64 = 200;
/// Entries read per round trip while verifying.
pub const VERIFY_PAGE: i64 = 2_000;

/// The outcome of one write request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Newly posted.
    Posted(PostedEntry),
    /// The same request was posted before under this idempotency key; this is that entry.
    Replayed(PostedEntry),
    /// Refused by a ledger rule; nothing was written.
    Refused(LedgerError),
}

/// An account and its balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub ledger_id: String,
    pub id: Uuid,
    pub kind: AccountKind,
    /// The resident or shop this account belongs to, for token scoping.
    pub owner_id: Option<String>,
    /// The community this account belongs to, for staff token scoping.
    pub community_id: Option<String>,
    pub label: String,
    pub created_at_micros: i64,
    /// One balance (in hundredths) per unit the kind may hold.
    pub balances: BTreeMap<Unit, i64>,
}

/// What it takes to open an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub id: Uuid,
    pub kind: AccountKind,
    pub owner_id: Option<String>,
    pub community_id: Option<String>,
    pub label: String,
}

/// Opening an account is idempotent on its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    Created(Account),
    /// An account with this id and the same attributes already existed.
    Existing(Account),
    /// An account with this id exists with other attributes; nothing changed.
    Conflict(Account),
}

/// An API token as stored: only the SHA-256 of the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: Uuid,
    pub ledger_id: String,
    pub token_hash: [u8; 32],
    pub role: String,
    pub scope: Option<String>,
    pub label: String,
    pub created_at_micros: i64,
    pub expires_at_micros: Option<i64>,
    pub revoked_at_micros: Option<i64>,
}

/// Which backend a store is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Failures of the store itself (never ledger refusals, which are [`Outcome::Refused`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An error of the SQLite batch writer's connection (rusqlite).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("ledger {0:?} does not exist")]
    NoSuchLedger(String),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("unsupported database URL (use sqlite: or postgres:)")]
    UnsupportedUrl,
}

impl StoreError {
    /// Whether the database was out of reach (retrying later may succeed) rather than wrong.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        )
    }
}

/// The contract both backends fulfil.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Creates the ledger if it does not exist. Its chain starts at the genesis hash.
    async fn ensure_ledger(&self, ledger_id: &str, now_micros: i64) -> Result<(), StoreError>;

    /// Ledgers this database hosts.
    async fn ledgers(&self) -> Result<Vec<String>, StoreError>;

    /// Posts a batch in one transaction under the ledger-wide lock. Each request gets its own
    /// outcome; a refusal does not affect the others. An error means nothing was written.
    async fn commit_batch(
        &self,
        ledger_id: &str,
        now_micros: i64,
        requests: &[WriteRequest],
    ) -> Result<Vec<Outcome>, StoreError>;

    async fn open_account(
        &self,
        ledger_id: &str,
        account: &NewAccount,
        now_micros: i64,
    ) -> Result<Opened, StoreError>;

    async fn account(&self, ledger_id: &str, id: Uuid) -> Result<Option<Account>, StoreError>;

    async fn accounts(&self, ledger_id: &str, ids: &[Uuid]) -> Result<Vec<Account>, StoreError>;

    async fn entry(&self, ledger_id: &str, id: Uuid) -> Result<Option<PostedEntry>, StoreError>;

    /// Entries touching `account`, newest first, with sequence below `before_seq` if given.
    async fn account_entries(
        &self,
        ledger_id: &str,
        account: Uuid,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<PostedEntry>, StoreError>;

    /// The journal in sequence order: up to `limit` entries after `after_seq`.
    async fn entries_after(
        &self,
        ledger_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<PostedEntry>, StoreError>;

    async fn head(&self, ledger_id: &str) -> Result<Option<Head>, StoreError>;

    /// Every stored balance of the ledger, read in one consistent snapshot.
    async fn balances(&self, ledger_id: &str) -> Result<Vec<StoredBalance>, StoreError>;

    /// Recomputes the chain, every entry's balance and every account's balance from the postings
    /// in one consistent snapshot, and reports the first problem.
    async fn verify(&self, ledger_id: &str) -> Result<Result<Summary, Problem>, StoreError>;

    // ---- Audit ----

    /// The head and every stored balance, read in one consistent snapshot.
    async fn snapshot(&self, ledger_id: &str) -> Result<(Head, Vec<StoredBalance>), StoreError>;

    /// Every account of the ledger (with its stored balances), in ascending id order.
    async fn all_accounts(&self, ledger_id: &str) -> Result<Vec<Account>, StoreError>;

    /// Per (account, unit), the signed sum of the postings of entries 1..=`through_seq`
    /// (accounts without postings there are absent).
    async fn balances_through(
        &self,
        ledger_id: &str,
        through_seq: i64,
    ) -> Result<Vec<(Uuid, Unit, i64)>, StoreError>;

    /// The sequence number of the last entry posted before `micros` (0 if none).
    async fn last_seq_before(&self, ledger_id: &str, micros: i64) -> Result<i64, StoreError>;

    /// Stores a checkpoint unless one exists for its sequence number already; returns the
    /// checkpoint stored for that sequence number (the new one or the earlier one).
    async fn insert_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        now_micros: i64,
    ) -> Result<Checkpoint, StoreError>;

    /// Stored checkpoints with `from_seq <= seq <= to_seq`, in sequence order.
    async fn checkpoints(
        &self,
        ledger_id: &str,
        from_seq: i64,
        to_seq: i64,
    ) -> Result<Vec<Checkpoint>, StoreError>;

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;

    async fn token_by_hash(&self, token_hash: &[u8; 32])
        -> Result<Option<TokenRecord>, StoreError>;

    /// Marks a token revoked; false if there is no such token.
    async fn revoke_token(&self, id: Uuid, now_micros: i64) -> Result<bool, StoreError>;

    /// Live (neither revoked nor expired at `now_micros`) tokens of a role in a ledger.
    async fn count_live_tokens(
        &self,
        ledger_id: &str,
        role: &str,
        now_micros: i64,
    ) -> Result<i64, StoreError>;
}

/// Opens the store a URL names: `sqlite:PATH` (created if missing) or `postgres://...`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// Every contract of one database.
#[derive(Clone)]
pub struct Stores {
    pub ledger: Arc<dyn Store>,
    pub earning: Arc<dyn earning::EarningStore>,
    pub redeem: Arc<dyn redeem::RedeemStore>,
    pub sessions: Arc<dyn session::SessionStore>,
}

impl Stores {
    /// Every contract of one concrete store.
    pub fn of<S>(store: S) -> Stores
    where
        S: Store + earning::EarningStore + redeem::RedeemStore + session::SessionStore,
    {
        let store = Arc::new(store);
        Stores {
            ledger: store.clone(),
            earning: store.clone(),
            redeem: store.clone(),
            sessions: store,
        }
    }
}

/// Opens both contracts of the database a URL names.
pub async fn connect_all(url: &str) -> Result<Stores, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Stores::of(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Stores::of(postgres::PgStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// Whether `id` is an acceptable ledger id.
pub fn ledger_id_is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= LEDGER_ID_MAX_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

// Helpers both backends use to turn stored text back into domain values. A value that does not
// parse means the database was changed outside aixin: that is reported, never guessed at.

pub(crate) fn parse_kind(text: &str) -> Result<EntryKind, StoreError> {
    EntryKind::parse(text).ok_or_else(|| StoreError::Corrupt(format!("entry kind {text:?}")))
}

pub(crate) fn parse_unit(text: &str) -> Result<Unit, StoreError> {
    Unit::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unit {text:?}")))
}

pub(crate) fn parse_account_kind(text: &str) -> Result<AccountKind, StoreError> {
    AccountKind::parse(text).ok_or_else(|| StoreError::Corrupt(format!("account kind {text:?}")))
}

pub(crate) fn parse_side(text: &str) -> Result<crate::ledger::Side, StoreError> {
    crate::ledger::Side::parse(text).ok_or_else(|| StoreError::Corrupt(format!("side {text:?}")))
}

pub(crate) fn hash32(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("hash of {} bytes", bytes.len())))
}

pub(crate) fn parse_metadata(text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("metadata: {e}")))
}

pub(crate) fn metadata_text(metadata: &BTreeMap<String, String>) -> String {
    // A map of strings always serialises.
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("uuid {text:?}")))
}

pub(crate) fn parse_stored_date(text: &str) -> Result<time::Date, StoreError> {
    crate::calendar::parse_date(text).ok_or_else(|| StoreError::Corrupt(format!("date {text:?}")))
}

pub(crate) fn amount_from_minor(minor: i64) -> Result<crate::ledger::Amount, StoreError> {
    crate::ledger::Amount::from_minor(minor)
        .map_err(|e| StoreError::Corrupt(format!("posting amount {minor}: {e}")))
}

/// Attaches postings (sorted by entry sequence, then index) to their entries (sorted by sequence).
pub(crate) fn attach_postings(
    entries: &mut [PostedEntry],
    postings: Vec<(i64, crate::ledger::Posting)>,
) -> Result<(), StoreError> {
    let mut by_seq: BTreeMap<i64, Vec<crate::ledger::Posting>> = BTreeMap::new();
    for (seq, posting) in postings {
        by_seq.entry(seq).or_default().push(posting);
    }
    for entry in entries.iter_mut() {
        entry.postings = by_seq.remove(&entry.seq).unwrap_or_default();
    }
    Ok(())
}

/// Turns a planned batch into outcomes, given the replayed entries loaded after commit.
pub(crate) fn outcomes_from_plan(
    plan_outcomes: Vec<crate::ledger::Planned>,
    mut posted: Vec<Option<PostedEntry>>,
    replayed: &BTreeMap<Uuid, PostedEntry>,
) -> Result<Vec<Outcome>, StoreError> {
    use crate::ledger::Planned;
    plan_outcomes
        .into_iter()
        .map(|planned| match planned {
            Planned::Posted(index) => posted
                .get_mut(index)
                .and_then(Option::take)
                .map(Outcome::Posted)
                .ok_or_else(|| StoreError::Corrupt("planned entry missing".to_owned())),
            Planned::Replayed(id) => replayed
                .get(&id)
                .cloned()
                .map(Outcome::Replayed)
                .ok_or_else(|| StoreError::Corrupt(format!("replayed entry {id} missing"))),
            Planned::Refused(refusal) => Ok(Outcome::Refused(refusal)),
        })
        .collect()
}

/// Account attributes equal (ignoring balances and creation time)?
pub(crate) fn same_attributes(existing: &Account, wanted: &NewAccount) -> bool {
    existing.kind == wanted.kind
        && existing.owner_id == wanted.owner_id
        && existing.community_id == wanted.community_id
        && existing.label == wanted.label
}

/// The position of each lot move within its entry (moves arrive grouped by entry, in order):
/// the order a refund returns points in.
pub(crate) fn move_indexes(moves: &[crate::ledger::lots::LotMove]) -> Vec<i32> {
    let mut indexes = Vec::with_capacity(moves.len());
    let mut previous = None;
    let mut next = 0;
    for m in moves {
        if previous != Some(m.entry_seq) {
            previous = Some(m.entry_seq);
            next = 0;
        }
        indexes.push(next);
        next += 1;
    }
    indexes
}

/// A checkpoint's totals as the `checkpoints.totals` column holds them: `unit:kind:minor`
/// joined by `;`.
pub(crate) fn totals_text(totals: &[Total]) -> String {
    totals
        .iter()
        .map(|t| format!("{}:{}:{}", t.unit, t.kind, t.balance_minor))
        .collect::<Vec<_>>()
        .join(";")
}

pub(crate) fn parse_totals(text: &str) -> Result<Vec<Total>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(';')
        .map(|item| {
            let mut parts = item.splitn(3, ':');
            let (Some(unit), Some(kind), Some(minor)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(StoreError::Corrupt(format!("checkpoint total {item:?}")));
            };
            Ok(Total {
                unit: parse_unit(unit)?,
                kind: parse_account_kind(kind)?,
                balance_minor: minor
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("checkpoint total {item:?}")))?,
            })
        })
        .collect()
}

/// A checkpoint from its stored columns.
pub(crate) fn checkpoint_from(
    ledger_id: &str,
    seq: i64,
    head_hash: &[u8],
    totals: &str,
    key_id: String,
    tag: &[u8],
) -> Result<Checkpoint, StoreError> {
    Ok(Checkpoint {
        ledger_id: ledger_id.to_owned(),
        seq,
        head_hash: hash32(head_hash)?,
        totals: parse_totals(totals)?,
        key_id,
        tag: hash32(tag)?,
    })
}

impl From<StoreError> for crate::error::Error {
    fn from(error: StoreError) -> Self {
        // The cause goes to the operator's log; the caller learns only that it was on our side.
        tracing::error!(%error, "store error");
        if error.is_transient() {
            crate::error::Error::bare(crate::error::ErrorCode::Unavailable)
        } else {
            crate::error::Error::bare(crate::error::ErrorCode::Internal)
        }
    }
}
