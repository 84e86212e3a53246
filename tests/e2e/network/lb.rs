//! Services on a network: a virtual address that spreads new connections over the
//! backends (and stops sending to one taken out of the set) while open connections
//! keep theirs, and DNS round-robin.

use super::{address, container_rules, exec, http_server, id_of, leftovers};
use crate::engine::{Agent, fails, ok};
use agent::engine::network::netns;
use agent::testing::stats::chi_square_uniform;
use api::client::EngineClient;
use api::network::{EndpointMode, Network, ServiceEndpoint, ServiceEndpoints};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

/// `PUT /v1/networks/{net}/services` on `a`'s engine.
fn put_services(a: &Agent, net: &str, services: Vec<ServiceEndpoint>) -> Result<Network, String> {
    let client =
        EngineClient::new(&format!("unix://{}", a.dir.join("engine.sock").display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(client.set_network_services(net, &ServiceEndpoints { services }))
        .map_err(|e| e.to_string())
}

fn service(name: &str, vip: Option<&str>, backends: &[String]) -> ServiceEndpoint {
    ServiceEndpoint {
        name: name.into(),
        aliases: Vec::new(),
        mode: if vip.is_some() {
            EndpointMode::Vip
        } else {
            EndpointMode::Dnsrr
        },
        vip: vip.map(|v| v.parse().unwrap()),
        backends: backends.iter().map(|b| b.parse().unwrap()).collect(),
    }
}

/// `n` HTTP requests from container `client` to `http://{target}/hostname`, one
/// connection each: how many each of `ids` answered (and how many nobody did).
fn spread(a: &Agent, client: &str, target: &str, n: usize, ids: &[String]) -> (Vec<u64>, u64) {
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do timeout 3 wget -qO- http://{target}/hostname || echo FAILED; i=$((i+1)); done"
    );
    let (_, out) = exec(a, client, &script);
    let counts = ids
        .iter()
        .map(|id| out.lines().filter(|l| l.starts_with(id.as_str())).count() as u64)
        .collect();
    (counts, out.matches("FAILED").count() as u64)
}

#[test]
fn a_virtual_address_spreads_connections_and_a_removed_backend_gets_none() {
    let mut a = Agent::start("net-vip");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(
        &["network", "create", "--subnet", "10.210.0.0/24", "shop"],
        None,
    ));
    let mut ids = Vec::new();
    let mut ips = Vec::new();
    for i in 0..3 {
        let name = format!("web-{i}");
        ids.push(http_server(&a, &name, &["--network", "shop"]));
        ips.push(address(&a, &name, "shop"));
    }
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
    let mut web = service("web", Some("10.210.0.200"), &ips);
    web.aliases = vec!["web.shop".into()];
    let n = put_services(&a, "shop", vec![web.clone()]).expect("set the services");
    assert_eq!(n.services, vec![web.clone()]);

    // DNS: the name and alias answer the VIP, tasks.web every backend.
    let (fine, out) = exec(
        &a,
        "client",
        "nslookup web; nslookup web.shop; nslookup tasks.web",
    );
    assert!(fine, "{out}");
    assert_eq!(out.matches("10.210.0.200").count(), 2, "{out}");
    for ip in &ips {
        assert!(
            out.contains(ip.as_str()),
            "{ip} missing from tasks.web: {out}"
        );
    }

    // 300 connections to the VIP by name reach every backend, about evenly.
    let (counts, failed) = spread(&a, "client", "web", 300, &ids);
    let test = chi_square_uniform(&counts);
    println!(
        "vip spread over 3 backends: {counts:?} (failed {failed}); chi-square {:.2} (df {}), p = {:.4}",
        test.statistic, test.df, test.p_value
    );
    assert_eq!(failed, 0);
    assert_eq!(counts.iter().sum::<u64>(), 300, "{counts:?}");
    assert!(counts.iter().all(|c| *c > 0), "{counts:?}");
    assert!(test.p_value > 0.001, "far from uniform: {test:?}");

    // A container that joins later gets the rule too; the VIP is not handed out.
    fails(
        &a.orch(
            &[
                "container",
                "run",
                "--rm",
                "--network",
                "shop",
                "--ip",
                "10.210.0.200",
                "busybox",
                "true",
            ],
            None,
        ),
        "10.210.0.200 is taken",
    );

    // Out of the set: no new connection reaches it, the others go on.
    web.backends.pop();
    put_services(&a, "shop", vec![web.clone()]).expect("set the services");
    let (counts, failed) = spread(&a, "client", "web", 60, &ids);
    println!("after removing web-2: {counts:?} (failed {failed})");
    assert_eq!((counts[2], failed), (0, 0), "{counts:?}");
    assert!(counts[0] > 0 && counts[1] > 0, "{counts:?}");

    // A bad set is refused, naming what is wrong, and changes nothing.
    let e = put_services(&a, "shop", vec![service("x", Some("10.9.0.1"), &[])]).unwrap_err();
    assert!(
        e.contains("10.9.0.1 is not in the network's subnet 10.210.0.0/24"),
        "{e}"
    );
    let e = put_services(&a, "shop", vec![service("x", Some(&ips[0]), &[])]).unwrap_err();
    assert!(e.contains("is taken on this network"), "{e}");
    let e = put_services(&a, "nosuch", Vec::new()).unwrap_err();
    assert!(e.contains("no network nosuch"), "{e}");

    // An empty set: the names go, the VIP is free again.
    put_services(&a, "shop", Vec::new()).expect("clear the services");
    let (fine, out) = exec(&a, "client", "nslookup web");
    assert!(!fine, "web still resolves: {out}");
    ok(&a.orch(
        &[
            "container",
            "run",
            "--rm",
            "--network",
            "shop",
            "--ip",
            "10.210.0.200",
            "busybox",
            "true",
        ],
        None,
    ));

    ok(&a.orch(
        &["container", "rm", "-f", "web-0", "web-1", "web-2", "client"],
        None,
    ));
    ok(&a.orch(&["network", "rm", "shop"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn dnsrr_names_rotate_over_the_backends() {
    let mut a = Agent::start("net-dnsrr");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(&["network", "create", "shop"], None));
    let mut ids = Vec::new();
    let mut ips = Vec::new();
    for i in 0..2 {
        let name = format!("db-{i}");
        ids.push(http_server(&a, &name, &["--network", "shop"]));
        ips.push(address(&a, &name, "shop"));
    }
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
    put_services(&a, "shop", vec![service("db", None, &ips)]).expect("set the services");
    let (fine, out) = exec(&a, "client", "nslookup db");
    assert!(fine, "{out}");
    for ip in &ips {
        assert!(out.contains(ip.as_str()), "{ip} missing from db: {out}");
    }
    // Each lookup leads with the next backend, so successive clients alternate.
    let (counts, failed) = spread(&a, "client", "db", 20, &ids);
    println!("dnsrr over 2 backends: {counts:?} (failed {failed})");
    assert_eq!(failed, 0);
    assert!(counts.iter().all(|c| *c > 0), "{counts:?}");

    ok(&a.orch(&["container", "rm", "-f", "db-0", "db-1", "client"], None));
    ok(&a.orch(&["network", "rm", "shop"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

/// The backends of the VIP rule in container `name`'s namespace (the addresses of
/// its `numgen` map).
fn vip_backends(a: &Agent, name: &str) -> Vec<String> {
    let rules = container_rules(a, name);
    let map = rules
        .split_once("map {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(map, _)| map)
        .unwrap_or_else(|| panic!("no VIP map in {rules}"));
    map.split(',')
        .filter_map(|entry| entry.split_once(':'))
        .map(|(_, ip)| ip.trim().to_owned())
        .collect()
}

/// Send `line` on `conn` and read the echo back.
fn echo(conn: &mut BufReader<TcpStream>, line: &str) -> String {
    conn.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .expect("send on the open connection");
    let mut back = String::new();
    conn.read_line(&mut back).expect("read the echo");
    back.trim_end().to_owned()
}

#[test]
fn an_open_connection_keeps_its_backend_when_the_set_changes() {
    let mut a = Agent::start("net-vip-open");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(
        &["network", "create", "--subnet", "10.212.0.0/24", "shop"],
        None,
    ));
    let mut ips = Vec::new();
    for name in ["echo-0", "echo-1"] {
        let args = [
            "container",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "shop",
            "busybox",
            "nc",
            "-ll",
            "-p",
            "7",
            "-e",
            "cat",
        ];
        ok(&a.orch(&args, None));
        ips.push(address(&a, name, "shop"));
    }
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
    let vip = "10.212.0.200";
    let set = |backends: &[String]| {
        put_services(&a, "shop", vec![service("echo", Some(vip), backends)])
            .expect("set the services");
    };
    set(&ips[..1]);

    // A connection opened from the client's namespace (so through its VIP rule)
    // reaches echo-0, the only backend.
    let client_ns = a.dir.join("data/netns").join(id_of(&a, "client"));
    let stream = netns::run_in(Some(&client_ns), || {
        TcpStream::connect_timeout(
            &format!("{vip}:7").parse().unwrap(),
            std::time::Duration::from_secs(5),
        )
    })
    .unwrap()
    .expect("connect to the VIP");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut conn = BufReader::new(stream);
    assert_eq!(echo(&mut conn, "one"), "one");

    // A backend joins: the rules are replaced, the open connection goes on.
    set(&ips);
    assert_eq!(vip_backends(&a, "client"), ips);
    assert_eq!(echo(&mut conn, "two"), "two");

    // Its own backend leaves the set (new connections go elsewhere, as the test
    // above shows): this one stays with echo-0, conntrack keeps its translation.
    set(&ips[1..]);
    assert_eq!(vip_backends(&a, "client"), &ips[1..]);
    assert_eq!(echo(&mut conn, "three"), "three");
    drop(conn);

    ok(&a.orch(
        &["container", "rm", "-f", "echo-0", "echo-1", "client"],
        None,
    ));
    ok(&a.orch(&["network", "rm", "shop"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}
