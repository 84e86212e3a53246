//! IPv4 subnets in CIDR form, and choosing a free one for a new network.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet: its network address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The subnet of `addr/prefix` (host bits cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, String> {
        if !(8..=30).contains(&prefix) {
            return Err(format!(
                "prefix /{prefix} is out of range: use /8 to /30 (a network needs room for a gateway and hosts)"
            ));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses it spans (network and broadcast included).
    pub fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    /// The address at `offset` from the network address.
    pub fn nth(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + offset)
    }

    /// The offset of `addr` inside the subnet, if it is inside.
    pub fn offset(&self, addr: Ipv4Addr) -> Option<u32> {
        let a = u32::from(addr);
        let n = u32::from(self.network);
        (a >= n && a - n < self.size()).then(|| a - n)
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.offset(addr).is_some()
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The first host address (the default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        self.nth(1)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(s: &str) -> Result<Subnet, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not in CIDR form (like 172.20.0.0/16)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
        let subnet = Subnet::new(addr, prefix)?;
        if subnet.network != addr {
            return Err(format!(
                "{s} has host bits set: the subnet is {subnet} (write that)"
            ));
        }
        Ok(subnet)
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Subnet, String> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// The first /24 out of 172.18.0.0/15 .. 172.31.0.0/16, then 192.168.0.0/16, that
/// overlaps none of `taken` (other networks and the host's own routes).
pub fn pick_free(taken: &[Subnet]) -> Option<Subnet> {
    let pools = [
        (Ipv4Addr::new(172, 18, 0, 0), 14u8),
        (Ipv4Addr::new(172, 22, 0, 0), 15),
        (Ipv4Addr::new(172, 24, 0, 0), 13),
        (Ipv4Addr::new(192, 168, 0, 0), 16),
    ];
    for (base, prefix) in pools {
        let count = 1u32 << (24 - prefix);
        for i in 0..count {
            let candidate = Subnet {
                network: Ipv4Addr::from(u32::from(base) + (i << 8)),
                prefix: 24,
            };
            if !taken.iter().any(|t| t.overlaps(&candidate)) {
                return Some(candidate);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_explains() {
        let s: Subnet = "10.1.0.0/16".parse().unwrap();
        assert_eq!(s.size(), 65536);
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 1, 0, 1));
        assert!(s.contains(Ipv4Addr::new(10, 1, 255, 255)));
        assert!(!s.contains(Ipv4Addr::new(10, 2, 0, 0)));
        let e = "10.1.0.5/16".parse::<Subnet>().unwrap_err();
        assert!(e.contains("host bits"), "{e}");
        assert!("10.1.0.0".parse::<Subnet>().unwrap_err().contains("CIDR"));
        assert!("10.1.0.0/31".parse::<Subnet>().unwrap_err().contains("/30"));
        assert!("x/8".parse::<Subnet>().is_err());
    }

    #[test]
    fn picks_the_first_free_slash_24() {
        let a = pick_free(&[]).unwrap();
        assert_eq!(a.to_string(), "172.18.0.0/24");
        let b = pick_free(&[a, "172.18.1.0/24".parse().unwrap()]).unwrap();
        assert_eq!(b.to_string(), "172.18.2.0/24");
        let wide: Subnet = "172.16.0.0/12".parse().unwrap();
        assert_eq!(pick_free(&[wide]).unwrap().to_string(), "192.168.0.0/24");
    }
}
