//! `orch node promote` through the `orch` binary: on one test host (its own network
//! namespace), `orch manager init` and an `orch agent` that joins as a worker; once
//! promoted, the agent renews its certificate as a manager's and starts a manager in
//! its own process, which joins the raft group as a voter (`orch cluster status`).

use crate::cluster::eventually;
use crate::engine::Agent;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The manager process; killed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `orch ARGS` on the test host, with the CLI context `orch manager init` saved.
fn orch(agent: &Agent, cfg: &Path, args: &[&str]) -> Output {
    agent.on_host(|| {
        Command::new(env!("CARGO_BIN_EXE_orch"))
            .args(args)
            .env("ORCH_CONFIG_DIR", cfg)
            .env_remove("ORCH_HOST")
            .output()
            .expect("run orch")
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_promoted_agent_starts_a_manager_that_joins_the_raft_group() {
    let mut agent = Agent::start_with("promote", &[]);
    let dir = agent.dir.join("ctl");
    std::fs::create_dir_all(&dir).expect("create the control dir");
    let cfg = dir.join("cfg");
    let manager = Proc(agent.on_host(|| {
        Command::new(env!("CARGO_BIN_EXE_orch"))
            .args([
                "manager",
                "init",
                "--listen",
                "127.0.0.1:4242",
                "--data-dir",
            ])
            .arg(dir.join("m1"))
            .arg("--socket")
            .arg(dir.join("m1.sock"))
            .env("ORCH_CONFIG_DIR", &cfg)
            .stdout(std::fs::File::create(dir.join("m1.out")).expect("log"))
            .stderr(std::fs::File::create(dir.join("m1.err")).expect("log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start orch manager")
    }));
    let mut worker_token = String::new();
    eventually(30, "init prints the worker token", || {
        let out = std::fs::read_to_string(dir.join("m1.out")).unwrap_or_default();
        worker_token = out
            .split_whitespace()
            .find(|w| w.starts_with("ORCH1-") && w.contains("-W-"))
            .map(str::to_owned)
            .ok_or_else(|| std::fs::read_to_string(dir.join("m1.err")).unwrap_or_default())?;
        Ok(())
    });

    agent.stop();
    agent.set_flags(&[
        "--join",
        "127.0.0.1:4242",
        "--token",
        &worker_token,
        "--advertise",
        "127.0.0.1",
        "--manager-listen",
        "127.0.0.1:4243",
    ]);
    agent.restart();
    let log = agent.dir.join("agent.log");
    let mut worker = String::new();
    eventually(30, "the agent joins and is ready", || {
        let ls = text(&orch(&agent, &cfg, &["node", "ls", "--json"]));
        let nodes: serde_json::Value = serde_json::from_str(&ls).map_err(|_| ls.clone())?;
        worker = nodes
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["spec"]["role"] == "worker" && n["status"]["state"] == "ready")
            .and_then(|n| n["meta"]["id"].as_str())
            .map(str::to_owned)
            .ok_or(ls)?;
        Ok(())
    });

    let out = orch(&agent, &cfg, &["node", "promote", &worker]);
    assert!(out.status.success(), "{}", text(&out));
    eventually(60, "the agent starts its manager", || {
        let written = std::fs::read_to_string(&log).unwrap_or_default();
        written
            .contains(&format!(
                "promoted: node {worker} serves as a manager on 127.0.0.1:4243"
            ))
            .then_some(())
            .ok_or(written)
    });
    let status = text(&orch(&agent, &cfg, &["cluster", "status"]));
    let status: serde_json::Value =
        serde_json::from_str(&status).unwrap_or_else(|_| panic!("{status}"));
    let members = status["members"].as_array().expect("members");
    assert!(
        members
            .iter()
            .any(|m| m["voter"] == true && m["addr"] == "127.0.0.1:4243"),
        "{status}"
    );
    // The new manager answers the API itself.
    let out = orch(
        &agent,
        &cfg,
        &["node", "inspect", "--host", "127.0.0.1:4243", &worker],
    );
    let out = text(&out);
    let node: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"));
    assert_eq!(node["spec"]["role"], "manager", "{node}");
    drop(manager);
}
