//! Points held in lots, for expiry.
//!
//! Every credit of points to a resident creates a lot (or, for a refund, flows back into the
//! lots the refunded entry took from); every debit consumes lots, soonest-expiring first. Lots
//! make "which points expire when" exact and traceable: each consumption or return is a
//! [`LotMove`] tied to the entry that caused it. Hours never expire and have no lots. Pure code:
//! the planner applies it under the ledger lock; the store persists the result.

use std::collections::BTreeMap;

use super::entry::{AccountId, PostedEntry, Side};
use super::unit::{AccountKind, Unit};

/// Metadata key carrying the last day (`YYYY-MM-DD`, inclusive) the points credited by an entry
/// may be spent. Absent: the lot never expires.
pub const LOT_EXPIRY_KEY: &str = "lot_expires_on";

/// Metadata key of an expiry entry: it may only take points from lots whose last valid day is
/// before this day (`YYYY-MM-DD`).
pub const EXPIRY_AS_OF_KEY: &str = "as_of";

/// A lot: points credited to one resident account by one posting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lot {
    /// `entry_seq × 100 + posting index` (an entry has at most 64 postings): deterministic, so
    /// both backends number lots identically.
    pub id: i64,
    pub account: AccountId,
    pub entry_seq: i64,
    pub amount_minor: i64,
    pub remaining_minor: i64,
    /// Last valid day, `YYYY-MM-DD`; `None` never expires.
    pub expires_on: Option<String>,
}

/// Points taken from (`amount_minor > 0`) or returned to (`< 0`) a lot by an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LotMove {
    pub entry_seq: i64,
    pub lot_id: i64,
    pub account: AccountId,
    pub amount_minor: i64,
}

/// The `as_of` day of an expiry entry, if it is one.
pub fn expiry_as_of(
    kind: super::entry::EntryKind,
    metadata: &BTreeMap<String, String>,
) -> Option<&str> {
    (kind == super::entry::EntryKind::Expire)
        .then(|| metadata.get(EXPIRY_AS_OF_KEY).map(String::as_str))
        .flatten()
}

pub fn lot_id(entry_seq: i64, posting_index: usize) -> i64 {
    entry_seq * 100 + posting_index as i64
}

/// Whether `text` is a real calendar date written `YYYY-MM-DD`.
pub fn is_valid_date(text: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    text.len() == 10 && time::Date::parse(text, &format).is_ok()
}

/// The order in which a resident's lots are spent: soonest expiry first, lots that never expire
/// last, then oldest first.
pub fn spending_order(a: &Lot, b: &Lot) -> std::cmp::Ordering {
    match (&a.expires_on, &b.expires_on) {
        (Some(x), Some(y)) => x.cmp(y).then(a.id.cmp(&b.id)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(&b.id),
    }
}

/// What the entry being reversed did to lots, for refunds and reversals.
pub struct ReversedLots<'a> {
    pub seq: i64,
    pub moves: &'a [LotMove],
}

/// Applies `entry` to `lots` (which must hold every open lot of the resident accounts it
/// touches, and the lots `reversed` refers to). Returns the moves and the ids of lots changed
/// or created.
pub fn apply(
    lots: &mut BTreeMap<i64, Lot>,
    entry: &PostedEntry,
    kind_of: impl Fn(AccountId) -> Option<AccountKind>,
    reversed: Option<ReversedLots<'_>>,
) -> (Vec<LotMove>, Vec<i64>) {
    let mut applied = Applied {
        lots,
        entry,
        moves: Vec::new(),
        changed: Vec::new(),
    };
    let expires_on = entry
        .metadata
        .get(LOT_EXPIRY_KEY)
        .filter(|d| is_valid_date(d))
        .cloned();
    for (index, posting) in entry.postings.iter().enumerate() {
        if posting.unit != Unit::Points || kind_of(posting.account) != Some(AccountKind::Resident) {
            continue;
        }
        let amount = posting.amount.minor();
        match posting.side {
            Side::Debit => applied.take(posting.account, amount, reversed.as_ref()),
            Side::Credit => {
                let left = applied.give_back(posting.account, amount, reversed.as_ref());
                if left > 0 {
                    applied.create(posting.account, index, left, &expires_on);
                }
            }
        }
    }
    let Applied {
        moves, mut changed, ..
    } = applied;
    changed.sort_unstable();
    changed.dedup();
    (moves, changed)
}

/// One entry being applied to the lots: what it has moved and changed so far.
struct Applied<'a> {
    lots: &'a mut BTreeMap<i64, Lot>,
    entry: &'a PostedEntry,
    moves: Vec<LotMove>,
    changed: Vec<i64>,
}

impl Applied<'_> {
    /// A debit of `amount` points from `account` takes from its lots: a reversal of an earn
    /// first from the very lots that earn created, then soonest-expiring first (an expiry only
    /// from expired lots).
    fn take(&mut self, account: AccountId, amount: i64, reversed: Option<&ReversedLots<'_>>) {
        let lots = &*self.lots;
        let mut order: Vec<i64> = lots
            .values()
            .filter(|l| l.account == account && l.remaining_minor > 0)
            .filter(|l| reversed.is_some_and(|r| r.seq == l.entry_seq))
            .map(|l| l.id)
            .collect();
        let expiry_as_of = expiry_as_of(self.entry.kind, &self.entry.metadata);
        let mut rest: Vec<&Lot> = lots
            .values()
            .filter(|l| l.account == account && l.remaining_minor > 0 && !order.contains(&l.id))
            // An expiry takes only expired lots (the planner checked they cover it).
            .filter(|l| {
                expiry_as_of.is_none_or(|as_of| l.expires_on.as_deref().is_some_and(|d| d < as_of))
            })
            .collect();
        rest.sort_by(|a, b| spending_order(a, b));
        order.extend(rest.into_iter().map(|l| l.id));
        let mut left = amount;
        for id in order {
            if left == 0 {
                break;
            }
            if let Some(lot) = self.lots.get_mut(&id) {
                let take = left.min(lot.remaining_minor);
                lot.remaining_minor -= take;
                left -= take;
                self.moves.push(LotMove {
                    entry_seq: self.entry.seq,
                    lot_id: id,
                    account,
                    amount_minor: take,
                });
                self.changed.push(id);
            }
        }
    }

    /// A refund's credit of `amount` points to `account` flows back into the lots the refunded
    /// entry took from, in the order it took them, up to what it took from each. Returns what
    /// is left over.
    fn give_back(
        &mut self,
        account: AccountId,
        amount: i64,
        reversed: Option<&ReversedLots<'_>>,
    ) -> i64 {
        let mut left = amount;
        let Some(r) = reversed else {
            return left;
        };
        for taken in r
            .moves
            .iter()
            .filter(|m| m.account == account && m.amount_minor > 0)
        {
            if left == 0 {
                break;
            }
            if let Some(lot) = self.lots.get_mut(&taken.lot_id) {
                let back = left.min(taken.amount_minor);
                lot.remaining_minor += back;
                left -= back;
                self.moves.push(LotMove {
                    entry_seq: self.entry.seq,
                    lot_id: lot.id,
                    account,
                    amount_minor: -back,
                });
                self.changed.push(lot.id);
            }
        }
        left
    }

    /// A new lot of `amount` points for `account`, from the entry's posting `index`.
    fn create(
        &mut self,
        account: AccountId,
        index: usize,
        amount: i64,
        expires_on: &Option<String>,
    ) {
        let id = lot_id(self.entry.seq, index);
        self.lots.insert(
            id,
            Lot {
                id,
                account,
                entry_seq: self.entry.seq,
                amount_minor: amount,
                remaining_minor: amount,
                expires_on: expires_on.clone(),
            },
        );
        self.changed.push(id);
    }
}
