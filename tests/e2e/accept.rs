//! What a user coming from Compose and Swarm tries first, through the `orch` binary:
//! `up` refuses at once, naming the service and key, what the nodes' engines would
//! refuse; `up --dry-run` after `up` lists unchanged services as kept (the stack as
//! written names images by tag, the stack on the cluster by digest).

use super::engine::ok;
use super::stack::{LocalHost, eventually, text};
use super::{Tmp, orch};
use std::path::Path;

/// A local cluster (tagged `tag`) running `stack` as `compose.yaml`, with `files`
/// beside it, once `up` converged; `None` (the test skips) without busybox to import.
fn deployed(tag: &str, stack: &str, files: &[(&str, &str)]) -> Option<LocalHost> {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
        return None;
    }
    let h = LocalHost::new(tag);
    h.boot();
    for (path, content) in files {
        let path = h.dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    std::fs::write(h.dir.join("compose.yaml"), stack).unwrap();
    let out = h.orch(&["up", "--timeout", "120"]);
    assert!(out.status.success(), "the stack converges: {}", text(&out));
    Some(h)
}

#[test]
fn up_refuses_what_the_engine_cannot_honour_naming_service_and_key() {
    let t = Tmp::new(
        "refused",
        &[(
            "compose.yaml",
            "name: refused\nservices:\n  db:\n    image: busybox\n    cpuset: \"0\"\n  ok:\n    image: busybox\n  web:\n    image: busybox\n    security_opt: [\"seccomp=unconfined\"]\n",
        )],
    );
    // `--dry-run` starts no cluster: the refusal comes before any cluster is asked.
    let out = orch(&t.0, &["up", "--dry-run"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: services.db.cpuset: "), "{said}");
    assert!(
        stderr.contains("error: services.web.security_opt[0]: "),
        "{said}"
    );
    assert!(!stderr.contains("services.ok"), "{said}");
    assert!(stderr.contains("refuse 2 of its services"), "{said}");
}

#[test]
fn dry_run_after_up_keeps_what_did_not_change() {
    let stack = |greeting: &str| {
        format!(
            "name: dry\nservices:\n  web:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n    stop_grace_period: 1s\n  api:\n    image: busybox\n    command: [\"sh\", \"-c\", \"echo {greeting}; exec sleep 600\"]\n    stop_grace_period: 1s\n"
        )
    };
    let Some(h) = deployed("dryrun", &stack("hello"), &[]) else {
        return;
    };

    let plan = ok(&h.orch(&["up", "--dry-run"]));
    assert!(
        plan.contains("keep    api") && plan.contains("keep    web"),
        "nothing changed: {plan}"
    );
    std::fs::write(h.dir.join("compose.yaml"), stack("bye")).unwrap();
    let plan = ok(&h.orch(&["up", "--dry-run"]));
    assert!(
        plan.contains("update  api") && plan.contains("keep    web"),
        "{plan}"
    );
    assert!(!plan.contains("image:"), "images are the same: {plan}");
    ok(&h.orch(&["down"]));
    ok(&h.orch(&["down", "-p", "boot"]));
}

#[test]
fn init_true_runs_the_command_under_an_init_that_forwards_signals() {
    let Some(h) = deployed(
        "init",
        "name: tini\nservices:\n  app:\n    image: busybox\n    init: true\n    command: [\"sh\", \"-c\", \"echo pid=$$$$; exec sleep 600\"]\n",
        &[],
    ) else {
        return;
    };
    eventually(30, "the command runs as pid 2, under init", || {
        let logs = ok(&h.orch(&["logs", "app"]));
        logs.contains("pid=2").then_some(()).ok_or(logs)
    });

    // `sleep` as pid 1 ignores SIGTERM and is killed after the grace period (137);
    // under init it gets the SIGTERM and dies of it (143).
    ok(&h.orch(&[
        "container",
        "run",
        "-d",
        "--name",
        "tini-sleep",
        "--init",
        "busybox",
        "sleep",
        "600",
    ]));
    ok(&h.orch(&["container", "stop", "-t", "60", "tini-sleep"]));
    let all = ok(&h.orch(&["container", "ls", "-a"]));
    let line = all.lines().find(|l| l.contains("tini-sleep")).unwrap_or("");
    assert!(line.contains("Exited (143)"), "{all}");
    ok(&h.orch(&["container", "rm", "tini-sleep"]));
    ok(&h.orch(&["down"]));
    ok(&h.orch(&["down", "-p", "boot"]));
}

#[test]
fn cluster_stop_stops_while_tasks_run() {
    let Some(h) = deployed(
        "stop",
        "name: busy\nservices:\n  app:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n    deploy:\n      replicas: 2\n",
        &[],
    ) else {
        return;
    };
    // The worker's waits on its containers held the engine's shutdown open: `stop`
    // gave up after its 30 s with the process still there.
    let out = h.orch(&["cluster", "stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the local cluster stopped"),
        "{}",
        text(&out)
    );
    // Started again, it is ready only once its engine answers.
    let out = h.orch(&["cluster", "start"]);
    assert!(out.status.success(), "{}", text(&out));
    ok(&h.orch(&["container", "ls"]));
    ok(&h.orch(&["down"]));
    ok(&h.orch(&["down", "-p", "boot"]));
}

/// The volumes of `h`'s engine that no stack named (anonymous: a 64-hex name).
fn anonymous_volumes(h: &LocalHost) -> Vec<String> {
    ok(&h.orch(&["volume", "ls", "-q"]))
        .lines()
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_anonymous_volume_is_the_tasks_own_and_starts_from_the_image() {
    let stack = "name: anon\nservices:\n  app:\n    build: ./app\n    volumes:\n      - /app/deps\n    command: [\"sh\", \"-c\", \"cat /app/deps/file; echo mine > /app/deps/file; exec sleep 600\"]\n    stop_grace_period: 1s\n";
    let dockerfile = "FROM busybox\nRUN mkdir -p /app/deps && echo from-image > /app/deps/file\n";
    let Some(h) = deployed("anon", stack, &[("app/Dockerfile", dockerfile)]) else {
        return;
    };
    eventually(30, "the task reads the image's file in its volume", || {
        let logs = ok(&h.orch(&["logs", "app"]));
        logs.contains("from-image").then_some(()).ok_or(logs)
    });
    assert_eq!(anonymous_volumes(&h).len(), 1, "the task's own volume");
    ok(&h.orch(&["down"]));
    eventually(30, "the volume goes with the task's container", || {
        let left = anonymous_volumes(&h);
        left.is_empty().then_some(()).ok_or(format!("{left:?}"))
    });
    ok(&h.orch(&["down", "-p", "boot"]));
}

#[test]
fn up_fails_when_the_rollout_of_its_change_is_rolled_back() {
    let stack = |command: &str| {
        format!(
            "name: roll\nservices:\n  app:\n    image: busybox\n    command: {command}\n    stop_grace_period: 1s\n    deploy:\n      update_config:\n        failure_action: rollback\n        monitor: 2s\n"
        )
    };
    let Some(h) = deployed("roll", &stack("[\"sleep\", \"600\"]"), &[]) else {
        return;
    };
    std::fs::write(h.dir.join("compose.yaml"), stack("[\"false\"]")).unwrap();
    let out = h.orch(&["up", "--timeout", "120"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("was not rolled out as written") && said.contains("app: rolled back"),
        "{said}"
    );
    // The stack as it was: converged, the old rollback is not this write's.
    std::fs::write(h.dir.join("compose.yaml"), stack("[\"sleep\", \"600\"]")).unwrap();
    let out = h.orch(&["up", "--timeout", "120"]);
    assert!(out.status.success(), "{}", text(&out));
    ok(&h.orch(&["down"]));
    ok(&h.orch(&["down", "-p", "boot"]));
}

#[test]
fn up_refuses_a_network_the_cluster_cannot_make_naming_it() {
    let Some(h) = deployed("nets", "name: nets\nservices: {}\n", &[]) else {
        return;
    };
    std::fs::write(
        h.dir.join("compose.yaml"),
        "name: nets\nservices:\n  app:\n    image: busybox\n    networks: [payment]\nnetworks:\n  payment:\n    driver: overlay\n    driver_opts:\n      encrypted: 'yes'\n",
    )
    .unwrap();
    let out = h.orch(&["up", "--timeout", "60"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("network payment of stack nets: driver_opts (encrypted) are not supported"),
        "{said}"
    );
    ok(&h.orch(&["down", "-p", "nets"]));
    ok(&h.orch(&["down", "-p", "boot"]));
}

#[test]
fn extra_hosts_are_in_the_tasks_hosts_file_host_gateway_is_the_host() {
    let Some(h) = deployed(
        "hosts",
        "name: hosts\nservices:\n  app:\n    image: busybox\n    command: [\"sh\", \"-c\", \"cat /etc/hosts; exec sleep 600\"]\n    stop_grace_period: 1s\n    extra_hosts:\n      - \"db.local:10.1.2.3\"\n      - \"host.docker.internal:host-gateway\"\n",
        &[],
    ) else {
        return;
    };
    let bridge = ok(&h.orch(&["network", "inspect", "bridge"]));
    let gateway = serde_json::from_str::<serde_json::Value>(&bridge).unwrap()[0]["gateway"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!gateway.is_empty(), "{bridge}");
    eventually(30, "the task's /etc/hosts has the extra entries", || {
        let logs = ok(&h.orch(&["logs", "app"]));
        (logs.contains("10.1.2.3\tdb.local")
            && logs.contains(&format!("{gateway}\thost.docker.internal")))
        .then_some(())
        .ok_or(logs)
    });
    ok(&h.orch(&["down"]));
    ok(&h.orch(&["down", "-p", "boot"]));
}
