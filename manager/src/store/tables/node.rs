//! The node table, indexed by role and by availability.

use crate::store::table::{IndexName, Record, Table};
use api::cluster::{Availability, Kind, Meta, Node, NodeRole, Object};

const ROLE: IndexName = "role";
const AVAILABILITY: IndexName = "availability";

fn role_key(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Worker => "worker",
        NodeRole::Manager => "manager",
    }
}

fn availability_key(availability: Availability) -> &'static str {
    match availability {
        Availability::Active => "active",
        Availability::Pause => "pause",
        Availability::Drain => "drain",
    }
}

impl Record for Node {
    const KIND: Kind = Kind::Node;

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    fn index_keys(&self) -> Vec<(IndexName, String)> {
        vec![
            (ROLE, role_key(self.spec.role).to_owned()),
            (
                AVAILABILITY,
                availability_key(self.spec.availability).to_owned(),
            ),
        ]
    }

    fn into_object(self) -> Object {
        Object::Node(self)
    }

    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Node(node) => Some(node),
            _ => None,
        }
    }
}

impl Table<Node> {
    /// Nodes with `role`.
    pub fn by_role(&self, role: NodeRole) -> impl Iterator<Item = &Node> {
        self.find(ROLE, role_key(role))
    }

    /// Nodes with `availability`.
    pub fn by_availability(&self, availability: Availability) -> impl Iterator<Item = &Node> {
        self.find(AVAILABILITY, availability_key(availability))
    }
}
