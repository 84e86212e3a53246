//! Agent sessions (swarmkit's dispatcher): only the leader holds them. An agent opens a
//! session (its node becomes `ready`, with what it reported about its host), then
//! heartbeats at the period the cluster record sets; a node silent for the grace
//! period is marked `down`. A follower answers `unavailable` with the leader's address.
//!
//! An open session streams the node's [`Assignments`](api::session::Assignments) (the
//! whole set, again whenever it changes) and takes its task status reports.
//!
//! - [`table`]: the session table as a pure structure (open, beat, expire at `now`).
//! - [`assignments`]: a node's share of the cluster, computed from the state.
//! - [`volumes`]: volume removals a node is told of and confirms.
//! - `stream`: the assignment stream and the status reports.
//! - `logs`: the log lines nodes publish for the [`LogBroker`]'s subscriptions.

pub mod assignments;
mod logs;
mod stream;
pub mod table;
pub mod volumes;

use crate::http::error::HttpError as Refusal;
use crate::keyring::Keyring;
use crate::logbroker::LogBroker;
use crate::server::{Caller, random_id};
use crate::store::{Store, StoreError};
use api::cluster::{NodeState, NodeStatus};
use api::error::{ApiError, ErrorCode};
use api::session::{Heartbeat, SessionInfo, SessionOpen};
use axum::extract::State;

use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use table::Sessions;

/// How often expired sessions are looked for.
const TICK: Duration = Duration::from_millis(200);

/// The dispatcher of one manager.
pub struct Dispatcher {
    store: Arc<Store>,
    sessions: Mutex<Sessions>,
    /// Opens the secrets of assignments.
    keyring: Arc<Keyring>,
    /// The log subscriptions nodes are told of and publish to.
    logs: Arc<LogBroker>,
}

impl Dispatcher {
    /// The dispatcher over `store`; `keyring` opens the secrets nodes are sent;
    /// `logs` holds the log subscriptions nodes are told of.
    pub fn new(store: Arc<Store>, keyring: Arc<Keyring>, logs: Arc<LogBroker>) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            store,
            sessions: Mutex::new(Sessions::default()),
            keyring,
            logs,
        })
    }

    /// `POST /v1/session` and `POST /v1/session/heartbeat`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/session", post(open))
            .route("/v1/session/heartbeat", post(heartbeat))
            .route("/v1/session/assignments", get(stream::assignments))
            .route("/v1/session/status", post(stream::status))
            .route("/v1/session/logs", post(logs::publish))
            .with_state(self.clone())
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settings(&self) -> crate::store::ClusterSettings {
        self.store
            .cluster()
            .borrow()
            .as_ref()
            .map(|c| c.settings.clone())
            .unwrap_or_default()
    }

    fn is_leader(&self) -> bool {
        self.store.metrics().current_leader == Some(self.store.id())
    }

    /// Refuses on a follower, naming the leader.
    fn leader_only(&self) -> Result<(), Refusal> {
        if self.is_leader() {
            return Ok(());
        }
        let mut error = ApiError::new(
            ErrorCode::Unavailable,
            "sessions are held by the leader, and this manager is not the leader",
        );
        if let Some((_, addr)) = self.store.leader() {
            error = error.with("leader", addr);
        }
        Err(Refusal(error))
    }

    fn info(&self, node: &str, session_id: String) -> SessionInfo {
        SessionInfo {
            session_id,
            heartbeat_ms: self.settings().heartbeat_ms,
            managers: self.store.managers_leader_first(),
            role: self
                .store
                .view(|s| s.nodes.get(node).map(|n| n.spec.role))
                .value,
        }
    }

    /// Sets a node's status (keeping its address unless a new one is given) and, on
    /// a session's opening, what the node reported.
    async fn set_node(
        &self,
        id: &str,
        status: NodeStatus,
        open: Option<&SessionOpen>,
    ) -> Result<bool, StoreError> {
        let exists = self.store.view(|s| s.nodes.get(id).is_some()).value;
        self.store
            .update_node(id, |node| {
                let status = NodeStatus {
                    addr: status.addr.clone().or(node.status.addr.clone()),
                    ..status.clone()
                };
                let description = open.map(|o| o.description.clone());
                let unchanged = node.status == status
                    && description.as_ref().is_none_or(|d| *d == node.description);
                node.status = status;
                if let Some(d) = description {
                    node.description = d;
                }
                !unchanged
            })
            .await?;
        Ok(exists)
    }

    /// Marks nodes down whose sessions expired; seeds the table when this manager
    /// becomes the leader. Runs until dropped.
    pub async fn run(self: Arc<Self>) {
        let mut was_leader = false;
        loop {
            tokio::time::sleep(TICK).await;
            let leader = self.is_leader();
            let now = Instant::now();
            let grace = self.settings().node_down_grace();
            if leader && !was_leader {
                // Every node that had a session gets the grace period to come back.
                let tracked: Vec<String> = self
                    .store
                    .view(|s| {
                        s.nodes
                            .iter()
                            .filter(|n| n.status.state == NodeState::Ready)
                            .filter(|n| !n.description.engine_version.is_empty())
                            .map(|n| n.meta.id.clone())
                            .collect()
                    })
                    .value;
                self.sessions().seed(tracked, now + grace);
            } else if !leader && was_leader {
                self.sessions().clear();
            }
            was_leader = leader;
            if !leader {
                continue;
            }
            let expired = self.sessions().expire(now);
            for node in expired {
                let status = NodeStatus {
                    state: NodeState::Down,
                    addr: None,
                    message: Some(format!("no heartbeat for {:.1}s", grace.as_secs_f64())),
                };
                // A failed write is retried by the next expiry of a new session.
                let _ = self.set_node(&node, status, None).await;
            }
        }
    }
}

fn node_caller(caller: Option<Extension<Caller>>) -> Result<String, Refusal> {
    match caller {
        Some(Extension(Caller::Node { id, .. })) => Ok(id),
        _ => Err(Refusal::new(
            ErrorCode::Unauthorized,
            "a session needs the node certificate the node got when it joined",
        )),
    }
}

async fn open(
    State(d): State<Arc<Dispatcher>>,
    caller: Option<Extension<Caller>>,
    Json(req): Json<SessionOpen>,
) -> Result<Json<SessionInfo>, Refusal> {
    let node = node_caller(caller)?;
    d.leader_only()?;
    let status = NodeStatus {
        state: NodeState::Ready,
        addr: req.addr.clone(),
        message: None,
    };
    if !d.set_node(&node, status, Some(&req)).await? {
        return Err(Refusal::new(
            ErrorCode::NotFound,
            format!("node {node} is not in the cluster (was it removed?)"),
        ));
    }
    let session_id = random_id(10, "a session id")
        .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?;
    let grace = d.settings().node_down_grace();
    d.sessions()
        .open(&node, &session_id, Instant::now() + grace);
    Ok(Json(d.info(&node, session_id)))
}

async fn heartbeat(
    State(d): State<Arc<Dispatcher>>,
    caller: Option<Extension<Caller>>,
    Json(req): Json<Heartbeat>,
) -> Result<Json<SessionInfo>, Refusal> {
    let node = node_caller(caller)?;
    d.leader_only()?;
    let grace = d.settings().node_down_grace();
    if !d
        .sessions()
        .beat(&node, &req.session_id, Instant::now() + grace)
    {
        return Err(Refusal::new(
            ErrorCode::NotFound,
            format!(
                "session {} of node {node} is not open on the leader: open a new one",
                req.session_id
            ),
        ));
    }
    Ok(Json(d.info(&node, req.session_id)))
}
