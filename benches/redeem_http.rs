//! Full redemptions per second over HTTP: card check, basket, entry, lots and receipt, with 64
//! concurrent connections from a real load generator (`wrk`), on SQLite and on PostgreSQL,
//! with p50 and p99 latency. The server runs in this process on 127.0.0.1, with the same
//! durability as `aixin serve` (SQLite WAL + synchronous=FULL; PostgreSQL synchronous_commit=on).
//!
//! Run: `cargo bench --bench redeem_http` (needs `wrk`: `apt-get install wrk`).
//! For the baselines of the same machine and moment, run `cargo bench --bench ledger` right
//! before or after.
//!
//! Each request redeems 1–3 items with a printed card and PIN (a code is one-time per resident
//! and 30-second step, so a load test of thousands per second would need hundreds of thousands of
//! residents; the card path runs the same credential check, attempt accounting and batch).
//!
//! Environment (all optional):
//! - `AIXIN_BENCH_SECS`: seconds per run (default 10).
//! - `AIXIN_BENCH_CONNECTIONS`: wrk connections (default 64); `AIXIN_BENCH_THREADS`: wrk threads (default 2).
//! - `AIXIN_BENCH_RESIDENTS`: residents with cards (default 1000).
//! - `AIXIN_BENCH_DIR`: where the SQLite file goes (a real disk, not tmpfs).
//! - `AIXIN_BENCH_POSTGRES_URL` (else `AIXIN_TEST_POSTGRES_URL`, else
//!   `postgres://postgres@127.0.0.1:5432/test`): a fresh schema is made there and dropped.
//! - `AIXIN_BENCH_SKIP_POSTGRES=1`: SQLite only.

use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;

use aixin::app::App;
use aixin::auth::{new_token, Principal, Role};
use aixin::clock::{Clock, OsEntropy, SystemClock};
use aixin::earning::service::NewOrgUnit;
use aixin::http::router;
use aixin::ledger::{Amount, EntryDraft, EntryKind, Posting, Side, Unit};
use aixin::model::ExpiryPolicy;
use aixin::redeem::service::NewItem;
use aixin::store::Stores;
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;

const LEDGER: &str = "bench";
const SQLITE_TARGET: (f64, f64) = (15_000.0, 15.0);
const POSTGRES_TARGET: (f64, f64) = (8_000.0, 30.0);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

struct Figures {
    redemptions: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), BoxError> {
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("redeem_http: SKIPPED: wrk is not installed (apt-get install wrk)");
        return Ok(());
    }
    let secs: u64 = env_or("AIXIN_BENCH_SECS", 10);
    println!("aixin redemption benchmark over HTTP: {secs} s per backend, wrk with {} connections, {} threads",
        env_or("AIXIN_BENCH_CONNECTIONS", 64u32), env_or("AIXIN_BENCH_THREADS", 2u32));
    let dir = tempfile::Builder::new()
        .prefix("aixin-redeem-bench")
        .tempdir_in(
            std::env::var("AIXIN_BENCH_DIR")
                .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
        )?;
    let url = format!("sqlite:{}", dir.path().join("bench.sqlite").display());
    let stores = aixin::store::connect_all(&url).await?;
    let sqlite = measure(stores, secs).await?;
    report("SQLite", &sqlite, SQLITE_TARGET);
    if std::env::var("AIXIN_BENCH_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        println!("PostgreSQL: SKIPPED (AIXIN_BENCH_SKIP_POSTGRES=1)");
        return Ok(());
    }
    let pg_url = std::env::var("AIXIN_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("AIXIN_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let options = PgConnectOptions::from_str(&pg_url)?;
    let schema = format!("aixin_redeem_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect_with(&options).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await?;
    let store = aixin::store::postgres::PgStore::connect_with(
        options.clone().options([("search_path", schema.as_str())]),
    )
    .await?;
    let result = measure(Stores::of(store), secs).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await?;
    report("PostgreSQL", &result?, POSTGRES_TARGET);
    Ok(())
}

fn report(name: &str, f: &Figures, (rate, p99): (f64, f64)) {
    println!(
        "{name}: {:.0} redemptions/s ({} in all, {} non-2xx answers), p50 {:.2} ms, p99 {:.2} ms; target ≥ {rate:.0}/s with p99 ≤ {p99} ms: {}",
        f.per_second,
        f.redemptions,
        f.non_2xx,
        f.p50_ms,
        f.p99_ms,
        if f.per_second >= rate && f.p99_ms <= p99 { "MET" } else { "MISSED" }
    );
}

async fn measure(stores: Stores, secs: u64) -> Result<Figures, BoxError> {
    let clock = Arc::new(SystemClock);
    let entropy = Arc::new(OsEntropy);
    stores.ledger.migrate().await?;
    stores
        .ledger
        .ensure_ledger(LEDGER, clock.now_micros())
        .await?;
    let state = App::new(stores.clone(), clock.clone(), entropy.clone());
    let admin = Principal {
        operator: None,
        token_id: uuid::Uuid::nil(),
        ledger_id: LEDGER.into(),
        role: Role::Admin,
        scope: None,
    };
    let (unit, _) = state
        .earning
        .create_org_unit(
            &admin,
            NewOrgUnit {
                id: "c1".into(),
                parent_id: None,
                level: "community".into(),
                name_zh: "幸福社区".into(),
                name_en: "Xingfu".into(),
                community: Some(ExpiryPolicy::Never),
            },
        )
        .await
        .map_err(|e| e.detail)?;
    let issuance = unit
        .community
        .as_ref()
        .ok_or("no community")?
        .issuance_account;
    let (shop, _) = state
        .redemption
        .create_shop(
            &admin,
            "shop",
            aixin::redeem::service::NewShop {
                name_zh: "爱心粮油店".into(),
                name_en: String::new(),
                community_id: "c1".into(),
                serves: vec![],
                refund_window_days: None,
            },
        )
        .await
        .map_err(|e| e.detail)?;
    for (sku, name) in [("RICE", "大米"), ("OIL", "花生油"), ("FLOUR", "面粉")] {
        state
            .redemption
            .put_item(
                &admin,
                shop.id,
                sku,
                NewItem {
                    name_zh: name.into(),
                    name_en: String::new(),
                    unit: "袋".into(),
                    price: Amount::parse("1")?,
                    track_stock: false,
                    cap_day: None,
                    cap_month: None,
                    active: true,
                },
            )
            .await
            .map_err(|e| e.detail)?;
    }
    let residents: usize = env_or("AIXIN_BENCH_RESIDENTS", 1000);
    let writer = state.writers.get(LEDGER);
    let mut cards = Vec::with_capacity(residents);
    for i in 0..residents {
        let (resident, _) = state
            .earning
            .register_resident(
                &admin,
                &format!("r{i}"),
                aixin::earning::service::NewResident {
                    name: format!("居民{i}"),
                    phone: "13800000000".into(),
                    community_id: "c1".into(),
                },
            )
            .await
            .map_err(|e| e.detail)?;
        let points = Amount::parse("1000000")?;
        writer
            .submit(
                format!("earn{i}"),
                "bench".into(),
                EntryDraft {
                    kind: EntryKind::Earn,
                    postings: vec![
                        Posting {
                            account: issuance,
                            unit: Unit::Points,
                            side: Side::Debit,
                            amount: points,
                        },
                        Posting {
                            account: resident.account_id,
                            unit: Unit::Points,
                            side: Side::Credit,
                            amount: points,
                        },
                    ],
                    memo: String::new(),
                    metadata: Default::default(),
                    reverses: None,
                },
            )
            .await?;
        let issued = state
            .redemption
            .issue_credential(&admin, &format!("card-{}", resident.id), resident.id)
            .await
            .map_err(|e| e.detail)?;
        cards.push((issued.number, issued.card_pin));
    }
    let (token, record) = new_token(
        entropy.as_ref(),
        clock.now_micros(),
        LEDGER,
        Role::Shop,
        Some(shop.id.to_string()),
        "bench".into(),
        None,
    );
    stores.ledger.insert_token(&record).await?;
    let before = stores
        .ledger
        .head(LEDGER)
        .await?
        .map(|h| h.seq)
        .unwrap_or(0);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let script = tempfile::NamedTempFile::new()?;
    let table: Vec<String> = cards
        .iter()
        .map(|(n, p)| format!("{{\"{n}\",\"{p}\"}}"))
        .collect();
    std::fs::write(
        script.path(),
        format!(
            r#"
local cards = {{{cards}}}
local skus = {{"RICE", "OIL", "FLOUR"}}
local counter = 0
local id = 0
setup = function(thread) id = id + 1; thread:set("tid", id) end
init = function(args) math.randomseed(os.time() + tid) end
request = function()
  counter = counter + 1
  local c = cards[math.random(#cards)]
  local n = math.random(3)
  local items = {{}}
  for i = 1, n do items[i] = string.format('{{"sku":"%s","quantity":%d}}', skus[i], math.random(2)) end
  local body = string.format('{{"card":{{"number":"%s","pin":"%s"}},"items":[%s]}}', c[1], c[2], table.concat(items, ","))
  local headers = {{}}
  headers["Authorization"] = "Bearer {token}"
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format("t%d-%d", tid, counter)
  return wrk.format("POST", "/v1/redemptions", headers, body)
end
"#,
            cards = table.join(","),
            token = token
        ),
    )?;
    let output = tokio::task::spawn_blocking({
        let script = script.path().to_owned();
        move || {
            Command::new("wrk")
                .args(["-t", &env_or("AIXIN_BENCH_THREADS", 2u32).to_string()])
                .args(["-c", &env_or("AIXIN_BENCH_CONNECTIONS", 64u32).to_string()])
                .args([
                    "-d",
                    &format!("{secs}s"),
                    "--latency",
                    "--timeout",
                    "10s",
                    "-s",
                ])
                .arg(script)
                .arg(format!("http://{addr}"))
                .output()
        }
    })
    .await??;
    server.abort();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let after = stores
        .ledger
        .head(LEDGER)
        .await?
        .map(|h| h.seq)
        .unwrap_or(0);
    let redemptions = (after - before) as u64;
    let latency = |label: &str| -> f64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(parse_duration_ms)
            .unwrap_or(f64::NAN)
    };
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(Figures {
        redemptions,
        per_second: redemptions as f64 / secs as f64,
        p50_ms: latency("50%"),
        p99_ms: latency("99%"),
        non_2xx,
    })
}

/// wrk prints durations like `812.00us`, `3.41ms`, `1.02s`.
fn parse_duration_ms(text: &str) -> f64 {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, f64::NAN)
    };
    number.parse::<f64>().map(|n| n * scale).unwrap_or(f64::NAN)
}
