//! Tests of the pure core, with queries built by hickory-proto.

use super::answer::{Outcome, TTL, answer, error_reply, fit_udp};
use super::records::Records;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use proptest::prelude::*;
use std::net::Ipv4Addr;

const WEB_1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const WEB_2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

fn records() -> Records {
    [
        ("web.1.abc", WEB_1),
        ("web.2.def", WEB_2),
        ("web", WEB_1),
        ("web", WEB_2),
        ("web.stack", WEB_1),
        ("web.stack", WEB_2),
        ("tasks.web", WEB_1),
        ("tasks.web", WEB_2),
    ]
    .into_iter()
    .collect()
}

fn query(name: &str, kind: RecordType) -> Message {
    let mut message = Message::new(0xbeef, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    message
}

fn ask(records: &Records, query: &Message, turn: usize, forward: bool) -> Outcome {
    answer(records, &query.to_vec().unwrap(), turn, forward)
}

fn reply(outcome: Outcome) -> Message {
    match outcome {
        Outcome::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
        other => panic!("expected a reply, got {other:?}"),
    }
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

#[test]
fn a_for_a_known_name_rotates_with_the_turn() {
    let records = records();
    let q = query("web.", RecordType::A);
    let first = reply(ask(&records, &q, 0, true));
    assert_eq!(first.metadata.id, 0xbeef);
    assert_eq!(first.metadata.message_type, MessageType::Response);
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert!(first.metadata.authoritative);
    assert!(first.metadata.recursion_desired);
    assert!(first.metadata.recursion_available);
    assert_eq!(first.queries, q.queries);
    assert!(first.answers.iter().all(|record| record.ttl == TTL));
    assert_eq!(addresses(&first), [WEB_1, WEB_2]);
    assert_eq!(
        addresses(&reply(ask(&records, &q, 1, true))),
        [WEB_2, WEB_1]
    );
    assert_eq!(
        addresses(&reply(ask(&records, &q, 2, true))),
        [WEB_1, WEB_2]
    );
    assert_eq!(
        addresses(&reply(ask(&records, &q, usize::MAX, true))),
        [WEB_2, WEB_1]
    );
}

#[test]
fn names_match_in_any_case_with_or_without_a_trailing_dot() {
    let records = records();
    for name in ["WEB.Stack.", "web.STACK", "Tasks.Web", "web.1.ABC."] {
        let answered = reply(ask(&records, &query(name, RecordType::A), 0, false));
        assert!(!addresses(&answered).is_empty(), "{name}");
        // The answer repeats the name as asked.
        let asked = answered.answers[0].name.to_ascii();
        assert_eq!(asked.trim_end_matches('.'), name.trim_end_matches('.'));
    }
}

#[test]
fn other_types_of_a_known_name_are_empty_noerror() {
    let records = records();
    for kind in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
        let answered = reply(ask(&records, &query("web", kind), 0, true));
        assert_eq!(answered.metadata.response_code, ResponseCode::NoError);
        assert!(answered.answers.is_empty(), "{kind}");
    }
}

#[test]
fn ptr_of_a_known_address_is_its_first_name() {
    let records = records();
    let answered = reply(ask(
        &records,
        &query("3.0.0.10.in-addr.arpa.", RecordType::PTR),
        0,
        true,
    ));
    let names: Vec<String> = answered
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::PTR(ptr) => Some(ptr.0.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["web.2.def."]);

    let unknown = query("9.0.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(ask(&records, &unknown, 0, true), Outcome::Forward);
    let odd = query("3.0.0.10.0.in-addr.arpa.", RecordType::PTR);
    assert_eq!(ask(&records, &odd, 0, true), Outcome::Forward);
}

#[test]
fn unknown_names_are_forwarded_or_nxdomain() {
    let records = records();
    let q = query("example.test.", RecordType::A);
    assert_eq!(ask(&records, &q, 0, true), Outcome::Forward);
    let refused = reply(ask(&records, &q, 0, false));
    assert_eq!(refused.metadata.response_code, ResponseCode::NXDomain);
    assert!(!refused.metadata.recursion_available);
    assert_eq!(refused.queries, q.queries);
    assert!(refused.answers.is_empty());
    // A name under a known name is not known.
    let below = query("x.web.", RecordType::A);
    assert_eq!(ask(&records, &below, 0, true), Outcome::Forward);
}

#[test]
fn garbage_and_short_headers_are_dropped() {
    let records = records();
    for bytes in [
        &b""[..],
        b"\x01",
        b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00",
    ] {
        assert_eq!(answer(&records, bytes, 0, true), Outcome::Drop, "{bytes:?}");
    }
    // A response is never answered.
    let mut response = query("web.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    assert_eq!(ask(&records, &response, 0, true), Outcome::Drop);
}

#[test]
fn a_readable_header_with_a_broken_body_gets_formerr() {
    let records = records();
    let mut bytes = query("web.", RecordType::A).to_vec().unwrap();
    bytes.truncate(15);
    let answered = reply(answer(&records, &bytes, 0, true));
    assert_eq!(answered.metadata.id, 0xbeef);
    assert_eq!(answered.metadata.response_code, ResponseCode::FormErr);
    assert!(answered.queries.is_empty());

    let mut two = query("web.", RecordType::A);
    two.add_query(Query::query(
        Name::from_ascii("db.").unwrap(),
        RecordType::A,
    ));
    let answered = reply(ask(&records, &two, 0, true));
    assert_eq!(answered.metadata.response_code, ResponseCode::FormErr);

    let none = Message::new(7, MessageType::Query, OpCode::Query);
    let answered = reply(ask(&records, &none, 0, true));
    assert_eq!(answered.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn other_opcodes_are_not_implemented() {
    let mut status = query("web.", RecordType::A);
    status.metadata.op_code = OpCode::Status;
    let answered = reply(ask(&records(), &status, 0, true));
    assert_eq!(answered.metadata.response_code, ResponseCode::NotImp);
}

#[test]
fn edns_queries_get_edns_replies() {
    let mut q = query("web.", RecordType::A);
    q.set_edns(Edns::new());
    let answered = reply(ask(&records(), &q, 0, true));
    assert!(answered.edns.is_some());
    assert!(
        reply(ask(&records(), &query("web.", RecordType::A), 0, true))
            .edns
            .is_none()
    );
}

#[test]
fn edns_versions_above_zero_get_badvers() {
    let mut q = query("web.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_version(1);
    q.set_edns(edns);
    let answered = reply(ask(&records(), &q, 0, true));
    // 16 on the wire, which hickory-proto reads back as BADSIG (same number).
    assert_eq!(
        u16::from(answered.metadata.response_code),
        u16::from(ResponseCode::BADVERS)
    );
    assert!(answered.answers.is_empty());
    assert_eq!(answered.edns.map(|edns| edns.version()), Some(0));
}

#[test]
fn big_udp_replies_are_truncated_unless_edns_allows_them() {
    let many: Records = (1..=60u8)
        .map(|i| ("many", Ipv4Addr::new(10, 0, 1, i)))
        .collect();
    let plain = query("many.", RecordType::A).to_vec().unwrap();
    let Outcome::Reply(full) = answer(&many, &plain, 0, true) else {
        panic!("no reply")
    };
    assert!(full.len() > 512);
    let cut = fit_udp(&plain, full.clone());
    assert!(cut.len() <= 512);
    let cut = Message::from_vec(&cut).unwrap();
    assert!(cut.metadata.truncation);
    assert_eq!(cut.metadata.id, 0xbeef);
    assert!(cut.answers.is_empty());
    assert_eq!(cut.queries.len(), 1);

    let mut big = query("many.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    big.set_edns(edns);
    let big = big.to_vec().unwrap();
    let Outcome::Reply(full) = answer(&many, &big, 0, true) else {
        panic!("no reply")
    };
    assert_eq!(fit_udp(&big, full.clone()), full);

    // An unreadable reply keeps its header only, with TC.
    let mut junk = full.clone();
    junk.truncate(600);
    junk[12] = 0xff;
    let cut = fit_udp(&plain, junk);
    assert_eq!(cut.len(), 12);
    assert_eq!(cut[2] & 0b10, 0b10);
}

#[test]
fn servfail_repeats_the_question() {
    let q = query("example.test.", RecordType::A);
    let bytes = error_reply(&q.to_vec().unwrap(), ResponseCode::ServFail, true).unwrap();
    let answered = Message::from_vec(&bytes).unwrap();
    assert_eq!(answered.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(answered.metadata.id, 0xbeef);
    assert_eq!(answered.queries, q.queries);
    assert_eq!(error_reply(b"\x00", ResponseCode::ServFail, true), None);
}

proptest! {
    #[test]
    fn answer_never_panics_on_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        turn in any::<usize>(),
        forward in any::<bool>(),
    ) {
        let outcome = answer(&records(), &bytes, turn, forward);
        if let Outcome::Reply(reply) = outcome {
            let _ = fit_udp(&bytes, reply);
        }
        let _ = error_reply(&bytes, ResponseCode::ServFail, forward);
    }

    #[test]
    fn answer_never_panics_on_damaged_queries(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut q = query("web.stack.", RecordType::A);
        q.set_edns(Edns::new());
        let mut bytes = q.to_vec().unwrap();
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let outcome = answer(&records(), &bytes, 0, true);
        if let Outcome::Reply(reply) = outcome {
            prop_assert!(reply.len() >= 12);
            let _ = fit_udp(&bytes, reply);
        }
    }
}
