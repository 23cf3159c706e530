//! Runs every scenario file in `ledger-specs/scenarios/` on both backends: operations in, the
//! outcomes, balances, head sequence and head hash that must come out. Ids and times are
//! derived deterministically, so both backends must produce the very same chain.
//! The file format is described in `ledger-specs/scenarios/README.md`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use aixin::error::ErrorCode;
use aixin::ledger::{
    format_minor, AccountKind, Amount, EntryDraft, EntryKind, Posting, Side, Unit, WriteRequest,
};
use aixin::store::{NewAccount, Opened, Outcome};
use common::{assert_invariants, Harness};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

on_both_backends!(scenarios_hold);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    description: String,
    ledger: String,
    start_micros: i64,
    /// name → account kind
    accounts: BTreeMap<String, String>,
    steps: Vec<Step>,
    expect: Final,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Step {
    Batch { batch: Vec<Operation> },
    One(Operation),
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Operation {
    key: String,
    kind: String,
    /// [account name, side, unit, amount]
    postings: Vec<(String, String, String, String)>,
    #[serde(default)]
    memo: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// The key of the earlier step whose entry this reverses.
    #[serde(default)]
    reverses: Option<String>,
    expect: Expect,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
enum Expect {
    /// "posted" or "replayed"
    Word(String),
    Refused {
        refused: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Final {
    /// name → unit → amount; every named account must be listed, with every unit it holds.
    balances: BTreeMap<String, BTreeMap<String, String>>,
    head_seq: i64,
    head_hash: String,
}

fn derived_uuid(parts: &[&str]) -> Uuid {
    let digest = Sha256::digest(parts.join("\0"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

async fn scenarios_hold(h: Harness) {
    // Proves every scenario in ledger-specs/scenarios gives exactly its expected outcomes,
    // balances and chain head, and passes the invariant check afterwards.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenario dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the scenario files, found {}",
        files.len()
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read scenario");
        let scenario: Scenario =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        run(&h, &file.file_name().unwrap().to_string_lossy(), scenario).await;
    }
}

async fn run(h: &Harness, name: &str, scenario: Scenario) {
    let store = h.store.as_ref();
    store
        .ensure_ledger(&scenario.ledger, scenario.start_micros)
        .await
        .unwrap();
    let mut ids = BTreeMap::new();
    for (account, kind) in &scenario.accounts {
        let kind = AccountKind::parse(kind).unwrap_or_else(|| panic!("{name}: kind {kind}"));
        let new = NewAccount {
            id: derived_uuid(&["scenario-account", &scenario.ledger, account]),
            kind,
            owner_id: None,
            community_id: None,
            label: account.clone(),
        };
        let opened = store
            .open_account(&scenario.ledger, &new, scenario.start_micros)
            .await
            .unwrap();
        assert!(
            matches!(opened, Opened::Created(_)),
            "{name}: {account} existed"
        );
        ids.insert(account.clone(), new.id);
    }
    let mut entry_by_key: BTreeMap<String, Uuid> = BTreeMap::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        let operations = match step {
            Step::Batch { batch } => batch.clone(),
            Step::One(op) => vec![op.clone()],
        };
        let requests: Vec<WriteRequest> = operations
            .iter()
            .map(|op| {
                let draft = EntryDraft {
                    kind: EntryKind::parse(&op.kind)
                        .unwrap_or_else(|| panic!("{name}: kind {}", op.kind)),
                    postings: op
                        .postings
                        .iter()
                        .map(|(account, side, unit, value)| Posting {
                            account: *ids
                                .get(account)
                                .unwrap_or(&derived_uuid(&["unknown", account])),
                            side: Side::parse(side).expect("side"),
                            unit: Unit::parse(unit).expect("unit"),
                            amount: Amount::parse(value).expect("amount"),
                        })
                        .collect(),
                    memo: op.memo.clone(),
                    metadata: op.metadata.clone(),
                    reverses: op.reverses.as_ref().map(|k| {
                        *entry_by_key
                            .get(k)
                            .unwrap_or(&derived_uuid(&["missing", k]))
                    }),
                };
                let id = derived_uuid(&[
                    "scenario-entry",
                    &scenario.ledger,
                    &op.key,
                    &index.to_string(),
                ]);
                WriteRequest::new(op.key.clone(), "scenario".to_owned(), draft, id)
            })
            .collect();
        let now = scenario.start_micros + index as i64 * 1_000_000;
        let outcomes = store
            .commit_batch(&scenario.ledger, now, &requests)
            .await
            .unwrap();
        for (op, outcome) in operations.iter().zip(outcomes) {
            let got = match &outcome {
                Outcome::Posted(e) => {
                    entry_by_key.insert(op.key.clone(), e.id);
                    "posted".to_owned()
                }
                Outcome::Replayed(_) => "replayed".to_owned(),
                Outcome::Refused(r) => format!("refused {}", ErrorCode::from(r).code()),
            };
            let want = match &op.expect {
                Expect::Word(w) => w.clone(),
                Expect::Refused { refused } => format!("refused {refused}"),
            };
            assert_eq!(
                got, want,
                "{name}: step {index}, key {:?}: {outcome:?}",
                op.key
            );
        }
    }
    let mut actual: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (account, id) in &ids {
        let stored = store.account(&scenario.ledger, *id).await.unwrap().unwrap();
        actual.insert(
            account.clone(),
            stored
                .balances
                .iter()
                .map(|(u, b)| (u.as_str().to_owned(), format_minor(*b)))
                .collect(),
        );
    }
    assert_eq!(
        actual, scenario.expect.balances,
        "{name}: balances ({})",
        scenario.description
    );
    let head = store.head(&scenario.ledger).await.unwrap().unwrap();
    assert_eq!(head.seq, scenario.expect.head_seq, "{name}: head seq");
    assert_eq!(
        hex::encode(head.hash),
        scenario.expect.head_hash,
        "{name}: head hash"
    );
    assert_invariants(store, &scenario.ledger).await;
}
