use super::*;
use crate::ca::error::rfc3339;
use crate::ca::identity::NodeKey;
use crate::ca::state::{CaConfig, init};
use crate::ca::token::TokenSecret;
use crate::ca::{CaError, NodeIdentity, Usage, verify_peer};
use proptest::prelude::*;
use rustls::pki_types::pem::PemObject;
use std::collections::BTreeSet;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn now() -> SystemTime {
    // A fixed instant: the pure core never reads the clock.
    std::time::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

fn ca() -> CaState {
    init("c1", &CaConfig::default(), now()).unwrap()
}

fn join(ca: &mut CaState, role: NodeRole, id: &str, at: SystemTime) -> (NodeKey, IssuedCert) {
    let key = NodeKey::generate().unwrap();
    let token = ca.token(role).unwrap();
    let issued = ca.issue(&token, &key.csr().unwrap(), id, at).unwrap();
    (key, issued)
}

fn der(issued: &IssuedCert) -> CertificateDer<'static> {
    crate::ca::identity::cert_from_pem(&issued.cert_pem, "test").unwrap()
}

fn verify(ca: &CaState, issued: &IssuedCert, at: SystemTime) -> Result<PeerIdentity, CaError> {
    verify_peer(
        &ca.ca_cert().unwrap(),
        &der(issued),
        &[],
        Usage::Client,
        at,
        ca.removed_nodes(),
    )
}

#[test]
fn a_joined_node_has_a_certificate_the_ca_verifies() {
    let mut ca = ca();
    let (key, issued) = join(&mut ca, NodeRole::Worker, "n1", now());
    assert_eq!(
        (issued.node_id.as_str(), issued.role),
        ("n1", NodeRole::Worker)
    );
    assert_eq!(issued.not_after, now() + 90 * DAY);
    assert_eq!(issued.ca_cert_pem, ca.ca_cert_pem());

    let peer = verify(&ca, &issued, now()).unwrap();
    assert_eq!((peer.node_id.as_str(), peer.role), ("n1", NodeRole::Worker));
    assert_eq!(peer.not_after, issued.not_after);
    let as_server = verify_peer(
        &ca.ca_cert().unwrap(),
        &der(&issued),
        &[],
        Usage::Server,
        now(),
        &BTreeSet::new(),
    );
    assert!(as_server.is_ok(), "{as_server:?}");

    let identity = NodeIdentity::new(key, &issued).unwrap();
    assert_eq!(
        (identity.node_id(), identity.role()),
        ("n1", NodeRole::Worker)
    );
    assert!(identity.check(now()).is_ok());
    assert_eq!(identity.renew_after(), identity.peer().not_after - 30 * DAY);

    let cert_der = der(&issued);
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    let subject = cert.subject().to_string();
    assert!(
        subject.contains("CN=n1") && subject.contains("OU=worker"),
        "{subject}"
    );
    let ca_der = ca.ca_cert().unwrap();
    let (_, ca_cert) = x509_parser::parse_x509_certificate(ca_der.der()).unwrap();
    assert_eq!(
        ca_cert.subject().to_string(),
        "CN=orch cluster CA c1, O=orch"
    );
    assert!(ca_cert.is_ca());
}

#[test]
fn the_manager_token_gives_the_manager_role_and_serials_differ() {
    let mut ca = ca();
    let (_, worker) = join(&mut ca, NodeRole::Worker, "w1", now());
    let (_, manager) = join(&mut ca, NodeRole::Manager, "m1", now());
    assert_eq!(
        verify(&ca, &manager, now()).unwrap().role,
        NodeRole::Manager
    );
    let serial = |issued: &IssuedCert| {
        let der = der(issued);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.raw_serial().to_vec()
    };
    assert_eq!(serial(&worker), vec![1]);
    assert_eq!(serial(&manager), vec![2]);
}

#[test]
fn a_wrong_secret_is_refused_and_says_so() {
    let mut ca = ca();
    let mut token = ca.token(NodeRole::Worker).unwrap();
    token.secret = TokenSecret::from_bytes([0; 32]);
    let csr = NodeKey::generate().unwrap().csr().unwrap();
    let err = ca.issue(&token, &csr, "n1", now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "join token refused: the secret does not match the current worker token (was it \
         rotated? ask for a new one with `orch token worker`)"
    );
    // A manager secret in a worker token is wrong too.
    token.secret = ca.token(NodeRole::Manager).unwrap().secret;
    assert!(matches!(
        ca.issue(&token, &csr, "n1", now()),
        Err(CaError::WrongSecret {
            role: NodeRole::Worker
        })
    ));
}

#[test]
fn rotation_refuses_the_old_token_and_accepts_the_new_one() {
    let mut ca = ca();
    let old = ca.token(NodeRole::Manager).unwrap();
    let worker = ca.token(NodeRole::Worker).unwrap();
    let new = ca
        .rotate(NodeRole::Manager, TokenSecret::from_bytes([5; 32]))
        .unwrap();
    assert_ne!(old, new);
    let csr = NodeKey::generate().unwrap().csr().unwrap();
    assert!(matches!(
        ca.issue(&old, &csr, "m2", now()),
        Err(CaError::WrongSecret {
            role: NodeRole::Manager
        })
    ));
    assert!(ca.issue(&new, &csr, "m2", now()).is_ok());
    // The other role's token is untouched.
    assert!(ca.issue(&worker, &csr, "w2", now()).is_ok());
}

#[test]
fn a_token_of_another_ca_is_refused_naming_both() {
    let mut ca = ca();
    let other = init("c2", &CaConfig::default(), now()).unwrap();
    let token = other.token(NodeRole::Worker).unwrap();
    let csr = NodeKey::generate().unwrap().csr().unwrap();
    let err = ca.issue(&token, &csr, "n1", now()).unwrap_err();
    let message = err.to_string();
    let ours = ca.ca_cert().unwrap().digest().to_string();
    let theirs = other.ca_cert().unwrap().digest().to_string();
    assert!(
        message.contains(&ours) && message.contains(&theirs),
        "{message}"
    );
    assert!(matches!(err, CaError::TokenForOtherCa { .. }));
}

#[test]
fn a_certificate_of_another_ca_is_untrusted() {
    let mut ours = ca();
    let mut other = init("c2", &CaConfig::default(), now()).unwrap();
    let (_, issued) = join(&mut other, NodeRole::Manager, "m1", now());
    let err = verify(&ours, &issued, now()).unwrap_err();
    assert!(
        matches!(err, CaError::Untrusted { ref node, .. } if node == "m1"),
        "{err}"
    );
    let (_, mine) = join(&mut ours, NodeRole::Worker, "n1", now());
    assert!(verify(&ours, &mine, now()).is_ok());
}

#[test]
fn a_removed_node_gets_nothing_and_is_refused() {
    let mut ca = ca();
    let (_, issued) = join(&mut ca, NodeRole::Worker, "n1", now());
    assert!(ca.remove_node("n1"));
    assert!(!ca.remove_node("n1"));
    let err = verify(&ca, &issued, now()).unwrap_err();
    assert_eq!(err.to_string(), "node n1 was removed from the cluster");

    let token = ca.token(NodeRole::Worker).unwrap();
    let csr = NodeKey::generate().unwrap().csr().unwrap();
    assert!(matches!(
        ca.issue(&token, &csr, "n1", now()),
        Err(CaError::Removed { ref node }) if node == "n1"
    ));
    assert!(matches!(
        ca.renew(&der(&issued), NodeRole::Worker, &csr, now()),
        Err(CaError::Removed { .. })
    ));
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let mut ca = ca();
    ca.set_node_cert_validity(DAY);
    let (key, issued) = join(&mut ca, NodeRole::Worker, "n1", now() - 10 * DAY);
    let expected = format!(
        "certificate of node n1 expired at {}: renew certificates before they expire; an \
         expired node joins again with a token",
        rfc3339(now() - 9 * DAY)
    );
    assert_eq!(
        verify(&ca, &issued, now()).unwrap_err().to_string(),
        expected
    );
    let identity = NodeIdentity::new(key, &issued).unwrap();
    assert_eq!(identity.check(now()).unwrap_err().to_string(), expected);
    let csr = NodeKey::generate().unwrap().csr().unwrap();
    assert!(matches!(
        ca.renew(&der(&issued), NodeRole::Worker, &csr, now()),
        Err(CaError::Expired { .. })
    ));
    let too_early = verify(&ca, &issued, now() - 20 * DAY).unwrap_err();
    assert!(
        matches!(too_early, CaError::NotYetValid { .. }),
        "{too_early}"
    );
}

#[test]
fn renewal_keeps_id_and_role_for_a_new_key() {
    let mut ca = ca();
    let (_, first) = join(&mut ca, NodeRole::Manager, "m1", now());
    let new_key = NodeKey::generate().unwrap();
    let later = now() + 70 * DAY;
    let renewed = ca
        .renew(
            &der(&first),
            NodeRole::Manager,
            &new_key.csr().unwrap(),
            later,
        )
        .unwrap();
    assert_eq!(
        (renewed.node_id.as_str(), renewed.role),
        ("m1", NodeRole::Manager)
    );
    assert_eq!(renewed.not_after, later + 90 * DAY);
    let identity = NodeIdentity::new(new_key, &renewed).unwrap();
    assert_eq!(identity.role(), NodeRole::Manager);
}

#[test]
fn renewal_takes_the_role_it_is_given_not_the_old_certificates() {
    let mut ca = ca();
    let (_, first) = join(&mut ca, NodeRole::Manager, "m1", now());
    let key = NodeKey::generate().unwrap();
    let renewed = ca
        .renew(&der(&first), NodeRole::Worker, &key.csr().unwrap(), now())
        .unwrap();
    assert_eq!(
        renewed.role,
        NodeRole::Worker,
        "a demoted manager renews as a worker"
    );
    let identity = NodeIdentity::new(key, &renewed).unwrap();
    assert_eq!(identity.role(), NodeRole::Worker);
}

#[test]
fn a_certificate_for_another_key_is_not_accepted_by_the_node() {
    let mut ca = ca();
    let (_, issued) = join(&mut ca, NodeRole::Worker, "n1", now());
    let err = NodeIdentity::new(NodeKey::generate().unwrap(), &issued).unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
}

#[test]
fn node_certificates_never_outlive_the_ca() {
    let mut ca = ca();
    ca.set_node_cert_validity(100 * 365 * DAY);
    let (_, issued) = join(&mut ca, NodeRole::Worker, "n1", now());
    assert_eq!(issued.not_after, ca.ca_cert().unwrap().not_after());
    assert!(verify(&ca, &issued, now()).is_ok());
}

#[test]
fn bad_requests_and_ids_are_refused() {
    let mut ca = ca();
    let token = ca.token(NodeRole::Worker).unwrap();
    let err = ca.issue(&token, "not a CSR", "n1", now()).unwrap_err();
    assert!(matches!(err, CaError::BadCsr { .. }), "{err}");
    assert!(err.is_refusal());
    let csr = NodeKey::generate().unwrap().csr().unwrap();
    let err = ca
        .issue(&token, &csr, "n1?role=manager", now())
        .unwrap_err();
    assert!(matches!(err, CaError::BadId { what: "node", .. }), "{err}");
    let err = init("my cluster", &CaConfig::default(), now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cluster id \"my cluster\" is not valid: use 1 to 128 letters, digits, '-', '_' or '.'"
    );
    // A request whose signature does not match its key.
    let mut der = rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(csr.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    let last = der.len() - 1;
    der[last] ^= 1;
    let tampered = pem_of("CERTIFICATE REQUEST", &der);
    let err = ca.issue(&token, &tampered, "n1", now()).unwrap_err();
    assert!(matches!(err, CaError::BadCsr { .. }), "{err}");
    assert_eq!(ca.next_serial, 1, "refusals issue nothing");
}

/// Made once with `openssl req -new -newkey rsa:2048 -nodes -subj /CN=rsa-node`.
const RSA_CSR: &str = "\
-----BEGIN CERTIFICATE REQUEST-----\n\
MIICWDCCAUACAQAwEzERMA8GA1UEAwwIcnNhLW5vZGUwggEiMA0GCSqGSIb3DQEB\n\
AQUAA4IBDwAwggEKAoIBAQDJBvU33BDnhRgcouOrotOqiersQzGYgZhd3qGx8vFH\n\
h442ys25DedsSloKW77NHPog76rzY9D8+yDrBvQrmqA8gSnqgNLx085nqSAp3V70\n\
nRovsHDDmhp0yXJH7D+raeNbPj7roYq6uSyqgP1Im6CrIBAvv2XgP4zIQrb9dwMg\n\
BpRzmk5ggMExG7bopQWa4IxcNW6XqdqmhGzC25LjpVQd/XbsE5x0GtuTiwkxTyP4\n\
fi8JuF/JvTAHMiqAENPtADdRnNEd1BmGNq48JlpJLVjGTJ9iRmYbzax3eNmeDDJ7\n\
/tBa9FO928wbA4L4GuiVE503lt+qqnDmWznKzBLQcOfBAgMBAAGgADANBgkqhkiG\n\
9w0BAQsFAAOCAQEAHvUD0wEGEaglIi2r9nlQj+nS8lLCZHUxKbhvtSuEJ4FspYLR\n\
hhUi/1zb4ApL3LkzIW2SCiCW3824YVgiEjLXAggUb/V44edkNeDSF79cM6jMq63W\n\
4MPTE1GeHZTgGYPYdGezBY9gaTCHfC03FtuG5lexZvG/qsFC6KAdUimd3Or1hWjL\n\
0uk4xh3Wwv7Xb1CftkLzU0Xiw0ovAW2R31NciurvQMjgI4nW320iygSeXF7bt/0H\n\
2rFJPqbByaERoTVWGE7h3NLvGLeXCrQDLNOdzT6QzUDNdGjpNGvRFA1sgkyV5imN\n\
3DflOj4Ii+t1W/xJmru4OkKm1SKf+M/6AC9GcA==\n\
-----END CERTIFICATE REQUEST-----\n\
";

#[test]
fn rsa_keys_are_refused() {
    let mut ca = ca();
    let token = ca.token(NodeRole::Worker).unwrap();
    let err = ca.issue(&token, RSA_CSR, "n1", now()).unwrap_err();
    assert!(matches!(err, CaError::KeyAlgorithm { .. }), "{err}");
}

fn pem_of(label: &str, der: &[u8]) -> String {
    let body = data_encoding::BASE64.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn the_state_round_trips_and_hides_its_secrets() {
    let mut ca = ca();
    join(&mut ca, NodeRole::Worker, "n1", now());
    ca.remove_node("n2");
    let json = serde_json::to_string(&ca).unwrap();
    let back: CaState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ca);
    let debug = format!("{ca:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    assert!(!debug.contains(&ca.token(NodeRole::Worker).unwrap().to_string()[72..]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn issuing_never_panics_on_any_request(csr in "\\PC{0,300}", id in "\\PC{0,20}") {
        let mut ca = ca();
        let token = ca.token(NodeRole::Worker).unwrap();
        let pem = format!("-----BEGIN CERTIFICATE REQUEST-----\n{csr}\n-----END CERTIFICATE REQUEST-----\n");
        let _ = ca.issue(&token, &csr, &id, now());
        let _ = ca.issue(&token, &pem, &id, now());
    }

    #[test]
    fn reading_never_panics_on_any_certificate(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = PeerIdentity::read(&bytes);
        let ca = ca();
        let _ = verify_peer(&ca.ca_cert().unwrap(), &CertificateDer::from(bytes), &[], Usage::Client, now(), &BTreeSet::new());
    }
}
