//! `/v1/events`: commits as server-sent events, resumed from `?since=` or
//! `Last-Event-ID`, filtered by kind; a resume point older than the history is 410.

use super::{Api, TOKEN};
use crate::common::node::test_config;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// One server-sent event: name, id, data as JSON.
#[derive(Debug)]
pub(super) struct Sse {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// The first `n` events of the stream at `path` (with `headers`).
pub(super) async fn events(api: &Api, path: &str, headers: &[(&str, &str)], n: usize) -> Vec<Sse> {
    let mut request = api
        .http
        .get(format!("{}{path}", api.url))
        .header("authorization", format!("Bearer {TOKEN}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("connect");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut out = Vec::new();
    let read = async {
        while out.len() < n {
            let Some(chunk) = body.next().await else {
                break;
            };
            text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let mut sse = Sse {
                    event: String::new(),
                    id: None,
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        sse.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        sse.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        sse.data = serde_json::from_str(v).expect("data is JSON");
                    }
                }
                if !sse.event.is_empty() {
                    out.push(sse);
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("events in time");
    out
}

async fn create(api: &Api, path: &str, body: Value) -> u64 {
    let answer = api.call(Method::POST, path, Some(body)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.body["meta"]["version"].as_u64().expect("version")
}

#[tokio::test]
async fn streams_resume_from_a_version() {
    let api = Api::start().await;
    let a = create(&api, "/v1/stacks", json!({"id": "a"})).await;
    let b = create(&api, "/v1/stacks", json!({"id": "b"})).await;
    let t = create(&api, "/v1/tasks", json!({"id": "t", "service": "s"})).await;

    let seen = events(&api, &format!("/v1/events?since={a}"), &[], 4).await;
    let names: Vec<&str> = seen.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["created", "commit", "created", "commit"]);
    assert_eq!(seen[0].data["object"]["meta"]["id"], "b");
    assert_eq!(seen[0].data["object"]["kind"], "stack");
    assert_eq!(seen[0].id, None);
    assert_eq!(seen[1].id, Some(b.to_string()));
    assert_eq!(seen[1].data["version"], b);
    assert_eq!(seen[3].id, Some(t.to_string()));

    // A reconnecting client: Last-Event-ID wins over ?since=.
    let b_id = b.to_string();
    let resumed = events(&api, "/v1/events?since=0", &[("last-event-id", &b_id)], 2).await;
    assert_eq!(resumed[0].data["object"]["meta"]["id"], "t");
    assert_eq!(resumed[1].id, Some(t.to_string()));

    // Only tasks: the stack's event is left out, its commit is not.
    let tasks = events(&api, &format!("/v1/events?since={a}&kind=task"), &[], 3).await;
    let names: Vec<&str> = tasks.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["commit", "created", "commit"]);
    assert_eq!(tasks[1].data["object"]["kind"], "task");

    // Live: the handler subscribed before it answered, so a commit made after the
    // answer's head arrived is on the stream.
    let response = api
        .http
        .get(format!("{}/v1/events", api.url))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("connect");
    let c = create(&api, "/v1/stacks", json!({"id": "c"})).await;
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let c_id = format!("id: {c}");
    let read = async {
        while !text.contains(&c_id) {
            match body.next().await {
                Some(Ok(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("live event in time");
    assert!(text.contains("event: created"), "{text}");
    let bad = api
        .call_with(
            Method::GET,
            "/v1/events",
            None,
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("last-event-id", "yesterday"),
            ],
        )
        .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_argument"));
    api.node.stop().await;
}

#[tokio::test]
async fn a_resume_point_older_than_the_history_is_gone() {
    let mut config = test_config();
    config.history = 2;
    let api = Api::single(config).await;
    let first = create(&api, "/v1/stacks", json!({"id": "s0"})).await;
    for i in 1..5 {
        create(&api, "/v1/stacks", json!({"id": format!("s{i}")})).await;
    }
    let old = api
        .call(Method::GET, &format!("/v1/events?since={first}"), None)
        .await;
    assert_eq!((old.status, old.code()), (410, "gone"), "{}", old.body);
    let details = &old.body["error"]["details"];
    assert_eq!(details["requested"], first.to_string());
    assert!(details["oldest"].as_str().is_some());
    api.node.stop().await;
}
