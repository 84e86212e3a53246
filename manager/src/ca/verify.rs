//! Pure verification of a node certificate: who it names, whether it is valid at `now`,
//! whether the cluster CA signed it, whether the node was removed. The TLS verifiers in
//! [`super::tls`] call this with the time of the handshake.

use super::error::CaError;
use super::identity::{PeerIdentity, cert_from_pem, system_time, x509_error};
use super::token::CaDigest;
use rustls::pki_types::{CertificateDer, UnixTime};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The cluster CA certificate as a verifier needs it: DER, digest and subject.
#[derive(Clone, Debug)]
pub struct CaCert {
    der: CertificateDer<'static>,
    digest: CaDigest,
    subject: Vec<u8>,
    not_after: SystemTime,
}

impl CaCert {
    /// From DER.
    pub fn from_der(der: CertificateDer<'static>) -> Result<CaCert, CaError> {
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&der).map_err(|err| CaError::BadCertificate {
                what: "CA",
                source: x509_error(err),
            })?;
        let subject = parsed.subject().as_raw().to_vec();
        let digest = CaDigest::of(&der);
        let not_after = system_time(parsed.validity().not_after.timestamp());
        Ok(CaCert {
            der,
            digest,
            subject,
            not_after,
        })
    }

    /// From PEM.
    pub fn from_pem(pem: &str) -> Result<CaCert, CaError> {
        CaCert::from_der(cert_from_pem(pem, "CA certificate")?)
    }

    /// The certificate (DER).
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// Its SHA-256, as join tokens carry it.
    pub fn digest(&self) -> CaDigest {
        self.digest
    }

    /// Its subject name (DER), the hint a server gives clients.
    pub fn subject(&self) -> &[u8] {
        &self.subject
    }

    /// End of the CA's validity: no node certificate outlives it.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
}

/// Which side of a TLS connection the certificate is presented by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A server (a manager serving other nodes).
    Server,
    /// A client (any node calling a manager).
    Client,
}

/// Verifies a node's certificate: readable identity, valid at `now`, signed by `ca`
/// (through `intermediates`, normally none), usable for `usage`, node not in `removed`.
/// Returns who the certificate names.
pub fn verify_peer(
    ca: &CaCert,
    cert: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    usage: Usage,
    now: SystemTime,
    removed: &BTreeSet<String>,
) -> Result<PeerIdentity, CaError> {
    let peer = PeerIdentity::read(cert)?;
    check_validity(&peer, now)?;
    let untrusted = |source| CaError::Untrusted {
        node: peer.node_id.clone(),
        ca: ca.digest,
        source,
    };
    let anchor = webpki::anchor_from_trusted_cert(&ca.der).map_err(untrusted)?;
    let end_entity = webpki::EndEntityCert::try_from(cert).map_err(untrusted)?;
    let key_usage = match usage {
        Usage::Server => webpki::KeyUsage::server_auth(),
        Usage::Client => webpki::KeyUsage::client_auth(),
    };
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    end_entity
        .verify_for_usage(
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .all,
            &[anchor],
            intermediates,
            UnixTime::since_unix_epoch(since_epoch),
            key_usage,
            None,
            None,
        )
        .map_err(untrusted)?;
    if removed.contains(&peer.node_id) {
        return Err(CaError::Removed { node: peer.node_id });
    }
    Ok(peer)
}

/// Whether `now` is within the certificate's validity.
pub(crate) fn check_validity(peer: &PeerIdentity, now: SystemTime) -> Result<(), CaError> {
    if now > peer.not_after {
        return Err(CaError::Expired {
            node: peer.node_id.clone(),
            not_after: peer.not_after,
        });
    }
    if now < peer.not_before {
        return Err(CaError::NotYetValid {
            node: peer.node_id.clone(),
            not_before: peer.not_before,
        });
    }
    Ok(())
}
