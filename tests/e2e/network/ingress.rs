//! The routing mesh on one engine (`PUT /v1/networks/{id}/ingress`): a bad request
//! is refused naming what is wrong; a good one joins the host to the overlay and
//! publishes the port on the host's loopback to a backend's target port; a port
//! without backends is refused; removing the network leaves nothing behind.

use super::{address, http_server, leftovers, nft};
use crate::engine::{Agent, ok};
use crate::stack::http_get;
use api::client::EngineClient;
use api::network::{Ingress, IngressPort, Network};

/// `PUT /v1/networks/{net}/ingress` on `a`'s engine.
fn put_ingress(a: &Agent, net: &str, req: &Ingress) -> Result<Network, String> {
    let socket = format!("unix://{}", a.dir.join("engine.sock").display());
    let client = EngineClient::new(&socket).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(client.set_network_ingress(net, req))
        .map_err(|e| e.to_string())
}

fn mesh(address: &str, protocol: &str, backends: &[&str]) -> Ingress {
    Ingress {
        address: address.into(),
        ports: vec![IngressPort {
            service: "shop_web".into(),
            protocol: protocol.into(),
            published: 8080,
            target: 80,
            backends: backends.iter().map(|b| b.parse().unwrap()).collect(),
        }],
    }
}

/// `GET /hostname` on the host's loopback, port 8080.
fn get(a: &Agent) -> Result<String, String> {
    a.on_host(|| http_get(([127, 0, 0, 1], 8080).into(), "/hostname"))
}

#[test]
fn an_overlay_carries_the_mesh_and_bad_requests_are_named() {
    let mut a = Agent::start("net-ingress");
    if !a.busybox() {
        return;
    }
    let create = [
        "network",
        "create",
        "--driver",
        "overlay",
        "--subnet",
        "10.212.0.0/24",
        "mesh",
    ];
    ok(&a.orch(&create, None));
    let web = http_server(&a, "web", &["--network", "mesh"]);
    let ip = address(&a, "web", "mesh");

    let refused = |net: &str, req: &Ingress, needle: &str| {
        let e = put_ingress(&a, net, req).expect_err("refused");
        assert!(e.contains(needle), "{e}");
    };
    refused(
        "mesh",
        &mesh("10.99.0.2/24", "tcp", &[&ip]),
        "outside network mesh",
    );
    refused(
        "mesh",
        &mesh("10.212.0.250", "tcp", &[&ip]),
        "ingress address",
    );
    refused("mesh", &mesh("10.212.0.250/24", "sctp", &[&ip]), "shop_web");
    refused(
        "bridge",
        &mesh("10.212.0.250/24", "tcp", &[&ip]),
        "not an overlay",
    );
    assert!(get(&a).is_err(), "nothing published yet");

    put_ingress(&a, "mesh", &mesh("10.212.0.250/24", "tcp", &[&ip])).unwrap();
    let answer = get(&a).expect("the mesh port answers on the host");
    assert!(answer.contains(&web), "{answer}");
    let rules = nft(&a, &["list", "table", "ip", "orch"]);
    assert!(
        rules.contains("tcp dport 8080 dnat to numgen random mod 1"),
        "{rules}"
    );

    // No backends: refused.
    put_ingress(&a, "mesh", &mesh("10.212.0.250/24", "tcp", &[])).unwrap();
    assert!(get(&a).is_err(), "a port without backends is refused");

    ok(&a.orch(&["container", "rm", "-f", "web"], None));
    ok(&a.orch(&["network", "rm", "mesh"], None));
    let left: Vec<String> = leftovers(&a)
        .into_iter()
        .filter(|l| l.starts_with("ig"))
        .collect();
    assert!(
        left.is_empty(),
        "the host's link into the mesh went: {left:?}"
    );
    let rules = nft(&a, &["list", "table", "ip", "orch"]);
    assert!(!rules.contains("8080"), "{rules}");
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}
