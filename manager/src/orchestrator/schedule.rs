//! The scheduling pass: each pending task onto a node the [`scheduler`] picks (a
//! task made for a node, as a global service's are, is checked against the filters
//! there). A task no node can take stays pending with the scheduler's reason, which
//! `orch ps` shows. A task that waits — for a secret or config to exist, for the
//! services it depends on — stays pending saying what it waits for.
//!
//! [`scheduler`]: crate::scheduler

use super::{Change, Plan, wanted};
use crate::scheduler::{Scheduler, Strategy, occupies};
use crate::store::State;
use api::cluster::{Task, TaskState, TaskStatus, Timestamp};

/// The tasks this pass places (or says why not): wanted to run, not placed yet.
pub fn pending(state: &State) -> impl Iterator<Item = &Task> {
    state
        .tasks
        .by_desired_state(TaskState::Running)
        .filter(|t| wanted(t) && t.status.state == TaskState::Pending)
}

/// Places the pending tasks of `state` (by service, then slot, so a service's
/// replicas are placed together).
pub fn plan(state: &State, strategy: Strategy, now: Timestamp) -> Plan {
    let mut plan = Plan::default();
    let mut pending: Vec<&Task> = pending(state).collect();
    if pending.is_empty() {
        return plan;
    }
    pending.sort_by(|a, b| (&a.service, a.slot, &a.meta.id).cmp(&(&b.service, b.slot, &b.meta.id)));
    let occupying = state.tasks.iter().filter(|t| occupies(t));
    let mut scheduler = Scheduler::new(state.nodes.iter(), occupying, strategy, now.0);
    for task in pending {
        let waiting = super::files::missing_file(state, task)
            .or_else(|| super::depends::waiting_for(state, task));
        if let Some(why) = waiting {
            if task.status.message != why {
                let mut task = task.clone();
                task.status.message = why;
                plan.push(Change::update_task(task));
            }
            continue;
        }
        let placed = match &task.node {
            Some(node) => scheduler.fits(task, node).map(|()| {
                scheduler.assign(task, node);
                node.clone()
            }),
            None => scheduler.place(task),
        };
        match placed {
            Ok(node) => {
                let mut task = task.clone();
                task.node = Some(node);
                task.status = TaskStatus {
                    state: TaskState::Assigned,
                    timestamp: now,
                    ..TaskStatus::default()
                };
                plan.push(Change::update_task(task));
            }
            Err(why) => {
                let message = why.to_string();
                if task.status.message != message {
                    let mut task = task.clone();
                    task.status.message = message;
                    plan.push(Change::update_task(task));
                }
            }
        }
    }
    plan
}
