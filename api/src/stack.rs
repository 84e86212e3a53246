//! A stack: the desired state a stack file describes.

use crate::service::ServiceSpec;
use crate::{Value, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A whole stack in canonical long form; `orch config` prints exactly this.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct StackSpec {
    /// Project name: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
    pub name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub services: BTreeMap<String, ServiceSpec>,
    #[serde(skip_serializing_if = "is_default")]
    pub networks: BTreeMap<String, NetworkSpec>,
    #[serde(skip_serializing_if = "is_default")]
    pub volumes: BTreeMap<String, VolumeSpec>,
    #[serde(skip_serializing_if = "is_default")]
    pub secrets: BTreeMap<String, FileObjectSpec>,
    #[serde(skip_serializing_if = "is_default")]
    pub configs: BTreeMap<String, FileObjectSpec>,
    /// AI models for services (`models:`), kept as written.
    #[serde(skip_serializing_if = "is_default")]
    pub models: BTreeMap<String, Value>,
    /// Top-level `x-*` keys, kept as written.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// A network of the stack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NetworkSpec {
    /// Name on the cluster: `<stack>_<key>` unless set or external.
    pub name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub ipam: Option<Ipam>,
    #[serde(skip_serializing_if = "is_default")]
    pub external: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub internal: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub attachable: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub enable_ipv4: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub enable_ipv6: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// Address management of a network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Ipam {
    #[serde(skip_serializing_if = "is_default")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub config: Vec<IpamPool>,
    #[serde(skip_serializing_if = "is_default")]
    pub options: BTreeMap<String, String>,
}

/// One address pool of a network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct IpamPool {
    #[serde(skip_serializing_if = "is_default")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub ip_range: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub aux_addresses: BTreeMap<String, String>,
}

/// A named volume of the stack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct VolumeSpec {
    /// Name on the node: `<stack>_<key>` unless set or external.
    pub name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub external: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// A secret or config of the stack: its content comes from a file, an environment
/// variable, inline text (configs) or already exists (external).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FileObjectSpec {
    pub name: String,
    /// Absolute path after loading.
    #[serde(skip_serializing_if = "is_default")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub external: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub template_driver: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    /// Set by the managers on a secret as they take the stack: its `content` sealed
    /// with the cluster's data key (`content` is then removed).
    #[serde(skip_serializing_if = "is_default")]
    pub sealed: Option<crate::secret::SealedValue>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}
