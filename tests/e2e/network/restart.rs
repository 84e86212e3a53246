//! An engine killed and started again while containers run: it finds its
//! networks, endpoints, published ports, DNS servers and virtual addresses and
//! repairs them without making any twice.

use super::{exec, get_hostname, http_server, leftovers, nft};
use crate::engine::{Agent, ok};
use agent::engine::network::{link, netns};
use api::client::EngineClient;
use api::network::{EndpointMode, ServiceEndpoint, ServiceEndpoints};

/// The links of the agent's host, sorted.
fn links(a: &Agent) -> Vec<String> {
    let mut names = link::netlink(Some(&a.host()), |nl| async move { nl.names().await }).unwrap();
    names.sort();
    names
}

/// `nft list table ip orch` inside container `name`'s namespace.
fn container_rules(a: &Agent, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["container", "inspect", name], None))).unwrap();
    let id = v[0]["id"].as_str().unwrap().to_owned();
    let path = a.dir.join("data/netns").join(id);
    netns::run_in(Some(&path), || {
        std::process::Command::new("nft")
            .args(["list", "table", "ip", "orch"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    })
    .unwrap()
}

#[test]
fn a_restarted_engine_repairs_ports_dns_and_vips_without_doubling_them() {
    let mut a = Agent::start("net-repair");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(
        &["network", "create", "--subnet", "10.211.0.0/24", "shop"],
        None,
    ));
    let web = http_server(
        &a,
        "web",
        &["--network", "shop", "--ip", "10.211.0.10", "-p", "18080:80"],
    );
    ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "--name",
            "client",
            "--network",
            "shop",
            "busybox",
            "sleep",
            "600",
        ],
        None,
    ));
    let client =
        EngineClient::new(&format!("unix://{}", a.dir.join("engine.sock").display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let services = ServiceEndpoints {
        services: vec![ServiceEndpoint {
            name: "front".into(),
            aliases: Vec::new(),
            mode: EndpointMode::Vip,
            vip: Some("10.211.0.100".parse().unwrap()),
            backends: vec!["10.211.0.10".parse().unwrap()],
        }],
    };
    rt.block_on(client.set_network_services("shop", &services))
        .expect("set the services");
    let check = |a: &Agent| {
        assert!(get_hostname(a, "127.0.0.1:18080").contains(&web));
        let (fine, out) = exec(
            a,
            "client",
            "wget -qO- http://web/hostname && wget -qO- http://front/hostname",
        );
        assert!(fine && out.matches(&web).count() == 2, "{out}");
    };
    check(&a);
    let (links_before, rules_before) = (links(&a), nft(&a, &["list", "table", "ip", "orch"]));
    let vips_before = container_rules(&a, "client");

    a.crash();
    a.restart();
    check(&a);
    assert_eq!(links(&a), links_before, "links made again or lost");
    let rules = nft(&a, &["list", "table", "ip", "orch"]);
    assert_eq!(rules, rules_before, "the host's rules changed");
    assert_eq!(rules.matches("dport 18080").count(), 1, "{rules}");
    let vips = container_rules(&a, "client");
    assert_eq!(vips, vips_before, "the client's VIP rules changed");
    assert_eq!(vips.matches("10.211.0.100").count(), 1, "{vips}");

    ok(&a.orch(&["container", "rm", "-f", "web", "client"], None));
    ok(&a.orch(&["network", "rm", "shop"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}
