//! The bench's one error type: each variant names what failed.

use std::path::PathBuf;

/// What went wrong while setting up or driving a cluster.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A command line argument the bench does not understand.
    #[error("{0} (see --help)")]
    Usage(String),
    /// A file or directory of the run could not be made or read.
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A server process could not be started.
    #[error("start {program} ({name}): {source}")]
    Spawn {
        program: String,
        name: String,
        source: std::io::Error,
    },
    /// A cluster did not reach a state in time; `last` is what was seen last.
    #[error("{what} within {secs} s: {last}")]
    NotReady {
        what: String,
        secs: u64,
        last: String,
    },
    /// An HTTP client could not be built.
    #[error("build the HTTP client for {target}: {source}")]
    Client {
        target: &'static str,
        source: reqwest::Error,
    },
    /// The CLI context orch's first manager saved is not what the bench reads.
    #[error("parse the CLI context {path}: {source}")]
    Context {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The TLS configuration pinning orch's CA could not be made.
    #[error("pin orch's cluster CA from the CLI context: {0}")]
    Ca(#[source] manager::ca::CaError),
    /// No loopback port could be reserved for a member.
    #[error("pick a free loopback port: {0}")]
    Port(#[source] std::io::Error),
    /// A put was refused during a load run (the load runs against a healthy leader,
    /// so every refusal is a failure of the run).
    #[error("{target}: put {seq} at {endpoint}: {why}")]
    Put {
        target: &'static str,
        seq: u64,
        endpoint: String,
        why: String,
    },
    /// A worker task of a load run panicked or was cancelled.
    #[error("a load worker of {target} stopped: {why}")]
    Worker { target: &'static str, why: String },
    /// No write was acknowledged after the leader was killed.
    #[error("{target}: no write acknowledged within {secs} s of killing the leader: {last}")]
    NoFailover {
        target: &'static str,
        secs: u64,
        last: String,
    },
}
