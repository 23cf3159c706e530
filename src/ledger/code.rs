//! Redemption codes and card PINs: pure derivation, layout and check digit. No IO, no clock.
//!
//! The layout and derivation are specified in `ledger-specs/redemption-code.md`; its test
//! vectors are checked by `tests/redeem_vectors.rs` and by `ledger-specs/tools/check_code.py`.
//!
//! A code is 18 decimal digits, the length of the payment codes shop scanners already read:
//!
//! ```text
//! 28 NNNNNNNNN OOOOOO C
//! ^  ^         ^      ^ Damm check digit over the 17 digits before it
//! |  |         +------- one-time password for the 30-second time step (6 digits)
//! |  +----------------- credential number (9 digits, zero-padded)
//! +-------------------- version prefix of layout 1
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Digits in a code.
pub const CODE_DIGITS: usize = 18;
/// The version prefix of layout 1.
pub const CODE_PREFIX: &str = "28";
/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Steps either side of the current one that are still accepted (±60 s of clock skew).
pub const STEP_WINDOW: i64 = 2;
/// Credential numbers are 9 digits; 0 is never issued.
pub const NUMBER_MAX: u32 = 999_999_999;
/// Digits of the one-time password and of a card PIN.
pub const OTP_DIGITS: u32 = 6;
const OTP_MODULUS: u32 = 1_000_000;

/// Domain label of the code derivation.
pub const CODE_LABEL: &[u8] = b"aixin-code-v1";
/// Domain label of the card PIN derivation.
pub const PIN_LABEL: &[u8] = b"aixin-pin-v1";

/// Why text is not a well-formed code. Callers answer every case with the same error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeFormatError {
    Length,
    NotDigits,
    Prefix,
    CheckDigit,
}

/// The parts of a well-formed code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedCode {
    pub number: u32,
    pub otp: u32,
}

/// The Damm algorithm's quasigroup table (weakly totally anti-symmetric, order 10). It detects
/// every single-digit error and every adjacent transposition.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// The Damm check digit of a string of ASCII digits (the interim digit after all of them).
pub fn damm(digits: &[u8]) -> u8 {
    digits.iter().fold(0u8, |interim, d| {
        DAMM[interim as usize][(d - b'0') as usize]
    })
}

/// The time step of a moment given in microseconds since the epoch.
pub fn step_of(micros: i64) -> i64 {
    micros.div_euclid(1_000_000).div_euclid(STEP_SECONDS)
}

/// HOTP-style dynamic truncation (RFC 4226 §5.3) of an HMAC-SHA256 tag, modulo 10^6.
fn truncate(tag: &[u8; 32]) -> u32 {
    let offset = (tag[31] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        tag[offset],
        tag[offset + 1],
        tag[offset + 2],
        tag[offset + 3],
    ]) & 0x7fff_ffff;
    bin % OTP_MODULUS
}

fn mac(secret: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The one-time password of credential `number` at time step `step`:
/// HMAC-SHA256(secret, "aixin-code-v1" ‖ u32be(number) ‖ i64be(step)), truncated.
pub fn otp(secret: &[u8; 32], number: u32, step: i64) -> u32 {
    truncate(&mac(
        secret,
        &[CODE_LABEL, &number.to_be_bytes(), &step.to_be_bytes()],
    ))
}

/// The card PIN of credential `number`: HMAC-SHA256(secret, "aixin-pin-v1" ‖ u32be(number)),
/// truncated. It changes when the credential is re-issued (a new secret).
pub fn pin(secret: &[u8; 32], number: u32) -> u32 {
    truncate(&mac(secret, &[PIN_LABEL, &number.to_be_bytes()]))
}

/// The 18-digit code of credential `number` with password `otp`.
pub fn encode(number: u32, otp: u32) -> String {
    assert!(number <= NUMBER_MAX && otp < OTP_MODULUS);
    let mut code = format!("{CODE_PREFIX}{number:09}{otp:06}");
    let check = damm(code.as_bytes());
    code.push(char::from(b'0' + check));
    code
}

/// The code a holder of `secret` shows at `now_micros`.
pub fn code_at(secret: &[u8; 32], number: u32, now_micros: i64) -> String {
    encode(number, otp(secret, number, step_of(now_micros)))
}

/// Parses a scanned or typed code. Spaces and dashes (as printed for reading aloud) are ignored.
pub fn parse(text: &str) -> Result<ParsedCode, CodeFormatError> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b' ' && *b != b'-')
        .take(CODE_DIGITS + 1)
        .collect();
    if digits.len() != CODE_DIGITS {
        return Err(CodeFormatError::Length);
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(CodeFormatError::NotDigits);
    }
    if !digits.starts_with(CODE_PREFIX.as_bytes()) {
        return Err(CodeFormatError::Prefix);
    }
    if damm(&digits) != 0 {
        return Err(CodeFormatError::CheckDigit);
    }
    let field = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    Ok(ParsedCode {
        number: field(2..11),
        otp: field(11..17),
    })
}

/// Parses a card PIN (exactly 6 digits).
pub fn parse_pin(text: &str) -> Option<u32> {
    let text = text.trim();
    (text.len() == OTP_DIGITS as usize && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Parses a card number (the credential number, 9 digits, spaces allowed).
pub fn parse_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().filter(|c| *c != ' ' && *c != '-').collect();
    (digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
        .filter(|n| *n >= 1)
}

/// The step, within ±[`STEP_WINDOW`] of `now_step`, whose password is `presented`, compared in
/// constant time; every candidate is computed, so timing does not tell which one matched.
/// The highest matching step wins.
pub fn matching_step(secret: &[u8; 32], number: u32, presented: u32, now_step: i64) -> Option<i64> {
    let mut found = None;
    for step in (now_step - STEP_WINDOW)..=(now_step + STEP_WINDOW) {
        let expected = otp(secret, number, step);
        if bool::from(expected.to_be_bytes().ct_eq(&presented.to_be_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// Whether `presented` is the card PIN, compared in constant time.
pub fn pin_matches(secret: &[u8; 32], number: u32, presented: u32) -> bool {
    bool::from(
        pin(secret, number)
            .to_be_bytes()
            .ct_eq(&presented.to_be_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_then_parse_round_trips() {
        let code = encode(123_456_789, 42);
        assert_eq!(code.len(), CODE_DIGITS);
        assert!(code.starts_with("28123456789000042"));
        assert_eq!(
            parse(&code),
            Ok(ParsedCode {
                number: 123_456_789,
                otp: 42
            })
        );
        assert_eq!(parse("not a code"), Err(CodeFormatError::Length));
        assert_eq!(parse("2812345678900004x"), Err(CodeFormatError::Length));
        let mut wrong = code.clone().into_bytes();
        wrong[0] = b'3';
        wrong[17] = b'0' + damm(&wrong[..17]);
        assert_eq!(
            parse(std::str::from_utf8(&wrong).unwrap()),
            Err(CodeFormatError::Prefix)
        );
    }

    proptest! {
        #[test]
        fn every_single_digit_change_and_adjacent_swap_is_caught(
            number in 1u32..=NUMBER_MAX, otp in 0u32..OTP_MODULUS, pos in 0usize..CODE_DIGITS, delta in 1u8..10
        ) {
            let code = encode(number, otp).into_bytes();
            let mut changed = code.clone();
            changed[pos] = b'0' + (changed[pos] - b'0' + delta) % 10;
            prop_assert!(parse(std::str::from_utf8(&changed).unwrap()).is_err());
            if pos + 1 < CODE_DIGITS && code[pos] != code[pos + 1] {
                let mut swapped = code.clone();
                swapped.swap(pos, pos + 1);
                prop_assert!(parse(std::str::from_utf8(&swapped).unwrap()).is_err());
            }
        }
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".{0,40}", digits in "[0-9 -]{0,30}") {
            let _ = parse(&text);
            let _ = parse(&digits);
            let _ = parse_pin(&text);
            let _ = parse_number(&digits);
        }
    }

    #[test]
    fn the_window_is_two_steps_either_side() {
        let secret = [7u8; 32];
        let now = 1_790_000_000 * 1_000_000;
        let step = step_of(now);
        for offset in -2..=2 {
            let o = otp(&secret, 5, step + offset);
            assert_eq!(matching_step(&secret, 5, o, step), Some(step + offset));
        }
        for offset in [-3, 3] {
            let o = otp(&secret, 5, step + offset);
            // A far step's password could collide with a near one by chance (1 in 10^5);
            // with this fixed secret it does not.
            assert_eq!(matching_step(&secret, 5, o, step), None);
        }
    }
}
