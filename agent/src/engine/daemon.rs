//! The engine as a daemon (`orch agent` without `--join`): one data directory,
//! locked so that only one engine uses it, and the HTTP API on a root-only unix
//! socket.

use super::api::{Engine, router};
use super::image::service::{ImageService, ImageServiceError};
use super::network::service::NetworkService;
use super::runtime::service::{ContainerError, ContainerService};
use super::volume::{VolumeError, Volumes};
use std::fs;
use std::future::{Future, IntoFuture};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/orch";
/// The default API socket.
pub const DEFAULT_SOCKET: &str = "/run/orch/engine.sock";

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Where images, snapshots and state live.
    pub data_dir: PathBuf,
    /// The unix socket of the API.
    pub socket: PathBuf,
    /// Registries (host[:port]) reached over plain http besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Where containers' DNS servers send names they do not know (default: the
    /// host's /etc/resolv.conf).
    pub dns_upstreams: Vec<std::net::SocketAddr>,
    /// The cluster's registry, when this engine is a node of a cluster.
    pub cluster_registry: Option<super::image::registry::ClusterRegistry>,
    /// `--userns-remap`: the user namespace of every container that asks for none
    /// (`CONTAINER:HOST:COUNT`, or a user with ranges in /etc/subuid and /etc/subgid).
    pub userns_remap: Option<String>,
}

/// Why the engine could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("another engine is using the data directory {path} (its lock is held)")]
    Locked { path: PathBuf },
    #[error("an engine already answers on {path}")]
    SocketInUse { path: PathBuf },
    #[error("open the image store: {0}")]
    Images(#[from] ImageServiceError),
    #[error("open the containers: {0}")]
    Containers(#[from] ContainerError),
    #[error("open the volumes: {0}")]
    Volumes(#[from] VolumeError),
    #[error("set up the networks: {0}")]
    Networks(String),
    #[error("serve the API on {path}: {source}")]
    Serve { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Userns(#[from] crate::engine::runtime::userns::UsernsError),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DaemonError + use<> {
    let path = path.to_owned();
    move |source| DaemonError::Io { op, path, source }
}

/// Hold an exclusive lock on `dir/engine.lock` for as long as the file lives.
fn lock_data_dir(dir: &Path) -> Result<fs::File, DaemonError> {
    let path = dir.join("engine.lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Err(DaemonError::Locked {
                path: dir.to_owned(),
            });
        }
        return Err(DaemonError::Io {
            op: "lock",
            path,
            source: e,
        });
    }
    Ok(f)
}

/// Bind the API socket, mode 0600, replacing a stale socket file.
fn bind(path: &Path) -> Result<tokio::net::UnixListener, DaemonError> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io_err("create", dir))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::SocketInUse {
                path: path.to_owned(),
            });
        }
        fs::remove_file(path).map_err(io_err("remove stale socket", path))?;
    }
    // SAFETY: umask only changes this process' file creation mask; the socket is
    // created between the two calls with no group or other permissions.
    let old = unsafe { libc::umask(0o177) };
    let listener = tokio::net::UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = listener.map_err(io_err("bind", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err("chmod", path))?;
    Ok(listener)
}

/// How long the engine waits at shutdown for its clients' open requests.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A task that ends when its handle is dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Run the engine until `shutdown` completes.
pub async fn serve(
    config: EngineConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let data = &config.data_dir;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(data)
        .map_err(io_err("create", data))?;
    let _lock = lock_data_dir(data)?;
    let scratch = data.join("tmp");
    let _ = fs::remove_dir_all(&scratch);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch)
        .map_err(io_err("create", &scratch))?;
    let images = Arc::new(ImageService::open(
        data,
        config.insecure_registries.clone(),
    )?);
    if let Some(cluster) = &config.cluster_registry {
        images.set_cluster_registry(cluster.clone());
    }
    let volumes = Arc::new(Volumes::open(&data.join("volumes"))?);
    let networks = {
        let data = data.clone();
        let upstreams = config.dns_upstreams.clone();
        Arc::new(
            tokio::task::spawn_blocking(move || NetworkService::open(&data, upstreams))
                .await
                .map_err(|e| DaemonError::Networks(e.to_string()))?
                .map_err(|e| DaemonError::Networks(e.to_string()))?,
        )
    };
    let remap = match &config.userns_remap {
        Some(value) => {
            let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
            Some(crate::engine::runtime::userns::remap(
                value,
                &read("/etc/subuid"),
                &read("/etc/subgid"),
            )?)
        }
        None => None,
    };
    let containers = Arc::new(ContainerService::open(
        &data.join("containers"),
        images.clone(),
        volumes,
        networks.clone(),
        remap,
    )?);
    // Network setups of containers that never came to be (a crash mid-create).
    let known = containers.ids()?;
    let released = {
        let networks = networks.clone();
        tokio::task::spawn_blocking(move || networks.release_unknown(&known))
            .await
            .map_err(|e| DaemonError::Networks(e.to_string()))?
            .map_err(|e| DaemonError::Networks(e.to_string()))?
    };
    for name in released {
        eprintln!("orch agent: released the network setup of {name}, a container with no record");
    }
    let engine = Arc::new(Engine {
        containers,
        networks: networks.clone(),
        images,
        data_dir: data.clone(),
        scratch,
    });
    let listener = bind(&config.socket)?;
    let supervisor = AbortOnDrop(tokio::spawn(super::runtime::supervisor::run(
        engine.containers.clone(),
    )));
    let (stopping, stopped) = tokio::sync::oneshot::channel();
    let server = axum::serve(listener, router(engine))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping.send(());
        })
        .into_future();
    // Requests that never end by themselves (a client's `logs -f`, a container
    // wait) get a grace period, then the engine stops under them.
    let grace = async {
        match stopped.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        served = server => served,
        () = grace => Ok(()),
    };
    drop(supervisor);
    // With no container left, nothing of orch stays in the kernel.
    let _ = tokio::task::spawn_blocking(move || networks.teardown_if_idle()).await;
    let _ = fs::remove_file(&config.socket);
    result.map_err(|source| DaemonError::Serve {
        path: config.socket.clone(),
        source,
    })
}
