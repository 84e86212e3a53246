//! The raft type configuration and the aliases the rest of the store uses.

use super::command::{CommandResult, Proposal};
use std::io::Cursor;

/// A manager's raft id.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// orch's raft types: proposals in, command results out, peers by HTTP address.
    pub TypeConfig:
        D = Proposal,
        R = CommandResult,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A raft node of this store.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// Membership as stored with the log id that introduced it.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
/// A snapshot.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// A storage error as openraft wants it.
pub type StorageError = openraft::StorageError<NodeId>;
/// Raft metrics.
pub type Metrics = openraft::RaftMetrics<NodeId, openraft::BasicNode>;
