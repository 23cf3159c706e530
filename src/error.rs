//! The one table of stable error codes, and the one error every service returns.
//!
//! Every refusal aixin gives, over HTTP, the CLI or (later) a page, is an [`Error`]: one of the
//! [`ErrorCode`]s, a human detail, and structured [`Fields`] (the item, the balance, the
//! shortfall, the bad lines of a roster) from which an edge can say what went wrong in its own
//! words. The HTTP API answers it as RFC 9457 problem+json with
//! `type = "urn:aixin:problem:<code>"` and the fields as extension members;
//! `ledger-specs/errors.md` lists the codes and fields for clients, and a test keeps that list
//! complete.

use axum::http::StatusCode;
use serde::Serialize;

use crate::ledger::{format_minor, AmountError, LedgerError, LimitCode};

macro_rules! error_codes {
    ($( $variant:ident = ($code:literal, $status:literal, $title:literal) ),* $(,)?) => {
        /// A stable error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant ),* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant ),* ];

            /// The code as clients see it, also the last part of the problem `type`.
            pub fn code(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code ),* }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $( ErrorCode::$variant => match StatusCode::from_u16($status) {
                        Ok(status) => status,
                        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    } ),*
                }
            }

            /// A short, fixed, human-readable summary.
            pub fn title(self) -> &'static str {
                match self { $( ErrorCode::$variant => $title ),* }
            }
        }
    };
}

error_codes! {
    // Request shape.
    MalformedJson = ("malformed_json", 400, "The body is not valid JSON"),
    InvalidBody = ("invalid_body", 422, "The JSON does not match what this endpoint takes"),
    UnsupportedMediaType = ("unsupported_media_type", 415, "The body must be application/json"),
    BodyTooLarge = ("body_too_large", 413, "The body is larger than this endpoint accepts"),
    InvalidQuery = ("invalid_query", 400, "A query parameter is not valid"),
    BadRequest = ("bad_request", 400, "The request is not one this endpoint can read"),
    MissingIdempotencyKey = ("missing_idempotency_key", 400, "This request needs an Idempotency-Key header"),
    InvalidIdempotencyKey = ("invalid_idempotency_key", 400, "The Idempotency-Key header is not valid"),
    IdempotencyKeyReused = ("idempotency_key_reused", 422, "This idempotency key was used for a different request"),
    // Amounts and names.
    AmountNotANumber = ("amount_not_a_number", 422, "An amount is not a decimal number"),
    AmountNegative = ("amount_negative", 422, "An amount is negative"),
    AmountZero = ("amount_zero", 422, "An amount is zero"),
    AmountTooPrecise = ("amount_too_precise", 422, "An amount has more than two decimal places"),
    AmountTooLarge = ("amount_too_large", 422, "An amount exceeds the maximum"),
    UnknownUnit = ("unknown_unit", 422, "Unknown unit"),
    UnknownAccountKind = ("unknown_account_kind", 422, "Unknown account kind"),
    UnknownEntryKind = ("unknown_entry_kind", 422, "Unknown entry kind"),
    UnknownSide = ("unknown_side", 422, "Unknown posting side"),
    FieldTooLong = ("field_too_long", 422, "A text field exceeds its limit"),
    // Ledger rules.
    TooFewPostings = ("too_few_postings", 422, "An entry needs at least two postings"),
    TooManyPostings = ("too_many_postings", 422, "An entry has too many postings"),
    EntryUnbalanced = ("entry_unbalanced", 422, "The entry does not balance"),
    AccountOnBothSides = ("account_on_both_sides", 422, "An account appears on both sides of an entry"),
    MemoTooLong = ("memo_too_long", 422, "The memo is too long"),
    TextInvalid = ("text_invalid", 422, "Text contains a control character"),
    TextInvisible = ("text_invisible", 422, "Text contains an invisible or bidirectional control character"),
    EntryKindMismatch = ("entry_kind_mismatch", 422, "The entry's kind does not allow moving these accounts this way"),
    RefundOfNonRedemption = ("refund_of_non_redemption", 422, "A refund can only reverse a redemption"),
    MetadataInvalid = ("metadata_invalid", 422, "The metadata exceeds its limits"),
    ReversalLinkMissing = ("reversal_link_missing", 422, "A refund or reversal must name the entry it reverses"),
    ReversalLinkForbidden = ("reversal_link_forbidden", 422, "Only refunds and reversals may name an entry they reverse"),
    UnknownAccount = ("unknown_account", 422, "A posting names an account that does not exist"),
    UnitNotAllowed = ("unit_not_allowed", 422, "An account cannot hold this unit"),
    InsufficientBalance = ("insufficient_balance", 422, "Insufficient balance"),
    BalanceOverflow = ("balance_overflow", 422, "A balance would overflow"),
    ReversalTargetNotFound = ("reversal_target_not_found", 422, "The entry to reverse does not exist"),
    AlreadyReversed = ("already_reversed", 409, "The entry has already been reversed"),
    ReversalOfReversal = ("reversal_of_reversal", 422, "A reversal cannot be reversed"),
    ReversalExceedsOriginal = ("reversal_exceeds_original", 422, "The reversal does not mirror the original"),
    AccountExists = ("account_exists", 409, "An account with this id exists with other attributes"),
    DailyCapExceeded = ("daily_cap_exceeded", 422, "The resident's daily cap for this activity is reached"),
    MonthlyCapExceeded = ("monthly_cap_exceeded", 422, "The resident's monthly cap for this activity is reached"),
    RecordNotInState = ("record_not_in_state", 409, "The record was already decided or changed"),
    GroupRefused = ("group_refused", 422, "Another line of this all-or-nothing group was refused"),
    AsOfInFuture = ("as_of_in_future", 422, "Expiry cannot run as of a day after today"),
    ExpiryExceedsExpired = ("expiry_exceeds_expired", 409, "The account has fewer expired points than this expiry takes; run expiry again"),
    // Earning.
    InvalidCode = ("invalid_code", 422, "An id must be 1 to 64 ASCII letters, digits, '-' or '_'"),
    DateInvalid = ("date_invalid", 422, "A date is not valid here"),
    HoursInvalid = ("hours_invalid", 422, "Hours must be above 0 and at most 24"),
    PhoneInvalid = ("phone_invalid", 422, "The phone number is not valid"),
    UnknownOrgUnit = ("unknown_org_unit", 422, "No such organisation unit"),
    OrgUnitExists = ("org_unit_exists", 409, "An organisation unit with this id exists with other attributes"),
    UnknownCommunity = ("unknown_community", 422, "No such community"),
    UnknownResident = ("unknown_resident", 422, "No such resident"),
    UnknownRule = ("unknown_rule", 422, "No such earning rule in this community"),
    UnknownRecord = ("unknown_record", 422, "No such service record"),
    RuleInvalid = ("rule_invalid", 422, "The rule's terms are not consistent"),
    RuleNotValid = ("rule_not_valid", 422, "The rule does not apply on that day"),
    RuleVersionConflict = ("rule_version_conflict", 409, "The rule has another current version"),
    DuplicateService = ("duplicate_service", 409, "This service is already recorded"),
    ApproverIsSubmitter = ("approver_is_submitter", 422, "The approver must not be the submitter"),
    RosterInvalid = ("roster_invalid", 422, "Some roster lines cannot be credited; nothing was recorded"),
    CorrectionNotOpen = ("correction_not_open", 409, "The correction was already resolved"),
    // Redemption.
    RedemptionCodeInvalid = ("redemption_code_invalid", 422, "The redemption code or card is invalid, expired or already used; ask the resident to refresh the code"),
    ForeignPaymentCode = ("foreign_payment_code", 422, "This is a payment app's code, not an aixin code; ask the resident for their aixin code"),
    ShopAttemptsExhausted = ("shop_attempts_exhausted", 429, "Too many failed code attempts at this shop this hour"),
    ItemInactive = ("item_inactive", 422, "An item in the basket is not on sale"),
    UnknownItem = ("unknown_item", 422, "An item in the basket is not in this shop's catalogue"),
    ShopNotServing = ("shop_not_serving", 422, "This shop does not serve the resident's community"),
    OutOfStock = ("out_of_stock", 422, "An item in the basket is out of stock"),
    ItemDailyCapExceeded = ("item_daily_cap_exceeded", 422, "The resident's per-day limit on an item is reached"),
    ItemMonthlyCapExceeded = ("item_monthly_cap_exceeded", 422, "The resident's per-month limit on an item is reached"),
    PeriodAlreadySettled = ("period_already_settled", 409, "Part of this period is already settled"),
    RefundExceedsRedemption = ("refund_exceeds_redemption", 422, "The refund exceeds what the redemption took"),
    RefundWindowClosed = ("refund_window_closed", 422, "The shop's refund window for this redemption has closed"),
    RefunderIsRedeemer = ("refunder_is_redeemer", 403, "Another staff member or the shop owner must make this refund"),
    BasketInvalid = ("basket_invalid", 422, "The basket is empty, too large or names an item twice"),
    NothingToSettle = ("nothing_to_settle", 422, "The period's net points are not above zero"),
    CredentialRevoked = ("credential_revoked", 422, "The resident has no active redemption credential"),
    // Audit.
    AuditRangeInvalid = ("audit_range_invalid", 422, "The range does not name entries of this ledger"),
    AuditBoundInvalid = ("audit_bound_invalid", 400, "A range bound is neither a sequence number nor a date (YYYY-MM-DD)"),
    // Signing in (the web pages).
    SignInFailed = ("sign_in_failed", 401, "Signing in failed: the name, password, PIN, link or device is not right or no longer valid"),
    TooManyAttempts = ("too_many_attempts", 429, "Too many failed sign-in attempts; wait before trying again"),
    PasswordInvalid = ("password_invalid", 422, "A password must be 10 to 128 bytes long"),
    PinInvalid = ("pin_invalid", 422, "A PIN must be 6 digits and not an easy one such as 123456"),
    NameTaken = ("name_taken", 409, "A user with this name exists in this ledger"),
    // Administration.
    UnknownSigningKey = ("unknown_signing_key", 422, "No signing key with this id"),
    SigningKeyActive = ("signing_key_active", 409, "The active signing key cannot be revoked; rotate first"),
    TokenOfUser = ("token_of_user", 409, "This token is a user's own; disable the user instead"),
    // Access.
    Unauthorized = ("unauthorized", 401, "A valid bearer token is required"),
    Forbidden = ("forbidden", 403, "This role may not do this"),
    NotFound = ("not_found", 404, "Not found"),
    MethodNotAllowed = ("method_not_allowed", 405, "Method not allowed"),
    // The service.
    Overloaded = ("overloaded", 503, "The service is busy; retry with the same idempotency key"),
    Unavailable = ("unavailable", 503, "The service is temporarily unavailable; retry with the same idempotency key"),
    Internal = ("internal", 500, "Internal error"),
}

impl ErrorCode {
    /// The RFC 9457 `type` URI of this code.
    pub fn type_uri(self) -> String {
        format!("urn:aixin:problem:{}", self.code())
    }
}

impl From<AmountError> for ErrorCode {
    fn from(e: AmountError) -> Self {
        match e {
            AmountError::NotANumber => ErrorCode::AmountNotANumber,
            AmountError::Negative => ErrorCode::AmountNegative,
            AmountError::Zero => ErrorCode::AmountZero,
            AmountError::TooPrecise => ErrorCode::AmountTooPrecise,
            AmountError::TooLarge => ErrorCode::AmountTooLarge,
        }
    }
}

impl From<&LedgerError> for ErrorCode {
    fn from(e: &LedgerError) -> Self {
        match e {
            LedgerError::TooFewPostings => ErrorCode::TooFewPostings,
            LedgerError::TooManyPostings => ErrorCode::TooManyPostings,
            LedgerError::Unbalanced { .. } => ErrorCode::EntryUnbalanced,
            LedgerError::AccountOnBothSides { .. } => ErrorCode::AccountOnBothSides,
            LedgerError::MemoTooLong => ErrorCode::MemoTooLong,
            LedgerError::TextInvalid => ErrorCode::TextInvalid,
            LedgerError::TextInvisible => ErrorCode::TextInvisible,
            LedgerError::KindMismatch { .. } => ErrorCode::EntryKindMismatch,
            LedgerError::RefundOfNonRedemption { .. } => ErrorCode::RefundOfNonRedemption,
            LedgerError::MetadataInvalid => ErrorCode::MetadataInvalid,
            LedgerError::ReversalLinkMissing { .. } => ErrorCode::ReversalLinkMissing,
            LedgerError::ReversalLinkForbidden { .. } => ErrorCode::ReversalLinkForbidden,
            LedgerError::UnknownAccount { .. } => ErrorCode::UnknownAccount,
            LedgerError::UnitNotAllowed { .. } => ErrorCode::UnitNotAllowed,
            LedgerError::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            LedgerError::BalanceOverflow { .. } => ErrorCode::BalanceOverflow,
            LedgerError::ReversalTargetNotFound => ErrorCode::ReversalTargetNotFound,
            LedgerError::AlreadyReversed => ErrorCode::AlreadyReversed,
            LedgerError::ReversalOfReversal => ErrorCode::ReversalOfReversal,
            LedgerError::ReversalExceedsOriginal { .. } => ErrorCode::ReversalExceedsOriginal,
            LedgerError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            LedgerError::LimitExceeded { code, .. } => match code {
                crate::ledger::LimitCode::DailyCap => ErrorCode::DailyCapExceeded,
                crate::ledger::LimitCode::MonthlyCap => ErrorCode::MonthlyCapExceeded,
                crate::ledger::LimitCode::OutOfStock => ErrorCode::OutOfStock,
                crate::ledger::LimitCode::ItemDailyCap => ErrorCode::ItemDailyCapExceeded,
                crate::ledger::LimitCode::ItemMonthlyCap => ErrorCode::ItemMonthlyCapExceeded,
                crate::ledger::LimitCode::PeriodSettled => ErrorCode::PeriodAlreadySettled,
                crate::ledger::LimitCode::RefundExceedsRedemption => {
                    ErrorCode::RefundExceedsRedemption
                }
            },
            LedgerError::RecordNotInState { .. } => ErrorCode::RecordNotInState,
            LedgerError::GroupRefused => ErrorCode::GroupRefused,
            LedgerError::ExpiryExceedsExpired { .. } => ErrorCode::ExpiryExceedsExpired,
            LedgerError::RedemptionCodeInvalid => ErrorCode::RedemptionCodeInvalid,
            LedgerError::ShopAttemptsExhausted => ErrorCode::ShopAttemptsExhausted,
            LedgerError::ItemInactive { .. } => ErrorCode::ItemInactive,
            LedgerError::ShopNotServing => ErrorCode::ShopNotServing,
            LedgerError::UnknownItem { .. } => ErrorCode::UnknownItem,
        }
    }
}

/// A refusal: a stable code, a human detail (English; 5xx details never carry internals) and
/// the structured facts behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub detail: String,
    /// Boxed: most refusals carry none, and a small `Err` keeps every `Result` small.
    pub fields: Box<Fields>,
    /// For rosters: every bad line and why.
    pub lines: Vec<LineProblem>,
}

/// What is wrong with one line of a roster (numbered from 1, as a person counts them).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LineProblem {
    pub line: usize,
    pub code: &'static str,
    pub detail: String,
}

/// The facts of a refusal, each present only where it applies. Amounts are decimal strings, as
/// everywhere in the API. These are problem+json extension members (`ledger-specs/errors.md`).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Fields {
    /// The unit of `balance`, `needed`, `shortfall`, `used` and `limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    /// The account's balance before the refused entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    /// What the refused entry would have taken from the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed: Option<String>,
    /// How much is missing: `needed − balance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<String>,
    /// The item concerned, by its code in the shop's catalogue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The item's name as the catalogue shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// For a limit: how much of it is used already (in the limit's own measure: points, or a
    /// count of items).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<String>,
    /// For a limit: its maximum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// For stock: how many units are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<String>,
    /// The request field that is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The payment app whose code was shown instead of an aixin code: `wechat`, `alipay` or
    /// `unionpay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The deployment's calendar day (UTC+8) when a date after it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub today: Option<String>,
    /// The community concerned, by its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// For too many attempts: the seconds until one more is counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Error {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Error {
            code,
            detail: detail.into(),
            fields: Box::default(),
            lines: Vec::new(),
        }
    }

    /// The code with its fixed title as the detail.
    pub fn bare(code: ErrorCode) -> Self {
        Error::new(code, code.title())
    }

    pub fn with_fields(mut self, fields: Fields) -> Self {
        self.fields = Box::new(fields);
        self
    }

    /// What the caller may not see does not exist, as far as the caller can tell.
    pub fn not_found() -> Self {
        Error::bare(ErrorCode::NotFound)
    }

    pub fn forbidden() -> Self {
        Error::bare(ErrorCode::Forbidden)
    }

    pub fn key_reused() -> Self {
        Error::new(
            ErrorCode::IdempotencyKeyReused,
            "this idempotency key was used for a different request",
        )
    }

    /// A roster refused whole, with every bad line.
    pub fn roster_refused(lines: Vec<LineProblem>) -> Self {
        let detail = format!(
            "{} line(s) of the roster cannot be credited; nothing was recorded",
            lines.len()
        );
        Error {
            lines,
            ..Error::new(ErrorCode::RosterInvalid, detail)
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.detail)
    }
}

impl std::error::Error for Error {}

impl From<LedgerError> for Error {
    fn from(error: LedgerError) -> Self {
        let fields = ledger_fields(&error);
        Error::new(ErrorCode::from(&error), error.to_string()).with_fields(fields)
    }
}

impl From<AmountError> for Error {
    fn from(error: AmountError) -> Self {
        Error::new(ErrorCode::from(error), error.to_string())
    }
}

/// The facts a ledger refusal carries by itself (a service that knows more, such as the item
/// behind a limit, adds to them).
fn ledger_fields(error: &LedgerError) -> Fields {
    match error {
        LedgerError::InsufficientBalance {
            unit,
            balance_minor,
            needed_minor,
            ..
        } => Fields {
            unit: Some(unit.as_str()),
            balance: Some(format_minor(*balance_minor)),
            needed: Some(format_minor(*needed_minor)),
            shortfall: Some(format_minor(needed_minor.saturating_sub(*balance_minor))),
            ..Fields::default()
        },
        // A stock counter holds minus the units left, against a maximum of zero.
        LedgerError::LimitExceeded {
            code: LimitCode::OutOfStock,
            used_minor,
            ..
        } => Fields {
            available: Some((-used_minor).max(0).to_string()),
            ..Fields::default()
        },
        // Item caps count units; the other limits count hundredths of points.
        LedgerError::LimitExceeded {
            code,
            used_minor,
            max_minor,
            ..
        } => {
            let show = |minor: i64| match code {
                LimitCode::ItemDailyCap | LimitCode::ItemMonthlyCap => minor.to_string(),
                _ => format_minor(minor),
            };
            Fields {
                used: Some(show(*used_minor)),
                limit: Some(show(*max_minor)),
                ..Fields::default()
            }
        }
        LedgerError::UnknownItem { sku } => Fields {
            sku: Some(sku.clone()),
            ..Fields::default()
        },
        _ => Fields::default(),
    }
}
