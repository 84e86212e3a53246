//! An agent's session with the managers (swarmkit's dispatcher protocol, over HTTP/JSON
//! with mutual TLS): the agent registers what its host has, then heartbeats at the
//! period the manager sets. Only the leader's dispatcher holds sessions; a follower
//! answers `unavailable` with the leader's address in `details.leader`.

use crate::cluster::NodeDescription;
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
}

/// `POST /v1/session/heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub session_id: String,
}
