//! The manager daemon's error type: starting, initializing, joining, serving.

use crate::ca::CaError;
use crate::store::StoreError;
use api::error::ApiError;
use std::path::PathBuf;

/// What can go wrong running a manager.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("decode {path}: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{dir} already holds a manager (node {node}); start it with `orch manager --data-dir {dir}`, or remove the directory to make a new cluster"
    )]
    AlreadyInitialized { dir: PathBuf, node: String },
    #[error(
        "{dir} holds no manager: run `orch manager init` or `orch manager join` with this --data-dir first"
    )]
    NotInitialized { dir: PathBuf },
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("the cluster registry: {0}")]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("build the HTTP client for {what}: {source}")]
    Client {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot reach the manager at {addr}: {source}")]
    Unreachable {
        addr: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the manager at {addr} refused to {op}: {error}")]
    Refused {
        addr: String,
        op: &'static str,
        error: ApiError,
    },
    #[error("the manager at {addr} answered {op} with something else than expected: {why}")]
    BadAnswer {
        addr: String,
        op: &'static str,
        why: String,
    },
    #[error("the cluster has no record yet (its first manager did not finish `orch manager init`)")]
    NoCluster,
    #[error("no manager known to ask (the raft group has no members yet)")]
    NoManagers,
    #[error(
        "node {node} holds a worker's certificate: it starts a manager only once promoted and renewed"
    )]
    NotPromoted { node: String },
    #[error("generate {what}: the system's random source failed")]
    Random { what: &'static str },
    #[error(
        "{path} is missing: this manager holds no data key to seal secrets with; copy node/data.key (0600) from another manager of the cluster"
    )]
    NoDataKey { path: PathBuf },
    #[error("the data key at {path}: {source}")]
    DataKey {
        path: PathBuf,
        #[source]
        source: crate::keyring::KeyringError,
    },
}
