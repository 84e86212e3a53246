//! Desired state to tasks, on the leader. Pure passes over a snapshot of the state
//! (no I/O, no clock but the `now` given), and one loop that runs them:
//!
//! - [`stacks`]: a stack's services and networks as cluster objects.
//! - [`files`]: a stack's secrets and configs as cluster objects.
//! - [`networks`]: which stack networks the cluster can make.
//! - [`volumes`]: a stack's named volumes as cluster objects, and their removal.
//! - [`tasks`]: each service's tasks — replicas or one per node, restarts, tasks of
//!   lost nodes replaced, rolling updates, bounded history.
//! - [`policy`]: restart and update settings with swarm's defaults.
//! - [`schedule`]: pending tasks onto nodes with the [`scheduler`](crate::scheduler).
//! - [`depends`]: start order from `depends_on`.
//! - [`rebalance`]: running tasks moved until the placement strategy is satisfied.
//! - [`change`]: what a pass wants written.
//! - `run`: the loop on the leader: after each commit (and when a delay is due) it
//!   runs the passes — orchestrator, allocator, scheduler — and writes their
//!   changes, each naming the version it read.

pub mod change;
pub mod depends;
pub mod files;
pub mod networks;
pub mod policy;
pub mod rebalance;
mod run;
pub mod schedule;
pub mod stacks;
pub mod tasks;
pub mod volumes;

pub use change::{Change, Plan, awaits_node, ended, wanted};
pub use run::{Pass, Reconciler, to_command};

use crate::scheduler::Strategy;
use crate::store::State;
use api::cluster::{Node, Service, Timestamp};
use rebalance::Verdict;
use std::collections::{BTreeMap, BTreeSet};

/// The passes of the leader's reconcile loop, in order: the orchestrator, the
/// allocator, the scheduler.
pub fn passes() -> Vec<(&'static str, Pass)> {
    vec![
        ("orchestrator", Box::new(plan)),
        (
            "allocator",
            Box::new(|state: &State, _, _: &mut dyn FnMut() -> String| {
                crate::allocator::plan(state)
            }),
        ),
        (
            "scheduler",
            Box::new(|state: &State, now, _: &mut dyn FnMut() -> String| {
                schedule::plan(state, cluster_strategy(state), now)
            }),
        ),
    ]
}

/// The cluster's placement strategy (services may override it).
fn cluster_strategy(state: &State) -> Strategy {
    state
        .cluster
        .as_ref()
        .map(|c| c.settings.strategy)
        .unwrap_or_default()
}

/// Plans stacks, then services' tasks, then tasks of removed services.
pub fn plan(state: &State, now: Timestamp, ids: &mut dyn FnMut() -> String) -> Plan {
    let mut plan = Plan::default();
    let mut stack_ids: BTreeSet<&str> = state.stacks.iter().map(|s| s.meta.id.as_str()).collect();
    stack_ids.extend(
        state
            .services
            .iter()
            .map(|s| s.stack.as_str())
            .chain(state.networks.iter().map(|n| n.stack.as_str()))
            .chain(state.secrets.iter().map(|s| s.stack.as_str()))
            .chain(state.configs.iter().map(|c| c.stack.as_str()))
            .chain(state.volumes.iter().map(|v| v.stack.as_str()))
            .filter(|s| !s.is_empty()),
    );
    let tasks: Vec<&api::cluster::Task> = state.tasks.iter().collect();
    let volumes: Vec<_> = state.volumes.iter().collect();
    let all_nodes: Vec<&Node> = state.nodes.iter().collect();
    let all_stacks: Vec<&api::cluster::Stack> = state.stacks.iter().collect();
    for id in stack_ids {
        let services: Vec<_> = state.services.by_stack(id).collect();
        let networks: Vec<_> = state.networks.by_stack(id).collect();
        plan.merge(stacks::plan_stack(
            id,
            state.stacks.get(id),
            &services,
            &networks,
            &tasks,
        ));
        let secrets: Vec<_> = state.secrets.by_stack(id).collect();
        let configs: Vec<_> = state.configs.by_stack(id).collect();
        let stack = state.stacks.get(id);
        plan.merge(files::plan_files(id, stack, &secrets, &configs, &tasks));
        plan.merge(volumes::plan_volumes(
            id,
            stack,
            &volumes,
            &all_stacks,
            &all_nodes,
        ));
    }
    let nodes: BTreeMap<String, Node> = state
        .nodes
        .iter()
        .map(|n| (n.meta.id.clone(), n.clone()))
        .collect();
    let cluster = tasks::Cluster { nodes: &nodes, now };
    let strategy = cluster_strategy(state);
    for service in state.services.iter() {
        let of_service: Vec<_> = state.tasks.by_service(&service.meta.id).collect();
        let verdict = rebalance_verdict(state, service, strategy);
        plan.merge(tasks::plan_service(
            service,
            &of_service,
            &cluster,
            &verdict,
            ids,
        ));
        let restart = policy::Restart::of(&service.spec);
        plan.merge(tasks::trim_history(
            &of_service,
            true,
            Some(&restart),
            &cluster,
        ));
    }
    let orphans: Vec<_> = tasks
        .iter()
        .copied()
        .filter(|t| state.services.get(&t.service).is_none())
        .collect();
    plan.merge(tasks::plan_orphans(&orphans, &cluster));
    dedupe(plan)
}

/// Whether and how `service` rebalances now: only when it wants to and no update or
/// rollback of it is under way, in batches of its update parallelism.
fn rebalance_verdict(state: &State, service: &Service, strategy: Strategy) -> Verdict {
    use api::cluster::UpdateState;
    let settled = service.update_status.as_ref().is_none_or(|u| {
        matches!(
            u.state,
            UpdateState::Completed | UpdateState::RollbackCompleted
        )
    });
    if !settled || !rebalance::wanted(service) {
        return Verdict::Busy;
    }
    let batch = match policy::Update::of(&service.spec).parallelism {
        0 => usize::MAX,
        n => n as usize,
    };
    rebalance::verdict(state, service, strategy, batch)
}

/// One change per object: a later change of the same object wins (a task set to
/// shut down by one rule and trimmed by another is only trimmed).
fn dedupe(plan: Plan) -> Plan {
    let mut seen = BTreeSet::new();
    let mut changes = Vec::new();
    for change in plan.changes.into_iter().rev() {
        let key = match &change {
            Change::Create(o) | Change::Update(o) => (o.kind(), o.meta().id.clone()),
            Change::Delete { kind, id, .. } => (*kind, id.clone()),
        };
        if seen.insert(key) {
            changes.push(change);
        }
    }
    changes.reverse();
    Plan {
        changes,
        wake_at: plan.wake_at,
    }
}

#[cfg(test)]
mod addresses_tests;
#[cfg(test)]
mod endpoints_tests;
#[cfg(test)]
mod files_tests;
#[cfg(test)]
mod ingress_tests;
#[cfg(test)]
mod rebalance_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
