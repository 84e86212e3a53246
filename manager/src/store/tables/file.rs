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

/// The [`Record`] impl of a kind indexed by its stack: secrets and configs.
macro_rules! stack_record {
    ($type:ident) => {
        impl Record for $type {
            const KIND: Kind = Kind::$type;

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
                Object::$type(self)
            }

            fn from_object(object: Object) -> Option<Self> {
                match object {
                    Object::$type(record) => Some(record),
                    _ => None,
                }
            }
        }
    };
}

stack_record!(Secret);
stack_record!(Config);

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
