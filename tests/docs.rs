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

/// `1024` as the documents write it: `1 024`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[test]
fn architecture_states_the_writers_true_bounds() {
    // Proves ARCHITECTURE.md names each writer bound with the value in src/writer.rs, says what
    // it counts, and no longer calls the submission bound a bound on requests (`BATCH_MAX`).
    use aixin::writer::{GROUP_MAX, QUEUE_MAX, REQUESTS_PER_BATCH_MAX, SUBMISSIONS_PER_BATCH_MAX};
    let doc = read("ARCHITECTURE.md");
    for (name, value, counts) in [
        (
            "SUBMISSIONS_PER_BATCH_MAX",
            SUBMISSIONS_PER_BATCH_MAX,
            "submissions",
        ),
        ("GROUP_MAX", GROUP_MAX, "requests"),
        ("REQUESTS_PER_BATCH_MAX", REQUESTS_PER_BATCH_MAX, "requests"),
        ("QUEUE_MAX", QUEUE_MAX, "submissions"),
    ] {
        let stated = format!("`{name}` = {} {counts}", grouped(value));
        assert!(doc.contains(&stated), "ARCHITECTURE.md must say {stated:?}");
    }
    assert!(
        !doc.contains("`BATCH_MAX`"),
        "ARCHITECTURE.md still names BATCH_MAX"
    );
    let row = |first: &str| {
        doc.lines()
            .find(|l| l.starts_with(&format!("| {first} |")))
            .unwrap_or_else(|| panic!("the Limits table's {first} row"))
    };
    for value in [SUBMISSIONS_PER_BATCH_MAX, GROUP_MAX, REQUESTS_PER_BATCH_MAX] {
        assert!(row("batch").contains(&grouped(value)), "{}", row("batch"));
    }
    assert!(
        row("queue").contains(&grouped(QUEUE_MAX)),
        "{}",
        row("queue")
    );
}

#[test]
fn measured_figures_live_in_benchmarks_md() {
    // Proves ARCHITECTURE.md and the README carry no measured throughput or latency (figures
    // that go stale), and that BENCHMARKS.md, where they live, says how and where each was taken.
    // A number followed by a rate or duration unit ("13k entries/s", "130 µs", "4×"); a ratio on
    // a line that calls it a target is a goal, not a measurement.
    let measured = |line: &str| {
        ["/s", "tps", "µs", "ms", "×"].iter().any(|unit| {
            line.match_indices(unit).any(|(i, _)| {
                let after = line[i + unit.len()..].chars().next();
                if after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                    return false; // a word or a path (`/v1/shops`), not a unit
                }
                let mut before = line[..i].trim_end();
                for word in ["entries", "transfers", "requests", "redemptions", "rows"] {
                    before = before.strip_suffix(word).unwrap_or(before).trim_end();
                }
                let before = before.trim_end_matches(['k', 'K']);
                before.ends_with(|c: char| c.is_ascii_digit())
                    && !(*unit == "×" && line.contains("target"))
            })
        })
    };
    let stale = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| measured(l))
            .map(str::to_owned)
            .collect()
    };
    assert!(measured("about 9–14k entries/s against"));
    assert!(measured("fsync (~130 µs on this disk)"));
    assert!(measured("went from 1,200 to 2,200/s once"));
    assert!(!measured(
        "streams a bundle out of the store, runs reports)."
    ));
    for doc in ["ARCHITECTURE.md", "README.md"] {
        let found = stale(&read(doc));
        assert!(
            found.is_empty(),
            "{doc} has measured figures; move them to BENCHMARKS.md: {found:#?}"
        );
    }
    let benchmarks = read("BENCHMARKS.md");
    for bench in ["ledger", "redeem_http", "audit"] {
        assert!(
            benchmarks.contains(&format!("cargo bench --bench {bench}")),
            "BENCHMARKS.md must name the command of the {bench} bench"
        );
    }
    assert!(benchmarks.contains("**Where and when.**"));
    assert!(read("README.md").contains("(BENCHMARKS.md)"));
}
