//! What the routing mesh reserves, refused when written: a network that would be the
//! cluster's `ingress` (from a stack or `POST /v1/networks`), named with its stack;
//! a host-mode port equal to another service's routing-mesh port, or the other way
//! round, naming the port and both services.

use super::Api;
use reqwest::Method;
use serde_json::{Value, json};

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn create_stack(api: &Api, id: &str, spec: Value) -> super::Answer {
    api.call(
        Method::POST,
        "/v1/stacks",
        Some(json!({"id": id, "spec": spec})),
    )
    .await
}

#[tokio::test]
async fn a_network_that_would_be_the_routing_mesh_is_refused_naming_it() {
    let api = Api::start().await;
    let named = json!({"networks": {"front": {"name": "ingress"}}});
    let refused = create_stack(&api, "shop", named).await;
    assert_eq!((refused.status, refused.code()), (400, "invalid_argument"));
    let text = message(&refused.body);
    assert!(
        text.contains("network front of stack shop is named ingress"),
        "{text}"
    );
    let details = &refused.body["error"]["details"];
    assert_eq!(
        (&details["stack"], &details["network"]),
        (&json!("shop"), &json!("front"))
    );
    let external = json!({"networks": {"ingress": {"external": true}}});
    let refused = create_stack(&api, "shop", external).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(message(&refused.body).contains("stack shop"));
    let undeclared =
        json!({"services": {"web": {"image": "busybox", "networks": {"ingress": null}}}});
    let refused = create_stack(&api, "shop", undeclared).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        message(&refused.body).contains("service web of stack shop joins network ingress"),
        "{}",
        refused.body
    );

    // A key `ingress` of the stack's own network is `shop_ingress` on the cluster.
    let own = json!({"networks": {"ingress": {}}});
    let created = create_stack(&api, "shop", own).await;
    assert_eq!(created.status, 201, "{}", created.body);

    let network = api
        .call(Method::POST, "/v1/networks", Some(json!({"id": "ingress"})))
        .await;
    assert_eq!((network.status, network.code()), (400, "invalid_argument"));
    assert!(
        message(&network.body).contains("network ingress is the cluster's routing-mesh network"),
        "{}",
        network.body
    );
    let gone = api.call(Method::GET, "/v1/networks/ingress", None).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn a_host_port_equal_to_a_mesh_port_is_refused_naming_both_services() {
    let api = Api::start().await;
    let web = |port: Value| json!({"services": {"web": {"image": "busybox", "ports": [port]}}});
    let mesh = json!({"target": 80, "published": "8080"});
    let created = create_stack(&api, "a", web(mesh)).await;
    assert_eq!(created.status, 201, "{}", created.body);

    let host = json!({"target": 80, "published": "8080", "mode": "host"});
    let refused = create_stack(&api, "b", web(host)).await;
    assert_eq!((refused.status, refused.code()), (409, "conflict"));
    assert_eq!(
        message(&refused.body),
        "port 8080/tcp is published on the routing mesh by service a_web already (service b_web asks for it in host mode)"
    );
    let udp = json!({"target": 80, "published": "8080", "mode": "host", "protocol": "udp"});
    let created = create_stack(&api, "b", web(udp)).await;
    assert_eq!(
        created.status, 201,
        "udp/8080 is another port: {}",
        created.body
    );

    let host = json!({"target": 80, "published": "9090", "mode": "host"});
    assert_eq!(create_stack(&api, "c", web(host)).await.status, 201);
    let mesh = json!({"target": 80, "published": "9090"});
    let refused = create_stack(&api, "d", web(mesh)).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(
        message(&refused.body),
        "port 9090/tcp is published in host mode by service c_web already (service d_web asks for it on the routing mesh)"
    );
}
