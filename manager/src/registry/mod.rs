//! The cluster image registry: the distribution API (`/v2`, what `docker push` and
//! `orch image push` speak) on every manager's port, so images built or imported on
//! one machine reach every node without a registry of their own.
//!
//! - Blobs (layers, image configs) live on the disk of the manager that took them
//!   ([`blobs`]); a manager asked for a blob it lacks fetches it from its peer
//!   managers, checks its digest and keeps it.
//! - Manifests and the tags that name them are [`Manifest`](api::registry::Manifest)
//!   objects in the replicated store, so every manager answers for every tag; a
//!   manifest push is forwarded to the leader, which first makes sure it holds every
//!   blob the manifest names; manifest and tag reads go to the leader too, so a pull
//!   right after a push finds it.
//! - Who may: managers, the local socket and API token holders (a bearer token, or
//!   Basic with the token as the password, as `orch login` sends it) push and pull;
//!   worker nodes (their cluster certificate) pull only.

pub mod blobs;
pub mod error;
mod handlers;
pub mod path;

use crate::http::ApiState;
use crate::http::auth::Caller;
use crate::store::Store;
use api::cluster::NodeRole;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use blobs::BlobStore;
pub use error::RegistryError;
use std::path::Path;
use std::sync::Arc;

/// A request between managers for a blob they hold themselves (no further fetch).
pub const LOCAL_ONLY: &str = "x-orch-registry-local";

/// One manager's registry.
pub struct Registry {
    store: Arc<Store>,
    api: Arc<ApiState>,
    blobs: BlobStore,
    /// Reaches peer managers (the manager's mTLS client) and the scheme they speak.
    peers: Option<(reqwest::Client, String)>,
}

impl Registry {
    /// A registry keeping blobs under `dir`; `peers` reaches the other managers.
    pub fn open(
        dir: &Path,
        api: Arc<ApiState>,
        peers: Option<(reqwest::Client, String)>,
    ) -> Result<Arc<Registry>, RegistryError> {
        Ok(Arc::new(Registry {
            store: api.store().clone(),
            api,
            blobs: BlobStore::open(dir)?,
            peers,
        }))
    }
}

/// The `/v2` routes.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2", any(handlers::handle))
        .route("/v2/", any(handlers::handle))
        .route("/v2/{*rest}", any(handlers::handle))
        .layer(from_fn_with_state(registry.clone(), forward_writes))
        .layer(from_fn_with_state(registry.clone(), authorize))
        .with_state(registry)
}

/// Whether `caller` may make a request with `method`: pulls need any cluster
/// identity, pushes a manager's, the local socket's or an API token.
fn access(
    caller: &Caller,
    authorization: Option<&str>,
    method: &Method,
    api: &ApiState,
) -> Result<(), RegistryError> {
    let pull = method == Method::GET || method == Method::HEAD;
    match caller {
        Caller::Local
        | Caller::Node {
            role: NodeRole::Manager,
            ..
        } => Ok(()),
        Caller::Node { .. } if pull => Ok(()),
        Caller::Node { id, .. } => Err(RegistryError::Denied(format!(
            "node {id} is a worker: workers pull from the cluster registry, they do not push"
        ))),
        Caller::Anonymous => {
            let token = authorization.and_then(token_of);
            match token {
                Some(token) if api.tokens().accepts(&token) => Ok(()),
                Some(_) => Err(RegistryError::Unauthorized(
                    "the token was refused: log in with the cluster's API token (`orch login HOST:PORT`)".into(),
                )),
                None => Err(RegistryError::Unauthorized(
                    "no credentials: the cluster registry takes a cluster certificate, `Authorization: Bearer <API token>`, or Basic with the API token as the password".into(),
                )),
            }
        }
    }
}

/// The token of `Bearer TOKEN`, or the password of `Basic base64(USER:TOKEN)`.
fn token_of(authorization: &str) -> Option<String> {
    let (scheme, value) = authorization.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.trim().to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = data_encoding::BASE64.decode(value.trim().as_bytes()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_owned())
}

async fn authorize(
    State(registry): State<Arc<Registry>>,
    request: Request,
    next: Next,
) -> Response {
    let (caller, authorization) = crate::http::auth::credentials(&request);
    let authorization = authorization.and_then(|v| v.to_str().ok());
    match access(&caller, authorization, request.method(), &registry.api) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Manifests and tags are the leader's to answer (a write is committed there, and a
/// read there sees every committed push, which a follower may not have applied
/// yet); blobs and uploads are served here.
async fn forward_writes(
    State(registry): State<Arc<Registry>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let leaders = path
        .strip_prefix("/v2/")
        .and_then(|rest| path::parse(rest).ok())
        .is_some_and(|r| matches!(r, path::Route::Manifest { .. } | path::Route::Tags { .. }));
    if leaders {
        let api = registry.api.clone();
        return crate::http::forward::forward(State(api), request, next).await;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_bearer_or_basic_passwords() {
        assert_eq!(token_of("Bearer abc").as_deref(), Some("abc"));
        let basic = data_encoding::BASE64.encode(b"orch:s3cret:x");
        assert_eq!(
            token_of(&format!("Basic {basic}")).as_deref(),
            Some("s3cret:x")
        );
        assert_eq!(token_of("Basic !!!"), None);
        assert_eq!(token_of("Digest x"), None);
    }
}
