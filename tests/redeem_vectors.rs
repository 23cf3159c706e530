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
use sha2::Digest as _;
use uuid::Uuid;

fn vectors() -> Value {
    let master = [0x11u8; 32];
    let credential = Uuid::parse_str("0192a3b4-c5d6-47e8-9f01-23456789abcd").unwrap();
    let secret = derive_credential_secret(&master, "jiaxiang", credential, 1);
    let number = 305_117_042u32;
    // A moment inside each step (its first second, its last, one in between) so that a
    // generator's step arithmetic is checked too; step -1 checks the signed step encoding.
    let codes: Vec<Value> = [(-1i64, -1i64), (0, 0), (59_666_666, 1_790_000_000), (59_666_667, 1_790_000_039), (61_000_000, 1_830_000_029)]
        .iter()
        .map(|&(step, unix_seconds)| {
            assert_eq!(code::step_of(unix_seconds * 1_000_000), step);
            let otp = code::otp(&secret, number, step);
            json!({"step": step, "unix_seconds": unix_seconds, "otp": format!("{otp:013}"), "code": code::encode(number, otp)})
        })
        .collect();
    // Which code to show (spec section 4.2) at one moment, 20 s into step 59 666 666, after
    // no sale, an old one, one in this step, and three in this step (beyond the window).
    let now = 1_790_000_000i64;
    let shown: Vec<Value> = [
        None,
        Some(59_666_000i64),
        Some(59_666_666),
        Some(59_666_668),
    ]
    .iter()
    .map(|&last_used_step| {
        let step = code::step_to_show(code::step_of(now * 1_000_000), last_used_step);
        json!({
            "unix_seconds": now, "last_used_step": last_used_step, "step": step,
            "code": code::code_for_step(&secret, number, step),
            "expires_in_seconds": (step + 1) * code::STEP_SECONDS - now,
            "valid_in_seconds": ((step - code::STEP_WINDOW) * code::STEP_SECONDS - now).max(0),
        })
    })
    .collect();
    // Digits a till may be shown, and the app the spec's section 3.1 names for them.
    let foreign: Vec<Value> = [
        "289431869362714645",
        "134567890123456789",
        "6212345678901234567",
        "2500000000000000",
        "309999999999999999999999",
        "3099999999999999999999990",
        "169999999999999999",
        "0112345678901234567",
        "6901234567892",
    ]
    .iter()
    .map(|d| (d.to_string(), code::foreign_app(d).map(|a| a.as_str())))
    .chain([
        {
            // A layout-1 code (retired) is an Alipay code.
            let otp = 282_534u32;
            let body = format!("28{number:09}{otp:06}");
            let check = code::damm(body.as_bytes());
            let layout1 = format!("{body}{check}");
            let app = code::foreign_app(&layout1).map(|a| a.as_str());
            (layout1, app)
        },
        {
            let aixin = code::encode(number, 0);
            let app = code::foreign_app(&aixin).map(|a| a.as_str());
            (aixin, app)
        },
    ])
    .map(|(digits, app)| json!({"digits": digits, "app": app}))
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
    // and the 24 digits of a code before its check digit.
    let damm: Vec<Value> = ["572", "5724", "723051170420000000000000"]
        .iter()
        .map(|d| json!({"digits": d, "check": code::damm(d.as_bytes())}))
        .collect();
    json!({
        "description": "Vectors for ledger-specs/redemption-code.md and ledger-specs/receipt.md. All byte strings are hex.",
        "credential_secret": {
            "master_key_hex": hex::encode(master), "ledger_id": "jiaxiang", "credential_id": credential,
            "generation": 1, "secret_hex": hex::encode(secret),
        },
        "codes": {"layout": code::LAYOUT, "secret_hex": hex::encode(secret), "number": number, "vectors": codes},
        "shown": {"secret_hex": hex::encode(secret), "number": number, "vectors": shown},
        "foreign": foreign,
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
    // Every layout-2 code, every "which code to show" case and every foreign-code case.
    let v = vectors();
    for (what, n) in [
        ("codes", v["codes"]["vectors"].as_array().unwrap().len()),
        ("shown", v["shown"]["vectors"].as_array().unwrap().len()),
        ("foreign", v["foreign"].as_array().unwrap().len()),
    ] {
        assert!(out.contains(&format!("{what}: {n} verified")), "{out}");
    }
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

/// A row of the spec's table of payment-code and barcode ranges (section 3.1).
struct Range {
    id: String,
    lengths: (usize, usize),
    prefixes: (u8, u8),
    named_by_the_till: bool,
}

/// The table between `<!-- ranges:start -->` and `<!-- ranges:end -->` in the spec.
fn ranges_of_the_spec() -> Vec<Range> {
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-specs/redemption-code.md"),
    )
    .unwrap();
    let from = spec
        .find("<!-- ranges:start -->")
        .expect("ranges:start marker");
    let to = spec.find("<!-- ranges:end -->").expect("ranges:end marker");
    let span = |cell: &str| -> (u64, u64) {
        let bound = |t: &str| {
            t.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{cell:?}"))
        };
        match cell.split_once('–') {
            Some((a, b)) => (bound(a), bound(b)),
            None => (bound(cell), bound(cell)),
        }
    };
    let rows: Vec<Range> = spec[from..to]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 6, "{line}");
            let (l0, l1) = span(cells[2]);
            let (p0, p1) = span(cells[3]);
            Range {
                id: cells[0].trim_matches('`').to_owned(),
                lengths: (l0 as usize, l1 as usize),
                prefixes: (p0 as u8, p1 as u8),
                named_by_the_till: match cells[4] {
                    "yes" => true,
                    "no" => false,
                    other => panic!("{other:?} in {line}"),
                },
            }
        })
        .collect();
    assert!(rows.len() >= 12, "the table has its rows");
    rows
}

/// A range as (id, lengths, prefixes), to compare the spec's with the till's.
type RangeRow = (String, (usize, usize), (u8, u8));

fn in_range(range: &Range, digits: &str) -> bool {
    let prefix: u8 = digits[..2].parse().unwrap();
    (range.lengths.0..=range.lengths.1).contains(&digits.len())
        && (range.prefixes.0..=range.prefixes.1).contains(&prefix)
}

#[test]
fn no_generated_code_falls_in_a_documented_payment_or_barcode_range() {
    // Proves TRUST.md's "a code is never taken for a payment app's code": 20 000 codes over
    // 20 secrets, 50 numbers (the smallest, the largest, and others spread between) and 20
    // steps (negative, zero, now, far ahead) each lie outside every row of the spec's table of
    // ranges, parse as aixin codes, and are named no app by the till. And the rows the spec says
    // the till names are exactly the till's own table.
    let rows = ranges_of_the_spec();
    let named: Vec<RangeRow> = rows
        .iter()
        .filter(|r| r.named_by_the_till)
        .map(|r| (r.id.clone(), r.lengths, r.prefixes))
        .collect();
    let till: Vec<RangeRow> = code::PAYMENT_RANGES
        .iter()
        .map(|r| (r.app.as_str().to_owned(), r.lengths, r.prefixes))
        .collect();
    assert_eq!(
        named, till,
        "the spec's recognised rows and code::PAYMENT_RANGES"
    );
    let mut seed = [0u8; 32];
    let mut next = || {
        seed = sha2::Sha256::digest(seed).into();
        seed
    };
    let secrets: Vec<[u8; 32]> = (0..20).map(|_| next()).collect();
    let mut numbers = vec![1u32, 2, 9, 10, 99_999_999, 100_000_000, code::NUMBER_MAX];
    while numbers.len() < 50 {
        let r = next();
        numbers.push(1 + u32::from_be_bytes([r[0], r[1], r[2], r[3]]) % code::NUMBER_MAX);
    }
    let mut steps = vec![i64::MIN / 2, -1, 0, 1, 59_666_666, 61_000_000, i64::MAX / 2];
    while steps.len() < 20 {
        let r = next();
        steps.push(i64::from(u32::from_be_bytes([r[0], r[1], r[2], r[3]])));
    }
    let mut checked = 0;
    for secret in &secrets {
        for &number in &numbers {
            for &step in &steps {
                let c = code::code_for_step(secret, number, step);
                for row in &rows {
                    assert!(!in_range(row, &c), "{c} is in the range of {}", row.id);
                }
                assert_eq!(code::foreign_app(&c), None, "{c}");
                assert_eq!(code::parse(&c).map(|p| p.number), Ok(number), "{c}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 20_000);
    // And the table is one a payment code falls in: Alipay's own example, a layout-1 code.
    for (digits, id) in [
        ("289431869362714645", "alipay"),
        ("283051170420282534", "alipay"),
    ] {
        assert!(rows.iter().any(|r| r.id == id && in_range(r, digits)));
    }
}

#[test]
fn every_single_digit_change_and_adjacent_swap_of_a_vector_is_refused() {
    // Proves, exhaustively on every published code, that the check digit refuses each of the
    // 225 single-digit changes and each swap of adjacent different digits: the till answers
    // them without looking anything up (the proptest in src/ledger/code.rs does the same over
    // random codes).
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let codes: Vec<String> = ["codes", "shown"]
        .iter()
        .flat_map(|k| stored[k]["vectors"].as_array().unwrap().clone())
        .map(|v| v["code"].as_str().unwrap().to_owned())
        .collect();
    assert!(codes.len() >= 9);
    for c in codes {
        assert!(code::parse(&c).is_ok(), "{c}");
        let digits = c.as_bytes();
        for pos in 0..digits.len() {
            for delta in 1..10u8 {
                let mut changed = digits.to_vec();
                changed[pos] = b'0' + (changed[pos] - b'0' + delta) % 10;
                let changed = String::from_utf8(changed).unwrap();
                assert!(code::parse(&changed).is_err(), "{changed} (from {c})");
            }
            if pos + 1 < digits.len() && digits[pos] != digits[pos + 1] {
                let mut swapped = digits.to_vec();
                swapped.swap(pos, pos + 1);
                let swapped = String::from_utf8(swapped).unwrap();
                assert!(code::parse(&swapped).is_err(), "{swapped} (from {c})");
            }
        }
    }
}
