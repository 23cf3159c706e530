//! `aixin seed-demo`: the demo programme of [`crate::seed`], which builds its own application
//! core on a clock that walks through the past six months, then opens it to a browser.

use std::process::ExitCode;
use std::sync::Arc;

use super::{BaseUrl, Globals};
use crate::app::App;
use crate::calendar::format_time;
use crate::clock::{Clock, OsEntropy, SystemClock};

/// `aixin seed-demo`: fills an empty ledger, its cards derived from the key file `serve` uses
/// (created if missing), so that the demo's cards and phones work against the server. The
/// counts and how to use the API go to stderr. The seed's own tokens expire when it ends and
/// their secrets are unknown, so the operator creates API tokens; for the pages, stdout gets one
/// line per way in, tab-separated: `admin|staff|auditor NAME LINK` (the link sets the password),
/// `till SHOP LINK` (opened on the till device, pairs it), `clerk NAME PIN` (signs in at that
/// till), `resident NAME LINK` (signs the resident in) and `resident-phone PHONE CARD-PIN`.
/// Every link works once; every secret comes from the OS.
pub(super) async fn seed_demo(
    g: &Globals,
    entries: u64,
    seed: u64,
    base: &BaseUrl,
) -> Result<ExitCode, String> {
    let url = base.check()?;
    let stores = g.open().await?;
    let (keys, created) = g.signing_keys()?;
    if created {
        eprintln!("created the key file {}", g.key_file().display());
    }
    let report = crate::seed::seed_demo_with_keys(
        stores.clone(),
        keys.clone(),
        &g.ledger,
        entries,
        seed,
        SystemClock.now_micros(),
    )
    .await
    .map_err(|e| e.to_string())?;
    eprintln!(
        "seeded ledger {:?}: {} accounts, {} entries",
        g.ledger, report.accounts, report.entries
    );
    eprintln!("  the demo's own tokens have expired; to use the API, create an admin token with:");
    eprintln!("    {}", super::serve::token_create_command(g));
    let app = App::new(stores, Arc::new(SystemClock), Arc::new(OsEntropy)).with_keys(keys);
    let demo = crate::seed::open_to_browsers(&app, &g.ledger, &report)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "  to sign in to the pages: each link below works once (the password links until {}, \
         the till's until {}, the resident's until {})",
        until(demo.users.first().map(|u| u.2.expires_at_micros)),
        until(Some(demo.pairing.expires_at_micros)),
        until(Some(demo.resident_link.expires_at_micros)),
    );
    for (role, name, link) in &demo.users {
        outln!(
            "{}\t{name}\t{}",
            role.as_str(),
            url.link("set-password", &link.secret)
        );
    }
    outln!(
        "till\t{}\t{}",
        demo.shop_name,
        url.link("till/pair", &demo.pairing.secret)
    );
    outln!("clerk\t{}\t{}", demo.clerk, demo.clerk_pin);
    outln!(
        "resident\t{}\t{}",
        demo.resident_name,
        url.link("r", &demo.resident_link.secret)
    );
    outln!(
        "resident-phone\t{}\t{}",
        demo.resident_phone,
        demo.resident_card_pin
    );
    Ok(ExitCode::SUCCESS)
}

/// When a link stops working.
fn until(expires_at: Option<i64>) -> String {
    expires_at.map_or_else(String::new, format_time)
}
