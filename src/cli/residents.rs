//! `aixin resident sign-in-link`: the one-time link a resident signs in to their pages with,
//! printed by staff as a QR code. Residents never need a password.

use std::process::ExitCode;

use clap::Subcommand;

use super::{BaseUrl, Globals};
use crate::auth::Principal;
use crate::calendar::format_time;

#[derive(Subcommand)]
pub(super) enum ResidentCommand {
    /// Print a one-time sign-in link for a resident (valid 30 days; an earlier one stops
    /// working).
    SignInLink {
        /// The resident's id.
        #[arg(long)]
        resident: uuid::Uuid,
        #[command(flatten)]
        base: BaseUrl,
    },
}

pub(super) async fn run(g: &Globals, command: ResidentCommand) -> Result<ExitCode, String> {
    match command {
        ResidentCommand::SignInLink { resident, base } => sign_in_link(g, resident, &base).await,
    }
}

/// `aixin resident sign-in-link`: the link alone on stdout.
async fn sign_in_link(
    g: &Globals,
    resident: uuid::Uuid,
    base: &BaseUrl,
) -> Result<ExitCode, String> {
    let url = base.check()?;
    let app = g.app().await?;
    let link = app
        .sessions
        .resident_sign_in_link(&Principal::operator(&g.ledger, "aixin-resident"), resident)
        .await
        .map_err(|e| match e.code {
            crate::error::ErrorCode::NotFound => {
                format!("ledger {:?} has no resident {resident}", g.ledger)
            }
            _ => e.to_string(),
        })?;
    eprintln!(
        "this link signs the resident in, once, until {}:",
        format_time(link.expires_at_micros)
    );
    outln!("{}", url.link("r", &link.secret));
    Ok(ExitCode::SUCCESS)
}
