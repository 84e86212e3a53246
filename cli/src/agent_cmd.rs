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
    /// Where the manager listens once this node is promoted (`orch node promote`).
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:4242")]
    manager_listen: String,
}

impl AgentArgs {
    /// The manager this node runs once promoted: its data is the node's cluster
    /// directory; it is reached at `--advertise` with the port of `--manager-listen`
    /// when that listens on every address.
    fn promoted_manager(&self) -> manager::server::ManagerConfig {
        let unspecified = self
            .manager_listen
            .parse::<std::net::SocketAddr>()
            .ok()
            .filter(|addr| addr.ip().is_unspecified());
        let advertise = match (unspecified, &self.advertise) {
            (Some(listen), Some(host)) => Some(format!("{host}:{}", listen.port())),
            _ => None,
        };
        manager::server::ManagerConfig {
            data_dir: self.data_dir.join("cluster"),
            listen: self.manager_listen.clone(),
            advertise,
            socket: None,
            store: manager::store::StoreConfig::default(),
        }
    }
}

/// A node of a cluster: its session with the managers and the renewal of its
/// certificate (which follows the role the session announces).
pub struct ClusterNode {
    pub session: agent::worker::session::SessionConfig,
    pub renewal: manager::server::renewal::Renewal,
    pub role: tokio::sync::watch::Sender<Option<api::cluster::NodeRole>>,
}

/// The node's cluster identity: joined once, kept in DATA/cluster; refused at start
/// once its certificate expired (the node must join again).
async fn cluster_session(args: &AgentArgs) -> anyhow::Result<Option<ClusterNode>> {
    use manager::ca::LiveIdentity;
    use manager::server::renewal::Renewal;
    use manager::server::{Layout, client, live_http_client};
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
            let node = joined.keep(&layout)?;
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
    if let Err(expired) = identity.check(std::time::SystemTime::now()) {
        anyhow::bail!(
            "{expired}. This node cannot reconnect: remove {} and join again with \
             `orch agent --join HOST:PORT --token <worker token>` (`orch token worker` on a \
             manager prints it)",
            layout.dir().display()
        );
    }
    let joined = args.join.clone();
    let managers = {
        let layout = layout.clone();
        move || {
            let mut managers = layout.managers().unwrap_or_default();
            if let Some(remote) = &joined {
                managers.retain(|m| m != remote);
                managers.insert(0, remote.clone());
            }
            managers
        }
    };
    let live = LiveIdentity::new(identity)?;
    let http = live_http_client(&live)?;
    let (role, announced) = tokio::sync::watch::channel(None);
    Ok(Some(ClusterNode {
        role,
        session: agent::worker::session::SessionConfig {
            http,
            managers: managers(),
            description: agent::worker::session::describe_host(env!("CARGO_PKG_VERSION")),
            addr: args.advertise.clone(),
        },
        renewal: Renewal {
            live,
            layout,
            managers: std::sync::Arc::new(managers),
            announced: Some(announced),
        },
    }))
}

/// Renews the node's certificate until it expires (then says what to do); a node whose
/// certificate is a manager's (it was promoted) runs its manager until `stop`.
async fn renew(
    renewal: manager::server::renewal::Renewal,
    config: manager::server::ManagerConfig,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    use manager::server::Manager;
    use manager::server::renewal::{RenewalEnd, render};
    let live = renewal.live.clone();
    if live.get().role() == api::cluster::NodeRole::Worker {
        let end = renewal
            .run(|event| eprintln!("orch agent: {}", render(&event)))
            .await;
        if let RenewalEnd::Expired(expired) = end {
            eprintln!(
                "orch agent: {expired}. This node cannot reconnect: join it again with \
                 `orch agent --join HOST:PORT --token <worker token>` on a new data directory"
            );
            return;
        }
    }
    // A manager's certificate: the manager renews it from now on.
    let manager = match Manager::promote(config, live).await {
        Ok(manager) => manager,
        Err(e) => {
            eprintln!(
                "orch agent: this node was promoted, but its manager cannot start: {e}; \
                 fix that (see --manager-listen) and restart the agent"
            );
            return;
        }
    };
    eprintln!(
        "orch agent: promoted: node {} serves as a manager on {}",
        manager.node_id(),
        manager.advertise()
    );
    let _ = stop.await;
    manager.shutdown().await;
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
        let node = cluster_session(&args).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (session, role, renewing) = match node {
            Some(node) => {
                let task = tokio::spawn(renew(node.renewal, args.promoted_manager(), stopped));
                (Some(node.session), node.role, Some(task))
            }
            None => (None, tokio::sync::watch::channel(None).0, None),
        };
        let served = serve_node(
            EngineConfig {
                data_dir: args.data_dir,
                socket: args.socket,
                insecure_registries: args.insecure_registries,
                dns_upstreams: args.dns_upstreams,
                cluster_registry: None,
                userns_remap: args.userns_remap,
            },
            session,
            role,
            shutdown,
        )
        .await;
        let _ = stop.send(());
        if let Some(task) = renewing {
            // A manager it runs stops cleanly; a renewal in flight is cut.
            if tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .is_err()
            {
                eprintln!("orch agent: the manager did not stop within 10 s");
            }
        }
        served
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Serves the node's engine until `shutdown`; with a session, also the worker: the
/// session with the managers, and the executor that turns its assignments into
/// containers on this engine and reports their status.
pub async fn serve_node(
    mut engine: EngineConfig,
    session: Option<agent::worker::session::SessionConfig>,
    role: tokio::sync::watch::Sender<Option<api::cluster::NodeRole>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // The cluster's registry is served by the managers the session knows, the
    // leader first.
    let registry_managers = std::sync::Arc::new(std::sync::RwLock::new(Vec::new()));
    if let Some(config) = &session {
        *registry_managers.write().unwrap_or_else(|p| p.into_inner()) = config.managers.clone();
        engine.cluster_registry = Some(agent::engine::image::registry::ClusterRegistry {
            managers: registry_managers.clone(),
            client: config.http.clone(),
        });
    }
    let (assignments, assigned) = tokio::sync::watch::channel(Default::default());
    let (reporter, reports) = tokio::sync::mpsc::channel(1024);
    let (remover, volumes_removed) = tokio::sync::mpsc::channel(256);
    let (publisher, logs) = tokio::sync::mpsc::channel(16);
    let work = agent::worker::session::Work {
        assignments,
        reports,
        volumes_removed,
        logs,
        role,
    };
    let mut worker = Vec::new();
    if let Some(config) = session {
        let client = api::client::EngineClient::new(&format!("unix://{}", engine.socket.display()))
            .context("a client of this node's engine")?;
        let archive = agent::worker::archive::LogArchive::new(engine.data_dir.join("task-logs"));
        worker.push(tokio::spawn(agent::worker::logs::run(
            client.clone(),
            archive.clone(),
            assigned.clone(),
            publisher,
        )));
        worker.push(tokio::spawn(agent::worker::executor::run(
            client,
            assigned,
            reporter,
            remover,
            engine.data_dir.join("task-files"),
            archive,
        )));
        worker.push(tokio::spawn(agent::worker::session::run(
            config,
            work,
            move |event| {
                if let agent::worker::session::SessionEvent::Opened { leader, .. } = &event {
                    let mut managers = registry_managers.write().unwrap_or_else(|p| p.into_inner());
                    managers.retain(|m| m != leader);
                    managers.insert(0, leader.clone());
                }
                eprintln!("orch agent: {}", render_session(&event));
            },
        )));
    }
    eprintln!(
        "orch agent: engine on unix://{} (data in {})",
        engine.socket.display(),
        engine.data_dir.display()
    );
    // The worker stops first: its requests to the engine (log follows, waits) would
    // otherwise hold the engine's graceful shutdown open for ever.
    let stop_worker = async move {
        shutdown.await;
        for task in &worker {
            task.abort();
        }
        for task in worker {
            let _ = task.await;
        }
    };
    serve(engine, stop_worker)
        .await
        .map_err(anyhow::Error::from)
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
