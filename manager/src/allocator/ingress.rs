//! The routing mesh's share of the allocation (swarm's ingress): the cluster network
//! [`INGRESS_NETWORK`], made while a service publishes a mesh port and removed once
//! none does and no task is left on it; each node's own address on it; and each
//! mesh port (`published`/protocol) owned by one service cluster-wide — the one
//! created first; the tasks of another that asks for it stay `new`, naming both.

use crate::orchestrator::stacks::service_id;
use crate::orchestrator::{Change, Plan, ended, wanted};
use crate::store::State;
use api::ServiceSpec;
use api::cluster::{Meta, Network, Object, Service};
use api::network::INGRESS_NETWORK;
use api::service::Protocol;
use api::stack::StackSpec;
use std::collections::BTreeMap;

/// A mesh port: the published port and its protocol (`tcp`, `udp`, `sctp`).
pub type MeshPort = (u16, &'static str);

/// The protocol's name as the engine and nftables spell it.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// The mesh ports of `spec`, with their target ports.
pub fn mesh_ports(spec: &ServiceSpec) -> Vec<(MeshPort, u16)> {
    spec.ports
        .iter()
        .filter_map(|p| Some(((p.mesh_port()?, protocol_name(p.protocol)), p.target)))
        .collect()
}

/// Whether tasks of `spec` join the routing mesh.
pub fn on_mesh(spec: &ServiceSpec) -> bool {
    spec.network_mode.is_none() && !mesh_ports(spec).is_empty()
}

/// The service that owns each mesh port: of those publishing it, the one created
/// first (then the smallest id).
pub fn owners(state: &State) -> BTreeMap<MeshPort, &Service> {
    let mut owners: BTreeMap<MeshPort, &Service> = BTreeMap::new();
    for service in state.services.iter() {
        for (port, _) in mesh_ports(&service.spec) {
            let key = |s: &Service| (s.meta.created, s.meta.id.clone());
            owners
                .entry(port)
                .and_modify(|o| {
                    if key(service) < key(o) {
                        *o = service;
                    }
                })
                .or_insert(service);
        }
    }
    owners
}

/// Why a task of service `service` with `spec` cannot have its mesh ports: each port
/// another service owns, naming it.
pub fn conflicts(
    owners: &BTreeMap<MeshPort, &Service>,
    service: &str,
    spec: &ServiceSpec,
) -> Option<String> {
    let taken: Vec<String> = mesh_ports(spec)
        .into_iter()
        .filter_map(|(port, _)| {
            let owner = owners.get(&port)?;
            (owner.meta.id != service).then(|| {
                format!(
                    "port {}/{} is published by service {} already (service {service} asks for it too)",
                    port.0, port.1, owner.meta.id
                )
            })
        })
        .collect();
    (!taken.is_empty()).then(|| taken.join("; "))
}

/// The mesh ports stack `stack` would take (its services as `spec` has them) that
/// another stack's service owns, or that two of its own services ask for: one
/// sentence each, naming both services. Checked when a stack is written, so `orch
/// up` refuses at once what the allocator would leave waiting.
pub fn stack_conflicts(state: &State, stack: &str, spec: &StackSpec) -> Vec<String> {
    let mut taken: BTreeMap<MeshPort, String> = owners(state)
        .into_iter()
        .filter(|(_, s)| s.stack != stack)
        .map(|(port, s)| (port, s.meta.id.clone()))
        .collect();
    let mut conflicts = Vec::new();
    for (key, service) in &spec.services {
        if service.network_mode.is_some() {
            continue;
        }
        let id = service_id(stack, key);
        for (port, _) in mesh_ports(service) {
            match taken.get(&port) {
                Some(owner) => conflicts.push(format!(
                    "port {}/{} is published by service {owner} already (service {id} asks for it too)",
                    port.0, port.1
                )),
                None => {
                    taken.insert(port, id.clone());
                }
            }
        }
    }
    conflicts
}

/// Creates the mesh network when a service publishes a mesh port, and removes it
/// when none does and no task is on it any more.
pub fn plan_network(state: &State, plan: &mut Plan) {
    let wanted_by_services = state.services.iter().any(|s| on_mesh(&s.spec));
    match state.networks.get(INGRESS_NETWORK) {
        None if wanted_by_services => {
            let mut spec = api::stack::NetworkSpec {
                name: INGRESS_NETWORK.into(),
                driver: Some("overlay".into()),
                ..Default::default()
            };
            spec.labels
                .insert("orch.routing-mesh".into(), "true".into());
            plan.push(Change::Create(Object::Network(Network {
                meta: Meta::new(INGRESS_NETWORK.to_owned()),
                stack: String::new(),
                spec,
                allocation: None,
            })));
        }
        Some(network) if !wanted_by_services => {
            let in_use = state.tasks.iter().any(|t| {
                (wanted(t) || !ended(t.status.state))
                    && t.networks.iter().any(|n| n.network == INGRESS_NETWORK)
            });
            if !in_use {
                plan.push(Change::delete(&Object::Network(network.clone())));
            }
        }
        _ => {}
    }
}
