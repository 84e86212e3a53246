//! One file per table: its [`Record`](super::table::Record) impl (kind, index keys)
//! and typed queries over its indexes.

pub mod file;
pub mod manifest;
pub mod network;
pub mod node;
pub mod service;
pub mod stack;
pub mod task;
pub mod volume;

use super::table::IndexName;

/// The index of the kinds a stack declares.
const STACK: IndexName = "stack";

/// The index keys of an object of stack `stack` (none when it has no stack).
fn stack_key(stack: &str) -> Vec<(IndexName, String)> {
    if stack.is_empty() {
        Vec::new()
    } else {
        vec![(STACK, stack.to_owned())]
    }
}

/// The [`Record`](super::table::Record) impl of a kind indexed by its stack
/// (`$type` is both the struct and its [`Object`](api::cluster::Object) variant),
/// and its table's `by_stack`.
macro_rules! stack_record {
    ($type:ident, $doc:literal) => {
        impl $crate::store::table::Record for $type {
            const KIND: api::cluster::Kind = api::cluster::Kind::$type;

            fn meta(&self) -> &api::cluster::Meta {
                &self.meta
            }

            fn meta_mut(&mut self) -> &mut api::cluster::Meta {
                &mut self.meta
            }

            fn index_keys(&self) -> Vec<($crate::store::table::IndexName, String)> {
                super::stack_key(&self.stack)
            }

            fn into_object(self) -> api::cluster::Object {
                api::cluster::Object::$type(self)
            }

            fn from_object(object: api::cluster::Object) -> Option<Self> {
                match object {
                    api::cluster::Object::$type(record) => Some(record),
                    _ => None,
                }
            }
        }

        impl $crate::store::table::Table<$type> {
            #[doc = $doc]
            pub fn by_stack<'a>(
                &'a self,
                stack: &str,
            ) -> impl Iterator<Item = &'a $type> + use<'a> {
                self.find(super::STACK, stack)
            }
        }
    };
}
use stack_record;
