//! `orch up`, `orch ls`, `orch ps`: stacks on the cluster through the manager's REST
//! API (`orch down` is [`crate::down_cmd`]). `up` writes the stack (the managers do the rest) and follows
//! its tasks until every service has converged, or fails with the reasons.

use crate::config::StackFileArgs;
use crate::manager_api::{HostArgs, List, ManagerApi, is_not_found, runtime};
use crate::render;
use anyhow::bail;
use api::cluster::{Node, Service, Stack, Task, TaskState, Timestamp, UpdateState};
use api::deploy::DeployMode;
use clap::Args;
use manager::orchestrator::policy::{Restart, mode, replicas, same_task_spec};
use manager::orchestrator::wanted;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Flags of `orch up`.
#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    stack: StackFileArgs,
    #[command(flatten)]
    host: HostArgs,
    /// Return once the stack is written; do not wait for it to converge.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Print what would change (services to create, update, remove) and stop.
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for the stack to converge, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    timeout: u64,
    /// Build every service that has `build:` (without it, only those whose image
    /// this machine's engine lacks).
    #[arg(long)]
    build: bool,
}

/// Flags of `orch ps`.
#[derive(Args)]
pub struct PsArgs {
    #[command(flatten)]
    stack: StackFileArgs,
    #[command(flatten)]
    host: HostArgs,
    /// Only this service's tasks.
    service: Option<String>,
    /// Also tasks that ended (history).
    #[arg(short, long)]
    all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Show image references whole (digests and the cluster registry's host).
    #[arg(long)]
    no_trunc: bool,
}

/// Flags of `orch ls`.
#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    host: HostArgs,
}

/// The stack name: `-p`, else the stack file's project name.
pub(crate) fn stack_name(stack: &StackFileArgs) -> anyhow::Result<String> {
    if let Some(name) = stack.project_name() {
        return Ok(name.to_owned());
    }
    match stack.load(true)? {
        Ok(project) => Ok(project.spec.name),
        Err(_) => bail!("name the stack with -p NAME (no stack file here says it)"),
    }
}

/// Run `orch up`.
pub fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let project = match args.stack.load(false)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let mut spec = project.spec;
    crate::stack_files::inline(&mut spec)?;
    let refused = crate::engine_check::refusals(&spec);
    if !refused.is_empty() {
        for line in &refused {
            eprintln!("error: {line}");
        }
        bail!(
            "stack {} cannot run: the nodes' engines refuse {} of its services as written",
            spec.name,
            refused.len()
        );
    }
    let name = spec.name.clone();
    let rt = runtime()?;
    if !args.dry_run {
        rt.block_on(crate::local_cluster::ensure(&args.host))?;
    }
    let engine = crate::local_cluster::engine_socket();
    let built = rt.block_on(crate::cluster_images::build(
        &mut spec,
        &engine,
        args.build,
        args.dry_run,
    ))?;
    let fresh = args.dry_run.then_some(&built);
    rt.block_on(crate::cluster_images::publish(&mut spec, &engine, fresh))?;
    let api = ManagerApi::connect(&args.host)?;
    rt.block_on(async {
        let path = format!("/v1/stacks/{name}");
        let existing: Option<Stack> = match api.call(Method::GET, &path).await {
            Ok(stack) => Some(stack),
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(e),
        };
        if args.dry_run {
            print_plan(existing.as_ref().map(|s| &s.spec), &spec);
            return Ok(ExitCode::SUCCESS);
        }
        let written: Stack = match &existing {
            None => {
                let body = json!({"id": name, "spec": spec});
                api.send(Method::POST, "/v1/stacks", Some(&body)).await?
            }
            Some(old) => {
                let body = json!({"labels": old.meta.labels, "spec": spec});
                let path = format!("{path}?version={}", old.meta.version);
                api.send(Method::PUT, &path, Some(&body)).await?
            }
        };
        eprintln!(
            "stack {name} {} (version {})",
            if existing.is_some() {
                "updated"
            } else {
                "created"
            },
            written.meta.version
        );
        if args.detach {
            return Ok(ExitCode::SUCCESS);
        }
        let target = Target {
            stack: name.clone(),
            services: spec.services.len(),
            version: written.meta.version,
            written: written.meta.updated,
        };
        follow_up(&api, &target, Duration::from_secs(args.timeout)).await
    })
}

/// Prints which services `up` would create, update or remove.
fn print_plan(old: Option<&api::StackSpec>, new: &api::StackSpec) {
    let empty = BTreeMap::new();
    let before = old.map_or(&empty, |s| &s.services);
    for (key, spec) in &new.services {
        match before.get(key) {
            None => println!("create  {key}"),
            Some(old) if old != spec => {
                let a = serde_json::to_value(old).unwrap_or_default();
                let b = serde_json::to_value(spec).unwrap_or_default();
                println!("update  {key}");
                for line in diff("", &a, &b) {
                    println!("          {line}");
                }
            }
            Some(_) => println!("keep    {key}"),
        }
    }
    for key in before.keys() {
        if !new.services.contains_key(key) {
            println!("remove  {key}");
        }
    }
}

/// Field-level differences of two JSON values (`path: old -> new`).
fn diff(path: &str, a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    diff(
                        &p,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    )
                })
                .collect()
        }
        _ if a == b => Vec::new(),
        _ => vec![format!("{path}: {a} -> {b}")],
    }
}

/// Where one service stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub name: String,
    /// Tasks running the current spec, or completed and not to be restarted.
    pub running: usize,
    /// Of those, the completed ones.
    pub completed: usize,
    pub desired: usize,
    pub failed: usize,
    /// Done: converged (running as desired, or a job's tasks completed).
    pub done: bool,
    /// Why tasks are not running (pending reasons, failures), newest first.
    pub why: Vec<String>,
}

impl Progress {
    /// `2/3 running`, `1/1 completed` (a one-shot), or `3/3 up (2 running, 1
    /// completed)`.
    pub fn counts(&self) -> String {
        let (up, desired, completed) = (self.running, self.desired, self.completed);
        match up - completed {
            _ if completed == 0 => format!("{up}/{desired} running"),
            0 => format!("{completed}/{desired} completed"),
            running => format!("{up}/{desired} up ({running} running, {completed} completed)"),
        }
    }
}

/// The progress of each service of `stack` from the API's objects.
fn progress(stack: &str, services: &[Service], tasks: &[Task], nodes: usize) -> Vec<Progress> {
    services
        .iter()
        .filter(|s| s.stack == stack)
        .map(|s| service_progress(s, tasks, nodes))
        .collect()
}

/// Where `service` stands: its tasks running the current spec (or completed, for a
/// task not to be restarted) against the replicas wanted (`nodes`: ready nodes, for
/// global services).
pub fn service_progress(service: &Service, tasks: &[Task], nodes: usize) -> Progress {
    {
        let of: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.service == service.meta.id)
            .collect();
        let fresh = |t: &&&Task| same_task_spec(&t.spec, &service.spec);
        let current: Vec<&Task> = of.iter().copied().filter(|t| wanted(t)).collect();
        let running = current
            .iter()
            .filter(|t| same_task_spec(&t.spec, &service.spec))
            .filter(|t| t.status.state == TaskState::Running)
            .count();
        let restart = Restart::of(&service.spec);
        let completed = of
            .iter()
            .filter(fresh)
            .filter(|t| {
                t.status.state == TaskState::Complete && !restart.wants(TaskState::Complete)
            })
            .count();
        let failed = of
            .iter()
            .filter(fresh)
            .filter(|t| matches!(t.status.state, TaskState::Failed | TaskState::Rejected))
            .count();
        let desired = match mode(&service.spec) {
            DeployMode::Replicated | DeployMode::ReplicatedJob => replicas(&service.spec) as usize,
            DeployMode::Global | DeployMode::GlobalJob => current.len().max(nodes.min(1)),
        };
        let outdated = current
            .iter()
            .any(|t| !same_task_spec(&t.spec, &service.spec));
        let done = !outdated && (running + completed >= desired) && current.len() <= desired;
        let mut recent: Vec<&&Task> = of
            .iter()
            .filter(|t| !t.status.message.is_empty())
            .filter(|t| t.status.state != TaskState::Running)
            .collect();
        recent.sort_by_key(|t| std::cmp::Reverse(t.status.timestamp));
        let mut why: Vec<String> = Vec::new();
        for t in recent {
            let line = format!(
                "{} {}: {}",
                t.status.state.as_str(),
                task_name(t),
                t.status.message
            );
            if !why.iter().any(|w| w.ends_with(&t.status.message)) {
                why.push(line);
            }
        }
        Progress {
            name: service.name.clone(),
            running: running + completed,
            completed,
            desired,
            failed,
            done,
            why,
        }
    }
}

pub(crate) fn task_name(t: &Task) -> String {
    let service = if t.stack.is_empty() {
        t.name.clone()
    } else {
        format!("{}_{}", t.stack, t.name)
    };
    if t.slot == 0 {
        format!("{service}.{}", t.node.as_deref().unwrap_or("-"))
    } else {
        format!("{service}.{}", t.slot)
    }
}

async fn snapshot(api: &ManagerApi) -> anyhow::Result<(Vec<Service>, Vec<Task>, Vec<Node>)> {
    let services: List<Service> = api.call(Method::GET, "/v1/services").await?;
    let tasks: List<Task> = api.call(Method::GET, "/v1/tasks").await?;
    let nodes: List<Node> = api.call(Method::GET, "/v1/nodes").await?;
    Ok((services.items, tasks.items, nodes.items))
}

/// What `up` waits for: the stack's services made from (at least) the stack version
/// written, then converged.
struct Target {
    stack: String,
    services: usize,
    version: u64,
    /// When the managers took the write.
    written: Timestamp,
}

/// Whether a service of `stack` is still rolling out the write at `written`: its new
/// tasks may run, but the managers watch them for `update_config.monitor` before the
/// rollout completes (or rolls back).
fn rolling_out(stack: &str, services: &[Service], written: Timestamp) -> bool {
    services
        .iter()
        .filter(|s| s.stack == stack)
        .filter_map(|s| s.update_status.as_ref())
        .filter(|u| u.started >= written)
        .any(|u| {
            matches!(
                u.state,
                UpdateState::Updating | UpdateState::RollbackStarted
            )
        })
}

/// The services of `stack` whose rollout of the write at `written` stopped: paused,
/// or rolled back (`failure_action`), each as `NAME: why`. They will not converge on
/// what was written.
fn stopped_rollouts(stack: &str, services: &[Service], written: Timestamp) -> Vec<String> {
    services
        .iter()
        .filter(|s| s.stack == stack)
        .filter_map(|s| Some((s, s.update_status.as_ref()?)))
        .filter(|(_, u)| u.started >= written)
        .filter(|(_, u)| {
            matches!(
                u.state,
                UpdateState::Paused | UpdateState::RollbackPaused | UpdateState::RollbackCompleted
            )
        })
        .map(|(s, u)| format!("{}: {}", s.name, u.message))
        .collect()
}

/// Follows the stack until it converges (exit 0) or the deadline passes (exit 1,
/// with each unconverged service's reasons).
async fn follow_up(
    api: &ManagerApi,
    target: &Target,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let stack = target.stack.as_str();
    let services = target.services;
    let start = Instant::now();
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let (all_services, tasks, nodes) = snapshot(api).await?;
        let applied = all_services
            .iter()
            .filter(|s| s.stack == stack && s.stack_version >= target.version)
            .count();
        if applied < services {
            if start.elapsed() >= timeout {
                eprintln!(
                    "error: the managers did not apply stack {stack} in {}s ({applied} of {services} services)",
                    timeout.as_secs()
                );
                return Ok(ExitCode::FAILURE);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let ready = nodes
            .iter()
            .filter(|n| n.status.state == api::cluster::NodeState::Ready)
            .count();
        let now = progress(stack, &all_services, &tasks, ready);
        for p in &now {
            let line = format!(
                "{}{}{}",
                p.counts(),
                if p.failed > 0 {
                    format!(", {} failed", p.failed)
                } else {
                    String::new()
                },
                if p.done { " ✔" } else { "" }
            );
            if shown.get(&p.name) != Some(&line) {
                eprintln!("  {:<24} {line}", p.name);
                shown.insert(p.name.clone(), line);
            }
        }
        let stopped = stopped_rollouts(stack, &all_services, target.written);
        if !stopped.is_empty() {
            eprintln!("error: stack {stack} was not rolled out as written:");
            for why in stopped {
                eprintln!("  {why}");
            }
            return Ok(ExitCode::FAILURE);
        }
        if now.len() >= services
            && now.iter().all(|p| p.done)
            && !rolling_out(stack, &all_services, target.written)
        {
            eprintln!(
                "stack {stack}: {} services converged in {:.1}s",
                now.len(),
                start.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if start.elapsed() >= timeout {
            eprintln!(
                "error: stack {stack} did not converge in {}s:",
                timeout.as_secs()
            );
            for p in now.iter().filter(|p| !p.done) {
                eprintln!("  {}: {}", p.name, p.counts());
                for why in p.why.iter().take(3) {
                    eprintln!("    {why}");
                }
            }
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Run `orch ps`.
pub fn ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    let name = stack_name(&args.stack)?;
    let api = ManagerApi::connect(&args.host)?;
    runtime()?.block_on(async {
        let (_, tasks, nodes) = snapshot(&api).await?;
        let hostnames: BTreeMap<&str, &str> = nodes
            .iter()
            .map(|n| (n.meta.id.as_str(), n.description.hostname.as_str()))
            .collect();
        let mut tasks: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.stack == name)
            .filter(|t| args.service.as_ref().is_none_or(|s| *s == t.name))
            .filter(|t| args.all || wanted(t))
            .collect();
        tasks.sort_by_key(|t| {
            (
                t.name.clone(),
                t.slot,
                t.node.clone(),
                std::cmp::Reverse(t.meta.created),
            )
        });
        if args.json {
            return render::json(&tasks).map(|_| ExitCode::SUCCESS);
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|t| {
                let node = t.node.as_deref().map_or(String::new(), |n| {
                    hostnames
                        .get(n)
                        .filter(|h| !h.is_empty())
                        .map_or(n.to_owned(), |h| (*h).to_owned())
                });
                let ago = now_ms.saturating_sub(t.status.timestamp.0) / 1000;
                let mut error = t.status.message.clone();
                if let Some(code) = t.status.exit_code.filter(|c| *c != 0) {
                    error = if error.is_empty() {
                        format!("exit {code}")
                    } else {
                        error
                    };
                }
                vec![
                    t.meta.id.clone(),
                    task_name(t),
                    t.spec.image.as_deref().map_or(String::new(), |i| {
                        if args.no_trunc {
                            i.to_owned()
                        } else {
                            render::image(i)
                        }
                    }),
                    node,
                    t.desired_state.as_str().to_owned(),
                    format!("{} {}s ago", t.status.state.as_str(), ago),
                    error,
                ]
            })
            .collect();
        render::table(
            &["ID", "NAME", "IMAGE", "NODE", "DESIRED", "CURRENT", "ERROR"],
            &rows,
        )?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Run `orch ls`.
pub fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let api = ManagerApi::connect(&args.host)?;
    runtime()?.block_on(async {
        let stacks: List<Stack> = api.call(Method::GET, "/v1/stacks").await?;
        let (services, tasks, _) = snapshot(&api).await?;
        let rows: Vec<Vec<String>> = stacks
            .items
            .iter()
            .map(|s| {
                let p = progress(&s.meta.id, &services, &tasks, 1);
                let running: usize = p.iter().map(|p| p.running).sum();
                let desired: usize = p.iter().map(|p| p.desired).sum();
                vec![
                    s.meta.id.clone(),
                    s.spec.services.len().to_string(),
                    format!("{running}/{desired}"),
                ]
            })
            .collect();
        render::table(&["NAME", "SERVICES", "TASKS"], &rows)?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::Progress;

    fn counts(running: usize, completed: usize, desired: usize) -> String {
        Progress {
            name: "web".into(),
            running,
            completed,
            desired,
            failed: 0,
            done: false,
            why: Vec::new(),
        }
        .counts()
    }

    #[test]
    fn a_completed_one_shot_says_completed_not_running() {
        assert_eq!(counts(1, 0, 3), "1/3 running");
        assert_eq!(counts(1, 1, 1), "1/1 completed");
        assert_eq!(counts(3, 1, 3), "3/3 up (2 running, 1 completed)");
    }

    #[test]
    fn a_rollout_of_this_write_that_stopped_fails_up_an_older_one_does_not() {
        use super::{Service, Timestamp, UpdateState, stopped_rollouts};
        use api::cluster::UpdateStatus;
        let service = |name: &str, state, started| Service {
            name: name.into(),
            stack: "coins".into(),
            update_status: Some(UpdateStatus {
                state,
                started: Timestamp(started),
                completed: None,
                message: format!("{name} stopped"),
            }),
            ..Service::default()
        };
        let services = [
            service("hasher", UpdateState::RollbackCompleted, 200),
            service("rng", UpdateState::Paused, 150),
            service("old", UpdateState::RollbackCompleted, 99),
            service("webui", UpdateState::Completed, 200),
            service("worker", UpdateState::Updating, 200),
        ];
        assert_eq!(
            stopped_rollouts("coins", &services, Timestamp(100)),
            ["hasher: hasher stopped", "rng: rng stopped"]
        );
        assert!(stopped_rollouts("other", &services, Timestamp(100)).is_empty());
        assert!(super::rolling_out("coins", &services, Timestamp(100)));
        assert!(!super::rolling_out("coins", &services[..4], Timestamp(100)));
    }
}
