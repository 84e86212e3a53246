//! Leader forwarding, in one middleware: on a follower, writes and linearizable reads
//! of the resources go to the leader (`x-orch-forwarded` marks a forwarded request, so
//! it is never forwarded twice); `?stale=true` reads are served here. Without a
//! forwarding client the answer is 503 `unavailable` naming the leader.

use super::ApiState;
use super::error::{HttpError, not_leader};
use super::params::Params;
use super::resource::MAX_BODY;
use api::error::ErrorCode;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The header a forwarded request carries: the id of the manager that forwarded it.
pub const FORWARDED: &str = "x-orch-forwarded";

/// How a follower reaches the leader: a client (carrying the manager's mTLS identity)
/// and the URL scheme of the leader's API (`https`, or `http` in tests).
#[derive(Clone, Debug)]
pub struct Forwarder {
    pub client: reqwest::Client,
    pub scheme: String,
}

/// Headers that describe one connection, not the request: never copied across.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "host"
            | "content-length"
    )
}

/// `true` when the request must be served by the leader: any write, and reads
/// without `?stale=true`.
pub fn needs_leader(method: &Method, query: Option<&str>) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return true;
    }
    let mut params = Params::parse(query.unwrap_or(""));
    !params.flag("stale").unwrap_or(false)
}

/// The forwarding middleware of the resource routes.
pub async fn forward(State(api): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let store = &api.store;
    let leader = store.leader();
    let is_leader = leader.as_ref().is_some_and(|(id, _)| *id == store.id());
    if is_leader || !needs_leader(request.method(), request.uri().query()) {
        return next.run(request).await;
    }
    let Some(leader) = leader else {
        return not_leader(None).into_response();
    };
    let Some(forwarder) = &api.forward else {
        return not_leader(Some(&leader)).into_response();
    };
    if request.headers().contains_key(FORWARDED) {
        // Forwarded to us, yet we are not the leader (it just changed): let the client retry.
        return not_leader(Some(&leader)).into_response();
    }
    match send(forwarder, store.id(), &leader.1, request).await {
        Ok(response) => response,
        Err(e) => e.with("leader", leader.1.clone()).into_response(),
    }
}

async fn send(
    forwarder: &Forwarder,
    from: u64,
    leader: &str,
    request: Request,
) -> Result<Response, HttpError> {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let url = format!("{}://{leader}{path}", forwarder.scheme);
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        HttpError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body: {e} (at most {MAX_BODY} bytes)"),
        )
    })?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in parts.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        headers.append(name.clone(), value.clone());
    }
    headers.insert(HeaderName::from_static(FORWARDED), HeaderValue::from(from));
    let answer = forwarder
        .client
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            HttpError::new(
                ErrorCode::Upstream,
                format!(
                    "forward {} {path} to the leader at {leader}: {e}",
                    parts.method
                ),
            )
        })?;
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers().iter().filter(|(n, _)| !hop_by_hop(n)) {
        response = response.header(name, value);
    }
    response
        .header(header::VIA, HeaderValue::from_static("orch-leader-forward"))
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(|e| {
            HttpError::new(
                ErrorCode::Internal,
                format!("build the answer forwarded from {leader}: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_linearizable_reads_need_the_leader() {
        assert!(needs_leader(&Method::POST, None));
        assert!(needs_leader(&Method::DELETE, Some("stale=true")));
        assert!(needs_leader(&Method::GET, Some("label=a=b")));
        assert!(!needs_leader(&Method::GET, Some("stale=true&label=a")));
    }
}
