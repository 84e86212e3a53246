//! The engine's watch over its containers: restart policies (with back-off), health
//! probes and `--rm`. A loop that reads the containers' state on disk every tick and
//! acts on what [`super::policy`] decides; it keeps nothing that a restart of the
//! engine would need (that lives in `restart.json` and `health.json`).

use super::container::{parse_time, rfc3339_nanos};
use super::policy::{self, Decision, HealthConfig, Probe, decide};
use super::service::ContainerService;
use api::container::{ContainerStatus, ExecCreate};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;

/// How often the supervisor looks.
pub const TICK: Duration = Duration::from_millis(100);

/// Run one probe of `cfg` in container `id`.
async fn probe(containers: &ContainerService, id: &str, cfg: &HealthConfig) -> Probe {
    let start = rfc3339_nanos(SystemTime::now());
    let req = ExecCreate {
        cmd: cfg.test.clone(),
        ..ExecCreate::default()
    };
    let fail = |output: String| Probe {
        start: start.clone(),
        exit_code: -1,
        output,
    };
    let mut p = match containers.exec(id, &req) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let mut output = Vec::new();
    let run = async {
        if let super::exec::ExecIo::Pipes {
            stdin,
            mut stdout,
            mut stderr,
        } = p.io
        {
            drop(stdin);
            let _ = stdout.read_to_end(&mut output).await;
            let _ = stderr.read_to_end(&mut output).await;
        }
        p.child.wait().await
    };
    match tokio::time::timeout(cfg.timeout, run).await {
        Ok(Ok(status)) => Probe {
            start,
            exit_code: status.code().unwrap_or(-1),
            output: String::from_utf8_lossy(&output[..output.len().min(1024)]).into_owned(),
        },
        Ok(Err(e)) => fail(e.to_string()),
        Err(_) => fail(format!(
            "health check exceeded its timeout of {:?}",
            cfg.timeout
        )),
    }
}

/// Watch the containers until the task is dropped.
pub async fn run(containers: Arc<ContainerService>) {
    // Exits already handled (by their finish time), restarts due, probes in flight.
    let mut handled: HashMap<String, String> = HashMap::new();
    let mut due: HashMap<String, Instant> = HashMap::new();
    let mut next_probe: HashMap<String, Instant> = HashMap::new();
    // Whether each container ran when last seen.
    let mut seen: HashMap<String, bool> = HashMap::new();
    let probing: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    loop {
        tokio::time::sleep(TICK).await;
        let now = Instant::now();
        let c = containers.clone();
        let all = tokio::task::spawn_blocking(move || c.list(true).unwrap_or_default())
            .await
            .unwrap_or_default();
        seen.retain(|id, _| all.iter().any(|s| &s.id == id));
        for summary in all {
            let id = summary.id.clone();
            let Ok(record) = containers.record(&id) else {
                continue;
            };
            // Tell the networks of runs and exits seen (a created container is
            // already known not to run, and a start reports itself).
            let running = match summary.status {
                ContainerStatus::Running { .. } => Some(true),
                ContainerStatus::Exited { .. } => Some(false),
                ContainerStatus::Created => None,
            };
            if let Some(running) = running
                && seen.get(&id) != Some(&running)
            {
                seen.insert(id.clone(), running);
                // DNS tables and VIP rules change: blocking work, off the runtime.
                let c = containers.clone();
                let nid = id.clone();
                if let Ok(Err(e)) =
                    tokio::task::spawn_blocking(move || c.note_running(&nid, running)).await
                {
                    eprintln!("orch agent: container {id}: {e}");
                }
            }
            match &summary.status {
                ContainerStatus::Exited {
                    exit_code,
                    started_at,
                    finished_at,
                    ..
                } => {
                    next_probe.remove(&id);
                    if record.auto_remove {
                        let _ = containers.remove(&id, false).await;
                        continue;
                    }
                    if handled.get(&id) == Some(finished_at) {
                        if due.get(&id).is_some_and(|t| *t <= now) {
                            due.remove(&id);
                            // A stop through the API during the back-off wins.
                            if containers.restart_state(&id).manually_stopped {
                                continue;
                            }
                            let c = containers.clone();
                            let rid = id.clone();
                            if let Ok(Err(e)) =
                                tokio::task::spawn_blocking(move || c.restart(&rid)).await
                            {
                                eprintln!("orch agent: restart container {id}: {e}");
                            }
                        }
                        continue;
                    }
                    handled.insert(id.clone(), finished_at.clone());
                    let ran_for = match (parse_time(started_at), parse_time(finished_at)) {
                        (Some(s), Some(f)) => f.duration_since(s).unwrap_or_default(),
                        _ => Duration::ZERO,
                    };
                    let state = containers.restart_state(&id);
                    if let (Decision::Restart(delay), next) =
                        decide(record.restart, *exit_code, ran_for, &state)
                        && containers.set_restart_state(&id, &next).is_ok()
                    {
                        due.insert(id.clone(), now + delay);
                    }
                }
                ContainerStatus::Running { started_at, .. } => {
                    let Some(cfg) = record.health.clone() else {
                        continue;
                    };
                    let since_start = parse_time(started_at)
                        .and_then(|s| SystemTime::now().duration_since(s).ok())
                        .unwrap_or_default();
                    let status = containers.health(&id).unwrap_or_default().status;
                    let every = policy::probe_interval(&cfg, since_start, status);
                    let when = *next_probe.entry(id.clone()).or_insert(now + every);
                    if when > now
                        || !probing
                            .lock()
                            .map(|mut p| p.insert(id.clone()))
                            .unwrap_or(false)
                    {
                        continue;
                    }
                    next_probe.insert(id.clone(), now + every);
                    let (c, busy) = (containers.clone(), probing.clone());
                    tokio::spawn(async move {
                        let result = probe(&c, &id, &cfg).await;
                        let health = policy::record(
                            &cfg,
                            &c.health(&id).unwrap_or_default(),
                            result,
                            since_start,
                        );
                        let _ = c.set_health(&id, &health);
                        if let Ok(mut p) = busy.lock() {
                            p.remove(&id);
                        }
                    });
                }
                ContainerStatus::Created => {}
            }
        }
    }
}
