//! The worker's executor against a real engine: an assignment set becomes networks
//! and containers, task states come back as reports, a task taken out of the set is
//! shut down and removed, and a new executor over the same engine takes over the
//! running containers without restarting them.

use crate::engine::{Agent, ok};
use agent::testing::lan::Lan;
use agent::worker::executor;
use api::client::EngineClient;
use api::cluster::{Meta, Task, TaskNetwork, TaskState, TaskStatus};
use api::container::ContainerStatus;
use api::error::ErrorCode;
use api::network::{EndpointMode, NetworkCreate, ServiceEndpoint};
use api::service::{Healthcheck, ServiceSpec};
use api::session::{Assignments, NetworkAssignment, TaskReport};
use api::units::Duration as Span;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Reports by task, in the order they came.
type Seen = BTreeMap<String, Vec<TaskStatus>>;

/// Collect reports until `done` holds of them; fails after a minute, showing them.
async fn until(
    rx: &mut mpsc::Receiver<TaskReport>,
    seen: &mut Seen,
    what: &str,
    done: impl Fn(&Seen) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(r)) => seen.entry(r.task).or_default().push(r.status),
            Ok(None) => panic!("the executor stopped reporting before {what}: {seen:#?}"),
            Err(_) => panic!("no {what} within a minute: {seen:#?}"),
        }
    }
}

/// The last status reported for `task`.
fn last<'a>(seen: &'a Seen, task: &str) -> Option<&'a TaskStatus> {
    seen.get(task).and_then(|s| s.last())
}

fn is(seen: &Seen, task: &str, state: TaskState) -> bool {
    last(seen, task).is_some_and(|s| s.state == state)
}

fn task(prefix: &str, id: &str, name: &str, slot: u64, spec: ServiceSpec) -> Task {
    Task {
        meta: Meta::new(format!("{prefix}{id}")),
        service: format!("{prefix}-{name}"),
        stack: prefix.to_owned(),
        name: name.to_owned(),
        slot,
        desired_state: TaskState::Running,
        spec,
        ..Task::default()
    }
}

fn busybox(cmd: &[&str]) -> ServiceSpec {
    ServiceSpec {
        image: Some("busybox".into()),
        command: Some(cmd.iter().map(|s| s.to_string()).collect()),
        // busybox as PID 1 ignores SIGTERM: do not wait the default 10 s for it.
        stop_grace_period: Some(Span(1_000_000_000)),
        ..ServiceSpec::default()
    }
}

#[test]
fn executor_runs_a_set_shuts_down_what_leaves_it_and_a_new_one_adopts_the_rest() {
    let mut a = Agent::start("worker");
    if !a.busybox() {
        return;
    }
    // The overlay's tunnel end: this host's address on a private lan.
    let lan = Lan::new(&a.dir.join("lan.netns")).unwrap();
    lan.plug(&a.host(), "wk", [10, 98, 0, 1].into()).unwrap();
    let prefix = format!("w{}", std::process::id());
    let net = format!("{prefix}_front");
    let web = |id: &str, slot: u64, ip: &str| {
        let mut t = task(
            &prefix,
            id,
            "web",
            slot,
            busybox(&["httpd", "-f", "-p", "80", "-h", "/etc"]),
        );
        t.networks = vec![TaskNetwork {
            network: net.clone(),
            address: format!("{ip}/24"),
            aliases: Vec::new(),
        }];
        t
    };
    let web1 = web("web1", 1, "10.231.0.11");
    let web2 = web("web2", 2, "10.231.0.12");
    let once = task(&prefix, "once", "once", 1, busybox(&["sh", "-c", "exit 0"]));
    let three = task(
        &prefix,
        "three",
        "three",
        1,
        busybox(&["sh", "-c", "exit 3"]),
    );
    let probe = |test: &str| {
        let mut spec = busybox(&["sleep", "60"]);
        spec.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), test.into()],
            interval: Some(Span(300_000_000)),
            retries: Some(1),
            ..Healthcheck::default()
        });
        spec
    };
    let healthy = task(&prefix, "healthy", "healthy", 1, probe("true"));
    let sick = task(&prefix, "sick", "sick", 1, probe("false"));
    let ghost_image = format!("127.0.0.1:9/{prefix}-ghost:1");
    let ghost = task(
        &prefix,
        "ghost",
        "ghost",
        1,
        ServiceSpec {
            image: Some(ghost_image.clone()),
            ..ServiceSpec::default()
        },
    );
    let network = NetworkAssignment {
        create: NetworkCreate {
            name: net.clone(),
            driver: Some("overlay".into()),
            subnet: Some("10.231.0.0/24".into()),
            gateway: Some("10.231.0.1".into()),
            vni: Some(4231),
            ..NetworkCreate::default()
        },
        peers: Vec::new(),
        services: vec![ServiceEndpoint {
            name: "web".into(),
            aliases: Vec::new(),
            mode: EndpointMode::Vip,
            vip: Some("10.231.0.100".parse().unwrap()),
            backends: vec![
                "10.231.0.11".parse().unwrap(),
                "10.231.0.12".parse().unwrap(),
            ],
        }],
    };
    let mut set = Assignments {
        version: 1,
        addr: Some("10.98.0.1".into()),
        tasks: vec![
            web1.clone(),
            web2.clone(),
            once.clone(),
            three.clone(),
            ghost.clone(),
            healthy.clone(),
            sick.clone(),
        ],
        networks: vec![network],
    };
    let ids = |t: &Task| t.meta.id.clone();
    let (w1, w2, once, three, ghost) =
        (ids(&web1), ids(&web2), ids(&once), ids(&three), ids(&ghost));
    let (healthy, sick) = (ids(&healthy), ids(&sick));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let engine =
        EngineClient::new(&format!("unix://{}", a.dir.join("engine.sock").display())).unwrap();
    rt.block_on(async {
        let (sets, rx) = watch::channel(Assignments::default());
        let (reports, mut rep) = mpsc::channel(256);
        let first = tokio::spawn(executor::run(engine.clone(), rx, reports));
        let mut seen = Seen::new();
        let started = std::time::Instant::now();
        sets.send_replace(set.clone());
        until(
            &mut rep,
            &mut seen,
            "two replicas running, one task complete, one failed, one rejected, one healthy, one not",
            |s| {
                is(s, &w1, TaskState::Running)
                    && is(s, &w2, TaskState::Running)
                    && is(s, &once, TaskState::Complete)
                    && is(s, &three, TaskState::Failed)
                    && is(s, &ghost, TaskState::Rejected)
                    && is(s, &healthy, TaskState::Running)
                    && is(s, &sick, TaskState::Failed)
            },
        )
        .await;
        eprintln!("set of 7 tasks converged in {:?}", started.elapsed());
        // A health check holds a task in `starting` until it passes (swarmkit's way).
        let states: Vec<TaskState> = seen[&healthy].iter().map(|s| s.state).collect();
        assert_eq!(states, [TaskState::Preparing, TaskState::Starting, TaskState::Running]);
        let unhealthy = &last(&seen, &sick).unwrap().message;
        assert!(unhealthy.starts_with("unhealthy: probe exit 1"), "{unhealthy}");
        let states: Vec<TaskState> = seen[&w1].iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                TaskState::Preparing,
                TaskState::Starting,
                TaskState::Running
            ]
        );
        let done = last(&seen, &once).unwrap();
        assert_eq!((done.exit_code, done.message.as_str()), (Some(0), "exit 0"));
        let failed = last(&seen, &three).unwrap();
        assert_eq!(
            (failed.exit_code, failed.message.as_str()),
            (Some(3), "exit 3")
        );
        let rejected = &last(&seen, &ghost).unwrap().message;
        assert!(rejected.contains(&ghost_image), "{rejected}");

        // The replicas reach each other by the service's name, over TCP.
        let c1 = last(&seen, &w1)
            .unwrap()
            .container
            .clone()
            .expect("web1's container");
        let c2 = last(&seen, &w2)
            .unwrap()
            .container
            .clone()
            .expect("web2's container");
        let h1 = engine.container(&c1).await.unwrap().hostname;
        let h2 = engine.container(&c2).await.unwrap().hostname;
        // The name answers the virtual address; each connection to it goes to a
        // replica picked at random (20 tries miss the other one with odds of 1e-6).
        let script = "for i in $(seq 20); do wget -qO- http://web/hostname; done";
        for (from, other) in [(&c1, &h2), (&c2, &h1)] {
            let out = ok(&a.orch(&["container", "exec", from, "sh", "-c", script], None));
            assert!(
                out.contains(other.as_str()),
                "{from} did not reach {other} by name: {out}"
            );
        }

        // web2 leaves the set: shut down, its container gone.
        set.version = 2;
        set.tasks.retain(|t| t.meta.id != w2);
        sets.send_replace(set.clone());
        until(&mut rep, &mut seen, "web2 shut down", |s| {
            is(s, &w2, TaskState::Shutdown)
        })
        .await;
        let gone = engine.container(&c2).await.map(|_| ()).unwrap_err();
        assert_eq!(gone.code(), Some(ErrorCode::NotFound), "{gone}");
        assert!(
            is(&seen, &w1, TaskState::Running),
            "web1 was touched: {seen:#?}"
        );

        // The executor goes (as with the agent); web1's container stays running.
        let ContainerStatus::Running { pid, .. } =
            engine.container(&c1).await.unwrap().summary.status
        else {
            panic!("web1 is not running");
        };
        drop(sets);
        tokio::time::timeout(Duration::from_secs(10), first)
            .await
            .expect("the executor ends when its set closes")
            .unwrap();

        // A new executor over the same engine takes web1 over: same container, same process.
        let (sets, rx) = watch::channel(set.clone());
        let (reports, mut rep) = mpsc::channel(256);
        let second = tokio::spawn(executor::run(engine.clone(), rx, reports));
        let mut seen = Seen::new();
        until(&mut rep, &mut seen, "web1 adopted", |s| {
            is(s, &w1, TaskState::Running) && is(s, &once, TaskState::Complete)
        })
        .await;
        let adopted = &seen[&w1];
        assert_eq!(adopted.len(), 1, "{adopted:#?}");
        assert_eq!(adopted[0].container.as_deref(), Some(c1.as_str()));
        let ContainerStatus::Running { pid: again, .. } =
            engine.container(&c1).await.unwrap().summary.status
        else {
            panic!("web1 is not running after the takeover");
        };
        assert_eq!(pid, again, "web1 was restarted");

        // An empty set: every container and the network go.
        set.version = 3;
        set.tasks.clear();
        set.networks.clear();
        sets.send_replace(set.clone());
        until(&mut rep, &mut seen, "web1 shut down", |s| {
            is(s, &w1, TaskState::Shutdown)
        })
        .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let containers = engine.containers(true).await.unwrap();
            let networks = engine.networks().await.unwrap();
            let left: Vec<String> = containers
                .iter()
                .map(|c| c.name.clone())
                .chain(
                    networks
                        .iter()
                        .filter(|n| n.name == net)
                        .map(|n| n.name.clone()),
                )
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "left behind: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(sets);
        tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("the executor ends when its set closes")
            .unwrap();
    });
    a.stop();
    drop(lan);
}
