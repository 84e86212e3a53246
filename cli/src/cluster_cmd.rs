//! Commands that talk to the cluster's managers through the REST API: `orch node ...`
//! and `orch cluster status`. The manager is found from `--host`/`ORCH_HOST` (with the
//! saved context's CA and token), else the saved context, else the local manager's
//! root-only socket.

use crate::context::Context as CliContext;
use crate::manager_cmd::DEFAULT_SOCKET;
use crate::render;
use anyhow::{Context, bail};
use api::cluster::{Availability, Node, NodeRole};
use api::error::ErrorEnvelope;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::process::ExitCode;

/// Where the manager is (`--host` is shared by every cluster command).
#[derive(Args, Clone)]
pub struct HostArgs {
    /// A manager's `host:port` (default: the saved context, else the local socket).
    #[arg(long, env = "ORCH_HOST", value_name = "HOST:PORT", global = true)]
    host: Option<String>,
}

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
}

/// A client of one manager's REST API.
struct ManagerApi {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ManagerApi {
    fn connect(host: &HostArgs) -> anyhow::Result<ManagerApi> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let context = CliContext::load()?;
        let remote = host
            .host
            .clone()
            .map(|h| (h, context.clone()))
            .or_else(|| context.clone().map(|c| (c.host.clone(), Some(c))));
        match remote {
            Some((addr, Some(context))) => {
                let ca = manager::ca::CaCert::from_pem(&context.ca_cert_pem)
                    .context("the saved context's CA certificate")?;
                let mut tls = manager::ca::pinned_client_config(ca.digest())?;
                tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                let http = reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .build()?;
                Ok(ManagerApi {
                    http,
                    base: format!("https://{addr}"),
                    token: Some(context.token),
                })
            }
            Some((addr, None)) => bail!(
                "no saved context with the CA certificate and token for {addr}: run the command on a manager, or copy {} from one",
                crate::context::path().display()
            ),
            None => {
                let http = reqwest::Client::builder()
                    .unix_socket(DEFAULT_SOCKET)
                    .tls_certs_only([])
                    .build()?;
                Ok(ManagerApi {
                    http,
                    base: "http://manager".to_owned(),
                    token: None,
                })
            }
        }
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str) -> anyhow::Result<T> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let answer = req.send().await.with_context(|| {
            format!(
                "cannot reach the manager at {} (is `orch manager` running? pick one with --host or ORCH_HOST)",
                self.base
            )
        })?;
        let status = answer.status();
        let bytes = answer.bytes().await?;
        if !status.is_success() {
            match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
                Ok(e) => bail!("{}", e.error.message),
                Err(_) => bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
            }
        }
        if bytes.is_empty() {
            return serde_json::from_slice(b"null").context("empty answer");
        }
        serde_json::from_slice(&bytes).with_context(|| format!("decode the answer of {path}"))
    }
}

#[derive(Deserialize)]
struct List<T> {
    items: Vec<T>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
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
    let api = ManagerApi::connect(host)?;
    runtime()?.block_on(async {
        match cmd {
            ClusterCommand::Status => {
                let status: serde_json::Value = api.call(Method::GET, "/v1/cluster").await?;
                render::json(&status)
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
