//! The reconcile loop on the leader: runs each pass over the latest applied state
//! and writes its changes as one batch, then waits for the next commit or the
//! earliest delay a pass asked for.

use super::{Change, Plan};
use crate::store::{Command, State, Store, StoreError};
use api::cluster::Timestamp;
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
            tokio::select! {
                _ = watcher.next() => {
                    // Let a burst of commits (status reports) settle into one round.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
