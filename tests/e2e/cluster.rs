//! The control plane through the `orch` binary: `orch manager init`, two managers
//! joining (one through a follower), `orch node ls` and `orch cluster status` through
//! the saved context, a wrong token refused, and a new leader after the first dies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A manager process; killed and reaped on drop.
struct ManagerProc {
    child: Child,
    addr: String,
}

impl Drop for ManagerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn start(dir: &Path, name: &str, args: &[&str]) -> ManagerProc {
    let addr = format!("127.0.0.1:{}", free_port());
    let data = dir.join(name);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orch"));
    cmd.arg("manager")
        .args(args)
        .args(["--listen", &addr, "--data-dir"])
        .arg(&data)
        .arg("--socket")
        .arg(dir.join(format!("{name}.sock")))
        .env("ORCH_CONFIG_DIR", dir.join("cfg"))
        .stdout(std::fs::File::create(dir.join(format!("{name}.out"))).expect("log"))
        .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).expect("log"))
        .stdin(Stdio::null());
    ManagerProc {
        child: cmd.spawn().expect("start orch manager"),
        addr,
    }
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(args)
        .env("ORCH_CONFIG_DIR", dir.join("cfg"))
        .env_remove("ORCH_HOST")
        .output()
        .expect("run orch")
}

/// Wait until `f` holds (or panic after `secs`, showing the last output).
pub(crate) fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => panic!("{what}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn token(dir: &Path, role: char) -> String {
    let out = std::fs::read_to_string(dir.join("m1.out")).unwrap_or_default();
    out.split_whitespace()
        .find(|w| w.starts_with("ORCH1-") && w.contains(&format!("-{role}-")))
        .map(str::to_owned)
        .unwrap_or_default()
}

/// `orch manager init` as m1: the manager and the manager and worker tokens it printed.
fn init(dir: &Path) -> (ManagerProc, String, String) {
    let m1 = start(dir, "m1", &["init"]);
    eventually(30, "init prints the tokens", || {
        (!token(dir, 'M').is_empty())
            .then_some(())
            .ok_or_else(|| std::fs::read_to_string(dir.join("m1.err")).unwrap_or_default())
    });
    (m1, token(dir, 'M'), token(dir, 'W'))
}

#[test]
fn managers_init_join_list_and_survive_the_leader() {
    let tmp = super::Tmp::new("cluster", &[]);
    let dir: PathBuf = tmp.0.clone();
    let (m1, manager_token, worker_token) = init(&dir);
    let m2 = start(&dir, "m2", &["join", "--token", &manager_token, &m1.addr]);
    eventually(30, "m2 joins", || {
        let err = std::fs::read_to_string(dir.join("m2.err")).unwrap_or_default();
        err.contains("joined as a manager").then_some(()).ok_or(err)
    });
    // The third joins through a follower: it is sent to the leader.
    let m3 = start(&dir, "m3", &["join", "--token", &manager_token, &m2.addr]);
    eventually(30, "m3 joins", || {
        let err = std::fs::read_to_string(dir.join("m3.err")).unwrap_or_default();
        err.contains("joined as a manager").then_some(()).ok_or(err)
    });

    let ls = cli(&dir, &["node", "ls", "--json"]);
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let nodes: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("json");
    let nodes = nodes.as_array().expect("a list");
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    for n in nodes {
        assert_eq!(n["spec"]["role"], "manager", "{n}");
        assert_eq!(n["status"]["state"], "ready", "{n}");
    }

    // The joined managers got the data key that seals secrets (kept 0600).
    let key = |m: &str| std::fs::read(dir.join(m).join("node/data.key")).expect("a data key");
    assert_eq!(key("m2"), key("m1"));
    assert_eq!(key("m3"), key("m1"));
    let mode = std::fs::metadata(dir.join("m1/node/data.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // A token for another CA is refused, and says so.
    let mut wrong = worker_token.clone();
    wrong.replace_range(
        6..10,
        if &wrong[6..10] == "0000" {
            "1111"
        } else {
            "0000"
        },
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_orch"))
        .args([
            "manager",
            "join",
            "--token",
            &wrong,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("m9"))
        .arg("--socket")
        .arg(dir.join("m9.sock"))
        .arg(&m1.addr)
        .output()
        .expect("run orch");
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        text.contains("CA"),
        "a token for another CA is refused by name: {text}"
    );

    // Kill the leader: the others elect one, and the API answers through them.
    drop(m1);
    eventually(30, "a new leader", || {
        let status = cli(&dir, &["cluster", "status", "--host", &m2.addr]);
        let text = String::from_utf8_lossy(&status.stdout).to_string();
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        let leader = v["leader"]["addr"].as_str().unwrap_or_default().to_owned();
        (leader == m2.addr || leader == m3.addr)
            .then_some(())
            .ok_or(text)
    });
    drop(m3);
    drop(m2);
}

/// `orch` with `args`, which must succeed: its stdout.
fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "orch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `orch` with `args`, which must fail: its stderr.
fn cli_refused(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(!out.status.success(), "orch {args:?} must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tokens_rotate_and_a_manager_is_updated_demoted_and_removed() {
    let tmp = super::Tmp::new("nodes", &[]);
    let dir: PathBuf = tmp.0.clone();
    let (m1, manager_token, worker_token) = init(&dir);

    // The tokens, alone or with the line to run; a rotation makes a new one.
    assert_eq!(
        cli_ok(&dir, &["token", "worker", "-q"]).trim(),
        worker_token
    );
    let hint = cli_ok(&dir, &["token", "manager"]);
    assert!(
        hint.contains(&format!(
            "orch manager join --token {manager_token} {}",
            m1.addr
        )),
        "{hint}"
    );
    let rotated = cli_ok(&dir, &["token", "worker", "--rotate", "-q"]);
    let rotated = rotated.trim();
    assert!(
        rotated.starts_with("ORCH1-") && rotated != worker_token,
        "{rotated}"
    );
    let hint = cli_ok(&dir, &["token", "worker"]);
    assert!(
        hint.contains(&format!("orch agent --join {} --token {rotated}", m1.addr)),
        "{hint}"
    );

    let m2 = start(&dir, "m2", &["join", "--token", &manager_token, &m1.addr]);
    eventually(30, "m2 joins", || {
        let err = std::fs::read_to_string(dir.join("m2.err")).unwrap_or_default();
        err.contains("joined as a manager").then_some(()).ok_or(err)
    });
    let nodes: serde_json::Value =
        serde_json::from_str(&cli_ok(&dir, &["node", "ls", "--json"])).expect("json");
    let m2_id = nodes
        .as_array()
        .expect("a list")
        .iter()
        .find(|n| n["status"]["addr"] == m2.addr.as_str())
        .and_then(|n| n["meta"]["id"].as_str())
        .expect("m2 is listed")
        .to_owned();

    // Labels and availability, the node named by a prefix of its id.
    let prefix = &m2_id[..m2_id.len() - 2];
    cli_ok(
        &dir,
        &[
            "node",
            "update",
            "--label-add",
            "zone=a",
            "--label-add",
            "ssd",
            "--availability",
            "drain",
            prefix,
        ],
    );
    let node: serde_json::Value =
        serde_json::from_str(&cli_ok(&dir, &["node", "inspect", &m2_id])).expect("json");
    assert_eq!(node["meta"]["labels"]["zone"], "a", "{node}");
    assert_eq!(node["meta"]["labels"]["ssd"], "", "{node}");
    assert_eq!(node["spec"]["availability"], "drain", "{node}");
    cli_ok(&dir, &["node", "update", "--label-rm", "zone", &m2_id]);
    let node: serde_json::Value =
        serde_json::from_str(&cli_ok(&dir, &["node", "inspect", &m2_id])).expect("json");
    assert!(node["meta"]["labels"].get("zone").is_none(), "{node}");

    // A raft member is demoted before it is removed (or removed with --force).
    let text = cli_refused(&dir, &["node", "rm", &m2_id]);
    assert!(text.contains("orch node demote"), "{text}");
    assert!(text.contains("--force"), "{text}");
    cli_ok(&dir, &["node", "demote", &m2_id]);
    // Demoted, it is down (no agent session): removed without --force.
    let node: serde_json::Value =
        serde_json::from_str(&cli_ok(&dir, &["node", "inspect", &m2_id])).expect("json");
    assert_eq!(node["spec"]["role"], "worker", "{node}");
    assert_eq!(node["status"]["state"], "down", "{node}");
    cli_ok(&dir, &["node", "rm", &m2_id]);
    let nodes: serde_json::Value =
        serde_json::from_str(&cli_ok(&dir, &["node", "ls", "--json"])).expect("json");
    assert_eq!(nodes.as_array().map(Vec::len), Some(1), "{nodes}");
    drop(m2);
    drop(m1);
}

#[test]
fn a_manager_with_short_certificates_renews_its_own_and_keeps_serving() {
    let tmp = super::Tmp::new("cert-expiry", &[]);
    let dir: PathBuf = tmp.0.clone();
    let text = cli_refused(&dir, &["manager", "init", "--cert-expiry", "500ms"]);
    assert!(text.contains("at least 1s"), "{text}");

    let m1 = start(&dir, "m1", &["init", "--cert-expiry", "3s"]);
    let renewals = || {
        std::fs::read_to_string(dir.join("m1.err"))
            .unwrap_or_default()
            .matches("renewed as manager")
            .count()
    };
    // Three renewals: the certificate init made expired long ago.
    eventually(30, "m1 renews its certificate three times", || {
        (renewals() >= 3)
            .then_some(())
            .ok_or_else(|| std::fs::read_to_string(dir.join("m1.err")).unwrap_or_default())
    });
    // The CLI (CA pinned) connects anew and is served with the renewed certificate.
    let nodes = cli_ok(&dir, &["node", "ls"]);
    assert!(nodes.contains("manager"), "{nodes}");
    drop(m1);
}
