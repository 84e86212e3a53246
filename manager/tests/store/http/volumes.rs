//! `/v1/volumes` and `DELETE /v1/stacks/{id}?volumes=true`: a stack deleted with its
//! volumes marks them for removal in the same commit; without, they are left as
//! they are, and a later delete with volumes of the stack that is gone marks them
//! (also with the daemon's reconcile loop running), answering with them (documented
//! beside the stack answer); volumes the nodes cannot make are refused when the
//! stack is written.

use super::{Answer, Api, answer};
use crate::common::TempDir;
use crate::daemon::loopback;
use api::cluster::{Kind, Meta, Object, Volume};
use manager::ca::CaConfig;
use manager::server::Manager;
use manager::store::{ClusterSettings, Command};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn volume(api: &Api, id: &str, stack: &str) {
    let volume = Volume {
        meta: Meta::new(id),
        stack: stack.into(),
        ..Volume::default()
    };
    api.node
        .store
        .write(Command::create(Object::Volume(volume)))
        .await
        .expect("create the volume");
}

#[tokio::test]
async fn a_stack_deleted_with_volumes_marks_them_for_removal_and_without_keeps_them() {
    let api = Api::start().await;
    for stack in ["shop", "blog"] {
        let created = api
            .call(Method::POST, "/v1/stacks", Some(json!({"id": stack})))
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        volume(&api, &format!("{stack}_data"), stack).await;
    }

    let listed = api.call(Method::GET, "/v1/volumes?stack=shop", None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["meta"]["id"], "shop_data");
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));

    let kept = api.call(Method::DELETE, "/v1/stacks/blog", None).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    let blog = api.call(Method::GET, "/v1/volumes/blog_data", None).await;
    assert_eq!(blog.body["desired_state"], "active", "{}", blog.body);

    let removed = api
        .call(Method::DELETE, "/v1/stacks/shop?volumes=true", None)
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.body["meta"]["id"], "shop");
    let shop = api.call(Method::GET, "/v1/volumes/shop_data", None).await;
    assert_eq!(shop.body["desired_state"], "remove", "{}", shop.body);
    let gone = api.call(Method::GET, "/v1/stacks/shop", None).await;
    assert_eq!(gone.status, 404);

    // Gone, its volume still being removed: answered with it, as it is.
    let again = api
        .call(Method::DELETE, "/v1/stacks/shop?volumes=true", None)
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["items"][0]["desired_state"], "remove");
    assert_eq!(
        again.body["items"][0]["meta"]["version"],
        shop.body["meta"]["version"]
    );

    // Blog, taken down without its volume: a delete with volumes marks it.
    let left = api
        .call(Method::DELETE, "/v1/stacks/blog?volumes=true", None)
        .await;
    assert_eq!(left.status, 200, "{}", left.body);
    assert_eq!(left.body["items"][0]["meta"]["id"], "blog_data");
    assert_eq!(left.body["items"][0]["desired_state"], "remove");
    let blog = api.call(Method::GET, "/v1/volumes/blog_data", None).await;
    assert_eq!(blog.body, left.body["items"][0]);

    // Nothing of shop left (its nodes confirmed): 404.
    api.node
        .store
        .write(Command::delete(Kind::Volume, "shop_data", None))
        .await
        .expect("the nodes confirmed");
    let again = api
        .call(Method::DELETE, "/v1/stacks/shop?volumes=true", None)
        .await;
    assert_eq!((again.status, again.code()), (404, "not_found"));
    let bad = api
        .call(Method::DELETE, "/v1/stacks/blog?volumes=maybe", None)
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[tokio::test]
async fn volumes_the_nodes_cannot_make_are_refused_naming_them() {
    let api = Api::start().await;
    let spec = json!({"volumes": {"data": {"name": "x_data", "driver": "nfs"}}});
    let refused = api
        .call(
            Method::POST,
            "/v1/stacks",
            Some(json!({"id": "x", "spec": spec})),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (400, "invalid_argument"));
    let message = refused.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("volume data of stack x") && message.contains("\"nfs\""),
        "{message}"
    );
    let spec = json!({"volumes": {"data": {"driver": "local", "labels": {"a": "b"}}}});
    let taken = api
        .call(
            Method::POST,
            "/v1/stacks",
            Some(json!({"id": "x", "spec": spec})),
        )
        .await;
    assert_eq!(taken.status, 201, "{}", taken.body);
}

/// Calls the API of a manager daemon over its unix socket (as the local CLI does).
async fn local(http: &reqwest::Client, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = http.request(method, format!("http://manager{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.expect("send request")).await
}

/// Waits (at most 30 s, polling) until `done` holds for `GET path`.
async fn wait_for(http: &reqwest::Client, path: &str, what: &str, done: impl Fn(&Answer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = local(http, Method::GET, path, None).await;
        if done(&now) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} {}",
            now.status,
            now.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_volumes_a_stack_deleted_without_them_left_are_removed_by_a_delete_with_volumes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("downv");
    let socket = dir.path().join("manager.sock");
    let config = manager::server::ManagerConfig {
        socket: Some(socket.clone()),
        ..loopback(&dir, "m1")
    };
    let (manager, _) = Manager::init(config, ClusterSettings::default(), CaConfig::default())
        .await
        .expect("init");
    let http = reqwest::Client::builder()
        .unix_socket(socket)
        .tls_certs_only([])
        .build()
        .expect("http client");

    let spec = json!({
        "services": {"app": {"image": "busybox"}},
        "volumes": {"data": {}, "keep": {"external": true, "name": "keep"}},
    });
    let created = local(
        &http,
        Method::POST,
        "/v1/stacks",
        Some(json!({"id": "shop", "spec": spec})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let volumes = "/v1/volumes?stack=shop";
    wait_for(&http, volumes, "the stack's volume is made", |a| {
        a.body["items"].as_array().map(Vec::len) == Some(1)
    })
    .await;

    // Taken down without volumes: once the reconcile loop removed the service, the
    // volume is still there, as it was.
    let down = local(&http, Method::DELETE, "/v1/stacks/shop", None).await;
    assert_eq!(down.status, 200, "{}", down.body);
    wait_for(&http, "/v1/services/shop_app", "the service goes", |a| {
        a.status == 404
    })
    .await;
    let kept = local(&http, Method::GET, volumes, None).await;
    assert_eq!(
        kept.body["items"][0]["meta"]["id"], "shop_data",
        "{}",
        kept.body
    );
    assert_eq!(kept.body["items"][0]["desired_state"], "active");

    // Then with volumes: marked for removal, answered with the volumes.
    let down = local(&http, Method::DELETE, "/v1/stacks/shop?volumes=true", None).await;
    assert_eq!(down.status, 200, "{}", down.body);
    let items = down.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "not the external one: {}", down.body);
    assert_eq!(
        (&items[0]["meta"]["id"], &items[0]["desired_state"]),
        (&json!("shop_data"), &json!("remove"))
    );

    // No node here runs an engine: the volume goes at once, and then nothing of the
    // stack is left.
    wait_for(&http, volumes, "the volume goes", |a| {
        a.body["items"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    let again = local(&http, Method::DELETE, "/v1/stacks/shop?volumes=true", None).await;
    assert_eq!(
        (again.status, again.code()),
        (404, "not_found"),
        "{}",
        again.body
    );
    let plain = local(&http, Method::DELETE, "/v1/stacks/shop", None).await;
    assert_eq!((plain.status, plain.code()), (404, "not_found"));
    manager.shutdown().await;
}

#[tokio::test]
async fn a_stack_delete_documents_both_answers() {
    let api = Api::start().await;
    let doc = api.call(Method::GET, "/v1/openapi.json", None).await;
    let ok = &doc.body["paths"]["/v1/stacks/{id}"]["delete"]["responses"]["200"];
    let schema = &ok["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(schema, "#/components/schemas/StackDeleted", "{ok}");
    let deleted = &doc.body["components"]["schemas"]["StackDeleted"];
    let refs: Vec<&str> = deleted["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["$ref"].as_str())
        .collect();
    assert_eq!(
        refs,
        [
            "#/components/schemas/Stack",
            "#/components/schemas/VolumeList"
        ],
        "{deleted}"
    );
}
