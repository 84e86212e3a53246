//! The cluster as the scheduler holds it: the nodes with their usage, where each
//! service's tasks are, and the log of nodes changed by placements (which the cached
//! rankings of [`super::profile`] replay to stay current).

use super::demand::{PortNeed, port_needs, reservations};
use super::hash::FastMap;
use super::node::NodeInfo;
use super::services::{ServiceIndex, Services};
use api::cluster::{Node, Task};

/// Nodes, services and the change log.
#[derive(Clone, Debug, Default)]
pub(super) struct Snapshot {
    pub nodes: Vec<NodeInfo>,
    /// Node id -> index in `nodes`.
    pub index: FastMap<String, u32>,
    pub services: Services,
    /// The index of every node changed, one entry per change, oldest first.
    pub changes: Vec<u32>,
}

impl Snapshot {
    /// The nodes with nothing on them.
    pub fn new<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for node in nodes {
            if snapshot.index.contains_key(&node.meta.id) {
                continue;
            }
            let index = snapshot.nodes.len() as u32;
            snapshot.index.insert(node.meta.id.clone(), index);
            snapshot.nodes.push(NodeInfo::new(node));
        }
        snapshot
    }

    /// Counts a task placed on `node` by other means than a cached profile: its
    /// reservations, ports (malformed ones are skipped) and service.
    pub fn add_task(&mut self, task: &Task, node: u32) {
        let (cpu, memory) = reservations(&task.spec);
        let ports = port_needs(&task.spec).unwrap_or_default();
        let service = self.services.of_task(task);
        self.record(node, cpu, memory, &ports, service);
    }

    /// Counts a task of `service` reserving `cpu`, `memory` and `ports` on `node`.
    pub fn record(
        &mut self,
        node: u32,
        cpu: u64,
        memory: u64,
        ports: &[PortNeed],
        service: ServiceIndex,
    ) {
        let Some(info) = self.nodes.get_mut(node as usize) else {
            return;
        };
        info.occupy(cpu, memory, ports);
        self.services.add_task(service, node);
        self.changes.push(node);
    }
}
