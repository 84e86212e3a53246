//! The container runtime for real (as root): a busybox image imported into a temp
//! store, unpacked, and run through `orch init` in new namespaces on an overlay.

use agent::engine::image::images::{Images, ImportConfig};
use agent::engine::image::manifest::RunConfig;
use agent::engine::image::snapshot::Snapshots;
use agent::engine::runtime::init::{InitSpec, Mount, MountKind};
use agent::engine::runtime::launch::{LaunchError, Stdio, launch, wait};
use agent::engine::runtime::spec::{ProcessOptions, plan};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

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

/// Run `args` as `user` in a container; (exit code, output) or the launch error.
fn run(dir: &Path, name: &str, args: &[&str], user: &str) -> Result<(i32, String), LaunchError> {
    let images = Images::open(&dir.join("images")).unwrap();
    let r = "rt/busybox:1".parse().unwrap();
    let manifest = images
        .import(&busybox_rootfs()[..], &r, &ImportConfig::default())
        .unwrap();
    let snapshots = Snapshots::open(&dir.join("snapshots")).unwrap();
    let lowers = snapshots.prepare(&images.content, &manifest).unwrap();
    let c = dir.join(name);
    for d in ["rootfs", "upper", "work"] {
        std::fs::create_dir_all(c.join(d)).unwrap();
    }
    let opts = ProcessOptions {
        cmd: args.iter().map(|a| a.to_string()).collect(),
        user: Some(user.into()),
        ..ProcessOptions::default()
    };
    let spec = InitSpec {
        rootfs: c.join("rootfs"),
        overlay: Snapshots::overlay(&lowers, &c.join("upper"), &c.join("work")),
        readonly_rootfs: false,
        hostname: format!("{name}-host"),
        process: plan(&RunConfig::default(), &opts, PASSWD, GROUP).unwrap(),
        mounts: vec![Mount {
            target: "/scratch".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
                mode: None,
            },
            readonly: false,
        }],
        no_new_privileges: true,
    };
    let spec_path = c.join("init.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (out_r, out_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let null = std::fs::File::open("/dev/null").unwrap();
    let stdio = Stdio {
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: out_w.as_raw_fd(),
    };
    let launched = launch(Path::new(env!("CARGO_BIN_EXE_orch")), &spec_path, stdio)?;
    drop(out_w);
    let pid = launched.go()?;
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    Ok((wait(pid)?, out))
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
    let dir = Scratch(std::env::temp_dir().join(format!("orch-e2e-rt-{}", std::process::id())));
    let script = "echo pid=$$; hostname; id -u; id -G; tr '\\0' ' ' </proc/1/cmdline; echo; \
        [ -s /proc/kcore ] && echo kcore-visible || echo kcore-masked; \
        touch /sys/x 2>/dev/null && echo sys-writable || echo sys-readonly; \
        touch /tmp/ok && echo rootfs-writable; touch /scratch/ok && echo tmpfs-mounted; \
        [ -c /dev/null ] && [ -e /dev/pts/ptmx ] && echo dev-ok; \
        grep NoNewPrivs /proc/self/status; ps | wc -l; exit 3";
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
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    // ps sees a header, sh, ps and wc: nothing of the host.
    assert_eq!(out.trim_end().lines().last(), Some("4"), "{out}");

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
