//! Commands that talk to the cluster's managers through the REST API: `orch node ...`
//! and `orch cluster status`. The manager is found from `--host`/`ORCH_HOST` (with the
//! saved context's CA and token), else the saved context, else the local manager's
//! root-only socket.

pub use crate::manager_api::HostArgs;
use crate::manager_api::{List, ManagerApi, runtime};
use crate::render;
use api::cluster::{Availability, Node, NodeRole};
use clap::Subcommand;
use reqwest::Method;
use std::process::ExitCode;

/// `orch node ...`.
#[derive(Subcommand)]
pub enum NodeCommand {
    /// List the cluster's nodes.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a node as JSON.
    Inspect { id: String },
    /// Remove a node: its certificate is refused from then on.
    Rm { id: String },
}

/// `orch cluster ...`.
#[derive(Subcommand)]
pub enum ClusterCommand {
    /// The raft view of the manager asked: leader, members, indexes, health.
    Status,
    /// Start the local single-node cluster (a manager that also runs the engine, on
    /// loopback), as `orch up` does on first use when no cluster is configured.
    Start,
    /// Stop the local cluster's manager and engine (containers keep running).
    Stop,
}

/// Run `orch node ...`.
pub fn node(cmd: NodeCommand, host: &HostArgs) -> anyhow::Result<ExitCode> {
    let api = ManagerApi::connect(host)?;
    runtime()?.block_on(async {
        match cmd {
            NodeCommand::Ls { json } => {
                let nodes: List<Node> = api.call(Method::GET, "/v1/nodes").await?;
                if json {
                    return render::json(&nodes.items);
                }
                let rows: Vec<Vec<String>> = nodes.items.iter().map(node_row).collect();
                render::table(
                    &[
                        "ID",
                        "HOSTNAME",
                        "ROLE",
                        "STATUS",
                        "AVAILABILITY",
                        "ADDRESS",
                        "MESSAGE",
                    ],
                    &rows,
                )?;
                Ok(())
            }
            NodeCommand::Inspect { id } => {
                let node: serde_json::Value =
                    api.call(Method::GET, &format!("/v1/nodes/{id}")).await?;
                render::json(&node)
            }
            NodeCommand::Rm { id } => {
                let _: serde_json::Value =
                    api.call(Method::DELETE, &format!("/v1/nodes/{id}")).await?;
                println!("{id}");
                Ok(())
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn node_row(n: &Node) -> Vec<String> {
    let role = match n.spec.role {
        NodeRole::Manager => "manager",
        NodeRole::Worker => "worker",
    };
    let availability = match n.spec.availability {
        Availability::Active => "active",
        Availability::Pause => "pause",
        Availability::Drain => "drain",
    };
    let state = serde_json::to_value(n.status.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    vec![
        n.meta.id.clone(),
        n.description.hostname.clone(),
        role.to_owned(),
        state,
        availability.to_owned(),
        n.status.addr.clone().unwrap_or_default(),
        n.status.message.clone().unwrap_or_default(),
    ]
}

/// Run `orch cluster ...`.
pub fn cluster(cmd: ClusterCommand, host: &HostArgs) -> anyhow::Result<ExitCode> {
    match cmd {
        ClusterCommand::Start => {
            if !runtime()?.block_on(crate::local_cluster::start(true))? {
                eprintln!("orch: the local cluster is running");
            }
            return Ok(ExitCode::SUCCESS);
        }
        ClusterCommand::Stop => {
            crate::local_cluster::stop()?;
            return Ok(ExitCode::SUCCESS);
        }
        ClusterCommand::Status => {}
    }
    let api = ManagerApi::connect(host)?;
    runtime()?.block_on(async {
        match cmd {
            ClusterCommand::Status => {
                let status: serde_json::Value = api.call(Method::GET, "/v1/cluster").await?;
                render::json(&status)
            }
            ClusterCommand::Start | ClusterCommand::Stop => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
