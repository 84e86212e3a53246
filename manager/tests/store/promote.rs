//! Promotion of a worker through a real manager on 127.0.0.1 over real TLS: the
//! session tells the worker its new role, its renewal loop gets a manager certificate
//! and the cluster's data key at once and ends, and the manager it then starts from its
//! own data directory, with the same live identity, becomes a voting raft member that
//! serves the API and commits writes.

use crate::common::TempDir;
use crate::daemon::{loopback, start};
use crate::nodes::Admin;
use api::client::managers::post;
use api::cluster::{NodeDescription, NodeRole, NodeState};
use api::session::{Heartbeat, SessionInfo, SessionOpen};
use manager::ca::LiveIdentity;
use manager::server::renewal::{Renewal, RenewalEnd};
use manager::server::{Layout, Manager, client, live_http_client};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn a_promoted_worker_renews_as_a_manager_and_joins_the_raft_group() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("promote");
    let (m1, tokens) = start(&dir).await;
    let addr = m1.advertise().to_owned();
    let admin = Admin::new(&m1, &tokens.api);

    // A worker with a session.
    let joined = client::join(&addr, &tokens.worker, "w1", None)
        .await
        .expect("join");
    let layout = Layout::new(&dir.path().join("w1"));
    let node = joined.keep(&layout).expect("keep the identity");
    layout
        .save_managers(&joined.response.managers)
        .expect("keep the managers");
    let live = LiveIdentity::new(layout.identity(&node).expect("identity")).expect("live");
    let http = live_http_client(&live).expect("client");
    let open = SessionOpen {
        description: NodeDescription {
            hostname: "w1".to_owned(),
            ..NodeDescription::default()
        },
        addr: Some("127.0.0.9".to_owned()),
    };
    let info: SessionInfo = post(&http, &addr, "/v1/session", "open", &open)
        .await
        .expect("open a session");
    assert_eq!(info.role, Some(NodeRole::Worker));

    let (status, body) = admin
        .put_node(&node.node_id, json!({"role": "manager"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let beat = Heartbeat {
        session_id: info.session_id.clone(),
    };
    let info: SessionInfo = post(&http, &addr, "/v1/session/heartbeat", "beat", &beat)
        .await
        .expect("heartbeat");
    assert_eq!(info.role, Some(NodeRole::Manager), "the session says so");

    // The announced role makes the renewal happen now, not in 60 days.
    let (announce, announced) = tokio::sync::watch::channel(None);
    let managers = layout.clone();
    let renewal = Renewal {
        live: live.clone(),
        layout: layout.clone(),
        managers: Arc::new(move || managers.managers().unwrap_or_default()),
        announced: Some(announced),
    };
    let running = tokio::spawn(renewal.run(|_| {}));
    announce.send_replace(info.role);
    let end = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("the renewal follows the role at once")
        .expect("the loop");
    let RenewalEnd::Promoted(identity) = end else {
        panic!("expected a promotion: {end:?}");
    };
    assert_eq!(identity.role(), NodeRole::Manager);
    assert_eq!(live.get().role(), NodeRole::Manager);
    layout
        .data_key()
        .expect("the data key came with the certificate");

    // The node starts its manager from its own data directory.
    let m2 = Manager::promote(loopback(&dir, "w1"), live.clone())
        .await
        .expect("the promoted node's manager joins");
    let voters = m1
        .store()
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .count();
    assert_eq!(voters, 2);
    let via_m2 = Admin::new(&m2, &tokens.api);
    let (status, body) = via_m2
        .put_node(&node.node_id, json!({"labels": {"promoted": "yes"}}))
        .await;
    assert_eq!(status, 200, "a write through the new manager: {body}");
    // m2 applies what the leader committed (a follower's view may lag a moment).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = m2
            .store()
            .view(|s| {
                s.nodes.get(&node.node_id).map(|n| {
                    let status = (n.status.state, n.status.addr.clone());
                    (n.spec.role, status, n.meta.labels.clone())
                })
            })
            .value
            .expect("the node, replicated to m2");
        if seen.2.contains_key("promoted") || tokio::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(seen.0, NodeRole::Manager);
    assert_eq!(
        seen.1,
        (NodeState::Ready, Some("127.0.0.9".to_owned())),
        "the agent's address stays the node's (the overlay uses it)"
    );
    assert_eq!(seen.2.get("promoted").map(String::as_str), Some("yes"));
    // Its agent's session goes on with the same identity.
    let info: Result<SessionInfo, _> =
        post(&http, &addr, "/v1/session/heartbeat", "beat", &beat).await;
    info.expect("the session is still open");
    m2.shutdown().await;
    m1.shutdown().await;
}
