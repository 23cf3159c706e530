//! Exact point and hour amounts.
//!
//! An [`Amount`] is a positive quantity with at most two decimal places, stored as a whole
//! number of hundredths (`minor` units) in an `i64`. Both database backends store that integer,
//! so arithmetic and results are identical everywhere; no floating point is ever involved.

use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// Decimal places an amount may carry: amounts are multiples of 0.01.
pub const AMOUNT_SCALE: u32 = 2;
/// Minor units (hundredths) in one whole unit.
pub const MINOR_PER_UNIT: i64 = 100;
/// The largest amount a single posting may carry: 100,000,000.00. Chosen so that the sum of the
/// largest entry (64 postings) can never overflow an `i64`, with room for ~10^9 such entries
/// in one account before any balance could.
pub const AMOUNT_MAX_MINOR: i64 = 100_000_000 * MINOR_PER_UNIT;
/// Longest amount string accepted, before any parsing work is done.
pub const AMOUNT_TEXT_MAX_BYTES: usize = 32;

/// A positive exact amount, in hundredths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

/// Why a string is not an [`Amount`]. Each case has its own stable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is not a decimal number (expected digits with an optional '.' and up to two decimal places, as a JSON string)")]
    NotANumber,
    #[error("amount is negative; amounts are always positive, the side (debit or credit) gives the direction")]
    Negative,
    #[error("amount is zero")]
    Zero,
    #[error("amount has more than two decimal places")]
    TooPrecise,
    #[error("amount exceeds the maximum of 100000000.00")]
    TooLarge,
}

impl Amount {
    /// Builds an amount from hundredths, enforcing the same bounds as parsing.
    pub fn from_minor(minor: i64) -> Result<Self, AmountError> {
        if minor < 0 {
            Err(AmountError::Negative)
        } else if minor == 0 {
            Err(AmountError::Zero)
        } else if minor > AMOUNT_MAX_MINOR {
            Err(AmountError::TooLarge)
        } else {
            Ok(Amount(minor))
        }
    }

    /// The amount in hundredths.
    pub fn minor(self) -> i64 {
        self.0
    }

    /// Parses the canonical text form: ASCII digits, optionally one '.' followed by digits,
    /// optionally a leading '-' (which is then refused as negative). No exponent, no '+', no
    /// spaces, no thousands separators. Trailing zeros past the second decimal place are
    /// accepted ("1.500" is 1.50) because the value is still an exact multiple of 0.01.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        if text.is_empty() || text.len() > AMOUNT_TEXT_MAX_BYTES {
            // An over-long string of digits is a too-large number; anything else is not a number.
            let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
            return Err(if digits_only {
                AmountError::TooLarge
            } else {
                AmountError::NotANumber
            });
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (unsigned, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
            return Err(AmountError::NotANumber);
        }
        let value = Decimal::from_str(unsigned).map_err(|_| AmountError::TooLarge)?;
        if negative && !value.is_zero() {
            return Err(AmountError::Negative);
        }
        if value.is_zero() {
            return Err(AmountError::Zero);
        }
        if value.normalize().scale() > AMOUNT_SCALE {
            return Err(AmountError::TooPrecise);
        }
        let minor = (value * Decimal::from(MINOR_PER_UNIT))
            .to_i64()
            .ok_or(AmountError::TooLarge)?;
        Amount::from_minor(minor)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse(s)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_minor(f, self.0)
    }
}

/// Formats a signed count of hundredths as a decimal string with exactly two places
/// ("-12.50"). Used for balances, which may be negative on issuance accounts.
pub fn format_minor(minor: i64) -> String {
    struct Minor(i64);
    impl fmt::Display for Minor {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_minor(f, self.0)
        }
    }
    Minor(minor).to_string()
}

fn write_minor(f: &mut fmt::Formatter<'_>, minor: i64) -> fmt::Result {
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    let per = MINOR_PER_UNIT as u64;
    write!(f, "{sign}{}.{:02}", magnitude / per, magnitude % per)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses_with_distinct_reasons() {
        // Proves each kind of bad amount gets its own reason and good ones parse exactly.
        assert_eq!(Amount::parse("12.5").unwrap().minor(), 1250);
        assert_eq!(Amount::parse("0.01").unwrap().minor(), 1);
        assert_eq!(Amount::parse("1.500").unwrap().minor(), 150);
        assert_eq!(
            Amount::parse("100000000").unwrap().minor(),
            AMOUNT_MAX_MINOR
        );
        assert_eq!(Amount::parse("-1"), Err(AmountError::Negative));
        assert_eq!(Amount::parse("0"), Err(AmountError::Zero));
        assert_eq!(Amount::parse("-0.00"), Err(AmountError::Zero));
        assert_eq!(Amount::parse("0.001"), Err(AmountError::TooPrecise));
        assert_eq!(Amount::parse("100000000.01"), Err(AmountError::TooLarge));
        assert_eq!(
            Amount::parse("99999999999999999999999999999999999"),
            Err(AmountError::TooLarge)
        );
        for bad in [
            "", "abc", "1e3", "+1", " 1", "1.", ".5", "1,000", "NaN", "1.2.3", "٣",
        ] {
            assert_eq!(Amount::parse(bad), Err(AmountError::NotANumber), "{bad:?}");
        }
    }

    #[test]
    fn formats_with_two_places() {
        // Proves the canonical output form that JSON and exports carry.
        assert_eq!(Amount::parse("7").unwrap().to_string(), "7.00");
        assert_eq!(format_minor(-1250), "-12.50");
        assert_eq!(format_minor(5), "0.05");
        assert_eq!(format_minor(i64::MIN), "-92233720368547758.08");
    }

    proptest! {
        #[test]
        fn text_round_trips(minor in 1i64..=AMOUNT_MAX_MINOR) {
            // Proves formatting then parsing any valid amount gives the same amount back.
            let amount = Amount::from_minor(minor).unwrap();
            prop_assert_eq!(Amount::parse(&amount.to_string()).unwrap(), amount);
        }
    }
}
