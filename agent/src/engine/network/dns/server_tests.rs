//! The server over real sockets on 127.0.0.1: a client asks over UDP and TCP, and a
//! small upstream responder (written here with hickory-proto) answers `example.test`.

use super::records::Records;
use super::server::{DnsServer, MAX_FORWARDS};
use super::upstream::{read_frame, write_frame};
use super::{DnsError, DnsHandle};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

const WEB_1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const WEB_2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const EXAMPLE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

/// A guard against a test hanging forever; no test asserts how long anything takes.
const PATIENCE: Duration = Duration::from_secs(30);

/// A UDP socket and a TCP listener on the same random port of 127.0.0.1.
fn bind_pair() -> (std::net::UdpSocket, std::net::TcpListener) {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = std::net::UdpSocket::bind(("127.0.0.1", port)) {
            return (udp, tcp);
        }
    }
    panic!("no free port pair on 127.0.0.1");
}

/// The test upstream's reply to `query`: `example.test` has one address, nothing else
/// exists.
fn upstream_reply(query: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let question = query.queries.first()?.clone();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_available = true;
    if question.name == Name::from_ascii("example.test.").ok()? {
        if question.query_type == RecordType::A {
            reply.add_answer(Record::from_rdata(
                question.name.clone(),
                60,
                RData::A(A(EXAMPLE)),
            ));
        }
    } else {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply.add_query(question);
    reply.to_vec().ok()
}

/// Start the test upstream on 127.0.0.1 (UDP and TCP, same port).
async fn upstream(tasks: &mut JoinSet<()>) -> SocketAddr {
    let (udp, tcp) = bind_pair();
    let addr = udp.local_addr().unwrap();
    udp.set_nonblocking(true).unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = UdpSocket::from_std(udp).unwrap();
    let tcp = TcpListener::from_std(tcp).unwrap();
    tasks.spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, from)) = udp.recv_from(&mut buf).await {
            if let Some(reply) = upstream_reply(&buf[..len]) {
                let _ = udp.send_to(&reply, from).await;
            }
        }
    });
    tasks.spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            while let Ok(query) = read_frame(&mut stream).await {
                let Some(reply) = upstream_reply(&query) else {
                    break;
                };
                if write_frame(&mut stream, &reply).await.is_err() {
                    break;
                }
            }
        }
    });
    addr
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
fn closed_port() -> SocketAddr {
    let (udp, tcp) = bind_pair();
    let addr = udp.local_addr().unwrap();
    drop((udp, tcp));
    addr
}

struct Served {
    addr: SocketAddr,
    handle: DnsHandle,
    records: watch::Sender<Records>,
}

fn serve(records: Records, upstreams: Vec<SocketAddr>, forward: bool) -> Served {
    let (udp, tcp) = bind_pair();
    let addr = udp.local_addr().unwrap();
    let (sender, receiver) = watch::channel(records);
    let handle = DnsServer::spawn(udp, tcp, receiver, upstreams, forward).unwrap();
    Served {
        addr,
        handle,
        records: sender,
    }
}

impl Served {
    /// Stop the server and check that both its sockets are closed (the port can be
    /// bound again).
    async fn stop(self) {
        self.handle.stop().await;
        std::net::UdpSocket::bind(self.addr).expect("UDP socket still open");
        std::net::TcpListener::bind(self.addr).expect("TCP listener still open");
    }
}

fn web_records() -> Records {
    [
        ("web", WEB_1),
        ("web", WEB_2),
        ("tasks.web", WEB_1),
        ("tasks.web", WEB_2),
    ]
    .into_iter()
    .collect()
}

fn query(id: u16, name: &str) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    message
}

async fn over_udp(server: SocketAddr, query: &Message) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&query.to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let (len, _) = tokio::time::timeout(PATIENCE, socket.recv_from(&mut buf))
        .await
        .expect("no UDP reply")
        .unwrap();
    let reply = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(reply.metadata.id, query.metadata.id);
    reply
}

async fn over_tcp(server: SocketAddr, query: &Message) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    write_frame(&mut stream, &query.to_vec().unwrap())
        .await
        .unwrap();
    let reply = tokio::time::timeout(PATIENCE, read_frame(&mut stream))
        .await
        .expect("no TCP reply")
        .unwrap();
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, query.metadata.id);
    reply
}

fn addresses(message: &Message) -> Vec<Ipv4Addr> {
    message
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn local_names_forwarded_names_and_updates_over_udp_and_tcp() {
    let mut upstreams = JoinSet::new();
    let upstream = upstream(&mut upstreams).await;
    let served = serve(web_records(), vec![upstream], true);

    // Local names, over both transports; successive answers rotate.
    let first = addresses(&over_udp(served.addr, &query(1, "web.")).await);
    // A lookup asks AAAA too (busybox, glibc): that does not turn the rotation, or a
    // two-task service would always lead with the same task.
    let mut aaaa = query(1, "web.");
    aaaa.queries[0].query_type = RecordType::AAAA;
    over_udp(served.addr, &aaaa).await;
    let second = addresses(&over_udp(served.addr, &query(2, "WEB")).await);
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 2);
    assert_ne!(first, second);
    let tasks = addresses(&over_tcp(served.addr, &query(3, "tasks.web.")).await);
    let mut sorted = tasks.clone();
    sorted.sort();
    assert_eq!(sorted, [WEB_1, WEB_2]);

    // Other names go upstream and come back with the client's id.
    for reply in [
        over_udp(served.addr, &query(4, "example.test.")).await,
        over_tcp(served.addr, &query(5, "example.test.")).await,
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&reply), [EXAMPLE]);
    }
    let missing = over_udp(served.addr, &query(6, "missing.test.")).await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);

    // A new table is seen by the next query.
    let moved: Records = [("web", Ipv4Addr::new(10, 0, 0, 9))].into_iter().collect();
    served.records.send(moved).unwrap();
    let after = over_udp(served.addr, &query(7, "web.")).await;
    assert_eq!(addresses(&after), [Ipv4Addr::new(10, 0, 0, 9)]);
    let gone = over_tcp(served.addr, &query(8, "tasks.web.")).await;
    assert_eq!(addresses(&gone), [EXAMPLE; 0]);

    served.stop().await;
    upstreams.shutdown().await;
}

#[tokio::test]
async fn no_upstream_answering_gets_servfail() {
    // One upstream that never answers (a bound socket nobody reads, a listener nobody
    // accepts on: the per-upstream timeout ends those), then one that refuses.
    let (silent_udp, silent_tcp) = bind_pair();
    let silent = silent_udp.local_addr().unwrap();
    let served = serve(web_records(), vec![silent, closed_port()], true);
    for reply in [
        over_udp(served.addr, &query(1, "example.test.")).await,
        over_tcp(served.addr, &query(2, "example.test.")).await,
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(reply.queries.len(), 1);
    }
    // Local names still answer.
    assert_eq!(
        addresses(&over_udp(served.addr, &query(3, "web.")).await).len(),
        2
    );
    served.stop().await;
    drop((silent_udp, silent_tcp));
}

#[tokio::test]
async fn a_flood_forwards_at_most_max_forwards_at_once() {
    // The upstream never answers, so every forward holds its permit until it times
    // out; the queries beyond the limit get SERVFAIL without going upstream.
    let (silent, _silent_tcp) = bind_pair();
    let served = serve(Records::new(), vec![silent.local_addr().unwrap()], true);
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let flood = MAX_FORWARDS + 8;
    for id in 0..flood {
        let q = query(id as u16, "example.test.").to_vec().unwrap();
        client.send_to(&q, served.addr).await.unwrap();
    }
    let mut buf = vec![0u8; 4096];
    for _ in 0..flood {
        let (len, _) = tokio::time::timeout(PATIENCE, client.recv_from(&mut buf))
            .await
            .expect("a query got no reply")
            .unwrap();
        let reply = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    }
    silent.set_nonblocking(true).unwrap();
    let mut reached = 0;
    while silent.recv_from(&mut buf).is_ok() {
        reached += 1;
    }
    assert_eq!(reached, MAX_FORWARDS);
    served.stop().await;
}

#[tokio::test]
async fn internal_networks_get_nxdomain_for_outside_names() {
    let mut upstreams = JoinSet::new();
    let upstream = upstream(&mut upstreams).await;
    let served = serve(web_records(), vec![upstream], false);
    let reply = over_udp(served.addr, &query(1, "example.test.")).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(reply.answers.is_empty());
    served.stop().await;
    upstreams.shutdown().await;
}

#[tokio::test]
async fn big_answers_are_truncated_over_udp_and_whole_over_tcp() {
    let many: Records = (1..=60u8)
        .map(|i| ("many", Ipv4Addr::new(10, 0, 1, i)))
        .collect();
    let served = serve(many, Vec::new(), true);
    let cut = over_udp(served.addr, &query(1, "many.")).await;
    assert!(cut.metadata.truncation);
    assert!(cut.answers.is_empty());
    let mut edns = query(2, "many.");
    let mut opt = Edns::new();
    opt.set_max_payload(4096);
    edns.set_edns(opt);
    assert_eq!(addresses(&over_udp(served.addr, &edns).await).len(), 60);
    let whole = over_tcp(served.addr, &query(3, "many.")).await;
    assert!(!whole.metadata.truncation);
    assert_eq!(addresses(&whole).len(), 60);
    // No upstream at all: outside names get SERVFAIL.
    let reply = over_udp(served.addr, &query(4, "example.test.")).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    served.stop().await;
}

#[tokio::test]
async fn dropping_the_handle_closes_the_sockets() {
    let served = serve(web_records(), Vec::new(), true);
    let Served { addr, handle, .. } = served;
    drop(handle);
    // The aborted tasks are dropped when the runtime next runs them.
    let rebound = tokio::time::timeout(PATIENCE, async {
        loop {
            if std::net::UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok()
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        rebound.is_ok(),
        "sockets still open after the handle was dropped"
    );
}

#[test]
fn spawning_outside_a_runtime_is_an_error() {
    let (udp, tcp) = bind_pair();
    let (_sender, receiver) = watch::channel(Records::new());
    let spawned = DnsServer::spawn(udp, tcp, receiver, Vec::new(), true);
    assert!(matches!(spawned, Err(DnsError::NoRuntime)));
}
