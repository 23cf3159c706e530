//! The batch planner: given what the store read under the ledger lock, decide each request's
//! outcome and compute every row the batch must write. No IO happens here; the store is a thin
//! edge that reads [`BatchState`], calls [`plan_batch`] and writes the [`BatchPlan`].

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

use super::chain::{entry_hash, request_fingerprint};
use super::entry::{AccountId, EntryDraft, EntryKind, LedgerError, PostedEntry, Posting};
use super::lots::{self, Lot, LotMove, ReversedLots};
use super::unit::{AccountKind, Floor, Unit};

/// How far the ledger's head may be ahead of the server's clock before it is reported (five
/// minutes): `aixin verify` prints a warning on stderr, `/healthz` says `"ok": false` under
/// `clock`, and the writer logs a warning with every batch. Entries are still stamped no earlier than the head
/// (time never runs backwards along the chain); codes are judged by the clock alone.
pub const HEAD_AHEAD_MAX_MICROS: i64 = 300_000_000;

/// How far `head` is ahead of the clock's `now_micros` (0 when it is not).
pub fn head_ahead_micros(head: &Head, now_micros: i64) -> i64 {
    head.posted_at_micros.saturating_sub(now_micros).max(0)
}

/// A bounded counter the entry must fit under, checked and raised under the ledger lock
/// (earning caps per resident per day and month; later, per-item caps and stock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The counter's name, e.g. `cap:day:<resident>:<rule>:2026-11-26`.
    pub key: String,
    pub add_minor: i64,
    pub max_minor: i64,
    pub code: LimitCode,
}

/// Which limit was hit: each has its own error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitCode {
    DailyCap,
    MonthlyCap,
    /// An item's stock (the counter holds minus the units in stock).
    OutOfStock,
    /// A resident's per-day cap on an item, in units.
    ItemDailyCap,
    /// A resident's per-month cap on an item, in units.
    ItemMonthlyCap,
    /// A day of a shop's already settled (the counter is 1 once settled).
    PeriodSettled,
    /// What a redemption may still have refunded, in hundredths.
    RefundExceedsRedemption,
}

impl LimitCode {
    /// What the limit is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            LimitCode::DailyCap => "the daily cap is",
            LimitCode::MonthlyCap => "the monthly cap is",
            LimitCode::OutOfStock => "the stock is exhausted",
            LimitCode::ItemDailyCap => "the per-day limit on this item is",
            LimitCode::ItemMonthlyCap => "the per-month limit on this item is",
            LimitCode::PeriodSettled => "the period is already settled",
            LimitCode::RefundExceedsRedemption => "the refundable amount is exhausted",
        }
    }
}

/// The words of a limit refusal: what is reached and how much of it is used (`used_minor` is
/// the counter before the refused request), in the limit's own measure.
pub fn limit_text(code: LimitCode, used_minor: i64, max_minor: i64) -> String {
    let points = super::format_minor;
    match code {
        LimitCode::DailyCap | LimitCode::MonthlyCap => format!(
            "{} reached ({} of at most {} points awarded)",
            code.describe(),
            points(used_minor),
            points(max_minor)
        ),
        LimitCode::OutOfStock => format!("{} ({} left)", code.describe(), (-used_minor).max(0)),
        LimitCode::ItemDailyCap | LimitCode::ItemMonthlyCap => format!(
            "{} reached ({used_minor} of at most {max_minor} taken)",
            code.describe()
        ),
        LimitCode::PeriodSettled => "part of the period is already settled".to_owned(),
        LimitCode::RefundExceedsRedemption => format!(
            "{} ({} of at most {} refunded)",
            code.describe(),
            points(used_minor),
            points(max_minor)
        ),
    }
}

/// A workflow record that must be in a given state for the entry to post, and moves to another
/// state with it, in the same transaction (a service record: submitted → approved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    pub record: Uuid,
    pub expect: String,
    pub set: String,
}

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
    /// Counters the entry must fit under.
    pub limits: Vec<Limit>,
    /// A record whose state the entry moves.
    pub guard: Option<Guard>,
    /// Requests sharing a group id post all together or not at all.
    pub group: Option<u64>,
    /// A redemption code or card shown with the request: decided first, and its effects
    /// (spent code, failed attempt) are written whatever becomes of the entry.
    pub presentation: Option<crate::ledger::presence::Presentation>,
    /// A refusal the service already decided (an inactive item, say) that must still go through
    /// the batch so that the presentation is spent.
    pub pre_refusal: Option<LedgerError>,
    /// A receipt to create with the entry.
    pub receipt: Option<crate::ledger::presence::ReceiptDraft>,
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
            limits: Vec::new(),
            guard: None,
            group: None,
            presentation: None,
            pre_refusal: None,
            receipt: None,
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
    pub seq: i64,
    pub kind: EntryKind,
    pub reverses: Option<Uuid>,
    pub postings: Vec<Posting>,
    pub already_reversed: bool,
    /// What the target did to lots.
    pub lot_moves: Vec<LotMove>,
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
    /// Open lots of the batch's accounts, and every lot its reversal targets moved or created.
    pub lots: BTreeMap<i64, Lot>,
    /// Current values of the batch's limit counters (absent: 0).
    pub counters: HashMap<String, i64>,
    /// Current states of the batch's guarded records (absent: no such record).
    pub records: HashMap<Uuid, String>,
    /// Credentials and shop attempt counts of the batch's presentations.
    pub redeem: crate::ledger::presence::RedeemState,
}

impl BatchState {
    /// What the store must look up for `requests`: account ids, idempotency keys, reversal targets.
    pub fn lookups(requests: &[WriteRequest]) -> (Vec<AccountId>, Vec<String>, Vec<Uuid>) {
        // Counter keys and guarded records: see [`BatchState::extra_lookups`].
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

    /// Accounts whose open lots the planner needs: those the batch debits in points. Credits
    /// create lots or return points to the lots of the entry they reverse (read with it), so an
    /// account that is only credited needs none — which keeps earning from re-reading a
    /// resident's growing set of lots on every batch.
    pub fn debited_accounts(requests: &[WriteRequest]) -> Vec<AccountId> {
        let mut accounts: Vec<AccountId> = requests
            .iter()
            .flat_map(|r| r.draft.postings.iter())
            .filter(|p| p.side == super::entry::Side::Debit && p.unit == Unit::Points)
            .map(|p| p.account)
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        accounts
    }

    /// Limit counter keys and guarded record ids the store must read for `requests`.
    pub fn extra_lookups(requests: &[WriteRequest]) -> (Vec<String>, Vec<Uuid>) {
        let mut counters: Vec<String> = requests
            .iter()
            .flat_map(|r| r.limits.iter().map(|l| l.key.clone()))
            .collect();
        counters.sort_unstable();
        counters.dedup();
        let mut records: Vec<Uuid> = requests
            .iter()
            .filter_map(|r| r.guard.as_ref().map(|g| g.record))
            .collect();
        records.sort_unstable();
        records.dedup();
        (counters, records)
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
    /// Every lot created or changed, as it now stands.
    pub lots: Vec<Lot>,
    /// Every lot move of the batch's entries.
    pub lot_moves: Vec<LotMove>,
    /// New values of the counters the batch raised.
    pub counters: Vec<(String, i64)>,
    /// Records whose state the batch moved: (record, new state, entry id).
    pub records: Vec<(Uuid, String, Uuid)>,
    /// What the batch's presentations changed (written even if no entry posts).
    pub presence: crate::ledger::presence::PresenceEffects,
    /// Receipts of the batch's entries.
    pub receipts: Vec<crate::ledger::presence::ReceiptRow>,
}

/// Plans a batch: requests are decided one after another, in order, exactly as if each were
/// alone — a refusal affects only its own request, except within a group, whose members post
/// all together or not at all.
///
/// `now_micros` is the writer's clock. Entries are stamped `max(now, head time)`, so time never
/// runs backwards along the chain; presentations (codes, cards) are judged by `now_micros` alone,
/// so a head ahead of the clock does not refuse a phone's current code.
pub fn plan_batch(
    ledger_id: &str,
    now_micros: i64,
    state: BatchState,
    requests: &[WriteRequest],
) -> BatchPlan {
    let mut planner = Planner {
        ledger_id,
        wanted_targets: requests.iter().filter_map(|r| r.draft.reverses).collect(),
        // Time never runs backwards along the chain, even if a clock (or another process's) does.
        posted_at_micros: now_micros.max(state.head.posted_at_micros),
        clock_micros: now_micros,
        work: Work {
            state,
            entries: Vec::with_capacity(requests.len()),
            touched: BTreeMap::new(),
            lots_changed: Vec::new(),
            lot_moves: Vec::new(),
            counters_changed: BTreeMap::new(),
            records_changed: Vec::new(),
            presence: Default::default(),
            receipts: Vec::new(),
        },
    };
    let mut outcomes: Vec<Planned> = Vec::with_capacity(requests.len());
    let mut index = 0;
    while index < requests.len() {
        let group = requests[index].group;
        let end = match group {
            Some(g) => {
                index
                    + requests[index..]
                        .iter()
                        .take_while(|r| r.group == Some(g))
                        .count()
            }
            None => index + 1,
        };
        let members = &requests[index..end];
        if members.len() == 1 {
            outcomes.push(planner.one(&members[0]));
        } else {
            // All or nothing: plan on a copy; keep it only if every member posts.
            let saved = planner.work.clone();
            let planned: Vec<Planned> = members.iter().map(|r| planner.one(r)).collect();
            // A member already posted earlier (a retry) counts as done.
            if planned
                .iter()
                .all(|p| matches!(p, Planned::Posted(_) | Planned::Replayed(_)))
            {
                outcomes.extend(planned);
            } else {
                planner.work = saved;
                outcomes.extend(planned.into_iter().map(|p| match p {
                    Planned::Refused(refusal) => Planned::Refused(refusal),
                    _ => Planned::Refused(LedgerError::GroupRefused),
                }));
            }
        }
        index = end;
    }
    let work = planner.work;
    let lots_by_id = &work.state.lots;
    let mut lot_ids = work.lots_changed;
    lot_ids.sort_unstable();
    lot_ids.dedup();
    BatchPlan {
        outcomes,
        head: work.state.head,
        entries: work.entries,
        balances: work
            .touched
            .into_iter()
            .map(|((a, u), b)| (a, u, b))
            .collect(),
        lots: lot_ids
            .iter()
            .filter_map(|id| lots_by_id.get(id).cloned())
            .collect(),
        lot_moves: work.lot_moves,
        counters: work.counters_changed.into_iter().collect(),
        records: work.records_changed,
        presence: work.presence,
        receipts: work.receipts,
    }
}

/// What the planner accumulates; cloned to plan a group on a copy.
#[derive(Clone)]
struct Work {
    state: BatchState,
    entries: Vec<PostedEntry>,
    touched: BTreeMap<(AccountId, Unit), i64>,
    lots_changed: Vec<i64>,
    lot_moves: Vec<LotMove>,
    counters_changed: BTreeMap<String, i64>,
    records_changed: Vec<(Uuid, String, Uuid)>,
    presence: crate::ledger::presence::PresenceEffects,
    receipts: Vec<crate::ledger::presence::ReceiptRow>,
}

struct Planner<'a> {
    ledger_id: &'a str,
    wanted_targets: HashSet<Uuid>,
    /// The time every entry of the batch is stamped with: the clock, or the head's if later.
    posted_at_micros: i64,
    /// The writer's clock, which presentations are judged by.
    clock_micros: i64,
    work: Work,
}

impl Planner<'_> {
    fn one(&mut self, request: &WriteRequest) -> Planned {
        // A repeat of a posted request is answered before its code is looked at again.
        let known = self
            .work
            .state
            .known_keys
            .contains_key(&request.idempotency_key);
        if !known {
            if let Err(refusal) = self.present(request) {
                return Planned::Refused(refusal);
            }
        }
        match decide(&self.work.state, request) {
            Err(refusal) => Planned::Refused(refusal),
            Ok(Decision::Replay(entry_id)) => Planned::Replayed(entry_id),
            Ok(Decision::Post(new_balances)) => self.post(request, new_balances),
        }
    }

    /// The request's presentation (a code or card, whose effects are kept whatever becomes of
    /// the entry), then a refusal the service decided before the batch.
    fn present(&mut self, request: &WriteRequest) -> Result<(), LedgerError> {
        let work = &mut self.work;
        if let Some(presentation) = &request.presentation {
            crate::ledger::presence::present(
                &mut work.state.redeem,
                &mut work.presence,
                presentation,
                self.clock_micros,
            )?;
        }
        match &request.pre_refusal {
            Some(refusal) => Err(refusal.clone()),
            None => Ok(()),
        }
    }

    /// Posts a decided request: chains its entry after the head, then applies what the entry
    /// changes (balances, lots, counters, the guarded record, the key, reversal targets, the
    /// receipt) to the batch's state and to what the batch writes.
    fn post(
        &mut self,
        request: &WriteRequest,
        new_balances: Vec<((AccountId, Unit), i64)>,
    ) -> Planned {
        let entry = self.chain(request);
        let work = &mut self.work;
        let state = &mut work.state;
        for ((account, unit), balance) in new_balances {
            if let Some(acc) = state.accounts.get_mut(&account) {
                acc.balances.insert(unit, balance);
            }
            work.touched.insert((account, unit), balance);
        }
        let moves = work.apply_lots(&entry);
        work.apply_limits_and_guard(request, entry.id);
        let state = &mut work.state;
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
        if self.wanted_targets.contains(&entry.id) {
            state.targets.insert(
                entry.id,
                ReversalTarget {
                    seq: entry.seq,
                    kind: entry.kind,
                    reverses: entry.reverses,
                    postings: entry.postings.clone(),
                    already_reversed: false,
                    lot_moves: moves.clone(),
                },
            );
        }
        work.lot_moves.extend(moves);
        if let Some(receipt) = &request.receipt {
            work.push_receipt(receipt, &entry);
        }
        work.entries.push(entry);
        Planned::Posted(work.entries.len() - 1)
    }

    /// The request's entry, chained after the head, which moves to it.
    fn chain(&mut self, request: &WriteRequest) -> PostedEntry {
        let state = &mut self.work.state;
        let mut entry = PostedEntry {
            ledger_id: self.ledger_id.to_owned(),
            seq: state.head.seq + 1,
            id: request.entry_id,
            kind: request.draft.kind,
            postings: request.draft.postings.clone(),
            memo: request.draft.memo.clone(),
            metadata: request.draft.metadata.clone(),
            reverses: request.draft.reverses,
            actor: request.actor.clone(),
            idempotency_key: request.idempotency_key.clone(),
            posted_at_micros: self.posted_at_micros,
            prev_hash: state.head.hash,
            hash: [0; 32],
        };
        entry.hash = entry_hash(&entry);
        state.head = Head {
            seq: entry.seq,
            hash: entry.hash,
            posted_at_micros: self.posted_at_micros,
        };
        entry
    }
}

impl Work {
    /// Applies the entry to the lots (a reversal undoing what its target did); returns the
    /// entry's lot moves.
    fn apply_lots(&mut self, entry: &PostedEntry) -> Vec<LotMove> {
        let state = &mut self.state;
        let reversed = entry
            .reverses
            .and_then(|t| state.targets.get(&t))
            .map(|t| (t.seq, t.lot_moves.clone()));
        let accounts = &state.accounts;
        let (moves, changed) = lots::apply(
            &mut state.lots,
            entry,
            |id| accounts.get(&id).map(|a| a.kind),
            reversed
                .as_ref()
                .map(|(seq, moves)| ReversedLots { seq: *seq, moves }),
        );
        self.lots_changed.extend(changed);
        moves
    }

    /// Raises the request's limit counters and moves its guarded record to its new state.
    fn apply_limits_and_guard(&mut self, request: &WriteRequest, entry_id: Uuid) {
        let state = &mut self.state;
        for limit in &request.limits {
            let value = state.counters.get(&limit.key).copied().unwrap_or(0) + limit.add_minor;
            state.counters.insert(limit.key.clone(), value);
            self.counters_changed.insert(limit.key.clone(), value);
        }
        if let Some(guard) = &request.guard {
            state.records.insert(guard.record, guard.set.clone());
            self.records_changed
                .push((guard.record, guard.set.clone(), entry_id));
        }
    }

    /// The receipt of a posted entry, with its account's points balance after it.
    fn push_receipt(
        &mut self,
        receipt: &crate::ledger::presence::ReceiptDraft,
        entry: &PostedEntry,
    ) {
        let balance_after_minor = self
            .state
            .accounts
            .get(&receipt.account)
            .and_then(|a| a.balances.get(&Unit::Points).copied())
            .unwrap_or(0);
        self.receipts.push(crate::ledger::presence::ReceiptRow {
            draft: receipt.clone(),
            entry_id: entry.id,
            entry_seq: entry.seq,
            posted_at_micros: entry.posted_at_micros,
            balance_after_minor,
        });
    }
}

enum Decision {
    Replay(Uuid),
    Post(Vec<((AccountId, Unit), i64)>),
}

/// Whether the request replays an earlier entry, is refused, or posts (with the new balances of
/// the (account, unit) pairs it moves), against the batch's state as it now stands.
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
    if let Some(guard) = &request.guard {
        if state.records.get(&guard.record) != Some(&guard.expect) {
            return Err(LedgerError::RecordNotInState {
                record: guard.record,
                expected: guard.expect.clone(),
            });
        }
    }
    if let Some(target_id) = draft.reverses {
        check_reversal(state, draft, target_id)?;
    }
    // Limits first: "already settled" or "out of stock" says more than a balance would.
    for limit in &request.limits {
        let current = state.counters.get(&limit.key).copied().unwrap_or(0);
        if current.saturating_add(limit.add_minor) > limit.max_minor {
            return Err(LedgerError::LimitExceeded {
                code: limit.code,
                key: limit.key.clone(),
                used_minor: current,
                max_minor: limit.max_minor,
            });
        }
    }
    let new_balances = balances_after(state, draft)?;
    for (&(account, unit), &balance) in &new_balances {
        let kind = state.accounts[&account].kind;
        if kind.floor(unit) == Some(Floor::Zero) && balance < 0 {
            let before = state.accounts[&account]
                .balances
                .get(&unit)
                .copied()
                .unwrap_or(0);
            return Err(LedgerError::InsufficientBalance {
                account,
                unit,
                balance_minor: before,
                needed_minor: before.saturating_sub(balance),
            });
        }
    }
    if let Some(as_of) = lots::expiry_as_of(draft.kind, &draft.metadata) {
        check_expiry(state, draft, as_of)?;
    }
    Ok(Decision::Post(new_balances.into_iter().collect()))
}

/// A reversal's target must exist, be no reversal itself, not be reversed already, be a
/// redemption if this is a refund, and be mirrored by the reversal's postings.
fn check_reversal(
    state: &BatchState,
    draft: &EntryDraft,
    target_id: Uuid,
) -> Result<(), LedgerError> {
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
    if draft.kind == EntryKind::Refund && target.kind != EntryKind::Redeem {
        return Err(LedgerError::RefundOfNonRedemption {
            target: target.kind,
        });
    }
    check_mirror(&target.postings, &draft.postings)
}

/// The balance of every (account, unit) the draft's postings move, after them; each account
/// must exist, hold the unit, and be allowed on its side by the entry's kind.
fn balances_after(
    state: &BatchState,
    draft: &EntryDraft,
) -> Result<BTreeMap<(AccountId, Unit), i64>, LedgerError> {
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
        if !draft.kind.allows(posting.side, account.kind) {
            return Err(LedgerError::KindMismatch {
                kind: draft.kind,
                side: posting.side,
                account_kind: account.kind,
                account: posting.account,
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
    Ok(new_balances)
}

/// An expiry may only take points whose last valid day is before `as_of`, and that is checked
/// here, under the lock, against the lots as they are now.
fn check_expiry(state: &BatchState, draft: &EntryDraft, as_of: &str) -> Result<(), LedgerError> {
    for posting in draft
        .postings
        .iter()
        .filter(|p| p.side == super::entry::Side::Debit && p.unit == Unit::Points)
    {
        let expired: i64 = state
            .lots
            .values()
            .filter(|l| {
                l.account == posting.account && l.expires_on.as_deref().is_some_and(|d| d < as_of)
            })
            .map(|l| l.remaining_minor)
            .sum();
        if expired < posting.amount.minor() {
            return Err(LedgerError::ExpiryExceedsExpired {
                account: posting.account,
            });
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::chain::genesis_hash;
    use crate::ledger::verify::{ChainVerifier, ProblemKind, StoredBalance};
    use crate::ledger::{Amount, Side};

    fn account(n: u128) -> AccountId {
        Uuid::from_u128(n)
    }

    fn state(accounts: &[(u128, AccountKind, i64)]) -> BatchState {
        BatchState {
            head: Head {
                seq: 0,
                hash: genesis_hash("unit"),
                posted_at_micros: 0,
            },
            accounts: accounts
                .iter()
                .map(|(id, kind, points)| {
                    (
                        account(*id),
                        AccountState {
                            kind: *kind,
                            balances: BTreeMap::from([(Unit::Points, *points)]),
                        },
                    )
                })
                .collect(),
            known_keys: HashMap::new(),
            targets: HashMap::new(),
            lots: BTreeMap::new(),
            counters: HashMap::new(),
            records: HashMap::new(),
            redeem: Default::default(),
        }
    }

    fn move_points(key: &str, from: u128, to: u128, minor: i64, n: u128) -> WriteRequest {
        let amount = Amount::from_minor(minor).unwrap();
        let draft = EntryDraft {
            kind: EntryKind::Adjust,
            postings: vec![
                Posting {
                    account: account(from),
                    unit: Unit::Points,
                    side: Side::Debit,
                    amount,
                },
                Posting {
                    account: account(to),
                    unit: Unit::Points,
                    side: Side::Credit,
                    amount,
                },
            ],
            memo: String::new(),
            metadata: BTreeMap::new(),
            reverses: None,
        };
        WriteRequest::new(
            key.to_owned(),
            "unit".to_owned(),
            draft,
            Uuid::from_u128(1000 + n),
        )
    }

    #[test]
    fn decides_in_order_against_running_balances() {
        // Proves the planner, with no database: a refusal writes nothing and does not disturb
        // later requests, which see the balances earlier ones left.
        let plan = plan_batch(
            "unit",
            5,
            state(&[(1, AccountKind::Resident, 100), (2, AccountKind::Shop, 0)]),
            &[
                move_points("a", 1, 2, 60, 1),
                move_points("b", 1, 2, 60, 2),
                move_points("c", 1, 2, 40, 3),
            ],
        );
        assert_eq!(
            plan.outcomes,
            vec![
                Planned::Posted(0),
                Planned::Refused(LedgerError::InsufficientBalance {
                    account: account(1),
                    unit: Unit::Points,
                    balance_minor: 40,
                    needed_minor: 60,
                }),
                Planned::Posted(1),
            ]
        );
        assert_eq!(
            plan.balances,
            vec![
                (account(1), Unit::Points, 0),
                (account(2), Unit::Points, 100)
            ]
        );
        assert_eq!(
            plan.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(plan.entries[1].prev_hash, plan.entries[0].hash);
        assert_eq!(plan.head.hash, plan.entries[1].hash);
    }

    #[test]
    fn time_never_runs_backwards() {
        // Proves an entry is never dated before the head, even if the clock is behind it.
        let mut s = state(&[(1, AccountKind::Issuance, 0), (2, AccountKind::Resident, 0)]);
        s.head.posted_at_micros = 1_000;
        let plan = plan_batch("unit", 10, s, &[move_points("a", 1, 2, 1, 1)]);
        assert_eq!(plan.entries[0].posted_at_micros, 1_000);
    }

    #[test]
    fn codes_are_judged_by_the_clock_when_the_head_is_ahead() {
        // Proves a head an hour ahead of the clock still stamps the entry at the head's time,
        // while the code is judged by the clock: the phone's current code is accepted.
        use crate::ledger::code;
        use crate::ledger::presence::{CredentialState, Presentation, Proof};
        let clock = 1_790_000_000_000_000;
        let ahead = clock + 3_600_000_000;
        let mut s = state(&[(1, AccountKind::Resident, 100), (2, AccountKind::Shop, 0)]);
        s.head.posted_at_micros = ahead;
        let credential = Uuid::from_u128(50);
        s.redeem.credentials.insert(
            credential,
            CredentialState {
                generation: 1,
                active: true,
                last_step: 0,
                failures: 0,
                foreign_failures: 0,
            },
        );
        let secret = [7u8; 32];
        let mut request = move_points("a", 1, 2, 10, 1);
        request.presentation = Some(Presentation {
            credential,
            number: 7,
            generation: 1,
            secret,
            shop: Uuid::from_u128(60),
            serving: true,
            proof: Proof::Code {
                otp: code::otp(&secret, 7, code::step_of(clock)),
            },
        });
        let plan = plan_batch("unit", clock, s, &[request]);
        assert_eq!(plan.outcomes, vec![Planned::Posted(0)]);
        assert_eq!(plan.entries[0].posted_at_micros, ahead);
        assert_eq!(
            plan.presence.credentials[&credential].last_step,
            code::step_of(clock)
        );
        assert_eq!(head_ahead_micros(&plan.head, clock), 3_600_000_000);
        assert_eq!(head_ahead_micros(&plan.head, ahead + 1), 0);
    }

    #[test]
    fn planned_chain_verifies_and_tampering_is_named() {
        // Proves what the planner produces passes the verifier, and a changed amount is caught
        // at its own sequence number — all without a database.
        let plan = plan_batch(
            "unit",
            7,
            state(&[(1, AccountKind::Issuance, 0), (2, AccountKind::Resident, 0)]),
            &[
                move_points("a", 1, 2, 5, 1),
                move_points("b", 1, 2, 6, 2),
                move_points("c", 2, 1, 3, 3),
            ],
        );
        let stored = |balances: &[(AccountId, Unit, i64)]| {
            balances
                .iter()
                .map(|(a, u, b)| StoredBalance {
                    account: *a,
                    kind: if *a == account(1) {
                        AccountKind::Issuance
                    } else {
                        AccountKind::Resident
                    },
                    unit: *u,
                    balance_minor: *b,
                })
                .collect::<Vec<_>>()
        };
        let mut verifier = ChainVerifier::new("unit");
        for entry in &plan.entries {
            verifier.push(entry).unwrap();
        }
        let summary = verifier.finish(&plan.head, stored(&plan.balances)).unwrap();
        assert_eq!(summary.entries, 3);

        let mut tampered = plan.entries.clone();
        tampered[1].postings[0].amount = Amount::from_minor(7).unwrap();
        let mut verifier = ChainVerifier::new("unit");
        verifier.push(&tampered[0]).unwrap();
        let problem = verifier.push(&tampered[1]).unwrap_err();
        assert_eq!(
            (problem.seq, problem.kind),
            (Some(2), ProblemKind::HashMismatch)
        );

        let mut verifier = ChainVerifier::new("other-ledger");
        let problem = verifier.push(&plan.entries[0]).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::WrongLedger);
    }
}
