//! `orch network ...`: bridge and overlay networks of the local engine.

use crate::image::Format;
use crate::render::{self, each};
use api::client::EngineClient;
use api::network::{NetworkConnect, NetworkCreate, NetworkDisconnect};
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// `orch network` subcommands.
#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks with their containers (JSON).
    Inspect(NamesArgs),
    /// Remove networks (they must have no containers).
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Put a container on a network.
    Connect(ConnectArgs),
    /// Take a container off a network.
    Disconnect(DisconnectArgs),
}

/// Flags of `orch network create`.
#[derive(Args)]
pub struct CreateArgs {
    name: String,
    /// `bridge` (this host) or `overlay` (vxlan across hosts).
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// IPv4 subnet in CIDR form (default: a free /24).
    #[arg(long)]
    subnet: Option<String>,
    /// The gateway address (default: the subnet's first address).
    #[arg(long)]
    gateway: Option<String>,
    /// No way out: no outbound NAT, no default route, no published ports.
    #[arg(long)]
    internal: bool,
    /// Let containers be connected by hand (overlay networks).
    #[arg(long)]
    attachable: bool,
    /// Link MTU.
    #[arg(long)]
    mtu: Option<u32>,
    /// The vxlan network identifier (overlay).
    #[arg(long)]
    vni: Option<u32>,
    /// A label `KEY=VALUE`.
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
}

/// Flags of `orch network ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Print only names.
    #[arg(short, long)]
    quiet: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Network names or ids.
#[derive(Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    names: Vec<String>,
}

/// Flags of `orch network connect`.
#[derive(Args)]
pub struct ConnectArgs {
    network: String,
    container: String,
    /// Another name the container answers to on this network.
    #[arg(long = "alias")]
    aliases: Vec<String>,
    /// A fixed IPv4 address.
    #[arg(long)]
    ip: Option<String>,
}

/// Flags of `orch network disconnect`.
#[derive(Args)]
pub struct DisconnectArgs {
    network: String,
    container: String,
}

/// Run one `orch network` subcommand.
pub fn run(client: &EngineClient, cmd: NetworkCommand) -> anyhow::Result<ExitCode> {
    crate::engine::block_on(async {
        match cmd {
            NetworkCommand::Create(a) => {
                let labels = a
                    .labels
                    .iter()
                    .map(|l| {
                        let (k, v) = l.split_once('=').unwrap_or((l, ""));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                let n = client
                    .create_network(&NetworkCreate {
                        name: a.name,
                        driver: Some(a.driver),
                        subnet: a.subnet,
                        gateway: a.gateway,
                        internal: a.internal,
                        attachable: a.attachable,
                        mtu: a.mtu,
                        vni: a.vni,
                        labels,
                    })
                    .await?;
                println!("{}", n.id);
                Ok(ExitCode::SUCCESS)
            }
            NetworkCommand::Ls(a) => {
                let list = client.networks().await?;
                match (a.format, a.quiet) {
                    (Format::Json, _) => render::json(&list)?,
                    (Format::Table, true) => list.iter().for_each(|n| println!("{}", n.name)),
                    (Format::Table, false) => {
                        let rows: Vec<Vec<String>> = list
                            .iter()
                            .map(|n| {
                                vec![
                                    n.id[..12].to_owned(),
                                    n.name.clone(),
                                    n.driver.clone(),
                                    n.subnet.clone(),
                                    if n.internal { "yes" } else { "" }.into(),
                                    n.endpoints.len().to_string(),
                                ]
                            })
                            .collect();
                        render::table(
                            &[
                                "NETWORK ID",
                                "NAME",
                                "DRIVER",
                                "SUBNET",
                                "INTERNAL",
                                "CONTAINERS",
                            ],
                            &rows,
                        )?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            NetworkCommand::Inspect(a) => {
                let mut out = Vec::new();
                for n in &a.names {
                    out.push(client.network(n).await?);
                }
                render::json(&out)?;
                Ok(ExitCode::SUCCESS)
            }
            NetworkCommand::Rm(a) => {
                each(&a.names, |n| async move {
                    client.remove_network(&n).await.map(|_| n)
                })
                .await
            }
            NetworkCommand::Connect(a) => {
                client
                    .connect_network(
                        &a.network,
                        &NetworkConnect {
                            container: a.container,
                            aliases: a.aliases,
                            ipv4: a.ip,
                        },
                    )
                    .await?;
                Ok(ExitCode::SUCCESS)
            }
            NetworkCommand::Disconnect(a) => {
                client
                    .disconnect_network(
                        &a.network,
                        &NetworkDisconnect {
                            container: a.container,
                        },
                    )
                    .await?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })?
}
