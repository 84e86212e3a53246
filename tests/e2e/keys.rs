//! Compose keys the engine honours beyond its defaults, each proved from inside a
//! real busybox container: a service spec goes through the worker's mapping
//! ([`executor::container_create`]) to the engine's API, runs to its end, and its
//! output says what the kernel gave it; the same settings as `orch container run`
//! flags, kept by `exec`; and the settings that would reach into the host refused.

use crate::engine::{Agent, fails, ok};
use agent::worker::executor;
use api::client::EngineClient;
use api::cluster::{Meta, Task};
use api::container::ContainerCreate;
use api::service::ServiceSpec;
use api::units::Bytes;

/// An engine with the busybox image and a runtime for its client.
struct Engine {
    rt: tokio::runtime::Runtime,
    client: EngineClient,
    agent: Agent,
}

impl Engine {
    /// An engine, or `None` (having said why) when the busybox image cannot be made.
    fn start(tag: &str) -> Option<Engine> {
        let agent = Agent::start(&format!("keys-{tag}"));
        if !agent.busybox() {
            return None;
        }
        let endpoint = format!("unix://{}", agent.dir.join("engine.sock").display());
        Some(Engine {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: EngineClient::new(&endpoint).unwrap(),
            agent,
        })
    }

    /// Task `id` of a service running `sh -c script` with `spec`'s other keys.
    fn task(id: &str, script: &str, spec: ServiceSpec) -> Task {
        Task {
            meta: Meta::new(format!("k{}{id}", std::process::id())),
            service: id.to_owned(),
            name: id.to_owned(),
            slot: 1,
            spec: ServiceSpec {
                image: Some("busybox".into()),
                command: Some(vec!["sh".into(), "-c".into(), script.into()]),
                ..spec
            },
            ..Task::default()
        }
    }

    /// Run `script` as task `id` with `spec` to its end; its exit code and output.
    /// The container is removed either way.
    fn run(&self, id: &str, script: &str, spec: ServiceSpec) -> (i32, String) {
        let create = executor::container_create(&Engine::task(id, script, spec))
            .expect("the worker maps the spec");
        let c = &self.client;
        let created = self
            .rt
            .block_on(c.create_container(&create))
            .expect("the engine creates the container");
        let exit = self.rt.block_on(async {
            c.start_container(&created.id).await?;
            c.wait_container(&created.id).await
        });
        let logs = self.agent.orch(&["container", "logs", &created.id], None);
        let _ = self.rt.block_on(c.remove_container(&created.id, true));
        let exit = exit.expect("the container starts and ends");
        (exit.exit_code, ok(&logs))
    }

    /// The engine's refusal of task `id` with `spec`.
    fn refusal(&self, id: &str, spec: ServiceSpec) -> String {
        self.refusal_of(
            &executor::container_create(&Engine::task(id, "true", spec))
                .expect("the worker maps the spec"),
        )
    }

    /// The engine's refusal of `create` (sent as is, past the worker's checks).
    fn refusal_of(&self, create: &ContainerCreate) -> String {
        match self.rt.block_on(self.client.create_container(create)) {
            Ok(c) => {
                let _ = self.rt.block_on(self.client.remove_container(&c.id, true));
                panic!("the engine took {create:?}")
            }
            Err(e) => e.to_string(),
        }
    }
}

/// The options of the mount on `target` in /proc/mounts text.
fn mount_options<'a>(mounts: &'a str, target: &str) -> &'a str {
    mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(target))
        .and_then(|l| l.split(' ').nth(3))
        .unwrap_or_else(|| panic!("no mount on {target} in {mounts}"))
}

#[test]
fn shm_size_sizes_the_containers_dev_shm() {
    let Some(e) = Engine::start("shm") else {
        return;
    };
    let spec = ServiceSpec {
        shm_size: Some(Bytes(256 << 20)),
        ..ServiceSpec::default()
    };
    let script = "cat /proc/mounts; df -k /dev/shm";
    let (code, out) = e.run("shm", script, spec);
    assert_eq!(code, 0, "{out}");
    assert!(
        mount_options(&out, "/dev/shm").contains("size=262144k"),
        "{out}"
    );
    let df = out.lines().last().unwrap_or_default();
    assert_eq!(df.split_whitespace().nth(1), Some("262144"), "{out}");
    // Without it: Docker's 64 MiB.
    let (_, out) = e.run("shm-default", "cat /proc/mounts", ServiceSpec::default());
    assert!(
        mount_options(&out, "/dev/shm").contains("size=65536k"),
        "{out}"
    );
}

#[test]
fn group_add_gives_the_process_supplementary_groups() {
    let Some(e) = Engine::start("groups") else {
        return;
    };
    // busybox's /etc/group: root (0) and nogroup (65534).
    let spec = || ServiceSpec {
        group_add: vec!["nogroup".into(), "1234".into()],
        ..ServiceSpec::default()
    };
    let (code, out) = e.run("groups", "grep ^Groups: /proc/self/status; id -G", spec());
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "Groups:\t0 1234 65534 \n0 1234 65534\n");
    let other = ServiceSpec {
        user: Some("nobody".into()),
        ..spec()
    };
    let (_, out) = e.run("groups-nobody", "id", other);
    assert_eq!(
        out,
        "uid=65534(nobody) gid=65534(nogroup) groups=1234,65534(nogroup)\n"
    );
    let unknown = ServiceSpec {
        group_add: vec!["nogroup".into(), "wheel".into()],
        ..ServiceSpec::default()
    };
    let why = e.refusal("groups-unknown", unknown);
    assert!(
        why.contains("group_add[1] \"wheel\": no such group in the image's /etc/group"),
        "{why}"
    );
}

#[test]
fn dns_search_and_dns_opt_are_written_to_resolv_conf() {
    let Some(e) = Engine::start("dns") else {
        return;
    };
    let spec = ServiceSpec {
        dns_search: vec!["corp.example".into(), "example.com".into()],
        dns_opt: vec!["timeout:1".into(), "ndots:2".into()],
        ..ServiceSpec::default()
    };
    let (code, out) = e.run("dns", "cat /etc/resolv.conf", spec);
    assert_eq!(code, 0, "{out}");
    // The embedded resolver's nameserver stays; its ndots:0 gives way to ndots:2.
    assert_eq!(
        out,
        "nameserver 127.0.0.11\nsearch corp.example example.com\noptions timeout:1 ndots:2\n"
    );
    let bad = ServiceSpec {
        dns_opt: vec!["ndots:1\nnameserver 6.6.6.6".into()],
        ..ServiceSpec::default()
    };
    let task = Engine::task("dns-bad", "true", bad);
    let why = executor::container_create(&task).unwrap_err().to_string();
    assert!(why.starts_with("dns_opt[0]: "), "{why}");
}

#[test]
fn oom_score_adj_is_set_on_the_containers_processes() {
    let Some(e) = Engine::start("oom") else {
        return;
    };
    let spec = ServiceSpec {
        oom_score_adj: Some(500),
        ..ServiceSpec::default()
    };
    // The command and the processes it starts.
    let script = "cat /proc/self/oom_score_adj; cat /proc/1/oom_score_adj";
    let (code, out) = e.run("oom", script, spec);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "500\n500\n");
    let (_, out) = e.run("oom-default", script, ServiceSpec::default());
    assert_ne!(out, "500\n500\n", "{out}");
    let over = ServiceSpec {
        oom_score_adj: Some(1001),
        ..ServiceSpec::default()
    };
    let why = executor::container_create(&Engine::task("oom-over", "true", over))
        .unwrap_err()
        .to_string();
    assert!(
        why.starts_with("oom_score_adj: 1001 is out of range"),
        "{why}"
    );
    let mut create =
        executor::container_create(&Engine::task("oom-api", "true", ServiceSpec::default()))
            .unwrap();
    create.oom_score_adj = Some(-2000);
    let why = e.refusal_of(&create);
    assert!(
        why.contains("oom_score_adj: -2000 is out of range"),
        "{why}"
    );
    // Lowering it needs CAP_SYS_RESOURCE: where the engine lacks it, the start fails
    // saying so.
    create.oom_score_adj = Some(-500);
    create.cmd = vec!["cat".into(), "/proc/self/oom_score_adj".into()];
    let c = e.rt.block_on(e.client.create_container(&create)).unwrap();
    // (A container whose start failed stays created: waiting for it would block.)
    let started = e.rt.block_on(e.client.start_container(&c.id)).map(|()| {
        let exit = e.rt.block_on(e.client.wait_container(&c.id));
        (exit, e.agent.orch(&["container", "logs", &c.id], None))
    });
    let _ = e.rt.block_on(e.client.remove_container(&c.id, true));
    match started {
        Ok((exit, logs)) => {
            assert_eq!(exit.unwrap().exit_code, 0);
            assert_eq!(ok(&logs), "-500\n");
        }
        Err(err) => {
            let why = err.to_string();
            eprintln!("oom_score_adj -500 refused here: {why}");
            assert!(
                why.contains("oom_score_adj: write -500 to /proc/self/oom_score_adj")
                    && why.contains("CAP_SYS_RESOURCE"),
                "{why}"
            );
        }
    }
}

#[test]
fn domainname_names_the_containers_nis_domain() {
    let Some(e) = Engine::start("domain") else {
        return;
    };
    let spec = ServiceSpec {
        hostname: Some("db".into()),
        domainname: Some("corp.example".into()),
        ..ServiceSpec::default()
    };
    let script = "cat /proc/sys/kernel/domainname; hostname";
    let (code, out) = e.run("domain", script, spec);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "corp.example\ndb\n");
    let (_, out) = e.run("domain-default", script, ServiceSpec::default());
    assert!(out.starts_with("(none)\n"), "{out}");
    let why = e.refusal_of(&ContainerCreate {
        image: "busybox".into(),
        domainname: Some("a\nb".into()),
        ..ContainerCreate::default()
    });
    assert!(
        why.contains("domainname: \"a\\nb\": at most 64 bytes"),
        "{why}"
    );
}

/// A file in the host's /dev/shm, removed on drop.
struct HostShm(std::path::PathBuf);

impl Drop for HostShm {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn ipc_host_shares_the_hosts_ipc_namespace_and_dev_shm() {
    let Some(e) = Engine::start("ipc") else {
        return;
    };
    let name = format!("orch-e2e-keys-{}", std::process::id());
    let file = HostShm(std::path::Path::new("/dev/shm").join(&name));
    std::fs::write(&file.0, "from the host\n").unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let script = format!("readlink /proc/self/ns/ipc; cat /dev/shm/{name} 2>&1");
    let spec = ServiceSpec {
        ipc: Some("host".into()),
        ..ServiceSpec::default()
    };
    let (code, out) = e.run("ipc", &script, spec);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("{}\nfrom the host\n", host_ns.display()),
        "the host's namespace and /dev/shm"
    );
    // Its own (the default): another namespace, an empty /dev/shm.
    let (_, out) = e.run("ipc-own", &script, ServiceSpec::default());
    assert!(!out.starts_with(&*host_ns.to_string_lossy()), "{out}");
    assert!(out.contains("No such file"), "{out}");
    // Settings that would be the host's are refused.
    let shm = ServiceSpec {
        ipc: Some("host".into()),
        sysctls: [("kernel.shmmax".to_owned(), "1".to_owned())].into(),
        ..ServiceSpec::default()
    };
    let why = executor::container_create(&Engine::task("ipc-sysctl", "true", shm))
        .unwrap_err()
        .to_string();
    assert!(
        why.starts_with("ipc: host: kernel.shmmax cannot be set"),
        "{why}"
    );
}

#[test]
fn pid_host_shares_the_hosts_pid_namespace_and_leaves_nothing_running() {
    let Some(e) = Engine::start("pid") else {
        return;
    };
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let me = std::process::id();
    // It sees this test's process; what it starts in the background ends with it.
    let script = format!(
        "readlink /proc/self/ns/pid; [ $$ != 1 ] && echo not-pid-1; \
         [ -e /proc/{me} ] && echo sees-the-host; sleep 300 & echo $!"
    );
    let spec = ServiceSpec {
        pid: Some("host".into()),
        ..ServiceSpec::default()
    };
    let (code, out) = e.run("pid", &script, spec);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [&*host_ns.to_string_lossy(), "not-pid-1", "sees-the-host"],
        "{out}"
    );
    let sleep: u32 = lines[3].parse().expect("the sleep's host pid");
    let gone = (0..100).any(|_| {
        let status = std::fs::read_to_string(format!("/proc/{sleep}/status")).unwrap_or_default();
        if status.is_empty() || status.contains("State:\tZ") {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    });
    assert!(gone, "sleep {sleep} outlived its container");
    // Its own (the default): pid 1 of another namespace.
    let (_, out) = e.run("pid-own", &script, ServiceSpec::default());
    assert!(!out.starts_with(&*host_ns.to_string_lossy()), "{out}");
    assert!(
        !out.contains("not-pid-1") && !out.contains("sees-the-host"),
        "{out}"
    );
}

#[test]
fn run_flags_and_exec_keep_the_settings() {
    let Some(e) = Engine::start("flags") else {
        return;
    };
    let a = &e.agent;
    let name = format!("flags{}", std::process::id());
    ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "--name",
            &name,
            "--pid",
            "host",
            "--group-add",
            "1234",
            "--shm-size",
            "1m",
            "--dns-search",
            "corp.example",
            "busybox",
            "sleep",
            "60",
        ],
        None,
    ));
    let exec = |args: &[&str]| a.orch(&[&["container", "exec"][..], args].concat(), None);
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let out = exec(&[&name, "readlink", "/proc/self/ns/pid"]);
    let script = "grep ^Groups: /proc/self/status; grep /dev/shm /proc/mounts; grep ^search /etc/resolv.conf";
    let as_nobody = exec(&["-u", "nobody", &name, "sh", "-c", script]);
    ok(&a.orch(&["container", "rm", "-f", &name], None));
    assert_eq!(
        ok(&out).trim(),
        host_ns.to_string_lossy(),
        "exec joins the host's"
    );
    let as_nobody = ok(&as_nobody);
    assert!(
        as_nobody.starts_with("Groups:\t1234 65534 \n"),
        "{as_nobody}"
    );
    assert!(as_nobody.contains("size=1024k"), "{as_nobody}");
    assert!(as_nobody.ends_with("search corp.example\n"), "{as_nobody}");
}

#[test]
fn net_sysctls_are_refused_in_the_hosts_network_namespace() {
    let Some(e) = Engine::start("netsysctl") else {
        return;
    };
    let a = &e.agent;
    let path = "/proc/sys/net/ipv4/tcp_keepalive_time";
    let before = a.on_host(|| std::fs::read_to_string(path).unwrap());
    let run = |network: &str| {
        a.orch(
            &[
                "container",
                "run",
                "--rm",
                "--network",
                network,
                "--sysctl",
                "net.ipv4.tcp_keepalive_time=4242",
                "busybox",
                "cat",
                path,
            ],
            None,
        )
    };
    fails(
        &run("host"),
        "sysctls.net.ipv4.tcp_keepalive_time: network_mode host gives no network namespace of its own",
    );
    assert_eq!(a.on_host(|| std::fs::read_to_string(path).unwrap()), before);
    // In its own namespace the setting is its own.
    assert_eq!(ok(&run("bridge")), "4242\n");
    assert_eq!(a.on_host(|| std::fs::read_to_string(path).unwrap()), before);
}

#[test]
fn pid_host_with_init_adopts_the_orphans() {
    let Some(e) = Engine::start("pidinit") else {
        return;
    };
    // The command's parent is orch's init; an orphaned sleep is reparented to it.
    let script = "(sleep 30 & echo $! > /tmp/orphan); sleep 0.3; \
                  grep ^PPid: /proc/$(cat /tmp/orphan)/status | tr -d '\\t'; echo PPid:$PPID";
    let spec = ServiceSpec {
        pid: Some("host".into()),
        init: Some(true),
        ..ServiceSpec::default()
    };
    let (code, out) = e.run("pidinit", script, spec);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], lines[1], "{out}");
}

#[test]
fn group_add_in_a_user_namespace_must_be_mapped() {
    let Some(e) = Engine::start("groups-userns") else {
        return;
    };
    let run = |group: &str| {
        e.agent.orch(
            &[
                "container",
                "run",
                "--rm",
                "--uidmap",
                "0:100000:1000",
                "--group-add",
                group,
                "busybox",
                "grep",
                "^Groups:",
                "/proc/self/status",
            ],
            None,
        )
    };
    assert_eq!(ok(&run("500")), "Groups:\t0 500 \n");
    fails(&run("5000"), "supplementary group");
}

#[test]
fn uts_host_shares_the_hosts_names() {
    let Some(e) = Engine::start("uts") else {
        return;
    };
    let host_ns = std::fs::read_link("/proc/self/ns/uts").unwrap();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let script = "readlink /proc/self/ns/uts; hostname; cat /etc/hostname";
    let spec = ServiceSpec {
        uts: Some("host".into()),
        ..ServiceSpec::default()
    };
    let (code, out) = e.run("uts", script, spec);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("{}\n{host_name}{host_name}", host_ns.display()),
        "the host's namespace and name, in /etc/hostname too"
    );
    let (_, out) = e.run("uts-own", script, ServiceSpec::default());
    assert!(!out.starts_with(&*host_ns.to_string_lossy()), "{out}");
    let named = ServiceSpec {
        uts: Some("host".into()),
        hostname: Some("db".into()),
        ..ServiceSpec::default()
    };
    let why = executor::container_create(&Engine::task("uts-named", "true", named))
        .unwrap_err()
        .to_string();
    assert!(
        why.starts_with("uts: host: hostname cannot be set"),
        "{why}"
    );
}
