//! The `aixin` command line: serve, migrate, verify, tokens and the demo seed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use aixin::app::App;
use aixin::audit::export::Bound;
use aixin::auth::{new_token, Principal, Role};
use aixin::clock::{Clock, OsEntropy, SystemClock};
use aixin::http::router;
use aixin::keys::{KeyRing, SharedKeys};
use aixin::store::{self, ledger_id_is_valid};

/// `print!` to stdout, except that a reader that has gone away (`aixin audit verify DIR | head -1`)
/// is not an error: the rest of the output is dropped and the command ends with its own exit
/// status. Any other failure to write ends the process with status 2.
macro_rules! out {
    ($($arg:tt)*) => {
        write_stdout(format_args!($($arg)*))
    };
}

/// `println!` with the same treatment of a closed stdout as [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("aixin: cannot write to stdout: {e}");
            std::process::exit(2);
        }
    }
}

/// aixin (爱心): a double-entry ledger of community volunteer points.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Database: `sqlite:PATH` (the file is created on first run) or `postgres://...`.
    #[arg(
        long,
        global = true,
        env = "AIXIN_DATABASE_URL",
        default_value = "sqlite:aixin.sqlite"
    )]
    database_url: String,
    /// The ledger (one per county programme) to work on.
    #[arg(long, global = true, env = "AIXIN_LEDGER", default_value = "default")]
    ledger: String,
    /// The key file (master key for resident code secrets, receipt and audit signing keys).
    /// Created with owner-only permissions on first use; keep it out of database backups.
    /// Default `aixin-keys.json`; `audit verify` checks signatures only when it is given.
    #[arg(long, global = true, env = "AIXIN_KEYS")]
    keys: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "AIXIN_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Seconds between signed checkpoints of every ledger's head (default: daily).
        #[arg(long, env = "AIXIN_CHECKPOINT_EVERY", default_value_t = 86_400)]
        checkpoint_every: u64,
    },
    /// Apply database migrations and create the ledger if missing.
    Migrate,
    /// Recompute the hash chain and every balance; exit 1 on the first problem.
    Verify,
    /// Receipts: verify one offline, with the key file alone (no database).
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// Manage the signing keys in the key file.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Audit bundles, offline verification and signed checkpoints.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Reports for auditors and staff, as JSON (default) or CSV.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
        /// CSV instead of JSON.
        #[arg(long, global = true)]
        csv: bool,
    },
    /// Post expiry entries for points whose last valid day is before DATE (default: today, UTC).
    Expire {
        /// YYYY-MM-DD.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Fill an empty ledger with a realistic demo programme.
    SeedDemo {
        /// How many entries to create.
        #[arg(long, default_value_t = 2_000)]
        entries: u64,
        /// Seed of the generator: the same seed gives the same programme.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write the audit bundle of a range of the journal into DIR (see ledger-specs/audit-bundle.md).
    Export {
        /// Directory to write the bundle into (created if missing).
        #[arg(long)]
        out: std::path::PathBuf,
        /// First entry: a sequence number, or a day (YYYY-MM-DD, UTC+8). Default: entry 1.
        #[arg(long)]
        from: Option<String>,
        /// Last entry: a sequence number, or a day (YYYY-MM-DD, UTC+8). Default: the head.
        #[arg(long)]
        to: Option<String>,
    },
    /// Verify a bundle offline (no database); exit 1 naming the first problem.
    Verify {
        /// The bundle's directory.
        dir: std::path::PathBuf,
        /// A checkpoint line kept from before (e.g. from checkpoints.jsonl or
        /// `aixin audit checkpoint`): the bundle must extend it.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// Sign and store a checkpoint of the ledger's head now; print it (one JSON line).
    Checkpoint,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Every account's balance after an entry or a day, in debit and credit columns.
    TrialBalance {
        /// A sequence number or a day (YYYY-MM-DD, UTC+8). Default: the head.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A community's issued, redeemed, refunded, expired and outstanding points.
    Community {
        id: String,
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A shop's points entry by entry.
    Shop {
        id: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReceiptCommand {
    /// Verify a receipt's compact form (AXR1:...); prints its fields, exits 1 if it does not
    /// verify. Uses `--keys` (or AIXIN_KEYS) and never opens the database.
    Verify {
        /// The compact form, or `-` to read it from stdin.
        receipt: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the signing keys with their status (secrets are not printed).
    List,
    /// Retire the active signing key and make a new one active; retired keys still verify.
    Rotate,
    /// Revoke a retired signing key: what it signed no longer verifies.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it alone on stdout (it is shown only this once).
    Create {
        /// admin, staff, shop, resident or auditor.
        #[arg(long)]
        role: String,
        /// The community (staff), shop (shop) or resident (resident) the token is limited to.
        #[arg(long)]
        scope: Option<String>,
        /// A note on who holds the token.
        #[arg(long, default_value = "")]
        label: String,
        /// Expire after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a token by its id (printed on stderr when it was created).
    Revoke { id: uuid::Uuid },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("aixin: {message}");
            ExitCode::from(2)
        }
    }
}

async fn open(cli: &Cli) -> Result<store::Stores, String> {
    if !ledger_id_is_valid(&cli.ledger) {
        return Err(format!(
            "ledger id {:?} must be 1 to 64 lowercase letters, digits, '-' or '_'",
            cli.ledger
        ));
    }
    let stores = store::connect_all(&cli.database_url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", redact(&cli.database_url)))?;
    let store = &stores.ledger;
    store.migrate().await.map_err(|e| e.to_string())?;
    store
        .ensure_ledger(&cli.ledger, SystemClock.now_micros())
        .await
        .map_err(|e| e.to_string())?;
    Ok(stores)
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let key_file = cli
        .keys
        .clone()
        .unwrap_or_else(|| aixin::keys::DEFAULT_KEY_FILE.into());
    if let Command::Keys { command } = &cli.command {
        return keys_command(&key_file, command);
    }
    if let Command::Receipt {
        command: ReceiptCommand::Verify { receipt },
    } = &cli.command
    {
        return verify_receipt(&key_file, receipt);
    }
    if let Command::Audit {
        command: AuditCommand::Verify { dir, checkpoint },
    } = &cli.command
    {
        return audit_verify(dir, cli.keys.as_deref(), checkpoint.as_deref());
    }
    let stores = open(&cli).await?;
    let store = stores.ledger.clone();
    let clock = Arc::new(SystemClock);
    match cli.command {
        Command::Keys { command } => keys_command(&key_file, &command),
        Command::Receipt {
            command: ReceiptCommand::Verify { receipt },
        } => verify_receipt(&key_file, &receipt),
        Command::Report { command, csv } => {
            let store = store.as_ref();
            let ledger = cli.ledger.as_str();
            let text = match command {
                ReportCommand::TrialBalance { as_of } => {
                    let r =
                        aixin::audit::export::trial_balance(store, ledger, bound(as_of, "as-of")?)
                            .await
                            .map_err(|e| e.to_string())?;
                    if csv {
                        r.to_csv()
                    } else {
                        json_text(&r)
                    }
                }
                ReportCommand::Community { id, as_of } => {
                    let r = aixin::audit::export::community_summary(
                        store,
                        ledger,
                        &id,
                        bound(as_of, "as-of")?,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    if csv {
                        r.to_csv()
                    } else {
                        json_text(&r.to_json())
                    }
                }
                ReportCommand::Shop { id, from, to } => {
                    let r = aixin::audit::export::shop_statement(
                        store,
                        ledger,
                        &id,
                        bound(from, "from")?,
                        bound(to, "to")?,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    if r.accounts.is_empty() {
                        return Err(format!("no shop {id:?}"));
                    }
                    if csv {
                        r.to_csv()
                    } else {
                        json_text(&r)
                    }
                }
            };
            out!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command } => {
            let (ring, _) = KeyRing::load_or_create(&key_file, &OsEntropy, clock.now_micros())
                .map_err(|e| e.to_string())?;
            match command {
                AuditCommand::Export { out, from, to } => {
                    let (from, to) = (bound(from, "from")?, bound(to, "to")?);
                    let manifest = aixin::audit::export::export_bundle(
                        &stores,
                        &cli.ledger,
                        from,
                        to,
                        &ring,
                        clock.now_micros(),
                        &out,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    outln!(
                        "exported ledger {:?} entries {} to {} ({} postings, {} accounts) to {}; head {}",
                        manifest.ledger,
                        manifest.from_seq,
                        manifest.to_seq,
                        manifest.counts.postings,
                        manifest.counts.accounts,
                        out.display(),
                        manifest.head_hash
                    );
                    Ok(ExitCode::SUCCESS)
                }
                AuditCommand::Checkpoint => {
                    let checkpoint = aixin::audit::export::checkpoint_head(
                        store.as_ref(),
                        &cli.ledger,
                        &ring,
                        clock.now_micros(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    out!("{}", aixin::audit::format::checkpoint_line(&checkpoint));
                    Ok(ExitCode::SUCCESS)
                }
                AuditCommand::Verify { .. } => unreachable!("handled before the database opens"),
            }
        }
        Command::Migrate => {
            eprintln!(
                "migrated {}; ledger {:?} ready",
                redact(&cli.database_url),
                cli.ledger
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify => match store.verify(&cli.ledger).await.map_err(|e| e.to_string())? {
            Ok(summary) => {
                outln!(
                    "ok: ledger {:?}, {} entries, {} accounts, head {}",
                    cli.ledger,
                    summary.entries,
                    summary.accounts,
                    summary.head_hash
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(problem) => {
                match problem.seq {
                    Some(seq) => outln!(
                        "FAILED at entry {seq}: {:?}: {}",
                        problem.kind,
                        problem.detail
                    ),
                    None => outln!("FAILED: {:?}: {}", problem.kind, problem.detail),
                }
                Ok(ExitCode::from(1))
            }
        },
        Command::Token { command } => match command {
            TokenCommand::Create {
                role,
                scope,
                label,
                expires_in_days,
            } => {
                let role = Role::parse(&role).ok_or_else(|| {
                    format!("unknown role {role:?} (admin, staff, shop, resident, auditor)")
                })?;
                if role.needs_scope() && scope.is_none() {
                    return Err(format!("a {} token needs --scope", role.as_str()));
                }
                let ttl = expires_in_days.map(|d| i64::from(d) * 86_400 * 1_000_000);
                let (secret, record) = new_token(
                    &OsEntropy,
                    clock.now_micros(),
                    &cli.ledger,
                    role,
                    scope,
                    label,
                    ttl,
                );
                store
                    .insert_token(&record)
                    .await
                    .map_err(|e| e.to_string())?;
                eprintln!(
                    "created {} token {} for ledger {:?}",
                    role.as_str(),
                    record.id,
                    cli.ledger
                );
                outln!("{secret}");
                Ok(ExitCode::SUCCESS)
            }
            TokenCommand::Revoke { id } => {
                if store
                    .revoke_token(id, clock.now_micros())
                    .await
                    .map_err(|e| e.to_string())?
                {
                    eprintln!("revoked token {id}");
                    Ok(ExitCode::SUCCESS)
                } else {
                    Err(format!("no token {id}"))
                }
            }
        },
        Command::Expire { as_of } => {
            let as_of = match as_of {
                Some(text) => aixin::calendar::parse_date(&text)
                    .ok_or_else(|| format!("--as-of {text:?} is not a date (YYYY-MM-DD)"))?,
                None => aixin::calendar::day_of(clock.now_micros()),
            };
            let app = App::new(stores, clock, Arc::new(OsEntropy));
            let report = app
                .earning
                .run_expiry(&Principal::operator(&cli.ledger, "aixin-expire"), as_of)
                .await
                .map_err(|e| e.detail)?;
            outln!(
                "expired {} points in {} accounts as of {} ({} refused)",
                aixin::ledger::format_minor(report.points_minor),
                report.accounts,
                aixin::calendar::format_date(report.as_of),
                report.refused
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::SeedDemo { entries, seed } => {
            let report =
                aixin::seed::seed_demo(stores, &cli.ledger, entries, seed, clock.now_micros())
                    .await
                    .map_err(|e| e.to_string())?;
            eprintln!(
                "seeded ledger {:?}: {} accounts, {} entries",
                cli.ledger, report.accounts, report.entries
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            checkpoint_every,
        } => {
            let admins = store
                .count_live_tokens(&cli.ledger, "admin", clock.now_micros())
                .await
                .map_err(|e| e.to_string())?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let (ring, created) =
                KeyRing::load_or_create(&key_file, &OsEntropy, clock.now_micros())
                    .map_err(|e| e.to_string())?;
            let keys = SharedKeys::from_file(key_file.clone(), ring);
            tokio::spawn(reload_keys(keys.clone()));
            let state =
                App::new(stores, clock.clone(), Arc::new(OsEntropy)).with_keys(keys.clone());
            tokio::spawn(expiry_schedule(state.earning.clone()));
            tokio::spawn(checkpoint_schedule(
                state.store.clone(),
                keys.clone(),
                clock.clone(),
                checkpoint_every,
            ));
            eprintln!(
                "aixin is serving ledger {:?} from {}",
                cli.ledger,
                redact(&cli.database_url)
            );
            eprintln!(
                "  API:      http://{listen}/v1   (OpenAPI: http://{listen}/v1/openapi.json)"
            );
            eprintln!("  health:   http://{listen}/healthz");
            eprintln!(
                "  keys:     {} ({})",
                key_file.display(),
                if created {
                    "created now; back it up apart from the database"
                } else {
                    "loaded"
                }
            );
            if admins == 0 {
                eprintln!("  no admin token exists yet; create the first one with:");
                // A URL with a password is not echoed; the operator supplies it again.
                let url = if redact(&cli.database_url) == cli.database_url {
                    cli.database_url.clone()
                } else {
                    "<the same URL>".to_owned()
                };
                // The command as this binary was started (`aixin`, `target/release/aixin`, ...).
                let program = std::env::args_os()
                    .next()
                    .map_or_else(|| "aixin".into(), |p| p.to_string_lossy().into_owned());
                eprintln!(
                    "    {program} --database-url '{url}' --ledger {} token create --role admin",
                    cli.ledger
                );
            }
            axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown_signal())
                .await
                .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn verify_receipt(keys: &std::path::Path, receipt: &str) -> Result<ExitCode, String> {
    // Offline: the key file must exist already; it is never created here.
    let ring = KeyRing::load(keys).map_err(|e| e.to_string())?;
    let text = if receipt == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::io::stdin(), 16 * 1024),
            &mut text,
        )
        .map_err(|e| e.to_string())?;
        text
    } else {
        receipt.to_owned()
    };
    match aixin::redeem::receipt::verify_compact(&ring, &text) {
        Ok(r) => {
            let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
            outln!("{json}");
            eprintln!("receipt {} verifies (key {})", r.id, r.key_id);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("receipt does not verify: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn keys_command(path: &std::path::Path, command: &KeysCommand) -> Result<ExitCode, String> {
    let (mut ring, _) = KeyRing::load_or_create(path, &OsEntropy, SystemClock.now_micros())
        .map_err(|e| e.to_string())?;
    match command {
        KeysCommand::List => {
            for key in ring.signing_keys() {
                outln!("{}\t{:?}\t{}", key.id, key.status, key.created_at);
            }
        }
        KeysCommand::Rotate => {
            let id = ring.rotate(&OsEntropy, SystemClock.now_micros());
            ring.save(path).map_err(|e| e.to_string())?;
            eprintln!("new active signing key {id}; running servers pick it up within a minute");
            outln!("{id}");
        }
        KeysCommand::Revoke { id } => {
            ring.revoke(id).map_err(|e| e.to_string())?;
            ring.save(path).map_err(|e| e.to_string())?;
            eprintln!("revoked signing key {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How often `serve` looks for a changed key file.
const KEY_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

async fn reload_keys(keys: SharedKeys) {
    let mut tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
    loop {
        tick.tick().await;
        match keys.reload_if_changed() {
            Ok(true) => tracing::info!("key file changed; reloaded"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "key file changed but cannot be loaded; keeping the old keys")
            }
        }
    }
}

/// How often `serve` sweeps expired points (each run is idempotent).
const EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Inside `serve`: expire points for every ledger of the database, at start and then hourly.
async fn expiry_schedule(earning: aixin::earning::Earning) {
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    loop {
        tick.tick().await;
        let today = aixin::calendar::day_of(earning.clock.now_micros());
        let ledgers = match earning.ledger.ledgers().await {
            Ok(ledgers) => ledgers,
            Err(error) => {
                tracing::warn!(%error, "expiry schedule: cannot list ledgers");
                continue;
            }
        };
        for ledger in ledgers {
            match earning
                .run_expiry(&Principal::operator(&ledger, "aixin-schedule"), today)
                .await
            {
                Ok(report) if report.accounts > 0 => {
                    tracing::info!(%ledger, accounts = report.accounts, points = %aixin::ledger::format_minor(report.points_minor), "expired points")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%ledger, detail = %error.detail, "expiry run failed"),
            }
        }
    }
}

/// Inside `serve`: a signed checkpoint of every ledger's head, at start and then every
/// `every_secs` (a head that already has one is not signed again).
async fn checkpoint_schedule(
    store: Arc<dyn store::Store>,
    keys: SharedKeys,
    clock: Arc<SystemClock>,
    every_secs: u64,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(every_secs.max(1)));
    loop {
        tick.tick().await;
        let ledgers = match store.ledgers().await {
            Ok(ledgers) => ledgers,
            Err(error) => {
                tracing::warn!(%error, "checkpoint schedule: cannot list ledgers");
                continue;
            }
        };
        let ring = keys.get();
        for ledger in ledgers {
            match aixin::audit::export::checkpoint_head(
                store.as_ref(),
                &ledger,
                &ring,
                clock.now_micros(),
            )
            .await
            {
                Ok(checkpoint) => tracing::info!(%ledger, seq = checkpoint.seq, "checkpoint"),
                Err(error) => tracing::warn!(%ledger, %error, "checkpoint failed"),
            }
        }
    }
}

/// `aixin audit verify`: no database, no network.
fn audit_verify(
    dir: &std::path::Path,
    keys: Option<&std::path::Path>,
    checkpoint: Option<&std::path::Path>,
) -> Result<ExitCode, String> {
    let ring = keys
        .map(KeyRing::load)
        .transpose()
        .map_err(|e| e.to_string())?;
    let retained = checkpoint
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let line = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            aixin::audit::format::parse_checkpoint_line(line)
                .map_err(|e| format!("{} is not a checkpoint line: {e}", path.display()))
        })
        .transpose()?;
    let source = aixin::audit::verify::DirSource(dir.to_path_buf());
    match aixin::audit::verify::verify_bundle(&source, ring.as_ref(), retained.as_ref()) {
        Ok(summary) => {
            outln!(
                "ok: ledger {:?}, entries {} to {} ({} postings, {} accounts, {} checkpoints), head {}",
                summary.ledger,
                summary.from_seq,
                summary.to_seq,
                summary.postings,
                summary.accounts,
                summary.checkpoints,
                summary.head_hash
            );
            if !summary.signatures_checked {
                outln!("note: signatures not checked (give --keys FILE to check them)");
            }
            if let Some(seq) = summary.extends_checkpoint {
                outln!("ok: extends the retained checkpoint of entry {seq}");
            }
            for (unit, kind, balance) in &summary.totals {
                outln!("total {unit} {kind} {balance}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            outln!("FAILED: {problem}");
            Ok(ExitCode::from(1))
        }
    }
}

/// A range bound from the command line.
fn bound(text: Option<String>, name: &str) -> Result<Option<Bound>, String> {
    text.map(|t| {
        Bound::parse(&t).ok_or_else(|| {
            format!("--{name} {t:?} is neither a sequence number nor a date (YYYY-MM-DD)")
        })
    })
    .transpose()
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests finish before the process exits.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    eprintln!("aixin: shutting down");
}

/// Hides a password in a database URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => {
                    format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
