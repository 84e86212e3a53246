//! `/v1/cluster`: the raft view of this manager — leader, members, term, indexes, health.

use super::ApiState;
use super::error::HttpError;
use super::params::Params;
use crate::store::NodeId;
use crate::store::types::Metrics;
use axum::Json;
use axum::extract::State;
use openraft::ServerState;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A leader that heard from no quorum for this long is reported degraded.
pub const QUORUM_ACK_DEGRADED_MS: u64 = 5_000;

/// A manager of the raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Member {
    pub id: NodeId,
    /// The address its raft and API server listens on.
    pub addr: String,
    /// `true` for a voter, `false` for a learner (replicates, does not vote).
    pub voter: bool,
}

/// The leader as this manager knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Leader {
    pub id: NodeId,
    pub addr: String,
}

/// How well this manager's raft is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// A leader is known and (on the leader) a quorum answers.
    Healthy,
    /// The leader has not heard from a quorum recently.
    NoRecentQuorum,
    /// No leader is known: writes and linearizable reads fail until one is elected.
    NoLeader,
    /// Raft stopped on this manager (storage failure or shutdown).
    Stopped,
}

/// The raft view of the cluster from this manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClusterInfo {
    /// This manager's raft id.
    pub id: NodeId,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: String,
    pub leader: Option<Leader>,
    pub members: Vec<Member>,
    pub term: u64,
    /// The last log index this manager holds.
    pub last_log_index: u64,
    /// The highest log index known committed: computed from a quorum of replicas on the
    /// leader; elsewhere the applied index (a follower learns commits by applying them).
    pub commit_index: u64,
    /// The last log index applied to the state (the state's version).
    pub applied_index: u64,
    /// Log entries held here but not yet applied.
    pub apply_lag: u64,
    /// Milliseconds since the leader last heard from a quorum (leader only).
    pub millis_since_quorum_ack: Option<u64>,
    pub health: Health,
}

fn state_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

/// The highest index a majority of voters hold (leader only; `None` elsewhere).
fn quorum_index(m: &Metrics) -> Option<u64> {
    let replication = m.replication.as_ref()?;
    let membership = m.membership_config.membership();
    let mut matched: Vec<u64> = membership
        .voter_ids()
        .map(|id| {
            if id == m.id {
                m.last_log_index.unwrap_or(0)
            } else {
                replication
                    .get(&id)
                    .and_then(|l| l.as_ref())
                    .map_or(0, |l| l.index)
            }
        })
        .collect();
    if matched.is_empty() {
        return None;
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched.get(matched.len() / 2).copied()
}

impl ClusterInfo {
    /// The view described by raft's `metrics`.
    pub fn from_metrics(m: &Metrics) -> ClusterInfo {
        let membership = m.membership_config.membership();
        let members: Vec<Member> = membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                addr: node.addr.clone(),
                voter: membership.voter_ids().any(|v| v == *id),
            })
            .collect();
        let leader = m.current_leader.and_then(|id| {
            membership.get_node(&id).map(|node| Leader {
                id,
                addr: node.addr.clone(),
            })
        });
        let applied = m.last_applied.map_or(0, |l| l.index);
        let last_log = m.last_log_index.unwrap_or(0);
        let commit = quorum_index(m).unwrap_or(applied).max(applied);
        let is_leader = m.state == ServerState::Leader;
        let quorum_ack = if is_leader {
            m.millis_since_quorum_ack
        } else {
            None
        };
        let health = if m.running_state.is_err() || m.state == ServerState::Shutdown {
            Health::Stopped
        } else if m.current_leader.is_none() {
            Health::NoLeader
        } else if quorum_ack.is_some_and(|ms| ms > QUORUM_ACK_DEGRADED_MS) {
            Health::NoRecentQuorum
        } else {
            Health::Healthy
        };
        ClusterInfo {
            id: m.id,
            state: state_name(m.state).to_owned(),
            leader,
            members,
            term: m.current_term,
            last_log_index: last_log,
            commit_index: commit,
            applied_index: applied,
            apply_lag: last_log.saturating_sub(applied),
            millis_since_quorum_ack: quorum_ack,
            health,
        }
    }
}

/// This manager's view of the raft group.
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses((status = 200, description = "Leader, members, term, indexes, health", body = ClusterInfo)))]
pub async fn info(
    State(api): State<Arc<ApiState>>,
    params: Params,
) -> Result<Json<ClusterInfo>, HttpError> {
    params.finish()?;
    Ok(Json(ClusterInfo::from_metrics(&api.store.metrics())))
}
