//! One task's life on the node (swarmkit's task controller): prepare the image,
//! create and start the container, watch it until it ends, and on request stop and
//! remove it, reporting each state the task reaches. A runner lives until its
//! container is removed; one told to stop before it ends reports `shutdown`.
//!
//! Exits are seen by waiting on the engine (`POST /v1/containers/{id}/wait`); only a
//! container with a health check is also looked at, at its probe pace, for its health.

use super::ExecutorError;
use super::files::{self, TaskFile};
use super::image::{self, PullPolicy};
use super::report::{self, Observed};
use super::run::now;
use super::spec::{self, GATEWAY_NETWORK};
use crate::worker::archive::LogArchive;
use api::client::EngineClient;
use api::cluster::{Task, TaskState, TaskStatus};
use api::error::ErrorCode;
use api::session::TaskReport;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often a starting container's health is looked at.
const HEALTH_STARTING: Duration = Duration::from_millis(500);
/// How often a healthy container's health is looked at at most (its probe interval
/// when shorter).
const HEALTH_RUNNING: Duration = Duration::from_secs(5);
/// How long to wait before asking an engine that did not answer again.
const RETRY: Duration = Duration::from_secs(1);

/// What a runner is for.
#[derive(Debug)]
pub enum Job {
    /// Run a task, taking over `container` when one was found for it at start.
    Run {
        task: Box<Task>,
        container: Option<String>,
        internal_only: bool,
        /// Its secrets and configs, or why they cannot be had.
        files: Result<Vec<TaskFile>, ExecutorError>,
    },
    /// Stop and remove a container found at start whose task is not to run.
    Remove { container: String },
}

/// One task's runner.
pub struct Runner {
    engine: EngineClient,
    reports: mpsc::Sender<TaskReport>,
    task: String,
    /// The task's container, once made (or found).
    container: Option<String>,
    /// The name its container has (or would have): a runner stopped while the
    /// engine was making the container still finds it.
    name: Option<String>,
    /// Turns `true` when the task is to stop.
    stop: watch::Receiver<bool>,
    /// Where the container's log is kept when it is removed.
    archive: LogArchive,
    /// Where the task's secrets and configs go (see [`files`]).
    files_root: PathBuf,
}

/// How a phase of the life ended.
enum Phase {
    /// The task reached a final state (reported): wait to be told to stop.
    Ended,
    /// The runner was told to stop.
    Stopped,
}

impl Runner {
    /// A runner for task `task` that reports on `reports` and stops when `stop` turns
    /// `true`.
    pub fn new(
        engine: EngineClient,
        reports: mpsc::Sender<TaskReport>,
        task: String,
        stop: watch::Receiver<bool>,
        files_root: PathBuf,
        archive: LogArchive,
    ) -> Runner {
        Runner {
            engine,
            reports,
            task,
            container: None,
            name: None,
            stop,
            archive,
            files_root,
        }
    }

    /// Do `job` to the end: the task's container is removed when this returns.
    pub async fn run(mut self, job: Job) {
        let phase = match job {
            Job::Run {
                task,
                container,
                internal_only,
                files,
            } => {
                self.name = Some(spec::container_name(&task));
                self.container = container;
                let mut stop = self.stop.clone();
                tokio::select! {
                    phase = self.life(&task, internal_only, files) => phase,
                    () = stopped(&mut stop) => Phase::Stopped,
                }
            }
            Job::Remove { container } => {
                self.container = Some(container);
                Phase::Stopped
            }
        };
        if let Phase::Ended = phase {
            let mut stop = self.stop.clone();
            stopped(&mut stop).await;
        }
        let removed = self.remove().await;
        if let Phase::Stopped = phase {
            let status = match removed {
                Ok(()) => report::status(TaskState::Shutdown, now(), self.container.as_deref()),
                Err(e) => report::with_message(
                    TaskState::Shutdown,
                    now(),
                    self.container.as_deref(),
                    e.to_string(),
                ),
            };
            self.send(status).await;
        }
    }

    /// Prepare, create, start and watch the task's container until it ends.
    async fn life(
        &mut self,
        task: &Task,
        internal_only: bool,
        files: Result<Vec<TaskFile>, ExecutorError>,
    ) -> Phase {
        let mut seen = match self.container.clone() {
            Some(id) => self.look(&id).await,
            None => None,
        };
        if seen.is_none() {
            self.container = None;
            self.send(report::status(TaskState::Preparing, now(), None))
                .await;
            match self.create(task, internal_only, files).await {
                Ok(id) => self.container = Some(id),
                Err(e) => {
                    let msg = e.to_string();
                    self.send(report::with_message(TaskState::Rejected, now(), None, msg))
                        .await;
                    return Phase::Ended;
                }
            }
            seen = Some(Observed::Created);
        }
        let Some(id) = self.container.clone() else {
            return Phase::Ended;
        };
        let mut reported = None;
        if seen == Some(Observed::Created) {
            self.send(report::status(TaskState::Starting, now(), Some(&id)))
                .await;
            reported = Some(TaskState::Starting);
            if let Err(e) = self.engine.start_container(&id).await {
                let msg = format!("start: {e}");
                self.send(report::with_message(
                    TaskState::Failed,
                    now(),
                    Some(&id),
                    msg,
                ))
                .await;
                return Phase::Ended;
            }
            seen = self.look(&id).await;
        }
        self.watch(task, &id, seen, reported).await
    }

    /// The image pulled as its policy says, then the container made.
    async fn create(
        &self,
        task: &Task,
        internal_only: bool,
        files: Result<Vec<TaskFile>, ExecutorError>,
    ) -> Result<String, ExecutorError> {
        let mut create = spec::container_create(task)?;
        let dir = files::task_dir(&self.files_root, &self.task);
        create.binds.extend(files::write(&dir, &files?)?);
        if internal_only {
            create.networks.retain(|n| n.network != GATEWAY_NETWORK);
        }
        let policy = PullPolicy::of(&task.spec)?;
        if image::needs_pull(&self.engine, &create.image, policy).await? {
            image::pull(&self.engine, &create.image, task.spec.platform.as_deref()).await?;
        }
        let made = self
            .engine
            .create_container(&create)
            .await
            .map_err(ExecutorError::engine(format!(
                "create container {}",
                create.name.as_deref().unwrap_or_default()
            )))?;
        Ok(made.id)
    }

    /// What container `id` does now; `None` when it is gone.
    async fn look(&self, id: &str) -> Option<Observed> {
        loop {
            match self.engine.container(id).await {
                Ok(d) => return Some(Observed::of(&d)),
                Err(e) if e.code() == Some(ErrorCode::NotFound) => return None,
                Err(e) => {
                    eprintln!("orch agent: task {}: inspect {id}: {e}", self.task);
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Report what container `id` does until it ends: its exit, or its health failing
    /// (then it is stopped). `reported`: the state last reported.
    async fn watch(
        &mut self,
        task: &Task,
        id: &str,
        mut seen: Option<Observed>,
        mut reported: Option<TaskState>,
    ) -> Phase {
        let mut health = has_health(task);
        let exit = wait(self.engine.clone(), id.to_owned());
        tokio::pin!(exit);
        loop {
            let Some(now_seen) = seen.clone() else {
                let msg = format!("container {id} is gone");
                self.send(report::with_message(TaskState::Failed, now(), None, msg))
                    .await;
                self.container = None;
                return Phase::Ended;
            };
            let status = report::observed(&now_seen, now(), Some(id));
            if reported != Some(status.state) {
                reported = Some(status.state);
                self.send(status.clone()).await;
            }
            match now_seen {
                Observed::Exited(_) => return Phase::Ended,
                Observed::Unhealthy(_) => {
                    let _ = self.engine.stop_container(id, None).await;
                    return Phase::Ended;
                }
                Observed::Created | Observed::Starting | Observed::Running => {}
            }
            let poll = match now_seen {
                Observed::Starting => {
                    health = true;
                    Some(HEALTH_STARTING)
                }
                _ if health => Some(health_running(task)),
                _ => None,
            };
            seen = tokio::select! {
                ended = &mut exit => ended.map(Observed::Exited),
                () = sleep_or_forever(poll) => self.look(id).await,
            };
        }
    }

    /// Stop (stop signal, grace period, SIGKILL: the container's own, set from the
    /// spec at create) and remove the task's container.
    async fn remove(&self) -> Result<(), ExecutorError> {
        let Some(id) = self.container.as_ref().or(self.name.as_ref()) else {
            return Ok(());
        };
        let gone = |e: &api::client::ClientError| e.code() == Some(ErrorCode::NotFound);
        match self.engine.stop_container(id, None).await {
            Err(e) if !gone(&e) => {
                return Err(ExecutorError::engine(format!("stop container {id}"))(e));
            }
            _ => {}
        }
        // Its output outlives it (`orch logs` of a task in the history); a log that
        // cannot be kept does not keep the container.
        if let Err(e) = self.archive.keep(&self.engine, id, &self.task).await {
            eprintln!("orch agent: task {}: keep the log: {e}", self.task);
        }
        if let Err(e) = self.engine.remove_container(id, true).await
            && !gone(&e)
        {
            return Err(ExecutorError::engine(format!("remove container {id}"))(e));
        }
        let dir = files::task_dir(&self.files_root, &self.task);
        files::remove(&dir).map_err(|source| ExecutorError::TaskFiles {
            op: "remove",
            path: dir,
            source,
        })
    }

    async fn send(&self, status: TaskStatus) {
        let report = TaskReport {
            task: self.task.clone(),
            status,
        };
        // Nobody listening: the executor is going away with its runners.
        let _ = self.reports.send(report).await;
    }
}

/// Container `id`'s exit, waited for on the engine; `None` when it is gone. An
/// engine that does not answer is asked again.
async fn wait(engine: EngineClient, id: String) -> Option<api::container::ContainerExit> {
    loop {
        match engine.wait_container(&id).await {
            Ok(exit) => return Some(exit),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => return None,
            Err(e) => {
                eprintln!("orch agent: wait for container {id}: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Whether the task's spec sets a health check of its own (an image's shows in
/// inspect as `starting` first, which turns the looking on too).
fn has_health(task: &Task) -> bool {
    task.spec
        .healthcheck
        .as_ref()
        .is_some_and(|h| !h.disable && h.test.first().is_none_or(|t| t != "NONE"))
}

/// How often a running container's health is looked at: its probe interval, at most
/// [`HEALTH_RUNNING`].
fn health_running(task: &Task) -> Duration {
    task.spec
        .healthcheck
        .as_ref()
        .and_then(|h| h.interval)
        .map_or(HEALTH_RUNNING, |i| {
            i.to_std().clamp(HEALTH_STARTING, HEALTH_RUNNING)
        })
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Returns once `stop` turns `true`; never when its sender is gone (the executor
/// then ends its runners itself).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}
