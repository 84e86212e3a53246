//! Properties on generated clusters: capacity, constraints, spread evenness, binpack
//! density, preference evenness, determinism, and pending reasons that count each node
//! once under the filter that rejected it.

use super::{Spec, node};
use crate::scheduler::{self as sched, Reason, Scheduler, Unschedulable};
use api::cluster::{Availability, Node, NodeRole, NodeState, Task};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

fn strategy() -> impl Strategy<Value = sched::Strategy> {
    prop_oneof![
        Just(sched::Strategy::Spread),
        Just(sched::Strategy::Binpack),
        Just(sched::Strategy::Random)
    ]
}

/// A node with a size, state, availability, role and zone label.
fn any_node(index: usize) -> impl Strategy<Value = Node> {
    (
        1u32..8,
        1u64..8,
        prop_oneof![6 => Just(NodeState::Ready), 1 => Just(NodeState::Down), 1 => Just(NodeState::Unknown)],
        prop_oneof![6 => Just(Availability::Active), 1 => Just(Availability::Pause), 1 => Just(Availability::Drain)],
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
    )
        .prop_map(move |(cpus, gib, state, availability, manager, zone)| {
            let mut node = node(&format!("n{index}"), cpus, gib << 30);
            node.status.state = state;
            node.spec.availability = availability;
            if manager {
                node.spec.role = NodeRole::Manager;
            }
            if let Some(zone) = zone {
                node.meta.labels.insert("zone".into(), zone.into());
            }
            node
        })
}

fn any_nodes(max: usize) -> impl Strategy<Value = Vec<Node>> {
    (1..max).prop_flat_map(|n| (0..n).map(any_node).collect::<Vec<_>>())
}

/// A constraint over the attributes [`any_node`] varies.
fn any_constraint() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "node.role==manager",
        "node.role!=manager",
        "node.labels.zone==a",
        "node.labels.zone!=b",
        "node.hostname!=n0",
        "node.platform.os==linux",
        "node.id==n1",
    ])
    .prop_map(str::to_owned)
}

/// A service: name, reserved cpus (thousandths), reserved memory (MiB), replicas,
/// constraints.
type ServiceCase = (String, u64, u64, usize, Vec<String>);

fn any_service(index: usize) -> impl Strategy<Value = ServiceCase> {
    (
        prop_oneof![Just(0u64), 100u64..3000],
        prop_oneof![Just(0u64), 64u64..4096],
        1usize..12,
        prop::collection::vec(any_constraint(), 0..3),
    )
        .prop_map(move |(cpu, mib, replicas, constraints)| {
            (format!("s{index}"), cpu, mib, replicas, constraints)
        })
}

fn any_services() -> impl Strategy<Value = Vec<ServiceCase>> {
    (1usize..5).prop_flat_map(|n| (0..n).map(any_service).collect::<Vec<_>>())
}

fn service_task(case: &ServiceCase) -> Task {
    let (name, cpu, mib, _, constraints) = case;
    let mut spec = Spec::default().reserve(*cpu as f64 / 1000.0, mib << 20);
    for constraint in constraints {
        spec = spec.constraint(constraint);
    }
    spec.task(name)
}

/// The tasks of the services, interleaved in a generated order.
fn interleave(services: &[ServiceCase], order: &[usize]) -> Vec<Task> {
    let mut left: Vec<usize> = services.iter().map(|s| s.3).collect();
    let mut tasks = Vec::new();
    for &pick in order {
        let s = pick % services.len();
        if left[s] > 0 {
            left[s] -= 1;
            tasks.push(service_task(&services[s]));
        }
    }
    for (s, left) in left.into_iter().enumerate() {
        tasks.extend((0..left).map(|_| service_task(&services[s])));
    }
    tasks
}

/// An independent reading of a constraint over the generated attributes.
fn reference_holds(constraint: &str, node: &Node) -> bool {
    let (key, value, equal) = match constraint.split_once("==") {
        Some((k, v)) => (k, v, true),
        None => match constraint.split_once("!=") {
            Some((k, v)) => (k, v, false),
            None => return false,
        },
    };
    let actual = match key {
        "node.role" => Some(match node.spec.role {
            NodeRole::Manager => "manager",
            NodeRole::Worker => "worker",
        }),
        "node.labels.zone" => node.meta.labels.get("zone").map(String::as_str),
        "node.hostname" => Some(node.description.hostname.as_str()),
        "node.platform.os" => Some(node.description.os.as_str()),
        "node.id" => Some(node.meta.id.as_str()),
        _ => None,
    };
    (actual == Some(value)) == equal
}

/// The per-node verdicts of `fits`, counted by reason.
fn reasons_by_node(scheduler: &Scheduler, task: &Task, nodes: &[Node]) -> HashMap<Reason, usize> {
    let mut counts = HashMap::new();
    for node in nodes {
        let verdict = scheduler
            .fits(task, &node.meta.id)
            .expect_err("no node fits, so fits rejects each");
        assert_eq!(verdict.nodes, 1);
        *counts.entry(verdict.tallies[0].reason.clone()).or_insert(0) += 1;
    }
    counts
}

fn by_reason(verdict: &Unschedulable) -> HashMap<Reason, usize> {
    verdict
        .tallies
        .iter()
        .map(|t| (t.reason.clone(), t.nodes))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Placed tasks never exceed a node's cpu or memory, land only on ready, active
    /// nodes where every constraint holds, and a task is pending only when `fits`
    /// rejects every node, with tallies that match those rejections one for one.
    #[test]
    fn placements_respect_capacity_constraints_and_reasons(
        nodes in any_nodes(12),
        services in any_services(),
        order in prop::collection::vec(0usize..8, 0..40),
        strategy in strategy(),
        seed in any::<u64>(),
    ) {
        let mut scheduler = Scheduler::new(&nodes, [], strategy, seed);
        let by_id: BTreeMap<&str, &Node> = nodes.iter().map(|n| (n.meta.id.as_str(), n)).collect();
        let mut used: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for task in interleave(&services, &order) {
            let before = scheduler.clone();
            match scheduler.place(&task) {
                Ok(chosen) => {
                    prop_assert!(before.fits(&task, &chosen).is_ok());
                    let node = by_id[chosen.as_str()];
                    prop_assert_eq!(node.status.state, NodeState::Ready);
                    prop_assert_eq!(node.spec.availability, Availability::Active);
                    let placement = task.spec.deploy.as_ref().and_then(|d| d.placement.as_ref());
                    for constraint in placement.iter().flat_map(|p| &p.constraints) {
                        prop_assert!(reference_holds(constraint, node), "{} on {}", constraint, chosen);
                    }
                    let reserved = task.spec.deploy.as_ref()
                        .and_then(|d| d.resources.as_ref())
                        .and_then(|r| r.reservations.as_ref());
                    let cpu = reserved.and_then(|r| r.cpus).map_or(0, |c| (c * 1000.0).round() as u64);
                    let memory = reserved.and_then(|r| r.memory).map_or(0, |m| m.0);
                    let total = used.entry(chosen.clone()).or_default();
                    total.0 += cpu;
                    total.1 += memory;
                    prop_assert!(total.0 <= u64::from(node.description.cpus) * 1000, "cpu of {}", chosen);
                    prop_assert!(total.1 <= node.description.memory_bytes, "memory of {}", chosen);
                }
                Err(verdict) => {
                    prop_assert_eq!(verdict.nodes, nodes.len());
                    let sum: usize = verdict.tallies.iter().map(|t| t.nodes).sum();
                    prop_assert_eq!(sum, nodes.len());
                    prop_assert_eq!(by_reason(&verdict), reasons_by_node(&before, &task, &nodes));
                    let text = verdict.to_string();
                    prop_assert!(text.starts_with("no node fits: "), "{}", text);
                }
            }
        }
    }

    /// On equal nodes, spread keeps each service's per-node counts within one.
    #[test]
    fn spread_keeps_equal_nodes_within_one(
        nodes in 1usize..16,
        replicas in prop::collection::vec(1usize..50, 1..4),
        order in prop::collection::vec(0usize..4, 0..100),
        seed in any::<u64>(),
    ) {
        let nodes: Vec<Node> = (0..nodes).map(|i| node(&format!("n{i}"), 4, 8 << 30)).collect();
        let services: Vec<ServiceCase> = replicas.iter().enumerate()
            .map(|(i, &r)| (format!("s{i}"), 0, 0, r, Vec::new()))
            .collect();
        let mut scheduler = Scheduler::new(&nodes, [], sched::Strategy::Spread, seed);
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for task in interleave(&services, &order) {
            let chosen = scheduler.place(&task).expect("equal empty nodes take any task");
            *counts.entry((task.name.clone(), chosen)).or_default() += 1;
        }
        for (name, ..) in &services {
            let per_node: Vec<usize> = nodes.iter()
                .map(|n| counts.get(&(name.clone(), n.meta.id.clone())).copied().unwrap_or(0))
                .collect();
            let (min, max) = (per_node.iter().min(), per_node.iter().max());
            prop_assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1), "{}: {:?}", name, per_node);
        }
    }

    /// On equal nodes and equal tasks, binpack fills a node before opening another: it
    /// uses ceil(tasks / tasks-per-node) nodes.
    #[test]
    fn binpack_uses_the_fewest_nodes(
        nodes in 1usize..12,
        cpus in 1u32..8,
        millis in 100u64..2000,
        services in 1usize..4,
        fill in 0.0f64..1.0,
    ) {
        let per_node = (u64::from(cpus) * 1000 / millis) as usize;
        prop_assume!(per_node > 0);
        let tasks = ((nodes * per_node) as f64 * fill) as usize;
        let nodes: Vec<Node> = (0..nodes).map(|i| node(&format!("n{i}"), cpus, 8 << 30)).collect();
        let mut scheduler = Scheduler::new(&nodes, [], sched::Strategy::Binpack, 7);
        let mut used = std::collections::BTreeSet::new();
        for i in 0..tasks {
            let task = Spec::default().reserve(millis as f64 / 1000.0, 0).task(&format!("s{}", i % services));
            used.insert(scheduler.place(&task).expect("there is room"));
        }
        prop_assert_eq!(used.len(), tasks.div_ceil(per_node));
    }

    /// `spread: node.labels.zone` keeps the per-zone counts within one, however many
    /// nodes each zone has; nodes without the label are a zone of their own.
    #[test]
    fn preferences_spread_over_label_values(
        zones in prop::collection::vec(1usize..5, 1..5),
        unlabelled in 0usize..3,
        replicas in 1usize..60,
        strategy in strategy(),
    ) {
        let mut nodes = Vec::new();
        for (z, &count) in zones.iter().enumerate() {
            for i in 0..count {
                let mut node = node(&format!("z{z}-{i}"), 4, 8 << 30);
                node.meta.labels.insert("zone".into(), format!("z{z}"));
                nodes.push(node);
            }
        }
        nodes.extend((0..unlabelled).map(|i| node(&format!("none-{i}"), 4, 8 << 30)));
        let zone_of: BTreeMap<String, String> = nodes.iter()
            .map(|n| (n.meta.id.clone(), n.meta.labels.get("zone").cloned().unwrap_or_default()))
            .collect();
        let mut scheduler = Scheduler::new(&nodes, [], strategy, 3);
        let task = Spec::default().prefer("node.labels.zone").task("web");
        let mut per_zone: BTreeMap<String, usize> = zone_of.values().map(|z| (z.clone(), 0)).collect();
        for _ in 0..replicas {
            let chosen = scheduler.place(&task).expect("room everywhere");
            *per_zone.entry(zone_of[&chosen].clone()).or_default() += 1;
        }
        let (min, max) = (per_zone.values().min(), per_zone.values().max());
        prop_assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1), "{:?}", per_zone);
    }

    /// The same snapshot, strategy and seed give the same placements.
    #[test]
    fn placements_are_deterministic(
        nodes in any_nodes(10),
        services in any_services(),
        strategy in strategy(),
        seed in any::<u64>(),
    ) {
        let tasks = interleave(&services, &[]);
        let run = || {
            let mut scheduler = Scheduler::new(&nodes, [], strategy, seed);
            tasks.iter().map(|t| scheduler.place(t)).collect::<Vec<_>>()
        };
        prop_assert_eq!(run(), run());
    }
}

/// A snapshot that holds tasks places like a scheduler that placed them itself.
#[test]
fn a_snapshot_counts_its_tasks_like_placements() {
    let nodes: Vec<Node> = (0..4).map(|i| node(&format!("n{i}"), 2, 4 << 30)).collect();
    let spec = Spec::default().reserve(1.0, 1 << 30);
    let mut placed = Scheduler::new(&nodes, [], sched::Strategy::Spread, 0);
    let mut tasks = Vec::new();
    for i in 0..5 {
        let mut task = spec.task("web");
        task.meta.id = format!("t{i}");
        task.node = Some(placed.place(&task).expect("room"));
        task.status.state = api::cluster::TaskState::Running;
        task.desired_state = api::cluster::TaskState::Running;
        tasks.push(task);
    }
    let mut restored = Scheduler::new(&nodes, &tasks, sched::Strategy::Spread, 0);
    for _ in 0..4 {
        let task = spec.task("web");
        assert_eq!(restored.place(&task), placed.place(&task));
    }
    assert!(
        restored.place(&spec.task("web")).is_err(),
        "8 cpus, 8 tasks of 1 cpu"
    );
}

/// A service for [`the_chosen_node_is_the_best_that_fits`]: reserved cpus
/// (thousandths), memory (MiB), replicas, a published port, a replica cap, a service
/// index it must avoid, a zone preference.
type RichService = (
    u64,
    u64,
    usize,
    Option<u16>,
    Option<u64>,
    Option<usize>,
    bool,
);

/// A ready, active node of some size, maybe in a zone.
fn ready_node(index: usize) -> impl Strategy<Value = Node> {
    any_node(index).prop_map(|mut node| {
        node.status.state = NodeState::Ready;
        node.spec.availability = Availability::Active;
        node
    })
}

fn any_rich_service() -> impl Strategy<Value = RichService> {
    (
        prop_oneof![Just(0u64), 100u64..2000],
        prop_oneof![Just(0u64), 64u64..2048],
        1usize..10,
        prop::option::weighted(0.2, prop::sample::select(vec![80u16, 443])),
        prop::option::weighted(0.2, 1u64..3),
        prop::option::weighted(0.2, 0usize..4),
        prop::bool::weighted(0.2),
    )
}

fn rich_task(index: usize, service: &RichService) -> Task {
    let (cpu, mib, _, port, max, avoid, prefer) = service;
    let mut spec = Spec::default().reserve(*cpu as f64 / 1000.0, mib << 20);
    if let Some(port) = port {
        spec = spec.port(&port.to_string(), api::service::Protocol::Tcp);
    }
    if let Some(max) = max {
        spec = spec.max_per_node(*max);
    }
    if let Some(avoid) = avoid.filter(|a| *a != index) {
        spec = spec.label("orch.affinity", &format!("service!=s{avoid}"));
    }
    if *prefer {
        spec = spec.prefer("node.labels.zone");
    }
    spec.task(&format!("s{index}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Whatever the order of services, the cached heaps give the node a full scan
    /// would: under spread, one with the fewest tasks of the service then the fewest
    /// tasks among the nodes `fits` accepts; under binpack, one of the most used; and
    /// for a service that spreads over zones, a node of a zone with fewest of its tasks.
    #[test]
    fn the_chosen_node_is_the_best_that_fits(
        nodes in (2usize..8).prop_flat_map(|n| (0..n).map(ready_node).collect::<Vec<_>>()),
        services in prop::collection::vec(any_rich_service(), 1..5),
        order in prop::collection::vec(0usize..5, 0..60),
        binpack in any::<bool>(),
    ) {
        let strategy = if binpack { sched::Strategy::Binpack } else { sched::Strategy::Spread };
        let mut scheduler = Scheduler::new(&nodes, [], strategy, 1);
        let index: BTreeMap<&str, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.meta.id.as_str(), i)).collect();
        let mut tasks_on = vec![0usize; nodes.len()];
        let mut used = vec![(0u64, 0u64); nodes.len()];
        let mut of_service: HashMap<(usize, usize), usize> = HashMap::new();
        let mut left: Vec<usize> = services.iter().map(|s| s.2).collect();
        let picks = order.iter().map(|&o| o % services.len())
            .chain((0..services.len()).flat_map(|s| std::iter::repeat_n(s, services[s].2)));
        for s in picks {
            if left[s] == 0 {
                continue;
            }
            left[s] -= 1;
            let task = rich_task(s, &services[s]);
            let before = scheduler.clone();
            let Ok(chosen) = scheduler.place(&task) else { continue };
            let zone = |n: usize| nodes[n].meta.labels.get("zone").cloned();
            let mut candidates: Vec<usize> = (0..nodes.len())
                .filter(|&n| before.fits(&task, &nodes[n].meta.id).is_ok())
                .collect();
            let c = index[chosen.as_str()];
            prop_assert!(candidates.contains(&c));
            if services[s].6 {
                // Only the zones with the fewest tasks of the service are candidates.
                let in_zone = |z: &Option<String>| (0..nodes.len())
                    .filter(|&n| zone(n) == *z && before.fits(&Spec::default().task("probe"), &nodes[n].meta.id).is_ok()
                        && nodes[n].status.state == NodeState::Ready)
                    .map(|n| of_service.get(&(s, n)).copied().unwrap_or(0))
                    .sum::<usize>();
                let least = candidates.iter().map(|&n| in_zone(&zone(n))).min();
                candidates.retain(|&n| Some(in_zone(&zone(n))) == least);
                prop_assert!(candidates.contains(&c), "zone of {} is not among the least used", chosen);
            }
            let load = |n: usize| {
                let fraction = |used: u64, total: u64| match (used, total) {
                    (0, _) => 0.0,
                    (_, 0) => 1.0,
                    _ => (used as f64 / total as f64).min(1.0),
                };
                let node = &nodes[n].description;
                (fraction(used[n].0, u64::from(node.cpus) * 1000) + fraction(used[n].1, node.memory_bytes)) / 2.0
            };
            if services[s].6 {
                // Among zones with equal counts the first is taken, whatever its nodes.
            } else if binpack {
                let most = candidates.iter().map(|&n| load(n)).fold(0.0, f64::max);
                prop_assert!(load(c) >= most - 1e-6, "binpack chose {} at {} below {}", chosen, load(c), most);
            } else {
                let key = |n: usize| (of_service.get(&(s, n)).copied().unwrap_or(0), tasks_on[n]);
                let best = candidates.iter().map(|&n| key(n)).min();
                prop_assert_eq!(Some(key(c)), best, "spread chose {}", chosen);
            }
            tasks_on[c] += 1;
            let (cpu, mib, ..) = services[s];
            used[c].0 += cpu;
            used[c].1 += mib << 20;
            *of_service.entry((s, c)).or_default() += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// On any number of equal nodes, replicas of a service publishing an ingress
    /// (routing-mesh) port all find a place, while a host-mode port takes at most one
    /// task per node and the rest are refused for the port.
    #[test]
    fn mesh_ports_never_keep_a_task_off_a_node_host_ports_do(
        count in 1usize..6,
        replicas in 1usize..12,
    ) {
        let nodes: Vec<Node> = (0..count).map(|i| node(&format!("n{i}"), 64, 64 << 30)).collect();
        let mut scheduler = Scheduler::new(&nodes, [], sched::Strategy::Spread, 0);
        let mesh = Spec::default().ingress_port("8080").task("mesh");
        for _ in 0..replicas {
            prop_assert!(scheduler.place(&mesh).is_ok());
        }
        let host = Spec::default().port("8080", api::service::Protocol::Tcp).task("host");
        let placed = (0..replicas).filter(|_| scheduler.place(&host).is_ok()).count();
        prop_assert_eq!(placed, replicas.min(count));
    }
}
