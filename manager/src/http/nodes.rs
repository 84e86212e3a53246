//! `/v1/nodes`: list (by role, availability, label), get, update (labels, availability,
//! role), delete. Nodes are created by joining, not through this resource.

use super::ApiState;
use super::error::HttpError;
use super::params::{Params, expected_version, matches_all};
use super::resource::{self, Body, Found, Id, check_labels, required_version};
use crate::store::StoreError;
use api::cluster::{Availability, Kind, Node, NodeRole};
use api::error::ErrorEnvelope;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// What a user may change of a node; an absent field keeps its value.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeUpdate {
    /// The node's labels, replaced whole.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub availability: Option<Availability>,
    #[serde(default)]
    pub role: Option<NodeRole>,
}

impl NodeUpdate {
    /// `node` with this update applied.
    pub fn apply(self, mut node: Node) -> Node {
        if let Some(labels) = self.labels {
            node.meta.labels = labels;
        }
        if let Some(availability) = self.availability {
            node.spec.availability = availability;
        }
        if let Some(role) = self.role {
            node.spec.role = role;
        }
        node
    }
}

/// Nodes, as of `version` (watch events from there).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NodeList {
    pub version: u64,
    pub items: Vec<Node>,
}

/// List nodes.
#[utoipa::path(get, path = "/v1/nodes", tag = "nodes",
    params(
        ("role" = Option<NodeRole>, Query, description = "Only nodes with this role"),
        ("availability" = Option<Availability>, Query, description = "Only nodes with this availability"),
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The nodes", body = NodeList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<NodeList>, HttpError> {
    let labels = params.labels()?;
    let role: Option<NodeRole> = params.variant("role", "`manager` or `worker`")?;
    let availability: Option<Availability> =
        params.variant("availability", "`active`, `pause` or `drain`")?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        let nodes: Box<dyn Iterator<Item = &Node>> = match (role, availability) {
            (Some(role), _) => Box::new(state.nodes.by_role(role)),
            (None, Some(availability)) => Box::new(state.nodes.by_availability(availability)),
            (None, None) => Box::new(state.nodes.iter()),
        };
        nodes
            .filter(|n| availability.is_none_or(|a| a == n.spec.availability))
            .filter(|n| matches_all(&labels, &n.meta.labels))
            .cloned()
            .collect()
    })
    .await?;
    Ok(Json(NodeList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a node.
#[utoipa::path(get, path = "/v1/nodes/{id}", tag = "nodes",
    params(
        ("id" = String, Path, description = "The node's id"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The node; `ETag` is its version", body = Node),
        (status = 404, description = "No such node", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Node>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    resource::get(&api, &id, stale).await
}

/// Change a node's labels, availability or role, if it is still at the version read.
#[utoipa::path(put, path = "/v1/nodes/{id}", tag = "nodes",
    request_body = NodeUpdate,
    params(
        ("id" = String, Path, description = "The node's id"),
        ("version" = Option<u64>, Query, description = "The version read (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "The version read, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The node as committed", body = Node),
        (status = 404, description = "No such node", body = ErrorEnvelope),
        (status = 409, description = "The node changed since the version read; details name both versions", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
    Body(body): Body<NodeUpdate>,
) -> Result<Found<Node>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    let version = required_version(Kind::Node, &id, version)?;
    if let Some(labels) = &body.labels {
        check_labels(Kind::Node, labels)?;
    }
    // The status is the system's: keep the one of the version named, never an older one.
    let current: Node = resource::fetch(&api, &id, false).await?;
    if current.meta.version != version {
        return Err(StoreError::Conflict {
            kind: Kind::Node,
            id,
            expected: version,
            actual: current.meta.version,
        }
        .into());
    }
    resource::update(&api, body.apply(current), version).await
}

/// Remove a node from the cluster (only at the version given, if one is).
#[utoipa::path(delete, path = "/v1/nodes/{id}", tag = "nodes",
    params(
        ("id" = String, Path, description = "The node's id"),
        ("version" = Option<u64>, Query, description = "Delete only at this version (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this version, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The node as it was", body = Node),
        (status = 404, description = "No such node", body = ErrorEnvelope),
        (status = 409, description = "The node changed since the version given", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Found<Node>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    resource::delete(&api, &id, version).await
}
