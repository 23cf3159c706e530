//! The `aixin` command line, an edge like the HTTP API: it parses the arguments, opens the
//! database, builds the services through [`App`] and calls them as the server's own operator
//! ([`crate::auth::Principal::operator`]). Each command is one function, in a file per group:
//! `serve` (the API and its schedules), `database` (migrate, verify), `tokens`, `keys`,
//! `receipt`, `audit` (export, verify, checkpoint), `reports`, `expire`, `demo` (seed-demo),
//! and for signing in to the web pages `users`, `residents` (sign-in links) and `devices`
//! (till pairing).
//!
//! What a command prints and the status it exits with are part of its interface (the
//! integration tests and the README run the binary and read them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::audit::export::Bound;
use crate::clock::{Clock, OsEntropy, SystemClock};
use crate::keys::{KeyRing, SharedKeys, DEFAULT_KEY_FILE};
use crate::store::{self, ledger_id_is_valid, Stores};

/// `print!` to stdout, except that a reader that has gone away (`aixin audit verify DIR | head -1`)
/// is not an error: the rest of the output is dropped and the command ends with its own exit
/// status. Any other failure to write ends the process with status 2.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` with the same treatment of a closed stdout as [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod audit;
mod database;
mod demo;
mod devices;
mod expire;
mod keys;
mod receipt;
mod reports;
mod residents;
mod serve;
mod tokens;
mod users;

/// aixin (爱心): a double-entry ledger of community volunteer points.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
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
    keys: Option<PathBuf>,
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
        /// Serve HTTPS with this certificate chain (PEM). The till's camera, the phone's code
        /// generator and the screen wake lock need a secure context on anything but
        /// localhost. Without it, put aixin behind a reverse proxy that terminates TLS.
        #[arg(long, env = "AIXIN_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The private key (PEM) of `--tls-cert`.
        #[arg(long, env = "AIXIN_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
    },
    /// Apply database migrations and create the ledger if missing.
    Migrate,
    /// Recompute the hash chain and every balance; exit 1 on the first problem.
    Verify,
    /// Receipts: verify one offline, with the key file alone (no database).
    Receipt {
        #[command(subcommand)]
        command: receipt::ReceiptCommand,
    },
    /// Manage the signing keys in the key file.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: tokens::TokenCommand,
    },
    /// Users of the web pages who sign in with a password (admin, staff, auditor).
    User {
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// Residents: one-time sign-in links for their pages.
    Resident {
        #[command(subcommand)]
        command: residents::ResidentCommand,
    },
    /// Till devices: pair one with a shop, list, unpair.
    Device {
        #[command(subcommand)]
        command: devices::DeviceCommand,
    },
    /// Audit bundles, offline verification and signed checkpoints.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Reports for auditors and staff, as JSON (default) or CSV.
    Report {
        #[command(subcommand)]
        command: reports::ReportCommand,
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
    /// Fill an empty ledger with a realistic demo programme, and print one-time links (and a
    /// PIN) to sign in to its pages with.
    SeedDemo {
        /// How many entries to create.
        #[arg(long, default_value_t = 2_000)]
        entries: u64,
        /// Seed of the generator: the same seed gives the same programme.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        #[command(flatten)]
        base: BaseUrl,
    },
}

/// The binary's `main`: logs to stderr, parses the arguments and runs the command. An error
/// is printed as `aixin: …` and ends with status 2; a failed check ends with status 1.
#[tokio::main]
pub async fn main() -> ExitCode {
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

/// Runs one parsed command line; `Err` is the message of a command that could not run.
pub async fn run(cli: Cli) -> Result<ExitCode, String> {
    let Cli {
        database_url,
        ledger,
        keys,
        command,
    } = cli;
    let globals = Globals {
        database_url,
        ledger,
        keys,
    };
    let g = &globals;
    match command {
        Command::Serve {
            listen,
            checkpoint_every,
            tls_cert,
            tls_key,
        } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some((cert, key)),
                _ => None,
            };
            serve::serve(g, listen, checkpoint_every, tls).await
        }
        Command::Migrate => database::migrate(g).await,
        Command::Verify => database::verify(g).await,
        Command::Receipt { command } => receipt::run(g, command),
        Command::Keys { command } => keys::run(g, command),
        Command::Token { command } => tokens::run(g, command).await,
        Command::User { command } => users::run(g, command).await,
        Command::Resident { command } => residents::run(g, command).await,
        Command::Device { command } => devices::run(g, command).await,
        Command::Audit { command } => audit::run(g, command).await,
        Command::Report { command, csv } => reports::run(g, command, csv).await,
        Command::Expire { as_of } => expire::expire(g, as_of).await,
        Command::SeedDemo {
            entries,
            seed,
            base,
        } => demo::seed_demo(g, entries, seed, &base).await,
    }
}

/// The options every command shares.
struct Globals {
    database_url: String,
    ledger: String,
    /// `--keys` as given; [`Globals::key_file`] is the file used when it is not.
    keys: Option<PathBuf>,
}

impl Globals {
    /// The key file: `--keys`, or `aixin-keys.json` in the working directory.
    fn key_file(&self) -> PathBuf {
        self.keys.clone().unwrap_or_else(|| DEFAULT_KEY_FILE.into())
    }

    /// Opens the database, applies the migrations and creates the ledger if it is missing.
    async fn open(&self) -> Result<Stores, String> {
        if !ledger_id_is_valid(&self.ledger) {
            return Err(format!(
                "ledger id {:?} must be 1 to 64 lowercase letters, digits, '-' or '_'",
                self.ledger
            ));
        }
        let stores = store::connect_all(&self.database_url)
            .await
            .map_err(|e| format!("cannot open {}: {e}", redact(&self.database_url)))?;
        let store = &stores.ledger;
        store.migrate().await.map_err(|e| e.to_string())?;
        store
            .ensure_ledger(&self.ledger, SystemClock.now_micros())
            .await
            .map_err(|e| e.to_string())?;
        Ok(stores)
    }

    /// The application core over the opened database, on the system clock and random source,
    /// with a throwaway key ring (for commands that sign nothing).
    async fn app(&self) -> Result<App, String> {
        let stores = self.open().await?;
        Ok(App::new(stores, Arc::new(SystemClock), Arc::new(OsEntropy)))
    }

    /// [`Globals::app`] signing with the key file (created if missing).
    async fn signing_app(&self) -> Result<App, String> {
        let app = self.app().await?;
        let (keys, _) = self.signing_keys()?;
        Ok(app.with_keys(keys))
    }

    /// The key file's keys, and whether the file was created just now.
    fn signing_keys(&self) -> Result<(SharedKeys, bool), String> {
        let path = self.key_file();
        let (ring, created) = KeyRing::load_or_create(&path, &OsEntropy, SystemClock.now_micros())
            .map_err(|e| e.to_string())?;
        Ok((SharedKeys::from_file(path, ring), created))
    }
}

/// Where the web pages are reached, for the one-time links a command prints.
#[derive(clap::Args)]
struct BaseUrl {
    /// The address of the web pages: the printed link starts with it.
    #[arg(long, env = "AIXIN_BASE_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,
}

/// A checked [`BaseUrl`].
struct PagesUrl(String);

impl BaseUrl {
    /// The URL without a trailing slash, if it is an `http://` or `https://` URL.
    fn check(&self) -> Result<PagesUrl, String> {
        let url = self.base_url.trim_end_matches('/');
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or("");
        if host.is_empty() || !crate::ledger::entry::text_is_clean(url) || url.contains(' ') {
            return Err(format!(
                "--base-url {:?} must be an http:// or https:// address",
                self.base_url
            ));
        }
        Ok(PagesUrl(url.to_owned()))
    }
}

impl PagesUrl {
    /// `{base}/{path}/{secret}`: the pages' paths are `set-password`, `r` and `till/pair`.
    fn link(&self, path: &str, secret: &str) -> String {
        format!("{}/{path}/{secret}", self.0)
    }
}

/// What [`out!`] and [`outln!`] expand to.
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

/// A range bound from the command line.
fn bound(text: Option<String>, name: &str) -> Result<Option<Bound>, String> {
    text.map(|t| {
        Bound::parse(&t).ok_or_else(|| {
            format!("--{name} {t:?} is neither a sequence number nor a date (YYYY-MM-DD)")
        })
    })
    .transpose()
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
