//! User namespaces through `orch container run --uidmap/--gidmap`: root inside is a
//! subordinate id on the host, the image's root-owned files are the mapped root's (an
//! idmapped overlay), exec joins the namespace, and bad maps are refused up front.

use super::engine::{Agent, fails, ok, state_of};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const MAP: &str = "0:100000:65536";

fn squeeze(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn userns_maps_root_to_a_subordinate_range() {
    let a = Agent::start("userns");
    if !a.busybox() {
        return;
    }
    let run = |args: &[&str]| a.orch(&[&["container", "run"][..], args].concat(), None);
    // A volume the mapped root owns, as with Docker's userns-remap.
    let vol = a.dir.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(100000), Some(100000)).unwrap();
    let bind = format!("{}:/data", vol.display());
    let script = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; \
                  touch /data/made /etc/made && chown 1000:1000 /etc/made && \
                  stat -c '%u:%g %n' /etc/passwd /etc/made";
    let out = ok(&run(&[
        "--rm", "--uidmap", MAP, "-v", &bind, "busybox", "sh", "-c", script,
    ]));
    assert_eq!(
        squeeze(&out),
        "0\n0\n0 100000 65536\n0 100000 65536\n0:0 /etc/passwd\n1000:1000 /etc/made"
    );
    let made = std::fs::metadata(vol.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (100000, 100000));

    // On the host the process runs as 100000; exec joins its user namespace.
    ok(&run(&[
        "-d",
        "--name",
        "mapped",
        "--uidmap",
        MAP,
        "--gidmap",
        "0:200000:65536",
        "busybox",
        "sleep",
        "60",
    ]));
    let s = state_of(&a, "mapped");
    let pid = s["pid"].as_i64().unwrap();
    let id = s["id"].as_str().unwrap().to_owned();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .map(squeeze)
            .unwrap_or_default()
    };
    assert_eq!(line("Uid:"), "Uid: 100000 100000 100000 100000");
    assert_eq!(line("Gid:"), "Gid: 200000 200000 200000 200000");
    let out = ok(&a.orch(
        &["container", "exec", "mapped", "sh", "-c", "id -u; id -g"],
        None,
    ));
    assert_eq!(out, "0\n0\n");
    ok(&a.orch(&["container", "rm", "-f", "mapped"], None));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the process is gone"
    );
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/memory/orch/{id}")).exists(),
        "the cgroup is gone"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "no mount of the container is left");

    // Bad maps and unmapped users are refused before anything is made.
    fails(
        &run(&["--uidmap", "0:100000", "busybox", "true"]),
        "--uidmap",
    );
    fails(
        &run(&["--uidmap", "1:100000:10", "busybox", "true"]),
        "must map id 0",
    );
    fails(
        &run(&["--gidmap", MAP, "busybox", "true"]),
        "needs --uidmap",
    );
    fails(
        &run(&["--uidmap", "0:100000:1000", "-u", "1000", "busybox", "true"]),
        "does not map",
    );
    let left = ok(&a.orch(&["container", "ls", "-a", "-q"], None));
    assert_eq!(left.trim(), "", "nothing left behind");
}

/// `orch agent --userns-remap` maps every container that asks for nothing else;
/// `--userns host` opts out, as with dockerd's option.
#[test]
fn userns_remap_of_the_engine_and_the_host_mode() {
    let a = Agent::start_with("remap", &["--userns-remap", "0:300000:65536"]);
    if !a.busybox() {
        return;
    }
    let run = |args: &[&str]| a.orch(&[&["container", "run", "--rm"][..], args].concat(), None);
    let map = ["busybox", "cat", "/proc/self/uid_map"];
    assert_eq!(squeeze(&ok(&run(&map))), "0 300000 65536");
    let host = [&["--userns", "host"][..], &map].concat();
    assert_eq!(squeeze(&ok(&run(&host))), "0 0 4294967295");
    let own = [&["--uidmap", MAP][..], &map].concat();
    assert_eq!(squeeze(&ok(&run(&own))), "0 100000 65536");
    fails(
        &run(&["--userns", "private", "busybox", "true"]),
        "the only mode is host",
    );
}
