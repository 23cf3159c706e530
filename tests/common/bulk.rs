//! A large ledger written straight into a migrated SQLite file (not through the writer), for
//! the export memory test and the audit benchmark: every entry is a valid, chained `earn` of one
//! point and one posting pair, and the head and balances match, so the ledger verifies.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use aixin::ledger::chain::{entry_hash, genesis_hash};
use aixin::ledger::{Amount, EntryKind, PostedEntry, Posting, Side, Unit};
use uuid::Uuid;

/// Writes `entries` entries (2 postings each) over `residents` resident accounts and one
/// issuance account into ledger `ledger` of the SQLite file at `path`. Returns the postings.
pub fn build_sqlite_ledger(path: &Path, ledger: &str, entries: usize, residents: usize) -> usize {
    let mut conn = rusqlite::Connection::open(path).expect("open sqlite");
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    let t0: i64 = 1_767_225_600_000_000;
    let issuance = Uuid::from_u128(1);
    let resident = |i: usize| Uuid::from_u128(1_000_000 + i as u128);
    {
        let mut account = tx
            .prepare("INSERT INTO accounts (ledger_id, id, kind, owner_id, community_id, label, created_at) VALUES (?1, ?2, ?3, ?4, 'c1', ?5, ?6)")
            .unwrap();
        let mut balance = tx
            .prepare("INSERT INTO balances (ledger_id, account_id, unit, balance_minor) VALUES (?1, ?2, ?3, ?4)")
            .unwrap();
        let mut sums: BTreeMap<usize, i64> = BTreeMap::new();
        for i in 0..entries {
            *sums.entry(i % residents).or_default() += 100;
        }
        account
            .execute(rusqlite::params![
                ledger,
                issuance.to_string(),
                "issuance",
                None::<String>,
                "issuance",
                t0
            ])
            .unwrap();
        balance
            .execute(rusqlite::params![
                ledger,
                issuance.to_string(),
                "points",
                -(entries as i64) * 100
            ])
            .unwrap();
        balance
            .execute(rusqlite::params![ledger, issuance.to_string(), "hours", 0])
            .unwrap();
        for r in 0..residents {
            let id = resident(r).to_string();
            account
                .execute(rusqlite::params![
                    ledger,
                    id,
                    "resident",
                    format!("r{r}"),
                    format!("AX-{r:08}"),
                    t0
                ])
                .unwrap();
            balance
                .execute(rusqlite::params![
                    ledger,
                    id,
                    "points",
                    sums.get(&r).copied().unwrap_or(0)
                ])
                .unwrap();
            balance
                .execute(rusqlite::params![ledger, id, "hours", 0])
                .unwrap();
        }
        let mut entry_stmt = tx
            .prepare("INSERT INTO entries (ledger_id, seq, id, kind, idempotency_key, request_hash, actor, memo, metadata, reverses, posted_at, prev_hash, hash) VALUES (?1, ?2, ?3, 'earn', ?4, ?5, 'token:bulk', '', '{}', NULL, ?6, ?7, ?8)")
            .unwrap();
        let mut posting_stmt = tx
            .prepare("INSERT INTO postings (ledger_id, entry_seq, idx, account_id, unit, side, amount_minor) VALUES (?1, ?2, ?3, ?4, 'points', ?5, 100)")
            .unwrap();
        let mut prev = genesis_hash(ledger);
        let one = Amount::from_minor(100).unwrap();
        let mut last_time = t0;
        for i in 0..entries {
            let seq = i as i64 + 1;
            let to = resident(i % residents);
            let mut entry = PostedEntry {
                ledger_id: ledger.to_owned(),
                seq,
                id: Uuid::from_u128(10_000_000 + i as u128),
                kind: EntryKind::Earn,
                postings: vec![
                    Posting {
                        account: issuance,
                        unit: Unit::Points,
                        side: Side::Debit,
                        amount: one,
                    },
                    Posting {
                        account: to,
                        unit: Unit::Points,
                        side: Side::Credit,
                        amount: one,
                    },
                ],
                memo: String::new(),
                metadata: BTreeMap::new(),
                reverses: None,
                actor: "token:bulk".to_owned(),
                idempotency_key: format!("bulk-{seq}"),
                // A thousand entries a minute, over days.
                posted_at_micros: t0 + seq * 60_000,
                prev_hash: prev,
                hash: [0; 32],
            };
            entry.hash = entry_hash(&entry);
            entry_stmt
                .execute(rusqlite::params![
                    ledger,
                    seq,
                    entry.id.to_string(),
                    entry.idempotency_key,
                    [0u8; 32].as_slice(),
                    entry.posted_at_micros,
                    entry.prev_hash.as_slice(),
                    entry.hash.as_slice()
                ])
                .unwrap();
            posting_stmt
                .execute(rusqlite::params![
                    ledger,
                    seq,
                    0,
                    issuance.to_string(),
                    "debit"
                ])
                .unwrap();
            posting_stmt
                .execute(rusqlite::params![ledger, seq, 1, to.to_string(), "credit"])
                .unwrap();
            prev = entry.hash;
            last_time = entry.posted_at_micros;
        }
        tx.execute(
            "UPDATE ledgers SET head_seq = ?2, head_hash = ?3, head_posted_at = ?4 WHERE id = ?1",
            rusqlite::params![ledger, entries as i64, prev.as_slice(), last_time],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").ok();
    entries * 2
}
