//! `aixin user create|reset-password|disable|list`: the people who sign in to the web pages with
//! a name and password (admins, community staff, auditors). A new user, or one whose password
//! is reset, gets a one-time link that sets the password; the command prints it alone on
//! stdout, to hand to that person.

use std::process::ExitCode;

use clap::Subcommand;

use super::{BaseUrl, Globals};
use crate::auth::{Principal, Role};
use crate::calendar::format_time;

#[derive(Subcommand)]
pub(super) enum UserCommand {
    /// Create a user and print the one-time link that sets their password (valid 72 hours).
    Create {
        /// admin, staff, auditor or shop (a shop's owner, who reaches the owner pages).
        #[arg(long)]
        role: String,
        /// The organisation unit a staff user manages (and everything below it); for a shop
        /// owner, the shop's id.
        #[arg(long)]
        scope: Option<String>,
        /// The name they sign in with (unique in the ledger).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        base: BaseUrl,
    },
    /// Print a new one-time link that sets the user's password (an earlier one stops working).
    ResetPassword {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        base: BaseUrl,
    },
    /// Disable a user: their sessions end and they can no longer sign in.
    Disable {
        #[arg(long)]
        name: String,
    },
    /// List the users: id, role, scope, whether a password is set, whether disabled, name.
    List,
}

pub(super) async fn run(g: &Globals, command: UserCommand) -> Result<ExitCode, String> {
    match command {
        UserCommand::Create {
            role,
            scope,
            name,
            base,
        } => create(g, &role, scope.as_deref(), &name, &base).await,
        UserCommand::ResetPassword { name, base } => reset_password(g, &name, &base).await,
        UserCommand::Disable { name } => disable(g, &name).await,
        UserCommand::List => list(g).await,
    }
}

fn operator(g: &Globals) -> Principal {
    Principal::operator(&g.ledger, "aixin-user")
}

/// `aixin user create`: the set-password link alone on stdout, the user on stderr.
async fn create(
    g: &Globals,
    role: &str,
    scope: Option<&str>,
    name: &str,
    base: &BaseUrl,
) -> Result<ExitCode, String> {
    let role = Role::parse(role)
        .filter(|r| matches!(r, Role::Admin | Role::Staff | Role::Auditor | Role::Shop))
        .ok_or_else(|| format!("--role {role:?}: a user is an admin, staff, auditor or shop"))?;
    let url = base.check()?;
    let app = g.app().await?;
    let (user, link) = app
        .sessions
        .create_user(&operator(g), role, scope, name)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "created {} user {:?} ({}) in ledger {:?}; this link sets their password, once, until {}:",
        user.role.as_str(),
        user.name,
        user.id,
        g.ledger,
        format_time(link.expires_at_micros)
    );
    outln!("{}", url.link("set-password", &link.secret));
    Ok(ExitCode::SUCCESS)
}

/// `aixin user reset-password`: a new set-password link alone on stdout.
async fn reset_password(g: &Globals, name: &str, base: &BaseUrl) -> Result<ExitCode, String> {
    let url = base.check()?;
    let app = g.app().await?;
    let p = operator(g);
    let user = app
        .sessions
        .user_named(&p, name)
        .await
        .map_err(|_| format!("ledger {:?} has no user named {name:?}", g.ledger))?;
    let link = app
        .sessions
        .password_reset_link(&p, user.id)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "this link sets a new password for {:?}, once, until {} (the password stays until then):",
        user.name,
        format_time(link.expires_at_micros)
    );
    outln!("{}", url.link("set-password", &link.secret));
    Ok(ExitCode::SUCCESS)
}

/// `aixin user disable`.
async fn disable(g: &Globals, name: &str) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let p = operator(g);
    let user = app
        .sessions
        .user_named(&p, name)
        .await
        .map_err(|_| format!("ledger {:?} has no user named {name:?}", g.ledger))?;
    app.sessions
        .disable_user(&p, user.id)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("disabled user {:?}; their sessions have ended", user.name);
    Ok(ExitCode::SUCCESS)
}

/// `aixin user list`: one tab-separated line per user, by name.
async fn list(g: &Globals) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let users = app
        .sessions
        .users(&operator(g))
        .await
        .map_err(|e| e.to_string())?;
    for user in users {
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            user.id,
            user.role.as_str(),
            user.scope.as_deref().unwrap_or("-"),
            if user.has_password {
                "password"
            } else {
                "no-password"
            },
            if user.disabled_at_micros.is_some() {
                "disabled"
            } else {
                "active"
            },
            user.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
