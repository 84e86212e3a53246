//! Stack volumes on a local cluster through the `orch` binary: a named volume a task
//! writes outlives `orch down` (on the node's engine, `orch volume ls`, and as a
//! cluster object) and a new `orch up` sees its data; `orch down --volumes` removes it
//! from the node once the task stopped, also after a plain `orch down`; an external
//! volume is never removed. On two hosts, a node that is
//! down when the stack goes does not confirm (`down` names it) and removes the
//! volume when it comes back, and then the cluster forgets the volume.

use super::engine::ok;
use super::stack::{LocalHost, TwoHosts, eventually, text};
use std::path::Path;

const STACK: &str = r#"name: vault
services:
  writer:
    image: busybox
    command: ["sh", "-c", "echo start >> /data/log && exec sleep 600"]
    stop_grace_period: 1s
    volumes:
      - data:/data
      - keep:/keep
volumes:
  data:
    labels:
      tier: db
  keep:
    external: true
    name: vault-keep
"#;

/// The lines of `/data/log` in the volume on the node's engine (none: no volume).
fn log_lines(h: &LocalHost) -> Option<usize> {
    let path = h.dir.join("local/engine/volumes/vault_data/_data/log");
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.lines().count())
}

/// The ids of the volume objects of the cluster whose manager is `h`'s.
fn cluster_volumes(h: &LocalHost) -> Vec<String> {
    let socket = h.dir.join("local/manager.sock");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let list: serde_json::Value = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .unix_socket(socket)
            .tls_certs_only([])
            .build()
            .unwrap();
        let answer = http.get("http://manager/v1/volumes").send().await;
        answer.unwrap().json().await.unwrap()
    });
    list["items"]
        .as_array()
        .expect("a volume list")
        .iter()
        .map(|v| v["meta"]["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Whether the engine of host `h` has volume `name` (read on disk: the engine may
/// be down).
fn on_disk(h: &LocalHost, name: &str) -> bool {
    h.dir
        .join("local/engine/volumes")
        .join(name)
        .join("meta.json")
        .exists()
}

/// Names of the volumes on the engine of host `h`.
fn engine_volumes(h: &LocalHost) -> String {
    ok(&h.orch(&["volume", "ls", "-q"]))
}

/// Runs `orch up` on `h` and waits until the writer's log in the volume has `lines`
/// lines (`what` it means).
fn up_writes(h: &LocalHost, lines: usize, what: &str) {
    let out = h.orch(&["up", "--timeout", "120"]);
    assert!(out.status.success(), "the stack converges: {}", text(&out));
    eventually(30, what, || {
        (log_lines(h) == Some(lines))
            .then_some(())
            .ok_or(format!("{:?}", log_lines(h)))
    });
}

/// Runs `orch down ARGS` on `h`, which is to say `says` and to remove the stack's
/// volume from the node and the cluster, but not the external one.
fn down_removes_the_volume(h: &LocalHost, args: &[&str], says: &str) {
    let out = h.orch(&[&["down", "--timeout", "60"], args].concat());
    let said = text(&out);
    eprintln!("{said}");
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(says) && said.contains("volumes vault_data removed from every node"),
        "{said}"
    );
    let volumes = ok(&h.orch(&["volume", "ls", "-q"]));
    assert!(!volumes.contains("vault_data"), "{volumes}");
    assert!(volumes.contains("vault-keep"), "external: kept: {volumes}");
    assert_eq!(log_lines(h), None);
    assert_eq!(cluster_volumes(h), Vec::<String>::new(), "forgotten");
}

#[test]
fn down_keeps_a_stacks_volumes_and_down_volumes_removes_them_but_not_external_ones() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
        return;
    }
    let h = LocalHost::new("volumes");
    h.boot();
    ok(&h.orch(&["volume", "create", "vault-keep"]));
    std::fs::write(h.dir.join("compose.yaml"), STACK).unwrap();

    up_writes(&h, 1, "the writer wrote its volume");
    let inspect = ok(&h.orch(&["volume", "inspect", "vault_data"]));
    assert!(
        inspect.contains("\"tier\": \"db\"") && inspect.contains("\"orch.stack\": \"vault\""),
        "made with its declared labels and its stack's: {inspect}"
    );

    // `down` keeps the volumes; a new `up` finds the data.
    let out = h.orch(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    let volumes = ok(&h.orch(&["volume", "ls", "-q"]));
    assert!(
        volumes.contains("vault_data") && volumes.contains("vault-keep"),
        "{volumes}"
    );
    assert_eq!(cluster_volumes(&h), ["vault_data"], "kept");
    let again = h.orch(&["down"]);
    let said = text(&again);
    assert!(
        !again.status.success() && said.contains("it left volumes vault_data on the nodes"),
        "a stack that is gone names the volumes it left: {said}"
    );
    up_writes(&h, 2, "the new writer appended to the same volume");

    // `down --volumes` removes the stack's volume from the node, not the external one.
    down_removes_the_volume(
        &h,
        &["--volumes"],
        "stack vault: removing volumes vault_data",
    );
    let containers = ok(&h.orch(&["container", "ls", "-a", "-q"]));
    assert_eq!(containers.trim(), "", "no container is left");

    // `down` then `down -v`: the volumes the stack left go too.
    up_writes(&h, 1, "the new writer made a new volume");
    let out = h.orch(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    down_removes_the_volume(
        &h,
        &["-v"],
        "stack vault is already removed; removing its volumes vault_data",
    );

    let again = h.orch(&["down", "--volumes"]);
    let said = text(&again);
    assert!(
        !again.status.success() && said.contains("does not exist") && !said.contains("left"),
        "nothing of the stack is left: {said}"
    );
    ok(&h.orch(&["down", "-p", "boot"]));
}

#[test]
fn a_node_down_during_down_volumes_removes_the_volume_when_it_comes_back() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
        return;
    }
    let mut hosts = TwoHosts::new("vols");
    std::fs::write(
        hosts.h1.dir.join("compose.yaml"),
        r#"name: dual
services:
  writer:
    image: busybox
    command: ["sh", "-c", "hostname >> /data/log && exec sleep 600"]
    stop_grace_period: 1s
    volumes: ["data:/data"]
    deploy:
      mode: global
volumes:
  data: {}
"#,
    )
    .unwrap();
    let out = hosts.h1.orch(&["up", "--timeout", "90"]);
    assert!(out.status.success(), "{}", text(&out));
    for h in [&hosts.h1, hosts.h2()] {
        let volumes = engine_volumes(h);
        assert!(volumes.contains("dual_data"), "on each host: {volumes}");
    }

    // Host 2 is down while the stack goes with its volumes: host 1 removes its copy,
    // `down` names host 2's node as not confirmed.
    hosts.worker.crash();
    eventually(30, "host 2 is down", || {
        let ls = ok(&hosts.h1.orch(&["node", "ls"]));
        ls.contains(" down ").then_some(()).ok_or(ls)
    });
    let out = hosts.h1.orch(&["down", "--volumes", "--timeout", "15"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("error: volume dual_data not confirmed removed after 15s by nodes")
            && said.contains(", down)"),
        "{said}"
    );
    assert!(!engine_volumes(&hosts.h1).contains("dual_data"));
    assert!(
        on_disk(hosts.h2(), "dual_data"),
        "host 2's engine is down with its agent"
    );
    assert_eq!(cluster_volumes(&hosts.h1), ["dual_data"]);

    // Host 2 comes back: its container goes, then the volume; the cluster forgets it.
    hosts.restart_worker();
    eventually(60, "host 2 removed its copy", || {
        (!on_disk(hosts.h2(), "dual_data"))
            .then_some(())
            .ok_or("still there".to_owned())
    });
    eventually(30, "the cluster forgot the volume", || {
        let left = cluster_volumes(&hosts.h1);
        left.is_empty().then_some(()).ok_or(format!("{left:?}"))
    });
    let containers = ok(&hosts.h2().orch(&["container", "ls", "-a", "-q"]));
    assert_eq!(containers.trim(), "", "no container is left on host 2");
}
