//! `aixin device pair|list|unpair`: the till devices of a shop. Clerks sign in with their PIN
//! only on a paired device; pairing is a one-time link opened on the device, which then keeps
//! its own secret in a long-lived cookie.

use std::process::ExitCode;

use clap::Subcommand;

use super::{BaseUrl, Globals};
use crate::auth::Principal;
use crate::calendar::format_time;

#[derive(Subcommand)]
pub(super) enum DeviceCommand {
    /// Print a one-time link that pairs the device opening it with a shop (valid 24 hours).
    Pair {
        /// The shop's id.
        #[arg(long)]
        shop: uuid::Uuid,
        /// What the device is called at the shop ("收银台 1").
        #[arg(long)]
        label: String,
        #[command(flatten)]
        base: BaseUrl,
    },
    /// List a shop's devices: id, paired or unpaired, when paired, label.
    List {
        #[arg(long)]
        shop: uuid::Uuid,
    },
    /// Unpair a device by its id: the clerks signed in on it are signed out.
    Unpair { id: uuid::Uuid },
}

pub(super) async fn run(g: &Globals, command: DeviceCommand) -> Result<ExitCode, String> {
    match command {
        DeviceCommand::Pair { shop, label, base } => pair(g, shop, &label, &base).await,
        DeviceCommand::List { shop } => list(g, shop).await,
        DeviceCommand::Unpair { id } => unpair(g, id).await,
    }
}

fn operator(g: &Globals) -> Principal {
    Principal::operator(&g.ledger, "aixin-device")
}

fn no_such(g: &Globals, what: &str, id: uuid::Uuid) -> impl Fn(crate::error::Error) -> String {
    let (ledger, what) = (g.ledger.clone(), what.to_owned());
    move |e| match e.code {
        crate::error::ErrorCode::NotFound => format!("ledger {ledger:?} has no {what} {id}"),
        _ => e.to_string(),
    }
}

/// `aixin device pair`: the pairing link alone on stdout.
async fn pair(
    g: &Globals,
    shop: uuid::Uuid,
    label: &str,
    base: &BaseUrl,
) -> Result<ExitCode, String> {
    let url = base.check()?;
    let app = g.app().await?;
    let link = app
        .sessions
        .pairing_link(&operator(g), shop, label)
        .await
        .map_err(no_such(g, "shop", shop))?;
    eprintln!(
        "open this link on the till device to pair it with the shop, once, until {}:",
        format_time(link.expires_at_micros)
    );
    outln!("{}", url.link("till/pair", &link.secret));
    Ok(ExitCode::SUCCESS)
}

/// `aixin device list`: one tab-separated line per device, oldest first.
async fn list(g: &Globals, shop: uuid::Uuid) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let devices = app
        .sessions
        .devices(&operator(g), shop)
        .await
        .map_err(no_such(g, "shop", shop))?;
    for device in devices {
        outln!(
            "{}\t{}\t{}\t{}",
            device.id,
            if device.unpaired_at_micros.is_some() {
                "unpaired"
            } else {
                "paired"
            },
            format_time(device.paired_at_micros),
            device.label
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `aixin device unpair ID`.
async fn unpair(g: &Globals, id: uuid::Uuid) -> Result<ExitCode, String> {
    let app = g.app().await?;
    let device = app
        .sessions
        .unpair_device(&operator(g), id)
        .await
        .map_err(no_such(g, "device", id))?;
    eprintln!(
        "unpaired device {} ({:?}); its sessions have ended",
        device.id, device.label
    );
    Ok(ExitCode::SUCCESS)
}
