//! `/v1/volumes`: the named volumes stacks declare (and those left by stacks taken
//! down without them), read-only. Each lives on the
//! nodes that ran a task mounting it; one marked `remove` (`orch down --volumes`)
//! lists the nodes that confirmed removing it and goes once every node did.

use super::ApiState;
use super::error::HttpError;
use super::params::{Params, matches_all};
use super::resource::{self, Found, Id};
use api::cluster::Volume;
use api::error::ErrorEnvelope;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// Volumes, as of `version` (watch events from there).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VolumeList {
    pub version: u64,
    pub items: Vec<Volume>,
}

/// List volumes.
#[utoipa::path(get, path = "/v1/volumes", tag = "volumes",
    params(
        ("stack" = Option<String>, Query, description = "Only the volumes this stack declared"),
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The volumes", body = VolumeList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<VolumeList>, HttpError> {
    let stack = params.take("stack")?;
    let labels = params.labels()?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        state
            .volumes
            .iter()
            .filter(|v| stack.as_ref().is_none_or(|s| *s == v.stack))
            .filter(|v| matches_all(&labels, &v.meta.labels))
            .cloned()
            .collect()
    })
    .await?;
    Ok(Json(VolumeList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a volume.
#[utoipa::path(get, path = "/v1/volumes/{id}", tag = "volumes",
    params(
        ("id" = String, Path, description = "The volume's id (its name on the nodes)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The volume; `ETag` is its version", body = Volume),
        (status = 404, description = "No such volume", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Volume>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    resource::get(&api, &id, stale).await
}
