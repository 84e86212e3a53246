//! Cluster-wide addresses (swarmkit's allocator), a pure pass over the state: each
//! network gets a subnet and a vxlan id, each `vip` service a virtual address on
//! each of its networks, each new task an address on each of its networks, after
//! which it is `pending` for the scheduler. Nothing is allocated twice: every pass
//! sees every allocation committed before it, and its writes name the versions they
//! read, so a concurrent pass that lost is recomputed.
//!
//! - [`subnet`]: IPv4 subnets.
//! - [`ingress`]: the routing mesh's network, node addresses and port owners.

pub mod ingress;
pub mod subnet;

use crate::orchestrator::{Change, Plan, awaits_node, ended, wanted};
use crate::store::State;
use api::cluster::{NetworkAllocation, Task, TaskNetwork, TaskState, TaskStatus};
use api::deploy::EndpointMode;
use api::network::INGRESS_NETWORK;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use subnet::Subnet;

/// The first vxlan id handed out (swarm's).
pub const FIRST_VNI: u32 = 4097;

/// Where default subnets come from: /24s of 10.0.0.0/8 (swarm's default pool).
const POOL: &str = "10.0.0.0/8";

/// The networks a task of `spec` joins (none with `network_mode`): its own, then the
/// routing mesh's when it publishes a mesh port.
pub fn task_networks(spec: &api::ServiceSpec) -> Vec<String> {
    if spec.network_mode.is_some() {
        return Vec::new();
    }
    let mut networks: Vec<String> = spec.networks.keys().cloned().collect();
    if ingress::on_mesh(spec) && !networks.iter().any(|n| n == INGRESS_NETWORK) {
        networks.push(INGRESS_NETWORK.to_owned());
    }
    networks
}

/// Addresses in use per network, the allocated subnets, and where each network's
/// next address is looked for.
struct Usage {
    subnets: BTreeMap<String, Subnet>,
    used: BTreeMap<String, BTreeSet<Ipv4Addr>>,
    /// The address handed out last, per network.
    last: BTreeMap<String, Ipv4Addr>,
    /// Networks whose last address moved in this pass.
    moved: BTreeSet<String>,
}

impl Usage {
    fn of(state: &State) -> Usage {
        let mut usage = Usage {
            subnets: BTreeMap::new(),
            used: BTreeMap::new(),
            last: BTreeMap::new(),
            moved: BTreeSet::new(),
        };
        for network in state.networks.iter() {
            if let Some(a) = &network.allocation
                && let Ok(subnet) = Subnet::parse(&a.subnet)
            {
                usage.subnets.insert(network.meta.id.clone(), subnet);
                let used = usage.used.entry(network.meta.id.clone()).or_default();
                if let Ok(gw) = a.gateway.parse() {
                    used.insert(gw);
                }
                used.extend(a.nodes.values().filter_map(|n| address_of(n)));
                if let Some(last) = a.last.as_deref().and_then(|l| l.parse().ok()) {
                    usage.last.insert(network.meta.id.clone(), last);
                }
            }
        }
        for service in state.services.iter() {
            for (network, vip) in &service.vips {
                if let Ok(ip) = vip.parse() {
                    usage.used.entry(network.clone()).or_default().insert(ip);
                }
            }
        }
        for task in state.tasks.iter() {
            // An ended task's address is free again, but for an orphaned task
            // whose node may come back with its container; the container of
            // another may still hold it on its node for a while, so `take` hands
            // it out again only after every other free address.
            if !holds_addresses(state, task) {
                continue;
            }
            for attached in &task.networks {
                if let Some(ip) = address_of(&attached.address) {
                    usage
                        .used
                        .entry(attached.network.clone())
                        .or_default()
                        .insert(ip);
                }
            }
        }
        usage
    }

    /// The first free address of `network` after the one handed out last (wrapping
    /// around), now taken.
    fn take(&mut self, network: &str) -> Option<Ipv4Addr> {
        let subnet = *self.subnets.get(network)?;
        let used = self.used.entry(network.to_owned()).or_default();
        let last = self.last.get(network).copied();
        let after = subnet.hosts().filter(|ip| last.is_some_and(|l| *ip > l));
        let ip = after.chain(subnet.hosts()).find(|ip| !used.contains(ip))?;
        used.insert(ip);
        self.last.insert(network.to_owned(), ip);
        self.moved.insert(network.to_owned());
        Some(ip)
    }
}

/// Whether `task`'s addresses are taken: it has not ended, it is still wanted (to
/// be restarted), or its container may still be on its node ([`awaits_node`]).
pub fn holds_addresses(state: &State, task: &Task) -> bool {
    !ended(task.status.state)
        || wanted(task)
        || awaits_node(task, |node| state.nodes.get(node).is_some())
}

/// The address part of `10.0.1.5/24`.
pub fn address_of(text: &str) -> Option<Ipv4Addr> {
    text.split('/').next()?.parse().ok()
}

/// Plans the allocations the state lacks.
pub fn plan(state: &State) -> Plan {
    let mut plan = Plan::default();
    ingress::plan_network(state, &mut plan);
    allocate_networks(state, &mut plan);
    let mut usage = Usage::of(state);
    let nodes = allocate_nodes(state, &mut usage);
    allocate_vips(state, &mut usage, &mut plan);
    allocate_tasks(state, &mut usage, &mut plan);
    let changed = usage.moved.iter().chain(nodes.keys());
    for id in changed.collect::<BTreeSet<_>>() {
        let Some(mut network) = state.networks.get(id).cloned() else {
            continue;
        };
        let Some(a) = network.allocation.as_mut() else {
            continue;
        };
        if let Some(last) = usage.last.get(id) {
            a.last = Some(last.to_string());
        }
        if let Some(nodes) = nodes.get(id) {
            a.nodes = nodes.clone();
        }
        plan.push(Change::update_network(network));
    }
    plan
}

/// Each node's own address on the routing mesh: kept while the node exists, taken
/// for a node that has none. Returns the new map when it changed.
fn allocate_nodes(state: &State, usage: &mut Usage) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut changed = BTreeMap::new();
    let Some(network) = state.networks.get(INGRESS_NETWORK) else {
        return changed;
    };
    let (Some(a), Some(subnet)) = (
        &network.allocation,
        usage.subnets.get(INGRESS_NETWORK).copied(),
    ) else {
        return changed;
    };
    let mut nodes: BTreeMap<String, String> = a
        .nodes
        .iter()
        .filter(|(id, _)| state.nodes.get(id).is_some())
        .map(|(id, addr)| (id.clone(), addr.clone()))
        .collect();
    for node in state.nodes.iter() {
        if nodes.contains_key(&node.meta.id) {
            continue;
        }
        if let Some(ip) = usage.take(INGRESS_NETWORK) {
            nodes.insert(node.meta.id.clone(), format!("{ip}/{}", subnet.prefix));
        }
    }
    if nodes != a.nodes {
        changed.insert(INGRESS_NETWORK.to_owned(), nodes);
    }
    changed
}

/// The prefix of a network's default subnet: a /24, but the routing mesh's is a /22
/// (1022 addresses): every node and every task that publishes a port has one there.
fn default_prefix(network: &str) -> u8 {
    if network == INGRESS_NETWORK { 22 } else { 24 }
}

fn allocate_networks(state: &State, plan: &mut Plan) {
    let mut subnets: Vec<Subnet> = Vec::new();
    let mut vnis: BTreeSet<u32> = BTreeSet::new();
    for network in state.networks.iter() {
        if let Some(a) = &network.allocation {
            subnets.extend(Subnet::parse(&a.subnet).ok());
            vnis.insert(a.vni);
        }
    }
    let pool = Subnet::parse(POOL).ok();
    for network in state.networks.iter().filter(|n| n.allocation.is_none()) {
        let pool_config = network
            .spec
            .ipam
            .as_ref()
            .and_then(|i| i.config.first())
            .cloned()
            .unwrap_or_default();
        let subnet = match pool_config.subnet.as_deref().map(Subnet::parse) {
            Some(Ok(subnet)) => Some(subnet),
            // The loader validated it; a bad one gets a default subnet.
            Some(Err(_)) | None => pool.and_then(|pool| {
                let prefix = default_prefix(&network.meta.id);
                let size = 1u32 << (32 - u32::from(prefix));
                (1..pool.size() / size)
                    .map(|i| Subnet {
                        base: pool.base + i * size,
                        prefix,
                    })
                    .find(|s| !subnets.iter().any(|u| u.overlaps(*s)))
            }),
        };
        let Some(subnet) = subnet else { continue };
        let vni = (FIRST_VNI..)
            .find(|v| !vnis.contains(v))
            .unwrap_or(FIRST_VNI);
        subnets.push(subnet);
        vnis.insert(vni);
        let gateway = pool_config
            .gateway
            .filter(|g| g.parse().is_ok_and(|ip| subnet.contains(ip)))
            .unwrap_or_else(|| subnet.first_host().to_string());
        let mut network = network.clone();
        network.allocation = Some(NetworkAllocation {
            subnet: subnet.to_string(),
            gateway,
            vni,
            last: None,
            nodes: BTreeMap::new(),
        });
        plan.push(Change::update_network(network));
    }
}

fn allocate_vips(state: &State, usage: &mut Usage, plan: &mut Plan) {
    for service in state.services.iter() {
        let dnsrr = service
            .spec
            .deploy
            .as_ref()
            .and_then(|d| d.endpoint_mode)
            .is_some_and(|m| m == EndpointMode::Dnsrr);
        let mut vips = BTreeMap::new();
        if !dnsrr {
            for network in task_networks(&service.spec) {
                // The mesh leads to the tasks themselves: no virtual address there.
                if network == INGRESS_NETWORK || !usage.subnets.contains_key(&network) {
                    continue;
                }
                let vip = match service.vips.get(&network) {
                    Some(vip) => Some(vip.clone()),
                    None => usage.take(&network).map(|ip| ip.to_string()),
                };
                if let Some(vip) = vip {
                    vips.insert(network, vip);
                }
            }
        }
        if vips != service.vips {
            let mut service = service.clone();
            service.vips = vips;
            plan.push(Change::update_service(service));
        }
    }
}

fn allocate_tasks(state: &State, usage: &mut Usage, plan: &mut Plan) {
    let claims = ingress::Claims::of(state);
    for task in state.tasks.by_desired_state(TaskState::Running) {
        if task.status.state != TaskState::New {
            continue;
        }
        let conflicts = claims.conflicts(&task.service, &task.spec);
        if !conflicts.is_empty() {
            wait(task, conflicts.join("; "), plan);
            continue;
        }
        let networks = task_networks(&task.spec);
        let missing: Vec<String> = networks
            .iter()
            .filter(|n| !usage.subnets.contains_key(*n))
            .map(|n| match state.networks.get(n) {
                None => format!("network {n} does not exist"),
                Some(_) => format!("network {n} has no subnet yet"),
            })
            .collect();
        if !missing.is_empty() {
            wait(task, missing.join("; "), plan);
            continue;
        }
        let mut attached = Vec::new();
        let mut full = None;
        for network in &networks {
            let aliases = task
                .spec
                .networks
                .get(network)
                .and_then(|n| n.as_ref())
                .map(|n| n.aliases.clone())
                .unwrap_or_default();
            match (usage.take(network), usage.subnets.get(network)) {
                (Some(ip), Some(subnet)) => attached.push(TaskNetwork {
                    network: network.clone(),
                    address: format!("{ip}/{}", subnet.prefix),
                    aliases,
                }),
                _ => full = Some(network.clone()),
            }
        }
        if let Some(network) = full {
            wait(
                task,
                format!("network {network} has no free address left"),
                plan,
            );
            continue;
        }
        let mut task = with_status(task, TaskState::Pending, String::new());
        task.networks = attached;
        plan.push(Change::update_task(task));
    }
}

/// Keeps `task` new, saying why (written only when the reason changed).
fn wait(task: &Task, message: String, plan: &mut Plan) {
    if task.status.message != message {
        plan.push(Change::update_task(with_status(
            task,
            TaskState::New,
            message,
        )));
    }
}

fn with_status(task: &Task, state: TaskState, message: String) -> Task {
    let mut task = task.clone();
    task.status = TaskStatus {
        state,
        message,
        ..task.status.clone()
    };
    task
}
