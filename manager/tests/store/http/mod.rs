//! The REST API over plain HTTP on 127.0.0.1, in front of real stores: CRUD of every
//! kind ([`crud`]), authentication ([`auth`]), malformed requests ([`malformed`]), the
//! event stream ([`events`]), the OpenAPI document and `/metrics` ([`docs`]), leader
//! forwarding on three managers ([`forward`]) and schemathesis ([`schemathesis`]).

mod auth;
mod crud;
mod docs;
mod events;
mod forward;
mod malformed;
mod mesh;
mod schemathesis;
mod secrets;
mod volumes;

use crate::common::TempDir;
use crate::common::node::{TestNode, listen, test_config};
use api::cluster::NodeRole;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use manager::http::{ApiState, Caller, Forwarder, Tokens, router};
use manager::store::{Store, StoreConfig};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The bearer token the test APIs accept.
pub const TOKEN: &str = "test-token-7f3a";
/// A test-only header the test server turns into a [`Caller`] (what the daemon does
/// from the TLS client certificate or the unix socket).
pub const CALLER: &str = "x-test-caller";

async fn test_caller(mut request: Request, next: Next) -> Response {
    let caller = match request.headers().get(CALLER).and_then(|v| v.to_str().ok()) {
        Some("local") => Some(Caller::Local),
        Some("worker") => Some(Caller::Node {
            id: "w1".into(),
            role: NodeRole::Worker,
        }),
        Some("manager") => Some(Caller::Node {
            id: "m2".into(),
            role: NodeRole::Manager,
        }),
        _ => None,
    };
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

/// The API of `store` as the test server mounts it.
pub fn api_router(store: &Arc<Store>, forward: Option<Forwarder>) -> axum::Router {
    let keyring = Arc::new(manager::keyring::Keyring::generate().expect("a data key"));
    let api = Arc::new(ApiState::new(
        store.clone(),
        Tokens::new([TOKEN]),
        forward,
        keyring,
    ));
    router(api).layer(axum::middleware::from_fn(test_caller))
}

/// A plain-HTTP client (ring as the TLS provider, no roots: nothing here uses TLS).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .expect("http client")
}

/// An answer: status, headers, body as JSON (`Null` when not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code of an error envelope (panics with the answer if not one).
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error envelope: {} {}", self.status, self.body))
    }
}

/// A client of one API server.
pub struct Http {
    pub url: String,
    pub http: reqwest::Client,
}

/// One manager with its API on 127.0.0.1.
pub struct Api {
    pub node: TestNode,
    pub client: Http,
    _dir: TempDir,
}

impl std::ops::Deref for Api {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.client
    }
}

impl Api {
    /// A single-manager cluster with the API, leader elected.
    pub async fn single(config: StoreConfig) -> Api {
        let dir = TempDir::new("http");
        let (listener, addr) = listen().await;
        let node = TestNode::serve(dir.path(), 1, listener, config, |s| api_router(s, None)).await;
        node.store
            .initialize(BTreeMap::new())
            .await
            .expect("initialize");
        node.store
            .wait_for_leader(Duration::from_secs(30))
            .await
            .expect("leader");
        Api {
            node,
            client: Http {
                url: format!("http://{addr}"),
                http: client(),
            },
            _dir: dir,
        }
    }

    /// A single manager with the tests' store settings.
    pub async fn start() -> Api {
        Api::single(test_config()).await
    }
}

impl Http {
    /// Send a request with the bearer token; `body` as JSON.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_with(
            method,
            path,
            body,
            &[("authorization", &format!("Bearer {TOKEN}"))],
        )
        .await
    }

    /// Send a request with exactly `headers`.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).expect("encode body"));
        }
        answer(request.send().await.expect("send request")).await
    }
}

/// Read a whole answer.
pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("read body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}
