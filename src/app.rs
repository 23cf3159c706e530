//! The application core: the one place that puts the store, the writers, the key ring and the
//! services together. Every edge — the HTTP API, the command line, the demo seed and the web
//! pages — starts from an [`App`] and calls the same services with a [`Principal`] the edge
//! resolved (a bearer token, or a session cookie for the pages); every authorization
//! decision is made inside the services, so no edge can skip one.

use std::sync::Arc;

use crate::admin::Admin;
use crate::audit::Audit;
use crate::auth::{authenticate, Principal};
use crate::clock::{Clock, Entropy};
use crate::earning::Earning;
use crate::error::Error;
use crate::journal::Journal;
use crate::keys::{KeyRing, SharedKeys};
use crate::redeem::Redemption;
use crate::session::Sessions;
use crate::store::{Store, Stores};
use crate::writer::Writers;

/// Everything an edge needs, built once per process (cheap to clone: it is all shared).
#[derive(Clone)]
pub struct App {
    /// The ledger's journal, accounts and tokens.
    pub store: Arc<dyn Store>,
    /// One group-commit writer per ledger; the only way anything is posted.
    pub writers: Arc<Writers>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// The ledger's own operations: head, verification, accounts, entries, the journal.
    pub journal: Journal,
    /// Organisation, residents, rules, service records, rosters, corrections, expiry.
    pub earning: Earning,
    /// Shops, catalogue, credentials, redemption, refunds, settlement.
    pub redemption: Redemption,
    /// Bundles, checkpoints and reports.
    pub audit: Audit,
    /// Signing in to the web pages: sessions, users, till devices, PINs, one-time links.
    pub sessions: Sessions,
    /// The signing keys (receipts, checkpoints, manifests) and the master key.
    pub keys: SharedKeys,
    /// The administrator's tokens, signing keys and organisation list (users are `sessions`').
    pub admin: Admin,
}

impl App {
    /// The core over `stores`, with a throwaway key ring (for tests and tools that sign nothing
    /// that is kept); a server uses [`App::with_keys`] to sign with its key file.
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, entropy: Arc<dyn Entropy>) -> App {
        let store = stores.ledger;
        let writers = Arc::new(Writers::new(store.clone(), clock.clone(), entropy.clone()));
        let earning = Earning {
            ledger: store.clone(),
            store: stores.earning,
            writers: writers.clone(),
            clock: clock.clone(),
            entropy: entropy.clone(),
        };
        let keys = SharedKeys::fixed(KeyRing::generate(entropy.as_ref(), clock.now_micros()));
        let redemption = Redemption::new(earning.clone(), stores.redeem.clone(), keys.clone());
        let sessions = Sessions::new(stores.sessions.clone(), earning.clone(), redemption.clone());
        let audit = Audit {
            stores: stores_of(&store, &earning, &redemption, &sessions),
            earning: earning.clone(),
            keys: keys.clone(),
            clock: clock.clone(),
            exports: crate::audit::service::export_slots(),
        };
        let admin = Admin {
            store: store.clone(),
            sessions: sessions.clone(),
            earning: earning.clone(),
            redemption: redemption.clone(),
            keys: keys.clone(),
            clock: clock.clone(),
            entropy: entropy.clone(),
        };
        App {
            admin,
            journal: Journal::new(store.clone(), writers.clone(), clock.clone()),
            store,
            writers,
            clock,
            entropy,
            earning,
            redemption,
            audit,
            sessions,
            keys,
        }
    }

    /// Signs with `keys` (the server's key file) instead of the throwaway ring.
    pub fn with_keys(mut self, keys: SharedKeys) -> App {
        self.redemption.keys = keys.clone();
        self.sessions.redemption.keys = keys.clone();
        self.audit.keys = keys.clone();
        self.admin.keys = keys.clone();
        self.admin.redemption.keys = keys.clone();
        self.admin.sessions.redemption.keys = keys.clone();
        self.keys = keys;
        self
    }

    /// The stores under the services, for work that reads across them (the audit export).
    pub fn stores(&self) -> Stores {
        stores_of(&self.store, &self.earning, &self.redemption, &self.sessions)
    }

    /// The principal an `Authorization: Bearer …` header stands for, or `unauthorized`.
    pub async fn principal_of_bearer(&self, header: Option<&str>) -> Result<Principal, Error> {
        Ok(authenticate(self.store.as_ref(), self.clock.as_ref(), header).await?)
    }

    /// Who a session cookie's value stands for (the same [`Principal`] its token would be as a
    /// bearer token), or None for no live session: see [`Sessions::principal_of_session`].
    pub async fn principal_of_session(
        &self,
        cookie: &str,
    ) -> Result<Option<crate::session::SignedIn>, Error> {
        self.sessions.principal_of_session(cookie).await
    }
}

fn stores_of(
    ledger: &Arc<dyn Store>,
    earning: &Earning,
    redemption: &Redemption,
    sessions: &Sessions,
) -> Stores {
    Stores {
        ledger: ledger.clone(),
        earning: earning.store.clone(),
        redeem: redemption.store.clone(),
        sessions: sessions.store.clone(),
    }
}
