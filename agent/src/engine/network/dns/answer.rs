//! The pure core of the DNS server: one query (bytes off the wire) in, what to do out.
//!
//! - A name in the container's [`Records`]: its A records, rotated by `turn` so that
//!   successive queries spread over a service's tasks (round-robin). Other types of a
//!   known name (AAAA, MX, ...) get NOERROR with no answers: the name exists, it just
//!   has no such data, and the client must not go on to look it up elsewhere.
//! - A PTR query for `d.c.b.a.in-addr.arpa` of an address in the table: its name.
//! - Any other name: [`Outcome::Forward`] when the container may resolve outside
//!   names; otherwise NXDOMAIN. NXDOMAIN rather than REFUSED because on an internal
//!   network the name really does not exist for this container: NXDOMAIN ends the
//!   lookup at once with "unknown host" (after the search list), where REFUSED makes
//!   stub resolvers try other servers and report a temporary failure that programs
//!   retry. No SOA goes with it, so resolvers do not cache the negative answer and a
//!   name that appears later resolves at once.
//! - A message that is not a query: dropped, so two servers can never loop replies.
//!   A query whose header parses but whose body does not: FORMERR. Opcodes other than
//!   QUERY: NOTIMP. EDNS versions above 0: BADVERS. Anything shorter than a header:
//!   dropped (nothing to reply to).
//!
//! Answers carry a [`TTL`] of 5 seconds, not Docker's 600: names change as tasks come
//! and go, and a client that caches (nginx, Java, nscd) should notice within a few
//! seconds, well inside a task's stop grace period (10 s by default), while a client
//! that resolves before every request still gets to cache for a moment.

use super::records::{Records, normalize};
use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::Ipv4Addr;

/// Time to live, in seconds, of every record the server answers itself.
pub const TTL: u32 = 5;

/// The UDP payload size the server advertises in its EDNS replies (the DNS flag day
/// 2020 value, which avoids IP fragmentation on common paths).
const EDNS_PAYLOAD: u16 = 1232;

/// The largest UDP reply a client without EDNS accepts (RFC 1035).
const UDP_CLASSIC: usize = 512;

/// Length of a DNS header.
const HEADER_LEN: usize = 12;

/// What to do with one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send these bytes back (the reply, with the query's id).
    Reply(Vec<u8>),
    /// The name is not ours: forward the query to the upstream resolvers.
    Forward,
    /// Send nothing: not a query, or too short to reply to.
    Drop,
}

/// What to do with `query`, given the names the container may resolve.
///
/// `turn` rotates the addresses of a name (pass a counter that grows with each query);
/// `forward` says whether names outside `records` may be forwarded upstream (false on
/// internal networks). Never panics, whatever the bytes.
pub fn answer(records: &Records, query: &[u8], turn: usize, forward: bool) -> Outcome {
    let Some((header, _)) = header_and_question(query) else {
        return read_header(query)
            .filter(|header| header.metadata.message_type == MessageType::Query)
            .map_or(Outcome::Drop, |header| {
                encode(&response(&header.metadata, ResponseCode::FormErr, forward))
            });
    };
    if header.metadata.message_type != MessageType::Query {
        return Outcome::Drop;
    }
    let Ok(request) = Message::from_vec(query) else {
        return encode(&response(&header.metadata, ResponseCode::FormErr, forward));
    };
    if request.metadata.op_code != OpCode::Query {
        return encode(&reply_to(&request, ResponseCode::NotImp, forward));
    }
    if request.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
        return encode(&reply_to(&request, ResponseCode::BADVERS, forward));
    }
    let [question] = request.queries.as_slice() else {
        return encode(&response(&header.metadata, ResponseCode::FormErr, forward));
    };
    if question.query_class == DNSClass::IN
        && let Some(mut reply) = local(records, question, turn)
    {
        let mut message = reply_to(&request, ResponseCode::NoError, forward);
        message.metadata.authoritative = true;
        message.answers.append(&mut reply);
        return encode(&message);
    }
    if forward {
        Outcome::Forward
    } else {
        let mut message = reply_to(&request, ResponseCode::NXDomain, forward);
        message.metadata.authoritative = true;
        encode(&message)
    }
}

/// The answers to `question` from `records`, or `None` if the name is not there.
fn local(records: &Records, question: &Query, turn: usize) -> Option<Vec<Record>> {
    let name = normalize(&question.name.to_ascii());
    let addrs = records.lookup(&name);
    if !addrs.is_empty() {
        return Some(match question.query_type {
            RecordType::A | RecordType::ANY => {
                let mut rotated = addrs.to_vec();
                rotated.rotate_left(turn % addrs.len());
                rotated
                    .into_iter()
                    .map(|ip| Record::from_rdata(question.name.clone(), TTL, RData::A(A(ip))))
                    .collect()
            }
            _ => Vec::new(),
        });
    }
    let host = records.name_of(reverse_v4(&name)?)?;
    let target = Name::from_ascii(host)
        .ok()?
        .append_domain(&Name::root())
        .ok()?;
    Some(match question.query_type {
        RecordType::PTR | RecordType::ANY => vec![Record::from_rdata(
            question.name.clone(),
            TTL,
            RData::PTR(PTR(target)),
        )],
        _ => Vec::new(),
    })
}

/// The address `d.c.b.a.in-addr.arpa` stands for.
fn reverse_v4(name: &str) -> Option<Ipv4Addr> {
    let mut labels = name.strip_suffix(".in-addr.arpa")?.split('.');
    let mut octets = [0u8; 4];
    for octet in octets.iter_mut().rev() {
        let label = labels.next()?;
        if label.is_empty() || label.len() > 3 || !label.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = label.parse().ok()?;
    }
    labels.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// A reply to `query` with `code` and the query's question, as the server sends it when
/// it cannot do better (SERVFAIL when no upstream answered); `None` if `query` is not a
/// query with a readable header.
pub(crate) fn error_reply(query: &[u8], code: ResponseCode, forward: bool) -> Option<Vec<u8>> {
    let (header, question) = header_and_question(query)?;
    if header.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut message = response(&header.metadata, code, forward);
    message.queries.extend(question);
    match encode(&message) {
        Outcome::Reply(bytes) => Some(bytes),
        Outcome::Forward | Outcome::Drop => None,
    }
}

/// `reply` as it may be sent over UDP to the client of `query`: unchanged if it fits
/// the client's payload size (512 bytes, or what its EDNS record says), otherwise
/// without its records and with TC set, so that the client asks again over TCP.
pub fn fit_udp(query: &[u8], reply: Vec<u8>) -> Vec<u8> {
    if reply.len() <= UDP_CLASSIC {
        return reply;
    }
    let limit = Message::from_vec(query).map_or(UDP_CLASSIC, |q| usize::from(q.max_payload()));
    if reply.len() <= limit {
        return reply;
    }
    if let Ok(message) = Message::from_vec(&reply)
        && let Ok(bytes) = message.truncate().to_vec()
        && bytes.len() <= limit
    {
        return bytes;
    }
    // Not readable (a forwarded reply): the header alone, TC set, no sections.
    let mut bytes = reply;
    bytes.truncate(HEADER_LEN);
    if let Some(flags) = bytes.get_mut(2) {
        *flags |= 0b0000_0010;
    }
    if let Some(counts) = bytes.get_mut(4..HEADER_LEN) {
        counts.fill(0);
    }
    bytes
}

/// The header of `message`, if it has one.
fn read_header(message: &[u8]) -> Option<Header> {
    Header::read(&mut BinDecoder::new(message)).ok()
}

/// The header and first question of `message`, read without the rest (so an upstream
/// reply with records we cannot decode can still be matched to its query).
pub(crate) fn header_and_question(message: &[u8]) -> Option<(Header, Option<Query>)> {
    let mut decoder = BinDecoder::new(message);
    let header = Header::read(&mut decoder).ok()?;
    let question = match header.counts.queries {
        0 => None,
        _ => Some(Query::read(&mut decoder).ok()?),
    };
    Some((header, question))
}

/// An empty response to a query with header `request`.
fn response(request: &Metadata, code: ResponseCode, forward: bool) -> Message {
    let mut message = Message::new(request.id, MessageType::Response, request.op_code);
    message.metadata = Metadata::response_from_request(request);
    message.metadata.response_code = code;
    message.metadata.recursion_available = forward;
    message
}

/// A response to `request` with its questions, and an EDNS record if it had one.
fn reply_to(request: &Message, code: ResponseCode, forward: bool) -> Message {
    let mut message = response(&request.metadata, code, forward);
    message.queries = request.queries.clone();
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        message.edns = Some(edns);
    }
    message
}

/// `message` on the wire; if it is too big even for TCP, without its records and with
/// TC set.
fn encode(message: &Message) -> Outcome {
    match message.to_vec().or_else(|_| message.truncate().to_vec()) {
        Ok(bytes) => Outcome::Reply(bytes),
        Err(_) => Outcome::Drop,
    }
}
