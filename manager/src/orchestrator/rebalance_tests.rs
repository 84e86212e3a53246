//! Rebalancing on a simulated cluster placed by the real scheduler.

use super::sim::Sim;
use crate::scheduler::Strategy;
use crate::store::Command;
use api::ServiceSpec;
use api::cluster::{NodeState, Object, RebalanceState, RebalanceStatus, TaskState};
use api::deploy::{DeploySpec, UpdateConfig, UpdateOrder};
use std::collections::BTreeMap;

fn spec(replicas: u64, labels: &[(&str, &str)]) -> ServiceSpec {
    ServiceSpec {
        image: Some("busybox".into()),
        deploy: Some(DeploySpec {
            replicas: Some(replicas),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..DeploySpec::default()
        }),
        ..ServiceSpec::default()
    }
}

/// Running tasks of `service` on each node that has some, by node id.
fn spread(sim: &Sim, service: &str) -> Vec<usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for task in sim.wanted(service) {
        if task.status.state == TaskState::Running {
            *counts.entry(task.node.unwrap_or_default()).or_default() += 1;
        }
    }
    counts.into_values().collect()
}

/// A cluster of `nodes` where only the first was up when `spec` was deployed (all
/// its replicas run there), then the others came back.
fn lopsided(nodes: &[&str], spec: ServiceSpec) -> Sim {
    let mut sim = Sim::new(nodes);
    sim.scheduler = Some(Strategy::Spread);
    for node in &nodes[1..] {
        sim.set_node(node, |n| n.status.state = NodeState::Down);
    }
    sim.deploy("app", &[("web", spec)]);
    sim.agents_run();
    for node in &nodes[1..] {
        sim.set_node(node, |n| n.status.state = NodeState::Ready);
    }
    sim
}

/// Lets the agents run what is assigned until nothing changes, checking after each
/// round that at most `batch` tasks are on their way and at least `min_running` run.
fn run_moves(sim: &mut Sim, service: &str, batch: usize, min_running: usize) {
    for _ in 0..20 {
        let moving = sim
            .wanted(service)
            .iter()
            .filter(|t| t.status.state != TaskState::Running)
            .count();
        assert!(moving <= batch, "{moving} tasks moving at once");
        assert!(
            sim.count(service, TaskState::Running) >= min_running,
            "{:?}",
            spread(sim, service)
        );
        if moving == 0 && rebalanced(sim, service) {
            return;
        }
        sim.agents_run();
    }
    panic!("no end to the moves: {:?}", spread(sim, service));
}

fn rebalanced(sim: &Sim, service: &str) -> bool {
    status(sim, service).is_some_and(|s| s.state == RebalanceState::Completed)
}

fn status(sim: &Sim, service: &str) -> Option<RebalanceStatus> {
    sim.state.services.get(service)?.rebalance.clone()
}

fn ask(sim: &mut Sim, service: &str) {
    let mut s = sim.state.services.get(service).expect("service").clone();
    s.rebalance = Some(RebalanceStatus::default());
    let version = s.meta.version;
    sim.commit(vec![Command::update(Object::Service(Box::new(s)), version)]);
    sim.settle();
}

#[test]
fn a_service_labelled_to_rebalance_spreads_onto_nodes_that_came_back() {
    let mut sim = lopsided(&["n1", "n2", "n3"], spec(6, &[("orch.rebalance", "true")]));
    // Stop-first, one at a time (swarm's update defaults): 5 of 6 always run.
    run_moves(&mut sim, "app_web", 1, 5);
    assert_eq!(spread(&sim, "app_web"), [2, 2, 2]);
    let s = status(&sim, "app_web").expect("status");
    assert_eq!(s.moved, 4, "{s:?}");
    assert!(s.completed.is_some());
    // Balanced: nothing more moves, and the status stays as it is.
    let version = sim.version;
    sim.agents_run();
    assert_eq!(sim.version, version, "a balanced service is left alone");
}

#[test]
fn without_the_label_tasks_stay_until_a_rebalance_is_asked_for() {
    let mut sim = lopsided(&["n1", "n2"], spec(4, &[]));
    sim.agents_run();
    assert_eq!(
        spread(&sim, "app_web").len(),
        1,
        "swarm's behaviour: no moves"
    );
    ask(&mut sim, "app_web");
    run_moves(&mut sim, "app_web", 1, 3);
    assert_eq!(spread(&sim, "app_web"), [2, 2]);
    assert_eq!(status(&sim, "app_web").map(|s| s.moved), Some(2));
    // Asked again when balanced: completed at once, nothing moved.
    ask(&mut sim, "app_web");
    let s = status(&sim, "app_web").expect("status");
    assert_eq!((s.state, s.moved), (RebalanceState::Completed, 0));
}

#[test]
fn start_first_moves_keep_every_replica_running_and_parallelism_batches_them() {
    let mut web = spec(4, &[("orch.rebalance", "true")]);
    web.deploy.as_mut().expect("deploy").update_config = Some(UpdateConfig {
        parallelism: Some(2),
        order: Some(UpdateOrder::StartFirst),
        ..UpdateConfig::default()
    });
    let mut sim = lopsided(&["n1", "n2"], web);
    // Two new tasks are on their way while the four old ones still run.
    assert_eq!(sim.count("app_web", TaskState::Running), 4);
    assert_eq!(sim.wanted("app_web").len(), 6);
    run_moves(&mut sim, "app_web", 2, 4);
    assert_eq!(spread(&sim, "app_web"), [2, 2]);
    assert_eq!(sim.wanted("app_web").len(), 4);
}

#[test]
fn binpack_gathers_tasks_and_random_has_nothing_to_satisfy() {
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.scheduler = Some(Strategy::Spread);
    sim.deploy("app", &[("web", spec(2, &[]))]);
    sim.agents_run();
    assert_eq!(spread(&sim, "app_web").len(), 2);
    // Labels steer only: changing them rolls no task.
    let ids: Vec<String> = sim
        .wanted("app_web")
        .iter()
        .map(|t| t.meta.id.clone())
        .collect();
    let packed = spec(
        2,
        &[("orch.strategy", "binpack"), ("orch.rebalance", "true")],
    );
    sim.deploy("app", &[("web", packed)]);
    sim.agents_run();
    run_moves(&mut sim, "app_web", 1, 1);
    assert_eq!(spread(&sim, "app_web").len(), 1, "both tasks on one node");
    let kept = sim
        .wanted("app_web")
        .iter()
        .filter(|t| ids.contains(&t.meta.id))
        .count();
    assert_eq!(kept, 1, "one task moved, the other stayed");

    let random = spec(2, &[("orch.strategy", "random")]);
    sim.deploy("app", &[("web", random)]);
    ask(&mut sim, "app_web");
    let s = status(&sim, "app_web").expect("status");
    assert_eq!(s.state, RebalanceState::Completed);
    assert!(s.message.contains("random"), "{s:?}");
}
