//! `orch agent`: run the node's engine — alone (like dockerd), or as a node of a
//! cluster: `--join HOST:PORT --token T` the first time, then its kept identity.

use agent::engine::daemon::{DEFAULT_DATA_DIR, DEFAULT_SOCKET, EngineConfig, serve};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `orch agent`.
#[derive(Args)]
pub struct AgentArgs {
    /// Where images, snapshots and state live.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The unix socket of the engine API (root-only).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// A registry (host[:port]) to reach over plain http (repeatable; loopback
    /// registries always are).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// A DNS server (IP[:PORT]) containers' names that are not the engine's are
    /// sent to (repeatable; default: the nameservers of /etc/resolv.conf).
    #[arg(long = "dns-upstream", value_name = "IP[:PORT]", value_parser = upstream)]
    dns_upstreams: Vec<std::net::SocketAddr>,
    /// Run every container in a user namespace of its own (unless it asks for
    /// `--userns host` or its own map): `CONTAINER:HOST:COUNT`, or a user whose
    /// ranges in /etc/subuid and /etc/subgid are mapped from 0.
    #[arg(long = "userns-remap", value_name = "USER|CONTAINER:HOST:COUNT")]
    userns_remap: Option<String>,
    /// A manager of the cluster to join (the first start) or to reach.
    #[arg(long, value_name = "HOST:PORT")]
    join: Option<String>,
    /// The worker join token (`orch token worker`), needed the first time.
    #[arg(long, env = "ORCH_TOKEN", value_name = "TOKEN")]
    token: Option<String>,
    /// The address other nodes reach this node at.
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
}

/// The node's cluster identity: joined once, kept in DATA/cluster.
async fn cluster_session(
    args: &AgentArgs,
) -> anyhow::Result<Option<agent::worker::session::SessionConfig>> {
    use manager::server::{Layout, NodeFile, client, node_http_client, raft_id};
    let layout = Layout::new(&args.data_dir.join("cluster"));
    let node = match (layout.node()?, &args.join) {
        (Some(node), _) => node,
        (None, None) => return Ok(None),
        (None, Some(remote)) => {
            let token = args
                .token
                .as_deref()
                .context("--join needs --token (the worker token: `orch token worker`)")?;
            let hostname = agent::worker::session::describe_host("").hostname;
            let joined = client::join(remote, token, &hostname, args.advertise.clone())
                .await
                .with_context(|| format!("join the cluster of {remote}"))?;
            if joined.response.role != api::cluster::NodeRole::Worker {
                anyhow::bail!(
                    "that is a manager token: an agent joins with the worker token; a manager joins with `orch manager join`"
                );
            }
            let node = NodeFile {
                node_id: joined.response.node_id.clone(),
                raft_id: raft_id(&joined.response.node_id),
                cluster_id: joined.response.cluster_id.clone(),
            };
            layout.save(&node, &joined.key, &joined.issued())?;
            let managers = joined.response.managers.join(",");
            layout.save_managers(&joined.response.managers)?;
            eprintln!(
                "orch agent: joined as node {} (managers: {managers})",
                node.node_id
            );
            node
        }
    };
    let identity = layout.identity(&node)?;
    let mut managers = layout.managers()?;
    if let Some(remote) = &args.join {
        managers.retain(|m| m != remote);
        managers.insert(0, remote.clone());
    }
    Ok(Some(agent::worker::session::SessionConfig {
        http: node_http_client(&identity)?,
        managers,
        description: agent::worker::session::describe_host(env!("CARGO_PKG_VERSION")),
        addr: args.advertise.clone(),
    }))
}

fn upstream(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse::<std::net::SocketAddr>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
        .map_err(|_| format!("{text:?} is not IP or IP:PORT"))
}

/// Run the engine until SIGINT or SIGTERM.
pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async {
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("orch agent: shutting down");
        };
        let session = cluster_session(&args).await?;
        serve_node(
            EngineConfig {
                data_dir: args.data_dir,
                socket: args.socket,
                insecure_registries: args.insecure_registries,
                dns_upstreams: args.dns_upstreams,
                userns_remap: args.userns_remap,
            },
            session,
            shutdown,
        )
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Serves the node's engine until `shutdown`; with a session, also the worker: the
/// session with the managers, and the executor that turns its assignments into
/// containers on this engine and reports their status.
pub async fn serve_node(
    engine: EngineConfig,
    session: Option<agent::worker::session::SessionConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (assignments, assigned) = tokio::sync::watch::channel(Default::default());
    let (reporter, reports) = tokio::sync::mpsc::channel(1024);
    let (publisher, logs) = tokio::sync::mpsc::channel(16);
    let work = agent::worker::session::Work {
        assignments,
        reports,
        logs,
    };
    let mut worker = Vec::new();
    if let Some(config) = session {
        let client = api::client::EngineClient::new(&format!("unix://{}", engine.socket.display()))
            .context("a client of this node's engine")?;
        worker.push(tokio::spawn(agent::worker::logs::run(
            client.clone(),
            assigned.clone(),
            publisher,
        )));
        worker.push(tokio::spawn(agent::worker::executor::run(
            client,
            assigned,
            reporter,
            engine.data_dir.join("task-files"),
        )));
        worker.push(tokio::spawn(agent::worker::session::run(
            config,
            work,
            |event| {
                eprintln!("orch agent: {}", render_session(&event));
            },
        )));
    }
    eprintln!(
        "orch agent: engine on unix://{} (data in {})",
        engine.socket.display(),
        engine.data_dir.display()
    );
    let served = serve(engine, shutdown).await;
    for task in worker {
        task.abort();
    }
    served.map_err(anyhow::Error::from)
}

fn render_session(event: &agent::worker::session::SessionEvent) -> String {
    use agent::worker::session::SessionEvent;
    match event {
        SessionEvent::Opened { leader, session_id } => {
            format!("session {session_id} open with the leader at {leader}")
        }
        SessionEvent::Lost { why } => format!("session lost ({why}); retrying"),
    }
}
