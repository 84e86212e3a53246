//! IPv4 subnets as the allocator uses them: parse `a.b.c.d/n`, hosts in order.

use std::net::Ipv4Addr;

/// An IPv4 subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subnet {
    pub base: u32,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `10.0.1.0/24` (host bits are cleared).
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a subnet like 10.0.1.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} in {text:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("the prefix of {text:?} is not between 8 and 30"))?;
        Ok(Subnet {
            base: u32::from(addr) & Self::mask(prefix),
            prefix,
        })
    }

    fn mask(prefix: u8) -> u32 {
        u32::MAX << (32 - u32::from(prefix))
    }

    /// The number of addresses.
    pub fn size(self) -> u32 {
        1 << (32 - u32::from(self.prefix))
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(self, other: Subnet) -> bool {
        let prefix = self.prefix.min(other.prefix);
        self.base & Self::mask(prefix) == other.base & Self::mask(prefix)
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix) == self.base
    }

    /// The first host address (the default gateway).
    pub fn first_host(self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// Host addresses, lowest first (network and broadcast addresses excluded).
    pub fn hosts(self) -> impl Iterator<Item = Ipv4Addr> {
        (self.base + 1..self.base + self.size() - 1).map(Ipv4Addr::from)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_iterates() {
        let s = Subnet::parse("10.0.1.7/24").unwrap();
        assert_eq!(s.to_string(), "10.0.1.0/24");
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 0, 1, 1));
        assert_eq!(s.hosts().count(), 254);
        assert!(s.overlaps(Subnet::parse("10.0.0.0/16").unwrap()));
        assert!(!s.overlaps(Subnet::parse("10.0.2.0/24").unwrap()));
        assert!(Subnet::parse("10.0.1.0").is_err());
        assert!(Subnet::parse("10.0.1.0/31").is_err());
    }
}
