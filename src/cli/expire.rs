//! `aixin expire`: one expiry run by hand (`serve` runs it hourly).

use std::process::ExitCode;

use super::Globals;
use crate::auth::Principal;

/// `aixin expire [--as-of DATE]`: posts the expiry entries due before `as_of` (default: today).
pub(super) async fn expire(g: &Globals, as_of: Option<String>) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let as_of = match as_of {
        Some(text) => crate::calendar::parse_date(&text)
            .ok_or_else(|| format!("--as-of {text:?} is not a date (YYYY-MM-DD)"))?,
        None => crate::calendar::day_of(app.clock.now_micros()),
    };
    let report = app
        .earning
        .run_expiry(&Principal::operator(&g.ledger, "aixin-expire"), as_of)
        .await
        .map_err(|e| e.detail)?;
    outln!(
        "expired {} points in {} accounts as of {} ({} refused)",
        crate::ledger::format_minor(report.points_minor),
        report.accounts,
        crate::calendar::format_date(report.as_of),
        report.refused
    );
    Ok(ExitCode::SUCCESS)
}
