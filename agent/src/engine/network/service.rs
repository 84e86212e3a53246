//! The engine's networks and each container's place on them, kept in one state file
//! (`<data>/networks/state.json`, replaced atomically): create, remove, connect,
//! disconnect, publish ports, program overlay peers, and repair what an agent
//! restart or a host reboot left behind.

use super::dns::{DnsHandle, DnsServer, Records};
use super::ipam::{Ipam, IpamError};
use super::link::{LinkError, mac_for, mac_text, netlink, parse_mac};
use super::netns;
use super::nft::{self, BridgeRules, NftError, PortRule, Ruleset, VipRule};
use super::ports::{self, PortSpec};
use super::subnet::{self, Subnet};
use super::vip::{self, valid_name};
use crate::engine::runtime::container::{read_json, rfc3339_nanos, write_json};
use api::network::{
    Endpoint, Network, NetworkAttach, NetworkCreate, OverlayPeer, OverlayPeers, PortBinding,
    ServiceEndpoint,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

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

mod lb;
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
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network state {0}")]
    State(String),
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

    fn new_record(
        &self,
        st: &State,
        req: &NetworkCreate,
        device: Option<String>,
    ) -> Result<NetRecord, NetError> {
        if !valid_name(&req.name) {
            return Err(NetError::Invalid {
                what: "network name",
                value: req.name.clone(),
                why: "use letters, digits, _ . - (starting with a letter or digit)".into(),
            });
        }
        if st.networks.values().any(|n| n.name == req.name) {
            return Err(NetError::NameTaken(req.name.clone()));
        }
        let driver = match req.driver.as_deref().unwrap_or("bridge") {
            "bridge" => Driver::Bridge,
            "overlay" => Driver::Overlay,
            other => {
                return Err(NetError::Invalid {
                    what: "driver",
                    value: other.into(),
                    why: "use bridge or overlay".into(),
                });
            }
        };
        let others: Vec<Subnet> = st.networks.values().map(NetRecord::subnet).collect();
        let subnet = match &req.subnet {
            Some(s) => {
                let subnet: Subnet = s.parse().map_err(|why| NetError::Invalid {
                    what: "subnet",
                    value: s.clone(),
                    why,
                })?;
                if let Some(n) = st.networks.values().find(|n| n.subnet().overlaps(&subnet)) {
                    return Err(NetError::Conflict(format!(
                        "subnet {subnet} overlaps network {} ({})",
                        n.name,
                        n.subnet()
                    )));
                }
                subnet
            }
            None => {
                let mut taken = others;
                taken.extend(host_routes());
                subnet::pick_free(&taken).ok_or_else(|| {
                    NetError::Conflict(
                        "no free subnet left in the engine's pools; give --subnet".into(),
                    )
                })?
            }
        };
        let gateway = match &req.gateway {
            Some(g) => Some(g.parse::<Ipv4Addr>().map_err(|_| NetError::Invalid {
                what: "gateway",
                value: g.clone(),
                why: "not an IPv4 address".into(),
            })?),
            None if driver == Driver::Bridge && !req.internal => Some(subnet.first_host()),
            None => None,
        };
        let ipam = Ipam::new(subnet, gateway).map_err(|source| NetError::Address {
            network: req.name.clone(),
            source,
        })?;
        let id = random_id();
        let mtu = req.mtu.unwrap_or(match driver {
            Driver::Bridge => 1500,
            Driver::Overlay => 1500 - VXLAN_OVERHEAD,
        });
        if !(576..=9000).contains(&mtu) {
            return Err(NetError::Invalid {
                what: "mtu",
                value: mtu.to_string(),
                why: "use 576 to 9000".into(),
            });
        }
        let vni = match driver {
            Driver::Overlay => {
                let vni = req
                    .vni
                    .unwrap_or_else(|| 4096 + u32::from_str_radix(&id[..4], 16).unwrap_or(0));
                if !(1..(1 << 24)).contains(&vni) {
                    return Err(NetError::Invalid {
                        what: "vni",
                        value: vni.to_string(),
                        why: "use 1 to 16777215".into(),
                    });
                }
                if let Some(n) = st.networks.values().find(|n| n.vni == Some(vni)) {
                    return Err(NetError::Conflict(format!(
                        "vni {vni} is used by network {}",
                        n.name
                    )));
                }
                Some(vni)
            }
            Driver::Bridge => None,
        };
        let bridge = device.unwrap_or_else(|| match driver {
            Driver::Bridge => format!("{BRIDGE_PREFIX}{}", &id[..8]),
            Driver::Overlay => "br0".into(),
        });
        Ok(NetRecord {
            id,
            name: req.name.clone(),
            driver,
            gateway,
            internal: req.internal,
            attachable: req.attachable || driver == Driver::Bridge,
            mtu,
            vni,
            bridge,
            created: rfc3339_nanos(SystemTime::now()),
            labels: req.labels.clone(),
            ipam,
            endpoints: BTreeMap::new(),
            peers: Vec::new(),
            local: None,
            services: Vec::new(),
        })
    }

    /// Make the devices of `net` (idempotent).
    fn build(&self, net: &NetRecord) -> Result<(), NetError> {
        let prefix = net.subnet().prefix();
        match net.driver {
            Driver::Bridge => {
                let addr = net.gateway.map(|g| (g, prefix));
                let (name, mtu) = (net.bridge.clone(), net.mtu);
                netlink(
                    None,
                    move |nl| async move { nl.bridge(&name, mtu, addr).await },
                )?;
                if !net.internal {
                    set_sysctl(
                        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
                        "1",
                    );
                }
            }
            Driver::Overlay => {
                let ns = self.overlay_ns(&net.id);
                if !netns::is_held(&ns) {
                    netns::create(&ns).map_err(io("create the overlay namespace", &ns))?;
                }
                let (bridge, mtu) = (net.bridge.clone(), net.mtu);
                let (vni, local) = (net.vni.unwrap_or(1), net.local);
                let made = netlink(Some(&ns), {
                    let bridge = bridge.clone();
                    move |nl| async move {
                        nl.bridge(&bridge, mtu, None).await?;
                        nl.up("lo").await?;
                        nl.index(OVERLAY_VXLAN).await
                    }
                })?;
                if made.is_none() {
                    // Made in the engine's namespace, so its UDP socket uses the
                    // underlay, then moved into the overlay's.
                    let tmp = format!("vx{}", &net.id[..10]);
                    let file = std::fs::File::open(&ns).map_err(io("open", &ns))?;
                    let fd = file.as_raw_fd();
                    netlink(None, move |nl| async move {
                        nl.delete(&tmp).await?;
                        nl.vxlan_detached(&tmp, vni, local, VXLAN_PORT, mtu, fd, OVERLAY_VXLAN)
                            .await
                    })?;
                }
                netlink(Some(&ns), move |nl| async move {
                    nl.attach_up(OVERLAY_VXLAN, &bridge).await
                })?;
            }
        }
        Ok(())
    }

    /// Bring kernel objects in line with the state: networks' devices, containers'
    /// namespaces and endpoints (after a reboot), overlay peers, the rules; remove
    /// namespaces and links of orch that nothing refers to.
    fn repair(&self, st: &mut State) -> Result<(), NetError> {
        for net in st.networks.values() {
            self.build(net)?;
        }
        let mut wanted: Vec<String> = Vec::new();
        let ids: Vec<String> = st.containers.keys().cloned().collect();
        for cid in ids {
            let a = st.containers[&cid].clone();
            if a.mode != Mode::Own {
                continue;
            }
            let path = self.netns_path(&cid);
            wanted.push(cid.clone());
            if netns::is_held(&path) {
                continue;
            }
            netns::create(&path).map_err(io("create the network namespace", &path))?;
            let nets: Vec<(String, EndpointRecord)> = st
                .networks
                .values()
                .filter_map(|n| n.endpoints.get(&cid).map(|e| (n.id.clone(), e.clone())))
                .collect();
            netlink(Some(&path), |nl| async move { nl.up("lo").await })?;
            for (nid, e) in nets {
                let net = st.networks[&nid].clone();
                self.plumb(&net, &path, &e, first_gateway(st, &cid, &nid))?;
            }
        }
        for net in st.networks.values() {
            if net.driver == Driver::Overlay {
                self.program_peers(net, &[], &net.peers)?;
            }
        }
        // Stale namespaces (their container is gone).
        for entry in std::fs::read_dir(&self.netns_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let overlay = name
                .strip_prefix("overlay-")
                .is_some_and(|p| st.networks.keys().any(|id| id.starts_with(p)));
            if !overlay && !wanted.contains(&name) {
                let _ = netns::remove(&entry.path());
            }
        }
        // Stale links of orch in the engine's namespace.
        let mut keep: Vec<String> = st.networks.values().map(|n| n.bridge.clone()).collect();
        for n in st.networks.values().filter(|n| n.driver == Driver::Bridge) {
            keep.extend(n.endpoints.values().map(|e| e.veth.clone()));
        }
        let names = netlink(None, |nl| async move { nl.names().await })?;
        let stale: Vec<String> = names
            .into_iter()
            .filter(|n| {
                (n.starts_with(VETH_PREFIX) && n.len() == 12
                    || n.starts_with(BRIDGE_PREFIX) && n.len() == 13
                    || n.starts_with("vx") && n.len() == 12)
                    && !keep.contains(n)
            })
            .collect();
        if !stale.is_empty() {
            netlink(None, move |nl| async move {
                for n in stale {
                    nl.delete(&n).await?;
                }
                Ok(())
            })?;
        }
        for cid in &wanted {
            self.start_dns(st, cid)?;
        }
        self.refresh(st)?;
        self.apply_rules(st)
    }

    /// Serve DNS on 127.0.0.11:53 inside container `cid`'s namespace.
    fn start_dns(&self, st: &State, cid: &str) -> Result<(), NetError> {
        let Some(a) = st.containers.get(cid) else {
            return Ok(());
        };
        if a.mode != Mode::Own || a.isolated {
            return Ok(());
        }
        let path = self.netns_path(cid);
        let addr = SocketAddr::from((DNS_ADDRESS, 53));
        let (udp, tcp) = netns::run_in(Some(&path), || {
            Ok::<_, std::io::Error>((
                std::net::UdpSocket::bind(addr)?,
                std::net::TcpListener::bind(addr)?,
            ))
        })
        .and_then(|r| r)
        .map_err(io("serve DNS on 127.0.0.11:53 in", &path))?;
        let (tx, rx) = tokio::sync::watch::channel(records_for(st, cid, &self.stopped_lock()));
        let _guard = self.runtime.enter();
        let server = DnsServer::spawn(udp, tcp, rx, self.upstreams.clone(), forwards(st, cid))
            .map_err(|e| NetError::State(format!("start the DNS server of {}: {e}", a.name)))?;
        self.dns_lock().insert(
            cid.to_owned(),
            DnsEntry {
                records: tx,
                _server: server,
            },
        );
        Ok(())
    }

    fn dns_lock(&self) -> MutexGuard<'_, BTreeMap<String, DnsEntry>> {
        self.dns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Give every container's DNS server the names it may see now, and its
    /// namespace the virtual addresses of its networks' services.
    fn refresh(&self, st: &State) -> Result<(), NetError> {
        let stopped = self.stopped_lock().clone();
        for (cid, entry) in self.dns_lock().iter() {
            entry.records.send_replace(records_for(st, cid, &stopped));
        }
        self.sync_vips(st)
    }

    /// The packet rules of the whole state.
    fn ruleset(st: &State) -> Ruleset {
        let bridges = st
            .networks
            .values()
            .filter(|n| n.driver == Driver::Bridge)
            .map(|n| BridgeRules {
                device: n.bridge.clone(),
                subnet: n.subnet().to_string(),
                internal: n.internal,
            })
            .collect();
        let mut ports = Vec::new();
        for (cid, a) in &st.containers {
            let Some(dest) = primary_address(st, cid) else {
                continue;
            };
            for p in &a.ports {
                ports.push(PortRule {
                    protocol: if p.protocol == "udp" { "udp" } else { "tcp" },
                    host_ip: p
                        .host_ip
                        .parse()
                        .ok()
                        .filter(|ip: &Ipv4Addr| !ip.is_unspecified()),
                    host_port: p.host_port,
                    dest,
                    dest_port: p.container_port,
                });
            }
        }
        ports.sort();
        Ruleset { bridges, ports }
    }

    fn apply_rules(&self, st: &State) -> Result<(), NetError> {
        let want = Self::ruleset(st);
        let mut applied = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        if applied.as_ref() != Some(&want) {
            nft::apply(&want)?;
            *applied = Some(want);
        }
        Ok(())
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

    /// `orch network create`.
    pub fn create(&self, req: &NetworkCreate) -> Result<Network, NetError> {
        let mut st = self.lock();
        let record = self.new_record(&st, req, None)?;
        if let Err(e) = self.build(&record) {
            let _ = self.unbuild(&record);
            return Err(e);
        }
        let view = record.view(&st);
        st.networks.insert(record.id.clone(), record);
        self.save(&st)?;
        self.apply_rules(&st)?;
        Ok(view)
    }

    fn unbuild(&self, net: &NetRecord) -> Result<(), NetError> {
        match net.driver {
            Driver::Bridge => {
                let name = net.bridge.clone();
                netlink(None, move |nl| async move { nl.delete(&name).await })?;
            }
            Driver::Overlay => {
                let ns = self.overlay_ns(&net.id);
                // The vxlan and bridge end with the namespace.
                netns::remove(&ns).map_err(io("remove the overlay namespace", &ns))?;
            }
        }
        Ok(())
    }

    /// `orch network rm`: only when no container is on it.
    pub fn remove(&self, what: &str) -> Result<String, NetError> {
        let mut st = self.lock();
        let net = Self::find(&st, what)?.clone();
        if net.name == DEFAULT_NETWORK {
            return Err(NetError::Conflict(format!(
                "{DEFAULT_NETWORK} is the engine's default network and cannot be removed"
            )));
        }
        if !net.endpoints.is_empty() {
            let names: Vec<String> = net
                .endpoints
                .keys()
                .map(|c| {
                    st.containers
                        .get(c)
                        .map(|a| a.name.clone())
                        .unwrap_or(c.clone())
                })
                .collect();
            return Err(NetError::Conflict(format!(
                "network {} has containers: {}; disconnect or remove them first",
                net.name,
                names.join(", ")
            )));
        }
        self.unbuild(&net)?;
        st.networks.remove(&net.id);
        self.save(&st)?;
        self.apply_rules(&st)?;
        Ok(net.id)
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

    /// Set up a new container's networking (before its first start).
    pub fn prepare(
        &self,
        cid: &str,
        name: &str,
        req: &Request<'_>,
        resolve: impl Fn(&str) -> Option<String>,
    ) -> Result<Prepared, NetError> {
        let mut st = self.lock();
        let mode = req.mode.unwrap_or("bridge");
        let own_only = |what: &str| -> Result<(), NetError> {
            if !req.publish.is_empty() || !req.networks.is_empty() {
                return Err(NetError::Invalid {
                    what: "network mode",
                    value: what.into(),
                    why: "publishing ports and joining networks need the container's own network (bridge mode)".into(),
                });
            }
            Ok(())
        };
        match mode {
            "host" => {
                own_only(mode)?;
                st.containers.insert(
                    cid.into(),
                    Attachment {
                        name: name.into(),
                        mode: Mode::Host,
                        isolated: false,
                        ports: Vec::new(),
                    },
                );
                self.save(&st)?;
                return Ok(Prepared {
                    netns: NetNs::Host,
                    hosts: Vec::new(),
                    resolv_conf: host_resolv_conf(),
                });
            }
            m if m.starts_with("container:") => {
                own_only(mode)?;
                let target = &m["container:".len()..];
                let tid = resolve(target).ok_or_else(|| NetError::Invalid {
                    what: "network mode",
                    value: m.into(),
                    why: format!("no container {target}"),
                })?;
                let Some(ta) = st.containers.get(&tid).cloned() else {
                    return Err(NetError::Invalid {
                        what: "network mode",
                        value: m.into(),
                        why: format!("container {target} has no network of its own"),
                    });
                };
                let netns = match ta.mode {
                    Mode::Host => NetNs::Host,
                    Mode::Own => NetNs::Join(self.netns_path(&tid)),
                    Mode::Container(ref other) => NetNs::Join(self.netns_path(other)),
                };
                let owner = match ta.mode {
                    Mode::Container(other) => other,
                    _ => tid.clone(),
                };
                st.containers.insert(
                    cid.into(),
                    Attachment {
                        name: name.into(),
                        mode: Mode::Container(owner),
                        isolated: false,
                        ports: Vec::new(),
                    },
                );
                self.save(&st)?;
                return Ok(Prepared {
                    netns,
                    hosts: Vec::new(),
                    resolv_conf: "nameserver 127.0.0.11\noptions ndots:0\n".into(),
                });
            }
            "none" => own_only(mode)?,
            "bridge" | "default" => {}
            other => {
                return Err(NetError::Invalid {
                    what: "network mode",
                    value: other.into(),
                    why: "use bridge, host, none or container:NAME".into(),
                });
            }
        }
        let isolated = mode == "none";
        // Its names resolve once it runs.
        self.stopped_lock().insert(cid.to_owned());
        let path = self.netns_path(cid);
        netns::create(&path).map_err(io("create the network namespace", &path))?;
        // A new namespace has no rules of orch yet.
        self.vips_lock().insert(cid.to_owned(), Vec::new());
        st.containers.insert(
            cid.into(),
            Attachment {
                name: name.into(),
                mode: Mode::Own,
                isolated,
                ports: Vec::new(),
            },
        );
        let result = (|| -> Result<Prepared, NetError> {
            netlink(Some(&path), |nl| async move { nl.up("lo").await })?;
            if !isolated {
                let default = [NetworkAttach {
                    network: DEFAULT_NETWORK.into(),
                    ..NetworkAttach::default()
                }];
                let wanted = if req.networks.is_empty() {
                    &default[..]
                } else {
                    req.networks
                };
                for w in wanted {
                    self.join(&mut st, cid, w)?;
                }
                let bindings = self.bind_ports(&st, cid, req.publish)?;
                st.containers.get_mut(cid).expect("inserted above").ports = bindings;
            }
            let hosts = st
                .networks
                .values()
                .filter_map(|n| n.endpoints.get(cid))
                .map(|e| format!("{}\t{}", e.ip, req.hostname))
                .collect();
            Ok(Prepared {
                netns: NetNs::Join(path.clone()),
                hosts,
                resolv_conf: "nameserver 127.0.0.11\noptions ndots:0\n".into(),
            })
        })();
        match result.and_then(|p| {
            self.start_dns(&st, cid)?;
            Ok(p)
        }) {
            Ok(p) => {
                self.save(&st)?;
                self.refresh(&st)?;
                self.apply_rules(&st)?;
                Ok(p)
            }
            Err(e) => {
                let _ = self.release_locked(&mut st, cid);
                Err(e)
            }
        }
    }

    /// Give container `cid` an endpoint on network `w.network` (in its namespace).
    fn join(&self, st: &mut State, cid: &str, w: &NetworkAttach) -> Result<(), NetError> {
        let net = Self::find(st, &w.network)?.clone();
        if net.endpoints.contains_key(cid) {
            return Err(NetError::Conflict(format!(
                "the container is already on network {}",
                net.name
            )));
        }
        for a in &w.aliases {
            if !valid_name(a) {
                return Err(NetError::Invalid {
                    what: "alias",
                    value: a.clone(),
                    why: "use letters, digits, _ . -".into(),
                });
            }
        }
        let want = match &w.ipv4 {
            Some(ip) => Some(ip.parse::<Ipv4Addr>().map_err(|_| NetError::Invalid {
                what: "ip address",
                value: ip.clone(),
                why: "not an IPv4 address".into(),
            })?),
            None => None,
        };
        let mac = match &w.mac {
            Some(m) => Some(parse_mac(m).map_err(|why| NetError::Invalid {
                what: "mac address",
                value: m.clone(),
                why,
            })?),
            None => None,
        };
        let used: Vec<&str> = st
            .networks
            .values()
            .filter_map(|n| n.endpoints.get(cid))
            .map(|e| e.ifname.as_str())
            .collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(&n.as_str()))
            .unwrap_or_else(|| "eth0".into());
        let record = st.networks.get_mut(&net.id).expect("found above");
        let ip = record
            .ipam
            .allocate(want)
            .map_err(|source| NetError::Address {
                network: net.name.clone(),
                source,
            })?;
        let endpoint = EndpointRecord {
            ip,
            mac: mac.unwrap_or_else(|| mac_for(ip)),
            aliases: w.aliases.clone(),
            veth: format!("{VETH_PREFIX}{}", tag(&[cid, &net.id])),
            ifname,
        };
        record.endpoints.insert(cid.to_owned(), endpoint.clone());
        let gateway = first_gateway(st, cid, &net.id);
        let path = self.netns_path(cid);
        if let Err(e) = self.plumb(&net, &path, &endpoint, gateway) {
            let record = st.networks.get_mut(&net.id).expect("found above");
            record.endpoints.remove(cid);
            record.ipam.release(ip);
            let veth = endpoint.veth.clone();
            let ns = self.bridge_ns(&net);
            let _ = netlink(
                ns.as_deref(),
                move |nl| async move { nl.delete(&veth).await },
            );
            return Err(e);
        }
        Ok(())
    }

    /// The veth of `e` between `net`'s bridge and the namespace at `path`.
    fn plumb(
        &self,
        net: &NetRecord,
        path: &Path,
        e: &EndpointRecord,
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), NetError> {
        let file = std::fs::File::open(path).map_err(io("open", path))?;
        let fd = file.as_raw_fd();
        let host = e.veth.clone();
        let peer = format!("oc{}", &e.veth[VETH_PREFIX.len()..]);
        let (bridge, mtu) = (net.bridge.clone(), net.mtu);
        let ns = self.bridge_ns(net);
        let peer2 = peer.clone();
        netlink(ns.as_deref(), move |nl| async move {
            nl.delete(&host).await?;
            nl.veth_into(&host, &peer2, mtu, &bridge, fd).await
        })?;
        drop(file);
        let (ifname, mac, addr) = (e.ifname.clone(), e.mac, (e.ip, net.subnet().prefix()));
        netlink(Some(path), move |nl| async move {
            nl.configure(&peer, &ifname, mac, addr, gateway).await
        })?;
        Ok(())
    }

    /// Check and choose host ports for `specs`.
    fn bind_ports(
        &self,
        st: &State,
        cid: &str,
        specs: &[String],
    ) -> Result<Vec<PortBinding>, NetError> {
        let mut wanted: Vec<PortSpec> = Vec::new();
        for s in specs {
            wanted.extend(ports::parse(s).map_err(|why| NetError::Invalid {
                what: "published port",
                value: s.clone(),
                why,
            })?);
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        if primary_address(st, cid).is_none() {
            return Err(NetError::Invalid {
                what: "published port",
                value: specs.join(" "),
                why: "the container is only on internal or overlay networks: there is no way in"
                    .into(),
            });
        }
        let mut taken: Vec<(String, PortBinding)> = st
            .containers
            .values()
            .flat_map(|a| a.ports.iter().map(|p| (a.name.clone(), p.clone())))
            .collect();
        let mut out = Vec::new();
        for w in wanted {
            let host_ip = w.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let clash = |port: u16, taken: &[(String, PortBinding)]| {
                taken
                    .iter()
                    .find(|(_, p)| {
                        p.protocol == w.protocol
                            && p.host_port == port
                            && (p.host_ip == "0.0.0.0"
                                || host_ip.is_unspecified()
                                || p.host_ip == host_ip.to_string())
                    })
                    .map(|(n, _)| n.clone())
            };
            let port = match w.host_port {
                Some(port) => {
                    if let Some(owner) = clash(port, &taken) {
                        return Err(NetError::Conflict(format!(
                            "port {port}/{} is already published by container {owner}",
                            w.protocol
                        )));
                    }
                    if !free_on_host(host_ip, port, w.protocol) {
                        return Err(NetError::Conflict(format!(
                            "port {port}/{} is in use on the host ({host_ip}:{port}); pick another",
                            w.protocol
                        )));
                    }
                    port
                }
                None => (32768..61000u16)
                    .find(|p| clash(*p, &taken).is_none() && free_on_host(host_ip, *p, w.protocol))
                    .ok_or_else(|| NetError::Conflict("no free host port left".into()))?,
            };
            let binding = PortBinding {
                host_ip: host_ip.to_string(),
                host_port: port,
                container_port: w.container_port,
                protocol: w.protocol.to_owned(),
            };
            taken.push((String::new(), binding.clone()));
            out.push(binding);
        }
        Ok(out)
    }

    /// Undo [`NetworkService::prepare`]: endpoints, addresses, ports, namespace.
    pub fn release(&self, cid: &str) -> Result<(), NetError> {
        let mut st = self.lock();
        self.release_locked(&mut st, cid)?;
        self.save(&st)?;
        self.refresh(&st)?;
        self.apply_rules(&st)
    }

    fn release_locked(&self, st: &mut State, cid: &str) -> Result<(), NetError> {
        // Dropping the handle ends the server and closes its sockets.
        self.dns_lock().remove(cid);
        self.vips_lock().remove(cid);
        self.stopped_lock().remove(cid);
        let ids: Vec<String> = st.networks.keys().cloned().collect();
        for nid in ids {
            self.leave(st, cid, &nid)?;
        }
        if let Some(a) = st.containers.remove(cid)
            && a.mode == Mode::Own
        {
            let path = self.netns_path(cid);
            netns::remove(&path).map_err(io("remove the network namespace", &path))?;
        }
        Ok(())
    }

    fn leave(&self, st: &mut State, cid: &str, nid: &str) -> Result<(), NetError> {
        let Some(net) = st.networks.get_mut(nid) else {
            return Ok(());
        };
        let Some(e) = net.endpoints.remove(cid) else {
            return Ok(());
        };
        net.ipam.release(e.ip);
        let net = net.clone();
        let ns = self.bridge_ns(&net);
        let veth = e.veth.clone();
        netlink(
            ns.as_deref(),
            move |nl| async move { nl.delete(&veth).await },
        )?;
        Ok(())
    }

    /// `orch network connect`.
    pub fn connect(&self, network: &str, cid: &str, attach: NetworkAttach) -> Result<(), NetError> {
        let mut st = self.lock();
        let a = st
            .containers
            .get(cid)
            .ok_or_else(|| NetError::Conflict("the container has no network setup".into()))?;
        if a.mode != Mode::Own || a.isolated {
            return Err(NetError::Conflict(format!(
                "container {} shares another namespace or has networking off (--network none/host/container:)",
                a.name
            )));
        }
        let net = Self::find(&st, network)?;
        if !net.attachable {
            return Err(NetError::Conflict(format!(
                "network {} is not attachable (create it with --attachable)",
                net.name
            )));
        }
        let w = NetworkAttach {
            network: net.id.clone(),
            ..attach
        };
        self.join(&mut st, cid, &w)?;
        self.save(&st)?;
        self.refresh(&st)?;
        self.apply_rules(&st)
    }

    /// `orch network disconnect`.
    pub fn disconnect(&self, network: &str, cid: &str) -> Result<(), NetError> {
        let mut st = self.lock();
        let net = Self::find(&st, network)?.clone();
        if !net.endpoints.contains_key(cid) {
            return Err(NetError::Conflict(format!(
                "the container is not on network {}",
                net.name
            )));
        }
        self.leave(&mut st, cid, &net.id)?;
        self.save(&st)?;
        self.refresh(&st)?;
        self.apply_rules(&st)
    }

    /// `PUT /v1/networks/{id}/peers`: replace an overlay's remote endpoints; only
    /// the differences touch the kernel, so other flows go on undisturbed.
    pub fn set_peers(&self, network: &str, req: &OverlayPeers) -> Result<Network, NetError> {
        let mut st = self.lock();
        let net = Self::find(&st, network)?.clone();
        if net.driver != Driver::Overlay {
            return Err(NetError::Conflict(format!(
                "network {} is not an overlay network",
                net.name
            )));
        }
        for p in &req.peers {
            check_peer(p)?;
        }
        let local = match &req.local {
            Some(l) => Some(l.parse::<Ipv4Addr>().map_err(|_| NetError::Invalid {
                what: "local address",
                value: l.clone(),
                why: "not an IPv4 address".into(),
            })?),
            None => net.local,
        };
        let mut next = net.clone();
        next.local = local;
        if local != net.local {
            // The tunnel's source address is fixed at creation: make it again.
            let ns = self.overlay_ns(&net.id);
            netlink(
                Some(&ns),
                |nl| async move { nl.delete(OVERLAY_VXLAN).await },
            )?;
            self.build(&next)?;
            self.program_peers(&next, &[], &req.peers)?;
        } else {
            self.program_peers(&next, &net.peers, &req.peers)?;
        }
        next.peers = req.peers.clone();
        next.peers.sort();
        st.networks.insert(next.id.clone(), next.clone());
        self.save(&st)?;
        self.refresh(&st)?;
        Ok(next.view(&st))
    }

    fn program_peers(
        &self,
        net: &NetRecord,
        old: &[OverlayPeer],
        new: &[OverlayPeer],
    ) -> Result<(), NetError> {
        let ns = self.overlay_ns(&net.id);
        let gone: Vec<OverlayPeer> = old.iter().filter(|p| !new.contains(p)).cloned().collect();
        let added: Vec<OverlayPeer> = new.iter().filter(|p| !old.contains(p)).cloned().collect();
        let bridge = net.bridge.clone();
        netlink(Some(&ns), move |nl| async move {
            for p in gone {
                let (mac, ip, _) = peer_parts(&p).map_err(|why| LinkError {
                    op: "peer".into(),
                    why,
                })?;
                nl.remove_peer(OVERLAY_VXLAN, &bridge, mac, ip).await?;
            }
            for p in added {
                let (mac, ip, host) = peer_parts(&p).map_err(|why| LinkError {
                    op: "peer".into(),
                    why,
                })?;
                nl.add_peer(OVERLAY_VXLAN, mac, ip, host).await?;
            }
            Ok(())
        })?;
        Ok(())
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

/// The names container `cid` may resolve: on each of its networks, every
/// container's name, its aliases and `tasks.ALIAS` (all of an alias' addresses),
/// and an overlay's remote endpoints likewise; containers in `stopped` have no
/// name (like Docker, a stopped container's name does not resolve until it runs
/// again). Names go in before aliases, so an address' reverse lookup gives its
/// container.
fn records_for(st: &State, cid: &str, stopped: &BTreeSet<String>) -> Records {
    let mut r = Records::new();
    let nets: Vec<&NetRecord> = st
        .networks
        .values()
        .filter(|n| n.endpoints.contains_key(cid))
        .collect();
    for n in &nets {
        for (other, e) in n.endpoints.iter().filter(|(c, _)| !stopped.contains(*c)) {
            if let Some(a) = st.containers.get(other) {
                r.insert(&a.name, e.ip);
            }
            r.insert(&other[..12], e.ip);
        }
        for p in &n.peers {
            if let (Some(first), Ok(ip)) = (p.names.first(), p.ipv4.parse()) {
                r.insert(first, ip);
            }
        }
    }
    for n in &nets {
        for (_, e) in n.endpoints.iter().filter(|(c, _)| !stopped.contains(*c)) {
            for alias in &e.aliases {
                r.insert(alias, e.ip);
                r.insert(&format!("tasks.{alias}"), e.ip);
            }
        }
        for p in &n.peers {
            let Ok(ip) = p.ipv4.parse() else { continue };
            for alias in p.names.iter().skip(1) {
                r.insert(alias, ip);
                r.insert(&format!("tasks.{alias}"), ip);
            }
        }
        vip::add_records(&mut r, &n.services);
    }
    r
}

/// Whether `cid`'s names may be looked up outside: not when every network it is on
/// is internal.
fn forwards(st: &State, cid: &str) -> bool {
    let mut nets = st
        .networks
        .values()
        .filter(|n| n.endpoints.contains_key(cid))
        .peekable();
    nets.peek().is_none() || nets.any(|n| !n.internal)
}

/// The first network of `cid` other than `nid` that gives a default route (or
/// `nid`'s gateway when none does yet).
fn first_gateway(st: &State, cid: &str, nid: &str) -> Option<Ipv4Addr> {
    let has_route = st.networks.values().any(|n| {
        n.id != nid
            && n.endpoints.contains_key(cid)
            && n.gateway.is_some()
            && !n.internal
            && n.driver == Driver::Bridge
    });
    let net = st.networks.get(nid)?;
    if has_route || net.internal || net.driver != Driver::Bridge {
        return None;
    }
    net.gateway
}

/// The address published ports lead to: the first non-internal bridge endpoint.
fn primary_address(st: &State, cid: &str) -> Option<Ipv4Addr> {
    st.networks
        .values()
        .filter(|n| n.driver == Driver::Bridge && !n.internal)
        .find_map(|n| n.endpoints.get(cid).map(|e| e.ip))
}

fn check_peer(p: &OverlayPeer) -> Result<(), NetError> {
    peer_parts(p).map(|_| ()).map_err(|why| NetError::Invalid {
        what: "peer",
        value: format!("{} {} {}", p.host, p.ipv4, p.mac),
        why,
    })
}

fn peer_parts(p: &OverlayPeer) -> Result<([u8; 6], Ipv4Addr, Ipv4Addr), String> {
    let mac = parse_mac(&p.mac)?;
    let ip = p
        .ipv4
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("overlay address {:?} is not an IPv4 address", p.ipv4))?;
    let host = p
        .host
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("host address {:?} is not an IPv4 address", p.host))?;
    Ok((mac, ip, host))
}

/// Whether nothing on the host listens on `ip:port` (a bind succeeds).
fn free_on_host(ip: Ipv4Addr, port: u16, protocol: &str) -> bool {
    let addr = std::net::SocketAddr::from((ip, port));
    match protocol {
        "udp" => std::net::UdpSocket::bind(addr).is_ok(),
        _ => std::net::TcpListener::bind(addr).is_ok(),
    }
}
