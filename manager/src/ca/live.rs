//! [`LiveIdentity`]: a node's identity that can be replaced while TLS configurations
//! use it. The client and server configurations of [`super::tls`] ask it for the
//! certificate at each handshake, so a renewed certificate is used from the next
//! connection on, without rebuilding clients or restarting servers; connections made
//! before keep the certificate they were made with.

use super::error::CaError;
use super::identity::NodeIdentity;
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

/// What one identity is at one time: the identity and its certificate chains as rustls
/// presents them.
struct Current {
    identity: NodeIdentity,
    /// The node certificate alone (what a client presents).
    client: Arc<CertifiedKey>,
    /// The node certificate and the CA's (joining nodes pin the CA from the chain).
    server: Arc<CertifiedKey>,
}

impl Current {
    fn new(identity: NodeIdentity, provider: &CryptoProvider) -> Result<Current, CaError> {
        let key = identity.key().key_pair()?;
        let load = |chain| {
            let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            CertifiedKey::from_der(chain, der, provider)
                .map(Arc::new)
                .map_err(|source| CaError::Tls { source })
        };
        Ok(Current {
            client: load(vec![identity.cert().clone()])?,
            server: load(vec![identity.cert().clone(), identity.ca_cert().clone()])?,
            identity,
        })
    }
}

/// A node identity shared by its TLS configurations and the one who renews it.
/// Cloning shares it.
#[derive(Clone)]
pub struct LiveIdentity {
    current: Arc<RwLock<Arc<Current>>>,
    provider: Arc<CryptoProvider>,
}

impl LiveIdentity {
    /// Starts with `identity`.
    pub fn new(identity: NodeIdentity) -> Result<LiveIdentity, CaError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = Current::new(identity, &provider)?;
        Ok(LiveIdentity {
            current: Arc::new(RwLock::new(Arc::new(current))),
            provider,
        })
    }

    /// The identity now.
    pub fn get(&self) -> NodeIdentity {
        self.now().identity.clone()
    }

    /// Uses `identity` from the next handshake on. It must be the same node of the same
    /// cluster CA (the verifiers were built for that CA).
    pub fn replace(&self, identity: NodeIdentity) -> Result<(), CaError> {
        let old = self.now();
        if identity.node_id() != old.identity.node_id()
            || identity.ca_cert() != old.identity.ca_cert()
        {
            return Err(CaError::NotSameNode {
                node: old.identity.node_id().to_owned(),
                other: identity.node_id().to_owned(),
            });
        }
        let next = Arc::new(Current::new(identity, &self.provider)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }

    fn now(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for LiveIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LiveIdentity")
            .field(&self.now().identity)
            .finish()
    }
}

impl ResolvesClientCert for LiveIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.now().client.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ResolvesServerCert for LiveIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.now().server.clone())
    }
}
