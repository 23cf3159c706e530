//! Golden vectors for redemption codes, card PINs, credential secrets and receipts
//! (`ledger-specs/vectors/redemption.json`), checked against the code here and against the
//! independent Python implementation in `ledger-specs/tools/check_redemption.py`, which was
//! written from `ledger-specs/redemption-code.md` and `ledger-specs/receipt.md` alone.
//!
//! `AIXIN_BLESS=1 cargo test --test redeem_vectors` rewrites the file after a deliberate change.

use std::path::Path;
use std::process::Command;

use aixin::keys::{derive_credential_secret, KeyRing};
use aixin::ledger::code;
use aixin::redeem::receipt::{verify_compact, Receipt, ReceiptKind, ReceiptLine};
use serde_json::{json, Value};
use uuid::Uuid;

fn vectors() -> Value {
    let master = [0x11u8; 32];
    let credential = Uuid::parse_str("0192a3b4-c5d6-47e8-9f01-23456789abcd").unwrap();
    let secret = derive_credential_secret(&master, "jiaxiang", credential, 1);
    let number = 305_117_042u32;
    let codes: Vec<Value> = [0i64, 59_666_666, 59_666_667, 61_000_000]
        .iter()
        .map(|&step| {
            let otp = code::otp(&secret, number, step);
            json!({"step": step, "otp": format!("{otp:06}"), "code": code::encode(number, otp)})
        })
        .collect();
    let ring = KeyRing::from_parts(master, "k1", [0x22; 32]);
    let receipts: Vec<Value> = [
        Receipt {
            key_id: String::new(),
            ledger_id: "jiaxiang".into(),
            id: Uuid::parse_str("0192a3b4-0000-7000-8000-000000000001").unwrap(),
            kind: ReceiptKind::Redemption,
            refund_of: None,
            shop_id: Uuid::parse_str("0192a3b4-0000-7000-8000-0000000000aa").unwrap(),
            shop_name: "爱心粮油店".into(),
            resident: "AX-7K2M9QPA".into(),
            lines: vec![
                ReceiptLine { sku: "RICE5".into(), name: "东北大米 5kg".into(), unit: "袋".into(), quantity: 2, unit_points_minor: 5000, points_minor: 10000 },
                ReceiptLine { sku: "OIL1".into(), name: "花生油 1L".into(), unit: "瓶".into(), quantity: 1, unit_points_minor: 3050, points_minor: 3050 },
            ],
            total_minor: 13050,
            balance_after_minor: 6950,
            entry_seq: 4711,
            entry_hash: [0xab; 32],
            posted_at_micros: 1_790_000_000_123_456,
        },
        Receipt {
            key_id: String::new(),
            ledger_id: "jiaxiang".into(),
            id: Uuid::parse_str("0192a3b4-0000-7000-8000-000000000002").unwrap(),
            kind: ReceiptKind::Refund,
            refund_of: Some(Uuid::parse_str("0192a3b4-0000-7000-8000-000000000001").unwrap()),
            shop_id: Uuid::parse_str("0192a3b4-0000-7000-8000-0000000000aa").unwrap(),
            shop_name: "爱心粮油店".into(),
            resident: "AX-7K2M9QPA".into(),
            lines: vec![ReceiptLine { sku: "RICE5".into(), name: "东北大米 5kg".into(), unit: "袋".into(), quantity: 1, unit_points_minor: 5000, points_minor: 5000 }],
            total_minor: 5000,
            balance_after_minor: 11950,
            entry_seq: 4790,
            entry_hash: [0xcd; 32],
            posted_at_micros: 1_790_000_900_000_000,
        },
    ]
    .into_iter()
    .map(|r| {
        let signed = r.sign(&ring);
        let r = &signed.receipt;
        json!({
            "fields": {
                "key_id": r.key_id, "ledger_id": r.ledger_id, "id": r.id, "kind": r.kind.as_str(),
                "refund_of": r.refund_of, "shop_id": r.shop_id, "shop_name": r.shop_name,
                "resident": r.resident,
                "lines": r.lines.iter().map(|l| json!({"sku": l.sku, "name": l.name, "unit": l.unit,
                    "quantity": l.quantity, "unit_points_minor": l.unit_points_minor, "points_minor": l.points_minor})).collect::<Vec<_>>(),
                "total_minor": r.total_minor, "balance_after_minor": r.balance_after_minor,
                "entry_seq": r.entry_seq, "entry_hash": hex::encode(r.entry_hash), "posted_at_micros": r.posted_at_micros,
            },
            "message_hex": hex::encode(r.message()),
            "tag_hex": hex::encode(signed.tag),
            "compact": signed.compact,
        })
    })
    .collect();
    // Damm's textbook example (572 → 4), the same number with its check digit (→ 0: well formed),
    // and the 17 digits of a code.
    let damm: Vec<Value> = ["572", "5724", "28305117042000000"]
        .iter()
        .map(|d| json!({"digits": d, "check": code::damm(d.as_bytes())}))
        .collect();
    json!({
        "description": "Vectors for ledger-specs/redemption-code.md and ledger-specs/receipt.md. All byte strings are hex.",
        "credential_secret": {
            "master_key_hex": hex::encode(master), "ledger_id": "jiaxiang", "credential_id": credential,
            "generation": 1, "secret_hex": hex::encode(secret),
        },
        "codes": {"secret_hex": hex::encode(secret), "number": number, "vectors": codes},
        "pin": {"secret_hex": hex::encode(secret), "number": number, "pin": format!("{:06}", code::pin(&secret, number))},
        "damm": damm,
        "receipt_key": {"key_id": "k1", "secret_hex": hex::encode([0x22u8; 32])},
        "receipts": receipts,
    })
}

fn path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/vectors/redemption.json")
}

#[test]
fn vectors_match_the_code() {
    let text = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var("AIXIN_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(path(), &text).unwrap();
    }
    let stored = std::fs::read_to_string(path()).expect("vectors file (AIXIN_BLESS=1 writes it)");
    assert_eq!(
        stored, text,
        "the vectors changed; bless them only for a deliberate change"
    );
    // Damm's own textbook example: 572 → check digit 4.
    assert_eq!(code::damm(b"572"), 4);
    // Every receipt vector verifies with the ring, and fails with a flipped tag.
    let ring = KeyRing::from_parts([0x11; 32], "k1", [0x22; 32]);
    for r in vectors()["receipts"].as_array().unwrap() {
        assert!(verify_compact(&ring, r["compact"].as_str().unwrap()).is_ok());
    }
}

#[test]
fn an_independent_python_implementation_agrees() {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/tools/check_redemption.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(path())
        .output()
        .expect("python3 is required for this test (see README)");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("receipts: 2 verified"), "{out}");
    assert!(out.contains("damm: 3 verified"), "{out}");
    // And it rejects a receipt with one changed character.
    let ring = KeyRing::from_parts([0x11; 32], "k1", [0x22; 32]);
    let compact = vectors()["receipts"][0]["compact"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(verify_compact(&ring, &compact).is_ok());
    let mut bad = compact.into_bytes();
    let i = bad.len() - 10;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    let output = Command::new("python3")
        .arg(&script)
        .args([
            "--receipt",
            &bad,
            "--key-id",
            "k1",
            "--key-hex",
            &hex::encode([0x22u8; 32]),
        ])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "python accepted a changed receipt"
    );
}

/// The Damm table exactly as `ledger-specs/redemption-code.md` §3 writes it: the fenced block
/// whose first line is the column header `0 1 2 … 9`, then rows `i:  T[i][0] … T[i][9]`.
fn damm_table_of_the_spec() -> [[u8; 10]; 10] {
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/redemption-code.md"),
    )
    .unwrap();
    let header = spec
        .lines()
        .position(|l| l.split_whitespace().eq("0 1 2 3 4 5 6 7 8 9".split(' ')))
        .expect("the spec's Damm table header `0 1 2 3 4 5 6 7 8 9`");
    let mut table = [[0u8; 10]; 10];
    for (i, line) in spec.lines().skip(header + 1).take(10).enumerate() {
        let (row, cells) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("table row {i}: {line:?}"));
        assert_eq!(row.trim(), i.to_string(), "table rows in order: {line:?}");
        let cells: Vec<u8> = cells
            .split_whitespace()
            .map(|c| c.parse().unwrap_or_else(|_| panic!("{line:?}")))
            .collect();
        assert_eq!(cells.len(), 10, "{line:?}");
        table[i].copy_from_slice(&cells);
    }
    // A quasigroup: every row and every column is a permutation of 0..=9, and the diagonal is 0.
    for (i, cells) in table.iter().enumerate() {
        let mut row: Vec<u8> = cells.to_vec();
        let mut column: Vec<u8> = table.iter().map(|r| r[i]).collect();
        row.sort_unstable();
        column.sort_unstable();
        assert_eq!(row, (0..10).collect::<Vec<u8>>(), "row {i}");
        assert_eq!(column, (0..10).collect::<Vec<u8>>(), "column {i}");
        assert_eq!(cells[i], 0, "diagonal at {i}");
    }
    table
}

fn damm_by(table: &[[u8; 10]; 10], digits: &str) -> u8 {
    digits
        .bytes()
        .fold(0, |interim, d| table[interim as usize][(d - b'0') as usize])
}

#[test]
fn every_damm_vector_follows_the_table_in_the_spec() {
    // Proves the published Damm vectors, the code's table and the spec's table are one table:
    // each vector's check digit is recomputed from the table parsed out of the markdown, every
    // code vector ends in a valid check digit, and the code agrees with the spec on all 100 cells.
    let table = damm_table_of_the_spec();
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let damm = stored["damm"].as_array().expect("damm vectors");
    assert!(!damm.is_empty());
    for v in damm {
        let digits = v["digits"].as_str().unwrap();
        assert_eq!(
            v["check"].as_u64(),
            Some(u64::from(damm_by(&table, digits))),
            "vector {v}: the spec's table gives another check digit"
        );
    }
    for v in stored["codes"]["vectors"].as_array().unwrap() {
        let code = v["code"].as_str().unwrap();
        assert_eq!(
            damm_by(&table, code),
            0,
            "code vector {code} is not well formed"
        );
    }
    // Row 0 is a permutation, so every cell T[i][d] is reached by the two digits p d with T[0][p] = i.
    for (i, row) in table.iter().enumerate() {
        let p = table[0].iter().position(|&x| x as usize == i).unwrap();
        for (d, &cell) in row.iter().enumerate() {
            let digits = format!("{p}{d}");
            assert_eq!(code::damm(digits.as_bytes()), cell, "T[{i}][{d}]");
        }
    }
}
