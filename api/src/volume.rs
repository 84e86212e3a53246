//! Named volumes as the engine's API shows them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /v1/volumes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeCreate {
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A named volume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    /// Where its files are on the host.
    pub mountpoint: String,
    /// RFC 3339.
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Containers that mount it (ids).
    #[serde(default)]
    pub used_by: Vec<String>,
}

/// What `orch volume prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumePrune {
    pub removed: Vec<String>,
    /// Bytes of files removed.
    pub reclaimed: u64,
}
