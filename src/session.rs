//! Signing in to the web pages: sessions, users with passwords, paired till devices and clerk
//! PINs, one-time links, and limits on failed attempts.
//!
//! **A session stands for a token.** Every signed-in person is a row of `api_tokens`: a user's
//! own token (admin, staff, auditor; its secret is random and never shown), a shop clerk's staff
//! token (the one `add_shop_staff` made, so the refund rule and the actor `token:{id}` are the
//! same at the till as over the API), or a resident's identity token (created the first time
//! they sign in). [`Sessions::principal_of_session`] answers the same [`Principal`] the token
//! would as a bearer token, so every service check applies unchanged, and checks the token on
//! every use: revoking it ends its sessions at once.
//!
//! **Secrets are never stored.** A session cookie (`axs_` + 256 random bits), a one-time link
//! (`axl_`) and a till device's secret (`axd_`) are stored as their SHA-256, the way tokens are;
//! passwords and PINs as Argon2id PHC strings ([`ARGON2_M_KIB`], [`ARGON2_T`], [`ARGON2_P`]: the
//! OWASP recommendation).
//!
//! **Who signs in how.** Users: name and password ([`Sessions::sign_in_password`]), the password
//! set through a one-time link. Clerks (and cashiers): name and 6-digit PIN, only on a till
//! device paired with their shop ([`Sessions::sign_in_clerk`]). Residents: a printed one-time
//! QR link ([`Sessions::sign_in_link`]) or their phone number and card PIN
//! ([`Sessions::sign_in_phone`]), never a password.
//!
//! **Guessing is bounded.** Failed attempts are counted in the database (they survive a
//! restart), per account and per client, over a sliding window; past a limit the answer is
//! `too_many_attempts` with `retry_after`. Every wrong name, password, PIN, link or device gets
//! the same `sign_in_failed`, after the same work (an unknown name still costs an Argon2id
//! verification), so nothing tells which part was wrong. The `client` every sign-in takes is how
//! the edge names the caller: its address (behind a proxy, the forwarded one the edge trusts).
//! Setting a password and pairing a device take a 256-bit link, which needs no count.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::auth::{hash_token, new_token, Principal, Role};
use crate::clock::Entropy;
use crate::earning::service::check_text;
use crate::earning::Earning;
use crate::error::{Error, ErrorCode, Fields};
use crate::model::derived_id;
use crate::redeem::Redemption;
use crate::store::redeem::{Shop, ShopStaff};
use crate::store::session::{DeviceRecord, LinkRecord, SessionRecord, SessionStore, UserRecord};
use crate::store::TokenRecord;

type Result<T> = std::result::Result<T, Error>;

/// A session cookie's value starts with this (then 64 hex digits: 256 random bits).
pub const SESSION_PREFIX: &str = "axs_";
/// A one-time link's secret starts with this (then 64 hex digits).
pub const LINK_PREFIX: &str = "axl_";
/// A till device's secret starts with this (then 64 hex digits).
pub const DEVICE_PREFIX: &str = "axd_";

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A user's session (admin, staff, auditor) ends after this long unused...
pub const USER_IDLE_MICROS: i64 = 12 * HOUR;
/// ...and this long after signing in, however busy.
pub const USER_ABSOLUTE_MICROS: i64 = 7 * DAY;
/// A clerk's session at a till lasts a shop day.
pub const CLERK_IDLE_MICROS: i64 = 16 * HOUR;
pub const CLERK_ABSOLUTE_MICROS: i64 = 16 * HOUR;
/// A resident's session on a phone that is not remembered.
pub const RESIDENT_IDLE_MICROS: i64 = HOUR;
pub const RESIDENT_ABSOLUTE_MICROS: i64 = 12 * HOUR;
/// A resident's session on a remembered phone ("记住这部手机").
pub const REMEMBERED_IDLE_MICROS: i64 = 30 * DAY;
pub const REMEMBERED_ABSOLUTE_MICROS: i64 = 180 * DAY;
/// A session's idle expiry is moved at most this often (one write a minute, not one a request).
pub const TOUCH_EVERY_MICROS: i64 = MINUTE;

/// How long a link to set a password stays usable.
pub const SET_PASSWORD_LINK_MICROS: i64 = 72 * HOUR;
/// How long a resident's printed sign-in link stays usable.
pub const RESIDENT_LINK_MICROS: i64 = 30 * DAY;
/// How long a link to pair a till device stays usable.
pub const PAIRING_LINK_MICROS: i64 = 24 * HOUR;

/// Failed attempts counted per account (a user name, a phone number, a clerk at a shop) within
/// [`ATTEMPT_WINDOW_MICROS`]; one more is refused.
pub const ACCOUNT_ATTEMPTS_MAX: i64 = 5;
/// Failed attempts counted per client (as the edge names it: its address) within the window.
pub const CLIENT_ATTEMPTS_MAX: i64 = 30;
/// The sliding window attempts are counted in.
pub const ATTEMPT_WINDOW_MICROS: i64 = 15 * MINUTE;

/// Argon2id memory cost in KiB, iterations and lanes: OWASP's recommendation (19 MiB, 2, 1).
pub const ARGON2_M_KIB: u32 = 19 * 1024;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;
/// Argon2id hashings at once per process (each takes [`ARGON2_M_KIB`] of memory).
const HASHINGS_MAX: usize = 4;

/// Shortest and longest password, in bytes.
pub const PASSWORD_MIN_BYTES: usize = 10;
pub const PASSWORD_MAX_BYTES: usize = 128;
/// Longest user name or device label, in characters.
pub const NAME_MAX_CHARS: usize = 64;

/// What kind of person a session is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// An admin, staff member or auditor, signed in with a password.
    User,
    /// A shop clerk or cashier at a paired till, signed in with a PIN.
    Clerk,
    /// A resident, signed in with a one-time link or phone and card PIN.
    Resident,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::User => "user",
            SessionKind::Clerk => "clerk",
            SessionKind::Resident => "resident",
        }
    }

    pub fn parse(text: &str) -> Option<SessionKind> {
        [SessionKind::User, SessionKind::Clerk, SessionKind::Resident]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// Whether a token of `role` may stand behind a session of this kind.
    fn admits(self, role: Role) -> bool {
        match self {
            // A shop's owner may be a user too, to reach the owner pages from any computer.
            SessionKind::User => {
                matches!(role, Role::Admin | Role::Staff | Role::Auditor | Role::Shop)
            }
            SessionKind::Clerk => matches!(role, Role::Shop | Role::Cashier),
            SessionKind::Resident => role == Role::Resident,
        }
    }

    /// (idle, absolute) lifetimes.
    fn lifetimes(self, remember: bool) -> (i64, i64) {
        match (self, remember) {
            (SessionKind::User, _) => (USER_IDLE_MICROS, USER_ABSOLUTE_MICROS),
            (SessionKind::Clerk, _) => (CLERK_IDLE_MICROS, CLERK_ABSOLUTE_MICROS),
            (SessionKind::Resident, false) => (RESIDENT_IDLE_MICROS, RESIDENT_ABSOLUTE_MICROS),
            (SessionKind::Resident, true) => (REMEMBERED_IDLE_MICROS, REMEMBERED_ABSOLUTE_MICROS),
        }
    }
}

/// Who a live session is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn {
    /// Exactly what the session's token answers as a bearer token.
    pub principal: Principal,
    pub session_id: Uuid,
    /// The user's, clerk's or resident's name, to greet them with.
    pub name: String,
    pub kind: SessionKind,
    /// A resident's remembered phone: the cookie may outlive the browser.
    pub remember: bool,
    /// The till device a clerk signed in on.
    pub device_id: Option<Uuid>,
    /// When the session ends if unused (moved on use, at most once a minute).
    pub idle_expires_at_micros: i64,
    /// When the session ends however busy.
    pub expires_at_micros: i64,
}

/// A session just opened: the cookie value (shown only now) and who it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie's value: `axs_` + 64 hex digits. Never stored.
    pub cookie: String,
    pub signed_in: SignedIn,
}

/// A one-time link's secret (shown only now) and when it stops working. The pages' paths are
/// `/set-password/{secret}`, `/r/{secret}` and `/till/pair/{secret}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub secret: String,
    pub expires_at_micros: i64,
}

/// A user who signs in with a password (never the password's hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub ledger_id: String,
    pub role: Role,
    pub scope: Option<String>,
    pub name: String,
    pub token_id: Uuid,
    pub has_password: bool,
    pub created_at_micros: i64,
    pub disabled_at_micros: Option<i64>,
}

/// A till device paired with a shop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TillDevice {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub label: String,
    pub paired_at_micros: i64,
    pub unpaired_at_micros: Option<i64>,
}

/// A device just paired: its secret (for the device's long-lived cookie, shown only now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairedDevice {
    pub device: TillDevice,
    /// `axd_` + 64 hex digits. Never stored.
    pub secret: String,
}

/// The sign-in service. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pub store: Arc<dyn SessionStore>,
    pub earning: Earning,
    pub redemption: Redemption,
    hashing: Arc<tokio::sync::Semaphore>,
}

/// Runs a write of several statements as its own task: a request dropped half-way must not cut
/// it off between `BEGIN` and `COMMIT`.
async fn detach<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T> {
    tokio::spawn(fut)
        .await
        .map_err(|_| Error::bare(ErrorCode::Internal))
}

fn failed() -> Error {
    Error::bare(ErrorCode::SignInFailed)
}

/// A fresh secret with `prefix` and its SHA-256.
fn new_secret(entropy: &dyn Entropy, prefix: &str) -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    entropy.fill(&mut bytes);
    let secret = format!("{prefix}{}", hex::encode(bytes));
    let hash = hash_token(&secret);
    (secret, hash)
}

/// The SHA-256 of a secret of the form `prefix` + 64 lowercase hex digits, or None for anything
/// else (which then names nothing, without a lookup).
fn hash_of(secret: &str, prefix: &str) -> Option<[u8; 32]> {
    let digits = secret.strip_prefix(prefix)?;
    (digits.len() == 64
        && digits
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then(|| hash_token(secret))
}

/// The counted key of an attempt: SHA-256 over the ledger, the scope and the key, so that no
/// name, phone number or address is stored.
fn attempt_key(ledger: &str, scope: &str, key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in ["aixin.sign-in-attempt.v1", ledger, scope, key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|_| Error::bare(ErrorCode::Internal))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The Argon2id PHC string of `secret` with `salt`.
fn phc_of(secret: &[u8], salt: &[u8; 16]) -> Result<String> {
    let salt = SaltString::encode_b64(salt).map_err(|_| Error::bare(ErrorCode::Internal))?;
    Ok(argon2()?
        .hash_password(secret, &salt)
        .map_err(|_| Error::bare(ErrorCode::Internal))?
        .to_string())
}

/// Whether `secret` matches the PHC string (the comparison inside is constant-time).
fn phc_matches(secret: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    argon2().is_ok_and(|a| a.verify_password(secret, &hash).is_ok())
}

/// A PHC string no input matches in practice, verified against when there is nothing to check,
/// so that an unknown name costs what a known one does.
fn stand_in_phc() -> &'static str {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    STAND_IN.get_or_init(|| phc_of(b"aixin stand-in password v1", &[0u8; 16]).unwrap_or_default())
}

/// A new password is 10 to 128 bytes.
pub fn check_password(password: &str) -> Result<()> {
    if (PASSWORD_MIN_BYTES..=PASSWORD_MAX_BYTES).contains(&password.len()) {
        Ok(())
    } else {
        Err(Error::bare(ErrorCode::PasswordInvalid))
    }
}

/// A clerk's PIN is 6 ASCII digits, and not one of the PINs people pick first: one digit
/// repeated, a run up or down, a triple or pair repeated, or a well-known one.
pub fn check_pin(pin: &str) -> Result<()> {
    let digits: Vec<u8> = pin.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    let well_formed = digits.len() == 6 && digits.iter().all(|d| *d <= 9);
    let same = |step: i8| {
        digits
            .windows(2)
            .all(|w| (w[1] as i8 - w[0] as i8).rem_euclid(10) == step.rem_euclid(10))
    };
    let repeats = |period: usize| (period..6).all(|i| digits[i] == digits[i - period]);
    const WELL_KNOWN: [&str; 10] = [
        "123321", "654456", "112233", "520520", "520131", "131452", "147258", "147369", "159357",
        "258369",
    ];
    let trivial = well_formed
        && (same(0)
            || same(1)
            || same(-1)
            || repeats(2)
            || repeats(3)
            || WELL_KNOWN.contains(&pin));
    if well_formed && !trivial {
        Ok(())
    } else {
        Err(Error::bare(ErrorCode::PinInvalid))
    }
}

/// A phone number as typed, without spaces and dashes: `+` and 5 to 20 digits, or None.
fn phone_digits(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let body = digits.strip_prefix('+').unwrap_or(&digits);
    ((5..=20).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The principal a live token record answers, as [`crate::auth::authenticate`] does.
fn live_principal(token: &TokenRecord, now: i64) -> Option<Principal> {
    if token.revoked_at_micros.is_some() || token.expires_at_micros.is_some_and(|e| e <= now) {
        return None;
    }
    Some(Principal {
        token_id: token.id,
        ledger_id: token.ledger_id.clone(),
        role: Role::parse(&token.role)?,
        scope: token.scope.clone(),
        operator: None,
    })
}

fn user_of(record: UserRecord) -> Result<User> {
    Ok(User {
        id: record.id,
        role: Role::parse(&record.role).ok_or_else(|| Error::bare(ErrorCode::Internal))?,
        ledger_id: record.ledger_id,
        scope: record.scope,
        name: record.name,
        token_id: record.token_id,
        has_password: record.password_hash.is_some(),
        created_at_micros: record.created_at_micros,
        disabled_at_micros: record.disabled_at_micros,
    })
}

fn device_of(record: DeviceRecord) -> TillDevice {
    TillDevice {
        id: record.id,
        shop_id: record.shop_id,
        label: record.label,
        paired_at_micros: record.paired_at_micros,
        unpaired_at_micros: record.unpaired_at_micros,
    }
}

/// A name or label: clean text, trimmed, 1 to [`NAME_MAX_CHARS`] characters.
fn check_name(field: &str, text: &str) -> Result<String> {
    let text = text.trim();
    check_text(field, text, true)?;
    if text.chars().count() > NAME_MAX_CHARS {
        return Err(Error::new(
            ErrorCode::FieldTooLong,
            format!("{field} is longer than {NAME_MAX_CHARS} characters"),
        )
        .with_fields(Fields {
            field: Some(field.to_owned()),
            ..Fields::default()
        }));
    }
    Ok(text.to_owned())
}

/// An attempt being counted: its rows, and the account key it counts under.
struct Attempt {
    id: Uuid,
    account: Option<[u8; 32]>,
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, earning: Earning, redemption: Redemption) -> Self {
        Sessions {
            store,
            earning,
            redemption,
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHINGS_MAX)),
        }
    }

    fn now(&self) -> i64 {
        self.earning.clock.now_micros()
    }

    fn entropy(&self) -> &dyn Entropy {
        self.earning.entropy.as_ref()
    }

    // ---- Argon2id, off the async threads and bounded ----

    async fn hash_secret(&self, secret: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        self.entropy().fill(&mut salt);
        let secret = secret.as_bytes().to_vec();
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| Error::bare(ErrorCode::Internal))?;
        tokio::task::spawn_blocking(move || phc_of(&secret, &salt))
            .await
            .map_err(|_| Error::bare(ErrorCode::Internal))?
    }

    /// Verifies `secret` against each PHC string (or the stand-in when there is none, so the
    /// work does not depend on it); the index of the first that matches. Only the first
    /// [`PASSWORD_MAX_BYTES`] bytes are hashed (a longer secret is never a password or PIN, and
    /// need not cost more to refuse).
    async fn first_match(&self, secret: &str, phcs: Vec<String>) -> Result<Option<usize>> {
        let too_long = secret.len() > PASSWORD_MAX_BYTES;
        let secret = secret.as_bytes()[..secret.len().min(PASSWORD_MAX_BYTES)].to_vec();
        let phcs = if too_long { Vec::new() } else { phcs };
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| Error::bare(ErrorCode::Internal))?;
        tokio::task::spawn_blocking(move || {
            if phcs.is_empty() {
                phc_matches(&secret, stand_in_phc());
                return None;
            }
            let mut found = None;
            for (i, phc) in phcs.iter().enumerate() {
                if phc_matches(&secret, phc) && found.is_none() {
                    found = Some(i);
                }
            }
            found
        })
        .await
        .map_err(|_| Error::bare(ErrorCode::Internal))
    }

    // ---- Counted attempts ----

    /// Counts an attempt against the account (if any) and the client; refuses it, uncounted,
    /// with `too_many_attempts` when either is past its limit. An attempt stays counted (as a
    /// failure) unless [`Sessions::succeeded`] is called.
    async fn begin_attempt(
        &self,
        ledger: &str,
        account: Option<&str>,
        client: &str,
    ) -> Result<Attempt> {
        let now = self.now();
        let account = account.map(|a| attempt_key(ledger, "account", a));
        let mut keys: Vec<(&'static str, [u8; 32], i64)> = Vec::new();
        if let Some(hash) = account {
            keys.push(("account", hash, ACCOUNT_ATTEMPTS_MAX));
        }
        keys.push((
            "client",
            attempt_key(ledger, "client", client),
            CLIENT_ATTEMPTS_MAX,
        ));
        let id = self.entropy().uuid();
        let store = self.store.clone();
        let ledger_owned = ledger.to_owned();
        let counted_keys: Vec<(&'static str, [u8; 32])> =
            keys.iter().map(|(s, h, _)| (*s, *h)).collect();
        let counted = detach(async move {
            store
                .count_attempt(
                    &ledger_owned,
                    id,
                    &counted_keys,
                    now,
                    now - ATTEMPT_WINDOW_MICROS,
                )
                .await
        })
        .await??;
        let mut wait = None;
        for ((_, _, max), c) in keys.iter().zip(&counted) {
            if c.count > *max {
                let left = (c.oldest_at_micros + ATTEMPT_WINDOW_MICROS - now).max(SECOND);
                let seconds = u64::try_from((left + SECOND - 1) / SECOND).unwrap_or(1);
                wait = Some(wait.map_or(seconds, |w: u64| w.max(seconds)));
            }
        }
        if let Some(seconds) = wait {
            self.store.forget_attempt(ledger, id).await?;
            return Err(Error::new(
                ErrorCode::TooManyAttempts,
                format!("too many failed sign-in attempts; try again in {seconds} seconds"),
            )
            .with_fields(Fields {
                retry_after: Some(seconds),
                ..Fields::default()
            }));
        }
        Ok(Attempt { id, account })
    }

    /// The attempt succeeded: it does not count, and its account starts afresh.
    async fn succeeded(&self, ledger: &str, attempt: &Attempt) -> Result<()> {
        self.store.forget_attempt(ledger, attempt.id).await?;
        if let Some(account) = &attempt.account {
            self.store.clear_attempts(ledger, account).await?;
        }
        Ok(())
    }

    // ---- Sessions ----

    /// Opens a session for `token` (already checked live), after a successful attempt.
    async fn open(
        &self,
        ledger: &str,
        token: &TokenRecord,
        kind: SessionKind,
        remember: bool,
        device_id: Option<Uuid>,
        name: String,
    ) -> Result<NewSession> {
        let now = self.now();
        let principal = live_principal(token, now)
            .filter(|p| kind.admits(p.role) && p.ledger_id == ledger)
            .ok_or_else(failed)?;
        let (cookie, hash) = new_secret(self.entropy(), SESSION_PREFIX);
        let (idle, absolute) = kind.lifetimes(remember);
        let mut expires_at = now.saturating_add(absolute);
        // A session never outlives its token.
        if let Some(token_expiry) = token.expires_at_micros {
            expires_at = expires_at.min(token_expiry);
        }
        let record = SessionRecord {
            hash,
            id: self.entropy().uuid(),
            ledger_id: ledger.to_owned(),
            token_id: token.id,
            kind: kind.as_str().to_owned(),
            remember,
            device_id,
            created_at_micros: now,
            last_seen_at_micros: now,
            idle_expires_at_micros: now.saturating_add(idle).min(expires_at),
            expires_at_micros: expires_at,
            revoked_at_micros: None,
        };
        let store = self.store.clone();
        let stored = record.clone();
        detach(async move { store.insert_session(&stored).await }).await??;
        Ok(NewSession {
            cookie,
            signed_in: SignedIn {
                principal,
                session_id: record.id,
                name,
                kind,
                remember,
                device_id,
                idle_expires_at_micros: record.idle_expires_at_micros,
                expires_at_micros: record.expires_at_micros,
            },
        })
    }

    /// Who the session cookie `cookie` stands for, or None when it names no live session
    /// (unknown, signed out, idle or past its end, its token revoked or expired, its user
    /// disabled). Moves the idle expiry, at most once a minute.
    pub async fn principal_of_session(&self, cookie: &str) -> Result<Option<SignedIn>> {
        let Some(hash) = hash_of(cookie, SESSION_PREFIX) else {
            return Ok(None);
        };
        let Some(found) = self.store.session(&hash).await? else {
            return Ok(None);
        };
        let session = &found.session;
        if !bool::from(session.hash.ct_eq(&hash)) {
            return Ok(None);
        }
        let now = self.now();
        if session.revoked_at_micros.is_some()
            || now >= session.idle_expires_at_micros
            || now >= session.expires_at_micros
        {
            return Ok(None);
        }
        let Some(kind) = SessionKind::parse(&session.kind) else {
            return Ok(None);
        };
        let Some(principal) = live_principal(&found.token, now)
            .filter(|p| kind.admits(p.role) && p.ledger_id == session.ledger_id)
        else {
            return Ok(None);
        };
        let name = match kind {
            SessionKind::User if found.user_disabled => return Ok(None),
            SessionKind::User | SessionKind::Clerk => match found.name.clone() {
                Some(name) => name,
                None => return Ok(None),
            },
            SessionKind::Resident => {
                let resident = match principal.scope.as_deref().map(Uuid::parse_str) {
                    Some(Ok(id)) => self.earning.store.resident(&session.ledger_id, id).await?,
                    _ => None,
                };
                match resident {
                    Some(r) => r.name,
                    None => return Ok(None),
                }
            }
        };
        let mut idle_expires_at = session.idle_expires_at_micros;
        if now.saturating_sub(session.last_seen_at_micros) >= TOUCH_EVERY_MICROS {
            let (idle, _) = kind.lifetimes(session.remember);
            idle_expires_at = now.saturating_add(idle).min(session.expires_at_micros);
            self.store
                .touch_session(&hash, now, idle_expires_at)
                .await?;
        }
        Ok(Some(SignedIn {
            principal,
            session_id: session.id,
            name,
            kind,
            remember: session.remember,
            device_id: session.device_id,
            idle_expires_at_micros: idle_expires_at,
            expires_at_micros: session.expires_at_micros,
        }))
    }

    /// Ends the session `cookie` names (nothing happens when it names none).
    pub async fn sign_out(&self, cookie: &str) -> Result<()> {
        if let Some(hash) = hash_of(cookie, SESSION_PREFIX) {
            self.store.revoke_session(&hash, self.now()).await?;
        }
        Ok(())
    }

    /// Ends every session of a token ("sign out everywhere"): the token's own holder, or an
    /// administrator. How many were live.
    pub async fn revoke_sessions_of(&self, p: &Principal, token_id: Uuid) -> Result<u64> {
        let own = p.operator.is_none() && p.token_id == token_id;
        if !own && p.role != Role::Admin {
            return Err(Error::forbidden());
        }
        Ok(self
            .store
            .revoke_sessions_of(&p.ledger_id, token_id, self.now())
            .await?)
    }

    // ---- Signing in ----

    /// An admin, staff member or auditor signs in with their name and password. Every wrong
    /// name or password, a disabled user and one without a password yet answer `sign_in_failed`.
    pub async fn sign_in_password(
        &self,
        ledger: &str,
        name: &str,
        password: &str,
        client: &str,
    ) -> Result<NewSession> {
        let name = name.trim();
        let attempt = self
            .begin_attempt(ledger, Some(&format!("user\0{name}")), client)
            .await?;
        let plausible = !name.is_empty() && name.len() <= 4 * NAME_MAX_CHARS;
        let user = if plausible {
            self.store.user_by_name(ledger, name).await?
        } else {
            None
        };
        let phc = user
            .as_ref()
            .filter(|u| u.disabled_at_micros.is_none())
            .and_then(|u| u.password_hash.clone());
        let matched = self
            .first_match(password, phc.into_iter().collect())
            .await?
            .is_some();
        let Some(user) = user.filter(|_| matched) else {
            return Err(failed());
        };
        let token = self.store.token(user.token_id).await?.ok_or_else(failed)?;
        let kind = SessionKind::User;
        if live_principal(&token, self.now()).is_none_or(|p| !kind.admits(p.role)) {
            return Err(failed());
        }
        self.succeeded(ledger, &attempt).await?;
        self.open(ledger, &token, kind, false, None, user.name)
            .await
    }

    /// A shop clerk (or cashier) signs in at a till with their name and PIN: only on a device
    /// paired with their shop and not unpaired, with a staff token that is live.
    pub async fn sign_in_clerk(
        &self,
        ledger: &str,
        device_secret: &str,
        name: &str,
        pin: &str,
        client: &str,
    ) -> Result<NewSession> {
        let name = name.trim();
        let Some(device) = self.paired_device(ledger, device_secret).await? else {
            // Counted against the client: guessing device secrets is guessing too.
            self.begin_attempt(ledger, None, client).await?;
            return Err(failed());
        };
        let account = format!("clerk\0{}\0{name}", device.shop_id);
        let attempt = self.begin_attempt(ledger, Some(&account), client).await?;
        let clerks = if name.len() <= 4 * NAME_MAX_CHARS {
            self.store
                .clerks_with_pins(ledger, device.shop_id, Some(name))
                .await?
        } else {
            Vec::new()
        };
        let phcs = clerks.iter().map(|(_, phc)| phc.clone()).collect();
        let Some(at) = self.first_match(pin, phcs).await? else {
            return Err(failed());
        };
        let staff = clerks[at].0.clone();
        let token = self
            .store
            .token(staff.token_id)
            .await?
            .filter(|t| t.scope.as_deref() == Some(device.shop_id.to_string().as_str()))
            .ok_or_else(failed)?;
        let kind = SessionKind::Clerk;
        if live_principal(&token, self.now()).is_none_or(|p| !kind.admits(p.role)) {
            return Err(failed());
        }
        self.succeeded(ledger, &attempt).await?;
        self.open(ledger, &token, kind, false, Some(device.id), staff.name)
            .await
    }

    /// A resident signs in with the one-time link staff printed for them (as a QR code); the
    /// link works once. `remember_phone` ("记住这部手机") makes the session long-lived.
    pub async fn sign_in_link(
        &self,
        ledger: &str,
        link_secret: &str,
        remember_phone: bool,
        client: &str,
    ) -> Result<NewSession> {
        let attempt = self.begin_attempt(ledger, None, client).await?;
        let link = match hash_of(link_secret, LINK_PREFIX) {
            Some(hash) => {
                self.store
                    .use_link(ledger, &hash, "resident_sign_in", self.now())
                    .await?
            }
            None => None,
        };
        let Some(link) = link else {
            return Err(failed());
        };
        let resident = match Uuid::parse_str(&link.subject) {
            Ok(id) => self.earning.store.resident(ledger, id).await?,
            Err(_) => None,
        }
        .ok_or_else(failed)?;
        let token = self.resident_identity(ledger, resident.id).await?;
        self.succeeded(ledger, &attempt).await?;
        self.open(
            ledger,
            &token,
            SessionKind::Resident,
            remember_phone,
            None,
            resident.name,
        )
        .await
    }

    /// A resident signs in with their phone number (as registered; spaces and dashes do not
    /// matter) and the PIN printed on their card (of their active credential).
    pub async fn sign_in_phone(
        &self,
        ledger: &str,
        phone: &str,
        pin: &str,
        remember_phone: bool,
        client: &str,
    ) -> Result<NewSession> {
        let digits = phone_digits(phone);
        let account = format!("phone\0{}", digits.as_deref().unwrap_or(phone));
        let attempt = self.begin_attempt(ledger, Some(&account), client).await?;
        let residents = match &digits {
            Some(digits) => self.store.residents_by_phone(ledger, digits).await?,
            None => Vec::new(),
        };
        let mut matched = None;
        // Without a resident the check runs once on a stand-in id, so that an unknown phone
        // takes the time a known one does.
        let candidates = if residents.is_empty() {
            vec![Uuid::nil()]
        } else {
            residents
        };
        for id in candidates {
            if self.redemption.card_pin_matches(ledger, id, pin).await? && matched.is_none() {
                matched = Some(id);
            }
        }
        let resident = match matched {
            Some(id) => self.earning.store.resident(ledger, id).await?,
            None => None,
        }
        .ok_or_else(failed)?;
        let token = self.resident_identity(ledger, resident.id).await?;
        self.succeeded(ledger, &attempt).await?;
        self.open(
            ledger,
            &token,
            SessionKind::Resident,
            remember_phone,
            None,
            resident.name,
        )
        .await
    }

    /// The token a resident's sessions stand for: role `resident`, scoped to the resident, its
    /// id derived from the ledger and the resident, created the first time it is needed (its
    /// secret is random and never shown). A revoked one stays revoked: sign-in fails.
    async fn resident_identity(&self, ledger: &str, resident: Uuid) -> Result<TokenRecord> {
        let id = derived_id(
            "aixin.resident-identity.v1",
            &[ledger, &resident.to_string()],
        );
        if let Some(token) = self.store.token(id).await? {
            return Ok(token);
        }
        let (_, mut record) = new_token(
            self.entropy(),
            self.now(),
            ledger,
            Role::Resident,
            Some(resident.to_string()),
            crate::store::session::RESIDENT_SIGN_IN_LABEL.to_owned(),
            None,
        );
        record.id = id;
        Ok(self.store.ensure_token(&record).await?)
    }

    // ---- Users ----

    /// Creates a user (admin only) of role admin, staff (scoped to an organisation unit) or
    /// auditor, with a token of that role and scope that is theirs, and answers the one-time
    /// link that sets their password (valid [`SET_PASSWORD_LINK_MICROS`]).
    pub async fn create_user(
        &self,
        p: &Principal,
        role: Role,
        scope: Option<&str>,
        name: &str,
    ) -> Result<(User, Link)> {
        if p.role != Role::Admin {
            return Err(Error::forbidden());
        }
        let ledger = p.ledger_id.as_str();
        let name = check_name("name", name)?;
        let field = |field: &str, detail: &str| {
            Error::new(ErrorCode::InvalidBody, detail).with_fields(Fields {
                field: Some(field.to_owned()),
                ..Fields::default()
            })
        };
        let scope = match (role, scope) {
            (Role::Staff, Some(unit)) => {
                if self.earning.store.org_unit(ledger, unit).await?.is_none() {
                    return Err(Error::new(
                        ErrorCode::UnknownOrgUnit,
                        format!("no organisation unit {unit}"),
                    ));
                }
                Some(unit.to_owned())
            }
            (Role::Staff, None) => {
                return Err(field("scope", "a staff user needs an organisation unit"))
            }
            // A shop's owner: a `shop` token scoped to the shop, and a place among its staff
            // as owner (added below, once the user exists).
            (Role::Shop, Some(shop)) => {
                let known = match Uuid::parse_str(shop) {
                    Ok(id) => self.redemption.store.shop(ledger, id).await?,
                    Err(_) => None,
                };
                match known {
                    Some(shop) => Some(shop.id.to_string()),
                    None => return Err(field("scope", "no such shop")),
                }
            }
            (Role::Shop, None) => return Err(field("scope", "a shop owner user needs a shop")),
            (Role::Admin | Role::Auditor, None) => None,
            (Role::Admin | Role::Auditor, Some(_)) => {
                return Err(field(
                    "scope",
                    "admin and auditor users see the whole ledger; give no scope",
                ))
            }
            _ => {
                return Err(field(
                    "role",
                    "a user is an admin, a staff member, an auditor or a shop's owner",
                ))
            }
        };
        let now = self.now();
        let (_, token) = new_token(
            self.entropy(),
            now,
            ledger,
            role,
            scope.clone(),
            format!("user: {name}"),
            None,
        );
        let user = UserRecord {
            id: self.entropy().uuid(),
            ledger_id: ledger.to_owned(),
            role: role.as_str().to_owned(),
            scope,
            name,
            token_id: token.id,
            password_hash: None,
            created_at_micros: now,
            disabled_at_micros: None,
        };
        let (link, record) = self.link(
            p,
            "set_password",
            user.id.to_string(),
            None,
            SET_PASSWORD_LINK_MICROS,
        );
        let store = self.store.clone();
        let stored = user.clone();
        if !detach(async move { store.insert_user(&stored, &token, &record).await }).await?? {
            return Err(Error::bare(ErrorCode::NameTaken));
        }
        if let (Role::Shop, Some(shop)) = (role, user.scope.as_deref()) {
            let owner = ShopStaff {
                token_id: user.token_id,
                shop_id: Uuid::parse_str(shop).map_err(|_| Error::bare(ErrorCode::Internal))?,
                name: user.name.clone(),
                owner: true,
            };
            self.redemption
                .store
                .insert_shop_staff(ledger, &owner, now)
                .await?;
        }
        Ok((user_of(user)?, link))
    }

    /// A new link of `purpose` for `subject`, and its record.
    fn link(
        &self,
        p: &Principal,
        purpose: &str,
        subject: String,
        label: Option<String>,
        lifetime: i64,
    ) -> (Link, LinkRecord) {
        let now = self.now();
        let (secret, hash) = new_secret(self.entropy(), LINK_PREFIX);
        let record = LinkRecord {
            hash,
            ledger_id: p.ledger_id.clone(),
            purpose: purpose.to_owned(),
            subject,
            label,
            created_by: p.actor(),
            created_at_micros: now,
            expires_at_micros: now.saturating_add(lifetime),
            used_at_micros: None,
        };
        let link = Link {
            secret,
            expires_at_micros: record.expires_at_micros,
        };
        (link, record)
    }

    /// Stores a new link (the unused ones of the same purpose and subject stop working).
    async fn issue(
        &self,
        p: &Principal,
        purpose: &str,
        subject: String,
        label: Option<String>,
        lifetime: i64,
    ) -> Result<Link> {
        let (link, record) = self.link(p, purpose, subject, label, lifetime);
        let store = self.store.clone();
        detach(async move { store.insert_link(&record).await }).await??;
        Ok(link)
    }

    /// Sets a user's password through their one-time link (which then stops working) and ends
    /// the user's sessions. A link that is unknown, used or expired answers `sign_in_failed`.
    pub async fn set_password(
        &self,
        ledger: &str,
        link_secret: &str,
        password: &str,
    ) -> Result<User> {
        check_password(password)?;
        let Some(hash) = hash_of(link_secret, LINK_PREFIX) else {
            return Err(failed());
        };
        let phc = self.hash_secret(password).await?;
        let store = self.store.clone();
        let (ledger, now) = (ledger.to_owned(), self.now());
        let user =
            detach(async move { store.set_password_by_link(&ledger, &hash, &phc, now).await })
                .await??
                .ok_or_else(failed)?;
        user_of(user)
    }

    /// A new link to set a user's password (admin only); earlier unused ones stop working. The
    /// password stays what it was until the link is used.
    pub async fn password_reset_link(&self, p: &Principal, user_id: Uuid) -> Result<Link> {
        let user = self.user(p, user_id).await?;
        self.issue(
            p,
            "set_password",
            user.id.to_string(),
            None,
            SET_PASSWORD_LINK_MICROS,
        )
        .await
    }

    /// Disables a user (admin only; not oneself) and ends their sessions; they can no longer
    /// sign in.
    pub async fn disable_user(&self, p: &Principal, user_id: Uuid) -> Result<User> {
        let user = self.user(p, user_id).await?;
        if p.operator.is_none() && p.token_id == user.token_id {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "an administrator cannot disable their own user",
            ));
        }
        let store = self.store.clone();
        let (ledger, now) = (p.ledger_id.clone(), self.now());
        detach(async move { store.disable_user(&ledger, user_id, now).await }).await??;
        self.user(p, user_id).await
    }

    /// A user by id (admin only).
    pub async fn user(&self, p: &Principal, user_id: Uuid) -> Result<User> {
        if p.role != Role::Admin {
            return Err(Error::forbidden());
        }
        user_of(
            self.store
                .user(&p.ledger_id, user_id)
                .await?
                .ok_or_else(Error::not_found)?,
        )
    }

    /// A user by name (admin only).
    pub async fn user_named(&self, p: &Principal, name: &str) -> Result<User> {
        if p.role != Role::Admin {
            return Err(Error::forbidden());
        }
        user_of(
            self.store
                .user_by_name(&p.ledger_id, name.trim())
                .await?
                .ok_or_else(Error::not_found)?,
        )
    }

    /// Every user of the ledger, by name (admin only).
    pub async fn users(&self, p: &Principal) -> Result<Vec<User>> {
        if p.role != Role::Admin {
            return Err(Error::forbidden());
        }
        self.store
            .users(&p.ledger_id)
            .await?
            .into_iter()
            .map(user_of)
            .collect()
    }

    // ---- Tills ----

    /// The shop if `p` may run its tills (pair and unpair devices, set clerks' PINs): an admin,
    /// staff managing the shop's community, the shop's owner. Other roles are refused before
    /// the shop is looked at; a shop `p` cannot see is not found.
    async fn tills_of(&self, p: &Principal, shop_id: Uuid) -> Result<Shop> {
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Shop) {
            return Err(Error::forbidden());
        }
        let shop = self.redemption.shop(p, shop_id).await?;
        if p.role == Role::Shop {
            let owner = self
                .redemption
                .store
                .shop_staff(&p.ledger_id, p.token_id)
                .await?
                .is_some_and(|s| s.owner && s.shop_id == shop.id);
            if !owner {
                return Err(Error::forbidden());
            }
        }
        Ok(shop)
    }

    /// A one-time link that pairs a till device with the shop (valid [`PAIRING_LINK_MICROS`]);
    /// opening it on the device ([`Sessions::redeem_pairing_link`]) gives the device its secret.
    /// An earlier unused link of the shop stops working.
    pub async fn pairing_link(&self, p: &Principal, shop_id: Uuid, label: &str) -> Result<Link> {
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Shop) {
            return Err(Error::forbidden());
        }
        let label = check_name("label", label)?;
        let shop = self.tills_of(p, shop_id).await?;
        self.issue(
            p,
            "pair_device",
            shop.id.to_string(),
            Some(label),
            PAIRING_LINK_MICROS,
        )
        .await
    }

    /// Pairs the device that opened a pairing link (which then stops working) and answers its
    /// secret, for a long-lived cookie. `label`, when given, replaces the link's. A link that is
    /// unknown, used or expired answers `sign_in_failed`.
    pub async fn redeem_pairing_link(
        &self,
        ledger: &str,
        link_secret: &str,
        label: Option<&str>,
    ) -> Result<PairedDevice> {
        let label = label.map(|l| check_name("label", l)).transpose()?;
        let Some(link_hash) = hash_of(link_secret, LINK_PREFIX) else {
            return Err(failed());
        };
        let (secret, secret_hash) = new_secret(self.entropy(), DEVICE_PREFIX);
        let device = DeviceRecord {
            id: self.entropy().uuid(),
            ledger_id: ledger.to_owned(),
            shop_id: Uuid::nil(),
            secret_hash,
            label: String::new(),
            paired_by: String::new(),
            paired_at_micros: self.now(),
            unpaired_at_micros: None,
        };
        let store = self.store.clone();
        let ledger = ledger.to_owned();
        let paired = detach(async move {
            store
                .pair_by_link(&ledger, &link_hash, &device, label.as_deref())
                .await
        })
        .await??
        .ok_or_else(failed)?;
        Ok(PairedDevice {
            device: device_of(paired),
            secret,
        })
    }

    /// The paired (not unpaired) device of `ledger` whose secret this is.
    async fn paired_device(&self, ledger: &str, secret: &str) -> Result<Option<DeviceRecord>> {
        let Some(hash) = hash_of(secret, DEVICE_PREFIX) else {
            return Ok(None);
        };
        Ok(self.store.device_by_secret(&hash).await?.filter(|d| {
            d.ledger_id == ledger
                && d.unpaired_at_micros.is_none()
                && bool::from(d.secret_hash.ct_eq(&hash))
        }))
    }

    /// The device a till's secret names, while it is paired (for the till page: which shop,
    /// and whether to ask for a clerk's PIN at all).
    pub async fn till_device(
        &self,
        ledger: &str,
        device_secret: &str,
    ) -> Result<Option<TillDevice>> {
        Ok(self
            .paired_device(ledger, device_secret)
            .await?
            .map(device_of))
    }

    /// The names of the clerks who can sign in on this paired device (those with a PIN), for
    /// the till's sign-in page; empty for anything but a paired device.
    pub async fn till_clerks(&self, ledger: &str, device_secret: &str) -> Result<Vec<String>> {
        let Some(device) = self.paired_device(ledger, device_secret).await? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = self
            .store
            .clerks_with_pins(ledger, device.shop_id, None)
            .await?
            .into_iter()
            .map(|(staff, _)| staff.name)
            .collect();
        names.dedup();
        Ok(names)
    }

    /// A shop's devices, paired and unpaired, oldest first.
    pub async fn devices(&self, p: &Principal, shop_id: Uuid) -> Result<Vec<TillDevice>> {
        let shop = self.tills_of(p, shop_id).await?;
        Ok(self
            .store
            .devices(&p.ledger_id, shop.id)
            .await?
            .into_iter()
            .map(device_of)
            .collect())
    }

    /// Unpairs a device and ends the sessions signed in on it (again: nothing changes).
    pub async fn unpair_device(&self, p: &Principal, device_id: Uuid) -> Result<TillDevice> {
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Shop) {
            return Err(Error::forbidden());
        }
        let ledger = p.ledger_id.clone();
        let device = self
            .store
            .device(&ledger, device_id)
            .await?
            .ok_or_else(Error::not_found)?;
        self.tills_of(p, device.shop_id).await?;
        let store = self.store.clone();
        let now = self.now();
        let ledger_owned = ledger.clone();
        detach(async move { store.unpair_device(&ledger_owned, device_id, now).await }).await??;
        Ok(device_of(
            self.store
                .device(&ledger, device_id)
                .await?
                .ok_or_else(Error::not_found)?,
        ))
    }

    /// Sets the PIN a member of shop staff signs in with at the shop's paired tills (by their
    /// staff token id): the shop's owner, staff managing its community or an admin. Six digits,
    /// not an easy one ([`check_pin`]).
    pub async fn set_clerk_pin(
        &self,
        p: &Principal,
        staff_token_id: Uuid,
        pin: &str,
    ) -> Result<()> {
        if !matches!(p.role, Role::Admin | Role::Staff | Role::Shop) {
            return Err(Error::forbidden());
        }
        check_pin(pin)?;
        let staff = self
            .redemption
            .store
            .shop_staff(&p.ledger_id, staff_token_id)
            .await?
            .ok_or_else(Error::not_found)?;
        self.tills_of(p, staff.shop_id).await?;
        // A removed member's token is revoked: they get no PIN again.
        let live = self
            .store
            .token(staff.token_id)
            .await?
            .is_some_and(|t| live_principal(&t, self.now()).is_some());
        if !live {
            return Err(Error::not_found());
        }
        let phc = self.hash_secret(pin).await?;
        self.store
            .set_clerk_pin(&p.ledger_id, staff.token_id, &phc, &p.actor(), self.now())
            .await?;
        Ok(())
    }

    // ---- Residents ----

    /// A one-time sign-in link for a resident, to print as a QR code (valid
    /// [`RESIDENT_LINK_MICROS`]): staff managing the resident's community or an admin. Issuing
    /// one makes the resident's earlier unused link stop working.
    pub async fn resident_sign_in_link(&self, p: &Principal, resident_id: Uuid) -> Result<Link> {
        if !matches!(p.role, Role::Admin | Role::Staff) {
            return Err(Error::forbidden());
        }
        let resident = self.earning.resident(p, resident_id).await?;
        if !self.earning.manages(p, &resident.community_id).await? {
            return Err(Error::not_found());
        }
        self.issue(
            p,
            "resident_sign_in",
            resident.id.to_string(),
            None,
            RESIDENT_LINK_MICROS,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn easy_pins_are_refused() {
        for pin in [
            "000000",
            "999999",
            "123456",
            "654321",
            "234567",
            "890123",
            "098765",
            "121212",
            "123123",
            "112233",
            "520520",
            "12345",
            "1234567",
            "12a456",
            "１２３４５６",
            "",
        ] {
            assert!(check_pin(pin).is_err(), "{pin:?} was accepted");
        }
        for pin in ["482915", "305718", "770412", "135792"] {
            assert!(check_pin(pin).is_ok(), "{pin:?} was refused");
        }
    }

    #[test]
    fn secrets_are_read_only_in_their_own_shape() {
        let secret = format!("{SESSION_PREFIX}{}", "ab".repeat(32));
        assert!(hash_of(&secret, SESSION_PREFIX).is_some());
        assert!(hash_of(&secret, LINK_PREFIX).is_none());
        assert!(hash_of(&secret.to_uppercase(), SESSION_PREFIX).is_none());
        assert!(hash_of(&secret[..secret.len() - 1], SESSION_PREFIX).is_none());
        assert!(hash_of(&format!("{secret}0"), SESSION_PREFIX).is_none());
    }

    #[test]
    fn phones_are_compared_without_spaces_and_dashes() {
        assert_eq!(
            phone_digits("138 0000-1234").as_deref(),
            Some("13800001234")
        );
        assert_eq!(phone_digits("+86 138").as_deref(), Some("+86138"));
        assert_eq!(phone_digits("1234"), None);
        assert_eq!(phone_digits("13800001234x"), None);
    }
}
