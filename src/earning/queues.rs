//! Staff's work lists: service records by state (the approval queue), corrections by state,
//! rosters by state and the rules with their versions — paged, bounded and scoped to the
//! communities the caller manages — and the helpers the record pages need: a resident by card
//! number, a batch of approvals, the record behind an entry, and a roster checked without
//! recording it (the upload preview).

use std::collections::{BTreeMap, HashSet};

use time::Date;
use uuid::Uuid;

use super::service::{parse_hours, require_staff, Earning, NewRoster};
use crate::auth::{Principal, Role};
use crate::error::{Error, ErrorCode, Fields, LineProblem};
use crate::ledger::PostedEntry;
use crate::model::{self, Correction, Resident, Roster, Rule, ServiceRecord, ROSTER_LINES_MAX};
use crate::store::earning::StateFilter;
use crate::store::redeem::RedeemStore;

type Result<T> = std::result::Result<T, Error>;

/// Longest page of a list by state.
pub const LIST_LIMIT_MAX: usize = 200;
/// Page size when none is asked for.
pub const LIST_LIMIT_DEFAULT: usize = 50;
/// Most records one batch approval takes.
pub const BATCH_APPROVE_MAX: usize = 100;

/// States a service record can be listed in.
pub const RECORD_STATES: &[&str] = &[
    model::status::SUBMITTED,
    model::status::APPROVED,
    model::status::REJECTED,
    model::status::REVERSED,
];
/// States a correction can be listed in.
pub const CORRECTION_STATES: &[&str] = &["open", "resolved", "declined"];
/// States a roster can be listed in.
pub const ROSTER_STATES: &[&str] = &[model::status::SUBMITTED, model::status::APPROVED];

/// What to list: a state, optionally one community, a page size and where the last page ended.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub state: String,
    pub community: Option<String>,
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Records only: leave out roster lines and correction replacements (decided elsewhere).
    pub standalone: bool,
}

/// One page of a list and the cursor of the next, if there is more.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A submitted record and the resident it is for.
#[derive(Clone, Debug)]
pub struct QueuedRecord {
    pub record: ServiceRecord,
    pub resident: Resident,
}

/// The answer of a batch approval: what was approved, and what was refused and why.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub approved: Vec<ServiceRecord>,
    pub refused: Vec<(Uuid, Error)>,
}

/// One roster line checked for the preview: the resident it names (if found) and the hours.
#[derive(Clone, Debug)]
pub struct CheckedLine {
    pub resident: Option<Resident>,
    pub hours_minor: Option<i64>,
}

fn query_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidQuery, detail)
}

fn cursor_text(at: i64, id: Uuid) -> String {
    format!("{at}.{id}")
}

fn parse_cursor(text: Option<&str>) -> Result<Option<(i64, Uuid)>> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let bad = || query_error("after is not a cursor this API gave");
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    let at = at.parse::<i64>().map_err(|_| bad())?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(Some((at, id)))
}

fn check_limit(limit: Option<usize>) -> Result<usize> {
    let limit = limit.unwrap_or(LIST_LIMIT_DEFAULT);
    if (1..=LIST_LIMIT_MAX).contains(&limit) {
        Ok(limit)
    } else {
        Err(query_error(format!("limit must be 1 to {LIST_LIMIT_MAX}")))
    }
}

fn check_state(state: &str, states: &[&str]) -> Result<()> {
    if states.contains(&state) {
        Ok(())
    } else {
        Err(query_error(format!(
            "state is one of {}",
            states.join(", ")
        )))
    }
}

/// Splits a fetched `limit + 1` rows into the page and the cursor of the next.
fn paged<T>(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> (i64, Uuid)) -> Page<T> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|last| {
            let (at, id) = key(last);
            cursor_text(at, id)
        })
    } else {
        None
    };
    Page { items: rows, next }
}

impl Earning {
    /// The unit a list is scoped to: the community asked for (if the caller manages it), else
    /// the staff member's own unit; `None` (everything) for an administrator asking for no
    /// community. Only staff and administrators list.
    async fn list_scope(&self, p: &Principal, community: Option<&str>) -> Result<Option<String>> {
        require_staff(p)?;
        if let Some(community) = community.filter(|c| !c.is_empty()) {
            if !self.manages(p, community).await? {
                return Err(Error::new(
                    ErrorCode::Forbidden,
                    format!("you do not manage {community}"),
                ));
            }
            return Ok(Some(community.to_owned()));
        }
        match p.role {
            Role::Admin => Ok(None),
            _ => p.scope.clone().map(Some).ok_or_else(Error::forbidden),
        }
    }

    async fn filter(
        &self,
        p: &Principal,
        q: &ListQuery,
        states: &[&str],
    ) -> Result<(StateFilter, usize)> {
        let limit = check_limit(q.limit)?;
        check_state(&q.state, states)?;
        let after = parse_cursor(q.after.as_deref())?;
        let under = self.list_scope(p, q.community.as_deref()).await?;
        Ok((
            StateFilter {
                state: q.state.clone(),
                under,
                after,
                standalone: q.standalone,
                limit: limit as i64 + 1,
            },
            limit,
        ))
    }

    /// Service records in a state, oldest submitted first, each with its resident: the
    /// approval queue is `state = submitted`.
    pub async fn records_in_state(
        &self,
        p: &Principal,
        q: &ListQuery,
    ) -> Result<Page<QueuedRecord>> {
        let (filter, limit) = self.filter(p, q, RECORD_STATES).await?;
        let rows = self.store.records_in_state(&p.ledger_id, &filter).await?;
        let page = paged(rows, limit, |r| (r.submitted_at_micros, r.id));
        let mut items = Vec::with_capacity(page.items.len());
        for record in page.items {
            let resident = self
                .store
                .resident(&p.ledger_id, record.resident_id)
                .await?
                .ok_or_else(|| Error::new(ErrorCode::Internal, "a record's resident is missing"))?;
            items.push(QueuedRecord { record, resident });
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Corrections in a state, oldest requested first.
    pub async fn corrections_in_state(
        &self,
        p: &Principal,
        q: &ListQuery,
    ) -> Result<Page<Correction>> {
        let (filter, limit) = self.filter(p, q, CORRECTION_STATES).await?;
        let rows = self
            .store
            .corrections_in_state(&p.ledger_id, &filter)
            .await?;
        Ok(paged(rows, limit, |c| (c.requested_at_micros, c.id)))
    }

    /// Rosters in a state, oldest first.
    pub async fn rosters_in_state(&self, p: &Principal, q: &ListQuery) -> Result<Page<Roster>> {
        let (filter, limit) = self.filter(p, q, ROSTER_STATES).await?;
        let rows = self.store.rosters_in_state(&p.ledger_id, &filter).await?;
        Ok(paged(rows, limit, |r| (r.created_at_micros, r.id)))
    }

    /// The rules of the communities the caller manages (or `community`), each with every
    /// version oldest first, by rule id; `after` is the last rule id of the previous page.
    pub async fn rules_list(
        &self,
        p: &Principal,
        community: Option<&str>,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Vec<Rule>>> {
        let limit = check_limit(limit)?;
        let under = self.list_scope(p, community).await?;
        let mut grouped: BTreeMap<Vec<u8>, Vec<Rule>> = BTreeMap::new();
        for rule in self.store.all_rules(&p.ledger_id).await? {
            if after.is_some_and(|a| rule.rule_id.as_bytes() <= a.as_bytes()) {
                continue;
            }
            grouped
                .entry(rule.rule_id.as_bytes().to_vec())
                .or_default()
                .push(rule);
        }
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        let mut items = Vec::new();
        let mut more = false;
        for (_, versions) in grouped {
            let community_id = versions[0].community_id.clone();
            let inside = match seen.get(&community_id) {
                Some(inside) => *inside,
                None => {
                    let inside = match &under {
                        None => true,
                        Some(root) => self
                            .store
                            .ancestry(&p.ledger_id, &community_id)
                            .await?
                            .iter()
                            .any(|u| &u.id == root),
                    };
                    seen.insert(community_id, inside);
                    inside
                }
            };
            if !inside {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(versions);
        }
        let next = if more {
            items.last().map(|v: &Vec<Rule>| v[0].rule_id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The resident whose card (credential) has this number, for staff recording service: the
    /// same read the till's card path uses. A number no card has, a card of a resident the
    /// caller does not manage, and malformed text all answer `unknown_resident`; a card no
    /// longer active answers `credential_revoked`.
    pub async fn resident_by_card(
        &self,
        p: &Principal,
        cards: &dyn RedeemStore,
        number: &str,
    ) -> Result<Resident> {
        require_staff(p)?;
        let unknown = || {
            Error::new(ErrorCode::UnknownResident, "no card with this number").with_fields(Fields {
                field: Some("card".to_owned()),
                ..Fields::default()
            })
        };
        let number = crate::ledger::code::parse_number(number).ok_or_else(unknown)?;
        let holder = cards
            .credential_holder(&p.ledger_id, number)
            .await?
            .ok_or_else(unknown)?;
        let resident = self
            .resident(p, holder.credential.resident_id)
            .await
            .map_err(|e| {
                if e.code == ErrorCode::NotFound {
                    unknown()
                } else {
                    e
                }
            })?;
        if !self.manages(p, &resident.community_id).await? {
            return Err(unknown());
        }
        if !holder.credential.active {
            return Err(Error::bare(ErrorCode::CredentialRevoked));
        }
        Ok(resident)
    }

    /// Approves each record in turn (the single approval, its rules and checks); answers what
    /// was approved and, for each refused record, why. At most [`BATCH_APPROVE_MAX`] records.
    pub async fn approve_records(&self, p: &Principal, ids: &[Uuid]) -> Result<BatchOutcome> {
        require_staff(p)?;
        if ids.is_empty() || ids.len() > BATCH_APPROVE_MAX {
            return Err(Error::new(
                ErrorCode::InvalidBody,
                format!("a batch approves 1 to {BATCH_APPROVE_MAX} records"),
            ));
        }
        let mut outcome = BatchOutcome::default();
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(*id) {
                continue;
            }
            match self.approve_record(p, *id).await {
                Ok((record, _)) => outcome.approved.push(record),
                Err(e) if matches!(e.code, ErrorCode::Overloaded | ErrorCode::Unavailable) => {
                    return Err(e)
                }
                Err(e) => outcome.refused.push((*id, e)),
            }
        }
        Ok(outcome)
    }

    /// The service record an earn entry credited (its metadata names it), if the caller may see
    /// it, with the entry: what a correction is asked about.
    pub async fn record_of_entry(
        &self,
        p: &Principal,
        entry_id: Uuid,
    ) -> Result<(ServiceRecord, Resident, PostedEntry)> {
        require_staff(p)?;
        let unknown = || Error::new(ErrorCode::UnknownRecord, "no service record for this entry");
        let entry = self
            .ledger
            .entry(&p.ledger_id, entry_id)
            .await?
            .ok_or_else(unknown)?;
        let record_id = entry
            .metadata
            .get("record")
            .and_then(|r| Uuid::parse_str(r).ok())
            .ok_or_else(unknown)?;
        let (record, resident) = self.record(p, record_id).await.map_err(|e| {
            if e.code == ErrorCode::NotFound {
                unknown()
            } else {
                e
            }
        })?;
        if record.entry_id != Some(entry_id) {
            return Err(unknown());
        }
        Ok((record, resident, entry))
    }

    /// The entry that credited a record, if any and the caller may see the record.
    pub async fn entry_of_record(
        &self,
        p: &Principal,
        record: &ServiceRecord,
    ) -> Result<Option<PostedEntry>> {
        require_staff(p)?;
        self.record(p, record.id).await?;
        match record.entry_id {
            Some(id) => Ok(self.ledger.entry(&p.ledger_id, id).await?),
            None => Ok(None),
        }
    }

    /// A roster checked as [`Earning::create_roster`] would check it, recording nothing: each
    /// line's resident and hours, and the problems of every bad line. The preview of an upload.
    pub async fn check_roster(
        &self,
        p: &Principal,
        new: &NewRoster,
    ) -> Result<(Vec<CheckedLine>, Vec<LineProblem>)> {
        require_staff(p)?;
        if new.lines.is_empty() || new.lines.len() > ROSTER_LINES_MAX {
            return Err(Error::new(
                ErrorCode::RosterInvalid,
                format!("a roster has 1 to {ROSTER_LINES_MAX} lines"),
            ));
        }
        if !self.manages(p, &new.community_id).await? {
            return Err(Error::new(
                ErrorCode::UnknownCommunity,
                format!("no community {}", new.community_id),
            ));
        }
        let ledger = &p.ledger_id;
        // The event as the roster service checks it: a day that has come, a rule of the
        // community that applies on it.
        if new.service_date > crate::calendar::day_of(self.clock.now_micros()) {
            return Err(Error::new(
                ErrorCode::DateInvalid,
                "service cannot be recorded for a future day",
            ));
        }
        let versions = self.store.rule_versions(ledger, &new.rule_id).await?;
        if versions
            .first()
            .is_none_or(|v| v.community_id != new.community_id)
        {
            return Err(Error::new(
                ErrorCode::UnknownRule,
                format!("no rule {} in {}", new.rule_id, new.community_id),
            ));
        }
        if !versions.iter().any(|v| v.valid_on(new.service_date)) {
            return Err(Error::new(
                ErrorCode::RuleNotValid,
                "the rule does not apply on that day",
            ));
        }
        let mut lines = Vec::with_capacity(new.lines.len());
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for (index, line) in new.lines.iter().enumerate() {
            let number = index + 1;
            let named = line.resident.trim();
            let resident = match Uuid::parse_str(named) {
                Ok(id) => self.store.resident(ledger, id).await?,
                Err(_) => self.store.resident_by_pseudonym(ledger, named).await?,
            }
            .filter(|r| r.community_id == new.community_id);
            let hours = parse_hours(line.hours.trim()).ok();
            match &resident {
                None => problems.push(LineProblem {
                    line: number,
                    code: ErrorCode::UnknownResident.code(),
                    detail: format!("no resident {named:?} in {}", new.community_id),
                }),
                Some(r) if !seen.insert(r.id) => problems.push(LineProblem {
                    line: number,
                    code: ErrorCode::DuplicateService.code(),
                    detail: "this resident is on the roster twice".to_owned(),
                }),
                Some(_) => {}
            }
            if hours.is_none() {
                problems.push(LineProblem {
                    line: number,
                    code: ErrorCode::HoursInvalid.code(),
                    detail: format!("hours {:?} are not above 0 and at most 24", line.hours),
                });
            }
            lines.push(CheckedLine {
                resident,
                hours_minor: hours,
            });
        }
        Ok((lines, problems))
    }

    /// The communities the caller manages (every community for an administrator), by id: at
    /// most [`LIST_LIMIT_MAX`].
    pub async fn communities_managed(&self, p: &Principal) -> Result<Vec<crate::model::OrgUnit>> {
        let under = self.list_scope(p, None).await?;
        Ok(self
            .store
            .communities_under(&p.ledger_id, under.as_deref(), LIST_LIMIT_MAX as i64)
            .await?)
    }

    /// The rules of a community that apply to service on `day` (the newest version of each).
    pub async fn rules_on(&self, p: &Principal, day: Date) -> Result<Vec<Rule>> {
        let page = self.rules_list(p, None, None, Some(LIST_LIMIT_MAX)).await?;
        Ok(page
            .items
            .into_iter()
            .filter_map(|versions| versions.into_iter().rev().find(|v| v.valid_on(day)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_the_api_did_not_give() {
        let id = Uuid::from_u128(7);
        let text = cursor_text(-5, id);
        assert_eq!(parse_cursor(Some(&text)).unwrap(), Some((-5, id)));
        assert_eq!(parse_cursor(None).unwrap(), None);
        for bad in ["x", "1", "1.x", "a.00000000-0000-0000-0000-000000000007"] {
            assert_eq!(
                parse_cursor(Some(bad)).unwrap_err().code,
                ErrorCode::InvalidQuery
            );
        }
        assert_eq!(
            check_limit(Some(0)).unwrap_err().code,
            ErrorCode::InvalidQuery
        );
        assert_eq!(
            check_limit(Some(201)).unwrap_err().code,
            ErrorCode::InvalidQuery
        );
        assert_eq!(check_limit(None).unwrap(), LIST_LIMIT_DEFAULT);
    }
}
