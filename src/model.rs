//! Earning's values and rules, without IO: organisation units and expiry policies, residents,
//! versioned earning rules and what they award, service records and corrections.

use rust_decimal::{Decimal, RoundingStrategy};
use time::{Date, Month};
use uuid::Uuid;

use crate::calendar::add_months;
use crate::ledger::{Amount, AmountError};

/// Longest name, note or reason, in bytes.
pub const TEXT_MAX_BYTES: usize = 256;
/// Longest id of an organisation unit or rule: ASCII letters, digits, '-', '_'.
pub const CODE_MAX_BYTES: usize = 64;
/// Most hours one service record may claim.
pub const HOURS_PER_RECORD_MAX_MINOR: i64 = 24 * 100;
/// Most lines one roster may hold (bounded by the writer's group size).
pub const ROSTER_LINES_MAX: usize = crate::ledger::GROUP_MAX;
/// Days ahead the balance answer reports expiring points for.
pub const EXPIRING_WINDOW_DAYS: i64 = 30;

/// How a community's points expire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryPolicy {
    /// Points never expire.
    Never,
    /// Points expire `months` months after the day they were earned (valid through that day).
    Rolling { months: u32 },
    /// Points expire at the end of the year after the year they were earned.
    EndOfNextYear,
}

impl ExpiryPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryPolicy::Never => "never",
            ExpiryPolicy::Rolling { .. } => "rolling",
            ExpiryPolicy::EndOfNextYear => "end_of_next_year",
        }
    }

    pub fn parse(name: &str, months: Option<u32>) -> Option<ExpiryPolicy> {
        match (name, months) {
            ("never", None) => Some(ExpiryPolicy::Never),
            ("rolling", Some(m)) if (1..=120).contains(&m) => {
                Some(ExpiryPolicy::Rolling { months: m })
            }
            ("end_of_next_year", None) => Some(ExpiryPolicy::EndOfNextYear),
            _ => None,
        }
    }

    pub fn months(self) -> Option<u32> {
        match self {
            ExpiryPolicy::Rolling { months } => Some(months),
            _ => None,
        }
    }

    /// The last day points earned on `earned` may be spent, or `None` if they never expire.
    pub fn expires_on(self, earned: Date) -> Option<Date> {
        match self {
            ExpiryPolicy::Never => None,
            ExpiryPolicy::Rolling { months } => Some(add_months(earned, months)),
            ExpiryPolicy::EndOfNextYear => {
                Date::from_calendar_date(earned.year() + 1, Month::December, 31).ok()
            }
        }
    }
}

/// Whether `code` is an acceptable id for an organisation unit or rule.
pub fn code_is_valid(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= CODE_MAX_BYTES
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How a rule awards points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleMode {
    /// `points` per hour of service.
    PerHour,
    /// `points` per activity, whatever its length.
    PerActivity,
}

impl RuleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleMode::PerHour => "per_hour",
            RuleMode::PerActivity => "per_activity",
        }
    }

    pub fn parse(text: &str) -> Option<RuleMode> {
        match text {
            "per_hour" => Some(RuleMode::PerHour),
            "per_activity" => Some(RuleMode::PerActivity),
            _ => None,
        }
    }
}

/// One version of an earning rule. Versions are never edited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub rule_id: String,
    pub version: i64,
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
    pub created_by: String,
    pub created_at_micros: i64,
}

impl Rule {
    /// Whether service on `day` falls inside the rule's validity.
    pub fn valid_on(&self, day: Date) -> bool {
        day >= self.valid_from && self.valid_until.is_none_or(|until| day <= until)
    }

    /// The points this rule awards for `hours_minor` hundredths of an hour: per hour, the rate
    /// times the hours rounded half away from zero to 0.01 (四舍五入); per activity, the rate.
    pub fn points_for(&self, hours_minor: i64) -> Result<Amount, AmountError> {
        match self.mode {
            RuleMode::PerActivity => Ok(self.points),
            RuleMode::PerHour => {
                let hours = Decimal::new(hours_minor, 2);
                let points = (self.points.to_decimal() * hours)
                    .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
                Amount::from_decimal(points)
            }
        }
    }

    /// The same rule content (everything a new version could change)?
    pub fn same_terms(&self, other: &Rule) -> bool {
        self.community_id == other.community_id
            && self.category == other.category
            && self.name_zh == other.name_zh
            && self.name_en == other.name_en
            && self.mode == other.mode
            && self.points == other.points
            && self.records_hours == other.records_hours
            && self.cap_day == other.cap_day
            && self.cap_month == other.cap_month
            && self.valid_from == other.valid_from
            && self.valid_until == other.valid_until
    }
}

/// An organisation unit; communities carry the points programme's accounts and expiry policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgUnit {
    pub id: String,
    pub parent_id: Option<String>,
    pub level: String,
    pub name_zh: String,
    pub name_en: String,
    pub community: Option<Community>,
    pub created_at_micros: i64,
}

/// What a community unit carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Community {
    pub expiry: ExpiryPolicy,
    pub issuance_account: Uuid,
    pub settlement_account: Uuid,
    pub expiry_account: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resident {
    pub id: Uuid,
    /// Public pseudonymous id: what exports and receipts carry instead of the name.
    pub pseudonym: String,
    pub name: String,
    pub phone: String,
    pub community_id: String,
    pub account_id: Uuid,
    pub created_at_micros: i64,
}

/// States of a service record.
pub mod status {
    pub const SUBMITTED: &str = "submitted";
    pub const APPROVED: &str = "approved";
    pub const REJECTED: &str = "rejected";
    pub const REVERSED: &str = "reversed";
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRecord {
    pub id: Uuid,
    pub resident_id: Uuid,
    pub rule_id: String,
    pub service_date: Date,
    pub hours_minor: i64,
    pub note: String,
    pub status: String,
    pub submitted_by: String,
    pub submitted_at_micros: i64,
    pub decided_by: Option<String>,
    pub decided_at_micros: Option<i64>,
    pub reason: Option<String>,
    pub entry_id: Option<Uuid>,
    pub roster_id: Option<Uuid>,
    pub correction_of: Option<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    pub id: Uuid,
    pub community_id: String,
    pub rule_id: String,
    pub service_date: Date,
    pub title: String,
    pub status: String,
    pub submitted_by: String,
    pub created_at_micros: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    pub id: Uuid,
    pub record_id: Uuid,
    pub requested_by: String,
    pub reason: String,
    pub status: String,
    pub requested_at_micros: i64,
    pub resolved_by: Option<String>,
    pub resolved_at_micros: Option<i64>,
    pub resolution: Option<String>,
    pub reversal_entry_id: Option<Uuid>,
    pub new_record_id: Option<Uuid>,
}

/// A public pseudonym from 40 random bits: `AX-` and 8 characters of Crockford base32.
pub fn pseudonym(random: [u8; 5]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bits = random
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut chars = [0u8; 8];
    for c in chars.iter_mut().rev() {
        *c = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    format!("AX-{}", String::from_utf8_lossy(&chars))
}

/// An id derived from a namespace and parts, so that a retried request (same idempotency key)
/// names the same object.
pub fn derived_id(namespace: &str, parts: &[&str]) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(namespace.as_bytes());
    for part in parts {
        hasher.update([0u8]);
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn rule(mode: RuleMode, points: &str) -> Rule {
        Rule {
            rule_id: "r".into(),
            version: 1,
            community_id: "c".into(),
            category: "visit".into(),
            name_zh: "入户走访".into(),
            name_en: "Home visit".into(),
            mode,
            points: Amount::parse(points).unwrap(),
            records_hours: true,
            cap_day: None,
            cap_month: None,
            valid_from: date!(2026 - 01 - 01),
            valid_until: Some(date!(2026 - 12 - 31)),
            created_by: "t".into(),
            created_at_micros: 0,
        }
    }

    #[test]
    fn points_per_hour_round_half_away_from_zero() {
        // Proves the award arithmetic is exact decimal with 四舍五入 at 0.01.
        assert_eq!(
            rule(RuleMode::PerHour, "10")
                .points_for(150)
                .unwrap()
                .to_string(),
            "15.00"
        );
        assert_eq!(
            rule(RuleMode::PerHour, "3.33")
                .points_for(150)
                .unwrap()
                .to_string(),
            "5.00"
        ); // 4.995
        assert_eq!(
            rule(RuleMode::PerHour, "0.01").points_for(25).unwrap_err(),
            AmountError::Zero
        );
        assert_eq!(
            rule(RuleMode::PerActivity, "8")
                .points_for(1)
                .unwrap()
                .to_string(),
            "8.00"
        );
    }

    #[test]
    fn validity_is_inclusive() {
        // Proves a rule applies from its first through its last valid day.
        let r = rule(RuleMode::PerHour, "1");
        assert!(r.valid_on(date!(2026 - 01 - 01)) && r.valid_on(date!(2026 - 12 - 31)));
        assert!(!r.valid_on(date!(2025 - 12 - 31)) && !r.valid_on(date!(2027 - 01 - 01)));
    }

    #[test]
    fn expiry_dates_follow_the_policy() {
        // Proves each policy's last valid day, including month-end clamping.
        assert_eq!(ExpiryPolicy::Never.expires_on(date!(2026 - 03 - 15)), None);
        assert_eq!(
            ExpiryPolicy::Rolling { months: 12 }.expires_on(date!(2026 - 03 - 15)),
            Some(date!(2027 - 03 - 15))
        );
        assert_eq!(
            ExpiryPolicy::Rolling { months: 1 }.expires_on(date!(2026 - 01 - 31)),
            Some(date!(2026 - 02 - 28))
        );
        assert_eq!(
            ExpiryPolicy::EndOfNextYear.expires_on(date!(2026 - 03 - 15)),
            Some(date!(2027 - 12 - 31))
        );
        assert_eq!(ExpiryPolicy::parse("rolling", Some(0)), None);
        assert_eq!(ExpiryPolicy::parse("never", Some(3)), None);
    }

    #[test]
    fn pseudonyms_are_crockford() {
        // Proves the pseudonym format: AX- and 8 unambiguous characters.
        assert_eq!(pseudonym([0, 0, 0, 0, 0]), "AX-00000000");
        assert_eq!(pseudonym([255; 5]), "AX-ZZZZZZZZ");
    }
}
