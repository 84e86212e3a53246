//! The manager daemon in this process over real TLS on 127.0.0.1: a worker joins with
//! its token, opens a session, heartbeats, and is marked down when it stops; a wrong
//! secret and callers without the right certificate are refused.

use crate::common::TempDir;
use crate::common::node::test_config;
use api::client::ClientError;
use api::client::managers::post;
use api::cluster::{NodeDescription, NodeState};
use api::error::ErrorCode;
use api::session::{Heartbeat, SessionInfo, SessionOpen};
use manager::ca::{CaConfig, JoinToken, NodeIdentity, TokenSecret};
use manager::server::{Manager, ManagerConfig, ServerError, client, node_http_client};
use manager::store::ClusterSettings;
use std::time::{Duration, Instant};

pub(crate) async fn start(dir: &TempDir) -> (Manager, manager::server::InitTokens) {
    start_with(dir, CaConfig::default()).await
}

/// A manager on a free loopback port keeping its data in `dir/name`.
pub(crate) fn loopback(dir: &TempDir, name: &str) -> ManagerConfig {
    ManagerConfig {
        data_dir: dir.path().join(name),
        listen: "127.0.0.1:0".to_owned(),
        advertise: None,
        socket: None,
        store: test_config(),
    }
}

/// A first manager whose node certificates are as `ca` says.
pub(crate) async fn start_with(
    dir: &TempDir,
    ca: CaConfig,
) -> (Manager, manager::server::InitTokens) {
    let config = loopback(dir, "m1");
    let settings = ClusterSettings {
        heartbeat_ms: 200,
        node_down_grace_ms: 1000,
        ..ClusterSettings::default()
    };
    Manager::init(config, settings, ca).await.expect("init")
}

fn state(manager: &Manager, node: &str) -> (NodeState, String) {
    manager
        .store()
        .view(|s| {
            s.nodes
                .get(node)
                .map(|n| (n.status.state, n.status.message.clone().unwrap_or_default()))
        })
        .value
        .expect("the node exists")
}

#[tokio::test]
async fn a_worker_joins_beats_and_is_marked_down_when_silent() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("daemon");
    let (manager, tokens) = start(&dir).await;
    let addr = manager.advertise().to_owned();

    // A token with another secret is refused by name; nothing is created.
    let mut wrong = JoinToken::parse(&tokens.worker).expect("token");
    wrong.secret = TokenSecret::generate().expect("secret");
    let refused = client::join(&addr, &wrong.to_string(), "w0", None).await;
    match refused {
        Err(ServerError::Refused { error, .. }) => {
            assert_eq!(error.code, ErrorCode::Unauthorized, "{error:?}");
            assert!(error.message.contains("worker"), "{}", error.message);
        }
        other => panic!("a wrong secret must be refused: {:?}", other.err()),
    }
    assert_eq!(manager.store().view(|s| s.nodes.len()).value, 1);

    let joined = client::join(&addr, &tokens.worker, "w1", None)
        .await
        .expect("join");
    let node = joined.response.node_id.clone();
    assert_eq!(state(&manager, &node).0, NodeState::Unknown);
    let identity = NodeIdentity::new(joined.key.clone(), &joined.issued()).expect("identity");
    let http = node_http_client(&identity).expect("client");

    // A worker certificate opens sessions but has no business in the control API.
    let forbidden = http
        .get(format!("https://{addr}/v1/nodes"))
        .send()
        .await
        .expect("request");
    assert_eq!(forbidden.status().as_u16(), 403);

    let open = SessionOpen {
        description: NodeDescription {
            hostname: "w1".to_owned(),
            engine_version: "test".to_owned(),
            ..NodeDescription::default()
        },
        addr: Some("10.0.0.9".to_owned()),
    };
    let info: SessionInfo = post(&http, &addr, "/v1/session", "open", &open)
        .await
        .expect("open a session");
    assert_eq!(info.heartbeat_ms, 200);
    assert_eq!(info.managers, vec![addr.clone()]);
    assert_eq!(state(&manager, &node).0, NodeState::Ready);

    // Beating for three grace periods keeps it ready.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let beat = Heartbeat {
            session_id: info.session_id.clone(),
        };
        let _: SessionInfo = post(&http, &addr, "/v1/session/heartbeat", "beat", &beat)
            .await
            .expect("heartbeat");
        assert_eq!(state(&manager, &node).0, NodeState::Ready);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stale = Heartbeat {
        session_id: "not-this-one".to_owned(),
    };
    let answer: Result<SessionInfo, ClientError> =
        post(&http, &addr, "/v1/session/heartbeat", "beat", &stale).await;
    assert_eq!(
        answer.err().and_then(|e| e.code()),
        Some(ErrorCode::NotFound)
    );

    // Silence: down after the grace period, saying why.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (now, message) = state(&manager, &node);
        if now == NodeState::Down {
            assert!(message.contains("no heartbeat"), "{message}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {now:?} after 10 s of silence"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    manager.shutdown().await;
}
