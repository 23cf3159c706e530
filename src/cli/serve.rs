//! `aixin serve`: the HTTP API, and the schedules that run beside it in the same process —
//! expiry (hourly), signed checkpoints of every ledger's head, and key file reloads.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::{redact, Globals};
use crate::app::App;
use crate::auth::Principal;
use crate::earning::Earning;
use crate::keys::SharedKeys;

/// How often `serve` looks for a changed key file.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// How often `serve` sweeps expired points (each run is idempotent).
const EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);
/// Longest a connection may take to send a request's head (request line and headers), counted
/// from the moment the server waits for one: on a new connection, and on a kept-alive one
/// after each answer, so it is also the idle timeout. Beyond it the connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections served at once. Beyond it the server stops accepting until one closes
/// (further clients wait in the kernel's backlog); with the header timeout, a client holding
/// connections open without sending holds each for at most [`HEADER_READ_TIMEOUT`].
pub const CONNECTIONS_MAX: usize = 1_024;

/// `aixin serve`: binds `listen`, starts the schedules and answers until Ctrl-C or SIGTERM.
pub(super) async fn serve(
    g: &Globals,
    listen: SocketAddr,
    checkpoint_every: u64,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<ExitCode, String> {
    let tls = match tls {
        Some((cert, key)) => Some(tls_acceptor(&cert, &key)?),
        None => None,
    };
    let app = g.app().await?;
    let admins = app
        .store
        .count_live_tokens(&g.ledger, "admin", app.clock.now_micros())
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let (keys, created) = g.signing_keys()?;
    let app = app.with_keys(keys);
    tokio::spawn(reload_keys(app.keys.clone()));
    tokio::spawn(expiry_schedule(app.earning.clone()));
    tokio::spawn(checkpoint_schedule(app.clone(), checkpoint_every));
    print_banner(g, listen, &g.key_file(), created, tls.is_some());
    first_sign_in(&app, g, listen, tls.is_some()).await?;
    if admins == 0 {
        print_first_admin_hint(g);
    }
    let site = crate::web::Site {
        ledger: g.ledger.clone(),
    };
    let router = crate::http::router(app).layer(axum::Extension(site));
    serve_connections(listener, router, tls, shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

/// A TLS acceptor for `--tls-cert` / `--tls-key` (PEM files), HTTP/1.1 only.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// Serves one connection until it closes, or until `stop` turns true: then it finishes the
/// request it is answering and closes.
macro_rules! drive {
    ($connection:ident, $stop:ident) => {{
        tokio::pin!($connection);
        tokio::select! {
            result = $connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended");
                }
                return;
            }
            _ = $stop.wait_for(|stopped| *stopped) => {}
        }
        $connection.as_mut().graceful_shutdown();
        if let Err(error) = $connection.await {
            tracing::debug!(%error, "connection ended");
        }
    }};
}

/// The accept loop: at most [`CONNECTIONS_MAX`] connections at once, each HTTP/1.1 with the
/// [`HEADER_READ_TIMEOUT`]. When `shutdown` resolves it stops accepting, lets every connection
/// finish the request it is answering (idle ones close at once) and returns when all are closed.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a little instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let over_tls = tls.is_some();
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                // Who the pages count sign-in attempts against, and whether cookies get `Secure`.
                request
                    .extensions_mut()
                    .insert(crate::web::ClientAddr(peer));
                if over_tls {
                    request.extensions_mut().insert(crate::web::OverTls);
                }
                request
            },
        ));
        let mut stop = stop_rx.clone();
        let http = http.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    drive!(connection, stop);
                }
                Some(acceptor) => {
                    // The TLS handshake is bounded like a request head.
                    let accepted =
                        tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await;
                    let Ok(Ok(stream)) = accepted else {
                        return;
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    drive!(connection, stop);
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it closes.
    let _ = slots.acquire_many(CONNECTIONS_MAX as u32).await;
}

/// Where the server listens and which key file it signs with, on stderr.
fn print_banner(g: &Globals, listen: SocketAddr, key_file: &Path, created: bool, tls: bool) {
    let scheme = if tls { "https" } else { "http" };
    eprintln!(
        "aixin is serving ledger {:?} from {}",
        g.ledger,
        redact(&g.database_url)
    );
    eprintln!(
        "  pages:    {}/   (the till: /till, residents: /me)",
        base_of(listen, tls)
    );
    eprintln!(
        "  API:      {scheme}://{listen}/v1   (OpenAPI: {scheme}://{listen}/v1/openapi.json)"
    );
    eprintln!("  health:   {scheme}://{listen}/healthz");
    eprintln!(
        "  keys:     {} ({})",
        key_file.display(),
        if created {
            "created now; back it up apart from the database"
        } else {
            "loaded"
        }
    );
}

/// With no admin token yet: the command that creates the first one.
/// The name of the administrator `serve` makes on a ledger nobody can sign in to.
pub const FIRST_ADMIN: &str = "admin";

/// While no administrator of the ledger has a password, prints a one-time link to set the
/// first one (making the user `admin` if there is none): opening the pages then needs nothing
/// but this terminal. Each start replaces the previous link.
async fn first_sign_in(
    app: &App,
    g: &Globals,
    listen: SocketAddr,
    tls: bool,
) -> Result<(), String> {
    let operator = Principal::operator(&g.ledger, "aixin-serve");
    let users = app.sessions.users(&operator).await.map_err(|e| e.detail)?;
    let admins: Vec<_> = users
        .iter()
        .filter(|u| u.role == crate::auth::Role::Admin && u.disabled_at_micros.is_none())
        .collect();
    if admins.iter().any(|u| u.has_password) {
        eprintln!("  sign in:  {}/signin", base_of(listen, tls));
        return Ok(());
    }
    let (name, link) = match admins.first() {
        Some(user) => (
            user.name.clone(),
            app.sessions
                .password_reset_link(&operator, user.id)
                .await
                .map_err(|e| e.detail)?,
        ),
        None => {
            let (user, link) = app
                .sessions
                .create_user(&operator, crate::auth::Role::Admin, None, FIRST_ADMIN)
                .await
                .map_err(|e| e.detail)?;
            (user.name, link)
        }
    };
    eprintln!("  sign in:  no administrator has a password yet; set one for `{name}` (this link works once):");
    eprintln!("    {}/set-password/{}", base_of(listen, tls), link.secret);
    Ok(())
}

/// The address a browser on this machine opens.
fn base_of(listen: SocketAddr, tls: bool) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!(
        "{}://{host}:{}",
        if tls { "https" } else { "http" },
        listen.port()
    )
}

fn print_first_admin_hint(g: &Globals) {
    eprintln!("  no admin API token exists yet; create the first one with:");
    eprintln!("    {}", token_create_command(g));
}

/// The command line that creates an admin token for this database and ledger, as this binary
/// was started (`aixin`, `target/release/aixin`, ...).
pub(super) fn token_create_command(g: &Globals) -> String {
    // A URL with a password is not echoed; the operator supplies it again.
    let url = if redact(&g.database_url) == g.database_url {
        g.database_url.clone()
    } else {
        "<the same URL>".to_owned()
    };
    let program = std::env::args_os()
        .next()
        .map_or_else(|| "aixin".into(), |p| p.to_string_lossy().into_owned());
    format!(
        "{program} --database-url '{url}' --ledger {} token create --role admin",
        g.ledger
    )
}

/// Inside `serve`: picks up a changed key file (a rotation or revocation) without a restart.
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

/// Inside `serve`: expire points for every ledger of the database, at start and then hourly.
async fn expiry_schedule(earning: Earning) {
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    loop {
        tick.tick().await;
        let today = crate::calendar::day_of(earning.clock.now_micros());
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
                    tracing::info!(%ledger, accounts = report.accounts, points = %crate::ledger::format_minor(report.points_minor), "expired points")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%ledger, detail = %error.detail, "expiry run failed"),
            }
        }
    }
}

/// Inside `serve`: a signed checkpoint of every ledger's head, at start and then every
/// `every_secs` (a head that already has one is not signed again).
async fn checkpoint_schedule(app: App, every_secs: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(every_secs.max(1)));
    loop {
        tick.tick().await;
        let ledgers = match app.store.ledgers().await {
            Ok(ledgers) => ledgers,
            Err(error) => {
                tracing::warn!(%error, "checkpoint schedule: cannot list ledgers");
                continue;
            }
        };
        let ring = app.keys.get();
        for ledger in ledgers {
            match crate::audit::export::checkpoint_head(
                app.store.as_ref(),
                &ledger,
                &ring,
                app.clock.now_micros(),
            )
            .await
            {
                Ok(checkpoint) => tracing::info!(%ledger, seq = checkpoint.seq, "checkpoint"),
                Err(error) => tracing::warn!(%ledger, %error, "checkpoint failed"),
            }
        }
    }
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
