//! The store conformance suite: every test here runs on SQLite and on PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use aixin::clock::Entropy;
use aixin::ledger::verify::ProblemKind;
use aixin::ledger::{AccountKind, EntryKind, LedgerError, Unit, WriteRequest};
use aixin::store::{Opened, Outcome, Store};
use aixin::writer::Writer;
use common::{amount, assert_invariants, reversal_of, transfer, Harness};

on_both_backends!(
    posts_reads_back_and_pages,
    idempotent_by_key,
    batch_outcomes_are_independent,
    reversal_rules,
    account_policy_refusals,
    opening_accounts_is_idempotent,
    journal_refuses_update_and_delete,
    durability_settings,
    writer_lookups_have_their_index,
    ledgers_are_independent,
    tamper_suite,
    no_overspend_under_concurrency,
    snapshots_always_balance,
    concurrent_writers_leave_gapless_chain,
    no_overspend_across_processes,
    same_key_from_two_processes,
);

fn request(h: &Harness, key: &str, draft: aixin::ledger::EntryDraft) -> WriteRequest {
    WriteRequest::new(key.to_owned(), "tester".to_owned(), draft, h.entropy.uuid())
}

async fn post(h: &Harness, key: &str, draft: aixin::ledger::EntryDraft) -> Outcome {
    let mut outcomes = h
        .store
        .commit_batch(
            "test",
            aixin::clock::Clock::now_micros(h.clock.as_ref()),
            &[request(h, key, draft)],
        )
        .await
        .expect("commit");
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

fn posted(outcome: Outcome) -> aixin::ledger::PostedEntry {
    match outcome {
        Outcome::Posted(entry) => entry,
        other => panic!("expected Posted, got {other:?}"),
    }
}

fn refused(outcome: Outcome) -> LedgerError {
    match outcome {
        Outcome::Refused(refusal) => refusal,
        other => panic!("expected Refused, got {other:?}"),
    }
}

async fn balance(h: &Harness, account: uuid::Uuid, unit: Unit) -> i64 {
    let account = h
        .store
        .account("test", account)
        .await
        .expect("read")
        .expect("exists");
    account.balances.get(&unit).copied().unwrap_or(0)
}

async fn posts_reads_back_and_pages(h: Harness) {
    // Proves an entry round-trips through the store unchanged, balances follow postings, and
    // account history pages newest-first with a cursor.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let mut first = transfer(EntryKind::Earn, issuance, alice, Unit::Points, "12.50");
    first.memo = "入户走访 / home visit".to_owned();
    first.metadata = BTreeMap::from([
        ("activity".to_owned(), "visit".to_owned()),
        ("rule".to_owned(), "v1".to_owned()),
    ]);
    first
        .postings
        .extend(transfer(EntryKind::Earn, issuance, alice, Unit::Hours, "2").postings);
    let entry = posted(post(&h, "k1", first.clone()).await);
    assert_eq!(entry.seq, 1);
    assert_eq!(entry.draft(), first);
    assert_eq!(
        h.store.entry("test", entry.id).await.unwrap(),
        Some(entry.clone())
    );
    assert_eq!(balance(&h, alice, Unit::Points).await, 1250);
    assert_eq!(balance(&h, alice, Unit::Hours).await, 200);
    assert_eq!(balance(&h, issuance, Unit::Points).await, -1250);
    for i in 0..4 {
        h.clock.advance(1_000_000);
        posted(
            post(
                &h,
                &format!("more{i}"),
                transfer(EntryKind::Earn, issuance, alice, Unit::Points, "1"),
            )
            .await,
        );
    }
    let page1 = h
        .store
        .account_entries("test", alice, None, 2)
        .await
        .unwrap();
    assert_eq!(page1.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5, 4]);
    let page2 = h
        .store
        .account_entries("test", alice, Some(4), 2)
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 2]);
    let page3 = h
        .store
        .account_entries("test", alice, Some(2), 2)
        .await
        .unwrap();
    assert_eq!(page3.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1]);
    assert_eq!(page3[0], entry);
    assert_invariants(h.store.as_ref(), "test").await;
}

async fn idempotent_by_key(h: Harness) {
    // Proves: same key + same body → the original entry, one posting; same key + different
    // body → refused with idempotency_key_reused.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let draft = transfer(EntryKind::Earn, issuance, alice, Unit::Points, "5");
    let original = posted(post(&h, "same", draft.clone()).await);
    h.clock.advance(5_000_000);
    match post(&h, "same", draft.clone()).await {
        Outcome::Replayed(entry) => assert_eq!(entry, original),
        other => panic!("expected Replayed, got {other:?}"),
    }
    let different = transfer(EntryKind::Earn, issuance, alice, Unit::Points, "6");
    assert_eq!(
        refused(post(&h, "same", different).await),
        LedgerError::IdempotencyKeyReused
    );
    assert_eq!(h.store.head("test").await.unwrap().unwrap().seq, 1);
    assert_eq!(balance(&h, alice, Unit::Points).await, 500);
}

async fn batch_outcomes_are_independent(h: Harness) {
    // Proves a refused request does not fail the others of its batch, requests are decided in
    // order, and a key repeated inside one batch is a replay.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let shop = h.open(AccountKind::Shop).await;
    let earn = transfer(EntryKind::Earn, issuance, alice, Unit::Points, "10");
    let requests = vec![
        request(&h, "a", earn.clone()),
        request(
            &h,
            "b",
            transfer(EntryKind::Redeem, alice, shop, Unit::Points, "11"),
        ),
        request(
            &h,
            "c",
            transfer(EntryKind::Redeem, alice, shop, Unit::Points, "4"),
        ),
        request(&h, "a", earn.clone()),
        request(
            &h,
            "a",
            transfer(EntryKind::Earn, issuance, alice, Unit::Points, "1"),
        ),
        request(
            &h,
            "d",
            transfer(EntryKind::Redeem, alice, shop, Unit::Points, "6"),
        ),
        request(
            &h,
            "e",
            transfer(EntryKind::Redeem, alice, shop, Unit::Points, "0.01"),
        ),
    ];
    let outcomes = h
        .store
        .commit_batch("test", common::T0, &requests)
        .await
        .unwrap();
    let summary: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Posted(e) => format!("posted {}", e.seq),
            Outcome::Replayed(e) => format!("replayed {}", e.seq),
            Outcome::Refused(r) => format!("refused {}", aixin::error::ErrorCode::from(r).code()),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "posted 1",
            "refused insufficient_balance",
            "posted 2",
            "replayed 1",
            "refused idempotency_key_reused",
            "posted 3",
            "refused insufficient_balance"
        ]
    );
    assert_eq!(balance(&h, alice, Unit::Points).await, 0);
    assert_eq!(balance(&h, shop, Unit::Points).await, 1000);
    assert_invariants(h.store.as_ref(), "test").await;
}

async fn reversal_rules(h: Harness) {
    // Proves an entry is reversed at most once, a reversal cannot be reversed, a reversal may be
    // partial but never exceed or mis-direct the original, and the target must exist.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let shop = h.open(AccountKind::Shop).await;
    posted(
        post(
            &h,
            "earn",
            transfer(EntryKind::Earn, issuance, alice, Unit::Points, "100"),
        )
        .await,
    );
    let redeem_draft = transfer(EntryKind::Redeem, alice, shop, Unit::Points, "30");
    let redeem = posted(post(&h, "redeem", redeem_draft.clone()).await);

    let too_much = transfer(EntryKind::Refund, shop, alice, Unit::Points, "30.01");
    let too_much = aixin::ledger::EntryDraft {
        reverses: Some(redeem.id),
        ..too_much
    };
    assert!(matches!(
        refused(post(&h, "r0", too_much).await),
        LedgerError::ReversalExceedsOriginal { .. }
    ));
    let wrong_way = aixin::ledger::EntryDraft {
        reverses: Some(redeem.id),
        ..transfer(EntryKind::Refund, alice, shop, Unit::Points, "1")
    };
    assert!(matches!(
        refused(post(&h, "r1", wrong_way).await),
        LedgerError::ReversalExceedsOriginal { .. }
    ));
    let unknown = aixin::ledger::EntryDraft {
        reverses: Some(uuid::Uuid::nil()),
        ..transfer(EntryKind::Refund, shop, alice, Unit::Points, "1")
    };
    assert_eq!(
        refused(post(&h, "r2", unknown).await),
        LedgerError::ReversalTargetNotFound
    );

    let partial = aixin::ledger::EntryDraft {
        reverses: Some(redeem.id),
        ..transfer(EntryKind::Refund, shop, alice, Unit::Points, "10")
    };
    let refund = posted(post(&h, "refund", partial).await);
    assert_eq!(refund.reverses, Some(redeem.id));
    assert_eq!(balance(&h, alice, Unit::Points).await, 8000);
    assert_eq!(
        refused(
            post(
                &h,
                "again",
                reversal_of(&redeem_draft, redeem.id, EntryKind::Reversal)
            )
            .await
        ),
        LedgerError::AlreadyReversed
    );
    assert_eq!(
        refused(
            post(
                &h,
                "rr",
                reversal_of(&refund.draft(), refund.id, EntryKind::Reversal)
            )
            .await
        ),
        LedgerError::ReversalOfReversal
    );
    assert_invariants(h.store.as_ref(), "test").await;
}

async fn account_policy_refusals(h: Harness) {
    // Proves each account kind's policy: residents and shops never below zero, issuance may go
    // negative, hours cannot go to a shop, unknown accounts are refused.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let shop = h.open(AccountKind::Shop).await;
    posted(
        post(
            &h,
            "1",
            transfer(EntryKind::Earn, issuance, alice, Unit::Hours, "3"),
        )
        .await,
    );
    assert_eq!(
        refused(
            post(
                &h,
                "2",
                transfer(EntryKind::Redeem, alice, shop, Unit::Hours, "1")
            )
            .await
        ),
        LedgerError::UnitNotAllowed {
            account: shop,
            unit: Unit::Hours
        }
    );
    assert_eq!(
        refused(
            post(
                &h,
                "3",
                transfer(EntryKind::Redeem, alice, shop, Unit::Points, "0.01")
            )
            .await
        ),
        LedgerError::InsufficientBalance {
            account: alice,
            unit: Unit::Points,
            balance_minor: 0,
            needed_minor: 1,
        }
    );
    let ghost = uuid::Uuid::from_u128(42);
    assert_eq!(
        refused(
            post(
                &h,
                "4",
                transfer(EntryKind::Earn, issuance, ghost, Unit::Points, "1")
            )
            .await
        ),
        LedgerError::UnknownAccount { account: ghost }
    );
    assert_eq!(h.store.head("test").await.unwrap().unwrap().seq, 1);
    assert_eq!(balance(&h, issuance, Unit::Hours).await, -300);
    assert_invariants(h.store.as_ref(), "test").await;
}

async fn opening_accounts_is_idempotent(h: Harness) {
    // Proves opening the same account twice answers the existing one, and other attributes
    // under the same id are a conflict that changes nothing.
    let account = h
        .open_in("test", AccountKind::Shop, Some("S1"), Some("c1"))
        .await;
    let same = aixin::store::NewAccount {
        id: account.id,
        kind: AccountKind::Shop,
        owner_id: Some("S1".to_owned()),
        community_id: Some("c1".to_owned()),
        label: account.label.clone(),
    };
    assert!(
        matches!(h.store.open_account("test", &same, 1).await.unwrap(), Opened::Existing(a) if a == account)
    );
    let other = aixin::store::NewAccount {
        owner_id: Some("S2".to_owned()),
        ..same
    };
    assert!(
        matches!(h.store.open_account("test", &other, 1).await.unwrap(), Opened::Conflict(a) if a == account)
    );
    assert_eq!(
        h.store.account("test", account.id).await.unwrap(),
        Some(account)
    );
}

async fn journal_refuses_update_and_delete(h: Harness) {
    // Proves the database itself refuses UPDATE, DELETE (and on PostgreSQL TRUNCATE) of posted
    // entries and postings, and nothing changes.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    posted(
        post(
            &h,
            "1",
            transfer(EntryKind::Earn, issuance, alice, Unit::Points, "1"),
        )
        .await,
    );
    let mut statements = vec![
        "UPDATE entries SET memo = 'edited'",
        "DELETE FROM entries",
        "UPDATE postings SET amount_minor = 999",
        "DELETE FROM postings",
    ];
    if h.is_postgres() {
        statements.extend(["TRUNCATE entries CASCADE", "TRUNCATE postings"]);
    }
    for sql in statements {
        let error = h.try_exec(sql).await.expect_err(sql);
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    assert_invariants(h.store.as_ref(), "test").await;
    assert_eq!(h.store.head("test").await.unwrap().unwrap().seq, 1);
}

async fn durability_settings(h: Harness) {
    // Proves an acknowledged write is durable by configuration: SQLite in WAL mode with
    // synchronous=FULL; PostgreSQL with synchronous_commit on and fsync on.
    match &h.raw {
        common::Raw::Sqlite(pool) => {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            assert_eq!(sync, 2, "synchronous must be FULL (2)");
        }
        common::Raw::Postgres(pool) => {
            let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(pool)
                .await
                .unwrap();
            let fsync: String = sqlx::query_scalar("SHOW fsync")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(sync, "on");
            assert_eq!(fsync, "on");
        }
    }
}

async fn writer_lookups_have_their_index(h: Harness) {
    // Proves the lookups a batch makes cannot turn into scans of the journal as it grows.
    match &h.raw {
        common::Raw::Sqlite(pool) => {
            // Reversing an entry reads the lots it created.
            let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
                "EXPLAIN QUERY PLAN SELECT id FROM lots WHERE ledger_id = 'test' AND entry_seq = 7",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let detail: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
            assert!(
                detail.iter().any(|d| d.contains("INDEX lots_by_entry")),
                "{detail:?}"
            );
        }
        common::Raw::Postgres(pool) => {
            // PostgreSQL caches plans per connection (foreign-key checks always, prepared
            // statements once generic), often made while a ledger is young and has no
            // statistics; then every index leading with ledger_id looks alike, and one chosen
            // for that prefix alone scans the whole ledger on every use. It happened (the
            // foreign-key checks through entries_by_time, the receipt read through the receipts
            // indexes, before migration 0005), so only primary keys may lead with ledger_id.
            let leading: Vec<(String, String)> = sqlx::query_as(
                "SELECT t.relname::text, i.relname::text
                 FROM pg_index x
                 JOIN pg_class t ON t.oid = x.indrelid
                 JOIN pg_class i ON i.oid = x.indexrelid
                 JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
                 WHERE t.relnamespace = current_schema()::regnamespace
                   AND NOT x.indisprimary AND a.attname = 'ledger_id'
                 ORDER BY 1, 2",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            assert_eq!(
                leading,
                Vec::new(),
                "(table, secondary index leading with ledger_id)"
            );
            let secondary: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
                 WHERE t.relnamespace = current_schema()::regnamespace AND NOT x.indisprimary",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            assert!(
                secondary >= 15,
                "the check must see the schema's indexes: {secondary}"
            );
        }
    }
}

async fn ledgers_are_independent(h: Harness) {
    // Proves two ledgers in one database have their own chains, sequences and accounts.
    h.store.ensure_ledger("second", common::T0).await.unwrap();
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let other_issuance = h
        .open_in("second", AccountKind::Issuance, None, None)
        .await
        .id;
    let bob = h
        .open_in("second", AccountKind::Resident, None, None)
        .await
        .id;
    posted(
        post(
            &h,
            "k",
            transfer(EntryKind::Earn, issuance, alice, Unit::Points, "1"),
        )
        .await,
    );
    let mut outcomes = h
        .store
        .commit_batch(
            "second",
            common::T0,
            &[request(
                &h,
                "k",
                transfer(EntryKind::Earn, other_issuance, bob, Unit::Points, "2"),
            )],
        )
        .await
        .unwrap();
    let second = posted(outcomes.remove(0));
    assert_eq!(second.seq, 1, "each ledger numbers from 1");
    assert_eq!(
        second.prev_hash,
        aixin::ledger::chain::genesis_hash("second")
    );
    // An account of another ledger does not exist here.
    let mut cross = h
        .store
        .commit_batch(
            "second",
            common::T0,
            &[request(
                &h,
                "x",
                transfer(EntryKind::Earn, other_issuance, alice, Unit::Points, "1"),
            )],
        )
        .await
        .unwrap();
    assert_eq!(
        refused(cross.remove(0)),
        LedgerError::UnknownAccount { account: alice }
    );
    assert!(h.store.account("second", alice).await.unwrap().is_none());
    assert_invariants(h.store.as_ref(), "test").await;
    assert_invariants(h.store.as_ref(), "second").await;
}

/// Builds a ledger of 10 entries for the tamper suite and returns their hashes by seq.
async fn ten_entries(h: &Harness, ledger: &str) -> Vec<aixin::ledger::PostedEntry> {
    h.store.ensure_ledger(ledger, common::T0).await.unwrap();
    let issuance = h
        .open_in(ledger, AccountKind::Issuance, None, None)
        .await
        .id;
    let alice = h
        .open_in(ledger, AccountKind::Resident, None, None)
        .await
        .id;
    let shop = h.open_in(ledger, AccountKind::Shop, None, None).await.id;
    let mut entries = Vec::new();
    for i in 0..10 {
        let draft = if i % 3 == 2 {
            transfer(EntryKind::Redeem, alice, shop, Unit::Points, "1")
        } else {
            transfer(EntryKind::Earn, issuance, alice, Unit::Points, "2")
        };
        let mut outcomes = h
            .store
            .commit_batch(
                ledger,
                common::T0 + i * 1_000_000,
                &[request(h, &format!("t{i}"), draft)],
            )
            .await
            .unwrap();
        entries.push(posted(outcomes.remove(0)));
    }
    assert_invariants(h.store.as_ref(), ledger).await;
    entries
}

async fn tamper_suite(h: Harness) {
    // Proves verification catches each kind of tampering by someone with full database access
    // and names the first bad sequence number: a changed byte, a changed amount, a deleted
    // entry, two swapped entries, an inserted (self-consistent) entry, a truncated tail, and a
    // stored balance that no longer matches its postings.
    async fn expect_problem(h: &Harness, ledger: &str, seq: Option<i64>, kind: ProblemKind) {
        let problem = h
            .store
            .verify(ledger)
            .await
            .unwrap()
            .expect_err("tampering must be detected");
        assert_eq!(
            (problem.seq, problem.kind),
            (seq, kind),
            "{ledger}: {problem:?}"
        );
    }
    let bump = |sql: &str, ledger: &str| sql.replace("{L}", ledger);

    ten_entries(&h, "t-byte").await;
    h.tamper(&[&bump(
        "UPDATE entries SET memo = memo || 'x' WHERE ledger_id = '{L}' AND seq = 5",
        "t-byte",
    )])
    .await;
    expect_problem(&h, "t-byte", Some(5), ProblemKind::HashMismatch).await;

    ten_entries(&h, "t-amount").await;
    h.tamper(&[
        &bump("UPDATE postings SET amount_minor = amount_minor + 100 WHERE ledger_id = '{L}' AND entry_seq = 4", "t-amount"),
    ])
    .await;
    expect_problem(&h, "t-amount", Some(4), ProblemKind::HashMismatch).await;

    ten_entries(&h, "t-delete").await;
    h.tamper(&[
        &bump(
            "DELETE FROM postings WHERE ledger_id = '{L}' AND entry_seq = 6",
            "t-delete",
        ),
        &bump(
            "DELETE FROM entries WHERE ledger_id = '{L}' AND seq = 6",
            "t-delete",
        ),
    ])
    .await;
    expect_problem(&h, "t-delete", Some(6), ProblemKind::SequenceGap).await;

    ten_entries(&h, "t-swap").await;
    h.tamper(&[
        &bump(
            "UPDATE entries SET seq = 1000 WHERE ledger_id = '{L}' AND seq = 3",
            "t-swap",
        ),
        &bump(
            "UPDATE postings SET entry_seq = 1000 WHERE ledger_id = '{L}' AND entry_seq = 3",
            "t-swap",
        ),
        &bump(
            "UPDATE entries SET seq = 3 WHERE ledger_id = '{L}' AND seq = 4",
            "t-swap",
        ),
        &bump(
            "UPDATE postings SET entry_seq = 3 WHERE ledger_id = '{L}' AND entry_seq = 4",
            "t-swap",
        ),
        &bump(
            "UPDATE entries SET seq = 4 WHERE ledger_id = '{L}' AND seq = 1000",
            "t-swap",
        ),
        &bump(
            "UPDATE postings SET entry_seq = 4 WHERE ledger_id = '{L}' AND entry_seq = 1000",
            "t-swap",
        ),
    ])
    .await;
    expect_problem(&h, "t-swap", Some(3), ProblemKind::ChainBroken).await;

    // Insert: the forger shifts entries 6.. up by one and writes a well-formed entry 6 that
    // links to entry 5 and hashes correctly. Entry 7 (the old 6) no longer links.
    let entries = ten_entries(&h, "t-insert").await;
    let mut forged = entries[5].clone();
    forged.id = uuid::Uuid::from_u128(0xf0f0);
    forged.idempotency_key = "forged".to_owned();
    forged.prev_hash = entries[4].hash;
    forged.hash = aixin::ledger::chain::entry_hash(&forged);
    let mut statements = Vec::new();
    for seq in (6..=10).rev() {
        statements.push(bump(
            &format!(
                "UPDATE entries SET seq = {} WHERE ledger_id = '{{L}}' AND seq = {seq}",
                seq + 1
            ),
            "t-insert",
        ));
        statements.push(bump(&format!("UPDATE postings SET entry_seq = {} WHERE ledger_id = '{{L}}' AND entry_seq = {seq}", seq + 1), "t-insert"));
    }
    let (id, prev, hash) = if h.is_postgres() {
        (
            format!("'{}'", forged.id),
            format!("'\\x{}'::bytea", hex::encode(forged.prev_hash)),
            format!("'\\x{}'::bytea", hex::encode(forged.hash)),
        )
    } else {
        (
            format!("'{}'", forged.id),
            format!("X'{}'", hex::encode(forged.prev_hash)),
            format!("X'{}'", hex::encode(forged.hash)),
        )
    };
    statements.push(format!(
        "INSERT INTO entries (ledger_id, seq, id, kind, idempotency_key, request_hash, actor, memo, metadata, reverses, posted_at, prev_hash, hash)
         SELECT ledger_id, 6, {id}, kind, 'forged', request_hash, actor, memo, metadata, reverses, posted_at, {prev}, {hash}
         FROM entries WHERE ledger_id = 't-insert' AND seq = 7"
    ));
    statements.push(
        "INSERT INTO postings (ledger_id, entry_seq, idx, account_id, unit, side, amount_minor)
         SELECT ledger_id, 6, idx, account_id, unit, side, amount_minor FROM postings WHERE ledger_id = 't-insert' AND entry_seq = 7"
            .to_owned(),
    );
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    h.tamper(&statements).await;
    expect_problem(&h, "t-insert", Some(7), ProblemKind::ChainBroken).await;

    ten_entries(&h, "t-truncate").await;
    h.tamper(&[
        &bump(
            "DELETE FROM postings WHERE ledger_id = '{L}' AND entry_seq >= 9",
            "t-truncate",
        ),
        &bump(
            "DELETE FROM entries WHERE ledger_id = '{L}' AND seq >= 9",
            "t-truncate",
        ),
    ])
    .await;
    expect_problem(&h, "t-truncate", Some(9), ProblemKind::HeadMismatch).await;

    ten_entries(&h, "t-balance").await;
    h.tamper(&[&bump(
        "UPDATE balances SET balance_minor = balance_minor + 1 WHERE ledger_id = '{L}' AND unit = 'points' AND balance_minor > 0",
        "t-balance",
    )])
    .await;
    expect_problem(&h, "t-balance", None, ProblemKind::BalanceMismatch).await;

    ten_entries(&h, "t-lots").await;
    h.tamper(&[&bump(
        "UPDATE lots SET remaining_minor = remaining_minor - 1 WHERE ledger_id = '{L}' AND remaining_minor > 0",
        "t-lots",
    )])
    .await;
    expect_problem(&h, "t-lots", None, ProblemKind::LotsMismatch).await;

    // The untouched ledger still verifies: tampering is caught per ledger, not by accident.
    ten_entries(&h, "t-clean").await;
}

async fn no_overspend_under_concurrency(h: Harness) {
    // Proves N concurrent redemptions whose total exceeds the balance never overdraw it: exactly
    // as many succeed as the balance covers, the rest are refused, and the balance is never < 0.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let shop = h.open(AccountKind::Shop).await;
    posted(
        post(
            &h,
            "fund",
            transfer(EntryKind::Earn, issuance, alice, Unit::Points, "100"),
        )
        .await,
    );
    let writer = Writer::spawn(
        h.store.clone(),
        "test".to_owned(),
        h.clock.clone(),
        h.entropy.clone(),
    );
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .submit(
                        format!("spend{i}"),
                        "till".to_owned(),
                        transfer(EntryKind::Redeem, alice, shop, Unit::Points, "7"),
                    )
                    .await
                    .expect("writer")
            })
        })
        .collect();
    let (mut ok, mut refusals) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Outcome::Posted(_) => ok += 1,
            Outcome::Refused(LedgerError::InsufficientBalance { .. }) => refusals += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        (ok, refusals),
        (14, 36),
        "100 points cover exactly 14 redemptions of 7"
    );
    assert_eq!(balance(&h, alice, Unit::Points).await, 200);
    assert_eq!(balance(&h, shop, Unit::Points).await, 9800);
    assert_invariants(h.store.as_ref(), "test").await;
}

async fn snapshots_always_balance(h: Harness) {
    // The "bank" check: while transfers between residents run, every snapshot of all balances
    // sums to zero per unit, and the residents' points always sum to what was issued.
    let issuance = h.open(AccountKind::Issuance).await;
    let mut residents = Vec::new();
    for i in 0..8 {
        let resident = h.open(AccountKind::Resident).await;
        posted(
            post(
                &h,
                &format!("fund{i}"),
                transfer(EntryKind::Earn, issuance, resident, Unit::Points, "50"),
            )
            .await,
        );
        residents.push(resident);
    }
    let issued = 8 * 5_000;
    let writer = Writer::spawn(
        h.store.clone(),
        "test".to_owned(),
        h.clock.clone(),
        h.entropy.clone(),
    );
    let movers: Vec<_> = (0..8)
        .map(|t| {
            let writer = writer.clone();
            let residents = residents.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    let from = residents[(t + i) % 8];
                    let to = residents[(t + 3 * i + 1) % 8];
                    if from == to {
                        continue;
                    }
                    let outcome = writer
                        .submit(
                            format!("move{t}-{i}"),
                            "bank".to_owned(),
                            transfer(EntryKind::Adjust, from, to, Unit::Points, "3"),
                        )
                        .await
                        .expect("writer");
                    assert!(matches!(
                        outcome,
                        Outcome::Posted(_)
                            | Outcome::Refused(LedgerError::InsufficientBalance { .. })
                    ));
                }
            })
        })
        .collect();
    let store = h.store.clone();
    let resident_set: std::collections::HashSet<_> = residents.iter().copied().collect();
    let reader = tokio::spawn(async move {
        let mut snapshots = 0;
        for _ in 0..200 {
            let balances = store.balances("test").await.expect("snapshot");
            let total: i64 = balances
                .iter()
                .filter(|b| b.unit == Unit::Points)
                .map(|b| b.balance_minor)
                .sum();
            let held: i64 = balances
                .iter()
                .filter(|b| b.unit == Unit::Points && resident_set.contains(&b.account))
                .map(|b| b.balance_minor)
                .sum();
            assert_eq!(total, 0, "a snapshot does not balance");
            assert_eq!(held, issued, "residents' points drifted in a snapshot");
            snapshots += 1;
            tokio::task::yield_now().await;
        }
        snapshots
    });
    for mover in movers {
        mover.await.unwrap();
    }
    assert_eq!(reader.await.unwrap(), 200);
    assert_invariants(h.store.as_ref(), "test").await;
}

async fn concurrent_writers_leave_gapless_chain(h: Harness) {
    // Proves 32 concurrent writers — split over two independent stores on the same database, as
    // two `aixin serve` processes would be — build one gapless chain that verifies.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let second: Arc<dyn Store> = h.second_store().await;
    let writers = [
        Writer::spawn(
            h.store.clone(),
            "test".to_owned(),
            h.clock.clone(),
            h.entropy.clone(),
        ),
        Writer::spawn(
            second,
            "test".to_owned(),
            h.clock.clone(),
            h.entropy.clone(),
        ),
    ];
    let per_writer = 20;
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let writer = writers[t % 2].clone();
            tokio::spawn(async move {
                for i in 0..per_writer {
                    let outcome = writer
                        .submit(
                            format!("w{t}-{i}"),
                            format!("writer{t}"),
                            transfer(EntryKind::Earn, issuance, alice, Unit::Points, "1"),
                        )
                        .await
                        .expect("writer");
                    assert!(matches!(outcome, Outcome::Posted(_)), "{outcome:?}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let head = h.store.head("test").await.unwrap().unwrap();
    assert_eq!(head.seq, 32 * per_writer as i64);
    assert_eq!(
        balance(&h, alice, Unit::Points).await,
        32 * per_writer as i64 * 100
    );
    assert_invariants(h.store.as_ref(), "test").await;
    let _ = amount("1");
}

async fn no_overspend_across_processes(h: Harness) {
    // Proves the ledger lock, not just the single writer, prevents overspending: redemptions
    // split over two independent stores (two processes) never overdraw the balance.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let shop = h.open(AccountKind::Shop).await;
    posted(
        post(
            &h,
            "fund",
            transfer(EntryKind::Earn, issuance, alice, Unit::Points, "100"),
        )
        .await,
    );
    let writers = [
        Writer::spawn(
            h.store.clone(),
            "test".to_owned(),
            h.clock.clone(),
            h.entropy.clone(),
        ),
        Writer::spawn(
            h.second_store().await,
            "test".to_owned(),
            h.clock.clone(),
            h.entropy.clone(),
        ),
    ];
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let writer = writers[i % 2].clone();
            tokio::spawn(async move {
                writer
                    .submit(
                        format!("spend{i}"),
                        "till".to_owned(),
                        transfer(EntryKind::Redeem, alice, shop, Unit::Points, "9"),
                    )
                    .await
                    .expect("writer")
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Outcome::Posted(_) => ok += 1,
            Outcome::Refused(LedgerError::InsufficientBalance { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 11, "100 points cover exactly 11 redemptions of 9");
    assert_eq!(balance(&h, alice, Unit::Points).await, 100);
    assert_invariants(h.store.as_ref(), "test").await;
}

async fn same_key_from_two_processes(h: Harness) {
    // Proves an idempotency key raced from two processes with different bodies posts exactly
    // once: one request is posted, the other refused as a reused key — never both, never a
    // failed batch.
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let writers = [
        Writer::spawn(
            h.store.clone(),
            "test".to_owned(),
            h.clock.clone(),
            h.entropy.clone(),
        ),
        Writer::spawn(
            h.second_store().await,
            "test".to_owned(),
            h.clock.clone(),
            h.entropy.clone(),
        ),
    ];
    for round in 0..15 {
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let writer = writers[i].clone();
                let amount = if i == 0 { "1" } else { "2" };
                tokio::spawn(async move {
                    writer
                        .submit(
                            format!("race{round}"),
                            "till".to_owned(),
                            transfer(EntryKind::Earn, issuance, alice, Unit::Points, amount),
                        )
                        .await
                        .expect("writer")
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let posted_count = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Posted(_)))
            .count();
        let reused = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Refused(LedgerError::IdempotencyKeyReused)))
            .count();
        assert_eq!(
            (posted_count, reused),
            (1, 1),
            "round {round}: {outcomes:?}"
        );
    }
    assert_eq!(h.store.head("test").await.unwrap().unwrap().seq, 15);
    assert_invariants(h.store.as_ref(), "test").await;
}
