//! Networks themselves: a new network's record checked and filled in (subnet,
//! gateway, MTU, VNI, device), its devices made (a bridge; for an overlay, a
//! namespace with a bridge and a vxlan device) and unmade; create and remove.

use super::{
    BRIDGE_PREFIX, DEFAULT_NETWORK, Driver, NetError, NetRecord, NetworkService, OVERLAY_VXLAN,
    State, VXLAN_OVERHEAD, VXLAN_PORT, host_routes, io, ipv4, random_id, set_sysctl,
};
use crate::engine::network::ipam::Ipam;
use crate::engine::network::link::netlink;
use crate::engine::network::netns;
use crate::engine::network::subnet::{self, Subnet};
use crate::engine::network::vip::valid_name;
use crate::engine::runtime::container::rfc3339_nanos;
use api::network::{Network, NetworkCreate};
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::time::SystemTime;

impl NetworkService {
    pub(super) fn new_record(
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
            Some(g) => Some(ipv4("gateway", g)?),
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
            ingress: None,
        })
    }

    /// Make the devices of `net` (idempotent).
    pub(super) fn build(&self, net: &NetRecord) -> Result<(), NetError> {
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
                self.join_host(net, false)?;
            }
        }
        Ok(())
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

    pub(super) fn unbuild(&self, net: &NetRecord) -> Result<(), NetError> {
        match net.driver {
            Driver::Bridge => {
                let name = net.bridge.clone();
                netlink(None, move |nl| async move { nl.delete(&name).await })?;
            }
            Driver::Overlay => {
                self.leave_host(net)?;
                let ns = self.overlay_ns(&net.id);
                // The vxlan goes first: the namespace ends only with its last user,
                // and until then its vxlan would keep the VNI's socket, so a network
                // made again with the same VNI could not have one ("File exists").
                if netns::is_held(&ns) {
                    netlink(Some(&ns), move |nl| async move {
                        nl.delete(OVERLAY_VXLAN).await
                    })?;
                }
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
}
