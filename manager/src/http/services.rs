//! `/v1/services`: list (by stack, by label), get, create, update, delete services.

use super::ApiState;
use super::error::HttpError;
use super::params::{Params, expected_version, matches_all};
use super::resource::{self, Body, Found, Id, check_id, check_labels, required_version};
use api::ServiceSpec;
use api::cluster::{Kind, Meta, Service};
use api::error::ErrorEnvelope;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// A service to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceCreate {
    /// The service's id.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )]
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The id of the stack the service belongs to (empty: none).
    #[serde(default)]
    pub stack: String,
    /// The service's name within its stack.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub spec: ServiceSpec,
}

/// The new labels, stack, name and spec of a service.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceUpdate {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub stack: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub spec: ServiceSpec,
}

/// Services, as of `version` (watch events from there).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ServiceList {
    pub version: u64,
    pub items: Vec<Service>,
}

/// List services.
#[utoipa::path(get, path = "/v1/services", tag = "services",
    params(
        ("stack" = Option<String>, Query, description = "Only the services of this stack"),
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The services", body = ServiceList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<ServiceList>, HttpError> {
    let labels = params.labels()?;
    let stack = params.take("stack")?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        let services: Box<dyn Iterator<Item = &Service>> = match &stack {
            Some(stack) => Box::new(state.services.by_stack(stack)),
            None => Box::new(state.services.iter()),
        };
        services
            .filter(|s| matches_all(&labels, &s.meta.labels))
            .cloned()
            .collect()
    })
    .await?;
    Ok(Json(ServiceList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a service.
#[utoipa::path(get, path = "/v1/services/{id}", tag = "services",
    params(
        ("id" = String, Path, description = "The service's id"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The service; `ETag` is its version", body = Service),
        (status = 404, description = "No such service", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Service>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    resource::get(&api, &id, stale).await
}

/// Create a service.
#[utoipa::path(post, path = "/v1/services", tag = "services",
    request_body = ServiceCreate,
    responses(
        (status = 201, description = "The service as committed; `ETag` is its version", body = Service),
        (status = 409, description = "A service with this id exists", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(api): State<Arc<ApiState>>,
    params: Params,
    Body(body): Body<ServiceCreate>,
) -> Result<Found<Service>, HttpError> {
    params.finish()?;
    check_id(Kind::Service, &body.id)?;
    check_labels(Kind::Service, &body.labels)?;
    check_container_name(&body.id, &body.spec)?;
    let mut meta = Meta::new(body.id);
    meta.labels = body.labels;
    let service = Service {
        meta,
        stack: body.stack,
        name: body.name,
        spec: body.spec,
        ..Service::default()
    };
    resource::create(&api, service).await
}

/// Replace a service's labels and spec, if it is still at the version read.
#[utoipa::path(put, path = "/v1/services/{id}", tag = "services",
    request_body = ServiceUpdate,
    params(
        ("id" = String, Path, description = "The service's id"),
        ("version" = Option<u64>, Query, description = "The version read (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "The version read, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The service as committed", body = Service),
        (status = 404, description = "No such service", body = ErrorEnvelope),
        (status = 409, description = "The service changed since the version read; details name both versions", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
    Body(body): Body<ServiceUpdate>,
) -> Result<Found<Service>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    let version = required_version(Kind::Service, &id, version)?;
    check_labels(Kind::Service, &body.labels)?;
    check_container_name(&id, &body.spec)?;
    // System-written fields (virtual addresses, rollout) stay; a new spec keeps the
    // old one for a rollback.
    let mut service: Service = resource::fetch(&api, &id, false).await?;
    service.meta.labels = body.labels;
    service.stack = body.stack;
    service.name = body.name;
    if service.spec != body.spec {
        service.previous_spec = Some(std::mem::replace(&mut service.spec, body.spec));
        service.update_status = None;
    }
    resource::update(&api, service, version).await
}

/// Delete a service (only at the version given, if one is).
#[utoipa::path(delete, path = "/v1/services/{id}", tag = "services",
    params(
        ("id" = String, Path, description = "The service's id"),
        ("version" = Option<u64>, Query, description = "Delete only at this version (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this version, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The service as it was", body = Service),
        (status = 404, description = "No such service", body = ErrorEnvelope),
        (status = 409, description = "The service changed since the version given", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Found<Service>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    resource::delete(&api, &id, version).await
}

/// Ask for a rebalance: the service's running tasks move, a batch at a time under its
/// `update_config`, until its placement strategy is satisfied. Its `rebalance`
/// status says how it goes.
#[utoipa::path(post, path = "/v1/services/{id}/rebalance", tag = "services",
    params(("id" = String, Path, description = "The service's id")),
    responses(
        (status = 200, description = "The service with the rebalance asked for", body = Service),
        (status = 400, description = "The service is global or a job: nothing to rebalance", body = ErrorEnvelope),
        (status = 404, description = "No such service", body = ErrorEnvelope),
    ))]
pub async fn rebalance(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    params: Params,
) -> Result<Found<Service>, HttpError> {
    use api::deploy::DeployMode;
    params.finish()?;
    // Other writers (the orchestrator, above all) may win the version race: retry.
    let mut tries = 0;
    loop {
        let mut service: Service = resource::fetch(&api, &id, false).await?;
        let mode = crate::orchestrator::policy::mode(&service.spec);
        if mode != DeployMode::Replicated {
            return Err(HttpError::invalid(format!(
                "service {id} is {}: only replicated services are rebalanced (a global service runs one task per node, a job runs to completion)",
                match mode {
                    DeployMode::Global => "global",
                    DeployMode::GlobalJob => "a global job",
                    _ => "a replicated job",
                }
            )));
        }
        service.rebalance = Some(api::cluster::RebalanceStatus::default());
        let version = service.meta.version;
        match resource::update(&api, service, version).await {
            Err(e) if e.status() == axum::http::StatusCode::CONFLICT && tries < 5 => tries += 1,
            other => return other,
        }
    }
}

/// `container_name` names one container: a service with it runs one replica.
fn check_container_name(id: &str, spec: &ServiceSpec) -> Result<(), HttpError> {
    let replicas = crate::orchestrator::policy::replicas(spec);
    match &spec.container_name {
        Some(name) if replicas > 1 => Err(HttpError::invalid(format!(
            "service {id}: container_name {name:?} names one container, but the service has {replicas} replicas"
        ))
        .with("field", "spec.container_name")),
        _ => Ok(()),
    }
}
