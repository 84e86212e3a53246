//! `/v1/nodes`: list (by role, availability, label), get, update (labels, availability,
//! role), delete (which revokes the node's certificate). Nodes are created by joining,
//! not through this resource. What a role change or a removal may do is decided in
//! [`super::node_rules`].

use super::ApiState;
use super::error::HttpError;
use super::node_rules::{self, RaftView, RoleChange};
use super::params::{Params, expected_version, matches_all};
use super::resource::{self, Body, Found, Id, check_labels, required_version};
use crate::server::raft_id;
use crate::store::{Command, StoreError};
use api::cluster::{Availability, Kind, Node, NodeRole, NodeState};
use api::error::{ErrorCode, ErrorEnvelope};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// What a user may change of a node; an absent field keeps its value.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeUpdate {
    /// The node's labels, replaced whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Availability>,
    /// `worker` demotes a manager (it leaves the raft group); `manager` promotes a worker
    /// (its agent renews its certificate as a manager's and starts a manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<NodeRole>,
}

impl NodeUpdate {
    /// `node` with this update applied.
    pub fn apply(self, mut node: Node) -> Node {
        if let Some(labels) = self.labels {
            node.meta.labels = labels;
        }
        if let Some(availability) = self.availability {
            node.spec.availability = availability;
        }
        if let Some(role) = self.role {
            node.spec.role = role;
        }
        node
    }
}

/// Nodes, as of `version` (watch events from there).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NodeList {
    pub version: u64,
    pub items: Vec<Node>,
}

/// List nodes.
#[utoipa::path(get, path = "/v1/nodes", tag = "nodes",
    params(
        ("role" = Option<NodeRole>, Query, description = "Only nodes with this role"),
        ("availability" = Option<Availability>, Query, description = "Only nodes with this availability"),
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The nodes", body = NodeList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<NodeList>, HttpError> {
    let labels = params.labels()?;
    let role: Option<NodeRole> = params.variant("role", "`manager` or `worker`")?;
    let availability: Option<Availability> =
        params.variant("availability", "`active`, `pause` or `drain`")?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        let nodes: Box<dyn Iterator<Item = &Node>> = match (role, availability) {
            (Some(role), _) => Box::new(state.nodes.by_role(role)),
            (None, Some(availability)) => Box::new(state.nodes.by_availability(availability)),
            (None, None) => Box::new(state.nodes.iter()),
        };
        nodes
            .filter(|n| availability.is_none_or(|a| a == n.spec.availability))
            .filter(|n| matches_all(&labels, &n.meta.labels))
            .cloned()
            .collect()
    })
    .await?;
    Ok(Json(NodeList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a node.
#[utoipa::path(get, path = "/v1/nodes/{id}", tag = "nodes",
    params(
        ("id" = String, Path, description = "The node's id"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The node; `ETag` is its version", body = Node),
        (status = 404, description = "No such node", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Node>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    resource::get(&api, &id, stale).await
}

/// Change a node's labels, availability or role, if it is still at the version read.
/// A role change is checked by [`node_rules::role_change`]: a promoted worker's agent
/// starts a manager once its certificate is renewed, and demoting a manager takes it out
/// of the raft group first (never the last manager, nor the leader itself, nor without a
/// majority answering).
#[utoipa::path(put, path = "/v1/nodes/{id}", tag = "nodes",
    request_body = NodeUpdate,
    params(
        ("id" = String, Path, description = "The node's id"),
        ("version" = Option<u64>, Query, description = "The version read (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "The version read, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The node as committed", body = Node),
        (status = 404, description = "No such node", body = ErrorEnvelope),
        (status = 409, description = "The node changed since the version read (details name both versions), or the role change is refused (the message says what to do)", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
    Body(body): Body<NodeUpdate>,
) -> Result<Found<Node>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    let version = required_version(Kind::Node, &id, version)?;
    if let Some(labels) = &body.labels {
        check_labels(Kind::Node, labels)?;
    }
    // The status is the system's: keep the one of the version named, never an older one.
    let current: Node = resource::fetch(&api, &id, false).await?;
    if current.meta.version != version {
        return Err(StoreError::Conflict {
            kind: Kind::Node,
            id,
            expected: version,
            actual: current.meta.version,
        }
        .into());
    }
    let raft = if body.role == Some(NodeRole::Worker) {
        raft_view(&api, &id).await?
    } else {
        RaftView::default()
    };
    let change = node_rules::role_change(&current, body.role, raft)?;
    let mut node = body.apply(current);
    if let RoleChange::Demote { leave_raft: leave } = change {
        if leave {
            leave_raft(&api, &id).await?;
        }
        // No agent holds a session for it: it runs nothing until removed.
        node.status.state = NodeState::Down;
        node.status.message = Some(format!(
            "demoted from manager: out of the raft group; remove it with `orch node rm {id}`"
        ));
    }
    if change == RoleChange::Promote {
        node.status.message = Some(
            "promoted: its agent renews its certificate as a manager's and starts a manager \
             (once it holds a session)"
                .to_owned(),
        );
    }
    resource::update(&api, node, version).await
}

/// Remove a node from the cluster: its certificate is refused from its next request on
/// (it must join again with a token), and its tasks are replaced elsewhere. A node
/// whose agent holds a session needs `force`; a manager in the raft group is demoted
/// first, or with `force` taken out of the raft group (as a demotion checks it).
#[utoipa::path(delete, path = "/v1/nodes/{id}", tag = "nodes",
    params(
        ("id" = String, Path, description = "The node's id"),
        ("force" = Option<bool>, Query, description = "Remove the node even while it is ready (its agent holds a session)"),
        ("version" = Option<u64>, Query, description = "Delete only at this version (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this version, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The node as it was", body = Node),
        (status = 404, description = "No such node", body = ErrorEnvelope),
        (status = 409, description = "The node changed since the version given, is ready (without `force`), is a raft member (without `force`), or cannot leave the raft group (the last manager, the leader, too few managers answering)", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Found<Node>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    let force = params.flag("force")?;
    params.finish()?;
    for _ in 0..CAS_TRIES {
        let read = api
            .store()
            .read(|s| (s.nodes.get(&id).cloned(), s.cluster.clone()))
            .await?;
        let (Some(node), record) = read.value else {
            return Err(StoreError::NotFound {
                kind: Kind::Node,
                id,
            }
            .into());
        };
        let removal = node_rules::removal(&node, force, raft_view(&api, &id).await?)?;
        if removal.leave_raft {
            leave_raft(&api, &id).await?;
        }
        let delete = Command::delete(Kind::Node, &id, Some(version.unwrap_or(node.meta.version)));
        // Without a cluster CA (a bare store) there is no certificate to revoke.
        let write = match record {
            Some(record) => {
                let expected_version = Some(record.version);
                let mut revoked = record;
                revoked.ca.remove_node(&id);
                Command::Batch {
                    commands: vec![
                        Command::SetCluster {
                            record: Box::new(revoked),
                            expected_version,
                        },
                        delete,
                    ],
                }
            }
            None => delete,
        };
        match api.store().write(write).await {
            Ok(applied) => {
                return Ok(Found {
                    status: StatusCode::OK,
                    version: applied.version,
                    object: node,
                });
            }
            // Another write won: read again (a named version makes a node conflict final).
            Err(StoreError::ClusterChanged(_)) => continue,
            Err(StoreError::Conflict { .. }) if version.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(HttpError::new(
        ErrorCode::Unavailable,
        format!("node {id} or the cluster record kept changing while removing it; try again"),
    ))
}

/// How many times a removal is tried again when another write won.
const CAS_TRIES: usize = 16;

/// How long the voters get to acknowledge the probe entry of [`raft_view`].
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// What the raft group (as this manager, the leader, sees it) says about node `id`. For
/// a member, a no-op entry is committed first, and the voters that hold it within
/// [`PROBE_WAIT`] are the ones answering (a voter that stopped holds an older entry).
async fn raft_view(api: &ApiState, id: &str) -> Result<RaftView, HttpError> {
    let raft = raft_id(id);
    let metrics = api.store().metrics();
    let membership = metrics.membership_config.membership();
    let member = membership.nodes().any(|(n, _)| *n == raft);
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let mut view = RaftView {
        member,
        voter: voters.contains(&raft),
        leader: metrics.current_leader == Some(raft),
        other_voters: voters.iter().filter(|v| **v != raft).count(),
        answering_others: 0,
        answering: false,
    };
    if !member {
        return Ok(view);
    }
    let probe = api
        .store()
        .write(Command::Batch {
            commands: Vec::new(),
        })
        .await?
        .version;
    let deadline = tokio::time::Instant::now() + PROBE_WAIT;
    loop {
        let metrics = api.store().metrics();
        let holds = |voter: u64| {
            voter == metrics.id
                || metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&voter).cloned().flatten())
                    .is_some_and(|log| log.index >= probe)
        };
        view.answering = holds(raft);
        view.answering_others = voters.iter().filter(|v| **v != raft && holds(**v)).count();
        let all = view.answering_others == view.other_voters && (view.answering || !view.voter);
        if all || tokio::time::Instant::now() >= deadline {
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Takes manager `id` out of the raft group: it no longer votes nor gets the log.
async fn leave_raft(api: &ApiState, id: &str) -> Result<(), HttpError> {
    let change = ChangeMembers::RemoveVoters(BTreeSet::from([raft_id(id)]));
    api.store()
        .raft()
        .change_membership(change, false)
        .await
        .map_err(|e| {
            HttpError::new(
                ErrorCode::Unavailable,
                format!("take manager {id} out of the raft group: {e}; try again"),
            )
            .with("kind", "node")
            .with("id", id)
        })?;
    Ok(())
}
