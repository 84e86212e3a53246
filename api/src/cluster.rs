//! Cluster objects as the manager stores them and the API shows them: nodes, stacks,
//! services and tasks, each with the same [`Meta`], plus the [`Event`]s a commit emits.
//!
//! Desired state (specs) is written by users; observed state (node status, task status)
//! by the system. Every write names the version it read (optimistic concurrency).

use crate::is_default;
use crate::registry::Manifest;
use crate::secret::{Config, Secret};
use crate::service::ServiceSpec;
use crate::stack::StackSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A point in time: milliseconds since the Unix epoch (UTC), as the leader's clock said.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Timestamp(pub u64);

/// The kinds of cluster objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Node,
    Stack,
    Service,
    Task,
    Network,
    Secret,
    Config,
    Manifest,
    Volume,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 9] = [
        Kind::Node,
        Kind::Stack,
        Kind::Service,
        Kind::Task,
        Kind::Network,
        Kind::Secret,
        Kind::Config,
        Kind::Manifest,
        Kind::Volume,
    ];

    /// The lowercase name (`node`, `stack`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Stack => "stack",
            Kind::Service => "service",
            Kind::Task => "task",
            Kind::Network => "network",
            Kind::Secret => "secret",
            Kind::Config => "config",
            Kind::Manifest => "manifest",
            Kind::Volume => "volume",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every object carries. `version`, `created` and `updated` are set by the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Meta {
    /// Unique within its kind; chosen by the creator.
    pub id: String,
    /// The raft log index of the object's last change.
    pub version: u64,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// User labels (a node's labels are what placement constraints match).
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
}

impl Meta {
    /// A meta with only an id (what a create names).
    pub fn new(id: impl Into<String>) -> Meta {
        Meta {
            id: id.into(),
            ..Meta::default()
        }
    }
}

/// Whether the scheduler may place tasks on a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// New tasks may be placed here.
    #[default]
    Active,
    /// No new tasks; running ones stay.
    Pause,
    /// No tasks: running ones are moved away.
    Drain,
}

/// What a node does in the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    #[default]
    Worker,
    Manager,
}

/// The user-written part of a node (its labels are in [`Meta::labels`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NodeSpec {
    pub availability: Availability,
    pub role: NodeRole,
}

/// Whether a node is alive, as the dispatcher sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    #[default]
    Unknown,
    Ready,
    Down,
}

/// The system-written part of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NodeStatus {
    pub state: NodeState,
    /// The address the node's agent is reached at.
    #[serde(skip_serializing_if = "is_default")]
    pub addr: Option<String>,
    /// Why the node is in this state, for people.
    #[serde(skip_serializing_if = "is_default")]
    pub message: Option<String>,
}

/// What a node's agent reports about its host when its session starts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeDescription {
    pub hostname: String,
    /// Online CPUs.
    pub cpus: u32,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ... (OCI names).
    pub arch: String,
    /// The agent's version.
    pub engine_version: String,
    /// Labels the agent was started with (`engine.labels.*` in constraints).
    #[serde(skip_serializing_if = "is_default")]
    pub engine_labels: BTreeMap<String, String>,
}

/// A host of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Node {
    pub meta: Meta,
    pub spec: NodeSpec,
    /// What the agent reported (empty until its first session).
    pub description: NodeDescription,
    pub status: NodeStatus,
}

/// A deployed stack (its services are [`Service`] objects naming it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Stack {
    pub meta: Meta,
    pub spec: StackSpec,
}

/// A service of a stack: the template of its tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Service {
    pub meta: Meta,
    /// The id of the stack this service belongs to (empty: none).
    #[serde(skip_serializing_if = "is_default")]
    pub stack: String,
    /// The service's name within its stack.
    pub name: String,
    pub spec: ServiceSpec,
    /// The virtual address of the service on each of its networks (network id ->
    /// address without prefix), set by the allocator for `endpoint_mode: vip`.
    #[serde(skip_serializing_if = "is_default")]
    pub vips: BTreeMap<String, String>,
    /// The version of the stack the spec was last taken from (0: not from a stack).
    /// A stack's later versions overwrite the spec; changes made to the service
    /// itself in between (scale, rollback) stand until then.
    #[serde(skip_serializing_if = "is_default")]
    pub stack_version: u64,
    /// The spec before the last change: what a rollback returns to.
    #[serde(skip_serializing_if = "is_default")]
    pub previous_spec: Option<ServiceSpec>,
    /// How the rollout of the last spec change goes.
    #[serde(skip_serializing_if = "is_default")]
    pub update_status: Option<UpdateStatus>,
    /// How the last rebalance goes: asked for by `orch service rebalance`, or
    /// continuous for a service labelled `orch.rebalance=true`.
    #[serde(skip_serializing_if = "is_default")]
    pub rebalance: Option<RebalanceStatus>,
}

/// Where a rebalance stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RebalanceState {
    /// Asked for; the orchestrator has not looked yet.
    #[default]
    Requested,
    /// Tasks are being moved, under the service's `update_config`.
    Moving,
    /// The strategy is satisfied: no move would improve the placement.
    Completed,
}

/// Moving a service's running tasks until its placement strategy is satisfied (what
/// swarm lacks: tasks stay where they were placed when nodes join or come back).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RebalanceStatus {
    pub state: RebalanceState,
    /// When the orchestrator started it (0 while requested).
    #[serde(skip_serializing_if = "is_default")]
    pub started: Timestamp,
    /// When the strategy was satisfied.
    #[serde(skip_serializing_if = "is_default")]
    pub completed: Option<Timestamp>,
    /// Tasks moved so far.
    pub moved: u64,
    /// What the rebalance found, for people (e.g. why nothing moves).
    #[serde(skip_serializing_if = "is_default")]
    pub message: String,
}

/// Where a rolling update (or rollback) stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    #[default]
    Updating,
    /// Stopped after failures (`failure_action: pause`); a new spec resumes.
    Paused,
    Completed,
    RollbackStarted,
    RollbackPaused,
    RollbackCompleted,
}

/// The rollout of a service's last spec change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UpdateStatus {
    pub state: UpdateState,
    pub started: Timestamp,
    /// When it completed, paused or rolled back.
    #[serde(skip_serializing_if = "is_default")]
    pub completed: Option<Timestamp>,
    /// Why it paused or rolled back, for people.
    #[serde(skip_serializing_if = "is_default")]
    pub message: String,
}

/// The life of a task; desired and observed states use the same scale (swarmkit's).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    #[default]
    New,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    /// The lowercase name (`running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }
}

/// What the system last observed of a task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TaskStatus {
    pub state: TaskState,
    /// When the state was observed (agent or manager clock).
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "is_default")]
    pub message: String,
    #[serde(skip_serializing_if = "is_default")]
    pub exit_code: Option<i32>,
    /// The container running the task on its node, once created.
    #[serde(skip_serializing_if = "is_default")]
    pub container: Option<String>,
}

/// A task's place on a network, allocated by the manager.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TaskNetwork {
    /// The [`Network`]'s id (also its name on the node's engine).
    pub network: String,
    /// The task's address with the prefix length (`10.0.1.5/24`).
    pub address: String,
    /// Names it answers to on this network besides the service's (compose `aliases`).
    #[serde(skip_serializing_if = "is_default")]
    pub aliases: Vec<String>,
}

/// One replica (or one node's instance, for global services) of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Task {
    pub meta: Meta,
    /// The id of the service this task runs.
    pub service: String,
    /// The id of the service's stack (empty: none).
    #[serde(skip_serializing_if = "is_default")]
    pub stack: String,
    /// The service's name within its stack.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Replica slot (1-based) for replicated services; 0 for global ones.
    pub slot: u64,
    /// The node the scheduler assigned, once assigned.
    #[serde(skip_serializing_if = "is_default")]
    pub node: Option<String>,
    /// What the orchestrator wants.
    pub desired_state: TaskState,
    /// What the system observed.
    pub status: TaskStatus,
    /// The service's spec when the task was made: what the node runs, and what a
    /// rolling update compares with the service's current spec.
    pub spec: ServiceSpec,
    /// The networks the task is on, with its addresses.
    #[serde(skip_serializing_if = "is_default")]
    pub networks: Vec<TaskNetwork>,
}

/// Addresses the allocator gave a network, cluster-wide.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NetworkAllocation {
    /// IPv4 subnet in CIDR form.
    pub subnet: String,
    pub gateway: String,
    /// The vxlan network identifier.
    pub vni: u32,
    /// The address handed out last: the next is looked for after it, so a released
    /// address (its container may still be going away on a node) comes back only
    /// after every other one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// The routing-mesh network only: each node's own address on it (node id ->
    /// address with prefix), where the node's published ports lead from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, String>,
}

/// A cluster network (an overlay that spans the nodes running its tasks).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Network {
    /// The id is the network's name on every node (`<stack>_<key>`).
    pub meta: Meta,
    /// The id of the stack that declared it (empty: created on its own).
    #[serde(skip_serializing_if = "is_default")]
    pub stack: String,
    pub spec: crate::stack::NetworkSpec,
    /// Set by the allocator; tasks are not placed on it before.
    #[serde(skip_serializing_if = "is_default")]
    pub allocation: Option<NetworkAllocation>,
}

/// What the cluster wants of a [`Volume`] on the nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VolumeState {
    /// Made on a node when a task mounts it; kept when the stack goes.
    #[default]
    Active,
    /// To be removed from every node (`orch down --volumes`); the object goes once
    /// every node of the cluster confirmed.
    Remove,
}

/// A named volume a stack declares (not external). Its data lives on each node that
/// ran a task mounting it, in the node engine's volume of the same name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Volume {
    /// The id is the volume's name on every node (`<stack>_<key>` by default).
    pub meta: Meta,
    /// The id of the stack that declared it.
    #[serde(skip_serializing_if = "is_default")]
    pub stack: String,
    pub spec: crate::stack::VolumeSpec,
    pub desired_state: VolumeState,
    /// The nodes that confirmed the removal (while `desired_state` is `remove`).
    #[serde(skip_serializing_if = "is_default")]
    pub removed_on: std::collections::BTreeSet<String>,
}

/// Any cluster object, tagged by kind (`{"kind": "task", "meta": ..., ...}`). Services
/// and tasks are boxed: they carry a compose service spec (some kilobytes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Object {
    Node(Node),
    Stack(Stack),
    Service(Box<Service>),
    Task(Box<Task>),
    Network(Network),
    /// Secrets travel redacted (no ciphertext) in answers and events.
    Secret(Secret),
    Config(Config),
    /// A manifest of the cluster image registry.
    Manifest(Manifest),
    Volume(Volume),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Node(_) => Kind::Node,
            Object::Stack(_) => Kind::Stack,
            Object::Service(_) => Kind::Service,
            Object::Task(_) => Kind::Task,
            Object::Network(_) => Kind::Network,
            Object::Secret(_) => Kind::Secret,
            Object::Config(_) => Kind::Config,
            Object::Manifest(_) => Kind::Manifest,
            Object::Volume(_) => Kind::Volume,
        }
    }

    /// The object's meta.
    pub fn meta(&self) -> &Meta {
        match self {
            Object::Node(o) => &o.meta,
            Object::Stack(o) => &o.meta,
            Object::Service(o) => &o.meta,
            Object::Task(o) => &o.meta,
            Object::Network(o) => &o.meta,
            Object::Secret(o) => &o.meta,
            Object::Config(o) => &o.meta,
            Object::Manifest(o) => &o.meta,
            Object::Volume(o) => &o.meta,
        }
    }

    /// The object's meta, to change.
    pub fn meta_mut(&mut self) -> &mut Meta {
        match self {
            Object::Node(o) => &mut o.meta,
            Object::Stack(o) => &mut o.meta,
            Object::Service(o) => &mut o.meta,
            Object::Task(o) => &mut o.meta,
            Object::Network(o) => &mut o.meta,
            Object::Secret(o) => &mut o.meta,
            Object::Config(o) => &mut o.meta,
            Object::Manifest(o) => &mut o.meta,
            Object::Volume(o) => &mut o.meta,
        }
    }
}

/// A change committed to the cluster state. A commit emits its object changes, then
/// `Commit { version }`; resuming a stream from `version` replays every later commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The object as created.
    Created { object: Object },
    /// The object after the update.
    Updated { object: Object },
    /// The object as it was when deleted.
    Deleted { object: Object },
    /// Everything of the commit at `version` was emitted.
    Commit { version: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_carry_their_kind_on_the_wire() {
        let task = Object::Task(Box::new(Task {
            meta: Meta::new("t1"),
            service: "web".into(),
            slot: 1,
            ..Task::default()
        }));
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(json["kind"], "task");
        assert_eq!(json["meta"]["id"], "t1");
        let back: Object = serde_json::from_value(json).unwrap();
        assert_eq!(back, task);
    }

    #[test]
    fn missing_fields_take_defaults() {
        let node: Object = serde_json::from_str(r#"{"kind":"node","meta":{"id":"n1"}}"#).unwrap();
        let Object::Node(node) = node else {
            panic!("not a node")
        };
        assert_eq!(node.spec.availability, Availability::Active);
        assert_eq!(node.status.state, NodeState::Unknown);
    }
}
