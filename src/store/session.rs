//! The store contract for signing in to the web pages: users, sessions, one-time links, paired
//! till devices, clerk PINs and counted sign-in attempts (migration 0008). Both backends run the
//! same statements for it (`sql/session.rs`). Nothing here decides who may sign in; the session
//! service does (`crate::session`). Secrets never reach this layer: sessions, links and devices
//! are found by the SHA-256 of their secret, passwords and PINs arrive as Argon2id PHC strings.

use async_trait::async_trait;
use uuid::Uuid;

use super::redeem::ShopStaff;
use super::{StoreError, TokenRecord};

/// A person who signs in with a name and password (admin, staff, auditor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub ledger_id: String,
    pub role: String,
    pub scope: Option<String>,
    pub name: String,
    /// The token this user stands for (its secret random and never shown).
    pub token_id: Uuid,
    /// The Argon2id PHC string, once the user has set a password.
    pub password_hash: Option<String>,
    pub created_at_micros: i64,
    pub disabled_at_micros: Option<i64>,
}

/// A session as stored: found by the SHA-256 of its cookie value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub hash: [u8; 32],
    pub id: Uuid,
    pub ledger_id: String,
    pub token_id: Uuid,
    /// `user`, `clerk` or `resident`.
    pub kind: String,
    /// A resident's "remember this phone" session.
    pub remember: bool,
    /// The till device a clerk signed in on.
    pub device_id: Option<Uuid>,
    pub created_at_micros: i64,
    pub last_seen_at_micros: i64,
    pub idle_expires_at_micros: i64,
    pub expires_at_micros: i64,
    pub revoked_at_micros: Option<i64>,
}

/// A session with the token it stands for and the name of its person where the store has it
/// (a user's or a shop clerk's; a resident's name is the earning store's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLookup {
    pub session: SessionRecord,
    pub token: TokenRecord,
    pub name: Option<String>,
    /// The user behind a `user` session is disabled.
    pub user_disabled: bool,
}

/// A one-time link as stored: found by the SHA-256 of its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRecord {
    pub hash: [u8; 32],
    pub ledger_id: String,
    /// `set_password`, `resident_sign_in` or `pair_device`.
    pub purpose: String,
    /// The user id, resident id or shop id the link is for.
    pub subject: String,
    /// For `pair_device`: the label the device gets.
    pub label: Option<String>,
    pub created_by: String,
    pub created_at_micros: i64,
    pub expires_at_micros: i64,
    pub used_at_micros: Option<i64>,
}

/// A till device paired with a shop: found by the SHA-256 of the secret in its cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: Uuid,
    pub ledger_id: String,
    pub shop_id: Uuid,
    pub secret_hash: [u8; 32],
    pub label: String,
    pub paired_by: String,
    pub paired_at_micros: i64,
    pub unpaired_at_micros: Option<i64>,
}

/// What one counted key of a sign-in attempt stands at, the attempt itself included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// Attempts counted under the key since the window's start.
    pub count: i64,
    /// When the oldest of them was made.
    pub oldest_at_micros: i64,
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    // ---- Users ----

    /// Creates a user with its token and its set-password link, in one transaction; false (and
    /// nothing written) when the ledger has a user of that name.
    async fn insert_user(
        &self,
        user: &UserRecord,
        token: &TokenRecord,
        link: &LinkRecord,
    ) -> Result<bool, StoreError>;
    async fn user(&self, ledger_id: &str, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
    async fn user_by_name(
        &self,
        ledger_id: &str,
        name: &str,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// Every user of the ledger, by name (byte order).
    async fn users(&self, ledger_id: &str) -> Result<Vec<UserRecord>, StoreError>;
    /// Uses an unused, unexpired `set_password` link and sets its user's password, ending the
    /// user's sessions, in one transaction; the user, or None when the link is not usable.
    async fn set_password_by_link(
        &self,
        ledger_id: &str,
        link_hash: &[u8; 32],
        password_hash: &str,
        now_micros: i64,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// Disables a user and ends their sessions; false if there is no such user.
    async fn disable_user(
        &self,
        ledger_id: &str,
        id: Uuid,
        now_micros: i64,
    ) -> Result<bool, StoreError>;

    // ---- Tokens the sessions stand for ----

    async fn token(&self, id: Uuid) -> Result<Option<TokenRecord>, StoreError>;
    /// Inserts the token unless one with its id exists; returns the stored one.
    async fn ensure_token(&self, token: &TokenRecord) -> Result<TokenRecord, StoreError>;

    // ---- One-time links ----

    /// Stores a link; the unused links of the same ledger, purpose and subject are marked used.
    async fn insert_link(&self, link: &LinkRecord) -> Result<(), StoreError>;
    /// Marks an unused, unexpired link of `purpose` used and returns it (at most once).
    async fn use_link(
        &self,
        ledger_id: &str,
        link_hash: &[u8; 32],
        purpose: &str,
        now_micros: i64,
    ) -> Result<Option<LinkRecord>, StoreError>;

    // ---- Sessions ----

    /// Stores a session; the dead sessions (revoked or expired) of the same token are deleted.
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    async fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionLookup>, StoreError>;
    /// Records that a live session was used now and moves its idle expiry.
    async fn touch_session(
        &self,
        hash: &[u8; 32],
        now_micros: i64,
        idle_expires_at_micros: i64,
    ) -> Result<(), StoreError>;
    /// Ends one session; false if it was not live.
    async fn revoke_session(&self, hash: &[u8; 32], now_micros: i64) -> Result<bool, StoreError>;
    /// Ends every live session of a token; how many.
    async fn revoke_sessions_of(
        &self,
        ledger_id: &str,
        token_id: Uuid,
        now_micros: i64,
    ) -> Result<u64, StoreError>;

    // ---- Till devices and clerk PINs ----

    /// Uses an unused, unexpired `pair_device` link and pairs `device` with the link's shop (the
    /// device's `shop_id` and, when `label` is None, its label are taken from the link), in one
    /// transaction; the device as stored, or None when the link is not usable.
    async fn pair_by_link(
        &self,
        ledger_id: &str,
        link_hash: &[u8; 32],
        device: &DeviceRecord,
        label: Option<&str>,
    ) -> Result<Option<DeviceRecord>, StoreError>;
    async fn device_by_secret(
        &self,
        secret_hash: &[u8; 32],
    ) -> Result<Option<DeviceRecord>, StoreError>;
    async fn device(&self, ledger_id: &str, id: Uuid) -> Result<Option<DeviceRecord>, StoreError>;
    /// A shop's devices, paired and unpaired, oldest first.
    async fn devices(
        &self,
        ledger_id: &str,
        shop_id: Uuid,
    ) -> Result<Vec<DeviceRecord>, StoreError>;
    /// Unpairs a device and ends the sessions signed in on it; false if it was not paired.
    async fn unpair_device(
        &self,
        ledger_id: &str,
        id: Uuid,
        now_micros: i64,
    ) -> Result<bool, StoreError>;
    /// Sets (or replaces) a clerk's PIN.
    async fn set_clerk_pin(
        &self,
        ledger_id: &str,
        token_id: Uuid,
        pin_hash: &str,
        set_by: &str,
        now_micros: i64,
    ) -> Result<(), StoreError>;
    /// The staff of a shop who have a PIN, with it, by name (byte order); only those named
    /// `name` when given.
    async fn clerks_with_pins(
        &self,
        ledger_id: &str,
        shop_id: Uuid,
        name: Option<&str>,
    ) -> Result<Vec<(ShopStaff, String)>, StoreError>;

    // ---- Residents ----

    /// The residents whose phone, without spaces and dashes, is `digits`.
    async fn residents_by_phone(
        &self,
        ledger_id: &str,
        digits: &str,
    ) -> Result<Vec<Uuid>, StoreError>;

    // ---- Counted attempts ----

    /// Counts attempt `id` under each of `keys` (scope, SHA-256 of the key) at `now_micros`,
    /// forgetting attempts made at or before `since_micros`; returns, per key, the attempts
    /// counted after it, this one included.
    async fn count_attempt(
        &self,
        ledger_id: &str,
        id: Uuid,
        keys: &[(&str, [u8; 32])],
        now_micros: i64,
        since_micros: i64,
    ) -> Result<Vec<Counted>, StoreError>;
    /// Stops counting attempt `id` (it succeeded, or was refused before it was tried).
    async fn forget_attempt(&self, ledger_id: &str, id: Uuid) -> Result<(), StoreError>;
    /// Forgets every attempt counted under an account key (its sign-in succeeded).
    async fn clear_attempts(&self, ledger_id: &str, key_hash: &[u8; 32]) -> Result<(), StoreError>;

    // ---- Administration (the admin's token list) ----

    /// The ledger's tokens, newest first, at most `limit`, each with the name of the user or
    /// shop staff member it stands behind; residents' sign-in tokens (role `resident`, label
    /// [`RESIDENT_SIGN_IN_LABEL`]) only with `residents`.
    async fn tokens(
        &self,
        ledger_id: &str,
        residents: bool,
        limit: i64,
    ) -> Result<Vec<ListedToken>, StoreError>;
    /// Revokes a token of the ledger and ends its sessions, in one transaction; false if the
    /// ledger has no such token or it was revoked already.
    async fn revoke_token_and_sessions(
        &self,
        ledger_id: &str,
        token_id: Uuid,
        now_micros: i64,
    ) -> Result<bool, StoreError>;
}

/// The label of the token a resident's sessions stand for (made when they first sign in).
pub const RESIDENT_SIGN_IN_LABEL: &str = "resident sign-in";

/// A token as the administrator's list shows it (never its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedToken {
    pub token: TokenRecord,
    /// The user this token is (a user's own token).
    pub user: Option<String>,
    /// The shop staff member this token is.
    pub shop_staff: Option<String>,
}
