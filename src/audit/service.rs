//! The auditor's operations for whoever may do them: bundles, checkpoints and reports. Each
//! takes the calling [`Principal`] and decides what it may see; the edges (the HTTP routes, the
//! command line) only parse and render.

use std::path::Path;
use std::sync::Arc;

use super::export::{self, Bound, ExportError};
use super::format::Manifest;
use super::reports::{CommunitySummary, ShopStatement, TrialBalance};
use crate::auth::{Principal, Role};
use crate::clock::Clock;
use crate::earning::Earning;
use crate::error::{Error, ErrorCode};
use crate::journal::require;
use crate::keys::SharedKeys;
use crate::ledger::Checkpoint;
use crate::store::Stores;

type Result<T> = std::result::Result<T, Error>;

/// Most bundle exports one process builds at once (each reads the whole range and writes every
/// file); one more is refused as `overloaded` at once rather than queued.
pub const EXPORTS_MAX: usize = 2;

/// What the audit operations need.
#[derive(Clone)]
pub struct Audit {
    pub stores: Stores,
    pub earning: Earning,
    pub keys: SharedKeys,
    pub clock: Arc<dyn Clock>,
    /// [`EXPORTS_MAX`] slots, one held by each export under way.
    pub exports: Arc<tokio::sync::Semaphore>,
}

/// The slots of a new process's exports.
pub fn export_slots() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(EXPORTS_MAX))
}

impl Audit {
    /// Writes the bundle of `[from, to]` into `dir`, signed with the active key. Admin and
    /// auditor.
    pub async fn export(
        &self,
        p: &Principal,
        from: Option<Bound>,
        to: Option<Bound>,
        dir: &Path,
    ) -> Result<Manifest> {
        require(p, &[Role::Admin, Role::Auditor])?;
        let _slot = self.exports.clone().try_acquire_owned().map_err(|_| {
            Error::new(
                ErrorCode::Overloaded,
                format!("{EXPORTS_MAX} exports are under way; retry when one has finished"),
            )
        })?;
        let ring = self.keys.get();
        Ok(export::export_bundle(
            &self.stores,
            &p.ledger_id,
            from,
            to,
            &ring,
            self.clock.now_micros(),
            dir,
        )
        .await?)
    }

    /// Stored signed checkpoints of entries `from..=to`, in sequence order. Admin and auditor.
    pub async fn checkpoints(&self, p: &Principal, from: i64, to: i64) -> Result<Vec<Checkpoint>> {
        require(p, &[Role::Admin, Role::Auditor])?;
        Ok(self
            .stores
            .ledger
            .checkpoints(&p.ledger_id, from, to)
            .await?)
    }

    /// Every account's balance after an entry or day. Admin and auditor.
    pub async fn trial_balance(&self, p: &Principal, as_of: Option<Bound>) -> Result<TrialBalance> {
        require(p, &[Role::Admin, Role::Auditor])?;
        Ok(export::trial_balance(self.stores.ledger.as_ref(), &p.ledger_id, as_of).await?)
    }

    /// A community's points by rule and by shop. Admin, auditor, and staff who manage it; for
    /// anyone else the community does not exist.
    pub async fn community_report(
        &self,
        p: &Principal,
        community: &str,
        as_of: Option<Bound>,
    ) -> Result<CommunitySummary> {
        if !self.manages(p, community).await? {
            return Err(Error::not_found());
        }
        let store = self.stores.ledger.as_ref();
        Ok(export::community_summary(store, &p.ledger_id, community, as_of).await?)
    }

    /// A shop's points entry by entry over a range. Admin, auditor, staff who manage every
    /// community the shop's accounts belong to, and the shop itself.
    pub async fn shop_report(
        &self,
        p: &Principal,
        shop: &str,
        from: Option<Bound>,
        to: Option<Bound>,
    ) -> Result<ShopStatement> {
        let store = self.stores.ledger.as_ref();
        let accounts = export::shop_accounts(store, &p.ledger_id, shop).await?;
        let mut allowed = !accounts.is_empty();
        for account in &accounts {
            let own = p.role == Role::Shop && p.can_see_account(account);
            let community = account.community_id.as_deref().unwrap_or("");
            allowed &= own || self.manages(p, community).await?;
        }
        if !allowed {
            return Err(Error::not_found());
        }
        Ok(export::shop_statement(store, &p.ledger_id, shop, from, to).await?)
    }

    /// Whether the principal may see a community's reports.
    async fn manages(&self, p: &Principal, community: &str) -> Result<bool> {
        Ok(match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Staff => self
                .earning
                .manages(p, community)
                .await
                .map_err(|_| Error::bare(ErrorCode::Internal))?,
            _ => false,
        })
    }
}

impl From<ExportError> for Error {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::Store(e) => e.into(),
            ExportError::Range(detail) => Error::new(ErrorCode::AuditRangeInvalid, detail),
            ExportError::Io(e) => {
                tracing::error!(error = %e, "audit export");
                Error::bare(ErrorCode::Internal)
            }
        }
    }
}
