//! Rebalancing: moving a replicated service's running tasks, a batch at a time under
//! its `update_config`, until its placement strategy is satisfied. Swarm leaves tasks
//! where they were placed when nodes join or come back; orch moves them when asked
//! (`orch service rebalance`) or all the time for a service labelled
//! `orch.rebalance=true`.
//!
//! The scheduler is asked where one more task of the service would go now (on the
//! cluster as it is, the running tasks in place, as the scheduling pass will see it
//! when it places the replacement); a task moves there from the node it helps most
//! to leave, if that strictly improves the strategy's measure:
//! - **spread**: the service's tasks on the new node, plus this one, stay fewer than
//!   on the fullest node — so on equal nodes the counts end within one of each other;
//! - **binpack**: the new node already holds at least as many tasks as the emptiest
//!   node the service runs on — so tasks gather on fewer nodes;
//! - **random**: there is nothing to satisfy, and nothing moves.
//!
//! Each move lowers (spread: the sum of squared counts) or raises (binpack: the same
//! sum over all tasks) a bounded measure, so a rebalance always ends.

use super::policy::mode;
use crate::scheduler::{STRATEGY_LABEL, Scheduler, Strategy, occupies};
use crate::store::State;
use api::ServiceSpec;
use api::cluster::{RebalanceState, Service, Task, TaskState};
use api::deploy::DeployMode;
use std::collections::BTreeMap;

/// The label that makes a service rebalance by itself (`true`).
pub const REBALANCE_LABEL: &str = "orch.rebalance";

/// A service label's value: `deploy.labels` first, then `labels`.
fn label<'a>(spec: &'a ServiceSpec, key: &str) -> Option<&'a str> {
    spec.deploy
        .as_ref()
        .and_then(|d| d.labels.get(key))
        .or_else(|| spec.labels.get(key))
        .map(|v| v.trim())
}

/// Whether the service rebalances by itself (label `orch.rebalance=true`).
pub fn automatic(spec: &ServiceSpec) -> bool {
    label(spec, REBALANCE_LABEL).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Whether the service should be rebalanced now: it does so by itself, or a
/// rebalance was asked for and has not completed.
pub fn wanted(service: &Service) -> bool {
    let asked = service
        .rebalance
        .as_ref()
        .is_some_and(|r| r.state != RebalanceState::Completed);
    let replicated = matches!(mode(&service.spec), DeployMode::Replicated);
    replicated && (asked || automatic(&service.spec))
}

/// The strategy the service is placed by: its `orch.strategy` label, else the
/// cluster's. A malformed label moves nothing (the scheduler reports it on placement).
pub fn strategy_of(spec: &ServiceSpec, cluster: Strategy) -> Option<Strategy> {
    match label(spec, STRATEGY_LABEL) {
        Some(value) => value.parse().ok(),
        None => Some(cluster),
    }
}

/// What a rebalance pass found for a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not now: the service does not want it, or a task of it is not running yet (a
    /// move or an update is under way).
    Busy,
    /// No move would improve the placement (with why, when it is not obvious).
    Satisfied(String),
    /// Move these running tasks (at most the batch size), in order.
    Move(Vec<String>),
}

/// Which of `service`'s running tasks to move now, at most `budget`.
pub fn verdict(state: &State, service: &Service, cluster: Strategy, budget: usize) -> Verdict {
    let strategy = match strategy_of(&service.spec, cluster) {
        Some(Strategy::Random) => {
            return Verdict::Satisfied(
                "the random strategy has no placement to satisfy".to_owned(),
            );
        }
        Some(strategy) => strategy,
        None => {
            return Verdict::Satisfied(format!(
                "label {STRATEGY_LABEL} names no strategy (use spread, binpack or random)"
            ));
        }
    };
    let own: Vec<&Task> = state
        .tasks
        .by_service(&service.meta.id)
        .filter(|t| super::wanted(t))
        .collect();
    if own.iter().any(|t| t.status.state != TaskState::Running) {
        return Verdict::Busy;
    }
    // Where the scheduling pass would put one more task of the service now (its
    // running tasks still in place, as they stay until their replacements are
    // placed), and which node a task should leave for it.
    let Some(probe) = own.last() else {
        return Verdict::Satisfied(String::new());
    };
    let mut scheduler = Scheduler::new(state.nodes.iter(), state.tasks.iter(), strategy, 0);
    let mut mine: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut all: BTreeMap<String, u64> = BTreeMap::new();
    for task in state.tasks.iter().filter(|t| occupies(t)) {
        let node = task.node.clone().unwrap_or_default();
        *all.entry(node.clone()).or_default() += 1;
        if task.service == service.meta.id {
            mine.entry(node).or_default().push(task.meta.id.clone());
        }
    }
    let mut chosen: Vec<String> = Vec::new();
    while chosen.len() < budget.max(1) {
        let Ok(to) = scheduler.place(probe) else {
            break;
        };
        let own = |node: &str| mine.get(node).map_or(0, |t| t.len() as u64);
        let total = |node: &str| all.get(node).copied().unwrap_or(0);
        let from = mine
            .iter()
            .filter(|(node, tasks)| **node != to && !tasks.is_empty())
            .map(|(node, _)| node.clone())
            .min_by_key(|node| match strategy {
                Strategy::Binpack => (total(node), u64::MAX - own(node)),
                _ => (u64::MAX - own(node), total(node)),
            });
        let Some(from) = from else { break };
        let better = match strategy {
            Strategy::Spread => own(&to) + 1 < own(&from),
            _ => total(&to) >= total(&from),
        };
        if !better {
            break;
        }
        // A task that moved in this batch is not chosen again: its place holds an
        // empty id.
        let Some(tasks) = mine.get_mut(&from) else {
            break;
        };
        let Some(at) = tasks.iter().rposition(|t| !t.is_empty()) else {
            break;
        };
        let task = tasks.remove(at);
        mine.entry(to.clone()).or_default().push(String::new());
        *all.entry(to).or_default() += 1;
        *all.entry(from).or_default() -= 1;
        chosen.push(task);
    }
    if chosen.is_empty() {
        Verdict::Satisfied(String::new())
    } else {
        Verdict::Move(chosen)
    }
}
