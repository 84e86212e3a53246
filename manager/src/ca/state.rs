//! [`CaState`]: everything the cluster CA is, as data the store can replicate — the CA
//! certificate and key, the join secrets, the removed nodes, the next serial number.

use super::error::CaError;
use super::identity::check_id;
use super::token::{JoinToken, TokenSecret};
use super::utc;
use super::verify::CaCert;
use api::cluster::NodeRole;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime};

/// How long the CA certificate is valid: 10 years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long node certificates are valid unless configured: 90 days.
pub const DEFAULT_NODE_CERT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// Certificates start this long before they are made, so a node whose clock is a little
/// behind the manager's accepts them.
pub const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// Settings of a new CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaConfig {
    /// How long node certificates are valid.
    pub node_cert_validity: Duration,
}

impl Default for CaConfig {
    fn default() -> CaConfig {
        CaConfig {
            node_cert_validity: DEFAULT_NODE_CERT_VALIDITY,
        }
    }
}

/// The cluster CA's state, to keep in the replicated store. Every change is a method
/// that changes this value; the ones that need randomness take it as an argument
/// ([`CaState::rotate`]) or say so ([`init`], issuing signs with ECDSA).
///
/// It holds the CA's private key and the join secrets: `Debug` hides them, and whoever
/// stores it must keep it as secret as the cluster's secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaState {
    pub(crate) cluster_id: String,
    pub(crate) ca_cert_pem: String,
    pub(crate) ca_key_pem: String,
    pub(crate) worker_secret: TokenSecret,
    pub(crate) manager_secret: TokenSecret,
    /// Nodes removed from the cluster: no certificate for them, theirs are refused.
    pub(crate) removed: BTreeSet<String>,
    /// The serial number of the next node certificate.
    pub(crate) next_serial: u64,
    /// How long node certificates are valid, in seconds.
    pub(crate) node_cert_validity_secs: u64,
}

/// Creates the cluster CA at `orch manager init`: an ECDSA P-256 key, a self-signed
/// certificate `orch cluster CA <cluster id>` valid for [`CA_VALIDITY`] from `now`, and
/// random worker and manager join secrets.
pub fn init(cluster_id: &str, config: &CaConfig, now: SystemTime) -> Result<CaState, CaError> {
    check_id("cluster", cluster_id)?;
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| CaError::Generate {
            what: "the CA key",
            source,
        })?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("orch cluster CA {cluster_id}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "orch");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = utc(now.checked_sub(CLOCK_SKEW).unwrap_or(now));
    params.not_after = utc(now.checked_add(CA_VALIDITY).unwrap_or(now));
    let cert = params
        .self_signed(&key)
        .map_err(|source| CaError::Generate {
            what: "the CA certificate",
            source,
        })?;
    Ok(CaState {
        cluster_id: cluster_id.to_string(),
        ca_cert_pem: cert.pem(),
        ca_key_pem: key.serialize_pem(),
        worker_secret: TokenSecret::generate()?,
        manager_secret: TokenSecret::generate()?,
        removed: BTreeSet::new(),
        next_serial: 1,
        node_cert_validity_secs: config.node_cert_validity.as_secs(),
    })
}

impl CaState {
    /// The cluster id the CA was made for.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The CA certificate (PEM), what nodes trust.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The CA certificate, parsed.
    pub fn ca_cert(&self) -> Result<CaCert, CaError> {
        CaCert::from_pem(&self.ca_cert_pem)
    }

    /// How long node certificates are valid.
    pub fn node_cert_validity(&self) -> Duration {
        Duration::from_secs(self.node_cert_validity_secs)
    }

    /// Changes how long node certificates issued from now on are valid.
    pub fn set_node_cert_validity(&mut self, validity: Duration) {
        self.node_cert_validity_secs = validity.as_secs();
    }

    /// The current join token of a role.
    pub fn token(&self, role: NodeRole) -> Result<JoinToken, CaError> {
        Ok(JoinToken {
            ca: self.ca_cert()?.digest(),
            role,
            secret: self.secret(role).clone(),
        })
    }

    /// Replaces a role's secret: tokens of that role given out before are refused from
    /// now on. Returns the new token. `secret` comes from [`TokenSecret::generate`].
    pub fn rotate(&mut self, role: NodeRole, secret: TokenSecret) -> Result<JoinToken, CaError> {
        match role {
            NodeRole::Worker => self.worker_secret = secret,
            NodeRole::Manager => self.manager_secret = secret,
        }
        self.token(role)
    }

    /// Removes a node from the cluster: it gets no certificate any more and its
    /// certificate is refused. Returns `false` if it was already removed.
    pub fn remove_node(&mut self, node_id: &str) -> bool {
        self.removed.insert(node_id.to_string())
    }

    /// Whether a node was removed.
    pub fn is_removed(&self, node_id: &str) -> bool {
        self.removed.contains(node_id)
    }

    /// The removed nodes (for [`super::tls::Revocations`]).
    pub fn removed_nodes(&self) -> &BTreeSet<String> {
        &self.removed
    }

    pub(crate) fn secret(&self, role: NodeRole) -> &TokenSecret {
        match role {
            NodeRole::Worker => &self.worker_secret,
            NodeRole::Manager => &self.manager_secret,
        }
    }
}

impl fmt::Debug for CaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaState")
            .field("cluster_id", &self.cluster_id)
            .field("ca_key_pem", &"<redacted>")
            .field("removed", &self.removed)
            .field("next_serial", &self.next_serial)
            .field("node_cert_validity_secs", &self.node_cert_validity_secs)
            .finish_non_exhaustive()
    }
}
