//! The node side of certificate renewal, for agents and managers alike: once the
//! certificate is due ([`renewal_delay`], two thirds of its lifetime less some jitter),
//! make a new key, send its request with the current certificate to the leader
//! (`POST /v1/certificates/renew`), keep the new key and certificate in the data
//! directory ([`Layout::save_renewed`]) and hand them to the [`LiveIdentity`] that the
//! node's TLS clients and server read at each handshake. Nothing restarts. A role the
//! managers announce (promotion, demotion) is followed by a renewal at once; a worker
//! whose renewal makes it a manager ends the loop so the node starts its manager.

use super::client::call_error;
use super::error::ServerError;
use super::layout::Layout;
use crate::ca::{CaError, IssuedCert, LiveIdentity, NodeIdentity, NodeKey};
use api::client::managers::post_to_leader;
use api::cluster::NodeRole;
use api::join::{RenewRequest, RenewResponse};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// The earliest a renewal starts, as a share of the lifetime before
/// [`NodeIdentity::renew_after`]: renewals spread over the last sixth before it, so nodes
/// that joined together do not all renew at once.
const JITTER_SHARE: u32 = 6;
/// Bounds of the wait after a failed renewal.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// How long to wait before renewing `identity` at `now`; `jitter` in `[0, 1]` moves the
/// time earlier by up to a sixth of the lifetime. Zero when it is due.
pub fn renewal_delay(identity: &NodeIdentity, now: SystemTime, jitter: f64) -> Duration {
    let due = identity.renew_after();
    let lifetime = identity
        .peer()
        .not_after
        .duration_since(due)
        .unwrap_or_default()
        * 3;
    let early = (lifetime / JITTER_SHARE).mul_f64(jitter.clamp(0.0, 1.0));
    (due - early).duration_since(now).unwrap_or_default()
}

/// How long to wait after a failed renewal at `now`: a tenth of the time left, within
/// bounds, so a short-lived certificate is tried often enough before it expires.
pub fn retry_delay(identity: &NodeIdentity, now: SystemTime) -> Duration {
    let left = identity
        .peer()
        .not_after
        .duration_since(now)
        .unwrap_or_default();
    (left / 10).clamp(RETRY_MIN, RETRY_MAX)
}

/// What the renewal loop tells its owner (for logs and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenewalEvent {
    /// A new certificate is in use, valid until `not_after`.
    Renewed {
        node_id: String,
        role: NodeRole,
        not_after: SystemTime,
    },
    /// A renewal failed; it is tried again after `retry_in`.
    Failed { why: String, retry_in: Duration },
}

/// A line for the node's log.
pub fn render(event: &RenewalEvent) -> String {
    match event {
        RenewalEvent::Renewed {
            node_id,
            role,
            not_after,
        } => format!(
            "certificate of node {node_id} renewed as {}, valid until {}",
            crate::ca::error::role_name(*role),
            crate::ca::error::rfc3339(*not_after)
        ),
        RenewalEvent::Failed { why, retry_in } => {
            format!("certificate renewal failed ({why}); trying again in {retry_in:?}")
        }
    }
}

/// Where the managers are, asked before each renewal (an agent: the list it keeps; a
/// manager: its raft membership).
pub type ManagerList = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Why a renewal loop ended.
#[derive(Debug)]
pub enum RenewalEnd {
    /// The certificate expired: the node must join again (the error says so).
    Expired(CaError),
    /// A worker's renewal made it a manager (it was promoted): the node now starts its
    /// manager with this identity ([`super::Manager::promote`]), whose renewal loop
    /// takes over.
    Promoted(NodeIdentity),
}

/// A node's renewal loop.
pub struct Renewal {
    /// The identity the node's TLS configurations read.
    pub live: LiveIdentity,
    /// The data directory that keeps it.
    pub layout: Layout,
    /// The managers to ask.
    pub managers: ManagerList,
    /// The role the managers say the node has (from its session): when it is not the
    /// certificate's, the certificate is renewed at once.
    pub announced: Option<watch::Receiver<Option<NodeRole>>>,
}

impl Renewal {
    /// Renews before each expiry (and when the announced role changes) until dropped.
    /// Returns when the certificate expired, or when the node became a manager.
    pub async fn run(mut self, mut report: impl FnMut(RenewalEvent) + Send) -> RenewalEnd {
        let mut announced = self.announced.take();
        let mut tried_for: Option<NodeRole> = None;
        loop {
            let identity = self.live.get();
            let jitter = f64::from(random_byte()) / 255.0;
            let delay = renewal_delay(&identity, SystemTime::now(), jitter);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                role = role_change(&mut announced, identity.role(), tried_for) => {
                    tried_for = Some(role);
                }
            }
            match self.renew_once().await {
                Ok(renewed) => {
                    report(RenewalEvent::Renewed {
                        node_id: renewed.node_id().to_owned(),
                        role: renewed.role(),
                        not_after: renewed.peer().not_after,
                    });
                    if identity.role() == NodeRole::Worker && renewed.role() == NodeRole::Manager {
                        return RenewalEnd::Promoted(renewed);
                    }
                }
                Err(ServerError::Ca(expired @ CaError::Expired { .. })) => {
                    return RenewalEnd::Expired(expired);
                }
                Err(e) => {
                    // A renewal for an announced role that failed is tried again too.
                    tried_for = None;
                    let retry_in = retry_delay(&identity, SystemTime::now());
                    report(RenewalEvent::Failed {
                        why: e.to_string(),
                        retry_in,
                    });
                    tokio::time::sleep(retry_in).await;
                }
            }
        }
    }

    /// One renewal now: a new key, its certificate from the leader, kept and in use.
    pub async fn renew_once(&self) -> Result<NodeIdentity, ServerError> {
        let current = self.live.get();
        current.check(SystemTime::now())?;
        let managers = (self.managers)();
        if managers.is_empty() {
            return Err(ServerError::NoManagers);
        }
        // A connection of its own: the manager checks the certificate the connection was
        // made with, and a pooled one may have been made with an older certificate.
        let http = super::live_http_client(&self.live)?;
        let key = NodeKey::generate()?;
        let req = RenewRequest {
            csr_pem: key.csr()?,
        };
        let op = "renew the node certificate";
        let answer: RenewResponse =
            post_to_leader(&http, &managers, "/v1/certificates/renew", op, &req)
                .await
                .map_err(|e| call_error(&managers.join(","), op, e))?;
        let issued = IssuedCert {
            node_id: answer.node_id,
            role: answer.role,
            cert_pem: answer.cert_pem,
            ca_cert_pem: answer.ca_cert_pem,
            not_after: SystemTime::UNIX_EPOCH,
        };
        let renewed = NodeIdentity::new(key.clone(), &issued)?;
        if let Some(data_key) = &answer.data_key {
            // A manager's certificate comes with the cluster's data key; kept first, so a
            // directory with a manager's certificate has it.
            let keyring = crate::keyring::Keyring::from_base64(data_key).map_err(|source| {
                ServerError::DataKey {
                    path: self.layout.dir().to_owned(),
                    source,
                }
            })?;
            self.layout.save_data_key(&keyring)?;
        }
        self.layout.save_renewed(&key, &issued)?;
        if !answer.managers.is_empty() {
            self.layout.save_managers(&answer.managers)?;
        }
        self.live.replace(renewed.clone())?;
        Ok(renewed)
    }
}

/// Returns the announced role once it is neither `held` (the certificate's) nor
/// `tried` (the one a renewal was last made for); never without a watch.
async fn role_change(
    announced: &mut Option<watch::Receiver<Option<NodeRole>>>,
    held: NodeRole,
    tried: Option<NodeRole>,
) -> NodeRole {
    let Some(announced) = announced else {
        return std::future::pending().await;
    };
    loop {
        let role = *announced.borrow_and_update();
        if let Some(role) = role.filter(|r| *r != held && Some(*r) != tried) {
            return role;
        }
        if announced.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

fn random_byte() -> u8 {
    let mut byte = [0u8; 1];
    // Without randomness the renewal is merely not spread out.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    byte[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CaConfig, init};

    /// A worker identity valid for `validity` from `at`.
    fn identity(validity: Duration, at: SystemTime) -> NodeIdentity {
        let mut ca = init(
            "c1",
            &CaConfig {
                node_cert_validity: validity,
            },
            at,
        )
        .unwrap();
        let key = NodeKey::generate().unwrap();
        let token = ca.token(NodeRole::Worker).unwrap();
        let issued = ca.issue(&token, &key.csr().unwrap(), "n1", at).unwrap();
        NodeIdentity::new(key, &issued).unwrap()
    }

    #[test]
    fn renewal_is_due_between_half_and_two_thirds_of_the_lifetime() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let day = Duration::from_secs(24 * 3600);
        let node = identity(90 * day, at);
        assert_eq!(renewal_delay(&node, at, 0.0), 60 * day);
        assert_eq!(renewal_delay(&node, at, 1.0), 45 * day);
        assert_eq!(renewal_delay(&node, at, 7.0), 45 * day, "jitter is clamped");
        assert_eq!(renewal_delay(&node, at + 61 * day, 0.0), Duration::ZERO);
        // Seconds-long certificates are not due at once (issuance, not the back-dated
        // start, counts).
        let short = identity(Duration::from_secs(3), at);
        assert_eq!(renewal_delay(&short, at, 0.0), Duration::from_secs(2));
    }

    #[test]
    fn a_failed_renewal_is_retried_within_bounds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let long = identity(Duration::from_secs(90 * 24 * 3600), at);
        assert_eq!(retry_delay(&long, at), RETRY_MAX);
        let short = identity(Duration::from_secs(3), at);
        assert_eq!(retry_delay(&short, at), Duration::from_millis(300));
        assert_eq!(retry_delay(&short, at + Duration::from_secs(10)), RETRY_MIN);
    }

    #[test]
    fn events_render_for_the_log() {
        let line = render(&RenewalEvent::Failed {
            why: "no manager known".into(),
            retry_in: Duration::from_secs(1),
        });
        assert_eq!(
            line,
            "certificate renewal failed (no manager known); trying again in 1s"
        );
    }
}
