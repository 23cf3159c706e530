//! Signed checkpoints' contents: the ledger's state after one entry (its head hash and the
//! balance of every account kind per unit). The byte layout that is signed lives with the audit
//! formats (`audit::format::checkpoint_bytes`); the store keeps checkpoints as these values.

use std::collections::BTreeMap;

use super::{AccountKind, Unit};

/// The balance of all accounts of one kind in one unit at a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Total {
    pub unit: Unit,
    pub kind: AccountKind,
    pub balance_minor: i64,
}

/// A signed statement of a ledger's state after entry `seq`: its head hash and the balance of
/// every account kind per unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub ledger_id: String,
    pub seq: i64,
    pub head_hash: [u8; 32],
    /// One per (unit, kind) the kind may hold, in [`total_slots`] order.
    pub totals: Vec<Total>,
    pub key_id: String,
    pub tag: [u8; 32],
}

/// The (unit, kind) pairs a checkpoint totals, in order: points then hours, kinds in
/// `AccountKind::ALL` order, skipping kinds that may not hold the unit.
pub fn total_slots() -> Vec<(Unit, AccountKind)> {
    Unit::ALL
        .into_iter()
        .flat_map(|u| {
            AccountKind::ALL
                .into_iter()
                .filter(move |k| k.floor(u).is_some())
                .map(move |k| (u, k))
        })
        .collect()
}

/// Totals in slot order from per-(unit, kind) sums.
pub fn totals_from(sums: &BTreeMap<(Unit, AccountKind), i64>) -> Vec<Total> {
    total_slots()
        .into_iter()
        .map(|(unit, kind)| Total {
            unit,
            kind,
            balance_minor: sums.get(&(unit, kind)).copied().unwrap_or(0),
        })
        .collect()
}
