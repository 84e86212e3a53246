//! The scheduler: picks a node for each task, pure over a snapshot of the cluster (no
//! I/O, no clock; the `random` strategy draws from the seed it is given).
//!
//! A task passes a pipeline of filters, cheap first; the first filter that rejects a
//! node names the [`Reason`], and when no node is left the task gets an
//! [`Unschedulable`] that tallies every node under its reason ("no node fits: 3 lack
//! memory (need 2GiB), 1 is drained, 2 are down"). The filters:
//!
//! 1. **state**: the node is ready (down and unknown nodes are rejected);
//! 2. **availability**: the node is active (paused and drained nodes are rejected);
//! 3. **constraint**: every `deploy.placement.constraints` entry holds. A constraint is
//!    `KEY==VALUE` or `KEY!=VALUE` with KEY one of `node.id`, `node.hostname`,
//!    `node.role`, `node.platform.os`, `node.platform.arch`, `node.labels.NAME`,
//!    `engine.labels.NAME`; values compare case-insensitively; a label the node lacks
//!    fails `==` and satisfies `!=`. A malformed constraint (or preference, or
//!    `orch.strategy` label) rejects every node with a reason that names it;
//! 4. **dependency**: for `volumes_from` (`NAME`, `service:NAME`, `container:NAME`, with
//!    an optional `:ro`/`:rw`) and `network_mode`/`ipc`/`pid` of the form
//!    `service:NAME` or `container:NAME`, a task of service NAME runs on the node (a
//!    container is named by its service);
//! 5. **affinity**: the hard affinities of the service's labels hold (see below);
//! 6. **max_replicas**: fewer than `deploy.placement.max_replicas_per_node` tasks of the
//!    service run on the node;
//! 7. **ports**: every host port is free on the node for its protocol: one task per
//!    node per port and protocol. Host ports are those of `mode: host`, and the
//!    ingress ones the routing mesh does not carry (a range, no published port, a
//!    `host_ip`); a range (`8000-8010`) needs one free port of the range. A mesh port
//!    (`ingress`, one published port) needs nothing of the node: it answers on every
//!    node, and the allocator gives it to one service cluster-wide;
//! 8. **resources**: `deploy.resources.reservations` (cpus, memory) fit in what the
//!    tasks occupying the node (see [`occupies`]) have not reserved.
//!
//! # Affinities
//!
//! In the spirit of classic Swarm's `affinity:service==web`, a service declares them in
//! its labels (`labels:` or `deploy.labels:`) under the key `orch.affinity`, or
//! `orch.affinity.ANYTHING` to write several labels, each value a comma-separated list
//! of expressions:
//!
//! ```yaml
//! labels:
//!   orch.affinity: "service==db, service!=web"   # hard: beside db, never beside web
//!   orch.affinity.cache: "service==~redis"       # soft: rather beside redis
//! ```
//!
//! `service==NAME` runs the task only on a node with a task of NAME; `service!=NAME`
//! only on a node without one. The soft variants `service==~NAME` and `service!=~NAME`
//! reject no node: the nodes that honour them come first in any strategy. NAME is a
//! service of the task's stack, or a service id.
//!
//! # Strategies
//!
//! The cluster's [`Strategy`], overridden per service by the label `orch.strategy`
//! (`spread`, `binpack`, `random`): `spread` takes the node with the fewest tasks of the
//! service, then the fewest tasks, then the most free cpu and memory; `binpack` the most
//! used node that still fits; `random` a node drawn from the seed.
//! `deploy.placement.preferences` (`spread: node.labels.zone`, any attribute a
//! constraint can name) first spreads the service's tasks over the attribute's values,
//! level by level; nodes without the label form a group of their own, as in swarm.
//!
//! # Speed
//!
//! Tasks of one spec (one service version) share a cached profile: the fixed filters
//! run once per node, and the eligible nodes sit in heaps by rank that placements keep
//! current (the `profile` module), so a placement costs O(log nodes). A burst of tasks
//! of many services is best handed to [`Scheduler::place_all`], which groups it by spec.
//!
//! Modules: `reasons` (the verdict and its text), `strategy` (strategies and their
//! ranks), `constraint` (constraints and node attributes), `affinity` (affinities and
//! dependencies), `demand` (what a task asks), `filters`, `node` (a node and its usage),
//! `services` (where each service runs), `snapshot`, `profile` (cached heaps per spec),
//! `hash`.

mod affinity;
mod constraint;
mod demand;
mod filters;
mod hash;
mod node;
mod profile;
mod reasons;
mod services;
mod snapshot;
mod strategy;

#[cfg(test)]
mod tests;

pub use affinity::AffinityError;
pub use constraint::ConstraintError;
pub use reasons::{Filter, Reason, Tally, Unschedulable};
pub use strategy::{STRATEGY_LABEL, Strategy, UnknownStrategy};

use api::cluster::{Task, TaskState};
use demand::{Demand, Targets};
use filters::{check_fixed, check_usage};
use hash::FastMap;
use profile::Profile;
use snapshot::Snapshot;

/// Memory the warm profiles may hold (about 24 bytes a node each); the least recently
/// used beyond it are rebuilt when used again.
const WARM_BUDGET: usize = 256 << 20;
/// How many specs of one service keep a profile (a rolling update has two).
const PROFILES_PER_SERVICE: usize = 4;

/// Whether a task counts against its node's resources, ports and replica counts: it is
/// on a node and has not finished. A task whose desired state is past running counts
/// until it stops, unless it never got past `assigned`.
pub fn occupies(task: &Task) -> bool {
    let on_node = task.node.as_deref().is_some_and(|n| !n.is_empty());
    let unfinished = task.status.state <= TaskState::Running;
    let abandoned =
        task.desired_state > TaskState::Running && task.status.state <= TaskState::Assigned;
    on_node && unfinished && !abandoned
}

/// Places tasks on the nodes of a snapshot; each placement is counted for the next.
#[derive(Clone, Debug)]
pub struct Scheduler {
    snapshot: Snapshot,
    strategy: Strategy,
    seed: u64,
    profiles: Vec<Profile>,
    /// Service id -> its profiles, oldest first.
    by_service: FastMap<String, Vec<usize>>,
    /// Counts calls, for least-recently-used eviction of warm profiles.
    calls: u64,
    warm: usize,
}

impl Scheduler {
    /// A snapshot: every node, and the tasks that occupy nodes (others, as told by
    /// [`occupies`], are skipped, so passing every task is fine).
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = &'a api::cluster::Node>,
        tasks: impl IntoIterator<Item = &'a Task>,
        strategy: Strategy,
        seed: u64,
    ) -> Scheduler {
        let mut snapshot = Snapshot::new(nodes);
        for task in tasks.into_iter().filter(|t| occupies(t)) {
            let node = task.node.as_deref().and_then(|n| snapshot.index.get(n));
            if let Some(&node) = node {
                snapshot.add_task(task, node);
            }
        }
        Scheduler {
            snapshot,
            strategy,
            seed,
            profiles: Vec::new(),
            by_service: FastMap::default(),
            calls: 0,
            warm: 0,
        }
    }

    /// Chooses a node for `task` and counts the task there; or says why no node fits.
    pub fn place(&mut self, task: &Task) -> Result<String, Unschedulable> {
        let p = self.profile_for(task);
        let profile = &mut self.profiles[p];
        profile.catch_up(&self.snapshot);
        let node = profile.choose(&self.snapshot)?;
        let demand = &profile.demand;
        let service = profile.targets.own.unwrap_or_default();
        self.snapshot
            .record(node, demand.cpu, demand.memory, &demand.ports, service);
        profile.placed(node, &self.snapshot);
        Ok(self.snapshot.nodes[node as usize].id.clone())
    }

    /// Places many tasks (a commit burst): grouped by spec, as swarmkit does, so the
    /// tasks of one service version are placed one after another in their order, the
    /// groups in the order of their first task. The results are in the order of
    /// `tasks`. Faster than [`Scheduler::place`] in turn when the tasks of many
    /// services come interleaved.
    pub fn place_all<'a>(
        &mut self,
        tasks: impl IntoIterator<Item = &'a Task>,
    ) -> Vec<Result<String, Unschedulable>> {
        let tasks: Vec<&Task> = tasks.into_iter().collect();
        let mut groups: FastMap<usize, usize> = FastMap::default();
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(tasks.len());
        for (position, task) in tasks.iter().enumerate() {
            let profile = match self.cached_profile(task) {
                Some(p) => p,
                None => self.add_profile(task),
            };
            let next = groups.len();
            order.push((*groups.entry(profile).or_insert(next), position));
        }
        order.sort_unstable();
        let mut results: Vec<Option<Result<String, Unschedulable>>> = vec![None; tasks.len()];
        for (_, position) in order {
            results[position] = Some(self.place(tasks[position]));
        }
        results.into_iter().flatten().collect()
    }

    /// Whether `task` may run on `node` (for global services, whose node the
    /// orchestrator picks): the same filters as [`Scheduler::place`], on one node.
    pub fn fits(&self, task: &Task, node: &str) -> Result<(), Unschedulable> {
        let reject = |reason| Err(Unschedulable::all(reason, 1));
        let Some(&index) = self.snapshot.index.get(node) else {
            return reject(Reason::UnknownNode {
                node: node.to_owned(),
            });
        };
        let cached = self.cached_profile(task).map(|p| &self.profiles[p]);
        let fresh;
        let (demand, targets) = match cached {
            Some(profile) => (&profile.demand, profile.targets.clone()),
            None => {
                fresh = Demand::of(task);
                let targets = Targets::find(&fresh, task, &self.snapshot.services);
                (&fresh, targets)
            }
        };
        if let Some(invalid) = &demand.invalid {
            return reject(invalid.clone());
        }
        let info = &self.snapshot.nodes[index as usize];
        let services = &self.snapshot.services;
        check_fixed(info, demand)
            .and_then(|()| check_usage(info, index, demand, &targets, services))
            .or_else(reject)
    }

    /// Counts `task` on `node`, placed by other means (a global task); an unknown node
    /// is ignored.
    pub fn assign(&mut self, task: &Task, node: &str) {
        if let Some(&index) = self.snapshot.index.get(node) {
            self.snapshot.add_task(task, index);
        }
    }

    /// The strategy the cluster uses unless a service overrides it.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    fn cached_profile(&self, task: &Task) -> Option<usize> {
        let candidates = self.by_service.get(&task.service)?;
        candidates
            .iter()
            .copied()
            .find(|&p| self.profiles[p].matches(&task.spec))
    }

    /// The task's profile, made and warmed as needed.
    fn profile_for(&mut self, task: &Task) -> usize {
        self.calls += 1;
        let p = match self.cached_profile(task) {
            Some(p) => p,
            None => self.add_profile(task),
        };
        if !self.profiles[p].warm {
            let limit = (WARM_BUDGET / (24 * self.snapshot.nodes.len() + 64)).clamp(16, 4096);
            if self.warm >= limit {
                self.cool_oldest();
            }
            self.profiles[p].warm_up(&self.snapshot);
            self.warm += 1;
        }
        self.profiles[p].last_used = self.calls;
        p
    }

    fn add_profile(&mut self, task: &Task) -> usize {
        let profile = Profile::new(task, &mut self.snapshot, self.strategy, self.seed);
        let list = self.by_service.entry(task.service.clone()).or_default();
        if list.len() >= PROFILES_PER_SERVICE {
            // Reuse the service's oldest slot rather than growing.
            let p = list.remove(0);
            if self.profiles[p].warm {
                self.warm -= 1;
            }
            self.profiles[p] = profile;
            list.push(p);
            return p;
        }
        self.profiles.push(profile);
        let p = self.profiles.len() - 1;
        list.push(p);
        p
    }

    fn cool_oldest(&mut self) {
        let oldest = self
            .profiles
            .iter_mut()
            .filter(|p| p.warm)
            .min_by_key(|p| p.last_used);
        if let Some(profile) = oldest {
            profile.cool_down();
            self.warm -= 1;
        }
    }
}
