//! `/v1/tasks`: list (by service, node, desired state, label), get, create, update, delete
//! tasks. Tasks are mostly written by the orchestrator, scheduler and dispatcher; the API
//! offers the same writes for tools and tests.

use super::ApiState;
use super::error::HttpError;
use super::params::{Params, expected_version, matches_all};
use super::resource::{self, Body, Found, Id, check_id, check_labels, required_version};
use api::cluster::{Kind, Meta, Task, TaskState, TaskStatus};
use api::error::ErrorEnvelope;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// A task to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskCreate {
    /// The task's id.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )]
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The id of the service this task runs.
    #[serde(default)]
    pub service: String,
    /// Replica slot (1-based) for replicated services; 0 for global ones.
    #[serde(default)]
    pub slot: u64,
    /// The node the task is assigned to.
    #[serde(default)]
    pub node: Option<String>,
    /// What the orchestrator wants.
    #[serde(default)]
    pub desired_state: TaskState,
    /// What the system observed.
    #[serde(default)]
    pub status: TaskStatus,
}

/// The new labels and fields of a task.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskUpdate {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The id of the service this task runs.
    #[serde(default)]
    pub service: String,
    /// Replica slot (1-based) for replicated services; 0 for global ones.
    #[serde(default)]
    pub slot: u64,
    /// The node the task is assigned to.
    #[serde(default)]
    pub node: Option<String>,
    /// What the orchestrator wants.
    #[serde(default)]
    pub desired_state: TaskState,
    /// What the system observed.
    #[serde(default)]
    pub status: TaskStatus,
}

impl TaskUpdate {
    fn into_task(self, id: String) -> Task {
        let mut meta = Meta::new(id);
        meta.labels = self.labels;
        Task {
            meta,
            service: self.service,
            slot: self.slot,
            node: self.node,
            desired_state: self.desired_state,
            status: self.status,
            ..Task::default()
        }
    }
}

impl TaskCreate {
    fn into_task(self) -> Task {
        let update = TaskUpdate {
            labels: self.labels,
            service: self.service,
            slot: self.slot,
            node: self.node,
            desired_state: self.desired_state,
            status: self.status,
        };
        update.into_task(self.id)
    }
}

/// Tasks, as of `version` (watch events from there).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaskList {
    pub version: u64,
    pub items: Vec<Task>,
}

/// List tasks.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks",
    params(
        ("service" = Option<String>, Query, description = "Only the tasks of this service"),
        ("node" = Option<String>, Query, description = "Only the tasks assigned to this node"),
        ("desired_state" = Option<TaskState>, Query, description = "Only the tasks with this desired state"),
        ("label" = Option<Vec<String>>, Query, description = "Only objects with this label: `key=value`, or `key` for any value; repeatable (all must match)"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses((status = 200, description = "The tasks", body = TaskList)))]
pub async fn list(
    State(api): State<Arc<ApiState>>,
    mut params: Params,
) -> Result<Json<TaskList>, HttpError> {
    let labels = params.labels()?;
    let service = params.take("service")?;
    let node = params.take("node")?;
    let desired: Option<TaskState> = params.variant(
        "desired_state",
        "a task state such as `running` or `shutdown`",
    )?;
    let stale = params.flag("stale")?;
    params.finish()?;
    let read = resource::read(&api, stale, |state| {
        // The most selective index given leads; the other filters check each row.
        let tasks: Box<dyn Iterator<Item = &Task>> = match (&service, &node, desired) {
            (Some(service), _, _) => Box::new(state.tasks.by_service(service)),
            (None, Some(node), _) => Box::new(state.tasks.by_node(node)),
            (None, None, Some(desired)) => Box::new(state.tasks.by_desired_state(desired)),
            (None, None, None) => Box::new(state.tasks.iter()),
        };
        tasks
            .filter(|t| service.as_ref().is_none_or(|s| *s == t.service))
            .filter(|t| node.is_none() || node == t.node)
            .filter(|t| desired.is_none_or(|d| d == t.desired_state))
            .filter(|t| matches_all(&labels, &t.meta.labels))
            .cloned()
            .collect()
    })
    .await?;
    Ok(Json(TaskList {
        version: read.version,
        items: read.value,
    }))
}

/// Get a task.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks",
    params(
        ("id" = String, Path, description = "The task's id"),
        ("stale" = Option<bool>, Query, description = "Serve this manager's local state instead of a linearizable read"),
    ),
    responses(
        (status = 200, description = "The task; `ETag` is its version", body = Task),
        (status = 404, description = "No such task", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    mut params: Params,
) -> Result<Found<Task>, HttpError> {
    let stale = params.flag("stale")?;
    params.finish()?;
    resource::get(&api, &id, stale).await
}

/// Create a task.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks",
    request_body = TaskCreate,
    responses(
        (status = 201, description = "The task as committed; `ETag` is its version", body = Task),
        (status = 409, description = "A task with this id exists", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(api): State<Arc<ApiState>>,
    params: Params,
    Body(body): Body<TaskCreate>,
) -> Result<Found<Task>, HttpError> {
    params.finish()?;
    check_id(Kind::Task, &body.id)?;
    check_labels(Kind::Task, &body.labels)?;
    resource::create(&api, body.into_task()).await
}

/// Replace a task's labels and spec, if it is still at the version read.
#[utoipa::path(put, path = "/v1/tasks/{id}", tag = "tasks",
    request_body = TaskUpdate,
    params(
        ("id" = String, Path, description = "The task's id"),
        ("version" = Option<u64>, Query, description = "The version read (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "The version read, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The task as committed", body = Task),
        (status = 404, description = "No such task", body = ErrorEnvelope),
        (status = 409, description = "The task changed since the version read; details name both versions", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
    Body(body): Body<TaskUpdate>,
) -> Result<Found<Task>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    let version = required_version(Kind::Task, &id, version)?;
    check_labels(Kind::Task, &body.labels)?;
    resource::update(&api, body.into_task(id), version).await
}

/// Delete a task (only at the version given, if one is).
#[utoipa::path(delete, path = "/v1/tasks/{id}", tag = "tasks",
    params(
        ("id" = String, Path, description = "The task's id"),
        ("version" = Option<u64>, Query, description = "Delete only at this version (or `If-Match`)"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this version, as `\"12\"`"),
    ),
    responses(
        (status = 200, description = "The task as it was", body = Task),
        (status = 404, description = "No such task", body = ErrorEnvelope),
        (status = 409, description = "The task changed since the version given", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Found<Task>, HttpError> {
    let version = expected_version(&headers, &mut params)?;
    params.finish()?;
    resource::delete(&api, &id, version).await
}
