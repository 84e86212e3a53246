//! `/v1/stacks`: list, get, create, update, delete stacks (with `?volumes=true`, the
//! stack's named volumes are marked for removal from every node, also the volumes a
//! stack deleted without it left).

use super::ApiState;
use super::error::HttpError;
use super::params::{Params, expected_version, matches_all};
use super::resource::{self, Body, Found, Id, check_id, check_labels, required_version};
use super::volumes::VolumeList;
use crate::orchestrator::volumes::{marked_for_removal, unsupported};
use crate::store::Command;
use api::StackSpec;
use api::cluster::{Event, Kind, Meta, Object, Stack, Volume};
use api::error::{ErrorCode, ErrorEnvelope};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// A stack to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StackCreate {
    /// The stack's name, its id.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )]
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub spec: StackSpec,
}

/// The new labels and spec of a stack.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StackUpdate {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub spec: StackSpec,
}

/// Stacks, as of `version` (watch events from there).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StackList {
    pub version: u64,
    pub items: Vec<Stack>,
}

/// List stacks.
#[utoipa::path(get, path = "/v1/stacks", tag = "stacks",
    params(
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The stacks", body = StackList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<StackList>, HttpError> {
    let labels = params.labels()?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        state
            .stacks
            .iter()
            .filter(|s| matches_all(&labels, &s.meta.labels))
            .cloned()
            .collect()
    })
    .await?;
    Ok(Json(StackList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a stack.
#[utoipa::path(get, path = "/v1/stacks/{id}", tag = "stacks",
    params(
        ("id" = String, Path, description = "The stack's id"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The stack; `ETag` is its version", body = Stack),
        (status = 404, description = "No such stack", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Stack>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    resource::get(&api, &id, stale).await
}

/// Create a stack.
#[utoipa::path(post, path = "/v1/stacks", tag = "stacks",
    request_body = StackCreate,
    responses(
        (status = 201, description = "The stack as committed; `ETag` is its version", body = Stack),
        (status = 400, description = "A volume the nodes cannot make, or a network that would be the routing mesh's (`ingress`)", body = ErrorEnvelope),
        (status = 409, description = "A stack with this id exists, or a service would publish a port another service has on the routing mesh (or in host mode, for a routing-mesh port)", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(api): State<Arc<ApiState>>,
    params: Params,
    Body(body): Body<StackCreate>,
) -> Result<Found<Stack>, HttpError> {
    params.finish()?;
    check_id(Kind::Stack, &body.id)?;
    check_labels(Kind::Stack, &body.labels)?;
    check_volumes(&body.id, &body.spec)?;
    check_networks(&body.id, &body.spec)?;
    let mut spec = body.spec;
    super::secrets::seal_stack(&api, &body.id, &mut spec)?;
    check_mesh_ports(&api, &body.id, &spec).await?;
    let mut meta = Meta::new(body.id);
    meta.labels = body.labels;
    resource::create(&api, Stack { meta, spec }).await
}

/// Replace a stack's labels and spec, if it is still at the version read.
#[utoipa::path(put, path = "/v1/stacks/{id}", tag = "stacks",
    request_body = StackUpdate,
    params(
        ("id" = String, Path, description = "The stack's id"),
        ("version" = Option<u64>, Query, description = "The version read (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "The version read, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The stack as committed", body = Stack),
        (status = 404, description = "No such stack", body = ErrorEnvelope),
        (status = 400, description = "A volume the nodes cannot make, or a network that would be the routing mesh's (`ingress`)", body = ErrorEnvelope),
        (status = 409, description = "The stack changed since the version read (details name both versions), or a service would publish a port another service has on the routing mesh (or in host mode, for a routing-mesh port)", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
    Body(body): Body<StackUpdate>,
) -> Result<Found<Stack>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    let version = required_version(Kind::Stack, &id, version)?;
    check_labels(Kind::Stack, &body.labels)?;
    check_volumes(&id, &body.spec)?;
    check_networks(&id, &body.spec)?;
    let mut spec = body.spec;
    super::secrets::seal_stack(&api, &id, &mut spec)?;
    check_mesh_ports(&api, &id, &spec).await?;
    let mut meta = Meta::new(id);
    meta.labels = body.labels;
    resource::update(&api, Stack { meta, spec }, version).await
}

/// Refuses volumes of stack `stack` that the nodes cannot make, naming them.
fn check_volumes(stack: &str, spec: &StackSpec) -> Result<(), HttpError> {
    for (key, volume) in &spec.volumes {
        if let Some(why) = unsupported(volume) {
            return Err(
                HttpError::invalid(format!("volume {key} of stack {stack}: {why}"))
                    .with("stack", stack)
                    .with("volume", key.as_str()),
            );
        }
    }
    Ok(())
}

/// Refuses networks of stack `stack` that would be the routing mesh's, or that the
/// cluster cannot make as declared, naming them.
fn check_networks(stack: &str, spec: &StackSpec) -> Result<(), HttpError> {
    let reserved = crate::allocator::ingress::reserved_networks(stack, spec);
    if let Some((network, _)) = reserved.first() {
        let messages: Vec<&str> = reserved.iter().map(|(_, m)| m.as_str()).collect();
        return Err(HttpError::invalid(messages.join("; "))
            .with("stack", stack)
            .with("network", network.as_str()));
    }
    for (key, network) in &spec.networks {
        if let Some(why) = crate::orchestrator::networks::unsupported(network) {
            return Err(
                HttpError::invalid(format!("network {key} of stack {stack}: {why}"))
                    .with("stack", stack)
                    .with("network", key.as_str()),
            );
        }
    }
    Ok(())
}

/// What deleting a stack answers: the stack as it was or, when it was already deleted
/// and `?volumes=true` found volumes of it left, those volumes, each marked for removal.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StackDeleted {
    Stack(Box<Stack>),
    Volumes(VolumeList),
}

/// Delete a stack (only at the version given, if one is). Its services, networks,
/// secrets and configs go; its named volumes stay on the nodes unless `volumes`,
/// which also removes the volumes a stack deleted without it left.
#[utoipa::path(delete, path = "/v1/stacks/{id}", tag = "stacks",
    params(
        ("id" = String, Path, description = "The stack's id"),
        ("volumes" = Option<bool>, Query, description = "Also remove the stack's named (not external) volumes from every node, once the tasks using them stopped; follow them with `GET /v1/volumes?stack=ID`. Of a stack already deleted (without `volumes`), removes the volumes it left"),
        ("version" = Option<u64>, Query, description = "Delete only at this version (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this version, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The stack as it was; with `volumes` and a stack already deleted, the volumes it left (`{version, items}`), each marked for removal", body = StackDeleted),
        (status = 404, description = "No such stack (with `volumes`: nor any volume of it)", body = ErrorEnvelope),
        (status = 409, description = "The stack changed since the version given", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Found<StackDeleted>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    let volumes = params.flag("volumes")?;
    params.finish()?;
    if !volumes {
        return resource::delete(&api, &id, version)
            .await
            .map(deleted_stack);
    }
    // The volumes are marked in the same commit, only if the stack and they are
    // still as read; without a version given, a write that came between is read
    // again.
    let mut attempt = 1;
    loop {
        let read = resource::read(&api, false, |state| {
            let left: Vec<Volume> = state.volumes.by_stack(&id).cloned().collect();
            (left, state.stacks.get(&id).map(|s| s.meta.version))
        })
        .await?;
        let (left, current) = read.value;
        let marks: Vec<Command> = left
            .iter()
            .filter_map(marked_for_removal)
            .map(|v| {
                let read = v.meta.version;
                Command::update(Object::Volume(v), read)
            })
            .collect();
        let done = if current.is_none() && version.is_none() && !left.is_empty() {
            remove_left(&api, left, marks, read.version).await
        } else {
            let mut commands = vec![Command::delete(Kind::Stack, &id, version.or(current))];
            commands.extend(marks);
            let command = Command::Batch { commands };
            resource::commit(&api, command, &id, StatusCode::OK)
                .await
                .map(deleted_stack)
        };
        match done {
            Err(e) if e.status() == StatusCode::CONFLICT && version.is_none() && attempt < 3 => {
                attempt += 1;
            }
            done => return done,
        }
    }
}

fn deleted_stack(found: Found<Stack>) -> Found<StackDeleted> {
    Found {
        status: found.status,
        version: found.version,
        object: StackDeleted::Stack(Box::new(found.object)),
    }
}

/// Commits `marks` on the volumes `left` by a stack already deleted (read at `read`)
/// and answers with them as committed.
async fn remove_left(
    api: &ApiState,
    mut left: Vec<Volume>,
    marks: Vec<Command>,
    read: u64,
) -> Result<Found<StackDeleted>, HttpError> {
    let mut version = read;
    if !marks.is_empty() {
        let applied = api.store.write(Command::Batch { commands: marks }).await?;
        version = applied.version;
        for event in applied.changes {
            let Event::Updated {
                object: Object::Volume(committed),
            } = event
            else {
                continue;
            };
            if let Some(volume) = left.iter_mut().find(|v| v.meta.id == committed.meta.id) {
                *volume = committed;
            }
        }
    }
    Ok(Found {
        status: StatusCode::OK,
        version,
        object: StackDeleted::Volumes(VolumeList {
            version,
            items: left,
        }),
    })
}

/// Refuses a stack whose services would publish a routing-mesh port another service
/// has, or a host port another service has on the mesh, or the other way round
/// (`409`, naming both).
async fn check_mesh_ports(api: &ApiState, id: &str, spec: &StackSpec) -> Result<(), HttpError> {
    let conflicts = resource::read(api, false, |s| {
        crate::allocator::ingress::stack_conflicts(s, id, spec)
    })
    .await?
    .value;
    if conflicts.is_empty() {
        return Ok(());
    }
    Err(HttpError::new(ErrorCode::Conflict, conflicts.join("; ")).with("stack", id))
}
