//! The task table, indexed by service, by node, by desired state and by slot.

use crate::store::table::{IndexName, Record, Table};
use api::cluster::{Kind, Meta, Object, Task, TaskState};

const SERVICE: IndexName = "service";
const NODE: IndexName = "node";
const DESIRED: IndexName = "desired";
const SLOT: IndexName = "slot";

fn slot_key(service: &str, slot: u64) -> String {
    format!("{service}/{slot}")
}

impl Record for Task {
    const KIND: Kind = Kind::Task;

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    fn index_keys(&self) -> Vec<(IndexName, String)> {
        let mut keys = vec![
            (SERVICE, self.service.clone()),
            (DESIRED, self.desired_state.as_str().to_owned()),
            (SLOT, slot_key(&self.service, self.slot)),
        ];
        if let Some(node) = &self.node {
            keys.push((NODE, node.clone()));
        }
        keys
    }

    fn into_object(self) -> Object {
        Object::Task(Box::new(self))
    }

    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Task(task) => Some(*task),
            _ => None,
        }
    }
}

impl Table<Task> {
    /// The tasks of service `service`.
    pub fn by_service<'a>(&'a self, service: &str) -> impl Iterator<Item = &'a Task> + use<'a> {
        self.find(SERVICE, service)
    }

    /// The tasks assigned to node `node`.
    pub fn by_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Task> + use<'a> {
        self.find(NODE, node)
    }

    /// The tasks whose desired state is `state`.
    pub fn by_desired_state(&self, state: TaskState) -> impl Iterator<Item = &Task> {
        self.find(DESIRED, state.as_str())
    }

    /// The tasks of `service` in replica slot `slot` (old and new during an update).
    pub fn by_slot<'a>(
        &'a self,
        service: &str,
        slot: u64,
    ) -> impl Iterator<Item = &'a Task> + use<'a> {
        self.find(SLOT, &slot_key(service, slot))
    }
}
