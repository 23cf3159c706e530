//! `aixin seed-demo`: the demo programme of [`crate::seed`], which builds its own application
//! core on a clock that walks through the past six months.

use std::process::ExitCode;

use super::Globals;
use crate::clock::{Clock, SystemClock};

/// `aixin seed-demo`: fills an empty ledger; the counts and how to sign in go to stderr. The
/// seed leaves no token anyone can use (its own expire when it ends, their secrets unknown), so
/// the operator creates the first one.
pub(super) async fn seed_demo(g: &Globals, entries: u64, seed: u64) -> Result<ExitCode, String> {
    let stores = g.open().await?;
    let report = crate::seed::seed_demo(stores, &g.ledger, entries, seed, SystemClock.now_micros())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "seeded ledger {:?}: {} accounts, {} entries",
        g.ledger, report.accounts, report.entries
    );
    eprintln!("  the demo's own tokens have expired; to sign in, create an admin token with:");
    eprintln!("    {}", super::serve::token_create_command(g));
    Ok(ExitCode::SUCCESS)
}
