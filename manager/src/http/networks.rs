//! `/v1/networks`: cluster networks (overlays). Stacks make theirs; networks made
//! here are the ones stacks name as `external`. The allocator gives each a subnet
//! and a vxlan id; a network some task is still on cannot be deleted.

use super::ApiState;
use super::error::HttpError;
use super::params::{Params, expected_version, matches_all};
use super::resource::{self, Body, Found, Id, check_id, check_labels};
use api::cluster::{Kind, Meta, Network};
use api::error::{ErrorCode, ErrorEnvelope};
use api::network::INGRESS_NETWORK;
use api::stack::NetworkSpec;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// A network to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    /// The network's name on the cluster, its id.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )]
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options, `internal`, `attachable`, `ipam.config[0].subnet`/`gateway`.
    #[serde(default)]
    pub spec: NetworkSpec,
}

/// Networks, as of `version` (watch events from there).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NetworkList {
    pub version: u64,
    pub items: Vec<Network>,
}

/// List networks.
#[utoipa::path(get, path = "/v1/networks", tag = "networks",
    params(
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The networks", body = NetworkList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<NetworkList>, HttpError> {
    let labels = params.labels()?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        state
            .networks
            .iter()
            .filter(|n| matches_all(&labels, &n.meta.labels))
            .cloned()
            .collect()
    })
    .await?;
    Ok(Json(NetworkList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a network.
#[utoipa::path(get, path = "/v1/networks/{id}", tag = "networks",
    params(
        ("id" = String, Path, description = "The network's id (its name)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The network; `ETag` is its version", body = Network),
        (status = 404, description = "No such network", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Network>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    resource::get(&api, &id, stale).await
}

/// Create a network.
#[utoipa::path(post, path = "/v1/networks", tag = "networks",
    request_body = NetworkCreate,
    responses(
        (status = 201, description = "The network as committed; `ETag` is its version", body = Network),
        (status = 400, description = "An invalid id, or `ingress` (the routing mesh's network)", body = ErrorEnvelope),
        (status = 409, description = "A network with this id exists", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(api): State<Arc<ApiState>>,
    params: Params,
    Body(body): Body<NetworkCreate>,
) -> Result<Found<Network>, HttpError> {
    params.finish()?;
    check_id(Kind::Network, &body.id)?;
    if body.id == INGRESS_NETWORK {
        return Err(HttpError::invalid(format!(
            "network {INGRESS_NETWORK} is the cluster's routing-mesh network, made by the cluster itself: choose another name"
        ))
        .with("network", body.id.as_str()));
    }
    check_labels(Kind::Network, &body.labels)?;
    let mut meta = Meta::new(body.id.clone());
    meta.labels = body.labels;
    let mut spec = body.spec;
    spec.name = body.id;
    spec.external = false;
    let network = Network {
        meta,
        stack: String::new(),
        spec,
        allocation: None,
    };
    resource::create(&api, network).await
}

/// Delete a network no task is on (only at the version given, if one is).
#[utoipa::path(delete, path = "/v1/networks/{id}", tag = "networks",
    params(
        ("id" = String, Path, description = "The network's id"),
        ("version" = Option<u64>, Query, description = "Delete only at this version (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this version, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The network as it was", body = Network),
        (status = 404, description = "No such network", body = ErrorEnvelope),
        (status = 409, description = "Tasks are on the network, or it changed since the version given", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Found<Network>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    let users: Vec<String> = resource::read(&api, false, |state| {
        state
            .tasks
            .iter()
            .filter(|t| t.networks.iter().any(|n| n.network == id))
            .map(|t| t.meta.id.clone())
            .take(5)
            .collect()
    })
    .await?
    .value;
    if !users.is_empty() {
        return Err(HttpError::new(
            ErrorCode::Conflict,
            format!(
                "network {id} is in use by tasks {}: remove their services first",
                users.join(", ")
            ),
        )
        .with("network", id.clone()));
    }
    resource::delete(&api, &id, version).await
}
