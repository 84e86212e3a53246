//! `orch volume ...`: named volumes of the local engine.

use crate::image::Format;
use crate::render::{self, each};
use api::client::EngineClient;
use api::volume::VolumeCreate;
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// `orch volume` subcommands.
#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes (JSON).
    Inspect(NamesArgs),
    /// Remove volumes.
    Rm(RmArgs),
    /// Remove every volume no container mounts.
    Prune,
}

/// Flags of `orch volume create`.
#[derive(Args)]
pub struct CreateArgs {
    name: String,
    /// A label `KEY=VALUE`.
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
}

/// Flags of `orch volume ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Print only names.
    #[arg(short, long)]
    quiet: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Volume names.
#[derive(Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    names: Vec<String>,
}

/// Flags of `orch volume rm`.
#[derive(Args)]
pub struct RmArgs {
    #[arg(required = true)]
    names: Vec<String>,
    /// Remove even while containers mount it.
    #[arg(short, long)]
    force: bool,
}

/// Run one `orch volume` subcommand.
pub fn run(client: &EngineClient, cmd: VolumeCommand) -> anyhow::Result<ExitCode> {
    crate::engine::block_on(async {
        match cmd {
            VolumeCommand::Create(a) => {
                let labels = a
                    .labels
                    .iter()
                    .map(|l| {
                        let (k, v) = l.split_once('=').unwrap_or((l, ""));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                let v = client
                    .create_volume(&VolumeCreate {
                        name: a.name,
                        labels,
                    })
                    .await?;
                println!("{}", v.name);
                Ok(ExitCode::SUCCESS)
            }
            VolumeCommand::Ls(a) => {
                let list = client.volumes().await?;
                match (a.format, a.quiet) {
                    (Format::Json, _) => render::json(&list)?,
                    (Format::Table, true) => list.iter().for_each(|v| println!("{}", v.name)),
                    (Format::Table, false) => {
                        let rows: Vec<Vec<String>> = list
                            .iter()
                            .map(|v| {
                                vec![
                                    v.name.clone(),
                                    v.used_by.len().to_string(),
                                    v.mountpoint.clone(),
                                ]
                            })
                            .collect();
                        render::table(&["VOLUME NAME", "CONTAINERS", "MOUNTPOINT"], &rows)?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            VolumeCommand::Inspect(a) => {
                let mut out = Vec::new();
                for n in &a.names {
                    out.push(client.volume(n).await?);
                }
                render::json(&out)?;
                Ok(ExitCode::SUCCESS)
            }
            VolumeCommand::Rm(a) => {
                each(&a.names, |n| async move {
                    client.remove_volume(&n, a.force).await.map(|_| n)
                })
                .await
            }
            VolumeCommand::Prune => {
                let r = client.prune_volumes().await?;
                for n in &r.removed {
                    println!("Deleted: {n}");
                }
                println!("Total reclaimed space: {}", render::size(r.reclaimed));
                Ok(ExitCode::SUCCESS)
            }
        }
    })?
}
