//! The executor's loop: find what the engine has, then for each assignment set plan
//! ([`super::reconcile`]) and apply: network calls in line, tasks on runners of their
//! own, which report on the way. A runner that ends (its container removed) makes
//! the loop plan again, so networks and volumes that lost their last task go; so
//! does a failed engine call, or a volume to remove still in use, after a pause.
//! Volumes removed (or found absent) are sent on their own channel.

use super::adopt;
use super::files::{self, Values};
use super::reconcile::{Action, Local, Retirement, plan, volumes_pending};
use super::report;
use super::runner::{Job, Runner};
use crate::worker::archive::LogArchive;
use api::client::EngineClient;
use api::cluster::{TaskState, Timestamp};
use api::error::ErrorCode;
use api::session::{Assignments, TaskReport};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinSet};

/// Runs until `assignments` closes: each new set is reconciled against the engine;
/// every observed task state change is sent on `reports`, every volume the set
/// names for removal that the engine no longer has on `removed`.
///
/// Containers found on the engine with an `orch.task` label are taken over as they
/// are (a running one is not restarted) and their state reported. Until the first
/// set arrives nothing is changed: a receiver still holding the default (empty,
/// version 0) set is waiting for it. When `assignments` closes, the runners end
/// and the containers keep running, for the next executor to take over.
pub async fn run(
    engine: EngineClient,
    mut assignments: watch::Receiver<Assignments>,
    reports: mpsc::Sender<TaskReport>,
    removed: mpsc::Sender<String>,
    files_root: PathBuf,
    archive: LogArchive,
) {
    let mut ex = Executor {
        engine,
        reports,
        removed,
        files_root,
        archive,
        values: Values::default(),
        local: Local::default(),
        stops: BTreeMap::new(),
        runners: JoinSet::new(),
        ids: BTreeMap::new(),
        failed: false,
        waiting: false,
    };
    match adopt_all(&ex.engine, &mut assignments).await {
        Some(found) => ex.local.adopted = found,
        None => return,
    }
    let mut current = None;
    let first = assignments.borrow_and_update().clone();
    if first != Assignments::default() {
        ex.reconcile(&first).await;
        current = Some(first);
    }
    loop {
        tokio::select! {
            changed = assignments.changed() => {
                if changed.is_err() {
                    break;
                }
                let set = assignments.borrow_and_update().clone();
                ex.reconcile(&set).await;
                current = Some(set);
            }
            () = tokio::time::sleep(RETRY), if ex.failed || ex.waiting => {
                if let Some(set) = &current {
                    ex.reconcile(set).await;
                }
            }
            Some(ended) = ex.runners.join_next_with_id(), if !ex.runners.is_empty() => {
                let id = match &ended {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                ex.ended(id);
                if let Some(set) = &current {
                    ex.reconcile(set).await;
                }
            }
        }
    }
    // Dropping the runners ends them; their containers stay.
}

/// The task containers on the engine (asked again while it does not answer);
/// `None` when `assignments` closes first.
async fn adopt_all(
    engine: &EngineClient,
    assignments: &mut watch::Receiver<Assignments>,
) -> Option<BTreeMap<String, String>> {
    loop {
        let attempt = adopt::containers(engine);
        tokio::pin!(attempt);
        let found = loop {
            tokio::select! {
                found = &mut attempt => break found,
                changed = assignments.changed() => if changed.is_err() {
                    return None;
                },
            }
        };
        match found {
            Ok(found) => return Some(found),
            Err(e) => {
                eprintln!("orch agent: executor: {e}; asking again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The loop's state.
struct Executor {
    engine: EngineClient,
    reports: mpsc::Sender<TaskReport>,
    /// Volumes removed (or absent) as the set asked.
    removed: mpsc::Sender<String>,
    /// Where tasks' secrets and configs go (one tmpfs per task).
    files_root: PathBuf,
    /// Where the logs of removed task containers are kept.
    archive: LogArchive,
    /// The secret and config values of the last set.
    values: Values,
    local: Local,
    /// Each runner's stop switch, by task id.
    stops: BTreeMap<String, watch::Sender<bool>>,
    runners: JoinSet<()>,
    /// Task ids of the runners, by tokio task id.
    ids: BTreeMap<Id, String>,
    /// A call of the last reconcile failed: it is tried again after [`RETRY`].
    failed: bool,
    /// Volumes to remove are still in use: looked at again after [`RETRY`].
    waiting: bool,
}

/// How long after a failed engine call the set is reconciled again.
const RETRY: Duration = Duration::from_secs(2);

impl Executor {
    /// Make the node match `set`.
    async fn reconcile(&mut self, set: &Assignments) {
        self.failed = false;
        self.values = Values::of(set);
        match adopt::networks(&self.engine).await {
            Ok(networks) => self.local.networks = networks,
            Err(e) => {
                eprintln!("orch agent: executor: {e}");
                self.failed = true;
            }
        }
        self.local.volumes = match adopt::volumes(&self.engine).await {
            Ok(volumes) => Some(volumes),
            Err(e) => {
                eprintln!("orch agent: executor: {e}");
                self.failed = true;
                None
            }
        };
        for action in plan(set, &self.local) {
            self.apply(action).await;
        }
        let in_set: BTreeSet<&str> = set.tasks.iter().map(|t| t.meta.id.as_str()).collect();
        self.local.retired.retain(|id| in_set.contains(id.as_str()));
        self.local
            .orphans_reported
            .retain(|id| in_set.contains(id.as_str()));
        let removals: BTreeSet<&String> = set.volume_removals.iter().collect();
        self.local
            .volumes_reported
            .retain(|name| removals.contains(name));
        self.waiting = volumes_pending(set, &self.local);
    }

    /// Tell the managers volume `name` is gone from the node.
    async fn volume_removed(&mut self, name: String) {
        if self.removed.send(name.clone()).await.is_ok() {
            self.local.volumes_reported.insert(name);
        }
    }

    async fn apply(&mut self, action: Action) {
        let local = &mut self.local;
        let result = match action {
            Action::CreateNetwork(create) => self.engine.create_network(&create).await.map(|n| {
                let made = super::reconcile::LocalNetwork {
                    subnet: n.subnet,
                    vni: n.vni,
                    endpoints: 0,
                };
                local.networks.insert(create.name.clone(), made);
                local.sent.remove(&create.name);
            }),
            Action::SetPeers { network, peers } => self
                .engine
                .set_network_peers(&network, &peers)
                .await
                .map(|_| local.sent.entry(network).or_default().0 = peers),
            Action::SetServices { network, services } => self
                .engine
                .set_network_services(&network, &services)
                .await
                .map(|_| local.sent.entry(network).or_default().1 = services),
            Action::SetIngress { network, ingress } => self
                .engine
                .set_network_ingress(&network, &ingress)
                .await
                .map(|_| local.sent.entry(network).or_default().2 = Some(ingress)),
            Action::RemoveNetwork(name) => self.engine.remove_network(&name).await.map(|()| {
                local.networks.remove(&name);
                local.sent.remove(&name);
            }),
            Action::Run {
                task,
                container,
                internal_only,
            } => {
                let id = task.meta.id.clone();
                self.local.adopted.remove(&id);
                let files = files::of_task(&task, &self.values);
                self.spawn(
                    id,
                    false,
                    Job::Run {
                        task,
                        container,
                        internal_only,
                        files,
                    },
                );
                Ok(())
            }
            Action::Stop(id) => {
                if let Some(stop) = self.stops.get(&id) {
                    stop.send_replace(true);
                }
                self.local.runners.insert(id, true);
                Ok(())
            }
            Action::RemoveOrphan { task, container } => {
                self.local.adopted.remove(&task);
                self.spawn(task, true, Job::Remove { container });
                Ok(())
            }
            Action::Retire { task, why } => {
                let status = match why {
                    Retirement::Shutdown => Some(report::status(TaskState::Shutdown, now(), None)),
                    Retirement::Lost => Some(report::with_message(
                        TaskState::Failed,
                        now(),
                        None,
                        "the task's container is gone from the node",
                    )),
                    Retirement::Orphaned => Some(report::with_message(
                        TaskState::Shutdown,
                        now(),
                        None,
                        "the orphaned task's container is gone from the node",
                    )),
                    Retirement::Final => None,
                };
                if why == Retirement::Orphaned {
                    self.local.orphans_reported.insert(task.clone());
                }
                if let Some(status) = status {
                    let report = TaskReport {
                        task: task.clone(),
                        status,
                    };
                    let _ = self.reports.send(report).await;
                }
                self.local.retired.insert(task);
                Ok(())
            }
            Action::CreateVolume(create) => self.engine.create_volume(&create).await.map(|_| {
                if let Some(have) = &mut self.local.volumes {
                    have.insert(create.name, 0);
                }
            }),
            Action::RemoveVolume(name) => match self.engine.remove_volume(&name, false).await {
                Err(e) if e.code() == Some(ErrorCode::Conflict) => Ok(()),
                Err(e) if e.code() != Some(ErrorCode::NotFound) => Err(e),
                _ => {
                    if let Some(have) = &mut self.local.volumes {
                        have.remove(&name);
                    }
                    self.volume_removed(name).await;
                    Ok(())
                }
            },
            Action::VolumeGone(name) => {
                self.volume_removed(name).await;
                Ok(())
            }
        };
        if let Err(e) = result {
            // Tasks on a network that could not be made are rejected with the
            // engine's reason; the set is reconciled again after RETRY.
            eprintln!("orch agent: executor: {e}");
            self.failed = true;
        }
    }

    fn spawn(&mut self, task: String, stopping: bool, job: Job) {
        let (stop, stopped) = watch::channel(stopping);
        let runner = Runner::new(
            self.engine.clone(),
            self.reports.clone(),
            task.clone(),
            stopped,
            self.files_root.clone(),
            self.archive.clone(),
        );
        let handle = self.runners.spawn(runner.run(job));
        self.ids.insert(handle.id(), task.clone());
        self.stops.insert(task.clone(), stop);
        self.local.runners.insert(task, stopping);
    }

    /// A runner ended: its task is done with.
    fn ended(&mut self, id: Id) {
        if let Some(task) = self.ids.remove(&id) {
            self.stops.remove(&task);
            self.local.runners.remove(&task);
            self.local.retired.insert(task);
        }
    }
}

/// Now, by the agent's clock.
pub(super) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp(ms)
}
