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
    /// The checks run in this order: not a number, zero, negative, too precise, too large.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
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
        // Exact integer arithmetic on the digits (no floating point, no overflow): leading zeros
        // of the whole part and trailing zeros of the fraction carry no value.
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.unwrap_or("").trim_end_matches('0');
        if whole.is_empty() && fraction.is_empty() {
            return Err(AmountError::Zero);
        }
        if negative {
            return Err(AmountError::Negative);
        }
        if fraction.len() > AMOUNT_SCALE as usize {
            return Err(AmountError::TooPrecise);
        }
        // 100000000 has 9 digits; anything longer is over the bound without computing it.
        if whole.len() > 9 {
            return Err(AmountError::TooLarge);
        }
        let whole_value: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| AmountError::TooLarge)?
        };
        let fraction_value: i64 = format!("{fraction:0<2}")
            .parse()
            .map_err(|_| AmountError::NotANumber)?;
        Amount::from_minor(whole_value * MINOR_PER_UNIT + fraction_value)
    }

    /// The amount as an exact decimal (for computations such as rate × hours).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, AMOUNT_SCALE)
    }

    /// An exact decimal as an amount; refused if it is not a positive multiple of 0.01 within
    /// the bound. Rounding, where a rule calls for it, is the caller's explicit choice.
    pub fn from_decimal(value: Decimal) -> Result<Self, AmountError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(AmountError::Negative);
        }
        if value.normalize().scale() > AMOUNT_SCALE {
            return Err(AmountError::TooPrecise);
        }
        let minor = value
            .checked_mul(Decimal::from(MINOR_PER_UNIT))
            .and_then(|v| v.to_i64())
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

/// Serde helpers for amounts kept as `i64` hundredths in typed views: each writes the decimal
/// text the API uses everywhere, so a view keeps the number and an edge decides how to show it.
pub mod text {
    use serde::Serializer;

    /// `1250` → `"12.50"`.
    pub fn minor<S: Serializer>(minor: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_minor(*minor))
    }

    /// A change to an account: `1250` → `"+12.50"`, `-500` → `"-5.00"`, `0` → `"0.00"`.
    pub fn change<S: Serializer>(minor: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_change(*minor))
    }
}

/// A change to an account as text, with its sign: `"+12.50"`, `"-5.00"`, `"0.00"`.
pub fn format_change(minor: i64) -> String {
    let text = format_minor(minor);
    if minor > 0 {
        format!("+{text}")
    } else {
        text
    }
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
    fn converts_to_and_from_decimal_exactly() {
        // Proves the decimal view is exact both ways and refuses what is not a valid amount.
        let amount = Amount::parse("1234.56").unwrap();
        assert_eq!(amount.to_decimal().to_string(), "1234.56");
        assert_eq!(Amount::from_decimal(amount.to_decimal()), Ok(amount));
        assert_eq!(
            Amount::from_decimal(Decimal::new(1, 3)),
            Err(AmountError::TooPrecise)
        );
        assert_eq!(
            Amount::from_decimal(Decimal::new(-1, 0)),
            Err(AmountError::Negative)
        );
        assert_eq!(
            Amount::from_decimal(Decimal::MAX),
            Err(AmountError::TooLarge)
        );
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
        fn any_text_parses_or_refuses_without_panicking(text in "\\PC{0,40}", digits in "[0-9]{1,34}(\\.[0-9]{1,4})?") {
            // Proves parsing never panics, whatever the input, and digit strings of any length
            // give either an amount or one of the refusal reasons.
            let _ = Amount::parse(&text);
            // A well-formed decimal is never "not a number" nor "negative", however long.
            let refused = Amount::parse(&digits).err();
            prop_assert!(
                matches!(refused, None | Some(AmountError::Zero | AmountError::TooPrecise | AmountError::TooLarge)),
                "{digits:?} -> {refused:?}"
            );
        }

        #[test]
        fn text_round_trips(minor in 1i64..=AMOUNT_MAX_MINOR) {
            // Proves formatting then parsing any valid amount gives the same amount back.
            let amount = Amount::from_minor(minor).unwrap();
            prop_assert_eq!(Amount::parse(&amount.to_string()).unwrap(), amount);
        }
    }
}
