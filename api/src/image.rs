//! Images as the engine's API shows them: summaries, details, transfer progress and
//! the reports of removing, pruning, importing and loading.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An image as `orch image ls` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    /// The digest of the image's config (`sha256:...`), Docker's "image id".
    pub id: String,
    /// The digest of the image manifest.
    pub digest: String,
    /// Names pointing at it, in their familiar form (`busybox:1.36`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Bytes of the manifest's layers and config as stored (compressed).
    pub size: u64,
    /// When the image was made (RFC 3339), when the config says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `os/architecture[/variant]`.
    pub platform: String,
}

/// Everything about one image (`orch image inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDetail {
    /// The summary fields.
    #[serde(flatten)]
    pub summary: ImageSummary,
    /// The manifest's media type (OCI or Docker schema 2).
    pub media_type: String,
    /// How containers of this image run by default.
    pub config: ImageRunConfig,
    /// The layers, bottom first.
    pub layers: Vec<ImageLayer>,
}

/// The run settings an image carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `80/tcp`, `53/udp`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    /// Digest of the stored (usually compressed) blob.
    pub digest: String,
    /// Digest of the uncompressed tar, from the image config.
    pub diff_id: String,
    /// Stored size in bytes.
    pub size: u64,
    pub media_type: String,
}

/// What is happening to one blob during a pull or push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerPhase {
    /// Bytes are arriving.
    Downloading,
    /// Bytes are leaving.
    Uploading,
    /// The destination had it already.
    Exists,
    /// The registry mounted it from another repository.
    Mounted,
    /// All bytes moved and verified.
    Complete,
}

/// One line of a pull or push progress stream (newline-delimited JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferEvent {
    /// A blob changed phase or moved bytes.
    Layer {
        digest: String,
        phase: LayerPhase,
        current: u64,
        total: u64,
    },
    /// The operation finished; `digest` is the manifest now under `reference`.
    Done { reference: String, digest: String },
    /// The operation failed; nothing after this line.
    Error(ApiError),
}

/// One rlimit of a build's RUN steps, as Docker's `/build?ulimits=` takes it
/// (`-1` is unlimited).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuildUlimit {
    /// `nofile`, `nproc`, ...
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// One line of a build's progress stream (newline-delimited JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildEvent {
    /// A base image is not here and is being pulled; `transfer` lines follow.
    Pulling { reference: String },
    /// A blob of a base image moved (a [`TransferEvent::Layer`]).
    Transfer(TransferEvent),
    /// Step `index` of `total` (1-based, over the stages built) starts.
    Step {
        stage: String,
        index: usize,
        total: usize,
        instruction: String,
    },
    /// The step's layer came from the build cache.
    Cached { digest: String },
    /// The step made a new layer.
    Layer { digest: String, size: u64 },
    /// A line a RUN command wrote (stdout and stderr).
    Output { text: String },
    /// `--build-arg`s that no ARG of the built stages declares.
    UnusedBuildArgs { names: Vec<String> },
    /// The image got this name.
    Tagged { reference: String },
    /// The build finished: the image's manifest digest and id (config digest).
    Done { digest: String, id: String },
    /// The build failed; nothing after this line.
    Error(ApiError),
}

/// Credentials for several registries (header `X-Registry-Config` of a build,
/// base64url of this JSON): base images may come from any of them.
pub type RegistryConfig = BTreeMap<String, RegistryAuth>;

/// The header that carries [`RegistryConfig`] with a build.
pub const REGISTRY_CONFIG_HEADER: &str = "x-registry-config";

/// What `orch image rm` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveReport {
    /// Names removed.
    pub untagged: Vec<String>,
    /// Manifest digests no name points at any more.
    pub deleted: Vec<String>,
}

/// What `orch image prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Names removed (with `all`).
    pub untagged: Vec<String>,
    /// Blobs deleted from the content store.
    pub blobs: Vec<String>,
    /// Unpacked layer snapshots deleted (chain ids).
    pub snapshots: Vec<String>,
    /// Bytes freed on disk (blobs and snapshots).
    pub reclaimed: u64,
}

/// An image that arrived through `orch image load` or `import`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedImage {
    /// The name it was tagged with, if the archive named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Its manifest digest.
    pub digest: String,
}

/// Credentials for one registry, sent by the CLI with pulls and pushes
/// (header `X-Registry-Auth`, base64url of this JSON) and checked by `login`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

/// The header that carries registry credentials with a pull or push.
pub const REGISTRY_AUTH_HEADER: &str = "x-registry-auth";

/// base64url (no padding) of `value`'s JSON: how credentials travel in headers.
pub fn to_header<T: Serialize>(value: &T) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(value).unwrap_or_default())
}

/// The value a [`to_header`] string carries; `what` names the header in errors.
pub fn from_header<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.trim().trim_end_matches('='))
        .map_err(|e| format!("{what} is not base64url: {e}"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{what} does not hold the expected JSON: {e}"))
}

/// `POST /v1/auth`: check credentials against a registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// host[:port]; `docker.io` for Docker Hub.
    pub registry: String,
    #[serde(flatten)]
    pub auth: RegistryAuth,
}

/// `GET /v1/version`: who answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineVersion {
    /// orch's version.
    pub version: String,
    /// `linux/amd64`, ...
    pub platform: String,
    /// Where the engine keeps its state.
    pub data_dir: String,
}
