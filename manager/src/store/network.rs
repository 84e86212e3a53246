//! Raft RPCs between managers: JSON over HTTP POST, an axum router for the server side
//! and a reqwest client for the sending side. All transport lives here, so mutual TLS
//! (with the cluster CA, checking the peer's node id) replaces only this module.
//!
//! Endpoints (body: the openraft request; answer: `Result<response, RaftError>`):
//! `POST /raft/append`, `POST /raft/vote`, `POST /raft/snapshot`.

use super::log_store::LogDisk;
use super::types::{LogId, NodeId, Raft, TypeConfig};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

const APPEND: &str = "/raft/append";
const VOTE: &str = "/raft/vote";
const SNAPSHOT: &str = "/raft/snapshot";

/// The largest raft RPC body accepted (snapshot chunks are smaller; see `Config`).
pub const MAX_BODY: usize = 64 << 20;

/// The raft RPC endpoints of `raft`, to mount on the manager's server; `log` is its
/// log's disk.
pub fn router(raft: Raft, log: LogDisk) -> Router {
    Router::new()
        .route(APPEND, post(append))
        .route(VOTE, post(vote))
        .route(SNAPSHOT, post(snapshot))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Peer { raft, log })
}

/// What the RPC handlers serve.
#[derive(Clone)]
struct Peer {
    raft: Raft,
    log: LogDisk,
}

/// Appends, and answers once what it appended is durable: the leader counts this node
/// for an entry only when its disk has it (see [`log_store`](super::log_store)).
async fn append(
    State(peer): State<Peer>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Result<Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>, (StatusCode, String)> {
    let answer = peer.raft.append_entries(req).await;
    peer.log
        .queued()
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(answer))
}

async fn vote(
    State(Peer { raft, .. }): State<Peer>,
    Json(req): Json<VoteRequest<NodeId>>,
) -> Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.vote(req).await)
}

async fn snapshot(
    State(Peer { raft, .. }): State<Peer>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    Json(raft.install_snapshot(req).await)
}

/// Why an RPC did not get an answer from the peer's raft.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("send raft RPC to {url}: {source}")]
    Send {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("raft RPC to {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("decode raft RPC answer from {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("TLS configuration of the raft client: {0}")]
    Tls(#[source] rustls::Error),
    #[error("build the raft HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("encode raft RPC to {url}: {source}")]
    Encode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Creates one [`PeerClient`] per target; all share one connection pool.
#[derive(Clone)]
pub struct HttpNetwork {
    client: reqwest::Client,
    scheme: &'static str,
    log: Option<LogDisk>,
}

/// How raft RPCs reach peers: a client (with its TLS identity) and the URL scheme.
#[derive(Clone, Debug)]
pub struct Transport {
    pub client: reqwest::Client,
    /// `https` with mutual TLS; `http` in tests of the store alone.
    pub scheme: &'static str,
}

impl HttpNetwork {
    /// A network with its own connection pool. Plain HTTP for now; the TLS settings are
    /// wired explicitly (ring provider, no system roots) so the cluster CA slots in here.
    pub fn new() -> Result<HttpNetwork, TransportError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TransportError::Tls)?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(TransportError::Client)?;
        Ok(HttpNetwork {
            client,
            scheme: "http",
            log: None,
        })
    }

    /// A network over `transport` (the manager's mutual-TLS client).
    pub fn with(transport: Transport) -> HttpNetwork {
        HttpNetwork {
            client: transport.client,
            scheme: transport.scheme,
            log: None,
        }
    }

    /// Tell followers a commit index no further than `log` has on disk (see
    /// [`log_store`](super::log_store)).
    pub fn clamping_commit_to(mut self, log: LogDisk) -> HttpNetwork {
        self.log = Some(log);
        self
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        // No connection here: each RPC connects (or reuses a pooled connection).
        PeerClient {
            target,
            base: format!("{}://{}", self.scheme, node.addr),
            client: self.client.clone(),
            log: self.log.clone(),
        }
    }
}

/// Sends raft RPCs to one peer.
pub struct PeerClient {
    target: NodeId,
    base: String,
    client: reqwest::Client,
    log: Option<LogDisk>,
}

impl PeerClient {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("{}{path}", self.base);
        let body = serde_json::to_vec(req).map_err(|source| {
            RPCError::Network(NetworkError::new(&TransportError::Encode {
                url: url.clone(),
                source,
            }))
        })?;
        let sent = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(ttl)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(source) => {
                let connect = source.is_connect();
                let err = TransportError::Send { url, source };
                // Unreachable makes openraft back off; Network retries at once.
                return Err(if connect {
                    RPCError::Unreachable(Unreachable::new(&err))
                } else {
                    RPCError::Network(NetworkError::new(&err))
                });
            }
        };
        let status = response.status();
        if !status.is_success() {
            let err = TransportError::Status {
                url,
                status: status.as_u16(),
            };
            return Err(RPCError::Network(NetworkError::new(&err)));
        }
        let bytes = response.bytes().await.map_err(|source| {
            RPCError::Network(NetworkError::new(&TransportError::Send {
                url: url.clone(),
                source,
            }))
        })?;
        let answer: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&bytes).map_err(|source| {
                RPCError::Network(NetworkError::new(&TransportError::Decode { url, source }))
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        if let Some(log) = &self.log {
            rpc.leader_commit = clamp(rpc.leader_commit, log.durable_last());
        }
        self.call(APPEND, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(SNAPSHOT, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(VOTE, &rpc, option.hard_ttl()).await
    }
}

/// The commit index to send: `committed`, but no further than the leader's durable
/// log ends. An entry before that end is in the committed prefix, so it is committed.
fn clamp(committed: Option<LogId>, durable: Option<LogId>) -> Option<LogId> {
    match (committed, durable) {
        (Some(c), Some(d)) if d.index < c.index => Some(d),
        (Some(_), None) => None,
        (committed, _) => committed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::Vote;

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        // Bind, note the port, close it: nothing listens there any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let mut network = HttpNetwork::new().expect("client");
        let mut peer = network.new_client(2, &BasicNode::new(addr)).await;
        let vote = VoteRequest::new(Vote::new(1, 1), None);
        let answer = peer
            .vote(vote, RPCOption::new(Duration::from_secs(5)))
            .await;
        assert!(
            matches!(answer, Err(RPCError::Unreachable(_))),
            "{answer:?}"
        );
    }
}
