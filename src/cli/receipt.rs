//! `aixin receipt verify`: a receipt checked offline, with the key file alone.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::Globals;
use crate::keys::KeyRing;

/// Most bytes read from stdin for `receipt verify -`.
const RECEIPT_STDIN_MAX: u64 = 16 * 1024;

#[derive(Subcommand)]
pub(super) enum ReceiptCommand {
    /// Verify a receipt's compact form (AXR1:...); prints its fields, exits 1 if it does not
    /// verify. Uses `--keys` (or AIXIN_KEYS) and never opens the database.
    Verify {
        /// The compact form, or `-` to read it from stdin.
        receipt: String,
    },
}

pub(super) fn run(g: &Globals, command: ReceiptCommand) -> Result<ExitCode, String> {
    match command {
        ReceiptCommand::Verify { receipt } => verify(&g.key_file(), &receipt),
    }
}

/// `aixin receipt verify`: the receipt's fields as JSON on stdout; status 1 if it does not verify.
fn verify(keys: &Path, receipt: &str) -> Result<ExitCode, String> {
    // Offline: the key file must exist already; it is never created here.
    let ring = KeyRing::load(keys).map_err(|e| e.to_string())?;
    let text = if receipt == "-" {
        read_stdin()?
    } else {
        receipt.to_owned()
    };
    match crate::redeem::receipt::verify_compact(&ring, &text) {
        Ok(r) => {
            let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
            outln!("{json}");
            eprintln!("receipt {} verifies (key {})", r.id, r.key_id);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("receipt does not verify: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn read_stdin() -> Result<String, String> {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(std::io::stdin(), RECEIPT_STDIN_MAX),
        &mut text,
    )
    .map_err(|e| e.to_string())?;
    Ok(text)
}
