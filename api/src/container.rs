//! Containers as the engine's API shows them: what to create, what one looks like,
//! and log lines.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /v1/containers`: what to run (the flags of `orch container run`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerCreate {
    /// The image (name, digest or id); it must be in the engine.
    pub image: String,
    /// A unique name (default: generated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Replaces the image's CMD.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// Replaces the image's ENTRYPOINT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries over the image's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub read_only: bool,
    /// `HOST:CONTAINER[:ro]` bind mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<String>,
    /// `PATH[:size=N,mode=M,ro]` tmpfs mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    pub no_new_privileges: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Remove the container when it exits.
    pub auto_remove: bool,
}

/// Where a container is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ContainerStatus {
    /// Made, not started.
    Created,
    /// Its process runs.
    Running {
        /// The process id on the host.
        pid: i32,
        /// RFC 3339.
        started_at: String,
    },
    /// Its process ended.
    Exited {
        exit_code: i32,
        /// The kernel killed it for running out of memory.
        oom_killed: bool,
        started_at: String,
        finished_at: String,
    },
}

/// A container as `orch container ls` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSummary {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// The image as it was named at creation.
    pub image: String,
    /// The command line.
    pub command: Vec<String>,
    /// RFC 3339.
    pub created: String,
    #[serde(flatten)]
    pub status: ContainerStatus,
}

/// Everything about one container (`orch container inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDetail {
    #[serde(flatten)]
    pub summary: ContainerSummary,
    /// The image's manifest digest.
    pub image_digest: String,
    pub hostname: String,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `uid:gid`.
    pub user: String,
    pub read_only: bool,
    pub labels: BTreeMap<String, String>,
    /// Where its state and logs live on the host.
    pub dir: String,
}

/// `POST /v1/containers`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCreated {
    pub id: String,
    pub name: String,
}

/// `POST /v1/containers/{id}/wait`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerExit {
    pub exit_code: i32,
    pub oom_killed: bool,
}

/// One line of a container's log (as stored: one JSON document per line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The line, with its newline when it had one.
    pub log: String,
}
