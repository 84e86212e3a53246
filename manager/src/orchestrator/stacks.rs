//! Stacks to services and networks: each service of a stack is a [`Service`] named
//! `<stack>_<key>`, each network it declares (not external) a [`Network`] named as
//! the stack file says (`<stack>_<key>` by default). References inside a service are
//! resolved to those cluster names, so everything downstream speaks cluster names:
//! `networks:` keys become network ids and named volume sources become node volume
//! names. Objects of a stack that are no longer in it are removed; a network only
//! once no task is on it.

use super::change::{Change, Plan};
use api::ServiceSpec;
use api::cluster::{Meta, Network, Object, Service, Stack, Task};
use api::service::MountType;
use api::stack::StackSpec;
use std::collections::BTreeSet;

/// The id of service `key` of stack `stack`.
pub fn service_id(stack: &str, key: &str) -> String {
    format!("{stack}_{key}")
}

/// The cluster name of object `key` of stack `stack` whose declaration says
/// `name:` (`<stack>_<key>` when it says none).
pub fn declared_name(stack: &str, key: &str, name: &str) -> String {
    if name.is_empty() {
        service_id(stack, key)
    } else {
        name.to_owned()
    }
}

/// `spec` with its network keys, named volume sources, secret and config sources
/// replaced by cluster names (secret and config targets default to their keys).
pub fn resolve(spec: &ServiceSpec, stack: &StackSpec) -> ServiceSpec {
    let mut spec = spec.clone();
    super::files::resolve_references(&mut spec, stack);
    spec.networks = spec
        .networks
        .into_iter()
        .map(|(key, attach)| {
            let name = stack
                .networks
                .get(&key)
                .map(|n| n.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or(key);
            (name, attach)
        })
        .collect();
    for volume in &mut spec.volumes {
        if volume.kind != MountType::Volume {
            continue;
        }
        if let Some(source) = &volume.source
            && let Some(declared) = stack.volumes.get(source)
            && (!declared.external || !declared.name.is_empty())
        {
            volume.source = Some(super::volumes::volume_name(&stack.name, source, declared));
        }
    }
    spec
}

/// Plans the services and networks of stack `id` (`stack: None` once it is deleted).
/// `services` and `networks` are the objects that name the stack; `tasks` every task
/// (to know which networks are still in use).
pub fn plan_stack(
    id: &str,
    stack: Option<&Stack>,
    services: &[&Service],
    networks: &[&Network],
    tasks: &[&Task],
) -> Plan {
    let mut plan = Plan::default();
    let empty = StackSpec::default();
    let spec = stack.map_or(&empty, |s| &s.spec);
    let stack_version = stack.map_or(0, |s| s.meta.version);

    let mut wanted_services = BTreeSet::new();
    for (key, service_spec) in &spec.services {
        let service_id = service_id(id, key);
        wanted_services.insert(service_id.clone());
        let resolved = resolve(service_spec, spec);
        match services.iter().find(|s| s.meta.id == service_id) {
            None => {
                let mut meta = Meta::new(service_id);
                meta.labels = service_spec
                    .deploy
                    .as_ref()
                    .map(|d| d.labels.clone())
                    .unwrap_or_default();
                plan.push(Change::Create(Object::Service(Box::new(Service {
                    meta,
                    stack: id.to_owned(),
                    name: key.clone(),
                    spec: resolved,
                    stack_version,
                    ..Service::default()
                }))));
            }
            // Changes made to the service since (scale, rollback) stand until the
            // stack changes again.
            Some(existing) if existing.stack_version == stack_version => {}
            Some(existing) => {
                let mut service = (*existing).clone();
                service.stack_version = stack_version;
                if service.spec != resolved {
                    service.previous_spec = Some(std::mem::replace(&mut service.spec, resolved));
                    service.update_status = None;
                }
                plan.push(Change::update_service(service));
            }
        }
    }
    for service in services {
        if !wanted_services.contains(&service.meta.id) {
            plan.push(Change::delete(&Object::Service(Box::new(
                (*service).clone(),
            ))));
        }
    }

    let mut wanted_networks = BTreeSet::new();
    for (key, network_spec) in &spec.networks {
        if network_spec.external {
            continue;
        }
        let name = if network_spec.name.is_empty() {
            service_id(id, key)
        } else {
            network_spec.name.clone()
        };
        wanted_networks.insert(name.clone());
        match networks.iter().find(|n| n.meta.id == name) {
            None => {
                let mut meta = Meta::new(name);
                meta.labels = network_spec.labels.clone();
                plan.push(Change::Create(Object::Network(Network {
                    meta,
                    stack: id.to_owned(),
                    spec: network_spec.clone(),
                    allocation: None,
                })));
            }
            Some(existing) if existing.spec != *network_spec => {
                let mut network = (*existing).clone();
                network.spec = network_spec.clone();
                plan.push(Change::update_network(network));
            }
            Some(_) => {}
        }
    }
    for network in networks {
        if wanted_networks.contains(&network.meta.id) {
            continue;
        }
        let in_use = tasks
            .iter()
            .any(|t| t.networks.iter().any(|n| n.network == network.meta.id));
        if !in_use {
            plan.push(Change::delete(&Object::Network((*network).clone())));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::service::ServiceVolume;
    use api::stack::{NetworkSpec, VolumeSpec};

    fn stack() -> Stack {
        let mut spec = StackSpec {
            name: "shop".into(),
            ..StackSpec::default()
        };
        let mut web = ServiceSpec {
            image: Some("busybox".into()),
            ..ServiceSpec::default()
        };
        web.networks.insert("default".into(), None);
        web.volumes.push(ServiceVolume {
            kind: MountType::Volume,
            source: Some("data".into()),
            target: "/data".into(),
            ..ServiceVolume::default()
        });
        spec.services.insert("web".into(), web);
        spec.networks.insert(
            "default".into(),
            NetworkSpec {
                name: "shop_default".into(),
                ..NetworkSpec::default()
            },
        );
        spec.volumes.insert(
            "data".into(),
            VolumeSpec {
                name: "shop_data".into(),
                ..VolumeSpec::default()
            },
        );
        Stack {
            meta: Meta::new("shop"),
            spec,
        }
    }

    #[test]
    fn a_new_stack_makes_its_services_and_networks_with_cluster_names() {
        let stack = stack();
        let plan = plan_stack("shop", Some(&stack), &[], &[], &[]);
        let mut service = None;
        let mut network = None;
        for change in &plan.changes {
            match change {
                Change::Create(Object::Service(s)) => service = Some(s.clone()),
                Change::Create(Object::Network(n)) => network = Some(n.clone()),
                other => panic!("unexpected {other:?}"),
            }
        }
        let service = service.expect("a service");
        assert_eq!(service.meta.id, "shop_web");
        assert_eq!(service.name, "web");
        assert!(service.spec.networks.contains_key("shop_default"));
        assert_eq!(service.spec.volumes[0].source.as_deref(), Some("shop_data"));
        assert_eq!(network.expect("a network").meta.id, "shop_default");

        // Applied: nothing more to do.
        let network = Network {
            meta: Meta::new("shop_default"),
            stack: "shop".into(),
            spec: stack.spec.networks["default"].clone(),
            allocation: None,
        };
        let again = plan_stack("shop", Some(&stack), &[&service], &[&network], &[]);
        assert!(again.changes.is_empty(), "{again:?}");
    }

    #[test]
    fn a_deleted_stack_removes_services_then_networks_once_unused() {
        let stack = stack();
        let first = plan_stack("shop", Some(&stack), &[], &[], &[]);
        let (services, networks): (Vec<Object>, Vec<Object>) = first
            .changes
            .into_iter()
            .filter_map(|c| match c {
                Change::Create(o) => Some(o),
                _ => None,
            })
            .partition(|o| matches!(o, Object::Service(_)));
        let Object::Service(service) = &services[0] else {
            unreachable!()
        };
        let Object::Network(network) = &networks[0] else {
            unreachable!()
        };
        let task = Task {
            networks: vec![api::cluster::TaskNetwork {
                network: "shop_default".into(),
                address: "10.0.1.2/24".into(),
                aliases: vec![],
            }],
            ..Task::default()
        };
        let plan = plan_stack("shop", None, &[service], &[network], &[&task]);
        assert_eq!(
            plan.changes.len(),
            1,
            "the network is still in use: {plan:?}"
        );
        assert!(matches!(&plan.changes[0], Change::Delete { id, .. } if id == "shop_web"));
        let plan = plan_stack("shop", None, &[], &[network], &[]);
        assert!(matches!(&plan.changes[..], [Change::Delete { id, .. }] if id == "shop_default"));
    }
}
