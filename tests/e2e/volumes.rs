//! Stack volumes on a local cluster through the `orch` binary: a named volume a task
//! writes outlives `orch down` (on the node's engine, `orch volume ls`) and a new
//! `orch up` sees its data; `orch down --volumes` removes it from the node once the
//! task stopped; an external volume is never removed.

use super::engine::ok;
use super::stack::{LocalHost, eventually, text};
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

    let out = h.orch(&["up", "--timeout", "120"]);
    assert!(out.status.success(), "the stack converges: {}", text(&out));
    eventually(30, "the writer wrote its volume", || {
        (log_lines(&h) == Some(1))
            .then_some(())
            .ok_or(format!("{:?}", log_lines(&h)))
    });
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
    let out = h.orch(&["up", "--timeout", "120"]);
    assert!(out.status.success(), "up again: {}", text(&out));
    eventually(30, "the new writer appended to the same volume", || {
        (log_lines(&h) == Some(2))
            .then_some(())
            .ok_or(format!("{:?}", log_lines(&h)))
    });

    // `down --volumes` removes the stack's volume from the node, not the external one.
    let out = h.orch(&["down", "--volumes", "--timeout", "60"]);
    let said = text(&out);
    eprintln!("{said}");
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("removing volumes vault_data")
            && said.contains("volumes vault_data removed from every node"),
        "{said}"
    );
    let volumes = ok(&h.orch(&["volume", "ls", "-q"]));
    assert!(!volumes.contains("vault_data"), "{volumes}");
    assert!(volumes.contains("vault-keep"), "external: kept: {volumes}");
    assert_eq!(log_lines(&h), None);
    let containers = ok(&h.orch(&["container", "ls", "-a", "-q"]));
    assert_eq!(containers.trim(), "", "no container is left");
    ok(&h.orch(&["down", "-p", "boot"]));
}
