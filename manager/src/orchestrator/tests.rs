//! The orchestrator on a simulated cluster and clock.

use super::sim::Sim;
use api::ServiceSpec;
use api::cluster::{Availability, NodeState, TaskState};
use api::deploy::{
    DeployMode, DeploySpec, RestartCondition, RestartPolicy, UpdateConfig, UpdateOrder,
};
use api::units::Duration;

fn spec(image: &str, replicas: u64) -> ServiceSpec {
    ServiceSpec {
        image: Some(image.into()),
        deploy: Some(DeploySpec {
            replicas: Some(replicas),
            ..DeploySpec::default()
        }),
        ..ServiceSpec::default()
    }
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration(s * 1_000_000_000))
}

#[test]
fn replicas_are_made_placed_and_scaled_reusing_slots() {
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy("shop", &[("web", spec("busybox", 3))]);
    sim.agents_run();
    assert_eq!(sim.count("shop_web", TaskState::Running), 3);
    let mut slots: Vec<u64> = sim.wanted("shop_web").iter().map(|t| t.slot).collect();
    slots.sort();
    assert_eq!(slots, [1, 2, 3]);

    sim.deploy("shop", &[("web", spec("busybox", 1))]);
    sim.agents_run();
    let wanted = sim.wanted("shop_web");
    assert_eq!(wanted.len(), 1);
    assert_eq!(wanted[0].slot, 1, "the lowest slot stays");

    sim.deploy("shop", &[("web", spec("busybox", 3))]);
    sim.agents_run();
    let mut slots: Vec<u64> = sim.wanted("shop_web").iter().map(|t| t.slot).collect();
    slots.sort();
    assert_eq!(slots, [1, 2, 3], "freed slots are reused");
    assert_eq!(sim.count("shop_web", TaskState::Running), 3);
}

#[test]
fn restarts_follow_condition_delay_and_max_attempts() {
    let mut s = spec("busybox", 1);
    s.deploy.as_mut().unwrap().restart_policy = Some(RestartPolicy {
        condition: Some(RestartCondition::OnFailure),
        delay: secs(2),
        max_attempts: Some(2),
        window: None,
    });
    let mut sim = Sim::new(&["n1"]);
    sim.deploy("app", &[("job", s)]);
    sim.agents_run();
    let fail = |sim: &mut Sim| {
        sim.agents(|t| {
            (super::wanted(t) && t.status.state == TaskState::Running)
                .then_some((TaskState::Failed, Some(3)))
        })
    };
    let total = |sim: &Sim| sim.state.tasks.by_service("app_job").count();
    fail(&mut sim);
    assert_eq!(total(&sim), 1, "no replacement before the delay");
    sim.advance(1_999);
    assert_eq!(total(&sim), 1);
    sim.advance(1);
    assert_eq!(total(&sim), 2, "replaced after the delay");
    sim.agents_run();
    fail(&mut sim);
    sim.advance(2_000);
    assert_eq!(total(&sim), 3, "second restart");
    sim.agents_run();
    fail(&mut sim);
    sim.advance(60_000);
    assert_eq!(total(&sim), 3, "max_attempts 2: no third restart");
    assert!(sim.wanted("app_job").is_empty());
}

#[test]
fn a_completed_task_with_on_failure_is_done_and_any_restarts_it() {
    let mut once = spec("busybox", 1);
    once.restart = Some("on-failure".into());
    let mut always = spec("busybox", 1);
    always.restart = Some("always".into());
    let mut sim = Sim::new(&["n1"]);
    sim.deploy("app", &[("once", once), ("always", always)]);
    sim.agents_run();
    sim.agents(|t| {
        (super::wanted(t) && t.status.state == TaskState::Running)
            .then_some((TaskState::Complete, Some(0)))
    });
    sim.advance(10_000);
    assert_eq!(sim.state.tasks.by_service("app_once").count(), 1);
    assert_eq!(sim.state.tasks.by_service("app_always").count(), 2);
}

fn rolling(parallelism: u64, order: UpdateOrder, image: &str) -> ServiceSpec {
    let mut s = spec(image, 4);
    s.deploy.as_mut().unwrap().update_config = Some(UpdateConfig {
        parallelism: Some(parallelism),
        delay: secs(10),
        order: Some(order),
        ..UpdateConfig::default()
    });
    s
}

fn images(sim: &Sim, state: TaskState) -> Vec<String> {
    let mut v: Vec<String> = sim
        .wanted("app_web")
        .iter()
        .filter(|t| t.status.state == state)
        .map(|t| t.spec.image.clone().unwrap_or_default())
        .collect();
    v.sort();
    v
}

#[test]
fn a_rolling_update_replaces_parallelism_slots_then_waits_the_delay() {
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy("app", &[("web", rolling(2, UpdateOrder::StopFirst, "v1"))]);
    sim.agents_run();
    sim.deploy("app", &[("web", rolling(2, UpdateOrder::StopFirst, "v2"))]);
    // Stop-first: two old tasks are stopped, two new ones are made.
    assert_eq!(images(&sim, TaskState::Running), ["v1", "v1"]);
    assert_eq!(sim.wanted("app_web").len(), 4);
    sim.agents_run();
    assert_eq!(images(&sim, TaskState::Running), ["v1", "v1", "v2", "v2"]);
    sim.advance(9_000);
    assert_eq!(
        images(&sim, TaskState::Running),
        ["v1", "v1", "v2", "v2"],
        "delay"
    );
    sim.advance(1_000);
    sim.agents_run();
    assert_eq!(images(&sim, TaskState::Running), ["v2", "v2", "v2", "v2"]);
    let mut slots: Vec<u64> = sim.wanted("app_web").iter().map(|t| t.slot).collect();
    slots.sort();
    assert_eq!(slots, [1, 2, 3, 4], "updates keep slots");
}

#[test]
fn start_first_keeps_the_old_task_until_the_new_one_runs() {
    let mut sim = Sim::new(&["n1"]);
    sim.deploy("app", &[("web", rolling(1, UpdateOrder::StartFirst, "v1"))]);
    sim.agents_run();
    sim.deploy("app", &[("web", rolling(1, UpdateOrder::StartFirst, "v2"))]);
    assert_eq!(
        sim.wanted("app_web").len(),
        5,
        "one extra task while it starts"
    );
    assert_eq!(images(&sim, TaskState::Running).len(), 4);
    sim.agents_run();
    assert_eq!(sim.wanted("app_web").len(), 4);
    assert_eq!(images(&sim, TaskState::Running), ["v1", "v1", "v1", "v2"]);
}

#[test]
fn tasks_of_a_down_node_are_replaced_elsewhere_and_drain_moves_them() {
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy("app", &[("web", spec("busybox", 2))]);
    sim.agents_run();
    sim.set_node("n1", |n| n.status.state = NodeState::Down);
    sim.agents_run();
    let wanted = sim.wanted("app_web");
    assert_eq!(wanted.len(), 2);
    assert!(wanted.iter().all(|t| t.node.as_deref() == Some("n2")));
    let orphaned = sim
        .state
        .tasks
        .by_service("app_web")
        .filter(|t| t.status.state == TaskState::Orphaned)
        .count();
    assert_eq!(orphaned, 1);

    sim.set_node("n1", |n| n.status.state = NodeState::Ready);
    sim.set_node("n2", |n| n.spec.availability = Availability::Drain);
    sim.agents_run();
    let wanted = sim.wanted("app_web");
    assert_eq!(wanted.len(), 2);
    assert!(wanted.iter().all(|t| t.node.as_deref() == Some("n1")));
    assert_eq!(sim.count("app_web", TaskState::Running), 2);
}

#[test]
fn tasks_of_a_down_node_with_nowhere_else_to_go_are_kept_until_a_node_can_take_them() {
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.set_node("n2", |n| n.spec.availability = Availability::Drain);
    sim.deploy("app", &[("web", spec("busybox", 2))]);
    sim.agents_run();
    let ids = |sim: &Sim| {
        let mut ids: Vec<String> = sim
            .wanted("app_web")
            .into_iter()
            .map(|t| t.meta.id)
            .collect();
        ids.sort();
        ids
    };
    let before = ids(&sim);
    sim.set_node("n1", |n| n.status.state = NodeState::Down);
    sim.agents_run();
    assert_eq!(ids(&sim), before, "no other node: the tasks stay");
    let orphaned = |sim: &Sim| {
        sim.state
            .tasks
            .by_service("app_web")
            .filter(|t| t.status.state == TaskState::Orphaned)
            .count()
    };
    assert_eq!(orphaned(&sim), 0);

    // Back: the same tasks, never stopped.
    sim.set_node("n1", |n| n.status.state = NodeState::Ready);
    sim.agents_run();
    assert_eq!(ids(&sim), before);
    assert_eq!(sim.count("app_web", TaskState::Running), 2);

    // Down again while another node can take them: replaced there.
    sim.set_node("n1", |n| n.status.state = NodeState::Down);
    sim.set_node("n2", |n| n.spec.availability = Availability::Active);
    sim.agents_run();
    assert_eq!(orphaned(&sim), 2);
    let wanted = sim.wanted("app_web");
    assert_eq!(wanted.len(), 2);
    assert!(wanted.iter().all(|t| t.node.as_deref() == Some("n2")));
}

#[test]
fn a_global_service_runs_on_a_node_that_joins_later() {
    let mut s = spec("busybox", 0);
    s.deploy.as_mut().unwrap().mode = Some(DeployMode::Global);
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy("app", &[("agent", s)]);
    sim.agents_run();
    assert_eq!(sim.count("app_agent", TaskState::Running), 2);
    sim.add_node("n3");
    sim.settle();
    sim.agents_run();
    let mut nodes: Vec<String> = sim
        .wanted("app_agent")
        .iter()
        .filter_map(|t| t.node.clone())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2", "n3"]);
    sim.set_node("n2", |n| n.spec.availability = Availability::Drain);
    sim.agents_run();
    assert_eq!(sim.wanted("app_agent").len(), 2, "not replaced elsewhere");
}

#[test]
fn removing_the_stack_stops_then_forgets_its_tasks() {
    let mut sim = Sim::new(&["n1"]);
    sim.deploy("app", &[("web", spec("busybox", 2))]);
    sim.agents_run();
    let stack = sim.state.stacks.get("app").unwrap().clone();
    sim.commit(vec![crate::store::Command::Delete {
        kind: api::cluster::Kind::Stack,
        id: stack.meta.id.clone(),
        expected_version: None,
    }]);
    sim.settle();
    assert!(sim.state.services.get("app_web").is_none());
    assert_eq!(sim.state.tasks.len(), 2, "kept until they stop");
    sim.agents_run();
    assert_eq!(sim.state.tasks.len(), 0);
}

#[test]
fn history_is_bounded_per_slot() {
    let mut s = spec("busybox", 1);
    s.deploy.as_mut().unwrap().restart_policy = Some(RestartPolicy {
        delay: secs(0),
        ..RestartPolicy::default()
    });
    let mut sim = Sim::new(&["n1"]);
    sim.deploy("app", &[("web", s)]);
    for _ in 0..12 {
        sim.agents_run();
        sim.agents(|t| {
            (super::wanted(t) && t.status.state == TaskState::Running)
                .then_some((TaskState::Failed, Some(1)))
        });
    }
    let total = sim.state.tasks.by_service("app_web").count();
    assert!(total <= super::tasks::HISTORY + 1, "{total} tasks kept");
}

#[test]
fn networks_vips_and_task_addresses_are_allocated_once() {
    let mut web = spec("busybox", 3);
    web.networks.insert("front".into(), None);
    web.networks.insert("back".into(), None);
    let mut db = spec("busybox", 1);
    db.networks.insert("back".into(), None);
    db.deploy.as_mut().unwrap().endpoint_mode = Some(api::deploy::EndpointMode::Dnsrr);
    let mut stack = api::StackSpec {
        name: "app".into(),
        ..api::StackSpec::default()
    };
    stack.services.insert("web".into(), web);
    stack.services.insert("db".into(), db);
    for key in ["front", "back"] {
        stack.networks.insert(
            key.into(),
            api::stack::NetworkSpec {
                name: format!("app_{key}"),
                ..api::stack::NetworkSpec::default()
            },
        );
    }
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy_spec("app", stack);
    sim.agents_run();
    let front = sim
        .state
        .networks
        .get("app_front")
        .unwrap()
        .allocation
        .clone()
        .unwrap();
    let back = sim
        .state
        .networks
        .get("app_back")
        .unwrap()
        .allocation
        .clone()
        .unwrap();
    assert_ne!(front.subnet, back.subnet);
    assert_ne!(front.vni, back.vni);
    let web = sim.state.services.get("app_web").unwrap();
    assert_eq!(web.vips.len(), 2, "a vip on each network: {:?}", web.vips);
    assert!(
        sim.state.services.get("app_db").unwrap().vips.is_empty(),
        "dnsrr"
    );
    let mut seen = std::collections::BTreeSet::new();
    for vip in web.vips.values() {
        assert!(seen.insert(vip.clone()));
    }
    for task in sim.state.tasks.iter() {
        assert_eq!(task.networks.len(), task.spec.networks.len());
        for n in &task.networks {
            let ip = n.address.split('/').next().unwrap().to_owned();
            assert!(seen.insert(ip), "{} given twice", n.address);
        }
    }
    assert_eq!(seen.len(), 2 + 3 * 2 + 1);
}

fn failing_update(action: api::deploy::FailureAction, image: &str) -> ServiceSpec {
    let mut s = spec(image, 3);
    s.deploy.as_mut().unwrap().update_config = Some(UpdateConfig {
        parallelism: Some(1),
        failure_action: Some(action),
        ..UpdateConfig::default()
    });
    s
}

/// The agents: tasks of image `bad` fail at start, the others run.
fn run_unless_bad(sim: &mut Sim) {
    sim.agents(|t| {
        if super::wanted(t) && t.status.state == TaskState::Assigned {
            if t.spec.image.as_deref() == Some("bad") {
                Some((TaskState::Failed, Some(1)))
            } else {
                Some((TaskState::Running, None))
            }
        } else if !super::wanted(t)
            && !super::ended(t.status.state)
            && t.status.state >= TaskState::Assigned
        {
            Some((TaskState::Shutdown, None))
        } else {
            None
        }
    });
}

#[test]
fn a_failing_update_rolls_back_to_the_previous_spec_and_stays_there() {
    use api::cluster::UpdateState;
    use api::deploy::FailureAction;
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy(
        "app",
        &[("web", failing_update(FailureAction::Rollback, "good"))],
    );
    run_unless_bad(&mut sim);
    let status = sim
        .state
        .services
        .get("app_web")
        .unwrap()
        .update_status
        .clone();
    assert_eq!(status, None, "a first deploy is no update");
    sim.deploy(
        "app",
        &[("web", failing_update(FailureAction::Rollback, "bad"))],
    );
    let service = sim.state.services.get("app_web").unwrap();
    assert_eq!(
        service.update_status.as_ref().unwrap().state,
        UpdateState::Updating
    );
    run_unless_bad(&mut sim);
    for _ in 0..6 {
        run_unless_bad(&mut sim);
        sim.advance(1_000);
    }
    run_unless_bad(&mut sim);
    let service = sim.state.services.get("app_web").unwrap().clone();
    let status = service.update_status.clone().unwrap();
    assert_eq!(status.state, UpdateState::RollbackCompleted, "{status:?}");
    assert!(
        status
            .message
            .contains("rolled back: 1 of 3 new tasks failed"),
        "{}",
        status.message
    );
    assert_eq!(service.spec.image.as_deref(), Some("good"));
    assert_eq!(images(&sim, TaskState::Running), ["good", "good", "good"]);
    // The stack still says `bad`; it is not applied again until the stack changes.
    sim.settle();
    assert_eq!(
        sim.state
            .services
            .get("app_web")
            .unwrap()
            .spec
            .image
            .as_deref(),
        Some("good")
    );
}

#[test]
fn a_failing_update_with_pause_stops_replacing_tasks() {
    use api::cluster::UpdateState;
    use api::deploy::FailureAction;
    let mut sim = Sim::new(&["n1"]);
    sim.deploy(
        "app",
        &[("web", failing_update(FailureAction::Pause, "good"))],
    );
    run_unless_bad(&mut sim);
    sim.deploy(
        "app",
        &[("web", failing_update(FailureAction::Pause, "bad"))],
    );
    for _ in 0..5 {
        run_unless_bad(&mut sim);
        sim.advance(6_000);
    }
    let service = sim.state.services.get("app_web").unwrap().clone();
    let status = service.update_status.unwrap();
    assert_eq!(status.state, UpdateState::Paused);
    assert!(
        status.message.starts_with("update paused"),
        "{}",
        status.message
    );
    assert_eq!(
        images(&sim, TaskState::Running),
        ["good", "good"],
        "two old tasks untouched"
    );
}

#[test]
fn a_task_failing_within_monitor_of_its_start_fails_the_update() {
    use api::cluster::UpdateState;
    use api::deploy::FailureAction;
    let one = |image: &str| {
        let mut s = failing_update(FailureAction::Rollback, image);
        s.deploy.as_mut().unwrap().replicas = Some(1);
        s
    };
    let mut sim = Sim::new(&["n1"]);
    sim.deploy("app", &[("web", one("good"))]);
    sim.agents_run();
    sim.deploy("app", &[("web", one("crash"))]);
    sim.agents_run();
    assert_eq!(images(&sim, TaskState::Running), ["crash"]);
    // It runs, then crashes 2 s later: within the default monitor of 5 s.
    sim.advance(2_000);
    sim.agents(|t| {
        (super::wanted(t)
            && t.status.state == TaskState::Running
            && t.spec.image.as_deref() == Some("crash"))
        .then_some((TaskState::Failed, Some(1)))
    });
    sim.settle();
    sim.agents_run();
    let service = sim.state.services.get("app_web").unwrap();
    let status = service.update_status.as_ref().unwrap();
    assert!(
        matches!(
            status.state,
            UpdateState::RollbackStarted | UpdateState::RollbackCompleted
        ),
        "{status:?}"
    );
    assert_eq!(service.spec.image.as_deref(), Some("good"));
}

#[test]
fn a_completed_update_says_so() {
    use api::cluster::UpdateState;
    let mut sim = Sim::new(&["n1"]);
    sim.deploy("app", &[("web", rolling(0, UpdateOrder::StopFirst, "v1"))]);
    sim.agents_run();
    sim.deploy("app", &[("web", rolling(0, UpdateOrder::StopFirst, "v2"))]);
    sim.agents_run();
    let state = |sim: &Sim| {
        let service = sim.state.services.get("app_web").unwrap();
        service.update_status.as_ref().unwrap().state
    };
    assert_eq!(
        state(&sim),
        UpdateState::Updating,
        "watched for monitor (5 s)"
    );
    sim.advance(4_999);
    assert_eq!(state(&sim), UpdateState::Updating);
    sim.advance(1);
    let service = sim.state.services.get("app_web").unwrap();
    assert_eq!(
        service.update_status.as_ref().unwrap().state,
        UpdateState::Completed
    );
    assert_eq!(
        service.previous_spec.as_ref().unwrap().image.as_deref(),
        Some("v1")
    );
    assert_eq!(
        images(&sim, TaskState::Running),
        ["v2", "v2", "v2", "v2"],
        "parallelism 0: all at once"
    );
}

#[test]
fn the_scheduling_pass_assigns_pending_tasks_or_says_why_not() {
    let mut sim = Sim::new(&["n1"]);
    sim.deploy("app", &[("web", spec("busybox", 2))]);
    // The simulation placed them; make one pending again and let the real pass run.
    let mut task = sim.wanted("app_web")[0].clone();
    task.node = None;
    task.status.state = TaskState::Pending;
    let version = task.meta.version;
    sim.commit(vec![crate::store::Command::update(
        api::cluster::Object::Task(Box::new(task.clone())),
        version,
    )]);
    let plan = super::schedule::plan(&sim.state, crate::scheduler::Strategy::Spread, sim.now);
    assert_eq!(plan.changes.len(), 1, "{plan:?}");
    let super::Change::Update(api::cluster::Object::Task(placed)) = &plan.changes[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(placed.node.as_deref(), Some("n1"));
    assert_eq!(placed.status.state, TaskState::Assigned);
}

#[test]
fn depends_on_holds_a_service_until_its_dependency_is_healthy_or_done() {
    use api::service::{DependsOn, DependsOnCondition};
    let mut web = spec("busybox", 1);
    web.depends_on.insert(
        "api".into(),
        DependsOn {
            condition: DependsOnCondition::ServiceHealthy,
            ..DependsOn::default()
        },
    );
    let mut report = spec("busybox", 1);
    report.depends_on.insert(
        "migrate".into(),
        DependsOn {
            condition: DependsOnCondition::ServiceCompletedSuccessfully,
            ..DependsOn::default()
        },
    );
    let mut sim = Sim::new(&["n1"]);
    sim.deploy(
        "app",
        &[
            ("api", spec("busybox", 1)),
            ("web", web),
            ("migrate", spec("busybox", 1)),
            ("report", report),
        ],
    );
    // The simulation's placement ignores depends_on; the real pass decides.
    let held = |sim: &Sim, service: &str| -> Option<String> {
        let task = sim.wanted(service)[0].clone();
        let mut state = sim.state.clone();
        let mut pending = task.clone();
        pending.node = None;
        pending.status.state = TaskState::Pending;
        pending.status.message.clear();
        state.tasks.insert(pending);
        let plan = super::schedule::plan(&state, crate::scheduler::Strategy::Spread, sim.now);
        plan.changes.iter().find_map(|c| match c {
            super::Change::Update(api::cluster::Object::Task(t)) if t.meta.id == task.meta.id => {
                Some(t.status.message.clone()).filter(|m| !m.is_empty())
            }
            _ => None,
        })
    };
    assert_eq!(
        held(&sim, "app_web").as_deref(),
        Some("waiting for service api to be healthy")
    );
    assert_eq!(
        held(&sim, "app_report").as_deref(),
        Some("waiting for service migrate to complete successfully")
    );
    sim.agents_run();
    assert_eq!(held(&sim, "app_web"), None, "api runs (healthy)");
    assert!(held(&sim, "app_report").is_some(), "migrate still runs");
    sim.agents(|t| {
        (t.service == "app_migrate" && super::wanted(t)).then_some((TaskState::Complete, Some(0)))
    });
    assert_eq!(held(&sim, "app_report"), None, "migrate completed");
}
