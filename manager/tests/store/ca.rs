//! The cluster CA for real over TLS on 127.0.0.1 (tokio-rustls): a manager with the
//! `ca` server configuration (client certificates optional) serves a tiny line protocol.
//! A node without a certificate sends a join request (token, CSR, node id) and gets a
//! certificate or a refusal; a node with a certificate is greeted with the identity the
//! manager saw. Every connection's outcome at the manager is reported to the test.

use api::cluster::NodeRole;
use manager::ca::{
    self, CaConfig, CaError, CaState, ClientAuth, IssuedCert, JoinToken, NodeIdentity, NodeKey,
    PeerIdentity, Revocations, TokenSecret,
};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const DAY: Duration = Duration::from_secs(24 * 3600);

#[derive(Serialize, Deserialize)]
struct JoinRequest {
    token: String,
    csr: String,
    node_id: String,
}

#[derive(Serialize, Deserialize)]
struct RenewRequest {
    csr: String,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Issued(IssuedCert),
    Refused(String),
    Peer(PeerIdentity),
}

/// What the manager made of one connection.
#[derive(Debug)]
enum Outcome {
    Issued(String),
    Refused(String),
    Greeted(PeerIdentity),
    Renewed(String),
    HandshakeFailed(String),
    Failed(String),
}

/// A manager: the CA state, its own manager certificate, the server task.
struct Manager {
    addr: SocketAddr,
    state: Arc<Mutex<CaState>>,
    revocations: Revocations,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Manager {
    async fn start(cluster_id: &str, client_auth: ClientAuth) -> Manager {
        let mut state = ca::init(cluster_id, &CaConfig::default(), SystemTime::now()).unwrap();
        let identity = self_join(&mut state, NodeRole::Manager, "m1");
        Manager::serve(state, &identity, client_auth).await
    }

    async fn serve(state: CaState, identity: &NodeIdentity, client_auth: ClientAuth) -> Manager {
        let revocations = Revocations::new(state.removed_nodes().clone());
        let config = ca::server_config(
            &ca::LiveIdentity::new(identity.clone()).unwrap(),
            revocations.clone(),
            client_auth,
        )
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(state));
        let (stop, stopped) = oneshot::channel();
        let (report, outcomes) = mpsc::unbounded_channel();
        let task = tokio::spawn(serve(listener, acceptor, state.clone(), report, stopped));
        Manager {
            addr,
            state,
            revocations,
            outcomes,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn token(&self, role: NodeRole) -> JoinToken {
        self.state.lock().unwrap().token(role).unwrap()
    }

    /// What the manager made of the next connection; a broken exchange fails the test.
    async fn outcome(&mut self) -> Outcome {
        match self.outcomes.recv().await {
            Some(Outcome::Failed(why)) => panic!("the manager failed a connection: {why}"),
            Some(outcome) => outcome,
            None => panic!("the manager stopped"),
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The initializing manager issues its own certificate with the manager token.
fn self_join(state: &mut CaState, role: NodeRole, id: &str) -> NodeIdentity {
    let key = NodeKey::generate().unwrap();
    let token = state.token(role).unwrap();
    let issued = state
        .issue(&token, &key.csr().unwrap(), id, SystemTime::now())
        .unwrap();
    NodeIdentity::new(key, &issued).unwrap()
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<Mutex<CaState>>,
    report: mpsc::UnboundedSender<Outcome>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let outcome = match accepted {
                    Ok((tcp, _)) => handle(&acceptor, tcp, &state).await,
                    Err(err) => Outcome::Failed(format!("accept: {err}")),
                };
                let _ = report.send(outcome);
            }
        }
    }
}

async fn handle(acceptor: &TlsAcceptor, tcp: TcpStream, state: &Mutex<CaState>) -> Outcome {
    let mut tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(err) => return Outcome::HandshakeFailed(err.to_string()),
    };
    let peer = match ca::peer_identity(tls.get_ref().1) {
        Ok(peer) => peer,
        Err(err) => return Outcome::Failed(err.to_string()),
    };
    if let Some(peer) = peer {
        // A node with a certificate: the handshake verified it; greet it, then renew its
        // certificate if it sends a request (or it just leaves).
        if let Err(err) = write_line(&mut tls, &Reply::Peer(peer.clone())).await {
            return Outcome::Failed(err.to_string());
        }
        let mut line = String::new();
        match BufReader::new(&mut tls).read_line(&mut line).await {
            Ok(n) if n > 0 => {}
            _ => return Outcome::Greeted(peer),
        }
        let Some(current) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
            return Outcome::Failed("no peer certificate".into());
        };
        let result = serde_json::from_str::<RenewRequest>(&line)
            .map_err(|err| err.to_string())
            .and_then(|request| {
                state
                    .lock()
                    .unwrap()
                    .renew(current, peer.role, &request.csr, SystemTime::now())
                    .map_err(|err| err.to_string())
            });
        let (reply, outcome) = match result {
            Ok(issued) => {
                let id = issued.node_id.clone();
                (Reply::Issued(issued), Outcome::Renewed(id))
            }
            Err(message) => (Reply::Refused(message.clone()), Outcome::Refused(message)),
        };
        return match write_line(&mut tls, &reply).await {
            Ok(()) => outcome,
            Err(err) => Outcome::Failed(err.to_string()),
        };
    }
    // No certificate: only a join request with a valid token gets anything.
    let mut line = String::new();
    let mut reader = BufReader::new(&mut tls);
    if let Err(err) = reader.read_line(&mut line).await {
        return Outcome::Failed(err.to_string());
    }
    let request: JoinRequest = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(err) => return Outcome::Failed(err.to_string()),
    };
    let result = JoinToken::parse(&request.token).and_then(|token| {
        state
            .lock()
            .unwrap()
            .issue(&token, &request.csr, &request.node_id, SystemTime::now())
    });
    let (reply, outcome) = match result {
        Ok(issued) => {
            let id = issued.node_id.clone();
            (Reply::Issued(issued), Outcome::Issued(id))
        }
        Err(err) => (
            Reply::Refused(err.to_string()),
            Outcome::Refused(err.to_string()),
        ),
    };
    match write_line(&mut tls, &reply).await {
        Ok(()) => outcome,
        Err(err) => Outcome::Failed(err.to_string()),
    }
}

async fn write_line<W: AsyncWriteExt + Unpin, T: Serialize>(
    out: &mut W,
    value: &T,
) -> std::io::Result<()> {
    let mut line = serde_json::to_string(value).map_err(std::io::Error::other)?;
    line.push('\n');
    out.write_all(line.as_bytes()).await?;
    out.flush().await
}

async fn connect(
    config: rustls::ClientConfig,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(ca::SERVER_NAME).map_err(std::io::Error::other)?;
    connector.connect(name, tcp).await
}

async fn read_reply<R: tokio::io::AsyncRead + Unpin>(input: R) -> std::io::Result<Reply> {
    let mut line = String::new();
    BufReader::new(input).read_line(&mut line).await?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

/// A node joins: its own key, a CSR, the token's pinned TLS connection.
async fn join(
    addr: SocketAddr,
    token: &JoinToken,
    node_id: &str,
) -> std::io::Result<(NodeKey, Reply)> {
    let key = NodeKey::generate().unwrap();
    let request = JoinRequest {
        token: token.to_string(),
        csr: key.csr().unwrap(),
        node_id: node_id.to_string(),
    };
    let mut tls = connect(ca::join_client_config(token).unwrap(), addr).await?;
    write_line(&mut tls, &request).await?;
    Ok((key, read_reply(&mut tls).await?))
}

async fn join_ok(manager: &mut Manager, role: NodeRole, node_id: &str) -> NodeIdentity {
    let (key, reply) = join(manager.addr, &manager.token(role), node_id)
        .await
        .unwrap();
    let Reply::Issued(issued) = reply else {
        panic!("join of {node_id} refused: {reply:?}");
    };
    assert!(matches!(manager.outcome().await, Outcome::Issued(id) if id == node_id));
    NodeIdentity::new(key, &issued).unwrap()
}

/// A node with a certificate connects and reads its greeting; also returns who the
/// manager is, as the node's side of the handshake verified it.
async fn hello(
    addr: SocketAddr,
    identity: &NodeIdentity,
) -> std::io::Result<(Reply, PeerIdentity)> {
    let mut tls = connect(
        ca::node_client_config(&ca::LiveIdentity::new(identity.clone()).unwrap()).unwrap(),
        addr,
    )
    .await?;
    let server = ca::peer_identity(tls.get_ref().1)
        .unwrap()
        .expect("the manager presented a certificate");
    Ok((read_reply(&mut tls).await?, server))
}

#[tokio::test]
async fn a_node_joins_over_the_pinned_ca_then_speaks_mutual_tls() {
    let mut manager = Manager::start("c1", ClientAuth::Optional).await;
    let node = join_ok(&mut manager, NodeRole::Worker, "n1").await;
    assert_eq!((node.node_id(), node.role()), ("n1", NodeRole::Worker));

    let (reply, server) = hello(manager.addr, &node).await.unwrap();
    let Reply::Peer(seen) = reply else {
        panic!("expected a greeting, got {reply:?}");
    };
    assert_eq!((seen.node_id.as_str(), seen.role), ("n1", NodeRole::Worker));
    assert_eq!(
        (server.node_id.as_str(), server.role),
        ("m1", NodeRole::Manager)
    );
    assert!(matches!(manager.outcome().await, Outcome::Greeted(peer) if peer.node_id == "n1"));

    // A second manager joins with the manager token and is seen as one.
    let other = join_ok(&mut manager, NodeRole::Manager, "m2").await;
    let (reply, _) = hello(manager.addr, &other).await.unwrap();
    assert!(matches!(reply, Reply::Peer(peer) if peer.role == NodeRole::Manager));
    assert!(matches!(manager.outcome().await, Outcome::Greeted(_)));
    manager.stop().await;
}

#[tokio::test]
async fn a_node_renews_its_certificate_over_mutual_tls_with_a_new_key() {
    let mut manager = Manager::start("c1", ClientAuth::Optional).await;
    let node = join_ok(&mut manager, NodeRole::Manager, "m2").await;

    let mut tls = connect(
        ca::node_client_config(&ca::LiveIdentity::new(node.clone()).unwrap()).unwrap(),
        manager.addr,
    )
    .await
    .unwrap();
    let mut reader = BufReader::new(&mut tls);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).await.unwrap();
    let new_key = NodeKey::generate().unwrap();
    let request = RenewRequest {
        csr: new_key.csr().unwrap(),
    };
    write_line(reader.get_mut(), &request).await.unwrap();
    let reply = read_reply(reader).await.unwrap();
    let Reply::Issued(renewed) = reply else {
        panic!("renewal refused: {reply:?}");
    };
    assert!(matches!(manager.outcome().await, Outcome::Renewed(id) if id == "m2"));
    assert_eq!(
        (renewed.node_id.as_str(), renewed.role),
        ("m2", NodeRole::Manager)
    );

    // The new certificate is for the new key only, and works.
    assert!(NodeIdentity::new(node.key().clone(), &renewed).is_err());
    let renewed = NodeIdentity::new(new_key, &renewed).unwrap();
    let (reply, _) = hello(manager.addr, &renewed).await.unwrap();
    assert!(
        matches!(reply, Reply::Peer(peer) if peer.node_id == "m2" && peer.role == NodeRole::Manager)
    );
    assert!(matches!(manager.outcome().await, Outcome::Greeted(_)));
    manager.stop().await;
}

#[tokio::test]
async fn a_wrong_token_secret_is_refused_with_a_clear_message() {
    let mut manager = Manager::start("c1", ClientAuth::Optional).await;
    let mut token = manager.token(NodeRole::Worker);
    token.secret = TokenSecret::generate().unwrap();
    let (_, reply) = join(manager.addr, &token, "n1").await.unwrap();
    let expected = "join token refused: the secret does not match the current worker token \
                    (was it rotated? ask for a new one with `orch token worker`)";
    assert!(
        matches!(&reply, Reply::Refused(message) if message == expected),
        "{reply:?}"
    );
    assert!(matches!(manager.outcome().await, Outcome::Refused(message) if message == expected));

    // Not a token at all: refused, saying what a token looks like.
    let mut tls = connect(
        ca::join_client_config(&manager.token(NodeRole::Worker)).unwrap(),
        manager.addr,
    )
    .await
    .unwrap();
    let request = JoinRequest {
        token: "SWMTKN-1-abc".into(),
        csr: NodeKey::generate().unwrap().csr().unwrap(),
        node_id: "n1".into(),
    };
    write_line(&mut tls, &request).await.unwrap();
    let reply = read_reply(&mut tls).await.unwrap();
    assert!(
        matches!(&reply, Reply::Refused(message) if message.contains("should start with ORCH1-")),
        "{reply:?}"
    );
    assert!(matches!(manager.outcome().await, Outcome::Refused(_)));
    manager.stop().await;
}

#[tokio::test]
async fn a_rotated_token_is_refused_and_its_successor_accepted() {
    let mut manager = Manager::start("c1", ClientAuth::Optional).await;
    let old = manager.token(NodeRole::Worker);
    let new = manager
        .state
        .lock()
        .unwrap()
        .rotate(NodeRole::Worker, TokenSecret::generate().unwrap())
        .unwrap();
    let (_, reply) = join(manager.addr, &old, "n1").await.unwrap();
    assert!(
        matches!(&reply, Reply::Refused(message) if message.contains("was it rotated?")),
        "{reply:?}"
    );
    assert!(matches!(manager.outcome().await, Outcome::Refused(_)));

    let (_, reply) = join(manager.addr, &new, "n1").await.unwrap();
    assert!(matches!(reply, Reply::Issued(_)), "{reply:?}");
    assert!(matches!(manager.outcome().await, Outcome::Issued(_)));
    manager.stop().await;
}

#[tokio::test]
async fn a_token_of_another_ca_fails_the_pinning_naming_both_cas() {
    let mut manager = Manager::start("c1", ClientAuth::Optional).await;
    let other = ca::init("c2", &CaConfig::default(), SystemTime::now()).unwrap();
    let token = other.token(NodeRole::Worker).unwrap();

    let err = join(manager.addr, &token, "n1").await.unwrap_err();
    let ours = manager.state.lock().unwrap().ca_cert().unwrap().digest();
    let found = CaError::find_in(&err).expect("the refusal carries the CA error");
    assert!(
        matches!(found, CaError::CaMismatch { presented, expected } if *presented == ours && *expected == token.ca),
        "{found}"
    );
    assert_eq!(
        found.to_string(),
        format!(
            "the manager's CA ({ours}) is not the CA of this token ({})",
            token.ca
        )
    );
    assert!(err.to_string().contains(&ours.to_string()), "{err}");
    // The node sent nothing: the manager only saw an aborted handshake.
    assert!(matches!(
        manager.outcome().await,
        Outcome::HandshakeFailed(_)
    ));
    manager.stop().await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused_as_expired() {
    let mut state = ca::init("c1", &CaConfig::default(), SystemTime::now()).unwrap();
    let identity = self_join(&mut state, NodeRole::Manager, "m1");
    // A certificate valid for one day, ten days ago.
    state.set_node_cert_validity(DAY);
    let key = NodeKey::generate().unwrap();
    let token = state.token(NodeRole::Worker).unwrap();
    let issued = state
        .issue(
            &token,
            &key.csr().unwrap(),
            "n1",
            SystemTime::now() - 10 * DAY,
        )
        .unwrap();
    let node = NodeIdentity::new(key, &issued).unwrap();
    let mut manager = Manager::serve(state, &identity, ClientAuth::Optional).await;

    // The node can tell by itself...
    let own = node.check(SystemTime::now()).unwrap_err();
    assert!(
        own.to_string()
            .starts_with("certificate of node n1 expired at "),
        "{own}"
    );
    // ...and the manager refuses it: the node gets a certificate_expired alert.
    let err = hello(manager.addr, &node).await.unwrap_err();
    assert!(err.to_string().contains("CertificateExpired"), "{err}");
    let Outcome::HandshakeFailed(message) = manager.outcome().await else {
        panic!("the handshake should fail");
    };
    assert!(message.contains("certificate expired"), "{message}");
    manager.stop().await;
}

#[tokio::test]
async fn a_removed_node_cannot_reconnect() {
    let mut manager = Manager::start("c1", ClientAuth::Optional).await;
    let gone = join_ok(&mut manager, NodeRole::Worker, "n1").await;
    let staying = join_ok(&mut manager, NodeRole::Worker, "n2").await;
    assert!(hello(manager.addr, &gone).await.is_ok());
    assert!(matches!(manager.outcome().await, Outcome::Greeted(_)));

    // Removal: the store's CA state changes, the shared set follows it.
    let removed = {
        let mut state = manager.state.lock().unwrap();
        assert!(state.remove_node("n1"));
        state.removed_nodes().clone()
    };
    manager.revocations.replace(removed);

    let err = hello(manager.addr, &gone).await.unwrap_err();
    assert!(err.to_string().contains("CertificateRevoked"), "{err}");
    let Outcome::HandshakeFailed(message) = manager.outcome().await else {
        panic!("the handshake should fail");
    };
    assert!(message.to_lowercase().contains("revoked"), "{message}");

    // It cannot come back under the same id with a token either.
    let (_, reply) = join(manager.addr, &manager.token(NodeRole::Worker), "n1")
        .await
        .unwrap();
    assert!(
        matches!(&reply, Reply::Refused(message) if message == "node n1 was removed from the cluster"),
        "{reply:?}"
    );
    assert!(matches!(manager.outcome().await, Outcome::Refused(_)));

    // Other nodes are not affected.
    assert!(hello(manager.addr, &staying).await.is_ok());
    assert!(matches!(manager.outcome().await, Outcome::Greeted(peer) if peer.node_id == "n2"));
    manager.stop().await;
}

#[tokio::test]
async fn a_joining_node_trusts_only_a_manager() {
    // A server holding a worker certificate of the right CA: the pinning accepts the CA
    // but not the role.
    let mut state = ca::init("c1", &CaConfig::default(), SystemTime::now()).unwrap();
    let worker = self_join(&mut state, NodeRole::Worker, "w1");
    let token = state.token(NodeRole::Worker).unwrap();
    let mut manager = Manager::serve(state, &worker, ClientAuth::Optional).await;
    let err = join(manager.addr, &token, "n1").await.unwrap_err();
    assert!(
        matches!(CaError::find_in(&err), Some(CaError::NotAManager { node, .. }) if node == "w1"),
        "{err}"
    );
    assert!(matches!(
        manager.outcome().await,
        Outcome::HandshakeFailed(_)
    ));
    manager.stop().await;
}

#[tokio::test]
async fn a_server_requiring_certificates_refuses_a_node_without_one() {
    let mut manager = Manager::start("c1", ClientAuth::Required).await;
    let token = manager.token(NodeRole::Worker);
    // The join configuration presents no certificate: the manager ends the handshake.
    let refused = join(manager.addr, &token, "n1").await;
    assert!(refused.is_err(), "{refused:?}");
    let Outcome::HandshakeFailed(message) = manager.outcome().await else {
        panic!("the handshake should fail");
    };
    assert!(message.contains("certificate"), "{message}");
    manager.stop().await;
}
