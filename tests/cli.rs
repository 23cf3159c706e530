//! The `aixin` binary end to end: migrate, token create, seed-demo, verify — and verify failing
//! with the right sequence number on a tampered database. SQLite always; PostgreSQL when
//! configured.

mod common;

use std::process::{Command, Output};

use sqlx::Connection;

fn aixin(url: &str, ledger: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aixin"))
        .args(["--database-url", url, "--ledger", ledger])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run aixin")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The CLI story on one database; `tamper` changes entry 17's memo behind aixin's back.
async fn cli_story<F, Fut>(url: &str, ledger: &str, tamper: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let migrated = aixin(url, ledger, &["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));

    let token = aixin(
        url,
        ledger,
        &["token", "create", "--role", "admin", "--label", "ops"],
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
    let printed = text(&token.stdout);
    let line = printed.strip_suffix('\n').expect("one line");
    assert!(
        !line.contains('\n'),
        "the token must be alone on stdout: {printed:?}"
    );
    assert!(
        line.len() == 68
            && line.starts_with("axn_")
            && line[4..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{line}"
    );

    let unscoped = aixin(url, ledger, &["token", "create", "--role", "staff"]);
    assert_eq!(
        unscoped.status.code(),
        Some(2),
        "a staff token needs a scope"
    );
    assert!(unscoped.stdout.is_empty());

    // seed-demo derives its cards from the key file `serve` uses: one of the test's own, not
    // `aixin-keys.json` in the working directory.
    let key_dir = tempfile::tempdir().unwrap();
    let keys = key_dir.path().join("keys.json");
    let keys = keys.to_str().unwrap();
    let seeded = aixin(
        url,
        ledger,
        &["--keys", keys, "seed-demo", "--entries", "300"],
    );
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    assert!(
        text(&seeded.stderr).contains("300 entries"),
        "{}",
        text(&seeded.stderr)
    );
    assert!(
        text(&seeded.stderr).contains("token create --role admin"),
        "seed-demo says how to sign in: {}",
        text(&seeded.stderr)
    );
    // A token's scope must name something that exists (seed-demo made the unit `guting`).
    for (role, scope, what) in [
        ("staff", "no-such-unit", "no organisation unit"),
        ("shop", "00000000-0000-0000-0000-000000000001", "no shop"),
        (
            "resident",
            "00000000-0000-0000-0000-000000000001",
            "no resident",
        ),
        ("resident", "R1", "not a resident id"),
    ] {
        let refused = aixin(
            url,
            ledger,
            &["token", "create", "--role", role, "--scope", scope],
        );
        assert_eq!(refused.status.code(), Some(2), "{role} {scope}");
        assert!(refused.stdout.is_empty());
        assert!(
            text(&refused.stderr).contains(what),
            "{role} {scope}: {}",
            text(&refused.stderr)
        );
    }
    let scoped = aixin(
        url,
        ledger,
        &["token", "create", "--role", "staff", "--scope", "guting"],
    );
    assert!(scoped.status.success(), "{}", text(&scoped.stderr));
    let again = aixin(
        url,
        ledger,
        &["--keys", keys, "seed-demo", "--entries", "10"],
    );
    assert_eq!(
        again.status.code(),
        Some(2),
        "seeding a non-empty ledger is refused"
    );

    let verified = aixin(url, ledger, &["verify"]);
    assert!(
        verified.status.success(),
        "{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    assert!(
        text(&verified.stdout).starts_with("ok: ledger"),
        "{}",
        text(&verified.stdout)
    );
    assert!(text(&verified.stdout).contains("300 entries"));

    let expired = aixin(url, ledger, &["expire", "--as-of", "2026-01-01"]);
    assert!(expired.status.success(), "{}", text(&expired.stderr));
    assert!(
        text(&expired.stdout).starts_with("expired 0.00 points in 0 accounts as of 2026-01-01"),
        "{}",
        text(&expired.stdout)
    );
    let bad_date = aixin(url, ledger, &["expire", "--as-of", "2026-02-30"]);
    assert_eq!(bad_date.status.code(), Some(2));
    // A day after today (a mistyped year) is refused: it would expire points still valid.
    let future = aixin(url, ledger, &["expire", "--as-of", "2999-01-01"]);
    assert_eq!(future.status.code(), Some(2), "{}", text(&future.stdout));
    assert!(
        text(&future.stderr).contains("cannot run as of 2999-01-01, after today"),
        "{}",
        text(&future.stderr)
    );

    tamper().await;
    let caught = aixin(url, ledger, &["verify"]);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught.stdout));
    assert!(
        text(&caught.stdout).contains("FAILED at entry 17: HashMismatch"),
        "{}",
        text(&caught.stdout)
    );
}

#[tokio::test]
async fn cli_on_sqlite() {
    // Proves the CLI's commands on the embedded default, and that `aixin verify` exits 1 naming
    // the first tampered entry.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cli.sqlite");
    let url = format!("sqlite:{}", path.display());
    cli_story(&url, "county-a", || async {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("DROP TRIGGER entries_refuse_update")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE entries SET memo = memo || '!' WHERE ledger_id = 'county-a' AND seq = 17",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    })
    .await;
}

#[tokio::test]
async fn cli_on_postgres() {
    // Proves the same CLI story against PostgreSQL.
    let Some(url) = common::postgres_url() else {
        assert!(
            std::env::var("AIXIN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "PostgreSQL required"
        );
        eprintln!("\n*** SKIPPED: cli_on_postgres (set AIXIN_TEST_POSTGRES_URL to run it) ***\n");
        return;
    };
    let ledger = format!("cli-{}", uuid::Uuid::new_v4().simple());
    // A schema of its own, so this test never meets another run's tables.
    let schema = format!("aixin_cli_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let tamper_url = url.clone();
    let tamper_ledger = ledger.clone();
    cli_story(&url, &ledger, || async move {
        let mut conn = sqlx::PgConnection::connect(&tamper_url).await.unwrap();
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE entries SET memo = memo || '!' WHERE ledger_id = $1 AND seq = 17")
            .bind(&tamper_ledger)
            .execute(&mut conn)
            .await
            .unwrap();
    })
    .await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn audit_cli_on_sqlite() {
    // Proves the auditor's commands end to end: export, offline verify (with no reachable
    // database), a checkpoint kept and checked, reports as JSON and CSV, and verify exiting 1
    // naming the first bad entry of a tampered bundle.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("audit.sqlite").display());
    let keys = dir.path().join("keys.json");
    let keys = keys.to_str().unwrap();
    let bundle = dir.path().join("bundle");
    let bundle = bundle.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--keys", keys];
        all.extend_from_slice(args);
        aixin(&url, "county-a", &all)
    };
    assert!(run(&["seed-demo", "--entries", "300"]).status.success());
    let exported = run(&["audit", "export", "--out", bundle]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    assert!(
        text(&exported.stdout).contains("entries 1 to 300"),
        "{}",
        text(&exported.stdout)
    );

    // Offline: the database URL names nothing reachable.
    let offline = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_aixin"))
            .args(["--database-url", "postgres://nobody@127.0.0.1:1/none"])
            .args(args)
            .output()
            .unwrap()
    };
    let verified = offline(&["--keys", keys, "audit", "verify", bundle]);
    assert!(
        verified.status.success(),
        "{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    assert!(text(&verified.stdout).starts_with("ok: ledger \"county-a\", entries 1 to 300"));
    let unsigned = offline(&["audit", "verify", bundle]);
    assert!(text(&unsigned.stdout).contains("signatures not checked"));

    let checkpoint = run(&["audit", "checkpoint"]);
    assert!(checkpoint.status.success());
    let kept = dir.path().join("kept.jsonl");
    std::fs::write(&kept, &checkpoint.stdout).unwrap();
    let kept = kept.to_str().unwrap();
    let extends = offline(&[
        "--keys",
        keys,
        "audit",
        "verify",
        bundle,
        "--checkpoint",
        kept,
    ]);
    assert!(
        text(&extends.stdout).contains("extends the retained checkpoint of entry 300"),
        "{}",
        text(&extends.stdout)
    );
    let short = dir.path().join("short");
    let short = short.to_str().unwrap();
    assert!(run(&["audit", "export", "--out", short, "--to", "100"])
        .status
        .success());
    let truncated = offline(&["audit", "verify", short, "--checkpoint", kept]);
    assert_eq!(truncated.status.code(), Some(1));
    assert!(
        text(&truncated.stdout).starts_with("FAILED: entry 101: checkpoint_mismatch"),
        "{}",
        text(&truncated.stdout)
    );

    let tb = run(&["report", "trial-balance", "--csv"]);
    assert!(tb.status.success(), "{}", text(&tb.stderr));
    assert!(text(&tb.stdout).starts_with("account,kind,community_id,label,unit,debit,credit\n"));
    let community = run(&["report", "community", "binhu"]);
    assert!(community.status.success(), "{}", text(&community.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&community.stdout).unwrap();
    assert_eq!(summary["community_id"], "binhu");
    assert_eq!(
        run(&["report", "shop", "no-such-shop"]).status.code(),
        Some(2)
    );

    // Delete entry 17's line: verification names it.
    let entries = std::path::Path::new(bundle).join("entries.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&entries)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let kept_lines: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 16)
        .map(|(_, l)| l.as_str())
        .collect();
    std::fs::write(&entries, kept_lines.join("\n") + "\n").unwrap();
    let caught = offline(&["audit", "verify", bundle]);
    assert_eq!(caught.status.code(), Some(1));
    assert!(
        text(&caught.stdout).starts_with("FAILED: entry 17: sequence_gap in entries.jsonl"),
        "{}",
        text(&caught.stdout)
    );
}

fn keys_cli(keys: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aixin"))
        .arg("--keys")
        .arg(keys)
        .args(args)
        .env("RUST_LOG", "warn")
        // Key commands and offline verification never touch a database: point at none.
        .env("AIXIN_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("run aixin")
}

#[test]
fn keys_rotate_and_receipts_verify_offline() {
    use aixin::keys::KeyRing;
    use aixin::redeem::receipt::{Receipt, ReceiptKind, ReceiptLine};

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    // Offline verification never creates a key file.
    let missing = keys_cli(&keys, &["receipt", "verify", "AXR1:AAAA"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));
    assert!(!keys.exists());

    let listed = keys_cli(&keys, &["keys", "list"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).starts_with("k1\tActive"),
        "{}",
        text(&listed.stdout)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is owner-only");
    }

    let receipt = Receipt {
        key_id: String::new(),
        ledger_id: "default".into(),
        id: uuid::Uuid::from_u128(7),
        kind: ReceiptKind::Redemption,
        refund_of: None,
        shop_id: uuid::Uuid::from_u128(8),
        shop_name: "爱心粮油店".into(),
        resident: "AX-00000000".into(),
        lines: vec![ReceiptLine {
            sku: "OIL1".into(),
            name: "花生油".into(),
            unit: "瓶".into(),
            quantity: 1,
            unit_points_minor: 1500,
            points_minor: 1500,
        }],
        total_minor: 1500,
        balance_after_minor: 0,
        entry_seq: 1,
        entry_hash: [1; 32],
        posted_at_micros: 0,
    };
    let old = receipt.clone().sign(&KeyRing::load(&keys).unwrap()).compact;
    let ok = keys_cli(&keys, &["receipt", "verify", &old]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("\"total_minor\": 1500"),
        "{}",
        text(&ok.stdout)
    );

    let rotated = keys_cli(&keys, &["keys", "rotate"]);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    assert_eq!(text(&rotated.stdout), "k2\n");
    let new = receipt.sign(&KeyRing::load(&keys).unwrap()).compact;
    for compact in [&old, &new] {
        let ok = keys_cli(&keys, &["receipt", "verify", compact]);
        assert!(ok.status.success(), "after rotation: {}", text(&ok.stderr));
    }
    let refused = keys_cli(&keys, &["keys", "revoke", "k2"]);
    assert!(
        !refused.status.success(),
        "the active key cannot be revoked"
    );
    let revoked = keys_cli(&keys, &["keys", "revoke", "k1"]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let old_now = keys_cli(&keys, &["receipt", "verify", &old]);
    assert_eq!(
        old_now.status.code(),
        Some(1),
        "a revoked key verifies nothing"
    );
    assert!(
        text(&old_now.stderr).contains("revoked"),
        "{}",
        text(&old_now.stderr)
    );
    let mut tampered = new.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let bad = keys_cli(
        &keys,
        &["receipt", "verify", &String::from_utf8(tampered).unwrap()],
    );
    assert_eq!(bad.status.code(), Some(1));
}

/// Runs aixin with its stdout a pipe whose reader has gone (as in `aixin ... | head -1` once
/// `head` has its line): the reading end is closed before aixin writes anything.
fn into_closed_pipe(url: &str, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aixin"))
        .args(["--database-url", url, "--ledger", "county-a"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run aixin");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for aixin")
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // Proves that a reader closing early (`aixin audit verify DIR | head -1`) neither panics nor
    // turns a command's answer into an error: no message on stderr beyond the command's own, and
    // the exit status the command would have had (0 for a bundle that verifies).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("pipe.sqlite").display());
    let keys = dir.path().join("keys.json");
    let keys = keys.to_str().unwrap();
    let bundle = dir.path().join("bundle");
    let bundle = bundle.to_str().unwrap();
    let with_keys = |args: &[&str]| {
        let mut all = vec!["--keys", keys];
        all.extend_from_slice(args);
        aixin(&url, "county-a", &all)
    };
    assert!(with_keys(&["seed-demo", "--entries", "200"])
        .status
        .success());
    assert!(with_keys(&["audit", "export", "--out", bundle])
        .status
        .success());
    for args in [
        vec!["audit", "verify", bundle],
        vec!["--keys", keys, "audit", "verify", bundle],
        vec!["verify"],
        vec!["report", "trial-balance"],
        vec!["report", "trial-balance", "--csv"],
        vec!["--keys", keys, "keys", "list"],
        vec!["--keys", keys, "audit", "checkpoint"],
        vec!["token", "create", "--role", "auditor"],
    ] {
        let out = into_closed_pipe(&url, &args);
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "aixin {args:?} into a closed pipe: {stderr}"
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "aixin {args:?} into a closed pipe: {stderr}"
        );
    }
}

on_both_backends!(verify_reports_a_head_ahead_of_the_clock);

async fn verify_reports_a_head_ahead_of_the_clock(h: common::Harness) {
    // Proves `aixin verify` reports a head more than HEAD_AHEAD_MAX ahead of this machine's clock:
    // the chain still verifies ("ok", status 0) and a warning line goes to stderr.
    use aixin::clock::Clock;
    let url = match &h.url_or_path {
        common::Target::Sqlite(url) => url.clone(),
        common::Target::Postgres { url, schema } => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}options=-c%20search_path%3D{schema}")
        }
    };
    let now = aixin::clock::SystemClock.now_micros();
    h.store.ensure_ledger("test", now).await.unwrap();
    let on_time = aixin(&url, "test", &["verify"]);
    assert_eq!(on_time.status.code(), Some(0), "{}", text(&on_time.stdout));
    assert!(!text(&on_time.stderr).contains("warning"));
    // An entry stamped an hour from now, as a server with a fast clock would write it.
    h.clock.set(now + 3_600_000_000);
    let from = h.open(aixin::ledger::AccountKind::Issuance).await;
    let to = h.open(aixin::ledger::AccountKind::Adjustment).await;
    let writer = aixin::writer::Writer::spawn(
        h.store.clone(),
        "test".to_owned(),
        h.clock.clone(),
        h.entropy.clone(),
    );
    let draft = common::transfer(
        aixin::ledger::EntryKind::Adjust,
        from,
        to,
        aixin::ledger::Unit::Points,
        "1.00",
    );
    let outcome = writer
        .submit("ahead".to_owned(), "test".to_owned(), draft)
        .await
        .unwrap();
    assert!(
        matches!(outcome, aixin::store::Outcome::Posted(_)),
        "{outcome:?}"
    );
    let ahead = aixin(&url, "test", &["verify"]);
    let (out, err) = (text(&ahead.stdout), text(&ahead.stderr));
    assert_eq!(ahead.status.code(), Some(0), "{out}{err}");
    assert!(out.starts_with("ok: ledger \"test\", 1 entries"), "{out}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: the head is ") && l.contains("ahead of this clock")),
        "{err}"
    );
}

#[test]
#[cfg(unix)]
fn the_sqlite_database_is_created_owner_only() {
    // Proves the database file is created 0600, like the key file: a dump of it holds names and
    // phone numbers. SQLite gives its WAL and shared-memory files the database file's mode; they
    // are checked too when they are still there (the last connection to close usually removes
    // them, so their presence after the command has ended is a matter of timing).
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.sqlite");
    let url = format!("sqlite:{}", path.display());
    let token = aixin(&url, "default", &["token", "create", "--role", "admin"]);
    assert!(token.status.success(), "{}", text(&token.stderr));
    let beside = ["fresh.sqlite-wal", "fresh.sqlite-shm"].map(|name| dir.path().join(name));
    let present = beside.into_iter().filter(|file| file.exists());
    for file in std::iter::once(path.clone()).chain(present) {
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{} is {:o}",
            file.display(),
            mode & 0o777
        );
    }
}

/// A one-time link as the sign-in commands print it: `{base}/{path}/axl_` and 64 hex digits.
fn assert_link(line: &str, base: &str, path: &str) -> String {
    let secret = line
        .strip_prefix(&format!("{base}/{path}/"))
        .unwrap_or_else(|| panic!("{line:?} is not a {path} link under {base}"));
    assert!(
        secret.len() == 68
            && secret.starts_with("axl_")
            && secret[4..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{line:?}"
    );
    secret.to_owned()
}

#[tokio::test]
async fn sign_in_commands_print_one_time_links() {
    // Proves the sign-in commands' output: `seed-demo` prints one tab-separated line per way into
    // the pages (users' set-password links, a till's pairing link, the clerk's PIN, the
    // resident's link, phone and card PIN), `user create` and `user reset-password`, `resident
    // sign-in-link` and `device pair` print their link alone on stdout under `--base-url`
    // (default http://127.0.0.1:8080), `user list` one line per user; and a printed link works.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("signin.sqlite").display());
    let keys = dir.path().join("keys.json");
    let keys = keys.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--keys", keys];
        all.extend_from_slice(args);
        aixin(&url, "county-a", &all)
    };
    let seeded = run(&[
        "seed-demo",
        "--entries",
        "100",
        "--base-url",
        "https://aixin.example/",
    ]);
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let printed = text(&seeded.stdout);
    let lines: Vec<Vec<&str>> = printed.lines().map(|l| l.split('\t').collect()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    assert_eq!(
        kinds,
        [
            "admin",
            "staff",
            "auditor",
            "till",
            "clerk",
            "resident",
            "resident-phone"
        ],
        "{printed}"
    );
    assert!(lines.iter().all(|l| l.len() == 3), "{printed}");
    let base = "https://aixin.example";
    for line in &lines[..3] {
        assert_link(line[2], base, "set-password");
    }
    assert_link(lines[3][2], base, "till/pair");
    assert!(lines[4][2].len() == 6 && lines[4][2].bytes().all(|b| b.is_ascii_digit()));
    assert_link(lines[5][2], base, "r");
    assert!(lines[6][2].len() == 6, "{printed}");

    let created = run(&["user", "create", "--role", "auditor", "--name", "审计"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let line = text(&created.stdout);
    let line = line.strip_suffix('\n').expect("one line");
    assert_link(line, "http://127.0.0.1:8080", "set-password");
    let again = run(&["user", "create", "--role", "auditor", "--name", "审计"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("name_taken"),
        "{}",
        text(&again.stderr)
    );
    let shop_role = run(&["user", "create", "--role", "shop", "--name", "x"]);
    assert_eq!(shop_role.status.code(), Some(2));
    assert!(shop_role.stdout.is_empty());

    let listed = run(&["user", "list"]);
    let listed = text(&listed.stdout);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    let auditor = listed
        .lines()
        .find(|l| l.ends_with("\t审计"))
        .unwrap_or_else(|| panic!("{listed}"));
    let columns: Vec<&str> = auditor.split('\t').collect();
    assert_eq!(
        columns[1..],
        ["auditor", "-", "no-password", "active", "审计"]
    );

    let reset = run(&[
        "user",
        "reset-password",
        "--name",
        "审计",
        "--base-url",
        base,
    ]);
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    // The new link replaces the first one.
    let secret = assert_link(text(&reset.stdout).trim_end(), base, "set-password");
    let missing = run(&["user", "reset-password", "--name", "无此人"]);
    assert_eq!(missing.status.code(), Some(2));

    let stores = aixin::store::connect_all(&url).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (shop,): (String,) = sqlx::query_as("SELECT id FROM shops ORDER BY id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (resident,): (String,) = sqlx::query_as("SELECT id FROM residents ORDER BY id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let paired = run(&["device", "pair", "--shop", &shop, "--label", "收银台 2"]);
    assert!(paired.status.success(), "{}", text(&paired.stderr));
    let pairing = assert_link(
        text(&paired.stdout).trim_end(),
        "http://127.0.0.1:8080",
        "till/pair",
    );
    let link = run(&["resident", "sign-in-link", "--resident", &resident]);
    assert!(link.status.success(), "{}", text(&link.stderr));
    assert_link(text(&link.stdout).trim_end(), "http://127.0.0.1:8080", "r");
    let nobody = run(&[
        "resident",
        "sign-in-link",
        "--resident",
        "00000000-0000-0000-0000-000000000001",
    ]);
    assert_eq!(nobody.status.code(), Some(2));
    assert!(text(&nobody.stderr).contains("no resident"));

    // The printed links work.
    let app = aixin::app::App::new(
        stores,
        std::sync::Arc::new(aixin::clock::SystemClock),
        std::sync::Arc::new(aixin::clock::OsEntropy),
    );
    app.sessions
        .set_password("county-a", &secret, "a long enough password")
        .await
        .unwrap();
    app.sessions
        .sign_in_password("county-a", "审计", "a long enough password", "127.0.0.1")
        .await
        .unwrap();
    let device = app
        .sessions
        .redeem_pairing_link("county-a", &pairing, None)
        .await
        .unwrap();
    assert_eq!(device.device.label, "收银台 2");
    let devices = run(&["device", "list", "--shop", &shop]);
    let devices = text(&devices.stdout);
    assert!(
        devices.contains("\tpaired\t") && devices.ends_with("\t收银台 2\n"),
        "{devices}"
    );
    let unpaired = run(&["device", "unpair", &device.device.id.to_string()]);
    assert!(unpaired.status.success(), "{}", text(&unpaired.stderr));
    assert!(text(&run(&["device", "list", "--shop", &shop]).stdout).contains("\tunpaired\t"));

    // A shop's owner as a user: `--role shop --scope SHOP_ID`, signing in with a password.
    let owner = run(&[
        "user", "create", "--role", "shop", "--scope", &shop, "--name", "店主",
    ]);
    assert!(owner.status.success(), "{}", text(&owner.stderr));
    let secret = assert_link(
        text(&owner.stdout).trim_end(),
        "http://127.0.0.1:8080",
        "set-password",
    );
    app.sessions
        .set_password("county-a", &secret, "a long enough password")
        .await
        .unwrap();
    let session = app
        .sessions
        .sign_in_password("county-a", "店主", "a long enough password", "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(session.signed_in.principal.role, aixin::auth::Role::Shop);
    assert_eq!(
        session.signed_in.principal.scope.as_deref(),
        Some(shop.as_str())
    );
}
