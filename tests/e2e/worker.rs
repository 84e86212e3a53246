//! The worker's executor against a real engine: an assignment set becomes networks
//! and containers, task states come back as reports, a task taken out of the set is
//! shut down and removed, a new executor over the same engine takes over the
//! running containers without restarting them, an engine that restarts under a
//! running executor loses it no exit, and stack volumes are made with their labels
//! and removed once their containers are gone.

use crate::engine::{Agent, ok};
use agent::testing::lan::Lan;
use agent::worker::executor;
use api::client::EngineClient;
use api::cluster::{Meta, Task, TaskNetwork, TaskState, TaskStatus};
use api::container::ContainerStatus;
use api::error::ErrorCode;
use api::network::{EndpointMode, NetworkCreate, ServiceEndpoint};
use api::service::{Healthcheck, MountType, PortMode, PortSpec, ServiceSpec, ServiceVolume};
use api::session::{Assignments, NetworkAssignment, TaskReport};
use api::units::Duration as Span;
use api::volume::VolumeCreate;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Reports by task, in the order they came.
type Seen = BTreeMap<String, Vec<TaskStatus>>;

/// An engine on a test host with an address on a private lan (the overlay's tunnel
/// end), and a runtime for executors. Dropped in this order: the runtime (its
/// executors end), the lan, then the engine with its containers and namespaces.
struct Node {
    rt: tokio::runtime::Runtime,
    engine: EngineClient,
    _lan: Lan,
    agent: Agent,
    /// Per-run prefix of stack, task and network names.
    prefix: String,
}

impl Node {
    /// A node, or `None` (having said why) when the busybox image cannot be made.
    fn start(tag: &str) -> Option<Node> {
        let agent = Agent::start(&format!("worker-{tag}"));
        if !agent.busybox() {
            return None;
        }
        let lan = Lan::new(&agent.dir.join("lan.netns")).unwrap();
        lan.plug(&agent.host(), "wk", [10, 98, 0, 1].into())
            .unwrap();
        let endpoint = format!("unix://{}", agent.dir.join("engine.sock").display());
        Some(Node {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            engine: EngineClient::new(&endpoint).unwrap(),
            _lan: lan,
            agent,
            prefix: format!("w{}{tag}", std::process::id()),
        })
    }

    /// An executor over this node's engine, its set starting as `first`.
    fn executor(&self, first: Assignments) -> Executor {
        let (sets, rx) = watch::channel(first);
        let (tx, reports) = mpsc::channel(256);
        let (removed_tx, removed) = mpsc::channel(256);
        let files = self.agent.dir.join("task-files");
        let archive = agent::worker::archive::LogArchive::new(self.agent.dir.join("task-logs"));
        let handle = self.rt.spawn(executor::run(
            self.engine.clone(),
            rx,
            tx,
            removed_tx,
            files,
            archive,
        ));
        Executor {
            sets,
            reports,
            removed,
            handle,
            seen: Seen::new(),
        }
    }

    /// A task of service `name` of this run's stack.
    fn task(&self, id: &str, name: &str, slot: u64, spec: ServiceSpec) -> Task {
        Task {
            meta: Meta::new(format!("{}{id}", self.prefix)),
            service: format!("{}-{name}", self.prefix),
            stack: self.prefix.clone(),
            name: name.to_owned(),
            slot,
            desired_state: TaskState::Running,
            spec,
            ..Task::default()
        }
    }

    /// The overlay network of this run.
    fn net(&self) -> String {
        format!("{}_front", self.prefix)
    }

    /// A replica of `web` (an HTTP server of its /etc) on the overlay at `ip`.
    fn web(&self, id: &str, slot: u64, ip: &str) -> Task {
        let mut t = self.task(
            id,
            "web",
            slot,
            busybox(&["httpd", "-f", "-p", "80", "-h", "/etc"]),
        );
        t.networks = vec![TaskNetwork {
            network: self.net(),
            address: format!("{ip}/24"),
            aliases: Vec::new(),
        }];
        t
    }

    /// The overlay, with service `web` (virtual address .100) on `backends`.
    fn overlay(&self, backends: &[&str]) -> NetworkAssignment {
        NetworkAssignment {
            create: NetworkCreate {
                name: self.net(),
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
                backends: backends.iter().map(|b| b.parse().unwrap()).collect(),
            }],
            ingress: None,
        }
    }

    /// Wait until the engine has no container and not the overlay any more.
    async fn empty(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let containers = self.engine.containers(true).await.unwrap();
            let networks = self.engine.networks().await.unwrap();
            let left: Vec<String> = containers
                .iter()
                .map(|c| c.name.clone())
                .chain(networks.into_iter().map(|n| n.name))
                .filter(|n| n != "bridge")
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "left behind: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A running executor and what it reported.
struct Executor {
    sets: watch::Sender<Assignments>,
    reports: mpsc::Receiver<TaskReport>,
    /// Volumes the executor confirmed removed.
    removed: mpsc::Receiver<String>,
    handle: tokio::task::JoinHandle<()>,
    seen: Seen,
}

impl Executor {
    /// Collect reports until `done` holds of them; fails after a minute, showing them.
    async fn until(&mut self, what: &str, done: impl Fn(&Seen) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(&self.seen) {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(r)) => self.seen.entry(r.task).or_default().push(r.status),
                Ok(None) => panic!("the executor stopped before {what}: {:#?}", self.seen),
                Err(_) => panic!("no {what} within a minute: {:#?}", self.seen),
            }
        }
    }

    /// The last status reported for `task`.
    fn last(&self, task: &Task) -> &TaskStatus {
        self.seen
            .get(&task.meta.id)
            .and_then(|s| s.last())
            .unwrap_or_else(|| panic!("nothing reported for {}", task.meta.id))
    }

    /// The states reported for `task`, in order.
    fn states(&self, task: &Task) -> Vec<TaskState> {
        self.seen[&task.meta.id].iter().map(|s| s.state).collect()
    }

    /// The container of `task`, as reported.
    fn container(&self, task: &Task) -> String {
        self.last(task)
            .container
            .clone()
            .unwrap_or_else(|| panic!("no container reported for {}", task.meta.id))
    }

    /// Close the set: the executor ends, its containers stay.
    async fn close(self) {
        drop(self.sets);
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the executor ends when its set closes")
            .unwrap();
    }
}

fn is(seen: &Seen, task: &Task, state: TaskState) -> bool {
    seen.get(&task.meta.id)
        .and_then(|s| s.last())
        .is_some_and(|s| s.state == state)
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

/// `GET /hostname` on `addr` from inside the node's host.
fn get_hostname(node: &Node, addr: &str) -> String {
    let addr = addr.to_owned();
    node.agent.on_host(move || {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect to the published port");
        s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    })
}

#[test]
fn executor_runs_a_set_and_reports_each_task_state() {
    let Some(node) = Node::start("run") else {
        return;
    };
    let web1 = node.web("web1", 1, "10.231.0.11");
    let web2 = node.web("web2", 2, "10.231.0.12");
    let once = node.task("once", "once", 1, busybox(&["sh", "-c", "exit 0"]));
    let three = node.task("three", "three", 1, busybox(&["sh", "-c", "exit 3"]));
    let ghost_image = format!("127.0.0.1:9/{}-ghost:1", node.prefix);
    let ghost = node.task(
        "ghost",
        "ghost",
        1,
        ServiceSpec {
            image: Some(ghost_image.clone()),
            ..ServiceSpec::default()
        },
    );
    let probe = |test: &str| ServiceSpec {
        healthcheck: Some(Healthcheck {
            test: vec!["CMD".into(), test.into()],
            interval: Some(Span(300_000_000)),
            retries: Some(1),
            ..Healthcheck::default()
        }),
        ..busybox(&["sleep", "60"])
    };
    let healthy = node.task("healthy", "healthy", 1, probe("true"));
    let sick = node.task("sick", "sick", 1, probe("false"));
    // On the overlay, with a port published on the node (through the gateway bridge).
    let mut published = node.web("pub", 3, "10.231.0.13");
    published.spec.ports = vec![PortSpec {
        mode: PortMode::Host,
        target: 80,
        published: Some("18081".into()),
        ..PortSpec::default()
    }];
    let tasks = [
        &web1, &web2, &once, &three, &ghost, &healthy, &sick, &published,
    ];
    let set = Assignments {
        version: 1,
        addr: Some("10.98.0.1".into()),
        tasks: tasks.iter().map(|t| (*t).clone()).collect(),
        networks: vec![node.overlay(&["10.231.0.11", "10.231.0.12"])],
        ..Assignments::default()
    };

    node.rt.block_on(async {
        let started = std::time::Instant::now();
        let mut ex = node.executor(Assignments::default());
        ex.sets.send_replace(set.clone());
        ex.until("every task in its state", |s| {
            is(s, &web1, TaskState::Running)
                && is(s, &web2, TaskState::Running)
                && is(s, &published, TaskState::Running)
                && is(s, &once, TaskState::Complete)
                && is(s, &three, TaskState::Failed)
                && is(s, &ghost, TaskState::Rejected)
                && is(s, &healthy, TaskState::Running)
                && is(s, &sick, TaskState::Failed)
        })
        .await;
        eprintln!("{} tasks settled in {:?}", tasks.len(), started.elapsed());
        let up = [
            TaskState::Preparing,
            TaskState::Starting,
            TaskState::Running,
        ];
        assert_eq!(ex.states(&web1), up);
        // A health check holds a task in `starting` until it passes (swarmkit's way).
        assert_eq!(ex.states(&healthy), up);
        let unhealthy = &ex.last(&sick).message;
        assert!(
            unhealthy.starts_with("unhealthy: probe exit 1"),
            "{unhealthy}"
        );
        let done = ex.last(&once);
        assert_eq!((done.exit_code, done.message.as_str()), (Some(0), "exit 0"));
        let failed = ex.last(&three);
        assert_eq!(
            (failed.exit_code, failed.message.as_str()),
            (Some(3), "exit 3")
        );
        let rejected = &ex.last(&ghost).message;
        assert!(rejected.contains(&ghost_image), "{rejected}");
        assert_eq!(ex.last(&ghost).container, None);

        // The replicas reach each other by the service's name, over TCP: the name
        // answers the virtual address, and each connection to it goes to a replica
        // picked at random (20 tries miss the other one with odds of 1e-6).
        let (c1, c2) = (ex.container(&web1), ex.container(&web2));
        let h1 = node.engine.container(&c1).await.unwrap().hostname;
        let h2 = node.engine.container(&c2).await.unwrap().hostname;
        let script = "for i in $(seq 20); do wget -qO- http://web/hostname; done";
        for (from, other) in [(&c1, &h2), (&c2, &h1)] {
            let out = ok(&node
                .agent
                .orch(&["container", "exec", from, "sh", "-c", script], None));
            assert!(
                out.contains(other.as_str()),
                "{from} did not reach {other} by name: {out}"
            );
        }
        let h3 = node
            .engine
            .container(&ex.container(&published))
            .await
            .unwrap()
            .hostname;
        let answer = get_hostname(&node, "127.0.0.1:18081");
        assert!(answer.contains(&h3), "{answer}");

        // An empty set: every container and the network go.
        ex.sets.send_replace(Assignments {
            version: 2,
            ..Assignments::default()
        });
        ex.until("the running tasks shut down", |s| {
            [&web1, &web2, &published, &healthy]
                .iter()
                .all(|t| is(s, t, TaskState::Shutdown))
        })
        .await;
        // Tasks that ended keep their final state.
        assert_eq!(ex.last(&once).state, TaskState::Complete);
        node.empty().await;
        ex.close().await;
    });
}

#[test]
fn executor_shuts_down_what_leaves_the_set_and_a_new_one_adopts_the_rest() {
    let Some(node) = Node::start("adopt") else {
        return;
    };
    let web1 = node.web("web1", 1, "10.231.0.11");
    let web2 = node.web("web2", 2, "10.231.0.12");
    let mut set = Assignments {
        version: 1,
        addr: Some("10.98.0.1".into()),
        tasks: vec![web1.clone(), web2.clone()],
        networks: vec![node.overlay(&["10.231.0.11", "10.231.0.12"])],
        ..Assignments::default()
    };
    node.rt.block_on(async {
        let mut ex = node.executor(set.clone());
        ex.until("two replicas running", |s| {
            is(s, &web1, TaskState::Running) && is(s, &web2, TaskState::Running)
        })
        .await;
        let (c1, c2) = (ex.container(&web1), ex.container(&web2));

        // web2 leaves the set: shut down, its container gone; web1 untouched.
        set.version = 2;
        set.tasks.retain(|t| t.meta.id != web2.meta.id);
        set.networks = vec![node.overlay(&["10.231.0.11"])];
        ex.sets.send_replace(set.clone());
        ex.until("web2 shut down", |s| is(s, &web2, TaskState::Shutdown))
            .await;
        let gone = node.engine.container(&c2).await.map(|_| ()).unwrap_err();
        assert_eq!(gone.code(), Some(ErrorCode::NotFound), "{gone}");
        assert_eq!(ex.states(&web1).last(), Some(&TaskState::Running));

        // The executor goes (as with the agent); web1's container keeps running.
        let running = |status| match status {
            ContainerStatus::Running { pid, .. } => pid,
            other => panic!("web1 is not running: {other:?}"),
        };
        let pid = running(node.engine.container(&c1).await.unwrap().summary.status);
        ex.close().await;

        // A new executor over the same engine takes web1 over: same container, same
        // process, its state reported once.
        let mut ex = node.executor(set.clone());
        ex.until("web1 adopted", |s| is(s, &web1, TaskState::Running))
            .await;
        assert_eq!(ex.states(&web1), [TaskState::Running]);
        assert_eq!(ex.container(&web1), c1);
        let again = running(node.engine.container(&c1).await.unwrap().summary.status);
        assert_eq!(pid, again, "web1 was restarted");

        ex.sets.send_replace(Assignments {
            version: 3,
            ..Assignments::default()
        });
        ex.until("web1 shut down", |s| is(s, &web1, TaskState::Shutdown))
            .await;
        node.empty().await;
        ex.close().await;
    });
}

#[test]
fn executor_keeps_watching_a_task_across_an_engine_restart() {
    let Some(mut node) = Node::start("crash") else {
        return;
    };
    let web1 = node.web("web1", 1, "10.231.0.11");
    let set = Assignments {
        version: 1,
        addr: Some("10.98.0.1".into()),
        tasks: vec![web1.clone()],
        networks: vec![node.overlay(&["10.231.0.11"])],
        ..Assignments::default()
    };
    let mut ex = node.executor(set);
    node.rt
        .block_on(ex.until("web1 running", |s| is(s, &web1, TaskState::Running)));
    let c1 = ex.container(&web1);

    // The engine dies and comes back; the container runs on under its shim, and the
    // executor, waiting on it all along, sees it end afterwards.
    node.agent.crash();
    node.agent.restart();
    ok(&node
        .agent
        .orch(&["container", "kill", "--signal", "KILL", &c1], None));
    node.rt.block_on(async {
        ex.until("web1 failed", |s| is(s, &web1, TaskState::Failed))
            .await;
        let failed = ex.last(&web1);
        assert_eq!(failed.exit_code, Some(137), "{failed:?}");
        assert_eq!(failed.message, "exit 137");
        assert_eq!(ex.states(&web1).last(), Some(&TaskState::Failed));
        ex.sets.send_replace(Assignments {
            version: 2,
            ..Assignments::default()
        });
        node.empty().await;
        ex.close().await;
    });
}

#[test]
fn executor_makes_stack_volumes_and_removes_them_once_their_container_is_gone() {
    let Some(node) = Node::start("volumes") else {
        return;
    };
    let data = format!("{}_data", node.prefix);
    let absent = format!("{}_absent", node.prefix);
    let kept = format!("{}_kept", node.prefix);
    let mut spec = busybox(&["sh", "-c", "echo hello > /data/greeting; exec sleep 600"]);
    spec.volumes.push(ServiceVolume {
        kind: MountType::Volume,
        source: Some(data.clone()),
        target: "/data".into(),
        ..ServiceVolume::default()
    });
    let writer = node.task("writer", "writer", 1, spec);
    let labels: BTreeMap<String, String> = [
        ("orch.stack".to_owned(), node.prefix.clone()),
        ("tier".to_owned(), "db".to_owned()),
    ]
    .into();
    let mut set = Assignments {
        version: 1,
        tasks: vec![writer.clone()],
        volumes: vec![VolumeCreate {
            name: data.clone(),
            labels,
        }],
        ..Assignments::default()
    };
    node.rt.block_on(async {
        node.engine
            .create_volume(&VolumeCreate {
                name: kept.clone(),
                labels: BTreeMap::new(),
            })
            .await
            .unwrap();
        let mut ex = node.executor(set.clone());
        ex.until("the writer running", |s| is(s, &writer, TaskState::Running))
            .await;
        let volume = node.engine.volume(&data).await.unwrap();
        assert_eq!(volume.labels["tier"], "db", "made with its labels");
        assert_eq!(volume.used_by.len(), 1);

        // Shut down, with its volume (and one the node never had) to remove.
        set.version = 2;
        set.tasks[0].desired_state = TaskState::Shutdown;
        set.volumes.clear();
        set.volume_removals = vec![absent.clone(), data.clone()];
        ex.sets.send_replace(set.clone());
        let mut confirmed = Vec::new();
        while confirmed.len() < 2 {
            let next = tokio::time::timeout(Duration::from_secs(60), ex.removed.recv()).await;
            let name = next
                .unwrap_or_else(|_| panic!("no removal confirmed within a minute: {confirmed:?}"))
                .expect("the executor runs");
            if name == data {
                // Confirmed only once the writer's container is gone.
                let containers = node.engine.containers(true).await.unwrap();
                assert!(containers.is_empty(), "still there: {containers:?}");
            }
            confirmed.push(name);
        }
        assert_eq!(
            confirmed,
            [absent.clone(), data.clone()],
            "the absent one at once"
        );
        let gone = node.engine.volume(&data).await.map(|_| ()).unwrap_err();
        assert_eq!(gone.code(), Some(ErrorCode::NotFound), "{gone}");
        node.engine
            .volume(&kept)
            .await
            .expect("a volume not named is kept");
        node.engine.remove_volume(&kept, false).await.unwrap();
        ex.close().await;
    });
}
