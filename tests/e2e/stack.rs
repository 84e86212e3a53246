//! The main job through the `orch` binary: `orch up` with no cluster configured
//! starts a local one (a manager that also runs the engine), deploys a stack of three
//! services — a web service with a published port answering HTTP, a backend reached
//! by its DNS name, a one-shot check — and waits until it converged; `orch scale`;
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

    /// `GET http://127.0.0.1:PORT/` on the test host.
    fn http_get(&self, port: u16) -> Result<String, String> {
        netns::run_in(Some(&self.dir.join("host.netns")), move || {
            use std::io::{Read, Write};
            let mut s =
                std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut body = String::new();
            s.read_to_string(&mut body).map_err(|e| e.to_string())?;
            Ok(body)
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
    image: busybox
    command: ["sh", "-c", "echo hello-from-web > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
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
    command: ["sh", "-c", "wget -qO- http://api/ | grep -q api-"]
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

    // No cluster configured: `up -d` starts the local one. The first stack has no
    // task yet: images come from this host only (no registry is reachable), and the
    // engine that imports them is the local cluster's.
    std::fs::write(
        h.dir.join("boot.yaml"),
        "name: boot\nservices:\n  idle:\n    image: busybox\n    deploy:\n      replicas: 0\n",
    )
    .unwrap();
    let out = h.orch(&["up", "-d", "-f", "boot.yaml"]);
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("started a local one"),
        "{}",
        text(&out)
    );
    let mut import = h.command("bash");
    import.arg(super::repo().join("scripts/busybox-image"));
    ok(&import.output().expect("import busybox"));

    let started = Instant::now();
    let out = h.orch(&["up", "--timeout", "150"]);
    assert!(
        out.status.success(),
        "the stack converges: {}\n{}",
        text(&out),
        text(&h.orch(&["ps", "-a"]))
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
