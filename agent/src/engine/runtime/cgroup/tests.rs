//! The conformance suite of [`Cgroups`]: v1 and v2 on temp dirs shaped like cgroupfs
//! (the files a kernel would create, pre-created with plausible counters), and the
//! host's real hierarchy when the test runs as root on v1.

use super::*;
use std::fs;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// A temp dir removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("orch-cg-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn files(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (f, v) in files {
        fs::write(dir.join(f), v).unwrap();
    }
}

fn resources() -> Resources {
    Resources {
        memory: Some(64 * MIB),
        memory_reservation: Some(32 * MIB),
        memory_swap: None,
        cpus: Some(1.5),
        cpu_shares: Some(512),
        pids_limit: Some(20),
        devices: DeviceAccess::Default,
        device_rules: Vec::new(),
    }
}

/// A fake hierarchy: where each file of the container's cgroup lives, what `create`
/// must have written, and how to play the kernel's part.
struct Fake {
    _dir: Scratch,
    root: PathBuf,
    /// The container's cgroup directories.
    dirs: Vec<PathBuf>,
    /// (directory, file, expected content after create).
    written: Vec<(PathBuf, &'static str, String)>,
    /// v2 reports freezing in cgroup.events, which a fake cannot do by itself.
    freeze_events: Option<PathBuf>,
}

const ID: &str = "web.1";

/// cgroup v1, hybrid: cpu and cpuacct co-mounted with links, an empty unified mount.
fn fake_v1(tag: &str) -> Fake {
    let dir = Scratch::new(tag);
    let root = dir.0.clone();
    let at = |c: &str| root.join(c).join(PARENT).join(ID);
    let procs = ("cgroup.procs", "");
    files(
        &at("memory"),
        &[
            procs,
            ("memory.limit_in_bytes", ""),
            ("memory.soft_limit_in_bytes", ""),
            ("memory.memsw.limit_in_bytes", ""),
            ("memory.usage_in_bytes", "4096\n"),
            ("memory.failcnt", "3\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            ),
        ],
    );
    files(
        &at("cpu,cpuacct"),
        &[
            procs,
            ("cpu.cfs_period_us", ""),
            ("cpu.cfs_quota_us", ""),
            ("cpu.shares", ""),
            ("cpuacct.usage", "123000\n"),
        ],
    );
    std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpu")).unwrap();
    std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpuacct")).unwrap();
    files(
        &at("pids"),
        &[
            procs,
            ("pids.max", ""),
            ("pids.current", "2\n"),
            ("pids.events", "max 5\n"),
        ],
    );
    files(&at("freezer"), &[procs, ("freezer.state", "THAWED\n")]);
    files(
        &at("devices"),
        &[procs, ("devices.allow", ""), ("devices.deny", "")],
    );
    files(&root.join("unified"), &[("cgroup.controllers", "")]);
    files(&root.join("cpuset"), &[("cpuset.cpus", "0-1")]);
    let written = vec![
        (
            at("memory"),
            "memory.limit_in_bytes",
            (64 * MIB).to_string(),
        ),
        (
            at("memory"),
            "memory.soft_limit_in_bytes",
            (32 * MIB).to_string(),
        ),
        (
            at("memory"),
            "memory.memsw.limit_in_bytes",
            (128 * MIB).to_string(),
        ),
        (at("cpu,cpuacct"), "cpu.cfs_period_us", "100000".into()),
        (at("cpu,cpuacct"), "cpu.cfs_quota_us", "150000".into()),
        (at("cpu,cpuacct"), "cpu.shares", "512".into()),
        (at("pids"), "pids.max", "20".into()),
        (at("devices"), "devices.deny", "a".into()),
        // Each rule is its own write; the fake keeps the last.
        (at("devices"), "devices.allow", "c 10:200 rwm".into()),
    ];
    let dirs = ["cpu,cpuacct", "devices", "freezer", "memory", "pids"].map(at);
    Fake {
        _dir: dir,
        root,
        dirs: dirs.to_vec(),
        written,
        freeze_events: None,
    }
}

/// cgroup v2 with the usual controllers available.
fn fake_v2(tag: &str, controllers: &str) -> Fake {
    let dir = Scratch::new(tag);
    let root = dir.0.clone();
    let levels = [(root.clone()), root.join(PARENT)];
    for l in &levels {
        files(
            l,
            &[
                ("cgroup.controllers", controllers),
                ("cgroup.subtree_control", ""),
            ],
        );
    }
    let cg = root.join(PARENT).join(ID);
    files(
        &cg,
        &[
            ("cgroup.procs", ""),
            ("cgroup.controllers", controllers),
            ("memory.max", ""),
            ("memory.low", ""),
            ("memory.swap.max", ""),
            ("memory.current", "4096\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            ("cpu.max", ""),
            ("cpu.weight", ""),
            (
                "cpu.stat",
                "usage_usec 123\nuser_usec 100\nsystem_usec 23\n",
            ),
            ("pids.max", ""),
            ("pids.current", "2\n"),
            ("pids.events", "max 5\n"),
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 1\nfrozen 0\n"),
        ],
    );
    let mut written = vec![
        (cg.clone(), "memory.max", (64 * MIB).to_string()),
        (cg.clone(), "memory.low", (32 * MIB).to_string()),
        (cg.clone(), "memory.swap.max", (64 * MIB).to_string()),
        (cg.clone(), "cpu.max", "150000 100000".into()),
        (cg.clone(), "cpu.weight", "20".into()),
        (cg.clone(), "pids.max", "20".into()),
    ];
    for l in levels {
        written.push((l, "cgroup.subtree_control", "+cpu +memory +pids".into()));
    }
    Fake {
        _dir: dir,
        root,
        dirs: vec![cg.clone()],
        written,
        freeze_events: Some(cg.join("cgroup.events")),
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

/// What every implementation must do, on its fake tree.
fn conformance(fake: &Fake, version: Version) {
    let cg = probe(&fake.root, PARENT).unwrap();
    assert_eq!(cg.version(), version);
    assert_eq!(cg.name(ID), "orch/web.1");

    cg.create(ID, &resources()).unwrap();
    for (dir, file, want) in &fake.written {
        assert_eq!(read(&dir.join(file)), *want, "{}", dir.join(file).display());
    }

    cg.add(ID, 4242).unwrap();
    for d in &fake.dirs {
        assert_eq!(read(&d.join("cgroup.procs")), "4242");
    }

    let stats = cg.stats(ID).unwrap();
    let want = Stats {
        memory_usage: 4096,
        memory_limit_hits: 3,
        oom_kills: 1,
        cpu_usage_ns: 123_000,
        pids_current: 2,
        pids_limit_hits: 5,
    };
    assert_eq!(stats, want);
    assert_eq!(
        Exit::new(137, &stats),
        Exit {
            code: 137,
            oom_killed: true
        }
    );

    for frozen in [true, false] {
        if let Some(events) = &fake.freeze_events {
            fs::write(
                events,
                format!("populated 1\nfrozen {}\n", u8::from(frozen)),
            )
            .unwrap();
        }
        cg.freeze(ID, frozen).unwrap();
    }

    // Busy while a process is in it.
    assert_eq!(cg.procs(ID).unwrap(), [4242]);
    let e = cg.remove(ID, Duration::ZERO).unwrap_err();
    assert!(
        matches!(&e, CgroupError::Busy { pids, .. } if pids == &[4242]),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("remove cgroup orch/web.1: still busy"),
        "{e}"
    );
    // Empty, but a fake directory still holds files: rmdir fails, named.
    for d in &fake.dirs {
        fs::write(d.join("cgroup.procs"), "").unwrap();
    }
    let e = cg.remove(ID, Duration::ZERO).unwrap_err().to_string();
    assert!(e.starts_with("remove cgroup orch/web.1 at "), "{e}");
    // The kernel's part: a cgroup directory's files go with it.
    for d in &fake.dirs {
        for f in fs::read_dir(d).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
    }
    cg.remove(ID, Duration::ZERO).unwrap();
    assert!(fake.dirs.iter().all(|d| !d.exists()));
    assert!(cg.procs(ID).unwrap().is_empty(), "none once gone");
    cg.remove(ID, Duration::ZERO).unwrap();

    // Bad resources: refused before anything is created.
    let bad = Resources {
        memory: Some(MIB),
        ..Resources::default()
    };
    let e = cg.create("bad", &bad).unwrap_err().to_string();
    assert_eq!(
        e,
        "resources of cgroup orch/bad: memory limit 1048576 bytes is below the minimum of 6 MiB"
    );
}

#[test]
fn v1_conformance() {
    conformance(&fake_v1("v1"), Version::V1);
}

#[test]
fn v2_conformance() {
    conformance(&fake_v2("v2", "cpuset cpu io memory pids"), Version::V2);
}

/// Which layout is which: a cgroup2 mount at `unified` is still the hybrid layout, even
/// when it owns a controller (this machine's holds hugetlb, which crun 1.8 refuses);
/// cgroup.controllers at the root is the unified one.
#[test]
fn probe_tells_hybrid_from_unified() {
    let hybrid = fake_v1("hybrid-hugetlb");
    fs::write(hybrid.root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    let cg = probe(&hybrid.root, PARENT).unwrap();
    assert_eq!(cg.version(), Version::V1);
    cg.create(ID, &resources()).unwrap();
    assert_eq!(
        read(
            &hybrid
                .root
                .join("memory")
                .join(PARENT)
                .join(ID)
                .join("memory.limit_in_bytes")
        ),
        (64 * MIB).to_string()
    );
    let unified = fake_v2("unified", "cpuset cpu io memory hugetlb pids");
    assert_eq!(probe(&unified.root, PARENT).unwrap().version(), Version::V2);
}

#[test]
fn errors_name_value_file_and_cgroup() {
    let fake = fake_v1("v1-missing");
    fs::remove_file(
        fake.root
            .join("pids")
            .join(PARENT)
            .join(ID)
            .join("pids.max"),
    )
    .unwrap();
    let cg = probe(&fake.root, PARENT).unwrap();
    let e = cg.create(ID, &resources()).unwrap_err().to_string();
    assert!(
        e.starts_with("write 20 to pids.max of cgroup orch/web.1: No such file"),
        "{e}"
    );

    let v2 = fake_v2("v2-no-pids", "cpu memory");
    let e = probe(&v2.root, PARENT)
        .unwrap()
        .create(ID, &resources())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("controller pids is not available to cgroup orch/web.1"),
        "{e}"
    );
}

#[test]
fn probe_names_a_missing_controller() {
    let fake = fake_v1("v1-no-pids");
    fs::remove_dir_all(fake.root.join("pids")).unwrap();
    let e = probe(&fake.root, PARENT).err().unwrap().to_string();
    assert!(e.contains("pids hierarchy (v1)"), "{e}");
    let e = probe(Path::new("/nonexistent-cgroup-root"), PARENT)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("no cgroup file system at /nonexistent-cgroup-root"),
        "{e}"
    );
}

/// The host's own v1 hierarchy, as root: create with limits, read them back, freeze
/// and thaw an empty cgroup, remove (skips elsewhere, saying why).
#[test]
fn real_v1_hierarchy() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP real_v1_hierarchy: needs root");
        return;
    }
    let root = Path::new("/sys/fs/cgroup");
    let cg = match probe(root, PARENT) {
        Ok(cg) if cg.version() == Version::V1 => cg,
        _ => {
            eprintln!("SKIP real_v1_hierarchy: /sys/fs/cgroup is not cgroup v1");
            return;
        }
    };
    let id = format!("test-{}-lib", std::process::id());
    struct Cleanup<'a>(&'a dyn Cgroups, &'a str);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.remove(self.1, Duration::from_secs(1));
        }
    }
    let _cleanup = Cleanup(cg.as_ref(), &id);
    cg.create(&id, &resources()).unwrap();
    let file = |c: &str, f: &str| read(&root.join(c).join(PARENT).join(&id).join(f));
    assert_eq!(file("memory", "memory.limit_in_bytes").trim(), "67108864");
    assert_eq!(
        file("memory", "memory.soft_limit_in_bytes").trim(),
        "33554432"
    );
    assert_eq!(file("cpu", "cpu.cfs_quota_us").trim(), "150000");
    assert_eq!(file("cpu", "cpu.shares").trim(), "512");
    assert_eq!(file("pids", "pids.max").trim(), "20");
    assert!(file("devices", "devices.list").contains("c 1:3 rwm"));
    let stats = cg.stats(&id).unwrap();
    assert_eq!((stats.pids_current, stats.oom_kills), (0, 0));
    cg.freeze(&id, true).unwrap();
    cg.freeze(&id, false).unwrap();
    cg.remove(&id, Duration::from_secs(1)).unwrap();
    assert!(!root.join("memory").join(PARENT).join(&id).exists());
}
