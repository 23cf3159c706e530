//! The earning operations. Each takes the calling principal and checks what it may do; HTTP
//! handlers are thin wrappers around these.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use time::Date;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::calendar::text as day_text;
use crate::calendar::{day_of, format_date, parse_date};
use crate::clock::{Clock, Entropy};
use crate::error::{Error, ErrorCode, Fields, LineProblem};
use crate::ledger::amount::text as amount_text;
use crate::ledger::entry::{text_fault, TextFault};
use crate::ledger::format_minor;
use crate::ledger::lots::{Lot, LOT_EXPIRY_KEY};
use crate::ledger::{
    AccountKind, Amount, EntryDraft, EntryKind, Guard, LedgerError, Limit, LimitCode, PostedEntry,
    Posting, Side, Unit,
};
use crate::model::{
    self, code_is_valid, derived_id, Community, Correction, ExpiryPolicy, OrgUnit, Resident,
    Roster, Rule, RuleMode, ServiceRecord, EXPIRING_WINDOW_DAYS, HOURS_PER_RECORD_MAX_MINOR,
    ROSTER_LINES_MAX, TEXT_MAX_BYTES,
};
use crate::store::earning::{EarningStore, Inserted, RecordsInserted};
use crate::store::{NewAccount, Opened, Outcome, Store};
use crate::writer::{Conditions, Writers};

type Result<T> = std::result::Result<T, Error>;

/// Everything the earning operations need.
#[derive(Clone)]
pub struct Earning {
    pub ledger: Arc<dyn Store>,
    pub store: Arc<dyn EarningStore>,
    pub writers: Arc<Writers>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
}

/// A new organisation unit; `community` makes it a community with a points programme.
#[derive(Clone, Debug)]
pub struct NewOrgUnit {
    pub id: String,
    pub parent_id: Option<String>,
    pub level: String,
    pub name_zh: String,
    pub name_en: String,
    pub community: Option<ExpiryPolicy>,
}

#[derive(Clone, Debug)]
pub struct NewResident {
    pub name: String,
    pub phone: String,
    pub community_id: String,
}

/// The terms of a rule version.
#[derive(Clone, Debug)]
pub struct RuleTerms {
    pub community_id: String,
    pub category: String,
    pub name_zh: String,
    pub name_en: String,
    pub mode: RuleMode,
    pub points: Amount,
    pub records_hours: bool,
    pub cap_day: Option<Amount>,
    pub cap_month: Option<Amount>,
    pub valid_from: Date,
    pub valid_until: Option<Date>,
}

#[derive(Clone, Debug)]
pub struct NewRecord {
    pub resident_id: Uuid,
    pub rule_id: String,
    pub service_date: Date,
    pub hours_minor: i64,
    pub note: String,
}

/// One roster line as given: a resident (id or pseudonym) and hours as text.
#[derive(Clone, Debug)]
pub struct RosterLine {
    pub resident: String,
    pub hours: String,
}

#[derive(Clone, Debug)]
pub struct NewRoster {
    pub community_id: String,
    pub rule_id: String,
    pub service_date: Date,
    pub title: String,
    pub lines: Vec<RosterLine>,
}

/// How staff resolve a correction request.
#[derive(Clone, Debug)]
pub enum Resolution {
    /// Reverse the record's entry.
    Reverse { note: String },
    /// Reverse it and credit a new record with these hours instead.
    Replace { hours_minor: i64, note: String },
    /// Keep the record as it is.
    Decline { note: String },
}

/// A resident's balance: points, hours, and points expiring soon. Amounts are hundredths; the
/// API writes them as decimal text.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Balance {
    pub resident_id: Uuid,
    pub pseudonym: String,
    #[serde(rename = "points", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "25.00")]
    pub points_minor: i64,
    #[serde(rename = "hours", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "2.50")]
    pub hours_minor: i64,
    /// Points whose last valid day falls within the next 30 days.
    #[serde(
        rename = "expiring_within_30_days",
        serialize_with = "amount_text::minor"
    )]
    #[schema(value_type = String, example = "10.00")]
    pub expiring_within_30_days_minor: i64,
    /// The earliest of those days and what expires then, soonest first.
    pub expiring: Vec<Expiring>,
}

/// Points that expire after their last valid day.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Expiring {
    #[serde(serialize_with = "day_text::date")]
    #[schema(value_type = String, format = Date, example = "2026-12-31")]
    pub last_valid_day: Date,
    #[serde(rename = "points", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "10.00")]
    pub points_minor: i64,
}

/// One line of a resident's history: what happened to their account and what it was for.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    pub seq: i64,
    pub entry_id: Uuid,
    #[schema(value_type = String, example = "earn")]
    pub kind: EntryKind,
    #[serde(rename = "posted_at", serialize_with = "day_text::time")]
    #[schema(value_type = String, format = DateTime)]
    pub posted_at_micros: i64,
    /// Change of the resident's points (written "+12.50", "-5.00"), and of their hours.
    #[serde(rename = "points", serialize_with = "amount_text::change")]
    #[schema(value_type = String, example = "+25.00")]
    pub points_minor: i64,
    #[serde(rename = "hours", serialize_with = "amount_text::change")]
    #[schema(value_type = String, example = "+2.50")]
    pub hours_minor: i64,
    pub memo: String,
    pub activity: Option<String>,
    pub rule: Option<String>,
    pub rule_version: Option<String>,
    pub record: Option<String>,
    pub service_date: Option<String>,
    pub shop: Option<String>,
    pub reverses: Option<Uuid>,
}

/// What an expiry run posted.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ExpiryReport {
    #[serde(serialize_with = "day_text::date")]
    #[schema(value_type = String, format = Date)]
    pub as_of: Date,
    pub accounts: usize,
    #[serde(rename = "points", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "10.00")]
    pub points_minor: i64,
    pub refused: usize,
}

pub(crate) fn check_text(field: &str, text: &str, required: bool) -> Result<()> {
    if (required && text.trim().is_empty()) || text.len() > TEXT_MAX_BYTES {
        return Err(field_error(
            ErrorCode::FieldTooLong,
            field,
            format!(
                "{field} must be {}at most {TEXT_MAX_BYTES} bytes",
                if required { "non-empty and " } else { "" }
            ),
        ));
    }
    match text_fault(text) {
        Some(TextFault::Control) => Err(field_error(
            ErrorCode::TextInvalid,
            field,
            format!("{field} contains a control character"),
        )),
        Some(TextFault::Invisible) => Err(field_error(
            ErrorCode::TextInvisible,
            field,
            format!("{field} contains an invisible or bidirectional control character"),
        )),
        None => Ok(()),
    }
}

fn check_code(field: &str, code: &str) -> Result<()> {
    if code_is_valid(code) {
        Ok(())
    } else {
        Err(field_error(
            ErrorCode::InvalidCode,
            field,
            format!("{field} must be 1 to 64 ASCII letters, digits, '-' or '_'"),
        ))
    }
}

/// A refusal of one named request field.
fn field_error(code: ErrorCode, field: &str, detail: String) -> Error {
    Error::new(code, detail).with_fields(Fields {
        field: Some(field.to_owned()),
        ..Fields::default()
    })
}

/// Parses hours given as text: a positive amount of at most 24 hours.
pub fn parse_hours(text: &str) -> Result<i64> {
    let hours = Amount::parse(text)
        .map_err(|e| Error::new(ErrorCode::HoursInvalid, format!("hours: {e}")))?;
    if hours.minor() > HOURS_PER_RECORD_MAX_MINOR {
        return Err(Error::new(
            ErrorCode::HoursInvalid,
            "hours: at most 24 per record",
        ));
    }
    Ok(hours.minor())
}

/// Refuses anyone but community staff and administrators, before any input is looked at.
pub(crate) fn require_staff(p: &Principal) -> Result<()> {
    crate::journal::require(p, &[Role::Admin, Role::Staff])
}

/// An organisation unit already stored under the id has the attributes asked for.
fn same_unit(stored: &OrgUnit, asked: &OrgUnit) -> bool {
    stored.parent_id == asked.parent_id
        && stored.level == asked.level
        && stored.name_zh == asked.name_zh
        && stored.name_en == asked.name_en
        && stored.community.as_ref().map(|c| c.expiry) == asked.community.as_ref().map(|c| c.expiry)
}

/// A new resident's name and phone.
fn check_new_resident(new: &NewResident) -> Result<()> {
    check_text("name", &new.name, true)?;
    if new.name.chars().count() > 64 {
        return Err(Error::new(
            ErrorCode::FieldTooLong,
            "name is longer than 64 characters",
        ));
    }
    let phone_ok = (5..=20).contains(&new.phone.len())
        && new
            .phone
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b' '));
    if !phone_ok {
        return Err(Error::new(
            ErrorCode::PhoneInvalid,
            "phone must be 5 to 20 digits, '+', '-' or spaces",
        ));
    }
    Ok(())
}

/// A rule's id and terms on their own: codes, names, a validity that does not end before it
/// starts, caps that can be met and a monthly cap not below the daily one.
fn check_rule_terms(rule_id: &str, terms: &RuleTerms) -> Result<()> {
    check_code("rule id", rule_id)?;
    check_code("category", &terms.category)?;
    check_text("name_zh", &terms.name_zh, true)?;
    check_text("name_en", &terms.name_en, true)?;
    if terms
        .valid_until
        .is_some_and(|until| until < terms.valid_from)
    {
        return Err(Error::new(
            ErrorCode::DateInvalid,
            "valid_until is before valid_from",
        ));
    }
    for cap in [terms.cap_day, terms.cap_month].into_iter().flatten() {
        if terms.mode == RuleMode::PerActivity && cap < terms.points {
            return Err(Error::new(
                ErrorCode::RuleInvalid,
                "a cap below the points of one activity could never be met",
            ));
        }
    }
    if let (Some(day), Some(month)) = (terms.cap_day, terms.cap_month) {
        if month < day {
            return Err(Error::new(
                ErrorCode::RuleInvalid,
                "the monthly cap is below the daily cap",
            ));
        }
    }
    Ok(())
}

/// A roster's title and number of lines.
fn check_roster_shape(new: &NewRoster) -> Result<()> {
    check_text("title", &new.title, true)?;
    if new.lines.is_empty() || new.lines.len() > ROSTER_LINES_MAX {
        return Err(Error::new(
            ErrorCode::RosterInvalid,
            format!("a roster has 1 to {ROSTER_LINES_MAX} lines"),
        ));
    }
    Ok(())
}

/// A roster's lines as submitted records, and the roster line (from 1) each came from.
#[derive(Default)]
struct RosterRecords {
    records: Vec<ServiceRecord>,
    line_numbers: Vec<usize>,
}

impl Earning {
    fn actor(p: &Principal) -> String {
        p.actor()
    }

    fn today(&self) -> Date {
        day_of(self.clock.now_micros())
    }

    /// Whether `p` may manage `community_id`: admins anywhere; staff at their unit or below.
    pub async fn manages(&self, p: &Principal, community_id: &str) -> Result<bool> {
        match p.role {
            Role::Admin => Ok(true),
            Role::Staff => {
                let Some(scope) = p.scope.as_deref() else {
                    return Ok(false);
                };
                let chain = self.store.ancestry(&p.ledger_id, community_id).await?;
                Ok(chain.iter().any(|unit| unit.id == scope))
            }
            _ => Ok(false),
        }
    }

    /// A community (not just any unit), or `unknown_community`.
    pub(crate) async fn community(&self, ledger: &str, id: &str) -> Result<(OrgUnit, Community)> {
        let unit = self.store.org_unit(ledger, id).await?;
        match unit {
            Some(unit) => match unit.community.clone() {
                Some(c) => Ok((unit, c)),
                None => Err(Error::new(
                    ErrorCode::UnknownCommunity,
                    format!("{id} is not a community"),
                )),
            },
            None => Err(Error::new(
                ErrorCode::UnknownCommunity,
                format!("no community {id}"),
            )),
        }
    }

    // ---- Organisation ----

    pub async fn create_org_unit(&self, p: &Principal, new: NewOrgUnit) -> Result<(OrgUnit, bool)> {
        if p.role != Role::Admin {
            return Err(Error::forbidden());
        }
        check_code("id", &new.id)?;
        check_code("level", &new.level)?;
        check_text("name_zh", &new.name_zh, true)?;
        check_text("name_en", &new.name_en, true)?;
        let ledger = &p.ledger_id;
        if let Some(parent) = &new.parent_id {
            let chain = self.store.ancestry(ledger, parent).await?;
            if chain.is_empty() {
                return Err(Error::new(
                    ErrorCode::UnknownOrgUnit,
                    format!("no parent unit {parent}"),
                ));
            }
            if chain.len() >= crate::store::earning::ORG_DEPTH_MAX {
                return Err(Error::new(
                    ErrorCode::UnknownOrgUnit,
                    "the organisation is nested too deeply",
                ));
            }
        }
        let now = self.clock.now_micros();
        let community = match new.community {
            None => None,
            Some(expiry) => Some(self.open_community(ledger, &new.id, expiry, now).await?),
        };
        let unit = OrgUnit {
            id: new.id.clone(),
            parent_id: new.parent_id,
            level: new.level,
            name_zh: new.name_zh,
            name_en: new.name_en,
            community,
            created_at_micros: now,
        };
        match self.store.insert_org_unit(ledger, &unit).await? {
            Inserted::Created(u) => Ok((u, true)),
            Inserted::Existing(u) if same_unit(&u, &unit) => Ok((u, false)),
            Inserted::Existing(u) => Err(Error::new(
                ErrorCode::OrgUnitExists,
                format!("unit {} exists with other attributes", u.id),
            )),
        }
    }

    /// Opens the accounts of a community's points programme (issuance, settlement, expiry),
    /// or finds them opened by an earlier attempt.
    async fn open_community(
        &self,
        ledger: &str,
        id: &str,
        expiry: ExpiryPolicy,
        now: i64,
    ) -> Result<Community> {
        let mut ids = Vec::new();
        for (kind, label) in [
            (AccountKind::Issuance, "积分发放 issuance"),
            (AccountKind::Settlement, "结算 settlement"),
            (AccountKind::Expiry, "过期 expiry"),
        ] {
            let account = NewAccount {
                id: derived_id("aixin.community-account.v1", &[ledger, id, kind.as_str()]),
                kind,
                owner_id: None,
                community_id: Some(id.to_owned()),
                label: format!("{id} {label}"),
            };
            match self.ledger.open_account(ledger, &account, now).await? {
                Opened::Created(a) | Opened::Existing(a) => ids.push(a.id),
                Opened::Conflict(_) => {
                    return Err(Error::new(
                        ErrorCode::OrgUnitExists,
                        "community accounts exist with other attributes",
                    ))
                }
            }
        }
        Ok(Community {
            expiry,
            issuance_account: ids[0],
            settlement_account: ids[1],
            expiry_account: ids[2],
        })
    }

    pub async fn org_unit(&self, p: &Principal, id: &str) -> Result<OrgUnit> {
        let unit = self
            .store
            .org_unit(&p.ledger_id, id)
            .await?
            .ok_or_else(Error::not_found)?;
        let visible = matches!(p.role, Role::Admin | Role::Auditor) || self.manages(p, id).await?;
        if visible {
            Ok(unit)
        } else {
            Err(Error::not_found())
        }
    }

    // ---- Residents ----

    pub async fn register_resident(
        &self,
        p: &Principal,
        key: &str,
        new: NewResident,
    ) -> Result<(Resident, bool)> {
        require_staff(p)?;
        check_new_resident(&new)?;
        let ledger = &p.ledger_id;
        if !self.manages(p, &new.community_id).await? {
            // Staff outside their scope learn nothing about the community.
            return Err(Error::new(
                ErrorCode::UnknownCommunity,
                format!("no community {}", new.community_id),
            ));
        }
        self.community(ledger, &new.community_id).await?;
        // Ids derive from the caller and its key: a retry names the same resident, and another
        // client's key never reaches it.
        let actor = Self::actor(p);
        let id = derived_id("aixin.resident.v1", &[ledger, &actor, key]);
        let same = |r: &Resident| {
            r.name == new.name && r.phone == new.phone && r.community_id == new.community_id
        };
        if let Some(existing) = self.store.resident(ledger, id).await? {
            return if same(&existing) {
                Ok((existing, false))
            } else {
                Err(Error::key_reused())
            };
        }
        let account_id = derived_id("aixin.resident-account.v1", &[ledger, &actor, key]);
        let pseudonym = self.pseudonym_for(ledger, account_id).await?;
        let account = NewAccount {
            id: account_id,
            kind: AccountKind::Resident,
            owner_id: Some(id.to_string()),
            community_id: Some(new.community_id.clone()),
            // The ledger carries the pseudonym, never the name.
            label: pseudonym.clone(),
        };
        let now = self.clock.now_micros();
        let account_id = match self.ledger.open_account(ledger, &account, now).await? {
            Opened::Created(a) | Opened::Existing(a) => a.id,
            Opened::Conflict(_) => return Err(Error::key_reused()),
        };
        let resident = Resident {
            id,
            pseudonym,
            name: new.name.clone(),
            phone: new.phone.clone(),
            community_id: new.community_id.clone(),
            account_id,
            created_at_micros: now,
        };
        match self.store.insert_resident(ledger, &resident).await? {
            Inserted::Created(r) => Ok((r, true)),
            Inserted::Existing(r) if same(&r) => Ok((r, false)),
            Inserted::Existing(_) => Err(Error::key_reused()),
        }
    }

    /// A new pseudonym for the resident account `account_id`. A retry after a failure between
    /// opening the account and recording the resident keeps the pseudonym the account already
    /// carries.
    async fn pseudonym_for(&self, ledger: &str, account_id: Uuid) -> Result<String> {
        Ok(match self.ledger.account(ledger, account_id).await? {
            Some(account) => account.label,
            None => {
                let mut random = [0u8; 5];
                self.entropy.fill(&mut random);
                model::pseudonym(random)
            }
        })
    }

    /// A resident visible to `p` (staff over their community, the resident themself, admin,
    /// auditor), or not found.
    pub async fn resident(&self, p: &Principal, id: Uuid) -> Result<Resident> {
        let resident = self
            .store
            .resident(&p.ledger_id, id)
            .await?
            .ok_or_else(Error::not_found)?;
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Resident => p.scope.as_deref() == Some(id.to_string().as_str()),
            Role::Staff => self.manages(p, &resident.community_id).await?,
            Role::Shop | Role::Cashier => false,
        };
        if visible {
            Ok(resident)
        } else {
            Err(Error::not_found())
        }
    }

    async fn resident_for_write(&self, p: &Principal, id: Uuid) -> Result<Resident> {
        self.resident(p, id).await.map_err(|e| {
            if e.code == ErrorCode::NotFound {
                Error::new(ErrorCode::UnknownResident, format!("no resident {id}"))
            } else {
                e
            }
        })
    }

    pub async fn balance(&self, p: &Principal, id: Uuid) -> Result<Balance> {
        let resident = self.resident(p, id).await?;
        let ledger = &p.ledger_id;
        let account = self
            .ledger
            .account(ledger, resident.account_id)
            .await?
            .ok_or_else(Error::not_found)?;
        let lots = self.store.open_lots(ledger, resident.account_id).await?;
        let today = self.today();
        let horizon = today + time::Duration::days(EXPIRING_WINDOW_DAYS);
        let mut by_day: BTreeMap<Date, i64> = BTreeMap::new();
        for lot in &lots {
            if let Some(text) = &lot.expires_on {
                let day = parse_date(text).ok_or_else(|| Error::bare(ErrorCode::Internal))?;
                if day <= horizon {
                    *by_day.entry(day).or_default() += lot.remaining_minor;
                }
            }
        }
        Ok(Balance {
            resident_id: resident.id,
            pseudonym: resident.pseudonym,
            points_minor: account.balances.get(&Unit::Points).copied().unwrap_or(0),
            hours_minor: account.balances.get(&Unit::Hours).copied().unwrap_or(0),
            expiring_within_30_days_minor: by_day.values().sum(),
            expiring: by_day
                .into_iter()
                .map(|(last_valid_day, points_minor)| Expiring {
                    last_valid_day,
                    points_minor,
                })
                .collect(),
        })
    }

    pub async fn lots(&self, p: &Principal, id: Uuid) -> Result<Vec<Lot>> {
        let resident = self.resident(p, id).await?;
        Ok(self
            .store
            .open_lots(&p.ledger_id, resident.account_id)
            .await?)
    }

    pub async fn history(
        &self,
        p: &Principal,
        id: Uuid,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<HistoryItem>, bool)> {
        let resident = self.resident(p, id).await?;
        let ledger = &p.ledger_id;
        let mut entries = self
            .ledger
            .account_entries(ledger, resident.account_id, before, limit + 1)
            .await?;
        let more = entries.len() as i64 > limit;
        entries.truncate(limit as usize);
        let shop_ids: Vec<Uuid> = entries
            .iter()
            .flat_map(|e| e.postings.iter().map(|p| p.account))
            .collect();
        let shops: BTreeMap<Uuid, String> = self
            .ledger
            .accounts(ledger, &shop_ids)
            .await?
            .into_iter()
            .filter(|a| a.kind == AccountKind::Shop)
            .map(|a| (a.id, a.label))
            .collect();
        let items = entries
            .iter()
            .map(|e| {
                let delta = |unit: Unit| -> i64 {
                    e.postings
                        .iter()
                        .filter(|x| x.account == resident.account_id && x.unit == unit)
                        .map(|x| x.side.signed(x.amount))
                        .sum()
                };
                HistoryItem {
                    seq: e.seq,
                    entry_id: e.id,
                    kind: e.kind,
                    posted_at_micros: e.posted_at_micros,
                    points_minor: delta(Unit::Points),
                    hours_minor: delta(Unit::Hours),
                    memo: e.memo.clone(),
                    activity: e.metadata.get("activity").cloned(),
                    rule: e.metadata.get("rule").cloned(),
                    rule_version: e.metadata.get("rule_version").cloned(),
                    record: e.metadata.get("record").cloned(),
                    service_date: e.metadata.get("service_date").cloned(),
                    shop: e
                        .postings
                        .iter()
                        .find_map(|x| shops.get(&x.account).cloned()),
                    reverses: e.reverses,
                }
            })
            .collect();
        Ok((items, more))
    }

    // ---- Rules ----

    /// Sets a rule's terms: the first version, or a new version when the terms change. Giving
    /// the terms of the current version again answers it (idempotent); `expected_version` must
    /// name the current version (0 for a new rule), so two staff cannot overwrite each other.
    pub async fn set_rule(
        &self,
        p: &Principal,
        rule_id: &str,
        expected_version: i64,
        terms: RuleTerms,
    ) -> Result<(Rule, bool)> {
        require_staff(p)?;
        check_rule_terms(rule_id, &terms)?;
        let ledger = &p.ledger_id;
        if !self.manages(p, &terms.community_id).await? {
            return Err(Error::new(
                ErrorCode::UnknownCommunity,
                format!("no community {}", terms.community_id),
            ));
        }
        self.community(ledger, &terms.community_id).await?;
        let versions = self.store.rule_versions(ledger, rule_id).await?;
        let latest = versions.last();
        let rule = Rule {
            rule_id: rule_id.to_owned(),
            version: latest.map_or(1, |l| l.version + 1),
            community_id: terms.community_id,
            category: terms.category,
            name_zh: terms.name_zh,
            name_en: terms.name_en,
            mode: terms.mode,
            points: terms.points,
            records_hours: terms.records_hours,
            cap_day: terms.cap_day,
            cap_month: terms.cap_month,
            valid_from: terms.valid_from,
            valid_until: terms.valid_until,
            created_by: Self::actor(p),
            created_at_micros: self.clock.now_micros(),
        };
        if let Some(latest) = latest {
            if latest.same_terms(&rule) {
                return Ok((latest.clone(), false));
            }
            if latest.community_id != rule.community_id {
                return Err(Error::new(
                    ErrorCode::RuleInvalid,
                    "a rule stays in its community; create a new rule instead",
                ));
            }
        }
        if expected_version != latest.map_or(0, |l| l.version) {
            return Err(Error::new(
                ErrorCode::RuleVersionConflict,
                format!(
                    "the current version is {}, not {expected_version}",
                    latest.map_or(0, |l| l.version)
                ),
            ));
        }
        if !self.store.insert_rule(ledger, &rule).await? {
            return Err(Error::new(
                ErrorCode::RuleVersionConflict,
                "another version was added meanwhile",
            ));
        }
        Ok((rule, true))
    }

    pub async fn rule_versions(&self, p: &Principal, rule_id: &str) -> Result<Vec<Rule>> {
        let versions = self.store.rule_versions(&p.ledger_id, rule_id).await?;
        let Some(first) = versions.first() else {
            return Err(Error::not_found());
        };
        let visible = match p.role {
            Role::Admin | Role::Auditor | Role::Resident | Role::Shop => true,
            Role::Staff => self.manages(p, &first.community_id).await?,
            // A cashier scans and reads its shop's receipts, nothing else.
            Role::Cashier => false,
        };
        if visible {
            Ok(versions)
        } else {
            Err(Error::not_found())
        }
    }

    /// The version of `rule_id` that applies to service on `day` in `community`: the newest
    /// version whose validity covers the day.
    async fn applicable_rule(
        &self,
        ledger: &str,
        rule_id: &str,
        community_id: &str,
        day: Date,
    ) -> Result<Rule> {
        let versions = self.store.rule_versions(ledger, rule_id).await?;
        let Some(first) = versions.first() else {
            return Err(Error::new(
                ErrorCode::UnknownRule,
                format!("no rule {rule_id}"),
            ));
        };
        if first.community_id != community_id {
            return Err(Error::new(
                ErrorCode::UnknownRule,
                format!("rule {rule_id} is not a rule of {community_id}"),
            ));
        }
        versions
            .into_iter()
            .rev()
            .find(|v| v.valid_on(day))
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::RuleNotValid,
                    format!("rule {rule_id} does not apply on {}", format_date(day)),
                )
            })
    }

    // ---- Service records ----

    fn check_service_day(&self, day: Date) -> Result<()> {
        if day > self.today() {
            return Err(Error::new(
                ErrorCode::DateInvalid,
                "service cannot be recorded for a future day",
            ));
        }
        Ok(())
    }

    /// Staff record service for a resident, or a resident files a claim for themself.
    pub async fn submit_record(
        &self,
        p: &Principal,
        key: &str,
        new: NewRecord,
    ) -> Result<(ServiceRecord, bool)> {
        check_text("note", &new.note, false)?;
        if new.hours_minor <= 0 || new.hours_minor > HOURS_PER_RECORD_MAX_MINOR {
            return Err(Error::new(
                ErrorCode::HoursInvalid,
                "hours must be above 0 and at most 24",
            ));
        }
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Resident) {
            return Err(Error::forbidden());
        }
        let ledger = &p.ledger_id;
        let resident = self.resident_for_write(p, new.resident_id).await?;
        self.check_service_day(new.service_date)?;
        self.applicable_rule(
            ledger,
            &new.rule_id,
            &resident.community_id,
            new.service_date,
        )
        .await?;
        let record = ServiceRecord {
            id: derived_id("aixin.record.v1", &[ledger, &Self::actor(p), key]),
            resident_id: resident.id,
            rule_id: new.rule_id,
            service_date: new.service_date,
            hours_minor: new.hours_minor,
            note: new.note,
            status: model::status::SUBMITTED.to_owned(),
            submitted_by: Self::actor(p),
            submitted_at_micros: self.clock.now_micros(),
            decided_by: None,
            decided_at_micros: None,
            reason: None,
            entry_id: None,
            roster_id: None,
            correction_of: None,
        };
        match self
            .store
            .insert_records(ledger, None, std::slice::from_ref(&record))
            .await?
        {
            RecordsInserted::Created => Ok((
                self.store
                    .record(ledger, record.id)
                    .await?
                    .ok_or_else(Error::not_found)?,
                true,
            )),
            RecordsInserted::Existing => {
                let stored = self
                    .store
                    .record(ledger, record.id)
                    .await?
                    .ok_or_else(Error::not_found)?;
                let same = stored.resident_id == record.resident_id
                    && stored.rule_id == record.rule_id
                    && stored.service_date == record.service_date
                    && stored.hours_minor == record.hours_minor
                    && stored.note == record.note;
                if same {
                    Ok((stored, false))
                } else {
                    Err(Error::key_reused())
                }
            }
            RecordsInserted::Duplicates(_) => Err(Error::new(
                ErrorCode::DuplicateService,
                "this resident already has this activity recorded for that day",
            )),
        }
    }

    /// A record visible to `p`.
    pub async fn record(&self, p: &Principal, id: Uuid) -> Result<(ServiceRecord, Resident)> {
        let record = self
            .store
            .record(&p.ledger_id, id)
            .await?
            .ok_or_else(Error::not_found)?;
        let resident = self.resident(p, record.resident_id).await?;
        Ok((record, resident))
    }

    async fn record_for_decision(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<(ServiceRecord, Resident)> {
        if !matches!(p.role, Role::Admin | Role::Staff) {
            return Err(Error::forbidden());
        }
        let (record, resident) = self.record(p, id).await?;
        if !self.manages(p, &resident.community_id).await? {
            return Err(Error::not_found());
        }
        Ok((record, resident))
    }

    /// The points a record may still be awarded under its rule's caps: the full award, or
    /// what is left of the day's and the month's room (read as last committed; `released` is
    /// room a reversal earlier in the same group gives back). The planner checks the caps
    /// again under the ledger lock, so a stale estimate is refused, never overspent.
    async fn room_for(
        &self,
        ledger: &str,
        rule: &Rule,
        record: &ServiceRecord,
        resident: &Resident,
        full_minor: i64,
        released: &[Limit],
    ) -> Result<(i64, Option<(LimitCode, i64, i64)>)> {
        let mut award = full_minor;
        let mut binding = None;
        for limit in cap_limits(rule, resident, record.service_date, 0) {
            let given_back: i64 = released
                .iter()
                .filter(|r| r.key == limit.key)
                .map(|r| -r.add_minor)
                .sum();
            let used = self.store.counter(ledger, &limit.key).await?.unwrap_or(0) - given_back;
            let room = (limit.max_minor - used.max(0)).max(0);
            if room < award {
                award = room;
                binding = Some((limit.code, used.max(0), limit.max_minor));
            }
        }
        Ok((award, binding))
    }

    /// The earn entry, caps and state change that approving `record` means. Over a cap, the
    /// entry awards the points up to it and still credits every hour; the metadata's
    /// `capped_points` says how many points the cap withheld (hashed with the entry). A rule
    /// that records no hours, with no room left, has nothing to credit: refused with the cap.
    async fn approval(
        &self,
        ledger: &str,
        record: &ServiceRecord,
        resident: &Resident,
        released: &[Limit],
    ) -> Result<(String, EntryDraft, Conditions)> {
        let (_, community) = self.community(ledger, &resident.community_id).await?;
        let rule = self
            .applicable_rule(
                ledger,
                &record.rule_id,
                &resident.community_id,
                record.service_date,
            )
            .await?;
        let points = rule.points_for(record.hours_minor).map_err(|e| {
            Error::new(
                ErrorCode::HoursInvalid,
                format!("these hours earn no points: {e}"),
            )
        })?;
        let hours = Amount::from_minor(record.hours_minor)
            .map_err(|e| Error::new(ErrorCode::HoursInvalid, e.to_string()))?;
        let full = points.minor();
        let (award, binding) = self
            .room_for(ledger, &rule, record, resident, full, released)
            .await?;
        if award == 0 && !rule.records_hours {
            let (code, used, max) = binding.unwrap_or((LimitCode::DailyCap, 0, 0));
            return Err(Error::from(LedgerError::LimitExceeded {
                code,
                key: String::new(),
                used_minor: used,
                max_minor: max,
            }));
        }
        let mut postings = Vec::new();
        if award > 0 {
            let points = Amount::from_minor(award)
                .map_err(|e| Error::new(ErrorCode::HoursInvalid, e.to_string()))?;
            postings.push(Posting {
                account: community.issuance_account,
                unit: Unit::Points,
                side: Side::Debit,
                amount: points,
            });
            postings.push(Posting {
                account: resident.account_id,
                unit: Unit::Points,
                side: Side::Credit,
                amount: points,
            });
        }
        if rule.records_hours {
            postings.push(Posting {
                account: community.issuance_account,
                unit: Unit::Hours,
                side: Side::Debit,
                amount: hours,
            });
            postings.push(Posting {
                account: resident.account_id,
                unit: Unit::Hours,
                side: Side::Credit,
                amount: hours,
            });
        }
        let mut metadata = BTreeMap::from([
            ("record".to_owned(), record.id.to_string()),
            ("rule".to_owned(), rule.rule_id.clone()),
            ("rule_version".to_owned(), rule.version.to_string()),
            ("activity".to_owned(), rule.category.clone()),
            ("service_date".to_owned(), format_date(record.service_date)),
            ("resident".to_owned(), resident.pseudonym.clone()),
        ]);
        // The lot's last valid day counts from the day the points are credited (today), not
        // the service day (ARCHITECTURE.md, "Lots"): a late approval still gives full validity.
        if let Some(last_day) = community
            .expiry
            .expires_on(self.today())
            .filter(|_| award > 0)
        {
            metadata.insert(LOT_EXPIRY_KEY.to_owned(), format_date(last_day));
        }
        if award < full {
            metadata.insert(CAPPED_KEY.to_owned(), format_minor(full - award));
        }
        let draft = EntryDraft {
            kind: EntryKind::Earn,
            postings,
            memo: format!("{} / {}", rule.name_zh, rule.name_en),
            metadata,
            reverses: None,
        };
        let limits = if award > 0 {
            cap_limits(&rule, resident, record.service_date, award)
        } else {
            Vec::new()
        };
        let conditions = Conditions {
            limits,
            guard: Some(Guard {
                record: record.id,
                expect: model::status::SUBMITTED.to_owned(),
                set: model::status::APPROVED.to_owned(),
            }),
            ..Default::default()
        };
        Ok((format!("service-record:{}", record.id), draft, conditions))
    }

    /// Approves a submitted record: one entry credits the points (and hours), in the same
    /// transaction as the record's state change and the caps. The approver must not be the
    /// submitter.
    pub async fn approve_record(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<(ServiceRecord, Option<PostedEntry>)> {
        let (record, resident) = self.record_for_decision(p, id).await?;
        let ledger = &p.ledger_id;
        if record.status == model::status::APPROVED {
            // A retry of an approval that went through: answer it again.
            let entry = match record.entry_id {
                Some(entry_id) => self.ledger.entry(ledger, entry_id).await?,
                None => None,
            };
            return Ok((record, entry));
        }
        if record.status != model::status::SUBMITTED {
            return Err(Error::new(
                ErrorCode::RecordNotInState,
                format!("the record is {}", record.status),
            ));
        }
        if record.roster_id.is_some() || record.correction_of.is_some() {
            // A roster's lines are approved together; a correction's new record by its resolution.
            return Err(Error::new(
                ErrorCode::RecordNotInState,
                "this record is decided with its roster or correction, not on its own",
            ));
        }
        let actor = Self::actor(p);
        if record.submitted_by == actor {
            return Err(Error::new(
                ErrorCode::ApproverIsSubmitter,
                "the approver must not be the submitter",
            ));
        }
        // The cap room is estimated before the lock; if another approval took it meanwhile
        // the planner refuses, and the award is worked out again (a few times at most).
        let mut attempts = 0;
        let entry = loop {
            attempts += 1;
            let (key, draft, conditions) = self.approval(ledger, &record, &resident, &[]).await?;
            let outcome = self
                .writers
                .get(ledger)
                .submit_with(key, actor.clone(), draft, conditions)
                .await?;
            match outcome {
                Outcome::Posted(e) | Outcome::Replayed(e) => break e,
                Outcome::Refused(LedgerError::LimitExceeded {
                    code: LimitCode::DailyCap | LimitCode::MonthlyCap,
                    ..
                }) if attempts < APPROVAL_ATTEMPTS => continue,
                Outcome::Refused(refusal) => {
                    // Approved meanwhile by a concurrent request (with another award, so
                    // another fingerprint): answer the approval that went through.
                    let now = self.store.record(ledger, id).await?;
                    if let Some(now) = now.filter(|r| r.status == model::status::APPROVED) {
                        let entry = match now.entry_id {
                            Some(entry_id) => self.ledger.entry(ledger, entry_id).await?,
                            None => None,
                        };
                        return Ok((now, entry));
                    }
                    return Err(refusal.into());
                }
            }
        };
        let record = self
            .store
            .record(ledger, id)
            .await?
            .ok_or_else(Error::not_found)?;
        Ok((record, Some(entry)))
    }

    /// What each approved record of `records` was credited (None: not approved), read from
    /// its earn entry; for records the caller was shown.
    pub async fn awards(
        &self,
        p: &Principal,
        records: &[ServiceRecord],
    ) -> Result<Vec<Option<Award>>> {
        let ledger = &p.ledger_id;
        let mut awards = Vec::with_capacity(records.len());
        let mut accounts: BTreeMap<Uuid, Uuid> = BTreeMap::new();
        for record in records {
            let Some(entry_id) = record.entry_id else {
                awards.push(None);
                continue;
            };
            let account = match accounts.get(&record.resident_id) {
                Some(a) => *a,
                None => {
                    let Some(resident) = self.store.resident(ledger, record.resident_id).await?
                    else {
                        awards.push(None);
                        continue;
                    };
                    accounts.insert(record.resident_id, resident.account_id);
                    resident.account_id
                }
            };
            awards.push(
                self.ledger
                    .entry(ledger, entry_id)
                    .await?
                    .map(|e| Award::of(&e, account)),
            );
        }
        Ok(awards)
    }

    pub async fn reject_record(
        &self,
        p: &Principal,
        id: Uuid,
        reason: &str,
    ) -> Result<ServiceRecord> {
        check_text("reason", reason, true)?;
        let (record, _) = self.record_for_decision(p, id).await?;
        let ledger = &p.ledger_id;
        if record.status == model::status::REJECTED && record.reason.as_deref() == Some(reason) {
            return Ok(record);
        }
        if record.roster_id.is_some() || record.correction_of.is_some() {
            return Err(Error::new(
                ErrorCode::RecordNotInState,
                "this record is decided with its roster or correction, not on its own",
            ));
        }
        if !self
            .store
            .reject_record(ledger, id, &Self::actor(p), reason, self.clock.now_micros())
            .await?
        {
            let now = self
                .store
                .record(ledger, id)
                .await?
                .ok_or_else(Error::not_found)?;
            return Err(Error::new(
                ErrorCode::RecordNotInState,
                format!("the record is {}", now.status),
            ));
        }
        self.store
            .record(ledger, id)
            .await?
            .ok_or_else(Error::not_found)
    }

    // ---- Rosters ----

    /// Records an event roster: every line is checked, and either all become submitted records
    /// or none does; the answer names every bad line and why.
    pub async fn create_roster(
        &self,
        p: &Principal,
        key: &str,
        new: NewRoster,
    ) -> Result<(Roster, Vec<ServiceRecord>, bool)> {
        if !matches!(p.role, Role::Admin | Role::Staff) {
            return Err(Error::forbidden());
        }
        check_roster_shape(&new)?;
        let ledger = &p.ledger_id;
        self.check_roster_event(p, &new).await?;
        let roster_id = derived_id("aixin.roster.v1", &[ledger, &Self::actor(p), key]);
        if let Some(existing) = self.store.roster(ledger, roster_id).await? {
            return self.replay_roster(ledger, existing, &new).await;
        }
        let now = self.clock.now_micros();
        let actor = Self::actor(p);
        let lines = self
            .roster_records(ledger, key, &new, roster_id, &actor, now)
            .await?;
        let roster = Roster {
            id: roster_id,
            community_id: new.community_id,
            rule_id: new.rule_id,
            service_date: new.service_date,
            title: new.title,
            status: model::status::SUBMITTED.to_owned(),
            submitted_by: actor,
            created_at_micros: now,
        };
        self.insert_roster(ledger, &roster, &lines).await?;
        let records = self.store.records_of_roster(ledger, roster_id).await?;
        Ok((roster, records, true))
    }

    /// The roster's event is one the caller may record: a community it manages, a day that has
    /// come, a rule of that community valid on that day.
    async fn check_roster_event(&self, p: &Principal, new: &NewRoster) -> Result<()> {
        let ledger = &p.ledger_id;
        if !self.manages(p, &new.community_id).await? {
            return Err(Error::new(
                ErrorCode::UnknownCommunity,
                format!("no community {}", new.community_id),
            ));
        }
        self.community(ledger, &new.community_id).await?;
        self.check_service_day(new.service_date)?;
        self.applicable_rule(ledger, &new.rule_id, &new.community_id, new.service_date)
            .await?;
        Ok(())
    }

    /// A retry of a roster already recorded under this key answers it again; the key with
    /// another event is refused.
    async fn replay_roster(
        &self,
        ledger: &str,
        existing: Roster,
        new: &NewRoster,
    ) -> Result<(Roster, Vec<ServiceRecord>, bool)> {
        let same = existing.community_id == new.community_id
            && existing.rule_id == new.rule_id
            && existing.service_date == new.service_date
            && existing.title == new.title;
        if !same {
            return Err(Error::key_reused());
        }
        let records = self.store.records_of_roster(ledger, existing.id).await?;
        Ok((existing, records, false))
    }

    /// Every roster line checked and made a submitted record, or the refusal naming every bad
    /// line: an unknown resident, bad hours, a resident listed twice.
    async fn roster_records(
        &self,
        ledger: &str,
        key: &str,
        new: &NewRoster,
        roster_id: Uuid,
        actor: &str,
        now: i64,
    ) -> Result<RosterRecords> {
        let mut problems = Vec::new();
        let mut lines = RosterRecords::default();
        let mut seen = HashSet::new();
        for (index, line) in new.lines.iter().enumerate() {
            let number = index + 1;
            let mut problem = |code: ErrorCode, detail: String| {
                problems.push(LineProblem {
                    line: number,
                    code: code.code(),
                    detail,
                })
            };
            let resident = self.roster_resident(ledger, &line.resident).await?;
            let Some(resident) = resident.filter(|r| r.community_id == new.community_id) else {
                problem(
                    ErrorCode::UnknownResident,
                    format!("no resident {:?} in {}", line.resident, new.community_id),
                );
                continue;
            };
            let hours = match parse_hours(line.hours.trim()) {
                Ok(h) => h,
                Err(e) => {
                    problem(e.code, e.detail);
                    continue;
                }
            };
            if !seen.insert(resident.id) {
                problem(
                    ErrorCode::DuplicateService,
                    "this resident is on the roster twice".to_owned(),
                );
                continue;
            }
            lines.line_numbers.push(number);
            lines.records.push(ServiceRecord {
                id: derived_id(
                    "aixin.roster-record.v1",
                    &[ledger, key, &resident.id.to_string()],
                ),
                resident_id: resident.id,
                rule_id: new.rule_id.clone(),
                service_date: new.service_date,
                hours_minor: hours,
                note: new.title.clone(),
                status: model::status::SUBMITTED.to_owned(),
                submitted_by: actor.to_owned(),
                submitted_at_micros: now,
                decided_by: None,
                decided_at_micros: None,
                reason: None,
                entry_id: None,
                roster_id: Some(roster_id),
                correction_of: None,
            });
        }
        if !problems.is_empty() {
            return Err(Error::roster_refused(problems));
        }
        Ok(lines)
    }

    /// The resident a roster line names, by id or by pseudonym.
    async fn roster_resident(&self, ledger: &str, named: &str) -> Result<Option<Resident>> {
        Ok(match Uuid::parse_str(named.trim()) {
            Ok(id) => self.store.resident(ledger, id).await?,
            Err(_) => {
                self.store
                    .resident_by_pseudonym(ledger, named.trim())
                    .await?
            }
        })
    }

    /// Stores the roster with its records, all or none; a record that duplicates service
    /// already recorded is refused by its roster line.
    async fn insert_roster(
        &self,
        ledger: &str,
        roster: &Roster,
        lines: &RosterRecords,
    ) -> Result<()> {
        match self
            .store
            .insert_records(ledger, Some(roster), &lines.records)
            .await?
        {
            RecordsInserted::Created | RecordsInserted::Existing => Ok(()),
            RecordsInserted::Duplicates(indexes) => {
                // Map record positions back to roster lines (bad lines were never records).
                let problems = indexes
                    .into_iter()
                    .filter_map(|i| lines.line_numbers.get(i))
                    .map(|line| LineProblem {
                        line: *line,
                        code: ErrorCode::DuplicateService.code(),
                        detail: "already recorded for this activity and day".to_owned(),
                    })
                    .collect();
                Err(Error::roster_refused(problems))
            }
        }
    }

    pub async fn roster(&self, p: &Principal, id: Uuid) -> Result<(Roster, Vec<ServiceRecord>)> {
        let roster = self
            .store
            .roster(&p.ledger_id, id)
            .await?
            .ok_or_else(Error::not_found)?;
        let visible = matches!(p.role, Role::Admin | Role::Auditor)
            || self.manages(p, &roster.community_id).await?;
        if !visible {
            return Err(Error::not_found());
        }
        let records = self.store.records_of_roster(&p.ledger_id, id).await?;
        Ok((roster, records))
    }

    /// Approves a roster: every line is credited, or none is (one all-or-nothing group).
    pub async fn approve_roster(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<(Roster, Vec<ServiceRecord>)> {
        if !matches!(p.role, Role::Admin | Role::Staff) {
            return Err(Error::forbidden());
        }
        let (roster, records) = self.roster(p, id).await?;
        let ledger = &p.ledger_id;
        if !self.manages(p, &roster.community_id).await? {
            return Err(Error::not_found());
        }
        let actor = Self::actor(p);
        if roster.status == model::status::APPROVED {
            return Ok((roster, records));
        }
        if roster.submitted_by == actor {
            return Err(Error::new(
                ErrorCode::ApproverIsSubmitter,
                "the approver must not be the submitter",
            ));
        }
        let mut attempts = 0;
        let outcomes = loop {
            attempts += 1;
            let mut items = Vec::new();
            let mut lines = Vec::new();
            for (index, record) in records.iter().enumerate() {
                let resident = self
                    .store
                    .resident(ledger, record.resident_id)
                    .await?
                    .ok_or_else(Error::not_found)?;
                match self.approval(ledger, record, &resident, &[]).await {
                    Ok((key, draft, conditions)) => {
                        items.push((key, actor.clone(), draft, conditions))
                    }
                    Err(e) => lines.push(LineProblem {
                        line: index + 1,
                        code: e.code.code(),
                        detail: e.detail,
                    }),
                }
            }
            if !lines.is_empty() {
                return Err(Error::roster_refused(lines));
            }
            let outcomes = self.writers.get(ledger).submit_group(items).await?;
            // Cap room taken meanwhile by another approval: work the awards out again.
            let raced = outcomes.iter().any(|o| {
                matches!(
                    o,
                    Outcome::Refused(LedgerError::LimitExceeded {
                        code: LimitCode::DailyCap | LimitCode::MonthlyCap,
                        ..
                    })
                )
            });
            if !raced || attempts >= APPROVAL_ATTEMPTS {
                break outcomes;
            }
        };
        let problems: Vec<LineProblem> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(index, outcome)| match outcome {
                Outcome::Refused(LedgerError::GroupRefused) => None,
                Outcome::Refused(refusal) => Some(LineProblem {
                    line: index + 1,
                    code: ErrorCode::from(refusal).code(),
                    detail: refusal.to_string(),
                }),
                _ => None,
            })
            .collect();
        if !problems.is_empty() {
            return Err(Error::roster_refused(problems));
        }
        if outcomes.iter().any(|o| matches!(o, Outcome::Refused(_))) {
            return Err(Error::new(
                ErrorCode::GroupRefused,
                "the roster was not credited",
            ));
        }
        self.store
            .set_roster_status(ledger, id, model::status::APPROVED)
            .await?;
        self.roster(p, id).await
    }

    // ---- Corrections ----

    /// A resident (for their own record) or staff asks for a record to be corrected.
    pub async fn request_correction(
        &self,
        p: &Principal,
        key: &str,
        record_id: Uuid,
        reason: &str,
    ) -> Result<(Correction, bool)> {
        check_text("reason", reason, true)?;
        // Before the lookup: the refusal of a role must not depend on whether the record exists.
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Resident) {
            return Err(Error::forbidden());
        }
        let (record, _) = self.record(p, record_id).await.map_err(|e| {
            if e.code == ErrorCode::NotFound {
                Error::new(ErrorCode::UnknownRecord, format!("no record {record_id}"))
            } else {
                e
            }
        })?;
        if record.status != model::status::APPROVED {
            return Err(Error::new(
                ErrorCode::RecordNotInState,
                "only an approved record can be corrected",
            ));
        }
        let correction = Correction {
            id: derived_id("aixin.correction.v1", &[&p.ledger_id, &Self::actor(p), key]),
            record_id,
            requested_by: Self::actor(p),
            reason: reason.to_owned(),
            status: "open".to_owned(),
            requested_at_micros: self.clock.now_micros(),
            resolved_by: None,
            resolved_at_micros: None,
            resolution: None,
            reversal_entry_id: None,
            new_record_id: None,
        };
        match self
            .store
            .insert_correction(&p.ledger_id, &correction)
            .await?
        {
            Inserted::Created(c) => Ok((c, true)),
            Inserted::Existing(c) if c.record_id == record_id && c.reason == reason => {
                Ok((c, false))
            }
            Inserted::Existing(_) => Err(Error::key_reused()),
        }
    }

    pub async fn correction(&self, p: &Principal, id: Uuid) -> Result<Correction> {
        let correction = self
            .store
            .correction(&p.ledger_id, id)
            .await?
            .ok_or_else(Error::not_found)?;
        self.record(p, correction.record_id).await?;
        Ok(correction)
    }

    /// Staff resolve a correction: reverse the record's entry (and, for a replacement, credit a
    /// new record linked to it, all or nothing), or decline. Nothing is edited in place.
    pub async fn resolve_correction(
        &self,
        p: &Principal,
        id: Uuid,
        resolution: Resolution,
    ) -> Result<Correction> {
        let (correction, record, resident) = self.open_correction(p, id).await?;
        let ledger = &p.ledger_id;
        let actor = Self::actor(p);
        let now = self.clock.now_micros();
        let mut resolved = Correction {
            status: "resolved".to_owned(),
            resolved_by: Some(actor.clone()),
            resolved_at_micros: Some(now),
            ..correction.clone()
        };
        let (note, replacement_hours) = match resolution {
            Resolution::Decline { note } => return self.decline(p, resolved, note).await,
            Resolution::Reverse { note } => (note, None),
            Resolution::Replace { hours_minor, note } => {
                (note, Some(check_replacement_hours(hours_minor)?))
            }
        };
        check_text("note", &note, false)?;
        check_applicable(&actor, &correction, &record)?;
        let applying = Applying {
            ledger,
            correction: &correction,
            record: &record,
            resident: &resident,
            actor: &actor,
            now,
        };
        let mut items = vec![self.reversal_item(&applying).await?];
        let mut new_record = None;
        if let Some(hours) = replacement_hours {
            let released = items[0].3.limits.clone();
            let (replacement, item) = self
                .replacement_item(&applying, &note, hours, &released)
                .await?;
            items.push(item);
            new_record = Some(replacement);
        }
        let reversal_entry = self.apply_correction(&applying, items, new_record).await?;
        resolved.resolution = Some(note);
        resolved.reversal_entry_id = Some(reversal_entry);
        resolved.new_record_id = new_record;
        self.store.resolve_correction(ledger, &resolved).await?;
        self.correction(p, id).await
    }

    /// The open correction `id` and the record it asks about, for staff who may decide it.
    async fn open_correction(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<(Correction, ServiceRecord, Resident)> {
        // Roles that never resolve corrections are refused before the lookup, so the answer
        // does not depend on whether the correction exists.
        if !matches!(p.role, Role::Admin | Role::Staff) {
            return Err(Error::forbidden());
        }
        let correction = self
            .store
            .correction(&p.ledger_id, id)
            .await?
            .ok_or_else(Error::not_found)?;
        let (record, resident) = self.record_for_decision(p, correction.record_id).await?;
        if correction.status != "open" {
            return Err(Error::new(
                ErrorCode::CorrectionNotOpen,
                format!("the correction is {}", correction.status),
            ));
        }
        Ok((correction, record, resident))
    }

    /// Declines a correction: the record stays as it is, the note says why.
    async fn decline(
        &self,
        p: &Principal,
        mut resolved: Correction,
        note: String,
    ) -> Result<Correction> {
        check_text("note", &note, true)?;
        resolved.status = "declined".to_owned();
        resolved.resolution = Some(note);
        self.store
            .resolve_correction(&p.ledger_id, &resolved)
            .await?;
        self.correction(p, resolved.id).await
    }

    /// The entry reversing the record's earn entry, guarded on the record still being approved
    /// (it becomes reversed), and releasing the cap room the original approval took.
    async fn reversal_item(&self, a: &Applying<'_>) -> Result<GroupItem> {
        let (ledger, correction, record) = (a.ledger, a.correction, a.record);
        let entry_id = record
            .entry_id
            .ok_or_else(|| Error::new(ErrorCode::RecordNotInState, "the record has no entry"))?;
        let original = self
            .ledger
            .entry(ledger, entry_id)
            .await?
            .ok_or_else(Error::not_found)?;
        let reversal = EntryDraft {
            kind: EntryKind::Reversal,
            postings: original
                .postings
                .iter()
                .map(|x| Posting {
                    side: x.side.opposite(),
                    ..x.clone()
                })
                .collect(),
            memo: format!("更正 / correction: {}", correction.reason),
            metadata: BTreeMap::from([
                ("correction".to_owned(), correction.id.to_string()),
                ("record".to_owned(), record.id.to_string()),
            ]),
            reverses: Some(entry_id),
        };
        let guard = Conditions {
            limits: self.released_caps(a, &original).await?,
            guard: Some(Guard {
                record: record.id,
                expect: model::status::APPROVED.to_owned(),
                set: model::status::REVERSED.to_owned(),
            }),
            ..Default::default()
        };
        Ok((
            format!("correction:{}:reverse", correction.id),
            a.actor.to_owned(),
            reversal,
            guard,
        ))
    }

    /// The cap room a reversal gives back: the same counters the original approval took, by
    /// the points it credited, under the rule version it was paid under.
    async fn released_caps(&self, a: &Applying<'_>, original: &PostedEntry) -> Result<Vec<Limit>> {
        let (record, resident) = (a.record, a.resident);
        let credited: i64 = original
            .postings
            .iter()
            .filter(|x| {
                x.account == resident.account_id && x.unit == Unit::Points && x.side == Side::Credit
            })
            .map(|x| x.amount.minor())
            .sum();
        let paid_version: Option<i64> = original
            .metadata
            .get("rule_version")
            .and_then(|v| v.parse().ok());
        let paid_rule = self
            .store
            .rule_versions(a.ledger, &record.rule_id)
            .await?
            .into_iter()
            .find(|r| Some(r.version) == paid_version);
        Ok(paid_rule
            .map(|rule| cap_limits(&rule, resident, record.service_date, -credited))
            .unwrap_or_default())
    }

    /// Records the replacement of a corrected record (submitted, linked to it) and the earn
    /// entry approving it; answers the new record's id and that entry.
    async fn replacement_item(
        &self,
        a: &Applying<'_>,
        note: &str,
        hours: i64,
        released: &[Limit],
    ) -> Result<(Uuid, GroupItem)> {
        let (ledger, record) = (a.ledger, a.record);
        let replacement = ServiceRecord {
            id: derived_id(
                "aixin.correction-record.v1",
                &[ledger, &a.correction.id.to_string()],
            ),
            hours_minor: hours,
            note: note.to_owned(),
            status: model::status::SUBMITTED.to_owned(),
            submitted_by: a.actor.to_owned(),
            submitted_at_micros: a.now,
            decided_by: None,
            decided_at_micros: None,
            reason: None,
            entry_id: None,
            roster_id: None,
            correction_of: Some(record.id),
            ..record.clone()
        };
        self.store
            .insert_records(ledger, None, std::slice::from_ref(&replacement))
            .await?;
        let (key, mut draft, conditions) = self
            .approval(ledger, &replacement, a.resident, released)
            .await?;
        draft
            .metadata
            .insert("correction".to_owned(), a.correction.id.to_string());
        // The reversal (planned first in the group) released the original's cap room; the
        // replacement takes room like any approval.
        Ok((replacement.id, (key, a.actor.to_owned(), draft, conditions)))
    }

    /// Posts the correction's entries as one all-or-nothing group and answers the reversal's
    /// entry. On a refusal the replacement record, never credited, is closed so it cannot be
    /// approved.
    async fn apply_correction(
        &self,
        a: &Applying<'_>,
        items: Vec<GroupItem>,
        replacement: Option<Uuid>,
    ) -> Result<Uuid> {
        let outcomes = self.writers.get(a.ledger).submit_group(items).await?;
        let mut reversal_entry = None;
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Outcome::Posted(e) | Outcome::Replayed(e) => {
                    if index == 0 {
                        reversal_entry = Some(e.id);
                    }
                }
                Outcome::Refused(LedgerError::GroupRefused) => {}
                Outcome::Refused(refusal) => {
                    if let Some(replacement) = replacement {
                        self.store
                            .reject_record(
                                a.ledger,
                                replacement,
                                a.actor,
                                "correction not applied",
                                a.now,
                            )
                            .await?;
                    }
                    return Err(refusal.into());
                }
            }
        }
        reversal_entry
            .ok_or_else(|| Error::new(ErrorCode::GroupRefused, "the correction was not applied"))
    }

    // ---- Expiry ----

    /// Posts expiry entries for every resident whose lots expired before `as_of` (their last
    /// valid day is earlier): resident → the community's expiry account. Idempotent: a rerun on
    /// the same state posts nothing new.
    pub async fn run_expiry(&self, p: &Principal, as_of: Date) -> Result<ExpiryReport> {
        if p.role != Role::Admin {
            return Err(Error::forbidden());
        }
        // A day after today would expire points that are still valid (a mistyped year would
        // expire everyone's): refused, and nothing is read or posted.
        let today = self.today();
        if as_of > today {
            return Err(Error::new(
                ErrorCode::AsOfInFuture,
                format!(
                    "expiry cannot run as of {}, after today ({})",
                    format_date(as_of),
                    format_date(today)
                ),
            )
            .with_fields(Fields {
                field: Some("as_of".to_owned()),
                today: Some(format_date(today)),
                ..Fields::default()
            }));
        }
        let (ledger, actor) = (p.ledger_id.as_str(), p.actor());
        let as_of_text = format_date(as_of);
        let expired = self.store.expired_points(ledger, &as_of_text).await?;
        let mut report = ExpiryReport {
            as_of,
            accounts: 0,
            points_minor: 0,
            refused: 0,
        };
        let mut total = 0i64;
        let writer = self.writers.get(ledger);
        for (account_id, minor) in expired {
            let Some(account) = self.ledger.account(ledger, account_id).await? else {
                continue;
            };
            let Some(community_id) = account.community_id.as_deref() else {
                continue;
            };
            let Ok((_, community)) = self.community(ledger, community_id).await else {
                continue;
            };
            let Ok(amount) = Amount::from_minor(minor) else {
                continue;
            };
            // The key names the ledger's head when the amount was computed: a retry with no
            // entry in between replays; any later run computes afresh. The planner checks
            // under the lock that expired lots still cover the amount.
            let head = self.ledger.head(ledger).await?.map_or(0, |h| h.seq);
            let draft = EntryDraft {
                kind: EntryKind::Expire,
                postings: vec![
                    Posting {
                        account: account_id,
                        unit: Unit::Points,
                        side: Side::Debit,
                        amount,
                    },
                    Posting {
                        account: community.expiry_account,
                        unit: Unit::Points,
                        side: Side::Credit,
                        amount,
                    },
                ],
                memo: format!("积分到期 / points expired before {as_of_text}"),
                metadata: BTreeMap::from([
                    ("as_of".to_owned(), as_of_text.clone()),
                    ("resident".to_owned(), account.label.clone()),
                ]),
                reverses: None,
            };
            match writer
                .submit(
                    format!("expire:{as_of_text}:{account_id}:{head}"),
                    actor.to_owned(),
                    draft,
                )
                .await?
            {
                Outcome::Posted(_) => {
                    report.accounts += 1;
                    total += minor;
                }
                Outcome::Replayed(_) => {}
                Outcome::Refused(refusal) => {
                    tracing::warn!(%account_id, %refusal, "expiry refused");
                    report.refused += 1;
                }
            }
        }
        report.points_minor = total;
        Ok(report)
    }
}

/// How many times an approval works out its award when a concurrent one took the cap room.
const APPROVAL_ATTEMPTS: usize = 5;

/// The earn entry's metadata key for the points a cap withheld from the award (decimal text).
pub const CAPPED_KEY: &str = "capped_points";

/// What an approved record was credited: the points (after the caps), the hours, and the
/// points the caps withheld. Read from the record's earn entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Award {
    pub points_minor: i64,
    pub hours_minor: i64,
    pub capped_minor: i64,
}

impl Award {
    /// The award an earn entry made to `account`.
    pub fn of(entry: &PostedEntry, account: Uuid) -> Award {
        let credited = |unit: Unit| -> i64 {
            entry
                .postings
                .iter()
                .filter(|x| x.account == account && x.unit == unit && x.side == Side::Credit)
                .map(|x| x.amount.minor())
                .sum()
        };
        Award {
            points_minor: credited(Unit::Points),
            hours_minor: credited(Unit::Hours),
            capped_minor: entry
                .metadata
                .get(CAPPED_KEY)
                .and_then(|v| Amount::parse(v).ok())
                .map_or(0, |a| a.minor()),
        }
    }
}

/// One entry of an all-or-nothing group: idempotency key, actor, draft and conditions.
type GroupItem = (String, String, EntryDraft, Conditions);

/// A correction being applied: what it corrects, and who applies it when.
struct Applying<'a> {
    ledger: &'a str,
    correction: &'a Correction,
    record: &'a ServiceRecord,
    resident: &'a Resident,
    actor: &'a str,
    now: i64,
}

/// The hours of a replacement record: above 0 and at most 24.
fn check_replacement_hours(hours_minor: i64) -> Result<i64> {
    if hours_minor <= 0 || hours_minor > HOURS_PER_RECORD_MAX_MINOR {
        return Err(Error::new(
            ErrorCode::HoursInvalid,
            "hours must be above 0 and at most 24",
        ));
    }
    Ok(hours_minor)
}

/// Whether `actor` may apply the correction to `record` now: staff other than who asked for it
/// and who recorded the service, to a record still approved.
fn check_applicable(actor: &str, correction: &Correction, record: &ServiceRecord) -> Result<()> {
    if actor == correction.requested_by || actor == record.submitted_by {
        return Err(Error::new(
            ErrorCode::ApproverIsSubmitter,
            "a correction is applied by staff other than who asked for it and who recorded the service",
        ));
    }
    // `reversed` too: a retry after the entries posted but before the correction was closed
    // replays them (same keys) and finishes; a record reversed otherwise is refused by the
    // reversal's guard.
    if record.status != model::status::APPROVED && record.status != model::status::REVERSED {
        return Err(Error::new(
            ErrorCode::RecordNotInState,
            format!("the record is {}", record.status),
        ));
    }
    Ok(())
}

/// The cap counters an award of `add_minor` points under `rule` touches (negative: a release).
fn cap_limits(rule: &Rule, resident: &Resident, service_date: Date, add_minor: i64) -> Vec<Limit> {
    let day = format_date(service_date);
    let mut limits = Vec::new();
    if let Some(cap) = rule.cap_day {
        limits.push(Limit {
            key: format!("cap:day:{}:{}:{day}", resident.id, rule.rule_id),
            add_minor,
            max_minor: cap.minor(),
            code: LimitCode::DailyCap,
        });
    }
    if let Some(cap) = rule.cap_month {
        limits.push(Limit {
            key: format!("cap:month:{}:{}:{}", resident.id, rule.rule_id, &day[..7]),
            add_minor,
            max_minor: cap.minor(),
            code: LimitCode::MonthlyCap,
        });
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_keep_numbers_and_write_the_apis_text() {
        // Proves a view holds typed values (hundredths, a kind, a moment, a day) that an edge can
        // show its own way, while the API still answers the decimal and time text it always did.
        let item = HistoryItem {
            seq: 7,
            entry_id: Uuid::nil(),
            kind: EntryKind::Redeem,
            posted_at_micros: 1_764_000_000_000_000,
            points_minor: -4000,
            hours_minor: 250,
            memo: String::new(),
            activity: None,
            rule: None,
            rule_version: None,
            record: None,
            service_date: None,
            shop: None,
            reverses: None,
        };
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json["kind"], "redeem");
        assert_eq!(json["points"], "-40.00");
        assert_eq!(json["hours"], "+2.50");
        assert_eq!(json["posted_at"], "2025-11-24T16:00:00Z");
        let report = ExpiryReport {
            as_of: time::macros::date!(2026 - 11 - 30),
            accounts: 2,
            points_minor: 0,
            refused: 0,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["as_of"], "2026-11-30");
        assert_eq!(json["points"], "0.00");
    }
}
