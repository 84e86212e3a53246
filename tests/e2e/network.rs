//! Networks through the `orch` binary: every agent runs in a network namespace of its
//! own (its test host), so bridges, rules and published ports stay inside it; two
//! such hosts joined by a private bridge in a third namespace carry the overlay.

use crate::engine::{Agent, fails, ok};
use agent::engine::network::{link, netns};
use agent::testing::lan::Lan;
use api::client::EngineClient;
use api::network::{OverlayPeer, OverlayPeers};
use std::io::{Read, Write};

mod ingress;
mod lb;
mod own_dns;
mod published;
mod restart;
mod stopped;

/// (exit ok, stdout and stderr) of a command.
fn outcome(out: std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `orch container run --rm ... busybox sh -c SCRIPT` on `net`: (exit ok, output).
fn sh(a: &Agent, net: &str, script: &str) -> (bool, String) {
    let args = [
        "container",
        "run",
        "--rm",
        "--network",
        net,
        "busybox",
        "sh",
        "-c",
        script,
    ];
    outcome(a.orch(&args, None))
}

/// `orch container exec NAME sh -c SCRIPT`: (exit ok, output).
fn exec(a: &Agent, name: &str, script: &str) -> (bool, String) {
    outcome(a.orch(&["container", "exec", name, "sh", "-c", script], None))
}

fn http_server(a: &Agent, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["container", "run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    let id = ok(&a.orch(&args, None)).trim().to_owned();
    id[..12].to_owned()
}

fn inspect(a: &Agent, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["container", "inspect", name], None))).unwrap();
    v[0].clone()
}

/// Container `name`'s address on `network` (no prefix length).
fn address(a: &Agent, name: &str, network: &str) -> String {
    let cidr = inspect(a, name)["networks"][network]["ipv4"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no address on {network}"))
        .to_owned();
    cidr.split('/').next().unwrap_or_default().to_owned()
}

/// `nft ARGS` run on the agent's host: its standard output.
fn nft(a: &Agent, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.on_host(move || {
        std::process::Command::new("nft")
            .args(&args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    })
}

/// The id of container `name`.
pub(crate) fn id_of(a: &Agent, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["container", "inspect", name], None))).unwrap();
    v[0]["id"].as_str().unwrap().to_owned()
}

/// `nft ARGS` inside container `name`'s namespace: its standard output.
pub(crate) fn container_nft(a: &Agent, name: &str, args: &[&str]) -> String {
    let id = id_of(a, name);
    let path = a.dir.join("data/netns").join(id);
    netns::run_in(Some(&path), || {
        std::process::Command::new("nft")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    })
    .unwrap()
}

/// `nft list table ip orch` inside container `name`'s namespace.
pub(crate) fn container_rules(a: &Agent, name: &str) -> String {
    container_nft(a, name, &["list", "table", "ip", "orch"])
}

/// Whether [`perl_task`] can run: the busybox image is there and the host has perl
/// (after saying why not).
fn perl_ready(a: &Agent) -> bool {
    if !a.busybox() {
        return false;
    }
    let ready = std::path::Path::new("/usr/bin/perl").exists();
    if !ready {
        eprintln!("SKIP: /usr/bin/perl is missing (Debian's perl-base)");
    }
    ready
}

/// `orch container run -d --name NAME FLAGS... busybox perl -e SCRIPT`: a task in
/// the host's perl (Debian's perl-base) through read-only bind mounts, as
/// busybox-static has no UDP server.
fn perl_task(a: &Agent, name: &str, flags: &[&str], script: &str) {
    let mut args = vec!["container", "run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend([
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/usr/lib:/lib:ro",
        "-v",
        "/usr/lib64:/lib64:ro",
        "-e",
        "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu",
        "busybox",
        "/usr/bin/perl",
        "-e",
        script,
    ]);
    ok(&a.orch(&args, None));
}

/// The kernel objects of orch in the agent's namespace: links with orch's prefixes
/// and orch's nftables table.
fn leftovers(a: &Agent) -> Vec<String> {
    let links = link::netlink(Some(&a.host()), |nl| async move { nl.names().await }).unwrap();
    let mut out: Vec<String> = links
        .into_iter()
        .filter(|n| ["orch", "ov", "vx", "ig"].iter().any(|p| n.starts_with(p)))
        .collect();
    if nft(a, &["list", "tables"]).contains("table ip orch") {
        out.push("table ip orch".into());
    }
    let netns_dir = a.dir.join("data/netns");
    for e in std::fs::read_dir(netns_dir).into_iter().flatten().flatten() {
        out.push(e.path().display().to_string());
    }
    out
}

#[test]
fn bridge_networks_resolve_names_isolate_and_seal_internal_ones() {
    let mut a = Agent::start("net-bridge");
    if !a.busybox() {
        return;
    }
    for n in ["front", "back"] {
        ok(&a.orch(&["network", "create", n], None));
    }
    ok(&a.orch(&["network", "create", "--internal", "sealed"], None));
    fails(
        &a.orch(&["network", "create", "front"], None),
        "exists already",
    );
    fails(
        &a.orch(&["network", "create", "--subnet", "10.1.0.5/16", "x"], None),
        "host bits",
    );
    let web = http_server(&a, "web", &["--network", "front", "--network-alias", "api"]);
    let web_ip = address(&a, "web", "front");

    // Same network: by name, by alias, over TCP.
    let (fine, out) = sh(
        &a,
        "front",
        "wget -qO- http://web/hostname && wget -qO- http://api/hostname",
    );
    assert!(fine && out.matches(&web).count() == 2, "{out}");

    // Another network: neither the name nor the address.
    let (fine, out) = sh(&a, "back", "nslookup web");
    assert!(!fine, "web resolves from another network: {out}");
    let script = format!("timeout 3 nc {web_ip} 80 </dev/null && echo REACHED");
    let (_, out) = sh(&a, "back", &script);
    assert!(
        !out.contains("REACHED"),
        "another network reached web: {out}"
    );

    // Internal: no default route, neither the host's gateways nor other networks.
    let script = format!(
        "ip route; timeout 3 nc 172.17.0.1 80 </dev/null; timeout 3 nc {web_ip} 80 </dev/null && echo REACHED"
    );
    let (_, out) = sh(&a, "sealed", &script);
    assert!(!out.contains("default"), "{out}");
    assert!(!out.contains("REACHED"), "{out}");

    // Connect puts it on a second network live; disconnect takes it off.
    ok(&a.orch(&["network", "connect", "back", "web"], None));
    let (fine, out) = sh(&a, "back", "wget -qO- http://web/hostname");
    assert!(fine && out.contains(&web), "{out}");
    ok(&a.orch(&["network", "disconnect", "back", "web"], None));
    let (fine, _) = sh(&a, "back", "nslookup web");
    assert!(!fine, "web still resolves after disconnect");

    // A gateway of one's own: the containers route through it; ls and inspect
    // show the networks.
    ok(&a.orch(
        &[
            "network",
            "create",
            "--subnet",
            "10.213.0.0/24",
            "--gateway",
            "10.213.0.254",
            "gw",
        ],
        None,
    ));
    let (fine, out) = sh(&a, "gw", "ip route");
    assert!(fine && out.contains("default via 10.213.0.254"), "{out}");
    let ls = ok(&a.orch(&["network", "ls"], None));
    for needle in ["gw", "10.213.0.0/24", "sealed", "yes", "front", "bridge"] {
        assert!(ls.contains(needle), "{needle} not in\n{ls}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["network", "inspect", "gw"], None))).unwrap();
    assert_eq!(v[0]["gateway"], "10.213.0.254", "{v}");
    assert_eq!(v[0]["driver"], "bridge", "{v}");
    ok(&a.orch(&["network", "rm", "gw"], None));

    // A network with containers stays; then everything goes.
    fails(
        &a.orch(&["network", "rm", "front"], None),
        "has containers: web",
    );
    ok(&a.orch(&["container", "rm", "-f", "web"], None));
    for n in ["front", "back", "sealed"] {
        ok(&a.orch(&["network", "rm", n], None));
    }
    fails(
        &a.orch(&["network", "rm", "bridge"], None),
        "default network",
    );
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

/// `GET /hostname` on `addr` from inside the agent's host (the server in a container
/// just started may not listen yet: refusals are retried for 5 s).
fn get_hostname(a: &Agent, addr: &str) -> String {
    let addr = addr.to_owned();
    a.on_host(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut s = loop {
            match std::net::TcpStream::connect(&addr) {
                Ok(s) => break s,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("connect to the published port {addr}: {e}"),
            }
        };
        s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    })
}

#[test]
fn published_ports_answer_tcp_and_udp_and_clash_clearly() {
    let mut a = Agent::start("net-ports");
    if !a.busybox() {
        return;
    }
    let web = http_server(&a, "web", &["-p", "18080:80"]);
    assert!(get_hostname(&a, "127.0.0.1:18080").contains(&web));
    let ports = &inspect(&a, "web")["ports"][0];
    assert_eq!(ports["host_port"], 18080);
    assert_eq!(ports["container_port"], 80);
    fails(
        &a.orch(
            &[
                "container",
                "run",
                "-d",
                "--name",
                "two",
                "-p",
                "18080:80",
                "busybox",
                "true",
            ],
            None,
        ),
        "port 18080/tcp is already published by container web",
    );
    // A port something on the host holds is refused too.
    let holder = a.on_host(|| std::net::TcpListener::bind("0.0.0.0:18081").unwrap());
    fails(
        &a.orch(
            &[
                "container",
                "run",
                "-d",
                "--name",
                "three",
                "-p",
                "18081:80",
                "busybox",
                "true",
            ],
            None,
        ),
        "in use on the host",
    );
    drop(holder);

    // A host address limits the rule to it (a UDP answer end to end is in
    // `published`).
    ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "--name",
            "echo",
            "-p",
            "127.0.0.1:15353:53/udp",
            "busybox",
            "sleep",
            "60",
        ],
        None,
    ));
    let echo_ip = address(&a, "echo", "bridge");
    let rules = nft(&a, &["list", "table", "ip", "orch"]);
    assert!(
        rules.contains(&format!(
            "ip daddr 127.0.0.1 udp dport 15353 dnat to {echo_ip}:53"
        )),
        "{rules}"
    );
    // A range publishes each port of it.
    let ranged = http_server(&a, "ranged", &["-p", "18090-18091:80-81"]);
    let ports: Vec<(u64, u64)> = inspect(&a, "ranged")["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["host_port"].as_u64().unwrap(),
                p["container_port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [(18090, 80), (18091, 81)]);
    assert!(get_hostname(&a, "127.0.0.1:18090").contains(&ranged));

    ok(&a.orch(&["container", "rm", "-f", "web", "echo", "ranged"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn dns_lists_every_replica_and_forgets_removed_ones() {
    let mut a = Agent::start("net-dns");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(&["network", "create", "shop"], None));
    let mut ips = Vec::new();
    for i in 0..3 {
        http_server(
            &a,
            &format!("web-{i}"),
            &["--network", "shop", "--network-alias", "web"],
        );
        ips.push(address(&a, &format!("web-{i}"), "shop"));
    }
    let (fine, out) = sh(&a, "shop", "nslookup tasks.web");
    assert!(fine, "{out}");
    for ip in &ips {
        assert!(
            out.contains(ip.as_str()),
            "{ip} missing from tasks.web: {out}"
        );
    }
    ok(&a.orch(&["container", "rm", "-f", "web-1"], None));
    let (fine, out) = sh(&a, "shop", "nslookup tasks.web");
    assert!(fine, "{out}");
    assert!(
        !out.contains(ips[1].as_str()),
        "a removed replica is still listed: {out}"
    );
    assert!(
        out.contains(ips[0].as_str()) && out.contains(ips[2].as_str()),
        "{out}"
    );
    ok(&a.orch(&["container", "rm", "-f", "web-0", "web-2"], None));
    ok(&a.orch(&["network", "rm", "shop"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

fn set_peers(a: &Agent, local: &str, peers: Vec<OverlayPeer>) {
    let client =
        EngineClient::new(&format!("unix://{}", a.dir.join("engine.sock").display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(client.set_network_peers(
        "ov",
        &OverlayPeers {
            local: Some(local.into()),
            peers,
        },
    ))
    .expect("set the overlay's peers");
}

#[test]
fn overlay_joins_containers_on_two_hosts_and_a_removed_peer_is_cut() {
    let mut a = Agent::start("ov-a");
    let mut b = Agent::start("ov-b");
    if !a.busybox() || !b.busybox() {
        return;
    }
    let lan = Lan::new(&a.dir.join("lan.netns")).unwrap();
    lan.plug(&a.host(), "la", [10, 99, 0, 1].into()).unwrap();
    lan.plug(&b.host(), "lb", [10, 99, 0, 2].into()).unwrap();
    let mut ids = Vec::new();
    for (agent, name, ip) in [(&a, "alpha", "10.200.0.10"), (&b, "beta", "10.200.0.20")] {
        ok(&agent.orch(
            &[
                "network",
                "create",
                "--driver",
                "overlay",
                "--attachable",
                "--subnet",
                "10.200.0.0/24",
                "--vni",
                "4242",
                "ov",
            ],
            None,
        ));
        ids.push(http_server(agent, name, &["--network", "ov", "--ip", ip]));
    }
    // A second container on host b: cutting beta must leave it reachable.
    ids.push(http_server(
        &b,
        "gamma",
        &["--network", "ov", "--ip", "10.200.0.21"],
    ));
    let (alpha, beta, gamma) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let peer = |host: &str, ip: &str, name: &str| OverlayPeer {
        host: host.into(),
        ipv4: ip.into(),
        mac: link::mac_text(&link::mac_for(ip.parse().unwrap())),
        names: vec![name.into()],
    };
    set_peers(
        &a,
        "10.99.0.1",
        vec![
            peer("10.99.0.2", "10.200.0.20", "beta"),
            peer("10.99.0.2", "10.200.0.21", "gamma"),
        ],
    );
    set_peers(
        &b,
        "10.99.0.2",
        vec![peer("10.99.0.1", "10.200.0.10", "alpha")],
    );

    // Every endpoint must be known to the other side, so the checks run in the two
    // containers themselves.
    // The MTU leaves room for the 50-byte vxlan header.
    let (fine, out) = exec(
        &a,
        "alpha",
        "ip -o link show eth0 && ping -c 1 -W 2 10.200.0.20 && wget -qO- http://beta/hostname",
    );
    assert!(
        fine && out.contains("mtu 1450") && out.contains(&beta),
        "alpha cannot reach beta: {out}"
    );
    let (fine, out) = exec(
        &b,
        "beta",
        "ping -c 1 -W 2 10.200.0.10 && wget -qO- http://alpha/hostname",
    );
    assert!(
        fine && out.contains(&alpha),
        "beta cannot reach alpha: {out}"
    );

    // Removing the peer entry cuts exactly that peer: gamma, on the same host,
    // still answers by address and by name.
    set_peers(
        &a,
        "10.99.0.1",
        vec![peer("10.99.0.2", "10.200.0.21", "gamma")],
    );
    let (fine, out) = exec(&a, "alpha", "ping -c 1 -W 2 10.200.0.20");
    assert!(
        !fine,
        "beta is still reachable after its peer entry went: {out}"
    );
    let (fine, out) = exec(
        &a,
        "alpha",
        "ping -c 1 -W 2 10.200.0.21 && wget -qO- http://gamma/hostname",
    );
    assert!(
        fine && out.contains(&gamma),
        "gamma was cut with beta: {out}"
    );

    ok(&a.orch(&["container", "rm", "-f", "alpha"], None));
    ok(&b.orch(&["container", "rm", "-f", "beta", "gamma"], None));
    // Something still in the overlay's namespace (here a process) keeps it alive
    // after `network rm`: the network made again with the same VNI still gets its
    // vxlan.
    let overlay_ns = std::fs::read_dir(a.dir.join("data/netns"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("overlay-"))
        })
        .expect("the overlay's namespace");
    let mut holder = std::process::Command::new("nsenter")
        .arg(format!("--net={}", overlay_ns.display()))
        .args(["sleep", "30"])
        .spawn()
        .expect("nsenter");
    std::thread::sleep(std::time::Duration::from_millis(200));
    ok(&a.orch(&["network", "rm", "ov"], None));
    let again = a.orch(
        &[
            "network",
            "create",
            "--driver",
            "overlay",
            "--subnet",
            "10.200.0.0/24",
            "--vni",
            "4242",
            "ov",
        ],
        None,
    );
    let _ = holder.kill();
    let _ = holder.wait();
    ok(&again);
    for agent in [&a, &b] {
        ok(&agent.orch(&["network", "rm", "ov"], None));
    }
    a.stop();
    b.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
    assert_eq!(leftovers(&b), Vec::<String>::new());
    drop(lan);
}

#[test]
fn network_modes_share_or_skip_namespaces_and_bad_requests_are_named() {
    let mut a = Agent::start("net-modes");
    if !a.busybox() {
        return;
    }
    let web = http_server(&a, "web", &[]);
    let web_ip = address(&a, "web", "bridge");
    // none: loopback only.
    let (fine, out) = sh(&a, "none", "ip -o link | wc -l; ip route | wc -l");
    assert!(
        fine && out.split_whitespace().collect::<Vec<_>>() == ["1", "0"],
        "{out}"
    );
    // host: the engine's namespace, with its bridge.
    let (fine, out) = sh(&a, "host", "ip -o link");
    assert!(fine && out.contains("orch0"), "{out}");
    // container:web: web's namespace, so its address and its loopback.
    let (fine, out) = sh(
        &a,
        "container:web",
        "ip -o addr; wget -qO- http://127.0.0.1/hostname",
    );
    assert!(fine && out.contains(&web_ip) && out.contains(&web), "{out}");

    // A MAC address of one's own; a network's MTU.
    ok(&a.orch(&["network", "create", "--mtu", "1400", "small"], None));
    let args = [
        "container",
        "run",
        "--rm",
        "--network",
        "small",
        "--mac-address",
        "02:42:0a:0b:0c:0d",
        "busybox",
        "ip",
        "-o",
        "link",
        "show",
        "eth0",
    ];
    let (fine, out) = outcome(a.orch(&args, None));
    assert!(
        fine && out.contains("mtu 1400") && out.contains("02:42:0a:0b:0c:0d"),
        "{out}"
    );
    ok(&a.orch(&["network", "rm", "small"], None));

    let run = |args: &[&str]| {
        let mut all = vec!["container", "run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["busybox", "true"]);
        a.orch(&all, None)
    };
    fails(
        &run(&["--network", "host", "-p", "80:80"]),
        "need the container's own network",
    );
    fails(&run(&["--network", "nosuch"]), "no network nosuch");
    fails(
        &run(&["--network", "container:nosuch"]),
        "no container nosuch",
    );
    fails(&run(&["--ip", "10.9.9.9"]), "not in the network's subnet");
    fails(&run(&["--ip", &web_ip]), "is taken on this network");
    fails(
        &run(&["-p", "80/sctp"]),
        "protocol \"sctp\" is not tcp or udp",
    );
    fails(&run(&["--mac-address", "zz"]), "not a MAC address");

    // Peers: only for overlays, and every field is checked.
    let client =
        EngineClient::new(&format!("unix://{}", a.dir.join("engine.sock").display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bad = OverlayPeer {
        host: "10.0.0.2".into(),
        ipv4: "10.200.0.9".into(),
        mac: "nope".into(),
        names: Vec::new(),
    };
    let put = |net: &str, peer: OverlayPeer| {
        rt.block_on(client.set_network_peers(
            net,
            &OverlayPeers {
                local: None,
                peers: vec![peer],
            },
        ))
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    assert!(put("bridge", bad.clone()).contains("not an overlay network"));
    ok(&a.orch(&["network", "create", "--driver", "overlay", "ov"], None));
    let e = put("ov", bad.clone());
    assert!(e.contains("\"nope\" is not a MAC address"), "{e}");
    let e = put(
        "ov",
        OverlayPeer {
            mac: "02:42:0a:c8:00:09".into(),
            host: "somewhere".into(),
            ..bad
        },
    );
    assert!(e.contains("host address \"somewhere\""), "{e}");

    ok(&a.orch(&["container", "rm", "-f", "web"], None));
    ok(&a.orch(&["network", "rm", "ov"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}
