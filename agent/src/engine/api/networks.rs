//! `/v1/networks/...`: bridge and overlay networks, connecting containers, and an
//! overlay's peers.

use super::Engine;
use super::error::{Failure, invalid};
use crate::engine::network::service::NetError;
use api::error::{ApiError, ErrorCode};
use api::network::{
    Ingress, Network, NetworkAttach, NetworkConnect, NetworkCreate, NetworkDisconnect,
    OverlayPeers, ServiceEndpoints,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

type St = State<Arc<Engine>>;

impl From<NetError> for Failure {
    fn from(e: NetError) -> Failure {
        Failure(net_error(&e))
    }
}

/// The API error for a network failure.
pub fn net_error(e: &NetError) -> ApiError {
    let code = match e {
        NetError::NotFound(_) => ErrorCode::NotFound,
        NetError::Invalid { .. } | NetError::Address { .. } | NetError::Service { .. } => {
            ErrorCode::InvalidArgument
        }
        NetError::NameTaken(_) | NetError::Conflict(_) => ErrorCode::Conflict,
        NetError::Link(_)
        | NetError::Nft(_)
        | NetError::DnsRedirect { .. }
        | NetError::Io { .. }
        | NetError::State(_) => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|err| invalid(format!("{what}: {err}")))
}

/// Run blocking network work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure(ApiError::new(ErrorCode::Internal, e.to_string())))?
}

/// `GET /v1/networks`
pub async fn list(State(e): St) -> Json<Vec<Network>> {
    Json(e.networks.list())
}

/// `POST /v1/networks` with a [`NetworkCreate`].
pub async fn create(State(e): St, body: Bytes) -> Result<(StatusCode, Json<Network>), Failure> {
    let req: NetworkCreate = parse(&body, "create network: the body is not a network spec")?;
    let n = blocking(move || Ok(e.networks.create(&req)?)).await?;
    Ok((StatusCode::CREATED, Json(n)))
}

/// `GET /v1/networks/{id}`
pub async fn inspect(State(e): St, Path(id): Path<String>) -> Result<Json<Network>, Failure> {
    Ok(Json(e.networks.inspect(&id)?))
}

/// `DELETE /v1/networks/{id}`
pub async fn remove(State(e): St, Path(id): Path<String>) -> Result<StatusCode, Failure> {
    blocking(move || Ok(e.networks.remove(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/networks/{id}/connect` with a [`NetworkConnect`].
pub async fn connect(
    State(e): St,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, Failure> {
    let req: NetworkConnect = parse(&body, "connect: the body is not a connect request")?;
    let cid = e.containers.resolve(&req.container)?;
    blocking(move || {
        e.networks.connect(
            &id,
            &cid,
            NetworkAttach {
                network: id.clone(),
                aliases: req.aliases,
                ipv4: req.ipv4,
                mac: None,
            },
        )?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/networks/{id}/disconnect` with a [`NetworkDisconnect`].
pub async fn disconnect(
    State(e): St,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, Failure> {
    let req: NetworkDisconnect = parse(&body, "disconnect: the body is not a disconnect request")?;
    let cid = e.containers.resolve(&req.container)?;
    blocking(move || {
        e.networks.disconnect(&id, &cid)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/networks/{id}/peers` with [`OverlayPeers`]: the overlay's remote
/// endpoints, replaced as a whole.
pub async fn peers(
    State(e): St,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Network>, Failure> {
    let req: OverlayPeers = parse(&body, "peers: the body is not a peer list")?;
    let n = blocking(move || {
        let n = e.networks.set_peers(&id, &req)?;
        Ok(n)
    })
    .await?;
    Ok(Json(n))
}

/// `PUT /v1/networks/{id}/services` with [`ServiceEndpoints`]: the network's
/// services (names, virtual addresses, backends), replaced as a whole.
pub async fn services(
    State(e): St,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Network>, Failure> {
    let req: ServiceEndpoints = parse(&body, "services: the body is not a service list")?;
    let n = blocking(move || Ok(e.networks.set_services(&id, &req)?)).await?;
    Ok(Json(n))
}

/// `PUT /v1/networks/{id}/ingress` with an [`Ingress`]: the host's place on the
/// routing mesh this overlay carries and the ports it publishes, replaced as a whole.
pub async fn ingress(
    State(e): St,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Network>, Failure> {
    let req: Ingress = parse(&body, "ingress: the body is not a routing mesh")?;
    let n = blocking(move || Ok(e.networks.set_ingress(&id, &req)?)).await?;
    Ok(Json(n))
}
