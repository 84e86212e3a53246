//! Services on a network (`PUT /v1/networks/{id}/services`): their names go to the
//! DNS of every container on the network, their virtual addresses become DNAT rules
//! in each such container's own namespace.
//!
//! Why there and not once where the traffic passes: on a bridge network a
//! container reaches a virtual address in its subnet by ARP, which no bridge port
//! answers, and bridged frames skip the host's IP hooks; an overlay's namespace has
//! no address at all. A rule on the container's `output` hook sees every
//! connection the container opens, whatever the driver, before routing picks a
//! link, so the virtual address needs no owner, a backend reaches its own service
//! (hairpin) for free, and only containers on the network see the rule. The cost
//! is one `nft` run per container of the network when the set changes; only
//! namespaces whose rules changed are touched, and each is replaced in one
//! transaction, so established connections keep their backend.

use super::{NetError, NetworkService, State, io};
use crate::engine::network::netns;
use crate::engine::network::nft::{self, VipRule};
use crate::engine::network::vip;
use api::network::{Network, ServiceEndpoints};
use std::collections::BTreeMap;
use std::sync::MutexGuard;

impl NetworkService {
    /// `PUT /v1/networks/{id}/services`: replace the network's services. Virtual
    /// addresses are taken from the network's addresses (so no container gets one)
    /// and given back when their service goes.
    pub fn set_services(&self, network: &str, req: &ServiceEndpoints) -> Result<Network, NetError> {
        let mut st = self.lock();
        let net = Self::find(&st, network)?.clone();
        vip::check(&req.services, net.subnet()).map_err(|source| NetError::Service {
            network: net.name.clone(),
            source,
        })?;
        let (old, new) = (vip::vips(&net.services), vip::vips(&req.services));
        let mut next = net.clone();
        let mut taken = Vec::new();
        for ip in new.difference(&old) {
            match next.ipam.allocate(Some(*ip)) {
                Ok(ip) => taken.push(ip),
                Err(source) => {
                    return Err(NetError::Address {
                        network: net.name.clone(),
                        source,
                    });
                }
            }
        }
        for ip in old.difference(&new) {
            next.ipam.release(*ip);
        }
        next.services = req.services.clone();
        st.networks.insert(next.id.clone(), next.clone());
        self.save(&st)?;
        self.refresh(&st)?;
        Ok(next.view(&st))
    }

    pub(super) fn vips_lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<VipRule>>> {
        self.vips.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bring each container's virtual-address rules in line with its networks'
    /// services, touching only namespaces whose rules changed.
    pub(super) fn sync_vips(&self, st: &State) -> Result<(), NetError> {
        let mut applied = self.vips_lock();
        for cid in st.containers.keys() {
            if !st.containers[cid].owns_endpoints() {
                continue;
            }
            let services: Vec<_> = st
                .networks
                .values()
                .filter(|n| n.endpoints.contains_key(cid))
                .flat_map(|n| n.services.iter().cloned())
                .collect();
            let want = vip::rules(&services);
            if applied.get(cid) == Some(&want) {
                continue;
            }
            let path = self.netns_path(cid);
            netns::run_in(Some(&path), || nft::apply_vips(&want))
                .map_err(io("enter the network namespace", &path))??;
            applied.insert(cid.clone(), want);
        }
        Ok(())
    }
}
