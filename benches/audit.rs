//! Audit export and offline verification throughput, against `sqlite3 -csv` dumping the same
//! tables from the same file in the same run.
//!
//! Run: `cargo bench --bench audit`
//!
//! A ledger of `AIXIN_BENCH_AUDIT_POSTINGS` postings (default 1 000 000; two per entry, over
//! 1 000 residents) is written straight into a SQLite file. Then, each timed:
//!
//! 1. baseline: `sqlite3 -csv FILE 'SELECT * FROM entries; SELECT * FROM postings'` to a file;
//! 2. `export_bundle` (in process, as `aixin audit export` does) of the whole ledger;
//! 3. `verify_bundle` (as `aixin audit verify --keys` does) of that bundle.
//!
//! Rows are entries + postings (what the baseline dumps). `AIXIN_BENCH_DIR` picks where the
//! files go (default: the system temp dir).

#[path = "../tests/common/bulk.rs"]
mod bulk;

use std::process::Command;
use std::time::Instant;

use aixin::audit::export::export_bundle;
use aixin::audit::verify::{verify_bundle, DirSource};
use aixin::keys::KeyRing;
use aixin::store::sqlite::SqliteStore;
use aixin::store::{Store, Stores};

#[tokio::main]
async fn main() {
    let postings: usize = std::env::var("AIXIN_BENCH_AUDIT_POSTINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var("AIXIN_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let db = dir.path().join("audit.sqlite");
    let url = format!("sqlite:{}", db.display());
    {
        let store = SqliteStore::connect(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        store.ensure_ledger("bench", 0).await.expect("ledger");
    }
    let started = Instant::now();
    let written = bulk::build_sqlite_ledger(&db, "bench", postings / 2, 1_000);
    let entries = written / 2;
    let rows = (entries + written) as f64;
    println!(
        "ledger: {entries} entries, {written} postings written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let dump = dir.path().join("dump.csv");
    let started = Instant::now();
    let status = Command::new("sqlite3")
        .arg("-csv")
        .arg(&db)
        .arg("SELECT * FROM entries; SELECT * FROM postings;")
        .stdout(std::fs::File::create(&dump).expect("dump file"))
        .status();
    let baseline = match status {
        Ok(s) if s.success() => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "[1/3] baseline sqlite3 -csv: {secs:.2} s, {:.0} rows/s ({} MB)",
                rows / secs,
                std::fs::metadata(&dump).map(|m| m.len() >> 20).unwrap_or(0)
            );
            Some(rows / secs)
        }
        _ => {
            println!("[1/3] baseline SKIPPED: sqlite3 is not installed");
            None
        }
    };

    let ring = KeyRing::from_parts([1; 32], "k1", [2; 32]);
    let stores = Stores::of(SqliteStore::connect(&url).await.expect("open"));
    let out = dir.path().join("bundle");
    let started = Instant::now();
    let manifest = export_bundle(&stores, "bench", None, None, &ring, 0, &out)
        .await
        .expect("export");
    let secs = started.elapsed().as_secs_f64();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let export_rate = rows / secs;
    println!(
        "[2/3] aixin audit export: {secs:.2} s, {export_rate:.0} rows/s ({} MB of bundle){}",
        bytes >> 20,
        baseline
            .map(|b| format!(", {:.2}× the baseline", export_rate / b))
            .unwrap_or_default()
    );

    let started = Instant::now();
    let summary = tokio::task::spawn_blocking(move || {
        verify_bundle(&DirSource(out), Some(&ring), None).expect("the bundle verifies")
    })
    .await
    .expect("verify task");
    let secs = started.elapsed().as_secs_f64();
    let verify_rate = rows / secs;
    println!(
        "[3/3] aixin audit verify: {secs:.2} s, {verify_rate:.0} rows/s ({} entries){}",
        summary.entries,
        baseline
            .map(|b| format!(", {:.2}× the baseline", verify_rate / b))
            .unwrap_or_default()
    );
}
