//! The administrator's operations that are not signing in: API tokens, the signing keys and
//! the organisation tree as a list. (Users are [`crate::session`]'s.) Each takes the calling
//! [`Principal`] and decides: everything here is for an administrator only, except the
//! organisation list, which auditors see whole and staff see from their unit down. The HTTP
//! routes (`src/http/admin.rs`) and the pages (`src/web/admin.rs`) only parse and render.
//!
//! **Tokens.** A new token's secret is answered once and never stored (only its SHA-256, as
//! [`crate::auth::new_token`] makes it); the list shows no secret and no hash. Revoking a token
//! ends the sessions standing for it in the same transaction. A user's own token is not revoked
//! here: disabling the user ([`crate::session::Sessions::disable_user`]) is how they are
//! stopped, so that the list of users never shows someone active who cannot sign in.
//!
//! **Keys.** Rotating retires the active signing key (it still verifies what it signed) and
//! makes a new one active; revoking a retired key makes what it signed stop verifying; the
//! active key cannot be revoked (rotate first) — as `aixin keys` does. With a key file behind
//! the ring the change is written to the file first (other servers sharing it reload it).

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::{new_token, Principal, Role};
use crate::clock::{Clock, Entropy};
use crate::earning::Earning;
use crate::error::{Error, ErrorCode, Fields};
use crate::keys::{KeyError, KeyStatus, SharedKeys};
use crate::model::{derived_id, OrgUnit};
use crate::redeem::Redemption;
use crate::session::Sessions;
use crate::store::session::{ListedToken, RESIDENT_SIGN_IN_LABEL};
use crate::store::Store;

type Result<T> = std::result::Result<T, Error>;

/// Most tokens one list answers (newest first).
pub const TOKENS_LIST_MAX: i64 = 500;
/// Most organisation units one list answers.
pub const ORG_UNITS_MAX: i64 = 5_000;
/// Longest token label, in characters.
pub const TOKEN_LABEL_MAX_CHARS: usize = 100;
/// Longest lifetime a new token may be given, in days (ten years).
pub const TOKEN_DAYS_MAX: u32 = 3_650;

/// Who a token stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A token made for a program or a person (`aixin token create`, `POST /v1/tokens`).
    Api,
    /// A user's own token (their sessions stand for it).
    User,
    /// A member of a shop's staff (made when they were added).
    ShopStaff,
    /// The token a resident's sessions stand for.
    ResidentSignIn,
}

impl Holder {
    pub fn as_str(self) -> &'static str {
        match self {
            Holder::Api => "api",
            Holder::User => "user",
            Holder::ShopStaff => "shop_staff",
            Holder::ResidentSignIn => "resident_sign_in",
        }
    }
}

/// A token as the administrator sees it: never its secret or hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: Uuid,
    pub role: Role,
    pub scope: Option<String>,
    pub label: String,
    pub holder: Holder,
    /// The user's or shop staff member's name, for those holders.
    pub holder_name: Option<String>,
    pub created_at_micros: i64,
    pub expires_at_micros: Option<i64>,
    pub revoked_at_micros: Option<i64>,
}

/// A signing key as the administrator sees it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub status: KeyStatus,
    pub created_at_micros: i64,
}

/// What a new token is.
#[derive(Clone, Debug, Default)]
pub struct NewToken {
    /// admin, staff, shop, cashier, resident or auditor.
    pub role: String,
    /// The organisation unit (staff), shop (shop, cashier) or resident (resident).
    pub scope: Option<String>,
    pub label: String,
    /// Expire after this many days (None: never).
    pub expires_in_days: Option<u32>,
}

/// The administrator's service. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    pub store: Arc<dyn Store>,
    pub sessions: Sessions,
    pub earning: Earning,
    pub redemption: Redemption,
    pub keys: SharedKeys,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
}

fn admin_only(p: &Principal) -> Result<()> {
    if p.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::forbidden())
    }
}

fn field_error(code: ErrorCode, field: &str, detail: impl Into<String>) -> Error {
    Error::new(code, detail).with_fields(Fields {
        field: Some(field.to_owned()),
        ..Fields::default()
    })
}

fn key_error(error: KeyError) -> Error {
    match error {
        KeyError::UnknownKey(id) => Error::new(
            ErrorCode::UnknownSigningKey,
            format!("no signing key with id {id}"),
        ),
        KeyError::RevokeActive(id) => Error::new(
            ErrorCode::SigningKeyActive,
            format!("signing key {id} is the active key; rotate first"),
        ),
        KeyError::File { .. } => {
            tracing::error!(%error, "the key file");
            Error::bare(ErrorCode::Internal)
        }
    }
}

impl Admin {
    fn now(&self) -> i64 {
        self.clock.now_micros()
    }

    fn info(&self, listed: ListedToken) -> Result<TokenInfo> {
        let t = listed.token;
        let role = Role::parse(&t.role).ok_or_else(|| Error::bare(ErrorCode::Internal))?;
        let resident_identity = role == Role::Resident
            && t.label == RESIDENT_SIGN_IN_LABEL
            && t.scope.as_deref().is_some_and(|resident| {
                t.id == derived_id("aixin.resident-identity.v1", &[&t.ledger_id, resident])
            });
        let (holder, holder_name) = match (listed.user, listed.shop_staff) {
            (Some(name), _) => (Holder::User, Some(name)),
            (None, Some(name)) => (Holder::ShopStaff, Some(name)),
            (None, None) if resident_identity => (Holder::ResidentSignIn, None),
            (None, None) => (Holder::Api, None),
        };
        Ok(TokenInfo {
            id: t.id,
            role,
            scope: t.scope,
            label: t.label,
            holder,
            holder_name,
            created_at_micros: t.created_at_micros,
            expires_at_micros: t.expires_at_micros,
            revoked_at_micros: t.revoked_at_micros,
        })
    }

    // ---- Tokens ----

    /// The ledger's tokens, newest first, at most [`TOKENS_LIST_MAX`] (admin only). Residents'
    /// sign-in tokens (one per resident who ever signed in) only with `residents`.
    pub async fn tokens(&self, p: &Principal, residents: bool) -> Result<Vec<TokenInfo>> {
        admin_only(p)?;
        self.sessions
            .store
            .tokens(&p.ledger_id, residents, TOKENS_LIST_MAX)
            .await?
            .into_iter()
            .map(|t| self.info(t))
            .collect()
    }

    /// One token of the ledger (admin only).
    pub async fn token(&self, p: &Principal, id: Uuid) -> Result<TokenInfo> {
        admin_only(p)?;
        let token = self
            .sessions
            .store
            .token(id)
            .await?
            .filter(|t| t.ledger_id == p.ledger_id)
            .ok_or_else(Error::not_found)?;
        let user = self
            .sessions
            .store
            .users(&p.ledger_id)
            .await?
            .into_iter()
            .find(|u| u.token_id == id)
            .map(|u| u.name);
        let shop_staff = self
            .redemption
            .store
            .shop_staff(&p.ledger_id, id)
            .await?
            .map(|s| s.name);
        self.info(ListedToken {
            token,
            user,
            shop_staff,
        })
    }

    /// Creates a token (admin only) and answers its secret, which is shown only this once: only
    /// its SHA-256 is stored. A scope must name something of the ledger (an organisation unit
    /// for staff, a shop for shop and cashier, a resident for resident); admin and auditor
    /// tokens take none. Nothing is written when anything is wrong.
    pub async fn create_token(&self, p: &Principal, new: NewToken) -> Result<(TokenInfo, String)> {
        admin_only(p)?;
        let role = Role::parse(new.role.trim()).ok_or_else(|| {
            field_error(
                ErrorCode::InvalidBody,
                "role",
                "role must be admin, staff, shop, cashier, resident or auditor",
            )
        })?;
        let scope = new
            .scope
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let label = new.label.trim().to_owned();
        crate::earning::service::check_text("label", &label, false)?;
        if label.chars().count() > TOKEN_LABEL_MAX_CHARS {
            return Err(field_error(
                ErrorCode::FieldTooLong,
                "label",
                format!("label is longer than {TOKEN_LABEL_MAX_CHARS} characters"),
            ));
        }
        if let Some(days) = new.expires_in_days {
            if days == 0 || days > TOKEN_DAYS_MAX {
                return Err(field_error(
                    ErrorCode::InvalidBody,
                    "expires_in_days",
                    format!("expires_in_days must be 1 to {TOKEN_DAYS_MAX}"),
                ));
            }
        }
        match (role.needs_scope(), scope.as_deref()) {
            (true, None) => {
                return Err(field_error(
                    ErrorCode::InvalidBody,
                    "scope",
                    format!("a {} token needs a scope", role.as_str()),
                ))
            }
            (false, Some(_)) => {
                return Err(field_error(
                    ErrorCode::InvalidBody,
                    "scope",
                    "admin and auditor tokens see the whole ledger; give no scope",
                ))
            }
            (true, Some(scope)) => self.check_scope(p, role, scope).await?,
            (false, None) => {}
        }
        let ttl = new
            .expires_in_days
            .map(|d| i64::from(d) * 86_400 * 1_000_000);
        let (secret, record) = new_token(
            self.entropy.as_ref(),
            self.now(),
            &p.ledger_id,
            role,
            scope,
            label,
            ttl,
        );
        self.store.insert_token(&record).await?;
        let info = self.info(ListedToken {
            token: record,
            user: None,
            shop_staff: None,
        })?;
        Ok((info, secret))
    }

    /// Refuses a scope that names nothing in the ledger (a token for nothing would see nothing,
    /// and would start to see whatever later took that id).
    async fn check_scope(&self, p: &Principal, role: Role, scope: &str) -> Result<()> {
        let ledger = p.ledger_id.as_str();
        let id = || {
            Uuid::parse_str(scope).map_err(|_| {
                field_error(
                    ErrorCode::InvalidBody,
                    "scope",
                    format!("scope {scope:?} is not a {} id", role.as_str()),
                )
            })
        };
        match role {
            Role::Staff => {
                if self.earning.store.org_unit(ledger, scope).await?.is_none() {
                    return Err(Error::new(
                        ErrorCode::UnknownOrgUnit,
                        format!("no organisation unit {scope}"),
                    ));
                }
            }
            Role::Shop | Role::Cashier => {
                if self.redemption.store.shop(ledger, id()?).await?.is_none() {
                    return Err(field_error(
                        ErrorCode::InvalidBody,
                        "scope",
                        format!("no shop {scope}"),
                    ));
                }
            }
            Role::Resident => {
                if self.earning.store.resident(ledger, id()?).await?.is_none() {
                    return Err(Error::new(
                        ErrorCode::UnknownResident,
                        format!("no resident {scope}"),
                    ));
                }
            }
            Role::Admin | Role::Auditor => {}
        }
        Ok(())
    }

    /// Revokes a token (admin only) and ends every session standing for it, at once. A user's
    /// own token is refused (`token_of_user`: disable the user instead), and so is the caller's
    /// own. Revoking a revoked token changes nothing and answers it as it is.
    pub async fn revoke_token(&self, p: &Principal, id: Uuid) -> Result<TokenInfo> {
        let token = self.token(p, id).await?;
        if token.holder == Holder::User {
            return Err(Error::new(
                ErrorCode::TokenOfUser,
                "this token is a user's own; disable the user instead",
            ));
        }
        if p.operator.is_none() && p.token_id == id {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "an administrator cannot revoke the token they are using",
            ));
        }
        if token.revoked_at_micros.is_none() {
            self.sessions
                .store
                .revoke_token_and_sessions(&p.ledger_id, id, self.now())
                .await?;
        }
        self.token(p, id).await
    }

    // ---- Signing keys ----

    /// The signing keys: id, status, when made; never a secret (admin only).
    pub fn signing_keys(&self, p: &Principal) -> Result<Vec<KeyInfo>> {
        admin_only(p)?;
        Ok(self
            .keys
            .get()
            .signing_keys()
            .iter()
            .map(|k| KeyInfo {
                id: k.id.clone(),
                status: k.status,
                created_at_micros: k.created_at,
            })
            .collect())
    }

    /// Retires the active key and makes a new one active (admin only); the retired key still
    /// verifies what it signed. Answers the new key.
    pub async fn rotate_key(&self, p: &Principal) -> Result<KeyInfo> {
        admin_only(p)?;
        let (keys, entropy, now) = (self.keys.clone(), self.entropy.clone(), self.now());
        let id = tokio::task::spawn_blocking(move || {
            keys.update(|ring| {
                if ring.signing_keys().len() >= crate::keys::SIGNING_KEYS_MAX {
                    return Ok(None);
                }
                Ok(Some(ring.rotate(entropy.as_ref(), now)))
            })
        })
        .await
        .map_err(|_| Error::bare(ErrorCode::Internal))?
        .map_err(key_error)?
        .ok_or_else(|| {
            Error::new(
                ErrorCode::Forbidden,
                format!(
                    "the key file holds {} signing keys, the most it may",
                    crate::keys::SIGNING_KEYS_MAX
                ),
            )
        })?;
        tracing::info!(key = %id, actor = %p.actor(), "signing key rotated");
        self.key(p, &id)
    }

    /// Revokes a retired key (admin only): what it signed no longer verifies. The active key is
    /// refused (`signing_key_active`: rotate first), an unknown id is `unknown_signing_key`.
    pub async fn revoke_key(&self, p: &Principal, id: &str) -> Result<KeyInfo> {
        admin_only(p)?;
        let keys = self.keys.clone();
        let owned = id.to_owned();
        tokio::task::spawn_blocking(move || keys.update(|ring| ring.revoke(&owned)))
            .await
            .map_err(|_| Error::bare(ErrorCode::Internal))?
            .map_err(key_error)?;
        tracing::info!(key = %id, actor = %p.actor(), "signing key revoked");
        self.key(p, id)
    }

    fn key(&self, p: &Principal, id: &str) -> Result<KeyInfo> {
        self.signing_keys(p)?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Error::bare(ErrorCode::Internal))
    }

    // ---- The organisation ----

    /// The organisation units the caller may see, by id: an admin and an auditor all of them,
    /// staff their own unit and everything below it; anyone else is refused. At most
    /// [`ORG_UNITS_MAX`].
    pub async fn org_units(&self, p: &Principal) -> Result<Vec<OrgUnit>> {
        let all = match p.role {
            Role::Admin | Role::Auditor | Role::Staff => {
                self.earning
                    .store
                    .org_units(&p.ledger_id, ORG_UNITS_MAX)
                    .await?
            }
            _ => return Err(Error::forbidden()),
        };
        if p.role != Role::Staff {
            return Ok(all);
        }
        let Some(scope) = p.scope.as_deref() else {
            return Ok(Vec::new());
        };
        // The subtree under the staff member's unit, by walking down from it.
        let mut inside: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        if all.iter().any(|u| u.id == scope) {
            inside.insert(scope);
        }
        loop {
            let before = inside.len();
            for unit in &all {
                if unit
                    .parent_id
                    .as_deref()
                    .is_some_and(|parent| inside.contains(parent))
                {
                    inside.insert(unit.id.as_str());
                }
            }
            if inside.len() == before {
                break;
            }
        }
        let inside: std::collections::BTreeSet<String> =
            inside.into_iter().map(str::to_owned).collect();
        Ok(all.into_iter().filter(|u| inside.contains(&u.id)).collect())
    }
}
