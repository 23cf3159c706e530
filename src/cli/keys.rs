//! `aixin keys list|rotate|revoke`: the signing keys in the key file (no database).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::Globals;
use crate::clock::{Clock, OsEntropy, SystemClock};
use crate::keys::KeyRing;

#[derive(Subcommand)]
pub(super) enum KeysCommand {
    /// List the signing keys with their status (secrets are not printed).
    List,
    /// Retire the active signing key and make a new one active; retired keys still verify.
    Rotate,
    /// Revoke a retired signing key: what it signed no longer verifies.
    Revoke { id: String },
}

pub(super) fn run(g: &Globals, command: KeysCommand) -> Result<ExitCode, String> {
    let path = g.key_file();
    match command {
        KeysCommand::List => list(&path),
        KeysCommand::Rotate => rotate(&path),
        KeysCommand::Revoke { id } => revoke(&path, &id),
    }
}

/// The key file at `path`, created if missing.
fn load(path: &Path) -> Result<KeyRing, String> {
    let (ring, _) = KeyRing::load_or_create(path, &OsEntropy, SystemClock.now_micros())
        .map_err(|e| e.to_string())?;
    Ok(ring)
}

/// `aixin keys list`: id, status and creation time of each signing key, one per line.
fn list(path: &Path) -> Result<ExitCode, String> {
    let ring = load(path)?;
    for key in ring.signing_keys() {
        outln!("{}\t{:?}\t{}", key.id, key.status, key.created_at);
    }
    Ok(ExitCode::SUCCESS)
}

/// `aixin keys rotate`: prints the new active key's id.
fn rotate(path: &Path) -> Result<ExitCode, String> {
    let mut ring = load(path)?;
    let id = ring.rotate(&OsEntropy, SystemClock.now_micros());
    ring.save(path).map_err(|e| e.to_string())?;
    eprintln!("new active signing key {id}; running servers pick it up within a minute");
    outln!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// `aixin keys revoke ID`.
fn revoke(path: &Path, id: &str) -> Result<ExitCode, String> {
    let mut ring = load(path)?;
    ring.revoke(id).map_err(|e| e.to_string())?;
    ring.save(path).map_err(|e| e.to_string())?;
    eprintln!("revoked signing key {id}");
    Ok(ExitCode::SUCCESS)
}
