//! `orch manager init|join|run`: the control plane's daemon, in the foreground.

use crate::context::Context as CliContext;
use agent::engine::daemon::EngineConfig;
use anyhow::Context;
use clap::{Args, Subcommand};
use manager::server::{InitTokens, Manager, ManagerConfig};
use manager::store::{ClusterSettings, StoreConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where a manager keeps its identity and store unless told.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/orch/manager";
/// The root-only socket of the local CLI.
pub const DEFAULT_SOCKET: &str = "/run/orch/manager.sock";

/// `orch manager ...`.
#[derive(Subcommand)]
pub enum ManagerCommand {
    /// Make a new cluster with this host as its first manager, then serve it.
    Init {
        #[command(flatten)]
        daemon: DaemonArgs,
        /// How often agents heartbeat.
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
        heartbeat: Duration,
        /// A node silent this long is marked down.
        #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = duration)]
        node_down_grace: Duration,
        /// How tasks are placed: spread, binpack or random (a service overrides it
        /// with the label `orch.strategy`).
        #[arg(long, value_name = "STRATEGY", default_value = "spread")]
        strategy: manager::scheduler::Strategy,
        /// How long node certificates are valid (at least 1s); nodes renew theirs
        /// after two thirds of it.
        #[arg(long, value_name = "DURATION", default_value = "2160h", value_parser = cert_expiry)]
        cert_expiry: Duration,
    },
    /// Join a cluster as a manager (with its manager token), then serve it.
    Join {
        #[command(flatten)]
        daemon: DaemonArgs,
        /// The cluster's manager join token (`orch token manager`).
        #[arg(long, env = "ORCH_TOKEN", value_name = "TOKEN")]
        token: String,
        /// A manager of the cluster.
        #[arg(value_name = "HOST:PORT")]
        remote: String,
    },
    /// Serve the manager kept in the data directory (after init or join).
    Run {
        #[command(flatten)]
        daemon: DaemonArgs,
    },
}

/// Flags every manager command takes.
#[derive(Args)]
pub struct DaemonArgs {
    /// Where the manager's identity and replicated store live.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The address to serve raft, joining and the API on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:4242")]
    listen: String,
    /// The address other nodes reach this manager at (needed when listening on all).
    #[arg(long, value_name = "ADDR:PORT")]
    advertise: Option<String>,
    /// The root-only unix socket of the local CLI.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Also run this host's engine and take tasks, as a worker does (like a swarm
    /// manager); the manager's node identity is the worker's.
    #[arg(long)]
    agent: bool,
    /// The engine's data directory (with --agent).
    #[arg(long, value_name = "DIR", default_value = agent::engine::daemon::DEFAULT_DATA_DIR)]
    engine_data_dir: PathBuf,
    /// The engine's unix socket (with --agent).
    #[arg(long, value_name = "PATH", default_value = agent::engine::daemon::DEFAULT_SOCKET)]
    engine_socket: PathBuf,
}

fn duration(text: &str) -> Result<Duration, String> {
    api::units::parse_duration(text).map(api::units::Duration::to_std)
}

fn cert_expiry(text: &str) -> Result<Duration, String> {
    let expiry = duration(text)?;
    if expiry < Duration::from_secs(1) {
        return Err(format!(
            "certificates must be valid for at least 1s, not {text}"
        ));
    }
    Ok(expiry)
}

impl DaemonArgs {
    /// The engine and worker to run beside the manager (`--agent`).
    fn node(&self) -> Option<(PathBuf, EngineConfig)> {
        self.agent.then(|| {
            (
                self.data_dir.clone(),
                EngineConfig {
                    data_dir: self.engine_data_dir.clone(),
                    socket: self.engine_socket.clone(),
                    insecure_registries: Vec::new(),
                    dns_upstreams: Vec::new(),
                    cluster_registry: None,
                    userns_remap: None,
                },
            )
        })
    }

    fn config(&self) -> ManagerConfig {
        ManagerConfig {
            data_dir: self.data_dir.clone(),
            listen: self.listen.clone(),
            advertise: self.advertise.clone(),
            socket: Some(self.socket.clone()),
            store: StoreConfig::default(),
        }
    }
}

/// Run a manager command until SIGINT or SIGTERM.
pub fn run(cmd: ManagerCommand) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async {
        let node = match &cmd {
            ManagerCommand::Init { daemon, .. }
            | ManagerCommand::Join { daemon, .. }
            | ManagerCommand::Run { daemon } => daemon.node(),
        };
        let manager = match cmd {
            ManagerCommand::Init {
                daemon,
                heartbeat,
                node_down_grace,
                strategy,
                cert_expiry,
            } => {
                let settings = ClusterSettings {
                    heartbeat_ms: millis(heartbeat),
                    node_down_grace_ms: millis(node_down_grace),
                    strategy,
                };
                let ca = manager::ca::CaConfig {
                    node_cert_validity: cert_expiry,
                };
                let (manager, tokens) = Manager::init(daemon.config(), settings, ca)
                    .await
                    .context("initialize the cluster")?;
                let context = CliContext {
                    host: manager.advertise().to_owned(),
                    ca_cert_pem: manager.ca_cert_pem(),
                    token: tokens.api.clone(),
                };
                let path = context.save().context("write the CLI context")?;
                print_init(&manager, &tokens, &path);
                manager
            }
            ManagerCommand::Join {
                daemon,
                token,
                remote,
            } => {
                let manager = Manager::join(daemon.config(), &remote, &token)
                    .await
                    .with_context(|| format!("join the cluster of {remote}"))?;
                eprintln!(
                    "orch manager: node {} joined as a manager; serving on {}",
                    manager.node_id(),
                    manager.advertise()
                );
                manager
            }
            ManagerCommand::Run { daemon } => {
                let manager = Manager::start(daemon.config())
                    .await
                    .context("start the manager")?;
                eprintln!(
                    "orch manager: node {} serving on {}",
                    manager.node_id(),
                    manager.advertise()
                );
                manager
            }
        };
        let served = match node {
            None => {
                wait_for_signal().await;
                Ok(())
            }
            Some((data_dir, engine)) => {
                let session = own_session(&data_dir, &manager)?;
                // A manager's own node needs no role announcements: it renews as a manager.
                let role = tokio::sync::watch::channel(None).0;
                crate::agent_cmd::serve_node(engine, Some(session), role, wait_for_signal()).await
            }
        };
        eprintln!("orch manager: shutting down");
        manager.shutdown().await;
        served
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The worker session of the manager's own node (`--agent`): its certificate (as the
/// manager renews it), this manager first, and the advertised host as the node's
/// address.
fn own_session(
    data_dir: &std::path::Path,
    manager: &Manager,
) -> anyhow::Result<agent::worker::session::SessionConfig> {
    let advertise = manager.advertise();
    let layout = manager::server::Layout::new(data_dir);
    let host = advertise
        .rsplit_once(':')
        .map_or(advertise, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let mut managers = vec![advertise.to_owned()];
    managers.extend(
        layout
            .managers()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m != advertise),
    );
    Ok(agent::worker::session::SessionConfig {
        http: manager::server::live_http_client(manager.identity())?,
        managers,
        description: agent::worker::session::describe_host(env!("CARGO_PKG_VERSION")),
        addr: Some(host.to_owned()),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn print_init(manager: &Manager, tokens: &InitTokens, context: &std::path::Path) {
    let addr = manager.advertise();
    println!(
        "Cluster initialized: node {} is its first manager, serving on {addr}.",
        manager.node_id()
    );
    println!();
    println!(
        "Add a worker:   orch agent --join {addr} --token {}",
        tokens.worker
    );
    println!(
        "Add a manager:  orch manager join --token {} {addr}",
        tokens.manager
    );
    println!();
    println!(
        "API token (bearer; also saved with the CA certificate in {}):",
        context.display()
    );
    println!("  {}", tokens.api);
}

/// Until SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
