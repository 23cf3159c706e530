//! Offline verification of an audit bundle: no network, no database, nothing but the bundle's
//! files (through [`BundleSource`]) and, optionally, the key file and a checkpoint the auditor
//! kept. It recomputes the hash chain, re-renders every derived file from the entries and
//! compares bytes, recomputes every balance and total, and checks the manifest and its
//! signature. It reads each file once, front to back; memory is one counter per (account, unit).
//! The first problem is reported with the sequence number where it is, when it has one.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::format::{self, Book, BookAccount, BundleAccount, Checkpoint, Manifest};
use crate::keys::KeyRing;
use crate::ledger::chain::genesis_hash;
use crate::ledger::verify::ChainVerifier;
use crate::ledger::{AccountKind, Floor, PostedEntry, Unit};

/// Longest line read from a bundle file (and largest manifest). The longest sound entry line
/// (64 postings, a full memo and metadata) is about 16 KiB; a longer line is refused rather
/// than buffered without limit.
pub const LINE_MAX_BYTES: u64 = 1 << 20;

/// Where the bundle's files come from (a directory, a tar, memory in tests).
pub trait BundleSource {
    fn open(&self, name: &str) -> std::io::Result<Box<dyn Read + '_>>;
}

/// A bundle in a directory.
pub struct DirSource(pub std::path::PathBuf);

impl BundleSource for DirSource {
    fn open(&self, name: &str) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(std::fs::File::open(self.0.join(name))?))
    }
}

/// The first problem found. `kind` is a stable string (see `ledger-specs/audit-bundle.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// The sequence number of the first bad entry, when the problem is in the journal.
    pub seq: Option<i64>,
    /// The file the problem was found in.
    pub file: String,
    pub kind: &'static str,
    pub detail: String,
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(
                f,
                "entry {seq}: {} in {}: {}",
                self.kind, self.file, self.detail
            ),
            None => write!(f, "{} in {}: {}", self.kind, self.file, self.detail),
        }
    }
}

/// What a clean verification saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditSummary {
    pub ledger: String,
    pub from_seq: i64,
    pub to_seq: i64,
    pub head_hash: String,
    pub entries: i64,
    pub postings: i64,
    pub accounts: i64,
    pub checkpoints: i64,
    /// Whether the manifest and checkpoint signatures were checked (keys were given).
    pub signatures_checked: bool,
    /// The sequence number of the retained checkpoint the bundle was shown to extend.
    pub extends_checkpoint: Option<i64>,
    /// Per (unit, kind), the balance after the last entry (the same totals a checkpoint signs).
    pub totals: Vec<(String, String, String)>,
}

fn problem(
    seq: Option<i64>,
    file: &str,
    kind: &'static str,
    detail: impl Into<String>,
) -> AuditProblem {
    AuditProblem {
        seq,
        file: file.to_owned(),
        kind,
        detail: detail.into(),
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// One bundle file read front to back.
struct FileReader<'a> {
    name: &'static str,
    reader: BufReader<Hashing<Box<dyn Read + 'a>>>,
}

impl<'a> FileReader<'a> {
    fn open(source: &'a dyn BundleSource, name: &'static str) -> Result<Self, AuditProblem> {
        let inner = source
            .open(name)
            .map_err(|e| problem(None, name, "file_missing", format!("cannot open: {e}")))?;
        Ok(FileReader {
            name,
            reader: BufReader::with_capacity(
                64 * 1024,
                Hashing {
                    inner,
                    hasher: Sha256::new(),
                    bytes: 0,
                },
            ),
        })
    }

    fn io(&self, e: std::io::Error) -> AuditProblem {
        problem(None, self.name, "file_unreadable", e.to_string())
    }

    /// The next line (without its newline), or `None` at the end.
    fn line(&mut self, seq: Option<i64>) -> Result<Option<String>, AuditProblem> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(LINE_MAX_BYTES)
            .read_until(b'\n', &mut buf)
            .map_err(|e| self.io(e))?;
        if n == 0 {
            return Ok(None);
        }
        if n as u64 == LINE_MAX_BYTES && buf.last() != Some(&b'\n') {
            return Err(problem(
                seq,
                self.name,
                "malformed",
                format!("a line is longer than {LINE_MAX_BYTES} bytes"),
            ));
        }
        if buf.pop() != Some(b'\n') {
            return Err(problem(
                seq,
                self.name,
                "malformed",
                "the last line has no newline",
            ));
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| problem(seq, self.name, "malformed", "a line is not UTF-8"))
    }

    /// The next `expected.len()` bytes must be `expected`.
    fn expect(&mut self, expected: &str, seq: Option<i64>, what: &str) -> Result<(), AuditProblem> {
        let mut buf = vec![0u8; expected.len()];
        let mut filled = 0;
        while filled < buf.len() {
            let n = self
                .reader
                .read(&mut buf[filled..])
                .map_err(|e| self.io(e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if &buf[..filled] != expected.as_bytes() {
            let at = buf[..filled]
                .iter()
                .zip(expected.as_bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(filled);
            return Err(problem(
                seq,
                self.name,
                "file_mismatch",
                format!("{what} differs from what the entries imply (at byte {at} of its text)"),
            ));
        }
        Ok(())
    }

    /// Nothing may follow.
    fn expect_end(&mut self) -> Result<(), AuditProblem> {
        let mut rest = [0u8; 1];
        if self.reader.read(&mut rest).map_err(|e| self.io(e))? != 0 {
            return Err(problem(
                None,
                self.name,
                "file_mismatch",
                "unexpected data after the end",
            ));
        }
        Ok(())
    }

    /// Reads what is left (so the digest covers the whole file) and returns (bytes, sha256).
    fn digest(mut self) -> Result<(u64, String), AuditProblem> {
        std::io::copy(&mut self.reader, &mut std::io::sink()).map_err(|e| self.io(e))?;
        let hashing = self.reader.into_inner();
        Ok((hashing.bytes, hex::encode(hashing.hasher.finalize())))
    }
}

fn check_digest(
    manifest: &Manifest,
    name: &str,
    (bytes, sha256): (u64, String),
) -> Result<(), AuditProblem> {
    let listed = manifest
        .files
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| {
            problem(
                None,
                format::MANIFEST_FILE,
                "manifest_mismatch",
                format!("{name} is not listed"),
            )
        })?;
    if listed.sha256 != sha256 || listed.bytes != bytes {
        return Err(problem(
            None,
            name,
            "digest_mismatch",
            format!(
                "the file has {bytes} bytes and SHA-256 {sha256}; the manifest lists {} bytes and {}",
                listed.bytes, listed.sha256
            ),
        ));
    }
    Ok(())
}

/// Verifies the bundle `source` holds. With `keys`, the manifest and checkpoint signatures are
/// checked; with `retained`, the bundle must contain the retained checkpoint's entry with the
/// same hash and totals (it extends what the auditor saw before).
pub fn verify_bundle(
    source: &dyn BundleSource,
    keys: Option<&KeyRing>,
    retained: Option<&Checkpoint>,
) -> Result<AuditSummary, AuditProblem> {
    // The manifest first: what the bundle claims.
    let mut text = String::new();
    source
        .open(format::MANIFEST_FILE)
        .and_then(|r| r.take(LINE_MAX_BYTES).read_to_string(&mut text))
        .map_err(|e| problem(None, format::MANIFEST_FILE, "file_missing", e.to_string()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| problem(None, format::MANIFEST_FILE, "malformed", e.to_string()))?;
    let mf = |detail: String| problem(None, format::MANIFEST_FILE, "manifest_mismatch", detail);
    if manifest.format != format::BUNDLE_FORMAT {
        return Err(mf(format!("unknown format {:?}", manifest.format)));
    }
    if let Some(ring) = keys {
        let tag = format::parse_hash(&manifest.signature).ok_or_else(|| {
            problem(
                None,
                format::MANIFEST_FILE,
                "signature_invalid",
                "signature is not 64 hex digits",
            )
        })?;
        ring.verify(&manifest.key_id, &format::manifest_bytes(&manifest), &tag)
            .map_err(|e| {
                problem(
                    None,
                    format::MANIFEST_FILE,
                    "signature_invalid",
                    format!(
                        "the manifest's signature does not verify with key {:?}: {e:?}",
                        manifest.key_id
                    ),
                )
            })?;
    }
    let names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    if names != format::FILES {
        return Err(mf(format!(
            "lists files {names:?}, expected {:?}",
            format::FILES
        )));
    }
    let ledger = manifest.ledger.clone();
    let (from, to) = (manifest.from_seq, manifest.to_seq);
    if from < 1 || to < from - 1 {
        return Err(mf(format!("range {from}..={to} is not a range")));
    }
    let prev_hash = format::parse_hash(&manifest.prev_hash)
        .ok_or_else(|| mf("prev_hash is not 64 hex digits".to_owned()))?;
    if from == 1 && prev_hash != genesis_hash(&ledger) {
        return Err(mf(
            "the range starts at entry 1 but prev_hash is not the genesis hash".to_owned(),
        ));
    }
    let head_hash = format::parse_hash(&manifest.head_hash)
        .ok_or_else(|| mf("head_hash is not 64 hex digits".to_owned()))?;

    // Accounts: the opening and closing balance of every account the range's history touches.
    let mut accounts: BTreeMap<Uuid, BundleAccount> = BTreeMap::new();
    let mut file = FileReader::open(source, format::ACCOUNTS_FILE)?;
    while let Some(line) = file.line(None)? {
        let bad = |kind, detail: String| problem(None, format::ACCOUNTS_FILE, kind, detail);
        let account = format::parse_account_line(&line)
            .map_err(|e| bad("malformed", format!("line {}: {e}", accounts.len() + 1)))?;
        if format::account_line(&account) != format!("{line}\n") {
            return Err(bad(
                "not_canonical",
                format!(
                    "account {} is not written as the format requires",
                    account.id
                ),
            ));
        }
        if accounts
            .last_key_value()
            .is_some_and(|(last, _)| *last >= account.id)
        {
            return Err(bad(
                "malformed",
                format!("account {} is out of order", account.id),
            ));
        }
        if account.kind == AccountKind::Resident
            && account
                .label
                .as_deref()
                .is_some_and(|l| !format::is_pseudonym(l))
        {
            return Err(bad(
                "not_pseudonymous",
                format!(
                    "resident account {} carries a label that is not a pseudonym",
                    account.id
                ),
            ));
        }
        accounts.insert(account.id, account);
    }
    let accounts_digest = file.digest()?;
    if accounts.len() as i64 != manifest.counts.accounts {
        return Err(mf(format!(
            "counts {} accounts, the file holds {}",
            manifest.counts.accounts,
            accounts.len()
        )));
    }

    // Rule versions: each line one JSON object.
    let mut file = FileReader::open(source, format::RULES_FILE)?;
    let mut rules = 0i64;
    while let Some(line) = file.line(None)? {
        rules += 1;
        if !serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| v.is_object()) {
            return Err(problem(
                None,
                format::RULES_FILE,
                "malformed",
                format!("line {rules} is not a JSON object"),
            ));
        }
    }
    let rules_digest = file.digest()?;
    if rules != manifest.counts.rules {
        return Err(mf(format!(
            "counts {} rule versions, the file holds {rules}",
            manifest.counts.rules
        )));
    }

    // Checkpoints within the range (and at its start), each signed.
    let mut checkpoints: BTreeMap<i64, Checkpoint> = BTreeMap::new();
    let mut file = FileReader::open(source, format::CHECKPOINTS_FILE)?;
    while let Some(line) = file.line(None)? {
        let bad = |seq, kind, detail: String| problem(seq, format::CHECKPOINTS_FILE, kind, detail);
        let checkpoint = format::parse_checkpoint_line(&line).map_err(|e| {
            bad(
                None,
                "malformed",
                format!("line {}: {e}", checkpoints.len() + 1),
            )
        })?;
        let seq = Some(checkpoint.seq);
        if format::checkpoint_line(&checkpoint) != format!("{line}\n") {
            return Err(bad(
                seq,
                "not_canonical",
                "the checkpoint is not written as the format requires".to_owned(),
            ));
        }
        if checkpoint.ledger_id != ledger
            || checkpoint.seq < from - 1
            || checkpoint.seq > to
            || checkpoints
                .last_key_value()
                .is_some_and(|(s, _)| *s >= checkpoint.seq)
        {
            return Err(bad(
                seq,
                "malformed",
                "checkpoint out of order, of another ledger or outside the range".to_owned(),
            ));
        }
        if let Some(ring) = keys {
            ring.verify(
                &checkpoint.key_id,
                &checkpoint.signed_bytes(),
                &checkpoint.tag,
            )
            .map_err(|e| {
                bad(
                    seq,
                    "signature_invalid",
                    format!(
                        "checkpoint signature does not verify with key {:?}: {e:?}",
                        checkpoint.key_id
                    ),
                )
            })?;
        }
        checkpoints.insert(checkpoint.seq, checkpoint);
    }
    let checkpoints_digest = file.digest()?;
    if checkpoints.len() as i64 != manifest.counts.checkpoints {
        return Err(mf(format!(
            "counts {} checkpoints, the file holds {}",
            manifest.counts.checkpoints,
            checkpoints.len()
        )));
    }

    // The checkpoint the auditor kept from before.
    if let Some(kept) = retained {
        let bad = |seq, detail: String| {
            problem(seq, "retained checkpoint", "checkpoint_mismatch", detail)
        };
        if kept.ledger_id != ledger {
            return Err(bad(
                None,
                format!(
                    "the retained checkpoint is of ledger {:?}, the bundle of {ledger:?}",
                    kept.ledger_id
                ),
            ));
        }
        if let Some(ring) = keys {
            ring.verify(&kept.key_id, &kept.signed_bytes(), &kept.tag)
                .map_err(|e| {
                    problem(
                        None,
                        "retained checkpoint",
                        "signature_invalid",
                        format!("{e:?}"),
                    )
                })?;
        }
        if kept.seq > to {
            return Err(bad(
                Some(to + 1),
                format!("the bundle ends at entry {to} but the retained checkpoint covers entry {}: history was truncated, or export a longer range", kept.seq),
            ));
        }
        if kept.seq < from - 1 {
            return Err(bad(None, format!("the bundle starts at entry {from}, after the retained checkpoint (entry {}); export from entry {} or earlier", kept.seq, kept.seq + 1)));
        }
    }

    // Running state: balances from the opening balances, totals per (unit, kind).
    let mut balances: HashMap<(Uuid, Unit), i64> = HashMap::new();
    let mut totals: BTreeMap<(Unit, AccountKind), i64> = BTreeMap::new();
    for account in accounts.values() {
        for (unit, opening) in &account.opening {
            balances.insert((account.id, *unit), *opening);
            *totals.entry((*unit, account.kind)).or_default() += opening;
        }
    }
    let check_checkpoint = |cp: &Checkpoint,
                            hash: &[u8; 32],
                            totals: &BTreeMap<(Unit, AccountKind), i64>,
                            file: &str|
     -> Result<(), AuditProblem> {
        let at = Some(cp.seq.max(from));
        if cp.head_hash != *hash {
            return Err(problem(
                at,
                file,
                "checkpoint_mismatch",
                format!(
                "the checkpoint of entry {} records hash {} but the bundle's entry {} hashes to {}",
                cp.seq, hex::encode(cp.head_hash), cp.seq, hex::encode(hash)
            ),
            ));
        }
        if cp.totals != format::totals_from(totals) {
            return Err(problem(
                at,
                file,
                "checkpoint_mismatch",
                format!(
                    "the checkpoint of entry {} records other totals than the bundle implies there",
                    cp.seq
                ),
            ));
        }
        Ok(())
    };
    let check_at = |seq: i64, hash: &[u8; 32], totals: &BTreeMap<(Unit, AccountKind), i64>| {
        if let Some(cp) = checkpoints.get(&seq) {
            check_checkpoint(cp, hash, totals, format::CHECKPOINTS_FILE)?;
        }
        if let Some(kept) = retained.filter(|k| k.seq == seq) {
            check_checkpoint(kept, hash, totals, "retained checkpoint")?;
        }
        Ok::<(), AuditProblem>(())
    };
    check_at(from - 1, &prev_hash, &totals)?;

    // The journal, with every file derived from it read in step.
    let book_accounts: Vec<BookAccount<'_>> = accounts
        .values()
        .map(|a| BookAccount {
            id: a.id,
            kind: a.kind,
            opening: &a.opening,
            closing: &a.closing,
        })
        .collect();
    let kinds: HashMap<Uuid, AccountKind> = accounts.values().map(|a| (a.id, a.kind)).collect();
    let kind_of = |id: Uuid| kinds.get(&id).copied();
    let mut entries = FileReader::open(source, format::ENTRIES_FILE)?;
    let mut entries_csv = FileReader::open(source, format::ENTRIES_CSV)?;
    let mut postings_csv = FileReader::open(source, format::POSTINGS_CSV)?;
    let mut journal = FileReader::open(source, format::BOOKS_JOURNAL)?;
    let mut beancount = FileReader::open(source, format::BOOKS_BEANCOUNT)?;
    entries_csv.expect(format::ENTRIES_CSV_HEADER, None, "the header")?;
    postings_csv.expect(format::POSTINGS_CSV_HEADER, None, "the header")?;
    let mut chain = ChainVerifier::resume(&ledger, from, prev_hash);
    let mut next = from;
    let mut last_hash = prev_hash;
    let mut last_day: Option<String> = None;
    let mut postings = 0i64;
    while let Some(line) = entries.line(Some(next))? {
        let at = Some(next);
        let bad = |kind, detail: String| problem(at, format::ENTRIES_FILE, kind, detail);
        let entry: PostedEntry =
            format::parse_entry_line(&line).map_err(|e| bad("malformed", e))?;
        chain
            .push(&entry)
            .map_err(|p| problem(p.seq, format::ENTRIES_FILE, p.kind.as_str(), p.detail))?;
        if next > to {
            return Err(bad(
                "head_mismatch",
                format!(
                    "the journal continues past entry {to}, where the manifest says the range ends"
                ),
            ));
        }
        if format::entry_line(&entry) != format!("{line}\n") {
            return Err(bad(
                "not_canonical",
                "the line is not written as the format requires".to_owned(),
            ));
        }
        if next == from {
            let first_day = day_text(&entry);
            journal.expect(
                &format::book_header(Book::Journal, &ledger, from, to, &first_day, &book_accounts),
                None,
                "the header",
            )?;
            beancount.expect(
                &format::book_header(
                    Book::Beancount,
                    &ledger,
                    from,
                    to,
                    &first_day,
                    &book_accounts,
                ),
                None,
                "the header",
            )?;
        }
        for posting in &entry.postings {
            let Some(kind) = kind_of(posting.account) else {
                return Err(bad(
                    "unknown_account",
                    format!(
                        "account {} is not in {}",
                        posting.account,
                        format::ACCOUNTS_FILE
                    ),
                ));
            };
            let delta = posting.side.signed(posting.amount);
            *balances.entry((posting.account, posting.unit)).or_default() += delta;
            *totals.entry((posting.unit, kind)).or_default() += delta;
        }
        postings += entry.postings.len() as i64;
        entries_csv.expect(&format::entry_csv(&entry), at, "the entry's record")?;
        postings_csv.expect(&format::postings_csv(&entry), at, "the entry's records")?;
        journal.expect(
            &format::book_entry(Book::Journal, &entry, &kind_of),
            at,
            "the entry's transaction",
        )?;
        beancount.expect(
            &format::book_entry(Book::Beancount, &entry, &kind_of),
            at,
            "the entry's transaction",
        )?;
        check_at(next, &entry.hash, &totals)?;
        last_hash = entry.hash;
        last_day = Some(day_text(&entry));
        next += 1;
    }
    let last = next - 1;
    if last != to {
        return Err(problem(Some(last + 1), format::ENTRIES_FILE, "head_mismatch", format!(
            "the manifest's range ends at entry {to} but the journal ends at {last}: entries are missing from the end"
        )));
    }
    if last_hash != head_hash {
        return Err(problem(
            Some(last.max(from)),
            format::ENTRIES_FILE,
            "head_mismatch",
            "the manifest's head hash differs from the last entry's hash",
        ));
    }
    // Every account's closing balance equals its opening balance plus its postings.
    for account in accounts.values() {
        let bad = |kind, detail: String| problem(None, format::ACCOUNTS_FILE, kind, detail);
        let units: std::collections::BTreeSet<Unit> = account
            .closing
            .keys()
            .chain(account.opening.keys())
            .copied()
            .chain(
                balances
                    .keys()
                    .filter(|(a, _)| *a == account.id)
                    .map(|(_, u)| *u),
            )
            .collect();
        for unit in units {
            let from_postings = balances.get(&(account.id, unit)).copied().unwrap_or(0);
            let closing = account.closing.get(&unit).copied().unwrap_or(0);
            if from_postings != closing {
                return Err(bad("balance_mismatch", format!(
                    "account {} {unit}: closing balance {} but opening balance and postings sum to {}",
                    account.id,
                    crate::ledger::format_minor(closing),
                    crate::ledger::format_minor(from_postings)
                )));
            }
            match account.kind.floor(unit) {
                None if closing != 0 => {
                    return Err(bad(
                        "policy_violated",
                        format!("{} account {} holds {unit}", account.kind, account.id),
                    ))
                }
                Some(Floor::Zero) if closing < 0 => {
                    return Err(bad(
                        "policy_violated",
                        format!(
                            "{} account {} is below zero in {unit}",
                            account.kind, account.id
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    for unit in Unit::ALL {
        let sum: i64 = totals
            .iter()
            .filter(|((u, _), _)| *u == unit)
            .map(|(_, t)| t)
            .sum();
        if sum != 0 {
            return Err(problem(
                None,
                format::ACCOUNTS_FILE,
                "balance_mismatch",
                format!(
                    "the {unit} balances of all accounts sum to {} instead of zero",
                    crate::ledger::format_minor(sum)
                ),
            ));
        }
    }
    match &last_day {
        Some(day) => {
            journal.expect(
                &format::book_footer(Book::Journal, day, &book_accounts),
                None,
                "the closing assertions",
            )?;
            beancount.expect(
                &format::book_footer(Book::Beancount, day, &book_accounts),
                None,
                "the closing assertions",
            )?;
        }
        None => {
            journal.expect(
                &format::book_header(Book::Journal, &ledger, from, to, "", &[]),
                None,
                "the header",
            )?;
            beancount.expect(
                &format::book_header(Book::Beancount, &ledger, from, to, "", &[]),
                None,
                "the header",
            )?;
        }
    }
    for file in [
        &mut entries_csv,
        &mut postings_csv,
        &mut journal,
        &mut beancount,
    ] {
        file.expect_end()?;
    }

    if postings != manifest.counts.postings || last - from + 1 != manifest.counts.entries {
        return Err(mf(format!(
            "counts {} entries and {} postings; the journal holds {} and {postings}",
            manifest.counts.entries,
            manifest.counts.postings,
            last - from + 1
        )));
    }
    // Last, the digests: a file that differs only in bytes no check above reads.
    check_digest(&manifest, format::ACCOUNTS_FILE, accounts_digest)?;
    check_digest(&manifest, format::RULES_FILE, rules_digest)?;
    check_digest(&manifest, format::CHECKPOINTS_FILE, checkpoints_digest)?;
    check_digest(&manifest, format::ENTRIES_FILE, entries.digest()?)?;
    check_digest(&manifest, format::ENTRIES_CSV, entries_csv.digest()?)?;
    check_digest(&manifest, format::POSTINGS_CSV, postings_csv.digest()?)?;
    check_digest(&manifest, format::BOOKS_JOURNAL, journal.digest()?)?;
    check_digest(&manifest, format::BOOKS_BEANCOUNT, beancount.digest()?)?;

    Ok(AuditSummary {
        ledger,
        from_seq: from,
        to_seq: to,
        head_hash: manifest.head_hash.clone(),
        entries: last - from + 1,
        postings,
        accounts: accounts.len() as i64,
        checkpoints: checkpoints.len() as i64,
        signatures_checked: keys.is_some(),
        extends_checkpoint: retained.map(|k| k.seq),
        totals: format::totals_from(&totals)
            .into_iter()
            .map(|t| {
                (
                    t.unit.as_str().to_owned(),
                    t.kind.as_str().to_owned(),
                    crate::ledger::format_minor(t.balance_minor),
                )
            })
            .collect(),
    })
}

fn day_text(entry: &PostedEntry) -> String {
    crate::calendar::format_date(crate::calendar::day_of(entry.posted_at_micros))
}
