//! `/v1/volumes` and `DELETE /v1/stacks/{id}?volumes=true`: a stack deleted with its
//! volumes marks them for removal in the same commit; without, they are left as
//! they are; volumes the nodes cannot make are refused when the stack is written.

use super::Api;
use api::cluster::{Meta, Object, Volume};
use manager::store::Command;
use reqwest::Method;
use serde_json::json;

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
