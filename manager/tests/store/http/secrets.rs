//! `/v1/secrets` and `/v1/configs`: a secret's value is sealed before it is written
//! and never answered (create, get, list, events, its stack); a config's is.

use super::Api;
use super::events::events;
use reqwest::Method;
use serde_json::json;

const VALUE: &str = "hunter2-not-in-answers";

fn b64(text: &str) -> String {
    data_encoding::BASE64.encode(text.as_bytes())
}

#[tokio::test]
async fn a_secret_is_stored_sealed_and_answered_without_its_value() {
    let api = Api::start().await;
    let created = api
        .call(
            Method::POST,
            "/v1/secrets",
            Some(json!({"id": "db", "labels": {"env": "prod"}, "data": b64(VALUE)})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let version = created.body["meta"]["version"].as_u64().expect("version");
    for answer in [
        created,
        api.call(Method::GET, "/v1/secrets/db", None).await,
        api.call(Method::GET, "/v1/secrets", None).await,
    ] {
        let text = answer.body.to_string();
        assert!(matches!(answer.status, 200 | 201), "{text}");
        assert!(text.contains("hmac-sha256:"), "{text}");
        assert!(text.contains("\"size\":22"), "{text}");
        assert!(
            !text.contains("ciphertext") && !text.contains(VALUE),
            "{text}"
        );
    }
    let since = version - 1;
    let seen = events(
        &api,
        &format!("/v1/events?since={since}&kind=secret"),
        &[],
        1,
    )
    .await;
    assert_eq!(seen[0].event, "created");
    let text = seen[0].data.to_string();
    assert!(
        text.contains("\"id\":\"db\"") && !text.contains("ciphertext"),
        "{text}"
    );

    // The store holds it sealed.
    let stored = api
        .node
        .store
        .view(|s| s.secrets.get("db").cloned())
        .value
        .expect("stored");
    assert!(!stored.value.ciphertext.is_empty());
    assert!(!stored.value.ciphertext.contains(&b64(VALUE)));

    let again = api
        .call(
            Method::POST,
            "/v1/secrets",
            Some(json!({"id": "db", "data": b64(VALUE)})),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "conflict"));
    let bad = api
        .call(
            Method::POST,
            "/v1/secrets",
            Some(json!({"id": "x", "data": "not base64!"})),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (400, "invalid_argument"),
        "{}",
        bad.body
    );
    let big = "a".repeat(api::secret::MAX_SIZE + 1);
    let bad = api
        .call(
            Method::POST,
            "/v1/secrets",
            Some(json!({"id": "x", "data": b64(&big)})),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.to_string().contains("secret x"), "{}", bad.body);

    let gone = api.call(Method::DELETE, "/v1/secrets/db", None).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(!gone.body.to_string().contains("ciphertext"));
    let missing = api.call(Method::GET, "/v1/secrets/db", None).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn a_config_is_answered_with_its_value() {
    let api = Api::start().await;
    let created = api
        .call(
            Method::POST,
            "/v1/configs",
            Some(json!({"id": "conf", "data": b64("level=debug\n")})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let got = api.call(Method::GET, "/v1/configs/conf", None).await;
    assert_eq!(got.body["data"], b64("level=debug\n"));
    assert_eq!(got.body["size"], 12);
    assert!(got.body["digest"].as_str().unwrap().starts_with("sha256:"));
    let gone = api.call(Method::DELETE, "/v1/configs/conf", None).await;
    assert_eq!(gone.status, 200);
}

#[tokio::test]
async fn a_stack_secret_is_sealed_as_the_stack_is_taken() {
    let api = Api::start().await;
    let spec = json!({
        "name": "shop",
        "secrets": {"db": {"name": "shop_db", "content": VALUE}},
        "configs": {"conf": {"name": "shop_conf", "content": "level=debug\n"}},
    });
    let created = api
        .call(
            Method::POST,
            "/v1/stacks",
            Some(json!({"id": "shop", "spec": spec})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let text = created.body.to_string();
    assert!(!text.contains(VALUE), "{text}");
    let db = &created.body["spec"]["secrets"]["db"];
    assert!(db["content"].is_null(), "{db}");
    assert!(
        db["sealed"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    let version = created.body["meta"]["version"].as_u64().unwrap();

    // The stack as read is taken back (its sealed value opens for that secret).
    let back = json!({"spec": created.body["spec"]});
    let path = format!("/v1/stacks/shop?version={version}");
    let updated = api.call(Method::PUT, &path, Some(back)).await;
    assert_eq!(updated.status, 200, "{}", updated.body);

    // A sealed value moved to another secret is refused; so is a secret without one.
    let mut moved = created.body["spec"].clone();
    moved["secrets"]["db"]["name"] = json!("shop_other");
    let refused = api
        .call(
            Method::POST,
            "/v1/stacks",
            Some(json!({"id": "moved", "spec": moved})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let empty = json!({"name": "e", "secrets": {"db": {"name": "e_db", "file": "/x"}}});
    let refused = api
        .call(
            Method::POST,
            "/v1/stacks",
            Some(json!({"id": "e", "spec": empty})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.to_string().contains("secret db of stack e"),
        "{}",
        refused.body
    );
}
