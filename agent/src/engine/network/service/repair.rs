//! What an agent restart or a host reboot left: devices, namespaces, endpoints and
//! peers made again from the state; links and namespaces of orch that nothing refers
//! to removed; setups of containers that never came to be released.

use super::{
    BRIDGE_PREFIX, Driver, EndpointRecord, Mode, NetError, NetworkService, State, VETH_PREFIX,
    endpoints::first_gateway, ingress, io,
};
use crate::engine::network::link::netlink;
use crate::engine::network::netns;
use std::collections::BTreeSet;

impl NetworkService {
    /// Bring kernel objects in line with the state: networks' devices, containers'
    /// namespaces and endpoints (after a reboot), overlay peers, the rules; remove
    /// namespaces and links of orch that nothing refers to.
    pub(super) fn repair(&self, st: &mut State) -> Result<(), NetError> {
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
        keep.extend(
            st.networks
                .values()
                .filter(|n| n.ingress.is_some())
                .map(|n| ingress::host_link(&n.id)),
        );
        for n in st.networks.values().filter(|n| n.driver == Driver::Bridge) {
            keep.extend(n.endpoints.values().map(|e| e.veth.clone()));
        }
        let names = netlink(None, |nl| async move { nl.names().await })?;
        let stale: Vec<String> = names
            .into_iter()
            .filter(|n| {
                (n.starts_with(VETH_PREFIX) && n.len() == 12
                    || n.starts_with(BRIDGE_PREFIX) && n.len() == 13
                    || (n.starts_with("vx") || n.starts_with("ig")) && n.len() == 12)
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

    /// Undo the network setup of every container not in `known` (the engine's
    /// containers): what a crash between a create's steps left — a namespace,
    /// endpoints, ports, a DNS server — for a container that never came to be.
    /// Returns the names of those released.
    pub fn release_unknown(&self, known: &BTreeSet<String>) -> Result<Vec<String>, NetError> {
        let mut st = self.lock();
        let stale: Vec<(String, String)> = st
            .containers
            .iter()
            .filter(|(cid, _)| !known.contains(*cid))
            .map(|(cid, a)| (cid.clone(), a.name.clone()))
            .collect();
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        for (cid, _) in &stale {
            self.release_locked(&mut st, cid)?;
        }
        self.save(&st)?;
        self.refresh(&st)?;
        self.apply_rules(&st)?;
        Ok(stale.into_iter().map(|(_, name)| name).collect())
    }
}
