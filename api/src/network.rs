//! Networks as the engine's API shows them: what to create, what one looks like, and
//! how a container joins one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /v1/networks` (`orch network create`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkCreate {
    pub name: String,
    /// `bridge` (default) or `overlay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// IPv4 subnet in CIDR form (default: a free /24 out of the engine's pools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// The gateway (default: the subnet's first address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// No way out: no outbound NAT, no default route, no published ports.
    pub internal: bool,
    /// Containers may be connected by hand (overlay networks; bridges always are).
    pub attachable: bool,
    /// Link MTU (default 1500; overlay: 1450 for the vxlan header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The vxlan network identifier of an overlay (default: derived from the id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A network (`orch network inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// `bridge` or `overlay`.
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    pub attachable: bool,
    pub mtu: u32,
    /// The vxlan network identifier (overlay networks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// The bridge device on the host (or in the overlay's namespace).
    pub bridge: String,
    /// RFC 3339.
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Containers on it.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Remote endpoints of an overlay, as last set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<OverlayPeer>,
    /// Services with names and load balancing on it, as last set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEndpoint>,
}

/// A container's place on a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The container's id.
    pub container: String,
    /// The container's name.
    pub name: String,
    /// Its address with the prefix length (`172.18.0.2/24`).
    pub ipv4: String,
    pub mac: String,
    /// More names it answers to on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// How a container joins one network (`--network`, `--network-alias`, `--ip`,
/// `--mac-address`, or `POST /v1/networks/{id}/connect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkAttach {
    /// The network's name or id.
    pub network: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// A fixed address in the network's subnet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    /// A fixed MAC address (`02:42:ac:11:00:02`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// `POST /v1/networks/{id}/connect`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConnect {
    /// The container's name or id.
    pub container: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
}

/// `POST /v1/networks/{id}/disconnect`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkDisconnect {
    /// The container's name or id.
    pub container: String,
}

/// An endpoint of an overlay network on another host: where to send frames for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayPeer {
    /// The remote host's underlay address (its vxlan tunnel end).
    pub host: String,
    /// The remote endpoint's overlay address (no prefix).
    pub ipv4: String,
    pub mac: String,
    /// Names it answers to in DNS (its container name, service name, aliases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// `PUT /v1/networks/{id}/peers`: the whole list of an overlay's remote endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OverlayPeers {
    /// This host's underlay address for the tunnel (default: kept from before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    pub peers: Vec<OverlayPeer>,
}

/// A published port (`-p [IP:][HOST:]CONTAINER[/PROTO]`), as inspect shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortBinding {
    /// The host address it listens on (`0.0.0.0`: every address).
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// How a service's name leads to its tasks (compose's `endpoint_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointMode {
    /// One virtual address; new connections to it spread over the tasks.
    #[default]
    Vip,
    /// The name answers every task's address, rotated (DNS round-robin).
    Dnsrr,
}

/// One service on a network: its names and the tasks behind them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEndpoint {
    /// The service's name (`web`); `tasks.NAME` answers every backend.
    pub name: String,
    /// More names for the same service (`web.stack`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub mode: EndpointMode,
    /// The virtual address (`vip` mode only), in the network's subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<std::net::Ipv4Addr>,
    /// The addresses of the service's healthy tasks on this network.
    #[serde(default)]
    pub backends: Vec<std::net::Ipv4Addr>,
}

/// `PUT /v1/networks/{id}/services`: every service of a network, replaced as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceEndpoints {
    pub services: Vec<ServiceEndpoint>,
}

/// The id of the cluster's routing-mesh network: every node joins it, and every task
/// of a service with [mesh ports](crate::service::PortSpec::mesh_port) has an address
/// on it (swarm's `ingress`).
pub const INGRESS_NETWORK: &str = "ingress";

/// One published port of the routing mesh: connections to `published` on any
/// address of the node go to `target` of one of `backends`, picked at random.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressPort {
    /// The service that publishes it (`STACK_web`), named in errors.
    pub service: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub published: u16,
    pub target: u16,
    /// The mesh addresses of the service's running tasks, on every node (none: the
    /// port is refused).
    #[serde(default)]
    pub backends: Vec<std::net::Ipv4Addr>,
}

/// `PUT /v1/networks/{id}/ingress`: make an overlay the node's routing mesh — the
/// host joins it at `address` and publishes `ports` — as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ingress {
    /// The host's own address on the overlay, with its prefix (`10.0.0.2/24`).
    pub address: String,
    pub ports: Vec<IngressPort>,
}
