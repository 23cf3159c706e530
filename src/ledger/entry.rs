//! Entries and postings, their limits, and the checks that need no database.

use std::collections::BTreeMap;
use std::fmt;

use uuid::Uuid;

use super::amount::Amount;
use super::unit::Unit;

/// Most postings one entry may carry.
pub const POSTINGS_MAX: usize = 64;
/// Fewest postings one entry may carry: double entry needs two sides.
pub const POSTINGS_MIN: usize = 2;
/// Longest memo, in UTF-8 bytes (about 170 Chinese characters).
pub const MEMO_MAX_BYTES: usize = 512;
/// Most metadata pairs per entry.
pub const METADATA_PAIRS_MAX: usize = 16;
/// Longest metadata key, in bytes. Keys are ASCII identifiers.
pub const METADATA_KEY_MAX_BYTES: usize = 64;
/// Longest metadata value, in UTF-8 bytes.
pub const METADATA_VALUE_MAX_BYTES: usize = 256;
/// Longest actor name, in bytes.
pub const ACTOR_MAX_BYTES: usize = 128;
/// Longest idempotency key, in bytes. Keys are printable ASCII without spaces.
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 128;
/// Most requests in one all-or-nothing group (an event roster, say).
pub const GROUP_MAX: usize = 512;

/// An account's identity inside one ledger.
pub type AccountId = Uuid;

/// What an entry is for. The kind is part of the hashed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Issuance → resident, for volunteer service.
    Earn,
    /// Resident → shop, at a love shop's till.
    Redeem,
    /// A reversal of (part of) a redemption.
    Refund,
    /// Shop → community settlement account.
    Settle,
    /// Resident → community expiry account.
    Expire,
    /// An administrative correction against the adjustment account.
    Adjust,
    /// A reversal of any other entry, naming it.
    Reversal,
}

/// Written as its name (`"earn"`, `"redeem"`, …), as the API and the bundle show it.
impl serde::Serialize for EntryKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl EntryKind {
    pub const ALL: [EntryKind; 7] = [
        EntryKind::Earn,
        EntryKind::Redeem,
        EntryKind::Refund,
        EntryKind::Settle,
        EntryKind::Expire,
        EntryKind::Adjust,
        EntryKind::Reversal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Earn => "earn",
            EntryKind::Redeem => "redeem",
            EntryKind::Refund => "refund",
            EntryKind::Settle => "settle",
            EntryKind::Expire => "expire",
            EntryKind::Adjust => "adjust",
            EntryKind::Reversal => "reversal",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Refunds and reversals must name the entry they reverse; nothing else may.
    pub fn is_reversal(self) -> bool {
        matches!(self, EntryKind::Refund | EntryKind::Reversal)
    }

    /// Whether an entry of this kind may move value out of (`Debit`) or into (`Credit`) an
    /// account of `account` kind: the money flows of PRODUCT.md. `adjust` and `reversal` may
    /// touch any account (a reversal is further bound to mirror what it reverses).
    pub fn allows(self, side: Side, account: super::unit::AccountKind) -> bool {
        use super::unit::AccountKind::*;
        match (self, side) {
            (EntryKind::Earn, Side::Debit) => account == Issuance,
            (EntryKind::Earn, Side::Credit) => account == Resident,
            (EntryKind::Redeem, Side::Debit) => account == Resident,
            (EntryKind::Redeem, Side::Credit) => account == Shop,
            (EntryKind::Refund, Side::Debit) => account == Shop,
            (EntryKind::Refund, Side::Credit) => account == Resident,
            (EntryKind::Settle, Side::Debit) => account == Shop,
            (EntryKind::Settle, Side::Credit) => account == Settlement,
            (EntryKind::Expire, Side::Debit) => account == Resident,
            (EntryKind::Expire, Side::Credit) => account == Expiry,
            (EntryKind::Adjust | EntryKind::Reversal, _) => true,
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a posting moves value. A debit takes value out of the account (its balance goes
/// down); a credit puts value in (its balance goes up). Balance = credits − debits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    pub fn parse(text: &str) -> Option<Side> {
        match text {
            "debit" => Some(Side::Debit),
            "credit" => Some(Side::Credit),
            _ => None,
        }
    }

    /// The byte that stands for this side in hashed layouts.
    pub fn code(self) -> u8 {
        match self {
            Side::Debit => 1,
            Side::Credit => 2,
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }

    /// The signed effect of `amount` on the account's balance.
    pub fn signed(self, amount: Amount) -> i64 {
        match self {
            Side::Debit => -amount.minor(),
            Side::Credit => amount.minor(),
        }
    }
}

/// One leg of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub account: AccountId,
    pub unit: Unit,
    pub side: Side,
    pub amount: Amount,
}

/// What a client asks the ledger to post: everything except what the ledger assigns
/// (sequence, id, time, hashes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDraft {
    pub kind: EntryKind,
    pub postings: Vec<Posting>,
    pub memo: String,
    /// Sorted by key, so the hashed layout has one order.
    pub metadata: BTreeMap<String, String>,
    pub reverses: Option<Uuid>,
}

/// A refusal decided by ledger rules. Each maps to one stable error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("an entry needs at least {POSTINGS_MIN} postings")]
    TooFewPostings,
    #[error("an entry may carry at most {POSTINGS_MAX} postings")]
    TooManyPostings,
    #[error(
        "the entry does not balance in {unit}: debits {debits} ≠ credits {credits} (hundredths)"
    )]
    Unbalanced {
        unit: Unit,
        debits: i64,
        credits: i64,
    },
    #[error("account {account} appears on both sides in {unit}")]
    AccountOnBothSides { account: AccountId, unit: Unit },
    #[error("memo is longer than {MEMO_MAX_BYTES} bytes")]
    MemoTooLong,
    #[error("text contains a control character (only tab and line feed are allowed)")]
    TextInvalid,
    #[error("text contains an invisible or bidirectional control character")]
    TextInvisible,
    #[error("a {kind} entry cannot {} a {account_kind} account ({account})", side.as_str())]
    KindMismatch {
        kind: EntryKind,
        side: Side,
        account_kind: super::unit::AccountKind,
        account: AccountId,
    },
    #[error("a refund can only reverse a redemption, not a {target}")]
    RefundOfNonRedemption { target: EntryKind },
    #[error("metadata exceeds its limits ({METADATA_PAIRS_MAX} pairs, keys of 1..={METADATA_KEY_MAX_BYTES} ASCII letters, digits, '_', '.', '-', values ≤ {METADATA_VALUE_MAX_BYTES} bytes)")]
    MetadataInvalid,
    #[error("a {kind} entry must name the entry it reverses")]
    ReversalLinkMissing { kind: EntryKind },
    #[error("only refund and reversal entries may name an entry they reverse, not {kind}")]
    ReversalLinkForbidden { kind: EntryKind },
    #[error("account {account} does not exist in this ledger")]
    UnknownAccount { account: AccountId },
    #[error("account {account} cannot hold {unit}")]
    UnitNotAllowed { account: AccountId, unit: Unit },
    #[error("account {account} has too little {unit} for this debit (balance {}, needed {}, short by {})", super::format_minor(*balance_minor), super::format_minor(*needed_minor), super::format_minor(needed_minor.saturating_sub(*balance_minor)))]
    InsufficientBalance {
        account: AccountId,
        unit: Unit,
        /// The balance before this entry (after the batch's earlier entries).
        balance_minor: i64,
        /// What this entry takes from the account, net.
        needed_minor: i64,
    },
    #[error("account {account} would overflow its {unit} balance")]
    BalanceOverflow { account: AccountId, unit: Unit },
    #[error("the entry to reverse does not exist in this ledger")]
    ReversalTargetNotFound,
    #[error("that entry has already been reversed")]
    AlreadyReversed,
    #[error("a reversal cannot itself be reversed")]
    ReversalOfReversal,
    #[error("the reversal does not mirror the original in account {account}, {unit}: it must move at most what the original moved, the other way")]
    ReversalExceedsOriginal { account: AccountId, unit: Unit },
    #[error("this idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    /// The message names what the limit is and how much of it is used, never its counter key
    /// (an internal name carrying ids); the key stays in the value for the services.
    #[error("{}", super::plan::limit_text(*code, *used_minor, *max_minor))]
    LimitExceeded {
        code: super::plan::LimitCode,
        key: String,
        used_minor: i64,
        max_minor: i64,
    },
    #[error("record {record} is not {expected} (it was decided or changed meanwhile)")]
    RecordNotInState {
        record: uuid::Uuid,
        expected: String,
    },
    #[error("another line of this all-or-nothing group was refused, so none was posted")]
    GroupRefused,
    #[error("account {account} has fewer expired points than this expiry takes")]
    ExpiryExceedsExpired { account: AccountId },
    #[error("the redemption code or card is invalid, expired or already used")]
    RedemptionCodeInvalid,
    #[error("this shop made too many failed code attempts this hour")]
    ShopAttemptsExhausted,
    #[error("item {item} is not on sale")]
    ItemInactive { item: uuid::Uuid },
    #[error("this shop does not serve the resident's community")]
    ShopNotServing,
    #[error("item {sku} is not in this shop's catalogue")]
    UnknownItem { sku: String },
}

impl EntryDraft {
    /// The checks that need nothing but the draft itself, for a draft to be posted: counts,
    /// sizes, text, balance per unit, reversal links. The planner calls this again before
    /// writing (assert on two paths). Its text rule is [`text_fault`]: no control character
    /// but tab and line feed, and no invisible or bidirectional control character.
    pub fn check(&self) -> Result<(), LedgerError> {
        self.check_text(text_fault)?;
        self.check_shape()
    }

    /// The checks a posted entry must pass (`ledger-specs/hash-chain.md` section 6), which the
    /// verifiers run on the chain: those of [`check`](Self::check) except that its text only
    /// has to be free of control characters. Invisible and bidirectional characters are
    /// refused when text comes in, not made a rule of the chain: an entry posted before that
    /// refusal existed stays valid.
    pub fn check_posted(&self) -> Result<(), LedgerError> {
        self.check_text(|t| (!text_has_no_control(t)).then_some(TextFault::Control))?;
        self.check_shape()
    }

    /// Memo then metadata: size, then text (keys are checked with the metadata's limits).
    fn check_text(&self, fault: impl Fn(&str) -> Option<TextFault>) -> Result<(), LedgerError> {
        if self.memo.len() > MEMO_MAX_BYTES {
            return Err(LedgerError::MemoTooLong);
        }
        if let Some(f) = fault(&self.memo) {
            return Err(f.into());
        }
        check_metadata(&self.metadata)?;
        if self
            .metadata
            .get(super::lots::LOT_EXPIRY_KEY)
            .is_some_and(|d| !super::lots::is_valid_date(d))
        {
            return Err(LedgerError::MetadataInvalid);
        }
        if let Some(f) = self.metadata.values().find_map(|v| fault(v)) {
            return Err(f.into());
        }
        Ok(())
    }

    fn check_shape(&self) -> Result<(), LedgerError> {
        if self.postings.len() < POSTINGS_MIN {
            return Err(LedgerError::TooFewPostings);
        }
        if self.postings.len() > POSTINGS_MAX {
            return Err(LedgerError::TooManyPostings);
        }
        if self
            .metadata
            .get(super::lots::LOT_EXPIRY_KEY)
            .is_some_and(|d| !super::lots::is_valid_date(d))
        {
            return Err(LedgerError::MetadataInvalid);
        }
        match (self.kind.is_reversal(), self.reverses.is_some()) {
            (true, false) => return Err(LedgerError::ReversalLinkMissing { kind: self.kind }),
            (false, true) => return Err(LedgerError::ReversalLinkForbidden { kind: self.kind }),
            _ => {}
        }
        for unit in Unit::ALL {
            let (mut debits, mut credits) = (0i64, 0i64);
            for p in self.postings.iter().filter(|p| p.unit == unit) {
                // Cannot overflow: at most 64 postings of at most 10^10 hundredths.
                match p.side {
                    Side::Debit => debits += p.amount.minor(),
                    Side::Credit => credits += p.amount.minor(),
                }
            }
            if debits != credits {
                return Err(LedgerError::Unbalanced {
                    unit,
                    debits,
                    credits,
                });
            }
        }
        for (i, a) in self.postings.iter().enumerate() {
            for b in &self.postings[i + 1..] {
                if a.account == b.account && a.unit == b.unit && a.side != b.side {
                    return Err(LedgerError::AccountOnBothSides {
                        account: a.account,
                        unit: a.unit,
                    });
                }
            }
        }
        Ok(())
    }
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), LedgerError> {
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.len() <= METADATA_KEY_MAX_BYTES
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    if metadata.len() > METADATA_PAIRS_MAX
        || metadata
            .iter()
            .any(|(k, v)| !key_ok(k) || v.len() > METADATA_VALUE_MAX_BYTES)
    {
        return Err(LedgerError::MetadataInvalid);
    }
    Ok(())
}

/// What makes a piece of free text unacceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFault {
    /// A control character (Unicode Cc) other than tab and line feed.
    Control,
    /// An invisible or bidirectional control character ([`is_invisible`]).
    Invisible,
}

impl From<TextFault> for LedgerError {
    fn from(fault: TextFault) -> Self {
        match fault {
            TextFault::Control => LedgerError::TextInvalid,
            TextFault::Invisible => LedgerError::TextInvisible,
        }
    }
}

/// Whether `c` is a character that shows nothing (or reorders what is shown) and so may not
/// be in a name, a label or a memo, where it could make two texts look alike or reverse what a
/// receipt seems to say: every character of Unicode general category Cf ("format") and the
/// line and paragraph separators (Zl, Zp). Written out by hand from Unicode 16.0:
///
/// | code points | what |
/// |---|---|
/// | U+00AD | soft hyphen |
/// | U+0600–U+0605, U+06DD, U+070F, U+0890–U+0891, U+08E2 | Arabic and Syriac number and end-of-ayah marks |
/// | U+061C | Arabic letter mark (bidirectional) |
/// | U+180E | Mongolian vowel separator |
/// | U+200B–U+200D | zero-width space, non-joiner, joiner |
/// | U+200E, U+200F | left-to-right and right-to-left marks (bidirectional) |
/// | U+2028, U+2029 | line separator (Zl), paragraph separator (Zp) |
/// | U+202A–U+202E | bidirectional embeddings and overrides |
/// | U+2060–U+2064 | word joiner and invisible operators |
/// | U+2066–U+2069 | bidirectional isolates |
/// | U+206A–U+206F | deprecated format characters |
/// | U+FEFF | zero-width no-break space, the byte-order mark |
/// | U+FFF9–U+FFFB | interlinear annotation |
/// | U+110BD, U+110CD | Kaithi number signs |
/// | U+13430–U+1343F | Egyptian hieroglyph format controls |
/// | U+1BCA0–U+1BCA3 | shorthand format controls |
/// | U+1D173–U+1D17A | musical symbol format controls |
/// | U+E0001, U+E0020–U+E007F | tag characters |
///
/// The zero-width joiner (U+200D) also glues emoji sequences (👨‍👩‍👧) and the non-joiner
/// (U+200C) is used in Persian and some Indic scripts; names, labels and memos of a Chinese
/// volunteer programme need neither, so both are refused with the rest. Tab and line feed are
/// controls (Cc), not format characters; [`text_fault`] allows those two.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// What is wrong with free text that comes in (a name, a label, a memo, a metadata value, a
/// reason, a note…), judged by its first offending character: a control character other than
/// tab and line feed (NUL in particular cannot be stored by PostgreSQL, and no control
/// character belongs on a receipt), or an invisible or bidirectional one ([`is_invisible`]).
pub fn text_fault(text: &str) -> Option<TextFault> {
    text.chars().find_map(|c| {
        if c.is_control() && c != '\t' && c != '\n' {
            Some(TextFault::Control)
        } else if is_invisible(c) {
            Some(TextFault::Invisible)
        } else {
            None
        }
    })
}

/// Whether free text is acceptable as new input: [`text_fault`] finds nothing.
pub fn text_is_clean(text: &str) -> bool {
    text_fault(text).is_none()
}

/// The text rule of a posted entry (`hash-chain.md` section 6): no control character other
/// than tab and line feed.
pub fn text_has_no_control(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && c != '\t' && c != '\n')
}

/// Whether `key` is acceptable as an idempotency key: 1..=128 bytes of printable ASCII, no spaces.
pub fn idempotency_key_is_valid(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= IDEMPOTENCY_KEY_MAX_BYTES
        && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `actor` is acceptable: 1..=128 bytes of printable ASCII, no spaces.
pub fn actor_is_valid(actor: &str) -> bool {
    !actor.is_empty()
        && actor.len() <= ACTOR_MAX_BYTES
        && actor.bytes().all(|b| b.is_ascii_graphic())
}

/// An entry as posted: the draft plus what the ledger assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedEntry {
    pub ledger_id: String,
    pub seq: i64,
    pub id: Uuid,
    pub kind: EntryKind,
    pub postings: Vec<Posting>,
    pub memo: String,
    pub metadata: BTreeMap<String, String>,
    pub reverses: Option<Uuid>,
    pub actor: String,
    pub idempotency_key: String,
    /// Microseconds since the Unix epoch, UTC. Non-decreasing along the chain.
    pub posted_at_micros: i64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl PostedEntry {
    pub fn draft(&self) -> EntryDraft {
        EntryDraft {
            kind: self.kind,
            postings: self.postings.clone(),
            memo: self.memo.clone(),
            metadata: self.metadata.clone(),
            reverses: self.reverses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_exactly_the_listed_ranges() {
        // Every boundary of every range, and the neighbours just outside it.
        let ranges: [(u32, u32); 21] = [
            (0x00AD, 0x00AD),
            (0x0600, 0x0605),
            (0x061C, 0x061C),
            (0x06DD, 0x06DD),
            (0x070F, 0x070F),
            (0x0890, 0x0891),
            (0x08E2, 0x08E2),
            (0x180E, 0x180E),
            (0x200B, 0x200F),
            (0x2028, 0x202E),
            (0x2060, 0x2064),
            (0x2066, 0x206F),
            (0xFEFF, 0xFEFF),
            (0xFFF9, 0xFFFB),
            (0x110BD, 0x110BD),
            (0x110CD, 0x110CD),
            (0x13430, 0x1343F),
            (0x1BCA0, 0x1BCA3),
            (0x1D173, 0x1D17A),
            (0xE0001, 0xE0001),
            (0xE0020, 0xE007F),
        ];
        let inside = |n: u32| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&n));
        for (lo, hi) in ranges {
            for n in [lo.wrapping_sub(1), lo, hi, hi + 1] {
                if let Some(c) = char::from_u32(n) {
                    assert_eq!(is_invisible(c), inside(n), "U+{n:04X}");
                }
            }
        }
        // The whole Basic Multilingual Plane and the first supplementary planes agree with
        // the list, so no range was mistyped in one place and not the other.
        for n in 0..=0xE_FFFF {
            if let Some(c) = char::from_u32(n) {
                assert_eq!(is_invisible(c), inside(n), "U+{n:04X}");
            }
        }
        // What the review named.
        for c in [
            '\u{202E}', '\u{FEFF}', '\u{2028}', '\u{2029}', '\u{061C}', '\u{200E}', '\u{200F}',
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{2064}', '\u{00AD}',
        ] {
            assert!(is_invisible(c), "U+{:04X}", c as u32);
        }
        // Visible text, spaces and the two allowed controls are not invisible.
        for c in [
            'a', '王', ' ', '\u{3000}', '\u{00A0}', '\t', '\n', '😀', '\u{FE0F}',
        ] {
            assert!(!is_invisible(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn text_faults_name_the_first_offending_character() {
        assert_eq!(text_fault("王秀英\t备注\n第二行"), None);
        assert_eq!(text_fault("a\u{0}b"), Some(TextFault::Control));
        assert_eq!(text_fault("a\rb"), Some(TextFault::Control));
        assert_eq!(text_fault("a\u{202E}b"), Some(TextFault::Invisible));
        assert_eq!(text_fault("\u{FEFF}a\u{1}"), Some(TextFault::Invisible));
        assert_eq!(text_fault("\u{1}a\u{FEFF}"), Some(TextFault::Control));
        assert!(text_is_clean("爱心超市"));
        assert!(!text_is_clean("爱心\u{200B}超市"));
        // A posted entry's rule allows invisible characters (they are refused on input only).
        assert!(text_has_no_control("爱心\u{200B}超市"));
        assert!(!text_has_no_control("a\rb"));
    }

    #[test]
    fn new_drafts_refuse_invisible_text_and_posted_entries_keep_it() {
        let draft = |memo: &str, value: &str| EntryDraft {
            kind: EntryKind::Adjust,
            postings: vec![
                Posting {
                    account: Uuid::from_u128(1),
                    unit: Unit::Points,
                    side: Side::Debit,
                    amount: Amount::parse("1").unwrap(),
                },
                Posting {
                    account: Uuid::from_u128(2),
                    unit: Unit::Points,
                    side: Side::Credit,
                    amount: Amount::parse("1").unwrap(),
                },
            ],
            memo: memo.to_owned(),
            metadata: BTreeMap::from([("note".to_owned(), value.to_owned())]),
            reverses: None,
        };
        assert_eq!(draft("ok", "ok").check(), Ok(()));
        for (memo, value) in [("a\u{202E}b", "ok"), ("ok", "\u{2028}")] {
            assert_eq!(draft(memo, value).check(), Err(LedgerError::TextInvisible));
            assert_eq!(draft(memo, value).check_posted(), Ok(()));
        }
        for (memo, value) in [("a\rb", "ok"), ("ok", "\u{7}")] {
            assert_eq!(draft(memo, value).check(), Err(LedgerError::TextInvalid));
            assert_eq!(
                draft(memo, value).check_posted(),
                Err(LedgerError::TextInvalid)
            );
        }
    }
}
