//! A service of a stack, in the compose model's canonical long form.

use crate::deploy::DeploySpec;
use crate::units::{Bytes, Duration, FileMode};
use crate::{Value, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Environment: a variable set to nothing (`KEY` with no value anywhere) is `None`.
pub type Environment = BTreeMap<String, Option<String>>;

/// One service: the template of its tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ServiceSpec {
    #[serde(skip_serializing_if = "is_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub attach: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub blkio_config: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub build: Option<BuildSpec>,
    #[serde(skip_serializing_if = "is_default")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub cgroup_parent: Option<String>,
    /// Replaces the image's CMD; `Some(vec![])` clears it.
    #[serde(skip_serializing_if = "is_default")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "is_default")]
    pub configs: Vec<FileReference>,
    #[serde(skip_serializing_if = "is_default")]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpu_count: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpu_period: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpu_quota: Option<i64>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpu_rt_period: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpu_rt_runtime: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpu_shares: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "is_default")]
    pub cpuset: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub credential_spec: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub depends_on: BTreeMap<String, DependsOn>,
    #[serde(skip_serializing_if = "is_default")]
    pub deploy: Option<DeploySpec>,
    #[serde(skip_serializing_if = "is_default")]
    pub develop: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub devices: Vec<DeviceMapping>,
    #[serde(skip_serializing_if = "is_default")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub dns_opt: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub domainname: Option<String>,
    /// Replaces the image's ENTRYPOINT; `Some(vec![])` clears it.
    #[serde(skip_serializing_if = "is_default")]
    pub entrypoint: Option<Vec<String>>,
    /// Final environment: `env_file` contents merged under `environment`.
    #[serde(skip_serializing_if = "is_default")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::nullable_string_map))]
    pub environment: Environment,
    #[serde(skip_serializing_if = "is_default")]
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub external_links: Vec<String>,
    /// Host name -> addresses, written to the container's /etc/hosts.
    #[serde(skip_serializing_if = "is_default")]
    pub extra_hosts: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "is_default")]
    pub gpus: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub group_add: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "is_default")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub ipc: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub isolation: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub links: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub logging: Option<Logging>,
    #[serde(skip_serializing_if = "is_default")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub mem_limit: Option<Bytes>,
    #[serde(skip_serializing_if = "is_default")]
    pub mem_reservation: Option<Bytes>,
    #[serde(skip_serializing_if = "is_default")]
    pub mem_swappiness: Option<u64>,
    /// Memory plus swap; `-1` means unlimited swap.
    #[serde(skip_serializing_if = "is_default")]
    pub memswap_limit: Option<i64>,
    #[serde(skip_serializing_if = "is_default")]
    pub models: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub network_mode: Option<String>,
    /// Networks the service joins; `None` means "attached with defaults".
    #[serde(skip_serializing_if = "is_default")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::service_networks))]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    #[serde(skip_serializing_if = "is_default")]
    pub oom_kill_disable: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub oom_score_adj: Option<i64>,
    #[serde(skip_serializing_if = "is_default")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "is_default")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub ports: Vec<PortSpec>,
    #[serde(skip_serializing_if = "is_default")]
    pub post_start: Vec<ServiceHook>,
    #[serde(skip_serializing_if = "is_default")]
    pub pre_stop: Vec<ServiceHook>,
    #[serde(skip_serializing_if = "is_default")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub profiles: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub provider: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub pull_policy: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub pull_refresh_after: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub read_only: Option<bool>,
    /// `no`, `always`, `on-failure[:N]` or `unless-stopped`.
    #[serde(skip_serializing_if = "is_default")]
    pub restart: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub runtime: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub scale: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub secrets: Vec<FileReference>,
    #[serde(skip_serializing_if = "is_default")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub shm_size: Option<Bytes>,
    #[serde(skip_serializing_if = "is_default")]
    pub stdin_open: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub stop_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub storage_opt: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub tty: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(skip_serializing_if = "is_default")]
    pub use_api_socket: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub userns_mode: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub uts: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub volumes: Vec<ServiceVolume>,
    #[serde(skip_serializing_if = "is_default")]
    pub volumes_from: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub working_dir: Option<String>,
    /// `x-*` keys of the service, kept as written.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// `build:` of a service; `context` is absolute (or a URL) after loading.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct BuildSpec {
    #[serde(skip_serializing_if = "is_default")]
    pub additional_contexts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::nullable_string_map))]
    pub args: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "is_default")]
    pub cache_from: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub cache_to: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub context: String,
    #[serde(skip_serializing_if = "is_default")]
    pub dockerfile: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub dockerfile_inline: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub entitlements: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub extra_hosts: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "is_default")]
    pub isolation: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub no_cache: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub platforms: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub provenance: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub pull: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub sbom: Option<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub secrets: Vec<FileReference>,
    #[serde(skip_serializing_if = "is_default")]
    pub shm_size: Option<Bytes>,
    #[serde(skip_serializing_if = "is_default")]
    pub ssh: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// When a dependency counts as ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DependsOnCondition {
    /// The dependency's tasks have started.
    #[default]
    ServiceStarted,
    /// The dependency's tasks pass their health check.
    ServiceHealthy,
    /// The dependency ran to completion with exit status 0.
    ServiceCompletedSuccessfully,
}

/// One `depends_on` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DependsOn {
    pub condition: DependsOnCondition,
    /// Restart this service when the dependency is updated.
    #[serde(skip_serializing_if = "is_default")]
    pub restart: bool,
    /// A missing dependency is an error (`true`) or only a warning.
    pub required: bool,
}

impl Default for DependsOn {
    fn default() -> Self {
        DependsOn {
            condition: DependsOnCondition::ServiceStarted,
            restart: false,
            required: true,
        }
    }
}

/// A device node passed into the container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DeviceMapping {
    pub source: String,
    pub target: String,
    /// cgroup permissions: a subset of `rwm`.
    pub permissions: String,
}

/// A health check; `test` is `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "cmd"]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Healthcheck {
    #[serde(skip_serializing_if = "is_default")]
    pub disable: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub interval: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub retries: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub start_interval: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub start_period: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub timeout: Option<Duration>,
}

/// Log driver and its options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Logging {
    #[serde(skip_serializing_if = "is_default")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub options: BTreeMap<String, String>,
}

/// How a service attaches to one network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ServiceNetwork {
    #[serde(skip_serializing_if = "is_default")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub gw_priority: Option<i64>,
    #[serde(skip_serializing_if = "is_default")]
    pub interface_name: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub link_local_ips: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub priority: Option<i64>,
}

/// Transport protocol of a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

/// How a published port is exposed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PortMode {
    /// Through the cluster's routing mesh, on every node.
    #[default]
    Ingress,
    /// Only on the node where the task runs.
    Host,
}

/// A port of a service, in long syntax.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PortSpec {
    #[serde(skip_serializing_if = "is_default")]
    pub name: Option<String>,
    pub mode: PortMode,
    #[serde(skip_serializing_if = "is_default")]
    pub host_ip: Option<String>,
    pub target: u16,
    /// Host port or range (`8080`, `8000-8010`); `None` lets the system pick.
    #[serde(skip_serializing_if = "is_default")]
    pub published: Option<String>,
    pub protocol: Protocol,
    #[serde(skip_serializing_if = "is_default")]
    pub app_protocol: Option<String>,
}

impl PortSpec {
    /// The port the cluster's routing mesh publishes on every node: a tcp or udp
    /// `ingress` port with one fixed published port and no host address. Other
    /// ports (host mode, a range, none given, a host address, sctp) are host ports
    /// of the node running the task.
    pub fn mesh_port(&self) -> Option<u16> {
        if self.mode != PortMode::Ingress
            || self.host_ip.is_some()
            || self.protocol == Protocol::Sctp
        {
            return None;
        }
        self.published
            .as_deref()?
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
    }

    /// The published port or range (`8080`, `8000-8010`) as its lowest and highest
    /// port; `None` when none is published or it does not read as ports.
    pub fn published_range(&self) -> Option<(u16, u16)> {
        let published = self.published.as_deref()?.trim();
        let number = |text: &str| text.trim().parse::<u16>().ok();
        let (low, high) = match published.split_once('-') {
            Some((low, high)) => (number(low)?, number(high)?),
            None => (number(published)?, number(published)?),
        };
        (low != 0 && low <= high).then_some((low, high))
    }
}

/// A lifecycle hook command.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ServiceHook {
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::nullable_string_map))]
    pub environment: Environment,
}

/// A secret or config made visible inside the container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FileReference {
    pub source: String,
    #[serde(skip_serializing_if = "is_default")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub mode: Option<FileMode>,
}

/// Soft and hard limit of one resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

/// Kind of a service mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A named or anonymous volume.
    #[default]
    Volume,
    /// A host path.
    Bind,
    /// A memory-backed file system.
    Tmpfs,
    /// A Windows named pipe (accepted, refused by Linux agents).
    Npipe,
    /// A cluster volume.
    Cluster,
    /// An image's content, read-only.
    Image,
}

/// A mount of a service, in long syntax.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Volume name, absolute host path or image; `None` for anonymous volumes and tmpfs.
    #[serde(skip_serializing_if = "is_default")]
    pub source: Option<String>,
    pub target: String,
    #[serde(skip_serializing_if = "is_default")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub consistency: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub bind: Option<BindOptions>,
    #[serde(skip_serializing_if = "is_default")]
    pub volume: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "is_default")]
    pub tmpfs: Option<TmpfsOptions>,
    #[serde(skip_serializing_if = "is_default")]
    pub image: Option<ImageMountOptions>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// Options of a bind mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct BindOptions {
    #[serde(skip_serializing_if = "is_default")]
    pub propagation: Option<String>,
    /// Create the host path when missing (short syntax does).
    #[serde(skip_serializing_if = "is_default")]
    pub create_host_path: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub selinux: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub recursive: Option<String>,
}

/// Options of a volume mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct VolumeOptions {
    #[serde(skip_serializing_if = "is_default")]
    pub nocopy: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub subpath: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
}

/// Options of a tmpfs mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TmpfsOptions {
    #[serde(skip_serializing_if = "is_default")]
    pub size: Option<Bytes>,
    #[serde(skip_serializing_if = "is_default")]
    pub mode: Option<FileMode>,
}

/// Options of an image mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ImageMountOptions {
    #[serde(skip_serializing_if = "is_default")]
    pub subpath: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_fixed_tcp_or_udp_ingress_port_is_a_mesh_port() {
        let port = |mode, published: Option<&str>, protocol, host_ip: Option<&str>| PortSpec {
            mode,
            published: published.map(str::to_owned),
            protocol,
            host_ip: host_ip.map(str::to_owned),
            target: 80,
            ..PortSpec::default()
        };
        let ingress = PortMode::Ingress;
        assert_eq!(
            port(ingress, Some("8080"), Protocol::Tcp, None).mesh_port(),
            Some(8080)
        );
        assert_eq!(
            port(ingress, Some("53"), Protocol::Udp, None).mesh_port(),
            Some(53)
        );
        for host_port in [
            port(PortMode::Host, Some("8080"), Protocol::Tcp, None),
            port(ingress, Some("8000-8010"), Protocol::Tcp, None),
            port(ingress, None, Protocol::Tcp, None),
            port(ingress, Some("0"), Protocol::Tcp, None),
            port(ingress, Some("8080"), Protocol::Sctp, None),
            port(ingress, Some("8080"), Protocol::Tcp, Some("127.0.0.1")),
        ] {
            assert_eq!(host_port.mesh_port(), None, "{host_port:?}");
        }
    }

    #[test]
    fn a_published_port_or_range_reads_as_its_bounds() {
        let range = |published: Option<&str>| {
            PortSpec {
                published: published.map(str::to_owned),
                ..PortSpec::default()
            }
            .published_range()
        };
        assert_eq!(range(Some("8080")), Some((8080, 8080)));
        assert_eq!(range(Some(" 8000 - 8010 ")), Some((8000, 8010)));
        for bad in [
            None,
            Some("0"),
            Some("9-8"),
            Some("x"),
            Some("80-"),
            Some("70000"),
        ] {
            assert_eq!(range(bad), None, "{bad:?}");
        }
    }
}
