//! The cluster state: one [`Table`] per kind, and kind-generic access for `apply`.

use super::cluster::ClusterRecord;
use super::table::{Record, Row, Table};
use api::cluster::{Kind, Network, Node, Object, Service, Stack, Task, Volume};
use api::registry::Manifest;
use api::secret::{Config, Secret};
use std::sync::Arc;

/// Every table of the cluster state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub nodes: Table<Node>,
    pub stacks: Table<Stack>,
    pub services: Table<Service>,
    pub tasks: Table<Task>,
    pub networks: Table<Network>,
    pub secrets: Table<Secret>,
    pub configs: Table<Config>,
    pub manifests: Table<Manifest>,
    pub volumes: Table<Volume>,
    /// The cluster singleton (none before `orch manager init` wrote it).
    pub cluster: Option<ClusterRecord>,
}

impl State {
    /// A state holding `objects` (a later object with the same kind and id wins).
    pub fn from_objects(objects: impl IntoIterator<Item = Object>) -> State {
        let mut state = State::default();
        for object in objects {
            state.put(object);
        }
        state
    }

    /// The object of `kind` with `id`.
    pub fn get(&self, kind: Kind, id: &str) -> Option<Object> {
        match kind {
            Kind::Node => self.nodes.get(id).cloned().map(Record::into_object),
            Kind::Stack => self.stacks.get(id).cloned().map(Record::into_object),
            Kind::Service => self.services.get(id).cloned().map(Record::into_object),
            Kind::Task => self.tasks.get(id).cloned().map(Record::into_object),
            Kind::Network => self.networks.get(id).cloned().map(Record::into_object),
            Kind::Secret => self.secrets.get(id).cloned().map(Record::into_object),
            Kind::Config => self.configs.get(id).cloned().map(Record::into_object),
            Kind::Manifest => self.manifests.get(id).cloned().map(Record::into_object),
            Kind::Volume => self.volumes.get(id).cloned().map(Record::into_object),
        }
    }

    /// The version of the object of `kind` with `id`, if it exists.
    pub fn version(&self, kind: Kind, id: &str) -> Option<u64> {
        match kind {
            Kind::Node => self.nodes.get(id).map(|o| o.meta.version),
            Kind::Stack => self.stacks.get(id).map(|o| o.meta.version),
            Kind::Service => self.services.get(id).map(|o| o.meta.version),
            Kind::Task => self.tasks.get(id).map(|o| o.meta.version),
            Kind::Network => self.networks.get(id).map(|o| o.meta.version),
            Kind::Secret => self.secrets.get(id).map(|o| o.meta.version),
            Kind::Config => self.configs.get(id).map(|o| o.meta.version),
            Kind::Manifest => self.manifests.get(id).map(|o| o.meta.version),
            Kind::Volume => self.volumes.get(id).map(|o| o.meta.version),
        }
    }

    /// Insert or replace an object; returns the one it replaced.
    pub fn put(&mut self, object: Object) -> Option<Object> {
        match object {
            Object::Node(o) => self.nodes.insert(o).map(Record::into_object),
            Object::Stack(o) => self.stacks.insert(o).map(Record::into_object),
            Object::Service(o) => self.services.insert(*o).map(Record::into_object),
            Object::Task(o) => self.tasks.insert(*o).map(Record::into_object),
            Object::Network(o) => self.networks.insert(o).map(Record::into_object),
            Object::Secret(o) => self.secrets.insert(o).map(Record::into_object),
            Object::Config(o) => self.configs.insert(o).map(Record::into_object),
            Object::Manifest(o) => self.manifests.insert(o).map(Record::into_object),
            Object::Volume(o) => self.volumes.insert(o).map(Record::into_object),
        }
    }

    /// Remove an object; returns it.
    pub fn remove(&mut self, kind: Kind, id: &str) -> Option<Object> {
        match kind {
            Kind::Node => self.nodes.remove(id).map(Record::into_object),
            Kind::Stack => self.stacks.remove(id).map(Record::into_object),
            Kind::Service => self.services.remove(id).map(Record::into_object),
            Kind::Task => self.tasks.remove(id).map(Record::into_object),
            Kind::Network => self.networks.remove(id).map(Record::into_object),
            Kind::Secret => self.secrets.remove(id).map(Record::into_object),
            Kind::Config => self.configs.remove(id).map(Record::into_object),
            Kind::Manifest => self.manifests.remove(id).map(Record::into_object),
            Kind::Volume => self.volumes.remove(id).map(Record::into_object),
        }
    }

    /// Every object, kind by kind, by id.
    pub fn objects(&self) -> impl Iterator<Item = Object> + '_ {
        self.shared_rows().map(|row| row.object())
    }

    /// Every object, shared with the tables (no row is copied: a snapshot takes these
    /// under the state lock and copies them after).
    pub fn shared_rows(&self) -> impl Iterator<Item = Arc<dyn Row>> + '_ {
        let nodes = self.nodes.shared();
        let stacks = self.stacks.shared();
        let services = self.services.shared();
        let tasks = self.tasks.shared();
        let networks = self.networks.shared();
        let secrets = self.secrets.shared();
        let configs = self.configs.shared();
        let manifests = self.manifests.shared();
        let volumes = self.volumes.shared();
        nodes
            .chain(stacks)
            .chain(services)
            .chain(tasks)
            .chain(networks)
            .chain(secrets)
            .chain(configs)
            .chain(manifests)
            .chain(volumes)
    }

    /// The number of objects of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Node => self.nodes.len(),
            Kind::Stack => self.stacks.len(),
            Kind::Service => self.services.len(),
            Kind::Task => self.tasks.len(),
            Kind::Network => self.networks.len(),
            Kind::Secret => self.secrets.len(),
            Kind::Config => self.configs.len(),
            Kind::Manifest => self.manifests.len(),
            Kind::Volume => self.volumes.len(),
        }
    }
}
