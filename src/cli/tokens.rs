//! `aixin token create|revoke`: API tokens, made on the server for the people who hold them.

use std::process::ExitCode;

use clap::Subcommand;

use super::Globals;
use crate::app::App;
use crate::auth::{new_token, Role};
use crate::clock::OsEntropy;

#[derive(Subcommand)]
pub(super) enum TokenCommand {
    /// Create a token and print it alone on stdout (it is shown only this once).
    Create {
        /// admin, staff, shop, cashier, resident or auditor.
        #[arg(long)]
        role: String,
        /// The community (staff), shop (shop, cashier) or resident (resident) the token is
        /// limited to.
        #[arg(long)]
        scope: Option<String>,
        /// A note on who holds the token.
        #[arg(long, default_value = "")]
        label: String,
        /// Expire after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a token by its id (printed on stderr when it was created).
    Revoke { id: uuid::Uuid },
}

pub(super) async fn run(g: &Globals, command: TokenCommand) -> Result<ExitCode, String> {
    match command {
        TokenCommand::Create {
            role,
            scope,
            label,
            expires_in_days,
        } => create(g, &role, scope, label, expires_in_days).await,
        TokenCommand::Revoke { id } => revoke(g, id).await,
    }
}

/// `aixin token create`: the secret alone on stdout, its id on stderr.
async fn create(
    g: &Globals,
    role: &str,
    scope: Option<String>,
    label: String,
    expires_in_days: Option<u32>,
) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let role = Role::parse(role).ok_or_else(|| {
        format!("unknown role {role:?} (admin, staff, shop, cashier, resident, auditor)")
    })?;
    if role.needs_scope() && scope.is_none() {
        return Err(format!("a {} token needs --scope", role.as_str()));
    }
    if !crate::ledger::entry::text_is_clean(&label) {
        return Err("the label contains a control, invisible or bidirectional character".into());
    }
    if let Some(scope) = scope.as_deref().filter(|_| role.needs_scope()) {
        check_scope(&app, &g.ledger, role, scope).await?;
    }
    let ttl = expires_in_days.map(|d| i64::from(d) * 86_400 * 1_000_000);
    let (secret, record) = new_token(
        &OsEntropy,
        app.clock.now_micros(),
        &g.ledger,
        role,
        scope,
        label,
        ttl,
    );
    app.store
        .insert_token(&record)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "created {} token {} for ledger {:?}",
        role.as_str(),
        record.id,
        g.ledger
    );
    outln!("{secret}");
    Ok(ExitCode::SUCCESS)
}

/// Refuses a scope that names nothing in the ledger: a staff token's scope must be an
/// organisation unit, a shop token's a shop id, a resident token's a resident id (a token for
/// nothing would see nothing, and would start to see whatever later took that id).
async fn check_scope(app: &App, ledger: &str, role: Role, scope: &str) -> Result<(), String> {
    let store_error = |e: crate::store::StoreError| e.to_string();
    let id = || {
        uuid::Uuid::parse_str(scope)
            .map_err(|_| format!("--scope {scope:?} is not a {} id", role.as_str()))
    };
    let exists = match role {
        Role::Staff => app
            .earning
            .store
            .org_unit(ledger, scope)
            .await
            .map_err(store_error)?
            .is_some(),
        Role::Shop | Role::Cashier => app
            .redemption
            .store
            .shop(ledger, id()?)
            .await
            .map_err(store_error)?
            .is_some(),
        Role::Resident => app
            .earning
            .store
            .resident(ledger, id()?)
            .await
            .map_err(store_error)?
            .is_some(),
        Role::Admin | Role::Auditor => true,
    };
    if exists {
        Ok(())
    } else {
        let what = match role {
            Role::Staff => "organisation unit",
            Role::Shop | Role::Cashier => "shop",
            _ => "resident",
        };
        Err(format!(
            "--scope {scope:?}: ledger {ledger:?} has no {what} with that id"
        ))
    }
}

/// `aixin token revoke ID`.
async fn revoke(g: &Globals, id: uuid::Uuid) -> Result<ExitCode, String> {
    let app = g.app().await?;
    if app
        .store
        .revoke_token(id, app.clock.now_micros())
        .await
        .map_err(|e| e.to_string())?
    {
        eprintln!("revoked token {id}");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!("no token {id}"))
    }
}
