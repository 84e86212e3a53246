//! `/v1/cluster/tokens`: the current join tokens (`GET`) and their rotation (`POST
//! /v1/cluster/tokens/rotate`). Like every API route, only admin callers reach them (the
//! local socket, a manager certificate, a bearer token); a worker's certificate gets 403.
//!
//! The join secrets live in the cluster record: a rotation writes the record back
//! naming the version it read, again if another write won in between.

use super::ApiState;
use super::error::HttpError;
use super::params::Params;
use super::resource::Body;
use crate::ca::TokenSecret;
use crate::store::{ClusterRecord, Command, StoreError};
use api::cluster::NodeRole;
use api::error::ErrorCode;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// How often a rotation is tried again when another write of the cluster record won.
const CAS_TRIES: usize = 16;

/// The cluster's join tokens and where to join.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JoinTokens {
    /// The token that makes a worker: `orch agent --join HOST:PORT --token <worker>`.
    pub worker: String,
    /// The token that makes a manager: `orch manager join --token <manager> HOST:PORT`.
    pub manager: String,
    /// The managers' addresses (`host:port`), the leader first: where to join.
    pub managers: Vec<String>,
}

/// Which token to rotate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRotate {
    pub role: NodeRole,
}

/// The current join tokens.
#[utoipa::path(get, path = "/v1/cluster/tokens", tag = "cluster",
    responses(
        (status = 200, description = "The worker and manager join tokens and the managers to join", body = JoinTokens),
        (status = 403, description = "The caller is a worker node", body = api::error::ErrorEnvelope),
        (status = 404, description = "The cluster has no CA (not made by `orch manager init`)", body = api::error::ErrorEnvelope),
    ))]
pub async fn tokens(
    State(api): State<Arc<ApiState>>,
    params: Params,
) -> Result<Secret<JoinTokens>, HttpError> {
    params.finish()?;
    let record = cluster_record(&api).await?;
    Ok(Secret(join_tokens(&api, &record)?))
}

/// Replace a role's join secret: tokens of that role given out before are refused from
/// now on; nodes that already joined keep their certificates and sessions.
#[utoipa::path(post, path = "/v1/cluster/tokens/rotate", tag = "cluster",
    request_body = TokenRotate,
    responses(
        (status = 200, description = "The join tokens after the rotation", body = JoinTokens),
        (status = 403, description = "The caller is a worker node", body = api::error::ErrorEnvelope),
        (status = 404, description = "The cluster has no CA (not made by `orch manager init`)", body = api::error::ErrorEnvelope),
    ))]
pub async fn rotate(
    State(api): State<Arc<ApiState>>,
    params: Params,
    Body(body): Body<TokenRotate>,
) -> Result<Secret<JoinTokens>, HttpError> {
    params.finish()?;
    for _ in 0..CAS_TRIES {
        let record = cluster_record(&api).await?;
        let mut rotated = record.clone();
        rotated.ca.rotate(body.role, TokenSecret::generate()?)?;
        let write = Command::SetCluster {
            record: Box::new(rotated.clone()),
            expected_version: Some(record.version),
        };
        match api.store().write(write).await {
            Ok(_) => return Ok(Secret(join_tokens(&api, &rotated)?)),
            Err(StoreError::ClusterChanged(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(HttpError::new(
        ErrorCode::Unavailable,
        "the cluster record kept changing while rotating the join token; try again",
    ))
}

/// A JSON answer that holds secrets: no cache may keep it.
pub struct Secret<T>(T);

impl<T: Serialize> IntoResponse for Secret<T> {
    fn into_response(self) -> Response {
        ([(header::CACHE_CONTROL, "no-store")], Json(self.0)).into_response()
    }
}

fn join_tokens(api: &ApiState, record: &ClusterRecord) -> Result<JoinTokens, HttpError> {
    Ok(JoinTokens {
        worker: record.ca.token(NodeRole::Worker)?.to_string(),
        manager: record.ca.token(NodeRole::Manager)?.to_string(),
        managers: api.store().managers_leader_first(),
    })
}

/// The cluster record, read linearizably; none (a store that `orch manager init` did
/// not make, or not yet): 404, there are no join tokens.
async fn cluster_record(api: &ApiState) -> Result<ClusterRecord, HttpError> {
    let read = api.store().read(|state| state.cluster.clone()).await?;
    read.value.ok_or_else(|| {
        HttpError::new(
            ErrorCode::NotFound,
            "this cluster has no CA, so no join tokens: its first manager has not finished \
             `orch manager init`",
        )
    })
}
