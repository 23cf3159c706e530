//! The deployment's calendar: China Standard Time (UTC+8) days, and the one text form of dates
//! and times that every edge shows. Pure: no clock is read here.

use time::{Date, Month};

/// The programme's calendar: China Standard Time (UTC+8), so that "today", service days and
/// the last valid day of points are the days residents and staff live in.
pub const CALENDAR_UTC_OFFSET_SECONDS: i64 = 8 * 3600;

/// `date` plus `months` calendar months, clamped to the end of a shorter month (Jan 31 + 1 month
/// is Feb 28 or 29).
pub fn add_months(date: Date, months: u32) -> Date {
    let total = date.year() * 12 + (date.month() as i32 - 1) + months as i32;
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    let month = Month::try_from(month0 as u8 + 1).unwrap_or(Month::December);
    let last_day = month.length(year);
    Date::from_calendar_date(year, month, date.day().min(last_day)).unwrap_or(date)
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month() as u8,
        date.day()
    )
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    (text.len() == 10)
        .then(|| Date::parse(text, &format).ok())
        .flatten()
}

/// The calendar day (UTC+8) of a time in microseconds since the Unix epoch.
pub fn day_of(micros: i64) -> Date {
    time::OffsetDateTime::from_unix_timestamp(
        micros.div_euclid(1_000_000) + CALENDAR_UTC_OFFSET_SECONDS,
    )
    .map(|t| t.date())
    .unwrap_or(Date::MIN)
}

/// The first microsecond of a calendar day (UTC+8).
pub fn day_start_micros(day: Date) -> i64 {
    let midnight = day.midnight().assume_utc().unix_timestamp() - CALENDAR_UTC_OFFSET_SECONDS;
    midnight * 1_000_000
}

/// A moment as RFC 3339 text in UTC (`2026-11-26T01:02:03.456789Z`), as the API answers times.
pub fn format_time(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Serde helpers for typed views: times kept as microseconds and days as [`Date`], written as
/// the API's text.
pub mod text {
    use serde::Serializer;
    use time::Date;

    /// Microseconds since the epoch → RFC 3339 in UTC.
    pub fn time<S: Serializer>(micros: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*micros))
    }

    /// A day → `YYYY-MM-DD`.
    pub fn date<S: Serializer>(day: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_date(*day))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn days_follow_china_standard_time() {
        // Proves 07:00 in Beijing on 26 November is already 26 November (it is 25 November, 23:00 UTC).
        let micros = 1_795_647_600 * 1_000_000; // 2026-11-25T23:00:00Z
        assert_eq!(day_of(micros), date!(2026 - 11 - 26));
        assert_eq!(day_of(micros - 9 * 3_600_000_000), date!(2026 - 11 - 25)); // 22:00 in Beijing
    }

    #[test]
    fn a_day_starts_at_beijing_midnight() {
        let day = date!(2026 - 11 - 26);
        assert_eq!(day_of(day_start_micros(day)), day);
        assert_eq!(day_of(day_start_micros(day) - 1), date!(2026 - 11 - 25));
        assert_eq!(parse_date(&format_date(day)), Some(day));
        assert_eq!(parse_date("2026-11-26x"), None);
    }
}
