//! The engine's packet rules as data, rendered to one nftables script that replaces
//! the table `ip orch` atomically (`nft -f -`): outbound NAT per network, isolation
//! between networks, `internal` networks sealed, published ports by DNAT so the
//! client's address is kept, and the routing mesh's ports DNAT'ed to one of their
//! backends on any node. orch touches no other table; in a container's namespace
//! it keeps `ip orch` (services' virtual addresses) and `ip orch-dns` (port 53 of
//! 127.0.0.11 to the embedded DNS server).

use api::network::IngressPort;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// The table orch owns.
pub const TABLE: &str = "orch";

/// One local bridge network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeRules {
    pub device: String,
    /// `172.18.0.0/24`.
    pub subnet: String,
    pub internal: bool,
}

/// One published port: `host_ip:host_port/protocol` -> `dest:dest_port`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRule {
    pub protocol: &'static str,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub dest: Ipv4Addr,
    pub dest_port: u16,
}

/// A service's virtual address in a container's namespace: new connections to it
/// go to one of `backends`, picked at random (none: refused at once).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VipRule {
    pub vip: Ipv4Addr,
    pub backends: Vec<Ipv4Addr>,
}

/// The routing mesh of one overlay: new connections to a published port on any
/// address of the host go to the target port of one of its backends, picked at
/// random, out of `device` (the host's link into the overlay) with the host's mesh
/// address, so the replies come back here. A port without backends is left to the
/// host (refused, unless something listens there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshRules {
    pub device: String,
    pub ports: Vec<IngressPort>,
}

/// Everything the table holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub bridges: Vec<BridgeRules>,
    pub ports: Vec<PortRule>,
    pub meshes: Vec<MeshRules>,
}

/// `numgen random mod N map { 0 : A, 1 : B }`: one of `backends` at random.
fn one_of(backends: &[Ipv4Addr]) -> String {
    let map: Vec<String> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{i} : {b}"))
        .collect();
    format!(
        "numgen random mod {} map {{ {} }}",
        backends.len(),
        map.join(", ")
    )
}

fn quoted(names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", list.join(", "))
}

/// The script: create-or-keep, delete, then define the table, in one transaction.
pub fn render(rules: &Ruleset) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{"
    );
    let hook = |s: &mut String, name: &str, kind: &str, hook: &str, prio: &str| {
        let _ = writeln!(
            s,
            "  chain {name} {{\n    type {kind} hook {hook} priority {prio}; policy accept;"
        );
    };
    // Published ports, from other hosts (prerouting) and from this one (output).
    let _ = writeln!(s, "  chain published {{");
    for p in &rules.ports {
        let daddr = p
            .host_ip
            .map(|ip| format!("ip daddr {ip} "))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "    {daddr}{proto} dport {port} dnat to {dest}:{dport}",
            proto = p.protocol,
            port = p.host_port,
            dest = p.dest,
            dport = p.dest_port
        );
    }
    // The mesh's ports after the host's own: a host port is the node's first.
    for m in &rules.meshes {
        for p in m.ports.iter().filter(|p| !p.backends.is_empty()) {
            let _ = writeln!(
                s,
                "    {proto} dport {port} dnat to {to} : {target}",
                proto = p.protocol,
                port = p.published,
                to = one_of(&p.backends),
                target = p.target
            );
        }
    }
    let _ = writeln!(s, "  }}");
    hook(&mut s, "prerouting", "nat", "prerouting", "dstnat");
    let _ = writeln!(s, "    fib daddr type local jump published\n  }}");
    hook(&mut s, "output", "nat", "output", "-100");
    let _ = writeln!(s, "    fib daddr type local jump published\n  }}");
    hook(&mut s, "postrouting", "nat", "postrouting", "srcnat");
    for m in &rules.meshes {
        let _ = writeln!(s, "    oifname \"{}\" masquerade", m.device);
    }
    for b in &rules.bridges {
        // Published ports reached from this host's loopback leave with the bridge's
        // address (the bridge has route_localnet set).
        let _ = writeln!(
            s,
            "    oifname \"{d}\" ip saddr 127.0.0.0/8 masquerade",
            d = b.device
        );
        if !b.internal {
            let _ = writeln!(
                s,
                "    ip saddr {net} oifname != \"{d}\" masquerade",
                net = b.subnet,
                d = b.device
            );
        }
    }
    let _ = writeln!(s, "  }}");
    hook(&mut s, "forward", "filter", "forward", "filter");
    // A published port is open to every network.
    let _ = writeln!(s, "    ct status dnat accept");
    for b in &rules.bridges {
        let d = b.device.as_str();
        if b.internal {
            let _ = writeln!(s, "    iifname \"{d}\" oifname != \"{d}\" drop");
            let _ = writeln!(s, "    oifname \"{d}\" iifname != \"{d}\" drop");
            continue;
        }
        let others: Vec<&str> = rules
            .bridges
            .iter()
            .map(|o| o.device.as_str())
            .filter(|o| *o != d)
            .collect();
        if !others.is_empty() {
            let _ = writeln!(s, "    iifname \"{d}\" oifname {} drop", quoted(&others));
        }
    }
    let _ = writeln!(s, "  }}");
    // Internal networks cannot reach the host either.
    hook(&mut s, "input", "filter", "input", "filter");
    for b in rules.bridges.iter().filter(|b| b.internal) {
        let _ = writeln!(s, "    iifname \"{}\" drop", b.device);
    }
    let _ = writeln!(s, "  }}\n}}");
    s
}

/// The script for the table `ip orch` of one container's namespace: its services'
/// virtual addresses, DNAT'ed as connections leave (`output`), so it covers exactly
/// the containers on the service's network whatever the driver. `numgen random`
/// rather than `inc`: each container counts on its own, so with `inc` every
/// container's first connection would go to the first backend. No rules: the table
/// goes.
pub fn render_vips(vips: &[VipRule]) -> String {
    let mut s = format!("table ip {TABLE}\ndelete table ip {TABLE}\n");
    if vips.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "table ip {TABLE} {{\n  chain vips {{\n    type nat hook output priority -100; policy accept;"
    );
    for v in vips.iter().filter(|v| !v.backends.is_empty()) {
        let _ = writeln!(s, "    ip daddr {} dnat to {}", v.vip, one_of(&v.backends));
    }
    let _ = writeln!(
        s,
        "  }}\n  chain idle {{\n    type filter hook output priority filter; policy accept;"
    );
    for v in vips.iter().filter(|v| v.backends.is_empty()) {
        let _ = writeln!(s, "    ip daddr {} reject", v.vip);
    }
    let _ = writeln!(s, "  }}\n}}");
    s
}

/// Replace the virtual-address table of the namespace this thread is in.
pub fn apply_vips(vips: &[VipRule]) -> Result<(), NftError> {
    nft(&render_vips(vips))
}

/// The table of a container's namespace that sends its DNS traffic to the
/// embedded server, so port 53 stays free for the container's own.
pub const DNS_TABLE: &str = "orch-dns";

/// Where the embedded DNS server of a container listens: its address (127.0.0.11)
/// at a port of the kernel's choice for each of UDP and TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsRedirect {
    pub address: Ipv4Addr,
    pub udp: u16,
    pub tcp: u16,
}

impl std::fmt::Display for DnsRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.address;
        write!(f, "{a}:53 to udp {a}:{} and tcp {a}:{}", self.udp, self.tcp)
    }
}

/// The script for the table `ip orch-dns` of one container's namespace (like
/// Docker's rules for 127.0.0.11): queries to port 53 of the server's address,
/// from the container itself (`output`: loopback traffic takes that hook), are
/// DNAT'ed to the ports it listens on; conntrack turns the replies' source back
/// to port 53, and a reply outside a tracked flow (its entry expired) is SNAT'ed
/// back to 53 too, as a resolver drops a reply from another port.
///
/// The table is flushed, not deleted, before it is defined again (its chains never
/// change): a delete in the transaction made each container's start 13 ms slower.
pub fn render_dns(r: &DnsRedirect) -> String {
    let a = r.address;
    let mut s = format!("table ip {DNS_TABLE}\nflush table ip {DNS_TABLE}\n");
    let _ = writeln!(
        s,
        "table ip {DNS_TABLE} {{\n  chain output {{\n    type nat hook output priority -100; policy accept;"
    );
    for (proto, port) in [("udp", r.udp), ("tcp", r.tcp)] {
        let _ = writeln!(s, "    ip daddr {a} {proto} dport 53 dnat to {a}:{port}");
    }
    let _ = writeln!(
        s,
        "  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;"
    );
    for (proto, port) in [("udp", r.udp), ("tcp", r.tcp)] {
        let _ = writeln!(s, "    ip saddr {a} {proto} sport {port} snat to {a}:53");
    }
    let _ = writeln!(s, "  }}\n}}");
    s
}

/// Replace the DNS table of the namespace this thread is in.
pub fn apply_dns(r: &DnsRedirect) -> Result<(), NftError> {
    nft(&render_dns(r))
}

/// Why the rules could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("nft: {0} (orch needs the nftables program: apt-get install nftables)")]
pub struct NftError(pub(super) String);

fn nft(script: &str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NftError(format!("run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NftError(format!("write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NftError(format!("wait for nft: {e}")))?;
    if !out.status.success() {
        return Err(NftError(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

/// Replace the table with `rules` in one transaction.
pub fn apply(rules: &Ruleset) -> Result<(), NftError> {
    nft(&render(rules))
}

/// Remove the table (nothing of orch's stays behind).
pub fn remove() -> Result<(), NftError> {
    nft(&format!("table ip {TABLE}\ndelete table ip {TABLE}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nat_isolation_and_ports() {
        let rules = Ruleset {
            bridges: vec![
                BridgeRules {
                    device: "orch0".into(),
                    subnet: "172.18.0.0/24".into(),
                    internal: false,
                },
                BridgeRules {
                    device: "orchb1".into(),
                    subnet: "172.18.1.0/24".into(),
                    internal: true,
                },
            ],
            ports: vec![PortRule {
                protocol: "udp",
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 5353,
                dest: Ipv4Addr::new(172, 18, 0, 2),
                dest_port: 53,
            }],
            meshes: Vec::new(),
        };
        let s = render(&rules);
        assert!(s.starts_with("table ip orch\ndelete table ip orch\n"));
        assert!(s.contains("ip daddr 127.0.0.1 udp dport 5353 dnat to 172.18.0.2:53"));
        assert!(s.contains("ip saddr 172.18.0.0/24 oifname != \"orch0\" masquerade"));
        assert!(
            !s.contains("ip saddr 172.18.1.0/24"),
            "internal: no NAT\n{s}"
        );
        assert!(s.contains("iifname \"orch0\" oifname { \"orchb1\" } drop"));
        assert!(s.contains("iifname \"orchb1\" oifname != \"orchb1\" drop"));
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    #[test]
    fn renders_mesh_ports_after_host_ports_and_masquerades_out_of_the_mesh() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let port = |published, backends: Vec<Ipv4Addr>| IngressPort {
            service: "shop_web".into(),
            protocol: "tcp".into(),
            published,
            target: 80,
            backends,
        };
        let rules = Ruleset {
            ports: vec![PortRule {
                protocol: "tcp",
                host_ip: None,
                host_port: 9000,
                dest: ip("172.18.0.2"),
                dest_port: 90,
            }],
            meshes: vec![MeshRules {
                device: "ig0123456789".into(),
                ports: vec![
                    port(8080, vec![ip("10.0.0.5"), ip("10.0.0.6")]),
                    port(8081, vec![]),
                ],
            }],
            ..Ruleset::default()
        };
        let s = render(&rules);
        let mesh =
            "tcp dport 8080 dnat to numgen random mod 2 map { 0 : 10.0.0.5, 1 : 10.0.0.6 } : 80";
        assert!(s.contains(mesh), "{s}");
        assert!(s.find("dport 9000").unwrap() < s.find(mesh).unwrap());
        assert!(!s.contains("8081"), "no backends: no rule\n{s}");
        assert!(s.contains("oifname \"ig0123456789\" masquerade"));
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    #[test]
    fn renders_the_dns_redirect_both_ways_for_udp_and_tcp() {
        let s = render_dns(&DnsRedirect {
            address: Ipv4Addr::new(127, 0, 0, 11),
            udp: 41000,
            tcp: 42000,
        });
        assert!(
            s.starts_with("table ip orch-dns\nflush table ip orch-dns\n"),
            "{s}"
        );
        for rule in [
            "type nat hook output priority -100;",
            "ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:41000",
            "ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:42000",
            "type nat hook postrouting priority srcnat;",
            "ip saddr 127.0.0.11 udp sport 41000 snat to 127.0.0.11:53",
            "ip saddr 127.0.0.11 tcp sport 42000 snat to 127.0.0.11:53",
        ] {
            assert!(s.contains(rule), "{rule} not in\n{s}");
        }
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    #[test]
    fn renders_vips_spread_at_random_and_idle_ones_refused() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let s = render_vips(&[
            VipRule {
                vip: ip("10.0.0.100"),
                backends: vec![ip("10.0.0.2"), ip("10.0.0.3")],
            },
            VipRule {
                vip: ip("10.0.0.101"),
                backends: vec![],
            },
        ]);
        assert!(s.contains(
            "ip daddr 10.0.0.100 dnat to numgen random mod 2 map { 0 : 10.0.0.2, 1 : 10.0.0.3 }"
        ));
        assert!(s.contains("ip daddr 10.0.0.101 reject"));
        assert_eq!(s.matches('{').count(), s.matches('}').count());
        assert_eq!(
            render_vips(&[]),
            "table ip orch\ndelete table ip orch\n",
            "no services: the table goes"
        );
    }
}
