//! What a task asks of a node, read once from its service spec: reservations, published
//! ports, constraints, affinities, dependencies, replicas per node, strategy override
//! and placement preferences. Malformed input becomes a [`Reason`], never a panic.

use super::affinity::{Affinity, dependencies, parse_affinities};
use super::constraint::{Attribute, Constraint};
use super::reasons::Reason;
use super::services::{ServiceIndex, Services};
use super::strategy::{STRATEGY_LABEL, Strategy};
use api::ServiceSpec;
use api::cluster::Task;
use api::service::Protocol;

/// A published port a task needs on its node: one port, or any one of a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PortNeed {
    pub low: u16,
    pub high: u16,
    pub protocol: Protocol,
    /// As written, for reasons.
    pub published: String,
}

/// Everything the filters and strategies need to know of a task.
#[derive(Clone, Debug, Default)]
pub(super) struct Demand {
    /// Thousandths of a cpu reserved.
    pub cpu: u64,
    /// Bytes of memory reserved.
    pub memory: u64,
    pub ports: Vec<PortNeed>,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    /// Services whose tasks this one must run beside.
    pub dependencies: Vec<String>,
    pub max_per_node: Option<u64>,
    /// The service's `orch.strategy` label, if any.
    pub strategy: Option<Strategy>,
    /// `placement.preferences`: spread over the values of these attributes, in order.
    pub preferences: Vec<Attribute>,
    /// Set when the spec is malformed: every node is rejected for it.
    pub invalid: Option<Reason>,
}

impl Demand {
    /// Reads the task's spec.
    pub fn of(task: &Task) -> Demand {
        let spec = &task.spec;
        let (cpu, memory) = reservations(spec);
        let mut demand = Demand {
            cpu,
            memory,
            dependencies: dependencies(spec),
            ..Demand::default()
        };
        if let Err(reason) = demand.read_rest(spec) {
            demand.invalid = Some(reason);
        }
        demand
    }

    fn read_rest(&mut self, spec: &ServiceSpec) -> Result<(), Reason> {
        self.ports = port_needs(spec)?;
        let placement = spec.deploy.as_ref().and_then(|d| d.placement.as_ref());
        if let Some(placement) = placement {
            self.max_per_node = placement.max_replicas_per_node;
            for text in &placement.constraints {
                let constraint =
                    Constraint::parse(text).map_err(|error| Reason::InvalidConstraint {
                        constraint: text.clone(),
                        error,
                    })?;
                self.constraints.push(constraint);
            }
            for preference in &placement.preferences {
                let attribute = Attribute::parse(preference.spread.trim()).map_err(|error| {
                    Reason::InvalidPreference {
                        preference: preference.spread.clone(),
                        error,
                    }
                })?;
                self.preferences.push(attribute);
            }
        }
        let deploy_labels = spec.deploy.iter().flat_map(|d| d.labels.iter());
        self.affinities = parse_affinities(spec.labels.iter().chain(deploy_labels))
            .map_err(|(label, error)| Reason::InvalidAffinity { label, error })?;
        let strategy = spec
            .deploy
            .as_ref()
            .and_then(|d| d.labels.get(STRATEGY_LABEL))
            .or_else(|| spec.labels.get(STRATEGY_LABEL));
        if let Some(value) = strategy {
            let parsed = value.parse().map_err(|_| Reason::InvalidStrategy {
                value: value.clone(),
            })?;
            self.strategy = Some(parsed);
        }
        Ok(())
    }

    /// How many of the task's soft affinities a node misses, given which services
    /// run on it.
    pub fn soft_misses(&self, targets: &Targets, services: &Services, node: u32) -> u32 {
        self.affinities
            .iter()
            .zip(&targets.affinities)
            .filter(|(a, s)| a.soft && !a.holds(services.runs_on(**s, node)))
            .count() as u32
    }
}

/// Cpu (thousandths) and memory (bytes) of `deploy.resources.reservations`; a negative
/// or non-finite cpu count reserves nothing.
pub(super) fn reservations(spec: &ServiceSpec) -> (u64, u64) {
    let reserved = spec
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    let Some(reserved) = reserved else {
        return (0, 0);
    };
    let cpu = reserved
        .cpus
        .filter(|c| c.is_finite() && *c > 0.0)
        .map_or(0, |c| (c * 1000.0).round() as u64);
    (cpu, reserved.memory.map_or(0, |m| m.0))
}

/// The host ports of the spec on the task's node: every published port but those of
/// the routing mesh ([`api::service::PortSpec::mesh_port`], without `network_mode`),
/// which answer on every node whatever runs there.
pub(super) fn port_needs(spec: &ServiceSpec) -> Result<Vec<PortNeed>, Reason> {
    let mut needs = Vec::new();
    for port in &spec.ports {
        let Some(published) = port.published.as_deref() else {
            continue;
        };
        if port.mesh_port().is_some() && spec.network_mode.is_none() {
            continue;
        }
        let (low, high) = port.published_range().ok_or_else(|| Reason::InvalidPort {
            published: published.to_owned(),
        })?;
        needs.push(PortNeed {
            low,
            high,
            protocol: port.protocol,
            published: published.trim().to_owned(),
        });
    }
    Ok(needs)
}

/// The services a demand names, resolved in the snapshot (`None`: no task of it seen).
#[derive(Clone, Debug, Default)]
pub(super) struct Targets {
    /// The task's own service.
    pub own: Option<ServiceIndex>,
    /// One per [`Demand::affinities`].
    pub affinities: Vec<Option<ServiceIndex>>,
    /// One per [`Demand::dependencies`].
    pub dependencies: Vec<Option<ServiceIndex>>,
}

impl Targets {
    /// Resolves what is known, changing nothing.
    pub fn find(demand: &Demand, task: &Task, services: &Services) -> Targets {
        let named = |name: &String| services.find_name(&task.stack, name);
        Targets {
            own: services.find_task(task),
            affinities: demand
                .affinities
                .iter()
                .map(|a| named(&a.service))
                .collect(),
            dependencies: demand.dependencies.iter().map(named).collect(),
        }
    }

    /// Resolves every name, making unknown services known so later tasks of them are
    /// counted under the same index.
    pub fn make(demand: &Demand, task: &Task, services: &mut Services) -> Targets {
        let own = services.of_task(task);
        let mut named = |name: &String| Some(services.of_name(&task.stack, name));
        let affinities = demand
            .affinities
            .iter()
            .map(|a| named(&a.service))
            .collect();
        let dependencies = demand.dependencies.iter().map(&mut named).collect();
        Targets {
            own: Some(own),
            affinities,
            dependencies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::deploy::{
        DeploySpec, Placement, PlacementPreference, ResourceReservations, Resources,
    };
    use api::service::{PortMode, PortSpec};
    use api::units::Bytes;

    fn task(spec: ServiceSpec) -> Task {
        Task {
            service: "s1".into(),
            spec,
            ..Task::default()
        }
    }

    #[test]
    fn reads_reservations_ports_placement_and_labels() {
        let spec = ServiceSpec {
            ports: vec![
                PortSpec {
                    mode: PortMode::Host,
                    published: Some("8080".into()),
                    target: 80,
                    ..PortSpec::default()
                },
                PortSpec {
                    published: Some("8443".into()),
                    target: 443,
                    ..PortSpec::default()
                },
                PortSpec {
                    published: Some("9000-9002".into()),
                    protocol: Protocol::Udp,
                    ..PortSpec::default()
                },
                PortSpec {
                    target: 22,
                    ..PortSpec::default()
                },
            ],
            labels: [("orch.strategy".to_owned(), "binpack".to_owned())].into(),
            deploy: Some(DeploySpec {
                resources: Some(Resources {
                    reservations: Some(ResourceReservations {
                        cpus: Some(0.25),
                        memory: Some(Bytes(1 << 30)),
                        ..ResourceReservations::default()
                    }),
                    ..Resources::default()
                }),
                placement: Some(Placement {
                    constraints: vec!["node.role==worker".into()],
                    preferences: vec![PlacementPreference {
                        spread: "node.labels.zone".into(),
                    }],
                    max_replicas_per_node: Some(2),
                }),
                ..DeploySpec::default()
            }),
            ..ServiceSpec::default()
        };
        let demand = Demand::of(&task(spec));
        assert_eq!(demand.invalid, None);
        assert_eq!((demand.cpu, demand.memory), (250, 1 << 30));
        assert_eq!(
            demand.ports.len(),
            2,
            "the mesh port 8443 needs no host port"
        );
        assert_eq!((demand.ports[1].low, demand.ports[1].high), (9000, 9002));
        assert_eq!(demand.constraints.len(), 1);
        assert_eq!(demand.preferences, [Attribute::NodeLabel("zone".into())]);
        assert_eq!(demand.max_per_node, Some(2));
        assert_eq!(demand.strategy, Some(Strategy::Binpack));
    }

    #[test]
    fn malformed_specs_become_reasons() {
        let with_port = |published: &str| ServiceSpec {
            ports: vec![PortSpec {
                published: Some(published.into()),
                ..PortSpec::default()
            }],
            ..ServiceSpec::default()
        };
        for published in ["http", "0", "90-80", "70000"] {
            let demand = Demand::of(&task(with_port(published)));
            assert_eq!(
                demand.invalid,
                Some(Reason::InvalidPort {
                    published: published.into()
                })
            );
        }
        let spec = ServiceSpec {
            labels: [("orch.strategy".to_owned(), "fastest".to_owned())].into(),
            ..ServiceSpec::default()
        };
        assert_eq!(
            Demand::of(&task(spec)).invalid,
            Some(Reason::InvalidStrategy {
                value: "fastest".into()
            })
        );
    }
}
