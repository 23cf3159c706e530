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
