//! The service table, indexed by stack.

use super::{STACK, stack_key};
use crate::store::table::{IndexName, Record, Table};
use api::cluster::{Kind, Meta, Object, Service};

impl Record for Service {
    const KIND: Kind = Kind::Service;

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    fn index_keys(&self) -> Vec<(IndexName, String)> {
        stack_key(&self.stack)
    }

    fn into_object(self) -> Object {
        Object::Service(Box::new(self))
    }

    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Service(service) => Some(*service),
            _ => None,
        }
    }
}

impl Table<Service> {
    /// The services of stack `stack`.
    pub fn by_stack<'a>(&'a self, stack: &str) -> impl Iterator<Item = &'a Service> + use<'a> {
        self.find(STACK, stack)
    }
}
