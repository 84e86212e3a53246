//! Services to tasks (swarmkit's replicated, global and restart supervisors in one
//! pure pass): every slot of a service has one wanted task; ended tasks are replaced
//! as the restart policy says; tasks of down or drained nodes are replaced elsewhere;
//! surplus slots are shut down; a changed spec rolls out slot by slot; old tasks are
//! trimmed to a bounded history.
//!
//! A slot is a replica number (replicated services) or a node (global services).

use super::change::{Change, Plan, awaits_node, ended, wanted};
use super::policy::{Restart, Update, mode, replicas, same_task_spec};
use super::rebalance::Verdict;
use api::cluster::{
    Availability, Node, NodeState, Service, Task, TaskState, TaskStatus, Timestamp,
};
use api::deploy::{DeployMode, FailureAction, UpdateOrder};
use std::collections::BTreeMap;

/// Ended tasks kept per slot (swarm's `task_history_retention_limit`).
pub const HISTORY: usize = 5;

/// Where a task runs in its service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Replica(u64),
    Node(String),
}

fn slot_of(task: &Task) -> Slot {
    if task.slot == 0 {
        Slot::Node(task.node.clone().unwrap_or_default())
    } else {
        Slot::Replica(task.slot)
    }
}

/// What the pass needs to know of the cluster besides the service's tasks.
pub struct Cluster<'a> {
    pub nodes: &'a BTreeMap<String, Node>,
    pub now: Timestamp,
}

impl Cluster<'_> {
    fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Whether a node other than `node` is ready and active, so a task lost with
    /// `node` has somewhere else to go.
    fn elsewhere(&self, node: &str) -> bool {
        self.nodes.values().any(|n| {
            n.meta.id != node
                && n.status.state == NodeState::Ready
                && n.spec.availability == Availability::Active
        })
    }

    /// Nodes a global service runs on: ready, and active or paused (a paused node
    /// keeps its tasks but gets no new ones).
    fn global_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .values()
            .filter(|n| n.status.state == NodeState::Ready)
    }
}

/// A new task of `service` for `slot`, waiting for its network addresses.
fn new_task(service: &Service, slot: &Slot, id: String, now: Timestamp) -> Task {
    let (slot, node) = match slot {
        Slot::Replica(n) => (*n, None),
        Slot::Node(node) => (0, Some(node.clone())),
    };
    Task {
        meta: api::cluster::Meta::new(id),
        service: service.meta.id.clone(),
        stack: service.stack.clone(),
        name: service.name.clone(),
        slot,
        node,
        desired_state: TaskState::Running,
        status: TaskStatus {
            state: TaskState::New,
            timestamp: now,
            ..TaskStatus::default()
        },
        spec: service.spec.clone(),
        networks: Vec::new(),
    }
}

/// `task` with a new desired state.
fn desire(task: &Task, state: TaskState) -> Task {
    let mut task = task.clone();
    task.desired_state = state;
    task
}

/// Why a wanted task can no longer run where it is, if it cannot. A task of a down
/// node is given up only when another node could take it: with none (a one-node
/// cluster, or all others down or drained) a replacement could only wait, and the
/// node's agent keeps the task running, so it is kept for when the node is back
/// instead of being stopped and started again.
fn lost(task: &Task, cluster: &Cluster) -> Option<Lost> {
    let node = task.node.as_deref()?;
    if task.status.state < TaskState::Assigned && task.slot != 0 {
        return None;
    }
    match cluster.node(node) {
        None => Some(Lost::Orphaned(format!("node {node} was removed"))),
        Some(n) if n.status.state == NodeState::Down && cluster.elsewhere(node) => {
            Some(Lost::Orphaned(format!("node {node} is down")))
        }
        Some(n) if n.spec.availability == Availability::Drain => Some(Lost::Drained),
        _ => None,
    }
}

enum Lost {
    /// The node is gone or down: nobody will report on the task again.
    Orphaned(String),
    /// The node is drained: its agent stops the task.
    Drained,
}

/// Plans the tasks of one service. `tasks` are all of its tasks; `rebalance` says
/// which running tasks to move (see [`rebalance`](super::rebalance)); `ids` makes
/// task ids.
pub fn plan_service(
    service: &Service,
    tasks: &[&Task],
    cluster: &Cluster,
    rebalance: &Verdict,
    ids: &mut dyn FnMut() -> String,
) -> Plan {
    let mut plan = Plan::default();
    let now = cluster.now;
    let restart = Restart::of(&service.spec);
    let start_first = Update::of(&service.spec).order == UpdateOrder::StartFirst;
    let mut slots: BTreeMap<Slot, Vec<&Task>> = BTreeMap::new();
    for task in tasks {
        slots.entry(slot_of(task)).or_default().push(task);
    }
    for list in slots.values_mut() {
        list.sort_by_key(|t| (t.meta.created, t.meta.id.clone()));
    }

    // Slots by what they need: still running, waiting for a restart, done.
    let mut live: BTreeMap<Slot, Vec<&Task>> = BTreeMap::new();
    let mut held: Vec<Slot> = Vec::new();
    for (slot, list) in &slots {
        let mut current: Vec<&Task> = Vec::new();
        let mut replace_now = false;
        for task in list {
            if !wanted(task) {
                settle_unwanted(task, cluster, &mut plan);
                continue;
            }
            if ended(task.status.state) {
                plan.push(Change::update_task(desire(task, TaskState::Shutdown)));
                continue;
            }
            match lost(task, cluster) {
                Some(Lost::Orphaned(why)) => {
                    let mut t = desire(task, TaskState::Shutdown);
                    t.status = TaskStatus {
                        state: TaskState::Orphaned,
                        timestamp: now,
                        message: why,
                        ..task.status.clone()
                    };
                    plan.push(Change::update_task(t));
                    replace_now = true;
                }
                Some(Lost::Drained) => {
                    plan.push(Change::update_task(desire(task, TaskState::Shutdown)));
                    replace_now = true;
                }
                None => current.push(task),
            }
        }
        if !current.is_empty() {
            live.insert(slot.clone(), current);
            continue;
        }
        if replace_now {
            // Global slots are nodes: a lost node's slot is not replaced elsewhere.
            if matches!(slot, Slot::Replica(_)) {
                let task = new_task(service, slot, ids(), now);
                plan.push(Change::create_task(task.clone()));
                held.push(slot.clone());
            }
            continue;
        }
        match restart_due(list, &restart, now) {
            RestartDue::Now => {
                live.insert(slot.clone(), Vec::new());
            }
            RestartDue::At(at) => {
                plan.wake(at);
                held.push(slot.clone());
            }
            RestartDue::Done => held.push(slot.clone()),
            RestartDue::Free => {}
        }
    }

    // Which slots to keep, which to add, which to shut down.
    let wanted_slots: Vec<Slot> = match mode(&service.spec) {
        DeployMode::Replicated | DeployMode::ReplicatedJob => {
            let count = replicas(&service.spec) as usize;
            let mut occupied: Vec<Slot> = live.keys().chain(held.iter()).cloned().collect();
            occupied.sort();
            occupied.dedup();
            let mut keep: Vec<Slot> = occupied.into_iter().take(count).collect();
            let mut n = 1;
            while keep.len() < count {
                let slot = Slot::Replica(n);
                if !keep.contains(&slot) {
                    keep.push(slot);
                }
                n += 1;
            }
            keep
        }
        DeployMode::Global | DeployMode::GlobalJob => {
            let mut keep: Vec<Slot> = cluster
                .global_nodes()
                .filter(|n| {
                    n.spec.availability == Availability::Active
                        || live.contains_key(&Slot::Node(n.meta.id.clone()))
                })
                .map(|n| Slot::Node(n.meta.id.clone()))
                .collect();
            keep.sort();
            keep
        }
    };
    for (slot, current) in &live {
        if !wanted_slots.contains(slot) {
            for task in current {
                plan.push(Change::update_task(desire(task, TaskState::Shutdown)));
            }
        }
    }
    let mut outdated: Vec<(&Slot, &Task)> = Vec::new();
    let mut updating = 0u64;
    let mut settling = false;
    let mut last_started: Option<Timestamp> = None;
    for slot in &wanted_slots {
        let Some(current) = live.get(slot) else {
            if !held.contains(slot) {
                plan.push(Change::create_task(new_task(service, slot, ids(), now)));
            }
            continue;
        };
        if current.is_empty() {
            plan.push(Change::create_task(new_task(service, slot, ids(), now)));
            continue;
        }
        let (fresh, old): (Vec<&Task>, Vec<&Task>) = current
            .iter()
            .partition(|t| same_task_spec(&t.spec, &service.spec));
        // The newest fresh task is the slot's; extra fresh ones (a duplicate) stop —
        // but a running one that is being moved start-first runs until its
        // replacement does.
        if let Some((newest, extra)) = fresh.split_last() {
            let replacing = newest.status.state != TaskState::Running && start_first;
            for task in extra {
                if !(replacing && task.status.state == TaskState::Running) {
                    plan.push(Change::update_task(desire(task, TaskState::Shutdown)));
                }
            }
            if newest.status.state == TaskState::Running {
                last_started = last_started.max(Some(newest.status.timestamp));
                for task in &old {
                    plan.push(Change::update_task(desire(task, TaskState::Shutdown)));
                }
            } else {
                // Not running yet: an update waits for it (as for a new replica).
                updating += 1;
                settling |= newest.status.state < TaskState::Running;
            }
        } else if let Some((newest, extra)) = old.split_last() {
            for task in extra {
                plan.push(Change::update_task(desire(task, TaskState::Shutdown)));
            }
            outdated.push((slot, newest));
        }
    }
    let at = Rollout {
        outdated: outdated.len(),
        settling,
        last_started,
    };
    if let Some(update) = rollout(service, &at, tasks, wanted_slots.len(), now, &mut plan) {
        plan.merge(roll(
            service,
            &update,
            &outdated,
            updating,
            last_started,
            now,
            ids,
        ));
    } else if outdated.is_empty() {
        let moving: Vec<(&Slot, &Task)> = match rebalance {
            Verdict::Move(ids) => live
                .iter()
                .filter(|(slot, _)| wanted_slots.contains(slot))
                .filter_map(|(slot, current)| {
                    let task = current.iter().rev().find(|t| ids.contains(&t.meta.id))?;
                    Some((slot, *task))
                })
                .collect(),
            _ => Vec::new(),
        };
        let update = Update::of(&service.spec);
        let moves = roll(service, &update, &moving, updating, last_started, now, ids);
        let started = moves
            .changes
            .iter()
            .filter(|c| matches!(c, Change::Create(_)))
            .count() as u64;
        if let Some(s) = rebalance_status(service, rebalance, started, now) {
            plan.push(Change::update_service(s));
        }
        plan.merge(moves);
    }
    plan
}

/// The service with its rebalance status moved on, if it changes: moving once tasks
/// move, completed once the strategy is satisfied.
fn rebalance_status(
    service: &Service,
    verdict: &Verdict,
    started_moves: u64,
    now: Timestamp,
) -> Option<Service> {
    use api::cluster::{RebalanceState, RebalanceStatus};
    let old = service.rebalance.clone();
    let next = match (verdict, &old) {
        (Verdict::Move(_), _) if started_moves > 0 => {
            let mut s =
                old.filter(|s| s.state == RebalanceState::Moving)
                    .unwrap_or(RebalanceStatus {
                        state: RebalanceState::Moving,
                        started: now,
                        ..RebalanceStatus::default()
                    });
            s.moved += started_moves;
            s
        }
        (Verdict::Satisfied(message), Some(s)) if s.state != RebalanceState::Completed => {
            RebalanceStatus {
                state: RebalanceState::Completed,
                started: if s.started.0 == 0 { now } else { s.started },
                completed: Some(now),
                moved: s.moved,
                message: message.clone(),
            }
        }
        _ => return None,
    };
    let mut service = service.clone();
    service.rebalance = Some(next);
    Some(service)
}

/// Where the rollout of a service's spec stands, as [`rollout`] needs it.
struct Rollout {
    /// Slots whose task runs an older spec.
    outdated: usize,
    /// Whether a slot's task of the current spec is still coming up (not yet running,
    /// not ended).
    settling: bool,
    /// When the newest task of the current spec started running.
    last_started: Option<Timestamp>,
}

/// Keeps the service's update status (started, completed, paused, rolled back) and
/// answers how to roll on, or `None` to not replace outdated tasks in this pass.
/// Once no slot is outdated the rollout is watched for `monitor` after its last task
/// started (swarm's `update_config.monitor`): a new task failing meanwhile still
/// counts against `max_failure_ratio`, and only then is the rollout completed.
fn rollout(
    service: &Service,
    at: &Rollout,
    tasks: &[&Task],
    slots: usize,
    now: Timestamp,
    plan: &mut Plan,
) -> Option<Update> {
    use api::cluster::{UpdateState, UpdateStatus};
    let status = service.update_status.clone();
    let state = status.as_ref().map(|s| s.state);
    let rolling_back = matches!(
        state,
        Some(UpdateState::RollbackStarted | UpdateState::RollbackPaused)
    );
    let update = if rolling_back {
        Update::rollback_of(&service.spec)
    } else {
        Update::of(&service.spec)
    };
    let set = |plan: &mut Plan, service: Service| plan.push(Change::update_service(service));
    let with_status = |state: UpdateState, started: Timestamp, message: String| {
        let mut s = service.clone();
        s.update_status = Some(UpdateStatus {
            state,
            started,
            completed: matches!(
                state,
                UpdateState::Completed
                    | UpdateState::RollbackCompleted
                    | UpdateState::Paused
                    | UpdateState::RollbackPaused
            )
            .then_some(now),
            message,
        });
        s
    };
    if at.outdated == 0 {
        let started = status.as_ref().map_or(now, |s| s.started);
        let done = match state {
            Some(UpdateState::Updating) => UpdateState::Completed,
            Some(UpdateState::RollbackStarted) => UpdateState::RollbackCompleted,
            _ => return None,
        };
        if failures_stop(service, &update, tasks, slots, started, now, plan) {
            return None;
        }
        let watched_until = at
            .last_started
            .map_or(now, |t| Timestamp(t.0 + update.monitor_ms));
        if at.settling {
            return None;
        }
        if watched_until > now {
            plan.wake(watched_until);
            return None;
        }
        let message = status.map(|s| s.message).unwrap_or_default();
        let message = if rolling_back { message } else { String::new() };
        set(plan, with_status(done, started, message));
        return None;
    }
    let started = match (state, &status) {
        (None | Some(UpdateState::Completed | UpdateState::RollbackCompleted), _) => {
            set(plan, with_status(UpdateState::Updating, now, String::new()));
            return Some(update);
        }
        (Some(UpdateState::Paused | UpdateState::RollbackPaused), _) => return None,
        (_, Some(status)) => status.started,
        (_, None) => return Some(update),
    };
    if failures_stop(service, &update, tasks, slots, started, now, plan) {
        return None;
    }
    Some(update)
}

/// Whether the tasks of the rollout started at `started` that failed are too many for
/// `update` (over `max_failure_ratio` of `slots`); if so, its `failure_action` is taken:
/// the service is rolled back (an update with a previous spec), else paused.
fn failures_stop(
    service: &Service,
    update: &Update,
    tasks: &[&Task],
    slots: usize,
    started: Timestamp,
    now: Timestamp,
    plan: &mut Plan,
) -> bool {
    use api::cluster::{UpdateState, UpdateStatus};
    let rolling_back = matches!(
        service.update_status.as_ref().map(|s| s.state),
        Some(UpdateState::RollbackStarted | UpdateState::RollbackPaused)
    );
    let failed: Vec<&&Task> = tasks
        .iter()
        .filter(|t| t.meta.created >= started && same_task_spec(&t.spec, &service.spec))
        .filter(|t| matches!(t.status.state, TaskState::Failed | TaskState::Rejected))
        .collect();
    let ratio = failed.len() as f64 / slots.max(1) as f64;
    if failed.is_empty() || ratio <= update.max_failure_ratio {
        return false;
    }
    let last = failed.iter().max_by_key(|t| t.status.timestamp);
    let why = last.map_or(String::new(), |t| {
        let detail = if t.status.message.is_empty() {
            t.status.state.as_str().to_owned()
        } else {
            t.status.message.clone()
        };
        format!(" (task {}: {detail})", t.meta.id)
    });
    let message = |what: &str| {
        format!(
            "{what}: {} of {} new tasks failed{why}",
            failed.len(),
            slots.max(1)
        )
    };
    let with_status = |state: UpdateState, started: Timestamp, message: String| {
        let mut s = service.clone();
        s.update_status = Some(UpdateStatus {
            state,
            started,
            completed: (state != UpdateState::RollbackStarted).then_some(now),
            message,
        });
        s
    };
    let next = match update.failure_action {
        FailureAction::Continue => return false,
        FailureAction::Rollback if !rolling_back && service.previous_spec.is_some() => {
            let mut s = with_status(UpdateState::RollbackStarted, now, message("rolled back"));
            let previous = s.previous_spec.take().unwrap_or_default();
            s.previous_spec = Some(std::mem::replace(&mut s.spec, previous));
            s
        }
        _ => {
            let (state, what) = if rolling_back {
                (UpdateState::RollbackPaused, "rollback paused")
            } else {
                (UpdateState::Paused, "update paused")
            };
            with_status(state, started, message(what))
        }
    };
    plan.push(Change::update_service(next));
    true
}

/// Replaces outdated tasks in batches of `parallelism`, `delay` after the last
/// replacement started running.
fn roll(
    service: &Service,
    update: &Update,
    outdated: &[(&Slot, &Task)],
    updating: u64,
    last_started: Option<Timestamp>,
    now: Timestamp,
    ids: &mut dyn FnMut() -> String,
) -> Plan {
    let mut plan = Plan::default();
    if outdated.is_empty() {
        return plan;
    }
    let budget = if update.parallelism == 0 {
        outdated.len() as u64
    } else {
        update.parallelism.saturating_sub(updating)
    };
    if budget == 0 {
        return plan;
    }
    if updating == 0
        && let Some(started) = last_started
        && started.0 + update.delay_ms > now.0
    {
        plan.wake(Timestamp(started.0 + update.delay_ms));
        return plan;
    }
    for (slot, task) in outdated.iter().take(budget as usize) {
        if update.order == UpdateOrder::StopFirst {
            plan.push(Change::update_task(desire(task, TaskState::Shutdown)));
        }
        let mut new = new_task(service, slot, ids(), now);
        if let Slot::Node(node) = slot {
            new.node = Some(node.clone());
        }
        plan.push(Change::create_task(new));
    }
    plan
}

enum RestartDue {
    /// Replace the task now.
    Now,
    /// Replace it at this time (the restart delay).
    At(Timestamp),
    /// The slot is finished (a job completed, no restart wanted, attempts used up):
    /// it counts as one of the replicas and gets no new task.
    Done,
    /// The slot's task was stopped on purpose (scale down, update, drain): the slot
    /// is free.
    Free,
}

/// Whether the slot whose tasks (oldest first, none wanted) are `list` gets a new one.
fn restart_due(list: &[&Task], restart: &Restart, now: Timestamp) -> RestartDue {
    let Some(last) = list.last() else {
        return RestartDue::Now;
    };
    // Being stopped, or stopped on purpose: not restarted.
    if !ended(last.status.state) || last.status.state == TaskState::Shutdown {
        return RestartDue::Free;
    }
    if !restart.wants(last.status.state) {
        return RestartDue::Done;
    }
    let restarts: Vec<Timestamp> = list
        .iter()
        .skip(1)
        .filter(|t| {
            matches!(
                t.status.state,
                TaskState::Failed | TaskState::Complete | TaskState::Rejected
            )
        })
        .map(|t| t.status.timestamp)
        .collect();
    if !restart.attempts_left(&restarts, now) {
        return RestartDue::Done;
    }
    let at = Timestamp(last.status.timestamp.0 + restart.delay_ms);
    if at <= now {
        RestartDue::Now
    } else {
        RestartDue::At(at)
    }
}

/// A task the orchestrator no longer wants: settled when no agent will report its
/// stop (never assigned, or its node is gone), then trimmed by [`trim_history`].
fn settle_unwanted(task: &Task, cluster: &Cluster, plan: &mut Plan) {
    if ended(task.status.state) {
        return;
    }
    let why = match task.node.as_deref() {
        None => Some((
            TaskState::Shutdown,
            "stopped before it was scheduled".to_owned(),
        )),
        Some(_) if task.status.state < TaskState::Assigned => Some((
            TaskState::Shutdown,
            "stopped before it was scheduled".to_owned(),
        )),
        Some(node) => match cluster.node(node) {
            None => Some((TaskState::Orphaned, format!("node {node} was removed"))),
            Some(n) if n.status.state == NodeState::Down => {
                Some((TaskState::Orphaned, format!("node {node} is down")))
            }
            _ => None,
        },
    };
    if let Some((state, message)) = why {
        let mut t = task.clone();
        t.status = TaskStatus {
            state,
            timestamp: cluster.now,
            message,
            ..task.status.clone()
        };
        plan.push(Change::update_task(t));
    }
}

/// Deletes ended, unwanted tasks beyond [`HISTORY`] per slot (oldest first), and
/// every ended task of a service that no longer exists; but not an orphaned task
/// whose node may come back with its container ([`awaits_node`]).
pub fn trim_history(
    tasks: &[&Task],
    service_exists: bool,
    restart: Option<&Restart>,
    cluster: &Cluster,
) -> Plan {
    let mut plan = Plan::default();
    let keep = if service_exists {
        HISTORY.max(restart.and_then(|r| r.max_attempts).unwrap_or(0) as usize + 1)
    } else {
        0
    };
    let mut slots: BTreeMap<Slot, Vec<&Task>> = BTreeMap::new();
    for task in tasks {
        if !wanted(task)
            && ended(task.status.state)
            && !awaits_node(task, |n| cluster.node(n).is_some())
        {
            slots.entry(slot_of(task)).or_default().push(task);
        }
    }
    for list in slots.values_mut() {
        list.sort_by_key(|t| (t.meta.created, t.meta.id.clone()));
        let surplus = list.len().saturating_sub(keep);
        for task in &list[..surplus] {
            plan.push(Change::delete(&api::cluster::Object::Task(Box::new(
                (*task).clone(),
            ))));
        }
    }
    plan
}

/// Tasks of services that no longer exist: stopped, then deleted once ended.
pub fn plan_orphans(tasks: &[&Task], cluster: &Cluster) -> Plan {
    let mut plan = Plan::default();
    for task in tasks {
        if wanted(task) {
            plan.push(Change::update_task(desire(task, TaskState::Shutdown)));
        } else {
            settle_unwanted(task, cluster, &mut plan);
        }
    }
    plan.merge(trim_history(tasks, false, None, cluster));
    plan
}
