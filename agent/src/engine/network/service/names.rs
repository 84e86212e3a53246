//! Names: each container's embedded DNS server and the names it may answer (its
//! networks' containers, aliases, overlay peers and services).

use super::{DNS_ADDRESS, DnsEntry, Mode, NetError, NetRecord, NetworkService, State, io};
use crate::engine::network::dns::{DnsServer, Records};
use crate::engine::network::netns;
use crate::engine::network::nft::{self, DnsRedirect};
use crate::engine::network::vip;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::MutexGuard;

impl NetworkService {
    /// Serve DNS at 127.0.0.11:53 inside container `cid`'s namespace: the server
    /// listens on other ports and the namespace's `orch-dns` table sends port 53
    /// there, so the container's own programs may bind port 53 (a DNS server of
    /// the user's). A restart of the engine replaces ports and table.
    pub(super) fn start_dns(&self, st: &State, cid: &str) -> Result<(), NetError> {
        let Some(a) = st.containers.get(cid) else {
            return Ok(());
        };
        if a.mode != Mode::Own || a.isolated {
            return Ok(());
        }
        let path = self.netns_path(cid);
        let (udp, tcp) = netns::run_in(Some(&path), || listen_redirected(&path, &a.name))
            .map_err(io("enter the network namespace", &path))??;
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

/// In the namespace at `path` (this thread's), of container `name`: the DNS
/// server's UDP socket and TCP listener on 127.0.0.11 at ports the kernel picks,
/// and the table that sends 127.0.0.11:53 to them.
fn listen_redirected(path: &Path, name: &str) -> Result<(UdpSocket, TcpListener), NetError> {
    let any = SocketAddr::from((DNS_ADDRESS, 0));
    let udp = UdpSocket::bind(any).map_err(io(
        "bind the DNS server's UDP socket to 127.0.0.11 in",
        path,
    ))?;
    let tcp = TcpListener::bind(any).map_err(io(
        "bind the DNS server's TCP listener to 127.0.0.11 in",
        path,
    ))?;
    let redirect = DnsRedirect {
        address: DNS_ADDRESS,
        udp: udp
            .local_addr()
            .map_err(io("read the DNS server's UDP port in", path))?
            .port(),
        tcp: tcp
            .local_addr()
            .map_err(io("read the DNS server's TCP port in", path))?
            .port(),
    };
    nft::apply_dns(&redirect).map_err(|source| NetError::DnsRedirect {
        container: name.to_owned(),
        redirect,
        source,
    })?;
    Ok((udp, tcp))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::lan::Host;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// Why this host cannot run the kernel test, if it cannot.
    fn cannot_redirect() -> Option<&'static str> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("needs root (a network namespace)");
        }
        let nft = std::process::Command::new("nft").arg("--version").output();
        if !nft.is_ok_and(|o| o.status.success()) {
            return Some("nft is missing (scripts/setup installs nftables)");
        }
        None
    }

    /// A datagram to 127.0.0.11:53 reaches `udp`, and its reply comes from port 53.
    fn udp_round_trip(udp: &UdpSocket) {
        let dns = SocketAddr::from((DNS_ADDRESS, 53));
        let client = UdpSocket::bind("0.0.0.0:0").unwrap();
        for s in [&client, udp] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        client.send_to(b"query", dns).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = udp
            .recv_from(&mut buf)
            .expect("the query reaches the server");
        assert_eq!(&buf[..n], b"query");
        udp.send_to(b"reply", from).unwrap();
        let (n, source) = client.recv_from(&mut buf).expect("the reply comes back");
        assert_eq!((&buf[..n], source), (&b"reply"[..], dns));
        // A reply in no tracked flow (its entry expired) is sent from port 53 too.
        let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
        quiet
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        udp.send_to(b"late", quiet.local_addr().unwrap()).unwrap();
        let (n, source) = quiet.recv_from(&mut buf).expect("the late reply arrives");
        assert_eq!((&buf[..n], source), (&b"late"[..], dns));
    }

    /// A connection to 127.0.0.11:53 is accepted by `tcp`.
    fn tcp_round_trip(tcp: &TcpListener) {
        let mut client = TcpStream::connect((DNS_ADDRESS, 53)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let (mut server, _) = tcp.accept().unwrap();
        server.write_all(b"reply").unwrap();
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"reply");
    }

    #[test]
    fn port_53_of_the_dns_address_reaches_the_server_and_stays_free() {
        if let Some(why) = cannot_redirect() {
            eprintln!("SKIP port 53 redirect: {why}");
            return;
        }
        let path = std::env::temp_dir().join(format!("orch-dns53-{}.netns", std::process::id()));
        let host = Host::create(&path).unwrap();
        host.run(|| {
            // The first server's ports and table, then a restart's: the second wins.
            let _first = listen_redirected(&path, "probe").unwrap();
            let (udp, tcp) = listen_redirected(&path, "probe").unwrap();
            // The container's own server binds port 53 everywhere...
            for addr in ["[::]:53", "0.0.0.0:53"] {
                let own = (UdpSocket::bind(addr), TcpListener::bind(addr));
                assert!(own.0.is_ok() && own.1.is_ok(), "bind {addr}: {own:?}");
            }
            let _own = (
                UdpSocket::bind("0.0.0.0:53").unwrap(),
                TcpListener::bind("0.0.0.0:53").unwrap(),
            );
            // ... and 127.0.0.11:53 still reaches the embedded one.
            udp_round_trip(&udp);
            tcp_round_trip(&tcp);
        })
        .unwrap();
    }

    #[test]
    fn a_failed_redirect_names_the_container_and_the_rule() {
        let e = NetError::DnsRedirect {
            container: "shop-web-1".into(),
            redirect: DnsRedirect {
                address: DNS_ADDRESS,
                udp: 41000,
                tcp: 42000,
            },
            source: nft::NftError("Error: Could not process rule".into()),
        };
        assert_eq!(
            e.to_string(),
            "container shop-web-1: send 127.0.0.11:53 to udp 127.0.0.11:41000 and tcp \
             127.0.0.11:42000 (table ip orch-dns): nft: Error: Could not process rule \
             (orch needs the nftables program: apt-get install nftables)"
        );
    }
}
