//! The OpenAPI document against the router (every served route documented, every
//! documented route served), `/metrics` in the Prometheus text format, `/v1/cluster`.

use super::{Api, TOKEN};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// `true` when the router serves `method` on `path` (it answered neither 405 nor the
/// unknown-path 404).
async fn served(api: &Api, method: &str, path: &str) -> bool {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let url = format!("{}{path}", api.url);
    let mut request = api
        .http
        .request(method.clone(), url)
        .header("authorization", format!("Bearer {TOKEN}"));
    if method == Method::POST || method == Method::PUT {
        request = request
            .header("content-type", "application/json")
            .body("{}");
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    if path == "/v1/events" && status == 200 {
        return true; // a stream: do not read it to the end
    }
    let answer = super::answer(response).await;
    assert!(answer.status < 500, "{method} {path}: {}", answer.body);
    let unknown_path = status == 404 && answer.body["error"]["details"]["path"].is_string();
    status != 405 && !unknown_path
}

#[tokio::test]
async fn the_document_matches_the_router() {
    let api = Api::start().await;
    let doc = api.call(Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    let paths = doc.body["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            documented.insert((path.replace("{id}", "x"), method));
            let responses = operation["responses"].as_object().expect("responses");
            for status in ["400", "401", "403", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            if path.contains("{id}") {
                let params = operation["parameters"].as_array().expect("parameters");
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == "id" && p["in"] == "path"),
                    "{method} {path}: {{id}} undocumented"
                );
            }
        }
    }
    for kind in ["nodes", "stacks", "services", "tasks"] {
        for path in [format!("/v1/{kind}"), format!("/v1/{kind}/x")] {
            assert!(documented.iter().any(|(p, _)| *p == path), "{path}");
        }
    }
    let schemas = doc.body["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for name in [
        "Node",
        "Stack",
        "Service",
        "Task",
        "ErrorEnvelope",
        "StackCreate",
        "ClusterInfo",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }

    // Every documented operation is served...
    for (path, method) in &documented {
        assert!(
            served(&api, method, path).await,
            "{method} {path} documented, not served"
        );
    }
    // ...and every served one (on the documented paths and a few others) documented.
    let mut candidates: BTreeSet<String> = documented.iter().map(|(p, _)| p.clone()).collect();
    candidates
        .extend(["/v1", "/v1/x", "/v1/events/x", "/v1/cluster/x", "/health"].map(String::from));
    for path in &candidates {
        for method in METHODS {
            if served(&api, method, path).await {
                assert!(
                    documented.contains(&(path.clone(), method)),
                    "{method} {path} served, not documented"
                );
            }
        }
    }
    api.node.stop().await;
}

/// `name{labels} value` lines; panics on a line that is not the text format.
fn samples(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name in {line}"
        );
        if series.contains('{') {
            assert!(series.ends_with('}'), "labels in {line}");
        }
        let value: f64 = value.parse().expect("value");
        out.push((series.to_owned(), value));
    }
    out
}

#[tokio::test]
async fn metrics_and_cluster_describe_this_manager() {
    let api = Api::start().await;
    let created = api
        .call(Method::POST, "/v1/stacks", Some(json!({"id": "web"})))
        .await;
    assert_eq!(created.status, 201);
    let missing = api.call(Method::GET, "/v1/stacks/nope", None).await;
    assert_eq!(missing.status, 404);

    let response = api
        .http
        .get(format!("{}/metrics", api.url))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/plain; version=0.0.4"))
    );
    let text = response.text().await.expect("text");
    let samples = samples(&text);
    let value = |series: &str| {
        samples
            .iter()
            .find(|(s, _)| s == series)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
    };
    assert!(value("orch_raft_term") >= 1.0);
    assert_eq!(value("orch_raft_is_leader"), 1.0);
    assert!(value("orch_raft_commit_index") >= value("orch_raft_applied_index") - 0.5);
    assert_eq!(value("orch_raft_apply_lag"), 0.0);
    assert_eq!(value("orch_objects{kind=\"stack\"}"), 1.0);
    let post = "route=\"/v1/stacks\",method=\"POST\",status=\"2xx\"";
    assert_eq!(
        value(&format!(
            "orch_http_request_duration_seconds_bucket{{{post},le=\"+Inf\"}}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "orch_http_request_duration_seconds_count{{{post}}}"
        )),
        1.0
    );
    let get = "route=\"/v1/stacks/{id}\",method=\"GET\",status=\"4xx\"";
    assert_eq!(
        value(&format!(
            "orch_http_request_duration_seconds_count{{{get}}}"
        )),
        1.0
    );

    let cluster = api.call(Method::GET, "/v1/cluster", None).await;
    assert_eq!(cluster.status, 200);
    let body: &Value = &cluster.body;
    assert_eq!(body["id"], 1);
    assert_eq!(body["state"], "leader");
    assert_eq!(body["leader"]["id"], 1);
    assert_eq!(body["members"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["members"][0]["voter"], true);
    assert_eq!(body["health"], "healthy");
    assert!(body["term"].as_u64().is_some_and(|t| t >= 1));
    api.node.stop().await;
}
