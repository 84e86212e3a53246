//! The names one container may resolve, and their addresses.
//!
//! The engine builds a [`Records`] from the networks the container is on: for each
//! service its name and aliases (`web`, `web.stackname`) to its address(es),
//! `tasks.web` to every task's address, and container names to theirs. Names are kept
//! lowercase without a trailing dot, so `Web.` and `web` are the same name.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// A table of names to IPv4 addresses; cloning it is cheap (shared until changed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Name -> addresses in insertion order, without duplicates.
    names: Arc<BTreeMap<String, Vec<Ipv4Addr>>>,
    /// Address -> the first name inserted for it (the answer to a PTR query).
    reverse: Arc<BTreeMap<Ipv4Addr, String>>,
}

/// `name` as the table keeps it: one trailing dot removed, ASCII lowercase.
pub(crate) fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Records {
    /// An empty table.
    pub fn new() -> Records {
        Records::default()
    }

    /// Add `ip` to the addresses of `name` (any case, with or without a trailing dot).
    ///
    /// An address already there is not added twice; an empty name is ignored. The first
    /// name inserted for an address is the one a reverse (PTR) query gets, so insert
    /// container or task names before service aliases.
    pub fn insert(&mut self, name: &str, ip: Ipv4Addr) {
        let name = normalize(name);
        if name.is_empty() {
            return;
        }
        let addrs = Arc::make_mut(&mut self.names)
            .entry(name.clone())
            .or_default();
        if !addrs.contains(&ip) {
            addrs.push(ip);
        }
        if !self.reverse.contains_key(&ip) {
            Arc::make_mut(&mut self.reverse).insert(ip, name);
        }
    }

    /// The addresses of `name` (any case, with or without a trailing dot), in the order
    /// they were inserted; empty for an unknown name.
    pub fn lookup(&self, name: &str) -> &[Ipv4Addr] {
        let name = normalize(name);
        self.names.get(&name).map_or(&[], Vec::as_slice)
    }

    /// The name a reverse query for `ip` gets, if `ip` is in the table.
    pub fn name_of(&self, ip: Ipv4Addr) -> Option<&str> {
        self.reverse.get(&ip).map(String::as_str)
    }

    /// How many names the table has.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table has no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<(S, Ipv4Addr)> for Records {
    fn from_iter<I: IntoIterator<Item = (S, Ipv4Addr)>>(iter: I) -> Records {
        let mut records = Records::new();
        for (name, ip) in iter {
            records.insert(name.as_ref(), ip);
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

    #[test]
    fn lookup_ignores_case_and_trailing_dot() {
        let records: Records = [("Web.Stack.", A)].into_iter().collect();
        assert_eq!(records.lookup("web.stack"), [A]);
        assert_eq!(records.lookup("WEB.STACK."), [A]);
        assert_eq!(records.lookup("web"), [] as [Ipv4Addr; 0]);
    }

    #[test]
    fn insert_keeps_order_without_duplicates() {
        let records: Records = [("web", A), ("web", B), ("WEB", A)].into_iter().collect();
        assert_eq!(records.lookup("web"), [A, B]);
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn first_name_of_an_address_is_its_reverse_name() {
        let records: Records = [("web.1.abc", A), ("web", A), ("tasks.web", A)]
            .into_iter()
            .collect();
        assert_eq!(records.name_of(A), Some("web.1.abc"));
        assert_eq!(records.name_of(B), None);
    }

    #[test]
    fn clones_share_until_changed() {
        let mut one: Records = [("web", A)].into_iter().collect();
        let two = one.clone();
        one.insert("db", B);
        assert_eq!(two.lookup("db"), [] as [Ipv4Addr; 0]);
        assert_eq!(one.lookup("db"), [B]);
        assert!(Records::new().is_empty());
        assert_eq!(Records::new().lookup(""), [] as [Ipv4Addr; 0]);
    }
}
