//! The embedded default: `orch up` with no cluster configured starts a single-node
//! cluster on this host — one background `orch manager ... --agent` process (a
//! manager that also runs the engine and takes tasks), reachable on loopback only —
//! and saves the context that finds it. Later commands use the context; when that
//! process is gone (a reboot), `orch up` starts it again from its data.
//!
//! Where it lives: `/var/lib/orch` (engine) and `/var/lib/orch/manager`, sockets in
//! `/run/orch`, the API on 127.0.0.1:4242. `ORCH_LOCAL_DIR` moves all of it into one
//! directory and `ORCH_LOCAL_PORT` picks the port (tests run side by side this way).

use crate::context::Context as CliContext;
use crate::manager_api::{HostArgs, List, ManagerApi};
use anyhow::{Context, bail};
use api::cluster::{Node, NodeState};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting local cluster gets to have its node ready.
const READY: Duration = Duration::from_secs(60);

/// The socket of this machine's engine: the local cluster's (`ORCH_LOCAL_DIR`), else
/// the default one.
pub fn engine_socket() -> PathBuf {
    Local::from_env().engine_socket
}

/// The local cluster's places.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Local {
    manager_dir: PathBuf,
    manager_socket: PathBuf,
    engine_dir: PathBuf,
    engine_socket: PathBuf,
    listen: String,
    log: PathBuf,
    /// The background process, once started.
    #[serde(default)]
    pid: Option<u32>,
}

impl Local {
    fn from_env() -> Local {
        let port: u16 = std::env::var("ORCH_LOCAL_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(4242);
        let listen = format!("127.0.0.1:{port}");
        match std::env::var_os("ORCH_LOCAL_DIR").map(PathBuf::from) {
            Some(dir) => Local {
                manager_dir: dir.join("manager"),
                manager_socket: dir.join("manager.sock"),
                engine_dir: dir.join("engine"),
                engine_socket: dir.join("engine.sock"),
                listen,
                log: dir.join("local-cluster.log"),
                pid: None,
            },
            None => Local {
                manager_dir: PathBuf::from("/var/lib/orch/manager"),
                manager_socket: PathBuf::from(crate::manager_cmd::DEFAULT_SOCKET),
                engine_dir: PathBuf::from(agent::engine::daemon::DEFAULT_DATA_DIR),
                engine_socket: PathBuf::from(agent::engine::daemon::DEFAULT_SOCKET),
                listen,
                log: PathBuf::from("/var/log/orch/local-cluster.log"),
                pid: None,
            },
        }
    }

    /// Where the record of the local cluster is kept (beside the context).
    fn record() -> PathBuf {
        crate::context::path().with_file_name("local-cluster.json")
    }

    fn args(&self, init: bool) -> Vec<String> {
        let mut args = vec![
            "manager".to_owned(),
            if init { "init" } else { "run" }.to_owned(),
        ];
        let pairs = [
            ("--data-dir", self.manager_dir.display().to_string()),
            ("--socket", self.manager_socket.display().to_string()),
            ("--listen", self.listen.clone()),
            ("--advertise", self.listen.clone()),
            ("--engine-data-dir", self.engine_dir.display().to_string()),
            ("--engine-socket", self.engine_socket.display().to_string()),
        ];
        for (flag, value) in pairs {
            args.push(flag.to_owned());
            args.push(value);
        }
        args.push("--agent".to_owned());
        args
    }

    /// Starts the background process (`init` the first time, `run` after).
    fn spawn(&self, init: bool) -> anyhow::Result<u32> {
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let exe = std::env::current_exe().context("find the orch binary")?;
        let child = Command::new(exe)
            .args(self.args(init))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C of this command does not reach it.
            .process_group(0)
            .spawn()
            .context("start the local cluster's manager")?;
        Ok(child.id())
    }
}

fn reachable(host: &str) -> bool {
    host.parse::<SocketAddr>()
        .ok()
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
}

fn saved() -> Option<Local> {
    std::fs::read(Local::record())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Makes sure a cluster is there for `up`: the one `--host` or the context names,
/// else a local one, started now.
pub async fn ensure(host: &HostArgs) -> anyhow::Result<()> {
    if host.host.is_some() {
        return Ok(());
    }
    start(false).await.map(|_| ())
}

/// `orch cluster start`: the local cluster, started unless it runs. Returns whether
/// it was started. With `only_local`, a cluster configured by hand is an error.
pub async fn start(only_local: bool) -> anyhow::Result<bool> {
    let context = CliContext::load()?;
    let local = match (&context, saved()) {
        // A cluster configured by hand.
        (Some(c), None) => {
            if only_local {
                bail!(
                    "the CLI context ({}) names a cluster at {} that is not the local one: `orch cluster start` only starts the local cluster",
                    crate::context::path().display(),
                    c.host
                );
            }
            return Ok(false);
        }
        (Some(c), Some(_)) if reachable(&c.host) => return Ok(false),
        // The local cluster, not running (a reboot): start it from its data.
        (Some(_), Some(mut local)) => {
            let pid = local.spawn(false)?;
            local.pid = Some(pid);
            eprintln!(
                "orch: starting the local cluster again (pid {pid}, log {})",
                local.log.display()
            );
            local
        }
        (None, _) => {
            let local = Local::from_env();
            if local.manager_dir.join("node.json").exists() {
                bail!(
                    "{} holds a manager but no CLI context points to it: run `orch manager run` there, or remove the directory",
                    local.manager_dir.display()
                );
            }
            if local.manager_socket.exists()
                && std::os::unix::net::UnixStream::connect(&local.manager_socket).is_ok()
            {
                // A manager runs here without a saved context; the socket reaches it.
                return Ok(false);
            }
            let mut local = local;
            let pid = local.spawn(true)?;
            local.pid = Some(pid);
            eprintln!(
                "orch: no cluster configured; started a local one on {} (manager and engine in pid {pid}, log {})",
                local.listen,
                local.log.display()
            );
            local
        }
    };
    wait_ready(&local).await?;
    let record = Local::record();
    std::fs::write(&record, serde_json::to_vec_pretty(&local)?)
        .with_context(|| format!("write {}", record.display()))?;
    eprintln!(
        "orch: the local cluster is ready (engine on unix://{})",
        local.engine_socket.display()
    );
    Ok(true)
}

/// `orch cluster stop`: stops the local cluster's process (SIGTERM; its manager and
/// engine shut down cleanly). Containers keep running, as with an agent restart:
/// `orch down` the stacks first to stop them.
pub fn stop() -> anyhow::Result<()> {
    let Some(local) = saved() else {
        bail!(
            "no local cluster was started from this CLI context ({})",
            Local::record().display()
        );
    };
    let Some(pid) = local.pid.filter(|pid| alive(*pid, &local)) else {
        eprintln!("orch: the local cluster is not running");
        return Ok(());
    };
    // SAFETY: signalling the process this CLI started (checked by its command line).
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let start = Instant::now();
    while alive(pid, &local) {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the local cluster (pid {pid}) did not stop in 30s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("orch: the local cluster stopped (pid {pid})");
    Ok(())
}

/// Whether `pid` is still the local cluster's process (and not a reused pid).
fn alive(pid: u32, local: &Local) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&local.manager_dir.display().to_string()))
        .unwrap_or(false)
}

/// Waits until the context exists, the engine answers and the local node is ready
/// (the node of a cluster started again reads ready from before until its grace
/// passes: the engine is what says this process is up).
async fn wait_ready(local: &Local) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    let engine =
        api::client::EngineClient::new(&format!("unix://{}", local.engine_socket.display()))
            .context("a client of the local cluster's engine")?;
    while start.elapsed() < READY {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if CliContext::load().ok().flatten().is_none() {
            continue;
        }
        if let Err(e) = engine.version().await {
            last = e.to_string();
            continue;
        }
        let api = match ManagerApi::connect(&HostArgs { host: None }) {
            Ok(api) => api,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        match api.call::<List<Node>>(Method::GET, "/v1/nodes").await {
            Ok(nodes)
                if nodes.items.iter().any(|n| {
                    n.status.state == NodeState::Ready && !n.description.engine_version.is_empty()
                }) =>
            {
                return Ok(());
            }
            Ok(_) => last = "its node is not ready yet".to_owned(),
            Err(e) => last = e.to_string(),
        }
    }
    bail!(
        "the local cluster did not come up in {}s ({last}); see {}",
        READY.as_secs(),
        local.log.display()
    )
}
