//! Joining a cluster: a node presents a join token and a certificate request over TLS
//! (the manager's CA pinned by the token) and gets its node certificate back; a manager
//! that joined then asks to become a raft member over mutual TLS.

use crate::cluster::NodeRole;
use serde::{Deserialize, Serialize};

/// `POST /v1/join`: a node without a certificate asks for one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The worker or manager join token (`ORCH1-...`).
    pub token: String,
    /// A PKCS#10 request (PEM) for the key the node made and keeps.
    pub csr_pem: String,
    /// The node's hostname, for people (`orch node ls`).
    pub hostname: String,
    /// The address the node is reached at (a manager's advertise address).
    #[serde(default)]
    pub addr: Option<String>,
}

/// The answer to a join: who the node is now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The id the cluster gave the node.
    pub node_id: String,
    /// The role the token granted.
    pub role: NodeRole,
    /// The node certificate (PEM).
    pub cert_pem: String,
    /// The cluster CA certificate (PEM).
    pub ca_cert_pem: String,
    /// The cluster's id.
    pub cluster_id: String,
    /// Addresses of the managers, leader first.
    pub managers: Vec<String>,
    /// The cluster's data key (base64), which seals secrets: given to managers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<String>,
}

/// `POST /v1/managers`: a manager that joined asks to become a raft member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerAdd {
    /// The address its raft and API server listens at (as the others reach it).
    pub addr: String,
}

/// A raft member as the join answers and `/v1/cluster` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node id.
    pub node_id: String,
    /// The raft id.
    pub raft_id: u64,
    pub addr: String,
    /// Whether it votes (a learner does not).
    pub voter: bool,
}

/// `POST /v1/certificates/renew`: a node, authenticated by its current certificate
/// (mutual TLS), asks for a new one for the key of its request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// A PKCS#10 request (PEM) for the key the node will use (it may be a new one).
    pub csr_pem: String,
}

/// The answer to a renewal: the node's new certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewResponse {
    /// The node id (the same as before).
    pub node_id: String,
    /// The role the cluster's Node record gives the node now (a demoted manager's
    /// certificate becomes a worker's).
    pub role: NodeRole,
    /// The node certificate (PEM).
    pub cert_pem: String,
    /// The cluster CA certificate (PEM).
    pub ca_cert_pem: String,
    /// Addresses of the managers, leader first.
    pub managers: Vec<String>,
    /// The cluster's data key (base64), for a manager's certificate only (a promoted
    /// worker needs it to start its manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<String>,
}
