//! A stack's services on its network as a node's assignments give them to the
//! engine: the names each answers (`web`, `web.STACK`, `STACK_web`, aliases) and
//! the backends behind them — only tasks that run (healthy, when they have a health
//! check) and are still wanted.

use super::sim::Sim;
use crate::dispatcher::assignments::assignments;
use crate::keyring::Keyring;
use api::ServiceSpec;
use api::cluster::{Task, TaskState};
use api::deploy::{DeploySpec, EndpointMode as DeployEndpointMode};
use api::network::{EndpointMode, ServiceEndpoint};
use api::service::ServiceNetwork;
use api::stack::NetworkSpec;
use std::net::Ipv4Addr;

fn stack(web_replicas: u64) -> api::StackSpec {
    let mut web = ServiceSpec {
        image: Some("busybox".into()),
        deploy: Some(DeploySpec {
            replicas: Some(web_replicas),
            ..DeploySpec::default()
        }),
        ..ServiceSpec::default()
    };
    web.networks.insert(
        "front".into(),
        Some(ServiceNetwork {
            aliases: vec!["www".into()],
            ..ServiceNetwork::default()
        }),
    );
    let mut db = ServiceSpec {
        image: Some("busybox".into()),
        deploy: Some(DeploySpec {
            endpoint_mode: Some(DeployEndpointMode::Dnsrr),
            ..DeploySpec::default()
        }),
        ..ServiceSpec::default()
    };
    db.networks.insert("front".into(), None);
    let mut spec = api::StackSpec {
        name: "shop".into(),
        ..api::StackSpec::default()
    };
    spec.services.insert("web".into(), web);
    spec.services.insert("db".into(), db);
    spec.networks.insert(
        "front".into(),
        NetworkSpec {
            name: "shop_front".into(),
            ..NetworkSpec::default()
        },
    );
    spec
}

/// The services of network `shop_front` in the assignments of a node running a
/// web task.
fn services(sim: &Sim) -> Vec<ServiceEndpoint> {
    let node = sim
        .wanted("shop_web")
        .into_iter()
        .find(|t| t.status.state == TaskState::Running)
        .and_then(|t| t.node)
        .expect("a web task runs");
    let set = assignments(&sim.state, &node, 0, &Keyring::generate().unwrap());
    let front = set
        .networks
        .into_iter()
        .find(|n| n.create.name == "shop_front")
        .expect("the network is assigned");
    front.services
}

fn address(task: &Task) -> Ipv4Addr {
    task.networks[0]
        .address
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Addresses of the web tasks in `state` that are still wanted.
fn web_addresses(sim: &Sim, state: TaskState) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = sim
        .wanted("shop_web")
        .iter()
        .filter(|t| t.status.state == state)
        .map(address)
        .collect();
    ips.sort();
    ips
}

#[test]
fn a_service_answers_by_its_stack_names_with_running_tasks_only() {
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy_spec("shop", stack(3));
    // Slot 1 runs, slot 2 waits for its health check, slot 3 failed its health check.
    sim.agents(|t| {
        let state = match t.slot {
            1 => TaskState::Running,
            2 => TaskState::Starting,
            _ => TaskState::Failed,
        };
        (t.service == "shop_web" && t.status.state == TaskState::Assigned).then_some((state, None))
    });
    let set = services(&sim);
    let web = set.iter().find(|s| s.name == "web").expect("web");
    assert_eq!(web.aliases, ["shop_web", "web.shop", "www"]);
    assert_eq!(web.mode, EndpointMode::Vip);
    let vip = sim.state.services.get("shop_web").unwrap().vips["shop_front"]
        .parse()
        .unwrap();
    assert_eq!(web.vip, Some(vip));
    let running = web_addresses(&sim, TaskState::Running);
    assert_eq!(running.len(), 1);
    assert_eq!(web.backends, running, "only the running task is a backend");
    let db = set.iter().find(|s| s.name == "db").expect("db");
    assert_eq!(db.aliases, ["db.shop", "shop_db"]);
    assert_eq!((db.mode, db.vip), (EndpointMode::Dnsrr, None));

    // Every task runs (the failed one's replacement after its restart delay): all
    // are backends.
    sim.advance(60_000);
    sim.agents(|t| {
        matches!(t.status.state, TaskState::Assigned | TaskState::Starting)
            .then_some((TaskState::Running, None))
    });
    let all = web_addresses(&sim, TaskState::Running);
    assert_eq!(all.len(), 3);
    let web = services(&sim)
        .into_iter()
        .find(|s| s.name == "web")
        .unwrap();
    assert_eq!(web.backends, all);

    // Scaled down: the surplus task still runs until its agent stops it, but it
    // takes no new connection from the moment it is no longer wanted.
    sim.deploy_spec("shop", stack(2));
    let kept = web_addresses(&sim, TaskState::Running);
    assert_eq!(kept.len(), 2);
    let web = services(&sim)
        .into_iter()
        .find(|s| s.name == "web")
        .unwrap();
    assert_eq!(web.backends, kept);
}
