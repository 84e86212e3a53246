//! Published ports end to end: a UDP service answered through `-p H:C/udp`, and a
//! TCP port reached from another test host's address with the client's own
//! address arriving at the container (DNAT, no proxy); the way out (NAT).

use super::{leftovers, perl_ready, perl_task};
use crate::engine::{Agent, ok};
use agent::testing::lan::Lan;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::time::Duration;

/// A UDP echo server on port 5000 of the container, in the host's perl
/// ([`perl_task`]).
const UDP_ECHO: &str = "use IO::Socket::INET; \
    my $s = IO::Socket::INET->new(LocalPort => 5000, Proto => 'udp') or die \"bind: $!\"; \
    while ($s->recv(my $m, 512)) { $s->send(\"echo:$m\") }";

/// Ask `addr` over UDP from the agent's host until it answers (the server may
/// still be starting): the reply.
fn udp_ask(a: &Agent, addr: &str) -> String {
    let addr = addr.to_owned();
    a.on_host(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 512];
        for _ in 0..20 {
            s.send_to(b"ping", &addr).unwrap();
            if let Ok((n, _)) = s.recv_from(&mut buf) {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
        String::new()
    })
}

#[test]
fn a_published_udp_port_answers_from_this_host_and_another() {
    let mut a = Agent::start("net-udp");
    let mut b = Agent::start("net-udp-b");
    if !perl_ready(&a) {
        return;
    }
    let lan = Lan::new(&a.dir.join("lan.netns")).unwrap();
    lan.plug(&a.host(), "la", [10, 98, 0, 1].into()).unwrap();
    lan.plug(&b.host(), "lb", [10, 98, 0, 2].into()).unwrap();
    perl_task(&a, "echo", &["-p", "15353:5000/udp"], UDP_ECHO);
    let here = udp_ask(&a, "127.0.0.1:15353");
    let logs = ok(&a.orch(&["container", "logs", "echo"], None));
    assert_eq!(here, "echo:ping", "no answer over 127.0.0.1; logs: {logs}");
    assert_eq!(udp_ask(&b, "10.98.0.1:15353"), "echo:ping");

    ok(&a.orch(&["container", "rm", "-f", "echo"], None));
    a.stop();
    b.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
    drop(lan);
}

#[test]
fn a_published_tcp_port_keeps_the_client_address_and_the_way_out_is_nat() {
    let mut a = Agent::start("net-remote");
    let mut b = Agent::start("net-remote-b");
    if !a.busybox() {
        return;
    }
    let lan = Lan::new(&a.dir.join("lan.netns")).unwrap();
    lan.plug(&a.host(), "la", [10, 97, 0, 1].into()).unwrap();
    lan.plug(&b.host(), "lb", [10, 97, 0, 2].into()).unwrap();
    let mut args = vec!["container", "run", "-d", "--name", "web", "-p", "18080:80"];
    args.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    let web = ok(&a.orch(&args, None)).trim()[..12].to_owned();
    let conn = b.on_host(|| {
        std::net::TcpStream::connect("10.97.0.1:18080")
            .expect("connect to the published port from the other host")
    });
    // While the connection is open, the container sees b's own address (DNAT).
    let netstat = ok(&a.orch(&["container", "exec", "web", "netstat", "-tn"], None));
    assert!(
        netstat.contains("10.97.0.2:"),
        "the container did not see the client's address: {netstat}"
    );
    let mut conn = conn;
    conn.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = conn.read_to_string(&mut body);
    assert!(body.contains(&web), "{body}");

    // Outbound: the container reaches the other host, which sees this host's
    // address (NAT), not the container's.
    let listener = b.on_host(|| {
        std::net::TcpListener::bind("10.97.0.2:18099").expect("listen on the other host")
    });
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().expect("accept the container");
        let mut line = String::new();
        let _ = conn.read_to_string(&mut line);
        (peer, line)
    });
    let out = ok(&a.orch(
        &[
            "container",
            "exec",
            "web",
            "sh",
            "-c",
            "echo out | nc 10.97.0.2 18099",
        ],
        None,
    ));
    let (peer, line) = server.join().unwrap();
    assert_eq!(line.trim(), "out", "{out}");
    assert_eq!(peer.ip().to_string(), "10.97.0.1", "not masqueraded");

    ok(&a.orch(&["container", "rm", "-f", "web"], None));
    a.stop();
    b.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
    drop(lan);
}
