//! Three managers: a follower forwards writes and linearizable reads to the leader,
//! serves `?stale=true` reads itself, never forwards twice, and without a forwarding
//! client answers 503 naming the leader.

use super::{Http, TOKEN, api_router, client};
use crate::common::TempDir;
use crate::common::node::{TestNode, listen, test_config};
use manager::http::Forwarder;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn followers_forward_to_the_leader() {
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("http-forward")).collect();
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let (listener, addr) = listen().await;
        members.insert(id, addr);
        listeners.push(listener);
    }
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let forward = Forwarder {
            client: client(),
            scheme: "http".into(),
        };
        let id = i as u64 + 1;
        let node = TestNode::serve(dirs[i].path(), id, listener, test_config(), |s| {
            api_router(s, Some(forward))
        })
        .await;
        nodes.push(node);
    }
    nodes[0]
        .store
        .initialize(members.clone())
        .await
        .expect("initialize");
    for node in &nodes {
        node.store
            .wait_for_leader(Duration::from_secs(60))
            .await
            .expect("leader");
    }
    let (leader, leader_addr) = nodes[0].store.leader().expect("leader known");
    let follower = (1..=3u64).find(|id| *id != leader).expect("a follower");
    let f = &nodes[(follower - 1) as usize];
    let via_follower = Http {
        url: format!("http://{}", members[&follower]),
        http: client(),
    };

    let created = via_follower
        .call(Method::POST, "/v1/stacks", Some(json!({"id": "web"})))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.headers.contains_key("via"), "not forwarded");
    let version = created.body["meta"]["version"].as_u64().expect("version");
    let read = via_follower.call(Method::GET, "/v1/stacks/web", None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(read.headers.contains_key("via"));
    let stale = via_follower
        .call(Method::GET, "/v1/stacks?stale=true", None)
        .await;
    assert_eq!(stale.status, 200);
    assert!(
        !stale.headers.contains_key("via"),
        "a stale read was forwarded"
    );
    let conflict = via_follower
        .call(
            Method::PUT,
            &format!("/v1/stacks/web?version={}", version + 100),
            Some(json!({})),
        )
        .await;
    assert_eq!((conflict.status, conflict.code()), (409, "conflict"));
    let cluster = via_follower.call(Method::GET, "/v1/cluster", None).await;
    assert_eq!(cluster.body["id"], follower);
    assert_eq!(cluster.body["leader"]["id"], leader);
    assert_eq!(cluster.body["members"].as_array().map(Vec::len), Some(3));

    // A logs answer streams back through the follower; a task whose node has no
    // session says so in-band instead of hanging.
    let task =
        json!({"id": "web.1", "node": "n9", "status": {"state": "running", "container": "c1"}});
    let created = via_follower
        .call(Method::POST, "/v1/tasks", Some(task))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let logs = via_follower
        .call(Method::GET, "/v1/tasks/web.1/logs?tail=5", None)
        .await;
    assert_eq!(logs.status, 200, "{}", logs.body);
    assert!(logs.headers.contains_key("via"), "not forwarded");
    assert_eq!(logs.headers["content-type"], "application/x-ndjson");
    assert_eq!(
        (&logs.body["task"], &logs.body["node"], &logs.body["stream"]),
        (&json!("web.1"), &json!("n9"), &json!("error")),
        "{}",
        logs.body
    );
    assert!(
        logs.body["line"]
            .as_str()
            .is_some_and(|l| l.contains("is down")),
        "{}",
        logs.body
    );

    // A request already forwarded once is not forwarded again.
    let looped = via_follower
        .call_with(
            Method::POST,
            "/v1/stacks",
            Some(json!({"id": "loop"})),
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("x-orch-forwarded", "7"),
            ],
        )
        .await;
    assert_eq!((looped.status, looped.code()), (503, "unavailable"));
    assert_eq!(looped.body["error"]["details"]["leader"], leader_addr);

    // Without a forwarding client, the follower names the leader.
    let (listener, addr) = listen().await;
    let plain = api_router(&f.store, None);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, plain).await;
    });
    let direct = Http {
        url: format!("http://{addr}"),
        http: client(),
    };
    let refused = direct
        .call(Method::POST, "/v1/stacks", Some(json!({"id": "db"})))
        .await;
    assert_eq!((refused.status, refused.code()), (503, "unavailable"));
    assert_eq!(refused.body["error"]["details"]["leader"], leader_addr);
    assert_eq!(
        refused.body["error"]["details"]["leader_id"],
        leader.to_string()
    );
    let stale = direct
        .call(Method::GET, "/v1/stacks/web?stale=true", None)
        .await;
    assert!(matches!(stale.status, 200 | 404), "{}", stale.body);
    server.abort();
    for node in nodes {
        node.stop().await;
    }
}
