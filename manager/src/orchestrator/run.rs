//! The reconcile loop on the leader: runs each pass over the latest applied state
//! and writes its changes as one batch, then waits for the next commit or the
//! earliest delay a pass asked for.

use super::{Change, Plan};
use crate::store::{Command, State, Store, StoreError, Watcher};
use api::cluster::{Event, Object, Timestamp};
use api::service::FileReference;
use futures_util::FutureExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest wait between passes when nothing changes (a safety net; passes are
/// driven by commits and delays).
const IDLE: Duration = Duration::from_secs(5);

/// A pass: the changes the state needs, given the time and a maker of new ids.
pub type Pass = Box<dyn Fn(&State, Timestamp, &mut dyn FnMut() -> String) -> Plan + Send + Sync>;

/// Runs the passes on the leader.
pub struct Reconciler {
    store: Arc<Store>,
    passes: Vec<(&'static str, Pass)>,
}

/// The store command of a change.
pub fn to_command(change: Change) -> Command {
    match change {
        Change::Create(object) => Command::create(object),
        Change::Update(object) => {
            let version = object.meta().version;
            Command::update(object, version)
        }
        Change::Delete { kind, id, version } => Command::Delete {
            kind,
            id,
            expected_version: Some(version),
        },
    }
}

fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(since.as_millis() as u64)
}

fn new_id() -> String {
    crate::server::random_id(8, "a task id").unwrap_or_else(|_| {
        // The system's random source failed: fall back to the clock (ids only need
        // to be unique, not secret).
        format!("t{:x}", now().0)
    })
}

/// Whether committed events may change what the passes plan. Conservative: only
/// the creation or deletion of a secret or config of no stack that no pending task
/// uses cannot (the orchestrator reads a stack's files only, the scheduler the files
/// of its pending tasks, the allocator none), e.g. `orch config create`. An update
/// may have moved the object out of a stack, so it counts; a task that becomes
/// pending later is an event of its own. `state` is the state after the events or
/// later. Only pending tasks are looked at, once for all `events`: config writes may
/// come thousands of times a second.
pub fn affects_passes(state: &State, events: &[Event]) -> bool {
    let mut secrets = BTreeSet::new();
    let mut configs = BTreeSet::new();
    for event in events {
        match event {
            Event::Commit { .. } => {}
            Event::Updated { .. } => return true,
            Event::Created { object } | Event::Deleted { object } => match object {
                Object::Secret(s) if s.stack.is_empty() => {
                    secrets.insert(s.meta.id.as_str());
                }
                Object::Config(c) if c.stack.is_empty() => {
                    configs.insert(c.meta.id.as_str());
                }
                _ => return true,
            },
        }
    }
    if secrets.is_empty() && configs.is_empty() {
        return false;
    }
    super::schedule::pending(state).any(|t| {
        let uses = |refs: &[FileReference], ids: &BTreeSet<&str>| {
            refs.iter().any(|r| ids.contains(r.source.as_str()))
        };
        uses(&t.spec.secrets, &secrets) || uses(&t.spec.configs, &configs)
    })
}

impl Reconciler {
    /// A reconciler running `passes` in order (name, pass).
    pub fn new(store: Arc<Store>, passes: Vec<(&'static str, Pass)>) -> Arc<Reconciler> {
        Arc::new(Reconciler { store, passes })
    }

    fn is_leader(&self) -> bool {
        self.store.metrics().current_leader == Some(self.store.id())
    }

    /// One round: every pass in order, each on the state its predecessor left.
    /// Returns the earliest wake time asked for, the version reached and whether
    /// anything was written (then another round follows at once: one pass's writes
    /// are the next pass's input, e.g. new services get their tasks).
    async fn round(&self) -> Result<(Option<Timestamp>, u64, bool), StoreError> {
        let mut wake: Option<Timestamp> = None;
        let mut wrote = false;
        let mut ids = new_id;
        for (name, pass) in &self.passes {
            let view = self.store.view(|state| pass(state, now(), &mut ids));
            if let Some(at) = view.value.wake_at {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            if view.value.changes.is_empty() {
                continue;
            }
            let commands: Vec<Command> = view.value.changes.into_iter().map(to_command).collect();
            match self.store.write(Command::Batch { commands }).await {
                Ok(_) => wrote = true,
                // Someone else wrote first: another round sees it.
                Err(
                    StoreError::Conflict { .. }
                    | StoreError::NotFound { .. }
                    | StoreError::Exists { .. },
                ) => wrote = true,
                Err(e) => {
                    eprintln!("orch manager: the {name} pass could not write: {e}");
                    return Err(e);
                }
            }
        }
        Ok((wake, self.store.view(|_| ()).version, wrote))
    }

    /// Whether the commit events from `first` on, with those already queued behind
    /// it (taken in one look), call for a round. An error (history compacted, state
    /// replaced, store stopped) always does.
    fn needs_round(&self, first: Result<Event, StoreError>, watcher: &mut Watcher) -> bool {
        let mut events = Vec::new();
        let mut next = Some(first);
        while let Some(result) = next {
            match result {
                Ok(event) => events.push(event),
                Err(_) => return true,
            }
            next = watcher.next().now_or_never();
        }
        self.store
            .view(|state| affects_passes(state, &events))
            .value
    }

    /// Runs until dropped.
    pub async fn run(self: Arc<Self>) {
        loop {
            if !self.is_leader() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let (wake, version) = match self.round().await {
                Ok((_, _, true)) => continue,
                Ok((wake, version, false)) => (wake, version),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut watcher = match self.store.watch_from(version) {
                Ok(w) => w,
                Err(_) => continue,
            };
            let wait = wake
                .map(|at| Duration::from_millis(at.0.saturating_sub(now().0)))
                .unwrap_or(IDLE)
                .min(IDLE);
            let due = tokio::time::sleep(wait);
            tokio::pin!(due);
            loop {
                tokio::select! {
                    next = watcher.next() => {
                        // Commits the passes cannot act on (config writes) wait on:
                        // the last round planned nothing and time is covered by `due`.
                        if !self.needs_round(next, &mut watcher) {
                            continue;
                        }
                        // Let a burst of commits (status reports) settle into one round.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        break;
                    }
                    _ = &mut due => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::{Meta, Service, Task, TaskState};
    use api::secret::{Config, Secret};

    fn config(id: &str, stack: &str) -> Object {
        Object::Config(Config {
            meta: Meta::new(id),
            stack: stack.into(),
            ..Config::default()
        })
    }

    fn secret(id: &str) -> Object {
        Object::Secret(Secret {
            meta: Meta::new(id),
            ..Secret::default()
        })
    }

    /// A task in `state` that uses config `config` and secret `secret`.
    fn task_in(state: TaskState, config: &str, secret: &str) -> Object {
        let mut task = Task {
            meta: Meta::new(format!("t-{config}")),
            service: "web".into(),
            desired_state: TaskState::Running,
            ..Task::default()
        };
        task.status.state = state;
        task.spec.configs.push(FileReference {
            source: config.into(),
            ..FileReference::default()
        });
        task.spec.secrets.push(FileReference {
            source: secret.into(),
            ..FileReference::default()
        });
        Object::Task(Box::new(task))
    }

    fn task_using(config: &str, secret: &str) -> Object {
        task_in(TaskState::Pending, config, secret)
    }

    fn created(object: Object) -> Event {
        Event::Created { object }
    }

    fn affects(state: &State, event: Event) -> bool {
        affects_passes(state, &[event, Event::Commit { version: 7 }])
    }

    #[test]
    fn files_of_no_stack_that_no_task_uses_do_not_wake_the_passes() {
        let state = State::from_objects([
            task_using("used", "used-secret"),
            task_in(TaskState::Running, "placed", "placed-secret"),
        ]);
        assert!(!affects(&state, created(config("other", ""))));
        // A placed task has its files; the scheduler no longer looks at them.
        assert!(!affects(&state, created(config("placed", ""))));
        assert!(!affects(
            &state,
            Event::Deleted {
                object: config("other", "")
            }
        ));
        assert!(!affects(&state, created(secret("used"))));
        assert!(!affects_passes(&state, &[Event::Commit { version: 3 }]));
    }

    #[test]
    fn files_a_task_waits_for_or_a_stack_declares_wake_the_passes() {
        let state = State::from_objects([task_using("used", "used-secret")]);
        assert!(affects(&state, created(config("used", ""))));
        let burst = [
            created(config("a", "")),
            created(secret("used-secret")),
            created(config("b", "")),
        ];
        assert!(affects_passes(&state, &burst));
        assert!(affects(&state, created(secret("used-secret"))));
        assert!(affects(&state, created(config("app_c", "app"))));
        assert!(affects(
            &state,
            Event::Updated {
                object: config("other", "")
            }
        ));
        let service = Object::Service(Box::new(Service {
            meta: Meta::new("web"),
            ..Service::default()
        }));
        assert!(affects(&state, created(service)));
        assert!(affects(&state, created(task_using("x", "y"))));
    }
}
