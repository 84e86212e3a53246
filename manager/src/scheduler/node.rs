//! One node as the scheduler sees it: what filters match (identity, platform, labels,
//! state) and what placements use up (cpu, memory, ports, task count).

use super::demand::PortNeed;
use super::hash::FastSet;
use api::cluster::{Availability, Node, NodeRole, NodeState};
use api::service::Protocol;
use std::collections::BTreeMap;

/// A node of the snapshot with its current usage.
#[derive(Clone, Debug)]
pub(super) struct NodeInfo {
    pub id: String,
    pub hostname: String,
    pub role: NodeRole,
    pub os: String,
    pub arch: String,
    /// The node's labels (`node.labels.*`).
    pub labels: BTreeMap<String, String>,
    /// The agent's labels (`engine.labels.*`).
    pub engine_labels: BTreeMap<String, String>,
    pub state: NodeState,
    pub availability: Availability,
    /// Thousandths of a cpu.
    pub cpu_total: u64,
    pub memory_total: u64,
    /// Reserved by the tasks occupying the node.
    pub cpu_used: u64,
    pub memory_used: u64,
    /// How many tasks occupy the node.
    pub tasks: u32,
    /// Published ports in use, as [`port_key`]s.
    pub ports: FastSet<u32>,
    /// Bumped on every change of usage; heap entries carry the stamp they were made at.
    pub stamp: u32,
}

impl NodeInfo {
    /// The node as the snapshot shows it, with nothing used yet.
    pub fn new(node: &Node) -> NodeInfo {
        let description = &node.description;
        NodeInfo {
            id: node.meta.id.clone(),
            hostname: description.hostname.clone(),
            role: node.spec.role,
            os: description.os.clone(),
            arch: description.arch.clone(),
            labels: node.meta.labels.clone(),
            engine_labels: description.engine_labels.clone(),
            state: node.status.state,
            availability: node.spec.availability,
            cpu_total: u64::from(description.cpus) * 1000,
            memory_total: description.memory_bytes,
            cpu_used: 0,
            memory_used: 0,
            tasks: 0,
            ports: FastSet::default(),
            stamp: 0,
        }
    }

    /// Thousandths of a cpu left.
    pub fn cpu_free(&self) -> u64 {
        self.cpu_total.saturating_sub(self.cpu_used)
    }

    /// Bytes of memory left.
    pub fn memory_free(&self) -> u64 {
        self.memory_total.saturating_sub(self.memory_used)
    }

    /// The first free port of `need` (its only port, or one of its range).
    pub fn free_port(&self, need: &PortNeed) -> Option<u16> {
        (need.low..=need.high).find(|port| !self.ports.contains(&port_key(*port, need.protocol)))
    }

    /// How used the node is, from 0 (idle) to `LOAD_SCALE` (cpu and memory full):
    /// the mean of the used fractions of cpu and memory.
    pub fn load(&self) -> u64 {
        let fraction = |used: u64, total: u64| -> f64 {
            match (used, total) {
                (0, _) => 0.0,
                (_, 0) => 1.0,
                _ => (used as f64 / total as f64).min(1.0),
            }
        };
        let mean = (fraction(self.cpu_used, self.cpu_total)
            + fraction(self.memory_used, self.memory_total))
            / 2.0;
        (mean * LOAD_SCALE as f64) as u64
    }

    /// Counts a task that reserves `cpu`, `memory` and `ports` against the node.
    pub fn occupy(&mut self, cpu: u64, memory: u64, ports: &[PortNeed]) {
        self.cpu_used = self.cpu_used.saturating_add(cpu);
        self.memory_used = self.memory_used.saturating_add(memory);
        self.tasks = self.tasks.saturating_add(1);
        for need in ports {
            if let Some(port) = self.free_port(need) {
                self.ports.insert(port_key(port, need.protocol));
            }
        }
        self.touch();
    }

    /// Marks the node changed (for heap entries made before).
    pub fn touch(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
    }
}

/// The largest [`NodeInfo::load`].
pub(super) const LOAD_SCALE: u64 = (1 << 24) - 1;

/// A port and protocol as one number.
pub(super) fn port_key(port: u16, protocol: Protocol) -> u32 {
    let code = match protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
        Protocol::Sctp => 2,
    };
    (u32::from(port) << 2) | code
}
