//! Services on a network, as the engine is told them (`PUT .../services`): checking
//! a new set, the names they add to a container's DNS, and the virtual-address rules
//! a container on the network needs. Pure: the service module applies the result.
//!
//! In `vip` mode the service's name and aliases answer its virtual address and
//! `tasks.NAME` every backend; a connection to the virtual address is spread over
//! the backends by a DNAT rule in the connecting container's own namespace. In
//! `dnsrr` mode the name answers the backends themselves (rotated per query).

use super::dns::Records;
use super::nft::VipRule;
use super::subnet::Subnet;
use api::network::{EndpointMode, ServiceEndpoint};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// What is wrong with one service of a new set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceProblem {
    #[error("service name {0:?}: use letters, digits, _ . - (starting with a letter or digit)")]
    BadName(String),
    #[error("service {0}: the name is given twice")]
    Duplicate(String),
    #[error("service {0}: vip mode needs a virtual address")]
    NoVip(String),
    #[error("service {0}: dnsrr mode has no virtual address")]
    VipInDnsrr(String),
    #[error("service {service}: {ip} is not in the network's subnet {subnet}")]
    Outside {
        service: String,
        ip: Ipv4Addr,
        subnet: Subnet,
    },
    #[error("service {service}: virtual address {ip} is another service's too")]
    SharedVip { service: String, ip: Ipv4Addr },
}

/// Whether `name` may be a DNS name of the engine's.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Check a complete set of services for a network with `subnet`.
pub fn check(services: &[ServiceEndpoint], subnet: Subnet) -> Result<(), ServiceProblem> {
    let mut names = BTreeSet::new();
    let mut vips = BTreeSet::new();
    for s in services {
        for n in std::iter::once(&s.name).chain(&s.aliases) {
            if !valid_name(n) {
                return Err(ServiceProblem::BadName(n.clone()));
            }
            if !names.insert(n.to_ascii_lowercase()) {
                return Err(ServiceProblem::Duplicate(n.clone()));
            }
        }
        let outside = |ip: Ipv4Addr| ServiceProblem::Outside {
            service: s.name.clone(),
            ip,
            subnet,
        };
        match (s.mode, s.vip) {
            (EndpointMode::Vip, None) => return Err(ServiceProblem::NoVip(s.name.clone())),
            (EndpointMode::Dnsrr, Some(_)) => {
                return Err(ServiceProblem::VipInDnsrr(s.name.clone()));
            }
            (EndpointMode::Vip, Some(ip)) => {
                if !subnet.contains(ip) {
                    return Err(outside(ip));
                }
                if !vips.insert(ip) {
                    return Err(ServiceProblem::SharedVip {
                        service: s.name.clone(),
                        ip,
                    });
                }
            }
            (EndpointMode::Dnsrr, None) => {}
        }
        if let Some(ip) = s.backends.iter().find(|ip| !subnet.contains(**ip)) {
            return Err(outside(*ip));
        }
    }
    Ok(())
}

/// The virtual addresses of `services`.
pub fn vips(services: &[ServiceEndpoint]) -> BTreeSet<Ipv4Addr> {
    services
        .iter()
        .filter(|s| s.mode == EndpointMode::Vip)
        .filter_map(|s| s.vip)
        .collect()
}

/// Add the names of `services` to `records`: `tasks.NAME` to every backend; the
/// name and aliases to the virtual address (vip) or to the backends (dnsrr).
pub fn add_records(records: &mut Records, services: &[ServiceEndpoint]) {
    for s in services {
        for ip in &s.backends {
            records.insert(&format!("tasks.{}", s.name), *ip);
        }
        let targets: Vec<Ipv4Addr> = match (s.mode, s.vip) {
            (EndpointMode::Vip, Some(vip)) => vec![vip],
            (EndpointMode::Vip, None) => Vec::new(),
            (EndpointMode::Dnsrr, _) => s.backends.clone(),
        };
        for name in std::iter::once(&s.name).chain(&s.aliases) {
            for ip in &targets {
                records.insert(name, *ip);
            }
        }
    }
}

/// The virtual-address rules of `services` (for a container on their network).
pub fn rules(services: &[ServiceEndpoint]) -> Vec<VipRule> {
    let mut out: Vec<VipRule> = services
        .iter()
        .filter(|s| s.mode == EndpointMode::Vip)
        .filter_map(|s| {
            let mut backends = s.backends.clone();
            backends.sort();
            backends.dedup();
            Some(VipRule {
                vip: s.vip?,
                backends,
            })
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn subnet() -> Subnet {
        "10.0.0.0/24".parse().unwrap()
    }

    fn svc(
        name: &str,
        mode: EndpointMode,
        vip: Option<&str>,
        backends: &[&str],
    ) -> ServiceEndpoint {
        ServiceEndpoint {
            name: name.into(),
            aliases: Vec::new(),
            mode,
            vip: vip.map(ip),
            backends: backends.iter().map(|b| ip(b)).collect(),
        }
    }

    #[test]
    fn vip_names_answer_the_vip_and_tasks_every_backend() {
        let mut web = svc(
            "web",
            EndpointMode::Vip,
            Some("10.0.0.100"),
            &["10.0.0.2", "10.0.0.3"],
        );
        web.aliases = vec!["web.shop".into()];
        let db = svc("db", EndpointMode::Dnsrr, None, &["10.0.0.4", "10.0.0.5"]);
        let mut r = Records::new();
        add_records(&mut r, &[web, db]);
        assert_eq!(r.lookup("web"), [ip("10.0.0.100")]);
        assert_eq!(r.lookup("web.shop"), [ip("10.0.0.100")]);
        assert_eq!(r.lookup("tasks.web"), [ip("10.0.0.2"), ip("10.0.0.3")]);
        assert_eq!(r.lookup("db"), [ip("10.0.0.4"), ip("10.0.0.5")]);
        assert_eq!(r.lookup("tasks.db"), [ip("10.0.0.4"), ip("10.0.0.5")]);
    }

    #[test]
    fn rules_cover_vip_services_only_sorted() {
        let set = [
            svc(
                "b",
                EndpointMode::Vip,
                Some("10.0.0.101"),
                &["10.0.0.3", "10.0.0.2", "10.0.0.3"],
            ),
            svc("a", EndpointMode::Vip, Some("10.0.0.100"), &[]),
            svc("c", EndpointMode::Dnsrr, None, &["10.0.0.4"]),
        ];
        let r = rules(&set);
        assert_eq!(
            r,
            vec![
                VipRule {
                    vip: ip("10.0.0.100"),
                    backends: vec![]
                },
                VipRule {
                    vip: ip("10.0.0.101"),
                    backends: vec![ip("10.0.0.2"), ip("10.0.0.3")]
                },
            ]
        );
        assert_eq!(vips(&set).len(), 2);
    }

    #[test]
    fn a_bad_set_is_refused_with_the_service_named() {
        let cases = [
            (
                vec![svc("-x", EndpointMode::Dnsrr, None, &[])],
                "service name \"-x\"",
            ),
            (
                vec![svc("web", EndpointMode::Vip, None, &[])],
                "vip mode needs",
            ),
            (
                vec![svc("web", EndpointMode::Dnsrr, Some("10.0.0.9"), &[])],
                "dnsrr mode has no",
            ),
            (
                vec![svc("web", EndpointMode::Vip, Some("10.1.0.9"), &[])],
                "10.1.0.9 is not in the network's subnet 10.0.0.0/24",
            ),
            (
                vec![svc("web", EndpointMode::Dnsrr, None, &["192.168.0.1"])],
                "service web: 192.168.0.1 is not in",
            ),
            (
                vec![
                    svc("web", EndpointMode::Dnsrr, None, &[]),
                    svc("WEB", EndpointMode::Dnsrr, None, &[]),
                ],
                "the name is given twice",
            ),
            (
                vec![
                    svc("a", EndpointMode::Vip, Some("10.0.0.9"), &[]),
                    svc("b", EndpointMode::Vip, Some("10.0.0.9"), &[]),
                ],
                "another service's too",
            ),
        ];
        for (set, needle) in cases {
            let e = check(&set, subnet()).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        assert_eq!(
            check(
                &[svc(
                    "web",
                    EndpointMode::Vip,
                    Some("10.0.0.9"),
                    &["10.0.0.2"]
                )],
                subnet()
            ),
            Ok(())
        );
    }
}
