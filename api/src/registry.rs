//! The cluster image registry's manifests as cluster objects: the `/v2` endpoint on
//! every manager keeps blobs on the managers' disks and manifests (small, and what
//! tags point at) in the replicated store, so every manager answers for every tag.

use crate::cluster::Meta;
use crate::is_default;
use serde::{Deserialize, Serialize};

/// The largest manifest the registry takes (as distribution's default: 4 MiB).
pub const MAX_MANIFEST: usize = 4 << 20;

/// A manifest pushed to the cluster registry, with the tags that point at it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Manifest {
    /// `<repository>@<digest>`.
    pub meta: Meta,
    /// The repository (`shop/web`).
    pub repository: String,
    /// `sha256:<hex>` of `content`.
    pub digest: String,
    /// The manifest's media type, as pushed (`Content-Type`).
    pub media_type: String,
    /// The manifest, byte for byte (JSON, so UTF-8).
    pub content: String,
    /// Tags of the repository that name this manifest.
    #[serde(skip_serializing_if = "is_default")]
    pub tags: Vec<String>,
}

impl Manifest {
    /// The object id of `digest` in `repository`.
    pub fn id(repository: &str, digest: &str) -> String {
        format!("{repository}@{digest}")
    }
}
