//! API tokens, roles and what each role may see.
//!
//! A token is `axn_` followed by 64 hex digits (256 random bits). Only its SHA-256 is stored: a
//! fast hash is enough because the secret has full entropy, and it lets a lookup use an index.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::clock::{Clock, Entropy};
use crate::store::{Account, Store, StoreError, TokenRecord};

/// Every token starts with this, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "axn_";
/// Length of a token: the prefix and 64 hex digits.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Staff,
    Shop,
    Resident,
    Auditor,
    /// A shop clerk who may scan and nothing else: redeem at their shop and read its receipts.
    Cashier,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Staff,
        Role::Shop,
        Role::Resident,
        Role::Auditor,
        Role::Cashier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Shop => "shop",
            Role::Resident => "resident",
            Role::Auditor => "auditor",
            Role::Cashier => "cashier",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Staff, shop, cashier and resident tokens only make sense with a scope (a community, shop
    /// or resident id); admin and auditor tokens see the whole ledger.
    pub fn needs_scope(self) -> bool {
        matches!(
            self,
            Role::Staff | Role::Shop | Role::Resident | Role::Cashier
        )
    }
}

/// Who is calling, as established from a valid token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub token_id: Uuid,
    pub ledger_id: String,
    pub role: Role,
    pub scope: Option<String>,
    /// Set for the server's own jobs (the CLI on the server, the schedules inside `serve`),
    /// which act as an administrator without a token: the actor they record.
    pub operator: Option<&'static str>,
}

impl Principal {
    /// The server's own administrator for `ledger`, recorded as `actor`: for commands run on
    /// the server itself (which can open the database anyway) and for its schedules.
    pub fn operator(ledger: &str, actor: &'static str) -> Principal {
        Principal {
            token_id: Uuid::nil(),
            ledger_id: ledger.to_owned(),
            role: Role::Admin,
            scope: None,
            operator: Some(actor),
        }
    }

    /// The actor recorded on entries this principal posts.
    pub fn actor(&self) -> String {
        match self.operator {
            Some(name) => name.to_owned(),
            None => format!("token:{}", self.token_id),
        }
    }

    /// Object-level visibility. Anything a principal cannot see answers 404, so existence does
    /// not leak.
    pub fn can_see_account(&self, account: &Account) -> bool {
        use crate::ledger::AccountKind;
        let scope = self.scope.as_deref();
        match self.role {
            Role::Admin | Role::Auditor => true,
            Role::Staff => scope.is_some() && account.community_id.as_deref() == scope,
            Role::Shop => {
                account.kind == AccountKind::Shop
                    && scope.is_some()
                    && account.owner_id.as_deref() == scope
            }
            Role::Resident => {
                account.kind == AccountKind::Resident
                    && scope.is_some()
                    && account.owner_id.as_deref() == scope
            }
            // A cashier sees no account, not even the shop's: only the receipts of its shop.
            Role::Cashier => false,
        }
    }
}

/// SHA-256 of a token's text.
pub fn hash_token(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new token: its secret (shown once) and the record to store.
pub fn new_token(
    entropy: &dyn Entropy,
    now_micros: i64,
    ledger_id: &str,
    role: Role,
    scope: Option<String>,
    label: String,
    ttl_micros: Option<i64>,
) -> (String, TokenRecord) {
    let mut secret_bytes = [0u8; 32];
    entropy.fill(&mut secret_bytes);
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(secret_bytes));
    let record = TokenRecord {
        id: entropy.uuid(),
        ledger_id: ledger_id.to_owned(),
        token_hash: hash_token(&secret),
        role: role.as_str().to_owned(),
        scope,
        label,
        created_at_micros: now_micros,
        expires_at_micros: ttl_micros.map(|ttl| now_micros.saturating_add(ttl)),
        revoked_at_micros: None,
    };
    (secret, record)
}

/// The text of a token whose 32 secret bytes are given (see [`new_token`] for random ones).
pub fn token_text(secret_bytes: &[u8; 32]) -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(secret_bytes))
}

/// Why a token was not accepted. All of them answer the same 401 to the client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no valid bearer token")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks an `Authorization` header value and returns who it is.
pub async fn authenticate(
    store: &dyn Store,
    clock: &dyn Clock,
    header: Option<&str>,
) -> Result<Principal, AuthError> {
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let secret = header
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| t.len() == TOKEN_LEN && t.starts_with(TOKEN_PREFIX))
        .ok_or(AuthError::Invalid)?;
    let record = store
        .token_by_hash(&hash_token(secret))
        .await?
        .ok_or(AuthError::Invalid)?;
    let now = clock.now_micros();
    if record.revoked_at_micros.is_some() || record.expires_at_micros.is_some_and(|e| e <= now) {
        return Err(AuthError::Invalid);
    }
    let role = Role::parse(&record.role).ok_or(AuthError::Invalid)?;
    Ok(Principal {
        operator: None,
        token_id: record.id,
        ledger_id: record.ledger_id,
        role,
        scope: record.scope,
    })
}

impl From<AuthError> for crate::error::Error {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid => crate::error::Error::bare(crate::error::ErrorCode::Unauthorized),
            AuthError::Store(e) => e.into(),
        }
    }
}
