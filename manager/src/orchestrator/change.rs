//! What an orchestration pass wants written: object changes (each naming the version
//! it read) and when the next pass is due if nothing else changes.

use api::cluster::{Network, Object, Service, Task, TaskState, Timestamp};

/// One write of a pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A new object (its id is new).
    Create(Object),
    /// The object as it should be; its `meta.version` is the version read.
    Update(Object),
    /// Delete the object of this kind and id if still at `version`.
    Delete {
        kind: api::cluster::Kind,
        id: String,
        version: u64,
    },
}

impl Change {
    /// A new task.
    pub fn create_task(task: Task) -> Change {
        Change::Create(Object::Task(Box::new(task)))
    }

    /// A changed task (its version is the one read).
    pub fn update_task(task: Task) -> Change {
        Change::Update(Object::Task(Box::new(task)))
    }

    /// A changed service.
    pub fn update_service(service: Service) -> Change {
        Change::Update(Object::Service(Box::new(service)))
    }

    /// A changed network.
    pub fn update_network(network: Network) -> Change {
        Change::Update(Object::Network(network))
    }

    /// Delete `object` at the version read.
    pub fn delete(object: &Object) -> Change {
        Change::Delete {
            kind: object.kind(),
            id: object.meta().id.clone(),
            version: object.meta().version,
        }
    }
}

/// The outcome of a pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// The earliest time something waits for (a restart delay, an update delay).
    pub wake_at: Option<Timestamp>,
}

impl Plan {
    /// Adds a change.
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Asks for a pass at `at` (the earliest of all asks wins).
    pub fn wake(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    /// Adds another plan's changes and wake time.
    pub fn merge(&mut self, other: Plan) {
        self.changes.extend(other.changes);
        if let Some(at) = other.wake_at {
            self.wake(at);
        }
    }
}

/// Whether a task's observed state is final: it will not run again.
pub fn ended(state: TaskState) -> bool {
    state >= TaskState::Complete
}

/// Whether the orchestrator still wants the task to run.
pub fn wanted(task: &Task) -> bool {
    task.desired_state <= TaskState::Running
}

/// Whether an ended task's container may still be on its node: the task was
/// orphaned (its node went down, nobody reported its end) and its node still
/// exists (`node_exists`), so it may come back with the container and its
/// addresses. Such a task keeps its addresses, and its place in the history, until
/// the node reports the container gone (a final state after `orphaned`) or is
/// removed.
pub fn awaits_node(task: &Task, node_exists: impl Fn(&str) -> bool) -> bool {
    task.status.state == TaskState::Orphaned && task.node.as_deref().is_some_and(node_exists)
}
