//! `aixin serve` on a real socket (loopback, the real binary): connections that never finish
//! their request head are closed after the header timeout and do not keep `/healthz` from
//! answering; an idle kept-alive connection is closed alike; SIGTERM lets a request in flight
//! be answered before the process exits.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `HEADER_READ_TIMEOUT` in src/cli/serve.rs.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections that send part of a request line and stall.
const SLOW_CONNECTIONS: usize = 300;

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &std::path::Path) -> (Server, SocketAddr) {
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_aixin"));
    serve
        .current_dir(dir)
        .args([
            "--database-url",
            &format!("sqlite:{}", dir.join("db.sqlite").display()),
        ])
        .args(["--keys", &dir.join("keys.json").display().to_string()])
        .args(["serve", "--listen", &address.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for name in [
        "AIXIN_DATABASE_URL",
        "AIXIN_LEDGER",
        "AIXIN_KEYS",
        "AIXIN_LISTEN",
    ] {
        serve.env_remove(name);
    }
    let mut server = Server(serve.spawn().expect("start aixin serve"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(address).is_err() {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "aixin serve exited before listening"
        );
        assert!(Instant::now() < deadline, "aixin serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, address)
}

/// One `GET /healthz` on a new connection: the time it took.
fn healthz(address: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("healthz answers");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    started.elapsed()
}

/// Whether the server has closed `stream` (end of file or reset) rather than kept it open,
/// waiting at most `wait`; any bytes it sends first are skipped.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_and_idle_connections_are_closed_and_health_keeps_answering() {
    // Proves the header-read timeout (which is also the idle timeout of a kept-alive
    // connection): 300 connections that send half a request line and stall neither keep
    // /healthz from answering promptly nor stay open past the timeout.
    let dir = tempfile::tempdir().unwrap();
    let (_server, address) = start(dir.path());
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW_CONNECTIONS)
        .map(|_| {
            let mut s = TcpStream::connect(address).unwrap();
            s.write_all(b"GET /heal").unwrap();
            s
        })
        .collect();
    // A kept-alive connection that has had its answer and then goes quiet.
    let mut idle = TcpStream::connect(address).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    for _ in 0..5 {
        let took = healthz(address);
        assert!(
            took < Duration::from_secs(1),
            "/healthz took {took:?} beside {SLOW_CONNECTIONS} stalled connections"
        );
    }
    let margin = HEADER_READ_TIMEOUT + Duration::from_secs(3);
    for (i, stream) in slow.iter_mut().enumerate().step_by(50) {
        let left = margin.saturating_sub(opened.elapsed());
        assert!(
            closed_within(stream, left),
            "stalled connection {i} is still open {:?} after it stalled",
            opened.elapsed()
        );
    }
    let left = margin.saturating_sub(opened.elapsed()) + Duration::from_secs(1);
    assert!(
        closed_within(&mut idle, left),
        "an idle kept-alive connection is still open after {:?}",
        opened.elapsed()
    );
    assert!(healthz(address) < Duration::from_secs(1));
}

#[test]
#[cfg(unix)]
fn sigterm_answers_the_request_in_flight() {
    // Proves graceful shutdown through the accept loop: a request whose body is still
    // arriving when SIGTERM comes is answered, then the process exits 0.
    let dir = tempfile::tempdir().unwrap();
    let created = Command::new(env!("CARGO_BIN_EXE_aixin"))
        .args([
            "--database-url",
            &format!("sqlite:{}", dir.path().join("db.sqlite").display()),
        ])
        .args(["token", "create", "--role", "admin"])
        .env("RUST_LOG", "warn")
        .env_remove("AIXIN_DATABASE_URL")
        .env_remove("AIXIN_LEDGER")
        .output()
        .unwrap();
    assert!(created.status.success());
    let token = String::from_utf8(created.stdout).unwrap();
    let (mut server, address) = start(dir.path());
    let mut stream = TcpStream::connect(address).unwrap();
    let body = br#"{"kind":"resident","owner_id":"R1","community_id":"c1","label":"x"}"#;
    write!(
        stream,
        "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nIdempotency-Key: k1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        token.trim(),
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body[5..]).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the request in flight is answered: {answer:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "aixin serve did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The banner `serve` printed on stderr up to its first-admin link, and that link's path. The
/// rest of stderr is read to its end by a thread (a closed pipe would fail the server's writes).
fn banner_and_link(server: &mut Server) -> (String, Option<String>) {
    let stderr = server.0.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let mut link = None;
    while link.is_none() && banner.len() < 30 {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
            break;
        };
        if let Some(at) = line.find("/set-password/axl_") {
            link = Some(line[at..].trim().to_owned());
        }
        banner.push(line);
    }
    (banner.join("\n"), link)
}

/// A raw HTTP/1.1 exchange on a new connection: the whole answer as text.
fn exchange(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn post_form(address: SocketAddr, path: &str, body: &str) -> String {
    exchange(
        address,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nOrigin: http://{address}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn a_fresh_serve_says_where_the_pages_are_and_how_to_sign_in() {
    // The README's first command on an empty directory: the banner names the pages and a
    // one-time link that sets the first administrator's password; with it, signing in works.
    let dir = tempfile::tempdir().unwrap();
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_aixin"));
    serve
        .current_dir(dir.path())
        .args(["serve", "--listen", &address.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for name in [
        "AIXIN_DATABASE_URL",
        "AIXIN_LEDGER",
        "AIXIN_KEYS",
        "AIXIN_LISTEN",
    ] {
        serve.env_remove(name);
    }
    let mut server = Server(serve.spawn().expect("start aixin serve"));
    let (banner, link) = banner_and_link(&mut server);
    assert!(
        banner.contains(&format!("pages:    http://{address}/")),
        "{banner}"
    );
    let link = link.unwrap_or_else(|| panic!("no set-password link in:\n{banner}"));
    let page = exchange(
        address,
        &format!("GET {link} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let set = post_form(address, &link, "password=a-long-enough-secret");
    assert!(
        set.starts_with("HTTP/1.1 200") && set.contains("密码已设置"),
        "{set}"
    );
    // The link worked once.
    let again = post_form(address, &link, "password=another-long-secret");
    assert!(!again.contains("密码已设置"), "{again}");
    let signed_in = post_form(
        address,
        "/signin/password",
        "name=admin&password=a-long-enough-secret",
    );
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    assert!(
        signed_in.contains("set-cookie: aixin_session=axs_") && signed_in.contains("HttpOnly"),
        "{signed_in}"
    );
    let wrong = post_form(
        address,
        "/signin/password",
        "name=admin&password=not-the-password",
    );
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
}

/// One HTTP/1.1 exchange over TLS, trusting only `cert_der`: the whole answer as text.
fn tls_exchange(address: SocketAddr, cert_der: &[u8], request: &str) -> String {
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert_der.to_vec())).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // The server closes the connection after answering (Connection: close); a TLS peer that
    // closes without close_notify is still a complete HTTP/1.1 answer here.
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn serve_with_tls_answers_https_and_its_session_cookie_is_secure_and_host_bound() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_aixin"));
    serve
        .current_dir(dir.path())
        .args(["serve", "--listen", &address.to_string()])
        .args(["--tls-cert", &cert_path.display().to_string()])
        .args(["--tls-key", &key_path.display().to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for name in [
        "AIXIN_DATABASE_URL",
        "AIXIN_LEDGER",
        "AIXIN_KEYS",
        "AIXIN_LISTEN",
    ] {
        serve.env_remove(name);
    }
    let mut server = Server(serve.spawn().expect("start aixin serve"));
    let (banner, link) = banner_and_link(&mut server);
    assert!(
        banner.contains(&format!("pages:    https://{address}/")),
        "{banner}"
    );
    let link = link.unwrap_or_else(|| panic!("no link in:\n{banner}"));
    let der = cert.cert.der().to_vec();
    let health = tls_exchange(
        address,
        &der,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = std::panic::catch_unwind(|| {
        exchange(
            address,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    });
    assert!(plain.map_or(true, |a| !a.starts_with("HTTP/1.1 200")));
    let form = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost:{}\r\nOrigin: https://localhost:{}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            address.port(),
            address.port(),
            body.len()
        )
    };
    let set = tls_exchange(address, &der, &form(&link, "password=a-long-enough-secret"));
    assert!(set.contains("密码已设置"), "{set}");
    let signed_in = tls_exchange(
        address,
        &der,
        &form(
            "/signin/password",
            "name=admin&password=a-long-enough-secret",
        ),
    );
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    let cookie = signed_in
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: __host-aixin_session=")
        })
        .unwrap_or_else(|| panic!("no __Host- session cookie in:\n{signed_in}"));
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
}
