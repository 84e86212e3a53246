//! Published ports and the host's packet rules: host ports checked and chosen, and
//! the whole state's rules (NAT, isolation, ports) rendered and applied.

use super::{Driver, NetError, NetworkService, State, ingress};
use crate::engine::network::nft::{self, BridgeRules, PortRule, Ruleset};
use crate::engine::network::ports::{self, PortSpec};
use api::network::PortBinding;
use std::net::Ipv4Addr;

impl NetworkService {
    /// The packet rules of the whole state.
    pub(super) fn ruleset(st: &State) -> Ruleset {
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
        let meshes = st
            .networks
            .values()
            .filter_map(ingress::mesh_rules)
            .collect();
        Ruleset {
            bridges,
            ports,
            meshes,
        }
    }

    /// Applies the host's rules when they differ from those last applied.
    pub(super) fn apply_rules(&self, st: &State) -> Result<(), NetError> {
        let want = Self::ruleset(st);
        let mut applied = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        if applied.as_ref() != Some(&want) {
            nft::apply(&want)?;
            *applied = Some(want);
        }
        Ok(())
    }

    /// Check and choose host ports for `specs`.
    pub(super) fn bind_ports(
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
}

/// The address published ports lead to: the first non-internal bridge endpoint.
fn primary_address(st: &State, cid: &str) -> Option<Ipv4Addr> {
    st.networks
        .values()
        .filter(|n| n.driver == Driver::Bridge && !n.internal)
        .find_map(|n| n.endpoints.get(cid).map(|e| e.ip))
}

/// Whether nothing on the host listens on `ip:port` (a bind succeeds).
fn free_on_host(ip: Ipv4Addr, port: u16, protocol: &str) -> bool {
    let addr = std::net::SocketAddr::from((ip, port));
    match protocol {
        "udp" => std::net::UdpSocket::bind(addr).is_ok(),
        _ => std::net::TcpListener::bind(addr).is_ok(),
    }
}
