//! `GET /v1/services/{id}/logs` and `GET /v1/tasks/{id}/logs`: task logs from the nodes
//! that run them, as newline-delimited JSON [`TaskLogLine`]s, through the leader's
//! [`LogBroker`](crate::logbroker::LogBroker) (a follower forwards the request and
//! streams the leader's answer back).
//!
//! A task that cannot be read is said so in-band, as a line of stream `error` naming
//! the task and its node: no container yet, its node is down or has no session with
//! the leader (at the start or while following), or its node sent nothing for [`SILENCE`] when not following. Without
//! `follow` the answer ends when every task is done; with it, when the client goes
//! away (an idle answer sends an empty line every [`KEEPALIVE`] so that is noticed) or
//! every task's container ended. A service's logs are those of its tasks that are to
//! run (desired state `running` or earlier) and of those in its history that had a
//! container (their nodes keep the logs of removed containers, as `docker service
//! logs` shows them); a task's, of that task in any state.

use super::ApiState;
use super::error::HttpError;
use super::params::Params;
use super::resource::{self, Id};
use crate::logbroker::{Source, Subscription};
use api::cluster::{NodeState, Task, TaskState};
use api::error::{ErrorCode, ErrorEnvelope};
use api::logs::{LogOptions, LogStream, TaskLogLine};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Without `follow`, a node silent this long about its tasks is given up on.
pub const SILENCE: Duration = Duration::from_secs(10);
/// An idle following answer sends an empty line this often.
pub const KEEPALIVE: Duration = Duration::from_secs(5);
/// How often the nodes of open tasks are checked for being down.
const CHECK: Duration = Duration::from_secs(1);

/// The query of a logs request.
struct Query {
    options: LogOptions,
    timestamps: bool,
}

fn query(mut params: Params) -> Result<Query, HttpError> {
    let follow = params.flag("follow")?;
    let timestamps = params.flag("timestamps")?;
    let tail = params.number("tail")?;
    let since_ms = params
        .take("since")?
        .map(|text| match text.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok((secs * 1000.0) as u64),
            _ => Err(HttpError::invalid(format!(
                "query parameter `since` is `{text}`; expected Unix seconds (e.g. 1700000000.5)"
            ))
            .with("parameter", "since")),
        })
        .transpose()?;
    params.finish()?;
    Ok(Query {
        options: LogOptions {
            follow,
            tail,
            since_ms,
        },
        timestamps,
    })
}

/// Get the logs of a service's tasks.
#[utoipa::path(get, path = "/v1/services/{id}/logs", tag = "services",
    params(
        ("id" = String, Path, description = "The service's id"),
        ("follow" = Option<bool>, Query, description = "Keep sending new lines until the client goes away"),
        ("tail" = Option<u64>, Query, description = "Only the last N lines of each task"),
        ("since" = Option<f64>, Query, description = "Only lines written at or after this time (Unix seconds)"),
        ("timestamps" = Option<bool>, Query, description = "Fill each line's `time` (empty otherwise)"),
    ),
    responses(
        (status = 200, description = "Newline-delimited JSON, one `TaskLogLine` per line; lines of stream `error` say why a task's logs are missing", content_type = "application/x-ndjson", body = TaskLogLine),
        (status = 404, description = "No such service", body = ErrorEnvelope),
    ))]
pub async fn service(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    params: Params,
) -> Result<Response, HttpError> {
    let query = query(params)?;
    let service: api::cluster::Service = resource::fetch(&api, &id, false).await?;
    let tasks = api
        .store
        .view(|s| {
            s.tasks
                .by_service(&service.meta.id)
                .filter(|t| t.desired_state <= TaskState::Running || t.status.container.is_some())
                .cloned()
                .collect::<Vec<Task>>()
        })
        .value;
    answer(&api, tasks, query)
}

/// Get the logs of a task.
#[utoipa::path(get, path = "/v1/tasks/{id}/logs", tag = "tasks",
    params(
        ("id" = String, Path, description = "The task's id"),
        ("follow" = Option<bool>, Query, description = "Keep sending new lines until the client goes away"),
        ("tail" = Option<u64>, Query, description = "Only the last N lines"),
        ("since" = Option<f64>, Query, description = "Only lines written at or after this time (Unix seconds)"),
        ("timestamps" = Option<bool>, Query, description = "Fill each line's `time` (empty otherwise)"),
    ),
    responses(
        (status = 200, description = "Newline-delimited JSON, one `TaskLogLine` per line; a line of stream `error` says why the task's logs are missing", content_type = "application/x-ndjson", body = TaskLogLine),
        (status = 404, description = "No such task", body = ErrorEnvelope),
    ))]
pub async fn task(
    State(api): State<Arc<ApiState>>,
    Id(id): Id,
    params: Params,
) -> Result<Response, HttpError> {
    let query = query(params)?;
    let task: Task = resource::fetch(&api, &id, false).await?;
    answer(&api, vec![task], query)
}

fn error_line(task: &str, node: &str, line: String) -> TaskLogLine {
    TaskLogLine {
        task: task.to_owned(),
        node: node.to_owned(),
        time: String::new(),
        stream: LogStream::Error,
        line,
    }
}

/// Whether `node` is ready and has its session's assignment stream open on this
/// manager (only then does it hear of subscriptions).
fn node_ready(api: &ApiState, node: &str) -> bool {
    api.logs.is_attached(node)
        && api
            .store
            .view(|s| {
                s.nodes
                    .get(node)
                    .is_some_and(|n| n.status.state == NodeState::Ready)
            })
            .value
}

/// The sources of `tasks` that can be read, and an error line for each other one.
fn sources(api: &ApiState, tasks: Vec<Task>) -> (Vec<Source>, Vec<TaskLogLine>) {
    let mut readable = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let id = task.meta.id;
        let node = task.node.unwrap_or_default();
        match task.status.container {
            None => errors.push(error_line(
                &id,
                &node,
                format!(
                    "task {id} has no container yet (it is {})",
                    task.status.state.as_str()
                ),
            )),
            Some(_) if !node_ready(api, &node) => errors.push(error_line(
                &id,
                &node,
                format!("node {node} of task {id} is down (no session with the leader): its logs cannot be read"),
            )),
            Some(container) => readable.push(Source {
                task: id,
                node,
                container,
            }),
        }
    }
    (readable, errors)
}

struct Feed {
    api: Arc<ApiState>,
    sub: Subscription,
    pending: VecDeque<TaskLogLine>,
    follow: bool,
    timestamps: bool,
    last: Instant,
}

impl Feed {
    /// The next chunk to send, or `None` at the end.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(mut line) = self.pending.pop_front() {
                if !self.timestamps {
                    line.time.clear();
                }
                let mut bytes = serde_json::to_vec(&line).ok()?;
                bytes.push(b'\n');
                return Some(Bytes::from(bytes));
            }
            match tokio::time::timeout(CHECK, self.sub.lines.recv()).await {
                Ok(Some(line)) => {
                    self.last = Instant::now();
                    self.pending.push_back(line);
                }
                Ok(None) => return None,
                Err(_) => {
                    self.check();
                    if self.follow && self.pending.is_empty() && self.last.elapsed() >= KEEPALIVE {
                        self.last = Instant::now();
                        return Some(Bytes::from_static(b"\n"));
                    }
                }
            }
        }
    }

    /// Gives up on the open tasks whose node is down, or silent too long when not
    /// following.
    fn check(&mut self) {
        let silent = !self.follow && self.last.elapsed() >= SILENCE;
        for source in self.sub.open() {
            let why = if !node_ready(&self.api, &source.node) {
                format!(
                    "node {} of task {} is down (no session with the leader): its logs cannot be read",
                    source.node, source.task
                )
            } else if silent {
                format!(
                    "node {} sent no logs of task {} within {}s",
                    source.node,
                    source.task,
                    SILENCE.as_secs()
                )
            } else {
                continue;
            };
            self.pending
                .push_back(error_line(&source.task, &source.node, why));
            self.sub.close(&source.task);
        }
    }
}

fn answer(api: &Arc<ApiState>, tasks: Vec<Task>, query: Query) -> Result<Response, HttpError> {
    let (readable, errors) = sources(api, tasks);
    let sub = api.logs.subscribe(query.options.clone(), readable);
    let feed = Feed {
        api: api.clone(),
        sub,
        pending: errors.into(),
        follow: query.options.follow,
        timestamps: query.timestamps,
        last: Instant::now(),
    };
    let lines = futures_util::stream::unfold(feed, |mut f| async move {
        let chunk = f.next().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), f))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(lines))
        .map_err(|e| HttpError::new(ErrorCode::Internal, format!("build a logs answer: {e}")))
}
