//! Commands that talk to the cluster's managers through the REST API: `orch node ...`
//! and `orch cluster status`. The manager is found from `--host`/`ORCH_HOST` (with the
//! saved context's CA and token), else the saved context, else the local manager's
//! root-only socket.

pub use crate::manager_api::HostArgs;
use crate::manager_api::{List, ManagerApi, runtime};
use crate::render;
use anyhow::{Context, bail};
use api::cluster::{Availability, Node, NodeRole};
use api::error::ErrorCode;
use clap::{Args, Subcommand, ValueEnum};
use manager::http::nodes::NodeUpdate;
use reqwest::Method;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// `orch node ...`.
#[derive(Subcommand)]
pub enum NodeCommand {
    /// List the cluster's nodes.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a node as JSON.
    Inspect {
        /// The node: an id, a unique id prefix, or a hostname.
        node: String,
    },
    /// Change a node's labels or availability.
    Update(UpdateArgs),
    /// Make a worker a manager.
    ///
    /// Its agent hears of it on its session, renews its certificate as a manager's at
    /// once and starts a manager in its own process (listening on its
    /// `--manager-listen`, data in its data directory), which joins the raft group.
    Promote {
        /// The node: an id, a unique id prefix, or a hostname.
        node: String,
    },
    /// Make a manager a worker: it leaves the raft group.
    ///
    /// From then on its certificate counts as a worker's (no control API, no raft), and
    /// its next renewal makes it one; remove it with `orch node rm`. The last manager is
    /// refused, and so is the current leader (stop its `orch manager` so another manager
    /// is elected, then demote it), and a demotion that would leave the raft group
    /// without a majority of answering managers.
    Demote {
        /// The node: an id, a unique id prefix, or a hostname.
        node: String,
    },
    /// Remove a node: its certificate is revoked and its tasks are replaced elsewhere.
    ///
    /// Its open connections are cut and its next connection is refused: a removed agent
    /// must join again with a token. A ready node needs --force; so does a manager in
    /// the raft group, which then leaves it first (as `orch node demote` checks).
    Rm {
        /// The node: an id, a unique id prefix, or a hostname.
        node: String,
        /// Remove it even while it is ready (its agent holds a session) or a raft member.
        #[arg(short, long)]
        force: bool,
    },
}

/// `orch node update NODE ...`.
#[derive(Args)]
pub struct UpdateArgs {
    /// The node: an id, a unique id prefix, or a hostname.
    pub node: String,
    /// Add or replace a label (`key=value`, or `key` for an empty value); repeatable.
    #[arg(long = "label-add", value_name = "KEY=VALUE")]
    pub label_add: Vec<String>,
    /// Remove a label by key; repeatable.
    #[arg(long = "label-rm", value_name = "KEY")]
    pub label_rm: Vec<String>,
    /// Whether new tasks may be placed here (`active`), not (`pause`), or running ones
    /// move away (`drain`).
    #[arg(long, value_enum)]
    pub availability: Option<AvailabilityArg>,
}

/// `--availability`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AvailabilityArg {
    Active,
    Pause,
    Drain,
}

impl From<AvailabilityArg> for Availability {
    fn from(a: AvailabilityArg) -> Availability {
        match a {
            AvailabilityArg::Active => Availability::Active,
            AvailabilityArg::Pause => Availability::Pause,
            AvailabilityArg::Drain => Availability::Drain,
        }
    }
}

/// `orch cluster ...`.
#[derive(Subcommand)]
pub enum ClusterCommand {
    /// The raft view of the manager asked: leader, members, indexes, health.
    Status,
    /// Start the local single-node cluster (a manager that also runs the engine, on
    /// loopback), as `orch up` does on first use when no cluster is configured.
    Start,
    /// Stop the local cluster's manager and engine (containers keep running).
    Stop,
}

/// Run `orch node ...`.
pub fn node(cmd: NodeCommand, host: &HostArgs) -> anyhow::Result<ExitCode> {
    let api = ManagerApi::connect(host)?;
    let promote = matches!(cmd, NodeCommand::Promote { .. });
    runtime()?.block_on(async {
        match cmd {
            NodeCommand::Ls { json } => {
                let nodes: List<Node> = api.call(Method::GET, "/v1/nodes").await?;
                if json {
                    return render::json(&nodes.items);
                }
                let rows: Vec<Vec<String>> = nodes.items.iter().map(node_row).collect();
                render::table(
                    &[
                        "ID",
                        "HOSTNAME",
                        "ROLE",
                        "STATUS",
                        "AVAILABILITY",
                        "ADDRESS",
                        "MESSAGE",
                    ],
                    &rows,
                )?;
                Ok(())
            }
            NodeCommand::Inspect { node } => render::json(&resolve(&api, &node).await?),
            NodeCommand::Update(args) => {
                let id = resolve(&api, &args.node).await?.meta.id;
                let node = change(&api, &id, |node| {
                    Ok(NodeUpdate {
                        labels: Some(edit_labels(
                            &id,
                            node.meta.labels.clone(),
                            &args.label_add,
                            &args.label_rm,
                        )?),
                        availability: args.availability.map(Availability::from),
                        role: None,
                    })
                })
                .await?;
                println!("{}", node.meta.id);
                Ok(())
            }
            NodeCommand::Promote { node } | NodeCommand::Demote { node } => {
                let role = if promote {
                    NodeRole::Manager
                } else {
                    NodeRole::Worker
                };
                let id = resolve(&api, &node).await?.meta.id;
                let node = change(&api, &id, |_| {
                    Ok(NodeUpdate {
                        role: Some(role),
                        ..NodeUpdate::default()
                    })
                })
                .await?;
                println!("{}", node.meta.id);
                Ok(())
            }
            NodeCommand::Rm { node, force } => {
                let id = resolve(&api, &node).await?.meta.id;
                let path = format!("/v1/nodes/{id}?force={force}");
                let _: Node = api.call(Method::DELETE, &path).await?;
                println!("{id}");
                Ok(())
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The node `name` names: its id, else its hostname, else a unique prefix of its id.
async fn resolve(api: &ManagerApi, name: &str) -> anyhow::Result<Node> {
    let nodes: List<Node> = api.call(Method::GET, "/v1/nodes").await?;
    pick(nodes.items, name)
}

fn pick(nodes: Vec<Node>, name: &str) -> anyhow::Result<Node> {
    let by = |found: Vec<&Node>, what: &str| -> anyhow::Result<Option<Node>> {
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some((*one).clone())),
            many => {
                let ids: Vec<&str> = many.iter().map(|n| n.meta.id.as_str()).collect();
                bail!(
                    "{what} {name:?} names {} nodes ({}): use one of their ids",
                    many.len(),
                    ids.join(", ")
                )
            }
        }
    };
    if let Some(node) = nodes.iter().find(|n| n.meta.id == name) {
        return Ok(node.clone());
    }
    let hosts = nodes
        .iter()
        .filter(|n| !name.is_empty() && n.description.hostname == name)
        .collect();
    if let Some(node) = by(hosts, "hostname")? {
        return Ok(node);
    }
    let prefixed = nodes
        .iter()
        .filter(|n| !name.is_empty() && n.meta.id.starts_with(name))
        .collect();
    by(prefixed, "id prefix")?.with_context(|| {
        format!("no node has the id, hostname or id prefix {name:?}: see `orch node ls`")
    })
}

/// Reads node `id`, makes the update `make` asks for, and writes it naming the
/// version read; again when another write changed the node in between.
async fn change(
    api: &ManagerApi,
    id: &str,
    make: impl Fn(&Node) -> anyhow::Result<NodeUpdate>,
) -> anyhow::Result<Node> {
    const TRIES: usize = 5;
    let mut last = None;
    for _ in 0..TRIES {
        let node: Node = api.call(Method::GET, &format!("/v1/nodes/{id}")).await?;
        let update = make(&node)?;
        let path = format!("/v1/nodes/{id}?version={}", node.meta.version);
        match api.send(Method::PUT, &path, Some(&update)).await {
            Ok(node) => return Ok(node),
            Err(e) if is_version_conflict(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("node {id} kept changing"))
        .context(format!(
            "node {id} kept changing while updating it; try again"
        )))
}

/// Whether `error` is the manager saying the object changed since it was read.
fn is_version_conflict(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<api::error::ApiError>()
        .is_some_and(|e| e.code == ErrorCode::Conflict && e.details.contains_key("actual_version"))
}

/// `labels` with `add` (`key=value`) set and `rm` (keys) removed.
fn edit_labels(
    node: &str,
    mut labels: BTreeMap<String, String>,
    add: &[String],
    rm: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    for key in rm {
        if labels.remove(key).is_none() {
            bail!("node {node} has no label {key:?} to remove (see `orch node inspect {node}`)");
        }
    }
    for pair in add {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.is_empty() {
            bail!("--label-add {pair:?}: the key is empty (write key=value)");
        }
        labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(labels)
}

fn node_row(n: &Node) -> Vec<String> {
    let role = match n.spec.role {
        NodeRole::Manager => "manager",
        NodeRole::Worker => "worker",
    };
    let availability = match n.spec.availability {
        Availability::Active => "active",
        Availability::Pause => "pause",
        Availability::Drain => "drain",
    };
    let state = serde_json::to_value(n.status.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    vec![
        n.meta.id.clone(),
        n.description.hostname.clone(),
        role.to_owned(),
        state,
        availability.to_owned(),
        n.status.addr.clone().unwrap_or_default(),
        n.status.message.clone().unwrap_or_default(),
    ]
}

/// Run `orch cluster ...`.
pub fn cluster(cmd: ClusterCommand, host: &HostArgs) -> anyhow::Result<ExitCode> {
    match cmd {
        ClusterCommand::Start => {
            if !runtime()?.block_on(crate::local_cluster::start(true))? {
                eprintln!("orch: the local cluster is running");
            }
            return Ok(ExitCode::SUCCESS);
        }
        ClusterCommand::Stop => {
            crate::local_cluster::stop()?;
            return Ok(ExitCode::SUCCESS);
        }
        ClusterCommand::Status => {}
    }
    let api = ManagerApi::connect(host)?;
    runtime()?.block_on(async {
        match cmd {
            ClusterCommand::Status => {
                let status: serde_json::Value = api.call(Method::GET, "/v1/cluster").await?;
                render::json(&status)
            }
            ClusterCommand::Start | ClusterCommand::Stop => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::Meta;

    fn node(id: &str, host: &str) -> Node {
        let mut node = Node {
            meta: Meta::new(id),
            ..Node::default()
        };
        node.description.hostname = host.to_owned();
        node
    }

    #[test]
    fn nodes_are_named_by_id_hostname_or_unique_prefix() {
        let nodes = || {
            vec![
                node("abc123", "web1"),
                node("abd456", "web2"),
                node("web1x", "db"),
            ]
        };
        assert_eq!(pick(nodes(), "abd456").expect("id").meta.id, "abd456");
        assert_eq!(pick(nodes(), "web1").expect("hostname").meta.id, "abc123");
        assert_eq!(pick(nodes(), "abc").expect("prefix").meta.id, "abc123");
        let ambiguous = pick(nodes(), "ab").expect_err("two nodes");
        assert!(
            ambiguous.to_string().contains("abc123, abd456"),
            "{ambiguous}"
        );
        assert!(pick(nodes(), "zz").is_err());
    }

    #[test]
    fn labels_are_added_and_removed() {
        let labels = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let edited = edit_labels(
            "n1",
            labels.clone(),
            &["b=2".to_owned(), "c".to_owned()],
            &["a".to_owned()],
        )
        .expect("edit");
        assert_eq!(
            edited,
            BTreeMap::from([
                ("b".to_owned(), "2".to_owned()),
                ("c".to_owned(), String::new())
            ])
        );
        assert!(edit_labels("n1", labels, &[], &["zz".to_owned()]).is_err());
    }
}
