//! rustls configurations for node traffic (ring provider only):
//!
//! - [`server_config`]: a manager serving nodes. A client certificate is checked at each
//!   handshake against the cluster CA, its validity and the shared [`Revocations`]; with
//!   [`ClientAuth::Optional`] a node without a certificate can connect to join (the
//!   handler must then require a join token: [`peer_identity`] returns `None`).
//! - [`join_client_config`]: a node joining with a token. It trusts the manager only if
//!   the manager's chain holds a CA certificate whose SHA-256 is the token's digest and
//!   the manager's certificate is signed by it and names a manager.
//! - [`node_client_config`]: a node with its certificate (mutual TLS); the server must
//!   hold a manager certificate of the cluster CA.
//!
//! Verifiers do not compare server names: identity is the node URI in the certificate,
//! so clients may use any name (e.g. [`SERVER_NAME`], or the address they dial).
//! For HTTP/2, set `alpn_protocols` on the returned configurations.
//! Session resumption is off on both sides, so every connection is verified in full and a
//! removed node is refused at its next connection.

use super::error::CaError;
use super::identity::{PeerIdentity, system_time};
use super::live::LiveIdentity;
use super::token::{CaDigest, JoinToken};
use super::verify::{CaCert, Usage, verify_peer};
use api::cluster::NodeRole;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};
use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// A name clients may send as SNI; no verifier compares it.
pub const SERVER_NAME: &str = "orch-manager";

/// The removed nodes, shared between the CA state's owner (who updates it when the
/// stored [`super::CaState`] changes) and the server verifiers (who read it at each
/// handshake). Cloning shares the same set.
#[derive(Clone, Debug, Default)]
pub struct Revocations(Arc<RwLock<BTreeSet<String>>>);

impl Revocations {
    /// A set with these removed nodes.
    pub fn new(removed: BTreeSet<String>) -> Revocations {
        Revocations(Arc::new(RwLock::new(removed)))
    }

    /// Replaces the set (e.g. with [`super::CaState::removed_nodes`] after a change).
    pub fn replace(&self, removed: BTreeSet<String>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = removed;
    }

    /// Adds one removed node.
    pub fn insert(&self, node_id: &str) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node_id.to_string());
    }

    /// Whether a node is removed.
    pub fn contains(&self, node_id: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(node_id)
    }
}

/// Whether a server requires a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Nodes without a certificate may connect (to join); a certificate, if presented,
    /// must be valid.
    Optional,
    /// Every client must present a valid node certificate.
    Required,
}

/// The server configuration of a manager: its own certificate chain (node certificate
/// and CA certificate, so joining nodes can pin the CA), read from `identity` at each
/// handshake, and a client verifier over the cluster CA and `revocations`.
pub fn server_config(
    identity: &LiveIdentity,
    revocations: Revocations,
    client_auth: ClientAuth,
) -> Result<ServerConfig, CaError> {
    let provider = provider();
    let ca = CaCert::from_der(identity.get().ca_cert().clone())?;
    let verifier = NodeClientVerifier {
        hints: vec![DistinguishedName::from(ca.subject().to_vec())],
        ca,
        revocations,
        mandatory: client_auth == ClientAuth::Required,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(identity.clone()));
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The client configuration of a node joining with `token`: no client certificate; the
/// manager must present the token's CA.
pub fn join_client_config(token: &JoinToken) -> Result<ClientConfig, CaError> {
    pinned_client_config(token.ca)
}

/// The client configuration of an API client without a certificate (the CLI with a
/// bearer token): the manager must present the CA whose SHA-256 is `ca`.
pub fn pinned_client_config(ca: CaDigest) -> Result<ClientConfig, CaError> {
    let provider = provider();
    let verifier = PinnedCaVerifier {
        expected: ca,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The client configuration of a node with a certificate: presents it (as `identity`
/// holds it at each handshake), and trusts managers of the cluster CA.
pub fn node_client_config(identity: &LiveIdentity) -> Result<ClientConfig, CaError> {
    let provider = provider();
    let verifier = ClusterServerVerifier {
        ca: CaCert::from_der(identity.get().ca_cert().clone())?,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(identity.clone()));
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The node at the other end of a connection made with these configurations: `None`
/// when it presented no certificate (a joining node). The handshake verified it.
pub fn peer_identity(conn: &rustls::CommonState) -> Result<Option<PeerIdentity>, CaError> {
    match conn.peer_certificates().and_then(|chain| chain.first()) {
        Some(cert) => PeerIdentity::read(cert).map(Some),
        None => Ok(None),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls(source: rustls::Error) -> CaError {
    CaError::Tls { source }
}

fn unix(now: UnixTime) -> std::time::SystemTime {
    system_time(i64::try_from(now.as_secs()).unwrap_or(i64::MAX))
}

/// A refusal as rustls reports it. Expiry and removal use rustls' own variants, so the
/// refused peer receives a `certificate_expired` or `certificate_revoked` alert; every
/// other refusal carries the [`CaError`] (see [`CaError::find_in`]).
fn refusal(err: CaError, now: UnixTime) -> rustls::Error {
    let secs = |t: std::time::SystemTime| {
        UnixTime::since_unix_epoch(
            t.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO),
        )
    };
    let cert_error = match err {
        CaError::Expired { not_after, .. } => CertificateError::ExpiredContext {
            time: now,
            not_after: secs(not_after),
        },
        CaError::NotYetValid { not_before, .. } => CertificateError::NotValidYetContext {
            time: now,
            not_before: secs(not_before),
        },
        CaError::Removed { .. } => CertificateError::Revoked,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(cert_error)
}

fn other(err: CaError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(err))))
}

fn require_manager(peer: PeerIdentity) -> Result<ServerCertVerified, rustls::Error> {
    match peer.role {
        NodeRole::Manager => Ok(ServerCertVerified::assertion()),
        role => Err(other(CaError::NotAManager {
            node: peer.node_id,
            role,
        })),
    }
}

/// A manager's check of client certificates.
#[derive(Debug)]
struct NodeClientVerifier {
    ca: CaCert,
    hints: Vec<DistinguishedName>,
    revocations: Revocations,
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for NodeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let removed = self
            .revocations
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        verify_peer(
            &self.ca,
            end_entity,
            intermediates,
            Usage::Client,
            unix(now),
            &removed,
        )
        .map_err(|err| refusal(err, now))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A joining node's check of the manager: the CA is the one the token pins.
#[derive(Debug)]
struct PinnedCaVerifier {
    expected: CaDigest,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pinned) = intermediates
            .iter()
            .find(|cert| CaDigest::of(cert) == self.expected)
        else {
            return Err(other(match intermediates.last() {
                Some(presented) => CaError::CaMismatch {
                    presented: CaDigest::of(presented),
                    expected: self.expected,
                },
                None => CaError::NoCaPresented {
                    expected: self.expected,
                },
            }));
        };
        let ca = CaCert::from_der(pinned.clone().into_owned()).map_err(other)?;
        let peer = verify_peer(
            &ca,
            end_entity,
            &[],
            Usage::Server,
            unix(now),
            &BTreeSet::new(),
        )
        .map_err(other)?;
        require_manager(peer)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A node's check of a manager once it has its certificate: the cluster CA signed it.
#[derive(Debug)]
struct ClusterServerVerifier {
    ca: CaCert,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ClusterServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let peer = verify_peer(
            &self.ca,
            end_entity,
            &[],
            Usage::Server,
            unix(now),
            &BTreeSet::new(),
        )
        .map_err(other)?;
        require_manager(peer)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
