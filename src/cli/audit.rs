//! `aixin audit export|verify|checkpoint`: bundles for an auditor, their offline verification
//! and signed checkpoints of the head.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{bound, Globals};
use crate::audit::verify::AuditSummary;
use crate::auth::Principal;
use crate::ledger::Checkpoint;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Write the audit bundle of a range of the journal into DIR (see ledger-specs/audit-bundle.md).
    Export {
        /// Directory to write the bundle into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// First entry: a sequence number, or a day (YYYY-MM-DD, UTC+8). Default: entry 1.
        #[arg(long)]
        from: Option<String>,
        /// Last entry: a sequence number, or a day (YYYY-MM-DD, UTC+8). Default: the head.
        #[arg(long)]
        to: Option<String>,
    },
    /// Verify a bundle offline (no database); exit 1 naming the first problem.
    Verify {
        /// The bundle's directory, or the tar downloaded from the API or the auditor's page.
        dir: PathBuf,
        /// A checkpoint line kept from before (e.g. from checkpoints.jsonl or
        /// `aixin audit checkpoint`): the bundle must extend it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Sign and store a checkpoint of the ledger's head now; print it (one JSON line).
    Checkpoint,
}

pub(super) async fn run(g: &Globals, command: AuditCommand) -> Result<ExitCode, String> {
    match command {
        AuditCommand::Export { out, from, to } => export(g, &out, from, to).await,
        AuditCommand::Verify { dir, checkpoint } => {
            verify(&dir, g.keys.as_deref(), checkpoint.as_deref())
        }
        AuditCommand::Checkpoint => checkpoint(g).await,
    }
}

/// `aixin audit export`: writes the bundle of `[from, to]` into `out`, signed with the key file.
async fn export(
    g: &Globals,
    out: &Path,
    from: Option<String>,
    to: Option<String>,
) -> Result<ExitCode, String> {
    let app = g.signing_app().await?;
    let (from, to) = (bound(from, "from")?, bound(to, "to")?);
    // Through the audit service, as the API's export: its bound on concurrent exports holds.
    let operator = Principal::operator(&g.ledger, "aixin-audit-export");
    let manifest = app
        .audit
        .export(&operator, from, to, out)
        .await
        .map_err(|e| e.detail)?;
    outln!(
        "exported ledger {:?} entries {} to {} ({} postings, {} accounts) to {}; head {}",
        manifest.ledger,
        manifest.from_seq,
        manifest.to_seq,
        manifest.counts.postings,
        manifest.counts.accounts,
        out.display(),
        manifest.head_hash
    );
    Ok(ExitCode::SUCCESS)
}

/// `aixin audit checkpoint`: signs and stores a checkpoint of the head; prints its line.
async fn checkpoint(g: &Globals) -> Result<ExitCode, String> {
    let app = g.signing_app().await?;
    let checkpoint = crate::audit::export::checkpoint_head(
        app.store.as_ref(),
        &g.ledger,
        &app.keys.get(),
        app.clock.now_micros(),
    )
    .await
    .map_err(|e| e.to_string())?;
    out!("{}", crate::audit::format::checkpoint_line(&checkpoint));
    Ok(ExitCode::SUCCESS)
}

/// `aixin audit verify`: no database, no network. Status 1 naming the first problem.
fn verify(dir: &Path, keys: Option<&Path>, checkpoint: Option<&Path>) -> Result<ExitCode, String> {
    let ring = keys
        .map(crate::keys::KeyRing::load)
        .transpose()
        .map_err(|e| e.to_string())?;
    let retained = checkpoint.map(retained_checkpoint).transpose()?;
    let tar;
    let directory = crate::audit::verify::DirSource(dir.to_path_buf());
    let source: &dyn crate::audit::verify::BundleSource = if dir.is_file() {
        tar = crate::audit::verify::TarSource::open(dir)
            .map_err(|e| format!("cannot read {} as a bundle's tar: {e}", dir.display()))?;
        &tar
    } else {
        &directory
    };
    match crate::audit::verify::verify_bundle(source, ring.as_ref(), retained.as_ref()) {
        Ok(summary) => {
            print_summary(&summary);
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            outln!("FAILED: {problem}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The last checkpoint line of the file at `path` (one kept from an earlier bundle).
fn retained_checkpoint(path: &Path) -> Result<Checkpoint, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    crate::audit::format::parse_checkpoint_line(line)
        .map_err(|e| format!("{} is not a checkpoint line: {e}", path.display()))
}

fn print_summary(summary: &AuditSummary) {
    outln!(
        "ok: ledger {:?}, entries {} to {} ({} postings, {} accounts, {} checkpoints), head {}",
        summary.ledger,
        summary.from_seq,
        summary.to_seq,
        summary.postings,
        summary.accounts,
        summary.checkpoints,
        summary.head_hash
    );
    if !summary.signatures_checked {
        outln!("note: signatures not checked (give --keys FILE to check them)");
    }
    if let Some(seq) = summary.extends_checkpoint {
        outln!("ok: extends the retained checkpoint of entry {seq}");
    }
    for (unit, kind, balance) in &summary.totals {
        outln!("total {unit} {kind} {balance}");
    }
}
