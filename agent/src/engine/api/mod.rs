//! The engine's local HTTP API (served on a root-only unix socket): the door the
//! CLI uses. One file per resource; errors are mapped in [`error`].
//!
//! - [`body`]: uploads spooled to files, streamed downloads, NDJSON event streams.
//! - [`build`]: the `/v1/build` endpoint.
//! - [`containers`]: the `/v1/containers/...` endpoints.
//! - [`error`]: engine errors as `{"error": {...}}` with their HTTP status.
//! - [`exec`]: the exec endpoint: an upgraded connection carrying frames.
//! - [`images`]: `/v1/images/...` and `/v1/auth`.
//! - [`networks`]: the `/v1/networks/...` endpoints.
//! - [`params`]: query parameters.
//! - [`volumes`]: the `/v1/volumes/...` endpoints.

pub mod body;
pub mod build;
pub mod containers;
pub mod error;
pub mod exec;
pub mod images;
pub mod networks;
pub mod params;
pub mod volumes;

use crate::engine::image::service::ImageService;
use crate::engine::network::service::NetworkService;
use crate::engine::runtime::service::ContainerService;
use api::error::{ApiError, ErrorCode};
use api::image::EngineVersion;
use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::path::PathBuf;
use std::sync::Arc;

/// What every handler can reach.
pub struct Engine {
    /// Images, content and snapshots.
    pub images: Arc<ImageService>,
    /// Containers.
    pub containers: Arc<ContainerService>,
    /// Networks.
    pub networks: Arc<NetworkService>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Where uploads are spooled (same file system as the content store).
    pub scratch: PathBuf,
}

/// The routes of the engine API.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/v1/version", get(version))
        .route("/v1/images", get(images::list).delete(images::remove))
        .route("/v1/images/prune", post(images::prune))
        .route("/v1/images/load", post(images::load))
        .route("/v1/images/save", get(images::save))
        .route("/v1/images/inspect", get(images::inspect))
        .route("/v1/images/pull", post(images::pull))
        .route("/v1/images/push", post(images::push))
        .route("/v1/images/tag", post(images::tag))
        .route("/v1/images/import", post(images::import))
        .route("/v1/auth", post(images::login))
        .route("/v1/build", post(build::build))
        .route(
            "/v1/containers",
            get(containers::list).post(containers::create),
        )
        .route(
            "/v1/containers/{id}",
            get(containers::inspect).delete(containers::remove),
        )
        .route("/v1/containers/{id}/start", post(containers::start))
        .route("/v1/containers/{id}/stop", post(containers::stop))
        .route("/v1/containers/{id}/kill", post(containers::kill))
        .route("/v1/containers/{id}/wait", post(containers::wait))
        .route("/v1/containers/{id}/logs", get(containers::logs))
        .route("/v1/containers/{id}/exec", post(exec::exec))
        .route("/v1/containers/{id}/attach", post(exec::attach))
        .route("/v1/containers/{id}/pause", post(containers::pause))
        .route("/v1/containers/{id}/unpause", post(containers::unpause))
        .route("/v1/containers/{id}/stats", get(containers::stats))
        .route("/v1/volumes", get(volumes::list).post(volumes::create))
        .route("/v1/volumes/prune", post(volumes::prune))
        .route(
            "/v1/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/v1/networks", get(networks::list).post(networks::create))
        .route(
            "/v1/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/v1/networks/{id}/connect", post(networks::connect))
        .route("/v1/networks/{id}/disconnect", post(networks::disconnect))
        .route("/v1/networks/{id}/peers", put(networks::peers))
        .route("/v1/networks/{id}/ingress", put(networks::ingress))
        .route("/v1/networks/{id}/services", put(networks::services))
        .fallback(not_found)
        .with_state(engine)
}

async fn version(State(e): State<Arc<Engine>>) -> Json<EngineVersion> {
    Json(EngineVersion {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        platform: format!("{}/{}", std::env::consts::OS, go_arch()),
        data_dir: e.data_dir.display().to_string(),
    })
}

async fn not_found(uri: axum::http::Uri) -> error::Failure {
    error::Failure(ApiError::new(
        ErrorCode::NotFound,
        format!("no such endpoint: {}", uri.path()),
    ))
}

/// This machine's architecture in OCI's words (`amd64`, `arm64`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}
