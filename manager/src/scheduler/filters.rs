//! The filters: each a small pure function that says whether one node can take a task,
//! and if not, why. Fixed filters (state, availability, constraints) depend only on the
//! node and the spec; the others on what already runs on the node.

use super::demand::{Demand, Targets};
use super::node::NodeInfo;
use super::reasons::Reason;
use super::services::Services;
use api::cluster::{Availability, NodeState};

/// The filters that do not change as tasks are placed, in order.
pub(super) fn check_fixed(node: &NodeInfo, demand: &Demand) -> Result<(), Reason> {
    state(node)?;
    availability(node)?;
    constraints(node, demand)
}

/// The filters that change as tasks are placed, in order.
pub(super) fn check_usage(
    node: &NodeInfo,
    index: u32,
    demand: &Demand,
    targets: &Targets,
    services: &Services,
) -> Result<(), Reason> {
    dependency(index, demand, targets, services)?;
    affinity(index, demand, targets, services)?;
    max_replicas(index, demand, targets, services)?;
    ports(node, demand)?;
    resources(node, demand)
}

/// Only ready nodes take tasks.
fn state(node: &NodeInfo) -> Result<(), Reason> {
    match node.state {
        NodeState::Ready => Ok(()),
        NodeState::Down => Err(Reason::Down),
        NodeState::Unknown => Err(Reason::NotReady),
    }
}

/// Only active nodes take new tasks.
fn availability(node: &NodeInfo) -> Result<(), Reason> {
    match node.availability {
        Availability::Active => Ok(()),
        Availability::Pause => Err(Reason::Paused),
        Availability::Drain => Err(Reason::Drained),
    }
}

/// Every placement constraint holds.
fn constraints(node: &NodeInfo, demand: &Demand) -> Result<(), Reason> {
    match demand.constraints.iter().find(|c| !c.holds(node)) {
        None => Ok(()),
        Some(failed) => Err(Reason::Constraint {
            constraint: failed.text.clone(),
        }),
    }
}

/// A task of each service the task depends on runs here.
fn dependency(
    index: u32,
    demand: &Demand,
    targets: &Targets,
    services: &Services,
) -> Result<(), Reason> {
    let missing = demand
        .dependencies
        .iter()
        .zip(&targets.dependencies)
        .find(|(_, service)| !services.runs_on(**service, index));
    match missing {
        None => Ok(()),
        Some((name, _)) => Err(Reason::Dependency {
            service: name.clone(),
        }),
    }
}

/// Hard affinities hold (soft ones only order nodes).
fn affinity(
    index: u32,
    demand: &Demand,
    targets: &Targets,
    services: &Services,
) -> Result<(), Reason> {
    let broken = demand
        .affinities
        .iter()
        .zip(&targets.affinities)
        .find(|(a, service)| !a.soft && !a.holds(services.runs_on(**service, index)));
    match broken {
        None => Ok(()),
        Some((a, _)) if a.together => Err(Reason::Affinity {
            service: a.service.clone(),
        }),
        Some((a, _)) => Err(Reason::AntiAffinity {
            service: a.service.clone(),
        }),
    }
}

/// Fewer than `max_replicas_per_node` tasks of the service run here.
fn max_replicas(
    index: u32,
    demand: &Demand,
    targets: &Targets,
    services: &Services,
) -> Result<(), Reason> {
    let Some(max) = demand.max_per_node else {
        return Ok(());
    };
    let running = targets.own.map_or(0, |s| services.count(s, index));
    if u64::from(running) < max {
        Ok(())
    } else {
        Err(Reason::MaxReplicas { max })
    }
}

/// Every published port (or one port of each range) is free.
fn ports(node: &NodeInfo, demand: &Demand) -> Result<(), Reason> {
    match demand
        .ports
        .iter()
        .find(|need| node.free_port(need).is_none())
    {
        None => Ok(()),
        Some(need) => Err(Reason::Port {
            published: need.published.clone(),
            protocol: need.protocol,
        }),
    }
}

/// The reserved cpu and memory are free.
fn resources(node: &NodeInfo, demand: &Demand) -> Result<(), Reason> {
    if demand.memory > node.memory_free() {
        return Err(Reason::Memory {
            need_bytes: demand.memory,
        });
    }
    if demand.cpu > node.cpu_free() {
        return Err(Reason::Cpu {
            need_millis: demand.cpu,
        });
    }
    Ok(())
}
