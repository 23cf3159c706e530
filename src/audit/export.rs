//! Writing an audit bundle from the store, streaming: entries are read in pages of
//! [`EXPORT_PAGE`] by sequence number and written to every file at once; memory holds one page
//! and one row per account, however long the journal.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use time::Date;
use uuid::Uuid;

use super::format::{
    self, Book, BookAccount, BundleAccount, Checkpoint, Counts, FileDigest, Manifest,
};
use crate::calendar::{day_start_micros, format_date};
use crate::keys::KeyRing;
use crate::ledger::chain::genesis_hash;
use crate::ledger::{AccountKind, Unit};
use crate::store::{Account, Store, StoreError, Stores};

/// Entries read per round trip while exporting.
pub const EXPORT_PAGE: i64 = 1_000;

/// One end of an export range: an entry's sequence number, or a calendar day (UTC+8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Seq(i64),
    Day(Date),
}

impl Bound {
    /// `123` (a sequence number) or `2026-11-26` (a day).
    pub fn parse(text: &str) -> Option<Bound> {
        if let Some(day) = crate::calendar::parse_date(text) {
            return Some(Bound::Day(day));
        }
        text.parse::<i64>().ok().filter(|n| *n >= 0).map(Bound::Seq)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot write the bundle: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Range(String),
}

/// The range `[from, to]` of sequence numbers the bounds name, against a head at `head_seq`.
pub async fn resolve_range(
    store: &dyn Store,
    ledger_id: &str,
    head_seq: i64,
    from: Option<Bound>,
    to: Option<Bound>,
) -> Result<(i64, i64), ExportError> {
    let from_seq = match from {
        None => 1,
        Some(Bound::Seq(n)) => n.max(1),
        Some(Bound::Day(day)) => {
            store
                .last_seq_before(ledger_id, day_start_micros(day))
                .await?
                + 1
        }
    };
    let to_seq = match to {
        None => head_seq,
        Some(Bound::Seq(n)) => n,
        Some(Bound::Day(day)) => match day.next_day() {
            Some(next) => {
                store
                    .last_seq_before(ledger_id, day_start_micros(next))
                    .await?
            }
            None => head_seq,
        },
    };
    if to_seq > head_seq {
        return Err(ExportError::Range(format!(
            "the range ends at entry {to_seq} but the ledger's last entry is {head_seq}"
        )));
    }
    if from_seq > to_seq + 1 {
        return Err(ExportError::Range(format!(
            "the range starts at entry {from_seq}, after its end {to_seq}"
        )));
    }
    Ok((from_seq, to_seq))
}

/// The signed checkpoint of entry `seq` (totals per unit and account kind from the postings of
/// entries 1..=seq), stored unless one exists for `seq` already; returns the stored one.
pub async fn checkpoint_at(
    store: &dyn Store,
    ledger_id: &str,
    seq: i64,
    ring: &KeyRing,
    now_micros: i64,
) -> Result<Checkpoint, ExportError> {
    if let Some(existing) = store.checkpoints(ledger_id, seq, seq).await?.pop() {
        return Ok(existing);
    }
    let hash = hash_after(store, ledger_id, seq).await?;
    let kinds: HashMap<Uuid, AccountKind> = store
        .all_accounts(ledger_id)
        .await?
        .into_iter()
        .map(|a| (a.id, a.kind))
        .collect();
    let mut sums = BTreeMap::new();
    for (account, unit, sum) in store.balances_through(ledger_id, seq).await? {
        let kind = kinds.get(&account).copied().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "postings name account {account}, which does not exist"
            ))
        })?;
        *sums.entry((unit, kind)).or_default() += sum;
    }
    let checkpoint = Checkpoint::sign(ledger_id, seq, hash, format::totals_from(&sums), ring);
    Ok(store.insert_checkpoint(&checkpoint, now_micros).await?)
}

/// A checkpoint of the ledger's current head (the daily schedule inside `serve`).
pub async fn checkpoint_head(
    store: &dyn Store,
    ledger_id: &str,
    ring: &KeyRing,
    now_micros: i64,
) -> Result<Checkpoint, ExportError> {
    let head = store
        .head(ledger_id)
        .await?
        .ok_or_else(|| StoreError::NoSuchLedger(ledger_id.to_owned()))?;
    checkpoint_at(store, ledger_id, head.seq, ring, now_micros).await
}

/// The hash after entry `seq`: the genesis hash for 0, else entry `seq`'s hash.
async fn hash_after(store: &dyn Store, ledger_id: &str, seq: i64) -> Result<[u8; 32], ExportError> {
    if seq == 0 {
        return Ok(genesis_hash(ledger_id));
    }
    store
        .entries_after(ledger_id, seq - 1, 1)
        .await?
        .pop()
        .filter(|e| e.seq == seq)
        .map(|e| e.hash)
        .ok_or_else(|| ExportError::Range(format!("entry {seq} does not exist")))
}

/// Writes the bundle of `[from, to]` into `dir` (created if missing; existing bundle files are
/// replaced) and returns its manifest. Makes (and stores) the checkpoint of entry `to` if there
/// is none yet, signed with `ring`'s active key, as the manifest is.
pub async fn export_bundle(
    stores: &Stores,
    ledger_id: &str,
    from: Option<Bound>,
    to: Option<Bound>,
    ring: &KeyRing,
    now_micros: i64,
    dir: &Path,
) -> Result<Manifest, ExportError> {
    let store = stores.ledger.as_ref();
    let (head, stored) = store.snapshot(ledger_id).await?;
    let (from, to) = resolve_range(store, ledger_id, head.seq, from, to).await?;
    std::fs::create_dir_all(dir)?;

    let prev_hash = hash_after(store, ledger_id, from - 1).await?;
    let head_hash = hash_after(store, ledger_id, to).await?;
    let stored_closing = (to == head.seq).then_some(stored.as_slice());
    let accounts = range_accounts(store, ledger_id, from, to, stored_closing).await?;
    let checkpoint = checkpoint_at(store, ledger_id, to, ring, now_micros).await?;
    debug_assert_eq!(checkpoint.seq, to);
    let checkpoints = store.checkpoints(ledger_id, (from - 1).max(0), to).await?;
    let rules = rules_through(stores, ledger_id, to).await?;

    let mut files = vec![
        write_lines(dir, format::ACCOUNTS_FILE, &accounts, format::account_line)?,
        write_lines(dir, format::RULES_FILE, &rules, format::rule_line)?,
        write_lines(
            dir,
            format::CHECKPOINTS_FILE,
            &checkpoints,
            format::checkpoint_line,
        )?,
    ];
    let journal = write_journal(store, ledger_id, from, to, &accounts, dir).await?;
    files.extend(journal.files);
    // Files in name order, as format::FILES lists them.
    files.sort_by(|a, b| a.name.cmp(&b.name));

    let manifest = signed_manifest(
        Manifest {
            format: format::BUNDLE_FORMAT.to_owned(),
            ledger: ledger_id.to_owned(),
            from_seq: from,
            to_seq: to,
            prev_hash: hex::encode(prev_hash),
            head_hash: hex::encode(head_hash),
            counts: Counts {
                entries: to - from + 1,
                postings: journal.postings,
                accounts: accounts.len() as i64,
                rules: rules.len() as i64,
                checkpoints: checkpoints.len() as i64,
            },
            files,
            key_id: ring.active().id.clone(),
            signature: String::new(),
        },
        ring,
    );
    let mut out = Out::create(dir, format::MANIFEST_FILE)?;
    out.put(&format::manifest_text(&manifest))?;
    out.finish()?;
    Ok(manifest)
}

/// The accounts the history up to `to` touched, in id order, with their balances before and
/// after the range, from the postings; after the range, when it ends at the head, the stored
/// balances (`stored_closing`) instead, so the verifier checks them against the postings.
async fn range_accounts(
    store: &dyn Store,
    ledger_id: &str,
    from: i64,
    to: i64,
    stored_closing: Option<&[crate::ledger::verify::StoredBalance]>,
) -> Result<Vec<BundleAccount>, ExportError> {
    let to_map = |rows: Vec<(Uuid, Unit, i64)>| -> HashMap<(Uuid, Unit), i64> {
        rows.into_iter().map(|(a, u, s)| ((a, u), s)).collect()
    };
    let opening = to_map(if from > 1 {
        store.balances_through(ledger_id, from - 1).await?
    } else {
        Vec::new()
    });
    let through_to = to_map(store.balances_through(ledger_id, to).await?);
    let touched: std::collections::HashSet<Uuid> = through_to.keys().map(|(a, _)| *a).collect();
    let closing = match stored_closing {
        Some(stored) => stored
            .iter()
            .filter(|b| touched.contains(&b.account))
            .map(|b| ((b.account, b.unit), b.balance_minor))
            .collect(),
        None => through_to,
    };
    Ok(store
        .all_accounts(ledger_id)
        .await?
        .iter()
        .filter(|a| touched.contains(&a.id))
        .map(|a| bundle_account(a, &opening, &closing))
        .collect())
}

/// The earning rule versions created up to the time of entry `to` (none for `to = 0`).
async fn rules_through(
    stores: &Stores,
    ledger_id: &str,
    to: i64,
) -> Result<Vec<crate::model::Rule>, ExportError> {
    let range_end_micros = match to {
        0 => i64::MIN,
        _ => stores
            .ledger
            .entries_after(ledger_id, to - 1, 1)
            .await?
            .pop()
            .map(|e| e.posted_at_micros)
            .unwrap_or(i64::MIN),
    };
    Ok(stores
        .earning
        .all_rules(ledger_id)
        .await?
        .into_iter()
        .filter(|r| r.created_at_micros <= range_end_micros)
        .collect())
}

/// Writes one line per item into the file `name`.
fn write_lines<T>(
    dir: &Path,
    name: &'static str,
    items: &[T],
    line: impl Fn(&T) -> String,
) -> std::io::Result<FileDigest> {
    let mut out = Out::create(dir, name)?;
    for item in items {
        out.put(&line(item))?;
    }
    out.finish()
}

/// What writing the journal gave: the digests of its five files, and how many postings.
struct JournalWritten {
    files: Vec<FileDigest>,
    postings: i64,
}

/// Writes entries `from ..= to` to `entries.jsonl` and the four files derived from them, a
/// page of [`EXPORT_PAGE`] entries at a time.
async fn write_journal(
    store: &dyn Store,
    ledger_id: &str,
    from: i64,
    to: i64,
    accounts: &[BundleAccount],
    dir: &Path,
) -> Result<JournalWritten, ExportError> {
    let book_accounts: Vec<BookAccount<'_>> = accounts
        .iter()
        .map(|a| BookAccount {
            id: a.id,
            kind: a.kind,
            opening: &a.opening,
            closing: &a.closing,
        })
        .collect();
    let kinds: HashMap<Uuid, AccountKind> = accounts.iter().map(|a| (a.id, a.kind)).collect();
    let kind_of = |id: Uuid| kinds.get(&id).copied();
    let mut out = JournalOut::create(dir)?;
    let mut after = from - 1;
    let mut last_day = None;
    while after < to {
        let page = store
            .entries_after(ledger_id, after, EXPORT_PAGE.min(to - after))
            .await?;
        if page.is_empty() {
            return Err(missing(after + 1));
        }
        for entry in &page {
            if entry.seq != after + 1 {
                return Err(missing(after + 1));
            }
            let day = format_date(crate::calendar::day_of(entry.posted_at_micros));
            if entry.seq == from {
                for (book, file) in out.books() {
                    file.put(&format::book_header(
                        book,
                        ledger_id,
                        from,
                        to,
                        &day,
                        &book_accounts,
                    ))?;
                }
            }
            out.put_entry(entry, &kind_of)?;
            after = entry.seq;
            last_day = Some(day);
        }
    }
    for (book, file) in out.books() {
        match &last_day {
            Some(day) => file.put(&format::book_footer(book, day, &book_accounts))?,
            None => file.put(&format::book_header(book, ledger_id, from, to, "", &[]))?,
        }
    }
    out.finish()
}

fn missing(seq: i64) -> ExportError {
    ExportError::Range(format!("entry {seq} is missing"))
}

/// `entries.jsonl` and the files derived from it, written in step.
struct JournalOut {
    entries: Out,
    entries_csv: Out,
    postings_csv: Out,
    journal: Out,
    beancount: Out,
    postings: i64,
}

impl JournalOut {
    /// Creates the five files and writes the CSV headers.
    fn create(dir: &Path) -> std::io::Result<JournalOut> {
        let mut out = JournalOut {
            entries: Out::create(dir, format::ENTRIES_FILE)?,
            entries_csv: Out::create(dir, format::ENTRIES_CSV)?,
            postings_csv: Out::create(dir, format::POSTINGS_CSV)?,
            journal: Out::create(dir, format::BOOKS_JOURNAL)?,
            beancount: Out::create(dir, format::BOOKS_BEANCOUNT)?,
            postings: 0,
        };
        out.entries_csv.put(format::ENTRIES_CSV_HEADER)?;
        out.postings_csv.put(format::POSTINGS_CSV_HEADER)?;
        Ok(out)
    }

    /// Both books, journal first.
    fn books(&mut self) -> [(Book, &mut Out); 2] {
        [
            (Book::Journal, &mut self.journal),
            (Book::Beancount, &mut self.beancount),
        ]
    }

    /// One entry, in every file.
    fn put_entry(
        &mut self,
        entry: &crate::ledger::PostedEntry,
        kind_of: &dyn Fn(Uuid) -> Option<AccountKind>,
    ) -> std::io::Result<()> {
        self.entries.put(&format::entry_line(entry))?;
        self.entries_csv.put(&format::entry_csv(entry))?;
        self.postings_csv.put(&format::postings_csv(entry))?;
        self.journal
            .put(&format::book_entry(Book::Journal, entry, kind_of))?;
        self.beancount
            .put(&format::book_entry(Book::Beancount, entry, kind_of))?;
        self.postings += entry.postings.len() as i64;
        Ok(())
    }

    /// Flushes every file; returns their digests and the number of postings written.
    fn finish(self) -> Result<JournalWritten, ExportError> {
        Ok(JournalWritten {
            files: vec![
                self.beancount.finish()?,
                self.journal.finish()?,
                self.entries_csv.finish()?,
                self.entries.finish()?,
                self.postings_csv.finish()?,
            ],
            postings: self.postings,
        })
    }
}

/// `manifest` with its signature, by `ring`'s active key (the one `key_id` names).
fn signed_manifest(mut manifest: Manifest, ring: &KeyRing) -> Manifest {
    let (key_id, tag) = ring.sign(&format::manifest_bytes(&manifest));
    debug_assert_eq!(key_id, manifest.key_id);
    manifest.signature = hex::encode(tag);
    manifest
}

/// A file being written, hashed and counted as it goes.
struct Out {
    name: &'static str,
    file: std::io::BufWriter<std::fs::File>,
    hasher: Sha256,
    bytes: u64,
}

impl Out {
    fn create(dir: &Path, name: &'static str) -> std::io::Result<Out> {
        Ok(Out {
            name,
            file: std::io::BufWriter::with_capacity(
                256 * 1024,
                std::fs::File::create(dir.join(name))?,
            ),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    fn put(&mut self, text: &str) -> std::io::Result<()> {
        self.hasher.update(text.as_bytes());
        self.bytes += text.len() as u64;
        self.file.write_all(text.as_bytes())
    }

    fn finish(mut self) -> std::io::Result<FileDigest> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok(FileDigest {
            name: self.name.to_owned(),
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

fn bundle_account(
    account: &Account,
    opening: &HashMap<(Uuid, Unit), i64>,
    closing: &HashMap<(Uuid, Unit), i64>,
) -> BundleAccount {
    let per_unit = |sums: &HashMap<(Uuid, Unit), i64>| {
        Unit::ALL
            .into_iter()
            .filter_map(|u| {
                let value = sums.get(&(account.id, u)).copied().unwrap_or(0);
                (account.kind.floor(u).is_some() || value != 0).then_some((u, value))
            })
            .collect::<BTreeMap<_, _>>()
    };
    BundleAccount {
        id: account.id,
        kind: account.kind,
        community_id: account.community_id.clone(),
        shop_id: shop_id_of(account),
        label: public_label(account),
        opening: per_unit(opening),
        closing: per_unit(closing),
    }
}

// ---- Reports (the pure parts are in `reports.rs`) ----

use super::reports::{
    self, AccountInfo, CommunityReport, CommunitySummary, ShopStatement, TrialBalance,
};

async fn account_infos(
    store: &dyn Store,
    ledger_id: &str,
) -> Result<Vec<AccountInfo>, ExportError> {
    Ok(store
        .all_accounts(ledger_id)
        .await?
        .iter()
        .map(account_info)
        .collect())
}

/// Feeds entries `from ..= to` to `f`, a page at a time.
async fn each_entry(
    store: &dyn Store,
    ledger_id: &str,
    from: i64,
    to: i64,
    mut f: impl FnMut(&crate::ledger::PostedEntry),
) -> Result<(), ExportError> {
    let mut after = from - 1;
    while after < to {
        let page = store
            .entries_after(ledger_id, after, EXPORT_PAGE.min(to - after))
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        page.iter().for_each(&mut f);
    }
    Ok(())
}

/// The trial balance after the entry (or the day) `as_of` (default: the head).
pub async fn trial_balance(
    store: &dyn Store,
    ledger_id: &str,
    as_of: Option<Bound>,
) -> Result<TrialBalance, ExportError> {
    let (head, _) = store.snapshot(ledger_id).await?;
    let (_, to) = resolve_range(store, ledger_id, head.seq, None, as_of).await?;
    let sums = store
        .balances_through(ledger_id, to)
        .await?
        .into_iter()
        .map(|(a, u, s)| ((a, u), s))
        .collect();
    Ok(reports::trial_balance(
        ledger_id,
        to,
        &account_infos(store, ledger_id).await?,
        &sums,
    ))
}

/// A community's summary after the entry (or the day) `as_of` (default: the head).
pub async fn community_summary(
    store: &dyn Store,
    ledger_id: &str,
    community_id: &str,
    as_of: Option<Bound>,
) -> Result<CommunitySummary, ExportError> {
    let (head, _) = store.snapshot(ledger_id).await?;
    let (_, to) = resolve_range(store, ledger_id, head.seq, None, as_of).await?;
    let accounts: BTreeMap<Uuid, AccountInfo> = account_infos(store, ledger_id)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut report = CommunityReport::new(community_id, &accounts);
    each_entry(store, ledger_id, 1, to, |e| report.push(e)).await?;
    report.summary.as_of_seq = to;
    Ok(report.summary)
}

/// The accounts of a shop: shop accounts whose shop id is `shop_id`, or the account `shop_id`.
pub async fn shop_accounts(
    store: &dyn Store,
    ledger_id: &str,
    shop_id: &str,
) -> Result<Vec<crate::store::Account>, ExportError> {
    Ok(store
        .all_accounts(ledger_id)
        .await?
        .into_iter()
        .filter(|a| {
            a.kind == AccountKind::Shop
                && (a.owner_id.as_deref() == Some(shop_id) || a.id.to_string() == shop_id)
        })
        .collect())
}

/// A shop's statement over `[from, to]` (default: the whole journal).
pub async fn shop_statement(
    store: &dyn Store,
    ledger_id: &str,
    shop_id: &str,
    from: Option<Bound>,
    to: Option<Bound>,
) -> Result<ShopStatement, ExportError> {
    let (head, _) = store.snapshot(ledger_id).await?;
    let (from, to) = resolve_range(store, ledger_id, head.seq, from, to).await?;
    let ids: Vec<Uuid> = shop_accounts(store, ledger_id, shop_id)
        .await?
        .iter()
        .map(|a| a.id)
        .collect();
    let opening: i64 = if from > 1 {
        store
            .balances_through(ledger_id, from - 1)
            .await?
            .into_iter()
            .filter(|(a, u, _)| *u == Unit::Points && ids.contains(a))
            .map(|(_, _, s)| s)
            .sum()
    } else {
        0
    };
    let mut statement = ShopStatement::new(shop_id, ids, from, opening);
    each_entry(store, ledger_id, from, to, |e| statement.push(e)).await?;
    statement.to_seq = to;
    Ok(statement)
}

/// What the reports may know of an account: residents appear by pseudonym only.
fn account_info(account: &Account) -> AccountInfo {
    AccountInfo {
        id: account.id,
        kind: account.kind,
        community_id: account.community_id.clone(),
        shop_id: shop_id_of(account),
        label: public_label(account),
    }
}

/// A shop account's shop id.
fn shop_id_of(account: &Account) -> Option<String> {
    (account.kind == AccountKind::Shop)
        .then(|| account.owner_id.clone())
        .flatten()
}

/// The label an audit may show: residents only by pseudonym, others by their label.
fn public_label(account: &Account) -> Option<String> {
    match account.kind {
        AccountKind::Resident => {
            format::is_pseudonym(&account.label).then(|| account.label.clone())
        }
        _ => Some(account.label.clone()),
    }
}
