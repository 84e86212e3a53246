//! An agent's session with the managers (swarmkit's dispatcher protocol, over HTTP/JSON
//! with mutual TLS): the agent registers what its host has, then heartbeats at the
//! period the manager sets. Only the leader's dispatcher holds sessions; a follower
//! answers `unavailable` with the leader's address in `details.leader`. The agent then
//! follows its [`Assignments`] and reports task status in [`StatusBatch`]es.

use crate::cluster::{NodeDescription, Task, TaskStatus};
use crate::logs::LogSubscription;
use crate::network::{Ingress, NetworkCreate, OverlayPeer, ServiceEndpoint};
use crate::secret::FileData;
use serde::{Deserialize, Serialize};

/// `POST /v1/session`: open a session (the node is the client certificate's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionOpen {
    pub description: NodeDescription,
    /// The address other nodes reach this node at (overlay underlay, published ports).
    #[serde(default)]
    pub addr: Option<String>,
}

/// The answer to [`SessionOpen`] and to each heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session; a heartbeat naming another (older) one is refused.
    pub session_id: String,
    /// Send the next heartbeat within this many milliseconds.
    pub heartbeat_ms: u64,
    /// Every manager's address, the leader first (where to go when this one fails).
    pub managers: Vec<String>,
    /// The role the cluster gives the node now: when its certificate names another one
    /// (the node was promoted or demoted), the node renews its certificate at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::cluster::NodeRole>,
}

/// `POST /v1/session/heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub session_id: String,
}

/// What a node is told to run, as a whole (`GET /v1/session/assignments`, a stream of
/// these, one whenever the node's share of the cluster changed). Tasks the node has
/// that are not here are to be removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Assignments {
    /// The store version this set reflects.
    pub version: u64,
    /// The node's address as the managers know it: its overlay tunnel end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Every task assigned to the node that is not finished, with its spec and its
    /// network addresses. `desired_state` says whether to run it (`running`) or
    /// stop it (`shutdown` and later).
    pub tasks: Vec<Task>,
    /// The networks those tasks are on.
    pub networks: Vec<NetworkAssignment>,
    /// The secrets those tasks use, decrypted (sent over the session's mutual TLS
    /// only; a node gets no secret none of its tasks uses).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileData>,
    /// The configs those tasks use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileData>,
    /// The active log subscriptions that read tasks of this node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_subscriptions: Vec<LogSubscription>,
    /// The stack volumes those tasks mount, to create (with their labels) on the
    /// node's engine when missing, before the tasks run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<crate::volume::VolumeCreate>,
    /// Named volumes to remove from the node's engine once no container uses them
    /// (a stack taken down with its volumes); the node confirms each in a
    /// [`StatusBatch`], an absent one at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_removals: Vec<String>,
}

/// One network a node's tasks are on: how to create it, who is on it elsewhere and
/// which services answer on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkAssignment {
    /// What to create on the node's engine when it is missing (its `name` is the
    /// cluster network's id; driver `overlay`, subnet, gateway and vni set).
    pub create: NetworkCreate,
    /// The network's endpoints on other nodes (whole list).
    pub peers: Vec<OverlayPeer>,
    /// The network's services with their names and tasks cluster-wide (whole list).
    pub services: Vec<ServiceEndpoint>,
    /// Set on the routing-mesh network only: the node's address on it and the
    /// ports it publishes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,
}

/// A task's status as the node observed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskReport {
    /// The task's id.
    pub task: String,
    pub status: TaskStatus,
}

/// `POST /v1/session/status`: status changes, in the order they were observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBatch {
    pub session_id: String,
    pub reports: Vec<TaskReport>,
    /// Volumes of [`Assignments::volume_removals`] the node no longer has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_removed: Vec<String>,
}
