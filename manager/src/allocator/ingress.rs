//! The routing mesh's share of the allocation (swarm's ingress): the cluster network
//! [`INGRESS_NETWORK`], made while a service publishes a mesh port and removed once
//! none does and no task is left on it; each node's own address on it; and each
//! mesh port (`published`/protocol) owned by one service cluster-wide — the one
//! created first; the tasks of another that asks for it, on the mesh or in host
//! mode, stay `new`, naming both ([`Claims`]).

use crate::orchestrator::stacks::service_id;
use crate::orchestrator::{Change, Plan};
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

/// The mesh ports of `spec`, with their target ports (none with `network_mode`: its
/// ports are the node's).
pub fn mesh_ports(spec: &ServiceSpec) -> Vec<(MeshPort, u16)> {
    if spec.network_mode.is_some() {
        return Vec::new();
    }
    spec.ports
        .iter()
        .filter_map(|p| Some(((p.mesh_port()?, protocol_name(p.protocol)), p.target)))
        .collect()
}

/// The ports of `spec` that the node running a task binds itself (every published
/// port but the mesh ports), as lowest and highest port with the protocol.
pub fn host_ports(spec: &ServiceSpec) -> Vec<(u16, u16, &'static str)> {
    spec.ports
        .iter()
        .filter(|p| p.mesh_port().is_none() || spec.network_mode.is_some())
        .filter_map(|p| {
            let (low, high) = p.published_range()?;
            Some((low, high, protocol_name(p.protocol)))
        })
        .collect()
}

/// Whether tasks of `spec` join the routing mesh.
pub fn on_mesh(spec: &ServiceSpec) -> bool {
    !mesh_ports(spec).is_empty()
}

/// A service as the port claims see it: the older of two services publishing a
/// port keeps it (`age`: created, then id).
#[derive(Clone, Copy, Debug)]
pub struct Publisher<'a> {
    pub id: &'a str,
    pub spec: &'a ServiceSpec,
    pub age: (u64, &'a str),
}

impl<'a> Publisher<'a> {
    /// A service of the state.
    pub fn of(service: &'a Service) -> Publisher<'a> {
        Publisher {
            id: &service.meta.id,
            spec: &service.spec,
            age: (service.meta.created.0, &service.meta.id),
        }
    }
}

/// Who publishes each mesh port (swarm's rule: a port is either the routing
/// mesh's, cluster-wide, or host ports of the nodes, never both): the oldest
/// service asking for it on the mesh, and the oldest asking for it in host mode
/// (a host port, or a range that includes it). Of the two, the older has it.
pub struct Claims<'a> {
    mesh: BTreeMap<MeshPort, Publisher<'a>>,
    host: BTreeMap<MeshPort, Publisher<'a>>,
    ages: BTreeMap<&'a str, (u64, &'a str)>,
}

impl<'a> Claims<'a> {
    /// The claims of the state's services.
    pub fn of(state: &'a State) -> Claims<'a> {
        Claims::among(state.services.iter().map(Publisher::of).collect())
    }

    /// The claims of `publishers`.
    pub fn among(publishers: Vec<Publisher<'a>>) -> Claims<'a> {
        let older = |map: &mut BTreeMap<MeshPort, Publisher<'a>>, port, p: Publisher<'a>| {
            map.entry(port)
                .and_modify(|o| {
                    if p.age < o.age {
                        *o = p;
                    }
                })
                .or_insert(p);
        };
        let mut mesh = BTreeMap::new();
        for p in &publishers {
            for (port, _) in mesh_ports(p.spec) {
                older(&mut mesh, port, *p);
            }
        }
        let mut host = BTreeMap::new();
        let mut ages = BTreeMap::new();
        for p in publishers {
            ages.insert(p.id, p.age);
            for range in host_ports(p.spec) {
                let covered: Vec<MeshPort> = mesh
                    .keys()
                    .filter(|m| covers(range, **m))
                    .copied()
                    .collect();
                for port in covered {
                    older(&mut host, port, p);
                }
            }
        }
        Claims { mesh, host, ages }
    }

    /// The ports the routing mesh publishes, each with its owner: the oldest service
    /// asking for it on the mesh, unless an older one asks for it in host mode.
    pub fn owners(&self) -> BTreeMap<MeshPort, Publisher<'a>> {
        self.mesh
            .iter()
            .filter(|(port, owner)| self.host.get(*port).is_none_or(|h| h.age >= owner.age))
            .map(|(port, owner)| (*port, *owner))
            .collect()
    }

    /// Why a task of service `service` with `spec` cannot have its published ports,
    /// one sentence per port, naming both services: a mesh port another service
    /// has on the mesh, or an older one in host mode; a host port an older service
    /// has on the mesh; a port the service asks for both ways.
    pub fn conflicts(&self, service: &str, spec: &ServiceSpec) -> Vec<String> {
        let age = self.ages.get(service).copied();
        let older = |p: &Publisher| age.is_none_or(|a| p.age < a);
        let hosts = host_ports(spec);
        let mut why = Vec::new();
        for (port, _) in mesh_ports(spec) {
            let (number, protocol) = port;
            if let Some(owner) = self.mesh.get(&port).filter(|o| o.id != service) {
                why.push(format!(
                    "port {number}/{protocol} is published by service {} already (service {service} asks for it too)",
                    owner.id
                ));
            } else if hosts.iter().any(|r| covers(*r, port)) {
                why.push(format!(
                    "service {service} publishes port {number}/{protocol} both on the routing mesh and in host mode"
                ));
            } else if let Some(h) = self.host.get(&port).filter(|h| h.id != service && older(h)) {
                why.push(format!(
                    "port {number}/{protocol} is published in host mode by service {} already (service {service} asks for it on the routing mesh)",
                    h.id
                ));
            }
        }
        for range in hosts {
            for (port, owner) in self.mesh.iter().filter(|(m, _)| covers(range, **m)) {
                if owner.id != service && older(owner) {
                    why.push(format!(
                        "port {}/{} is published on the routing mesh by service {} already (service {service} asks for it in host mode)",
                        port.0, port.1, owner.id
                    ));
                }
            }
        }
        why
    }
}

/// Whether host ports `low`-`high`/protocol include mesh port `port`.
fn covers((low, high, protocol): (u16, u16, &str), (port, p): MeshPort) -> bool {
    protocol == p && (low..=high).contains(&port)
}

/// The published ports stack `stack` would take (its services as `spec` has them)
/// that a service of another stack has, or that two of its own services ask for:
/// one sentence each, naming both services (see [`Claims::conflicts`]). Checked
/// when a stack is written, so `orch up` refuses at once what the allocator would
/// leave waiting. Another stack's services count from its spec until the
/// orchestrator made them.
pub fn stack_conflicts(state: &State, stack: &str, spec: &StackSpec) -> Vec<String> {
    let mut ids: Vec<(String, u64, &ServiceSpec)> = Vec::new();
    for other in state.stacks.iter().filter(|s| s.meta.id != stack) {
        for (key, service) in &other.spec.services {
            let id = service_id(&other.meta.id, key);
            if state.services.get(&id).is_none() {
                ids.push((id, other.meta.created.0, service));
            }
        }
    }
    let own_from = ids.len();
    for (key, service) in &spec.services {
        ids.push((service_id(stack, key), u64::MAX, service));
    }
    let made = state
        .services
        .iter()
        .filter(|s| s.stack != stack)
        .map(Publisher::of);
    let written = ids.iter().map(|(id, created, spec)| Publisher {
        id,
        spec,
        age: state
            .services
            .get(id)
            .map_or((*created, id.as_str()), |s| Publisher::of(s).age),
    });
    let claims = Claims::among(made.chain(written).collect());
    ids[own_from..]
        .iter()
        .flat_map(|(id, _, service)| claims.conflicts(id, service))
        .collect()
}

/// The networks of stack `stack` (as `spec` has it) that would be the cluster's
/// routing-mesh network [`INGRESS_NETWORK`] (swarm refuses attaching to it too): a
/// declared network whose cluster name is `ingress` (a `name: ingress`, or an
/// external network with key `ingress` and no name) and a service network that
/// resolves to it undeclared. Each with the network's key in the stack and a
/// sentence naming the stack. A key `ingress` of a network of its own is fine: its
/// cluster name is `STACK_ingress`.
pub fn reserved_networks(stack: &str, spec: &StackSpec) -> Vec<(String, String)> {
    let mut reserved = Vec::new();
    for (key, network) in &spec.networks {
        let name = match network.name.as_str() {
            "" if network.external => key.clone(),
            "" => service_id(stack, key),
            name => name.to_owned(),
        };
        if name == INGRESS_NETWORK {
            reserved.push((
                key.clone(),
                format!(
                    "network {key} of stack {stack} is named {INGRESS_NETWORK}, the cluster's routing-mesh network: give it another name (a service joins the mesh by publishing a port)"
                ),
            ));
        }
    }
    for (key, service) in &spec.services {
        if service.networks.contains_key(INGRESS_NETWORK)
            && !spec.networks.contains_key(INGRESS_NETWORK)
        {
            reserved.push((
                INGRESS_NETWORK.to_owned(),
                format!(
                    "service {key} of stack {stack} joins network {INGRESS_NETWORK}, the cluster's routing-mesh network, which a stack cannot name (a service joins the mesh by publishing a port)"
                ),
            ));
        }
    }
    reserved
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
                super::holds_addresses(state, t)
                    && t.networks.iter().any(|n| n.network == INGRESS_NETWORK)
            });
            if !in_use {
                plan.push(Change::delete(&Object::Network(network.clone())));
            }
        }
        _ => {}
    }
}
