//! Names: each container's embedded DNS server and the names it may answer (its
//! networks' containers, aliases, overlay peers and services).

use super::{DNS_ADDRESS, DnsEntry, Mode, NetError, NetRecord, NetworkService, State, io};
use crate::engine::network::dns::{DnsServer, Records};
use crate::engine::network::netns;
use crate::engine::network::vip;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::MutexGuard;

impl NetworkService {
    /// Serve DNS on 127.0.0.11:53 inside container `cid`'s namespace.
    pub(super) fn start_dns(&self, st: &State, cid: &str) -> Result<(), NetError> {
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
        let records = records_for(st, &networks_of(st, cid), &self.stopped_lock());
        let (tx, rx) = tokio::sync::watch::channel(records);
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

    pub(super) fn dns_lock(&self) -> MutexGuard<'_, BTreeMap<String, DnsEntry>> {
        self.dns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Give every container's DNS server the names it may see now, and its
    /// namespace the virtual addresses of its networks' services.
    ///
    /// Containers on the same networks see the same names, so the table is built once
    /// per set of networks: a refresh costs the size of the tables, not that times the
    /// number of containers (100 replicas made it the engine's hottest path).
    pub(super) fn refresh(&self, st: &State) -> Result<(), NetError> {
        let stopped = self.stopped_lock().clone();
        let mut tables: BTreeMap<Vec<&str>, Records> = BTreeMap::new();
        for (cid, entry) in self.dns_lock().iter() {
            let nets = networks_of(st, cid);
            let key = nets.iter().map(|n| n.id.as_str()).collect();
            let records = tables
                .entry(key)
                .or_insert_with(|| records_for(st, &nets, &stopped));
            entry.records.send_if_modified(|current| {
                let changed = current != records;
                if changed {
                    *current = records.clone();
                }
                changed
            });
        }
        self.sync_vips(st)
    }
}

/// The networks container `cid` is on, in id order.
fn networks_of<'a>(st: &'a State, cid: &str) -> Vec<&'a NetRecord> {
    st.networks
        .values()
        .filter(|n| n.endpoints.contains_key(cid))
        .collect()
}

/// The names a container on `nets` may resolve: on each network, every container's
/// name, its aliases and `tasks.ALIAS` (all of an alias' addresses), and an
/// overlay's remote endpoints likewise; containers in `stopped` have no name (like
/// Docker, a stopped container's name does not resolve until it runs again). Names
/// go in before aliases, so an address' reverse lookup gives its container.
fn records_for(st: &State, nets: &[&NetRecord], stopped: &BTreeSet<String>) -> Records {
    let mut r = Records::new();
    for n in nets {
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
    for n in nets {
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
