//! Offline verification of a ledger: feed it entries in sequence order, then the stored head and
//! balances; it reports the first problem exactly. Used by `aixin verify`, the verify endpoint
//! and the tamper suite. Memory is one counter per (account, unit), not per entry.

use std::collections::BTreeMap;

use serde::Serialize;

use super::chain::{entry_hash, genesis_hash};
use super::entry::{AccountId, PostedEntry};
use super::plan::Head;
use super::unit::{AccountKind, Floor, Unit};

/// What kind of problem verification found. The string forms are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An entry is missing or out of place: sequence numbers are not contiguous from 1.
    SequenceGap,
    /// An entry belongs to another ledger.
    WrongLedger,
    /// An entry's previous-hash field is not the hash of the entry before it.
    ChainBroken,
    /// An entry's stored hash is not the hash of its contents.
    HashMismatch,
    /// An entry breaks a ledger rule (does not balance, too few postings, ...).
    EntryInvalid,
    /// An entry's time is earlier than the one before it.
    TimeWentBackwards,
    /// The ledger's recorded head (sequence, hash) does not match the last entry.
    HeadMismatch,
    /// A stored balance differs from the sum of the account's postings.
    BalanceMismatch,
    /// An account is below what its policy allows, or holds a unit it may not.
    PolicyViolated,
    /// A resident's open lots do not add up to their points (expiry would be wrong).
    LotsMismatch,
}

impl ProblemKind {
    /// The stable string form (as in `ledger-specs/hash-chain.md`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::SequenceGap => "sequence_gap",
            ProblemKind::WrongLedger => "wrong_ledger",
            ProblemKind::ChainBroken => "chain_broken",
            ProblemKind::HashMismatch => "hash_mismatch",
            ProblemKind::EntryInvalid => "entry_invalid",
            ProblemKind::TimeWentBackwards => "time_went_backwards",
            ProblemKind::HeadMismatch => "head_mismatch",
            ProblemKind::BalanceMismatch => "balance_mismatch",
            ProblemKind::PolicyViolated => "policy_violated",
            ProblemKind::LotsMismatch => "lots_mismatch",
        }
    }
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first bad sequence number, where the problem is in the journal.
    pub seq: Option<i64>,
    pub kind: ProblemKind,
    pub detail: String,
}

/// What a clean verification saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub entries: i64,
    pub head_seq: i64,
    pub head_hash: String,
    pub accounts: usize,
}

/// A stored account balance as the verifier needs it.
#[derive(Clone, Debug)]
pub struct StoredBalance {
    pub account: AccountId,
    pub kind: AccountKind,
    pub unit: Unit,
    pub balance_minor: i64,
}

/// Streaming chain verifier.
pub struct ChainVerifier {
    ledger_id: String,
    next_seq: i64,
    prev_hash: [u8; 32],
    prev_posted_at: i64,
    sums: BTreeMap<(AccountId, Unit), i64>,
}

impl ChainVerifier {
    pub fn new(ledger_id: &str) -> Self {
        ChainVerifier {
            ledger_id: ledger_id.to_owned(),
            next_seq: 1,
            prev_hash: genesis_hash(ledger_id),
            prev_posted_at: i64::MIN,
            sums: BTreeMap::new(),
        }
    }

    /// A verifier that starts in the middle of a chain: the next entry is `next_seq` and must
    /// chain to `prev_hash` (an audit bundle of a range that does not start at entry 1).
    pub fn resume(ledger_id: &str, next_seq: i64, prev_hash: [u8; 32]) -> Self {
        ChainVerifier {
            next_seq,
            prev_hash,
            ..ChainVerifier::new(ledger_id)
        }
    }

    /// Checks the next entry. Entries must come in ascending sequence order.
    pub fn push(&mut self, entry: &PostedEntry) -> Result<(), Problem> {
        let expected = self.next_seq;
        let at = |kind, detail: String| Problem {
            seq: Some(expected),
            kind,
            detail,
        };
        if entry.seq != expected {
            return Err(at(
                ProblemKind::SequenceGap,
                format!("expected entry {expected}, found entry {}", entry.seq),
            ));
        }
        if entry.ledger_id != self.ledger_id {
            return Err(at(
                ProblemKind::WrongLedger,
                format!("entry belongs to ledger {:?}", entry.ledger_id),
            ));
        }
        if entry.prev_hash != self.prev_hash {
            let before = if expected == 1 {
                "the genesis hash is".to_owned()
            } else {
                format!("entry {} hashes to", expected - 1)
            };
            return Err(at(
                ProblemKind::ChainBroken,
                format!(
                    "previous hash is {}, but {before} {}",
                    hex::encode(entry.prev_hash),
                    hex::encode(self.prev_hash)
                ),
            ));
        }
        let computed = entry_hash(entry);
        if computed != entry.hash {
            return Err(at(
                ProblemKind::HashMismatch,
                format!(
                    "stored hash {} but contents hash to {}",
                    hex::encode(entry.hash),
                    hex::encode(computed)
                ),
            ));
        }
        if let Err(rule) = entry.draft().check_posted() {
            return Err(at(ProblemKind::EntryInvalid, rule.to_string()));
        }
        if entry.posted_at_micros < self.prev_posted_at {
            return Err(at(
                ProblemKind::TimeWentBackwards,
                "entry is dated before the entry preceding it".to_owned(),
            ));
        }
        for posting in &entry.postings {
            let sum = self
                .sums
                .entry((posting.account, posting.unit))
                .or_default();
            *sum = sum.saturating_add(posting.side.signed(posting.amount));
        }
        self.next_seq += 1;
        self.prev_hash = entry.hash;
        self.prev_posted_at = entry.posted_at_micros;
        Ok(())
    }

    /// Compares what the journal says with the ledger's recorded head and stored balances.
    pub fn finish(
        self,
        head: &Head,
        stored: impl IntoIterator<Item = StoredBalance>,
    ) -> Result<Summary, Problem> {
        let last_seq = self.next_seq - 1;
        if head.seq != last_seq || head.hash != self.prev_hash {
            let (seq, detail) = if head.seq > last_seq {
                (
                    last_seq + 1,
                    format!(
                        "the ledger head records {} entries but the journal ends at {last_seq}: entries are missing from the end",
                        head.seq
                    ),
                )
            } else if head.seq < last_seq {
                (
                    head.seq + 1,
                    format!(
                        "the journal continues past the recorded head {} to {last_seq}",
                        head.seq
                    ),
                )
            } else {
                (
                    last_seq,
                    "the recorded head hash differs from the last entry's hash".to_owned(),
                )
            };
            return Err(Problem {
                seq: Some(seq),
                kind: ProblemKind::HeadMismatch,
                detail,
            });
        }
        let mut sums = self.sums;
        let mut stored: Vec<StoredBalance> = stored.into_iter().collect();
        stored.sort_by_key(|b| (b.account, b.unit));
        let accounts = {
            let mut ids: Vec<_> = stored.iter().map(|b| b.account).collect();
            ids.dedup();
            ids.len()
        };
        for balance in &stored {
            let from_postings = sums.remove(&(balance.account, balance.unit)).unwrap_or(0);
            if from_postings != balance.balance_minor {
                return Err(Problem {
                    seq: None,
                    kind: ProblemKind::BalanceMismatch,
                    detail: format!(
                        "account {} {}: stored balance {} but postings sum to {}",
                        balance.account,
                        balance.unit,
                        super::amount::format_minor(balance.balance_minor),
                        super::amount::format_minor(from_postings)
                    ),
                });
            }
            match balance.kind.floor(balance.unit) {
                None if balance.balance_minor != 0 => {
                    return Err(policy(balance, "holds a unit its kind may not hold"))
                }
                Some(Floor::Zero) if balance.balance_minor < 0 => {
                    return Err(policy(balance, "is below zero"))
                }
                _ => {}
            }
        }
        if let Some(((account, unit), sum)) = sums.into_iter().find(|(_, s)| *s != 0) {
            return Err(Problem {
                seq: None,
                kind: ProblemKind::BalanceMismatch,
                detail: format!(
                    "account {account} {unit}: postings sum to {} but no balance is stored",
                    super::amount::format_minor(sum)
                ),
            });
        }
        Ok(Summary {
            entries: last_seq,
            head_seq: head.seq,
            head_hash: hex::encode(head.hash),
            accounts,
        })
    }
}

fn policy(balance: &StoredBalance, what: &str) -> Problem {
    Problem {
        seq: None,
        kind: ProblemKind::PolicyViolated,
        detail: format!(
            "{} account {} {what} in {}",
            balance.kind, balance.account, balance.unit
        ),
    }
}

/// Checks that every resident's open lots add up to their points balance. `lot_sums` holds the
/// sum of remaining points in lots per account (accounts without lots may be absent).
pub fn check_lots(
    stored: &[StoredBalance],
    lot_sums: &BTreeMap<AccountId, i64>,
) -> Result<(), Problem> {
    let points: BTreeMap<AccountId, i64> = stored
        .iter()
        .filter(|b| b.kind == AccountKind::Resident && b.unit == Unit::Points)
        .map(|b| (b.account, b.balance_minor))
        .collect();
    for (account, balance) in &points {
        let in_lots = lot_sums.get(account).copied().unwrap_or(0);
        if in_lots != *balance {
            return Err(Problem {
                seq: None,
                kind: ProblemKind::LotsMismatch,
                detail: format!(
                    "resident account {account}: {} points but {} in lots",
                    super::amount::format_minor(*balance),
                    super::amount::format_minor(in_lots)
                ),
            });
        }
    }
    if let Some((account, _)) = lot_sums
        .iter()
        .find(|(a, sum)| **sum != 0 && !points.contains_key(a))
    {
        return Err(Problem {
            seq: None,
            kind: ProblemKind::LotsMismatch,
            detail: format!("account {account} holds lots but is not a resident account"),
        });
    }
    Ok(())
}
