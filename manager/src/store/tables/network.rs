//! The network table, indexed by stack.

use crate::store::table::{IndexName, Record, Table};
use api::cluster::{Kind, Meta, Network, Object};

const STACK: IndexName = "stack";

impl Record for Network {
    const KIND: Kind = Kind::Network;

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    fn index_keys(&self) -> Vec<(IndexName, String)> {
        if self.stack.is_empty() {
            Vec::new()
        } else {
            vec![(STACK, self.stack.clone())]
        }
    }

    fn into_object(self) -> Object {
        Object::Network(self)
    }

    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Network(network) => Some(network),
            _ => None,
        }
    }
}

impl Table<Network> {
    /// The networks stack `stack` declared.
    pub fn by_stack<'a>(&'a self, stack: &str) -> impl Iterator<Item = &'a Network> + use<'a> {
        self.find(STACK, stack)
    }
}
