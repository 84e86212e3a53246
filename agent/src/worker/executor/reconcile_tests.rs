use super::*;
use api::cluster::{Meta, TaskNetwork};
use api::network::{EndpointMode, INGRESS_NETWORK, IngressPort, OverlayPeer, ServiceEndpoint};
use api::service::MountType;
use api::session::NetworkAssignment;
use api::volume::VolumeCreate;
use proptest::prelude::*;

fn task(id: &str, desired: TaskState, nets: &[&str]) -> Task {
    Task {
        meta: Meta::new(id),
        service: "web".into(),
        slot: 1,
        desired_state: desired,
        networks: nets
            .iter()
            .map(|n| TaskNetwork {
                network: (*n).into(),
                address: "10.0.1.5/24".into(),
                aliases: Vec::new(),
            })
            .collect(),
        ..Task::default()
    }
}

fn network(name: &str, internal: bool) -> NetworkAssignment {
    NetworkAssignment {
        create: NetworkCreate {
            name: name.into(),
            driver: Some("overlay".into()),
            subnet: Some("10.0.1.0/24".into()),
            vni: Some(4097),
            internal,
            ..NetworkCreate::default()
        },
        peers: vec![OverlayPeer {
            host: "192.168.0.2".into(),
            ipv4: "10.0.1.9".into(),
            mac: "02:42:0a:00:01:09".into(),
            names: vec!["web".into()],
        }],
        services: vec![ServiceEndpoint {
            name: "web".into(),
            aliases: Vec::new(),
            mode: EndpointMode::Dnsrr,
            vip: None,
            backends: vec!["10.0.1.5".parse().unwrap()],
        }],
        ingress: None,
    }
}

fn set(tasks: Vec<Task>, networks: Vec<NetworkAssignment>) -> Assignments {
    Assignments {
        version: 3,
        addr: Some("192.168.0.1".into()),
        tasks,
        networks,
        ..Assignments::default()
    }
}

fn kinds(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::CreateNetwork(c) => format!("create {}", c.name),
            Action::SetPeers { network, .. } => format!("peers {network}"),
            Action::SetServices { network, .. } => format!("services {network}"),
            Action::SetIngress { network, .. } => format!("ingress {network}"),
            Action::RemoveNetwork(n) => format!("rm-net {n}"),
            Action::Run {
                task,
                container,
                internal_only,
            } => format!(
                "run {}{}{}",
                task.meta.id,
                container
                    .as_ref()
                    .map_or(String::new(), |c| format!(" in {c}")),
                if *internal_only { " internal" } else { "" }
            ),
            Action::Stop(t) => format!("stop {t}"),
            Action::RemoveOrphan { task, container } => format!("orphan {task} {container}"),
            Action::Retire { task, why } => format!("retire {task} {why:?}"),
            Action::CreateVolume(v) => format!("create-vol {}", v.name),
            Action::RemoveVolume(v) => format!("rm-vol {v}"),
            Action::VolumeGone(v) => format!("gone-vol {v}"),
        })
        .collect()
}

/// What the shell's bookkeeping makes of `actions` (runners started and told to stop,
/// networks made and removed, what was sent).
fn apply(local: &mut Local, actions: &[Action]) {
    for a in actions {
        match a {
            Action::CreateNetwork(c) => {
                assert_eq!(
                    c.labels.get(NETWORK_LABEL).map(String::as_str),
                    Some("true")
                );
                local.networks.insert(
                    c.name.clone(),
                    LocalNetwork {
                        subnet: c.subnet.clone().unwrap_or_default(),
                        vni: c.vni,
                        endpoints: 0,
                    },
                );
            }
            Action::SetPeers { network, peers } => {
                local.sent.entry(network.clone()).or_default().0 = peers.clone();
            }
            Action::SetServices { network, services } => {
                local.sent.entry(network.clone()).or_default().1 = services.clone();
            }
            Action::SetIngress { network, ingress } => {
                local.sent.entry(network.clone()).or_default().2 = Some(ingress.clone());
            }
            Action::RemoveNetwork(n) => {
                local.networks.remove(n);
                local.sent.remove(n);
            }
            Action::Run { task, .. } => {
                local.adopted.remove(&task.meta.id);
                local.runners.insert(task.meta.id.clone(), false);
            }
            Action::Stop(t) => {
                local.runners.insert(t.clone(), true);
            }
            Action::RemoveOrphan { task, .. } => {
                local.adopted.remove(task);
                local.runners.insert(task.clone(), true);
            }
            Action::Retire { task, why } => {
                local.retired.insert(task.clone());
                if *why == Retirement::Orphaned {
                    local.orphans_reported.insert(task.clone());
                }
            }
            Action::CreateVolume(v) => {
                local
                    .volumes
                    .get_or_insert_default()
                    .insert(v.name.clone(), 0);
            }
            Action::RemoveVolume(v) | Action::VolumeGone(v) => {
                if let Some(have) = &mut local.volumes {
                    have.remove(v);
                }
                local.volumes_reported.insert(v.clone());
            }
        }
    }
}

#[test]
fn a_new_set_makes_networks_first_then_runs_its_tasks() {
    let s = set(
        vec![
            task("t1", TaskState::Running, &["front"]),
            task("t2", TaskState::Running, &["back"]),
            task("t3", TaskState::Running, &[]),
            // The routing mesh gives no way out.
            task("t4", TaskState::Running, &["back", INGRESS_NETWORK]),
        ],
        vec![network("front", false), network("back", true)],
    );
    let actions = plan(&s, &Local::default());
    assert_eq!(
        kinds(&actions),
        [
            "create front",
            "peers front",
            "services front",
            "create back",
            "peers back",
            "services back",
            "run t1",
            "run t2 internal",
            "run t3",
            "run t4 internal",
        ]
    );
    let Action::SetPeers { peers, .. } = &actions[1] else {
        panic!("not peers: {:?}", actions[1]);
    };
    assert_eq!(peers.local.as_deref(), Some("192.168.0.1"));
    assert_eq!(peers.peers.len(), 1);
}

#[test]
fn the_same_set_again_does_nothing_and_a_change_sets_only_what_changed() {
    let mut s = set(
        vec![task("t1", TaskState::Running, &["front"])],
        vec![network("front", false)],
    );
    let mut local = Local::default();
    let first = plan(&s, &local);
    apply(&mut local, &first);
    assert_eq!(kinds(&plan(&s, &local)), Vec::<String>::new());
    s.networks[0].peers[0].host = "192.168.0.3".into();
    assert_eq!(kinds(&plan(&s, &local)), ["peers front"]);
    s.networks[0].services.clear();
    assert_eq!(kinds(&plan(&s, &local)), ["peers front", "services front"]);
    // A bridge network has no peers to set.
    s.networks[0].create.driver = Some("bridge".into());
    assert_eq!(kinds(&plan(&s, &local)), ["services front"]);
}

#[test]
fn the_routing_mesh_is_made_without_tasks_and_its_ports_sent_when_they_change() {
    let mut mesh = network(INGRESS_NETWORK, false);
    mesh.services.clear();
    mesh.ingress = Some(Ingress {
        address: "10.0.0.2/24".into(),
        ports: vec![IngressPort {
            service: "shop_web".into(),
            protocol: "tcp".into(),
            published: 8080,
            target: 80,
            backends: vec!["10.0.0.5".parse().unwrap()],
        }],
    });
    let mut s = set(Vec::new(), vec![mesh]);
    let mut local = Local::default();
    let first = plan(&s, &local);
    assert_eq!(
        kinds(&first),
        [
            "create ingress",
            "peers ingress",
            "services ingress",
            "ingress ingress"
        ]
    );
    apply(&mut local, &first);
    assert_eq!(kinds(&plan(&s, &local)), Vec::<String>::new());
    if let Some(i) = s.networks[0].ingress.as_mut() {
        i.ports[0].backends.push("10.0.0.6".parse().unwrap());
    }
    assert_eq!(kinds(&plan(&s, &local)), ["ingress ingress"]);
    // Gone from the set (no service publishes a mesh port): removed.
    s.networks.clear();
    assert_eq!(kinds(&plan(&s, &local)), ["rm-net ingress"]);
}

#[test]
fn shutdowns_stop_runners_remove_orphans_and_retire_the_rest() {
    let s = set(
        vec![
            task("running", TaskState::Shutdown, &[]),
            task("stopping", TaskState::Shutdown, &[]),
            task("found", TaskState::Shutdown, &[]),
            task("never", TaskState::Remove, &[]),
            task("done", TaskState::Shutdown, &[]),
            task("adopt", TaskState::Running, &[]),
        ],
        Vec::new(),
    );
    let local = Local {
        runners: [
            ("running".into(), false),
            ("stopping".into(), true),
            ("gone".into(), false),
        ]
        .into(),
        adopted: [
            ("found".into(), "c1".into()),
            ("adopt".into(), "c2".into()),
            ("stray".into(), "c3".into()),
        ]
        .into(),
        retired: ["done".into()].into(),
        ..Local::default()
    };
    assert_eq!(
        kinds(&plan(&s, &local)),
        [
            "stop running",
            "orphan found c1",
            "retire never Shutdown",
            "stop gone",
            "orphan stray c3",
            "run adopt in c2",
        ]
    );
}

#[test]
fn networks_go_when_unused_and_are_made_again_with_another_allocation() {
    let s = set(Vec::new(), vec![network("front", false)]);
    let local = Local {
        networks: [
            (
                "front".into(),
                LocalNetwork {
                    subnet: "10.0.9.0/24".into(),
                    vni: Some(4097),
                    endpoints: 0,
                },
            ),
            (
                "old".into(),
                LocalNetwork {
                    endpoints: 0,
                    ..LocalNetwork::default()
                },
            ),
            (
                "busy".into(),
                LocalNetwork {
                    endpoints: 2,
                    ..LocalNetwork::default()
                },
            ),
        ]
        .into(),
        ..Local::default()
    };
    assert_eq!(
        kinds(&plan(&s, &local)),
        [
            "rm-net front",
            "create front",
            "peers front",
            "services front",
            "rm-net old",
        ]
    );
}

fn arb_state() -> impl Strategy<Value = TaskState> {
    prop_oneof![
        Just(TaskState::Running),
        Just(TaskState::Shutdown),
        Just(TaskState::Remove),
    ]
}

proptest! {
    /// Whatever the node has, applying a plan leaves nothing to do but network
    /// removals that wait for containers: no task runs twice, none that should stop.
    #[test]
    fn a_plan_applied_converges(
        desired in proptest::collection::vec(arb_state(), 0..6),
        runners in proptest::collection::btree_map(0usize..8, any::<bool>(), 0..4),
        adopted in proptest::collection::btree_set(0usize..8, 0..4),
        retired in proptest::collection::btree_set(0usize..8, 0..3),
    ) {
        let s = set(
            desired.iter().enumerate().map(|(i, d)| task(&format!("t{i}"), *d, &[])).collect(),
            vec![network("front", false)],
        );
        let mut local = Local {
            runners: runners.iter().map(|(i, s)| (format!("t{i}"), *s)).collect(),
            adopted: adopted.iter().map(|i| (format!("t{i}"), format!("c{i}"))).collect(),
            retired: retired.iter().map(|i| format!("t{i}")).collect(),
            ..Local::default()
        };
        let first = plan(&s, &local);
        for a in &first {
            if let Action::Run { task, .. } = a {
                prop_assert!(task.desired_state < TaskState::Shutdown);
                prop_assert!(!local.runners.contains_key(&task.meta.id));
                prop_assert!(!local.retired.contains(&task.meta.id));
            }
        }
        apply(&mut local, &first);
        prop_assert_eq!(kinds(&plan(&s, &local)), Vec::<String>::new());
    }
}

#[test]
fn a_restarted_node_does_not_run_again_what_got_further_than_preparing() {
    let with_status = |id: &str, state: TaskState| {
        let mut t = task(id, TaskState::Running, &[]);
        t.status.state = state;
        t
    };
    let s = set(
        vec![
            with_status("fresh", TaskState::Assigned),
            with_status("pulling", TaskState::Preparing),
            with_status("lost", TaskState::Running),
            with_status("kept", TaskState::Running),
            with_status("rejected", TaskState::Rejected),
            with_status("done", TaskState::Complete),
        ],
        Vec::new(),
    );
    let local = Local {
        adopted: [("kept".into(), "c1".into()), ("done".into(), "c2".into())].into(),
        ..Local::default()
    };
    assert_eq!(
        kinds(&plan(&s, &local)),
        [
            "retire lost Lost",
            "retire rejected Final",
            "run fresh",
            "run pulling",
            "run kept in c1",
            "run done in c2",
        ]
    );
}

fn mounting(id: &str, desired: TaskState, volume: &str) -> Task {
    let mut t = task(id, desired, &[]);
    t.spec.volumes.push(api::service::ServiceVolume {
        kind: MountType::Volume,
        source: Some(volume.into()),
        target: "/data".into(),
        ..api::service::ServiceVolume::default()
    });
    t
}

fn with_volumes(local: Local, volumes: &[(&str, usize)]) -> Local {
    Local {
        volumes: Some(volumes.iter().map(|(n, u)| ((*n).to_owned(), *u)).collect()),
        ..local
    }
}

fn volume_actions(actions: &[Action]) -> Vec<&Action> {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::CreateVolume(_) | Action::RemoveVolume(_) | Action::VolumeGone(_)
            )
        })
        .collect()
}

#[test]
fn a_missing_stack_volume_is_made_before_the_task_that_mounts_it_runs() {
    let mut s = set(
        vec![mounting("t1", TaskState::Running, "shop_data")],
        vec![],
    );
    let create = VolumeCreate {
        name: "shop_data".into(),
        labels: [("tier".to_owned(), "db".to_owned())].into(),
    };
    s.volumes.push(create.clone());
    let actions = plan(&s, &with_volumes(Local::default(), &[]));
    assert_eq!(actions[0], Action::CreateVolume(create));
    assert!(matches!(actions[1], Action::Run { .. }), "{actions:?}");
    let made = plan(&s, &with_volumes(Local::default(), &[("shop_data", 0)]));
    assert!(volume_actions(&made).is_empty(), "{made:?}");
    let unknown = plan(&s, &Local::default());
    assert!(
        volume_actions(&unknown).is_empty(),
        "engine not listed: {unknown:?}"
    );
}

#[test]
fn a_volume_is_removed_only_once_its_task_and_container_are_gone() {
    let stopping = mounting("t1", TaskState::Shutdown, "shop_data");
    let mut s = set(vec![stopping], vec![]);
    s.volume_removals = vec!["shop_data".into()];
    let running = Local {
        runners: [("t1".to_owned(), true)].into(),
        ..Local::default()
    };
    // Its task still has a runner, and its container mounts it.
    let busy = plan(&s, &with_volumes(running.clone(), &[("shop_data", 1)]));
    assert!(volume_actions(&busy).is_empty(), "{busy:?}");
    // The container is gone but the runner has not ended yet.
    let ending = plan(&s, &with_volumes(running, &[("shop_data", 0)]));
    assert!(volume_actions(&ending).is_empty(), "{ending:?}");
    // The runner ended: the task is retired.
    let retired = Local {
        retired: ["t1".to_owned()].into(),
        ..Local::default()
    };
    let done = plan(&s, &with_volumes(retired.clone(), &[("shop_data", 0)]));
    assert_eq!(
        volume_actions(&done),
        [&Action::RemoveVolume("shop_data".into())]
    );
    // Something outside the cluster still mounts it: left, and looked at again.
    let held = with_volumes(retired, &[("shop_data", 1)]);
    assert!(volume_actions(&plan(&s, &held)).is_empty());
    assert!(volumes_pending(&s, &held));
}

#[test]
fn an_absent_volume_is_confirmed_at_once_and_reported_once() {
    let mut s = set(vec![], vec![]);
    s.volume_removals = vec!["shop_data".into()];
    let local = with_volumes(Local::default(), &[]);
    assert_eq!(
        volume_actions(&plan(&s, &local)),
        [&Action::VolumeGone("shop_data".into())]
    );
    assert!(!volumes_pending(&s, &local));
    let reported = Local {
        volumes_reported: ["shop_data".to_owned()].into(),
        ..local
    };
    assert!(volume_actions(&plan(&s, &reported)).is_empty());
}

#[test]
fn a_runner_of_a_task_outside_the_set_holds_removals_back() {
    let mut s = set(vec![], vec![]);
    s.volume_removals = vec!["shop_data".into()];
    let local = Local {
        runners: [("gone".to_owned(), true)].into(),
        ..Local::default()
    };
    let actions = plan(&s, &with_volumes(local, &[("shop_data", 0)]));
    assert!(volume_actions(&actions).is_empty(), "{actions:?}");
}

#[test]
fn an_orphaned_task_is_stopped_removed_and_reported_gone_once() {
    let orphaned = |id: &str| {
        let mut t = task(id, TaskState::Shutdown, &[]);
        t.status.state = TaskState::Orphaned;
        t
    };
    let s = set(
        vec![
            orphaned("running"),
            orphaned("found"),
            orphaned("nothing"),
            orphaned("ended"),
        ],
        Vec::new(),
    );
    let mut local = Local {
        runners: [("running".into(), false)].into(),
        adopted: [("found".into(), "c1".into())].into(),
        retired: ["ended".into()].into(),
        ..Local::default()
    };
    let first = plan(&s, &local);
    assert_eq!(
        kinds(&first),
        [
            "stop running",
            "orphan found c1",
            "retire nothing Orphaned",
            "retire ended Orphaned",
        ]
    );
    apply(&mut local, &first);
    // The runners report `shutdown` themselves once the containers are removed.
    assert_eq!(kinds(&plan(&s, &local)), Vec::<String>::new());
    local.runners.clear();
    local.retired.extend(["running".into(), "found".into()]);
    let after = plan(&s, &local);
    assert_eq!(
        kinds(&after),
        ["retire running Orphaned", "retire found Orphaned"],
        "a runner that ended before its report was heard reports once more"
    );
    apply(&mut local, &after);
    assert_eq!(kinds(&plan(&s, &local)), Vec::<String>::new(), "once");
}
