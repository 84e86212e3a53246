//! `/v1/configs`: configs made on their own (the ones stacks name as `external`);
//! stacks make theirs. A config's value is not secret: answers carry it (base64).
//! A config some task uses cannot be deleted.

use super::ApiState;
use super::error::HttpError;
use super::params::{Params, expected_version, matches_all};
use super::resource::{self, Body, Found, Id, check_id, check_labels};
use super::secrets::{decode_value, refuse_in_use};
use crate::orchestrator::files::config_of;
use api::cluster::{Kind, Meta};
use api::error::ErrorEnvelope;
use api::secret::Config;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// A config to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigCreate {
    /// The config's name on the cluster, its id.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )]
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The value, base64 (at most 500 KiB once decoded).
    pub data: String,
}

/// Configs, as of `version`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConfigList {
    pub version: u64,
    pub items: Vec<Config>,
}

/// List configs.
#[utoipa::path(get, path = "/v1/configs", tag = "configs",
    params(
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The configs", body = ConfigList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<ConfigList>, HttpError> {
    let labels = params.labels()?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        let matching = state
            .configs
            .iter()
            .filter(|c| matches_all(&labels, &c.meta.labels));
        matching.cloned().collect()
    })
    .await?;
    Ok(Json(ConfigList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a config with its value.
#[utoipa::path(get, path = "/v1/configs/{id}", tag = "configs",
    params(
        ("id" = String, Path, description = "The config's id (its name)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The config; `ETag` is its version", body = Config),
        (status = 404, description = "No such config", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Config>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    resource::get(&api, &id, stale).await
}

/// Create a config.
#[utoipa::path(post, path = "/v1/configs", tag = "configs",
    request_body = ConfigCreate,
    responses(
        (status = 201, description = "The config as committed; `ETag` is its version", body = Config),
        (status = 409, description = "A config with this id exists", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(api): State<Arc<ApiState>>,
    params: Params,
    Body(body): Body<ConfigCreate>,
) -> Result<Found<Config>, HttpError> {
    params.finish()?;
    check_id(Kind::Config, &body.id)?;
    check_labels(Kind::Config, &body.labels)?;
    let value = decode_value(Kind::Config, &body.id, &body.data)?;
    let mut meta = Meta::new(body.id);
    meta.labels = body.labels;
    resource::create(&api, config_of(meta, "", &value)).await
}

/// Delete a config no task uses (only at the version given, if one is).
#[utoipa::path(delete, path = "/v1/configs/{id}", tag = "configs",
    params(
        ("id" = String, Path, description = "The config's id"),
        ("version" = Option<u64>, Query, description = "Delete only at this version (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this version, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The config as it was", body = Config),
        (status = 404, description = "No such config", body = ErrorEnvelope),
        (status = 409, description = "Tasks use the config, or it changed since the version given", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Found<Config>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    refuse_in_use(&api, Kind::Config, &id).await?;
    resource::delete(&api, &id, version).await
}
