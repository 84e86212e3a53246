//! The engine daemon through the `orch` binary: `orch agent` on a temp data dir and
//! socket, images made offline by scripts/busybox-image, pushed to and pulled from a
//! real docker-registry on loopback.

use super::repo;
use agent::engine::network::{link, netns};
use agent::testing::registry::{HTPASSWD, start_registry, start_registry_with};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `orch agent` with its own data dir and socket, in a network namespace of
/// its own (its "host": bridges, rules and ports of one test never meet another's);
/// stopped and removed on drop.
pub struct Agent {
    child: Option<Child>,
    pub dir: PathBuf,
    /// Extra `orch agent` flags.
    flags: Vec<String>,
}

impl Agent {
    pub fn start(tag: &str) -> Agent {
        Agent::start_with(tag, &[])
    }

    pub fn start_with(tag: &str, flags: &[&str]) -> Agent {
        let dir = std::env::temp_dir().join(format!("orch-e2e-agent-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let host = dir.join("host.netns");
        netns::create(&host).expect("create the test host's network namespace");
        link::netlink(Some(&host), |nl| async move { nl.up("lo").await })
            .expect("bring the test host's loopback up");
        let mut agent = Agent {
            child: None,
            dir,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        };
        agent.child = Some(agent.spawn());
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(agent.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "orch agent did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn spawn(&self) -> Child {
        let host = std::fs::File::open(self.host()).expect("open the test host's namespace");
        let fd = host.as_raw_fd();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orch"));
        cmd.args(["agent", "--data-dir"])
            .arg(self.dir.join("data"))
            .arg("--socket")
            .arg(self.socket())
            .args(&self.flags)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.join("agent.log")).expect("agent log"),
            ));
        // SAFETY: setns is async-signal-safe; it moves the child into its test host.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().expect("start orch agent")
    }

    /// The agent's network namespace.
    pub fn host(&self) -> PathBuf {
        self.dir.join("host.netns")
    }

    /// Run `f` on a thread inside the agent's network namespace.
    pub fn on_host<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        netns::run_in(Some(&self.host()), f).expect("enter the test host")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("engine.sock")
    }

    /// `orch ARGS` against this engine, with credentials kept in this agent's dir.
    pub fn orch(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_orch"));
        cmd.args(args);
        run(cmd, stdin)
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("ORCH_ENGINE", format!("unix://{}", self.socket().display()))
            .env("ORCH_CONFIG", self.dir.join("home/.orch"))
            .env("DOCKER_CONFIG", self.dir.join("home/.docker"))
            .env("ORCH", env!("CARGO_BIN_EXE_orch"))
            .current_dir(repo());
        cmd
    }

    /// The busybox image from scripts/busybox-image; `false` (after saying why) when
    /// busybox-static is missing.
    pub fn busybox(&self) -> bool {
        if !Path::new("/bin/busybox").exists() {
            eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
            return false;
        }
        let mut cmd = self.command("bash");
        cmd.arg("scripts/busybox-image");
        ok(&run(cmd, None));
        true
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        kill_containers(&self.dir.join("data"));
        self.stop();
        remove_netns(&self.dir.join("data"));
        let _ = netns::remove(&self.host());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills the containers (and their shims) of the engine with data dir `data`:
/// containers outlive their engine by design.
pub fn kill_containers(data: &Path) {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(data.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
    {
        ids.push(entry.file_name());
        let Ok(text) = std::fs::read_to_string(entry.path().join("state.json")) else {
            continue;
        };
        let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for key in ["pid", "shim_pid"] {
            if let Some(pid) = state[key].as_i64() {
                // SAFETY: signalling a process this test started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
    remove_cgroups(&ids);
}

/// Removes the cgroups of containers `ids` (`orch/ID` under every hierarchy) once
/// their processes are gone; a container the engine removed has none left.
fn remove_cgroups(ids: &[std::ffi::OsString]) {
    let parent = agent::engine::runtime::cgroup::PARENT;
    let hierarchies: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(parent))
        .chain(std::iter::once(Path::new("/sys/fs/cgroup").join(parent)))
        .collect();
    for id in ids {
        for dir in hierarchies.iter().map(|h| h.join(id)) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            // rmdir fails while a killed process is still exiting.
            while dir.exists()
                && std::fs::remove_dir(&dir).is_err()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// Removes the network namespaces the engine with data dir `data` kept (containers'
/// and overlays' namespaces outlive a stopped engine).
pub fn remove_netns(data: &Path) {
    for entry in std::fs::read_dir(data.join("netns"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = netns::remove(&entry.path());
    }
}

impl Agent {
    /// Stop the engine (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling a child we spawned.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill the engine with SIGKILL, as a crash would.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Use these `orch agent` flags from the next (re)start on.
    pub fn set_flags(&mut self, flags: &[&str]) {
        self.flags = flags.iter().map(|f| f.to_string()).collect();
    }

    /// Start the engine again on the same data dir and socket.
    pub fn restart(&mut self) {
        self.child = Some(self.spawn());
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "orch agent did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn fails(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && err.contains(needle),
        "expected exit 1 with {needle:?}, got {:?}\nstderr: {err}",
        out.status.code()
    );
}

/// The digest in `Pushed NAME (sha256:...)` / `Pulled NAME (sha256:...)`.
fn digest_of(line: &str) -> String {
    let start = line.find("(sha256:").expect("a digest") + 1;
    line[start..start + 71].to_owned()
}

#[test]
fn images_move_between_engines_through_a_registry() {
    let a = Agent::start("a");
    // The registry runs on the agent's host (its network namespace).
    let Some(reg) = a.on_host(|| start_registry("e2e-roundtrip")) else {
        return;
    };
    assert_eq!(
        std::fs::metadata(a.socket()).unwrap().permissions().mode() & 0o777,
        0o600,
        "the API socket is root-only"
    );
    if !a.busybox() {
        return;
    }
    // The script is reproducible: a second run gives the same image.
    let first = ok(&a.orch(&["image", "inspect", "busybox"], None));
    assert!(a.busybox());
    assert_eq!(ok(&a.orch(&["image", "inspect", "busybox"], None)), first);
    let detail: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(detail[0]["config"]["cmd"], serde_json::json!(["sh"]));

    let name = format!("{}/e2e/busybox:1", reg.addr);
    ok(&a.orch(&["image", "tag", "busybox", &name], None));
    let pushed = digest_of(&ok(&a.orch(&["image", "push", &name], None)));
    assert_eq!(pushed, detail[0]["digest"].as_str().unwrap());
    let list = ok(&a.orch(&["image", "ls"], None));
    assert!(
        list.contains("REPOSITORY") && list.contains(&format!("{}/e2e/busybox", reg.addr)),
        "{list}"
    );

    // With every trace of it gone, the engine pulls it back: same digest, layers
    // unpacked again.
    ok(&a.orch(&["image", "rm", &name, "busybox"], None));
    ok(&a.orch(&["image", "prune", "--all"], None));
    assert_eq!(
        std::fs::read_dir(a.dir.join("data/snapshots"))
            .unwrap()
            .count(),
        0,
        "nothing left before the pull"
    );
    let b = &a;
    let pulled = digest_of(&ok(&b.orch(&["image", "pull", &name], None)));
    assert_eq!(pulled, pushed);
    let snapshots = std::fs::read_dir(b.dir.join("data/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 1, "one unpacked layer");
    let ls: serde_json::Value =
        serde_json::from_str(&ok(&b.orch(&["image", "ls", "--format", "json"], None))).unwrap();
    assert_eq!(ls[0]["digest"].as_str(), Some(pushed.as_str()));
    assert_eq!(ls[0]["tags"], serde_json::json!([name]));

    // Errors name what is wrong.
    fails(
        &b.orch(
            &["image", "pull", &format!("{}/e2e/nothing:1", reg.addr)],
            None,
        ),
        "e2e/nothing:1: not found",
    );
    fails(
        &b.orch(&["image", "inspect", "nope:1"], None),
        "no image nope:1",
    );
    fails(
        &b.orch(&["image", "pull", "Bad//Name"], None),
        "invalid image reference",
    );
    fails(
        &b.orch(&["image", "pull", "--platform", "linux/arm64", &name], None),
        "single-platform image for linux/amd64",
    );

    // One engine per data dir.
    let mut again = a.spawn();
    let status = again.wait().unwrap();
    assert!(
        !status.success(),
        "a second engine on the same data dir must refuse"
    );
}

#[test]
fn login_then_push_and_pull_with_basic_auth() {
    let a = Agent::start("auth");
    let Some(reg) = a.on_host(|| start_registry_with("e2e-auth", Some(HTPASSWD))) else {
        return;
    };
    if !a.busybox() {
        return;
    }
    let name = format!("{}/private/busybox:1", reg.addr);
    ok(&a.orch(&["image", "tag", "busybox", &name], None));
    fails(&a.orch(&["image", "push", &name], None), "orch login");
    let login = |password: &str| {
        a.orch(
            &["login", &reg.addr, "-u", "tester", "--password-stdin"],
            Some(&format!("{password}\n")),
        )
    };
    fails(&login("wrong"), "credentials refused");
    let config = a.dir.join("home/.orch/config.json");
    assert!(!config.exists(), "refused credentials are not kept");
    assert!(ok(&login("orch-secret")).contains("Login Succeeded"));
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pushed = digest_of(&ok(&a.orch(&["image", "push", &name], None)));
    ok(&a.orch(&["image", "rm", &name], None));
    let pulled = digest_of(&ok(&a.orch(&["image", "pull", &name], None)));
    assert_eq!(pulled, pushed);
    assert!(ok(&a.orch(&["logout", &reg.addr], None)).contains("Removed"));
    fails(&a.orch(&["image", "pull", &name], None), "orch login");
}

fn inspect_layers(a: &Agent, name: &str) -> usize {
    let detail: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["image", "inspect", name], None))).unwrap();
    detail[0]["layers"].as_array().map_or(0, Vec::len)
}

#[test]
fn build_the_example_then_rebuild_from_cache() {
    let a = Agent::start("build");
    if !a.busybox() {
        return;
    }
    let first = ok(&a.orch(&["build", "-t", "web:1", "examples/build"], None));
    assert!(first.contains("Successfully tagged web:1"), "{first}");
    let layers = first
        .lines()
        .filter(|l| l.starts_with(" ---> ") && l.ends_with(')'))
        .count();
    assert_eq!(
        layers, 4,
        "WORKDIR /src, two COPYs and COPY --from make layers:\n{first}"
    );
    let again = ok(&a.orch(&["build", "-t", "web:1", "examples/build"], None));
    let cached = again
        .lines()
        .filter(|l| l.starts_with(" ---> Using cache"))
        .count();
    assert_eq!(cached, 4, "{again}");
    let id = |out: &str| out.lines().last().unwrap_or_default().to_owned();
    assert_eq!(
        id(&again),
        id(&first),
        "an unchanged rebuild is the same image"
    );
    let detail: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["image", "inspect", "web:1"], None))).unwrap();
    let config = &detail[0]["config"];
    assert_eq!(config["user"], "nobody");
    assert_eq!(config["working_dir"], "/srv/www");
    assert_eq!(config["exposed_ports"], serde_json::json!(["8080/tcp"]));
    assert_eq!(detail[0]["layers"].as_array().map(Vec::len), Some(3));

    // RUN runs in a container; its changes, deletions included, are the layer. The
    // Dockerfile sits outside the context.
    let outside = a.dir.join("Dockerfile.run");
    std::fs::write(
        &outside,
        "FROM busybox\nARG WHO=world\n\
         RUN echo \"hello $WHO from $(hostname)\" | tee /greeting && rm /etc/group && \
         mkdir -p /data && echo x > /data/f && ln /data/f /data/g\n\
         RUN [\"/bin/sh\", \"-c\", \"test ! -e /etc/group && test $(stat -c %h /data/f) = 2\"]\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "ran:1", "-f", outside.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push("examples/build");
        a.orch(&args, None)
    };
    let out = ok(&run(&["--build-arg", "WHO=orch"]));
    assert!(out.contains("hello orch from orch-build"), "{out}");
    let again = ok(&run(&["--build-arg", "WHO=orch"]));
    assert_eq!(again.matches("Using cache").count(), 2, "{again}");
    let ran = inspect_layers(&a, "ran:1");
    assert_eq!(ran, 3, "busybox + two RUN layers");
    let failing = a.dir.join("Dockerfile.fail");
    std::fs::write(&failing, "FROM busybox\nRUN echo about to fail; exit 3\n").unwrap();
    let out = a.orch(
        &["build", "-f", failing.to_str().unwrap(), "examples/build"],
        None,
    );
    fails(
        &out,
        "Dockerfile:2: RUN /bin/sh -c echo about to fail; exit 3: returned a non-zero code: 3",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("about to fail"));
    let bad = a.dir.join("Dockerfile.bad");
    std::fs::write(&bad, "FROM busybox\nCOPY\n").unwrap();
    fails(
        &a.orch(
            &["build", "-f", bad.to_str().unwrap(), "examples/build"],
            None,
        ),
        "Dockerfile:2",
    );
}

#[test]
fn save_load_remove_and_prune() {
    let a = Agent::start("save");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(&["build", "-q", "-t", "web:1", "examples/build"], None));
    let inspect = |agent: &Agent, name: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&agent.orch(&["image", "inspect", name], None))).unwrap()
    };
    let web = inspect(&a, "web:1");
    let files = [
        ("docker", a.dir.join("d.tar")),
        ("oci", a.dir.join("o.tar")),
    ];
    for (format, file) in &files {
        let file = file.to_str().unwrap();
        ok(&a.orch(
            &[
                "image", "save", "--format", format, "-o", file, "web:1", "busybox",
            ],
            None,
        ));
    }

    // OCI layout keeps every digest; docker-archive keeps the config (the image id).
    let b = Agent::start("load");
    let loaded = ok(&b.orch(&["image", "load", "-i", files[1].1.to_str().unwrap()], None));
    assert!(loaded.contains("Loaded image: web:1"), "{loaded}");
    assert_eq!(inspect(&b, "web:1")[0]["digest"], web[0]["digest"]);
    let c = Agent::start("load-docker");
    let loaded = ok(&c.orch(&["image", "load", "-i", files[0].1.to_str().unwrap()], None));
    assert!(loaded.contains("Loaded image: busybox:latest"), "{loaded}");
    assert_eq!(inspect(&c, "web:1")[0]["id"], web[0]["id"]);
    fails(
        &c.orch(&["image", "load", "-i", "/etc/hostname"], None),
        "orch:",
    );

    // rm untags; content goes when no name is left, shared layers stay while used.
    ok(&a.orch(&["image", "tag", "web:1", "web:2"], None));
    let id = web[0]["id"].as_str().unwrap()["sha256:".len()..][..12].to_owned();
    fails(
        &a.orch(&["image", "rm", &id], None),
        "remove the tags one by one, or force",
    );
    ok(&a.orch(&["image", "rm", "web:2"], None));
    let out = ok(&a.orch(&["image", "rm", "busybox"], None));
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert_eq!(inspect(&a, "web:1")[0]["digest"], web[0]["digest"]);
    let out = ok(&a.orch(&["image", "rm", "web:1"], None));
    assert!(out.contains("Deleted: sha256:"), "{out}");
    let blobs = std::fs::read_dir(a.dir.join("data/images/content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "no image left, no blob left");
    fails(&a.orch(&["image", "rm", "nope:1"], None), "no image nope:1");
    fails(
        &a.orch(&["image", "save", "-o", "/dev/null", "nope:1"], None),
        "no image nope:1",
    );
    let out = ok(&a.orch(&["image", "prune"], None));
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
}

/// Read frames from `conn` until the exit frame: (stdout text, exit code).
async fn until_exit(mut conn: impl tokio::io::AsyncRead + Unpin) -> (String, i32) {
    use api::container::frame::{self, Decoder};
    use tokio::io::AsyncReadExt;
    let (mut decoder, mut out, mut buf) = (Decoder::default(), Vec::new(), vec![0u8; 4096]);
    loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the stream ended without an exit frame");
        decoder.push(&buf[..n]);
        while let Some(f) = decoder.next_frame().unwrap() {
            match f.kind {
                frame::STDOUT => out.extend(f.payload),
                frame::EXIT => {
                    let code = i32::from_be_bytes([
                        f.payload[0],
                        f.payload[1],
                        f.payload[2],
                        f.payload[3],
                    ]);
                    return (String::from_utf8_lossy(&out).into_owned(), code);
                }
                _ => {}
            }
        }
    }
}

pub fn state_of(a: &Agent, name: &str) -> serde_json::Value {
    let detail: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["container", "inspect", name], None))).unwrap();
    detail[0].clone()
}

#[test]
fn containers_run_log_stop_and_fail_clearly() {
    let a = Agent::start("containers");
    if !a.busybox() {
        return;
    }
    // Attached: output through the log, the exit code is orch's.
    let out = a.orch(
        &[
            "container",
            "run",
            "--name",
            "once",
            "-e",
            "WHO=orch",
            "busybox",
            "sh",
            "-c",
            "echo hi $WHO; echo oops >&2; exit 4",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi orch\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("oops"));
    let once = state_of(&a, "once");
    assert_eq!(
        (once["status"].as_str(), once["exit_code"].as_i64()),
        (Some("exited"), Some(4))
    );

    // Detached, with a user, a read-only root, a tmpfs; logs; stop.
    let script = "id -u; touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs; \
                  trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done";
    let id = ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "--name",
            "svc",
            "--user",
            "nobody",
            "--read-only",
            "--tmpfs",
            "/scratch",
            "busybox",
            "sh",
            "-c",
            script,
        ],
        None,
    ));
    assert_eq!(id.trim().len(), 64);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logs = String::new();
    while !logs.contains("tmpfs") && Instant::now() < deadline {
        logs = ok(&a.orch(&["container", "logs", "svc"], None));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(logs, "65534\nro\ntmpfs\n");
    assert!(ok(&a.orch(&["container", "ls"], None)).contains("svc"));
    ok(&a.orch(&["container", "stop", "svc"], None));
    assert_eq!(
        state_of(&a, "svc")["exit_code"].as_i64(),
        Some(0),
        "the TERM trap ran"
    );
    assert!(ok(&a.orch(&["container", "logs", "--tail", "1", "svc"], None)).contains("bye"));
    assert!(!ok(&a.orch(&["container", "ls"], None)).contains("svc"));
    assert!(ok(&a.orch(&["container", "ls", "-a"], None)).contains("svc"));

    // Bad input: clear errors, nothing left behind.
    fails(
        // Missing here, so `run` pulls it: from a loopback port where nothing listens.
        &a.orch(&["container", "run", "127.0.0.1:9/nope:1", "true"], None),
        "127.0.0.1:9",
    );
    fails(
        &a.orch(
            &["container", "run", "--rm", "busybox", "no-such-cmd"],
            None,
        ),
        "\"no-such-cmd\": executable file not found",
    );
    // The failed start left no cgroup behind.
    fails(
        &a.orch(
            &[
                "container",
                "run",
                "--name",
                "nocmd",
                "busybox",
                "no-such-cmd",
            ],
            None,
        ),
        "executable file not found",
    );
    let nocmd = state_of(&a, "nocmd")["id"].as_str().unwrap().to_owned();
    for c in ["memory", "pids", "cpu", "freezer", "devices"] {
        let cg = format!("/sys/fs/cgroup/{c}/orch/{nocmd}");
        assert!(!Path::new(&cg).exists(), "{cg} is left");
    }
    // Its network namespace is held until it is removed, then nothing is mounted.
    ok(&a.orch(&["container", "rm", "nocmd"], None));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&nocmd), "a mount of {nocmd} is left");
    fails(
        &a.orch(
            &["container", "run", "--user", "ghost", "busybox", "true"],
            None,
        ),
        "ghost",
    );
    fails(
        &a.orch(
            &[
                "container",
                "run",
                "-v",
                "/no/such/dir:/x",
                "busybox",
                "true",
            ],
            None,
        ),
        "the host path does not exist",
    );
    fails(
        &a.orch(
            &["container", "run", "--name", "svc", "busybox", "true"],
            None,
        ),
        "taken",
    );
    fails(
        &a.orch(&["image", "rm", "busybox"], None),
        "used by a container",
    );
    ok(&a.orch(&["container", "rm", "once", "svc"], None));
    let left = std::fs::read_dir(a.dir.join("data/containers"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "the failed runs left no container");
}

#[test]
fn containers_and_their_logs_survive_an_engine_crash() {
    let mut a = Agent::start("crash");
    if !a.busybox() {
        return;
    }
    let script = "i=0; while [ $i -lt 80 ]; do echo line $i; i=$((i+1)); sleep 0.05; done";
    let names = ["c1", "c2", "c3"];
    for n in names {
        ok(&a.orch(
            &[
                "container",
                "run",
                "-d",
                "--name",
                n,
                "busybox",
                "sh",
                "-c",
                script,
            ],
            None,
        ));
    }
    let pids: Vec<i64> = names
        .iter()
        .map(|n| state_of(&a, n)["pid"].as_i64().unwrap())
        .collect();
    a.crash();
    std::thread::sleep(Duration::from_millis(300));
    a.restart();
    for (n, pid) in names.iter().zip(&pids) {
        let s = state_of(&a, n);
        assert_eq!(s["status"], "running", "{n} kept running through the crash");
        assert_eq!(s["pid"].as_i64(), Some(*pid), "{n} is the same process");
    }
    for n in names {
        let code = ok(&a.orch(&["container", "wait", n], None));
        assert_eq!(code.trim(), "0");
        let logs = ok(&a.orch(&["container", "logs", n], None));
        let expected: String = (0..80).map(|i| format!("line {i}\n")).collect();
        assert_eq!(logs, expected, "no log line of {n} is missing");
    }
}

#[test]
fn exec_joins_a_running_container_with_pipes_or_a_terminal() {
    let a = Agent::start("exec");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "--name",
            "s",
            "busybox",
            "sleep",
            "100",
        ],
        None,
    ));
    let host = state_of(&a, "s")["hostname"].as_str().unwrap().to_owned();
    let out = a.orch(
        &[
            "container",
            "exec",
            "s",
            "sh",
            "-c",
            "echo $$; hostname; exit 5",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(5));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_ne!(lines[0], "1", "exec is not the container's pid 1");
    assert_eq!(lines[1], host);
    assert_eq!(
        ok(&a.orch(
            &["container", "exec", "-u", "nobody", "s", "id", "-u"],
            None
        )),
        "65534\n"
    );
    assert_eq!(
        ok(&a.orch(&["container", "exec", "-i", "s", "cat"], Some("hi\n"))),
        "hi\n"
    );
    assert_eq!(
        ok(&a.orch(&["container", "exec", "-t", "s", "tty"], None)).trim(),
        "/dev/pts/0"
    );
    let out = a.orch(&["container", "exec", "s", "no-such-cmd"], None);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));

    // Through the API: the terminal takes the size the client sends.
    let client =
        api::client::EngineClient::new(&format!("unix://{}", a.socket().display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = rt.block_on(async {
        use api::container::frame;
        use tokio::io::AsyncWriteExt;
        let req = api::container::ExecCreate {
            cmd: vec!["sh".into(), "-c".into(), "sleep 0.3; stty size".into()],
            tty: true,
            ..Default::default()
        };
        let mut conn = client.exec("s", &req).await.unwrap();
        let mut size = 33u16.to_be_bytes().to_vec();
        size.extend_from_slice(&99u16.to_be_bytes());
        conn.write_all(&frame::encode(frame::RESIZE, &size))
            .await
            .unwrap();
        conn.write_all(&frame::encode(frame::STDIN_CLOSE, &[]))
            .await
            .unwrap();
        until_exit(conn).await.0
    });
    assert_eq!(text.trim(), "33 99");

    ok(&a.orch(&["container", "stop", "-t", "1", "s"], None));
    fails(
        &a.orch(&["container", "exec", "s", "true"], None),
        "exec needs a running container",
    );
    ok(&a.orch(&["container", "rm", "s"], None));
}

/// Poll `check` on the container's inspect JSON for up to 15 s.
pub fn eventually(
    a: &Agent,
    name: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = state_of(a, name);
        if check(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{name}: never {what}: {s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn restart_policies_stop_signals_and_health_checks() {
    let a = Agent::start("policy");
    if !a.busybox() {
        return;
    }
    // on-failure:2 restarts a failing container twice, then leaves it.
    let run = |args: &[&str]| ok(&a.orch(&[&["container", "run", "-d"][..], args].concat(), None));
    run(&[
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    let s = eventually(&a, "flaky", "restarted twice", |s| {
        s["restart_count"] == 2 && s["status"] == "exited"
    });
    assert_eq!(s["exit_code"].as_i64(), Some(3));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        state_of(&a, "flaky")["restart_count"],
        2,
        "no third restart"
    );
    assert_eq!(
        ok(&a.orch(&["container", "logs", "flaky"], None)),
        "run\nrun\nrun\n"
    );

    // A custom stop signal reaches the process; `always` does not undo a stop.
    let script = "trap 'echo got usr1; exit 0' USR1; while true; do sleep 0.1; done";
    run(&[
        "--name",
        "sig",
        "--restart",
        "always",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    eventually(&a, "sig", "running", |s| s["status"] == "running");
    ok(&a.orch(&["container", "stop", "sig"], None));
    let s = state_of(&a, "sig");
    assert_eq!(
        (s["status"].as_str(), s["exit_code"].as_i64()),
        (Some("exited"), Some(0))
    );
    assert!(ok(&a.orch(&["container", "logs", "sig"], None)).contains("got usr1"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        state_of(&a, "sig")["status"],
        "exited",
        "a stopped container stays stopped"
    );

    // Health: starting, healthy once the probe passes, unhealthy when it fails.
    run(&[
        "--name",
        "h",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 1; touch /tmp/ok; sleep 100",
    ]);
    eventually(&a, "h", "healthy", |s| s["health"] == "healthy");
    ok(&a.orch(&["container", "exec", "h", "rm", "/tmp/ok"], None));
    let s = eventually(&a, "h", "unhealthy", |s| s["health"] == "unhealthy");
    assert!(s["health_log"].as_array().is_some_and(|l| !l.is_empty()));
    ok(&a.orch(&["container", "rm", "-f", "flaky", "sig", "h"], None));
}

#[test]
fn named_volumes_start_with_the_image_content_and_outlive_containers() {
    let a = Agent::start("volumes");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(&["build", "-q", "-t", "web:1", "examples/build"], None));
    let out = ok(&a.orch(
        &[
            "container",
            "run",
            "--rm",
            "-v",
            "site:/srv/www",
            "web:1",
            "cat",
            "/srv/www/index.html",
        ],
        None,
    ));
    assert_eq!(
        out, "<h1>served by orch</h1>\n",
        "the image's files were copied in"
    );
    ok(&a.orch(
        &[
            "container",
            "run",
            "--name",
            "writer",
            "-v",
            "site:/data",
            "busybox",
            "sh",
            "-c",
            "echo more > /data/more",
        ],
        None,
    ));
    let out = ok(&a.orch(
        &[
            "container",
            "run",
            "--rm",
            "-v",
            "site:/x:ro",
            "busybox",
            "sh",
            "-c",
            "cat /x/more; ls /x; touch /x/y || echo read-only",
        ],
        None,
    ));
    assert_eq!(out, "more\nindex.html\nmore\nread-only\n");
    let vols: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["volume", "ls", "--format", "json"], None))).unwrap();
    assert_eq!(vols[0]["name"], "site");
    fails(
        &a.orch(&["volume", "rm", "site"], None),
        "in use by container",
    );
    fails(
        &a.orch(
            &["container", "run", "-v", "bad name:/x", "busybox", "true"],
            None,
        ),
        "volume",
    );
    ok(&a.orch(&["container", "rm", "writer"], None));
    // An image's VOLUME gets an anonymous volume, filled from the image, that goes
    // with the container.
    let df = a.dir.join("Dockerfile.vol");
    std::fs::write(
        &df,
        "FROM busybox\nRUN mkdir /state && echo seed > /state/seed\nVOLUME /state\n",
    )
    .unwrap();
    ok(&a.orch(
        &[
            "build",
            "-q",
            "-t",
            "vol:1",
            "-f",
            df.to_str().unwrap(),
            "examples/build",
        ],
        None,
    ));
    let out = ok(&a.orch(
        &[
            "container",
            "run",
            "--name",
            "anon",
            "vol:1",
            "cat",
            "/state/seed",
        ],
        None,
    ));
    assert_eq!(out, "seed\n");
    let names = ok(&a.orch(&["volume", "ls", "-q"], None));
    assert_eq!(
        names.lines().count(),
        2,
        "site and the anonymous one: {names}"
    );
    ok(&a.orch(&["container", "rm", "anon"], None));
    assert_eq!(
        ok(&a.orch(&["volume", "ls", "-q"], None)).lines().count(),
        1
    );
    ok(&a.orch(&["volume", "create", "spare"], None));
    let out = ok(&a.orch(&["volume", "prune"], None));
    assert!(
        out.contains("Deleted: site") && out.contains("Deleted: spare"),
        "{out}"
    );
    assert_eq!(ok(&a.orch(&["volume", "ls", "-q"], None)), "");
}

#[test]
fn limits_and_security_through_the_cli() {
    let a = Agent::start("limits");
    if !a.busybox() {
        return;
    }
    let run = |args: &[&str]| a.orch(&[&["container", "run"][..], args].concat(), None);
    // Docker's default capabilities and seccomp; cap-drop and privileged change them.
    let out = ok(&run(&[
        "busybox",
        "grep",
        "-E",
        "^(CapEff|Seccomp):",
        "/proc/self/status",
    ]));
    assert_eq!(out, "CapEff:\t00000000a80425fb\nSeccomp:\t2\n");
    let out = run(&["--cap-drop", "CHOWN", "busybox", "chown", "1", "/tmp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    let out = ok(&run(&[
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /m && mount -t tmpfs none /m && echo mounted",
    ]));
    assert_eq!(out, "mounted\n");
    fails(&run(&["--cap-add", "FLY", "busybox", "true"]), "FLY");

    // 64 MiB of memory: allocating 200 MB is an OOM kill, reported as such.
    let grow = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived";
    let out = run(&["--name", "oom", "-m", "64m", "busybox", "sh", "-c", grow]);
    assert_eq!(out.status.code(), Some(137));
    let s = state_of(&a, "oom");
    assert_eq!(s["oom_killed"], true, "{s:#}");
    let id = s["id"].as_str().unwrap().to_owned();
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/memory/orch/{id}")).exists(),
        "the cgroup went with the process"
    );
    fails(&run(&["-m", "1k", "busybox", "true"]), "memory");

    // A pids limit stops a fork loop.
    let forks = "for i in $(seq 40); do sleep 5 & done; echo all started";
    let out = run(&["--pids-limit", "20", "busybox", "sh", "-c", forks]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("all started"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("can't fork"),
        "{out:?}"
    );
    ok(&a.orch(&["container", "rm", "oom"], None));

    // rlimits and namespaced sysctls; host-wide sysctls are refused.
    let out = ok(&run(&[
        "--rm",
        "--ulimit",
        "nofile=512:1024",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward",
    ]));
    assert_eq!(out, "512\n1024\n1\n");
    fails(
        &run(&["--sysctl", "vm.swappiness=1", "busybox", "true"]),
        "vm.swappiness",
    );
    fails(
        &run(&["--ulimit", "files=1", "busybox", "true"]),
        "unknown limit",
    );
}

#[test]
fn interactive_runs_with_pipes_or_a_terminal_and_attach() {
    let a = Agent::start("interactive");
    if !a.busybox() {
        return;
    }
    let out = a.orch(
        &["container", "run", "-i", "--rm", "busybox", "sh"],
        Some("echo hello; exit 7\n"),
    );
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let out = a.orch(
        &["container", "run", "-it", "--rm", "busybox", "sh"],
        Some("tty\nexit 4\n"),
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
        "{out:?}"
    );

    // Attach to a detached container that waits for input.
    ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "-i",
            "--name",
            "talk",
            "busybox",
            "sh",
            "-c",
            "echo ready; read x; echo got $x",
        ],
        None,
    ));
    let client =
        api::client::EngineClient::new(&format!("unix://{}", a.socket().display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (text, code) = rt.block_on(async {
        use api::container::frame;
        use tokio::io::AsyncWriteExt;
        let mut conn = client.attach("talk").await.unwrap();
        conn.write_all(&frame::encode(frame::STDIN, b"hi\n"))
            .await
            .unwrap();
        until_exit(conn).await
    });
    assert_eq!(
        (text.as_str(), code),
        ("ready\ngot hi\n", 0),
        "the replay brought the early output"
    );
    ok(&a.orch(&["container", "rm", "talk"], None));
}

#[test]
fn pause_freezes_and_stats_report() {
    let a = Agent::start("pause");
    if !a.busybox() {
        return;
    }
    let counter = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done";
    ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "--name",
            "c",
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            counter,
        ],
        None,
    ));
    let stats = ok(&a.orch(&["container", "stats", "--no-stream", "c"], None));
    assert!(
        stats.contains("/ 67.1MB") && stats.contains("CPU %"),
        "{stats}"
    );
    let lines = |a: &Agent| {
        ok(&a.orch(&["container", "logs", "c"], None))
            .lines()
            .count()
    };
    eventually(&a, "c", "logging", |_| lines(&a) > 2);
    ok(&a.orch(&["container", "pause", "c"], None));
    assert_eq!(state_of(&a, "c")["paused"], true);
    let frozen = lines(&a);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(lines(&a), frozen, "a paused container writes nothing");
    ok(&a.orch(&["container", "unpause", "c"], None));
    eventually(&a, "c", "logging again", |_| lines(&a) > frozen);
    ok(&a.orch(&["container", "rm", "-f", "c"], None));
    fails(
        &a.orch(&["container", "pause", "c"], None),
        "no container c",
    );
}
