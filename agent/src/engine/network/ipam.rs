//! Address management for one subnet: the gateway and every endpoint get distinct
//! addresses, and a released address is handed out again only after every other
//! free one has been (a cursor walks the subnet), so a stale peer that still knows
//! an old address rarely meets a new owner.

use super::subnet::Subnet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Why an address could not be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("{ip} is not in the network's subnet {subnet}")]
    Outside { ip: Ipv4Addr, subnet: Subnet },
    #[error("{ip} is taken on this network (the gateway, or another container's address)")]
    Taken { ip: Ipv4Addr },
    #[error("{ip} is the subnet's network or broadcast address")]
    Reserved { ip: Ipv4Addr },
    #[error("no address left in {subnet}")]
    Exhausted { subnet: Subnet },
}

/// The addresses of one subnet in use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    subnet: Subnet,
    used: BTreeSet<Ipv4Addr>,
    /// The offset the next search starts from.
    cursor: u32,
}

impl Ipam {
    /// An empty pool over `subnet`, with `gateway` (if any) taken.
    pub fn new(subnet: Subnet, gateway: Option<Ipv4Addr>) -> Result<Ipam, IpamError> {
        let mut ipam = Ipam {
            subnet,
            used: BTreeSet::new(),
            cursor: 1,
        };
        if let Some(gw) = gateway {
            ipam.allocate(Some(gw))?;
        }
        Ok(ipam)
    }

    fn usable(&self, offset: u32) -> bool {
        offset != 0 && offset != self.subnet.size() - 1
    }

    /// Take `want`, or the next free address after the cursor.
    pub fn allocate(&mut self, want: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        let size = self.subnet.size();
        if let Some(ip) = want {
            let offset = self.subnet.offset(ip).ok_or(IpamError::Outside {
                ip,
                subnet: self.subnet,
            })?;
            if !self.usable(offset) {
                return Err(IpamError::Reserved { ip });
            }
            if !self.used.insert(ip) {
                return Err(IpamError::Taken { ip });
            }
            return Ok(ip);
        }
        for step in 0..size {
            let offset = (self.cursor + step) % size;
            let ip = self.subnet.nth(offset);
            if self.usable(offset) && !self.used.contains(&ip) {
                self.used.insert(ip);
                self.cursor = (offset + 1) % size;
                return Ok(ip);
            }
        }
        Err(IpamError::Exhausted {
            subnet: self.subnet,
        })
    }

    /// Give `ip` back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn gateway_then_hosts_and_no_early_reuse() {
        let mut p = Ipam::new("10.0.0.0/29".parse().unwrap(), Some(ip("10.0.0.1"))).unwrap();
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.2"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.3"));
        p.release(ip("10.0.0.2"));
        // .2 is free again but .4 .. .6 come first.
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.4"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.5"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.6"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.2"));
        assert!(matches!(p.allocate(None), Err(IpamError::Exhausted { .. })));
    }

    #[test]
    fn static_addresses_are_checked() {
        let mut p = Ipam::new("10.0.0.0/24".parse().unwrap(), Some(ip("10.0.0.1"))).unwrap();
        assert_eq!(p.allocate(Some(ip("10.0.0.9"))).unwrap(), ip("10.0.0.9"));
        assert!(matches!(
            p.allocate(Some(ip("10.0.0.9"))),
            Err(IpamError::Taken { .. })
        ));
        assert!(matches!(
            p.allocate(Some(ip("10.0.0.1"))),
            Err(IpamError::Taken { .. })
        ));
        assert!(matches!(
            p.allocate(Some(ip("10.0.1.9"))),
            Err(IpamError::Outside { .. })
        ));
        assert!(matches!(
            p.allocate(Some(ip("10.0.0.255"))),
            Err(IpamError::Reserved { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_hands_out_an_address_twice(ops in proptest::collection::vec(0u8..4, 1..200)) {
            let mut p = Ipam::new("10.0.0.0/27".parse().unwrap(), Some(ip("10.0.0.1"))).unwrap();
            let mut held: Vec<Ipv4Addr> = Vec::new();
            for op in ops {
                if op == 0 && !held.is_empty() {
                    p.release(held.remove(0));
                } else if let Ok(a) = p.allocate(None) {
                    prop_assert!(!held.contains(&a));
                    prop_assert!(a != ip("10.0.0.1") && a != ip("10.0.0.0") && a != ip("10.0.0.31"));
                    held.push(a);
                }
            }
        }
    }
}
