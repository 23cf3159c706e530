//! Entries and postings, their limits, and the checks that need no database.

use std::collections::BTreeMap;
use std::fmt;

use uuid::Uuid;

use super::amount::Amount;
use super::unit::Unit;

/// Most postings one entry may carry.
pub const POSTINGS_MAX: usize = 64;
/// Fewest postings one entry may carry: double entry needs two sides.
pub const POSTINGS_MIN: usize = 2;
/// Longest memo, in UTF-8 bytes (about 170 Chinese characters).
pub const MEMO_MAX_BYTES: usize = 512;
/// Most metadata pairs per entry.
pub const METADATA_PAIRS_MAX: usize = 16;
/// Longest metadata key, in bytes. Keys are ASCII identifiers.
pub const METADATA_KEY_MAX_BYTES: usize = 64;
/// Longest metadata value, in UTF-8 bytes.
pub const METADATA_VALUE_MAX_BYTES: usize = 256;
/// Longest actor name, in bytes.
pub const ACTOR_MAX_BYTES: usize = 128;
/// Longest idempotency key, in bytes. Keys are printable ASCII without spaces.
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 128;
/// Most requests in one all-or-nothing group (an event roster, say).
pub const GROUP_MAX: usize = 512;

/// An account's identity inside one ledger.
pub type AccountId = Uuid;

/// What an entry is for. The kind is part of the hashed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Issuance → resident, for volunteer service.
    Earn,
    /// Resident → shop, at a love shop's till.
    Redeem,
    /// A reversal of (part of) a redemption.
    Refund,
    /// Shop → community settlement account.
    Settle,
    /// Resident → community expiry account.
    Expire,
    /// An administrative correction against the adjustment account.
    Adjust,
    /// A reversal of any other entry, naming it.
    Reversal,
}

/// Written as its name (`"earn"`, `"redeem"`, …), as the API and the bundle show it.
impl serde::Serialize for EntryKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl EntryKind {
    pub const ALL: [EntryKind; 7] = [
        EntryKind::Earn,
        EntryKind::Redeem,
        EntryKind::Refund,
        EntryKind::Settle,
        EntryKind::Expire,
        EntryKind::Adjust,
        EntryKind::Reversal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Earn => "earn",
            EntryKind::Redeem => "redeem",
            EntryKind::Refund => "refund",
            EntryKind::Settle => "settle",
            EntryKind::Expire => "expire",
            EntryKind::Adjust => "adjust",
            EntryKind::Reversal => "reversal",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Refunds and reversals must name the entry they reverse; nothing else may.
    pub fn is_reversal(self) -> bool {
        matches!(self, EntryKind::Refund | EntryKind::Reversal)
    }

    /// Whether an entry of this kind may move value out of (`Debit`) or into (`Credit`) an
    /// account of `account` kind: the money flows of PRODUCT.md. `adjust` and `reversal` may
    /// touch any account (a reversal is further bound to mirror what it reverses).
    pub fn allows(self, side: Side, account: super::unit::AccountKind) -> bool {
        use super::unit::AccountKind::*;
        match (self, side) {
            (EntryKind::Earn, Side::Debit) => account == Issuance,
            (EntryKind::Earn, Side::Credit) => account == Resident,
            (EntryKind::Redeem, Side::Debit) => account == Resident,
            (EntryKind::Redeem, Side::Credit) => account == Shop,
            (EntryKind::Refund, Side::Debit) => account == Shop,
            (EntryKind::Refund, Side::Credit) => account == Resident,
            (EntryKind::Settle, Side::Debit) => account == Shop,
            (EntryKind::Settle, Side::Credit) => account == Settlement,
            (EntryKind::Expire, Side::Debit) => account == Resident,
            (EntryKind::Expire, Side::Credit) => account == Expiry,
            (EntryKind::Adjust | EntryKind::Reversal, _) => true,
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a posting moves value. A debit takes value out of the account (its balance goes
/// down); a credit puts value in (its balance goes up). Balance = credits − debits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    pub fn parse(text: &str) -> Option<Side> {
        match text {
            "debit" => Some(Side::Debit),
            "credit" => Some(Side::Credit),
            _ => None,
        }
    }

    /// The byte that stands for this side in hashed layouts.
    pub fn code(self) -> u8 {
        match self {
            Side::Debit => 1,
            Side::Credit => 2,
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }

    /// The signed effect of `amount` on the account's balance.
    pub fn signed(self, amount: Amount) -> i64 {
        match self {
            Side::Debit => -amount.minor(),
            Side::Credit => amount.minor(),
        }
    }
}

/// One leg of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub account: AccountId,
    pub unit: Unit,
    pub side: Side,
    pub amount: Amount,
}

/// What a client asks the ledger to post: everything except what the ledger assigns
/// (sequence, id, time, hashes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDraft {
    pub kind: EntryKind,
    pub postings: Vec<Posting>,
    pub memo: String,
    /// Sorted by key, so the hashed layout has one order.
    pub metadata: BTreeMap<String, String>,
    pub reverses: Option<Uuid>,
}

/// A refusal decided by ledger rules. Each maps to one stable error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("an entry needs at least {POSTINGS_MIN} postings")]
    TooFewPostings,
    #[error("an entry may carry at most {POSTINGS_MAX} postings")]
    TooManyPostings,
    #[error(
        "the entry does not balance in {unit}: debits {debits} ≠ credits {credits} (hundredths)"
    )]
    Unbalanced {
        unit: Unit,
        debits: i64,
        credits: i64,
    },
    #[error("account {account} appears on both sides in {unit}")]
    AccountOnBothSides { account: AccountId, unit: Unit },
    #[error("memo is longer than {MEMO_MAX_BYTES} bytes")]
    MemoTooLong,
    #[error("text contains a control character (only tab and line feed are allowed)")]
    TextInvalid,
    #[error("a {kind} entry cannot {} a {account_kind} account ({account})", side.as_str())]
    KindMismatch {
        kind: EntryKind,
        side: Side,
        account_kind: super::unit::AccountKind,
        account: AccountId,
    },
    #[error("a refund can only reverse a redemption, not a {target}")]
    RefundOfNonRedemption { target: EntryKind },
    #[error("metadata exceeds its limits ({METADATA_PAIRS_MAX} pairs, keys of 1..={METADATA_KEY_MAX_BYTES} ASCII letters, digits, '_', '.', '-', values ≤ {METADATA_VALUE_MAX_BYTES} bytes)")]
    MetadataInvalid,
    #[error("a {kind} entry must name the entry it reverses")]
    ReversalLinkMissing { kind: EntryKind },
    #[error("only refund and reversal entries may name an entry they reverse, not {kind}")]
    ReversalLinkForbidden { kind: EntryKind },
    #[error("account {account} does not exist in this ledger")]
    UnknownAccount { account: AccountId },
    #[error("account {account} cannot hold {unit}")]
    UnitNotAllowed { account: AccountId, unit: Unit },
    #[error("account {account} has too little {unit} for this debit (balance {}, needed {})", super::format_minor(*balance_minor), super::format_minor(*needed_minor))]
    InsufficientBalance {
        account: AccountId,
        unit: Unit,
        /// The balance before this entry (after the batch's earlier entries).
        balance_minor: i64,
        /// What this entry takes from the account, net.
        needed_minor: i64,
    },
    #[error("account {account} would overflow its {unit} balance")]
    BalanceOverflow { account: AccountId, unit: Unit },
    #[error("the entry to reverse does not exist in this ledger")]
    ReversalTargetNotFound,
    #[error("that entry has already been reversed")]
    AlreadyReversed,
    #[error("a reversal cannot itself be reversed")]
    ReversalOfReversal,
    #[error("the reversal does not mirror the original in account {account}, {unit}: it must move at most what the original moved, the other way")]
    ReversalExceedsOriginal { account: AccountId, unit: Unit },
    #[error("this idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("{} reached: {key} has {used_minor} of at most {max_minor}", code.describe())]
    LimitExceeded {
        code: super::plan::LimitCode,
        key: String,
        used_minor: i64,
        max_minor: i64,
    },
    #[error("record {record} is not {expected} (it was decided or changed meanwhile)")]
    RecordNotInState {
        record: uuid::Uuid,
        expected: String,
    },
    #[error("another line of this all-or-nothing group was refused, so none was posted")]
    GroupRefused,
    #[error("account {account} has fewer expired points than this expiry takes")]
    ExpiryExceedsExpired { account: AccountId },
    #[error("the redemption code or card is invalid, expired or already used")]
    RedemptionCodeInvalid,
    #[error("this shop made too many failed code attempts this hour")]
    ShopAttemptsExhausted,
    #[error("item {item} is not on sale")]
    ItemInactive { item: uuid::Uuid },
    #[error("this shop does not serve the resident's community")]
    ShopNotServing,
    #[error("item {sku} is not in this shop's catalogue")]
    UnknownItem { sku: String },
}

impl EntryDraft {
    /// The checks that need nothing but the draft itself: counts, sizes, balance per unit,
    /// reversal links. The planner calls this again before writing (assert on two paths).
    pub fn check(&self) -> Result<(), LedgerError> {
        if self.postings.len() < POSTINGS_MIN {
            return Err(LedgerError::TooFewPostings);
        }
        if self.postings.len() > POSTINGS_MAX {
            return Err(LedgerError::TooManyPostings);
        }
        if self.memo.len() > MEMO_MAX_BYTES {
            return Err(LedgerError::MemoTooLong);
        }
        if !text_is_clean(&self.memo) {
            return Err(LedgerError::TextInvalid);
        }
        check_metadata(&self.metadata)?;
        if self
            .metadata
            .get(super::lots::LOT_EXPIRY_KEY)
            .is_some_and(|d| !super::lots::is_valid_date(d))
        {
            return Err(LedgerError::MetadataInvalid);
        }
        if !self.metadata.values().all(|v| text_is_clean(v)) {
            return Err(LedgerError::TextInvalid);
        }
        match (self.kind.is_reversal(), self.reverses.is_some()) {
            (true, false) => return Err(LedgerError::ReversalLinkMissing { kind: self.kind }),
            (false, true) => return Err(LedgerError::ReversalLinkForbidden { kind: self.kind }),
            _ => {}
        }
        for unit in Unit::ALL {
            let (mut debits, mut credits) = (0i64, 0i64);
            for p in self.postings.iter().filter(|p| p.unit == unit) {
                // Cannot overflow: at most 64 postings of at most 10^10 hundredths.
                match p.side {
                    Side::Debit => debits += p.amount.minor(),
                    Side::Credit => credits += p.amount.minor(),
                }
            }
            if debits != credits {
                return Err(LedgerError::Unbalanced {
                    unit,
                    debits,
                    credits,
                });
            }
        }
        for (i, a) in self.postings.iter().enumerate() {
            for b in &self.postings[i + 1..] {
                if a.account == b.account && a.unit == b.unit && a.side != b.side {
                    return Err(LedgerError::AccountOnBothSides {
                        account: a.account,
                        unit: a.unit,
                    });
                }
            }
        }
        Ok(())
    }
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), LedgerError> {
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.len() <= METADATA_KEY_MAX_BYTES
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    if metadata.len() > METADATA_PAIRS_MAX
        || metadata
            .iter()
            .any(|(k, v)| !key_ok(k) || v.len() > METADATA_VALUE_MAX_BYTES)
    {
        return Err(LedgerError::MetadataInvalid);
    }
    Ok(())
}

/// Whether free text is acceptable: no control characters other than tab and line feed. (NUL
/// in particular cannot be stored by PostgreSQL, and no control character belongs on a receipt.)
pub fn text_is_clean(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && c != '\t' && c != '\n')
}

/// Whether `key` is acceptable as an idempotency key: 1..=128 bytes of printable ASCII, no spaces.
pub fn idempotency_key_is_valid(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= IDEMPOTENCY_KEY_MAX_BYTES
        && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `actor` is acceptable: 1..=128 bytes of printable ASCII, no spaces.
pub fn actor_is_valid(actor: &str) -> bool {
    !actor.is_empty()
        && actor.len() <= ACTOR_MAX_BYTES
        && actor.bytes().all(|b| b.is_ascii_graphic())
}

/// An entry as posted: the draft plus what the ledger assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedEntry {
    pub ledger_id: String,
    pub seq: i64,
    pub id: Uuid,
    pub kind: EntryKind,
    pub postings: Vec<Posting>,
    pub memo: String,
    pub metadata: BTreeMap<String, String>,
    pub reverses: Option<Uuid>,
    pub actor: String,
    pub idempotency_key: String,
    /// Microseconds since the Unix epoch, UTC. Non-decreasing along the chain.
    pub posted_at_micros: i64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl PostedEntry {
    pub fn draft(&self) -> EntryDraft {
        EntryDraft {
            kind: self.kind,
            postings: self.postings.clone(),
            memo: self.memo.clone(),
            metadata: self.metadata.clone(),
            reverses: self.reverses,
        }
    }
}
