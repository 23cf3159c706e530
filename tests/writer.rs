//! The writer's failure isolation: when the database rejects a batch, each request is retried
//! alone, so only the request that fails on its own gets an error.

mod common;

use std::sync::Arc;

use aixin::ledger::verify::{Problem, StoredBalance, Summary};
use aixin::ledger::{AccountKind, EntryKind, Head, PostedEntry, Unit, WriteRequest};
use aixin::store::{Account, Backend, NewAccount, Opened, Outcome, Store, StoreError, TokenRecord};
use aixin::writer::{WriteError, Writer};
use async_trait::async_trait;
use common::{transfer, Harness};
use uuid::Uuid;

/// A store that fails any batch containing a request whose key starts with "poison", as a
/// database would fail a batch holding one row it cannot store; everything else is delegated.
struct Poisoned(Arc<dyn Store>);

#[async_trait]
impl Store for Poisoned {
    fn backend(&self) -> Backend {
        self.0.backend()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.0.migrate().await
    }
    async fn ensure_ledger(&self, ledger_id: &str, now: i64) -> Result<(), StoreError> {
        self.0.ensure_ledger(ledger_id, now).await
    }
    async fn ledgers(&self) -> Result<Vec<String>, StoreError> {
        self.0.ledgers().await
    }
    async fn snapshot(
        &self,
        ledger_id: &str,
    ) -> Result<
        (
            aixin::ledger::Head,
            Vec<aixin::ledger::verify::StoredBalance>,
        ),
        StoreError,
    > {
        self.0.snapshot(ledger_id).await
    }
    async fn all_accounts(&self, ledger_id: &str) -> Result<Vec<Account>, StoreError> {
        self.0.all_accounts(ledger_id).await
    }
    async fn balances_through(
        &self,
        ledger_id: &str,
        through: i64,
    ) -> Result<Vec<(Uuid, aixin::ledger::Unit, i64)>, StoreError> {
        self.0.balances_through(ledger_id, through).await
    }
    async fn last_seq_before(&self, ledger_id: &str, micros: i64) -> Result<i64, StoreError> {
        self.0.last_seq_before(ledger_id, micros).await
    }
    async fn insert_checkpoint(
        &self,
        checkpoint: &aixin::audit::format::Checkpoint,
        now: i64,
    ) -> Result<aixin::audit::format::Checkpoint, StoreError> {
        self.0.insert_checkpoint(checkpoint, now).await
    }
    async fn checkpoints(
        &self,
        ledger_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<aixin::audit::format::Checkpoint>, StoreError> {
        self.0.checkpoints(ledger_id, from, to).await
    }
    async fn commit_batch(
        &self,
        ledger_id: &str,
        now: i64,
        requests: &[WriteRequest],
    ) -> Result<Vec<Outcome>, StoreError> {
        if requests
            .iter()
            .any(|r| r.idempotency_key.starts_with("poison"))
        {
            return Err(StoreError::Corrupt(
                "simulated database rejection".to_owned(),
            ));
        }
        self.0.commit_batch(ledger_id, now, requests).await
    }
    async fn open_account(
        &self,
        ledger_id: &str,
        account: &NewAccount,
        now: i64,
    ) -> Result<Opened, StoreError> {
        self.0.open_account(ledger_id, account, now).await
    }
    async fn account(&self, ledger_id: &str, id: Uuid) -> Result<Option<Account>, StoreError> {
        self.0.account(ledger_id, id).await
    }
    async fn accounts(&self, ledger_id: &str, ids: &[Uuid]) -> Result<Vec<Account>, StoreError> {
        self.0.accounts(ledger_id, ids).await
    }
    async fn entry(&self, ledger_id: &str, id: Uuid) -> Result<Option<PostedEntry>, StoreError> {
        self.0.entry(ledger_id, id).await
    }
    async fn account_entries(
        &self,
        ledger_id: &str,
        account: Uuid,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<PostedEntry>, StoreError> {
        self.0
            .account_entries(ledger_id, account, before, limit)
            .await
    }
    async fn entries_after(
        &self,
        ledger_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PostedEntry>, StoreError> {
        self.0.entries_after(ledger_id, after, limit).await
    }
    async fn head(&self, ledger_id: &str) -> Result<Option<Head>, StoreError> {
        self.0.head(ledger_id).await
    }
    async fn balances(&self, ledger_id: &str) -> Result<Vec<StoredBalance>, StoreError> {
        self.0.balances(ledger_id).await
    }
    async fn verify(&self, ledger_id: &str) -> Result<Result<Summary, Problem>, StoreError> {
        self.0.verify(ledger_id).await
    }
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.0.insert_token(token).await
    }
    async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        self.0.token_by_hash(hash).await
    }
    async fn revoke_token(&self, id: Uuid, now: i64) -> Result<bool, StoreError> {
        self.0.revoke_token(id, now).await
    }
    async fn count_live_tokens(
        &self,
        ledger_id: &str,
        role: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        self.0.count_live_tokens(ledger_id, role, now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_rejected_request_does_not_fail_its_batch() {
    // Proves that when the database rejects a batch, its other requests are still posted and
    // only the request that fails alone gets `Unavailable`.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let h = Harness::sqlite().await;
    let issuance = h.open(AccountKind::Issuance).await;
    let alice = h.open(AccountKind::Resident).await;
    let store: Arc<dyn Store> = Arc::new(Poisoned(h.store.clone()));
    let writer = Writer::spawn(store, "test".to_owned(), h.clock.clone(), h.entropy.clone());
    // Queue everything before the writer runs, so the requests share batches with the poison.
    let keys: Vec<String> = (0..40)
        .map(|i| {
            if i == 17 {
                "poison".to_owned()
            } else {
                format!("ok{i}")
            }
        })
        .collect();
    let answers: Vec<_> = keys
        .iter()
        .map(|key| {
            writer
                .enqueue(
                    key.clone(),
                    "t".to_owned(),
                    transfer(EntryKind::Earn, issuance, alice, Unit::Points, "1"),
                )
                .unwrap()
        })
        .collect();
    let mut posted = 0;
    for (key, answer) in keys.iter().zip(answers) {
        match answer.await {
            Ok(Outcome::Posted(_)) => posted += 1,
            Err(WriteError::Unavailable) => assert_eq!(key, "poison"),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(posted, 39);
    assert_eq!(h.store.head("test").await.unwrap().unwrap().seq, 39);
    common::assert_invariants(h.store.as_ref(), "test").await;
}
