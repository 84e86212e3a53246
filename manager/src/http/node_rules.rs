//! What may happen to a node, decided purely from the node and the raft group's view of
//! it: changing its role (promote, demote) and removing it. The handlers in
//! [`super::nodes`] act on the verdict; the refusals are data, rendered at the edge.
//!
//! Promotion marks a worker a manager: its agent, told so by its session, renews its
//! certificate as a manager's and starts a manager in its own process, which joins the
//! raft group. Demotion (and a forced removal) takes a manager out
//! of the raft group (it stops voting and replicating) and makes its certificate count
//! as a worker's; it needs a majority of the voters to answer both before and after
//! (raft's joint consensus), else it would hang the cluster's writes.

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
    /// The node votes.
    pub voter: bool,
    /// Voters other than this node.
    pub other_voters: usize,
    /// Of those, how many hold the leader's latest log entry (the leader does).
    pub answering_others: usize,
    /// Whether this node holds it.
    pub answering: bool,
}

impl RaftView {
    /// Whether a majority answers both among the voters now and among the voters left
    /// without this node.
    fn quorum_without_node(&self) -> bool {
        let before = self.answering_others + usize::from(self.voter && self.answering);
        let voters = self.other_voters + usize::from(self.voter);
        before * 2 > voters && self.answering_others * 2 > self.other_voters
    }
}

/// What a role change does, once allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// The node has that role already (or no role was asked for).
    Keep,
    /// Mark the worker a manager (its agent starts the manager).
    Promote,
    /// Mark the node a worker; with `leave_raft`, first take it out of the raft group.
    Demote { leave_raft: bool },
}

/// Why a node cannot be changed or removed as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeRefusal {
    /// The node is the only voter of the raft group.
    LastManager { node: String },
    /// The node leads the raft group (it would have to remove itself).
    Leader { node: String },
    /// Too few voters answer to change the membership without this node.
    Quorum {
        node: String,
        answering: usize,
        voters: usize,
    },
    /// The node is a raft member: it must be demoted (or removed with force).
    RemoveMember { node: String },
    /// The node has a live session: removing it needs `force`.
    RemoveReady { node: String },
}

impl fmt::Display for NodeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
            NodeRefusal::Quorum {
                node,
                answering,
                voters,
            } => write!(
                f,
                "taking manager {node} out of the raft group needs a majority of the \
                 managers to answer, with it and without it, and only {answering} of the \
                 {voters} voters hold the latest log entry: start the managers that are \
                 down (or wait until they caught up), then try again"
            ),
            NodeRefusal::RemoveMember { node } => write!(
                f,
                "node {node} is a manager in the raft group: demote it first with `orch \
                 node demote {node}`, then remove it, or remove it at once with `orch node \
                 rm --force {node}` (which takes it out of the raft group)"
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
            NodeRefusal::LastManager { node }
            | NodeRefusal::Leader { node }
            | NodeRefusal::Quorum { node, .. }
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
    match (node.spec.role, role) {
        (_, None) | (NodeRole::Worker, Some(NodeRole::Worker)) => Ok(RoleChange::Keep),
        (NodeRole::Manager, Some(NodeRole::Manager)) => Ok(RoleChange::Keep),
        (NodeRole::Worker, Some(NodeRole::Manager)) => Ok(RoleChange::Promote),
        (NodeRole::Manager, Some(NodeRole::Worker)) if !raft.member => {
            Ok(RoleChange::Demote { leave_raft: false })
        }
        (NodeRole::Manager, Some(NodeRole::Worker)) => {
            may_leave_raft(node, raft)?;
            Ok(RoleChange::Demote { leave_raft: true })
        }
    }
}

/// Whether raft member `node` may leave the raft group.
fn may_leave_raft(node: &Node, raft: RaftView) -> Result<(), NodeRefusal> {
    let id = || node.meta.id.clone();
    if raft.voter && raft.other_voters == 0 {
        return Err(NodeRefusal::LastManager { node: id() });
    }
    if raft.leader {
        return Err(NodeRefusal::Leader { node: id() });
    }
    if !raft.quorum_without_node() {
        return Err(NodeRefusal::Quorum {
            node: id(),
            answering: raft.answering_others + usize::from(raft.voter && raft.answering),
            voters: raft.other_voters + usize::from(raft.voter),
        });
    }
    Ok(())
}

/// What a removal does, once allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removal {
    /// First take the node out of the raft group.
    pub leave_raft: bool,
}

/// Whether `node` may be removed (`force`: even while its agent holds a session, or
/// while it is a raft member, which it then leaves first).
pub fn removal(node: &Node, force: bool, raft: RaftView) -> Result<Removal, NodeRefusal> {
    let id = || node.meta.id.clone();
    if raft.member {
        if !force {
            return Err(NodeRefusal::RemoveMember { node: id() });
        }
        may_leave_raft(node, raft)?;
        return Ok(Removal { leave_raft: true });
    }
    if node.status.state == NodeState::Ready && !force {
        return Err(NodeRefusal::RemoveReady { node: id() });
    }
    Ok(Removal { leave_raft: false })
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
        voter: true,
        leader: false,
        other_voters: 2,
        answering_others: 2,
        answering: true,
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
        assert_eq!(
            role_change(&worker, Some(NodeRole::Manager), none),
            Ok(RoleChange::Promote)
        );
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
            removal(&node(NodeRole::Manager, NodeState::Down), false, MEMBER),
            Err(NodeRefusal::RemoveMember { .. })
        ));
        assert_eq!(
            removal(&node(NodeRole::Manager, NodeState::Ready), true, MEMBER),
            Ok(Removal { leave_raft: true })
        );
        let leader = RaftView {
            leader: true,
            ..MEMBER
        };
        assert!(matches!(
            removal(&node(NodeRole::Manager, NodeState::Ready), true, leader),
            Err(NodeRefusal::Leader { .. })
        ));
        let message = NodeRefusal::RemoveReady { node: "n1".into() }.to_string();
        assert!(message.contains("--force"), "{message}");
    }

    #[test]
    fn leaving_the_raft_group_needs_a_majority_before_and_after() {
        let manager = node(NodeRole::Manager, NodeState::Ready);
        let demote = |raft| role_change(&manager, Some(NodeRole::Worker), raft);
        // Three voters, all answer: two of two remain.
        assert!(demote(MEMBER).is_ok());
        // Three voters, one of the others is down: one of two would remain.
        let one_down = RaftView {
            answering_others: 1,
            ..MEMBER
        };
        assert!(matches!(
            demote(one_down),
            Err(NodeRefusal::Quorum {
                answering: 2,
                voters: 3,
                ..
            })
        ));
        // The node itself is down: the two others still make a majority of three and of two.
        let itself_down = RaftView {
            answering: false,
            ..MEMBER
        };
        assert!(demote(itself_down).is_ok());
        // Two voters, the node is down: the old group has no majority to commit the change.
        let pair_down = RaftView {
            other_voters: 1,
            answering_others: 1,
            answering: false,
            ..MEMBER
        };
        assert!(matches!(demote(pair_down), Err(NodeRefusal::Quorum { .. })));
        // A learner leaves whatever the voters do.
        let learner = RaftView {
            voter: false,
            other_voters: 1,
            answering_others: 1,
            answering: false,
            ..MEMBER
        };
        assert!(demote(learner).is_ok());
        let message = NodeRefusal::Quorum {
            node: "n1".into(),
            answering: 1,
            voters: 2,
        }
        .to_string();
        assert!(message.contains("only 1 of the 2 voters"), "{message}");
    }
}
