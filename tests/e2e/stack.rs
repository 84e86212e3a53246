//! The main job through the `orch` binary: `orch up` with no cluster configured
//! starts a local one (a manager that also runs the engine), deploys a stack of three
//! services — a web service with a published port answering HTTP, a backend reached
//! by its DNS names (`api`, `api.shop`), a one-shot check — and waits until it converged; `orch scale`;
//! a changed spec rolls out; `orch down` leaves no container, network or namespace.
//!
//! Everything runs inside a network namespace of the test's own (its "host"): the
//! local cluster's API on that namespace's loopback, its bridges, rules and ports.

use super::engine::{kill_containers, ok, remove_netns};
use agent::engine::network::{link, netns};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A test host with its own network namespace; `orch` commands run in it with the
/// local cluster's places under `dir`. Drop stops the local cluster and removes
/// its containers, namespaces and files.
pub(crate) struct LocalHost {
    pub(crate) dir: PathBuf,
}

impl LocalHost {
    pub(crate) fn new(tag: &str) -> LocalHost {
        let dir = std::env::temp_dir().join(format!("orch-e2e-local-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let host = dir.join("host.netns");
        netns::create(&host).expect("create the test host's network namespace");
        link::netlink(Some(&host), |nl| async move { nl.up("lo").await })
            .expect("bring the test host's loopback up");
        LocalHost { dir }
    }

    fn engine_data(&self) -> PathBuf {
        self.dir.join("local/engine")
    }

    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let host = std::fs::File::open(self.dir.join("host.netns")).expect("open the test host");
        let mut cmd = Command::new(program);
        cmd.env("ORCH_LOCAL_DIR", self.dir.join("local"))
            .env("ORCH_CONFIG_DIR", self.dir.join("cfg"))
            .env("ORCH_CONFIG", self.dir.join("cfg"))
            .env("ORCH_LOCAL_PORT", "4242")
            .env(
                "ORCH_ENGINE",
                format!("unix://{}", self.dir.join("local/engine.sock").display()),
            )
            .env("ORCH", env!("CARGO_BIN_EXE_orch"))
            .env_remove("ORCH_HOST")
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        let fd = host.as_raw_fd();
        // SAFETY: setns is async-signal-safe; the command runs on the test host. The
        // file stays open until exec (it is moved into the closure).
        unsafe {
            cmd.pre_exec(move || {
                let _keep = &host;
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    pub(crate) fn orch(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_orch"));
        cmd.args(args);
        cmd.output().expect("run orch")
    }

    /// Start the local cluster with an empty stack (`boot`, its service has no task:
    /// images come from this host only) and import busybox into its engine;
    /// returns what `up` said.
    pub(crate) fn boot(&self) -> String {
        std::fs::write(
            self.dir.join("boot.yaml"),
            "name: boot\nservices:\n  idle:\n    image: busybox\n    deploy:\n      replicas: 0\n",
        )
        .unwrap();
        let out = self.orch(&["up", "-d", "-f", "boot.yaml"]);
        assert!(out.status.success(), "{}", text(&out));
        let mut import = self.command("bash");
        import.arg(super::repo().join("scripts/busybox-image"));
        ok(&import.output().expect("import busybox"));
        text(&out)
    }

    /// `GET http://127.0.0.1:PORT/` on the test host.
    fn http_get(&self, port: u16) -> Result<String, String> {
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        netns::run_in(Some(&self.dir.join("host.netns")), move || {
            http_get(to, "/")
        })
        .map_err(|e| e.to_string())?
    }

    /// The pids of processes whose command line names this host's directory.
    fn cluster_pids(&self) -> Vec<i32> {
        let needle = self.dir.join("local").display().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                    .unwrap_or(false)
            })
            .collect()
    }
}

impl Drop for LocalHost {
    fn drop(&mut self) {
        kill_containers(&self.engine_data());
        for pid in self.cluster_pids() {
            // SAFETY: signalling the local cluster this test started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.cluster_pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in self.cluster_pids() {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        remove_netns(&self.engine_data());
        unmount_under(&self.dir);
        let _ = netns::remove(&self.dir.join("host.netns"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET http://TO/PATH` from the namespace this thread is in: the whole answer.
pub(crate) fn http_get(to: std::net::SocketAddr, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(3))
        .map_err(|e| format!("connect to {to}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer)
}

/// Unmounts what is still mounted under `dir` (tasks' secret tmpfs left by a
/// killed agent), deepest first.
fn unmount_under(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        if let Ok(c) = std::ffi::CString::new(point) {
            // SAFETY: a NUL-terminated path; detaching a mount this test's cluster made.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Wait until `f` holds (or panic after `secs` with the last answer).
pub(crate) fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => panic!("{what}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn stack(version: &str) -> String {
    format!(
        r#"name: shop
services:
  web:
    build: ./web
    ports: ["8080:80"]
  api:
    image: busybox
    command: ["sh", "-c", "echo api-$$VERSION > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
    environment:
      VERSION: "{version}"
    deploy:
      replicas: 2
      update_config:
        parallelism: 1
        order: start-first
  check:
    image: busybox
    command: ["sh", "-c", "wget -qO- http://api/ | grep -q api- && wget -qO- http://api.shop/ | grep -q api- && echo check-passed"]
    restart: on-failure
"#
    )
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn up_runs_a_stack_on_a_local_cluster_then_scale_update_and_down() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
        return;
    }
    let h = LocalHost::new("stack");
    std::fs::write(h.dir.join("compose.yaml"), stack("1")).unwrap();
    // web is built by `up` (as shop-web), then pushed to the cluster registry.
    std::fs::create_dir_all(h.dir.join("web")).unwrap();
    std::fs::write(
        h.dir.join("web/Dockerfile"),
        "FROM busybox\nRUN echo hello-from-web > /index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/\"]\n",
    )
    .unwrap();

    // No cluster configured: `up -d` starts the local one. The first stack has no
    // task yet: images come from this host only (no registry is reachable), and the
    // engine that imports them is the local cluster's.
    let said = h.boot();
    assert!(said.contains("started a local one"), "{said}");

    let started = Instant::now();
    let out = h.orch(&["up", "--timeout", "150"]);
    assert!(
        out.status.success(),
        "the stack converges: {}\n{}",
        text(&out),
        text(&h.orch(&["ps", "-a"]))
    );
    let said = text(&out);
    assert!(
        said.contains("building shop-web")
            && said.contains(
                "shop-web: pushed to the cluster registry as orch.internal/library/shop-web@sha256:"
            ),
        "{said}"
    );
    eprintln!(
        "converged {:.1}s after the image arrived",
        started.elapsed().as_secs_f64()
    );

    eventually(30, "web answers on its published port", || {
        let body = h.http_get(8080)?;
        body.contains("hello-from-web").then_some(()).ok_or(body)
    });
    eventually(
        60,
        "the one-shot check reaches api by name and completes",
        || {
            let ps = ok(&h.orch(&["ps", "-a"]));
            ps.lines()
                .any(|l| l.contains("shop_check.1") && l.contains("complete"))
                .then_some(())
                .ok_or(ps)
        },
    );
    // Its container goes; its node keeps its output.
    eventually(30, "the one-shot's container is removed", || {
        let all = ok(&h.orch(&["container", "ls", "-a"]));
        (!all.contains("shop_check")).then_some(()).ok_or(all)
    });
    eventually(30, "the one-shot's output is in `orch logs`", || {
        let logs = ok(&h.orch(&["logs", "check"]));
        logs.contains("shop_check.1@")
            .then_some(())
            .filter(|()| logs.contains("check-passed"))
            .ok_or(logs)
    });

    ok(&h.orch(&["scale", "api=3"]));
    eventually(60, "three api tasks run", || {
        let ls = ok(&h.orch(&["service", "ls"]));
        ls.lines()
            .any(|l| l.starts_with("shop_api") && l.contains("3/3"))
            .then_some(())
            .ok_or(ls)
    });

    // A changed spec rolls out (start-first, one at a time); `up` waits for it.
    std::fs::write(h.dir.join("compose.yaml"), stack("2")).unwrap();
    let out = h.orch(&["up", "--timeout", "120"]);
    assert!(out.status.success(), "the update converges: {}", text(&out));
    let inspect = ok(&h.orch(&["service", "inspect", "api"]));
    assert!(inspect.contains("\"state\": \"completed\""), "{inspect}");
    let ps = ok(&h.orch(&["ps", "--json"]));
    let tasks: serde_json::Value = serde_json::from_str(&ps).unwrap();
    let api: Vec<&serde_json::Value> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "api")
        .collect();
    assert_eq!(api.len(), 2, "the stack's replica count is back: {ps}");
    for t in api {
        assert_eq!(t["spec"]["environment"]["VERSION"], "2", "{t}");
        assert_eq!(t["status"]["state"], "running", "{t}");
    }

    let out = h.orch(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    ok(&h.orch(&["down", "-p", "boot"]));
    let containers = ok(&h.orch(&["container", "ls", "-a", "-q"]));
    assert_eq!(containers.trim(), "", "no container is left");
    let networks = ok(&h.orch(&["network", "ls"]));
    assert!(
        !networks.contains("shop_"),
        "no network of the stack is left:\n{networks}"
    );
}

/// A background `orch` process; stopped (SIGTERM, then SIGKILL) and reaped on drop.
pub(crate) struct Daemon(std::process::Child);

impl Daemon {
    /// Kills it at once, as a crash would.
    pub(crate) fn crash(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        // SAFETY: signalling a child this test started and has not reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.crash();
    }
}

/// Starts `orch ARGS` on the test host in the background (its log in the host's dir).
pub(crate) fn spawn(h: &LocalHost, name: &str, args: &[String]) -> Daemon {
    let log = std::fs::File::create(h.dir.join(format!("{name}.log"))).expect("log");
    let mut cmd = h.command(env!("CARGO_BIN_EXE_orch"));
    cmd.args(args)
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    Daemon(cmd.spawn().expect("start orch"))
}

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Two test hosts on a private lan: host 1 runs a manager with `--agent` (its API
/// on 10.98.0.1:4242), host 2 an agent that joined it; both nodes are ready and host
/// 1's engine has the busybox image (host 2 gets it through the cluster registry).
/// Fields drop in this order: the processes, the lan, then the hosts.
pub(crate) struct TwoHosts {
    /// Host 2's agent.
    pub(crate) worker: Daemon,
    /// How host 2's agent was started.
    worker_args: Vec<String>,
    /// Host 1's manager.
    _manager: Daemon,
    _lan: agent::testing::lan::Lan,
    pub(crate) h2: LocalHost,
    pub(crate) h1: LocalHost,
}

impl TwoHosts {
    pub(crate) fn new(tag: &str) -> TwoHosts {
        let h1 = LocalHost::new(&format!("{tag}1"));
        let h2 = LocalHost::new(&format!("{tag}2"));
        let lan = agent::testing::lan::Lan::new(&h1.dir.join("lan.netns")).unwrap();
        lan.plug(&h1.dir.join("host.netns"), "s1", [10, 98, 0, 1].into())
            .unwrap();
        lan.plug(&h2.dir.join("host.netns"), "s2", [10, 98, 0, 2].into())
            .unwrap();
        let local = |h: &LocalHost, p: &str| h.dir.join("local").join(p).display().to_string();

        // Host 1: a manager that also runs tasks; host 2: an agent that joins it.
        let mut args = strings(&["manager", "init", "--agent", "--listen", "10.98.0.1:4242"]);
        args.extend(strings(&["--advertise", "10.98.0.1:4242", "--data-dir"]));
        args.extend([
            local(&h1, "manager"),
            "--socket".into(),
            local(&h1, "manager.sock"),
        ]);
        args.extend(["--engine-data-dir".into(), local(&h1, "engine")]);
        args.extend(["--engine-socket".into(), local(&h1, "engine.sock")]);
        let manager = spawn(&h1, "manager", &args);
        let mut token = String::new();
        eventually(30, "the manager answers with the worker token", || {
            let out = h1.orch(&["token", "worker", "-q"]);
            token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !token.is_empty())
                .then_some(())
                .ok_or(text(&out))
        });
        let mut args = strings(&["agent", "--join", "10.98.0.1:4242", "--token", &token]);
        args.extend(strings(&["--advertise", "10.98.0.2", "--data-dir"]));
        args.extend([
            local(&h2, "engine"),
            "--socket".into(),
            local(&h2, "engine.sock"),
        ]);
        let worker = spawn(&h2, "agent", &args);
        let worker_args = args;
        eventually(30, "two nodes are ready", || {
            let ls = ok(&h1.orch(&["node", "ls"]));
            (ls.matches(" ready ").count() == 2).then_some(()).ok_or(ls)
        });
        // Only host 1 has the image: `orch up` pushes it to the cluster registry, and
        // host 2 pulls it from there.
        let mut import = h1.command("bash");
        import.arg(super::repo().join("scripts/busybox-image"));
        ok(&import.output().expect("import busybox"));

        TwoHosts {
            worker,
            worker_args,
            _manager: manager,
            _lan: lan,
            h2,
            h1,
        }
    }
}

impl TwoHosts {
    /// Host 2 (an agent only).
    pub(crate) fn h2(&self) -> &LocalHost {
        &self.h2
    }

    /// Starts host 2's agent again (after a crash), as before.
    pub(crate) fn restart_worker(&mut self) {
        self.worker.crash();
        self.worker = spawn(&self.h2, "agent-again", &self.worker_args);
    }
}

#[test]
fn a_stack_spans_two_hosts_and_moves_off_a_host_that_dies() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
        return;
    }
    let mut hosts = TwoHosts::new("span");
    let h1 = &hosts.h1;

    // Two api replicas, spread one per host; the probe reaches both through the
    // service's virtual address, one of them across the overlay.
    std::fs::write(
        h1.dir.join("compose.yaml"),
        r#"name: span
services:
  api:
    image: busybox
    command: ["sh", "-c", "hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
    deploy:
      replicas: 2
  probe:
    image: busybox
    command: ["sh", "-c", "for i in $$(seq 60); do wget -qO- http://api/; done | sort -u | wc -l | grep -qx 2"]
    restart: on-failure
"#,
    )
    .unwrap();
    let out = h1.orch(&["up", "--timeout", "90"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out),
        text(&h1.orch(&["ps", "-a"]))
    );
    let api_nodes = |h: &LocalHost| -> Vec<String> {
        let ps = ok(&h.orch(&["ps", "--json", "api"]));
        let tasks: serde_json::Value = serde_json::from_str(&ps).unwrap();
        let mut nodes: Vec<String> = tasks
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"]["state"] == "running")
            .map(|t| t["node"].as_str().unwrap_or_default().to_owned())
            .collect();
        nodes.sort();
        nodes
    };
    let nodes = api_nodes(h1);
    assert_eq!(nodes.len(), 2);
    assert_ne!(nodes[0], nodes[1], "spread puts one replica on each host");
    eventually(
        60,
        "the probe saw both replicas through the VIP and completed",
        || {
            let ps = ok(&h1.orch(&["ps", "-a", "probe"]));
            ps.lines()
                .any(|l| l.contains("complete"))
                .then_some(())
                .ok_or(ps)
        },
    );

    // Host 2's agent dies: its node goes down and its replica moves to host 1.
    hosts.worker.crash();
    eventually(30, "host 2 is down", || {
        let ls = ok(&h1.orch(&["node", "ls"]));
        ls.contains(" down ").then_some(()).ok_or(ls)
    });
    eventually(60, "both replicas run on host 1", || {
        let nodes = api_nodes(h1);
        (nodes.len() == 2 && nodes[0] == nodes[1])
            .then_some(())
            .ok_or(format!("{nodes:?}\n{}", ok(&h1.orch(&["ps", "-a"]))))
    });
    let ps = ok(&h1.orch(&["ps", "-a", "api"]));
    assert!(
        ps.contains("orphaned"),
        "the lost task is shown as orphaned:\n{ps}"
    );

    // Host 2 comes back: its tasks stay on host 1 (as in swarm) until a rebalance
    // moves one back.
    hosts.restart_worker();
    let h1 = &hosts.h1;
    eventually(60, "host 2 is ready again", || {
        let ls = ok(&h1.orch(&["node", "ls"]));
        (ls.matches(" ready ").count() == 2).then_some(()).ok_or(ls)
    });
    // Told of its orphaned task, host 2 removes the container it kept and says so:
    // the task is `shutdown` and its overlay address free again.
    eventually(60, "host 2 reported its orphaned task gone", || {
        let ps = ok(&h1.orch(&["ps", "--json", "-a", "api"]));
        let tasks: serde_json::Value = serde_json::from_str(&ps).unwrap();
        let states: Vec<&str> = tasks
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["status"]["state"].as_str())
            .collect();
        (!states.contains(&"orphaned") && states.contains(&"shutdown"))
            .then_some(())
            .ok_or(format!("{states:?}"))
    });
    let nodes = api_nodes(h1);
    assert_eq!(nodes[0], nodes[1], "nothing moves by itself: {nodes:?}");
    let out = h1.orch(&["service", "rebalance", "api", "--timeout", "90"]);
    assert!(
        out.status.success() && text(&out).contains("1 task(s) moved"),
        "{}\n{}",
        text(&out),
        text(&h1.orch(&["ps", "-a"]))
    );
    let nodes = api_nodes(h1);
    let ps = || text(&h1.orch(&["ps", "-a"]));
    assert_eq!(nodes.len(), 2, "{}\n{}", text(&out), ps());
    assert_ne!(
        nodes[0],
        nodes[1],
        "one replica on each host again:\n{}",
        ps()
    );
    ok(&h1.orch(&["down"]));
}
