//! The routing mesh on two hosts: a port published in `ingress` mode answers on both
//! hosts whichever runs the task — from another machine (host 2's lan address asked
//! from host 1) and from the host itself (its loopback) — and spreads connections
//! over the tasks of every host; a `host` mode port answers only where its task runs;
//! an agent that restarts keeps answering; another stack cannot take the port; once
//! the stack is down, the port is refused and no rule of it is left. A udp port
//! answers datagrams the same way.

use super::engine::ok;
use super::stack::{LocalHost, TwoHosts, eventually, http_get, text};
use agent::engine::network::{link, netns};
use agent::testing::stats::chi_square_uniform;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

/// `GET http://ADDR:PORT/` from test host `h`: the body.
fn get(h: &LocalHost, addr: Ipv4Addr, port: u16) -> Result<String, String> {
    let to = std::net::SocketAddr::from((addr, port));
    let answer = netns::run_in(Some(&h.dir.join("host.netns")), move || http_get(to, "/"))
        .map_err(|e| e.to_string())??;
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok(body.trim().to_owned())
}

fn stack(web: &str) -> String {
    format!(
        r#"name: mesh
services:
  web:
    image: busybox
    command: ["sh", "-c", "hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
    ports: ["8080:80"]
    deploy:
{web}
  own:
    image: busybox
    command: ["sh", "-c", "echo own > /tmp/index.html && exec httpd -f -p 81 -h /tmp"]
    ports:
      - {{ target: 81, published: 8081, mode: host }}
    deploy:
      placement:
        constraints: ["node.role==manager"]
"#
    )
}

/// `orch up` of host `h`'s compose.yaml, which converges.
fn up(h: &LocalHost) {
    let out = h.orch(&["up", "--timeout", "90"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out),
        text(&h.orch(&["ps", "-a"]))
    );
}

/// The networks of host `h`'s engine (its agent's, on the engine socket).
fn engine_networks(h: &LocalHost) -> Result<Vec<api::network::Network>, String> {
    let socket = format!("unix://{}", h.dir.join("local/engine.sock").display());
    let client = api::client::EngineClient::new(&socket).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(client.networks()).map_err(|e| e.to_string())
}

/// The host's `table ip orch`.
fn rules(h: &LocalHost) -> String {
    let out = h
        .command("nft")
        .args(["list", "table", "ip", "orch"])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn an_ingress_port_answers_on_every_host_and_spreads_over_the_tasks_of_all() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/setup installs busybox-static)");
        return;
    }
    let mut hosts = TwoHosts::new("mesh");
    let (h1, h2) = (&hosts.h1, &hosts.h2);
    let (a1, a2) = (Ipv4Addr::new(10, 98, 0, 1), Ipv4Addr::new(10, 98, 0, 2));

    // One replica, on host 1 (the manager): host 2 has no task of it.
    let one = "      placement:\n        constraints: [\"node.role==manager\"]";
    std::fs::write(h1.dir.join("compose.yaml"), stack(one)).unwrap();
    up(h1);
    let mut first = String::new();
    eventually(
        30,
        "host 2's address answers from the task on host 1",
        || {
            first = get(h1, a2, 8080)?;
            (!first.is_empty())
                .then_some(())
                .ok_or("empty answer".into())
        },
    );
    eventually(10, "host 2's own loopback answers too", || {
        let body = get(h2, Ipv4Addr::LOCALHOST, 8080)?;
        (body == first).then_some(()).ok_or(body)
    });
    assert_eq!(
        get(h2, a1, 8080).as_deref(),
        Ok(first.as_str()),
        "and host 1"
    );
    // A host-mode port answers only where its task runs.
    eventually(30, "the host-mode port answers on host 1", || {
        let body = get(h2, a1, 8081)?;
        (body == "own").then_some(()).ok_or(body)
    });
    assert!(
        get(h1, a2, 8081).is_err(),
        "the host-mode port is not published on host 2"
    );

    // Host 2's agent restarts, its link into the mesh gone meanwhile (as after a
    // reboot): the engine makes it again and the port answers as before.
    let host2 = h2.dir.join("host.netns");
    let gone = link::netlink(Some(&host2), |nl| async move {
        for n in nl.names().await? {
            if n.starts_with("ig") {
                nl.delete(&n).await?;
            }
        }
        Ok(())
    });
    gone.expect("delete host 2's link into the mesh");
    assert!(get(h1, a2, 8080).is_err(), "no link, no mesh");
    hosts.restart_worker();
    let (h1, h2) = (&hosts.h1, &hosts.h2);
    eventually(60, "host 2 is ready again", || {
        let ls = ok(&h1.orch(&["node", "ls"]));
        (ls.matches(" ready ").count() == 2).then_some(()).ok_or(ls)
    });
    eventually(
        30,
        "host 2's engine answers again (its networks repaired)",
        || engine_networks(h2).map(|_| ()),
    );
    let links = link::netlink(Some(&h2.dir.join("host.netns")), |nl| async move {
        nl.names().await
    })
    .unwrap();
    let mesh_links: Vec<&String> = links.iter().filter(|n| n.starts_with("ig")).collect();
    assert_eq!(mesh_links.len(), 1, "one link into the mesh: {links:?}");
    assert_eq!(
        get(h1, a2, 8080).as_deref(),
        Ok(first.as_str()),
        "host 2 still answers"
    );

    // Two replicas, one per host: connections to either host reach both.
    let two = "      replicas: 2\n      placement:\n        max_replicas_per_node: 1";
    std::fs::write(h1.dir.join("compose.yaml"), stack(two)).unwrap();
    up(h1);
    for (from, to) in [(h1, a2), (h2, a1)] {
        eventually(60, &format!("{to}:8080 reaches both tasks"), || {
            let seen: BTreeSet<String> = (0..30).filter_map(|_| get(from, to, 8080).ok()).collect();
            (seen.len() == 2).then_some(()).ok_or(format!("{seen:?}"))
        });
    }
    // 200 connections to host 2, about evenly over the two tasks.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = 0;
    for _ in 0..200 {
        match get(h1, a2, 8080) {
            Ok(body) => *counts.entry(body).or_default() += 1,
            Err(_) => failed += 1,
        }
    }
    let counts: Vec<u64> = counts.into_values().collect();
    let test = chi_square_uniform(&counts);
    println!(
        "mesh spread over 2 tasks on 2 hosts: {counts:?} (failed {failed}); chi-square {:.2} (df {}), p = {:.4}",
        test.statistic, test.df, test.p_value
    );
    assert_eq!((failed, counts.len()), (0, 2), "{counts:?}");
    assert!(test.p_value > 0.001, "far from uniform: {test:?}");

    // Another stack asking for the port is refused, naming both services.
    let other = "name: other\nservices:\n  web:\n    image: busybox\n    ports: [\"8080:80\"]\n";
    std::fs::write(h1.dir.join("other.yaml"), other).unwrap();
    let out = h1.orch(&["up", "-f", "other.yaml", "--timeout", "30"]);
    assert!(
        !out.status.success()
            && text(&out).contains("port 8080/tcp is published by service mesh_web")
            && text(&out).contains("other_web"),
        "{}",
        text(&out)
    );

    // Down: refused everywhere, no rule left.
    ok(&h1.orch(&["down"]));
    for (h, to) in [(h1, a2), (h2, a1), (h2, Ipv4Addr::LOCALHOST)] {
        eventually(30, &format!("{to}:8080 is refused"), || {
            match get(h, to, 8080) {
                Err(_) => Ok(()),
                Ok(body) => Err(format!("still answers: {body}")),
            }
        });
    }
    for h in [h1, h2] {
        eventually(30, "no mesh rule is left", || {
            let r = rules(h);
            (!r.contains("dport 8080") && !r.contains("oifname \"ig"))
                .then_some(())
                .ok_or(r)
        });
    }
}

/// Sends `ping` to ADDR:PORT over udp from test host `h`: the answer.
fn udp_ask(h: &LocalHost, addr: Ipv4Addr, port: u16) -> Result<String, String> {
    let to = std::net::SocketAddr::from((addr, port));
    let answer = netns::run_in(Some(&h.dir.join("host.netns")), move || {
        let socket = std::net::UdpSocket::bind(("0.0.0.0", 0))?;
        socket.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        socket.connect(to)?;
        socket.send(b"ping")?;
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf)?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .map_err(|e| e.to_string())?;
    answer.map_err(|e| format!("udp {to}: {e}"))
}

/// The host's dynamic loader, which runs the host's perl in a task.
const LOADER: &str = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";

/// A udp echo for the busybox image, whose `nc` has no udp: the host's perl, its
/// `/usr` bound read-only into the task (both test hosts are this machine) and run
/// by the loader there (the image has no `/lib64`).
const UDP_STACK: &str = r#"name: udp
services:
  echo:
    image: busybox
    command:
      - /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
      - /usr/bin/perl
      - -MIO::Socket::INET
      - -e
      - |
        my $$s = IO::Socket::INET->new(LocalPort => 5300, Proto => "udp") or die "bind 5300/udp: $$!";
        chomp(my $$name = `hostname`);
        while (1) { my $$peer = $$s->recv(my $$m, 512); $$s->send("$$name:$$m", 0, $$peer) if $$peer }
    ports: ["5353:5300/udp"]
    volumes:
      - { type: bind, source: /usr, target: /usr, read_only: true }
    deploy:
      placement:
        constraints: ["node.role==manager"]
"#;

#[test]
fn a_udp_ingress_port_answers_a_datagram_on_the_other_host() {
    for needed in ["/bin/busybox", "/usr/bin/perl", LOADER] {
        if !Path::new(needed).exists() {
            eprintln!("SKIP: {needed} is missing (the udp echo runs the host's perl)");
            return;
        }
    }
    let hosts = TwoHosts::new("udp");
    let (h1, h2) = (&hosts.h1, &hosts.h2);
    let (a1, a2) = (Ipv4Addr::new(10, 98, 0, 1), Ipv4Addr::new(10, 98, 0, 2));
    std::fs::write(h1.dir.join("compose.yaml"), UDP_STACK).unwrap();
    up(h1);
    // The task runs on host 1; host 2 has none and answers through the mesh.
    let mut first = String::new();
    eventually(30, "host 2's address answers a datagram", || {
        first = udp_ask(h1, a2, 5353)?;
        first.ends_with(":ping").then_some(()).ok_or(first.clone())
    });
    eventually(10, "host 1's address answers host 2 too", || {
        let answer = udp_ask(h2, a1, 5353)?;
        (answer == first).then_some(()).ok_or(answer)
    });
    eventually(10, "and host 2's own loopback", || {
        let answer = udp_ask(h2, Ipv4Addr::LOCALHOST, 5353)?;
        (answer == first).then_some(()).ok_or(answer)
    });
    assert!(
        rules(h2).contains("udp dport 5353"),
        "a udp rule: {}",
        rules(h2)
    );

    ok(&h1.orch(&["down"]));
    for h in [h1, h2] {
        eventually(30, "no rule of the udp port is left", || {
            let r = rules(h);
            (!r.contains("dport 5353")).then_some(()).ok_or(r)
        });
    }
    assert!(udp_ask(h1, a2, 5353).is_err(), "nothing answers once down");
}
