//! The joining side: a node asks a manager for its certificate with a join token (the
//! manager's CA pinned by the token's digest), and a manager that joined asks the
//! leader to make it a raft member. Used by `orch manager join` and `orch agent --join`.

use super::error::ServerError;
use super::layout::{Layout, NodeFile, raft_id};
use crate::ca::{self, CaError, IssuedCert, JoinToken, NodeKey};
use api::client::ClientError;
use api::client::managers::post_to_leader;
use api::error::{ApiError, ErrorCode};
use api::join::{JoinRequest, JoinResponse, ManagerAdd, Member};
use std::time::{Duration, SystemTime};

/// What a join gives the node: the key it made and the manager's answer.
pub struct Joined {
    pub key: NodeKey,
    pub response: JoinResponse,
}

impl Joined {
    /// The certificate as the CA module keeps it.
    pub fn issued(&self) -> IssuedCert {
        IssuedCert {
            node_id: self.response.node_id.clone(),
            role: self.response.role,
            cert_pem: self.response.cert_pem.clone(),
            ca_cert_pem: self.response.ca_cert_pem.clone(),
            not_after: SystemTime::UNIX_EPOCH,
        }
    }

    /// Keeps the node's identity in `layout` (`node.json` last) and returns who it is.
    pub fn keep(&self, layout: &Layout) -> Result<NodeFile, ServerError> {
        let node = NodeFile {
            node_id: self.response.node_id.clone(),
            raft_id: raft_id(&self.response.node_id),
            cluster_id: self.response.cluster_id.clone(),
        };
        layout.save(&node, &self.key, &self.issued())?;
        Ok(node)
    }
}

/// Join the cluster of the manager at `remote` (`host:port`) with `token`: make a key,
/// send its certificate request, follow a follower to its leader.
pub async fn join(
    remote: &str,
    token: &str,
    hostname: &str,
    addr: Option<String>,
) -> Result<Joined, ServerError> {
    let parsed = JoinToken::parse(token)?;
    let mut tls = ca::join_client_config(&parsed)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|source| ServerError::Client {
            what: "joining",
            source,
        })?;
    let key = NodeKey::generate()?;
    let req = JoinRequest {
        token: token.trim().to_owned(),
        csr_pem: key.csr()?,
        hostname: hostname.to_owned(),
        addr,
    };
    let response: JoinResponse =
        post_to_leader(&http, &[remote.to_owned()], "/v1/join", "join", &req)
            .await
            .map_err(|e| call_error(remote, "join", e))?;
    Ok(Joined { key, response })
}

/// Ask the leader (found from `managers`) to make this manager, reached at `addr`, a
/// voting member.
pub async fn add_manager(
    http: &reqwest::Client,
    managers: &[String],
    addr: &str,
) -> Result<Vec<Member>, ServerError> {
    let req = ManagerAdd {
        addr: addr.to_owned(),
    };
    post_to_leader(http, managers, "/v1/managers", "add a manager", &req)
        .await
        .map_err(|e| call_error(&managers.join(","), "add a manager", e))
}

/// A failed call to a manager, in the daemon's terms.
pub(crate) fn call_error(addr: &str, op: &'static str, e: ClientError) -> ServerError {
    match e {
        ClientError::Api(error) => ServerError::Refused {
            addr: addr.to_owned(),
            op,
            error,
        },
        ClientError::Http { source, .. } => unreachable(addr, source),
        other => ServerError::BadAnswer {
            addr: addr.to_owned(),
            op,
            why: other.to_string(),
        },
    }
}

/// A transport failure; a TLS refusal by the CA pinning says why in its own words.
fn unreachable(addr: &str, source: reqwest::Error) -> ServerError {
    if let Some(ca) = CaError::find_in(&source) {
        return ServerError::Refused {
            addr: addr.to_owned(),
            op: "connect",
            error: ApiError::new(ErrorCode::Unauthorized, ca.to_string()),
        };
    }
    ServerError::Unreachable {
        addr: addr.to_owned(),
        source,
    }
}
