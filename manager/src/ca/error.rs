//! The CA's one error type. Refusals (a token, a request or a certificate that is not
//! acceptable: the caller can fix it and try again) are apart from failures of this
//! manager (its CA state is damaged, the random generator or a TLS setup failed).

use super::token::CaDigest;
use api::cluster::NodeRole;
use std::time::SystemTime;

/// What can go wrong with the cluster CA, a join token or a node certificate.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    // --- refusals: tokens --------------------------------------------------------
    /// The text is not a join token this version of orch understands.
    #[error("not a valid join token: {problem}")]
    BadToken { problem: TokenProblem },
    /// The token's secret is not the current one of its role.
    #[error(
        "join token refused: the secret does not match the current {} token (was it rotated? \
         ask for a new one with `orch token {}`)",
        role_name(*.role), role_name(*.role)
    )]
    WrongSecret { role: NodeRole },
    /// The token was made for another CA (another cluster, or a CA that was replaced).
    #[error(
        "join token refused: it names the CA {token}, but this cluster's CA is {cluster} \
         (is it a token of another cluster?)"
    )]
    TokenForOtherCa { token: CaDigest, cluster: CaDigest },

    // --- refusals: what a joining node sees of the manager -------------------------
    /// The manager presented a CA other than the one the join token pins.
    #[error("the manager's CA ({presented}) is not the CA of this token ({expected})")]
    CaMismatch {
        presented: CaDigest,
        expected: CaDigest,
    },
    /// The manager sent only its own certificate, not the CA certificate to pin.
    #[error(
        "the manager sent no CA certificate, so it cannot be checked against the CA of this \
         token ({expected})"
    )]
    NoCaPresented { expected: CaDigest },
    /// The peer that should be a manager holds a certificate of another role.
    #[error("node {node} is a {}, not a manager: it cannot serve this connection", role_name(*.role))]
    NotAManager { node: String, role: NodeRole },

    // --- refusals: requests --------------------------------------------------------
    /// A node (or cluster) id that cannot be written in a certificate.
    #[error(
        "{what} id {id:?} is not valid: use 1 to {max} letters, digits, '-', '_' or '.'",
        max = super::identity::MAX_ID_LEN
    )]
    BadId { what: &'static str, id: String },
    /// A certificate signing request that cannot be parsed or whose signature is wrong.
    #[error("certificate request for node {node} is not valid: {source}")]
    BadCsr {
        node: String,
        #[source]
        source: rcgen::Error,
    },
    /// A request for a key type orch does not accept (RSA, ML-DSA...).
    #[error(
        "certificate request for node {node} is for a key type orch does not accept: use \
         ECDSA P-256 (what orch nodes make), ECDSA P-384 or Ed25519"
    )]
    KeyAlgorithm { node: String },
    /// The node was removed: it gets no certificate and its certificate is refused.
    #[error("node {node} was removed from the cluster")]
    Removed { node: String },

    // --- refusals: certificates ----------------------------------------------------
    /// A certificate that cannot be parsed.
    #[error("the {what} certificate cannot be read: {source}")]
    BadCertificate {
        what: &'static str,
        #[source]
        source: x509_parser::error::X509Error,
    },
    /// A certificate without the orch node identity (`orch://node/<id>?role=<role>`).
    #[error(
        "the certificate does not name an orch node (it needs one subject alternative name \
         orch://node/<id>?role=<worker|manager>)"
    )]
    NoNodeIdentity,
    /// The node's certificate is past its end of validity.
    #[error(
        "certificate of node {node} expired at {}: renew certificates before they expire; \
         an expired node joins again with a token",
        rfc3339(*.not_after)
    )]
    Expired { node: String, not_after: SystemTime },
    /// The node's certificate is not valid yet (a clock is wrong).
    #[error(
        "certificate of node {node} is not valid before {}: check the clocks of this machine \
         and of the node",
        rfc3339(*.not_before)
    )]
    NotYetValid {
        node: String,
        not_before: SystemTime,
    },
    /// The certificate is not signed by the cluster CA (or is unusable for its purpose).
    #[error("certificate of node {node} is not trusted by the cluster CA {ca}: {source}")]
    Untrusted {
        node: String,
        ca: CaDigest,
        #[source]
        source: webpki::Error,
    },
    /// The certificate handed to a node is not for the node's own key.
    #[error("the certificate issued to node {node} is not for this node's key")]
    KeyMismatch { node: String },
    /// A renewed certificate names another node or comes from another CA.
    #[error("the renewed certificate of node {node} is for node {other} or of another cluster CA")]
    NotSameNode { node: String, other: String },

    // --- failures of this manager or node --------------------------------------------
    /// The stored CA (or node) certificate or key cannot be used.
    #[error("the {what} cannot be read: {source}")]
    BadStoredPem {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    /// Generating a key, a request or a certificate failed.
    #[error("generate {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    /// The system's random generator failed.
    #[error("the system random generator failed while making {what}")]
    Random { what: &'static str },
    /// A TLS configuration could not be built.
    #[error("build the TLS configuration: {source}")]
    Tls {
        #[source]
        source: rustls::Error,
    },
}

impl CaError {
    /// `true` when the token, request or certificate was refused (the caller can act);
    /// `false` when this manager or node itself failed.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            CaError::BadStoredPem { .. }
                | CaError::Generate { .. }
                | CaError::Random { .. }
                | CaError::Tls { .. }
        )
    }

    /// Finds a [`CaError`] carried inside a TLS error (an `io::Error` from a handshake, or
    /// a `rustls::Error`), e.g. why a joining node's pinning refused the manager.
    pub fn find_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a CaError> {
        let mut next = Some(err);
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<CaError>() {
                return Some(found);
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && let Some(inner) = io.get_ref()
            {
                next = Some(inner);
                continue;
            }
            if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) =
                err.downcast_ref::<rustls::Error>()
            {
                next = Some(other.0.as_ref());
                continue;
            }
            next = err.source();
        }
        None
    }
}

/// What is wrong with a text that should be a join token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("it should start with ORCH1- (ORCH1-<CA digest>-<W|M>-<secret>)")]
    NotAToken,
    #[error("version {found:?} is not supported (this orch reads version 1: ORCH1-...)")]
    Version { found: String },
    #[error("it has {found} parts separated by '-', expected 4 (ORCH1-<CA digest>-<W|M>-<secret>)")]
    Parts { found: usize },
    #[error("the CA digest has {found} characters, expected 64 hexadecimal digits")]
    DigestLength { found: usize },
    #[error("the CA digest is not hexadecimal")]
    DigestEncoding,
    #[error("the role is {found:?}, expected W (worker) or M (manager)")]
    Role { found: String },
    #[error("the secret has {found} characters, expected {expected} (base32)")]
    SecretLength { found: usize, expected: usize },
    #[error("the secret is not base32 (letters a-z and digits 2-7)")]
    SecretEncoding,
}

/// The word for a role in messages and commands.
pub(crate) fn role_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Worker => "worker",
        NodeRole::Manager => "manager",
    }
}

/// A time as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let t = super::utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
