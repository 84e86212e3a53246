//! The store's one error type. Request errors (the caller can act: fix, retry, go to
//! the leader, resync) are apart from fatal ones (this manager is broken).

use super::command::{Problem, Rejection};
use super::types::NodeId;
use api::cluster::Kind;
use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong with a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // --- request errors -------------------------------------------------------
    /// The object changed since the caller read it.
    #[error("{kind} {id} changed: the write expected version {expected}, it is at {actual}")]
    Conflict {
        kind: Kind,
        id: String,
        expected: u64,
        actual: u64,
    },
    #[error("{kind} {id} already exists")]
    Exists { kind: Kind, id: String },
    #[error("{kind} {id} does not exist")]
    NotFound { kind: Kind, id: String },
    /// The cluster record changed since the caller read it (or exists already).
    #[error("{0}")]
    ClusterChanged(Rejection),
    #[error("invalid request: {problem}")]
    Invalid { problem: Problem },
    /// This manager is not the leader; `leader` is the one it knows of (id, address).
    #[error("this manager is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// The leader could not reach a quorum to confirm it is still the leader.
    #[error("no quorum: the leader could not confirm its leadership")]
    NoQuorum,
    /// No answer in time; the write may or may not have been committed.
    #[error("no answer within {after:?}; the outcome is unknown")]
    Timeout { after: Duration },
    /// A watch asked for history the store no longer keeps: re-read and watch again.
    #[error("events after version {requested} are no longer kept (oldest: {oldest}); resync")]
    Compacted { requested: u64, oldest: u64 },
    /// A membership change was refused (another one in progress, unknown learner, ...).
    #[error("membership change refused: {source}")]
    Membership {
        #[source]
        source: Box<openraft::error::ChangeMembershipError<NodeId>>,
    },
    /// `initialize` with members that do not include this node.
    #[error("manager {id} is not among the initial members")]
    NotAMember { id: NodeId },
    /// `initialize` on a cluster that already has state.
    #[error("the cluster is already initialized")]
    AlreadyInitialized,

    // --- fatal errors ---------------------------------------------------------
    /// The data directory could not be used.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The embedded database failed.
    #[error("{op} in {path}: {source}")]
    Db {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    /// Stored data could not be decoded (written by an incompatible version, or damaged).
    #[error("decode {what} from {path}: {source}")]
    Decode {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The raft log's files hold something its writer never wrote (a disk fault, or an
    /// edit): this manager cannot trust its log. Remove it from the cluster, delete its
    /// data directory's `raft/` and join it again, so it copies the log from its peers.
    #[error(
        "the raft log {} is damaged at byte {offset}: {problem}; remove this manager \
         from the cluster, delete its raft/ directory and join it again",
        path.display()
    )]
    LogDamaged {
        path: PathBuf,
        offset: u64,
        problem: String,
    },
    /// Another process has this store's files open.
    #[error(
        "{} is locked by another process: is another manager running on this data directory?",
        path.display()
    )]
    InUse { path: PathBuf },
    /// The raft configuration is invalid.
    #[error("raft configuration: {source}")]
    Config {
        #[source]
        source: Box<openraft::ConfigError>,
    },
    /// Raft stopped (storage failure, panic, shutdown).
    #[error("raft stopped: {source}")]
    Raft {
        #[source]
        source: Box<openraft::error::Fatal<NodeId>>,
    },
    /// The store was shut down.
    #[error("the store is shut down")]
    Stopped,
}

impl StoreError {
    /// `true` for errors about the request (the manager itself is fine).
    pub fn is_request_error(&self) -> bool {
        !matches!(
            self,
            StoreError::Io { .. }
                | StoreError::Db { .. }
                | StoreError::Decode { .. }
                | StoreError::LogDamaged { .. }
                | StoreError::InUse { .. }
                | StoreError::Config { .. }
                | StoreError::Raft { .. }
                | StoreError::Stopped
        )
    }
}

impl From<Rejection> for StoreError {
    fn from(rejection: Rejection) -> StoreError {
        match rejection {
            Rejection::Conflict {
                kind,
                id,
                expected,
                actual,
            } => StoreError::Conflict {
                kind,
                id,
                expected,
                actual,
            },
            Rejection::Exists { kind, id } => StoreError::Exists { kind, id },
            Rejection::NotFound { kind, id } => StoreError::NotFound { kind, id },
            Rejection::Invalid { problem } => StoreError::Invalid { problem },
            changed @ Rejection::ClusterChanged { .. } => StoreError::ClusterChanged(changed),
        }
    }
}
