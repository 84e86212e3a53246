//! `orch service ls|inspect|update|rollback|rebalance` and `orch scale`: a stack's services on
//! the cluster. A service is named by its id (`shop_web`) or, when only one stack
//! has it, by its name in the stack (`web`).

use crate::manager_api::{HostArgs, List, ManagerApi, runtime};
use crate::render;
use anyhow::{Context, bail};
use api::cluster::{RebalanceState, Service, Task, TaskState, UpdateState};
use api::deploy::DeployMode;
use clap::{Args, Subcommand};
use manager::orchestrator::policy::{mode, replicas, same_task_spec};
use manager::orchestrator::wanted;
use reqwest::Method;
use serde_json::json;
use std::process::ExitCode;

/// `orch service ...`.
#[derive(Subcommand)]
pub enum ServiceCommand {
    /// List services: mode, replicas running/desired, image, rollout.
    Ls,
    /// Show a service as JSON (spec, virtual addresses, rollout, previous spec).
    Inspect { service: String },
    /// Change a service (until its stack is deployed again).
    Update {
        service: String,
        /// A new image.
        #[arg(long)]
        image: Option<String>,
        /// A new replica count.
        #[arg(long)]
        replicas: Option<u64>,
    },
    /// Go back to the spec before the last change, rolling as `rollback_config` says.
    Rollback { service: String },
    /// Move a replicated service's running tasks, a batch at a time under its
    /// `update_config`, until its placement strategy is satisfied (e.g. after nodes
    /// joined or came back). A service labelled `orch.rebalance=true` does this by
    /// itself.
    Rebalance {
        service: String,
        /// Do not wait for the rebalance to complete.
        #[arg(short, long)]
        detach: bool,
        /// Seconds to wait for it.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
}

/// Flags of `orch scale`.
#[derive(Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    host: HostArgs,
    /// `SERVICE=REPLICAS`, one or more.
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    targets: Vec<String>,
}

async fn services(api: &ManagerApi) -> anyhow::Result<Vec<Service>> {
    let list: List<Service> = api.call(Method::GET, "/v1/services").await?;
    Ok(list.items)
}

/// The service `name` names (its id, or its unique name within a stack).
pub(crate) async fn find(api: &ManagerApi, name: &str) -> anyhow::Result<Service> {
    let all = services(api).await?;
    if let Some(s) = all.iter().find(|s| s.meta.id == name) {
        return Ok(s.clone());
    }
    let matches: Vec<&Service> = all.iter().filter(|s| s.name == name).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no service {name} (see `orch service ls`)"),
        many => bail!(
            "{name} names several services: {}; use the full name",
            many.iter()
                .map(|s| s.meta.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Writes `service` with a new spec, naming the version read.
async fn put(api: &ManagerApi, service: &Service) -> anyhow::Result<Service> {
    let body = json!({
        "labels": service.meta.labels,
        "stack": service.stack,
        "name": service.name,
        "spec": service.spec,
    });
    let path = format!(
        "/v1/services/{}?version={}",
        service.meta.id, service.meta.version
    );
    api.send(Method::PUT, &path, Some(&body))
        .await
        .with_context(|| format!("update service {}", service.meta.id))
}

fn set_replicas(service: &mut Service, n: u64) -> anyhow::Result<()> {
    if matches!(
        mode(&service.spec),
        DeployMode::Global | DeployMode::GlobalJob
    ) {
        bail!(
            "{} is a global service: it runs one task per node and has no replica count",
            service.meta.id
        );
    }
    if let Some(name) = service.spec.container_name.as_ref().filter(|_| n > 1) {
        bail!(
            "{} has container_name {name:?}, which names one container: it cannot have {n} replicas (remove container_name from the stack file first)",
            service.meta.id
        );
    }
    service.spec.scale = None;
    service
        .spec
        .deploy
        .get_or_insert_with(Default::default)
        .replicas = Some(n);
    Ok(())
}

/// Run `orch scale`.
pub fn scale(args: ScaleArgs) -> anyhow::Result<ExitCode> {
    let mut targets = Vec::new();
    for t in &args.targets {
        let (name, n) = t
            .split_once('=')
            .with_context(|| format!("{t:?} is not SERVICE=REPLICAS"))?;
        let n: u64 = n
            .parse()
            .with_context(|| format!("{n:?} in {t:?} is not a replica count"))?;
        targets.push((name.to_owned(), n));
    }
    let api = ManagerApi::connect(&args.host)?;
    runtime()?.block_on(async {
        for (name, n) in targets {
            let mut service = find(&api, &name).await?;
            set_replicas(&mut service, n)?;
            put(&api, &service).await?;
            println!("{} scaled to {n}", service.meta.id);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Run `orch service ...`.
pub fn run(cmd: ServiceCommand, host: &HostArgs) -> anyhow::Result<ExitCode> {
    let api = ManagerApi::connect(host)?;
    runtime()?.block_on(async {
        match cmd {
            ServiceCommand::Ls => {
                let services = services(&api).await?;
                let tasks: List<Task> = api.call(Method::GET, "/v1/tasks").await?;
                let nodes: List<api::cluster::Node> = api.call(Method::GET, "/v1/nodes").await?;
                let ready = nodes
                    .items
                    .iter()
                    .filter(|n| n.status.state == api::cluster::NodeState::Ready)
                    .count();
                let rows: Vec<Vec<String>> = services
                    .iter()
                    .map(|s| service_row(s, &tasks.items, ready))
                    .collect();
                render::table(
                    &["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "ROLLOUT"],
                    &rows,
                )?;
            }
            ServiceCommand::Inspect { service } => {
                let service = find(&api, &service).await?;
                render::json(&service)?;
            }
            ServiceCommand::Update {
                service,
                image,
                replicas,
            } => {
                let mut service = find(&api, &service).await?;
                if let Some(image) = image {
                    service.spec.image = Some(image);
                }
                if let Some(n) = replicas {
                    set_replicas(&mut service, n)?;
                }
                let written = put(&api, &service).await?;
                println!("{} (version {})", written.meta.id, written.meta.version);
            }
            ServiceCommand::Rebalance {
                service,
                detach,
                timeout,
            } => {
                let service = find(&api, &service).await?;
                let id = service.meta.id;
                let path = format!("/v1/services/{id}/rebalance");
                let _: Service = api
                    .send(Method::POST, &path, None::<&()>)
                    .await
                    .with_context(|| format!("rebalance service {id}"))?;
                if detach {
                    println!("{id}: rebalance asked for");
                    return Ok(ExitCode::SUCCESS);
                }
                return follow_rebalance(&api, &id, timeout).await;
            }
            ServiceCommand::Rollback { service } => {
                let mut service = find(&api, &service).await?;
                let Some(previous) = service.previous_spec.take() else {
                    bail!("{} has no previous spec to roll back to", service.meta.id);
                };
                service.spec = previous;
                let written = put(&api, &service).await?;
                println!(
                    "{} rolled back (version {})",
                    written.meta.id, written.meta.version
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits until the rebalance of service `id` completes, saying each move; then shows
/// its running tasks per node.
async fn follow_rebalance(api: &ManagerApi, id: &str, timeout: u64) -> anyhow::Result<ExitCode> {
    let start = std::time::Instant::now();
    let mut said = 0;
    loop {
        let service: Service = api.call(Method::GET, &format!("/v1/services/{id}")).await?;
        let status = service.rebalance.unwrap_or_default();
        if status.moved > said {
            said = status.moved;
            eprintln!("{id}: {said} task(s) moved");
        }
        if status.state == RebalanceState::Completed {
            let tasks: List<Task> = api
                .call(Method::GET, &format!("/v1/tasks?service={id}"))
                .await?;
            let mut per_node: std::collections::BTreeMap<String, usize> = Default::default();
            for t in tasks.items.iter().filter(|t| {
                t.desired_state == api::cluster::TaskState::Running
                    && t.status.state == api::cluster::TaskState::Running
            }) {
                *per_node
                    .entry(t.node.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            let spread: Vec<String> = per_node.iter().map(|(n, c)| format!("{n}: {c}")).collect();
            let why = if status.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", status.message)
            };
            println!(
                "{id}: rebalanced, {} task(s) moved{why}; running per node: {}",
                status.moved,
                spread.join(", ")
            );
            return Ok(ExitCode::SUCCESS);
        }
        if start.elapsed() >= std::time::Duration::from_secs(timeout) {
            eprintln!(
                "error: {id} is still rebalancing after {timeout}s ({} task(s) moved); see `orch service inspect {id}` and `orch ps`",
                status.moved
            );
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

fn service_row(s: &Service, tasks: &[Task], nodes: usize) -> Vec<String> {
    let progress = crate::stack_cmd::service_progress(s, tasks, nodes);
    let (mode_name, desired) = match mode(&s.spec) {
        DeployMode::Replicated => ("replicated", replicas(&s.spec).to_string()),
        DeployMode::ReplicatedJob => ("replicated-job", replicas(&s.spec).to_string()),
        DeployMode::Global => ("global", progress.desired.to_string()),
        DeployMode::GlobalJob => ("global-job", progress.desired.to_string()),
    };
    // As `docker service ls`: every running task counts, whatever spec it runs (an
    // update in progress, or paused, keeps old tasks serving).
    let outdated = tasks
        .iter()
        .filter(|t| t.service == s.meta.id && wanted(t))
        .filter(|t| t.status.state == TaskState::Running && !same_task_spec(&t.spec, &s.spec))
        .count();
    let running = progress.running + outdated;
    let moving = s
        .rebalance
        .as_ref()
        .filter(|r| r.state != RebalanceState::Completed)
        .map(|r| format!("rebalancing ({} moved)", r.moved));
    let rollout = moving.unwrap_or_else(|| {
        s.update_status.as_ref().map_or(String::new(), |u| {
            let state = match u.state {
                UpdateState::Updating => "updating",
                UpdateState::Paused => "paused",
                UpdateState::Completed => "completed",
                UpdateState::RollbackStarted => "rolling back",
                UpdateState::RollbackPaused => "rollback paused",
                UpdateState::RollbackCompleted => "rolled back",
            };
            // The managers' message names what happened ("rolled back: 1 of 3 new
            // tasks failed"): the state says it already.
            let why = ["rolled back: ", "update paused: ", "rollback paused: "]
                .iter()
                .find_map(|verb| u.message.strip_prefix(verb))
                .unwrap_or(&u.message);
            if why.is_empty() {
                state.to_owned()
            } else {
                format!("{state}: {why}")
            }
        })
    });
    vec![
        s.meta.id.clone(),
        s.name.clone(),
        mode_name.to_owned(),
        format!("{running}/{desired}"),
        s.spec
            .image
            .as_deref()
            .map_or(String::new(), crate::render::image),
        rollout,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::TaskStatus;
    use api::deploy::DeploySpec;
    use api::service::ServiceSpec;

    fn task(image: &str, state: TaskState) -> Task {
        Task {
            service: "s_web".into(),
            desired_state: TaskState::Running,
            status: TaskStatus {
                state,
                ..TaskStatus::default()
            },
            spec: ServiceSpec {
                image: Some(image.into()),
                ..ServiceSpec::default()
            },
            ..Task::default()
        }
    }

    #[test]
    fn replicas_count_old_tasks_still_running_during_an_update() {
        let mut service = Service {
            name: "web".into(),
            spec: ServiceSpec {
                image: Some("web:2".into()),
                deploy: Some(DeploySpec {
                    replicas: Some(3),
                    ..DeploySpec::default()
                }),
                ..ServiceSpec::default()
            },
            ..Service::default()
        };
        service.meta.id = "s_web".into();
        let tasks = [
            task("web:1", TaskState::Running),
            task("web:1", TaskState::Running),
            task("web:2", TaskState::Rejected),
            task("web:2", TaskState::Running),
        ];
        let row = service_row(&service, &tasks, 1);
        assert_eq!(row[3], "3/3", "{row:?}");
        let row = service_row(&service, &tasks[..3], 1);
        assert_eq!(
            row[3], "2/3",
            "the paused update's old tasks serve: {row:?}"
        );
        service.update_status = Some(api::cluster::UpdateStatus {
            state: UpdateState::RollbackCompleted,
            message: "rolled back: 1 of 3 new tasks failed".into(),
            ..api::cluster::UpdateStatus::default()
        });
        let row = service_row(&service, &tasks, 1);
        assert_eq!(row[5], "rolled back: 1 of 3 new tasks failed", "{row:?}");
    }
}
