//! The routing mesh on an overlay: the host joins the overlay through a veth (`ig…`
//! in the engine's namespace, its peer on the overlay's bridge) with the address
//! the cluster gave the node, and each published port is DNAT'ed on the host to one
//! of its backends' target port, leaving with the host's mesh address so replies
//! come back through this node (the rules are in [`crate::engine::network::nft`]).

use super::{Driver, NetError, NetRecord, NetworkService, io, set_sysctl};
use crate::engine::network::link::{mac_for, netlink};
use crate::engine::network::nft::MeshRules;
use api::network::{Ingress, Network};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

/// The mesh's end on the overlay's bridge, inside the overlay's namespace.
const BRIDGE_END: &str = "ingress0";

/// The host's end of the mesh of network `id`, in the engine's namespace.
pub(super) fn host_link(id: &str) -> String {
    format!("ig{}", &id[..id.len().min(10)])
}

/// The address and prefix of `ingress.address` (`10.0.0.2/24`).
fn address(ingress: &Ingress) -> Option<(Ipv4Addr, u8)> {
    let (ip, prefix) = ingress.address.split_once('/')?;
    Some((ip.parse().ok()?, prefix.parse().ok()?))
}

impl NetworkService {
    /// `PUT /v1/networks/{id}/ingress`: make an overlay this host's routing mesh —
    /// the host joins it at the given address (made again when it changes) and
    /// publishes the given ports — replacing what was set before.
    pub fn set_ingress(&self, network: &str, req: &Ingress) -> Result<Network, NetError> {
        let mut st = self.lock();
        let net = Self::find(&st, network)?.clone();
        if net.driver != Driver::Overlay {
            return Err(NetError::Conflict(format!(
                "network {} is not an overlay network: it cannot carry the routing mesh",
                net.name
            )));
        }
        let invalid = |what, value: String, why: &str| NetError::Invalid {
            what,
            value,
            why: why.to_owned(),
        };
        let Some((ip, prefix)) = address(req) else {
            return Err(invalid(
                "ingress address",
                req.address.clone(),
                "not an IPv4 address with its prefix",
            ));
        };
        if prefix != net.subnet().prefix() || !net.subnet().contains(ip) {
            return Err(invalid(
                "ingress address",
                req.address.clone(),
                &format!("outside network {}'s subnet {}", net.name, net.subnet()),
            ));
        }
        for p in &req.ports {
            if !matches!(p.protocol.as_str(), "tcp" | "udp") || p.published == 0 || p.target == 0 {
                return Err(invalid(
                    "ingress port",
                    format!(
                        "{}:{}/{} of {}",
                        p.published, p.target, p.protocol, p.service
                    ),
                    "expected tcp or udp ports from 1 to 65535",
                ));
            }
        }
        let mut next = net.clone();
        next.ingress = Some(req.clone());
        let moved = net.ingress.as_ref().map(|i| &i.address) != Some(&req.address);
        self.join_host(&next, moved)?;
        st.networks.insert(next.id.clone(), next.clone());
        self.save(&st)?;
        self.apply_rules(&st)?;
        Ok(next.view(&st))
    }

    /// Give the host its place on `net`'s mesh (none set: nothing to do); `remake`:
    /// even when its link exists (the address changed).
    pub(super) fn join_host(&self, net: &NetRecord, remake: bool) -> Result<(), NetError> {
        let Some((ip, prefix)) = net.ingress.as_ref().and_then(address) else {
            return Ok(());
        };
        let link = host_link(&net.id);
        let exists = {
            let link = link.clone();
            netlink(None, move |nl| async move { nl.index(&link).await })?.is_some()
        };
        if exists && !remake {
            return Ok(());
        }
        let here = std::path::Path::new("/proc/thread-self/ns/net");
        let engine_ns = std::fs::File::open(here).map_err(io("open", here))?;
        let fd = engine_ns.as_raw_fd();
        let (bridge, mtu) = (net.bridge.clone(), net.mtu);
        let peer = link.clone();
        netlink(Some(&self.overlay_ns(&net.id)), move |nl| async move {
            nl.delete(BRIDGE_END).await?;
            nl.veth_into(BRIDGE_END, &peer, mtu, &bridge, fd).await
        })?;
        drop(engine_ns);
        let name = link.clone();
        netlink(None, move |nl| async move {
            nl.configure(&name, &name, mac_for(ip), mtu, (ip, prefix), None)
                .await
        })?;
        // Published ports asked on the host's loopback leave through it.
        set_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{link}/route_localnet"),
            "1",
        );
        Ok(())
    }

    /// Take the host off `net`'s mesh (its link gone; none: nothing to do).
    pub(super) fn leave_host(&self, net: &NetRecord) -> Result<(), NetError> {
        let link = host_link(&net.id);
        netlink(None, move |nl| async move { nl.delete(&link).await })?;
        Ok(())
    }
}

/// The mesh rules of `net` (none when it carries no mesh).
pub(super) fn mesh_rules(net: &NetRecord) -> Option<MeshRules> {
    let ingress = net.ingress.as_ref()?;
    let mut ports = ingress.ports.clone();
    ports.sort();
    Some(MeshRules {
        device: host_link(&net.id),
        ports,
    })
}
