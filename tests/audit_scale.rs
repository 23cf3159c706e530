//! The export streams: peak memory of `aixin audit export` (and of `aixin audit verify`) on a
//! ledger ten times larger stays about the same. The ledger is written straight into SQLite.
//!
//! Sizes: by default 10 000 and 100 000 postings; with `AIXIN_AUDIT_SCALE=1` (set by .ci/run)
//! 100 000 and 1 000 000 postings.

#[path = "common/bulk.rs"]
mod bulk;

use std::path::Path;
use std::process::Command;

/// Runs the aixin binary under `/usr/bin/time` and returns its peak resident set in KiB.
fn peak_kib(args: &[&str]) -> u64 {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak_kib=%M"])
        .arg(env!("CARGO_BIN_EXE_aixin"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("/usr/bin/time runs (apt-get install time)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "aixin {args:?} failed: {}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {stderr}"))
}

/// (export peak, verify peak) in KiB for a ledger of `postings` postings.
fn measure(dir: &Path, postings: usize) -> (u64, u64) {
    let db = dir.join(format!("ledger-{postings}.sqlite"));
    let url = format!("sqlite:{}", db.display());
    let keys = dir.join("keys.json");
    let keys = keys.to_str().unwrap();
    let migrated = Command::new(env!("CARGO_BIN_EXE_aixin"))
        .args(["--database-url", &url, "--ledger", "big", "migrate"])
        .output()
        .unwrap();
    assert!(migrated.status.success());
    let written = bulk::build_sqlite_ledger(&db, "big", postings / 2, 1_000);
    assert_eq!(written, postings);
    let out = dir.join(format!("bundle-{postings}"));
    let out = out.to_str().unwrap();
    let export = peak_kib(&[
        "--database-url",
        &url,
        "--ledger",
        "big",
        "--keys",
        keys,
        "audit",
        "export",
        "--out",
        out,
    ]);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(out).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["counts"]["postings"], postings as u64);
    let verify = peak_kib(&["--keys", keys, "audit", "verify", out]);
    (export, verify)
}

#[test]
fn export_and_verify_memory_stays_flat() {
    // Proves the export and the offline verifier stream: ten times the postings, about the same
    // peak memory (within 1.5× plus 16 MiB of the smaller run, and under 256 MiB).
    let large = if std::env::var("AIXIN_AUDIT_SCALE").as_deref() == Ok("1") {
        1_000_000
    } else {
        100_000
    };
    let dir = tempfile::tempdir().unwrap();
    let (small_export, small_verify) = measure(dir.path(), large / 10);
    let (large_export, large_verify) = measure(dir.path(), large);
    eprintln!(
        "peak RSS: export {small_export} KiB ({} postings) → {large_export} KiB ({large} postings); verify {small_verify} → {large_verify} KiB",
        large / 10
    );
    for (what, small, big) in [
        ("export", small_export, large_export),
        ("verify", small_verify, large_verify),
    ] {
        assert!(
            big <= small * 3 / 2 + 16 * 1024 && big < 256 * 1024,
            "{what}: peak {big} KiB at {large} postings against {small} KiB at a tenth: memory grows with the ledger"
        );
    }
}
