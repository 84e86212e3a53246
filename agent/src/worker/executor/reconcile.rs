//! The executor's pure core: an assignment set against what the node has gives the
//! actions that make the node match, in the order to apply them (networks and
//! volumes before the tasks using them, removals of networks and volumes last, once
//! their tasks are gone).

use api::cluster::{Task, TaskState};
use api::network::{INGRESS_NETWORK, Ingress, NetworkCreate, OverlayPeers, ServiceEndpoints};
use api::service::MountType;
use api::session::Assignments;
use api::volume::VolumeCreate;
use std::collections::{BTreeMap, BTreeSet};

/// The label that marks the engine networks the executor made for cluster networks.
pub const NETWORK_LABEL: &str = "orch.cluster-network";

/// A cluster network on the engine, as the plan needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalNetwork {
    /// Its subnet and vni: a network made with others is made again.
    pub subnet: String,
    pub vni: Option<u32>,
    /// Containers on it.
    pub endpoints: usize,
}

/// What the executor has on the node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Local {
    /// Cluster networks on the engine (those with [`NETWORK_LABEL`]), by name.
    pub networks: BTreeMap<String, LocalNetwork>,
    /// Peers, services and routing mesh last set on each network by this executor.
    pub sent: BTreeMap<String, (OverlayPeers, ServiceEndpoints, Option<Ingress>)>,
    /// Tasks with a runner, and whether it was told to stop.
    pub runners: BTreeMap<String, bool>,
    /// Containers found when the executor started, by task id, not yet taken over.
    pub adopted: BTreeMap<String, String>,
    /// Tasks done with: their runner ended, or they were shut down before running.
    pub retired: BTreeSet<String>,
    /// Named volumes on the engine, with how many containers mount each (`None`:
    /// not known, the engine did not answer; volumes are then left alone).
    pub volumes: Option<BTreeMap<String, usize>>,
    /// Volume removals reported to the managers while the set still names them.
    pub volumes_reported: BTreeSet<String>,
    /// Orphaned tasks reported gone while the set still names them as orphaned.
    pub orphans_reported: BTreeSet<String>,
}

/// One step towards the assignment set.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create a network (labelled [`NETWORK_LABEL`]).
    CreateNetwork(NetworkCreate),
    /// Set an overlay's remote endpoints and this node's tunnel address.
    SetPeers {
        network: String,
        peers: OverlayPeers,
    },
    /// Set a network's services.
    SetServices {
        network: String,
        services: ServiceEndpoints,
    },
    /// Make an overlay the node's routing mesh: its address there, published ports.
    SetIngress { network: String, ingress: Ingress },
    /// Remove a cluster network.
    RemoveNetwork(String),
    /// Run a task: prepare, create, start and watch its container (`container`: one
    /// found at start to take over). `internal_only`: all its networks are internal,
    /// so it gets no way out.
    Run {
        task: Box<Task>,
        container: Option<String>,
        internal_only: bool,
    },
    /// Tell a task's runner to stop and remove its container.
    Stop(String),
    /// Stop and remove a container found at start whose task is not to run.
    RemoveOrphan { task: String, container: String },
    /// Be done with a task that has no container here.
    Retire { task: String, why: Retirement },
    /// Create a stack volume the engine does not have, with its labels.
    CreateVolume(VolumeCreate),
    /// Remove a volume no container uses, then report it removed.
    RemoveVolume(String),
    /// Report a volume to remove that the engine does not have as removed.
    VolumeGone(String),
}

/// Why a task without a container is done with, and so what to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retirement {
    /// It is to stop before it ran here: report `shutdown`.
    Shutdown,
    /// The manager orphaned it (the node was away) and its container is gone
    /// from the node: report `shutdown` once, which frees its addresses.
    Orphaned,
    /// Its status says it was started, but the node has no container of it (lost
    /// with the node's state): report `failed`, as swarmkit does, so the manager
    /// replaces it.
    Lost,
    /// Its status is final already (an agent that restarted meets it again):
    /// nothing to report.
    Final,
}

/// What to do so the node matches `set`.
pub fn plan(set: &Assignments, local: &Local) -> Vec<Action> {
    let mut networks = Vec::new();
    let mut stops = Vec::new();
    let mut runs = Vec::new();
    let mut removals = Vec::new();
    let wanted: BTreeSet<&str> = set
        .networks
        .iter()
        .map(|n| n.create.name.as_str())
        .collect();
    for n in &set.networks {
        let name = &n.create.name;
        let exists = match local.networks.get(name) {
            None => false,
            Some(have) if same_allocation(&n.create, have) => true,
            Some(have) if have.endpoints == 0 => {
                networks.push(Action::RemoveNetwork(name.clone()));
                false
            }
            // Made with another allocation and still in use: left until its
            // containers are gone.
            Some(_) => true,
        };
        if !exists {
            let mut create = n.create.clone();
            create.labels.insert(NETWORK_LABEL.into(), "true".into());
            networks.push(Action::CreateNetwork(create));
        }
        let peers = OverlayPeers {
            local: set.addr.clone(),
            peers: sorted(&n.peers),
        };
        let services = ServiceEndpoints {
            services: sorted(&n.services),
        };
        let sent = if exists { local.sent.get(name) } else { None };
        let overlay = n.create.driver.as_deref() == Some("overlay");
        if overlay && sent.is_none_or(|(p, _, _)| *p != peers) {
            networks.push(Action::SetPeers {
                network: name.clone(),
                peers,
            });
        }
        if sent.is_none_or(|(_, s, _)| *s != services) {
            networks.push(Action::SetServices {
                network: name.clone(),
                services,
            });
        }
        if let Some(ingress) = &n.ingress
            && sent.is_none_or(|(_, _, i)| i.as_ref() != Some(ingress))
        {
            networks.push(Action::SetIngress {
                network: name.clone(),
                ingress: ingress.clone(),
            });
        }
    }
    let internal: BTreeSet<&str> = set
        .networks
        .iter()
        .filter(|n| n.create.internal)
        .map(|n| n.create.name.as_str())
        .collect();
    let mut in_set = BTreeSet::new();
    for t in &set.tasks {
        let id = &t.meta.id;
        in_set.insert(id.as_str());
        let retire = |why| Action::Retire {
            task: id.clone(),
            why,
        };
        // The manager orphaned the task while the node was away: once its
        // container is gone here, say so (its addresses wait for that).
        let orphaned = t.status.state == TaskState::Orphaned;
        if local.retired.contains(id) {
            if orphaned && !local.orphans_reported.contains(id) {
                stops.push(retire(Retirement::Orphaned));
            }
            continue;
        }
        let runner = local.runners.get(id);
        let adopted = local.adopted.get(id);
        let finished = t.status.state > TaskState::Running;
        if t.desired_state >= TaskState::Shutdown {
            match (runner, adopted) {
                (Some(false), _) => stops.push(Action::Stop(id.clone())),
                (Some(true), _) => {}
                (None, Some(c)) => stops.push(Action::RemoveOrphan {
                    task: id.clone(),
                    container: c.clone(),
                }),
                (None, None) if orphaned => stops.push(retire(Retirement::Orphaned)),
                (None, None) if finished => stops.push(retire(Retirement::Final)),
                (None, None) => stops.push(retire(Retirement::Shutdown)),
            }
        } else if runner.is_none() {
            // A task the node ran before it restarted and no longer has a container
            // of is not run again: its status says how far it got.
            if adopted.is_none() && finished {
                stops.push(retire(Retirement::Final));
                continue;
            }
            if adopted.is_none() && t.status.state >= TaskState::Starting {
                stops.push(retire(Retirement::Lost));
                continue;
            }
            runs.push(Action::Run {
                task: Box::new(t.clone()),
                container: local.adopted.get(id).cloned(),
                internal_only: internal_only(t, &internal),
            });
        }
    }
    for (id, stopping) in &local.runners {
        if !stopping && !in_set.contains(id.as_str()) {
            stops.push(Action::Stop(id.clone()));
        }
    }
    for (id, c) in &local.adopted {
        if !in_set.contains(id.as_str()) && !local.runners.contains_key(id) {
            stops.push(Action::RemoveOrphan {
                task: id.clone(),
                container: c.clone(),
            });
        }
    }
    for (name, have) in &local.networks {
        if !wanted.contains(name.as_str()) && have.endpoints == 0 {
            removals.push(Action::RemoveNetwork(name.clone()));
        }
    }
    let (creates, volume_removals) = volumes(set, local, &in_set);
    networks
        .into_iter()
        .chain(creates)
        .chain(stops)
        .chain(runs)
        .chain(removals)
        .chain(volume_removals)
        .collect()
}

/// The volume creations (before tasks run) and removals (last) of `set`. A volume
/// is removed only once no container mounts it, no task of the set that mounts it
/// may still run or hold a container here, and no runner of a task outside the set
/// (whose mounts are not known any more) is left.
fn volumes(
    set: &Assignments,
    local: &Local,
    in_set: &BTreeSet<&str>,
) -> (Vec<Action>, Vec<Action>) {
    let Some(have) = &local.volumes else {
        return (Vec::new(), Vec::new());
    };
    let creates = set
        .volumes
        .iter()
        .filter(|v| !have.contains_key(&v.name))
        .map(|v| Action::CreateVolume(v.clone()))
        .collect();
    let unknown_runners = local
        .runners
        .keys()
        .chain(local.adopted.keys())
        .any(|id| !in_set.contains(id.as_str()));
    let held = |name: &str| {
        set.tasks.iter().any(|t| {
            !local.retired.contains(&t.meta.id)
                && t.spec
                    .volumes
                    .iter()
                    .any(|m| m.kind == MountType::Volume && m.source.as_deref() == Some(name))
        })
    };
    let mut removals = Vec::new();
    for name in &set.volume_removals {
        if local.volumes_reported.contains(name) {
            continue;
        }
        match have.get(name) {
            None => removals.push(Action::VolumeGone(name.clone())),
            Some(0) if !unknown_runners && !held(name) => {
                removals.push(Action::RemoveVolume(name.clone()));
            }
            // In use: again once its containers are gone.
            Some(_) => {}
        }
    }
    (creates, removals)
}

/// Whether the set names volumes to remove that are still on the engine (the
/// executor looks again after a while: a container outside the cluster may hold one).
pub fn volumes_pending(set: &Assignments, local: &Local) -> bool {
    let have = local.volumes.as_ref();
    set.volume_removals.iter().any(|name| {
        !local.volumes_reported.contains(name) && have.is_none_or(|h| h.contains_key(name))
    })
}

/// Whether all the task's own networks are internal: the routing mesh, which only
/// carries connections to its published ports, gives it no way out either.
fn internal_only(task: &Task, internal: &BTreeSet<&str>) -> bool {
    let mut own = task
        .networks
        .iter()
        .filter(|n| n.network != INGRESS_NETWORK)
        .peekable();
    own.peek().is_some() && own.all(|n| internal.contains(n.network.as_str()))
}

/// Whether a network on the engine has the subnet and vni the cluster gave it.
fn same_allocation(want: &NetworkCreate, have: &LocalNetwork) -> bool {
    want.subnet.as_ref().is_none_or(|s| *s == have.subnet)
        && want.vni.is_none_or(|v| Some(v) == have.vni)
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut out = items.to_vec();
    out.sort();
    out
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
