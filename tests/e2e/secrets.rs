//! Secrets and configs of a stack on a local cluster: a secret from a file and a
//! config with inline content reach a busybox task as read-only files with the asked
//! mode; `orch secret inspect` never shows the value, and the managers' raft files
//! hold it only sealed; a task whose external secret is missing waits, saying so,
//! until `orch secret create` makes it; `orch down` removes the objects.

use super::engine::ok;
use super::stack::{LocalHost, eventually, text};
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_under(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

fn stack(value_file: &str) -> String {
    // The task checks its files and exits 0 only when all hold; on failure it says
    // which check failed.
    let script = [
        "set -e",
        "test \"$$(cat /run/secrets/db_password)\" = \"$$PART1$$PART2\" || { echo bad-secret-value; exit 1; }",
        "test \"$$(stat -c %a /run/secrets/db_password)\" = 440 || { echo bad-secret-mode; exit 1; }",
        "test \"$$(stat -c %a /etc/app.conf)\" = 444 || { echo bad-config-mode; exit 1; }",
        "grep -qx level=debug /etc/app.conf || { echo bad-config; exit 1; }",
        "if echo x > /run/secrets/db_password; then echo secret-writable; exit 1; fi",
        "echo all-good",
    ]
    .join("\n");
    format!(
        r#"name: vault
services:
  check:
    image: busybox
    command: ["sh", "-c", {script:?}]
    environment:
      # The value in two parts: the stack itself must not hold it.
      PART1: "s3cret-{pid}"
      PART2: "-value"
    restart: on-failure
    secrets:
      - source: db_password
        mode: 0440
    configs:
      - source: app_conf
        target: /etc/app.conf
secrets:
  db_password:
    file: {value_file}
configs:
  app_conf:
    content: |
      level=debug
"#,
        pid = std::process::id()
    )
}

#[test]
fn a_stack_secret_and_config_reach_the_task_as_read_only_files() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
        return;
    }
    let h = LocalHost::new("secrets");
    let value = format!("s3cret-{}-value", std::process::id());
    std::fs::write(h.dir.join("db_password.txt"), &value).unwrap();
    std::fs::write(h.dir.join("compose.yaml"), stack("./db_password.txt")).unwrap();
    h.boot();

    let started = std::time::Instant::now();
    let out = h.orch(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    eventually(90, "the check task finds its files and completes", || {
        let ps = ok(&h.orch(&["ps", "-a"]));
        ps.lines()
            .any(|l| l.contains("vault_check.1") && l.contains("complete"))
            .then_some(())
            .ok_or(ps)
    });
    eprintln!(
        "the task checked its secret and config {:.1}s after up",
        started.elapsed().as_secs_f64()
    );

    let inspect = ok(&h.orch(&["secret", "inspect", "vault_db_password"]));
    assert!(inspect.contains("hmac-sha256:"), "{inspect}");
    assert!(
        !inspect.contains(&value),
        "inspect shows the value: {inspect}"
    );
    assert!(!inspect.contains("ciphertext"), "{inspect}");
    let ls = ok(&h.orch(&["secret", "ls"]));
    assert!(ls.contains("vault_db_password"), "{ls}");
    let config = ok(&h.orch(&["cluster-config", "inspect", "vault_app_conf"]));
    assert!(config.contains("\"size\": 12"), "{config}");

    // The managers' files hold the value only sealed.
    let mut raft = Vec::new();
    files_under(&h.dir.join("local/manager"), &mut raft);
    assert!(
        raft.iter()
            .any(|p| p.extension().is_some_and(|e| e == "redb"))
    );
    for path in &raft {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "{} holds the secret's value",
            path.display()
        );
    }

    // A secret made on its own, from standard input; `rm` removes it.
    let mut create = h.command(env!("CARGO_BIN_EXE_orch"));
    create
        .args(["secret", "create", "standalone", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = create.spawn().expect("run orch secret create");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"from-stdin").unwrap();
    }
    ok(&child.wait_with_output().unwrap());
    let inspect = ok(&h.orch(&["secret", "inspect", "standalone"]));
    assert!(inspect.contains("\"size\": 10"), "{inspect}");
    ok(&h.orch(&["secret", "rm", "standalone"]));

    // An external secret that does not exist yet: the task waits, saying so, and
    // runs once the secret is made.
    std::fs::write(
        h.dir.join("late.yaml"),
        "name: late\nservices:\n  wait:\n    image: busybox\n    command: [\"sh\", \"-c\", \"grep -qx later /run/secrets/token\"]\n    restart: on-failure\n    secrets: [token]\nsecrets:\n  token:\n    external: true\n    name: late_token\n",
    )
    .unwrap();
    let out = h.orch(&["up", "-d", "-f", "late.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    eventually(30, "the task waits for its secret", || {
        let ps = ok(&h.orch(&["ps", "-p", "late"]));
        ps.contains("secret late_token does not exist")
            .then_some(())
            .ok_or(ps)
    });
    std::fs::write(h.dir.join("token.txt"), "later\n").unwrap();
    ok(&h.orch(&["secret", "create", "late_token", "token.txt"]));
    eventually(60, "the task runs once its secret exists", || {
        let ps = ok(&h.orch(&["ps", "-a", "-p", "late"]));
        ps.lines()
            .any(|l| l.contains("late_wait.1") && l.contains("complete"))
            .then_some(())
            .ok_or(ps)
    });
    ok(&h.orch(&["down", "-p", "late"]));
    eventually(30, "the external secret is free to go", || {
        let out = h.orch(&["secret", "rm", "late_token"]);
        out.status.success().then_some(()).ok_or(text(&out))
    });

    let out = h.orch(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    eventually(30, "the stack's secret and config are removed", || {
        let ls =
            ok(&h.orch(&["secret", "ls", "-q"])) + &ok(&h.orch(&["cluster-config", "ls", "-q"]));
        ls.trim().is_empty().then_some(()).ok_or(ls)
    });
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let files = h.dir.join("local/engine/task-files").display().to_string();
    assert!(
        !mountinfo.contains(&files),
        "no task's tmpfs is left under {files}"
    );
    ok(&h.orch(&["down", "-p", "boot"]));
}
