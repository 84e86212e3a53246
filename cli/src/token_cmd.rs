//! `orch token worker|manager [--rotate] [-q]`: the join token of a role and the line
//! to run on a new host (like `docker swarm join-token`), through the manager's API
//! (`GET /v1/cluster/tokens`, `POST /v1/cluster/tokens/rotate`).

use crate::manager_api::{HostArgs, ManagerApi, runtime};
use api::cluster::NodeRole;
use clap::{Args, ValueEnum};
use manager::http::tokens::{JoinTokens, TokenRotate};
use reqwest::Method;
use std::process::ExitCode;

/// The role a token makes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TokenRole {
    /// Hosts that run tasks (`orch agent`).
    Worker,
    /// Hosts that run the control plane (`orch manager`).
    Manager,
}

impl From<TokenRole> for NodeRole {
    fn from(role: TokenRole) -> NodeRole {
        match role {
            TokenRole::Worker => NodeRole::Worker,
            TokenRole::Manager => NodeRole::Manager,
        }
    }
}

/// `orch token ...`.
#[derive(Args)]
pub struct TokenArgs {
    /// Which token: `worker` or `manager`.
    #[arg(value_enum)]
    pub role: TokenRole,
    /// Make a new secret for this role: the old token is refused from now on (nodes
    /// that already joined keep working).
    #[arg(long)]
    pub rotate: bool,
    /// Print only the token.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub host: HostArgs,
}

/// Run `orch token ...`.
pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let api = ManagerApi::connect(&args.host)?;
    let role = NodeRole::from(args.role);
    let tokens: JoinTokens = runtime()?.block_on(async {
        if args.rotate {
            api.send(
                Method::POST,
                "/v1/cluster/tokens/rotate",
                Some(&TokenRotate { role }),
            )
            .await
        } else {
            api.call(Method::GET, "/v1/cluster/tokens").await
        }
    })?;
    let token = match role {
        NodeRole::Worker => &tokens.worker,
        NodeRole::Manager => &tokens.manager,
    };
    if args.quiet {
        println!("{token}");
        return Ok(ExitCode::SUCCESS);
    }
    let name = match role {
        NodeRole::Worker => "worker",
        NodeRole::Manager => "manager",
    };
    if args.rotate {
        println!("Rotated the {name} join token: the previous one is refused from now on.\n");
    }
    println!("{}", join_hint(role, token, &tokens.managers));
    Ok(ExitCode::SUCCESS)
}

/// The text that tells how to join a host as `role`.
fn join_hint(role: NodeRole, token: &str, managers: &[String]) -> String {
    let addr = managers.first().map_or("<manager address>", String::as_str);
    match role {
        NodeRole::Worker => format!(
            "To add a worker to this cluster, run on its host:\n\n    orch agent --join {addr} --token {token}\n"
        ),
        NodeRole::Manager => format!(
            "To add a manager to this cluster, run on its host:\n\n    orch manager join --token {token} {addr}\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_command_of_the_role() {
        let managers = vec!["10.0.0.1:4242".to_owned()];
        let worker = join_hint(NodeRole::Worker, "ORCH1-x", &managers);
        assert!(worker.contains("orch agent --join 10.0.0.1:4242 --token ORCH1-x"));
        let manager = join_hint(NodeRole::Manager, "ORCH1-y", &managers);
        assert!(manager.contains("orch manager join --token ORCH1-y 10.0.0.1:4242"));
        assert!(join_hint(NodeRole::Worker, "t", &[]).contains("<manager address>"));
    }
}
