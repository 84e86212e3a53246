//! Task logs across nodes (swarmkit's log broker, over orch's session).
//!
//! A client asks a manager for the logs of a service or task
//! (`GET /v1/services/{id}/logs`, `GET /v1/tasks/{id}/logs`); the leader's broker makes
//! a [`LogSubscription`] that the nodes running those tasks receive in their
//! assignment stream; each node reads its containers' logs and publishes them as
//! [`LogPublish`] batches (`POST /v1/session/logs`); the broker fans them into the
//! client's answer as [`TaskLogLine`]s (newline-delimited JSON).

use serde::{Deserialize, Serialize};

/// What a log reader wants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogOptions {
    /// Keep sending new lines until the subscription ends.
    pub follow: bool,
    /// Only the last this many lines of each task (before following).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<u64>,
    /// Only lines written at or after this time (milliseconds since the Unix epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
}

/// One task a subscription reads, with the container that runs it on its node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSource {
    /// The task's id.
    pub task: String,
    /// The container id the node reported for the task.
    pub container: String,
}

/// A node's share of an active log subscription (sent in
/// [`Assignments::log_subscriptions`](crate::session::Assignments)): read these
/// tasks' logs with these options and publish them under `id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSubscription {
    /// The subscription's id (named by each [`LogPublish`]).
    pub id: String,
    /// The tasks of this node to read.
    pub sources: Vec<LogSource>,
    pub options: LogOptions,
}

/// Which output a line came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    #[default]
    Stdout,
    Stderr,
    /// Not the container's: orch says why a task's logs are missing or cut short
    /// (its node is down, its container is gone, lines were dropped).
    Error,
}

/// A line as a node publishes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishedLine {
    /// RFC 3339 with nanoseconds (empty on an `error` line made without a time).
    pub time: String,
    pub stream: LogStream,
    /// The line, without its newline.
    pub line: String,
}

/// `POST /v1/session/logs`: lines of one task for one subscription; `close` when the
/// node sends no more of them (not following, or the container ended).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogPublish {
    pub session_id: String,
    /// The [`LogSubscription::id`].
    pub subscription: String,
    /// The task's id.
    pub task: String,
    pub lines: Vec<PublishedLine>,
    pub close: bool,
}

/// One line of `GET /v1/services/{id}/logs` and `GET /v1/tasks/{id}/logs`
/// (newline-delimited JSON, one per line).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TaskLogLine {
    /// The task's id.
    pub task: String,
    /// The id of the node that runs (or ran) it.
    pub node: String,
    /// RFC 3339 with nanoseconds; empty on `error` lines.
    pub time: String,
    pub stream: LogStream,
    /// The line without its newline; on `error` lines, what went wrong.
    pub line: String,
}
