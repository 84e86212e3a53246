//! The engine's networks and each container's place on them, kept in one state file
//! (`<data>/networks/state.json`, replaced atomically). This module holds the state's
//! records, opening, and views; the operations live in:
//!
//! - [`networks`]: create and remove networks, their devices.
//! - [`endpoints`]: containers' namespaces and endpoints; connect, disconnect.
//! - [`published`]: published ports and the host's packet rules.
//! - [`overlay`]: an overlay's remote peers.
//! - [`names`]: each container's DNS server and the names it answers.
//! - [`lb`]: services on a network and their virtual addresses.
//! - [`ingress`]: the routing mesh on an overlay: the host on it, its ports.
//! - [`running`]: which containers run (only their names resolve).
//! - [`repair`]: what a restart or reboot left behind.

use super::dns::{DnsHandle, Records};
use super::ipam::{Ipam, IpamError};
use super::link::{LinkError, mac_text};
use super::nft::{self, NftError, Ruleset, VipRule};
use super::subnet::{self, Subnet};
use super::vip;
use crate::engine::runtime::container::{read_json, write_json};
use api::network::{
    Endpoint, Ingress, Network, NetworkAttach, NetworkCreate, OverlayPeer, PortBinding,
    ServiceEndpoint,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The network every container joins unless told otherwise.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Its bridge device.
pub const DEFAULT_BRIDGE: &str = "orch0";
/// The vxlan UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// Bytes a vxlan header (with outer IPv4 and UDP) takes from the MTU.
pub const VXLAN_OVERHEAD: u32 = 50;

/// The vxlan device in an overlay's namespace.
const OVERLAY_VXLAN: &str = "vx0";
/// Prefix of the host ends of container veths.
const VETH_PREFIX: &str = "ov";
/// Prefix of user bridges.
const BRIDGE_PREFIX: &str = "orchb";

mod endpoints;
mod ingress;
mod lb;
mod names;
mod networks;
mod overlay;
mod published;
mod repair;
mod running;

/// What went wrong with a network request.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("no network {0}")]
    NotFound(String),
    #[error("a network named {0:?} exists already")]
    NameTaken(String),
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("network {network}: {source}")]
    Address { network: String, source: IpamError },
    #[error("{0}")]
    Conflict(String),
    #[error("network {network}: {source}")]
    Service {
        network: String,
        source: vip::ServiceProblem,
    },
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error("container {container}: send {redirect} (table ip {table}): {source}", table = nft::DNS_TABLE)]
    DnsRedirect {
        container: String,
        redirect: nft::DnsRedirect,
        source: NftError,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network state {0}")]
    State(String),
}

/// `value` as an IPv4 address, or an error naming `what` it was for.
fn ipv4(what: &'static str, value: &str) -> Result<Ipv4Addr, NetError> {
    value.parse().map_err(|_| NetError::Invalid {
        what,
        value: value.to_owned(),
        why: "not an IPv4 address".into(),
    })
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetError + use<> {
    let path = path.to_owned();
    move |source| NetError::Io { op, path, source }
}

/// `bridge` or `overlay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    Bridge,
    Overlay,
}

/// A container's place on one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct EndpointRecord {
    ip: Ipv4Addr,
    mac: [u8; 6],
    aliases: Vec<String>,
    /// The host end of its veth (in the engine's namespace, or the overlay's).
    veth: String,
    /// Its name inside the container (`eth0`).
    ifname: String,
}

/// One network.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct NetRecord {
    id: String,
    name: String,
    driver: Driver,
    gateway: Option<Ipv4Addr>,
    internal: bool,
    attachable: bool,
    mtu: u32,
    vni: Option<u32>,
    /// The bridge device.
    bridge: String,
    created: String,
    labels: BTreeMap<String, String>,
    ipam: Ipam,
    /// Container id -> endpoint.
    endpoints: BTreeMap<String, EndpointRecord>,
    /// Overlay: remote endpoints, and this host's tunnel address.
    peers: Vec<OverlayPeer>,
    local: Option<Ipv4Addr>,
    /// Services with names (and virtual addresses) on it, as last set.
    #[serde(default)]
    services: Vec<ServiceEndpoint>,
    /// Overlay: the routing mesh it carries on this host, as last set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ingress: Option<Ingress>,
}

/// How a container is networked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Its own namespace with endpoints on networks (none: only loopback).
    Own,
    Host,
    /// Another container's namespace (its id).
    Container(String),
}

/// A container's networking.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Attachment {
    name: String,
    mode: Mode,
    /// `none` mode: no endpoints wanted.
    isolated: bool,
    ports: Vec<PortBinding>,
}

impl Attachment {
    /// Whether it has a namespace of its own with endpoints on networks.
    fn owns_endpoints(&self) -> bool {
        self.mode == Mode::Own && !self.isolated
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    networks: BTreeMap<String, NetRecord>,
    containers: BTreeMap<String, Attachment>,
}

/// Which network namespace a container's process joins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetNs {
    /// A fresh one, loopback only.
    #[default]
    New,
    /// The one held at this path.
    Join(PathBuf),
    /// The engine's own.
    Host,
}

/// What a new container's network setup gives its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub netns: NetNs,
    /// Extra `/etc/hosts` lines (its own addresses).
    pub hosts: Vec<String>,
    /// `/etc/resolv.conf`.
    pub resolv_conf: String,
}

/// What `orch container run` asked for.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub mode: Option<&'a str>,
    pub networks: &'a [NetworkAttach],
    pub publish: &'a [String],
    pub hostname: &'a str,
}

/// The engine's networks.
pub struct NetworkService {
    root: PathBuf,
    netns_dir: PathBuf,
    state: Mutex<State>,
    /// Each container's DNS server (by container id) and the names it answers.
    dns: Mutex<BTreeMap<String, DnsEntry>>,
    /// The virtual-address rules last applied in each container's namespace.
    vips: Mutex<BTreeMap<String, Vec<VipRule>>>,
    /// The host's packet rules last applied (each apply runs `nft`: a container
    /// that changes none of them, on `none` or `host` or without ports, skips it).
    rules: Mutex<Option<Ruleset>>,
    /// Containers known not to run (created, or exited): their names do not resolve.
    stopped: Mutex<BTreeSet<String>>,
    /// Where names that are not the engine's are asked.
    upstreams: Vec<SocketAddr>,
    runtime: tokio::runtime::Handle,
}

/// A running DNS server of one container.
struct DnsEntry {
    records: tokio::sync::watch::Sender<Records>,
    _server: DnsHandle,
}

/// The address of the DNS server in every container.
pub const DNS_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

fn random_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short stable hex tag of `parts` (device names).
fn tag(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// IPv4 routes of the engine's namespace (`/proc/net/route`), as subnets.
fn host_routes() -> Vec<Subnet> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None;
            }
            let prefix = u32::from_be(mask).count_ones() as u8;
            Subnet::new(Ipv4Addr::from(u32::from_be(dest)), prefix.clamp(8, 30)).ok()
        })
        .collect()
}

fn set_sysctl(path: &str, value: &str) {
    let _ = std::fs::write(path, value);
}

fn host_resolv_conf() -> String {
    std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

impl NetRecord {
    fn subnet(&self) -> Subnet {
        self.ipam.subnet()
    }

    fn view(&self, state: &State) -> Network {
        Network {
            id: self.id.clone(),
            name: self.name.clone(),
            driver: match self.driver {
                Driver::Bridge => "bridge".into(),
                Driver::Overlay => "overlay".into(),
            },
            subnet: self.subnet().to_string(),
            gateway: self.gateway.map(|g| g.to_string()).unwrap_or_default(),
            internal: self.internal,
            attachable: self.attachable,
            mtu: self.mtu,
            vni: self.vni,
            bridge: self.bridge.clone(),
            created: self.created.clone(),
            labels: self.labels.clone(),
            endpoints: self
                .endpoints
                .iter()
                .map(|(cid, e)| endpoint_view(cid, e, self, state))
                .collect(),
            peers: self.peers.clone(),
            services: self.services.clone(),
        }
    }
}

fn endpoint_view(cid: &str, e: &EndpointRecord, net: &NetRecord, state: &State) -> Endpoint {
    Endpoint {
        container: cid.to_owned(),
        name: state
            .containers
            .get(cid)
            .map(|a| a.name.clone())
            .unwrap_or_default(),
        ipv4: format!("{}/{}", e.ip, net.subnet().prefix()),
        mac: mac_text(&e.mac),
        aliases: e.aliases.clone(),
    }
}

impl NetworkService {
    /// Open (or start) the networks under `data`, make the default network, and
    /// repair what is missing or stale. Containers' DNS servers forward to
    /// `upstreams` (empty: the host's /etc/resolv.conf). Call inside the engine's
    /// runtime (DNS servers run on it).
    pub fn open(data: &Path, upstreams: Vec<SocketAddr>) -> Result<NetworkService, NetError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            NetError::State("the network service needs the engine's async runtime".into())
        })?;
        let upstreams = if upstreams.is_empty() {
            super::dns::upstreams_from_resolv_conf(&host_resolv_conf())
        } else {
            upstreams
        };
        let root = data.join("networks");
        let netns_dir = data.join("netns");
        for d in [&root, &netns_dir] {
            std::fs::create_dir_all(d).map_err(io("create", d))?;
        }
        let path = root.join("state.json");
        let state = if path.exists() {
            read_json(&path).map_err(|e| NetError::State(e.to_string()))?
        } else {
            State::default()
        };
        let svc = NetworkService {
            root,
            netns_dir,
            state: Mutex::new(state),
            dns: Mutex::new(BTreeMap::new()),
            vips: Mutex::new(BTreeMap::new()),
            rules: Mutex::new(None),
            stopped: Mutex::new(BTreeSet::new()),
            upstreams,
            runtime,
        };
        set_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
        {
            let mut st = svc.lock();
            if !st.networks.values().any(|n| n.name == DEFAULT_NETWORK) {
                let mut taken = host_routes();
                taken.extend(st.networks.values().map(NetRecord::subnet));
                let want: Subnet = "172.17.0.0/16".parse().map_err(|why| NetError::Invalid {
                    what: "subnet",
                    value: "172.17.0.0/16".into(),
                    why,
                })?;
                let subnet = if taken.iter().any(|t| t.overlaps(&want)) {
                    subnet::pick_free(&taken).ok_or_else(|| {
                        NetError::Conflict("no free subnet for the default network".into())
                    })?
                } else {
                    want
                };
                let record = svc.new_record(
                    &st,
                    &NetworkCreate {
                        name: DEFAULT_NETWORK.into(),
                        subnet: Some(subnet.to_string()),
                        ..NetworkCreate::default()
                    },
                    Some(DEFAULT_BRIDGE.to_owned()),
                )?;
                st.networks.insert(record.id.clone(), record);
                svc.save(&st)?;
            }
            svc.repair(&mut st)?;
        }
        Ok(svc)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, st: &State) -> Result<(), NetError> {
        write_json(&self.root.join("state.json"), st).map_err(|e| NetError::State(e.to_string()))
    }

    fn netns_path(&self, cid: &str) -> PathBuf {
        self.netns_dir.join(cid)
    }

    fn overlay_ns(&self, net_id: &str) -> PathBuf {
        self.netns_dir.join(format!("overlay-{}", &net_id[..12]))
    }

    /// Where the bridge of `net` lives (`None`: the engine's namespace).
    fn bridge_ns(&self, net: &NetRecord) -> Option<PathBuf> {
        (net.driver == Driver::Overlay).then(|| self.overlay_ns(&net.id))
    }

    /// Find a network by name, id or id prefix.
    fn find<'a>(st: &'a State, what: &str) -> Result<&'a NetRecord, NetError> {
        if let Some(n) = st
            .networks
            .values()
            .find(|n| n.name == what || n.id == what)
        {
            return Ok(n);
        }
        let hits: Vec<&NetRecord> = st
            .networks
            .values()
            .filter(|n| what.len() >= 4 && n.id.starts_with(what))
            .collect();
        match hits.as_slice() {
            [one] => Ok(one),
            _ => Err(NetError::NotFound(what.to_owned())),
        }
    }

    /// Every network.
    pub fn list(&self) -> Vec<Network> {
        let st = self.lock();
        let mut out: Vec<Network> = st.networks.values().map(|n| n.view(&st)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// One network.
    pub fn inspect(&self, what: &str) -> Result<Network, NetError> {
        let st = self.lock();
        Ok(Self::find(&st, what)?.view(&st))
    }

    /// Container `cid`'s endpoints and ports, for inspect: (mode, network name ->
    /// endpoint, ports).
    pub fn of_container(
        &self,
        cid: &str,
    ) -> (String, BTreeMap<String, Endpoint>, Vec<PortBinding>) {
        let st = self.lock();
        let Some(a) = st.containers.get(cid) else {
            return ("none".into(), BTreeMap::new(), Vec::new());
        };
        let mode = match &a.mode {
            Mode::Host => "host".into(),
            Mode::Container(other) => format!("container:{other}"),
            Mode::Own if a.isolated => "none".into(),
            Mode::Own => "bridge".into(),
        };
        let endpoints = st
            .networks
            .values()
            .filter_map(|n| {
                n.endpoints
                    .get(cid)
                    .map(|e| (n.name.clone(), endpoint_view(cid, e, n, &st)))
            })
            .collect();
        (mode, endpoints, a.ports.clone())
    }

    /// Remove every kernel object of orch when no container is left (a clean
    /// engine stop): the default bridge, the rules, overlay namespaces.
    pub fn teardown_if_idle(&self) -> Result<bool, NetError> {
        let st = self.lock();
        if !st.containers.is_empty() {
            return Ok(false);
        }
        for net in st.networks.values() {
            self.unbuild(net)?;
        }
        nft::remove()?;
        *self.rules.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(true)
    }
}
