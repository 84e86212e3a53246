//! A node's share of the cluster, computed from the state (pure): the tasks it runs
//! or must stop, for each of their networks how to create it, who is on it on
//! other nodes and which services answer on it, and the secrets (opened) and configs
//! its tasks use — only those; and the stack volumes it is to create or remove.

use crate::allocator::address_of;
use crate::allocator::ingress::{Claims, mesh_ports};
use crate::keyring::Keyring;
use crate::orchestrator::{ended, wanted};
use crate::store::State;
use api::cluster::{Network, NetworkAllocation, Service, Task, TaskState};
use api::deploy::EndpointMode as DeployEndpointMode;
use api::network::{
    EndpointMode, INGRESS_NETWORK, Ingress, IngressPort, NetworkCreate, OverlayPeer,
    ServiceEndpoint,
};
use api::secret::FileData;
use api::session::{Assignments, NetworkAssignment};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Whether a task is the node's business: accepted by the scheduler (assigned) and
/// either still wanted, not yet stopped, or orphaned (the node went down, so the
/// node, back, stops and removes its container and reports it gone).
fn on_node(task: &Task) -> bool {
    task.status.state >= TaskState::Assigned
        && (wanted(task) || !ended(task.status.state) || task.status.state == TaskState::Orphaned)
}

/// Whether a task's address answers on its networks (the others' peers and backends).
fn reachable(task: &Task) -> bool {
    wanted(task) && task.status.state == TaskState::Running
}

/// The MAC address the engine gives an address (`02:42` and its four bytes).
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// What node `node` runs, as of the state's `version`; `keyring` opens its secrets.
pub fn assignments(state: &State, node: &str, version: u64, keyring: &Keyring) -> Assignments {
    let tasks: Vec<Task> = state
        .tasks
        .by_node(node)
        .filter(|t| on_node(t))
        .cloned()
        .collect();
    let mut network_ids: BTreeSet<&str> = tasks
        .iter()
        .flat_map(|t| t.networks.iter().map(|n| n.network.as_str()))
        .collect();
    // Every node is on the routing mesh, tasks of its own or not.
    if state
        .networks
        .get(INGRESS_NETWORK)
        .and_then(|n| n.allocation.as_ref())
        .is_some_and(|a| a.nodes.contains_key(node))
    {
        network_ids.insert(INGRESS_NETWORK);
    }
    let networks = network_ids
        .into_iter()
        .filter_map(|id| state.networks.get(id))
        .filter_map(|network| network_assignment(state, network, node))
        .collect();
    let (secrets, configs) = files(state, &tasks, keyring);
    let volumes = super::volumes::creates(state, &tasks);
    Assignments {
        version,
        addr: state.nodes.get(node).and_then(|n| n.status.addr.clone()),
        tasks,
        networks,
        secrets,
        configs,
        log_subscriptions: Vec::new(),
        volumes,
        volume_removals: super::volumes::removals(state, node),
    }
}

/// The secrets (opened) and configs that `tasks` which are to run use. A secret that
/// does not open is left out: its task is refused on the node, naming it.
fn files(state: &State, tasks: &[Task], keyring: &Keyring) -> (Vec<FileData>, Vec<FileData>) {
    let running = || tasks.iter().filter(|t| wanted(t));
    let secret_ids: BTreeSet<&str> = running()
        .flat_map(|t| t.spec.secrets.iter().map(|r| r.source.as_str()))
        .collect();
    let config_ids: BTreeSet<&str> = running()
        .flat_map(|t| t.spec.configs.iter().map(|r| r.source.as_str()))
        .collect();
    let secrets = secret_ids
        .into_iter()
        .filter_map(|id| state.secrets.get(id))
        .filter_map(|secret| {
            let value = keyring.open(&secret.meta.id, &secret.value).ok()?;
            Some(FileData {
                id: secret.meta.id.clone(),
                data: data_encoding::BASE64.encode(&value),
            })
        })
        .collect();
    let configs = config_ids
        .into_iter()
        .filter_map(|id| state.configs.get(id))
        .map(|config| FileData {
            id: config.meta.id.clone(),
            data: config.data.clone(),
        })
        .collect();
    (secrets, configs)
}

fn network_assignment(state: &State, network: &Network, node: &str) -> Option<NetworkAssignment> {
    let allocation = network.allocation.as_ref()?;
    let create = NetworkCreate {
        name: network.meta.id.clone(),
        driver: Some("overlay".into()),
        subnet: Some(allocation.subnet.clone()),
        gateway: Some(allocation.gateway.clone()),
        internal: network.spec.internal,
        attachable: network.spec.attachable,
        mtu: None,
        vni: Some(allocation.vni),
        labels: network.spec.labels.clone(),
    };
    let mut peers = Vec::new();
    // Backends of each service on this network, and its tasks' extra aliases.
    let mut backends: BTreeMap<&str, (BTreeSet<Ipv4Addr>, BTreeSet<String>)> = BTreeMap::new();
    for task in state.tasks.iter() {
        let Some(attached) = task.networks.iter().find(|n| n.network == network.meta.id) else {
            continue;
        };
        let Some(ip) = address_of(&attached.address) else {
            continue;
        };
        let entry = backends.entry(task.service.as_str()).or_default();
        entry.1.extend(attached.aliases.iter().cloned());
        if !reachable(task) {
            continue;
        }
        entry.0.insert(ip);
        let Some(host) = task.node.as_deref().filter(|n| *n != node) else {
            continue;
        };
        let Some(host_addr) = state.nodes.get(host).and_then(|n| n.status.addr.clone()) else {
            continue;
        };
        peers.push(OverlayPeer {
            host: host_addr,
            ipv4: ip.to_string(),
            mac: mac_for(ip),
            names: Vec::new(),
        });
    }
    if network.meta.id == INGRESS_NETWORK {
        let (ingress, hosts) = ingress(state, allocation, node);
        peers.extend(hosts);
        peers.sort();
        return Some(NetworkAssignment {
            create,
            peers,
            services: Vec::new(),
            ingress,
        });
    }
    peers.sort();
    let services = unambiguous(
        backends
            .into_iter()
            .filter_map(|(id, (ips, aliases))| {
                let service = state.services.get(id)?;
                Some((
                    service.meta.id.clone(),
                    service_endpoint(service, &network.meta.id, ips, aliases),
                ))
            })
            .collect(),
    );
    Some(NetworkAssignment {
        create,
        peers,
        services,
        ingress: None,
    })
}

/// The routing mesh as node `node` sees it: its own address and the mesh ports with
/// the owning services' running tasks on every node; and the other nodes' own
/// addresses as peers (their published ports' connections come from there).
fn ingress(
    state: &State,
    allocation: &NetworkAllocation,
    node: &str,
) -> (Option<Ingress>, Vec<OverlayPeer>) {
    let hosts = allocation
        .nodes
        .iter()
        .filter(|(id, _)| id.as_str() != node)
        .filter_map(|(id, addr)| {
            let host = state.nodes.get(id)?.status.addr.clone()?;
            let ip = address_of(addr)?;
            Some(OverlayPeer {
                host,
                ipv4: ip.to_string(),
                mac: mac_for(ip),
                names: Vec::new(),
            })
        })
        .collect();
    let Some(address) = allocation.nodes.get(node) else {
        return (None, hosts);
    };
    let mut ports = Vec::new();
    for ((published, protocol), service) in Claims::of(state).owners() {
        let Some(target) = mesh_ports(service.spec)
            .into_iter()
            .find(|(p, _)| *p == (published, protocol))
            .map(|(_, t)| t)
        else {
            continue;
        };
        let backends: BTreeSet<Ipv4Addr> = state
            .tasks
            .by_service(service.id)
            .filter(|t| reachable(t))
            .filter_map(|t| {
                let on = t.networks.iter().find(|n| n.network == INGRESS_NETWORK)?;
                address_of(&on.address)
            })
            .collect();
        ports.push(IngressPort {
            service: service.id.to_owned(),
            protocol: protocol.to_owned(),
            published,
            target,
            backends: backends.into_iter().collect(),
        });
    }
    let ingress = Ingress {
        address: address.clone(),
        ports,
    };
    (Some(ingress), hosts)
}

/// The endpoints with every name that more than one of them claims taken away (two
/// stacks sharing a network may both have a `web`): such a name answers none of
/// them rather than either, and a service whose own name went answers by its
/// cluster id (`STACK_web`), which is unique. `services` pairs each endpoint with its
/// service's id.
fn unambiguous(services: Vec<(String, ServiceEndpoint)>) -> Vec<ServiceEndpoint> {
    let mut claims: BTreeMap<String, usize> = BTreeMap::new();
    for (_, e) in &services {
        let names: BTreeSet<&String> = std::iter::once(&e.name).chain(&e.aliases).collect();
        for name in names {
            *claims.entry(name.clone()).or_default() += 1;
        }
    }
    let shared = |name: &String| claims.get(name).is_some_and(|n| *n > 1);
    services
        .into_iter()
        .map(|(id, mut e)| {
            e.aliases.retain(|a| !shared(a));
            if shared(&e.name) {
                e.aliases.retain(|a| *a != id);
                e.name = id;
            }
            e
        })
        .collect()
}

fn service_endpoint(
    service: &Service,
    network: &str,
    ips: BTreeSet<Ipv4Addr>,
    aliases: BTreeSet<String>,
) -> ServiceEndpoint {
    let dnsrr = service
        .spec
        .deploy
        .as_ref()
        .and_then(|d| d.endpoint_mode)
        .is_some_and(|m| m == DeployEndpointMode::Dnsrr);
    // `web` answers, and so do `web.STACK` and the cluster name `STACK_web`.
    let mut names: BTreeSet<String> = aliases;
    if service.meta.id != service.name {
        names.insert(service.meta.id.clone());
    }
    if !service.stack.is_empty() {
        names.insert(format!("{}.{}", service.name, service.stack));
    }
    names.remove(&service.name);
    ServiceEndpoint {
        name: service.name.clone(),
        aliases: names.into_iter().collect(),
        mode: if dnsrr {
            EndpointMode::Dnsrr
        } else {
            EndpointMode::Vip
        },
        vip: if dnsrr {
            None
        } else {
            service.vips.get(network).and_then(|v| v.parse().ok())
        },
        backends: ips.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(name: &str, aliases: &[&str]) -> ServiceEndpoint {
        ServiceEndpoint {
            name: name.into(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            mode: EndpointMode::Vip,
            vip: None,
            backends: Vec::new(),
        }
    }

    #[test]
    fn names_two_stacks_share_on_one_network_answer_neither() {
        let services = vec![
            ("a_web".into(), endpoint("web", &["a_web", "web.a", "www"])),
            ("b_web".into(), endpoint("web", &["b_web", "web.b", "www"])),
            ("b_db".into(), endpoint("db", &["b_db", "db.b"])),
        ];
        let got = unambiguous(services);
        assert_eq!(got[0].name, "a_web");
        assert_eq!(got[0].aliases, ["web.a"]);
        assert_eq!(got[1].name, "b_web");
        assert_eq!(got[1].aliases, ["web.b"]);
        assert_eq!(got[2], endpoint("db", &["b_db", "db.b"]), "untouched");
    }
}
