//! Raft membership through the nodes API, with four managers on 127.0.0.1 over real
//! TLS: `node rm --force` of a voting manager takes it out of the raft group and revokes
//! it; with one of three voters stopped, another can leave neither way (the two left
//! would not make a quorum), and the answer says why; demoting the stopped one leaves
//! two voters that still commit writes, and its certificate opens no raft RPC.

use crate::common::TempDir;
use crate::daemon::{loopback, start};
use crate::nodes::Admin;
use manager::server::{Layout, Manager, node_http_client};
use reqwest::Method;
use serde_json::{Value, json};

fn voters(manager: &Manager) -> usize {
    manager
        .store()
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .count()
}

/// A raft RPC (a vote request nobody would grant) from manager `name`'s certificate as
/// kept in its data directory: the HTTP status, or the connection error.
async fn raft_rpc(dir: &TempDir, name: &str, addr: &str) -> Result<u16, String> {
    let layout = Layout::new(&dir.path().join(name));
    let node = layout.node().expect("read").expect("joined");
    let http = node_http_client(&layout.identity(&node).expect("identity")).expect("client");
    http.post(format!("https://{addr}/raft/vote"))
        .json(&json!({}))
        .send()
        .await
        .map(|answer| answer.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn managers_leave_the_raft_group_by_demotion_or_forced_removal_only_with_a_quorum() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("membership");
    let (m1, tokens) = start(&dir).await;
    let addr = m1.advertise().to_owned();
    let mut others = Vec::new();
    for name in ["m2", "m3", "m4"] {
        let joined = Manager::join(loopback(&dir, name), &addr, &tokens.manager)
            .await
            .expect("a manager joins");
        others.push(joined);
    }
    let admin = Admin::new(&m1, &tokens.api);
    assert_eq!(voters(&m1), 4);
    let m4 = others.pop().expect("m4");
    let m3 = others.pop().expect("m3");
    let m2 = others.pop().expect("m2");

    // A forced removal of a voting manager takes it out of the raft group and revokes it.
    let path = format!("/v1/nodes/{}?force=true", m4.node_id());
    let (status, body) = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(voters(&m1), 3);
    let refused = raft_rpc(&dir, "m4", &addr).await;
    assert!(
        matches!(&refused, Err(e) if e.contains("Revoked")),
        "{refused:?}"
    );
    m4.shutdown().await;

    // With m3 stopped, two of three voters answer: m2 can leave neither way (one of
    // the two voters left would answer).
    let m3_id = m3.node_id().to_owned();
    m3.shutdown().await;
    let (status, body) = admin
        .put_node(m2.node_id(), json!({"role": "worker"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("only 2 of the 3 voters"), "{body}");
    let path = format!("/v1/nodes/{}?force=true", m2.node_id());
    let (status, body) = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("majority"), "{body}");
    assert_eq!(voters(&m1), 3);

    // Demoting the stopped one leaves two voters, which still commit writes.
    let (status, body) = admin.put_node(&m3_id, json!({"role": "worker"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin.call(Method::GET, "/v1/cluster", None).await;
    assert_eq!(status, 200, "{body}");
    let members = body["members"].as_array().expect("members").clone();
    let voting = members.iter().filter(|m| m["voter"] == true).count();
    assert_eq!(voting, 2, "{body}");
    assert!(!members.iter().any(|m| m["node_id"] == m3_id), "{body}");
    let (status, body) = admin
        .put_node(m2.node_id(), json!({"labels": {"zone": "b"}}))
        .await;
    assert_eq!(status, 200, "a write commits with two voters: {body}");
    // The demoted manager's certificate no longer opens raft RPCs.
    assert_eq!(raft_rpc(&dir, "m3", &addr).await, Ok(401));
    m2.shutdown().await;
    m1.shutdown().await;
}
