//! An engine killed and started again while containers run: it finds its
//! networks, endpoints, published ports, DNS servers and virtual addresses and
//! repairs them without making any twice, and removes what belongs to nothing.

use super::{container_rules, exec, get_hostname, http_server, id_of, leftovers, nft};
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

/// The namespaces the engine holds (file names under its `netns` dir), sorted.
fn netns_files(a: &Agent) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(a.dir.join("data/netns"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_restarted_engine_repairs_ports_dns_and_vips_and_removes_stale_ones() {
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
    let netns_before = netns_files(&a);

    // Left for the restart to find: the setup of a container that never came to
    // be (its record gone, as a crash between a create's steps leaves it: a
    // namespace, a veth, a published port, a name), a bridge of orch no network
    // owns, and a namespace no container owns.
    ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "--name",
            "gone",
            "--network",
            "shop",
            "-p",
            "18081:80",
            "busybox",
            "true",
        ],
        None,
    ));
    let gone = id_of(&a, "gone");
    assert!(nft(&a, &["list", "table", "ip", "orch"]).contains("dport 18081"));
    a.crash();
    std::fs::remove_file(
        a.dir
            .join("data/containers")
            .join(&gone)
            .join("config.json"),
    )
    .expect("remove the record of gone");
    link::netlink(Some(&a.host()), |nl| async move {
        nl.bridge("orchbdeadbeef", 1500, None).await
    })
    .expect("make a stray bridge");
    netns::create(&a.dir.join("data/netns").join("f".repeat(64))).expect("make a stray netns");
    assert_ne!(netns_files(&a), netns_before);

    a.restart();
    check(&a);
    assert_eq!(netns_files(&a), netns_before, "stray namespaces are kept");
    assert_eq!(
        links(&a),
        links_before,
        "links made again, lost or kept stale"
    );
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
