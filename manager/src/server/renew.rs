//! `POST /v1/certificates/renew`: a node authenticated by its current certificate gets
//! a new one for the key of its request. The CA checks the certificate again at the
//! time of the request (a connection may outlive it); the role comes from the node's
//! record in the store, so a demoted manager renews as a worker. Written through the
//! leader like a join (the CA's serial number changes).

use super::join::{CAS_TRIES, cluster_record_and};
use super::{Caller, PeerCert, Shared};
use crate::http::error::HttpError as Failure;
use crate::store::{ClusterRecord, Command, StoreError};
use api::error::ErrorCode;
use api::join::{RenewRequest, RenewResponse};
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use std::time::SystemTime;

/// `POST /v1/certificates/renew`.
pub(crate) async fn renew(
    State(shared): State<Arc<Shared>>,
    caller: Option<Extension<Caller>>,
    cert: Option<Extension<PeerCert>>,
    Json(req): Json<RenewRequest>,
) -> Result<Json<RenewResponse>, Failure> {
    let (Some(Extension(Caller::Node { id, .. })), Some(Extension(PeerCert(cert)))) =
        (caller, cert)
    else {
        return Err(Failure::new(
            ErrorCode::Unauthorized,
            "renewing a certificate needs the node's current certificate (mutual TLS); \
             a node without one joins with a token",
        ));
    };
    for _ in 0..CAS_TRIES {
        let (record, role) =
            cluster_record_and(&shared, |state| state.nodes.get(&id).map(|n| n.spec.role)).await?;
        let Some(role) = role else {
            return Err(Failure::new(
                ErrorCode::NotFound,
                format!(
                    "node {id} is not in the cluster (was it removed?): join it again with a \
                     token (`orch token worker`)"
                ),
            )
            .with("node", id));
        };
        let mut ca = record.ca.clone();
        let issued = ca.renew(&cert, role, &req.csr_pem, SystemTime::now())?;
        let write = Command::SetCluster {
            record: Box::new(ClusterRecord {
                ca,
                ..(*record).clone()
            }),
            expected_version: Some(record.version),
        };
        match shared.store.write(write).await {
            Ok(_) => {
                return Ok(Json(RenewResponse {
                    node_id: issued.node_id,
                    role: issued.role,
                    cert_pem: issued.cert_pem,
                    ca_cert_pem: issued.ca_cert_pem,
                    managers: shared.store.managers_leader_first(),
                    data_key: (issued.role == api::cluster::NodeRole::Manager)
                        .then(|| shared.keyring.to_base64()),
                }));
            }
            Err(StoreError::ClusterChanged(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Failure::new(
        ErrorCode::Unavailable,
        format!(
            "the cluster record kept changing while renewing node {id}'s certificate; try again"
        ),
    ))
}
