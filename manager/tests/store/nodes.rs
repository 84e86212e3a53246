//! The cluster's nodes through a real manager on 127.0.0.1 over real TLS, as an admin
//! (bearer token, CA pinned) and as the nodes themselves: join tokens are rotated and
//! the old one refused while joined nodes keep their sessions; labels and availability
//! round-trip through `PUT /v1/nodes/{id}` and role changes are refused where orch
//! cannot make them true; a removed node's certificate is refused and its heartbeats
//! do not bring it back.

use crate::common::TempDir;
use crate::daemon::start;
use api::client::ClientError;
use api::client::managers::post;
use api::cluster::{Availability, Node, NodeDescription, NodeState};
use api::error::{ErrorCode, ErrorEnvelope};
use api::session::{Heartbeat, SessionInfo, SessionOpen};
use manager::ca::{CaCert, NodeIdentity, pinned_client_config};
use manager::http::tokens::JoinTokens;
use manager::server::{InitTokens, Layout, Manager, ServerError, client, node_http_client};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An admin of the API: the bearer token `init` printed, the CA pinned.
pub(crate) struct Admin {
    http: reqwest::Client,
    addr: String,
    token: String,
}

impl Admin {
    pub(crate) fn new(manager: &Manager, token: &str) -> Admin {
        let ca = CaCert::from_pem(&manager.ca_cert_pem()).expect("CA certificate");
        let mut tls = pinned_client_config(ca.digest()).expect("TLS");
        tls.alpn_protocols = vec![b"h2".to_vec()];
        Admin {
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .build()
                .expect("client"),
            addr: manager.advertise().to_owned(),
            token: token.to_owned(),
        }
    }

    /// The status and JSON body of a call.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("https://{}{path}", self.addr))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer = req.send().await.expect("request");
        let status = answer.status().as_u16();
        let body = answer.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub(crate) async fn node(&self, id: &str) -> Node {
        let (status, body) = self
            .call(Method::GET, &format!("/v1/nodes/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).expect("a node")
    }

    /// `PUT /v1/nodes/{id}` of `change`, naming the version just read.
    pub(crate) async fn put_node(&self, id: &str, change: Value) -> (u16, Value) {
        let read = self.node(id).await;
        let path = format!("/v1/nodes/{id}?version={}", read.meta.version);
        self.call(Method::PUT, &path, Some(change)).await
    }

    /// `DELETE /v1/nodes/{id}`, forced or not.
    async fn remove(&self, id: &str, force: bool) -> (u16, Value) {
        let path = format!("/v1/nodes/{id}?force={force}");
        self.call(Method::DELETE, &path, None).await
    }

    /// `GET path` with `client` (a node's): the status.
    async fn status_for(&self, client: &reqwest::Client, path: &str) -> u16 {
        let url = format!("https://{}{path}", self.addr);
        client
            .get(url)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }
}

/// A 409 whose message says `what`.
fn refused((status, body): (u16, Value), what: &str) {
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains(what), "{what:?} in {body}");
}

/// A manager made by `init` in a new directory, and its admin.
async fn setup(label: &str) -> (TempDir, Manager, InitTokens, Admin) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new(label);
    let (manager, init) = start(&dir).await;
    let admin = Admin::new(&manager, &init.api);
    (dir, manager, init, admin)
}

/// A worker that joined and holds a session.
struct Worker {
    id: String,
    identity: NodeIdentity,
    /// Its client (one pool of connections).
    http: reqwest::Client,
    session: String,
}

/// A worker that joined with `token` and opened a session.
async fn worker(addr: &str, token: &str, host: &str) -> Worker {
    let joined = client::join(addr, token, host, None).await.expect("join");
    let identity = NodeIdentity::new(joined.key.clone(), &joined.issued()).expect("identity");
    let http = node_http_client(&identity).expect("client");
    let open = SessionOpen {
        description: NodeDescription {
            hostname: host.to_owned(),
            engine_version: "test".to_owned(),
            ..NodeDescription::default()
        },
        addr: None,
    };
    let info: SessionInfo = post(&http, addr, "/v1/session", "open", &open)
        .await
        .expect("open a session");
    Worker {
        id: joined.response.node_id,
        identity,
        http,
        session: info.session_id,
    }
}

async fn beat(
    http: &reqwest::Client,
    addr: &str,
    session: &str,
) -> Result<SessionInfo, ClientError> {
    let beat = Heartbeat {
        session_id: session.to_owned(),
    };
    post(http, addr, "/v1/session/heartbeat", "beat", &beat).await
}

fn message(body: &Value) -> String {
    serde_json::from_value::<ErrorEnvelope>(body.clone())
        .map(|e| e.error.message)
        .unwrap_or_else(|_| body.to_string())
}

#[tokio::test]
async fn a_rotated_worker_token_is_refused_and_joined_nodes_keep_working() {
    let (_dir, manager, init, admin) = setup("tokens").await;
    let addr = manager.advertise().to_owned();

    let (status, body) = admin.call(Method::GET, "/v1/cluster/tokens", None).await;
    assert_eq!(status, 200, "{body}");
    let before: JoinTokens = serde_json::from_value(body).expect("tokens");
    assert_eq!(before.worker, init.worker);
    assert_eq!(before.manager, init.manager);
    assert_eq!(before.managers, vec![addr.clone()]);

    let Worker {
        id: node,
        http,
        session,
        ..
    } = worker(&addr, &init.worker, "w1").await;
    // A worker's certificate may neither read nor rotate the tokens.
    assert_eq!(admin.status_for(&http, "/v1/cluster/tokens").await, 403);
    let rotate = http
        .post(format!("https://{addr}/v1/cluster/tokens/rotate"))
        .json(&json!({"role": "worker"}))
        .send()
        .await
        .expect("request");
    assert_eq!(rotate.status().as_u16(), 403);

    let (status, body) = admin
        .call(
            Method::POST,
            "/v1/cluster/tokens/rotate",
            Some(json!({"role": "worker"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after: JoinTokens = serde_json::from_value(body).expect("tokens");
    assert_ne!(after.worker, before.worker);
    assert_eq!(
        after.manager, before.manager,
        "only the worker token rotates"
    );
    let (_, body) = admin.call(Method::GET, "/v1/cluster/tokens", None).await;
    assert_eq!(body["worker"], after.worker.as_str());
    let raw = admin
        .http
        .get(format!("https://{addr}/v1/cluster/tokens"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("request");
    assert_eq!(
        raw.headers()["cache-control"],
        "no-store",
        "secrets are not cached"
    );

    // The old token is refused, saying it may have been rotated; the new one works.
    match client::join(&addr, &before.worker, "w2", None).await {
        Err(ServerError::Refused { error, .. }) => {
            assert_eq!(error.code, ErrorCode::Unauthorized, "{error:?}");
            assert!(error.message.contains("rotated"), "{}", error.message);
        }
        other => panic!("the rotated token must be refused: {:?}", other.err()),
    }
    worker(&addr, &after.worker, "w3").await;

    // The node that joined before keeps its session, on its connection and on a new one.
    beat(&http, &addr, &session).await.expect("heartbeat");
    let joined_again = manager.store().view(|s| s.nodes.get(&node).is_some()).value;
    assert!(joined_again);
    let (status, body) = admin
        .call(
            Method::POST,
            "/v1/cluster/tokens/rotate",
            Some(json!({"role": "janitor"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    manager.shutdown().await;
}

#[tokio::test]
async fn node_labels_and_availability_round_trip_and_roles_change_only_honestly() {
    let (_dir, manager, init, admin) = setup("node-update").await;
    let addr = manager.advertise().to_owned();
    let node = worker(&addr, &init.worker, "w1").await.id;

    let read = admin.node(&node).await;
    let path = format!("/v1/nodes/{node}?version={}", read.meta.version);
    let change = json!({"labels": {"zone": "a", "ssd": ""}, "availability": "drain"});
    let (status, body) = admin.call(Method::PUT, &path, Some(change.clone())).await;
    assert_eq!(status, 200, "{body}");
    let got = admin.node(&node).await;
    assert_eq!(got.meta.labels.get("zone").map(String::as_str), Some("a"));
    assert_eq!(got.meta.labels.get("ssd").map(String::as_str), Some(""));
    assert_eq!(got.spec.availability, Availability::Drain);
    assert_eq!(got.status.state, NodeState::Ready, "the status is kept");

    // The version read is required and checked.
    let (status, _) = admin
        .call(
            Method::PUT,
            &format!("/v1/nodes/{node}"),
            Some(change.clone()),
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = admin.call(Method::PUT, &path, Some(change)).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["details"]["actual_version"].is_string(),
        "{body}"
    );

    // The last manager is not demoted.
    let demote = admin
        .put_node(manager.node_id(), json!({"role": "worker"}))
        .await;
    refused(demote, "last manager");
    manager.shutdown().await;
}

#[tokio::test]
async fn a_removed_node_is_refused_at_its_next_connection_and_not_recreated() {
    let (_dir, manager, init, admin) = setup("node-rm").await;
    let addr = manager.advertise().to_owned();
    let Worker {
        id: node,
        identity,
        http,
        session,
    } = worker(&addr, &init.worker, "w1").await;

    // A ready node needs force; the last manager never leaves.
    refused(admin.remove(&node, false).await, "--force");
    refused(admin.remove(manager.node_id(), true).await, "last manager");
    let (status, body) = admin.remove(&node, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["id"], node.as_str());

    // The connection it held is cut (a request racing the cut is refused with 403).
    match beat(&http, &addr, &session).await {
        Err(ClientError::Http { .. }) => {}
        Err(e) if e.code() == Some(ErrorCode::PermissionDenied) => {
            assert!(e.to_string().contains("removed"), "{e}");
        }
        other => panic!("a removed node's heartbeat must fail: {other:?}"),
    }

    // A new connection is refused at the TLS handshake (the revocation reaches the
    // verifier right after the commit; until then the request is refused as above).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fresh = node_http_client(&identity).expect("client");
        let open = SessionOpen {
            description: NodeDescription::default(),
            addr: None,
        };
        match post::<_, SessionInfo>(&fresh, &addr, "/v1/session", "open", &open).await {
            Err(ClientError::Http { .. }) => break,
            Err(e) if e.code() == Some(ErrorCode::PermissionDenied) => {}
            other => panic!("a removed node must not open a session: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the removed node's certificate still passes the TLS handshake"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Heartbeats keep coming for longer than the grace period: the node stays gone.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let _ = beat(&http, &addr, &session).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exists = manager.store().view(|s| s.nodes.get(&node).is_some()).value;
    assert!(!exists, "a removed node must not come back");
    manager.shutdown().await;
}

#[tokio::test]
async fn a_demoted_manager_leaves_the_raft_group_and_can_then_be_removed() {
    let (dir, m1, init, admin) = setup("demote").await;
    let addr = m1.advertise().to_owned();
    let config = crate::daemon::loopback(&dir, "m2");
    let m2 = Manager::join(config, &addr, &init.manager)
        .await
        .expect("a second manager joins");
    let m2_id = m2.node_id().to_owned();
    let voters = |m: &Manager| -> Vec<u64> {
        m.store()
            .metrics()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    };
    assert_eq!(voters(&m1).len(), 2);
    let layout = Layout::new(&dir.path().join("m2"));
    let node_file = layout.node().expect("node file").expect("joined");
    let m2_http =
        node_http_client(&layout.identity(&node_file).expect("identity")).expect("client");
    let status = admin.status_for(&m2_http, "/v1/nodes").await;
    assert_eq!(status, 200, "a manager's certificate is an admin's");

    // The leader does not demote itself.
    let demote_leader = admin
        .put_node(m1.node_id(), json!({"role": "worker"}))
        .await;
    refused(demote_leader, "leads the raft group");
    // A raft member is not removed without force: it is demoted first.
    refused(admin.remove(&m2_id, false).await, "orch node demote");

    let (status, body) = admin.put_node(&m2_id, json!({"role": "worker"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["spec"]["role"], "worker");
    assert_eq!(voters(&m1), vec![m1.store().id()], "m2 left the raft group");
    let status = admin.status_for(&m2_http, "/v1/nodes").await;
    assert_eq!(
        status, 403,
        "a demoted manager's certificate counts as a worker's"
    );

    assert_eq!(body["status"]["state"], "down", "{body}");
    let (status, body) = admin.remove(&m2_id, false).await;
    assert_eq!(status, 200, "{body}");
    m2.shutdown().await;
    // The cluster goes on with its one manager.
    let (status, body) = admin.call(Method::GET, "/v1/cluster/tokens", None).await;
    assert_eq!(status, 200, "{body}");
    m1.shutdown().await;
}
