//! What may happen to a node, decided purely from the node and the raft group's view of
//! it: changing its role (promote, demote) and removing it. The handlers in
//! [`super::nodes`] act on the verdict; the refusals are data, rendered at the edge.
//!
//! orch's managers are separate `orch manager` processes with their own raft log, so a
//! worker (an `orch agent`) cannot turn into one in place: promotion is refused with
//! what to run on the host instead. Demotion takes a manager out of the raft group (it
//! stops voting and replicating) and makes its certificate count as a worker's.

use api::cluster::{Node, NodeRole, NodeState};
use api::error::ErrorCode;
use std::fmt;

use super::error::HttpError;

/// What the raft group says about one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftView {
    /// The node is in the raft membership (voter or learner).
    pub member: bool,
    /// The node leads the raft group.
    pub leader: bool,
    /// Voters other than this node.
    pub other_voters: usize,
}

/// What a role change does, once allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// The node has that role already (or no role was asked for).
    Keep,
    /// Mark the node a worker; with `leave_raft`, first take it out of the raft group.
    Demote { leave_raft: bool },
}

/// Why a node cannot be changed or removed as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeRefusal {
    /// A worker cannot become a manager in place.
    Promote { node: String },
    /// The node is the only voter of the raft group.
    LastManager { node: String },
    /// The node leads the raft group (it would have to remove itself).
    Leader { node: String },
    /// The node is a raft member: it must be demoted before it is removed.
    RemoveMember { node: String },
    /// The node has a live session: removing it needs `force`.
    RemoveReady { node: String },
}

impl fmt::Display for NodeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRefusal::Promote { node } => write!(
                f,
                "node {node} is a worker and cannot be promoted in place: orch managers are \
                 `orch manager` processes with their own raft log. On its host run \
                 `orch manager join --token <manager token> <manager address>` (`orch token \
                 manager` prints the line): the host gets a manager node next to this one"
            ),
            NodeRefusal::LastManager { node } => write!(
                f,
                "node {node} is the last manager of the cluster: join another manager \
                 (`orch token manager`) before demoting it"
            ),
            NodeRefusal::Leader { node } => write!(
                f,
                "node {node} leads the raft group, and orch cannot hand leadership over: stop \
                 `orch manager` on its host so another manager is elected (the others must \
                 be a majority: with two managers, join a third first), then demote it"
            ),
            NodeRefusal::RemoveMember { node } => write!(
                f,
                "node {node} is a manager in the raft group: demote it first with `orch \
                 node demote {node}`, then remove it"
            ),
            NodeRefusal::RemoveReady { node } => write!(
                f,
                "node {node} is ready (its agent holds a session): stop its agent and wait \
                 until it is down, or remove it anyway with `orch node rm --force {node}`"
            ),
        }
    }
}

impl From<NodeRefusal> for HttpError {
    fn from(refusal: NodeRefusal) -> HttpError {
        let node = match &refusal {
            NodeRefusal::Promote { node }
            | NodeRefusal::LastManager { node }
            | NodeRefusal::Leader { node }
            | NodeRefusal::RemoveMember { node }
            | NodeRefusal::RemoveReady { node } => node.clone(),
        };
        HttpError::new(ErrorCode::Conflict, refusal.to_string())
            .with("kind", "node")
            .with("id", node)
    }
}

/// Whether `node` may take `role` (none: keep it), and what that takes.
pub fn role_change(
    node: &Node,
    role: Option<NodeRole>,
    raft: RaftView,
) -> Result<RoleChange, NodeRefusal> {
    let id = || node.meta.id.clone();
    match (node.spec.role, role) {
        (_, None) | (NodeRole::Worker, Some(NodeRole::Worker)) => Ok(RoleChange::Keep),
        (NodeRole::Manager, Some(NodeRole::Manager)) => Ok(RoleChange::Keep),
        (NodeRole::Worker, Some(NodeRole::Manager)) => Err(NodeRefusal::Promote { node: id() }),
        (NodeRole::Manager, Some(NodeRole::Worker)) if !raft.member => {
            Ok(RoleChange::Demote { leave_raft: false })
        }
        (NodeRole::Manager, Some(NodeRole::Worker)) if raft.other_voters == 0 => {
            Err(NodeRefusal::LastManager { node: id() })
        }
        (NodeRole::Manager, Some(NodeRole::Worker)) if raft.leader => {
            Err(NodeRefusal::Leader { node: id() })
        }
        (NodeRole::Manager, Some(NodeRole::Worker)) => Ok(RoleChange::Demote { leave_raft: true }),
    }
}

/// Whether `node` may be removed (`force`: even while its agent holds a session).
pub fn removal(node: &Node, force: bool, raft: RaftView) -> Result<(), NodeRefusal> {
    let id = || node.meta.id.clone();
    if raft.member {
        return Err(NodeRefusal::RemoveMember { node: id() });
    }
    if node.status.state == NodeState::Ready && !force {
        return Err(NodeRefusal::RemoveReady { node: id() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::Meta;

    fn node(role: NodeRole, state: NodeState) -> Node {
        let mut node = Node {
            meta: Meta::new("n1".to_owned()),
            ..Node::default()
        };
        node.spec.role = role;
        node.status.state = state;
        node
    }

    const MEMBER: RaftView = RaftView {
        member: true,
        leader: false,
        other_voters: 2,
    };

    #[test]
    fn roles_change_only_where_orch_can_make_it_true() {
        let worker = node(NodeRole::Worker, NodeState::Ready);
        let manager = node(NodeRole::Manager, NodeState::Ready);
        let none = RaftView::default();
        assert_eq!(role_change(&worker, None, none), Ok(RoleChange::Keep));
        assert_eq!(
            role_change(&worker, Some(NodeRole::Worker), none),
            Ok(RoleChange::Keep)
        );
        assert!(matches!(
            role_change(&worker, Some(NodeRole::Manager), none),
            Err(NodeRefusal::Promote { .. })
        ));
        assert_eq!(
            role_change(&manager, Some(NodeRole::Worker), MEMBER),
            Ok(RoleChange::Demote { leave_raft: true })
        );
        assert_eq!(
            role_change(&manager, Some(NodeRole::Worker), none),
            Ok(RoleChange::Demote { leave_raft: false })
        );
        let alone = RaftView {
            other_voters: 0,
            ..MEMBER
        };
        assert!(matches!(
            role_change(&manager, Some(NodeRole::Worker), alone),
            Err(NodeRefusal::LastManager { .. })
        ));
        let leader = RaftView {
            leader: true,
            ..MEMBER
        };
        assert!(matches!(
            role_change(&manager, Some(NodeRole::Worker), leader),
            Err(NodeRefusal::Leader { .. })
        ));
    }

    #[test]
    fn removal_needs_force_for_ready_nodes_and_demotion_for_members() {
        let none = RaftView::default();
        assert!(matches!(
            removal(&node(NodeRole::Worker, NodeState::Ready), false, none),
            Err(NodeRefusal::RemoveReady { .. })
        ));
        assert!(removal(&node(NodeRole::Worker, NodeState::Ready), true, none).is_ok());
        assert!(removal(&node(NodeRole::Worker, NodeState::Down), false, none).is_ok());
        assert!(matches!(
            removal(&node(NodeRole::Manager, NodeState::Down), true, MEMBER),
            Err(NodeRefusal::RemoveMember { .. })
        ));
        let message = NodeRefusal::RemoveReady { node: "n1".into() }.to_string();
        assert!(message.contains("--force"), "{message}");
    }
}
