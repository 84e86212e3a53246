//! Issuing node certificates: for a join token and a request the node made with its own
//! key ([`CaState::issue`]), or for a node that proves it holds a valid certificate
//! ([`CaState::renew`]). The CA decides everything in the certificate except the key.

use super::error::CaError;
use super::identity::{IssuedCert, PeerIdentity, check_node_id, node_uri};
use super::state::{CLOCK_SKEW, CaState};
use super::token::JoinToken;
use super::utc;
use super::verify::{Usage, verify_peer};
use api::cluster::NodeRole;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    SignatureAlgorithm,
};
use rustls::pki_types::CertificateDer;
use std::time::SystemTime;

/// The key types a node certificate may carry: ECDSA (what nodes make) and Ed25519.
/// RSA is refused: ring would not verify keys under 2048 bits, and orch needs none.
const ACCEPTED_KEYS: [&SignatureAlgorithm; 3] = [
    &rcgen::PKCS_ECDSA_P256_SHA256,
    &rcgen::PKCS_ECDSA_P384_SHA384,
    &rcgen::PKCS_ED25519,
];

impl CaState {
    /// Issues a certificate to a joining node: checks that `token` is for this CA and
    /// carries the current secret of its role, that `node_id` is a valid id of a node
    /// not removed, and that `csr_pem` is a well-signed request; then signs the
    /// request's key as `node_id` with the token's role, valid from `now`.
    pub fn issue(
        &mut self,
        token: &JoinToken,
        csr_pem: &str,
        node_id: &str,
        now: SystemTime,
    ) -> Result<IssuedCert, CaError> {
        let ca = self.ca_cert()?;
        if token.ca != ca.digest() {
            return Err(CaError::TokenForOtherCa {
                token: token.ca,
                cluster: ca.digest(),
            });
        }
        if !self.secret(token.role).matches(&token.secret) {
            return Err(CaError::WrongSecret { role: token.role });
        }
        self.sign(node_id, token.role, csr_pem, now)
    }

    /// Renews the certificate of a node that presents its current one (`current`, DER,
    /// e.g. the peer certificate of its mutual-TLS connection): it must be this CA's,
    /// valid at `now` and not of a removed node. The new certificate has the same node id,
    /// for the key of `csr_pem` (the node may have made a new key), and `role`: the one
    /// the cluster's Node record says now (a demoted manager gets a worker's), never the
    /// one the request or the old certificate claims.
    pub fn renew(
        &mut self,
        current: &CertificateDer<'_>,
        role: NodeRole,
        csr_pem: &str,
        now: SystemTime,
    ) -> Result<IssuedCert, CaError> {
        let ca = self.ca_cert()?;
        let peer: PeerIdentity = verify_peer(&ca, current, &[], Usage::Client, now, &self.removed)?;
        self.sign(&peer.node_id, role, csr_pem, now)
    }

    fn sign(
        &mut self,
        node_id: &str,
        role: NodeRole,
        csr_pem: &str,
        now: SystemTime,
    ) -> Result<IssuedCert, CaError> {
        check_node_id(node_id)?;
        if self.removed.contains(node_id) {
            return Err(CaError::Removed {
                node: node_id.to_string(),
            });
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|source| {
            CaError::BadCsr {
                node: node_id.to_string(),
                source,
            }
        })?;
        if !ACCEPTED_KEYS.contains(&csr.public_key.algorithm()) {
            return Err(CaError::KeyAlgorithm {
                node: node_id.to_string(),
            });
        }
        let key = KeyPair::from_pem(&self.ca_key_pem).map_err(|source| CaError::BadStoredPem {
            what: "CA key",
            source,
        })?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, key).map_err(|source| {
            CaError::BadStoredPem {
                what: "CA certificate",
                source,
            }
        })?;
        let ca = self.ca_cert()?;
        let not_after = now
            .checked_add(self.node_cert_validity())
            .map_or(ca.not_after(), |t| t.min(ca.not_after()));
        let params = node_params(node_id, role, self.next_serial, now, not_after)?;
        let cert = params
            .signed_by(&csr.public_key, &issuer)
            .map_err(|source| CaError::Generate {
                what: "a node certificate",
                source,
            })?;
        self.next_serial = self.next_serial.saturating_add(1);
        Ok(IssuedCert {
            node_id: node_id.to_string(),
            role,
            cert_pem: cert.pem(),
            ca_cert_pem: self.ca_cert_pem.clone(),
            not_after: super::identity::system_time(utc(not_after).unix_timestamp()),
        })
    }
}

/// What a node certificate says: CN and URI name the node, OU names the role; usable
/// as a TLS client and server; not a CA.
fn node_params(
    node_id: &str,
    role: NodeRole,
    serial: u64,
    now: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, node_id.to_string());
    params.distinguished_name.push(
        DnType::OrganizationalUnitName,
        super::error::role_name(role),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "orch");
    let uri = node_uri(node_id, role);
    let uri = uri.try_into().map_err(|source| CaError::Generate {
        what: "the node's identity URI",
        source,
    })?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let serial = serial.to_be_bytes();
    let first = serial
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(serial.len() - 1);
    params.serial_number = Some(SerialNumber::from_slice(&serial[first..]));
    params.not_before = utc(now.checked_sub(CLOCK_SKEW).unwrap_or(now));
    params.not_after = utc(not_after);
    Ok(params)
}

#[cfg(test)]
#[path = "issue_tests.rs"]
mod tests;
