//! Create, read, list (with filters), update with a version, delete: every kind.

use super::Api;
use api::cluster::{Meta, Node, NodeRole, Object};
use manager::store::Command;
use reqwest::Method;
use serde_json::json;

fn ids(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["meta"]["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn stacks_round_trip_with_versions_and_labels() {
    let api = Api::start().await;
    let created = api
        .call(
            Method::POST,
            "/v1/stacks",
            Some(json!({"id": "web", "labels": {"env": "prod"}, "spec": {}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let v1 = created.body["meta"]["version"].as_u64().expect("version");
    assert_eq!(
        created.headers["etag"].to_str().ok(),
        Some(format!("\"{v1}\"").as_str())
    );
    let other = api
        .call(Method::POST, "/v1/stacks", Some(json!({"id": "db"})))
        .await;
    assert_eq!(other.status, 201);
    let again = api
        .call(Method::POST, "/v1/stacks", Some(json!({"id": "web"})))
        .await;
    assert_eq!((again.status, again.code()), (409, "conflict"));

    let got = api.call(Method::GET, "/v1/stacks/web", None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["meta"]["labels"]["env"], "prod");
    let stale = api
        .call(Method::GET, "/v1/stacks/web?stale=true", None)
        .await;
    assert_eq!(stale.body["meta"]["version"], v1);

    let all = api.call(Method::GET, "/v1/stacks", None).await;
    assert_eq!(ids(&all.body), ["db", "web"]);
    let prod = api
        .call(Method::GET, "/v1/stacks?label=env=prod", None)
        .await;
    assert_eq!(ids(&prod.body), ["web"]);
    let any_env = api.call(Method::GET, "/v1/stacks?label=env", None).await;
    assert_eq!(ids(&any_env.body), ["web"]);
    let none = api
        .call(Method::GET, "/v1/stacks?label=env=prod&label=tier=db", None)
        .await;
    assert!(ids(&none.body).is_empty());

    let body = json!({"labels": {"env": "staging"}, "spec": {}});
    let updated = api
        .call(
            Method::PUT,
            &format!("/v1/stacks/web?version={v1}"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let v2 = updated.body["meta"]["version"].as_u64().expect("version");
    assert!(v2 > v1);
    // The stale version is refused, naming both.
    let conflict = api
        .call_with(
            Method::PUT,
            "/v1/stacks/web",
            Some(body.clone()),
            &[
                ("authorization", &format!("Bearer {}", super::TOKEN)),
                ("if-match", &format!("\"{v1}\"")),
            ],
        )
        .await;
    assert_eq!((conflict.status, conflict.code()), (409, "conflict"));
    let details = &conflict.body["error"]["details"];
    assert_eq!(details["expected_version"], v1.to_string());
    assert_eq!(details["actual_version"], v2.to_string());
    assert_eq!(details["id"], "web");
    let unversioned = api.call(Method::PUT, "/v1/stacks/web", Some(body)).await;
    assert_eq!(
        (unversioned.status, unversioned.code()),
        (400, "invalid_argument")
    );

    let stale_delete = api
        .call(
            Method::DELETE,
            &format!("/v1/stacks/web?version={v1}"),
            None,
        )
        .await;
    assert_eq!(stale_delete.status, 409);
    let deleted = api
        .call(
            Method::DELETE,
            &format!("/v1/stacks/web?version={v2}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["meta"]["id"], "web");
    let gone = api.call(Method::GET, "/v1/stacks/web", None).await;
    assert_eq!((gone.status, gone.code()), (404, "not_found"));
    assert_eq!(gone.body["error"]["details"]["kind"], "stack");
    let unversioned_delete = api.call(Method::DELETE, "/v1/stacks/db", None).await;
    assert_eq!(unversioned_delete.status, 200);
    api.node.stop().await;
}

#[tokio::test]
async fn services_and_tasks_filter_by_their_indexes() {
    let api = Api::start().await;
    for (id, stack) in [("web", "shop"), ("db", "shop"), ("cron", "ops")] {
        let spec = json!({"image": "busybox"});
        let body = json!({"id": id, "stack": stack, "name": id, "spec": spec});
        let answer = api.call(Method::POST, "/v1/services", Some(body)).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.body["spec"]["image"], "busybox");
    }
    let shop = api.call(Method::GET, "/v1/services?stack=shop", None).await;
    assert_eq!(ids(&shop.body), ["db", "web"]);

    let tasks = [
        ("t1", "web", Some("n1"), "running"),
        ("t2", "web", Some("n2"), "shutdown"),
        ("t3", "db", Some("n1"), "running"),
        ("t4", "db", None, "running"),
    ];
    for (id, service, node, desired) in tasks {
        let body = json!({"id": id, "service": service, "slot": 1, "node": node,
            "desired_state": desired, "labels": {"slot": "one"}});
        let answer = api.call(Method::POST, "/v1/tasks", Some(body)).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    let web = api.call(Method::GET, "/v1/tasks?service=web", None).await;
    assert_eq!(ids(&web.body), ["t1", "t2"]);
    let on_n1 = api.call(Method::GET, "/v1/tasks?node=n1", None).await;
    assert_eq!(ids(&on_n1.body), ["t1", "t3"]);
    let running = api
        .call(Method::GET, "/v1/tasks?desired_state=running&node=n1", None)
        .await;
    assert_eq!(ids(&running.body), ["t1", "t3"]);
    let both = api
        .call(
            Method::GET,
            "/v1/tasks?service=web&desired_state=running&label=slot=one",
            None,
        )
        .await;
    assert_eq!(ids(&both.body), ["t1"]);
    let bad = api
        .call(Method::GET, "/v1/tasks?desired_state=dancing", None)
        .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_argument"));

    let task = api.call(Method::GET, "/v1/tasks/t4", None).await;
    let version = task.body["meta"]["version"].as_u64().expect("version");
    let assigned = json!({"service": "db", "slot": 1, "node": "n2", "desired_state": "running",
        "status": {"state": "assigned"}});
    let updated = api
        .call(
            Method::PUT,
            &format!("/v1/tasks/t4?version={version}"),
            Some(assigned),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let on_n2 = api.call(Method::GET, "/v1/tasks?node=n2", None).await;
    assert_eq!(ids(&on_n2.body), ["t2", "t4"]);

    let service = api.call(Method::GET, "/v1/services/cron", None).await;
    let version = service.body["meta"]["version"].as_u64().expect("version");
    let moved = json!({"stack": "shop", "name": "cron", "spec": {"image": "alpine"}});
    let updated = api
        .call(
            Method::PUT,
            &format!("/v1/services/cron?version={version}"),
            Some(moved),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let shop = api.call(Method::GET, "/v1/services?stack=shop", None).await;
    assert_eq!(ids(&shop.body), ["cron", "db", "web"]);

    // container_name names one container: three replicas with it are refused.
    let named = json!({"id": "named", "spec": {"image": "x", "container_name": "one",
        "deploy": {"replicas": 3}}});
    let refused = api.call(Method::POST, "/v1/services", Some(named)).await;
    assert_eq!((refused.status, refused.code()), (400, "invalid_argument"));
    assert!(
        refused.body.to_string().contains("container_name"),
        "{}",
        refused.body
    );
    // A rebalance is asked for on a replicated service, refused on a global one.
    let asked = api
        .call(Method::POST, "/v1/services/cron/rebalance", None)
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert_eq!(asked.body["rebalance"]["state"], "requested");
    let global = json!({"id": "agentd", "spec": {"image": "x", "deploy": {"mode": "global"}}});
    let created = api.call(Method::POST, "/v1/services", Some(global)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let refused = api
        .call(Method::POST, "/v1/services/agentd/rebalance", None)
        .await;
    assert_eq!((refused.status, refused.code()), (400, "invalid_argument"));
    let missing = api
        .call(Method::POST, "/v1/services/nope/rebalance", None)
        .await;
    assert_eq!(missing.status, 404);

    let deleted = api.call(Method::DELETE, "/v1/tasks/t1", None).await;
    assert_eq!(deleted.status, 200);
    let deleted = api.call(Method::DELETE, "/v1/services/web", None).await;
    assert_eq!(deleted.status, 200);
    api.node.stop().await;
}

#[tokio::test]
async fn nodes_join_elsewhere_and_are_updated_here() {
    let api = Api::start().await;
    for (id, role) in [("m1", NodeRole::Manager), ("w1", NodeRole::Worker)] {
        let mut node = Node {
            meta: Meta::new(id),
            ..Node::default()
        };
        node.spec.role = role;
        node.status.addr = Some(format!("10.0.0.{}:4243", id.len()));
        api.node
            .store
            .write(Command::create(Object::Node(node)))
            .await
            .expect("join");
    }
    let refused = api
        .call(Method::POST, "/v1/nodes", Some(json!({"id": "n9"})))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (405, "method_not_allowed")
    );

    let workers = api.call(Method::GET, "/v1/nodes?role=worker", None).await;
    assert_eq!(ids(&workers.body), ["w1"]);
    let w1 = api.call(Method::GET, "/v1/nodes/w1", None).await;
    let version = w1.body["meta"]["version"].as_u64().expect("version");
    let change = json!({"labels": {"zone": "b"}, "availability": "drain"});
    let updated = api
        .call(
            Method::PUT,
            &format!("/v1/nodes/w1?version={version}"),
            Some(change.clone()),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["spec"]["availability"], "drain");
    assert_eq!(updated.body["spec"]["role"], "worker");
    // The system-written status is kept.
    assert_eq!(updated.body["status"]["addr"], w1.body["status"]["addr"]);
    let stale = api
        .call(
            Method::PUT,
            &format!("/v1/nodes/w1?version={version}"),
            Some(change),
        )
        .await;
    assert_eq!((stale.status, stale.code()), (409, "conflict"));
    let drained = api
        .call(
            Method::GET,
            "/v1/nodes?availability=drain&label=zone=b",
            None,
        )
        .await;
    assert_eq!(ids(&drained.body), ["w1"]);
    let deleted = api.call(Method::DELETE, "/v1/nodes/w1", None).await;
    assert_eq!(deleted.status, 200);
    let all = api.call(Method::GET, "/v1/nodes", None).await;
    assert_eq!(ids(&all.body), ["m1"]);
    api.node.stop().await;
}
