//! The cluster record: the one singleton of the state — the cluster CA (key, join
//! secrets, removed nodes), the settings every manager uses, and the hashes of the API's
//! bearer tokens. It is replicated like objects but never emitted as an event or served
//! by the object API: it holds the cluster's secrets.

use crate::ca::CaState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings of the cluster that every manager follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSettings {
    /// How often agents heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// A node missing heartbeats this long (milliseconds) is marked down.
    pub node_down_grace_ms: u64,
    /// How tasks are placed unless a service says otherwise (label `orch.strategy`).
    pub strategy: crate::scheduler::Strategy,
}

impl Default for ClusterSettings {
    fn default() -> ClusterSettings {
        ClusterSettings {
            heartbeat_ms: 1000,
            node_down_grace_ms: 3000,
            strategy: crate::scheduler::Strategy::default(),
        }
    }
}

impl ClusterSettings {
    /// The heartbeat period.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(1))
    }

    /// The grace period after which a silent node is down.
    pub fn node_down_grace(&self) -> Duration {
        Duration::from_millis(self.node_down_grace_ms.max(1))
    }
}

/// The cluster singleton as the store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The log index of the record's last change (set by the store).
    #[serde(default)]
    pub version: u64,
    /// The cluster CA.
    pub ca: CaState,
    #[serde(default)]
    pub settings: ClusterSettings,
    /// API bearer tokens: name -> lowercase hex SHA-256 of the token.
    #[serde(default)]
    pub api_tokens: BTreeMap<String, String>,
}
