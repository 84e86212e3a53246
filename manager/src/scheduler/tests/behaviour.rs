//! Each filter and strategy on small hand-made clusters, and the text of the reasons.

use super::{Spec, node, node_in};
use crate::scheduler::{Filter, Reason, Scheduler, Strategy, occupies};
use api::cluster::{Availability, Node, NodeState, Task, TaskState};
use api::service::Protocol;
use std::collections::BTreeMap;

fn nodes(count: usize) -> Vec<Node> {
    (0..count)
        .map(|i| node(&format!("n{i}"), 4, 8 << 30))
        .collect()
}

fn place_all(scheduler: &mut Scheduler, task: &Task, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            scheduler
                .place(task)
                .unwrap_or_else(|e| panic!("task {i}: {e}"))
        })
        .collect()
}

fn per_node(placed: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for node in placed {
        *counts.entry(node.as_str()).or_default() += 1;
    }
    counts
}

#[test]
fn a_pending_task_says_why_per_filter() {
    let mut cluster = vec![
        node("small-1", 4, 1 << 30),
        node("small-2", 4, 1 << 30),
        node("small-3", 4, 1 << 30),
    ];
    cluster.push(node_in("drained", NodeState::Ready, Availability::Drain));
    cluster.push(node_in("down-1", NodeState::Down, Availability::Active));
    cluster.push(node_in("down-2", NodeState::Down, Availability::Active));
    let mut scheduler = Scheduler::new(&cluster, [], Strategy::Spread, 0);
    let task = Spec::default().reserve(0.0, 2 << 30).task("db");
    let verdict = scheduler.place(&task).expect_err("nothing fits");
    assert_eq!(
        verdict.to_string(),
        "no node fits: 3 lack memory (need 2GiB), 1 is drained, 2 are down"
    );
    assert_eq!(verdict.rejected_by(Filter::Resources), 3);
    assert_eq!(verdict.rejected_by(Filter::Availability), 1);
    assert_eq!(verdict.rejected_by(Filter::State), 2);
    assert_eq!(
        scheduler.place(&task),
        Err(verdict),
        "the same verdict again"
    );
}

#[test]
fn an_empty_cluster_has_no_node() {
    let mut scheduler = Scheduler::new([], [], Strategy::Spread, 0);
    let verdict = scheduler.place(&Spec::default().task("web")).unwrap_err();
    assert_eq!(verdict.to_string(), "no node fits: there are no nodes");
}

#[test]
fn a_malformed_constraint_rejects_every_node_by_name() {
    let mut scheduler = Scheduler::new(&nodes(3), [], Strategy::Spread, 0);
    let task = Spec::default().constraint("node.labls.zone==a").task("web");
    let verdict = scheduler.place(&task).unwrap_err();
    assert_eq!(verdict.nodes, 3);
    assert!(matches!(
        &verdict.tallies[0].reason,
        Reason::InvalidConstraint { constraint, .. } if constraint == "node.labls.zone==a"
    ));
    assert!(
        verdict
            .to_string()
            .contains("constraint \"node.labls.zone==a\" is invalid: unknown key node.labls.zone"),
        "{verdict}"
    );
    let fits = scheduler.fits(&task, "n0").unwrap_err();
    assert_eq!(
        fits.tallies,
        [verdict.tallies[0].clone()].map(|mut t| {
            t.nodes = 1;
            t
        })
    );
}

#[test]
fn published_ports_take_one_task_per_node_and_protocol() {
    let mut scheduler = Scheduler::new(&nodes(3), [], Strategy::Spread, 0);
    let web = Spec::default().port("80", Protocol::Tcp).task("web");
    let placed = place_all(&mut scheduler, &web, 3);
    assert_eq!(per_node(&placed).len(), 3);
    let verdict = scheduler.place(&web).unwrap_err();
    assert_eq!(
        verdict.to_string(),
        "no node fits: 3 have port 80/tcp in use"
    );
    let dns = Spec::default().port("80", Protocol::Udp).task("dns");
    assert!(scheduler.place(&dns).is_ok(), "udp/80 is another port");
    let other = Spec::default().port("80", Protocol::Tcp).task("other");
    assert!(
        scheduler.place(&other).is_err(),
        "another service, same port"
    );
}

#[test]
fn ingress_ports_need_nothing_of_the_node_host_ports_still_do() {
    let mut scheduler = Scheduler::new(&nodes(1), [], Strategy::Spread, 0);
    let web = Spec::default().ingress_port("8080").task("web");
    let placed = place_all(&mut scheduler, &web, 3);
    assert_eq!(
        per_node(&placed).values().sum::<usize>(),
        3,
        "one node, 3 replicas"
    );
    // A range or a host address in ingress mode stays a host port.
    let ranged = Spec::default().ingress_port("9000-9000").task("ranged");
    place_all(&mut scheduler, &ranged, 1);
    assert!(
        scheduler.place(&ranged).is_err(),
        "the range's one port is taken"
    );
    let host = Spec::default().port("8443", Protocol::Tcp).task("host");
    place_all(&mut scheduler, &host, 1);
    assert_eq!(
        scheduler.place(&host).unwrap_err().to_string(),
        "no node fits: 1 has port 8443/tcp in use"
    );
}

#[test]
fn a_published_range_needs_one_free_port_of_it() {
    let mut scheduler = Scheduler::new(&nodes(1), [], Strategy::Spread, 0);
    let task = Spec::default().port("8000-8002", Protocol::Tcp).task("web");
    place_all(&mut scheduler, &task, 3);
    let verdict = scheduler.place(&task).unwrap_err();
    assert_eq!(
        verdict.to_string(),
        "no node fits: 1 has port 8000-8002/tcp in use"
    );
}

#[test]
fn max_replicas_per_node_caps_each_node() {
    let mut scheduler = Scheduler::new(&nodes(2), [], Strategy::Binpack, 0);
    let task = Spec::default().max_per_node(2).task("web");
    let placed = place_all(&mut scheduler, &task, 4);
    assert!(per_node(&placed).values().all(|&c| c == 2));
    let verdict = scheduler.place(&task).unwrap_err();
    assert_eq!(
        verdict.to_string(),
        "no node fits: 2 already run 2 of its tasks (max_replicas_per_node)"
    );
}

#[test]
fn hard_affinity_follows_a_service_and_anti_affinity_avoids_it() {
    let mut scheduler = Scheduler::new(&nodes(4), [], Strategy::Spread, 0);
    let beside = Spec::default()
        .label("orch.affinity", "service==db")
        .task("app");
    let verdict = scheduler.place(&beside).unwrap_err();
    assert_eq!(
        verdict.to_string(),
        "no node fits: 4 run no task of db (affinity)"
    );
    let db = scheduler
        .place(&Spec::default().task("db"))
        .expect("db fits");
    assert_eq!(place_all(&mut scheduler, &beside, 3), [&*db, &*db, &*db]);
    let away = Spec::default()
        .label("orch.affinity.x", "service!=db")
        .task("batch");
    let placed = place_all(&mut scheduler, &away, 6);
    assert!(!placed.contains(&db));
}

#[test]
fn soft_affinity_orders_nodes_but_rejects_none() {
    let mut scheduler = Scheduler::new(&nodes(3), [], Strategy::Spread, 0);
    let cache = scheduler
        .place(&Spec::default().task("cache"))
        .expect("fits");
    let near = Spec::default()
        .label("orch.affinity", "service==~cache")
        .reserve(1.0, 0);
    // The node with the cache first, until its 4 cpus are taken, then any other.
    let placed = place_all(&mut scheduler, &near.task("app"), 5);
    assert!(placed[..4].iter().all(|n| *n == cache), "{placed:?}");
    assert_ne!(placed[4], cache);
    let far = Spec::default().label("orch.affinity", "service!=~cache");
    let placed = place_all(&mut scheduler, &far.task("batch"), 1);
    assert_ne!(placed[0], cache);
}

#[test]
fn a_dependency_needs_the_service_on_the_node() {
    let mut scheduler = Scheduler::new(&nodes(3), [], Strategy::Spread, 0);
    let app = Spec::default().volumes_from("service:data:ro").task("app");
    let verdict = scheduler.place(&app).unwrap_err();
    assert_eq!(
        verdict.to_string(),
        "no node fits: 3 run no task of data (dependency)"
    );
    let data = scheduler
        .place(&Spec::default().task("data"))
        .expect("fits");
    assert_eq!(scheduler.place(&app), Ok(data));
}

#[test]
fn constraints_choose_the_nodes() {
    let mut cluster = nodes(4);
    cluster[1].meta.labels.insert("zone".into(), "east".into());
    cluster[2].meta.labels.insert("zone".into(), "East".into());
    let mut scheduler = Scheduler::new(&cluster, [], Strategy::Spread, 0);
    let task = Spec::default()
        .constraint("node.labels.zone == east")
        .task("web");
    let placed = place_all(&mut scheduler, &task, 4);
    assert_eq!(per_node(&placed), BTreeMap::from([("n1", 2), ("n2", 2)]));
    let manager = Spec::default().constraint("node.role==manager").task("m");
    let verdict = scheduler.place(&manager).unwrap_err();
    assert_eq!(
        verdict.to_string(),
        "no node fits: 4 fail constraint node.role==manager"
    );
}

#[test]
fn spread_prefers_the_emptier_node_then_the_freer_one() {
    let cluster = [node("big", 16, 64 << 30), node("small", 2, 4 << 30)];
    let mut scheduler = Scheduler::new(&cluster, [], Strategy::Spread, 0);
    let other = Spec::default().reserve(1.0, 0).task("other");
    assert_eq!(
        scheduler.place(&other).as_deref(),
        Ok("big"),
        "big has more free room"
    );
    assert_eq!(
        scheduler.place(&other).as_deref(),
        Ok("small"),
        "fewer of the service"
    );
    let web = Spec::default().task("web");
    // Both run one task; big has more left free.
    assert_eq!(scheduler.place(&web).as_deref(), Ok("big"));
    assert_eq!(scheduler.place(&web).as_deref(), Ok("small"));
}

#[test]
fn the_strategy_label_overrides_the_cluster_strategy() {
    let mut scheduler = Scheduler::new(&nodes(4), [], Strategy::Spread, 0);
    let packed = Spec::default()
        .label("orch.strategy", "binpack")
        .reserve(1.0, 0)
        .task("packed");
    let placed = place_all(&mut scheduler, &packed, 8);
    assert_eq!(per_node(&placed).len(), 2);
    let spread = Spec::default().task("spread");
    let placed = place_all(&mut scheduler, &spread, 4);
    assert_eq!(per_node(&placed).len(), 4);
}

#[test]
fn random_uses_every_node_and_depends_on_the_seed() {
    let cluster = nodes(8);
    let run = |seed| {
        let mut scheduler = Scheduler::new(&cluster, [], Strategy::Random, seed);
        place_all(&mut scheduler, &Spec::default().task("web"), 200)
    };
    let first = run(1);
    assert_eq!(per_node(&first).len(), 8);
    assert_eq!(first, run(1));
    assert_ne!(first, run(2));
}

#[test]
fn fits_and_assign_serve_global_tasks() {
    let mut scheduler = Scheduler::new(&nodes(2), [], Strategy::Spread, 0);
    let agent = Spec::default().reserve(3.0, 0).port("9100", Protocol::Tcp);
    let task = agent.task("agent");
    assert_eq!(scheduler.fits(&task, "n0"), Ok(()));
    scheduler.assign(&task, "n0");
    let verdict = scheduler.fits(&task, "n0").unwrap_err();
    assert_eq!(
        verdict.to_string(),
        "no node fits: 1 has port 9100/tcp in use"
    );
    let verdict = scheduler.fits(&task, "nowhere").unwrap_err();
    assert_eq!(
        verdict.to_string(),
        "no node fits: 1 is unknown (node nowhere)"
    );
    let big = Spec::default().reserve(2.0, 0).task("big");
    assert_eq!(
        scheduler.place(&big).as_deref(),
        Ok("n1"),
        "n0 has 1 cpu left"
    );
    scheduler.assign(&task, "nowhere");
}

#[test]
fn a_new_spec_of_a_service_is_counted_with_the_old_one() {
    let mut scheduler = Scheduler::new(&nodes(4), [], Strategy::Spread, 0);
    let old = Spec::default().task("web");
    let mut placed = place_all(&mut scheduler, &old, 2);
    let new = Spec::default().reserve(0.5, 0).task("web");
    placed.extend(place_all(&mut scheduler, &new, 2));
    assert_eq!(per_node(&placed).len(), 4, "{placed:?}");
}

#[test]
fn many_services_beyond_the_warm_limit_stay_even() {
    // More services than profiles stay warm (4096 on small clusters), placed in turns,
    // so profiles are cooled and rebuilt; half of them follow the change log.
    let mut scheduler = Scheduler::new(&nodes(3), [], Strategy::Spread, 0);
    let tasks: Vec<Task> = (0..4200)
        .map(|i| {
            let spec = Spec::default();
            let spec = if i % 2 == 0 {
                spec
            } else {
                spec.prefer("node.id")
            };
            spec.task(&format!("s{i}"))
        })
        .collect();
    let mut placed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for _round in 0..3 {
        for task in &tasks {
            let node = scheduler.place(task).expect("room");
            placed.entry(task.name.as_str()).or_default().push(node);
        }
    }
    for (service, nodes) in placed {
        assert_eq!(per_node(&nodes).len(), 3, "{service}: {nodes:?}");
    }
}

#[test]
fn only_unfinished_tasks_on_a_node_occupy_it() {
    let task = |node: Option<&str>, desired, state| {
        let mut task = Spec::default().task("web");
        task.node = node.map(str::to_owned);
        task.desired_state = desired;
        task.status.state = state;
        task
    };
    use TaskState::*;
    assert!(occupies(&task(Some("n0"), Running, Running)));
    assert!(occupies(&task(Some("n0"), Running, Assigned)));
    assert!(
        occupies(&task(Some("n0"), Shutdown, Running)),
        "until it stops"
    );
    assert!(
        !occupies(&task(Some("n0"), Shutdown, Assigned)),
        "never started"
    );
    assert!(!occupies(&task(Some("n0"), Running, Failed)));
    assert!(!occupies(&task(Some("n0"), Shutdown, Complete)));
    assert!(!occupies(&task(None, Running, Pending)));
    assert!(!occupies(&task(Some(""), Running, Pending)));

    let cluster = nodes(1);
    let mut running = Spec::default().reserve(4.0, 0).task("web");
    running.node = Some("n0".into());
    running.desired_state = Running;
    running.status.state = Running;
    let mut failed = running.clone();
    failed.status.state = Failed;
    let probe = Spec::default().reserve(1.0, 0).task("probe");
    let mut scheduler = Scheduler::new(&cluster, [&failed], Strategy::Spread, 0);
    assert!(scheduler.place(&probe).is_ok());
    let mut scheduler = Scheduler::new(&cluster, [&running], Strategy::Spread, 0);
    assert_eq!(
        scheduler.place(&probe).unwrap_err().to_string(),
        "no node fits: 1 lacks cpu (need 1 cpu)"
    );
}

#[test]
fn place_all_groups_by_spec_and_answers_in_order() {
    let cluster = nodes(4);
    let web = Spec::default().port("80", Protocol::Tcp).task("web");
    let db = Spec::default().reserve(3.0, 0).task("db");
    let interleaved = [&web, &db, &web, &db, &web, &db, &web, &db, &web];
    let mut batch = Scheduler::new(&cluster, [], Strategy::Spread, 0);
    let results = batch.place_all(interleaved);
    let mut grouped = Scheduler::new(&cluster, [], Strategy::Spread, 0);
    let webs: Vec<_> = (0..5).map(|_| grouped.place(&web)).collect();
    let dbs: Vec<_> = (0..4).map(|_| grouped.place(&db)).collect();
    let expected = [
        &webs[0], &dbs[0], &webs[1], &dbs[1], &webs[2], &dbs[2], &webs[3], &dbs[3], &webs[4],
    ];
    assert_eq!(results.iter().collect::<Vec<_>>(), expected);
    assert!(
        results[8].is_err(),
        "a fifth web task finds port 80 taken everywhere"
    );
}

#[test]
fn malformed_labels_and_preferences_are_reasons_that_name_them() {
    let mut scheduler = Scheduler::new(&nodes(2), [], Strategy::Spread, 0);
    let cases = [
        (
            Spec::default().label("orch.affinity.db", "image==redis"),
            "no node fits: 2 are not considered (label orch.affinity.db is invalid: \
             unknown kind image (only service is known))",
        ),
        (
            Spec::default().label("orch.strategy", "fastest"),
            "no node fits: 2 are not considered (label orch.strategy=\"fastest\" is \
             invalid: use spread, binpack or random)",
        ),
        (
            Spec::default().prefer("zone"),
            "no node fits: 2 are not considered (preference spread: \"zone\" is invalid: \
             unknown key zone (use node.id, node.hostname, node.role, node.platform.os, \
             node.platform.arch, node.labels.NAME or engine.labels.NAME))",
        ),
        (
            Spec::default().port("http", Protocol::Tcp),
            "no node fits: 2 are not considered (published port \"http\" is invalid)",
        ),
    ];
    for (spec, text) in cases {
        let verdict = scheduler.place(&spec.task("bad")).unwrap_err();
        assert_eq!(verdict.to_string(), text);
        assert_eq!(verdict.nodes, 2);
    }
}

#[test]
fn the_strategy_label_may_sit_in_deploy_labels() {
    let mut scheduler = Scheduler::new(&nodes(3), [], Strategy::Spread, 0);
    let mut spec = Spec::default().reserve(1.0, 0);
    spec.0
        .deploy
        .get_or_insert_with(Default::default)
        .labels
        .insert("orch.strategy".into(), "binpack".into());
    let placed = place_all(&mut scheduler, &spec.task("packed"), 4);
    assert_eq!(per_node(&placed).len(), 1);
}
