//! The REST API `/v1` of a manager (axum), mounted by the manager's server.
//!
//! - [`auth`]: who calls ([`Caller`], put in the request by the daemon) and the bearer
//!   [`Tokens`]; the authentication middleware.
//! - [`forward`]: leader forwarding of writes and linearizable reads (one middleware).
//! - [`nodes`], [`stacks`], [`services`], [`tasks`], [`networks`], [`secrets`],
//!   [`configs`], [`volumes`]: one file per resource; [`node_rules`]: what a node's role change
//!   or removal may do (pure).
//! - [`tokens`]: `/v1/cluster/tokens`, the join tokens and their rotation.
//! - [`resource`]: what they share (body extractor, validation, reads, store calls).
//! - [`params`]: query parameters, label selectors, the version a write names.
//! - [`logs`]: task logs of services and tasks, from the nodes through the log broker.
//! - [`events`]: `/v1/events`, committed changes as server-sent events.
//! - [`cluster`]: `/v1/cluster`, the raft view; [`metrics`]: `/metrics` and the request
//!   latency middleware; [`openapi`]: `/v1/openapi.json`.
//! - [`error`]: every failure as the wire error envelope, in one place.

pub mod auth;
pub mod cluster;
pub mod configs;
pub mod error;
pub mod events;
pub mod forward;
pub mod logs;
pub mod metrics;
pub mod networks;
pub mod node_rules;
pub mod nodes;
pub mod openapi;
pub mod params;
pub mod resource;
pub mod secrets;
pub mod services;
pub mod stacks;
pub mod tasks;
pub mod tokens;
pub mod volumes;

pub use auth::{Caller, Tokens};
pub use forward::Forwarder;

use crate::keyring::Keyring;
use crate::logbroker::LogBroker;
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::{Extension, Router};
use metrics::RequestMetrics;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler shares.
pub struct ApiState {
    store: Arc<Store>,
    tokens: Tokens,
    metrics: RequestMetrics,
    forward: Option<Forwarder>,
    keyring: Arc<Keyring>,
    logs: Arc<LogBroker>,
}

impl ApiState {
    /// The API over `store`, accepting bearer `tokens`; `forward` (when given) sends
    /// writes and linearizable reads from a follower to the leader; `keyring` seals
    /// the secrets written.
    pub fn new(
        store: Arc<Store>,
        tokens: Tokens,
        forward: Option<Forwarder>,
        keyring: Arc<Keyring>,
    ) -> ApiState {
        ApiState {
            store,
            tokens,
            metrics: RequestMetrics::default(),
            forward,
            keyring,
            logs: LogBroker::new(),
        }
    }

    /// The log broker the logs endpoints subscribe with (the dispatcher's too).
    pub fn logs(&self) -> &Arc<LogBroker> {
        &self.logs
    }

    /// The cluster's data key.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The store served.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The accepted bearer tokens (replace them to rotate).
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The request latencies recorded so far.
    pub fn metrics(&self) -> &RequestMetrics {
        &self.metrics
    }
}

type ApiRouter = OpenApiRouter<Arc<ApiState>>;

/// The resource routes (behind leader forwarding).
fn resources() -> ApiRouter {
    OpenApiRouter::new()
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::get, nodes::update, nodes::delete))
        .routes(routes!(stacks::list, stacks::create))
        .routes(routes!(stacks::get, stacks::update, stacks::delete))
        .routes(routes!(services::list, services::create))
        .routes(routes!(services::get, services::update, services::delete))
        .routes(routes!(services::rebalance))
        .routes(routes!(logs::service))
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::get, tasks::update, tasks::delete))
        .routes(routes!(logs::task))
        .routes(routes!(networks::list, networks::create))
        .routes(routes!(networks::get, networks::delete))
        .routes(routes!(tokens::tokens))
        .routes(routes!(tokens::rotate))
        .routes(routes!(secrets::list, secrets::create))
        .routes(routes!(secrets::get, secrets::delete))
        .routes(routes!(configs::list, configs::create))
        .routes(routes!(configs::get, configs::delete))
        .routes(routes!(volumes::list))
        .routes(routes!(volumes::get))
}

/// The routes every manager serves itself.
fn local() -> ApiRouter {
    OpenApiRouter::new()
        .routes(routes!(events::stream))
        .routes(routes!(cluster::info))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::document))
}

/// The OpenAPI document of [`router`]: every path, parameter, body and response.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = openapi::base();
    doc.merge(resources().into_openapi());
    doc.merge(local().into_openapi());
    openapi::document_errors(&mut doc);
    doc
}

/// The API router. The daemon puts a [`Caller`] into each request's extensions.
pub fn router(api: Arc<ApiState>) -> Router {
    let doc = serde_json::to_string(&document()).unwrap_or_else(|e| {
        format!(r#"{{"error":{{"code":"internal","message":"encode the OpenAPI document: {e}"}}}}"#)
    });
    let (resources, _) = resources().split_for_parts();
    let (local, _) = local().split_for_parts();
    let resources = resources.route_layer(from_fn_with_state(api.clone(), forward::forward));
    local
        .merge(resources)
        .fallback(error::unknown_path)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(DefaultBodyLimit::max(resource::MAX_BODY))
        .layer(Extension(openapi::Document(Arc::new(doc))))
        .layer(from_fn_with_state(api.clone(), auth::authenticate))
        .layer(from_fn_with_state(api.clone(), metrics::record))
        .with_state(api)
}
