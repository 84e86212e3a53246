//! A profile: what the scheduler keeps for tasks that share a spec (the tasks of one
//! service version) so placing each of them is O(log nodes), not O(nodes).
//!
//! The fixed filters run once per node when the profile is made. The nodes that pass
//! sit in heaps ordered by the strategy's rank, one heap per group of equal
//! preference values. Every placement appends its node to the snapshot's change log
//! and bumps the node's stamp; before choosing, a profile replays the log since its
//! last look and pushes a fresh entry for each changed node. An entry whose stamp is
//! not the node's current one is stale and dropped when it reaches the top. A node the
//! usage filters reject is dropped too, until it changes again: filters only look at
//! the node itself, so an unchanged node stays rejected. A profile that has fallen
//! far behind the log, or whose heaps hold mostly stale entries, is rebuilt.
//!
//! A *lazy* profile skips the log. It is one whose ranks never fall as tasks are placed
//! (`spread`; `random`, whose draw changes only with the service's own placements)
//! and whose rejections are final (no preferences, dependencies or `==` affinities:
//! cpu, memory and ports only fill up, counts only grow). A stale entry there is a
//! lower bound of its node's rank: when it reaches the top it is ranked again, and
//! pushed back if its rank rose. The node a lazy profile places on is pushed again at
//! once. So tasks of many services placed in turns cost no replay at all.

use super::demand::{Demand, Targets, reservations};
use super::filters::{check_fixed, check_usage};
use super::hash::{FastMap, scramble};
use super::reasons::Unschedulable;
use super::snapshot::Snapshot;
use super::strategy::{Strategy, rank};
use api::ServiceSpec;
use api::cluster::Task;
use api::deploy::Placement;
use api::service::PortSpec;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// `group_of` of a node the fixed filters reject.
const NONE: u32 = u32::MAX;

/// One node in a heap, at the rank it had when its stamp was `stamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    rank: u64,
    node: u32,
    stamp: u32,
}

impl Ord for Entry {
    /// Reversed, so the max-heap pops the smallest rank (then the smallest index).
    fn cmp(&self, other: &Entry) -> Ordering {
        (other.rank, other.node).cmp(&(self.rank, self.node))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The nodes of one combination of preference values.
#[derive(Clone, Debug, Default)]
struct Group {
    heap: BinaryHeap<Entry>,
    /// Per preference level, the index of this group's value prefix in `Profile::counts`.
    prefixes: Vec<u32>,
}

/// The parts of a spec a profile depends on: a task whose spec matches them shares it.
#[derive(Clone, Debug)]
struct SpecKey {
    placement: Option<Placement>,
    reserved: (u64, u64),
    ports: Vec<PortSpec>,
    labels: BTreeMap<String, String>,
    deploy_labels: Option<BTreeMap<String, String>>,
    volumes_from: Vec<String>,
    modes: [Option<String>; 3],
}

impl SpecKey {
    fn of(spec: &ServiceSpec) -> SpecKey {
        SpecKey {
            placement: spec.deploy.as_ref().and_then(|d| d.placement.clone()),
            reserved: reservations(spec),
            ports: spec.ports.clone(),
            labels: spec.labels.clone(),
            deploy_labels: spec.deploy.as_ref().map(|d| d.labels.clone()),
            volumes_from: spec.volumes_from.clone(),
            modes: [
                spec.network_mode.clone(),
                spec.ipc.clone(),
                spec.pid.clone(),
            ],
        }
    }

    fn matches(&self, spec: &ServiceSpec) -> bool {
        self.placement.as_ref() == spec.deploy.as_ref().and_then(|d| d.placement.as_ref())
            && self.reserved == reservations(spec)
            && self.ports == spec.ports
            && self.labels == spec.labels
            && self.deploy_labels.as_ref() == spec.deploy.as_ref().map(|d| &d.labels)
            && self.volumes_from == spec.volumes_from
            && self.modes[0] == spec.network_mode
            && self.modes[1] == spec.ipc
            && self.modes[2] == spec.pid
    }
}

/// The cached view of the nodes for the tasks of one spec.
#[derive(Clone, Debug)]
pub(super) struct Profile {
    key: SpecKey,
    pub demand: Demand,
    pub targets: Targets,
    pub strategy: Strategy,
    seed: u64,
    /// When the profile was last used (the scheduler's call counter).
    pub last_used: u64,
    /// Whether the heavy parts below are built.
    pub warm: bool,
    /// The nodes the fixed filters reject (all nodes when the spec is malformed).
    fixed: Unschedulable,
    /// Per node: its group, or `NONE`.
    group_of: Vec<u32>,
    eligible: usize,
    groups: Vec<Group>,
    /// Per preference level, per value prefix: tasks of the service on those nodes.
    counts: Vec<Vec<u32>>,
    /// Per node: tasks of the service when last counted (with preferences only).
    seen: Vec<u32>,
    /// Per node: the stamp of the last entry pushed for it.
    pushed: Vec<u32>,
    /// How much of the change log the heaps reflect.
    cursor: usize,
    /// The verdict of the last failed choice, while no eligible node changed.
    failure: Option<Unschedulable>,
    /// Whether the profile skips the change log (see the module doc).
    lazy: bool,
}

impl Profile {
    /// A cold profile for the task's spec; `strategy` is the cluster's.
    pub fn new(task: &Task, snapshot: &mut Snapshot, strategy: Strategy, seed: u64) -> Profile {
        let demand = Demand::of(task);
        let targets = Targets::make(&demand, task, &mut snapshot.services);
        let strategy = demand.strategy.unwrap_or(strategy);
        let lazy = matches!(strategy, Strategy::Spread | Strategy::Random)
            && demand.preferences.is_empty()
            && demand.dependencies.is_empty()
            && demand.affinities.iter().all(|a| !a.together);
        // Each service draws its own random order.
        let seed = seed ^ scramble(u64::from(targets.own.unwrap_or_default()));
        Profile {
            key: SpecKey::of(&task.spec),
            strategy,
            lazy,
            demand,
            targets,
            seed,
            last_used: 0,
            warm: false,
            fixed: Unschedulable::default(),
            group_of: Vec::new(),
            eligible: 0,
            groups: Vec::new(),
            counts: Vec::new(),
            seen: Vec::new(),
            pushed: Vec::new(),
            cursor: 0,
            failure: None,
        }
    }

    /// Whether a task with this spec shares the profile.
    pub fn matches(&self, spec: &ServiceSpec) -> bool {
        self.key.matches(spec)
    }

    /// Drops the heavy parts; [`Profile::warm_up`] builds them again.
    pub fn cool_down(&mut self) {
        self.warm = false;
        self.group_of = Vec::new();
        self.groups = Vec::new();
        self.counts = Vec::new();
        self.seen = Vec::new();
        self.pushed = Vec::new();
        self.failure = None;
    }

    /// Runs the fixed filters on every node and groups the nodes that pass.
    pub fn warm_up(&mut self, snapshot: &Snapshot) {
        let nodes = &snapshot.nodes;
        self.warm = true;
        self.fixed = Unschedulable::default();
        self.group_of = vec![NONE; nodes.len()];
        self.groups = Vec::new();
        self.eligible = 0;
        if let Some(invalid) = &self.demand.invalid {
            self.fixed = Unschedulable::all(invalid.clone(), nodes.len());
            return;
        }
        let levels = self.demand.preferences.len();
        let mut group_index: FastMap<Vec<Option<&str>>, u32> = FastMap::default();
        let mut prefix_index: Vec<FastMap<Vec<Option<&str>>, u32>> =
            vec![FastMap::default(); levels];
        for (i, node) in nodes.iter().enumerate() {
            if let Err(reason) = check_fixed(node, &self.demand) {
                self.fixed.add(reason);
                continue;
            }
            self.eligible += 1;
            if levels == 0 {
                if self.groups.is_empty() {
                    self.groups.push(Group::default());
                }
                self.group_of[i] = 0;
                continue;
            }
            let values: Vec<Option<&str>> = self
                .demand
                .preferences
                .iter()
                .map(|a| a.value(node))
                .collect();
            let next = self.groups.len() as u32;
            let group = *group_index.entry(values.clone()).or_insert(next);
            if group == next {
                let prefixes = (0..levels)
                    .map(|level| {
                        let map = &mut prefix_index[level];
                        let next = map.len() as u32;
                        *map.entry(values[..=level].to_vec()).or_insert(next)
                    })
                    .collect();
                self.groups.push(Group {
                    heap: BinaryHeap::new(),
                    prefixes,
                });
            }
            self.group_of[i] = group;
        }
        self.counts = prefix_index.iter().map(|m| vec![0; m.len()]).collect();
        self.refill(snapshot);
    }

    /// Recounts the preference groups and pushes every eligible node afresh.
    fn refill(&mut self, snapshot: &Snapshot) {
        let nodes = &snapshot.nodes;
        let with_preferences = !self.counts.is_empty();
        self.seen = if with_preferences {
            vec![0; nodes.len()]
        } else {
            Vec::new()
        };
        self.counts.iter_mut().for_each(|c| c.fill(0));
        self.pushed = vec![NONE; nodes.len()];
        let mut entries: Vec<Vec<Entry>> = vec![Vec::new(); self.groups.len()];
        for (i, node) in nodes.iter().enumerate() {
            let group = self.group_of[i];
            if group == NONE {
                continue;
            }
            if with_preferences {
                self.count_service(snapshot, i as u32, group);
            }
            entries[group as usize].push(self.entry(snapshot, i as u32));
            self.pushed[i] = node.stamp;
        }
        for (group, entries) in self.groups.iter_mut().zip(entries) {
            group.heap = BinaryHeap::from(entries);
        }
        self.cursor = snapshot.changes.len();
        self.failure = None;
    }

    /// Adds the service's tasks on node `i` that were not counted yet to its group.
    fn count_service(&mut self, snapshot: &Snapshot, i: u32, group: u32) {
        let now = self
            .targets
            .own
            .map_or(0, |s| snapshot.services.count(s, i));
        let added = now.saturating_sub(self.seen[i as usize]);
        self.seen[i as usize] = now;
        for (level, &prefix) in self.groups[group as usize].prefixes.iter().enumerate() {
            self.counts[level][prefix as usize] += added;
        }
    }

    fn entry(&self, snapshot: &Snapshot, i: u32) -> Entry {
        let node = &snapshot.nodes[i as usize];
        let services = &snapshot.services;
        let of_service = self.targets.own.map_or(0, |s| services.count(s, i));
        let misses = self.demand.soft_misses(&self.targets, services, i);
        Entry {
            rank: rank(self.strategy, node, i, of_service, misses, self.seed),
            node: i,
            stamp: node.stamp,
        }
    }

    /// Replays the change log since the last look.
    pub fn catch_up(&mut self, snapshot: &Snapshot) {
        if self.eligible == 0 {
            // No node passes the fixed filters: nothing to follow.
            return;
        }
        if self.lazy {
            if self.cursor != snapshot.changes.len() {
                self.failure = None;
                self.cursor = snapshot.changes.len();
            }
            return;
        }
        let changes = &snapshot.changes[self.cursor.min(snapshot.changes.len())..];
        let queued: usize = self.groups.iter().map(|g| g.heap.len()).sum();
        if changes.len() > self.eligible / 2 + 16 || queued > 3 * self.eligible + 1024 {
            self.refill(snapshot);
            return;
        }
        let with_preferences = !self.counts.is_empty();
        for &i in changes {
            let group = self.group_of[i as usize];
            if group == NONE {
                continue;
            }
            self.failure = None;
            if with_preferences {
                self.count_service(snapshot, i, group);
            }
            let stamp = snapshot.nodes[i as usize].stamp;
            if self.pushed[i as usize] != stamp {
                let entry = self.entry(snapshot, i);
                self.groups[group as usize].heap.push(entry);
                self.pushed[i as usize] = stamp;
            }
        }
        self.cursor = snapshot.changes.len();
    }

    /// The best node that passes the usage filters, or why there is none.
    pub fn choose(&mut self, snapshot: &Snapshot) -> Result<u32, Unschedulable> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        if self.counts.is_empty() {
            // Without preferences there is one group at most.
            for group in 0..self.groups.len() {
                if let Some(node) = self.best_in(group, snapshot) {
                    return Ok(node);
                }
            }
        } else {
            for group in self.group_order() {
                if let Some(node) = self.best_in(group, snapshot) {
                    return Ok(node);
                }
            }
        }
        match self.diagnose(snapshot) {
            Ok(verdict) => {
                self.failure = Some(verdict.clone());
                Err(verdict)
            }
            Err(node) => Ok(node),
        }
    }

    /// The preference groups to try, the one with fewest of the service's tasks first
    /// (level by level).
    fn group_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.groups.len())
            .filter(|g| !self.groups[*g].heap.is_empty())
            .collect();
        order.sort_by_cached_key(|&g| {
            let counts: Vec<u32> = self.groups[g]
                .prefixes
                .iter()
                .enumerate()
                .map(|(level, &p)| self.counts[level][p as usize])
                .collect();
            (counts, g)
        });
        order
    }

    /// Pops the group's heap down to its best node that passes the usage filters.
    fn best_in(&mut self, group: usize, snapshot: &Snapshot) -> Option<u32> {
        while let Some(entry) = self.groups[group].heap.pop() {
            let node = &snapshot.nodes[entry.node as usize];
            if entry.stamp != node.stamp {
                if !self.lazy {
                    // The log replay pushed a fresh entry.
                    continue;
                }
                let fresh = self.entry(snapshot, entry.node);
                if fresh.rank != entry.rank {
                    self.groups[group].heap.push(fresh);
                    continue;
                }
            }
            let fits = check_usage(
                node,
                entry.node,
                &self.demand,
                &self.targets,
                &snapshot.services,
            );
            if fits.is_ok() {
                return Some(entry.node);
            }
        }
        None
    }

    /// Follows a placement of this profile's task on `node`: a lazy profile ranks the
    /// node again at once (others replay the log).
    pub fn placed(&mut self, node: u32, snapshot: &Snapshot) {
        let group = self.group_of.get(node as usize).copied().unwrap_or(NONE);
        if self.lazy && group != NONE {
            let entry = self.entry(snapshot, node);
            self.groups[group as usize].heap.push(entry);
        }
    }

    /// Every node counted under the first filter that rejects it. Should a node fit
    /// after all, it is returned instead.
    fn diagnose(&self, snapshot: &Snapshot) -> Result<Unschedulable, u32> {
        let mut verdict = self.fixed.clone();
        for (i, &group) in self.group_of.iter().enumerate() {
            if group == NONE {
                continue;
            }
            let node = &snapshot.nodes[i];
            let services = &snapshot.services;
            match check_usage(node, i as u32, &self.demand, &self.targets, services) {
                Err(reason) => verdict.add(reason),
                Ok(()) => return Err(i as u32),
            }
        }
        verdict.sort();
        Ok(verdict)
    }
}
