//! Keeps the written documents true to the code: every error code is in `ledger-specs/errors.md`
//! with its status, and the top of the README carries the two commands that matter.

use std::path::Path;

use aixin::error::ErrorCode;

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).expect(relative)
}

#[test]
fn every_error_code_is_documented() {
    // Proves ledger-specs/errors.md lists every stable code with its HTTP status and title.
    // Regenerate the table with `AIXIN_BLESS=1 cargo test --test docs`.
    let table: String = ErrorCode::ALL
        .iter()
        .map(|c| {
            format!(
                "| `{}` | {} | {} |\n",
                c.code(),
                c.status().as_u16(),
                c.title()
            )
        })
        .collect();
    let doc = read("ledger-specs/errors.md");
    let (start, end) = ("<!-- table:start -->\n", "<!-- table:end -->");
    let from = doc.find(start).expect("start marker") + start.len();
    let to = doc.find(end).expect("end marker");
    let header = "| code | status | title |\n|---|---|---|\n";
    let wanted = format!("{header}{table}");
    if std::env::var("AIXIN_BLESS").as_deref() == Ok("1") {
        let new = format!("{}{wanted}{}", &doc[..from], &doc[to..]);
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/errors.md"),
            new,
        )
        .unwrap();
        return;
    }
    let current = &doc[from..to];
    let changed: Vec<&str> = wanted
        .lines()
        .filter(|l| !current.lines().any(|d| d == *l))
        .collect();
    assert!(
        current == wanted,
        "ledger-specs/errors.md is stale (run AIXIN_BLESS=1 cargo test --test docs); rows missing or changed: {changed:?}"
    );
}

#[test]
fn readme_starts_with_run_and_test() {
    // Proves the README opens with the command that runs the service and the one that tests it.
    let readme = read("README.md");
    let head: String = readme.lines().take(30).collect::<Vec<_>>().join("\n");
    assert!(head.contains("cargo run --release -- serve"), "{head}");
    assert!(head.contains("cargo test"), "{head}");
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test"),
        ".ci/run must run the README's test command"
    );
}
