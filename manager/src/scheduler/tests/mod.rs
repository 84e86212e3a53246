//! Tests of the scheduler as a whole: [`properties`] on generated clusters, and
//! [`behaviour`] of each filter and strategy on small hand-made ones.

mod behaviour;
mod properties;

use api::ServiceSpec;
use api::cluster::{Availability, Node, NodeState, Task};
use api::deploy::{DeploySpec, Placement, PlacementPreference, ResourceReservations, Resources};
use api::service::{PortMode, PortSpec, Protocol};
use api::units::Bytes;

/// The stack every test task belongs to.
pub(super) const STACK: &str = "st";

/// A ready, active worker node named `id` (also its hostname).
pub(super) fn node(id: &str, cpus: u32, memory: u64) -> Node {
    let mut node = Node::default();
    node.meta.id = id.to_owned();
    node.description.hostname = id.to_owned();
    node.description.cpus = cpus;
    node.description.memory_bytes = memory;
    node.description.os = "linux".into();
    node.description.arch = "amd64".into();
    node.status.state = NodeState::Ready;
    node.spec.availability = Availability::Active;
    node
}

/// `node` in another state and availability.
pub(super) fn node_in(id: &str, state: NodeState, availability: Availability) -> Node {
    let mut node = node(id, 4, 8 << 30);
    node.status.state = state;
    node.spec.availability = availability;
    node
}

/// A service spec under construction.
#[derive(Clone, Debug, Default)]
pub(super) struct Spec(pub ServiceSpec);

impl Spec {
    fn deploy(&mut self) -> &mut DeploySpec {
        self.0.deploy.get_or_insert_with(DeploySpec::default)
    }

    fn placement(&mut self) -> &mut Placement {
        self.deploy()
            .placement
            .get_or_insert_with(Placement::default)
    }

    pub fn reserve(mut self, cpus: f64, memory: u64) -> Spec {
        self.deploy().resources = Some(Resources {
            reservations: Some(ResourceReservations {
                cpus: (cpus > 0.0).then_some(cpus),
                memory: (memory > 0).then_some(Bytes(memory)),
                ..ResourceReservations::default()
            }),
            ..Resources::default()
        });
        self
    }

    pub fn constraint(mut self, text: &str) -> Spec {
        self.placement().constraints.push(text.to_owned());
        self
    }

    pub fn prefer(mut self, attribute: &str) -> Spec {
        self.placement().preferences.push(PlacementPreference {
            spread: attribute.to_owned(),
        });
        self
    }

    pub fn max_per_node(mut self, max: u64) -> Spec {
        self.placement().max_replicas_per_node = Some(max);
        self
    }

    /// A host-mode published port.
    pub fn port(mut self, published: &str, protocol: Protocol) -> Spec {
        self.0.ports.push(PortSpec {
            mode: PortMode::Host,
            published: Some(published.to_owned()),
            target: 80,
            protocol,
            ..PortSpec::default()
        });
        self
    }

    /// An ingress-mode published port (`ports: ["8080:80"]`).
    pub fn ingress_port(mut self, published: &str) -> Spec {
        self.0.ports.push(PortSpec {
            mode: PortMode::Ingress,
            published: Some(published.to_owned()),
            target: 80,
            ..PortSpec::default()
        });
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Spec {
        self.0.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn volumes_from(mut self, entry: &str) -> Spec {
        self.0.volumes_from.push(entry.to_owned());
        self
    }

    /// A task of service `name` of the test stack with this spec.
    pub fn task(&self, name: &str) -> Task {
        Task {
            service: format!("{STACK}_{name}"),
            stack: STACK.to_owned(),
            name: name.to_owned(),
            spec: self.0.clone(),
            ..Task::default()
        }
    }
}
