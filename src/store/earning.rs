//! The store contract for earning: organisation, residents, rules, service records, rosters,
//! corrections and lot queries. Both backends run the same statements for it (`sql/earning.rs`).
//! Entries still go through the writer; this is the workflow state around them.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use crate::ledger::lots::Lot;
use crate::model::{Correction, OrgUnit, Resident, Roster, Rule, ServiceRecord};

/// The result of an idempotent insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted<T> {
    Created(T),
    /// The same id existed already; this is what is stored.
    Existing(T),
}

/// Inserting service records (one, or a roster's lines) is all or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordsInserted {
    Created,
    /// The first record's id existed already: a retry of the same request.
    Existing,
    /// These lines (indexes) repeat a resident, rule and date that is already submitted or
    /// approved; nothing was written.
    Duplicates(Vec<usize>),
}

#[async_trait]
pub trait EarningStore: Send + Sync + 'static {
    async fn insert_org_unit(
        &self,
        ledger_id: &str,
        unit: &OrgUnit,
    ) -> Result<Inserted<OrgUnit>, StoreError>;
    async fn org_unit(&self, ledger_id: &str, id: &str) -> Result<Option<OrgUnit>, StoreError>;
    /// The unit and its ancestors, nearest first (bounded by the depth limit).
    async fn ancestry(&self, ledger_id: &str, id: &str) -> Result<Vec<OrgUnit>, StoreError>;

    async fn insert_resident(
        &self,
        ledger_id: &str,
        resident: &Resident,
    ) -> Result<Inserted<Resident>, StoreError>;
    async fn resident(&self, ledger_id: &str, id: Uuid) -> Result<Option<Resident>, StoreError>;
    async fn resident_by_pseudonym(
        &self,
        ledger_id: &str,
        pseudonym: &str,
    ) -> Result<Option<Resident>, StoreError>;

    // ---- Resident search and the staff's work table (`earning/search.rs`) ----

    /// Residents matching `query`, in registration order (created_at, id) after its cursor, at
    /// most `query.limit`, each with their credential.
    async fn search_residents(
        &self,
        ledger_id: &str,
        query: &ResidentQuery,
    ) -> Result<Vec<FoundResident>, StoreError>;
    /// The resident's credential, if one was ever issued.
    async fn card_of(
        &self,
        ledger_id: &str,
        resident: Uuid,
    ) -> Result<Option<CardState>, StoreError>;
    /// The communities at or below `scope` (every community without one), by id, at most
    /// `limit`.
    async fn communities_under(
        &self,
        ledger_id: &str,
        scope: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OrgUnit>, StoreError>;
    /// Open points whose last valid day is within `from..=until` (days as text), of residents
    /// of communities at or below `scope`: the totals, and the residents with the soonest
    /// such day first (at most `limit`).
    async fn expiring_between(
        &self,
        ledger_id: &str,
        scope: Option<&str>,
        from: &str,
        until: &str,
        limit: i64,
    ) -> Result<ExpiringSummary, StoreError>;
    /// Service records waiting for approval and open corrections, of residents of communities
    /// at or below `scope`.
    async fn waiting_counts(
        &self,
        ledger_id: &str,
        scope: Option<&str>,
    ) -> Result<(i64, i64), StoreError>;

    /// Inserts a rule version; false if that (rule, version) exists already.
    async fn insert_rule(&self, ledger_id: &str, rule: &Rule) -> Result<bool, StoreError>;
    /// Every version of a rule, oldest first.
    async fn rule_versions(&self, ledger_id: &str, rule_id: &str) -> Result<Vec<Rule>, StoreError>;
    /// Every version of every rule, by rule id (byte order) then version.
    async fn all_rules(&self, ledger_id: &str) -> Result<Vec<Rule>, StoreError>;

    async fn insert_records(
        &self,
        ledger_id: &str,
        roster: Option<&Roster>,
        records: &[ServiceRecord],
    ) -> Result<RecordsInserted, StoreError>;
    async fn record(&self, ledger_id: &str, id: Uuid) -> Result<Option<ServiceRecord>, StoreError>;
    async fn records_of_roster(
        &self,
        ledger_id: &str,
        roster_id: Uuid,
    ) -> Result<Vec<ServiceRecord>, StoreError>;
    async fn roster(&self, ledger_id: &str, id: Uuid) -> Result<Option<Roster>, StoreError>;
    async fn set_roster_status(
        &self,
        ledger_id: &str,
        id: Uuid,
        status: &str,
    ) -> Result<(), StoreError>;
    /// Moves a submitted record to rejected; false if it was not submitted.
    async fn reject_record(
        &self,
        ledger_id: &str,
        id: Uuid,
        by: &str,
        reason: &str,
        at_micros: i64,
    ) -> Result<bool, StoreError>;

    async fn insert_correction(
        &self,
        ledger_id: &str,
        correction: &Correction,
    ) -> Result<Inserted<Correction>, StoreError>;
    async fn correction(&self, ledger_id: &str, id: Uuid)
        -> Result<Option<Correction>, StoreError>;
    /// Closes an open correction; false if it was not open.
    async fn resolve_correction(
        &self,
        ledger_id: &str,
        resolved: &Correction,
    ) -> Result<bool, StoreError>;

    /// Per resident account, the points in lots whose last valid day is before `as_of`.
    async fn expired_points(
        &self,
        ledger_id: &str,
        as_of: &str,
    ) -> Result<Vec<(Uuid, i64)>, StoreError>;
    /// Open lots of an account, in spending order.
    async fn open_lots(&self, ledger_id: &str, account: Uuid) -> Result<Vec<Lot>, StoreError>;
    /// The value of a limit counter as last committed (None: never raised). Read outside the
    /// ledger lock, for an estimate the planner then checks (a cap's room at approval).
    async fn counter(&self, ledger_id: &str, key: &str) -> Result<Option<i64>, StoreError>;

    /// The ledger's organisation units, by id (byte order), at most `limit` (the admin's tree).
    async fn org_units(&self, ledger_id: &str, limit: i64) -> Result<Vec<OrgUnit>, StoreError>;

    // ---- Staff's work lists (src/earning/queues.rs) ----

    /// Service records in `filter.state`, oldest submitted first, after the cursor.
    async fn records_in_state(
        &self,
        ledger_id: &str,
        filter: &StateFilter,
    ) -> Result<Vec<ServiceRecord>, StoreError>;
    /// Corrections in `filter.state`, oldest requested first, after the cursor.
    async fn corrections_in_state(
        &self,
        ledger_id: &str,
        filter: &StateFilter,
    ) -> Result<Vec<Correction>, StoreError>;
    /// Rosters in `filter.state`, oldest first, after the cursor.
    async fn rosters_in_state(
        &self,
        ledger_id: &str,
        filter: &StateFilter,
    ) -> Result<Vec<Roster>, StoreError>;
}

/// One page of a list by state: what is in `state`, of residents of communities at or below
/// `under` (every community when `None`), ordered by (time, id) and starting after `after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateFilter {
    pub state: String,
    pub under: Option<String>,
    pub after: Option<(i64, Uuid)>,
    /// Only records decided on their own (not a roster's line or a correction's replacement).
    pub standalone: bool,
    pub limit: i64,
}

/// Deepest organisation tree followed when walking up from a unit.
pub const ORG_DEPTH_MAX: usize = 8;

/// What a resident search matches: any of the keys given (none: every resident), within the
/// scope and community, after the cursor.
#[derive(Clone, Debug, Default)]
pub struct ResidentQuery {
    /// Communities at or below this unit only (None: the whole ledger).
    pub scope: Option<String>,
    /// This community only.
    pub community: Option<String>,
    /// A substring of the name (matched case-insensitively for ASCII letters).
    pub name: Option<String>,
    /// The phone's digits, exactly (spaces, '-' and '+' ignored on both sides).
    pub phone_digits: Option<String>,
    /// The credential's number, exactly.
    pub card_number: Option<i64>,
    /// The pseudonym, exactly.
    pub pseudonym: Option<String>,
    /// Only residents after this (created_at, id).
    pub after: Option<(i64, Uuid)>,
    pub limit: i64,
}

/// A resident's credential as staff see it (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardState {
    pub number: i64,
    pub generation: i64,
    pub active: bool,
    pub failures: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundResident {
    pub resident: Resident,
    pub card: Option<CardState>,
}

/// A resident with points expiring in a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiringResident {
    pub resident_id: Uuid,
    pub name: String,
    pub community_id: String,
    pub points_minor: i64,
    /// The soonest last valid day in the range.
    pub first_day: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpiringSummary {
    pub residents: i64,
    pub points_minor: i64,
    pub soonest: Vec<ExpiringResident>,
}
