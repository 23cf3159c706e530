//! `aixin token create|revoke`: API tokens, made on the server for the people who hold them.

use std::process::ExitCode;

use clap::Subcommand;

use super::Globals;
use crate::auth::{new_token, Role};
use crate::clock::OsEntropy;

#[derive(Subcommand)]
pub(super) enum TokenCommand {
    /// Create a token and print it alone on stdout (it is shown only this once).
    Create {
        /// admin, staff, shop, resident or auditor.
        #[arg(long)]
        role: String,
        /// The community (staff), shop (shop) or resident (resident) the token is limited to.
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
    let role = Role::parse(role)
        .ok_or_else(|| format!("unknown role {role:?} (admin, staff, shop, resident, auditor)"))?;
    if role.needs_scope() && scope.is_none() {
        return Err(format!("a {} token needs --scope", role.as_str()));
    }
    if !crate::ledger::entry::text_is_clean(&label) {
        return Err("the label contains a control, invisible or bidirectional character".into());
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
