//! The session table: which node holds which session and until when it must beat.
//! Pure: the caller passes `now`.

use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Debug)]
struct Entry {
    /// Empty for a node seeded at a leader change: it must open a new session.
    session: String,
    deadline: Instant,
}

/// Sessions by node id.
#[derive(Debug, Default)]
pub struct Sessions {
    nodes: BTreeMap<String, Entry>,
}

impl Sessions {
    /// A node opened `session`; it must beat before `deadline`.
    pub fn open(&mut self, node: &str, session: &str, deadline: Instant) {
        self.nodes.insert(
            node.to_owned(),
            Entry {
                session: session.to_owned(),
                deadline,
            },
        );
    }

    /// A heartbeat; `false` if `session` is not the node's open session.
    pub fn beat(&mut self, node: &str, session: &str, deadline: Instant) -> bool {
        match self.nodes.get_mut(node) {
            Some(entry) if !entry.session.is_empty() && entry.session == session => {
                entry.deadline = deadline;
                true
            }
            _ => false,
        }
    }

    /// Whether `session` is the node's open session.
    pub fn holds(&self, node: &str, session: &str) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|e| !e.session.is_empty() && e.session == session)
    }

    /// Nodes known to have had sessions (a new leader's view): each must open one
    /// before `deadline`.
    pub fn seed(&mut self, nodes: impl IntoIterator<Item = String>, deadline: Instant) {
        for node in nodes {
            self.nodes.entry(node).or_insert(Entry {
                session: String::new(),
                deadline,
            });
        }
    }

    /// Removes and returns the nodes whose deadline passed.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for node in &expired {
            self.nodes.remove(node);
        }
        expired
    }

    /// Forget everything (this manager stopped being the leader).
    pub fn clear(&mut self) {
        self.nodes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_silent_node_expires_and_a_beating_one_does_not() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(3);
        let mut s = Sessions::default();
        s.open("a", "s1", t0 + grace);
        s.open("b", "s2", t0 + grace);
        assert!(s.beat("a", "s1", t0 + Duration::from_secs(2) + grace));
        assert!(
            !s.beat("b", "old", t0 + grace),
            "a stale session id is refused"
        );
        assert_eq!(s.expire(t0 + Duration::from_secs(4)), vec!["b".to_owned()]);
        assert!(s.expire(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(s.expire(t0 + Duration::from_secs(6)), vec!["a".to_owned()]);
    }

    #[test]
    fn seeded_nodes_must_open_a_session() {
        let t0 = Instant::now();
        let mut s = Sessions::default();
        s.seed(["n".to_owned()], t0 + Duration::from_secs(1));
        assert!(
            !s.beat("n", "", t0),
            "a seeded entry has no session to beat"
        );
        s.open("n", "s", t0 + Duration::from_secs(5));
        assert!(s.expire(t0 + Duration::from_secs(2)).is_empty());
    }
}
