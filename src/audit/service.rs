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

/// A bundle being sent as a tar (ledger-specs/audit-bundle.md: the eight files of the
/// manifest's list in its order, then `manifest.json`), the same bytes for the API's
/// `/v1/audit/export` and the auditor's page. The bundle is written into a temporary directory
/// first (removed when the last chunk is read, the reader goes away, or it fails); a blocking
/// task then reads it in chunks into a small channel, so memory stays flat.
pub struct TarBundle {
    pub manifest: Manifest,
    /// `aixin-{ledger}-{from}-{to}.tar`.
    pub file_name: String,
    /// The tar's bytes in order; an `Err` ends it (the download is then cut short).
    pub chunks: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
}

impl Audit {
    /// The bundle of `[from, to]` as a tar stream ([`TarBundle`]). Admin and auditor.
    pub async fn export_tar(
        &self,
        p: &Principal,
        from: Option<Bound>,
        to: Option<Bound>,
    ) -> Result<TarBundle> {
        require(p, &[Role::Admin, Role::Auditor])?;
        // Unique per process and request, whatever the injected clock (tests fix it).
        static EXPORTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "aixin-export-{}-{}-{}",
            std::process::id(),
            EXPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            self.clock.now_micros()
        ));
        let cleanup = RemoveOnDrop(dir.clone());
        let manifest = self.export(p, from, to, &dir).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(8);
        tokio::task::spawn_blocking(move || {
            let send = |chunk: Vec<u8>| tx.blocking_send(Ok(chunk)).is_ok();
            let result = (|| -> std::io::Result<bool> {
                let names = super::format::FILES
                    .iter()
                    .copied()
                    .chain([super::format::MANIFEST_FILE]);
                for name in names {
                    use std::io::Read;
                    let path = dir.join(name);
                    let size = std::fs::metadata(&path)?.len();
                    if !send(super::tar::header(name, size).to_vec()) {
                        return Ok(false);
                    }
                    let mut file = std::fs::File::open(&path)?;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = file.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        if !send(buf[..n].to_vec()) {
                            return Ok(false);
                        }
                    }
                    if !send(vec![0u8; super::tar::padding(size)]) {
                        return Ok(false);
                    }
                }
                Ok(send(super::tar::END.to_vec()))
            })();
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
            drop(cleanup);
        });
        let file_name = format!(
            "aixin-{}-{}-{}.tar",
            manifest.ledger, manifest.from_seq, manifest.to_seq
        );
        Ok(TarBundle {
            manifest,
            file_name,
            chunks: rx,
        })
    }
}

/// A temporary export directory, removed with everything in it when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A report's CSV as Chinese Excel opens it: a UTF-8 byte-order mark first and every record
/// ending in CR LF (a line feed inside a quoted cell stays as it is). The cells are the
/// report's own ([`super::format::spreadsheet_cell`]: exact decimals, formula-like text
/// neutralised).
pub fn excel_csv(csv: &str) -> String {
    let mut out = String::with_capacity(csv.len() + csv.len() / 16 + 3);
    out.push('\u{feff}');
    let mut quoted = false;
    for c in csv.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '\n' if !quoted => out.push_str("\r\n"),
            _ => out.push(c),
        }
    }
    out
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
