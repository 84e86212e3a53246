//! `/v1/volumes/...`: named volumes.

use super::Engine;
use super::error::{Failure, invalid};
use super::params::Params;
use crate::engine::volume::VolumeError;
use api::error::{ApiError, ErrorCode};
use api::volume::{Volume, VolumeCreate, VolumePrune};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use std::sync::Arc;

type St = State<Arc<Engine>>;

impl From<VolumeError> for Failure {
    fn from(e: VolumeError) -> Failure {
        let code = match &e {
            VolumeError::Name(_) => ErrorCode::InvalidArgument,
            VolumeError::NotFound(_) => ErrorCode::NotFound,
            VolumeError::InUse { .. } => ErrorCode::Conflict,
            VolumeError::Io { .. } => ErrorCode::Internal,
        };
        Failure(ApiError::new(code, e.to_string()))
    }
}

/// `GET /v1/volumes`
pub async fn list(State(e): St) -> Result<Json<Vec<Volume>>, Failure> {
    let v = e.containers.volumes();
    let mut out = Vec::new();
    for name in v.names() {
        out.push(v.get(&name, e.containers.volume_users(&name))?);
    }
    Ok(Json(out))
}

/// `POST /v1/volumes` with a [`VolumeCreate`].
pub async fn create(State(e): St, body: Bytes) -> Result<(StatusCode, Json<Volume>), Failure> {
    let req: VolumeCreate = serde_json::from_slice(&body).map_err(|err| {
        invalid(format!(
            "create volume: the body is not a volume spec: {err}"
        ))
    })?;
    Ok((
        StatusCode::CREATED,
        Json(e.containers.volumes().create(&req.name, &req.labels)?),
    ))
}

/// `GET /v1/volumes/{name}`
pub async fn inspect(State(e): St, Path(name): Path<String>) -> Result<Json<Volume>, Failure> {
    let users = e.containers.volume_users(&name);
    Ok(Json(e.containers.volumes().get(&name, users)?))
}

/// `DELETE /v1/volumes/{name}?force=` (force: even while containers mount it).
pub async fn remove(
    State(e): St,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, Failure> {
    let p = Params::parse(q.as_deref());
    if let Some(user) = e.containers.volume_users(&name).first()
        && !p.flag("force")?
    {
        return Err(VolumeError::InUse {
            name,
            container: user[..12].to_owned(),
        }
        .into());
    }
    e.containers.volumes().remove(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/volumes/prune`: remove every volume no container mounts.
pub async fn prune(State(e): St) -> Result<Json<VolumePrune>, Failure> {
    let v = e.containers.volumes();
    let mut report = VolumePrune::default();
    for name in v.names() {
        if e.containers.volume_users(&name).is_empty() {
            report.reclaimed += v.remove(&name)?;
            report.removed.push(name);
        }
    }
    Ok(Json(report))
}
