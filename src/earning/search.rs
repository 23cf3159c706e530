//! Finding residents and the staff's work table: the list and search behind `GET /v1/residents`
//! and the community staff's pages, paged, bounded and scoped to the caller like every other
//! read (staff see the residents of the communities they manage, admins and auditors all;
//! auditors match and see pseudonyms and card numbers only, never names or phones).

use serde::Serialize;
use time::Date;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Earning;
use crate::auth::{Principal, Role};
use crate::calendar::{day_of, format_date};
use crate::error::{Error, ErrorCode};
use crate::ledger::amount::text as amount_text;
use crate::model::{OrgUnit, Resident};
use crate::store::earning::{CardState, ExpiringSummary, FoundResident, ResidentQuery};

type Result<T> = std::result::Result<T, Error>;

/// Page sizes of a resident list: 1 to this many, [`RESIDENTS_PAGE_DEFAULT`] unless asked.
pub const RESIDENTS_PAGE_MAX: i64 = 200;
pub const RESIDENTS_PAGE_DEFAULT: i64 = 50;
/// The longest search text, in characters.
pub const SEARCH_TEXT_MAX: usize = 64;
/// The most communities a caller's pages list (a register form's choices).
pub const COMMUNITIES_MAX: i64 = 500;
/// Residents the work table names with points expiring soonest.
pub const EXPIRING_LIST_MAX: i64 = 50;
/// Credential numbers have at most this many digits.
const CARD_DIGITS_MAX: usize = 9;

/// A resident search as asked: one text matched against the name (a substring), the phone (its
/// digits, exactly), the card number (exactly) and the pseudonym (exactly); a community; a
/// page.
#[derive(Clone, Debug, Default)]
pub struct ResidentSearch {
    pub q: Option<String>,
    pub community: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One page of residents, in registration order, and the cursor of the next page.
#[derive(Clone, Debug)]
pub struct ResidentPage {
    pub items: Vec<FoundResident>,
    pub next_cursor: Option<String>,
}

/// The staff's work table: what waits for them in the communities they manage.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkTable {
    /// Service records waiting for approval.
    pub records_waiting: i64,
    /// Correction requests not yet resolved.
    pub corrections_open: i64,
    pub expiring: ExpiringThisMonth,
}

/// Points whose last valid day falls between today and the end of this month.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ExpiringThisMonth {
    /// Today (UTC+8), `YYYY-MM-DD`.
    pub from: String,
    /// The last day of this month.
    pub until: String,
    /// Residents with such points.
    pub residents: i64,
    #[serde(rename = "points", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "120.00")]
    pub points_minor: i64,
    /// The residents whose points expire soonest (at most 50).
    pub soonest: Vec<ExpiringResidentView>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ExpiringResidentView {
    pub resident_id: Uuid,
    /// Absent for auditors (they see residents by pseudonym only).
    pub name: Option<String>,
    pub community_id: String,
    #[serde(rename = "points", serialize_with = "amount_text::minor")]
    #[schema(value_type = String, example = "20.00")]
    pub points_minor: i64,
    /// The soonest last valid day, `YYYY-MM-DD`.
    pub last_valid_day: String,
}

/// The keys a search text is matched against.
fn keys_of(text: &str, personal: bool) -> ResidentQuery {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let phone_like = !digits.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
    // A card number as printed ("012 345 678") or typed (a scanner gun reading its QR code).
    let card_like = !digits.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == ' ');
    ResidentQuery {
        name: personal.then(|| text.to_owned()),
        phone_digits: (personal && phone_like).then(|| digits.clone()),
        card_number: (card_like && digits.len() <= CARD_DIGITS_MAX)
            .then(|| digits.parse().ok())
            .flatten(),
        pseudonym: Some(text.to_owned()),
        ..ResidentQuery::default()
    }
}

/// Full-width digits (U+FF10–FF19, what some IME and scanner setups type) as ASCII digits.
fn ascii_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF10}'..='\u{FF19}' => char::from(b'0' + (c as u32 - 0xFF10) as u8),
            c => c,
        })
        .collect()
}

/// The cursor of the page after `r`: its registration time and id.
fn cursor_of(r: &Resident) -> String {
    format!("{}.{}", r.created_at_micros, r.id)
}

fn parse_cursor(text: &str) -> Result<(i64, Uuid)> {
    text.split_once('.')
        .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, Uuid::parse_str(id).ok()?)))
        .ok_or_else(|| Error::new(ErrorCode::InvalidQuery, "cursor is not one this API gave"))
}

fn bad_query(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidQuery, detail)
}

/// The last day of `day`'s month.
fn end_of_month(day: Date) -> Date {
    let last = day.month().length(day.year());
    Date::from_calendar_date(day.year(), day.month(), last).unwrap_or(day)
}

impl Earning {
    /// The organisation unit below which `p` reads residents: `Ok(None)` for the whole ledger
    /// (admin, auditor), the staff's scope, or refused (anyone else; staff without a scope).
    fn resident_scope(&self, p: &Principal) -> Result<Option<String>> {
        match p.role {
            Role::Admin | Role::Auditor => Ok(None),
            Role::Staff => p.scope.clone().map(Some).ok_or_else(Error::forbidden),
            _ => Err(Error::forbidden()),
        }
    }

    /// Residents visible to `p` matching the search, one page in registration order.
    pub async fn search_residents(
        &self,
        p: &Principal,
        search: ResidentSearch,
    ) -> Result<ResidentPage> {
        let scope = self.resident_scope(p)?;
        let limit = search.limit.unwrap_or(RESIDENTS_PAGE_DEFAULT);
        if !(1..=RESIDENTS_PAGE_MAX).contains(&limit) {
            return Err(bad_query(format!(
                "limit must be 1 to {RESIDENTS_PAGE_MAX}"
            )));
        }
        let text = ascii_digits(search.q.as_deref().unwrap_or(""));
        let text = text.trim();
        if text.chars().count() > SEARCH_TEXT_MAX {
            return Err(bad_query(format!(
                "q is longer than {SEARCH_TEXT_MAX} characters"
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(bad_query("q contains a control character"));
        }
        let community = match search.community.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) if c.len() <= 64 => Some(c.to_owned()),
            Some(_) => return Err(bad_query("community is longer than 64 bytes")),
        };
        let after = search.cursor.as_deref().map(parse_cursor).transpose()?;
        let personal = p.role != Role::Auditor;
        let mut query = if text.is_empty() {
            ResidentQuery::default()
        } else {
            keys_of(text, personal)
        };
        query.scope = scope;
        query.community = community;
        query.after = after;
        query.limit = limit + 1;
        let mut items = self.store.search_residents(&p.ledger_id, &query).await?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(|f| cursor_of(&f.resident))
        } else {
            None
        };
        Ok(ResidentPage { items, next_cursor })
    }

    /// Residents of `community` whose phone has the same digits as `phone`: what registering
    /// another resident with that phone warns about. Staff of the community and admins. The
    /// resident that registering with idempotency key `key` makes (a retry of the same form) is
    /// not among them.
    pub async fn residents_with_phone(
        &self,
        p: &Principal,
        community: &str,
        phone: &str,
        key: &str,
    ) -> Result<Vec<Resident>> {
        let own = crate::model::derived_id("aixin.resident.v1", &[&p.ledger_id, &p.actor(), key]);
        super::service::require_staff(p)?;
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() || !self.manages(p, community).await? {
            return Ok(Vec::new());
        }
        let query = ResidentQuery {
            scope: self.resident_scope(p)?,
            community: Some(community.to_owned()),
            phone_digits: Some(digits),
            limit: 20,
            ..ResidentQuery::default()
        };
        let found = self.store.search_residents(&p.ledger_id, &query).await?;
        Ok(found
            .into_iter()
            .map(|f| f.resident)
            .filter(|r| r.id != own)
            .collect())
    }

    /// The resident's credential as staff see it (number, generation, active, failures), if
    /// one was issued; for whoever may see the resident.
    pub async fn card_state(&self, p: &Principal, resident: Uuid) -> Result<Option<CardState>> {
        let r = self.resident(p, resident).await?;
        Ok(self.store.card_of(&p.ledger_id, r.id).await?)
    }

    /// The communities `p` manages (staff: at or below their unit; admin: all), by id, at most
    /// [`COMMUNITIES_MAX`].
    pub async fn managed_communities(&self, p: &Principal) -> Result<Vec<OrgUnit>> {
        super::service::require_staff(p)?;
        let scope = self.resident_scope(p)?;
        let mut units = self
            .store
            .communities_under(&p.ledger_id, scope.as_deref(), COMMUNITIES_MAX)
            .await?;
        units.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
        Ok(units)
    }

    /// The work table: records waiting for approval, open corrections and the points expiring
    /// this month, in the communities `p` reads.
    pub async fn work_table(&self, p: &Principal) -> Result<WorkTable> {
        let scope = self.resident_scope(p)?;
        let ledger = &p.ledger_id;
        let (records_waiting, corrections_open) =
            self.store.waiting_counts(ledger, scope.as_deref()).await?;
        let today = day_of(self.clock.now_micros());
        let (from, until) = (format_date(today), format_date(end_of_month(today)));
        let ExpiringSummary {
            residents,
            points_minor,
            soonest,
        } = self
            .store
            .expiring_between(ledger, scope.as_deref(), &from, &until, EXPIRING_LIST_MAX)
            .await?;
        let personal = p.role != Role::Auditor;
        Ok(WorkTable {
            records_waiting,
            corrections_open,
            expiring: ExpiringThisMonth {
                from,
                until,
                residents,
                points_minor,
                soonest: soonest
                    .into_iter()
                    .map(|e| ExpiringResidentView {
                        resident_id: e.resident_id,
                        name: personal.then_some(e.name),
                        community_id: e.community_id,
                        points_minor: e.points_minor,
                        last_valid_day: e.first_day,
                    })
                    .collect(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_text_names_its_keys() {
        let q = keys_of("138-0013 8000", true);
        assert_eq!(q.phone_digits.as_deref(), Some("13800138000"));
        assert_eq!(q.card_number, None, "not digits only");
        assert_eq!(q.name.as_deref(), Some("138-0013 8000"));
        let q = keys_of("012 345 678", true);
        assert_eq!(q.card_number, Some(12_345_678), "as printed on the card");
        assert_eq!(ascii_digits("１３８ ０"), "138 0");
        let q = keys_of("000123456", true);
        assert_eq!(q.card_number, Some(123_456));
        assert_eq!(q.phone_digits.as_deref(), Some("000123456"));
        let q = keys_of("王", true);
        assert_eq!((q.phone_digits, q.card_number), (None, None));
        let q = keys_of("13800138000", false);
        assert_eq!(
            (q.name, q.phone_digits),
            (None, None),
            "auditors match no name or phone"
        );
        assert_eq!(q.card_number, None, "eleven digits name no card");
    }

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let id = Uuid::from_u128(7);
        assert_eq!(parse_cursor(&format!("12.{id}")).unwrap(), (12, id));
        for bad in ["", "12", "x.y", "12.", &format!(".{id}")] {
            assert_eq!(parse_cursor(bad).unwrap_err().code, ErrorCode::InvalidQuery);
        }
    }

    #[test]
    fn a_month_ends_on_its_last_day() {
        let d = |y, m, d| Date::from_calendar_date(y, m, d).unwrap();
        assert_eq!(
            end_of_month(d(2026, time::Month::February, 3)),
            d(2026, time::Month::February, 28)
        );
        assert_eq!(
            end_of_month(d(2028, time::Month::February, 29)),
            d(2028, time::Month::February, 29)
        );
        assert_eq!(
            end_of_month(d(2026, time::Month::December, 31)),
            d(2026, time::Month::December, 31)
        );
    }
}
