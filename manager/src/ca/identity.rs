//! A node's identity in a certificate, and what a node keeps: its own key and the
//! certificate the CA issued for it.
//!
//! A node certificate names its node twice: the subject's common name is the node id
//! (for people reading it with `openssl x509`), and one subject alternative name URI
//! `orch://node/<id>?role=<worker|manager>` is what orch reads and trusts.

use super::error::{CaError, role_name};
use super::state::CLOCK_SKEW;
use api::cluster::NodeRole;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_parser::extensions::GeneralName;

/// The longest node id.
pub const MAX_ID_LEN: usize = 128;

const URI_PREFIX: &str = "orch://node/";

/// Checks that an id can name a node in a certificate: 1 to [`MAX_ID_LEN`] ASCII
/// letters, digits, `-`, `_` or `.`.
pub fn check_node_id(id: &str) -> Result<(), CaError> {
    check_id("node", id)
}

/// The same rule for any id written in a certificate (`what`: "node", "cluster").
pub(crate) fn check_id(what: &'static str, id: &str) -> Result<(), CaError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CaError::BadId {
            what,
            id: id.chars().take(MAX_ID_LEN + 1).collect(),
        })
    }
}

/// The identity URI of a node.
pub(crate) fn node_uri(id: &str, role: NodeRole) -> String {
    format!("{URI_PREFIX}{id}?role={}", role_name(role))
}

fn parse_node_uri(uri: &str) -> Option<(String, NodeRole)> {
    let rest = uri.strip_prefix(URI_PREFIX)?;
    let (id, query) = rest.split_once('?')?;
    let role = match query {
        "role=worker" => NodeRole::Worker,
        "role=manager" => NodeRole::Manager,
        _ => return None,
    };
    check_node_id(id).ok()?;
    Some((id.to_string(), role))
}

/// Who a certificate says its holder is, and when the certificate is valid. Read from a
/// certificate by [`PeerIdentity::read`]; trust it only after verification (a TLS
/// handshake with this module's configurations, or [`super::verify::verify_peer`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerIdentity {
    /// The node id.
    pub node_id: String,
    /// The node's role.
    pub role: NodeRole,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl PeerIdentity {
    /// Reads the node identity of a certificate (no signature or time check).
    pub fn read(der: &[u8]) -> Result<PeerIdentity, CaError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|err| CaError::BadCertificate {
                what: "node",
                source: x509_error(err),
            })?;
        let sans = cert
            .subject_alternative_name()
            .map_err(|source| CaError::BadCertificate {
                what: "node",
                source,
            })?;
        let mut found = sans
            .iter()
            .flat_map(|ext| ext.value.general_names.iter())
            .filter_map(|name| match name {
                GeneralName::URI(uri) if uri.starts_with(URI_PREFIX) => Some(*uri),
                _ => None,
            });
        let (Some(uri), None) = (found.next(), found.next()) else {
            return Err(CaError::NoNodeIdentity);
        };
        let (node_id, role) = parse_node_uri(uri).ok_or(CaError::NoNodeIdentity)?;
        let validity = cert.validity();
        Ok(PeerIdentity {
            node_id,
            role,
            not_before: system_time(validity.not_before.timestamp()),
            not_after: system_time(validity.not_after.timestamp()),
        })
    }
}

pub(crate) fn x509_error(
    err: x509_parser::nom::Err<x509_parser::error::X509Error>,
) -> x509_parser::error::X509Error {
    match err {
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
        x509_parser::nom::Err::Incomplete(_) => x509_parser::error::X509Error::InvalidCertificate,
    }
}

pub(crate) fn system_time(unix_secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix_secs.unsigned_abs());
    if unix_secs >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// A node's private key: made by the node, never sent anywhere. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeKey {
    pem: String,
}

impl NodeKey {
    /// A fresh ECDSA P-256 key.
    pub fn generate() -> Result<NodeKey, CaError> {
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| CaError::Generate {
                what: "a node key",
                source,
            })?;
        Ok(NodeKey {
            pem: key.serialize_pem(),
        })
    }

    /// A key stored as PEM (PKCS#8).
    pub fn from_pem(pem: &str) -> Result<NodeKey, CaError> {
        KeyPair::from_pem(pem).map_err(|source| CaError::BadStoredPem {
            what: "node key",
            source,
        })?;
        Ok(NodeKey {
            pem: pem.to_string(),
        })
    }

    /// The key as PEM (PKCS#8), to store on the node.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub(crate) fn key_pair(&self) -> Result<KeyPair, CaError> {
        KeyPair::from_pem(&self.pem).map_err(|source| CaError::BadStoredPem {
            what: "node key",
            source,
        })
    }

    /// A certificate signing request (PEM) for this key. It asks for nothing: the CA
    /// decides the node's name, role and validity; the request proves the key.
    pub fn csr(&self) -> Result<String, CaError> {
        let key = self.key_pair()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "orch node");
        params
            .serialize_request(&key)
            .and_then(|csr| csr.pem())
            .map_err(|source| CaError::Generate {
                what: "a certificate request",
                source,
            })
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeKey(<redacted>)")
    }
}

/// What the CA hands a node: its certificate and the CA certificate, both PEM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCert {
    /// The node id the certificate names.
    pub node_id: String,
    /// The role the certificate names.
    pub role: NodeRole,
    /// The node certificate (PEM).
    pub cert_pem: String,
    /// The cluster CA certificate (PEM).
    pub ca_cert_pem: String,
    /// End of validity: renew before.
    pub not_after: SystemTime,
}

/// What a node keeps after joining: its key, its certificate and the CA's.
#[derive(Clone)]
pub struct NodeIdentity {
    key: NodeKey,
    cert: CertificateDer<'static>,
    ca: CertificateDer<'static>,
    peer: PeerIdentity,
}

impl NodeIdentity {
    /// Puts a node's key together with the certificate issued for it; refuses a
    /// certificate that is not for this key or names no node.
    pub fn new(key: NodeKey, issued: &IssuedCert) -> Result<NodeIdentity, CaError> {
        let cert = cert_from_pem(&issued.cert_pem, "node certificate")?;
        let ca = cert_from_pem(&issued.ca_cert_pem, "CA certificate")?;
        let peer = PeerIdentity::read(&cert)?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert).map_err(|err| CaError::BadCertificate {
                what: "node",
                source: x509_error(err),
            })?;
        let key_pair = key.key_pair()?;
        if parsed.public_key().subject_public_key.data.as_ref() != key_pair.public_key_raw() {
            return Err(CaError::KeyMismatch { node: peer.node_id });
        }
        Ok(NodeIdentity {
            key,
            cert,
            ca,
            peer,
        })
    }

    /// The node id.
    pub fn node_id(&self) -> &str {
        &self.peer.node_id
    }

    /// The node's role.
    pub fn role(&self) -> NodeRole {
        self.peer.role
    }

    /// Who the certificate says this node is, and its validity.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The node's key.
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// The node certificate (DER).
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The cluster CA certificate (DER).
    pub fn ca_cert(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    /// Whether the certificate is valid at `now` (the node checks itself before it
    /// connects, so an expired node knows it must join again).
    pub fn check(&self, now: SystemTime) -> Result<(), CaError> {
        super::verify::check_validity(&self.peer, now)
    }

    /// When to renew: once two thirds of the certificate's lifetime have passed. The
    /// lifetime counts from issuance (`not_before` is [`CLOCK_SKEW`] earlier), so a
    /// short-lived certificate is not due at once.
    pub fn renew_after(&self) -> SystemTime {
        let issued = self.peer.not_before + CLOCK_SKEW;
        let lifetime = self
            .peer
            .not_after
            .duration_since(issued)
            .unwrap_or_default();
        self.peer.not_after - lifetime / 3
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("peer", &self.peer)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// One certificate from PEM.
pub(crate) fn cert_from_pem(
    pem: &str,
    what: &'static str,
) -> Result<CertificateDer<'static>, CaError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| CaError::BadStoredPem {
        what,
        source: rcgen::Error::CouldNotParseCertificate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        for good in ["n1", "node-1.a_b", &"x".repeat(MAX_ID_LEN)] {
            assert!(check_node_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "a?role=manager",
            "é",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(check_node_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uris_round_trip_and_refuse_tricks() {
        for role in [NodeRole::Worker, NodeRole::Manager] {
            assert_eq!(
                parse_node_uri(&node_uri("n1", role)),
                Some(("n1".to_string(), role))
            );
        }
        for bad in [
            "orch://node/n1",
            "orch://node/n1?role=admin",
            "orch://node/?role=worker",
            "orch://node/a/b?role=worker",
            "orch://node/n1?role=worker&role=manager",
            "https://node/n1?role=worker",
        ] {
            assert_eq!(parse_node_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(
            PeerIdentity::read(b"not DER"),
            Err(CaError::BadCertificate { .. })
        ));
        assert!(cert_from_pem("nothing here", "node certificate").is_err());
    }

    #[test]
    fn a_key_makes_a_request_that_proves_it() {
        let key = NodeKey::generate().unwrap();
        let csr = key.csr().unwrap();
        let parsed = rcgen::CertificateSigningRequestParams::from_pem(&csr).unwrap();
        assert_eq!(
            rcgen::PublicKeyData::der_bytes(&parsed.public_key),
            key.key_pair().unwrap().public_key_raw()
        );
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }
}
