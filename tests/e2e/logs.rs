//! `orch logs` and `orch events` on a two-host cluster: the lines of both replicas of a
//! service, each prefixed with its task and node; `--tail 1` gives one line per task;
//! `-f` shows a line printed after it started; the logs of one task; the logs of a
//! task whose node died say so instead of hanging; `orch events` shows a task going
//! running.

use super::engine::ok;
use super::stack::{TwoHosts, eventually, spawn, strings, text};
use std::path::Path;
use std::time::Instant;

/// The api tasks that run, as (task id, `NAME.SLOT`, node id), by slot.
fn running(h: &super::stack::LocalHost) -> Vec<(String, String, String)> {
    let ps = ok(&h.orch(&["ps", "--json", "talk"]));
    let tasks: serde_json::Value = serde_json::from_str(&ps).unwrap();
    let mut out: Vec<(String, String, String)> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"]["state"] == "running")
        .map(|t| {
            (
                t["meta"]["id"].as_str().unwrap_or_default().to_owned(),
                format!("logs_talk.{}", t["slot"]),
                t["node"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

#[test]
fn logs_of_a_service_come_from_every_node_and_events_show_tasks_running() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
        return;
    }
    let mut hosts = TwoHosts::new("logs");
    let h1 = &hosts.h1;
    let mut events = spawn(h1, "events", &strings(&["events", "--kind", "task"]));

    std::fs::write(
        h1.dir.join("compose.yaml"),
        r#"name: logs
services:
  talk:
    image: busybox
    command: ["sh", "-c", "echo start-$$(hostname); i=0; while true; do i=$$((i+1)); echo tick-$$i; sleep 1; done"]
    deploy:
      replicas: 2
"#,
    )
    .unwrap();
    let out = h1.orch(&["up", "--timeout", "90"]);
    assert!(out.status.success(), "{}", text(&out));
    let tasks = running(h1);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_ne!(tasks[0].2, tasks[1].2, "one replica on each host");
    // Both hosts share this machine's hostname: nodes are shown by id.
    let prefix = |t: &(String, String, String)| format!("{}@{} | ", t.1, t.2);

    let started = Instant::now();
    let out = h1.orch(&["logs", "talk"]);
    let all = ok(&out);
    for t in &tasks {
        assert!(
            all.lines()
                .any(|l| l.starts_with(&prefix(t)) && l.contains("start-")),
            "the start line of {} on {}:\n{all}",
            t.1,
            t.2
        );
    }
    eprintln!("orch logs talk: {:.2}s", started.elapsed().as_secs_f64());

    let out = h1.orch(&["logs", "--tail", "1", "-t", "talk"]);
    let tail = ok(&out);
    assert_eq!(tail.lines().count(), 2, "one line per task:\n{tail}");
    for t in &tasks {
        let line = tail
            .lines()
            .find(|l| l.starts_with(&prefix(t)))
            .unwrap_or_else(|| panic!("a line of {}:\n{tail}", t.1));
        assert!(line.contains("Z tick-"), "a timestamped tick: {line}");
    }

    let one = ok(&h1.orch(&["logs", &tasks[1].0]));
    assert!(
        one.lines().all(|l| l.starts_with(&prefix(&tasks[1]))) && one.contains("start-"),
        "only the task's lines:\n{one}"
    );

    // Following: only lines printed after it started (`--tail 0`), then stopped.
    let mut follower = spawn(
        h1,
        "follow",
        &strings(&["logs", "-f", "--tail", "0", "talk"]),
    );
    let followed = h1.dir.join("follow.log");
    eventually(20, "the follower shows new ticks of both tasks", || {
        let seen = std::fs::read_to_string(&followed).unwrap_or_default();
        (tasks.iter().all(|t| {
            seen.lines()
                .any(|l| l.starts_with(&prefix(t)) && l.contains("tick-"))
        }) && !seen.contains("start-"))
        .then_some(())
        .ok_or(seen)
    });
    follower.crash();

    eventually(10, "orch events showed a task going running", || {
        let seen = std::fs::read_to_string(h1.dir.join("events.log")).unwrap_or_default();
        seen.lines()
            .any(|l| l.contains(" task ") && l.contains(" updated running"))
            .then_some(())
            .ok_or(seen)
    });
    events.crash();

    // Host 2's agent dies: the logs of its task say its node is down, and end.
    hosts.worker.crash();
    eventually(30, "host 2 is down", || {
        let ls = ok(&h1.orch(&["node", "ls"]));
        ls.contains(" down ").then_some(()).ok_or(ls)
    });
    let ls = ok(&h1.orch(&["node", "ls"]));
    let down = tasks
        .iter()
        .find(|t| ls.lines().any(|l| l.contains(&t.2) && l.contains(" down ")))
        .unwrap_or_else(|| panic!("a task on the dead host: {tasks:?}\n{ls}"))
        .clone();
    let out = h1.orch(&["logs", &down.0]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is down"),
        "{}",
        text(&out)
    );
    ok(&h1.orch(&["down"]));
}
