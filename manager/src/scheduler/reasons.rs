//! Why a task cannot run on a node, and why it cannot run anywhere: a structure with one
//! tally per reason (how many nodes it rejected), rendered to text only by `Display`.

use super::affinity::AffinityError;
use super::constraint::ConstraintError;
use api::service::Protocol;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The filters of the pipeline, in the order they are evaluated (cheap first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// The node is ready (down and unknown nodes are rejected).
    State,
    /// The node is active (paused and drained nodes are rejected).
    Availability,
    /// The node satisfies the placement constraints and the strategy label is valid.
    Constraint,
    /// The node runs the services the task depends on (`volumes_from`, `network_mode`).
    Dependency,
    /// The node honours the task's hard affinities and anti-affinities.
    Affinity,
    /// The node runs fewer than `max_replicas_per_node` tasks of the service.
    MaxReplicas,
    /// The node has the task's published ports free.
    Ports,
    /// The node has the task's cpu and memory reservations free.
    Resources,
}

impl Filter {
    /// The filter's name (`state`, `resources`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Filter::State => "state",
            Filter::Availability => "availability",
            Filter::Constraint => "constraint",
            Filter::Dependency => "dependency",
            Filter::Affinity => "affinity",
            Filter::MaxReplicas => "max_replicas",
            Filter::Ports => "ports",
            Filter::Resources => "resources",
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one node was rejected for a task.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The node is down.
    Down,
    /// The node has not reported as ready (state unknown).
    NotReady,
    /// The node is paused.
    Paused,
    /// The node is drained.
    Drained,
    /// The node id is not in the snapshot.
    UnknownNode { node: String },
    /// The node fails a placement constraint (as written).
    Constraint { constraint: String },
    /// A placement constraint cannot be parsed; no node is considered.
    InvalidConstraint {
        constraint: String,
        error: ConstraintError,
    },
    /// A placement preference names no node attribute; no node is considered.
    InvalidPreference {
        preference: String,
        error: ConstraintError,
    },
    /// The `orch.strategy` label names no strategy; no node is considered.
    InvalidStrategy { value: String },
    /// The node runs no task of a service the task depends on.
    Dependency { service: String },
    /// The node runs no task of a service the task must run beside.
    Affinity { service: String },
    /// The node runs a task of a service the task must not run beside.
    AntiAffinity { service: String },
    /// An `orch.affinity*` label cannot be parsed; no node is considered.
    InvalidAffinity { label: String, error: AffinityError },
    /// The node already runs `max` tasks of the service.
    MaxReplicas { max: u64 },
    /// The node has the published port (or every port of the range) in use.
    Port {
        published: String,
        protocol: Protocol,
    },
    /// A published port cannot be parsed; no node is considered.
    InvalidPort { published: String },
    /// The node lacks cpu: the task reserves `need_millis` thousandths of a cpu.
    Cpu { need_millis: u64 },
    /// The node lacks memory: the task reserves `need_bytes`.
    Memory { need_bytes: u64 },
}

impl Reason {
    /// The filter that gives this reason.
    pub fn filter(&self) -> Filter {
        match self {
            Reason::Down | Reason::NotReady | Reason::UnknownNode { .. } => Filter::State,
            Reason::Paused | Reason::Drained => Filter::Availability,
            Reason::Constraint { .. }
            | Reason::InvalidConstraint { .. }
            | Reason::InvalidPreference { .. }
            | Reason::InvalidStrategy { .. } => Filter::Constraint,
            Reason::Dependency { .. } => Filter::Dependency,
            Reason::Affinity { .. }
            | Reason::AntiAffinity { .. }
            | Reason::InvalidAffinity { .. } => Filter::Affinity,
            Reason::MaxReplicas { .. } => Filter::MaxReplicas,
            Reason::Port { .. } | Reason::InvalidPort { .. } => Filter::Ports,
            Reason::Cpu { .. } | Reason::Memory { .. } => Filter::Resources,
        }
    }

    /// Renders the reason for `count` nodes: "3 lack memory (need 2GiB)".
    fn render(&self, count: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = count == 1;
        let pick = |single: &'static str, plural: &'static str| if one { single } else { plural };
        write!(f, "{count} ")?;
        match self {
            Reason::Down => f.write_str(pick("is down", "are down")),
            Reason::NotReady => f.write_str(pick("is not ready", "are not ready")),
            Reason::Paused => f.write_str(pick("is paused", "are paused")),
            Reason::Drained => f.write_str(pick("is drained", "are drained")),
            Reason::UnknownNode { node } => {
                write!(f, "{} (node {node})", pick("is unknown", "are unknown"))
            }
            Reason::Constraint { constraint } => {
                write!(
                    f,
                    "{} {constraint}",
                    pick("fails constraint", "fail constraint")
                )
            }
            Reason::InvalidConstraint { constraint, error } => write!(
                f,
                "{} (constraint {constraint:?} is invalid: {error})",
                pick("is not considered", "are not considered")
            ),
            Reason::InvalidPreference { preference, error } => write!(
                f,
                "{} (preference spread: {preference:?} is invalid: {error})",
                pick("is not considered", "are not considered")
            ),
            Reason::InvalidStrategy { value } => write!(
                f,
                "{} (label orch.strategy={value:?} is invalid: use spread, binpack or random)",
                pick("is not considered", "are not considered")
            ),
            Reason::Dependency { service } => write!(
                f,
                "{} no task of {service} (dependency)",
                pick("runs", "run")
            ),
            Reason::Affinity { service } => {
                write!(f, "{} no task of {service} (affinity)", pick("runs", "run"))
            }
            Reason::AntiAffinity { service } => write!(
                f,
                "{} a task of {service} (anti-affinity)",
                pick("runs", "run")
            ),
            Reason::InvalidAffinity { label, error } => write!(
                f,
                "{} (label {label} is invalid: {error})",
                pick("is not considered", "are not considered")
            ),
            Reason::MaxReplicas { max } => write!(
                f,
                "already {} {max} of its tasks (max_replicas_per_node)",
                pick("runs", "run")
            ),
            Reason::Port {
                published,
                protocol,
            } => write!(
                f,
                "{} port {published}/{} in use",
                pick("has", "have"),
                protocol_name(*protocol)
            ),
            Reason::InvalidPort { published } => write!(
                f,
                "{} (published port {published:?} is invalid)",
                pick("is not considered", "are not considered")
            ),
            Reason::Cpu { need_millis } => write!(
                f,
                "{} cpu (need {})",
                pick("lacks", "lack"),
                Cpus(*need_millis)
            ),
            Reason::Memory { need_bytes } => write!(
                f,
                "{} memory (need {})",
                pick("lacks", "lack"),
                Size(*need_bytes)
            ),
        }
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// How many nodes one reason rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub reason: Reason,
    pub nodes: usize,
}

/// Why no node can take a task: one tally per reason; every node of the snapshot is
/// counted once, under the first filter that rejected it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unschedulable {
    /// How many nodes were considered (the tallies add up to it).
    pub nodes: usize,
    /// In filter order.
    pub tallies: Vec<Tally>,
}

impl Unschedulable {
    /// Counts one more node rejected for `reason`.
    pub(super) fn add(&mut self, reason: Reason) {
        self.add_many(reason, 1);
    }

    /// Counts `nodes` more nodes rejected for `reason`.
    pub(super) fn add_many(&mut self, reason: Reason, nodes: usize) {
        if nodes == 0 {
            return;
        }
        self.nodes += nodes;
        match self.tallies.iter_mut().find(|t| t.reason == reason) {
            Some(tally) => tally.nodes += nodes,
            None => self.tallies.push(Tally { reason, nodes }),
        }
    }

    /// Puts the tallies in filter order (stable within a filter).
    pub(super) fn sort(&mut self) {
        self.tallies.sort_by_key(|t| t.reason.filter());
    }

    /// How many nodes `filter` rejected.
    pub fn rejected_by(&self, filter: Filter) -> usize {
        self.tallies
            .iter()
            .filter(|t| t.reason.filter() == filter)
            .map(|t| t.nodes)
            .sum()
    }

    /// A verdict where one reason rejected every one of `nodes` nodes.
    pub(super) fn all(reason: Reason, nodes: usize) -> Unschedulable {
        let mut verdict = Unschedulable::default();
        verdict.add_many(reason, nodes);
        verdict
    }
}

impl fmt::Display for Unschedulable {
    /// "no node fits: 3 lack memory (need 2GiB), 1 is drained, 2 are down": what the
    /// task asks for first, the state of the nodes last.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no node fits: ")?;
        if self.tallies.is_empty() {
            return f.write_str("there are no nodes");
        }
        for (i, tally) in self.tallies.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            tally.reason.render(tally.nodes, f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Unschedulable {}

/// A size in bytes with a binary unit: `2GiB`, `1.5GiB`, `512MiB`, `100B`.
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        let mut unit = 0;
        while unit + 1 < UNITS.len() && self.0 >= 1 << (10 * (unit + 1)) {
            unit += 1;
        }
        let scaled = self.0 as f64 / (1u64 << (10 * unit)) as f64;
        let text = format!("{scaled:.2}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{text}{}", UNITS[unit])
    }
}

/// Thousandths of a cpu rendered as cpus: `0.5 cpus`, `1 cpu`.
pub struct Cpus(pub u64);

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{}.{:03}", self.0 / 1000, self.0 % 1000);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        let unit = if self.0 == 1000 { "cpu" } else { "cpus" };
        write!(f, "{text} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_example_of_the_issue() {
        let mut verdict = Unschedulable::default();
        verdict.add_many(Reason::Down, 2);
        verdict.add(Reason::Drained);
        verdict.add_many(
            Reason::Memory {
                need_bytes: 2 << 30,
            },
            3,
        );
        verdict.sort();
        assert_eq!(
            verdict.to_string(),
            "no node fits: 3 lack memory (need 2GiB), 1 is drained, 2 are down"
        );
        assert_eq!(verdict.nodes, 6);
        assert_eq!(verdict.rejected_by(Filter::State), 2);
    }

    #[test]
    fn renders_every_reason_in_singular_and_plural() {
        let cases = [
            (Reason::NotReady, "1 is not ready", "2 are not ready"),
            (Reason::Paused, "1 is paused", "2 are paused"),
            (
                Reason::Constraint {
                    constraint: "node.role==manager".into(),
                },
                "1 fails constraint node.role==manager",
                "2 fail constraint node.role==manager",
            ),
            (
                Reason::Port {
                    published: "80".into(),
                    protocol: Protocol::Udp,
                },
                "1 has port 80/udp in use",
                "2 have port 80/udp in use",
            ),
            (
                Reason::Cpu { need_millis: 500 },
                "1 lacks cpu (need 0.5 cpus)",
                "2 lack cpu (need 0.5 cpus)",
            ),
            (
                Reason::Affinity {
                    service: "db".into(),
                },
                "1 runs no task of db (affinity)",
                "2 run no task of db (affinity)",
            ),
            (
                Reason::MaxReplicas { max: 2 },
                "1 already runs 2 of its tasks (max_replicas_per_node)",
                "2 already run 2 of its tasks (max_replicas_per_node)",
            ),
        ];
        for (reason, single, plural) in cases {
            let one = Unschedulable::all(reason.clone(), 1).to_string();
            let two = Unschedulable::all(reason, 2).to_string();
            assert_eq!(one, format!("no node fits: {single}"));
            assert_eq!(two, format!("no node fits: {plural}"));
        }
        assert_eq!(
            Unschedulable::default().to_string(),
            "no node fits: there are no nodes"
        );
    }

    #[test]
    fn sizes_and_cpus_render_short() {
        assert_eq!(Size(2 << 30).to_string(), "2GiB");
        assert_eq!(Size(3 << 29).to_string(), "1.5GiB");
        assert_eq!(Size(512 << 20).to_string(), "512MiB");
        assert_eq!(Size(100).to_string(), "100B");
        assert_eq!(Cpus(1000).to_string(), "1 cpu");
        assert_eq!(Cpus(2250).to_string(), "2.25 cpus");
    }

    #[test]
    fn the_verdict_is_data() {
        let verdict = Unschedulable::all(Reason::Memory { need_bytes: 1 }, 4);
        let json = serde_json::to_string(&verdict).expect("serializes");
        assert!(json.contains(r#""reason":"memory""#), "{json}");
        let back: Unschedulable = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, verdict);
    }
}
