//! The README's walk-through, run exactly as written: every ```sh block preceded by
//! `<!-- walkthrough -->` (or `<!-- walkthrough: TOOL ... -->`, which also needs those tools),
//! in order, in one `bash -euo pipefail`, against a fresh SQLite server.
//!
//! The server is started here, not by the blocks (the README shows `aixin serve` in a block of
//! its own, which is not marked). It runs in a temporary directory with its own database and key
//! file, as the README's reader runs it in the checkout; `ledger-specs/` is linked into that
//! directory so the README's relative paths to the Python verifiers resolve. `aixin` on PATH is
//! a shim for the binary under test, and `AIXIN_URL` points at the server. Every call in the
//! README uses `curl -fsS`, so any non-2xx answer fails the script.
//!
//! curl, jq, python3 and tar are required: the test fails (never skips) without them, naming
//! what to install (`.ci/run` installs jq and curl). The hledger/Beancount block runs when those
//! tools exist, and must run when `AIXIN_REQUIRE_BOOK_TOOLS=1` (as `.ci/run` sets).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the whole walk-through may take (a debug binary; it usually takes a few seconds).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the server may take to accept connections.
const SERVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment that would point the server or the CLI somewhere else than the test's directory.
const AIXIN_ENV: [&str; 5] = [
    "AIXIN_DATABASE_URL",
    "AIXIN_LEDGER",
    "AIXIN_KEYS",
    "AIXIN_LISTEN",
    "AIXIN_URL",
];

#[derive(Debug)]
struct Block {
    /// 1-based line of the block's first line of code in README.md.
    line: usize,
    /// The `## ` section the block is in.
    section: String,
    /// Tools named in the marker, beyond those every block needs.
    needs: Vec<String>,
    code: String,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The marked blocks, in order. A marker not followed by a ```sh block is an error.
fn walkthrough(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(title) = lines[i].strip_prefix("## ") {
            section = title.to_owned();
        }
        let marker = line
            .strip_prefix("<!-- walkthrough")
            .and_then(|rest| rest.strip_suffix("-->"));
        if let Some(rest) = marker {
            let needs = rest
                .trim()
                .strip_prefix(':')
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            assert_eq!(
                lines.get(i + 1).map(|l| l.trim()),
                Some("```sh"),
                "README.md line {}: a walkthrough marker must be followed by a ```sh block",
                i + 1
            );
            let start = i + 2;
            let end = (start..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("README.md line {start}: unterminated block"));
            blocks.push(Block {
                line: start + 1,
                section: section.clone(),
                needs,
                code: lines[start..end].join("\n"),
            });
            i = end;
        }
        i += 1;
    }
    blocks
}

/// Whether `tool` runs at all (any exit status: `tar --version` and `jq --version` differ).
fn found(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

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

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
#[test]
fn readme_walkthrough_runs_as_written() {
    // Proves a newcomer can paste the README's walk-through into a shell in order and every
    // command succeeds against a fresh server: every variable it uses is set by an earlier line,
    // every write that needs an Idempotency-Key has one, and the resident earns enough to redeem.
    let blocks = walkthrough(&readme());
    for section in ["A first session", "Earning", "Redemption", "For auditors"] {
        assert!(
            blocks.iter().any(|b| b.section.starts_with(section)),
            "the walk-through has no marked block in the section {section:?}: {blocks:#?}"
        );
    }
    assert!(
        blocks.iter().all(|b| !b.code.contains("aixin serve")),
        "a marked block starts the server; the test starts it (leave `aixin serve` unmarked)"
    );

    let missing: Vec<&str> = ["bash", "curl", "jq", "python3", "tar"]
        .into_iter()
        .filter(|t| !found(t))
        .collect();
    assert!(
        missing.is_empty(),
        "the README walk-through needs {missing:?}; install them \
         (DEBIAN_FRONTEND=noninteractive apt-get install -y jq curl, as .ci/run does)"
    );
    let require_book_tools = std::env::var("AIXIN_REQUIRE_BOOK_TOOLS").as_deref() == Ok("1");
    let mut script = String::new();
    for block in &blocks {
        let absent: Vec<&String> = block.needs.iter().filter(|t| !found(t)).collect();
        if !absent.is_empty() {
            assert!(
                !require_book_tools,
                "AIXIN_REQUIRE_BOOK_TOOLS=1 but {absent:?} (README.md line {}) not installed",
                block.line
            );
            eprintln!(
                "\n*** SKIPPED: README.md line {}: {absent:?} not installed \
                 (apt-get install hledger; pip install beancount) ***\n",
                block.line
            );
            continue;
        }
        script.push_str(&format!(
            "echo '=== README.md line {} ({})' >&2\n{}\n",
            block.line, block.section, block.code
        ));
    }
    script.push_str("echo '=== walk-through done' >&2\n");

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs"),
        root.join("ledger-specs"),
    )
    .unwrap();
    let shims = root.join("shim-bin");
    std::fs::create_dir(&shims).unwrap();
    let shim = shims.join("aixin");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_aixin").replace('\'', r"'\''")
        ),
    )
    .unwrap();
    make_executable(&shim);
    let path = std::env::join_paths(std::iter::once(shims.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();

    let port = free_port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server_log = root.join("serve.log");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_aixin"));
    serve
        .args(["serve", "--listen", &address.to_string()])
        .current_dir(root)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(root.join("serve.out")).unwrap())
        .stderr(std::fs::File::create(&server_log).unwrap());
    for name in AIXIN_ENV {
        serve.env_remove(name);
    }
    let mut server = Server(serve.spawn().expect("start aixin serve"));
    let started = Instant::now();
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "aixin serve exited ({status}) before listening:\n{}",
                read_lossy(&server_log)
            );
        }
        assert!(
            started.elapsed() < SERVE_TIMEOUT,
            "aixin serve did not listen on {address} within {SERVE_TIMEOUT:?}:\n{}",
            read_lossy(&server_log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let script_path = root.join("walkthrough.sh");
    std::fs::write(&script_path, &script).unwrap();
    let (stdout_path, stderr_path) = (root.join("walkthrough.out"), root.join("walkthrough.err"));
    let mut run = Command::new("bash");
    run.args(["-xeuo", "pipefail"])
        .arg(&script_path)
        .current_dir(root)
        .env("PATH", &path)
        .env("AIXIN_URL", format!("http://{address}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for name in AIXIN_ENV.iter().filter(|n| **n != "AIXIN_URL") {
        run.env_remove(name);
    }
    let mut child = run.spawn().expect("run bash");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let report = || {
        format!(
            "--- script (README.md's marked blocks) ---\n{script}\n--- stdout ---\n{}\n\
             --- stderr (bash -x) ---\n{}\n--- aixin serve ---\n{}",
            read_lossy(&stdout_path),
            read_lossy(&stderr_path),
            read_lossy(&server_log)
        )
    };
    match status {
        None => panic!(
            "the README walk-through did not finish within {SCRIPT_TIMEOUT:?}\n{}",
            report()
        ),
        Some(status) => assert!(
            status.success(),
            "the README walk-through failed ({status})\n{}",
            report()
        ),
    }
    assert!(
        read_lossy(&stderr_path).contains("=== walk-through done"),
        "{}",
        report()
    );
    // The server is still up: nothing in the walk-through stopped it.
    assert!(server.0.try_wait().unwrap().is_none(), "{}", report());
}

#[test]
fn walkthrough_markers_are_well_formed() {
    // Proves the extractor sees the blocks the README's reader sees: a marker directly above a
    // ```sh fence, the tools a marker names, and nothing outside marked blocks.
    let sample = "## A first session\n\n```sh\nnot run\n```\n<!-- walkthrough -->\n```sh\nrun 1\n```\n\
                  ## For auditors\n<!-- walkthrough: hledger bean-check -->\n```sh\nrun 2\nrun 3\n```\n";
    let blocks = walkthrough(sample);
    assert_eq!(blocks.len(), 2, "{blocks:#?}");
    assert_eq!(blocks[0].code, "run 1");
    assert_eq!(blocks[0].line, 8);
    assert_eq!(blocks[0].section, "A first session");
    assert!(blocks[0].needs.is_empty());
    assert_eq!(blocks[1].code, "run 2\nrun 3");
    assert_eq!(blocks[1].section, "For auditors");
    assert_eq!(blocks[1].needs, ["hledger", "bean-check"]);
    let real = walkthrough(&readme());
    assert!(real.len() >= 5, "{real:#?}");
}
