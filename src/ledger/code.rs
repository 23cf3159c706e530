//! Redemption codes and card PINs: pure derivation, layout and check digit. No IO, no clock.
//!
//! The layout and derivation are specified in `ledger-specs/redemption-code.md`; its test
//! vectors are checked by `tests/redeem_vectors.rs`, by `ledger-specs/tools/check_redemption.py`
//! and (the phone's generator, `src/web/assets/code.js`) by `tests/code_js.rs`.
//!
//! A code is 25 decimal digits (layout 2), a length no Chinese payment code and no product
//! barcode has, behind a prefix none of them starts with:
//!
//! ```text
//! 72 NNNNNNNNN OOOOOOOOOOOOO C
//! ^^ ^         ^             ^ Damm check digit over the 24 digits before it
//! || |         +--------------- one-time password of the 30-second time step (13 digits)
//! || +------------------------- credential number (9 digits, zero-padded)
//! |+--------------------------- layout version (2)
//! +---------------------------- aixin (no payment code starts with 7)
//! ```
//!
//! Layout 1 (18 digits beginning `28`) is retired: it lies inside Alipay's range, so it is
//! neither generated nor accepted; such digits are answered as an Alipay code
//! ([`foreign_app`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The layout this code writes and the only one it reads.
pub const LAYOUT: u8 = 2;
/// Digits in a code.
pub const CODE_DIGITS: usize = 25;
/// The prefix of layout 2: `7` for aixin, then the layout's version.
pub const CODE_PREFIX: &str = "72";
/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Steps either side of the current one that are still accepted (±60 s of clock skew).
pub const STEP_WINDOW: i64 = 2;
/// Credential numbers are 9 digits; 0 is never issued.
pub const NUMBER_MAX: u32 = 999_999_999;
/// Digits of a code's one-time password.
pub const OTP_DIGITS: u32 = 13;
const OTP_MODULUS: u64 = 10_u64.pow(OTP_DIGITS);
/// Digits of a card PIN.
pub const PIN_DIGITS: u32 = 6;
const PIN_MODULUS: u32 = 1_000_000;

/// Domain label of the code derivation (layout 2).
pub const CODE_LABEL: &[u8] = b"aixin-code-v2";
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
    pub otp: u64,
}

/// A payment app whose codes a till may be shown instead of an aixin code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentApp {
    WeChat,
    Alipay,
    UnionPay,
}

impl PaymentApp {
    /// The app's name as the API writes it (`ledger-specs/errors.md`, member `app`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentApp::WeChat => "wechat",
            PaymentApp::Alipay => "alipay",
            PaymentApp::UnionPay => "unionpay",
        }
    }
}

/// The digit strings an app's payment codes (付款码) take: a length and a two-digit prefix,
/// each from an inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentRange {
    pub app: PaymentApp,
    pub lengths: (usize, usize),
    pub prefixes: (u8, u8),
}

/// The payment-code ranges the till recognises (`ledger-specs/redemption-code.md` §3.1):
/// WeChat Pay 18 digits from 10–15, Alipay 16–24 digits from 25–30, UnionPay QuickPass 19
/// digits from 62.
pub const PAYMENT_RANGES: &[PaymentRange] = &[
    PaymentRange {
        app: PaymentApp::WeChat,
        lengths: (18, 18),
        prefixes: (10, 15),
    },
    PaymentRange {
        app: PaymentApp::Alipay,
        lengths: (16, 24),
        prefixes: (25, 30),
    },
    PaymentRange {
        app: PaymentApp::UnionPay,
        lengths: (19, 19),
        prefixes: (62, 62),
    },
];

impl PaymentRange {
    /// Whether `digits` (ASCII digits only) lies in this range.
    pub fn contains(&self, digits: &[u8]) -> bool {
        let prefix = match digits {
            [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0') * 10 + (b - b'0'),
            _ => return false,
        };
        (self.lengths.0..=self.lengths.1).contains(&digits.len())
            && (self.prefixes.0..=self.prefixes.1).contains(&prefix)
            && digits.iter().all(u8::is_ascii_digit)
    }
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

/// The step whose code to show at `now_step` when the credential last accepted
/// `last_used_step`: the current step, or the first one after the last used if that is later
/// (a code is accepted only for a step after the last accepted one, so after a sale the
/// current step's code is dead).
pub fn step_to_show(now_step: i64, last_used_step: Option<i64>) -> i64 {
    last_used_step.map_or(now_step, |last| now_step.max(last.saturating_add(1)))
}

fn mac(secret: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HOTP's dynamic truncation (RFC 4226 §5.3) of an HMAC-SHA256 tag, modulo 10^6: the PIN's.
fn truncate31(tag: &[u8; 32]) -> u32 {
    let offset = (tag[31] & 0x0f) as usize;
    let bytes: [u8; 4] = tag[offset..offset + 4].try_into().expect("4 bytes");
    (u32::from_be_bytes(bytes) & 0x7fff_ffff) % PIN_MODULUS
}

/// The same truncation over 8 bytes (63 bits), modulo 10^13: a layout-2 password.
fn truncate63(tag: &[u8; 32]) -> u64 {
    let offset = (tag[31] & 0x0f) as usize;
    let bytes: [u8; 8] = tag[offset..offset + 8].try_into().expect("8 bytes");
    (u64::from_be_bytes(bytes) & 0x7fff_ffff_ffff_ffff) % OTP_MODULUS
}

/// The one-time password of credential `number` at time step `step`:
/// HMAC-SHA256(secret, "aixin-code-v2" ‖ u32be(number) ‖ i64be(step)), truncated to 13 digits.
pub fn otp(secret: &[u8; 32], number: u32, step: i64) -> u64 {
    truncate63(&mac(
        secret,
        &[CODE_LABEL, &number.to_be_bytes(), &step.to_be_bytes()],
    ))
}

/// The card PIN of credential `number`: HMAC-SHA256(secret, "aixin-pin-v1" ‖ u32be(number)),
/// truncated to 6 digits. It changes when the credential is re-issued (a new secret).
pub fn pin(secret: &[u8; 32], number: u32) -> u32 {
    truncate31(&mac(secret, &[PIN_LABEL, &number.to_be_bytes()]))
}

/// The 25-digit code of credential `number` with password `otp`.
pub fn encode(number: u32, otp: u64) -> String {
    assert!(number <= NUMBER_MAX && otp < OTP_MODULUS);
    let mut code = format!("{CODE_PREFIX}{number:09}{otp:013}");
    let check = damm(code.as_bytes());
    code.push(char::from(b'0' + check));
    code
}

/// The code of credential `number` for time step `step`.
pub fn code_for_step(secret: &[u8; 32], number: u32, step: i64) -> String {
    encode(number, otp(secret, number, step))
}

/// The code a holder of `secret` shows at `now_micros` (before any sale in this window).
pub fn code_at(secret: &[u8; 32], number: u32, now_micros: i64) -> String {
    code_for_step(secret, number, step_of(now_micros))
}

/// The digits of scanned or typed text, at most `CODE_DIGITS + 1` of them: spaces and dashes
/// (as printed for reading aloud) are left out, full-width digits (U+FF10–U+FF19, which some
/// input methods type) read as digits. `None` if anything else is there.
fn digits_of(text: &str) -> Option<Vec<u8>> {
    let mut digits = Vec::with_capacity(CODE_DIGITS + 1);
    for c in text.chars().filter(|c| *c != ' ' && *c != '-') {
        if digits.len() > CODE_DIGITS {
            break;
        }
        digits.push(match c {
            '0'..='9' => c as u8,
            '\u{ff10}'..='\u{ff19}' => b'0' + (c as u32 - 0xff10) as u8,
            _ => return None,
        });
    }
    Some(digits)
}

/// Parses a scanned or typed code (layout 2 only).
pub fn parse(text: &str) -> Result<ParsedCode, CodeFormatError> {
    let digits = digits_of(text).ok_or(CodeFormatError::NotDigits)?;
    if digits.len() != CODE_DIGITS {
        return Err(CodeFormatError::Length);
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
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
    };
    Ok(ParsedCode {
        number: u32::try_from(field(2..11)).expect("9 digits fit"),
        otp: field(11..24),
    })
}

/// The payment app whose code (付款码) `text` is, by [`PAYMENT_RANGES`]; `None` for anything
/// else, an aixin code included (no layout-2 code lies in any of the ranges).
pub fn foreign_app(text: &str) -> Option<PaymentApp> {
    let digits = digits_of(text)?;
    PAYMENT_RANGES
        .iter()
        .find(|range| range.contains(&digits))
        .map(|range| range.app)
}

/// Parses a card PIN (exactly 6 digits).
pub fn parse_pin(text: &str) -> Option<u32> {
    let text = text.trim();
    (text.len() == PIN_DIGITS as usize && text.bytes().all(|b| b.is_ascii_digit()))
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
pub fn matching_step(secret: &[u8; 32], number: u32, presented: u64, now_step: i64) -> Option<i64> {
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
        assert!(code.starts_with("721234567890000000000042"));
        assert_eq!(
            parse(&code),
            Ok(ParsedCode {
                number: 123_456_789,
                otp: 42
            })
        );
        let max = encode(NUMBER_MAX, OTP_MODULUS - 1);
        assert_eq!(parse(&max).map(|p| p.otp), Ok(OTP_MODULUS - 1));
        // Read aloud in groups, or typed by an input method in full-width digits.
        let grouped: String = code
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i > 0 && i % 5 == 0).then_some(' ').into_iter().chain([c]))
            .collect();
        assert_eq!(parse(&grouped), parse(&code));
        let wide: String = code
            .chars()
            .map(|c| char::from_u32(c as u32 - 0x30 + 0xff10).unwrap())
            .collect();
        assert_eq!(parse(&wide), parse(&code));
        assert_eq!(parse("not a code"), Err(CodeFormatError::NotDigits));
        assert_eq!(parse(&code[..24]), Err(CodeFormatError::Length));
        assert_eq!(parse(&format!("{code}0")), Err(CodeFormatError::Length));
        let mut wrong = code.clone().into_bytes();
        wrong[0] = b'3';
        wrong[24] = b'0' + damm(&wrong[..24]);
        assert_eq!(
            parse(std::str::from_utf8(&wrong).unwrap()),
            Err(CodeFormatError::Prefix)
        );
    }

    #[test]
    fn payment_codes_are_named_and_aixin_codes_are_not() {
        // Alipay's documented example, a layout-1 code (which is an Alipay code), WeChat's and
        // UnionPay's shapes; and the edges of each range.
        for (digits, app) in [
            ("289431869362714645", Some(PaymentApp::Alipay)),
            ("283051170420282534", Some(PaymentApp::Alipay)),
            ("2500000000000000", Some(PaymentApp::Alipay)),
            ("309999999999999999999999", Some(PaymentApp::Alipay)),
            ("250000000000000", None),
            ("3099999999999999999999990", None),
            ("134567890123456789", Some(PaymentApp::WeChat)),
            ("10 0000 0000 0000 0000", Some(PaymentApp::WeChat)),
            ("159999999999999999", Some(PaymentApp::WeChat)),
            ("169999999999999999", None),
            ("13456789012345678", None),
            ("6212345678901234567", Some(PaymentApp::UnionPay)),
            ("621234567890123456", None),
            ("", None),
            ("28943186936271464x", None),
        ] {
            assert_eq!(foreign_app(digits), app, "{digits}");
        }
        assert_eq!(foreign_app(&encode(305_117_042, 1)), None);
    }

    #[test]
    fn the_code_to_show_follows_the_last_used_step() {
        assert_eq!(step_to_show(100, None), 100);
        assert_eq!(step_to_show(100, Some(50)), 100);
        assert_eq!(step_to_show(100, Some(100)), 101);
        assert_eq!(step_to_show(100, Some(101)), 102);
    }

    proptest! {
        #[test]
        fn every_single_digit_change_and_adjacent_swap_is_caught(
            number in 1u32..=NUMBER_MAX, otp in 0u64..OTP_MODULUS, pos in 0usize..CODE_DIGITS, delta in 1u8..10
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
            let _ = foreign_app(&text);
            let _ = foreign_app(&digits);
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
            // A far step's password could collide with a near one by chance (5 in 10^13).
            assert_eq!(matching_step(&secret, 5, o, step), None);
        }
    }
}
