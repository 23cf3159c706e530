//! Audit bundles on both backends: export, offline verification, determinism, the
//! tamper suite, retained checkpoints, ranges, and books checked by the real hledger and
//! bean-check.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aixin::audit::export::{export_bundle, Bound};
use aixin::audit::format::{self, Checkpoint};
use aixin::audit::verify::{verify_bundle, AuditProblem, AuditSummary, DirSource};
use aixin::clock::{Clock, Entropy};
use aixin::keys::KeyRing;
use aixin::ledger::{AccountKind, EntryKind, Unit, WriteRequest};
use aixin::store::{NewAccount, Opened, Outcome};
use common::{amount, transfer, Harness, T0};
use uuid::Uuid;

const DAY: i64 = 86_400_000_000;

fn ring() -> KeyRing {
    KeyRing::from_parts([1; 32], "k1", [2; 32])
}

/// The accounts of the test history.
#[derive(Clone, Copy)]
struct Books {
    issuance: Uuid,
    alice: Uuid,
    bob: Uuid,
    shop: Uuid,
    settlement: Uuid,
    expiry: Uuid,
    adjustment: Uuid,
}

async fn open(h: &Harness, kind: AccountKind, owner: Option<&str>, label: &str) -> Uuid {
    let account = NewAccount {
        id: h.entropy.uuid(),
        kind,
        owner_id: owner.map(str::to_owned),
        community_id: Some("binhu".to_owned()),
        label: label.to_owned(),
    };
    match h.store.open_account("test", &account, T0).await.unwrap() {
        Opened::Created(a) => a.id,
        other => panic!("{other:?}"),
    }
}

async fn post(
    h: &Harness,
    key: &str,
    draft: aixin::ledger::EntryDraft,
) -> aixin::ledger::PostedEntry {
    let request = WriteRequest::new(
        key.to_owned(),
        "token:tester".to_owned(),
        draft,
        h.entropy.uuid(),
    );
    match h
        .store
        .commit_batch("test", h.clock.now_micros(), &[request])
        .await
        .unwrap()
        .remove(0)
    {
        Outcome::Posted(e) => e,
        other => panic!("{key}: {other:?}"),
    }
}

/// A small history over four days with every entry kind, both units, text that CSV must quote
/// or neutralise, and a resident whose account label is a name (which no bundle may carry).
async fn history(h: &Harness, alice_redeems: &str) -> Books {
    let b = Books {
        issuance: open(h, AccountKind::Issuance, None, "滨湖社区积分发放").await,
        alice: open(h, AccountKind::Resident, Some("r-alice"), "AX-7K2M9QXD").await,
        bob: open(h, AccountKind::Resident, Some("13800000001"), "王秀英").await,
        shop: open(h, AccountKind::Shop, Some("shop-1"), "爱心超市").await,
        settlement: open(h, AccountKind::Settlement, None, "settlement").await,
        expiry: open(h, AccountKind::Expiry, None, "expiry").await,
        adjustment: open(h, AccountKind::Adjustment, None, "adjustment").await,
    };
    // The community's organisation unit and two versions of a rule (rules.jsonl).
    let earning = &h.stores.earning;
    earning
        .insert_org_unit(
            "test",
            &aixin::model::OrgUnit {
                id: "binhu".to_owned(),
                parent_id: None,
                level: "community".to_owned(),
                name_zh: "滨湖社区".to_owned(),
                name_en: "Binhu".to_owned(),
                community: None,
                created_at_micros: T0,
            },
        )
        .await
        .unwrap();
    for (version, points) in [(1, "10"), (2, "12.5")] {
        let rule = aixin::model::Rule {
            rule_id: "visit".to_owned(),
            version,
            community_id: "binhu".to_owned(),
            category: "home-visit".to_owned(),
            name_zh: "入户走访".to_owned(),
            name_en: "Home visit, \"with care\"".to_owned(),
            mode: aixin::model::RuleMode::PerHour,
            points: amount(points),
            records_hours: true,
            cap_day: Some(amount("30")),
            cap_month: None,
            valid_from: aixin::calendar::parse_date("2026-01-01").unwrap(),
            valid_until: None,
            created_by: "token:staff".to_owned(),
            created_at_micros: T0 + version,
        };
        assert!(earning.insert_rule("test", &rule).await.unwrap());
    }
    h.clock.set(T0 + 3_600_000_000);
    let mut earn = transfer(EntryKind::Earn, b.issuance, b.alice, Unit::Points, "20");
    earn.postings
        .extend(transfer(EntryKind::Earn, b.issuance, b.alice, Unit::Hours, "2.5").postings);
    earn.memo = "入户走访, \"home\" visit\nsecond line".to_owned();
    earn.metadata = BTreeMap::from([("activity".to_owned(), "visit, 2h".to_owned())]);
    post(h, "earn-1", earn).await;
    post(
        h,
        "earn-2",
        transfer(EntryKind::Earn, b.issuance, b.bob, Unit::Points, "15"),
    )
    .await;
    h.clock.advance(DAY);
    let redeem = post(
        h,
        "redeem-1",
        transfer(
            EntryKind::Redeem,
            b.alice,
            b.shop,
            Unit::Points,
            alice_redeems,
        ),
    )
    .await;
    post(
        h,
        "redeem-2",
        transfer(EntryKind::Redeem, b.bob, b.shop, Unit::Points, "3"),
    )
    .await;
    let mut refund = transfer(EntryKind::Refund, b.shop, b.alice, Unit::Points, "2");
    refund.reverses = Some(redeem.id);
    post(h, "refund-1", refund).await;
    h.clock.advance(DAY);
    post(
        h,
        "settle-1",
        transfer(EntryKind::Settle, b.shop, b.settlement, Unit::Points, "6"),
    )
    .await;
    post(
        h,
        "expire-1",
        transfer(EntryKind::Expire, b.bob, b.expiry, Unit::Points, "4"),
    )
    .await;
    // A memo and a metadata value a spreadsheet would take for formulas (entries.csv
    // neutralises them).
    let mut adjust = transfer(
        EntryKind::Adjust,
        b.adjustment,
        b.alice,
        Unit::Points,
        "0.01",
    );
    adjust.memo = "=1+2".to_owned();
    adjust.metadata = BTreeMap::from([("note".to_owned(), "@SUM(A1)".to_owned())]);
    post(h, "adjust-1", adjust).await;
    h.clock.advance(DAY);
    let mut earn = transfer(EntryKind::Earn, b.issuance, b.alice, Unit::Points, "10");
    earn.metadata = BTreeMap::from([
        ("rule".to_owned(), "visit".to_owned()),
        ("rule_version".to_owned(), "2".to_owned()),
    ]);
    post(h, "earn-3", earn).await;
    post(
        h,
        "earn-4",
        transfer(EntryKind::Earn, b.issuance, b.bob, Unit::Hours, "1"),
    )
    .await;
    b
}

async fn export(
    h: &Harness,
    dir: &Path,
    from: Option<Bound>,
    to: Option<Bound>,
) -> format::Manifest {
    export_bundle(
        &h.stores,
        "test",
        from,
        to,
        &ring(),
        h.clock.now_micros(),
        dir,
    )
    .await
    .expect("export")
}

fn verify(dir: &Path) -> Result<AuditSummary, AuditProblem> {
    verify_bundle(&DirSource(dir.to_path_buf()), Some(&ring()), None)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A copy of the bundle in a new directory.
fn copy(dir: &Path, into: &Path) -> PathBuf {
    let target = into.join(format!("copy-{}", Uuid::new_v4().simple()));
    std::fs::create_dir(&target).unwrap();
    for (name, bytes) in files(dir) {
        std::fs::write(target.join(name), bytes).unwrap();
    }
    target
}

/// Rewrites one file's lines.
fn edit_lines(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let text = read(dir, name);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    edit(&mut lines);
    std::fs::write(dir.join(name), lines.join("\n") + "\n").unwrap();
}

async fn exports_verify_and_repeat_byte_for_byte(h: Harness) {
    // Proves a bundle verifies offline, reproduces every stored balance and the per-kind totals,
    // carries no resident name or phone number, and that exporting the same range twice gives
    // byte-identical files.
    let b = history(&h, "5").await;
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let manifest = export(&h, &one, None, None).await;
    h.clock.advance(DAY);
    export(&h, &two, None, None).await;
    assert_eq!(files(&one), files(&two), "two exports of one range differ");
    assert_eq!((manifest.from_seq, manifest.to_seq), (1, 10));
    assert_eq!(manifest.counts.entries, 10);

    let summary = verify(&one).expect("the bundle verifies");
    assert!(summary.signatures_checked);
    assert_eq!(summary.postings, 22);
    let head = h.store.head("test").await.unwrap().unwrap();
    assert_eq!(summary.head_hash, hex::encode(head.hash));

    // Every stored balance is in accounts.jsonl as the closing balance.
    let accounts: BTreeMap<Uuid, format::BundleAccount> = read(&one, format::ACCOUNTS_FILE)
        .lines()
        .map(|l| format::parse_account_line(l).unwrap())
        .map(|a| (a.id, a))
        .collect();
    let mut by_kind: BTreeMap<(String, String), i64> = BTreeMap::new();
    for stored in h.store.balances("test").await.unwrap() {
        assert_eq!(
            accounts[&stored.account].closing[&stored.unit],
            stored.balance_minor
        );
        *by_kind
            .entry((stored.unit.to_string(), stored.kind.to_string()))
            .or_default() += stored.balance_minor;
    }
    for (unit, kind, total) in &summary.totals {
        let expected = by_kind
            .get(&(unit.clone(), kind.clone()))
            .copied()
            .unwrap_or(0);
        assert_eq!(
            *total,
            aixin::ledger::format_minor(expected),
            "{unit} {kind}"
        );
    }
    assert_eq!(accounts[&b.alice].closing[&Unit::Points], 2701);
    assert_eq!(accounts[&b.alice].label.as_deref(), Some("AX-7K2M9QXD"));
    assert_eq!(accounts[&b.bob].label, None);
    assert_eq!(accounts[&b.shop].shop_id.as_deref(), Some("shop-1"));
    for (name, bytes) in files(&one) {
        let text = String::from_utf8(bytes).unwrap();
        for secret in ["王秀英", "13800000001", "r-alice"] {
            assert!(!text.contains(secret), "{name} carries {secret}");
        }
    }
    // The export's own checkpoint covers the head and is in the bundle.
    let checkpoints = read(&one, format::CHECKPOINTS_FILE);
    let last = format::parse_checkpoint_line(checkpoints.lines().last().unwrap()).unwrap();
    assert_eq!((last.seq, last.head_hash), (10, head.hash));
}

async fn tamper_suite(h: Harness) {
    // Proves every kind of tampering with a bundle fails verification at the right place: one
    // byte, a deleted, swapped or inserted row, a truncated tail, a derived file edited, a forged
    // manifest, a forged checkpoint.
    history(&h, "5").await;
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    export(&h, &clean, None, None).await;
    verify(&clean).expect("the clean bundle verifies");
    assert_eq!(
        python_verdict(&clean, true),
        None,
        "the Python verifier refuses a clean bundle"
    );

    let check = |what: &str, edit: &dyn Fn(&Path), seq: Option<i64>, kind: &str, file: &str| {
        let dir = copy(&clean, tmp.path());
        edit(&dir);
        let problem = verify(&dir).expect_err(what);
        let python = python_verdict(&dir, true);
        assert_eq!(
            python,
            Some((seq, kind.to_owned(), file.to_owned())),
            "{what}: the Python verifier disagrees ({problem})"
        );
        assert_eq!(
            (problem.seq, problem.kind, problem.file.as_str()),
            (seq, kind, file),
            "{what}: {problem}"
        );
    };
    let entries = format::ENTRIES_FILE;
    check(
        "one byte of an amount",
        &|d| {
            edit_lines(d, entries, |l| {
                l[2] = l[2].replacen("\"5.00\"", "\"6.00\"", 2)
            })
        },
        Some(3),
        "hash_mismatch",
        entries,
    );
    check(
        "one byte of a memo",
        &|d| edit_lines(d, entries, |l| l[0] = l[0].replacen("home", "hope", 1)),
        Some(1),
        "hash_mismatch",
        entries,
    );
    check(
        "a deleted row",
        &|d| {
            edit_lines(d, entries, |l| {
                l.remove(3);
            })
        },
        Some(4),
        "sequence_gap",
        entries,
    );
    check(
        "two rows swapped",
        &|d| edit_lines(d, entries, |l| l.swap(4, 5)),
        Some(5),
        "sequence_gap",
        entries,
    );
    check(
        "an inserted row",
        &|d| {
            edit_lines(d, entries, |l| {
                let copy = l[6].clone();
                l.insert(7, copy);
            })
        },
        Some(8),
        "sequence_gap",
        entries,
    );
    check(
        "a truncated tail",
        &|d| edit_lines(d, entries, |l| l.truncate(8)),
        Some(9),
        "head_mismatch",
        entries,
    );
    check(
        "a row that is not canonical",
        &|d| {
            edit_lines(d, entries, |l| {
                l[1] = l[1].replacen("{\"seq\":2,", "{\"seq\": 2,", 1)
            })
        },
        Some(2),
        "not_canonical",
        entries,
    );
    check(
        "a posting amount in postings.csv",
        &|d| {
            edit_lines(d, format::POSTINGS_CSV, |l| {
                let i = l.iter().position(|r| r.starts_with("6,0,")).unwrap();
                l[i] = l[i].replace(",6.00", ",7.00");
            })
        },
        Some(6),
        "file_mismatch",
        format::POSTINGS_CSV,
    );
    check(
        "an entry dropped from entries.csv",
        &|d| {
            edit_lines(d, format::ENTRIES_CSV, |l| {
                let i = l.iter().position(|r| r.starts_with("7,")).unwrap();
                l.remove(i);
            })
        },
        Some(7),
        "file_mismatch",
        format::ENTRIES_CSV,
    );
    check(
        "a neutralised formula written as a formula in entries.csv",
        &|d| {
            edit_lines(d, format::ENTRIES_CSV, |l| {
                let i = l.iter().position(|r| r.starts_with("8,")).unwrap();
                assert!(l[i].contains(",\"'=1+2\","), "{}", l[i]);
                l[i] = l[i].replace(",\"'=1+2\",", ",=1+2,");
            })
        },
        Some(8),
        "file_mismatch",
        format::ENTRIES_CSV,
    );
    check(
        "an amount in the hledger journal",
        &|d| {
            edit_lines(d, format::BOOKS_JOURNAL, |l| {
                let i = l.iter().position(|r| r.contains("(8) adjust")).unwrap();
                l[i + 1] = l[i + 1].replace("-0.01 POINTS", "-0.02 POINTS");
            })
        },
        Some(8),
        "file_mismatch",
        format::BOOKS_JOURNAL,
    );
    check(
        "a balance assertion in the Beancount file",
        &|d| {
            edit_lines(d, format::BOOKS_BEANCOUNT, |l| {
                let last = l.len() - 1;
                l[last] = l[last].replace(".00 ", ".50 ");
            })
        },
        None,
        "file_mismatch",
        format::BOOKS_BEANCOUNT,
    );
    check(
        "a closing balance in accounts.jsonl",
        &|d| {
            edit_lines(d, format::ACCOUNTS_FILE, |l| {
                let i = l.iter().position(|r| r.contains("AX-7K2M9QXD")).unwrap();
                l[i] = l[i].replace(
                    "\"closing\":{\"hours\":\"2.50\",\"points\":\"27.01\"}",
                    "\"closing\":{\"hours\":\"2.50\",\"points\":\"28.01\"}",
                );
            })
        },
        None,
        "balance_mismatch",
        format::ACCOUNTS_FILE,
    );
    check(
        "a forged manifest (head hash)",
        &|d| {
            let text = read(d, format::MANIFEST_FILE);
            let mut m: format::Manifest = serde_json::from_str(&text).unwrap();
            m.counts.entries += 1;
            std::fs::write(d.join(format::MANIFEST_FILE), format::manifest_text(&m)).unwrap();
        },
        None,
        "signature_invalid",
        format::MANIFEST_FILE,
    );
    check(
        "a file edited and its digest forged in the manifest",
        &|d| {
            std::fs::write(d.join(format::RULES_FILE), "{}\n").unwrap();
            let mut m: format::Manifest =
                serde_json::from_str(&read(d, format::MANIFEST_FILE)).unwrap();
            m.counts.rules = 1;
            std::fs::write(d.join(format::MANIFEST_FILE), format::manifest_text(&m)).unwrap();
        },
        None,
        "signature_invalid",
        format::MANIFEST_FILE,
    );
    check(
        "a forged checkpoint",
        &|d| {
            edit_lines(d, format::CHECKPOINTS_FILE, |l| {
                let last = l.len() - 1;
                l[last] = l[last].replacen("\"balance\":\"", "\"balance\":\"1", 1);
            })
        },
        Some(10),
        "signature_invalid",
        format::CHECKPOINTS_FILE,
    );

    // Without keys, a manifest forged to match an edited file is still caught by the content.
    let dir = copy(&clean, tmp.path());
    edit_lines(&dir, entries, |l| {
        l[2] = l[2].replacen("\"5.00\"", "\"6.00\"", 2)
    });
    let problem = verify_bundle(&DirSource(dir.clone()), None, None).unwrap_err();
    assert_eq!((problem.seq, problem.kind), (Some(3), "hash_mismatch"));
    // And a bundle whose only change is the digest list fails on the digest.
    let dir = copy(&clean, tmp.path());
    let mut m: format::Manifest = serde_json::from_str(&read(&dir, format::MANIFEST_FILE)).unwrap();
    m.files[0].sha256 = "00".repeat(32);
    std::fs::write(dir.join(format::MANIFEST_FILE), format::manifest_text(&m)).unwrap();
    let problem = verify_bundle(&DirSource(dir), None, None).unwrap_err();
    assert_eq!(
        (problem.kind, problem.file.as_str()),
        ("digest_mismatch", format::ACCOUNTS_FILE)
    );
}

/// What the independent Python verifier (ledger-specs/tools/check_bundle.py) says of a bundle:
/// `None` for OK, else (seq, kind, file) of its FAIL line. With `keys`, the test key file.
fn python_verdict(dir: &Path, keys: bool) -> Option<(Option<i64>, String, String)> {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/tools/check_bundle.py");
    let mut cmd = Command::new("python3");
    cmd.arg(tool).arg(dir);
    let key_file = tempfile::NamedTempFile::new().unwrap();
    if keys {
        ring().save(key_file.path()).unwrap();
        cmd.arg("--keys").arg(key_file.path());
    }
    let out = cmd.output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        assert!(stdout.starts_with("OK: "), "{stdout}");
        return None;
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // FAIL seq <n|-> <kind> in <file>: <detail>
    let rest = stdout
        .strip_prefix("FAIL seq ")
        .unwrap_or_else(|| panic!("{stdout}"));
    let mut words = rest.splitn(4, ' ');
    let seq = words.next().unwrap().parse().ok();
    let kind = words.next().unwrap().to_owned();
    assert_eq!(words.next(), Some("in"), "{stdout}");
    let file = words.next().unwrap().split(':').next().unwrap().to_owned();
    Some((seq, kind, file))
}

/// A fresh harness on the same backend as `h`.
async fn same_backend(h: &Harness) -> Option<Harness> {
    if h.is_postgres() {
        Harness::postgres().await
    } else {
        Some(Harness::sqlite().await)
    }
}

async fn a_rewritten_history_is_caught_by_a_retained_checkpoint(h: Harness) {
    // Proves what the chain alone cannot: an operator who rewrites history (here Alice redeemed
    // 6 points, not 5) and re-signs everything with the real key produces a bundle that verifies
    // on its own, but not against a checkpoint the auditor kept; nor does a truncated history.
    history(&h, "5").await;
    let tmp = tempfile::tempdir().unwrap();
    let honest = tmp.path().join("honest");
    export(&h, &honest, None, Some(Bound::Seq(6))).await;
    let kept: Checkpoint = format::parse_checkpoint_line(
        read(&honest, format::CHECKPOINTS_FILE)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(kept.seq, 6);

    let Some(forged) = same_backend(&h).await else {
        return;
    };
    history(&forged, "6").await;
    let rewritten = tmp.path().join("rewritten");
    export(&forged, &rewritten, None, None).await;
    let alone = verify(&rewritten).expect("a consistent rewrite verifies on its own");
    assert_eq!(alone.to_seq, 10);
    let problem =
        verify_bundle(&DirSource(rewritten.clone()), Some(&ring()), Some(&kept)).unwrap_err();
    assert_eq!(
        (problem.seq, problem.kind),
        (Some(6), "checkpoint_mismatch"),
        "{problem}"
    );

    // The honest ledger's later bundle extends the kept checkpoint.
    let later = tmp.path().join("later");
    export(&h, &later, None, None).await;
    let summary = verify_bundle(&DirSource(later.clone()), Some(&ring()), Some(&kept)).unwrap();
    assert_eq!(summary.extends_checkpoint, Some(6));
    // A bundle that stops before the kept checkpoint is a truncated history.
    let short = tmp.path().join("short");
    export(&h, &short, None, Some(Bound::Seq(4))).await;
    let problem = verify_bundle(&DirSource(short), Some(&ring()), Some(&kept)).unwrap_err();
    assert_eq!(
        (problem.seq, problem.kind),
        (Some(5), "checkpoint_mismatch"),
        "{problem}"
    );
    // A checkpoint signed with another key does not verify.
    let mut other = kept.clone();
    other.tag[0] ^= 1;
    let problem = verify_bundle(&DirSource(later), Some(&ring()), Some(&other)).unwrap_err();
    assert_eq!(problem.kind, "signature_invalid");
}

async fn ranges_by_sequence_and_day(h: Harness) {
    // Proves a partial range carries opening balances and still verifies, and that day bounds
    // (UTC+8) pick the entries of those days.
    let b = history(&h, "5").await;
    let tmp = tempfile::tempdir().unwrap();
    let mid = tmp.path().join("mid");
    let manifest = export(&h, &mid, Some(Bound::Seq(3)), Some(Bound::Seq(7))).await;
    assert_eq!(
        (manifest.from_seq, manifest.to_seq, manifest.counts.entries),
        (3, 7, 5)
    );
    let summary = verify(&mid).expect("a partial range verifies");
    assert_eq!(python_verdict(&mid, true), None);
    assert_eq!(summary.entries, 5);
    let alice = read(&mid, format::ACCOUNTS_FILE)
        .lines()
        .map(|l| format::parse_account_line(l).unwrap())
        .find(|a| a.id == b.alice)
        .unwrap();
    assert_eq!(alice.opening[&Unit::Points], 2000);
    assert_eq!(alice.closing[&Unit::Points], 1700);

    // Day 2 (UTC+8) holds entries 3 to 5.
    let day2 = aixin::calendar::day_of(T0 + 3_600_000_000 + DAY);
    let by_day = tmp.path().join("day");
    let manifest = export(&h, &by_day, Some(Bound::Day(day2)), Some(Bound::Day(day2))).await;
    assert_eq!((manifest.from_seq, manifest.to_seq), (3, 5));
    verify(&by_day).expect("a day's bundle verifies");

    let empty = tmp.path().join("empty");
    let manifest = export(&h, &empty, Some(Bound::Seq(11)), None).await;
    assert_eq!(
        (manifest.from_seq, manifest.to_seq, manifest.counts.entries),
        (11, 10, 0)
    );
    verify(&empty).expect("an empty range verifies");
    assert_eq!(python_verdict(&empty, true), None);
    let beyond = export_bundle(
        &h.stores,
        "test",
        None,
        Some(Bound::Seq(11)),
        &ring(),
        T0,
        &empty,
    )
    .await;
    assert!(beyond.is_err(), "a range past the head is refused");
}

async fn checkpoints_are_append_only(h: Harness) {
    // Proves the database refuses to change or remove a stored checkpoint, and that a second
    // checkpoint of the same entry keeps the first.
    history(&h, "5").await;
    let first = aixin::audit::export::checkpoint_head(h.store.as_ref(), "test", &ring(), T0)
        .await
        .unwrap();
    let other_key = KeyRing::from_parts([1; 32], "k2", [3; 32]);
    let again = aixin::audit::export::checkpoint_head(h.store.as_ref(), "test", &other_key, T0)
        .await
        .unwrap();
    assert_eq!(first, again);
    assert!(ring()
        .verify(&first.key_id, &first.signed_bytes(), &first.tag)
        .is_ok());
    for sql in [
        "UPDATE checkpoints SET key_id = 'x'",
        "DELETE FROM checkpoints",
    ] {
        let refused = h.try_exec(sql).await;
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("append-only")),
            "{sql}: {refused:?}"
        );
    }
}

/// Whether an outside tool runs; without it, a loud skip, or a failure when
/// AIXIN_REQUIRE_BOOK_TOOLS=1 (as .ci/run sets).
fn tool_available(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("AIXIN_REQUIRE_BOOK_TOOLS").as_deref() != Ok("1"),
            "AIXIN_REQUIRE_BOOK_TOOLS=1 but {name} is not installed"
        );
        eprintln!("\n*** SKIPPED: {name} is not installed (apt-get install hledger; pip install beancount) ***\n");
    }
    found
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run tool");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// hledger's balance per (account name, commodity), zero balances left out.
fn hledger_balances(journal: &Path) -> BTreeMap<(String, String), String> {
    let (ok, out) = run(Command::new("hledger").arg("-f").arg(journal).args([
        "bal",
        "--flat",
        "--no-total",
        "-O",
        "csv",
        "--layout=bare",
    ]));
    assert!(ok, "{out}");
    out.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(|f| f.trim_matches('"')).collect();
            ((f[0].to_owned(), f[1].to_owned()), f[2].to_owned())
        })
        .collect()
}

/// Adds `delta` hundredths to the amount at the end of the file's last line (a closing balance
/// assertion in either book).
fn bump_last_amount(path: &Path, delta: i64) {
    let text = std::fs::read_to_string(path).unwrap();
    let body = text.strip_suffix('\n').unwrap();
    let unit_at = body.rfind(' ').unwrap();
    let number_at = body[..unit_at].rfind(' ').unwrap() + 1;
    let value = format::parse_signed_minor(&body[number_at..unit_at]).unwrap();
    let bumped = format!(
        "{}{}{}\n",
        &body[..number_at],
        aixin::ledger::format_minor(value + delta),
        &body[unit_at..]
    );
    std::fs::write(path, bumped).unwrap();
}

async fn books_agree_with_hledger_and_bean_check(h: Harness) {
    // Proves the exported books open in the real hledger and bean-check, that both accept every
    // balance assertion, that hledger's balances are aixin's, and that a wrong assertion fails
    // in both (so the check is not vacuous); for the whole ledger and for a partial range.
    if !tool_available("hledger") || !tool_available("bean-check") {
        return;
    }
    history(&h, "5").await;
    let tmp = tempfile::tempdir().unwrap();
    for (name, from) in [("all", None), ("part", Some(Bound::Seq(4)))] {
        let dir = tmp.path().join(name);
        export(&h, &dir, from, None).await;
        let journal = dir.join(format::BOOKS_JOURNAL);
        let beancount = dir.join(format::BOOKS_BEANCOUNT);
        let (ok, out) = run(Command::new("hledger").arg("-f").arg(&journal).arg("check"));
        assert!(ok, "hledger check: {out}");
        let (ok, out) = run(Command::new("bean-check").arg(&beancount));
        assert!(ok, "bean-check: {out}");

        let mut expected = BTreeMap::new();
        for stored in h.store.balances("test").await.unwrap() {
            if stored.balance_minor != 0 {
                expected.insert(
                    (
                        format::book_account(stored.kind, stored.account),
                        format::commodity(stored.unit).to_owned(),
                    ),
                    aixin::ledger::format_minor(stored.balance_minor),
                );
            }
        }
        assert_eq!(hledger_balances(&journal), expected, "{name}");

        // One assertion off (hledger: by 0.01; Beancount tolerates half a unit of the last
        // digit shown, so by 1.00): both tools refuse.
        bump_last_amount(&journal, 1);
        let (ok, out) = run(Command::new("hledger").arg("-f").arg(&journal).arg("check"));
        assert!(
            !ok && out.contains("balance assertion"),
            "hledger accepted a wrong assertion: {out}"
        );
        bump_last_amount(&beancount, 100);
        let (ok, out) = run(Command::new("bean-check").arg(&beancount));
        assert!(
            !ok && out.contains("Balance failed"),
            "bean-check accepted a wrong assertion: {out}"
        );
    }
}

on_both_backends!(
    exports_verify_and_repeat_byte_for_byte,
    tamper_suite,
    a_rewritten_history_is_caught_by_a_retained_checkpoint,
    ranges_by_sequence_and_day,
    checkpoints_are_append_only,
    books_agree_with_hledger_and_bean_check,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_and_postgres_give_identical_bundles() {
    // Proves the bundle is derived from the history alone: the same history on SQLite and on
    // PostgreSQL exports byte-identical files, for the whole ledger and for a range.
    let sqlite = Harness::sqlite().await;
    let Some(postgres) = Harness::postgres().await else {
        return;
    };
    history(&sqlite, "5").await;
    history(&postgres, "5").await;
    let tmp = tempfile::tempdir().unwrap();
    for (name, from, to) in [
        ("all", None, None),
        ("range", Some(Bound::Seq(2)), Some(Bound::Seq(8))),
    ] {
        let (a, b) = (
            tmp.path().join(format!("{name}-sqlite")),
            tmp.path().join(format!("{name}-pg")),
        );
        export(&sqlite, &a, from, to).await;
        export(&postgres, &b, from, to).await;
        let (fa, fb) = (files(&a), files(&b));
        assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
        for (file, bytes) in &fa {
            assert!(
                bytes == &fb[file],
                "{name}: {file} differs between SQLite and PostgreSQL"
            );
        }
        verify(&a).expect("verifies");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bundle_vectors_match_the_spec() {
    // Proves the published vectors (ledger-specs/vectors/audit-bundle/: a whole bundle of the
    // test history and the test key file that signed it) are what the code makes today, and
    // that the independent Python verifier accepts them with the key. Regenerate with
    // AIXIN_BLESS=1 cargo test --test audit bundle_vectors.
    let h = Harness::sqlite().await;
    history(&h, "5").await;
    let tmp = tempfile::tempdir().unwrap();
    let made = tmp.path().join("bundle");
    export(&h, &made, None, None).await;
    ring().save(&made.join("keys.json")).unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/vectors/audit-bundle");
    if std::env::var("AIXIN_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(&vectors).unwrap();
        for (name, bytes) in files(&made) {
            std::fs::write(vectors.join(name), bytes).unwrap();
        }
    }
    assert_eq!(
        files(&made),
        files(&vectors),
        "ledger-specs/vectors/audit-bundle is stale (AIXIN_BLESS=1 cargo test --test audit bundle_vectors)"
    );
    assert_eq!(python_verdict(&vectors, true), None);
}

// ---- Over HTTP ----

struct Http {
    app: axum::Router,
}

impl Http {
    fn new(h: &Harness) -> Http {
        let state = aixin::app::App::new(h.stores.clone(), h.clock.clone(), h.entropy.clone())
            .with_keys(aixin::keys::SharedKeys::fixed(ring()));
        Http {
            app: aixin::http::router(state),
        }
    }

    async fn token(h: &Harness, role: aixin::auth::Role, scope: Option<&str>) -> String {
        let (secret, record) = aixin::auth::new_token(
            h.entropy.as_ref(),
            h.clock.now_micros(),
            "test",
            role,
            scope.map(str::to_owned),
            String::new(),
            None,
        );
        h.store.insert_token(&record).await.unwrap();
        secret
    }

    /// (status, content type, body bytes)
    async fn get(&self, path: &str, token: &str) -> (u16, String, Vec<u8>) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let request = axum::http::Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, content_type, body)
    }

    async fn json(&self, path: &str, token: &str) -> serde_json::Value {
        let (status, _, body) = self.get(path, token).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

/// Unpacks a ustar archive of regular files into `dir`.
fn untar(bytes: &[u8], dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut names = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|b| *b != 0) {
        let header = &bytes[at..at + 512];
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8(header[..name_end].to_vec()).unwrap();
        let size_text = std::str::from_utf8(&header[124..135]).unwrap();
        let size = usize::from_str_radix(size_text, 8).unwrap();
        at += 512;
        std::fs::write(dir.join(&name), &bytes[at..at + size]).unwrap();
        at += size.div_ceil(512) * 512;
        names.push(name);
    }
    names
}

async fn http_export_checkpoints_and_reports(h: Harness) {
    // Proves the HTTP side: auditors and admins download the bundle as a tar that verifies and
    // equals the CLI's export byte for byte; other roles may not; bad ranges get stable problem
    // codes; checkpoints list; the trial balance, community summary and shop statement agree
    // with the stored balances, as JSON and as CSV, and are scoped by role.
    use aixin::auth::Role;
    let b = history(&h, "5").await;
    let http = Http::new(&h);
    let auditor = Http::token(&h, Role::Auditor, None).await;
    let resident = Http::token(&h, Role::Resident, Some("r-alice")).await;
    let own_shop = Http::token(&h, Role::Shop, Some("shop-1")).await;
    let other_staff = Http::token(&h, Role::Staff, Some("elsewhere")).await;

    let (status, content_type, tar_bytes) = http.get("/v1/audit/export", &auditor).await;
    assert_eq!((status, content_type.as_str()), (200, "application/x-tar"));
    let tmp = tempfile::tempdir().unwrap();
    let unpacked = tmp.path().join("http");
    let names = untar(&tar_bytes, &unpacked);
    assert_eq!(names.len(), 9, "{names:?}");
    verify(&unpacked).expect("the downloaded bundle verifies");
    let direct = tmp.path().join("direct");
    export(&h, &direct, None, None).await;
    assert_eq!(files(&unpacked), files(&direct));
    let (status, _, _) = http.get("/v1/audit/export?from=3&to=5", &auditor).await;
    assert_eq!(status, 200);
    for (path, token, status, code) in [
        ("/v1/audit/export", &resident, 403, "forbidden"),
        ("/v1/audit/export", &other_staff, 403, "forbidden"),
        (
            "/v1/audit/export?to=99",
            &auditor,
            422,
            "audit_range_invalid",
        ),
        (
            "/v1/audit/export?from=yesterday",
            &auditor,
            400,
            "audit_bound_invalid",
        ),
        ("/v1/reports/trial-balance", &own_shop, 403, "forbidden"),
        (
            "/v1/reports/communities/binhu",
            &other_staff,
            404,
            "not_found",
        ),
        ("/v1/reports/shops/shop-1", &other_staff, 404, "not_found"),
        ("/v1/reports/shops/shop-2", &auditor, 404, "not_found"),
    ] {
        let (got, _, body) = http.get(path, token).await;
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (got, problem["type"].as_str().unwrap()),
            (status, format!("urn:aixin:problem:{code}").as_str()),
            "{path}"
        );
    }

    let listed = http.json("/v1/audit/checkpoints", &auditor).await;
    let last = listed["checkpoints"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["seq"], 10);
    let line = format::checkpoint_line(&format::parse_checkpoint_line(&last.to_string()).unwrap());
    assert!(read(&direct, format::CHECKPOINTS_FILE).contains(&line));

    // Trial balance: one row per (account, unit), debit and credit totals equal per unit.
    let stored = h.store.balances("test").await.unwrap();
    let tb = http.json("/v1/reports/trial-balance", &auditor).await;
    for total in tb["totals"].as_array().unwrap() {
        assert_eq!(total["debit"], total["credit"], "{total}");
    }
    for balance in &stored {
        let row = tb["rows"].as_array().unwrap().iter().find(|r| {
            r["account"] == balance.account.to_string() && r["unit"] == balance.unit.as_str()
        });
        let shown = row.map(|r| {
            format::parse_signed_minor(r["credit"].as_str().unwrap()).unwrap()
                - format::parse_signed_minor(r["debit"].as_str().unwrap()).unwrap()
        });
        assert_eq!(shown.unwrap_or(0), balance.balance_minor);
    }
    let (status, content_type, csv) = http
        .get("/v1/reports/trial-balance?format=csv&as_of=4", &auditor)
        .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/csv; charset=utf-8")
    );
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.starts_with("account,kind,community_id,label,unit,debit,credit\n"),
        "{csv}"
    );
    assert!(!csv.contains("王秀英"));

    // Community summary: its parts add up to what the residents hold.
    let summary = http.json("/v1/reports/communities/binhu", &auditor).await;
    let minor = |v: &serde_json::Value| format::parse_signed_minor(v.as_str().unwrap()).unwrap();
    let held: i64 = stored
        .iter()
        .filter(|s| s.kind == AccountKind::Resident && s.unit == Unit::Points)
        .map(|s| s.balance_minor)
        .sum();
    assert_eq!(minor(&summary["outstanding"]), held);
    assert_eq!(
        minor(&summary["issued"]) - minor(&summary["redeemed"]) + minor(&summary["refunded"])
            - minor(&summary["expired"])
            + minor(&summary["adjusted"]),
        held
    );
    assert_eq!(summary["redeemed_by_shop"][0]["key"], "shop-1");
    let by_rule = summary["issued_by_rule"].as_array().unwrap();
    assert!(by_rule.iter().any(|l| l["key"] == "visit"), "{summary}");
    // Staff of the community see its summary and its shop's statement.
    let staff = Http::token(&h, Role::Staff, Some("binhu")).await;
    assert_eq!(
        http.json("/v1/reports/communities/binhu", &staff).await,
        summary
    );
    http.json("/v1/reports/shops/shop-1", &staff).await;
    let (status, _, csv) = http
        .get("/v1/reports/communities/binhu?format=csv", &auditor)
        .await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(csv).unwrap().contains("outstanding,,"));

    // Shop statement: the shop sees its own; the closing balance is the stored one.
    let statement = http.json("/v1/reports/shops/shop-1", &own_shop).await;
    let shop_points = stored
        .iter()
        .find(|s| s.account == b.shop && s.unit == Unit::Points)
        .unwrap()
        .balance_minor;
    assert_eq!(minor(&statement["closing"]), shop_points);
    let touching = read(&direct, format::ENTRIES_FILE)
        .lines()
        .filter(|l| l.contains(&b.shop.to_string()))
        .count();
    assert_eq!(statement["lines"].as_array().unwrap().len(), touching);
    let partial = http
        .json("/v1/reports/shops/shop-1?from=5&to=6", &auditor)
        .await;
    let before: i64 = h
        .store
        .balances_through("test", 4)
        .await
        .unwrap()
        .iter()
        .filter(|(a, u, _)| *a == b.shop && *u == Unit::Points)
        .map(|(_, _, s)| s)
        .sum();
    assert_eq!(minor(&partial["opening"]), before);
    assert!(before > 0, "the range starts with points at the shop");
}

on_both_backends!(http_export_checkpoints_and_reports);
