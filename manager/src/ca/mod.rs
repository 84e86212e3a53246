//! The cluster CA: join tokens, node certificates, revocation, TLS configurations.
//!
//! - [`state`]: [`CaState`], the CA as data for the replicated store; [`init`] makes it
//!   at `orch manager init` (ECDSA P-256, `orch cluster CA <cluster id>`, 10 years).
//! - [`token`]: [`JoinToken`] `ORCH1-<sha256 of the CA certificate>-<W|M>-<secret>`,
//!   parsed with errors that say what is wrong; secrets compared in constant time.
//! - [`issue`]: [`CaState::issue`] (join token + request) and [`CaState::renew`]
//!   (current certificate + request). The node's key never leaves the node
//!   ([`NodeKey::generate`], [`NodeKey::csr`]).
//! - [`identity`]: what a certificate says about its node ([`PeerIdentity`]): CN = node
//!   id, OU = role, and the SAN URI `orch://node/<id>?role=<worker|manager>` that orch
//!   reads; what a node keeps ([`NodeIdentity`]).
//! - [`live`]: [`LiveIdentity`], an identity TLS configurations read at each handshake,
//!   replaced when the certificate is renewed.
//! - [`verify`]: the pure check of a node certificate at `now` ([`verify_peer`]).
//! - [`tls`]: rustls configurations for managers (client certificates optional or
//!   required, removal checked at each handshake through [`Revocations`]), for joining
//!   nodes (the CA pinned by the token's digest) and for nodes with certificates.
//! - [`error`]: the one error type, [`CaError`].

pub mod error;
pub mod identity;
pub mod issue;
pub mod live;
pub mod state;
pub mod tls;
pub mod token;
pub mod verify;

pub use error::{CaError, TokenProblem};
pub use identity::{IssuedCert, NodeIdentity, NodeKey, PeerIdentity, check_node_id};
pub use live::LiveIdentity;
pub use state::{CaConfig, CaState, init};
pub use tls::{
    ClientAuth, Revocations, SERVER_NAME, join_client_config, node_client_config, peer_identity,
    pinned_client_config, server_config,
};
pub use token::{CaDigest, JoinToken, TokenSecret};
pub use verify::{CaCert, Usage, verify_peer};

use std::time::{SystemTime, UNIX_EPOCH};

/// The latest time an X.509 certificate can carry: 9999-12-31T23:59:59Z.
const MAX_CERT_SECS: u64 = 253_402_300_799;

/// A time as certificates carry it: UTC, whole seconds, clamped to 1970..=9999.
pub(crate) fn utc(t: SystemTime) -> time::OffsetDateTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(MAX_CERT_SECS));
    i64::try_from(secs)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
