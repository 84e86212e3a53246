//! Malformed requests: bad JSON, wrong types, unknown fields, no content type, huge
//! bodies, bad ids and parameters, unknown paths, wrong methods: 4xx in the error
//! envelope, never 5xx.

use super::{Api, TOKEN};
use reqwest::Method;
use serde_json::json;

async fn raw(
    api: &Api,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> super::Answer {
    let mut request = api
        .http
        .request(method, format!("{}{path}", api.url))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    super::answer(request.send().await.expect("send")).await
}

/// What is sent (name, method, path, content type, body) and the status and code due.
type Case = (
    &'static str,
    Method,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test]
async fn malformed_requests_get_4xx_envelopes() {
    let api = Api::start().await;
    let json = Some("application/json");
    let cases: Vec<Case> = vec![
        (
            "bad JSON",
            Method::POST,
            "/v1/stacks",
            json,
            b"{\"id\": ".to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "wrong type",
            Method::POST,
            "/v1/stacks",
            json,
            br#"{"id": 7}"#.to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "unknown field",
            Method::POST,
            "/v1/stacks",
            json,
            br#"{"id": "a", "colour": 1}"#.to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "missing field",
            Method::POST,
            "/v1/tasks",
            json,
            br#"{"service": "a"}"#.to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "not an object",
            Method::POST,
            "/v1/services",
            json,
            b"[1, 2]".to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "no content type",
            Method::POST,
            "/v1/stacks",
            None,
            br#"{"id": "a"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "text content type",
            Method::POST,
            "/v1/stacks",
            Some("text/plain"),
            br#"{"id": "a"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "huge body",
            Method::POST,
            "/v1/stacks",
            json,
            vec![b' '; 5 << 20],
            413,
            "payload_too_large",
        ),
        (
            "bad id",
            Method::POST,
            "/v1/stacks",
            json,
            br#"{"id": "../etc"}"#.to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "empty id",
            Method::POST,
            "/v1/tasks",
            json,
            br#"{"id": ""}"#.to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "bad label",
            Method::POST,
            "/v1/stacks",
            json,
            br#"{"id": "a", "labels": {"": "x"}}"#.to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "bad version",
            Method::PUT,
            "/v1/stacks/a?version=new",
            json,
            b"{}".to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "unknown parameter",
            Method::GET,
            "/v1/stacks?colour=red",
            None,
            Vec::new(),
            400,
            "invalid_argument",
        ),
        (
            "repeated parameter",
            Method::GET,
            "/v1/tasks?node=a&node=b",
            None,
            Vec::new(),
            400,
            "invalid_argument",
        ),
        (
            "bad flag",
            Method::GET,
            "/v1/tasks?stale=maybe",
            None,
            Vec::new(),
            400,
            "invalid_argument",
        ),
        (
            "bad selector",
            Method::GET,
            "/v1/tasks?label==x",
            None,
            Vec::new(),
            400,
            "invalid_argument",
        ),
        (
            "bad kind",
            Method::GET,
            "/v1/events?kind=cat",
            None,
            Vec::new(),
            400,
            "invalid_argument",
        ),
        (
            "unknown path",
            Method::GET,
            "/v1/cats",
            None,
            Vec::new(),
            404,
            "not_found",
        ),
        (
            "unknown root",
            Method::GET,
            "/",
            None,
            Vec::new(),
            404,
            "not_found",
        ),
        (
            "wrong method",
            Method::PATCH,
            "/v1/stacks",
            None,
            Vec::new(),
            405,
            "method_not_allowed",
        ),
        (
            "post on an id",
            Method::POST,
            "/v1/tasks/t1",
            json,
            b"{}".to_vec(),
            405,
            "method_not_allowed",
        ),
    ];
    for (what, method, path, content_type, body, status, code) in cases {
        let answer = raw(&api, method, path, content_type, body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{what}: {}",
            answer.body
        );
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: no message"
        );
    }
    let ok = api
        .call(Method::POST, "/v1/stacks", Some(json!({"id": "a"})))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    api.node.stop().await;
}
