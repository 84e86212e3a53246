//! The routing mesh through the passes and a node's assignments: a service
//! publishing an ingress port brings the cluster's `ingress` network, every node gets
//! an address on it and the port with every running task behind it, wherever the
//! tasks run; a second service asking for the same port, on the mesh or in host
//! mode, waits, naming both; the network goes with the last service that published
//! a mesh port.

use super::sim::Sim;
use crate::allocator::ingress::stack_conflicts;
use crate::dispatcher::assignments::assignments;
use crate::keyring::Keyring;
use crate::store::Command;
use api::ServiceSpec;
use api::cluster::{Kind, TaskState};
use api::deploy::DeploySpec;
use api::network::{INGRESS_NETWORK, Ingress};
use api::service::{PortMode, PortSpec};
use api::session::NetworkAssignment;

fn web(replicas: u64, published: &str, mode: PortMode) -> ServiceSpec {
    ServiceSpec {
        image: Some("busybox".into()),
        ports: vec![PortSpec {
            mode,
            published: Some(published.into()),
            target: 80,
            ..PortSpec::default()
        }],
        deploy: Some(DeploySpec {
            replicas: Some(replicas),
            ..DeploySpec::default()
        }),
        ..ServiceSpec::default()
    }
}

fn mesh_of(sim: &Sim, node: &str) -> Option<NetworkAssignment> {
    assignments(&sim.state, node, 0, &Keyring::generate().unwrap())
        .networks
        .into_iter()
        .find(|n| n.create.name == INGRESS_NETWORK)
}

fn ingress_of(sim: &Sim, node: &str) -> Ingress {
    mesh_of(sim, node)
        .and_then(|n| n.ingress)
        .unwrap_or_else(|| panic!("node {node} has no routing mesh"))
}

fn sim() -> Sim {
    let mut sim = Sim::new(&["n1", "n2", "n3"]);
    for (i, n) in ["n1", "n2", "n3"].into_iter().enumerate() {
        sim.set_node(n, |node| {
            node.status.addr = Some(format!("192.168.0.{}", i + 1))
        });
    }
    sim
}

#[test]
fn every_node_publishes_an_ingress_port_to_every_running_task() {
    let mut sim = sim();
    sim.deploy("shop", &[("web", web(2, "8080", PortMode::Ingress))]);
    sim.agents_run();
    let tasks = sim.wanted("shop_web");
    assert_eq!(tasks.len(), 2);
    let mut addresses: Vec<std::net::Ipv4Addr> = tasks
        .iter()
        .map(|t| {
            let on = t.networks.iter().find(|n| n.network == INGRESS_NETWORK);
            let on = on.expect("each task is on the mesh");
            crate::allocator::address_of(&on.address).unwrap()
        })
        .collect();
    addresses.sort();
    let busy: Vec<String> = tasks.iter().filter_map(|t| t.node.clone()).collect();
    let idle = ["n1", "n2", "n3"]
        .into_iter()
        .find(|n| !busy.iter().any(|b| b == n))
        .expect("a node without a task");
    let mut own = Vec::new();
    for node in ["n1", "n2", "n3"] {
        let ingress = ingress_of(&sim, node);
        assert_eq!(ingress.ports.len(), 1, "{node}");
        let port = &ingress.ports[0];
        assert_eq!(
            (
                port.service.as_str(),
                port.protocol.as_str(),
                port.published,
                port.target
            ),
            ("shop_web", "tcp", 8080, 80)
        );
        assert_eq!(port.backends, addresses, "{node}: both tasks, on any node");
        own.push(ingress.address.clone());
    }
    own.sort();
    own.dedup();
    assert_eq!(own.len(), 3, "each node its own address: {own:?}");
    // The node without a task reaches both tasks and hears from the other nodes.
    let peers = mesh_of(&sim, idle).unwrap().peers;
    let peer_ips: Vec<&str> = peers.iter().map(|p| p.ipv4.as_str()).collect();
    for a in &addresses {
        assert!(peer_ips.contains(&a.to_string().as_str()), "{peers:?}");
    }
    assert_eq!(peers.len(), 4, "2 tasks and 2 other nodes: {peers:?}");
    // No virtual address on the mesh.
    let service = sim.state.services.get("shop_web").unwrap();
    assert!(!service.vips.contains_key(INGRESS_NETWORK));
}

#[test]
fn mesh_addresses_are_unique_and_a_removed_node_gives_its_back() {
    let mut sim = sim();
    sim.deploy("shop", &[("web", web(5, "8080", PortMode::Ingress))]);
    sim.agents_run();
    let allocation = |sim: &Sim| {
        let network = sim.state.networks.get(INGRESS_NETWORK).unwrap();
        network.allocation.clone().unwrap()
    };
    let a = allocation(&sim);
    let mut all: Vec<String> = a.nodes.values().cloned().collect();
    for t in sim.wanted("shop_web") {
        all.extend(
            t.networks
                .iter()
                .filter(|n| n.network == INGRESS_NETWORK)
                .map(|n| n.address.clone()),
        );
    }
    assert_eq!(all.len(), 3 + 5);
    assert!(
        a.subnet.ends_with("/22"),
        "room for many nodes: {}",
        a.subnet
    );
    all.push(format!("{}/22", a.gateway));
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "nothing handed out twice: {all:?}");

    let n3 = a.nodes.get("n3").cloned().unwrap();
    let version = sim.state.nodes.get("n3").unwrap().meta.version;
    sim.commit(vec![Command::delete(Kind::Node, "n3", Some(version))]);
    sim.settle();
    let nodes = allocation(&sim).nodes;
    assert!(!nodes.contains_key("n3"), "{nodes:?}");
    sim.add_node("n4");
    sim.settle();
    let n4 = allocation(&sim).nodes.get("n4").cloned().unwrap();
    assert!(!all.contains(&n4) || n4 == n3, "a free address: {n4}");
}

#[test]
fn a_second_service_on_the_same_port_waits_naming_both_then_gets_it() {
    let mut sim = sim();
    sim.deploy("a", &[("web", web(1, "8080", PortMode::Ingress))]);
    sim.agents_run();
    sim.advance(1000);
    sim.deploy("b", &[("web", web(1, "8080", PortMode::Ingress))]);
    sim.agents_run();
    let waiting = sim.wanted("b_web");
    assert_eq!(waiting[0].status.state, TaskState::New);
    let message = &waiting[0].status.message;
    assert!(
        message.contains("port 8080/tcp is published by service a_web")
            && message.contains("b_web"),
        "{message}"
    );
    // udp/8080 is another port.
    sim.deploy(
        "c",
        &[("dns", {
            let mut s = web(1, "8080", PortMode::Ingress);
            s.ports[0].protocol = api::service::Protocol::Udp;
            s
        })],
    );
    sim.agents_run();
    assert_eq!(sim.count("c_dns", TaskState::Running), 1);

    // a goes: its port is released and b gets it.
    let version = sim.state.stacks.get("a").unwrap().meta.version;
    sim.commit(vec![Command::delete(Kind::Stack, "a", Some(version))]);
    sim.settle();
    sim.agents_run();
    assert_eq!(sim.count("b_web", TaskState::Running), 1);
    let ports = ingress_of(&sim, "n1").ports;
    let owners: Vec<(&str, &str)> = ports
        .iter()
        .map(|p| (p.service.as_str(), p.protocol.as_str()))
        .collect();
    assert_eq!(owners, [("b_web", "tcp"), ("c_dns", "udp")]);
}

#[test]
fn a_stack_asking_for_a_taken_port_is_refused_naming_both_services() {
    let mut sim = sim();
    sim.deploy("a", &[("web", web(1, "8080", PortMode::Ingress))]);
    let stack = |services: &[(&str, ServiceSpec)]| api::StackSpec {
        services: services
            .iter()
            .map(|(k, s)| ((*k).to_owned(), s.clone()))
            .collect(),
        ..api::StackSpec::default()
    };
    let conflicts = |id: &str, spec: &api::StackSpec| stack_conflicts(&sim.state, id, spec);
    let taken = stack(&[("front", web(1, "8080", PortMode::Ingress))]);
    assert_eq!(
        conflicts("b", &taken),
        ["port 8080/tcp is published by service a_web already (service b_front asks for it too)"]
    );
    assert!(
        conflicts("a", &taken).is_empty(),
        "a stack keeps its own ports"
    );
    let twice = stack(&[
        ("one", web(1, "9090", PortMode::Ingress)),
        ("two", web(1, "9090", PortMode::Ingress)),
    ]);
    assert_eq!(conflicts("c", &twice).len(), 1, "two of its own services");
    let host = stack(&[("web", web(1, "8080", PortMode::Host))]);
    assert_eq!(
        conflicts("d", &host),
        [
            "port 8080/tcp is published on the routing mesh by service a_web already (service d_web asks for it in host mode)"
        ]
    );
    let range = stack(&[("web", web(1, "8000-8090", PortMode::Host))]);
    assert_eq!(conflicts("e", &range).len(), 1, "a range with the port");
    let other = stack(&[("web", web(1, "8081", PortMode::Host))]);
    assert!(conflicts("f", &other).is_empty(), "another host port");

    // A host port first: the mesh cannot have it.
    sim.deploy("g", &[("web", web(1, "9090", PortMode::Host))]);
    let conflicts = |id: &str, spec: &api::StackSpec| stack_conflicts(&sim.state, id, spec);
    let mesh = stack(&[("web", web(1, "9090", PortMode::Ingress))]);
    assert_eq!(
        conflicts("h", &mesh),
        [
            "port 9090/tcp is published in host mode by service g_web already (service h_web asks for it on the routing mesh)"
        ]
    );
    let mut both = web(1, "7070", PortMode::Ingress);
    both.ports.push(PortSpec {
        mode: PortMode::Host,
        published: Some("7070".into()),
        target: 81,
        ..PortSpec::default()
    });
    assert_eq!(
        conflicts("i", &stack(&[("web", both)])),
        ["service i_web publishes port 7070/tcp both on the routing mesh and in host mode"]
    );
}

#[test]
fn a_host_port_equal_to_a_mesh_port_waits_for_whichever_service_is_older() {
    let mut sim = sim();
    sim.deploy("a", &[("web", web(1, "8080", PortMode::Ingress))]);
    sim.deploy("h", &[("web", web(1, "9090", PortMode::Host))]);
    sim.agents_run();
    sim.advance(1000);
    // Created otherwise than by a stack check: the allocator keeps them waiting.
    sim.deploy("d", &[("web", web(1, "8080", PortMode::Host))]);
    sim.deploy("e", &[("web", web(1, "8000-8090", PortMode::Host))]);
    sim.deploy("m", &[("web", web(1, "9090", PortMode::Ingress))]);
    sim.agents_run();
    let message = |service: &str| {
        let tasks = sim.wanted(service);
        assert_eq!(tasks[0].status.state, TaskState::New, "{service}");
        tasks[0].status.message.clone()
    };
    for host in ["d_web", "e_web"] {
        assert_eq!(
            message(host),
            format!(
                "port 8080/tcp is published on the routing mesh by service a_web already (service {host} asks for it in host mode)"
            )
        );
    }
    assert_eq!(
        message("m_web"),
        "port 9090/tcp is published in host mode by service h_web already (service m_web asks for it on the routing mesh)"
    );
    assert_eq!(sim.count("a_web", TaskState::Running), 1);
    assert_eq!(sim.count("h_web", TaskState::Running), 1);
    // Only the mesh's own port answers on every node; 9090 is h_web's host port.
    let ports: Vec<u16> = ingress_of(&sim, "n1")
        .ports
        .iter()
        .map(|p| p.published)
        .collect();
    assert_eq!(ports, [8080]);

    // The mesh service goes: the host ports are free to run.
    let version = sim.state.stacks.get("a").unwrap().meta.version;
    sim.commit(vec![Command::delete(Kind::Stack, "a", Some(version))]);
    sim.settle();
    sim.agents_run();
    assert_eq!(sim.count("d_web", TaskState::Running), 1);
    assert_eq!(sim.count("e_web", TaskState::Running), 1);
}

#[test]
fn the_mesh_network_goes_with_the_last_service_that_publishes() {
    let mut sim = sim();
    sim.deploy("shop", &[("web", web(2, "8080", PortMode::Ingress))]);
    sim.agents_run();
    assert!(sim.state.networks.get(INGRESS_NETWORK).is_some());
    let version = sim.state.stacks.get("shop").unwrap().meta.version;
    sim.commit(vec![Command::delete(Kind::Stack, "shop", Some(version))]);
    sim.settle();
    sim.agents_run();
    assert!(
        sim.state.networks.get(INGRESS_NETWORK).is_none(),
        "no service publishes a mesh port, no task is on it"
    );
    assert!(mesh_of(&sim, "n1").is_none());
    // Host mode alone brings no mesh.
    sim.deploy("host", &[("web", web(1, "8080", PortMode::Host))]);
    sim.agents_run();
    assert!(sim.state.networks.get(INGRESS_NETWORK).is_none());
    let task = &sim.wanted("host_web")[0];
    assert!(task.networks.is_empty(), "{:?}", task.networks);
}

#[test]
fn replicas_of_an_ingress_port_share_a_node_host_mode_ones_do_not() {
    let mut sim = Sim::new(&["n1"]);
    sim.scheduler = Some(crate::scheduler::Strategy::Spread);
    sim.deploy("mesh", &[("web", web(2, "8080", PortMode::Ingress))]);
    sim.deploy("host", &[("web", web(2, "9090", PortMode::Host))]);
    sim.agents_run();
    assert_eq!(sim.count("mesh_web", TaskState::Running), 2);
    assert_eq!(sim.count("host_web", TaskState::Running), 1);
    assert_eq!(sim.count("host_web", TaskState::Pending), 1);
}
