//! The store's word on the node behind a certificate, checked at every request (a TLS
//! connection outlives the handshake that checked it): a removed node is refused with
//! 403 even on a connection it opened before its removal, and a manager that was
//! demoted counts as a worker, whatever its certificate says.

use super::Caller;
use crate::http::error::HttpError;
use crate::store::Store;
use api::cluster::NodeRole;
use api::error::ErrorCode;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the store says of a certified caller.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// The node was removed from the cluster.
    Removed,
    /// The node exists with this role.
    Role(NodeRole),
    /// The store knows nothing of the node (it is still joining): its certificate holds.
    Unknown,
}

fn standing(store: &Store, id: &str) -> Standing {
    store
        .view(|state| {
            if state.cluster.as_ref().is_some_and(|c| c.ca.is_removed(id)) {
                return Standing::Removed;
            }
            state
                .nodes
                .get(id)
                .map_or(Standing::Unknown, |n| Standing::Role(n.spec.role))
        })
        .value
}

/// The middleware: refuses removed nodes, demotes callers whose node was demoted.
pub(crate) async fn check(
    State(store): State<Arc<Store>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(Caller::Node { id, role }) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    match standing(&store, &id) {
        Standing::Removed => HttpError::new(
            ErrorCode::PermissionDenied,
            format!(
                "node {id} was removed from the cluster and its certificate is revoked: \
                 stop its agent, or join it again with a token (`orch token worker`)"
            ),
        )
        .with("node", id)
        .into_response(),
        Standing::Role(NodeRole::Worker) if role == NodeRole::Manager => {
            req.extensions_mut().insert(Caller::Node {
                id,
                role: NodeRole::Worker,
            });
            next.run(req).await
        }
        Standing::Role(_) | Standing::Unknown => next.run(req).await,
    }
}
