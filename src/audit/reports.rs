//! Reports for auditors and staff, with no IO: a trial balance, a community's summary and a
//! shop's statement. Each is built from the journal (entries fed in sequence order) and the
//! accounts, and renders as JSON and as CSV. Amounts are exact decimal strings. CSV cells that a
//! spreadsheet would take for a formula are neutralised, numbers excepted
//! (`format::spreadsheet_cell`).

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use crate::calendar::{day_of, format_date};
use crate::ledger::{format_minor, AccountKind, EntryKind, PostedEntry, Unit};

/// What a report may say about an account: nothing that names a resident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    pub id: Uuid,
    pub kind: AccountKind,
    pub community_id: Option<String>,
    /// Shops: their shop id.
    pub shop_id: Option<String>,
    /// Residents: their pseudonym (if the label is one); others: their label.
    pub label: Option<String>,
}

/// A CSV record, its formula-like cells neutralised (`format::spreadsheet_cell`): a shop's
/// name or a rule id reaches a spreadsheet as text, never as a formula.
fn csv_line(fields: &[&str]) -> String {
    super::format::csv_record(fields)
}

// ---- Trial balance ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrialBalanceRow {
    pub account: Uuid,
    pub kind: &'static str,
    pub community_id: Option<String>,
    pub label: Option<String>,
    pub unit: &'static str,
    /// The balance when it is a debit balance (below zero), else "0.00".
    pub debit: String,
    /// The balance when it is a credit balance (above zero), else "0.00".
    pub credit: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrialBalanceTotal {
    pub unit: &'static str,
    pub debit: String,
    pub credit: String,
}

/// Every account's balance per unit after entry `as_of_seq`, in debit and credit columns; the
/// columns' totals per unit are equal when the books balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrialBalance {
    pub ledger: String,
    pub as_of_seq: i64,
    pub rows: Vec<TrialBalanceRow>,
    pub totals: Vec<TrialBalanceTotal>,
}

/// `sums`: per (account, unit), the signed sum of postings through `as_of_seq`.
pub fn trial_balance(
    ledger: &str,
    as_of_seq: i64,
    accounts: &[AccountInfo],
    sums: &BTreeMap<(Uuid, Unit), i64>,
) -> TrialBalance {
    let info: BTreeMap<Uuid, &AccountInfo> = accounts.iter().map(|a| (a.id, a)).collect();
    let mut totals: BTreeMap<Unit, (i64, i64)> = BTreeMap::new();
    let mut rows = Vec::new();
    for ((account, unit), balance) in sums {
        let a = info.get(account);
        let (debit, credit) = if *balance < 0 {
            (-balance, 0)
        } else {
            (0, *balance)
        };
        let t = totals.entry(*unit).or_default();
        t.0 += debit;
        t.1 += credit;
        rows.push(TrialBalanceRow {
            account: *account,
            kind: a.map_or("unknown", |a| a.kind.as_str()),
            community_id: a.and_then(|a| a.community_id.clone()),
            label: a.and_then(|a| a.label.clone()),
            unit: unit.as_str(),
            debit: format_minor(debit),
            credit: format_minor(credit),
        });
    }
    TrialBalance {
        ledger: ledger.to_owned(),
        as_of_seq,
        rows,
        totals: totals
            .into_iter()
            .map(|(unit, (d, c))| TrialBalanceTotal {
                unit: unit.as_str(),
                debit: format_minor(d),
                credit: format_minor(c),
            })
            .collect(),
    }
}

impl TrialBalance {
    pub fn to_csv(&self) -> String {
        let mut out = csv_line(&[
            "account",
            "kind",
            "community_id",
            "label",
            "unit",
            "debit",
            "credit",
        ]);
        for r in &self.rows {
            out.push_str(&csv_line(&[
                &r.account.to_string(),
                r.kind,
                r.community_id.as_deref().unwrap_or(""),
                r.label.as_deref().unwrap_or(""),
                r.unit,
                &r.debit,
                &r.credit,
            ]));
        }
        for t in &self.totals {
            out.push_str(&csv_line(&[
                "total", "", "", "", t.unit, &t.debit, &t.credit,
            ]));
        }
        out
    }
}

// ---- Community summary ----

/// What happened to a community's residents' points (and hours) through `as_of_seq`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommunitySummary {
    pub community_id: String,
    pub as_of_seq: i64,
    /// Points credited to the community's residents by earn entries, per rule (metadata `rule`,
    /// or `""` when the entry names none).
    pub issued_by_rule: BTreeMap<String, i64>,
    /// Points residents paid at shops, per shop id (or shop account id).
    pub redeemed_by_shop: BTreeMap<String, i64>,
    /// Points shops gave back, per shop.
    pub refunded_by_shop: BTreeMap<String, i64>,
    pub expired: i64,
    /// Net points moved to residents by adjustments and reversals.
    pub adjusted: i64,
    /// Hours recorded for the community's residents (net).
    pub hours: i64,
    /// Points the community's residents hold.
    pub outstanding: i64,
}

/// Feeds entries into a community's summary.
pub struct CommunityReport<'a> {
    pub summary: CommunitySummary,
    accounts: &'a BTreeMap<Uuid, AccountInfo>,
}

impl<'a> CommunityReport<'a> {
    pub fn new(community_id: &str, accounts: &'a BTreeMap<Uuid, AccountInfo>) -> Self {
        CommunityReport {
            summary: CommunitySummary {
                community_id: community_id.to_owned(),
                ..CommunitySummary::default()
            },
            accounts,
        }
    }

    fn shop_of(accounts: &BTreeMap<Uuid, AccountInfo>, entry: &PostedEntry) -> String {
        entry
            .postings
            .iter()
            .filter_map(|p| accounts.get(&p.account))
            .find(|a| a.kind == AccountKind::Shop)
            .map(|a| a.shop_id.clone().unwrap_or_else(|| a.id.to_string()))
            .unwrap_or_default()
    }

    pub fn push(&mut self, entry: &PostedEntry) {
        let accounts = self.accounts;
        let s = &mut self.summary;
        s.as_of_seq = entry.seq;
        for posting in &entry.postings {
            let Some(account) = accounts.get(&posting.account) else {
                continue;
            };
            if account.kind != AccountKind::Resident
                || account.community_id.as_deref() != Some(s.community_id.as_str())
            {
                continue;
            }
            let delta = posting.side.signed(posting.amount);
            if posting.unit == Unit::Hours {
                s.hours += delta;
                continue;
            }
            s.outstanding += delta;
            match entry.kind {
                EntryKind::Earn => {
                    let rule = entry.metadata.get("rule").cloned().unwrap_or_default();
                    *s.issued_by_rule.entry(rule).or_default() += delta;
                }
                EntryKind::Redeem => {
                    let shop = Self::shop_of(accounts, entry);
                    *s.redeemed_by_shop.entry(shop).or_default() -= delta;
                }
                EntryKind::Refund => {
                    let shop = Self::shop_of(accounts, entry);
                    *s.refunded_by_shop.entry(shop).or_default() += delta;
                }
                EntryKind::Expire => s.expired -= delta,
                EntryKind::Adjust | EntryKind::Reversal | EntryKind::Settle => s.adjusted += delta,
            }
        }
    }
}

#[derive(Serialize)]
struct Line {
    key: String,
    points: String,
}

#[derive(Serialize)]
struct CommunityJson {
    community_id: String,
    as_of_seq: i64,
    issued: String,
    redeemed: String,
    refunded: String,
    expired: String,
    adjusted: String,
    outstanding: String,
    hours: String,
    issued_by_rule: Vec<Line>,
    redeemed_by_shop: Vec<Line>,
    refunded_by_shop: Vec<Line>,
}

impl CommunitySummary {
    pub fn issued(&self) -> i64 {
        self.issued_by_rule.values().sum()
    }
    pub fn redeemed(&self) -> i64 {
        self.redeemed_by_shop.values().sum()
    }
    pub fn refunded(&self) -> i64 {
        self.refunded_by_shop.values().sum()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let lines = |m: &BTreeMap<String, i64>| {
            m.iter()
                .map(|(k, v)| Line {
                    key: k.clone(),
                    points: format_minor(*v),
                })
                .collect()
        };
        serde_json::to_value(CommunityJson {
            community_id: self.community_id.clone(),
            as_of_seq: self.as_of_seq,
            issued: format_minor(self.issued()),
            redeemed: format_minor(self.redeemed()),
            refunded: format_minor(self.refunded()),
            expired: format_minor(self.expired),
            adjusted: format_minor(self.adjusted),
            outstanding: format_minor(self.outstanding),
            hours: format_minor(self.hours),
            issued_by_rule: lines(&self.issued_by_rule),
            redeemed_by_shop: lines(&self.redeemed_by_shop),
            refunded_by_shop: lines(&self.refunded_by_shop),
        })
        .unwrap_or_default()
    }

    /// `section,key,points` rows: the totals, then by rule and by shop.
    pub fn to_csv(&self) -> String {
        let mut out = csv_line(&["section", "key", "points"]);
        for (section, value) in [
            ("issued", self.issued()),
            ("redeemed", self.redeemed()),
            ("refunded", self.refunded()),
            ("expired", self.expired),
            ("adjusted", self.adjusted),
            ("outstanding", self.outstanding),
            ("hours", self.hours),
        ] {
            out.push_str(&csv_line(&[section, "", &format_minor(value)]));
        }
        for (section, map) in [
            ("issued_by_rule", &self.issued_by_rule),
            ("redeemed_by_shop", &self.redeemed_by_shop),
            ("refunded_by_shop", &self.refunded_by_shop),
        ] {
            for (key, value) in map {
                out.push_str(&csv_line(&[section, key, &format_minor(*value)]));
            }
        }
        out
    }
}

// ---- Shop statement ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub seq: i64,
    pub day: String,
    pub kind: &'static str,
    pub entry: Uuid,
    /// Signed change of the shop's points (credits positive).
    pub amount: String,
    pub balance: String,
}

/// A shop's points, entry by entry, over a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShopStatement {
    pub shop_id: String,
    pub accounts: Vec<Uuid>,
    pub from_seq: i64,
    pub to_seq: i64,
    pub opening: String,
    pub closing: String,
    pub lines: Vec<StatementLine>,
    #[serde(skip)]
    running: i64,
}

impl ShopStatement {
    pub fn new(shop_id: &str, accounts: Vec<Uuid>, from_seq: i64, opening_minor: i64) -> Self {
        ShopStatement {
            shop_id: shop_id.to_owned(),
            accounts,
            from_seq,
            to_seq: from_seq - 1,
            opening: format_minor(opening_minor),
            closing: format_minor(opening_minor),
            lines: Vec::new(),
            running: opening_minor,
        }
    }

    pub fn push(&mut self, entry: &PostedEntry) {
        self.to_seq = entry.seq;
        let delta: i64 = entry
            .postings
            .iter()
            .filter(|p| p.unit == Unit::Points && self.accounts.contains(&p.account))
            .map(|p| p.side.signed(p.amount))
            .sum();
        let touches = entry
            .postings
            .iter()
            .any(|p| self.accounts.contains(&p.account));
        if !touches {
            return;
        }
        self.running += delta;
        self.closing = format_minor(self.running);
        self.lines.push(StatementLine {
            seq: entry.seq,
            day: format_date(day_of(entry.posted_at_micros)),
            kind: entry.kind.as_str(),
            entry: entry.id,
            amount: format_minor(delta),
            balance: format_minor(self.running),
        });
    }

    pub fn closing_minor(&self) -> i64 {
        self.running
    }

    pub fn to_csv(&self) -> String {
        let mut out = csv_line(&["seq", "day", "kind", "entry", "amount", "balance"]);
        out.push_str(&csv_line(&["", "", "opening", "", "", &self.opening]));
        for l in &self.lines {
            out.push_str(&csv_line(&[
                &l.seq.to_string(),
                &l.day,
                l.kind,
                &l.entry.to_string(),
                &l.amount,
                &l.balance,
            ]));
        }
        out.push_str(&csv_line(&["", "", "closing", "", "", &self.closing]));
        out
    }
}
