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

/// Most members a bundle's tar may hold (it holds nine).
const TAR_MEMBERS_MAX: usize = 64;

/// A bundle as the tar `GET /v1/audit/export` and the auditor's page answer (ustar, regular
/// files), read in place: [`TarSource::open`] indexes its members once, each file is then read
/// from its offset. Anything but regular files with plain names is refused.
pub struct TarSource {
    path: std::path::PathBuf,
    members: std::collections::BTreeMap<String, (u64, u64)>,
}

impl TarSource {
    pub fn open(path: &std::path::Path) -> std::io::Result<TarSource> {
        use std::io::{Seek, SeekFrom};
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut file = std::fs::File::open(path)?;
        let length = file.metadata()?.len();
        let mut members = std::collections::BTreeMap::new();
        let mut at = 0u64;
        loop {
            let mut header = [0u8; 512];
            file.seek(SeekFrom::Start(at))?;
            file.read_exact(&mut header)?;
            if header.iter().all(|b| *b == 0) {
                break;
            }
            let field = |from: usize, to: usize| {
                let raw = &header[from..to];
                let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
                String::from_utf8_lossy(&raw[..end]).trim().to_owned()
            };
            let name = field(0, 100);
            let size = u64::from_str_radix(&field(124, 136), 8).map_err(|_| bad("bad tar size"))?;
            let kind = header[156];
            if !(kind == b'0' || kind == 0)
                || name.is_empty()
                || name.contains('/')
                || name.starts_with('.')
            {
                return Err(bad("the tar holds something that is not a bundle file"));
            }
            let start = at + 512;
            if start.saturating_add(size) > length || members.len() >= TAR_MEMBERS_MAX {
                return Err(bad("the tar is cut short or too large"));
            }
            if members.insert(name, (start, size)).is_some() {
                return Err(bad("the tar holds a file twice"));
            }
            at = start + size.div_ceil(512) * 512;
        }
        Ok(TarSource {
            path: path.to_path_buf(),
            members,
        })
    }
}

impl BundleSource for TarSource {
    fn open(&self, name: &str) -> std::io::Result<Box<dyn Read + '_>> {
        use std::io::{Seek, SeekFrom};
        let (start, size) = *self.members.get(name).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name} is not in the tar"),
            )
        })?;
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(start))?;
        Ok(Box::new(file.take(size)))
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

/// Verifies the bundle `source` holds. With `keys`, the manifest and checkpoint signatures are
/// checked; with `retained`, the bundle must contain the retained checkpoint's entry with the
/// same hash and totals (it extends what the auditor saw before).
///
/// The checks run in the order of `ledger-specs/audit-bundle.md` section 10, so the first
/// problem reported is the one the specification (and the independent checker) names.
pub fn verify_bundle(
    source: &dyn BundleSource,
    keys: Option<&KeyRing>,
    retained: Option<&Checkpoint>,
) -> Result<AuditSummary, AuditProblem> {
    let bundle = check_manifest(source, keys, retained)?;
    let accounts = check_accounts(&bundle)?;
    let rules_digest = check_rules(&bundle)?;
    let checkpoints = check_checkpoints(&bundle)?;
    check_retained(&bundle)?;
    let mut balances = Balances::opening(&accounts);
    checkpoints.check_at(&bundle, bundle.from - 1, &bundle.prev_hash, &balances)?;
    let mut journal = Journal::open(&bundle, &accounts)?;
    while journal.check_next_entry(&checkpoints, &mut balances)? {}
    journal.check_head()?;
    check_closing_balances(&accounts, &balances)?;
    check_totals_are_zero(&balances)?;
    journal.check_books_end()?;
    journal.check_counts()?;
    // Last, the digests: a file that differs only in bytes no check above reads.
    let manifest = &bundle.manifest;
    check_digest(manifest, format::ACCOUNTS_FILE, &accounts.digest)?;
    check_digest(manifest, format::RULES_FILE, &rules_digest)?;
    check_digest(manifest, format::CHECKPOINTS_FILE, &checkpoints.digest)?;
    let (entries, postings) = (journal.entries(), journal.postings);
    journal.check_digests(manifest)?;
    Ok(AuditSummary {
        ledger: bundle.ledger.clone(),
        from_seq: bundle.from,
        to_seq: bundle.to,
        head_hash: manifest.head_hash.clone(),
        entries,
        postings,
        accounts: accounts.by_id.len() as i64,
        checkpoints: checkpoints.by_seq.len() as i64,
        signatures_checked: keys.is_some(),
        extends_checkpoint: retained.map(|k| k.seq),
        totals: balances.totals_text(),
    })
}

/// What every check shares: where the files come from, what the verifier was given, and what
/// the manifest claims (its range and hashes already checked for form).
struct Bundle<'a> {
    source: &'a dyn BundleSource,
    keys: Option<&'a KeyRing>,
    retained: Option<&'a Checkpoint>,
    manifest: Manifest,
    ledger: String,
    from: i64,
    to: i64,
    prev_hash: [u8; 32],
    head_hash: [u8; 32],
}

impl Bundle<'_> {
    /// A `manifest_mismatch`: the manifest claims something its files do not bear out.
    fn mismatch(&self, detail: String) -> AuditProblem {
        problem(None, format::MANIFEST_FILE, "manifest_mismatch", detail)
    }
}

/// `manifest.json`: read and parsed, its format, signature (with keys), file list, range and
/// hashes checked for form.
fn check_manifest<'a>(
    source: &'a dyn BundleSource,
    keys: Option<&'a KeyRing>,
    retained: Option<&'a Checkpoint>,
) -> Result<Bundle<'a>, AuditProblem> {
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
        check_manifest_signature(&manifest, ring)?;
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
    Ok(Bundle {
        source,
        keys,
        retained,
        manifest,
        ledger,
        from,
        to,
        prev_hash,
        head_hash,
    })
}

fn check_manifest_signature(manifest: &Manifest, ring: &KeyRing) -> Result<(), AuditProblem> {
    let tag = format::parse_hash(&manifest.signature).ok_or_else(|| {
        problem(
            None,
            format::MANIFEST_FILE,
            "signature_invalid",
            "signature is not 64 hex digits",
        )
    })?;
    ring.verify(&manifest.key_id, &format::manifest_bytes(manifest), &tag)
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
        })
}

/// `accounts.jsonl`: the opening and closing balance of every account the range's history
/// touches, one row per account.
struct Accounts {
    by_id: BTreeMap<Uuid, BundleAccount>,
    kinds: HashMap<Uuid, AccountKind>,
    digest: (u64, String),
}

impl Accounts {
    fn kind_of(&self, id: Uuid) -> Option<AccountKind> {
        self.kinds.get(&id).copied()
    }
}

fn check_accounts(bundle: &Bundle) -> Result<Accounts, AuditProblem> {
    let mut by_id: BTreeMap<Uuid, BundleAccount> = BTreeMap::new();
    let mut file = FileReader::open(bundle.source, format::ACCOUNTS_FILE)?;
    while let Some(line) = file.line(None)? {
        let account = check_account_line(&line, by_id.len(), by_id.last_key_value())?;
        by_id.insert(account.id, account);
    }
    let digest = file.digest()?;
    if by_id.len() as i64 != bundle.manifest.counts.accounts {
        return Err(bundle.mismatch(format!(
            "counts {} accounts, the file holds {}",
            bundle.manifest.counts.accounts,
            by_id.len()
        )));
    }
    let kinds = by_id.values().map(|a| (a.id, a.kind)).collect();
    Ok(Accounts {
        by_id,
        kinds,
        digest,
    })
}

/// One line of `accounts.jsonl`, after `read` lines of which `last` was the last.
fn check_account_line(
    line: &str,
    read: usize,
    last: Option<(&Uuid, &BundleAccount)>,
) -> Result<BundleAccount, AuditProblem> {
    let bad = |kind, detail: String| problem(None, format::ACCOUNTS_FILE, kind, detail);
    let account = format::parse_account_line(line)
        .map_err(|e| bad("malformed", format!("line {}: {e}", read + 1)))?;
    if format::account_line(&account) != format!("{line}\n") {
        return Err(bad(
            "not_canonical",
            format!(
                "account {} is not written as the format requires",
                account.id
            ),
        ));
    }
    if last.is_some_and(|(last, _)| *last >= account.id) {
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
    Ok(account)
}

/// `rules.jsonl`: each line one JSON object, as many as the manifest counts. Returns the
/// file's digest.
fn check_rules(bundle: &Bundle) -> Result<(u64, String), AuditProblem> {
    let mut file = FileReader::open(bundle.source, format::RULES_FILE)?;
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
    let digest = file.digest()?;
    if rules != bundle.manifest.counts.rules {
        return Err(bundle.mismatch(format!(
            "counts {} rule versions, the file holds {rules}",
            bundle.manifest.counts.rules
        )));
    }
    Ok(digest)
}

/// `checkpoints.jsonl`: the stored checkpoints within the range (and at its start), each
/// signed; each is compared with the entries when the journal reaches its entry.
struct Checkpoints {
    by_seq: BTreeMap<i64, Checkpoint>,
    digest: (u64, String),
}

/// The file a retained checkpoint's problems are reported in.
const RETAINED: &str = "retained checkpoint";

impl Checkpoints {
    /// The checkpoints (in the bundle, and the retained one) of entry `seq`, after which the
    /// chain's hash is `hash` and the balances are `balances`, must say the same.
    fn check_at(
        &self,
        bundle: &Bundle,
        seq: i64,
        hash: &[u8; 32],
        balances: &Balances,
    ) -> Result<(), AuditProblem> {
        if let Some(cp) = self.by_seq.get(&seq) {
            check_checkpoint(cp, bundle.from, hash, balances, format::CHECKPOINTS_FILE)?;
        }
        if let Some(kept) = bundle.retained.filter(|k| k.seq == seq) {
            check_checkpoint(kept, bundle.from, hash, balances, RETAINED)?;
        }
        Ok(())
    }
}

fn check_checkpoints(bundle: &Bundle) -> Result<Checkpoints, AuditProblem> {
    let mut by_seq: BTreeMap<i64, Checkpoint> = BTreeMap::new();
    let mut file = FileReader::open(bundle.source, format::CHECKPOINTS_FILE)?;
    while let Some(line) = file.line(None)? {
        let checkpoint = check_checkpoint_line(bundle, &line, &by_seq)?;
        by_seq.insert(checkpoint.seq, checkpoint);
    }
    let digest = file.digest()?;
    if by_seq.len() as i64 != bundle.manifest.counts.checkpoints {
        return Err(bundle.mismatch(format!(
            "counts {} checkpoints, the file holds {}",
            bundle.manifest.counts.checkpoints,
            by_seq.len()
        )));
    }
    Ok(Checkpoints { by_seq, digest })
}

/// One line of `checkpoints.jsonl`, after the checkpoints `before` it.
fn check_checkpoint_line(
    bundle: &Bundle,
    line: &str,
    before: &BTreeMap<i64, Checkpoint>,
) -> Result<Checkpoint, AuditProblem> {
    let bad = |seq, kind, detail: String| problem(seq, format::CHECKPOINTS_FILE, kind, detail);
    let checkpoint = format::parse_checkpoint_line(line)
        .map_err(|e| bad(None, "malformed", format!("line {}: {e}", before.len() + 1)))?;
    let seq = Some(checkpoint.seq);
    if format::checkpoint_line(&checkpoint) != format!("{line}\n") {
        return Err(bad(
            seq,
            "not_canonical",
            "the checkpoint is not written as the format requires".to_owned(),
        ));
    }
    if checkpoint.ledger_id != bundle.ledger
        || checkpoint.seq < bundle.from - 1
        || checkpoint.seq > bundle.to
        || before
            .last_key_value()
            .is_some_and(|(s, _)| *s >= checkpoint.seq)
    {
        return Err(bad(
            seq,
            "malformed",
            "checkpoint out of order, of another ledger or outside the range".to_owned(),
        ));
    }
    if let Some(ring) = bundle.keys {
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
    Ok(checkpoint)
}

/// The checkpoint the auditor kept from before: of this ledger, signed (with keys), and of an
/// entry the bundle shows. Its hash and totals are compared when the journal reaches it.
fn check_retained(bundle: &Bundle) -> Result<(), AuditProblem> {
    let Some(kept) = bundle.retained else {
        return Ok(());
    };
    let (ledger, from, to) = (&bundle.ledger, bundle.from, bundle.to);
    let bad = |seq, detail: String| problem(seq, RETAINED, "checkpoint_mismatch", detail);
    if kept.ledger_id != *ledger {
        return Err(bad(
            None,
            format!(
                "the retained checkpoint is of ledger {:?}, the bundle of {ledger:?}",
                kept.ledger_id
            ),
        ));
    }
    if let Some(ring) = bundle.keys {
        ring.verify(&kept.key_id, &kept.signed_bytes(), &kept.tag)
            .map_err(|e| problem(None, RETAINED, "signature_invalid", format!("{e:?}")))?;
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
    Ok(())
}

/// A checkpoint of an entry against what the bundle implies after that entry.
fn check_checkpoint(
    cp: &Checkpoint,
    from: i64,
    hash: &[u8; 32],
    balances: &Balances,
    file: &str,
) -> Result<(), AuditProblem> {
    let at = Some(cp.seq.max(from));
    if cp.head_hash != *hash {
        return Err(problem(
            at,
            file,
            "checkpoint_mismatch",
            format!(
                "the checkpoint of entry {} records hash {} but the bundle's entry {} hashes to {}",
                cp.seq,
                hex::encode(cp.head_hash),
                cp.seq,
                hex::encode(hash)
            ),
        ));
    }
    if cp.totals != format::totals_from(&balances.totals) {
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
}

/// The running balances, from the opening balances on: one counter per (account, unit) and
/// per (unit, kind).
struct Balances {
    by_account: HashMap<(Uuid, Unit), i64>,
    totals: BTreeMap<(Unit, AccountKind), i64>,
}

impl Balances {
    fn opening(accounts: &Accounts) -> Balances {
        let mut balances = Balances {
            by_account: HashMap::new(),
            totals: BTreeMap::new(),
        };
        for account in accounts.by_id.values() {
            for (unit, opening) in &account.opening {
                balances.by_account.insert((account.id, *unit), *opening);
                *balances.totals.entry((*unit, account.kind)).or_default() += opening;
            }
        }
        balances
    }

    /// Per (unit, kind), the balance as text, in the order a checkpoint signs them.
    fn totals_text(&self) -> Vec<(String, String, String)> {
        format::totals_from(&self.totals)
            .into_iter()
            .map(|t| {
                (
                    t.unit.as_str().to_owned(),
                    t.kind.as_str().to_owned(),
                    crate::ledger::format_minor(t.balance_minor),
                )
            })
            .collect()
    }
}

/// `entries.jsonl` and the four files derived from it, read in step one entry at a time.
struct Journal<'a> {
    bundle: &'a Bundle<'a>,
    accounts: &'a Accounts,
    book_accounts: Vec<BookAccount<'a>>,
    entries: FileReader<'a>,
    derived: Derived<'a>,
    chain: ChainVerifier,
    /// The sequence number the next line must have.
    next: i64,
    last_hash: [u8; 32],
    last_day: Option<String>,
    postings: i64,
}

impl<'a> Journal<'a> {
    fn open(bundle: &'a Bundle<'a>, accounts: &'a Accounts) -> Result<Self, AuditProblem> {
        let book_accounts = accounts
            .by_id
            .values()
            .map(|a| BookAccount {
                id: a.id,
                kind: a.kind,
                opening: &a.opening,
                closing: &a.closing,
            })
            .collect();
        let entries = FileReader::open(bundle.source, format::ENTRIES_FILE)?;
        let derived = Derived::open(bundle.source)?;
        Ok(Journal {
            bundle,
            accounts,
            book_accounts,
            entries,
            derived,
            chain: ChainVerifier::resume(&bundle.ledger, bundle.from, bundle.prev_hash),
            next: bundle.from,
            last_hash: bundle.prev_hash,
            last_day: None,
            postings: 0,
        })
    }

    /// Checks the next entry and its part of every derived file, applies its postings to
    /// `balances` and compares the checkpoints of the entry. Returns false at the end.
    fn check_next_entry(
        &mut self,
        checkpoints: &Checkpoints,
        balances: &mut Balances,
    ) -> Result<bool, AuditProblem> {
        let Some(line) = self.entries.line(Some(self.next))? else {
            return Ok(false);
        };
        let (from, to) = (self.bundle.from, self.bundle.to);
        let at = Some(self.next);
        let bad = |kind, detail: String| problem(at, format::ENTRIES_FILE, kind, detail);
        let entry: PostedEntry =
            format::parse_entry_line(&line).map_err(|e| bad("malformed", e))?;
        self.chain
            .push(&entry)
            .map_err(|p| problem(p.seq, format::ENTRIES_FILE, p.kind.as_str(), p.detail))?;
        if self.next > to {
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
        if self.next == from {
            self.derived
                .check_book_headers(self.bundle, &day_text(&entry), &self.book_accounts)?;
        }
        self.apply_postings(&entry, balances)?;
        let accounts = self.accounts;
        self.derived
            .check_entry(&entry, at, &|id| accounts.kind_of(id))?;
        checkpoints.check_at(self.bundle, self.next, &entry.hash, balances)?;
        self.last_hash = entry.hash;
        self.last_day = Some(day_text(&entry));
        self.next += 1;
        Ok(true)
    }

    /// Adds the entry's postings to the balances; every account must be in `accounts.jsonl`.
    fn apply_postings(
        &mut self,
        entry: &PostedEntry,
        balances: &mut Balances,
    ) -> Result<(), AuditProblem> {
        for posting in &entry.postings {
            let Some(kind) = self.accounts.kind_of(posting.account) else {
                return Err(problem(
                    Some(self.next),
                    format::ENTRIES_FILE,
                    "unknown_account",
                    format!(
                        "account {} is not in {}",
                        posting.account,
                        format::ACCOUNTS_FILE
                    ),
                ));
            };
            let delta = posting.side.signed(posting.amount);
            *balances
                .by_account
                .entry((posting.account, posting.unit))
                .or_default() += delta;
            *balances.totals.entry((posting.unit, kind)).or_default() += delta;
        }
        self.postings += entry.postings.len() as i64;
        Ok(())
    }

    /// The number of entries read.
    fn entries(&self) -> i64 {
        self.next - self.bundle.from
    }

    /// At the end of the journal: it reached `to_seq`, and its last hash is `head_hash`.
    fn check_head(&self) -> Result<(), AuditProblem> {
        let (from, to) = (self.bundle.from, self.bundle.to);
        let last = self.next - 1;
        if last != to {
            return Err(problem(Some(last + 1), format::ENTRIES_FILE, "head_mismatch", format!(
                "the manifest's range ends at entry {to} but the journal ends at {last}: entries are missing from the end"
            )));
        }
        if self.last_hash != self.bundle.head_hash {
            return Err(problem(
                Some(last.max(from)),
                format::ENTRIES_FILE,
                "head_mismatch",
                "the manifest's head hash differs from the last entry's hash",
            ));
        }
        Ok(())
    }

    /// The books' closing assertions (or, for an empty range, their header), and nothing after
    /// the end of any derived file.
    fn check_books_end(&mut self) -> Result<(), AuditProblem> {
        self.derived
            .check_book_ends(self.bundle, self.last_day.as_deref(), &self.book_accounts)?;
        self.derived.expect_end()
    }

    /// The manifest's entry and posting counts.
    fn check_counts(&self) -> Result<(), AuditProblem> {
        let counts = &self.bundle.manifest.counts;
        if self.postings != counts.postings || self.entries() != counts.entries {
            return Err(self.bundle.mismatch(format!(
                "counts {} entries and {} postings; the journal holds {} and {}",
                counts.entries,
                counts.postings,
                self.entries(),
                self.postings
            )));
        }
        Ok(())
    }

    /// The digests of `entries.jsonl` and the derived files, each read to its end first.
    fn check_digests(self, manifest: &Manifest) -> Result<(), AuditProblem> {
        check_digest(manifest, format::ENTRIES_FILE, &self.entries.digest()?)?;
        for file in self.derived.into_files() {
            let name = file.name;
            check_digest(manifest, name, &file.digest()?)?;
        }
        Ok(())
    }
}

/// The files derived from the entries: both CSVs and both books, each compared with what the
/// entries imply as the journal is read.
struct Derived<'a> {
    entries_csv: FileReader<'a>,
    postings_csv: FileReader<'a>,
    journal: FileReader<'a>,
    beancount: FileReader<'a>,
}

impl<'a> Derived<'a> {
    fn open(source: &'a dyn BundleSource) -> Result<Self, AuditProblem> {
        let mut derived = Derived {
            entries_csv: FileReader::open(source, format::ENTRIES_CSV)?,
            postings_csv: FileReader::open(source, format::POSTINGS_CSV)?,
            journal: FileReader::open(source, format::BOOKS_JOURNAL)?,
            beancount: FileReader::open(source, format::BOOKS_BEANCOUNT)?,
        };
        derived
            .entries_csv
            .expect(format::ENTRIES_CSV_HEADER, None, "the header")?;
        derived
            .postings_csv
            .expect(format::POSTINGS_CSV_HEADER, None, "the header")?;
        Ok(derived)
    }

    /// Both books, journal first.
    fn books(&mut self) -> [(Book, &mut FileReader<'a>); 2] {
        [
            (Book::Journal, &mut self.journal),
            (Book::Beancount, &mut self.beancount),
        ]
    }

    /// The books' header, at the range's first entry, whose day is `first_day`.
    fn check_book_headers(
        &mut self,
        bundle: &Bundle,
        first_day: &str,
        accounts: &[BookAccount<'_>],
    ) -> Result<(), AuditProblem> {
        let (ledger, from, to) = (&bundle.ledger, bundle.from, bundle.to);
        for (book, file) in self.books() {
            let header = format::book_header(book, ledger, from, to, first_day, accounts);
            file.expect(&header, None, "the header")?;
        }
        Ok(())
    }

    /// The entry's records and transactions.
    fn check_entry(
        &mut self,
        entry: &PostedEntry,
        at: Option<i64>,
        kind_of: &dyn Fn(Uuid) -> Option<AccountKind>,
    ) -> Result<(), AuditProblem> {
        self.entries_csv
            .expect(&format::entry_csv(entry), at, "the entry's record")?;
        self.postings_csv
            .expect(&format::postings_csv(entry), at, "the entry's records")?;
        for (book, file) in self.books() {
            file.expect(
                &format::book_entry(book, entry, kind_of),
                at,
                "the entry's transaction",
            )?;
        }
        Ok(())
    }

    /// The books' closing assertions after the day of the last entry, or for an empty range
    /// (no last day) the header alone.
    fn check_book_ends(
        &mut self,
        bundle: &Bundle,
        last_day: Option<&str>,
        accounts: &[BookAccount<'_>],
    ) -> Result<(), AuditProblem> {
        let (ledger, from, to) = (&bundle.ledger, bundle.from, bundle.to);
        for (book, file) in self.books() {
            match last_day {
                Some(day) => file.expect(
                    &format::book_footer(book, day, accounts),
                    None,
                    "the closing assertions",
                )?,
                None => file.expect(
                    &format::book_header(book, ledger, from, to, "", &[]),
                    None,
                    "the header",
                )?,
            }
        }
        Ok(())
    }

    /// Nothing may follow in any derived file.
    fn expect_end(&mut self) -> Result<(), AuditProblem> {
        for file in [
            &mut self.entries_csv,
            &mut self.postings_csv,
            &mut self.journal,
            &mut self.beancount,
        ] {
            file.expect_end()?;
        }
        Ok(())
    }

    fn into_files(self) -> [FileReader<'a>; 4] {
        [
            self.entries_csv,
            self.postings_csv,
            self.journal,
            self.beancount,
        ]
    }
}

/// Every account's closing balance equals its opening balance plus its postings, and respects
/// its kind's floor and units.
fn check_closing_balances(accounts: &Accounts, balances: &Balances) -> Result<(), AuditProblem> {
    for account in accounts.by_id.values() {
        let units: std::collections::BTreeSet<Unit> = account
            .closing
            .keys()
            .chain(account.opening.keys())
            .copied()
            .chain(
                balances
                    .by_account
                    .keys()
                    .filter(|(a, _)| *a == account.id)
                    .map(|(_, u)| *u),
            )
            .collect();
        for unit in units {
            check_closing_balance(account, unit, balances)?;
        }
    }
    Ok(())
}

fn check_closing_balance(
    account: &BundleAccount,
    unit: Unit,
    balances: &Balances,
) -> Result<(), AuditProblem> {
    let bad = |kind, detail: String| problem(None, format::ACCOUNTS_FILE, kind, detail);
    let from_postings = balances
        .by_account
        .get(&(account.id, unit))
        .copied()
        .unwrap_or(0);
    let closing = account.closing.get(&unit).copied().unwrap_or(0);
    if from_postings != closing {
        return Err(bad(
            "balance_mismatch",
            format!(
                "account {} {unit}: closing balance {} but opening balance and postings sum to {}",
                account.id,
                crate::ledger::format_minor(closing),
                crate::ledger::format_minor(from_postings)
            ),
        ));
    }
    match account.kind.floor(unit) {
        None if closing != 0 => Err(bad(
            "policy_violated",
            format!("{} account {} holds {unit}", account.kind, account.id),
        )),
        Some(Floor::Zero) if closing < 0 => Err(bad(
            "policy_violated",
            format!(
                "{} account {} is below zero in {unit}",
                account.kind, account.id
            ),
        )),
        _ => Ok(()),
    }
}

/// Every unit's balances sum to zero over all accounts.
fn check_totals_are_zero(balances: &Balances) -> Result<(), AuditProblem> {
    for unit in Unit::ALL {
        let sum: i64 = balances
            .totals
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
    Ok(())
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
    (bytes, sha256): &(u64, String),
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
    if listed.sha256 != *sha256 || listed.bytes != *bytes {
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

fn day_text(entry: &PostedEntry) -> String {
    crate::calendar::format_date(crate::calendar::day_of(entry.posted_at_micros))
}
