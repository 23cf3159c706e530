//! Durable posting throughput of aixin's batching writer, each figure against a baseline measured
//! in the same run on the same machine.
//!
//! Run: `cargo bench --bench ledger`
//!
//! 1. SQLite baseline: raw SQLite (rusqlite), WAL, `synchronous=FULL`, one transaction per
//!    transfer (two balance UPDATEs and one INSERT, prepared statements, one connection).
//! 2. aixin on SQLite: many client tasks submitting `earn` entries through one [`Writer`]. The
//!    batches the writer committed and the average entries per batch are printed with it.
//! 3. PostgreSQL baseline: `pgbench -b tpcb-like` against the same server, in the database
//!    `aixin_bench` (created if missing), with `synchronous_commit=on` forced via PGOPTIONS.
//! 4. aixin on PostgreSQL: the same workload as (2), in a fresh schema of `aixin_bench` that is
//!    dropped afterwards.
//!
//! If PostgreSQL or pgbench is unavailable, the PostgreSQL part is reported as SKIPPED and the
//! SQLite part still runs. Durability is never weakened: SQLite runs with `synchronous=FULL` in
//! both (1) and (2), PostgreSQL with `synchronous_commit=on` in both (3) and (4).
//!
//! Each baseline runs in two halves, one just before and one just after the aixin run it is
//! compared with, so that drift on a shared machine (other builds, other databases) weighs on
//! both sides alike; both halves are printed.
//!
//! Environment (all optional):
//! - `AIXIN_BENCH_SECS`: seconds each aixin run lasts; each baseline lasts as long in total
//!   (default 5; pgbench rounds each half up to whole seconds).
//! - `AIXIN_BENCH_CLIENTS`: concurrent aixin client tasks (default 256).
//! - `AIXIN_BENCH_ACCOUNTS`: resident accounts opened for aixin (default 1000).
//! - `AIXIN_BENCH_DIR`: where SQLite temp dirs are made (default: the system temp dir). It must
//!   be a real disk, not tmpfs, for fsync to mean anything.
//! - `AIXIN_BENCH_POSTGRES_URL`: server URL; else `AIXIN_TEST_POSTGRES_URL`, else
//!   `postgres://postgres@127.0.0.1:5432/test`. Its database part is replaced by `aixin_bench`.
//! - `AIXIN_BENCH_PGBENCH_SCALE`: `pgbench -i -s` scale (default 10).
//! - `AIXIN_BENCH_PGBENCH_CLIENTS`: `pgbench -c` (default 32).
//! - `AIXIN_BENCH_PGBENCH_JOBS`: `pgbench -j` (default 2).
//! - `AIXIN_BENCH_SKIP_POSTGRES=1`: skip the PostgreSQL part.
//! - `AIXIN_BENCH_SKIP_SQLITE=1`: skip the SQLite part.
//! - `AIXIN_BENCH_KEEP_SCHEMA=1`: keep aixin's PostgreSQL schema for inspection (its name is
//!   printed) instead of dropping it.
//! - `AIXIN_BENCH_STRICT=1`: exit with status 1 if a target is missed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aixin::clock::{Clock, Entropy, OsEntropy, SystemClock};
use aixin::ledger::{AccountKind, Amount, EntryDraft, EntryKind, Posting, Side, Unit};
use aixin::store::postgres::PgStore;
use aixin::store::{NewAccount, Opened, Outcome, Store};
use aixin::writer::Writer;
use futures_util::StreamExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const SQLITE_TARGET: f64 = 20.0;
const POSTGRES_TARGET: f64 = 3.0;
const BENCH_DATABASE: &str = "aixin_bench";
const LEDGER: &str = "bench";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Config {
    secs: f64,
    clients: usize,
    accounts: usize,
    dir: std::path::PathBuf,
    postgres_url: String,
    pgbench_scale: u32,
    pgbench_clients: u32,
    pgbench_jobs: u32,
    skip_postgres: bool,
    skip_sqlite: bool,
    keep_schema: bool,
    strict: bool,
}

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a valid value")),
        Err(_) => default,
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

impl Config {
    fn from_env() -> Config {
        let postgres_url = std::env::var("AIXIN_BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("AIXIN_TEST_POSTGRES_URL"))
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let config = Config {
            secs: env_or("AIXIN_BENCH_SECS", 5.0),
            clients: env_or("AIXIN_BENCH_CLIENTS", 256),
            accounts: env_or("AIXIN_BENCH_ACCOUNTS", 1000),
            dir: std::env::var_os("AIXIN_BENCH_DIR")
                .map(Into::into)
                .unwrap_or_else(std::env::temp_dir),
            postgres_url,
            pgbench_scale: env_or("AIXIN_BENCH_PGBENCH_SCALE", 10),
            pgbench_clients: env_or("AIXIN_BENCH_PGBENCH_CLIENTS", 32),
            pgbench_jobs: env_or("AIXIN_BENCH_PGBENCH_JOBS", 2),
            skip_postgres: env_flag("AIXIN_BENCH_SKIP_POSTGRES"),
            skip_sqlite: env_flag("AIXIN_BENCH_SKIP_SQLITE"),
            keep_schema: env_flag("AIXIN_BENCH_KEEP_SCHEMA"),
            strict: env_flag("AIXIN_BENCH_STRICT"),
        };
        assert!(config.secs > 0.0, "AIXIN_BENCH_SECS must be positive");
        assert!(config.clients > 0, "AIXIN_BENCH_CLIENTS must be positive");
        assert!(config.accounts > 0, "AIXIN_BENCH_ACCOUNTS must be positive");
        config
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.secs)
    }
}

fn main() {
    let config = Config::from_env();
    println!(
        "aixin ledger bench: {} s per measurement, {} aixin clients, {} resident accounts, {} CPUs, temp dir {}",
        config.secs,
        config.clients,
        config.accounts,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        config.dir.display(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let sqlite = if config.skip_sqlite {
        None
    } else {
        Some(sqlite_part(&config, &runtime))
    };

    let postgres = if config.skip_postgres {
        Err("AIXIN_BENCH_SKIP_POSTGRES is set".to_owned())
    } else {
        runtime
            .block_on(postgres_part(&config))
            .map_err(|e| e.to_string())
    };

    println!("\n== summary ==");
    let mut all_pass = true;
    match sqlite {
        Some((baseline, aixin)) => {
            all_pass &= summarize("sqlite:  ", "", baseline, aixin.rate, SQLITE_TARGET);
        }
        None => {
            println!("sqlite:   SKIPPED (AIXIN_BENCH_SKIP_SQLITE is set)");
            eprintln!("\n!!!!!!!! SQLite part SKIPPED: AIXIN_BENCH_SKIP_SQLITE is set !!!!!!!!");
        }
    }
    match postgres {
        Ok((baseline, aixin)) => {
            all_pass &= summarize(
                "postgres:",
                " (pgbench tpcb-like)",
                baseline,
                aixin.rate,
                POSTGRES_TARGET,
            );
        }
        Err(reason) => {
            println!("postgres: SKIPPED ({reason})");
            eprintln!("\n!!!!!!!! PostgreSQL part SKIPPED: {reason} !!!!!!!!");
        }
    }
    if config.strict && !all_pass {
        std::process::exit(1);
    }
}

/// Parts (1) and (2): the SQLite baseline in two halves around aixin on SQLite.
fn sqlite_part(config: &Config, runtime: &tokio::runtime::Runtime) -> (f64, AixinRun) {
    println!(
        "\n[1/4] SQLite baseline: rusqlite, WAL, synchronous=FULL, one transaction per transfer \
         (half before and half after [2/4], to even out drift on a shared machine)"
    );
    let mut raw = RawSqlite::open(config).expect("SQLite baseline setup");
    let before = raw.run(config.duration() / 2).expect("SQLite baseline");

    println!("\n[2/4] aixin on SQLite: earn entries through one Writer, synchronous=FULL");
    let sqlite_aixin = runtime
        .block_on(aixin_sqlite(config))
        .expect("aixin on SQLite");
    sqlite_aixin.print();

    println!("\n[1/4] SQLite baseline, second half");
    let after = raw.run(config.duration() / 2).expect("SQLite baseline");
    let sqlite_baseline = (before.0 + after.0) as f64 / (before.1 + after.1);
    println!(
        "      baseline: {sqlite_baseline:.0} transfers/s ({:.0}/s before, {:.0}/s after)",
        before.0 as f64 / before.1,
        after.0 as f64 / after.1
    );
    drop(raw);
    (sqlite_baseline, sqlite_aixin)
}

/// Prints one summary line; true if aixin reached `target` times the baseline.
fn summarize(label: &str, baseline_note: &str, baseline: f64, aixin: f64, target: f64) -> bool {
    let ratio = aixin / baseline;
    let pass = ratio >= target;
    println!(
        "{label} baseline {baseline:.0}/s{baseline_note}, aixin {aixin:.0}/s, ratio {ratio:.1}x (target {target:.0}x) {}",
        verdict(pass)
    );
    pass
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}

// ---------------------------------------------------------------------------------------------
// (1) SQLite baseline

/// The baseline: a plain transfers table driven through rusqlite, one transaction per transfer.
struct RawSqlite {
    conn: rusqlite::Connection,
    rng: XorShift,
    /// Transfers committed so far, over every run.
    done: u64,
    // Dropped last: removes the database file.
    _dir: tempfile::TempDir,
}

impl RawSqlite {
    const ACCOUNTS: i64 = 1000;

    fn open(config: &Config) -> Result<RawSqlite, BoxError> {
        let dir = tempfile::Builder::new()
            .prefix("aixin-bench-raw-")
            .tempdir_in(&config.dir)?;
        let mut conn = rusqlite::Connection::open(dir.path().join("raw.sqlite"))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL")?;
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        assert_eq!(synchronous, 2, "synchronous must be FULL (2)");
        conn.execute_batch(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
             CREATE TABLE transfers (
                 id INTEGER PRIMARY KEY,
                 from_id INTEGER NOT NULL,
                 to_id INTEGER NOT NULL,
                 amount INTEGER NOT NULL,
                 created_at INTEGER NOT NULL
             );",
        )?;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare("INSERT INTO accounts (id, balance) VALUES (?1, 0)")?;
            for id in 0..Self::ACCOUNTS {
                insert.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(RawSqlite {
            conn,
            rng: XorShift::new(0x5eed),
            done: 0,
            _dir: dir,
        })
    }

    /// Runs transfers for `duration`; returns (transfers, seconds).
    fn run(&mut self, duration: Duration) -> Result<(u64, f64), BoxError> {
        let cpu_start = process_cpu_secs();
        let start = Instant::now();
        let deadline = start + duration;
        let mut done = 0u64;
        while Instant::now() < deadline {
            let n = Self::ACCOUNTS as u64;
            let from = (self.rng.next() % n) as i64;
            let to = (from + 1 + (self.rng.next() % (n - 1)) as i64) % Self::ACCOUNTS;
            let amount = 100i64;
            let tx = self.conn.transaction()?;
            tx.prepare_cached("UPDATE accounts SET balance = balance - ?1 WHERE id = ?2")?
                .execute([amount, from])?;
            tx.prepare_cached("UPDATE accounts SET balance = balance + ?1 WHERE id = ?2")?
                .execute([amount, to])?;
            tx.prepare_cached(
                "INSERT INTO transfers (from_id, to_id, amount, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute([from, to, amount, SystemClock.now_micros()])?;
            tx.commit()?;
            done += 1;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = process_cpu_secs()
            .zip(cpu_start)
            .map(|(end, start)| end - start);
        self.done += done;
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM transfers", [], |r| r.get(0))?;
        assert_eq!(count as u64, self.done);
        let sum: i64 = self
            .conn
            .query_row("SELECT sum(balance) FROM accounts", [], |r| r.get(0))?;
        assert_eq!(sum, 0);
        print!(
            "      {done} transfers in {elapsed:.2} s: {:.0} transfers/s",
            done as f64 / elapsed
        );
        match cpu {
            Some(cpu) => println!(
                "; bench process CPU {cpu:.2} s ({:.1} µs per transfer)",
                cpu / done.max(1) as f64 * 1e6
            ),
            None => println!(),
        }
        Ok((done, elapsed))
    }
}

// ---------------------------------------------------------------------------------------------
// (2) and (4): aixin

struct AixinRun {
    posted: u64,
    elapsed: f64,
    /// CPU seconds this process used during the run (all threads), if known.
    cpu: Option<f64>,
    rate: f64,
    latency_micros: Vec<u32>,
    /// Batches the writer committed during the run.
    batches: u64,
}

impl AixinRun {
    fn print(&self) {
        let pct = |p: f64| {
            let n = self.latency_micros.len();
            if n == 0 {
                return 0.0;
            }
            let index = ((n as f64 * p) as usize).min(n - 1);
            f64::from(self.latency_micros[index]) / 1000.0
        };
        println!(
            "      {} entries posted in {:.2} s: {:.0} entries/s; submit latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.posted,
            self.elapsed,
            self.rate,
            pct(0.50),
            pct(0.99),
            pct(1.0),
        );
        println!(
            "      {} batches, {:.1} entries per batch on average",
            self.batches,
            self.posted as f64 / self.batches.max(1) as f64
        );
        if let Some(cpu) = self.cpu {
            println!(
                "      bench process CPU {:.2} s ({:.0}% of one core, {:.1} µs per entry)",
                cpu,
                cpu / self.elapsed * 100.0,
                cpu / self.posted.max(1) as f64 * 1e6
            );
        }
    }
}

async fn aixin_sqlite(config: &Config) -> Result<AixinRun, BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("aixin-bench-")
        .tempdir_in(&config.dir)?;
    let path = dir.path().join("aixin.sqlite");
    let url = format!("sqlite:{}", path_text(&path)?);
    let store = aixin::store::connect(&url).await?;
    // Opening accounts one at a time: SQLite has one writer, concurrency would only contend.
    let run = aixin_workload(config, store, 1).await?;
    Ok(run)
}

fn path_text(path: &Path) -> Result<&str, BoxError> {
    path.to_str()
        .ok_or_else(|| format!("temp path {} is not UTF-8", path.display()).into())
}

/// Sets up the ledger and accounts in `store`, then runs the clients for the configured time.
async fn aixin_workload(
    config: &Config,
    store: Arc<dyn Store>,
    open_concurrency: usize,
) -> Result<AixinRun, BoxError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
    store.migrate().await?;
    store.ensure_ledger(LEDGER, clock.now_micros()).await?;

    let setup = Instant::now();
    let issuance = NewAccount {
        id: entropy.uuid(),
        kind: AccountKind::Issuance,
        owner_id: None,
        community_id: Some("bench-community".to_owned()),
        label: "积分发放 / bench issuance".to_owned(),
    };
    let residents: Vec<NewAccount> = (0..config.accounts)
        .map(|i| NewAccount {
            id: entropy.uuid(),
            kind: AccountKind::Resident,
            owner_id: Some(format!("R{i:05}")),
            community_id: Some("bench-community".to_owned()),
            label: format!("居民 {i}"),
        })
        .collect();
    let opened: Vec<_> = futures_util::stream::iter(std::iter::once(&issuance).chain(&residents))
        .map(|account| {
            let store = store.clone();
            let now = clock.now_micros();
            async move { store.open_account(LEDGER, account, now).await }
        })
        .buffer_unordered(open_concurrency)
        .collect()
        .await;
    for opened in opened {
        match opened? {
            Opened::Created(_) => {}
            other => return Err(format!("account not created: {other:?}").into()),
        }
    }
    println!(
        "      opened {} accounts in {:.2} s",
        residents.len() + 1,
        setup.elapsed().as_secs_f64()
    );

    let writer = Writer::spawn(store.clone(), LEDGER.to_owned(), clock, entropy);
    let residents: Arc<Vec<Uuid>> = Arc::new(residents.iter().map(|a| a.id).collect());
    let cpu_start = process_cpu_secs();
    let start = Instant::now();
    let deadline = start + config.duration();
    let mut tasks = Vec::with_capacity(config.clients);
    for client in 0..config.clients {
        let writer = writer.clone();
        let residents = residents.clone();
        let issuance = issuance.id;
        tasks.push(tokio::spawn(async move {
            client_loop(client, writer, issuance, residents, deadline).await
        }));
    }
    let mut posted = 0u64;
    let mut latency_micros = Vec::new();
    let mut problems: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let result = task.await?;
        posted += result.posted;
        latency_micros.extend(result.latency_micros);
        for (problem, n) in result.problems {
            *problems.entry(problem).or_default() += n;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = process_cpu_secs()
        .zip(cpu_start)
        .map(|(end, start)| end - start);
    let batches = writer.stats().batches;
    drop(writer);
    if !problems.is_empty() {
        return Err(format!("writes were not all posted: {problems:?}").into());
    }
    let head = store
        .head(LEDGER)
        .await?
        .ok_or("the bench ledger vanished")?;
    if head.seq as u64 != posted {
        return Err(format!(
            "ledger head is {} but {posted} entries were posted",
            head.seq
        )
        .into());
    }
    latency_micros.sort_unstable();
    Ok(AixinRun {
        posted,
        elapsed,
        cpu,
        rate: posted as f64 / elapsed,
        latency_micros,
        batches,
    })
}

struct ClientResult {
    posted: u64,
    latency_micros: Vec<u32>,
    problems: BTreeMap<String, u64>,
}

async fn client_loop(
    client: usize,
    writer: Writer,
    issuance: Uuid,
    residents: Arc<Vec<Uuid>>,
    deadline: Instant,
) -> ClientResult {
    let mut rng = XorShift::new(client as u64 + 1);
    let amount = Amount::from_minor(100).expect("1.00 is a valid amount");
    let mut result = ClientResult {
        posted: 0,
        latency_micros: Vec::new(),
        problems: BTreeMap::new(),
    };
    let mut sequence = 0u64;
    while Instant::now() < deadline {
        let resident = residents[(rng.next() % residents.len() as u64) as usize];
        let draft = EntryDraft {
            kind: EntryKind::Earn,
            postings: vec![
                Posting {
                    account: issuance,
                    unit: Unit::Points,
                    side: Side::Debit,
                    amount,
                },
                Posting {
                    account: resident,
                    unit: Unit::Points,
                    side: Side::Credit,
                    amount,
                },
            ],
            memo: "志愿服务：入户走访".to_owned(),
            metadata: BTreeMap::new(),
            reverses: None,
        };
        sequence += 1;
        let sent = Instant::now();
        let outcome = writer
            .submit(
                format!("bench-{client}-{sequence}"),
                "bench".to_owned(),
                draft,
            )
            .await;
        let problem = match outcome {
            Ok(Outcome::Posted(_)) => {
                result.posted += 1;
                let micros = sent.elapsed().as_micros();
                result
                    .latency_micros
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
                continue;
            }
            Ok(Outcome::Replayed(_)) => "replayed".to_owned(),
            Ok(Outcome::Refused(refusal)) => format!("refused: {refusal}"),
            Err(error) => format!("error: {error}"),
        };
        *result.problems.entry(problem).or_default() += 1;
    }
    result
}

// ---------------------------------------------------------------------------------------------
// (3) and (4): PostgreSQL

async fn postgres_part(config: &Config) -> Result<(f64, AixinRun), BoxError> {
    println!("\n[3/4] PostgreSQL baseline: pgbench -b tpcb-like");
    let pgbench = Command::new("pgbench").arg("--version").output();
    match pgbench {
        Ok(out) if out.status.success() => {
            print!("      {}", String::from_utf8_lossy(&out.stdout));
        }
        Ok(out) => return Err(format!("pgbench --version failed: {}", out.status).into()),
        Err(e) => return Err(format!("pgbench not runnable: {e}").into()),
    }
    let server = PgConnectOptions::from_str(&config.postgres_url)?;
    let mut admin =
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&server))
            .await
            .map_err(|_| "timed out connecting to PostgreSQL")??;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(BENCH_DATABASE)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {BENCH_DATABASE}"))
            .execute(&mut admin)
            .await?;
        println!("      created database {BENCH_DATABASE}");
    }
    admin.close().await?;

    let bench_options = server.clone().database(BENCH_DATABASE);
    let mut conn = PgConnection::connect_with(&bench_options).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut conn)
        .await?;
    let fsync: String = sqlx::query_scalar("SHOW fsync")
        .fetch_one(&mut conn)
        .await?;
    let wal_sync_method: String = sqlx::query_scalar("SHOW wal_sync_method")
        .fetch_one(&mut conn)
        .await?;
    let commit_delay: String = sqlx::query_scalar("SHOW commit_delay")
        .fetch_one(&mut conn)
        .await?;
    println!(
        "      server {version}: SHOW synchronous_commit = {synchronous_commit}, SHOW fsync = {fsync}, \
         wal_sync_method = {wal_sync_method}, commit_delay = {commit_delay}"
    );
    if fsync != "on" {
        println!("      !!! fsync is off on this server: neither PostgreSQL figure is durable");
    }

    let bench_url = with_database(&config.postgres_url, BENCH_DATABASE);
    let init = Instant::now();
    let out = Command::new("pgbench")
        .args([
            "-i",
            "-q",
            "-s",
            &config.pgbench_scale.to_string(),
            &bench_url,
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "pgbench -i failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    println!(
        "      pgbench -i -s {} done in {:.1} s",
        config.pgbench_scale,
        init.elapsed().as_secs_f64()
    );
    let half = (config.secs / 2.0).ceil().max(1.0) as u64;
    println!(
        "      PGOPTIONS='-c synchronous_commit=on' pgbench {} <{BENCH_DATABASE}> \
         (twice: before and after [4/4])",
        pgbench_args(config, half).join(" ")
    );
    let before = pgbench_run(config, &bench_url, half)?;
    // pgbench's tables stay in aixin_bench (re-initialised on every run); nothing else uses them.

    println!("\n[4/4] aixin on PostgreSQL: earn entries through one Writer, synchronous_commit=on");
    let schema = format!(
        "aixin_bench_{}_{}",
        std::process::id(),
        SystemClock.now_micros()
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await?;
    let result = aixin_postgres(config, &bench_options, &schema).await;
    if config.keep_schema {
        conn.close().await?;
        println!("      kept schema {schema} (AIXIN_BENCH_KEEP_SCHEMA): drop it when done");
    } else {
        let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut conn)
            .await;
        conn.close().await?;
        dropped?;
        println!("      dropped schema {schema}");
    }
    let run = result?;
    run.print();

    println!("\n[3/4] PostgreSQL baseline, second half");
    let after = pgbench_run(config, &bench_url, half)?;
    // Both halves last `half` seconds: the combined rate is their mean.
    let tps = (before + after) / 2.0;
    println!("      baseline: {tps:.0} tps ({before:.0} before, {after:.0} after)");
    Ok((tps, run))
}

fn pgbench_args(config: &Config, secs: u64) -> Vec<String> {
    [
        "-b",
        "tpcb-like",
        "-c",
        &config.pgbench_clients.to_string(),
        "-j",
        &config.pgbench_jobs.to_string(),
        "-T",
        &secs.to_string(),
        "-M",
        "prepared",
        "-n",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Runs pgbench for `secs` seconds and returns its `tps = ` figure.
fn pgbench_run(config: &Config, url: &str, secs: u64) -> Result<f64, BoxError> {
    let out = Command::new("pgbench")
        .args(pgbench_args(config, secs))
        .arg(url)
        .env("PGOPTIONS", "-c synchronous_commit=on")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let tps = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| format!("no `tps = ` line in pgbench output:\n{stdout}"))?;
    let processed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .unwrap_or("?");
    let latency = stdout
        .lines()
        .find_map(|l| l.strip_prefix("latency average = "))
        .unwrap_or("?");
    println!("      {processed} transactions, latency average {latency}, tps = {tps:.0}");
    Ok(tps)
}

async fn aixin_postgres(
    config: &Config,
    options: &PgConnectOptions,
    schema: &str,
) -> Result<AixinRun, BoxError> {
    let store =
        Arc::new(PgStore::connect_with(options.clone().options([("search_path", schema)])).await?);
    let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(store.pool())
        .await?;
    println!("      schema {schema}; aixin's connections: SHOW synchronous_commit = {synchronous_commit}");
    let dyn_store: Arc<dyn Store> = store.clone();
    let run = aixin_workload(config, dyn_store, 16).await;
    store.pool().close().await;
    run
}

/// `url` with its database name replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// CPU time (user + system, all threads) this process has used, from `/proc/self/stat` (Linux;
/// `None` elsewhere). Shown beside each rate because this machine may be shared.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel reports these in USER_HZ, which is 100 on every Linux ABI Rust targets.
    Some(ticks / 100.0)
}

/// A tiny deterministic generator for picking accounts (no extra dependency).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
