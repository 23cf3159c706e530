//! `aixin migrate` and `aixin verify`: the database itself.

use std::process::ExitCode;

use super::{redact, Globals};
use crate::auth::Principal;

/// `aixin migrate`: opening the database applies the migrations and creates the ledger.
pub(super) async fn migrate(g: &Globals) -> Result<ExitCode, String> {
    g.open().await?;
    eprintln!(
        "migrated {}; ledger {:?} ready",
        redact(&g.database_url),
        g.ledger
    );
    Ok(ExitCode::SUCCESS)
}

/// `aixin verify`: recomputes the hash chain and every balance; status 1 on the first problem.
/// A chain that verifies but whose head is more than `HEAD_AHEAD_MAX` (300 s) ahead of this
/// machine's clock adds a `warning:` line on stderr (where a schedule's mail or log picks it up)
/// and still exits 0: the status says whether the ledger is intact, and a clock is not the
/// ledger (`/healthz` carries the same check for monitoring, as `clock.ok`).
pub(super) async fn verify(g: &Globals) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let operator = Principal::operator(&g.ledger, "aixin-verify");
    match app.journal.verify(&operator).await.map_err(|e| e.detail)? {
        Ok(summary) => {
            outln!(
                "ok: ledger {:?}, {} entries, {} accounts, head {}",
                g.ledger,
                summary.entries,
                summary.accounts,
                summary.head_hash
            );
            let clock = app
                .journal
                .clock_check(&operator)
                .await
                .map_err(|e| e.detail)?;
            if !clock.ok {
                eprintln!(
                    "warning: the head is {} s ahead of this clock (more than {} s): a clock is wrong",
                    clock.head_ahead_seconds,
                    crate::ledger::HEAD_AHEAD_MAX_MICROS / 1_000_000
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            match problem.seq {
                Some(seq) => outln!(
                    "FAILED at entry {seq}: {:?}: {}",
                    problem.kind,
                    problem.detail
                ),
                None => outln!("FAILED: {:?}: {}", problem.kind, problem.detail),
            }
            Ok(ExitCode::from(1))
        }
    }
}
