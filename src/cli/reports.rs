//! `aixin report trial-balance|community|shop`: the reports of [`crate::audit::export`], as
//! pretty JSON or (`--csv`) CSV on stdout.

use std::process::ExitCode;

use clap::Subcommand;

use super::{bound, Globals};

#[derive(Subcommand)]
pub(super) enum ReportCommand {
    /// Every account's balance after an entry or a day, in debit and credit columns.
    TrialBalance {
        /// A sequence number or a day (YYYY-MM-DD, UTC+8). Default: the head.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A community's issued, redeemed, refunded, expired and outstanding points.
    Community {
        id: String,
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A shop's points entry by entry.
    Shop {
        id: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

pub(super) async fn run(
    g: &Globals,
    command: ReportCommand,
    csv: bool,
) -> Result<ExitCode, String> {
    match command {
        ReportCommand::TrialBalance { as_of } => trial_balance(g, as_of, csv).await,
        ReportCommand::Community { id, as_of } => community(g, &id, as_of, csv).await,
        ReportCommand::Shop { id, from, to } => shop(g, &id, from, to, csv).await,
    }
}

/// `aixin report trial-balance [--as-of]`.
async fn trial_balance(g: &Globals, as_of: Option<String>, csv: bool) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let r =
        crate::audit::export::trial_balance(app.store.as_ref(), &g.ledger, bound(as_of, "as-of")?)
            .await
            .map_err(|e| e.to_string())?;
    let text = if csv { r.to_csv() } else { json_text(&r) };
    out!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `aixin report community ID [--as-of]`.
async fn community(
    g: &Globals,
    id: &str,
    as_of: Option<String>,
    csv: bool,
) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let r = crate::audit::export::community_summary(
        app.store.as_ref(),
        &g.ledger,
        id,
        bound(as_of, "as-of")?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let text = if csv {
        r.to_csv()
    } else {
        json_text(&r.to_json())
    };
    out!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `aixin report shop ID [--from] [--to]`: an error if there is no such shop.
async fn shop(
    g: &Globals,
    id: &str,
    from: Option<String>,
    to: Option<String>,
    csv: bool,
) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let r = crate::audit::export::shop_statement(
        app.store.as_ref(),
        &g.ledger,
        id,
        bound(from, "from")?,
        bound(to, "to")?,
    )
    .await
    .map_err(|e| e.to_string())?;
    if r.accounts.is_empty() {
        return Err(format!("no shop {id:?}"));
    }
    let text = if csv { r.to_csv() } else { json_text(&r) };
    out!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}
