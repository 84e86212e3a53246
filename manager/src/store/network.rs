//! Raft RPCs between managers: JSON over HTTP/1.1 POST, an axum router for the server
//! side and, for the sending side, one connection per peer driven by the task that
//! sends (hyper's connection API, mutual TLS with the cluster CA in a manager).
//!
//! Endpoints (body: the openraft request; answer: `Result<response, RaftError>`):
//! `POST /raft/append`, `POST /raft/vote`, `POST /raft/snapshot`.

use super::log_store::LogDisk;
use super::types::{LogId, NodeId, Raft, TypeConfig};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
    #[error("connect to {addr} for raft RPCs: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connect to {addr} for raft RPCs: no answer within {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    #[error("{addr} is not a host:port a TLS name can be made of")]
    Name { addr: String },
    #[error("HTTP on the raft connection to {addr}: {source}")]
    Http {
        addr: String,
        #[source]
        source: hyper::Error,
    },
    #[error("raft RPC {path} to {addr}: no answer within {after:?}")]
    Timeout {
        addr: String,
        path: &'static str,
        after: Duration,
    },
    #[error("the raft connection to {addr} was closed")]
    Closed { addr: String },
    #[error("raft RPC to {addr}: {source}")]
    Request {
        addr: String,
        #[source]
        source: hyper::http::Error,
    },
    #[error("raft RPC {path} to {addr} answered HTTP {status}")]
    Status {
        addr: String,
        path: &'static str,
        status: u16,
    },
    #[error("decode raft RPC answer from {addr}: {source}")]
    Decode {
        addr: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("encode raft RPC to {addr}: {source}")]
    Encode {
        addr: String,
        #[source]
        source: serde_json::Error,
    },
}

/// How raft RPCs reach peers: mutual TLS with the node's identity, or (`None`, in
/// tests of the store alone) plain HTTP.
#[derive(Clone, Debug)]
pub struct Transport {
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Creates one [`PeerClient`] per target.
#[derive(Clone)]
pub struct HttpNetwork {
    tls: Option<TlsConnector>,
    log: Option<LogDisk>,
}

impl HttpNetwork {
    /// A network over plain HTTP (tests of the store alone).
    pub fn new() -> HttpNetwork {
        HttpNetwork::with(Transport { tls: None })
    }

    /// A network over `transport`.
    pub fn with(transport: Transport) -> HttpNetwork {
        HttpNetwork {
            tls: transport.tls.map(TlsConnector::from),
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

impl Default for HttpNetwork {
    fn default() -> Self {
        HttpNetwork::new()
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        // No connection here: the first RPC connects.
        PeerClient {
            target,
            addr: node.addr.clone(),
            tls: self.tls.clone(),
            conn: None,
            log: self.log.clone(),
        }
    }
}

/// A stream to a peer, TLS or not.
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// One HTTP/1.1 connection to a peer. Its I/O runs on the task that sends an RPC
/// (replication sends one at a time to each peer), so an RPC costs no hand-off to a
/// connection task and back.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    io: Pin<Box<ConnIo>>,
}

/// The I/O side of a [`Conn`]: polled while an RPC waits for its answer.
type ConnIo = http1::Connection<TokioIo<Box<dyn Stream>>, Full<Bytes>>;

/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Sends raft RPCs to one peer over a connection of its own.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    tls: Option<TlsConnector>,
    conn: Option<Conn>,
    log: Option<LogDisk>,
}

type RpcResult<Resp, E> = Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn connect(&self) -> Result<Conn, TransportError> {
        let addr = self.addr.clone();
        let tcp = within_connect_timeout(&addr, TcpStream::connect(&addr)).await?;
        // Small requests and answers, one at a time: no waiting for more to send.
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &self.tls {
            Some(tls) => {
                let name = server_name(&addr)
                    .ok_or_else(|| TransportError::Name { addr: addr.clone() })?;
                Box::new(within_connect_timeout(&addr, tls.connect(name, tcp)).await?)
            }
            None => Box::new(tcp),
        };
        let (sender, io) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| TransportError::Http { addr, source })?;
        Ok(Conn {
            sender,
            io: Box::pin(io),
        })
    }

    /// POST `body` to `path` and read the whole answer, on this task.
    async fn post(
        &mut self,
        path: &'static str,
        body: Vec<u8>,
        ttl: Duration,
    ) -> Result<Bytes, (bool, TransportError)> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connect().await.map_err(|e| (true, e))?,
        };
        let addr = self.addr.clone();
        let http = |source| TransportError::Http {
            addr: addr.clone(),
            source,
        };
        let request = Request::post(path)
            .header(header::HOST, &self.addr)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)));
        let request = request.map_err(|source| {
            let addr = addr.clone();
            (false, TransportError::Request { addr, source })
        })?;
        let exchange = async {
            conn.sender.ready().await.map_err(http)?;
            let response = conn.sender.send_request(request).await.map_err(http)?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(http)?;
            Ok::<_, TransportError>((status, body.to_bytes()))
        };
        let exchanged = tokio::time::timeout(ttl, async {
            tokio::select! {
                answer = exchange => answer,
                // The connection ended before the answer did.
                ended = conn.io.as_mut() => Err(match ended {
                    Ok(()) => TransportError::Closed { addr: addr.clone() },
                    Err(source) => http(source),
                }),
            }
        })
        .await;
        let (status, bytes) = match exchanged {
            Ok(Ok(answer)) => answer,
            // The connection is dropped: a late answer must not be read as the next.
            Ok(Err(e)) => return Err((false, e)),
            Err(_) => {
                return Err((
                    false,
                    TransportError::Timeout {
                        addr,
                        path,
                        after: ttl,
                    },
                ));
            }
        };
        self.conn = Some(conn);
        if !status.is_success() {
            return Err((
                false,
                TransportError::Status {
                    addr,
                    path,
                    status: status.as_u16(),
                },
            ));
        }
        Ok(bytes)
    }

    async fn call<Req, Resp, E>(
        &mut self,
        path: &'static str,
        req: &Req,
        ttl: Duration,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(req).map_err(|source| {
            RPCError::Network(NetworkError::new(&TransportError::Encode {
                addr: self.addr.clone(),
                source,
            }))
        })?;
        let bytes = match self.post(path, body, ttl).await {
            Ok(bytes) => bytes,
            // Unreachable makes openraft back off; Network retries at once.
            Err((true, e)) => return Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err((false, e)) => return Err(RPCError::Network(NetworkError::new(&e))),
        };
        let answer: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&bytes).map_err(|source| {
                RPCError::Network(NetworkError::new(&TransportError::Decode {
                    addr: self.addr.clone(),
                    source,
                }))
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// `step` of connecting to `addr`, given [`CONNECT_TIMEOUT`].
async fn within_connect_timeout<T>(
    addr: &str,
    step: impl Future<Output = std::io::Result<T>>,
) -> Result<T, TransportError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, step).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(source)) => Err(TransportError::Connect {
            addr: addr.to_owned(),
            source,
        }),
        Err(_) => Err(TransportError::ConnectTimeout {
            addr: addr.to_owned(),
            after: CONNECT_TIMEOUT,
        }),
    }
}

/// The TLS name of `addr` (`host:port`): its IP address, or its host name.
fn server_name(addr: &str) -> Option<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => Some(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_owned()).ok(),
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
        let mut network = HttpNetwork::new();
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
