//! Containers' places on networks: a new container's namespace and endpoints
//! (network modes, several networks, aliases, static addresses, MAC addresses), the
//! veth between a bridge and the container, connect, disconnect and release.

use super::{
    Attachment, DEFAULT_NETWORK, Driver, EndpointRecord, Mode, NetError, NetNs, NetRecord,
    NetworkService, Prepared, Request, State, VETH_PREFIX, host_resolv_conf, io, ipv4, tag,
};
use crate::engine::network::link::{mac_for, netlink, parse_mac};
use crate::engine::network::netns;
use crate::engine::network::vip::valid_name;
use api::network::NetworkAttach;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

impl NetworkService {
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
    pub(super) fn join(
        &self,
        st: &mut State,
        cid: &str,
        w: &NetworkAttach,
    ) -> Result<(), NetError> {
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
            Some(ip) => Some(ipv4("ip address", ip)?),
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
    pub(super) fn plumb(
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
            nl.configure(&peer, &ifname, mac, mtu, addr, gateway).await
        })?;
        Ok(())
    }

    /// Undo [`NetworkService::prepare`]: endpoints, addresses, ports, namespace.
    pub fn release(&self, cid: &str) -> Result<(), NetError> {
        let mut st = self.lock();
        self.release_locked(&mut st, cid)?;
        self.save(&st)?;
        self.refresh(&st)?;
        self.apply_rules(&st)
    }

    pub(super) fn release_locked(&self, st: &mut State, cid: &str) -> Result<(), NetError> {
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

    pub(super) fn leave(&self, st: &mut State, cid: &str, nid: &str) -> Result<(), NetError> {
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
}

/// The first network of `cid` other than `nid` that gives a default route (or
/// `nid`'s gateway when none does yet).
pub(super) fn first_gateway(st: &State, cid: &str, nid: &str) -> Option<Ipv4Addr> {
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
