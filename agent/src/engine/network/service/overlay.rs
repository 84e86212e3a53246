//! Overlay peers: the remote endpoints of an overlay network, programmed as
//! forwarding-database and neighbour entries of its vxlan device, only the
//! differences touching the kernel.

use super::{Driver, NetError, NetRecord, NetworkService, OVERLAY_VXLAN, ipv4};
use crate::engine::network::link::{LinkError, netlink, parse_mac};
use api::network::{Network, OverlayPeer, OverlayPeers};
use std::net::Ipv4Addr;

impl NetworkService {
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
            Some(l) => Some(ipv4("local address", l)?),
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

    pub(super) fn program_peers(
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
