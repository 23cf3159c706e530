//! The batch planner: given what the store read under the ledger lock, decide each request's
//! outcome and compute every row the batch must write. No IO happens here; the store is a thin
//! edge that reads [`BatchState`], calls [`plan_batch`] and writes the [`BatchPlan`].

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

use super::chain::{entry_hash, request_fingerprint};
use super::entry::{AccountId, EntryDraft, EntryKind, LedgerError, PostedEntry, Posting};
use super::unit::{AccountKind, Floor, Unit};

/// One request to post an entry, with what the writer assigned to it.
#[derive(Clone, Debug)]
pub struct WriteRequest {
    pub idempotency_key: String,
    pub actor: String,
    pub draft: EntryDraft,
    /// [`request_fingerprint`] of actor and draft, computed once.
    pub fingerprint: [u8; 32],
    /// The id the entry gets if it is posted (from the writer's injected random source).
    pub entry_id: Uuid,
}

impl WriteRequest {
    pub fn new(idempotency_key: String, actor: String, draft: EntryDraft, entry_id: Uuid) -> Self {
        let fingerprint = request_fingerprint(&actor, &draft);
        WriteRequest {
            idempotency_key,
            actor,
            draft,
            fingerprint,
            entry_id,
        }
    }
}

/// The end of a ledger's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Sequence number of the last entry; 0 for an empty ledger.
    pub seq: i64,
    /// Hash of the last entry; the genesis hash for an empty ledger.
    pub hash: [u8; 32],
    /// Time of the last entry (0 for an empty ledger).
    pub posted_at_micros: i64,
}

/// An account as the planner needs it.
#[derive(Clone, Debug)]
pub struct AccountState {
    pub kind: AccountKind,
    pub balances: BTreeMap<Unit, i64>,
}

/// An idempotency key already used in this ledger.
#[derive(Clone, Debug)]
pub struct KnownKey {
    pub fingerprint: [u8; 32],
    pub entry_id: Uuid,
}

/// An entry some request in the batch wants to reverse.
#[derive(Clone, Debug)]
pub struct ReversalTarget {
    pub kind: EntryKind,
    pub reverses: Option<Uuid>,
    pub postings: Vec<Posting>,
    pub already_reversed: bool,
}

/// Everything the store reads, under the ledger lock, before planning a batch.
#[derive(Clone, Debug)]
pub struct BatchState {
    pub head: Head,
    /// Every account any request in the batch names; an account missing here does not exist.
    pub accounts: HashMap<AccountId, AccountState>,
    /// Keys of the batch that were used before.
    pub known_keys: HashMap<String, KnownKey>,
    /// Entries the batch's reversals name, where they exist.
    pub targets: HashMap<Uuid, ReversalTarget>,
}

impl BatchState {
    /// What the store must look up for `requests`: account ids, idempotency keys, reversal targets.
    pub fn lookups(requests: &[WriteRequest]) -> (Vec<AccountId>, Vec<String>, Vec<Uuid>) {
        let mut accounts: Vec<AccountId> = requests
            .iter()
            .flat_map(|r| r.draft.postings.iter().map(|p| p.account))
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        let mut keys: Vec<String> = requests.iter().map(|r| r.idempotency_key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut targets: Vec<Uuid> = requests.iter().filter_map(|r| r.draft.reverses).collect();
        targets.sort_unstable();
        targets.dedup();
        (accounts, keys, targets)
    }
}

/// What the planner decided for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// Posted as `BatchPlan::entries[index]`.
    Posted(usize),
    /// The key was used before for the same request: the answer is that earlier entry.
    Replayed(Uuid),
    /// Refused by ledger rules; nothing of it is written.
    Refused(LedgerError),
}

/// Everything a batch writes, and each request's outcome, in request order.
#[derive(Clone, Debug)]
pub struct BatchPlan {
    pub outcomes: Vec<Planned>,
    /// New entries in sequence order, contiguous from the old head.
    pub entries: Vec<PostedEntry>,
    /// The new balance of every (account, unit) the batch changed, sorted.
    pub balances: Vec<(AccountId, Unit, i64)>,
    pub head: Head,
}

/// Plans a batch: requests are decided one after another, in order, exactly as if each were
/// alone — a refusal affects only its own request.
pub fn plan_batch(
    ledger_id: &str,
    now_micros: i64,
    mut state: BatchState,
    requests: &[WriteRequest],
) -> BatchPlan {
    let wanted_targets: HashSet<Uuid> = requests.iter().filter_map(|r| r.draft.reverses).collect();
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut entries: Vec<PostedEntry> = Vec::with_capacity(requests.len());
    let mut touched: BTreeMap<(AccountId, Unit), i64> = BTreeMap::new();
    // Time never runs backwards along the chain, even if a clock (or another process's) does.
    let posted_at_micros = now_micros.max(state.head.posted_at_micros);

    for request in requests {
        let decision = decide(&state, request);
        let outcome = match decision {
            Err(refusal) => Planned::Refused(refusal),
            Ok(Decision::Replay(entry_id)) => Planned::Replayed(entry_id),
            Ok(Decision::Post(new_balances)) => {
                let mut entry = PostedEntry {
                    ledger_id: ledger_id.to_owned(),
                    seq: state.head.seq + 1,
                    id: request.entry_id,
                    kind: request.draft.kind,
                    postings: request.draft.postings.clone(),
                    memo: request.draft.memo.clone(),
                    metadata: request.draft.metadata.clone(),
                    reverses: request.draft.reverses,
                    actor: request.actor.clone(),
                    idempotency_key: request.idempotency_key.clone(),
                    posted_at_micros,
                    prev_hash: state.head.hash,
                    hash: [0; 32],
                };
                entry.hash = entry_hash(&entry);
                state.head = Head {
                    seq: entry.seq,
                    hash: entry.hash,
                    posted_at_micros,
                };
                for ((account, unit), balance) in new_balances {
                    if let Some(acc) = state.accounts.get_mut(&account) {
                        acc.balances.insert(unit, balance);
                    }
                    touched.insert((account, unit), balance);
                }
                state.known_keys.insert(
                    request.idempotency_key.clone(),
                    KnownKey {
                        fingerprint: request.fingerprint,
                        entry_id: entry.id,
                    },
                );
                if let Some(target) = entry.reverses.and_then(|t| state.targets.get_mut(&t)) {
                    target.already_reversed = true;
                }
                if wanted_targets.contains(&entry.id) {
                    state.targets.insert(
                        entry.id,
                        ReversalTarget {
                            kind: entry.kind,
                            reverses: entry.reverses,
                            postings: entry.postings.clone(),
                            already_reversed: false,
                        },
                    );
                }
                entries.push(entry);
                Planned::Posted(entries.len() - 1)
            }
        };
        outcomes.push(outcome);
    }
    BatchPlan {
        outcomes,
        entries,
        balances: touched.into_iter().map(|((a, u), b)| (a, u, b)).collect(),
        head: state.head,
    }
}

enum Decision {
    Replay(Uuid),
    Post(Vec<((AccountId, Unit), i64)>),
}

fn decide(state: &BatchState, request: &WriteRequest) -> Result<Decision, LedgerError> {
    if let Some(known) = state.known_keys.get(&request.idempotency_key) {
        return if known.fingerprint == request.fingerprint {
            Ok(Decision::Replay(known.entry_id))
        } else {
            Err(LedgerError::IdempotencyKeyReused)
        };
    }
    let draft = &request.draft;
    // The HTTP edge checked the draft already; checking again here means no path can post an
    // unchecked entry.
    draft.check()?;
    if let Some(target_id) = draft.reverses {
        let target = state
            .targets
            .get(&target_id)
            .ok_or(LedgerError::ReversalTargetNotFound)?;
        if target.reverses.is_some() || target.kind.is_reversal() {
            return Err(LedgerError::ReversalOfReversal);
        }
        if target.already_reversed {
            return Err(LedgerError::AlreadyReversed);
        }
        check_mirror(&target.postings, &draft.postings)?;
    }
    let mut new_balances: BTreeMap<(AccountId, Unit), i64> = BTreeMap::new();
    for posting in &draft.postings {
        let account = state
            .accounts
            .get(&posting.account)
            .ok_or(LedgerError::UnknownAccount {
                account: posting.account,
            })?;
        if account.kind.floor(posting.unit).is_none() {
            return Err(LedgerError::UnitNotAllowed {
                account: posting.account,
                unit: posting.unit,
            });
        }
        let key = (posting.account, posting.unit);
        let current = match new_balances.get(&key) {
            Some(b) => *b,
            None => account.balances.get(&posting.unit).copied().unwrap_or(0),
        };
        let next = current
            .checked_add(posting.side.signed(posting.amount))
            .ok_or(LedgerError::BalanceOverflow {
                account: posting.account,
                unit: posting.unit,
            })?;
        new_balances.insert(key, next);
    }
    for (&(account, unit), &balance) in &new_balances {
        let kind = state.accounts[&account].kind;
        if kind.floor(unit) == Some(Floor::Zero) && balance < 0 {
            return Err(LedgerError::InsufficientBalance { account, unit });
        }
    }
    Ok(Decision::Post(new_balances.into_iter().collect()))
}

/// A reversal must move, per (account, unit), at most what the original moved, the other way.
/// A full reversal moves exactly that; a partial one (a partial refund) less.
fn check_mirror(original: &[Posting], reversal: &[Posting]) -> Result<(), LedgerError> {
    let net = |postings: &[Posting]| {
        let mut sums: BTreeMap<(AccountId, Unit), i64> = BTreeMap::new();
        for p in postings {
            *sums.entry((p.account, p.unit)).or_default() += p.side.signed(p.amount);
        }
        sums
    };
    let original = net(original);
    for ((account, unit), moved) in net(reversal) {
        let before = original.get(&(account, unit)).copied().unwrap_or(0);
        let opposite = before != 0 && moved.signum() == -before.signum();
        if !opposite || moved.abs() > before.abs() {
            return Err(LedgerError::ReversalExceedsOriginal { account, unit });
        }
    }
    Ok(())
}
