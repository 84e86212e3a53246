//! `GET /v1/session/assignments`: the node's assignments as newline-delimited JSON,
//! the whole set first and again after every commit that changes it (an empty line
//! every [`KEEPALIVE`] so both ends notice a dead connection). The stream ends when
//! the session is no longer the node's or this manager stops leading.
//!
//! `POST /v1/session/status`: the node's task status reports, applied in one write
//! (states only move forward, but for the real end of an orphaned task; reports for
//! tasks of other nodes are refused), with
//! the volume removals it confirms.

use super::assignments::assignments as assignments_of;
use super::{Dispatcher, Refusal, node_caller};
use crate::orchestrator::ended;
use crate::store::{Command, StoreError};
use api::cluster::{Object, Task, TaskState, TaskStatus};
use api::error::ErrorCode;
use api::session::{Assignments, StatusBatch};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How often an idle stream sends an empty line.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

/// The query of `GET /v1/session/assignments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    pub session_id: String,
}

pub(super) fn check_session(d: &Dispatcher, node: &str, session: &str) -> Result<(), Refusal> {
    if d.sessions().holds(node, session) {
        return Ok(());
    }
    Err(Refusal::new(
        ErrorCode::NotFound,
        format!("session {session} of node {node} is not open on the leader: open a new one"),
    ))
}

struct Follow {
    d: Arc<Dispatcher>,
    node: String,
    session: String,
    last: Option<Assignments>,
    /// Changes of the log subscriptions.
    logs: tokio::sync::watch::Receiver<u64>,
    /// The node hears of log subscriptions while this stream is open.
    _attached: crate::logbroker::Attached,
}

impl Follow {
    /// The next line to send, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if !self.d.is_leader() || !self.d.sessions().holds(&self.node, &self.session) {
                return None;
            }
            let keyring = &self.d.keyring;
            self.logs.borrow_and_update();
            let view = self
                .d
                .store
                .view(|s| assignments_of(s, &self.node, 0, keyring));
            let mut current = view.value;
            current.log_subscriptions = self.d.logs.for_node(&self.node);
            if self.last.as_ref() != Some(&current) {
                self.last = Some(current.clone());
                current.version = view.version;
                let mut line = serde_json::to_vec(&current).ok()?;
                line.push(b'\n');
                return Some(Bytes::from(line));
            }
            let mut watcher = match self.d.store.watch_from(view.version) {
                Ok(w) => w,
                Err(_) => continue,
            };
            let logs = self.logs.changed();
            let change = async {
                tokio::select! {
                    next = watcher.next() => next.map(|_| ()),
                    _ = logs => Ok(()),
                }
            };
            match tokio::time::timeout(KEEPALIVE, change).await {
                Err(_) => return Some(Bytes::from_static(b"\n")),
                Ok(Err(StoreError::Stopped)) => return None,
                Ok(_) => {}
            }
        }
    }
}

/// `GET /v1/session/assignments?session_id=ID`.
pub async fn assignments(
    State(d): State<Arc<Dispatcher>>,
    caller: Option<Extension<crate::server::Caller>>,
    Query(query): Query<StreamQuery>,
) -> Result<Response, Refusal> {
    let node = node_caller(caller)?;
    d.leader_only()?;
    check_session(&d, &node, &query.session_id)?;
    let follow = Follow {
        logs: d.logs.changes(),
        _attached: d.logs.attach(&node),
        d,
        node,
        session: query.session_id,
        last: None,
    };
    let lines = futures_util::stream::unfold(follow, |mut f| async move {
        let line = f.next().await?;
        Some((Ok::<_, std::convert::Infallible>(line), f))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(lines))
        .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))
}

/// `task` with the status `new`, unless that would move it backwards (a state before
/// its current one, or any change after it ended) or changes nothing. An orphaned
/// task is the exception: the manager ended it when its node went down, and the
/// node, back, reports how the task really ended (its container gone), which
/// releases its addresses.
fn advance(task: &Task, new: &TaskStatus) -> Option<Task> {
    let old = &task.status;
    let reported_end =
        old.state == TaskState::Orphaned && ended(new.state) && new.state != TaskState::Orphaned;
    let backwards = !reported_end
        && (new.state < old.state || (old.state >= TaskState::Complete && new.state != old.state));
    if backwards || new == old {
        return None;
    }
    let mut task = task.clone();
    task.status = new.clone();
    if task.status.container.is_none() {
        task.status.container = old.container.clone();
    }
    Some(task)
}

/// How many times a batch of reports is retried when another write won.
const ATTEMPTS: usize = 5;

/// `POST /v1/session/status`.
pub async fn status(
    State(d): State<Arc<Dispatcher>>,
    caller: Option<Extension<crate::server::Caller>>,
    Json(batch): Json<StatusBatch>,
) -> Result<Json<serde_json::Value>, Refusal> {
    let node = node_caller(caller)?;
    d.leader_only()?;
    check_session(&d, &node, &batch.session_id)?;
    for attempt in 1..=ATTEMPTS {
        let (commands, refused) = d
            .store
            .view(|state| {
                let mut changed: BTreeMap<&str, Task> = BTreeMap::new();
                let mut refused = Vec::new();
                // Reports apply in order; several for one task make one write.
                for report in &batch.reports {
                    let current = match changed.get(report.task.as_str()) {
                        Some(task) => task,
                        None => match state.tasks.get(&report.task) {
                            Some(task) => task,
                            // Deleted meanwhile: nothing to record.
                            None => continue,
                        },
                    };
                    if current.node.as_deref() != Some(node.as_str()) {
                        refused.push(report.task.clone());
                        continue;
                    }
                    if let Some(task) = advance(current, &report.status) {
                        changed.insert(report.task.as_str(), task);
                    }
                }
                let volumes = super::volumes::confirm(state, &node, &batch.volumes_removed);
                let commands: Vec<Command> = changed
                    .into_values()
                    .map(|task| Object::Task(Box::new(task)))
                    .chain(volumes.into_iter().map(Object::Volume))
                    .map(|object| {
                        let version = object.meta().version;
                        Command::update(object, version)
                    })
                    .collect();
                (commands, refused)
            })
            .value;
        if !refused.is_empty() {
            return Err(Refusal(
                api::error::ApiError::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "node {node} reported on tasks assigned to other nodes: {}",
                        refused.join(", ")
                    ),
                )
                .with("tasks", refused.join(",")),
            ));
        }
        if commands.is_empty() {
            break;
        }
        match d.store.write(Command::Batch { commands }).await {
            Ok(_) => break,
            Err(StoreError::Conflict { .. }) if attempt < ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(serde_json::json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(state: TaskState) -> Task {
        let mut task = Task::default();
        task.status.state = state;
        task.status.container = Some("c1".into());
        task
    }

    fn report(state: TaskState) -> TaskStatus {
        TaskStatus {
            state,
            message: "reported".into(),
            ..TaskStatus::default()
        }
    }

    #[test]
    fn states_move_forward_but_an_orphaned_task_takes_its_real_end() {
        let moved = |from, to| advance(&task(from), &report(to)).map(|t| t.status.state);
        assert_eq!(
            moved(TaskState::Assigned, TaskState::Running),
            Some(TaskState::Running)
        );
        assert_eq!(moved(TaskState::Running, TaskState::Starting), None);
        assert_eq!(moved(TaskState::Failed, TaskState::Shutdown), None);
        assert_eq!(moved(TaskState::Shutdown, TaskState::Failed), None);
        for end in [TaskState::Complete, TaskState::Shutdown, TaskState::Failed] {
            assert_eq!(moved(TaskState::Orphaned, end), Some(end), "{end:?}");
        }
        for not_an_end in [TaskState::Running, TaskState::Starting] {
            assert_eq!(moved(TaskState::Orphaned, not_an_end), None);
        }
        let ended = advance(&task(TaskState::Orphaned), &report(TaskState::Shutdown)).unwrap();
        assert_eq!(ended.status.container.as_deref(), Some("c1"), "kept");
    }
}
