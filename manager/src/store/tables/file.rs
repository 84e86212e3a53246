//! The secret and config tables, each indexed by stack.

use crate::store::table::{IndexName, Record, Table};
use api::cluster::{Kind, Meta, Object};
use api::secret::{Config, Secret};

const STACK: IndexName = "stack";

fn stack_key(stack: &str) -> Vec<(IndexName, String)> {
    if stack.is_empty() {
        Vec::new()
    } else {
        vec![(STACK, stack.to_owned())]
    }
}

impl Record for Secret {
    const KIND: Kind = Kind::Secret;

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
        Object::Secret(self)
    }

    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Secret(secret) => Some(secret),
            _ => None,
        }
    }
}

impl Record for Config {
    const KIND: Kind = Kind::Config;

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
        Object::Config(self)
    }

    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Config(config) => Some(config),
            _ => None,
        }
    }
}

impl Table<Secret> {
    /// The secrets stack `stack` declared.
    pub fn by_stack<'a>(&'a self, stack: &str) -> impl Iterator<Item = &'a Secret> + use<'a> {
        self.find(STACK, stack)
    }
}

impl Table<Config> {
    /// The configs stack `stack` declared.
    pub fn by_stack<'a>(&'a self, stack: &str) -> impl Iterator<Item = &'a Config> + use<'a> {
        self.find(STACK, stack)
    }
}
