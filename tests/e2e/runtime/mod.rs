//! The container runtime for real (as root): a busybox image imported into a temp
//! store, unpacked, placed in a cgroup with limits, and run through `orch init` in new
//! namespaces on an overlay. [`security`]: capabilities, seccomp, privileged;
//! [`limits`]: memory (OOM), pids, cpu, stats and freezing.

mod limits;
mod security;

use agent::engine::image::images::{Images, ImportConfig};
use agent::engine::image::manifest::RunConfig;
use agent::engine::image::snapshot::Snapshots;
use agent::engine::network::service::NetNs;
use agent::engine::runtime::cgroup::{self, Cgroups, Exit, Resources, Stats};
use agent::engine::runtime::init::{InitSpec, Mount, MountKind};
use agent::engine::runtime::launch::{LaunchError, Stdio, launch, wait};
use agent::engine::runtime::spec::{ProcessOptions, SecurityOptions, plan, security};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\n";

/// A temp dir removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A busybox root file system as a tar: /bin/busybox, a link per applet, /etc files.
fn busybox_rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, name: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        b.append_data(&mut h, name, &[][..]).unwrap();
    };
    for (d, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("home/app", 0o755),
        ("tmp", 0o1777),
    ] {
        dir(&mut b, d, mode);
    }
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", &busybox[..]).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| *a != "busybox")
    {
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        l.set_mode(0o777);
        b.append_link(&mut l, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    for (name, text) in [("etc/passwd", PASSWD), ("etc/group", GROUP)] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(text.len() as u64);
        b.append_data(&mut h, name, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

/// One container to run.
struct Case<'a> {
    name: &'a str,
    args: &'a [&'a str],
    user: &'a str,
    /// Placed in a cgroup with these limits when set.
    resources: Option<Resources>,
    security: SecurityOptions,
    no_new_privileges: bool,
    /// Give the container a pipe as stdin, held open by [`Running`].
    stdin_pipe: bool,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Case {
            name: "c",
            args: &[],
            user: "0",
            resources: None,
            security: SecurityOptions::default(),
            no_new_privileges: false,
            stdin_pipe: false,
        }
    }
}

/// A test's cgroup, removed on drop (even when the test fails).
struct CgroupGuard {
    cgroups: Box<dyn Cgroups>,
    id: String,
}

impl CgroupGuard {
    fn dir(&self, controller: &str) -> PathBuf {
        Path::new(CGROUP_ROOT)
            .join(controller)
            .join(cgroup::PARENT)
            .join(&self.id)
    }

    fn file(&self, controller: &str, file: &str) -> String {
        std::fs::read_to_string(self.dir(controller).join(file))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Err(e) = self.cgroups.remove(&self.id, Duration::from_secs(5)) {
            eprintln!("cleanup: {e}");
        }
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A started container; killed and reaped on drop unless finished (then its cgroup
/// guard removes the cgroup).
struct Running {
    /// 0 once waited for.
    pid: libc::pid_t,
    out: std::fs::File,
    stdin: Option<OwnedFd>,
    cgroup: Option<CgroupGuard>,
}

/// How a container ended.
struct Outcome {
    exit: Exit,
    out: String,
    /// The cgroup's counters after the exit.
    stats: Option<Stats>,
}

/// Start `case` in a container: its cgroup is created before the clone and the child
/// placed in it between `launch` and `go`.
fn start(dir: &Path, case: &Case) -> Result<Running, LaunchError> {
    let images = Images::open(&dir.join("images")).unwrap();
    let r = "rt/busybox:1".parse().unwrap();
    let manifest = images
        .import(&busybox_rootfs()[..], &r, &ImportConfig::default())
        .unwrap();
    let snapshots = Snapshots::open(&dir.join("snapshots")).unwrap();
    let lowers = snapshots.prepare(&images.content, &manifest).unwrap();
    let c = dir.join(case.name);
    for d in ["rootfs", "upper", "work"] {
        std::fs::create_dir_all(c.join(d)).unwrap();
    }
    let opts = ProcessOptions {
        cmd: case.args.iter().map(|a| a.to_string()).collect(),
        user: Some(case.user.into()),
        ..ProcessOptions::default()
    };
    let spec = InitSpec {
        rootfs: c.join("rootfs"),
        overlay: Snapshots::overlay(&lowers, &c.join("upper"), &c.join("work")),
        readonly_rootfs: false,
        hostname: format!("{}-host", case.name),
        process: plan(&RunConfig::default(), &opts, PASSWD, GROUP).unwrap(),
        mounts: vec![Mount {
            target: "/scratch".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
                mode: None,
            },
            readonly: false,
        }],
        no_new_privileges: case.no_new_privileges,
        security: security(&case.security).unwrap(),
        tty: false,
        init: false,
        ulimits: Vec::new(),
        sysctls: Default::default(),
        netns: NetNs::New,
        userns: None,
        tuning: Default::default(),
    };
    let spec_path = c.join("init.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let pipe = || {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    };
    let (out_r, out_w) = pipe();
    let (in_r, in_w): (OwnedFd, Option<OwnedFd>) = if case.stdin_pipe {
        let (r, w) = pipe();
        (r, Some(w))
    } else {
        (std::fs::File::open("/dev/null").unwrap().into(), None)
    };
    let stdio = Stdio {
        stdin: in_r.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: out_w.as_raw_fd(),
        console: None,
    };
    let cgroup = case.resources.as_ref().map(|res| {
        let cgroups = cgroup::probe(Path::new(CGROUP_ROOT), cgroup::PARENT).unwrap();
        let id = format!("e2e-{}-{}", std::process::id(), case.name);
        cgroups.create(&id, res).unwrap();
        CgroupGuard { cgroups, id }
    });
    let launched = launch(
        Path::new(env!("CARGO_BIN_EXE_orch")),
        &spec_path,
        stdio,
        &NetNs::New,
        false,
        &spec.tuning,
    )?;
    drop((out_w, in_r));
    if let Some(g) = &cgroup {
        launched.join_cgroup(g.cgroups.as_ref(), &g.id)?;
    }
    let pid = launched.go()?;
    Ok(Running {
        pid,
        out: std::fs::File::from(out_r),
        stdin: in_w,
        cgroup,
    })
}

impl Running {
    /// Close stdin, read the output, wait, and read the cgroup's counters.
    fn finish(mut self) -> Result<Outcome, LaunchError> {
        drop(self.stdin.take());
        let mut out = String::new();
        self.out.read_to_string(&mut out).unwrap();
        let code = wait(self.pid)?;
        self.pid = 0;
        let stats = self
            .cgroup
            .as_ref()
            .map(|g| g.cgroups.stats(&g.id).unwrap());
        let exit = Exit::new(code, &stats.unwrap_or_default());
        Ok(Outcome { exit, out, stats })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.pid > 0 {
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = wait(self.pid);
        }
    }
}

/// Run `case` to its end.
fn run_case(dir: &Path, case: &Case) -> Result<Outcome, LaunchError> {
    start(dir, case)?.finish()
}

/// Run `args` as `user` in a container; (exit code, output) or the launch error.
fn run(dir: &Path, name: &str, args: &[&str], user: &str) -> Result<(i32, String), LaunchError> {
    let case = Case {
        name,
        args,
        user,
        no_new_privileges: true,
        ..Case::default()
    };
    run_case(dir, &case).map(|o| (o.exit.code, o.out))
}

/// No cgroup named after this test run's `name` is left in any v1 hierarchy.
fn assert_no_cgroup_left(name: &str) {
    let id = format!("e2e-{}-{name}", std::process::id());
    for c in ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"] {
        let d = Path::new(CGROUP_ROOT)
            .join(c)
            .join(cgroup::PARENT)
            .join(&id);
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// A scratch dir for one test.
fn scratch(tag: &str) -> Scratch {
    Scratch(std::env::temp_dir().join(format!("orch-e2e-rt-{}-{tag}", std::process::id())))
}

/// Root and busybox, and cgroup v1 when `cgroups` (the only layout this host has;
/// v2 is covered by the fake-tree suite in the agent).
fn can_run_with(cgroups: bool) -> bool {
    if !can_run() {
        return false;
    }
    if cgroups {
        match cgroup::probe(Path::new(CGROUP_ROOT), cgroup::PARENT) {
            Ok(c) if c.version() == cgroup::Version::V1 => {}
            _ => {
                eprintln!("SKIP cgroup runtime tests: /sys/fs/cgroup is not cgroup v1");
                return false;
            }
        }
    }
    true
}

fn can_run() -> bool {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP runtime tests: they need root (namespaces, mounts)");
        return false;
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP runtime tests: /bin/busybox is missing (scripts/setup installs it)");
        return false;
    }
    true
}

#[test]
fn a_container_is_pid_1_in_its_own_namespaces_and_root() {
    if !can_run() {
        return;
    }
    let dir = scratch("basic");
    let script = "echo pid=$$; hostname; id -u; id -G; tr '\\0' ' ' </proc/1/cmdline; echo; \
        [ -s /proc/kcore ] && echo kcore-visible || echo kcore-masked; \
        touch /sys/x 2>/dev/null && echo sys-writable || echo sys-readonly; \
        touch /tmp/ok && echo rootfs-writable; touch /scratch/ok && echo tmpfs-mounted; \
        [ -c /dev/null ] && [ -e /dev/pts/ptmx ] && echo dev-ok; \
        grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/self/status; ps | wc -l; exit 3";
    let (code, out) = run(&dir.0, "c1", &["sh", "-c", script], "app").unwrap();
    assert_eq!(code, 3, "{out}");
    for needle in [
        "pid=1\n",
        "c1-host\n",
        "1000\n1000\n",
        "sh -c ",
        "kcore-masked",
        "sys-readonly",
        "rootfs-writable",
        "tmpfs-mounted",
        "dev-ok",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "CapEff:\t0000000000000000",
        "CapBnd:\t00000000a80425fb",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    // ps sees a header, sh, ps and wc (wc may not have started yet): nothing of the
    // host.
    let seen = out
        .trim_end()
        .lines()
        .last()
        .and_then(|l| l.trim().parse::<u32>().ok());
    assert!(matches!(seen, Some(3 | 4)), "{out}");

    // A command that does not exist: init's clear error, nothing running.
    let e = run(&dir.0, "c2", &["no-such-command"], "0")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"no-such-command\": executable file not found in $PATH"),
        "{e}"
    );

    // Nothing of the containers stays mounted on the host.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.0.to_str().unwrap()), "{mounts}");
}
