//! The overlay addresses of ended tasks: a released address comes back only after
//! every other one (its container may still hold it for a while); a task orphaned
//! because its node went down keeps its addresses (its container may still hold
//! them there, and the node may come back) and its place in the history, and is in
//! the node's assignments so the node, back, removes the container and reports it
//! gone; that report, or the node's removal, frees the addresses.

use super::sim::Sim;
use crate::allocator::holds_addresses;
use crate::dispatcher::assignments::assignments;
use crate::keyring::Keyring;
use crate::store::Command;
use api::ServiceSpec;
use api::cluster::{Kind, NodeState, Task, TaskState};
use api::deploy::DeploySpec;

/// Two replicas on a /29: the gateway, the virtual address and four task
/// addresses, so handing out wraps around after a few replacements.
fn sim() -> Sim {
    let web = ServiceSpec {
        image: Some("busybox".into()),
        networks: [("net".to_owned(), None)].into(),
        deploy: Some(DeploySpec {
            replicas: Some(2),
            ..DeploySpec::default()
        }),
        ..ServiceSpec::default()
    };
    let mut stack = api::StackSpec {
        name: "app".into(),
        ..api::StackSpec::default()
    };
    stack.services.insert("web".into(), web);
    stack.networks.insert(
        "net".into(),
        api::stack::NetworkSpec {
            name: "app_net".into(),
            ipam: Some(api::stack::Ipam {
                config: vec![api::stack::IpamPool {
                    subnet: Some("10.9.0.0/29".into()),
                    ..api::stack::IpamPool::default()
                }],
                ..api::stack::Ipam::default()
            }),
            ..api::stack::NetworkSpec::default()
        },
    );
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy_spec("app", stack);
    sim.agents_run();
    sim
}

fn address(t: &Task) -> String {
    t.networks[0].address.clone()
}

/// Orphans the task on n2 by taking n2 down: that task.
fn orphan_on_n2(sim: &mut Sim) -> Task {
    let on_n2 = sim
        .wanted("app_web")
        .into_iter()
        .find(|t| t.node.as_deref() == Some("n2"))
        .expect("a task on n2");
    sim.set_node("n2", |n| n.status.state = NodeState::Down);
    sim.agents_run();
    let orphaned = sim.state.tasks.get(&on_n2.meta.id).unwrap().clone();
    assert_eq!(orphaned.status.state, TaskState::Orphaned);
    orphaned
}

/// Fails a running task `rounds` times, each replaced: the addresses the wanted
/// tasks had after each round.
fn churn(sim: &mut Sim, rounds: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..rounds {
        let victim = sim.wanted("app_web")[0].clone();
        sim.agents(|t| (t.meta.id == victim.meta.id).then_some((TaskState::Failed, Some(1))));
        sim.advance(6_000);
        sim.agents_run();
        let now: Vec<String> = sim.wanted("app_web").iter().map(address).collect();
        assert_eq!(now.len(), 2, "both replicas got an address: {now:?}");
        seen.extend(now);
    }
    seen
}

fn on_node(sim: &Sim, node: &str, task: &str) -> bool {
    let keyring = Keyring::generate().unwrap();
    let set = assignments(&sim.state, node, 0, &keyring);
    set.tasks.iter().any(|t| t.meta.id == task)
}

#[test]
fn a_released_address_comes_back_only_after_every_other_one() {
    let mut sim = sim();
    // Tasks fail one after another: each replacement gets the address after the
    // last one handed out, so a freed address is never given straight back.
    for _ in 0..8 {
        let victim = sim.wanted("app_web")[0].clone();
        sim.agents(|t| (t.meta.id == victim.meta.id).then_some((TaskState::Failed, Some(1))));
        sim.advance(6_000);
        sim.agents_run();
        let now: Vec<String> = sim.wanted("app_web").iter().map(address).collect();
        assert!(
            !now.contains(&address(&victim)),
            "{} was handed out again at once: {now:?}",
            address(&victim)
        );
    }
    // A node that goes down orphans its task; the replacement gets a fresh address.
    let orphaned = orphan_on_n2(&mut sim);
    let now: Vec<String> = sim.wanted("app_web").iter().map(address).collect();
    assert!(!now.contains(&address(&orphaned)), "{now:?}");
}

#[test]
fn an_orphaned_task_keeps_its_address_until_its_node_reports_the_container_gone() {
    let mut sim = sim();
    let orphan = orphan_on_n2(&mut sim);
    let held = address(&orphan);
    let seen = churn(&mut sim, 10);
    assert!(
        !seen.contains(&held),
        "{held} of the orphaned task was handed out again: {seen:?}"
    );
    let kept = sim.state.tasks.get(&orphan.meta.id).expect("not trimmed");
    assert!(holds_addresses(&sim.state, kept));

    // The node is back: it is told of the task, removes its container and says so.
    sim.set_node("n2", |n| n.status.state = NodeState::Ready);
    assert!(on_node(&sim, "n2", &orphan.meta.id));
    sim.agents(|t| (t.meta.id == orphan.meta.id).then_some((TaskState::Shutdown, None)));
    let reported = sim.state.tasks.get(&orphan.meta.id).unwrap();
    assert!(!holds_addresses(&sim.state, reported));
    assert!(!on_node(&sim, "n2", &orphan.meta.id), "done with");
    let seen = churn(&mut sim, 10);
    assert!(seen.contains(&held), "{held} is free again: {seen:?}");
}

#[test]
fn a_removed_node_frees_the_addresses_of_its_orphaned_tasks() {
    let mut sim = sim();
    let orphan = orphan_on_n2(&mut sim);
    let held = address(&orphan);
    let version = sim.state.nodes.get("n2").unwrap().meta.version;
    sim.commit(vec![Command::delete(Kind::Node, "n2", Some(version))]);
    sim.settle();
    if let Some(task) = sim.state.tasks.get(&orphan.meta.id) {
        assert!(!holds_addresses(&sim.state, task));
    }
    let seen = churn(&mut sim, 10);
    assert!(seen.contains(&held), "{held} is free again: {seen:?}");
}
