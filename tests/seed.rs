//! `seed-demo` leaves no known secret and no future: two installations seeded alike share no
//! token (nor any other secret), two ledgers seed alike in one database, the seed's tokens have
//! expired when it ends, and its whole history is dated before the wall clock. Both backends.

mod common;

use std::collections::BTreeSet;

use aixin::clock::{Clock, SystemClock};
use aixin::seed::seed_demo;
use common::{assert_invariants, Harness, Raw, Target};

on_both_backends!(
    seeded_installations_share_no_secret,
    two_ledgers_seed_alike_in_one_database,
);

/// The demo's default seed (`aixin seed-demo` without `--seed`).
const DEFAULT_SEED: u64 = 2026;
const ENTRIES: u64 = 300;

/// Another, empty installation on the same backend as `h`.
async fn another_installation(h: &Harness) -> Harness {
    match h.url_or_path {
        Target::Sqlite(_) => Harness::sqlite().await,
        Target::Postgres { .. } => Harness::postgres().await.expect("postgres is configured"),
    }
}

/// Every stored token of `ledger`: (id, SHA-256 of the secret, expiry).
async fn tokens(h: &Harness, ledger: &str) -> Vec<(String, Vec<u8>, Option<i64>)> {
    match &h.raw {
        Raw::Sqlite(pool) => {
            sqlx::query_as("SELECT id, token_hash, expires_at FROM api_tokens WHERE ledger_id = $1")
                .bind(ledger)
                .fetch_all(pool)
                .await
        }
        Raw::Postgres(pool) => {
            sqlx::query_as(
                "SELECT id::text, token_hash, expires_at FROM api_tokens WHERE ledger_id = $1",
            )
            .bind(ledger)
            .fetch_all(pool)
            .await
        }
    }
    .expect("read tokens")
}

/// Seeds `ledger` of `h` with the default seed; checks the counts, the invariants, that the
/// history ends before the wall clock and that every token the seed made has expired.
async fn seed_and_check(h: &Harness, ledger: &str) -> Vec<(String, Vec<u8>, Option<i64>)> {
    let report = seed_demo(
        h.stores.clone(),
        ledger,
        ENTRIES,
        DEFAULT_SEED,
        SystemClock.now_micros(),
    )
    .await
    .unwrap_or_else(|e| panic!("seeding {ledger}: {e}"));
    let after = SystemClock.now_micros();
    assert_eq!(report.entries, ENTRIES);
    let head = h.store.head(ledger).await.unwrap().expect("a head");
    assert_eq!(head.seq as u64, ENTRIES);
    assert!(
        head.posted_at_micros <= after,
        "the demo's history ends {} s after the wall clock",
        (head.posted_at_micros - after) / 1_000_000
    );
    assert_invariants(h.store.as_ref(), ledger).await;
    let tokens = tokens(h, ledger).await;
    assert!(!tokens.is_empty());
    for (id, _, expires) in &tokens {
        assert!(
            expires.is_some_and(|e| e <= after),
            "seed token {id} is still valid after seeding ({expires:?})"
        );
    }
    tokens
}

async fn seeded_installations_share_no_secret(h: Harness) {
    // Proves the TRUST row "Demo data carries no known secret": two installations seeded with
    // the same (default) seed share no token secret; their tokens have expired; the history is
    // dated before now. (No sessions exist yet; the cards' secrets derive from a key ring drawn
    // from the OS, proved in src/seed.rs.)
    let other = another_installation(&h).await;
    let mine = seed_and_check(&h, "default").await;
    let theirs = seed_and_check(&other, "default").await;
    let hashes = |t: &[(String, Vec<u8>, Option<i64>)]| -> BTreeSet<Vec<u8>> {
        t.iter().map(|(_, hash, _)| hash.clone()).collect()
    };
    let (mine_h, theirs_h) = (hashes(&mine), hashes(&theirs));
    assert_eq!(mine_h.len(), mine.len(), "token secrets repeat");
    assert!(
        mine_h.is_disjoint(&theirs_h),
        "installations seeded alike share {} token secrets",
        mine_h.intersection(&theirs_h).count()
    );
}

async fn two_ledgers_seed_alike_in_one_database(h: Harness) {
    // Proves two ledgers of one database can both be seeded with the default seed (token ids and
    // hashes are unique across the database), and that their tokens differ.
    let a = seed_and_check(&h, "county-a").await;
    let b = seed_and_check(&h, "county-b").await;
    let ids = |t: &[(String, Vec<u8>, Option<i64>)]| -> BTreeSet<String> {
        t.iter().map(|(id, _, _)| id.clone()).collect()
    };
    assert!(ids(&a).is_disjoint(&ids(&b)));
    assert_eq!(a.len(), b.len(), "the same programme in both ledgers");
}
