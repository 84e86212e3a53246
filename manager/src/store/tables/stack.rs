//! The stack table (no secondary index: a stack's id is its name).

use crate::store::table::Record;
use api::cluster::{Kind, Meta, Object, Stack};

impl Record for Stack {
    const KIND: Kind = Kind::Stack;

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    fn into_object(self) -> Object {
        Object::Stack(self)
    }

    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Stack(stack) => Some(stack),
            _ => None,
        }
    }
}
