//! The join endpoints: `POST /v1/join` (a node with a token and a certificate request
//! gets its certificate and its Node object) and `POST /v1/managers` (a manager that
//! joined becomes a raft member). Both write through the leader; a follower answers
//! `unavailable` with the leader's address, which the joining side follows.

use super::layout::{raft_id, random_id};
use super::{Caller, Shared};
use crate::ca::JoinToken;
use crate::http::error::HttpError as Failure;
use crate::store::{ClusterRecord, Command, StoreError};
use api::cluster::{
    Meta, Node, NodeDescription, NodeRole, NodeSpec, NodeState, NodeStatus, Object,
};
use api::error::ErrorCode;
use api::join::{JoinRequest, JoinResponse, ManagerAdd, Member};
use axum::extract::State;
use axum::{Extension, Json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

/// How often a write of the cluster record is retried when another write won.
pub(crate) const CAS_TRIES: usize = 16;

/// `POST /v1/join`.
pub(crate) async fn join(
    State(shared): State<Arc<Shared>>,
    Json(req): Json<JoinRequest>,
) -> Result<Json<JoinResponse>, Failure> {
    let token = JoinToken::parse(&req.token)?;
    let node_id = random_id(10, "a node id")?;
    for _ in 0..CAS_TRIES {
        let record = cluster_record(&shared).await?;
        let mut ca = record.ca.clone();
        let issued = ca.issue(&token, &req.csr_pem, &node_id, SystemTime::now())?;
        let node = Node {
            meta: Meta::new(node_id.clone()),
            spec: NodeSpec {
                role: issued.role,
                ..NodeSpec::default()
            },
            description: NodeDescription {
                hostname: req.hostname.clone(),
                ..NodeDescription::default()
            },
            status: NodeStatus {
                state: NodeState::Unknown,
                addr: req.addr.clone(),
                message: Some("joined; no session yet".to_owned()),
            },
        };
        let write = Command::Batch {
            commands: vec![
                Command::SetCluster {
                    record: Box::new(ClusterRecord {
                        ca,
                        ..(*record).clone()
                    }),
                    expected_version: Some(record.version),
                },
                Command::create(Object::Node(node)),
            ],
        };
        match shared.store.write(write).await {
            Ok(_) => {
                return Ok(Json(JoinResponse {
                    node_id,
                    role: issued.role,
                    cert_pem: issued.cert_pem,
                    ca_cert_pem: issued.ca_cert_pem,
                    cluster_id: record.ca.cluster_id().to_owned(),
                    managers: shared.store.managers_leader_first(),
                    data_key: (issued.role == NodeRole::Manager)
                        .then(|| shared.keyring.to_base64()),
                }));
            }
            Err(StoreError::ClusterChanged(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Failure::new(
        ErrorCode::Unavailable,
        "the cluster record kept changing while issuing the certificate; try again",
    ))
}

/// The cluster record, read linearizably (so only the leader issues certificates).
async fn cluster_record(shared: &Shared) -> Result<Arc<ClusterRecord>, Failure> {
    Ok(cluster_record_and(shared, |_| ()).await?.0)
}

/// The cluster record and what `f` reads of the state, in one linearizable read.
pub(crate) async fn cluster_record_and<T>(
    shared: &Shared,
    f: impl FnOnce(&crate::store::State) -> T,
) -> Result<(Arc<ClusterRecord>, T), Failure> {
    let read = shared
        .store
        .read(|state| (state.cluster.clone(), f(state)))
        .await
        .map_err(Failure::from)?;
    let (record, value) = read.value;
    let record = record.ok_or_else(|| {
        Failure::new(
            ErrorCode::Unavailable,
            "the cluster has no CA yet: its first manager has not finished `orch manager init`",
        )
    })?;
    Ok((Arc::new(record), value))
}

/// `POST /v1/managers`: the calling manager (by its certificate) becomes a voter.
pub(crate) async fn add_manager(
    State(shared): State<Arc<Shared>>,
    caller: Option<Extension<Caller>>,
    Json(req): Json<ManagerAdd>,
) -> Result<Json<Vec<Member>>, Failure> {
    let Some(Extension(Caller::Node {
        id,
        role: NodeRole::Manager,
    })) = caller
    else {
        return Err(Failure::new(
            ErrorCode::Unauthorized,
            "only a manager's certificate may join the raft group",
        ));
    };
    let exists = shared
        .store
        .read(|state| state.nodes.get(&id).is_some())
        .await
        .map_err(Failure::from)?;
    if !exists.value {
        return Err(Failure::new(
            ErrorCode::NotFound,
            format!("node {id} is not in the cluster (was it removed?)"),
        ));
    }
    let raft = raft_id(&id);
    shared.store.add_learner(raft, req.addr.clone()).await?;
    let mut voters: BTreeSet<u64> = shared
        .store
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    voters.insert(raft);
    shared.store.change_membership(voters).await?;
    set_manager_ready(&shared, &id, &req.addr).await?;
    Ok(Json(shared.members()))
}

/// Marks a manager's node ready, reached at `addr` unless it has an address already (a
/// promoted worker's agent gave its host's; the overlay needs that one).
pub(crate) async fn set_manager_ready(
    shared: &Shared,
    id: &str,
    addr: &str,
) -> Result<(), Failure> {
    shared
        .store
        .update_node(id, |node| {
            let ready = NodeStatus {
                state: NodeState::Ready,
                addr: node.status.addr.clone().or_else(|| Some(addr.to_owned())),
                message: None,
            };
            let changed = node.status != ready;
            node.status = ready;
            changed
        })
        .await?;
    Ok(())
}
