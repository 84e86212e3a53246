//! `/v1/secrets`: secrets made on their own (the ones stacks name as `external`);
//! stacks make theirs. A value is sealed with the cluster's data key before it is
//! written (see [`keyring`](crate::keyring)); no answer or event carries it, only its
//! size and keyed digest. A secret some task uses cannot be deleted.

use super::ApiState;
use super::error::HttpError;
use super::params::{Params, expected_version, matches_all};
use super::resource::{self, Body, Found, Id, check_id, check_labels};
use crate::orchestrator::files::file_object_id;
use api::cluster::{Kind, Meta};
use api::error::{ErrorCode, ErrorEnvelope};
use api::secret::{MAX_SIZE, Secret};
use api::stack::StackSpec;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// A secret to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretCreate {
    /// The secret's name on the cluster, its id.
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

/// Secrets (without their values), as of `version`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SecretList {
    pub version: u64,
    pub items: Vec<Secret>,
}

/// The decoded `data` of a secret or config create, refused when it is not base64 or
/// too large.
pub(super) fn decode_value(kind: Kind, id: &str, data: &str) -> Result<Vec<u8>, HttpError> {
    let value = data_encoding::BASE64.decode(data.as_bytes()).map_err(|e| {
        HttpError::invalid(format!("{kind} {id}: `data` is not base64: {e}")).with("id", id)
    })?;
    if value.len() > MAX_SIZE {
        return Err(HttpError::invalid(format!(
            "{kind} {id}: the value has {} bytes; at most {MAX_SIZE} are allowed",
            value.len()
        ))
        .with("id", id));
    }
    Ok(value)
}

/// List secrets (metadata and digests only).
#[utoipa::path(get, path = "/v1/secrets", tag = "secrets",
    params(
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The secrets, without their values", body = SecretList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<SecretList>, HttpError> {
    let labels = params.labels()?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        state
            .secrets
            .iter()
            .filter(|s| matches_all(&labels, &s.meta.labels))
            .map(|s| s.clone().redacted())
            .collect()
    })
    .await?;
    Ok(Json(SecretList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a secret (metadata and digest only).
#[utoipa::path(get, path = "/v1/secrets/{id}", tag = "secrets",
    params(
        ("id" = String, Path, description = "The secret's id (its name)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The secret without its value; `ETag` is its version", body = Secret),
        (status = 404, description = "No such secret", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Secret>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    redact(resource::get(&api, &id, stale).await?)
}

fn redact(found: Found<Secret>) -> Result<Found<Secret>, HttpError> {
    Ok(Found {
        object: found.object.redacted(),
        ..found
    })
}

/// Create a secret: its value is sealed before it is written.
#[utoipa::path(post, path = "/v1/secrets", tag = "secrets",
    request_body = SecretCreate,
    responses(
        (status = 201, description = "The secret as committed, without its value; `ETag` is its version", body = Secret),
        (status = 409, description = "A secret with this id exists", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(api): State<Arc<ApiState>>,
    params: Params,
    Body(body): Body<SecretCreate>,
) -> Result<Found<Secret>, HttpError> {
    params.finish()?;
    check_id(Kind::Secret, &body.id)?;
    check_labels(Kind::Secret, &body.labels)?;
    let value = decode_value(Kind::Secret, &body.id, &body.data)?;
    let sealed = api.keyring().seal(&body.id, &value).map_err(|e| {
        HttpError::new(ErrorCode::Internal, e.to_string()).with("id", body.id.clone())
    })?;
    let mut meta = Meta::new(body.id);
    meta.labels = body.labels;
    let secret = Secret {
        meta,
        stack: String::new(),
        value: sealed,
    };
    redact(resource::create(&api, secret).await?)
}

/// Delete a secret no task uses (only at the version given, if one is).
#[utoipa::path(delete, path = "/v1/secrets/{id}", tag = "secrets",
    params(
        ("id" = String, Path, description = "The secret's id"),
        ("version" = Option<u64>, Query, description = "Delete only at this version (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this version, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The secret as it was, without its value", body = Secret),
        (status = 404, description = "No such secret", body = ErrorEnvelope),
        (status = 409, description = "Tasks use the secret, or it changed since the version given", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Found<Secret>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    refuse_in_use(&api, Kind::Secret, &id).await?;
    redact(resource::delete(&api, &id, version).await?)
}

/// Refuse to delete secret or config `id` while a task that is to run uses it.
pub(super) async fn refuse_in_use(api: &ApiState, kind: Kind, id: &str) -> Result<(), HttpError> {
    let users: Vec<String> = resource::read(api, false, |state| {
        state
            .tasks
            .iter()
            .filter(|t| crate::orchestrator::wanted(t))
            .filter(|t| {
                let refs = match kind {
                    Kind::Secret => &t.spec.secrets,
                    _ => &t.spec.configs,
                };
                refs.iter().any(|r| r.source == id)
            })
            .map(|t| t.meta.id.clone())
            .take(5)
            .collect()
    })
    .await?
    .value;
    if users.is_empty() {
        return Ok(());
    }
    Err(HttpError::new(
        ErrorCode::Conflict,
        format!(
            "{kind} {id} is in use by tasks {}: remove their services first",
            users.join(", ")
        ),
    )
    .with("id", id.to_owned()))
}

/// Seals the secret values of stack `stack` as the API takes it, so no value enters
/// the raft log: each secret's inline `content` (what `orch up` read from its file or
/// environment variable) becomes `sealed`. A `sealed` value sent back must be one this
/// cluster sealed for that secret. Configs must carry their `content`.
pub(super) fn seal_stack(
    api: &ApiState,
    stack: &str,
    spec: &mut StackSpec,
) -> Result<(), HttpError> {
    let invalid = |kind: Kind, key: &str, why: String| {
        HttpError::invalid(format!("{kind} {key} of stack {stack}: {why}"))
            .with("stack", stack.to_owned())
            .with(kind.as_str(), key.to_owned())
    };
    for (key, declared) in &mut spec.secrets {
        if declared.external {
            declared.content = None;
            declared.sealed = None;
            continue;
        }
        let id = file_object_id(stack, key, declared);
        match (declared.content.take(), &declared.sealed) {
            (Some(content), _) => {
                if content.len() > MAX_SIZE {
                    let why = format!("the value has {} bytes; at most {MAX_SIZE}", content.len());
                    return Err(invalid(Kind::Secret, key, why));
                }
                let sealed = api
                    .keyring()
                    .seal(&id, content.as_bytes())
                    .map_err(|e| invalid(Kind::Secret, key, e.to_string()))?;
                declared.sealed = Some(sealed);
            }
            (None, Some(sealed)) => {
                api.keyring()
                    .open(&id, sealed)
                    .map_err(|e| invalid(Kind::Secret, key, e.to_string()))?;
            }
            (None, None) => {
                let why = "no value: send its `content` inline (`orch up` reads `file` and `environment` sources)";
                return Err(invalid(Kind::Secret, key, why.to_owned()));
            }
        }
    }
    for (key, declared) in &spec.configs {
        match &declared.content {
            _ if declared.external => {}
            None => {
                let why = "no value: send its `content` inline (`orch up` reads `file` and `environment` sources)";
                return Err(invalid(Kind::Config, key, why.to_owned()));
            }
            Some(content) if content.len() > MAX_SIZE => {
                let why = format!("the value has {} bytes; at most {MAX_SIZE}", content.len());
                return Err(invalid(Kind::Config, key, why));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
