//! The ledger's own operations, for whoever may do them: the head, whole-ledger verification,
//! opening accounts, posting entries, reading accounts, entries and the journal. Each takes the
//! calling [`Principal`] and decides what it may do; the edges only parse and render.

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::clock::Clock;
use crate::error::{Error, ErrorCode};
use crate::ledger::entry::{text_fault, TextFault};
use crate::ledger::verify::{Problem, Summary};
use crate::ledger::{
    head_ahead_micros, AccountKind, EntryDraft, Head, PostedEntry, HEAD_AHEAD_MAX_MICROS,
};
use crate::model::derived_id;
use crate::store::{Account, NewAccount, Opened, Outcome, Store, ACCOUNT_TEXT_MAX_BYTES};
use crate::writer::Writers;

type Result<T> = std::result::Result<T, Error>;

/// Verifications that may run at once in one process: each scans the whole ledger.
pub const VERIFY_CONCURRENCY_MAX: usize = 1;

/// What the journal operations need.
#[derive(Clone)]
pub struct Journal {
    pub store: Arc<dyn Store>,
    pub writers: Arc<Writers>,
    pub clock: Arc<dyn Clock>,
    /// Bounds the whole-ledger verifications running at once.
    pub verify_permits: Arc<tokio::sync::Semaphore>,
}

/// An account to open, as a caller asks for it.
#[derive(Clone, Debug)]
pub struct AccountRequest {
    /// The id to open; when absent, derived from the ledger and the idempotency key.
    pub id: Option<Uuid>,
    pub kind: AccountKind,
    pub owner_id: Option<String>,
    pub community_id: Option<String>,
    pub label: String,
}

/// One page of entries and whether another follows.
pub struct EntriesPage {
    pub entries: Vec<PostedEntry>,
    pub more: bool,
}

/// How a ledger's head stands against this server's clock. A head ahead of the clock is
/// survivable — entries are stamped at the head's time, codes are judged by the clock — but means
/// a clock is wrong somewhere (this server's, another server's, or a history's dates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ClockCheck {
    /// How far the head is ahead of this server's clock, in whole seconds (0 when it is not).
    pub head_ahead_seconds: i64,
    /// False when that is more than `HEAD_AHEAD_MAX` (300 seconds).
    pub ok: bool,
}

impl ClockCheck {
    fn of(ahead_micros: i64) -> ClockCheck {
        ClockCheck {
            head_ahead_seconds: ahead_micros / 1_000_000,
            ok: ahead_micros <= HEAD_AHEAD_MAX_MICROS,
        }
    }
}

impl Journal {
    pub fn new(store: Arc<dyn Store>, writers: Arc<Writers>, clock: Arc<dyn Clock>) -> Journal {
        Journal {
            store,
            writers,
            clock,
            verify_permits: Arc::new(tokio::sync::Semaphore::new(VERIFY_CONCURRENCY_MAX)),
        }
    }

    /// The ledger's head. Admin and auditor.
    pub async fn head(&self, p: &Principal) -> Result<Head> {
        require(p, &[Role::Admin, Role::Auditor])?;
        self.store
            .head(&p.ledger_id)
            .await?
            .ok_or_else(Error::not_found)
    }

    /// Recomputes the chain and every balance (one at a time per process). Admin and auditor.
    pub async fn verify(&self, p: &Principal) -> Result<std::result::Result<Summary, Problem>> {
        require(p, &[Role::Admin, Role::Auditor])?;
        let _permit = self.verify_permits.try_acquire().map_err(|_| {
            Error::new(
                ErrorCode::Overloaded,
                "a verification is already running; retry shortly",
            )
        })?;
        Ok(self.store.verify(&p.ledger_id).await?)
    }

    /// How the principal's ledger's head stands against the clock (for `aixin verify`). Admin
    /// and auditor.
    pub async fn clock_check(&self, p: &Principal) -> Result<ClockCheck> {
        let head = self.head(p).await?;
        Ok(ClockCheck::of(head_ahead_micros(
            &head,
            self.clock.now_micros(),
        )))
    }

    /// The furthest any ledger's head is ahead of the clock, for the health check. Anyone may
    /// ask: it tells a time offset, nothing of the ledgers' contents.
    pub async fn clock_health(&self) -> Result<ClockCheck> {
        let mut ahead = 0;
        for ledger in self.store.ledgers().await? {
            if let Some(head) = self.store.head(&ledger).await? {
                ahead = ahead.max(head_ahead_micros(&head, self.clock.now_micros()));
            }
        }
        Ok(ClockCheck::of(ahead))
    }

    /// Opens an account (true: created now). Admin. Opening an existing id with the same
    /// attributes answers it as it is now; with other attributes, `account_exists`.
    pub async fn open_account(
        &self,
        p: &Principal,
        key: &str,
        request: AccountRequest,
    ) -> Result<(Account, bool)> {
        require(p, &[Role::Admin])?;
        for (name, value) in [
            ("owner_id", request.owner_id.as_deref()),
            ("community_id", request.community_id.as_deref()),
            ("label", Some(request.label.as_str())),
        ] {
            check_account_text(name, value)?;
        }
        let id = request
            .id
            .unwrap_or_else(|| derived_account_id(&p.ledger_id, key));
        let account = NewAccount {
            id,
            kind: request.kind,
            owner_id: request.owner_id,
            community_id: request.community_id,
            label: request.label,
        };
        let opened = self
            .store
            .open_account(&p.ledger_id, &account, self.clock.now_micros())
            .await?;
        match opened {
            Opened::Created(account) => Ok((account, true)),
            Opened::Existing(account) => Ok((account, false)),
            Opened::Conflict(_) => Err(Error::new(
                ErrorCode::AccountExists,
                format!("account {id} exists with other attributes"),
            )),
        }
    }

    /// An account the caller may see.
    pub async fn account(&self, p: &Principal, id: Uuid) -> Result<Account> {
        self.store
            .account(&p.ledger_id, id)
            .await?
            .filter(|a| p.can_see_account(a))
            .ok_or_else(Error::not_found)
    }

    /// The entries touching an account the caller may see, newest first, before `before`.
    pub async fn account_entries(
        &self,
        p: &Principal,
        id: Uuid,
        before: Option<i64>,
        limit: i64,
    ) -> Result<EntriesPage> {
        self.account(p, id).await?;
        // One more than asked tells whether another page exists, so the last page has no cursor.
        let entries = self
            .store
            .account_entries(&p.ledger_id, id, before, limit + 1)
            .await?;
        Ok(page(entries, limit))
    }

    /// Posts an entry. Admin. The same key and draft again answers the original entry.
    pub async fn post(&self, p: &Principal, key: String, draft: EntryDraft) -> Result<Outcome> {
        require(p, &[Role::Admin])?;
        Ok(self
            .writers
            .get(&p.ledger_id)
            .submit(key, p.actor(), draft)
            .await?)
    }

    /// The whole journal in sequence order after `after`. Admin and auditor.
    pub async fn entries_after(
        &self,
        p: &Principal,
        after: i64,
        limit: i64,
    ) -> Result<EntriesPage> {
        require(p, &[Role::Admin, Role::Auditor])?;
        if after < 0 {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                "after_seq must not be negative",
            ));
        }
        let entries = self
            .store
            .entries_after(&p.ledger_id, after, limit + 1)
            .await?;
        Ok(page(entries, limit))
    }

    /// One entry: admin and auditor see any; others only one touching an account they can see.
    pub async fn entry(&self, p: &Principal, id: Uuid) -> Result<PostedEntry> {
        let entry = self
            .store
            .entry(&p.ledger_id, id)
            .await?
            .ok_or_else(Error::not_found)?;
        if !matches!(p.role, Role::Admin | Role::Auditor) {
            let ids: Vec<Uuid> = entry.postings.iter().map(|x| x.account).collect();
            let accounts = self.store.accounts(&p.ledger_id, &ids).await?;
            if !accounts.iter().any(|a| p.can_see_account(a)) {
                return Err(Error::not_found());
            }
        }
        Ok(entry)
    }
}

/// Refuses a principal whose role is not one of `roles`.
pub fn require(p: &Principal, roles: &[Role]) -> Result<()> {
    if roles.contains(&p.role) {
        Ok(())
    } else {
        Err(Error::forbidden())
    }
}

fn check_account_text(name: &str, value: Option<&str>) -> Result<()> {
    if value.is_some_and(|v| v.len() > ACCOUNT_TEXT_MAX_BYTES) {
        return Err(Error::new(
            ErrorCode::FieldTooLong,
            format!("{name} is longer than {ACCOUNT_TEXT_MAX_BYTES} bytes"),
        ));
    }
    match value.and_then(text_fault) {
        Some(TextFault::Control) => Err(Error::new(
            ErrorCode::TextInvalid,
            format!("{name} contains a control character"),
        )),
        Some(TextFault::Invisible) => Err(Error::new(
            ErrorCode::TextInvisible,
            format!("{name} contains an invisible or bidirectional control character"),
        )),
        None => Ok(()),
    }
}

fn page(mut entries: Vec<PostedEntry>, limit: i64) -> EntriesPage {
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    EntriesPage { entries, more }
}

/// An account id derived from the ledger and idempotency key, so that a retried request without
/// an explicit id opens the same account.
fn derived_account_id(ledger_id: &str, key: &str) -> Uuid {
    derived_id("aixin.account-id.v1", &[ledger_id, key])
}
