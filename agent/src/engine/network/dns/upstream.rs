//! The host's resolvers, and forwarding a container's query to them.
//!
//! A forwarded query leaves from the agent's own network namespace (so a host resolver
//! on loopback, like systemd-resolved's 127.0.0.53, works, unlike with Docker) with a
//! fresh random id and, over UDP, a fresh socket on a random port; a reply counts only
//! if it has that id and the query's question. Upstreams are tried in order, each for
//! [`UPSTREAM_TIMEOUT`]; a SERVFAIL, REFUSED or NOTIMP from one sends the query on to
//! the next, and is passed back only if no other does better.

use super::DnsError;
use super::answer::header_and_question;
use hickory_proto::op::{MessageType, Query, ResponseCode};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream resolver gets to answer before the next is tried.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// At most this many `nameserver` lines count, as in glibc (MAXNS).
const MAX_NAMESERVERS: usize = 3;

/// The DNS port.
const DNS_PORT: u16 = 53;

/// The resolvers named by the `nameserver` lines of a resolv.conf, on port 53, at most
/// three, in order. Comments (`#`, `;`) and other lines are skipped, and so are
/// addresses that do not parse; a link-local IPv6 address may carry a numeric scope
/// (`fe80::1%2`). An empty result means the file names none: the caller chooses a
/// fallback.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => words.next().and_then(nameserver),
                _ => None,
            }
        })
        .take(MAX_NAMESERVERS)
        .collect()
}

/// The socket address of a `nameserver` value.
fn nameserver(value: &str) -> Option<SocketAddr> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DNS_PORT));
    }
    let (ip, scope) = value.split_once('%')?;
    let ip: Ipv6Addr = ip.parse().ok()?;
    let scope: u32 = scope.parse().ok()?;
    Some(SocketAddr::V6(SocketAddrV6::new(ip, DNS_PORT, 0, scope)))
}

/// How a query goes upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// The reply of the first upstream in `upstreams` that answers `query` (a client's
/// query, bytes as received), with the client's id; each upstream gets `timeout`.
pub(crate) async fn forward(
    query: &[u8],
    upstreams: &[SocketAddr],
    transport: Transport,
    timeout: Duration,
) -> Result<Vec<u8>, DnsError> {
    let pending = Pending::new(query)?;
    let mut best = Err(DnsError::NoUpstream);
    for &server in upstreams {
        let exchanged = match transport {
            Transport::Udp => tokio::time::timeout(timeout, pending.over_udp(server)).await,
            Transport::Tcp => tokio::time::timeout(timeout, pending.over_tcp(server)).await,
        }
        .unwrap_or(Err(DnsError::UpstreamTimeout { server, timeout }));
        match exchanged {
            Ok(reply) if !ask_elsewhere(&reply) => return Ok(reply),
            Ok(reply) => best = Ok(reply),
            Err(e) if best.is_err() => best = Err(e),
            Err(_) => {}
        }
    }
    best
}

/// Whether `reply` says "this server cannot help", so another may be asked.
fn ask_elsewhere(reply: &[u8]) -> bool {
    header_and_question(reply).is_some_and(|(header, _)| {
        matches!(
            header.metadata.response_code,
            ResponseCode::ServFail | ResponseCode::Refused | ResponseCode::NotImp
        )
    })
}

/// A query on its way upstream, under an id of ours.
struct Pending {
    /// The query as sent upstream.
    bytes: Vec<u8>,
    /// The client's id, put back into the reply.
    client_id: u16,
    /// Our id.
    id: u16,
    /// The question a reply must repeat.
    question: Query,
}

impl Pending {
    fn new(query: &[u8]) -> Result<Pending, DnsError> {
        let (header, question) = header_and_question(query).ok_or(DnsError::NotAQuery)?;
        let question = question
            .filter(|_| {
                header.counts.queries == 1 && header.metadata.message_type == MessageType::Query
            })
            .ok_or(DnsError::NotAQuery)?;
        let id: u16 = rand::random();
        let mut bytes = query.to_vec();
        bytes
            .get_mut(..2)
            .ok_or(DnsError::NotAQuery)?
            .copy_from_slice(&id.to_be_bytes());
        Ok(Pending {
            bytes,
            client_id: header.metadata.id,
            id,
            question,
        })
    }

    /// `reply` with the client's id, if it is the reply to this query.
    fn accept(&self, reply: &[u8]) -> Option<Vec<u8>> {
        let (header, question) = header_and_question(reply)?;
        let matches = header.metadata.id == self.id
            && header.metadata.message_type == MessageType::Response
            && question.as_ref() == Some(&self.question);
        if !matches {
            return None;
        }
        let mut reply = reply.to_vec();
        reply
            .get_mut(..2)?
            .copy_from_slice(&self.client_id.to_be_bytes());
        Some(reply)
    }

    /// Ask `server` over UDP from a fresh socket; replies that do not match are ignored
    /// (the caller's timeout ends the wait).
    async fn over_udp(&self, server: SocketAddr) -> Result<Vec<u8>, DnsError> {
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let err = |op| move |source| DnsError::Upstream { op, server, source };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(err("bind a socket for"))?;
        socket.connect(server).await.map_err(err("connect to"))?;
        socket.send(&self.bytes).await.map_err(err("send to"))?;
        let mut buf = vec![0u8; usize::from(u16::MAX)];
        loop {
            let n = socket.recv(&mut buf).await.map_err(err("receive from"))?;
            if let Some(reply) = buf.get(..n).and_then(|reply| self.accept(reply)) {
                return Ok(reply);
            }
        }
    }

    /// Ask `server` over TCP, one query on a fresh connection.
    async fn over_tcp(&self, server: SocketAddr) -> Result<Vec<u8>, DnsError> {
        let err = |op| move |source| DnsError::Upstream { op, server, source };
        let mut stream = TcpStream::connect(server)
            .await
            .map_err(err("connect to"))?;
        write_frame(&mut stream, &self.bytes)
            .await
            .map_err(err("send to"))?;
        let reply = read_frame(&mut stream).await.map_err(err("receive from"))?;
        self.accept(&reply)
            .ok_or(DnsError::UpstreamMismatch { server })
    }
}

/// Read one DNS message framed for TCP (two bytes of length, big-endian, then the
/// message).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let len = reader.read_u16().await?;
    let mut message = vec![0u8; usize::from(len)];
    reader.read_exact(&mut message).await?;
    Ok(message)
}

/// Write one DNS message framed for TCP, in one write.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &[u8],
) -> io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "DNS message over 64 KiB"))?;
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    writer.write_all(&frame).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_in_order_at_most_three() {
        let text = "\
# generated by NetworkManager
search example.com
nameserver 192.0.2.1
;nameserver 192.0.2.99
nameserver 2001:db8::1   # trailing comment
  nameserver   127.0.0.53
nameserver 192.0.2.4
";
        assert_eq!(
            upstreams_from_resolv_conf(text),
            [
                "192.0.2.1:53".parse::<SocketAddr>().unwrap(),
                "[2001:db8::1]:53".parse().unwrap(),
                "127.0.0.53:53".parse().unwrap(),
            ]
        );
    }

    #[test]
    fn bad_lines_are_skipped() {
        let text = "nameserver\nnameserver not-an-ip\nnameservers 192.0.2.1\n\
                    options ndots:0\nnameserver fe80::1%eth0\nnameserver fe80::1%2\n";
        assert_eq!(
            upstreams_from_resolv_conf(text),
            [SocketAddr::V6(SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                53,
                0,
                2
            ))]
        );
        assert!(upstreams_from_resolv_conf("").is_empty());
    }

    #[test]
    fn a_reply_counts_only_with_our_id_and_the_question() {
        use hickory_proto::op::Message;
        use hickory_proto::rr::{Name, RecordType};
        let name = Name::from_ascii("example.test.").unwrap();
        let mut query = Message::new(0x1234, MessageType::Query, hickory_proto::op::OpCode::Query);
        query.add_query(Query::query(name.clone(), RecordType::A));
        let pending = Pending::new(&query.to_vec().unwrap()).unwrap();
        assert_eq!(pending.client_id, 0x1234);
        assert_eq!(&pending.bytes[..2], pending.id.to_be_bytes());

        let mut reply = Message::response(pending.id, hickory_proto::op::OpCode::Query);
        reply.add_query(Query::query(
            Name::from_ascii("EXAMPLE.test.").unwrap(),
            RecordType::A,
        ));
        let accepted = pending.accept(&reply.to_vec().unwrap()).unwrap();
        assert_eq!(Message::from_vec(&accepted).unwrap().metadata.id, 0x1234);

        reply.metadata.id = pending.id.wrapping_add(1);
        assert_eq!(pending.accept(&reply.to_vec().unwrap()), None);
        reply.metadata.id = pending.id;
        reply.queries = vec![Query::query(name, RecordType::AAAA)];
        assert_eq!(pending.accept(&reply.to_vec().unwrap()), None);
        assert_eq!(pending.accept(b"\x00"), None);
    }

    #[test]
    fn only_queries_with_one_question_are_forwarded() {
        assert!(matches!(Pending::new(b""), Err(DnsError::NotAQuery)));
        assert!(matches!(Pending::new(&[0u8; 12]), Err(DnsError::NotAQuery)));
    }
}
