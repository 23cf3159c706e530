//! The audit bundle's formats, with no IO: every line of every file, the manifest and the
//! checkpoint byte layouts that are signed. `ledger-specs/audit-bundle.md` is the normative
//! text; the exporter writes with these functions and the offline verifier re-renders with them
//! and compares bytes, so a file that differs from what its entries imply is found at the entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar::{day_of, format_date};
pub use crate::ledger::checkpoint::{total_slots, totals_from, Checkpoint, Total};
use crate::ledger::{
    format_minor, AccountKind, Amount, EntryKind, PostedEntry, Posting, Side, Unit,
};
use crate::model::Rule;

/// The bundle format's name, in the manifest and the books' first line. v2: CSV cells that a
/// spreadsheet would read as a formula are neutralised ([`spreadsheet_cell`]).
pub const BUNDLE_FORMAT: &str = "aixin-bundle-v2";
/// Domain label of the manifest's signed bytes.
pub const MANIFEST_TAG: &[u8] = b"aixin-manifest-v1";
/// Domain label of a checkpoint's signed bytes.
pub const CHECKPOINT_TAG: &[u8] = b"aixin-checkpoint-v1";

/// The files of a bundle besides `manifest.json`, in the order the manifest lists them.
pub const FILES: [&str; 8] = [
    ACCOUNTS_FILE,
    BOOKS_BEANCOUNT,
    BOOKS_JOURNAL,
    CHECKPOINTS_FILE,
    ENTRIES_CSV,
    ENTRIES_FILE,
    POSTINGS_CSV,
    RULES_FILE,
];
pub const MANIFEST_FILE: &str = "manifest.json";
pub const ACCOUNTS_FILE: &str = "accounts.jsonl";
pub const ENTRIES_FILE: &str = "entries.jsonl";
pub const ENTRIES_CSV: &str = "entries.csv";
pub const POSTINGS_CSV: &str = "postings.csv";
pub const RULES_FILE: &str = "rules.jsonl";
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";
pub const BOOKS_JOURNAL: &str = "books.journal";
pub const BOOKS_BEANCOUNT: &str = "books.beancount";

// ---- Primitive encodings (ledger-specs/hash-chain.md section 2) ----

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_u64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(&(n as u64).to_be_bytes());
}

/// Parses 64 hex digits.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex::decode_to_slice(text, &mut out).ok())
        .flatten()
        .map(|()| out)
}

// ---- Entries ----

/// One line of `entries.jsonl`: the entry as the API shows it (hash-chain.md section 8),
/// without the informative `posted_at` text.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryLine {
    pub seq: i64,
    pub id: String,
    pub ledger: String,
    pub kind: String,
    pub posted_at_micros: i64,
    pub actor: String,
    pub idempotency_key: String,
    pub reverses: Option<String>,
    pub memo: String,
    pub metadata: BTreeMap<String, String>,
    pub postings: Vec<PostingLine>,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostingLine {
    pub account: String,
    pub unit: String,
    pub side: String,
    pub amount: String,
}

/// `entries.jsonl` line of `entry`, newline included.
pub fn entry_line(entry: &PostedEntry) -> String {
    let line = EntryLine {
        seq: entry.seq,
        id: entry.id.to_string(),
        ledger: entry.ledger_id.clone(),
        kind: entry.kind.as_str().to_owned(),
        posted_at_micros: entry.posted_at_micros,
        actor: entry.actor.clone(),
        idempotency_key: entry.idempotency_key.clone(),
        reverses: entry.reverses.map(|r| r.to_string()),
        memo: entry.memo.clone(),
        metadata: entry.metadata.clone(),
        postings: entry
            .postings
            .iter()
            .map(|p| PostingLine {
                account: p.account.to_string(),
                unit: p.unit.as_str().to_owned(),
                side: p.side.as_str().to_owned(),
                amount: p.amount.to_string(),
            })
            .collect(),
        prev_hash: hex::encode(entry.prev_hash),
        hash: hex::encode(entry.hash),
    };
    json_line(&line)
}

/// Decodes an `entries.jsonl` line; the error says what does not decode.
pub fn parse_entry_line(text: &str) -> Result<PostedEntry, String> {
    let line: EntryLine = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let uuid =
        |what: &str, t: &str| Uuid::parse_str(t).map_err(|_| format!("{what} {t:?} is not a UUID"));
    let postings = line
        .postings
        .iter()
        .map(|p| {
            Ok(Posting {
                account: uuid("account", &p.account)?,
                unit: Unit::parse(&p.unit).ok_or_else(|| format!("unknown unit {:?}", p.unit))?,
                side: Side::parse(&p.side).ok_or_else(|| format!("unknown side {:?}", p.side))?,
                amount: parse_amount(&p.amount)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(PostedEntry {
        ledger_id: line.ledger,
        seq: line.seq,
        id: uuid("id", &line.id)?,
        kind: EntryKind::parse(&line.kind)
            .ok_or_else(|| format!("unknown kind {:?}", line.kind))?,
        postings,
        memo: line.memo,
        metadata: line.metadata,
        reverses: line
            .reverses
            .as_deref()
            .map(|r| uuid("reverses", r))
            .transpose()?,
        actor: line.actor,
        idempotency_key: line.idempotency_key,
        posted_at_micros: line.posted_at_micros,
        prev_hash: parse_hash(&line.prev_hash).ok_or("prev_hash is not 64 hex digits")?,
        hash: parse_hash(&line.hash).ok_or("hash is not 64 hex digits")?,
    })
}

/// An amount as the bundle writes it: digits, a point, two digits, at most 100000000.00.
fn parse_amount(text: &str) -> Result<Amount, String> {
    let canonical = text.split_once('.').is_some_and(|(w, f)| {
        !w.is_empty()
            && w.bytes().all(|b| b.is_ascii_digit())
            && (w == "0" || !w.starts_with('0'))
            && f.len() == 2
            && f.bytes().all(|b| b.is_ascii_digit())
    });
    if !canonical {
        return Err(format!("amount {text:?} is not of the form digits.dd"));
    }
    Amount::parse(text).map_err(|e| format!("amount {text:?}: {e}"))
}

/// The header line of `entries.csv`.
pub const ENTRIES_CSV_HEADER: &str =
    "seq,id,kind,posted_at_micros,actor,idempotency_key,reverses,memo,metadata,prev_hash,hash\n";
/// The header line of `postings.csv`.
pub const POSTINGS_CSV_HEADER: &str = "seq,idx,account,unit,side,amount\n";

/// Whether a spreadsheet would read `text` as a formula: it starts with `=`, `+`, `-`, `@`, a
/// tab or a carriage return, and is not a number as aixin writes numbers (an optional `-`,
/// ASCII digits, optionally a `.` and more digits: `-12.50`, `-3`), which stays a number.
pub fn is_formula_like(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r') && !is_plain_number(text)
}

/// `-?[0-9]+(\.[0-9]+)?`
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && frac.is_none_or(all_digits)
}

/// A CSV field as every aixin CSV writes it (the bundle's, the reports', the shop
/// statement's). A formula-like cell ([`is_formula_like`]) is neutralised the OWASP way: a
/// single quote `'` before it, and the whole field quoted (inner quotes doubled), so that a
/// spreadsheet shows it as text. Any other cell is quoted (inner quotes doubled) when it holds
/// a comma, a quote, CR or LF, and written as is otherwise.
pub fn spreadsheet_cell(out: &mut String, text: &str) {
    if is_formula_like(text) {
        out.push_str("\"'");
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else if text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// One CSV record of `fields` ([`spreadsheet_cell`] each), ending in a line feed.
pub fn csv_record(fields: &[&str]) -> String {
    let mut out = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        spreadsheet_cell(&mut out, field);
    }
    out.push('\n');
    out
}

/// `entries.csv` record of `entry`.
pub fn entry_csv(entry: &PostedEntry) -> String {
    let metadata = serde_json::to_string(&entry.metadata).unwrap_or_default();
    csv_record(&[
        &entry.seq.to_string(),
        &entry.id.to_string(),
        entry.kind.as_str(),
        &entry.posted_at_micros.to_string(),
        &entry.actor,
        &entry.idempotency_key,
        &entry.reverses.map(|r| r.to_string()).unwrap_or_default(),
        &entry.memo,
        &metadata,
        &hex::encode(entry.prev_hash),
        &hex::encode(entry.hash),
    ])
}

/// `postings.csv` records of `entry`, one per posting.
pub fn postings_csv(entry: &PostedEntry) -> String {
    let seq = entry.seq.to_string();
    entry
        .postings
        .iter()
        .enumerate()
        .map(|(idx, p)| {
            csv_record(&[
                &seq,
                &idx.to_string(),
                &p.account.to_string(),
                p.unit.as_str(),
                p.side.as_str(),
                &p.amount.to_string(),
            ])
        })
        .collect()
}

// ---- Accounts ----

/// An account as the bundle shows it: pseudonymous (no names, no phone numbers), with its
/// balances at the start and at the end of the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleAccount {
    pub id: Uuid,
    pub kind: AccountKind,
    pub community_id: Option<String>,
    /// Shops only: the shop's id.
    pub shop_id: Option<String>,
    /// Residents: their public pseudonym (`AX-…`) if the label is one, else absent; other
    /// accounts: their label.
    pub label: Option<String>,
    /// Per unit the kind may hold, hundredths, before the range's first entry.
    pub opening: BTreeMap<Unit, i64>,
    /// Per unit, after the range's last entry.
    pub closing: BTreeMap<Unit, i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountLine {
    id: String,
    kind: String,
    community_id: Option<String>,
    shop_id: Option<String>,
    label: Option<String>,
    opening: BTreeMap<String, String>,
    closing: BTreeMap<String, String>,
}

/// Whether `label` is a resident pseudonym: `AX-` and 8 Crockford base32 characters.
pub fn is_pseudonym(label: &str) -> bool {
    label.len() == 11
        && label.starts_with("AX-")
        && label[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}

fn balances_text(balances: &BTreeMap<Unit, i64>) -> BTreeMap<String, String> {
    balances
        .iter()
        .map(|(u, b)| (u.as_str().to_owned(), format_minor(*b)))
        .collect()
}

/// `accounts.jsonl` line.
pub fn account_line(account: &BundleAccount) -> String {
    json_line(&AccountLine {
        id: account.id.to_string(),
        kind: account.kind.as_str().to_owned(),
        community_id: account.community_id.clone(),
        shop_id: account.shop_id.clone(),
        label: account.label.clone(),
        opening: balances_text(&account.opening),
        closing: balances_text(&account.closing),
    })
}

/// Decodes an `accounts.jsonl` line.
pub fn parse_account_line(text: &str) -> Result<BundleAccount, String> {
    let line: AccountLine = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let kind =
        AccountKind::parse(&line.kind).ok_or_else(|| format!("unknown kind {:?}", line.kind))?;
    let balances = |map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(u, b)| {
                let unit = Unit::parse(u).ok_or_else(|| format!("unknown unit {u:?}"))?;
                let minor = parse_signed_minor(b).ok_or_else(|| format!("balance {b:?}"))?;
                Ok((unit, minor))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()
    };
    Ok(BundleAccount {
        id: Uuid::parse_str(&line.id).map_err(|_| format!("id {:?} is not a UUID", line.id))?,
        kind,
        community_id: line.community_id,
        shop_id: line.shop_id,
        label: line.label,
        opening: balances(&line.opening)?,
        closing: balances(&line.closing)?,
    })
}

/// Parses a signed decimal with exactly two places (`-12.50`), into hundredths.
pub fn parse_signed_minor(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.')?;
    if whole.is_empty()
        || frac.len() != 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (whole.len() > 1 && whole.starts_with('0'))
    {
        return None;
    }
    let minor = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac.parse::<i64>().ok()?)?;
    let value = if negative { -minor } else { minor };
    (format_minor(value) == text).then_some(value)
}

// ---- Rules ----

#[derive(Serialize)]
struct RuleLine<'a> {
    rule_id: &'a str,
    version: i64,
    community_id: &'a str,
    category: &'a str,
    name_zh: &'a str,
    name_en: &'a str,
    mode: &'a str,
    points: String,
    records_hours: bool,
    cap_day: Option<String>,
    cap_month: Option<String>,
    valid_from: String,
    valid_until: Option<String>,
    created_by: &'a str,
    created_at_micros: i64,
}

/// `rules.jsonl` line of one rule version.
pub fn rule_line(rule: &Rule) -> String {
    json_line(&RuleLine {
        rule_id: &rule.rule_id,
        version: rule.version,
        community_id: &rule.community_id,
        category: &rule.category,
        name_zh: &rule.name_zh,
        name_en: &rule.name_en,
        mode: rule.mode.as_str(),
        points: rule.points.to_string(),
        records_hours: rule.records_hours,
        cap_day: rule.cap_day.map(|a| a.to_string()),
        cap_month: rule.cap_month.map(|a| a.to_string()),
        valid_from: format_date(rule.valid_from),
        valid_until: rule.valid_until.map(format_date),
        created_by: &rule.created_by,
        created_at_micros: rule.created_at_micros,
    })
}

// ---- Checkpoints ----

/// The bytes a checkpoint's tag is the HMAC-SHA256 of.
pub fn checkpoint_bytes(
    ledger_id: &str,
    seq: i64,
    head_hash: &[u8; 32],
    totals: &[Total],
    key_id: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + totals.len() * 32);
    out.extend_from_slice(CHECKPOINT_TAG);
    put_str(&mut out, key_id);
    put_str(&mut out, ledger_id);
    put_u64(&mut out, seq);
    out.extend_from_slice(head_hash);
    out.extend_from_slice(&(totals.len() as u32).to_be_bytes());
    for total in totals {
        put_str(&mut out, total.unit.as_str());
        put_str(&mut out, total.kind.as_str());
        out.extend_from_slice(&total.balance_minor.to_be_bytes());
    }
    out
}

impl Checkpoint {
    pub fn signed_bytes(&self) -> Vec<u8> {
        checkpoint_bytes(
            &self.ledger_id,
            self.seq,
            &self.head_hash,
            &self.totals,
            &self.key_id,
        )
    }

    /// Signs a checkpoint with `sign` (the key ring's active key).
    pub fn sign(
        ledger_id: &str,
        seq: i64,
        head_hash: [u8; 32],
        totals: Vec<Total>,
        ring: &crate::keys::KeyRing,
    ) -> Checkpoint {
        let key_id = ring.active().id.clone();
        let bytes = checkpoint_bytes(ledger_id, seq, &head_hash, &totals, &key_id);
        let (signed_by, tag) = ring.sign(&bytes);
        debug_assert_eq!(signed_by, key_id);
        Checkpoint {
            ledger_id: ledger_id.to_owned(),
            seq,
            head_hash,
            totals,
            key_id,
            tag,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    ledger: String,
    seq: i64,
    head_hash: String,
    totals: Vec<TotalLine>,
    key_id: String,
    signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TotalLine {
    unit: String,
    kind: String,
    balance: String,
}

/// `checkpoints.jsonl` line (also the file an auditor keeps).
pub fn checkpoint_line(checkpoint: &Checkpoint) -> String {
    json_line(&CheckpointLine {
        ledger: checkpoint.ledger_id.clone(),
        seq: checkpoint.seq,
        head_hash: hex::encode(checkpoint.head_hash),
        totals: checkpoint
            .totals
            .iter()
            .map(|t| TotalLine {
                unit: t.unit.as_str().to_owned(),
                kind: t.kind.as_str().to_owned(),
                balance: format_minor(t.balance_minor),
            })
            .collect(),
        key_id: checkpoint.key_id.clone(),
        signature: hex::encode(checkpoint.tag),
    })
}

/// Decodes a checkpoint line.
pub fn parse_checkpoint_line(text: &str) -> Result<Checkpoint, String> {
    let line: CheckpointLine = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let totals = line
        .totals
        .iter()
        .map(|t| {
            Ok(Total {
                unit: Unit::parse(&t.unit).ok_or_else(|| format!("unknown unit {:?}", t.unit))?,
                kind: AccountKind::parse(&t.kind)
                    .ok_or_else(|| format!("unknown kind {:?}", t.kind))?,
                balance_minor: parse_signed_minor(&t.balance)
                    .ok_or_else(|| format!("balance {:?}", t.balance))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Checkpoint {
        ledger_id: line.ledger,
        seq: line.seq,
        head_hash: parse_hash(&line.head_hash).ok_or("head_hash is not 64 hex digits")?,
        totals,
        key_id: line.key_id,
        tag: parse_hash(&line.signature).ok_or("signature is not 64 hex digits")?,
    })
}

// ---- The manifest ----

/// One file as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub entries: i64,
    pub postings: i64,
    pub accounts: i64,
    pub rules: i64,
    pub checkpoints: i64,
}

/// `manifest.json`: what the bundle holds, and a signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub ledger: String,
    /// First entry of the range (1-based).
    pub from_seq: i64,
    /// Last entry of the range; `from_seq - 1` for an empty range.
    pub to_seq: i64,
    /// The hash entry `from_seq` chains to: the genesis hash or entry `from_seq - 1`'s hash.
    pub prev_hash: String,
    /// The hash of entry `to_seq` (`prev_hash` for an empty range).
    pub head_hash: String,
    pub counts: Counts,
    pub files: Vec<FileDigest>,
    pub key_id: String,
    pub signature: String,
}

/// The bytes the manifest's signature is the HMAC-SHA256 of.
pub fn manifest_bytes(manifest: &Manifest) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(MANIFEST_TAG);
    put_str(&mut out, &manifest.key_id);
    put_str(&mut out, &manifest.format);
    put_str(&mut out, &manifest.ledger);
    put_u64(&mut out, manifest.from_seq);
    put_u64(&mut out, manifest.to_seq);
    put_str(&mut out, &manifest.prev_hash);
    put_str(&mut out, &manifest.head_hash);
    let c = &manifest.counts;
    for n in [c.entries, c.postings, c.accounts, c.rules, c.checkpoints] {
        put_u64(&mut out, n);
    }
    out.extend_from_slice(&(manifest.files.len() as u32).to_be_bytes());
    for file in &manifest.files {
        put_str(&mut out, &file.name);
        out.extend_from_slice(&file.bytes.to_be_bytes());
        put_str(&mut out, &file.sha256);
    }
    out
}

/// The manifest's text: pretty JSON with a final newline.
pub fn manifest_text(manifest: &Manifest) -> String {
    serde_json::to_string_pretty(manifest).unwrap_or_default() + "\n"
}

fn json_line<T: Serialize>(value: &T) -> String {
    // Structs of strings, integers and string maps always serialise.
    serde_json::to_string(value).unwrap_or_default() + "\n"
}

// ---- Books for hledger and Beancount ----

/// The account name both tools show: a root by kind, then the kind, then the id in upper case
/// (Beancount wants capitalised components).
pub fn book_account(kind: AccountKind, id: Uuid) -> String {
    let root = match kind {
        AccountKind::Resident | AccountKind::Shop => "Liabilities",
        AccountKind::Issuance | AccountKind::Adjustment => "Equity",
        AccountKind::Settlement => "Assets",
        AccountKind::Expiry => "Income",
    };
    let name = match kind {
        AccountKind::Resident => "Resident",
        AccountKind::Shop => "Shop",
        AccountKind::Issuance => "Issuance",
        AccountKind::Adjustment => "Adjustment",
        AccountKind::Settlement => "Settlement",
        AccountKind::Expiry => "Expiry",
    };
    format!("{root}:{name}:{}", id.to_string().to_uppercase())
}

/// The commodity of a unit: `POINTS`, `HOURS`.
pub fn commodity(unit: Unit) -> &'static str {
    match unit {
        Unit::Points => "POINTS",
        Unit::Hours => "HOURS",
    }
}

/// Which book format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Book {
    /// hledger / Ledger journal.
    Journal,
    Beancount,
}

/// What the books need to know about an account.
pub struct BookAccount<'a> {
    pub id: Uuid,
    pub kind: AccountKind,
    pub opening: &'a BTreeMap<Unit, i64>,
    pub closing: &'a BTreeMap<Unit, i64>,
}

fn signed_amount(minor: i64, unit: Unit) -> String {
    format!("{} {}", format_minor(minor), commodity(unit))
}

/// The start of a book: a comment naming the range; in Beancount (when the range has entries)
/// the commodities and an `open` for every account (dated `first_day`); then, when the range does not start at entry 1, one
/// transaction carrying every account's opening balance.
pub fn book_header(
    book: Book,
    ledger_id: &str,
    from_seq: i64,
    to_seq: i64,
    first_day: &str,
    accounts: &[BookAccount<'_>],
) -> String {
    let mut out = format!(
        "; aixin books of ledger {ledger_id}, entries {from_seq} to {to_seq} ({BUNDLE_FORMAT})\n; amounts carry aixin's sign: a credit is positive, a debit negative.\n\n"
    );
    if book == Book::Beancount && !accounts.is_empty() {
        out.push_str("option \"operating_currency\" \"POINTS\"\n");
        for unit in Unit::ALL {
            out.push_str(&format!("{first_day} commodity {}\n", commodity(unit)));
        }
        for account in accounts {
            out.push_str(&format!(
                "{first_day} open {}\n",
                book_account(account.kind, account.id)
            ));
        }
        out.push('\n');
    }
    let has_opening = accounts.iter().any(|a| a.opening.values().any(|b| *b != 0));
    if has_opening {
        out.push_str(&match book {
            Book::Journal => format!("{first_day} opening balances before entry {from_seq}\n"),
            Book::Beancount => {
                format!("{first_day} * \"aixin\" \"opening balances before entry {from_seq}\"\n")
            }
        });
        for account in accounts {
            for (unit, balance) in account.opening {
                if *balance != 0 {
                    out.push_str(&format!(
                        "    {}  {}\n",
                        book_account(account.kind, account.id),
                        signed_amount(*balance, *unit)
                    ));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// One entry as a transaction, dated on its calendar day (UTC+8). `kind_of` gives each
/// posting's account kind.
pub fn book_entry(
    book: Book,
    entry: &PostedEntry,
    kind_of: &dyn Fn(Uuid) -> Option<AccountKind>,
) -> String {
    let day = format_date(day_of(entry.posted_at_micros));
    let mut out = match book {
        Book::Journal => format!("{day} ({}) {}\n", entry.seq, entry.kind.as_str()),
        Book::Beancount => format!(
            "{day} * \"aixin\" \"{} {}\"\n  seq: {}\n",
            entry.kind.as_str(),
            entry.seq,
            entry.seq
        ),
    };
    for posting in &entry.postings {
        // An account missing from accounts.jsonl is reported by the verifier before books are
        // compared; the name still renders.
        let kind = kind_of(posting.account).unwrap_or(AccountKind::Adjustment);
        out.push_str(&format!(
            "    {}  {}\n",
            book_account(kind, posting.account),
            signed_amount(posting.side.signed(posting.amount), posting.unit)
        ));
    }
    out.push('\n');
    out
}

/// The end of a book: a balance assertion for every account and unit it may hold, at the
/// closing balance. hledger: zero postings with `=` assertions on the last day; Beancount:
/// `balance` directives on the day after the last day (they hold at the start of their day).
pub fn book_footer(book: Book, last_day: &str, accounts: &[BookAccount<'_>]) -> String {
    let mut out = String::new();
    match book {
        Book::Journal => {
            out.push_str(&format!("{last_day} closing balance assertions\n"));
            for account in accounts {
                for (unit, balance) in account.closing {
                    out.push_str(&format!(
                        "    {}  0.00 {} = {}\n",
                        book_account(account.kind, account.id),
                        commodity(*unit),
                        signed_amount(*balance, *unit)
                    ));
                }
            }
        }
        Book::Beancount => {
            let next = crate::calendar::parse_date(last_day)
                .and_then(|d| d.next_day())
                .map(format_date)
                .unwrap_or_else(|| last_day.to_owned());
            for account in accounts {
                for (unit, balance) in account.closing {
                    out.push_str(&format!(
                        "{next} balance {}  {}\n",
                        book_account(account.kind, account.id),
                        signed_amount(*balance, *unit)
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_minor_round_trips_only_canonical_text() {
        for (text, minor) in [
            ("0.00", 0),
            ("-12.50", -1250),
            ("100000000.00", 10_000_000_000),
        ] {
            assert_eq!(parse_signed_minor(text), Some(minor), "{text}");
            assert_eq!(format_minor(minor), text);
        }
        for bad in ["12.5", "012.50", "-0.00", "+1.00", "1,00", "", "1.000"] {
            assert_eq!(parse_signed_minor(bad), None, "{bad}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(
            csv_record(&["a", "b c", "x,y", "say \"hi\"", "l1\nl2"]),
            "a,b c,\"x,y\",\"say \"\"hi\"\"\",\"l1\nl2\"\n"
        );
    }

    #[test]
    fn formula_like_cells_are_neutralised_and_numbers_are_not() {
        for (cell, written) in [
            ("=1+2", "\"'=1+2\""),
            ("+1", "\"'+1\""),
            ("@SUM(A1)", "\"'@SUM(A1)\""),
            ("-1+1", "\"'-1+1\""),
            ("\tx", "\"'\tx\""),
            ("\rx", "\"'\rx\""),
            ("-", "\"'-\""),
            ("-A1", "\"'-A1\""),
            ("-1.", "\"'-1.\""),
            ("-.5", "\"'-.5\""),
            ("-1.2.3", "\"'-1.2.3\""),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            // Numbers as aixin writes them stay numbers.
            ("-5.00", "-5.00"),
            ("-12", "-12"),
            ("0.01", "0.01"),
            // Not at the start: harmless.
            ("a=1", "a=1"),
            (" =1", " =1"),
            ("", ""),
        ] {
            let mut out = String::new();
            spreadsheet_cell(&mut out, cell);
            assert_eq!(out, written, "{cell:?}");
        }
    }

    #[test]
    fn pseudonyms_are_recognised_and_names_are_not() {
        assert!(is_pseudonym("AX-7K2M9QXD"));
        assert!(!is_pseudonym("王秀英"));
        assert!(!is_pseudonym("AX-7K2M9QXI"));
        assert!(!is_pseudonym("AX-7k2m9qxd"));
    }
}
