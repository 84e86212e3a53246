//! `orch down`: delete a stack, then wait until its tasks stopped; with `--volumes`
//! also until its named volumes are gone from every node (the managers mark them for
//! removal, the nodes remove them once their tasks stopped and confirm, a node that
//! is down does when it comes back), also those a stack already taken down without
//! `--volumes` left. External volumes are never removed.

use crate::config::StackFileArgs;
use crate::manager_api::{HostArgs, List, ManagerApi, is_not_found, runtime};
use crate::stack_cmd::stack_name;
use anyhow::Context;
use api::cluster::{Node, NodeState, Task, TaskState, Volume, VolumeState};
use clap::Args;
use manager::orchestrator::volumes::has_engine;
use reqwest::Method;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Flags of `orch down`.
#[derive(Args)]
pub struct DownArgs {
    #[command(flatten)]
    stack: StackFileArgs,
    #[command(flatten)]
    host: HostArgs,
    /// Return once the stack is deleted; do not wait for its tasks to stop.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Also remove the stack's named volumes (not external ones) from every node,
    /// once the tasks using them stopped; of a stack already removed, the volumes it
    /// left.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// How long to wait for the tasks to stop (and the volumes to go), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
}

/// Run `orch down`.
pub fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let name = stack_name(&args.stack)?;
    let api = ManagerApi::connect(&args.host)?;
    runtime()?.block_on(async {
        let path = if args.volumes {
            format!("/v1/stacks/{name}?volumes=true")
        } else {
            format!("/v1/stacks/{name}")
        };
        let deleted = match api.call(Method::DELETE, &path).await {
            Ok(deleted) => deleted,
            Err(e) => {
                let left = if is_not_found(&e) {
                    volumes(&api, &name).await?
                } else {
                    Vec::new()
                };
                let hint = match left_hint(&left) {
                    Some(ids) => format!(
                        " (it left volumes {ids} on the nodes: `orch down --volumes` removes them)"
                    ),
                    None => String::new(),
                };
                return Err(e.context(format!("remove stack {name}{hint}")));
            }
        };
        let removing: Vec<String> = match deleted {
            Deleted::Stack(_) => {
                eprintln!("stack {name} removed");
                let removing = if args.volumes {
                    marked(volumes(&api, &name).await?)
                } else {
                    Vec::new()
                };
                if !removing.is_empty() {
                    eprintln!(
                        "stack {name}: removing volumes {} from every node",
                        removing.join(", ")
                    );
                }
                removing
            }
            Deleted::Volumes(left) => {
                let removing = marked(left.items);
                eprintln!(
                    "stack {name} is already removed; removing its volumes {} from every node",
                    removing.join(", ")
                );
                removing
            }
        };
        if args.detach {
            return Ok(ExitCode::SUCCESS);
        }
        wait(&api, &name, &removing, Duration::from_secs(args.timeout)).await
    })
}

/// What the managers answer a delete with: the stack as it was or, with `--volumes`
/// and a stack already removed, the volumes it left, marked for removal.
#[derive(Deserialize)]
#[serde(untagged)]
enum Deleted {
    Volumes(List<Volume>),
    Stack(IgnoredAny),
}

/// The ids of the volumes of `volumes` marked for removal.
fn marked(volumes: Vec<Volume>) -> Vec<String> {
    volumes
        .into_iter()
        .filter(|v| v.desired_state == VolumeState::Remove)
        .map(|v| v.meta.id)
        .collect()
}

/// The ids of the volumes a removed stack left that are not being removed yet (none:
/// nothing to say).
fn left_hint(left: &[Volume]) -> Option<String> {
    let ids: Vec<&str> = left
        .iter()
        .filter(|v| v.desired_state == VolumeState::Active)
        .map(|v| v.meta.id.as_str())
        .collect();
    (!ids.is_empty()).then(|| ids.join(", "))
}

/// The volumes of stack `stack` on the cluster.
async fn volumes(api: &ManagerApi, stack: &str) -> anyhow::Result<Vec<Volume>> {
    let list: List<Volume> = api
        .call(Method::GET, &format!("/v1/volumes?stack={stack}"))
        .await
        .with_context(|| format!("list the volumes of stack {stack}"))?;
    Ok(list.items)
}

/// Waits until no task of `stack` is left but orphaned ones (of nodes that are
/// down) and none of `removing` is (each node confirmed); after `timeout`, says
/// what is left and which nodes did not confirm.
async fn wait(
    api: &ManagerApi,
    stack: &str,
    removing: &[String],
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let mut tasks_left = usize::MAX;
    loop {
        if tasks_left > 0 {
            let tasks: List<Task> = api.call(Method::GET, "/v1/tasks").await?;
            let of_stack = || tasks.items.iter().filter(|t| t.stack == stack);
            // An orphaned task's node is down: it removes the container when it
            // comes back (the task and its addresses stay until then).
            let orphaned = of_stack()
                .filter(|t| t.status.state == TaskState::Orphaned)
                .count();
            tasks_left = of_stack().count() - orphaned;
            if tasks_left == 0 {
                eprintln!(
                    "stack {stack}: every task stopped ({:.1}s)",
                    start.elapsed().as_secs_f64()
                );
                if orphaned > 0 {
                    eprintln!(
                        "stack {stack}: {orphaned} orphaned task(s) of nodes that are down: each node removes them when it comes back (or `orch node rm` does)"
                    );
                }
            }
        }
        let volumes_left: Vec<Volume> = if removing.is_empty() {
            Vec::new()
        } else {
            volumes(api, stack)
                .await?
                .into_iter()
                .filter(|v| removing.contains(&v.meta.id) && v.desired_state == VolumeState::Remove)
                .collect()
        };
        if tasks_left == 0 && volumes_left.is_empty() {
            if !removing.is_empty() {
                eprintln!(
                    "stack {stack}: volumes {} removed from every node ({:.1}s)",
                    removing.join(", "),
                    start.elapsed().as_secs_f64()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        if start.elapsed() >= timeout {
            let secs = timeout.as_secs();
            if tasks_left > 0 {
                eprintln!(
                    "error: {tasks_left} tasks of stack {stack} still stopping after {secs}s"
                );
            }
            let nodes: List<Node> = api.call(Method::GET, "/v1/nodes").await?;
            for volume in &volumes_left {
                eprintln!(
                    "error: volume {} not confirmed removed after {secs}s by nodes {} (a node that is down removes it when it comes back)",
                    volume.meta.id,
                    unconfirmed(volume, &nodes.items).join(", "),
                );
            }
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The nodes that have not confirmed removing `volume`: `ID (HOSTNAME, STATE)`.
fn unconfirmed(volume: &Volume, nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| has_engine(n) && !volume.removed_on.contains(&n.meta.id))
        .map(|n| {
            let state = match n.status.state {
                NodeState::Ready => "ready",
                NodeState::Down => "down",
                NodeState::Unknown => "unknown",
            };
            match n.description.hostname.as_str() {
                "" => format!("{} ({state})", n.meta.id),
                host => format!("{} ({host}, {state})", n.meta.id),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::{Meta, Stack};

    #[test]
    fn a_delete_answers_the_stack_or_the_volumes_a_removed_stack_left() {
        let stack = Stack {
            meta: Meta::new("shop"),
            ..Stack::default()
        };
        let answer = serde_json::to_value(&stack).unwrap();
        assert!(matches!(
            serde_json::from_value(answer).unwrap(),
            Deleted::Stack(_)
        ));
        let kept = Volume {
            meta: Meta::new("shop_kept"),
            ..Volume::default()
        };
        let removing = Volume {
            meta: Meta::new("shop_data"),
            desired_state: VolumeState::Remove,
            ..Volume::default()
        };
        let answer = serde_json::json!({"version": 7, "items": [kept, removing]});
        let Deleted::Volumes(left) = serde_json::from_value(answer).unwrap() else {
            panic!("not the volumes");
        };
        assert_eq!(left_hint(&left.items).as_deref(), Some("shop_kept"));
        assert_eq!(marked(left.items), ["shop_data"]);
        assert_eq!(left_hint(&[]), None);
    }

    #[test]
    fn nodes_that_did_not_confirm_are_named_with_their_state_but_not_engineless_ones() {
        let node = |id: &str, host: &str, state| {
            let mut n = Node {
                meta: Meta::new(id),
                ..Node::default()
            };
            n.description.hostname = host.into();
            n.description.engine_version = "0.1.0".into();
            n.status.state = state;
            n
        };
        let nodes = [
            node("n1", "alpha", NodeState::Ready),
            node("n2", "beta", NodeState::Down),
            node("n3", "", NodeState::Ready),
            Node {
                meta: Meta::new("m1"),
                ..Node::default()
            },
        ];
        let volume = Volume {
            meta: Meta::new("shop_data"),
            desired_state: VolumeState::Remove,
            removed_on: ["n1".to_owned()].into(),
            ..Volume::default()
        };
        assert_eq!(
            unconfirmed(&volume, &nodes),
            ["n2 (beta, down)", "n3 (ready)"]
        );
    }
}
