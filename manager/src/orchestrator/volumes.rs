//! A stack's named volumes as [`Volume`] objects: each volume it declares (not
//! external) is one, named as the stack file says (`<stack>_<key>` by default), the
//! name of the engine volume on every node that runs a task mounting it.
//!
//! A volume the stack no longer declares, or whose stack is gone, stays (its data
//! stays on the nodes, as `docker compose down` leaves a project's volumes) until it
//! is marked `remove` (`DELETE /v1/stacks/{id}?volumes=true`, also once the stack is
//! gone): then it is sent to every node for removal and deleted once every node of
//! the cluster that runs an engine confirmed (a node removed from the cluster no
//! longer counts, nor does a manager without an agent). Declaring it again (a new
//! `up`) cancels the removal; another stack may declare a name its stack no longer
//! does, and the volume becomes that stack's.

use super::change::{Change, Plan};
use super::stacks::declared_name;
use api::cluster::{Meta, Node, Object, Stack, Volume, VolumeState};
use api::stack::VolumeSpec;
use std::collections::BTreeSet;

/// The cluster name of volume `key` of stack `stack` as `spec` declares it.
pub fn volume_name(stack: &str, key: &str, spec: &VolumeSpec) -> String {
    declared_name(stack, key, &spec.name)
}

/// Plans the volumes of stack `id` (`stack: None` once it is deleted). `all` is every
/// volume object (a name another stack declared first stays that stack's while that
/// stack declares it or removes it); `stacks` every stack; `nodes` every node of the
/// cluster.
pub fn plan_volumes(
    id: &str,
    stack: Option<&Stack>,
    all: &[&Volume],
    stacks: &[&Stack],
    nodes: &[&Node],
) -> Plan {
    let mut plan = Plan::default();
    let mut wanted = BTreeSet::new();
    let owner_declares = |v: &Volume| {
        let owner = stacks.iter().find(|s| s.meta.id == v.stack);
        declared(owner.copied()).any(|(k, s)| volume_name(&v.stack, k, s) == v.meta.id)
    };
    for (key, spec) in declared(stack) {
        let name = volume_name(id, key, spec);
        wanted.insert(name.clone());
        match all.iter().find(|v| v.meta.id == name) {
            None => {
                let mut meta = Meta::new(name);
                meta.labels = spec.labels.clone();
                plan.push(Change::Create(Object::Volume(Volume {
                    meta,
                    stack: id.to_owned(),
                    spec: spec.clone(),
                    ..Volume::default()
                })));
            }
            Some(other)
                if other.stack != id
                    && (other.desired_state == VolumeState::Remove || owner_declares(other)) => {}
            Some(existing)
                if existing.stack != id
                    || existing.spec != *spec
                    || existing.desired_state != VolumeState::Active =>
            {
                let mut volume = (*existing).clone();
                volume.stack = id.to_owned();
                volume.spec = spec.clone();
                volume.meta.labels = spec.labels.clone();
                volume.desired_state = VolumeState::Active;
                volume.removed_on.clear();
                plan.push(Change::Update(Object::Volume(volume)));
            }
            Some(_) => {}
        }
    }
    for volume in all.iter().filter(|v| v.stack == id) {
        if wanted.contains(&volume.meta.id) {
            continue;
        }
        if volume.desired_state == VolumeState::Remove && removed_everywhere(volume, nodes) {
            plan.push(Change::delete(&Object::Volume((*volume).clone())));
        }
    }
    plan
}

/// The volumes `stack` declares that are cluster objects (not external), by key.
fn declared(stack: Option<&Stack>) -> impl Iterator<Item = (&String, &VolumeSpec)> {
    stack
        .into_iter()
        .flat_map(|s| &s.spec.volumes)
        .filter(|(_, v)| !v.external)
}

/// Why the nodes cannot make volume `spec` (none: they can). Their engines have the
/// `local` driver only, which takes labels but no options.
pub fn unsupported(spec: &VolumeSpec) -> Option<String> {
    if spec.external {
        return None;
    }
    if let Some(driver) = spec.driver.as_deref().filter(|d| *d != "local") {
        return Some(format!(
            "driver {driver:?} is not supported: the nodes' engines have the `local` driver only"
        ));
    }
    let opts: Vec<&str> = spec.driver_opts.keys().map(String::as_str).collect();
    if !opts.is_empty() {
        return Some(format!(
            "driver_opts ({}) are not supported: the `local` driver of the nodes' engines takes no options",
            opts.join(", ")
        ));
    }
    None
}

/// Whether `node` can hold volumes: its agent opened a session once (a manager
/// started without an agent never does, and has no engine).
pub fn has_engine(node: &Node) -> bool {
    !node.description.engine_version.is_empty()
}

/// Whether every node of `nodes` that has an engine confirmed removing `volume`.
pub fn removed_everywhere(volume: &Volume, nodes: &[&Node]) -> bool {
    nodes
        .iter()
        .filter(|n| has_engine(n))
        .all(|n| volume.removed_on.contains(&n.meta.id))
}

/// `volume` marked for removal from every node, or `None` when it already is.
pub fn marked_for_removal(volume: &Volume) -> Option<Volume> {
    if volume.desired_state == VolumeState::Remove {
        return None;
    }
    let mut volume = volume.clone();
    volume.desired_state = VolumeState::Remove;
    volume.removed_on.clear();
    Some(volume)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::stack::StackSpec;

    fn stack(volumes: &[(&str, VolumeSpec)]) -> Stack {
        let mut spec = StackSpec {
            name: "shop".into(),
            ..StackSpec::default()
        };
        for (key, v) in volumes {
            spec.volumes.insert((*key).into(), v.clone());
        }
        Stack {
            meta: Meta::new("shop"),
            spec,
        }
    }

    fn node(id: &str, engine: bool) -> Node {
        let mut node = Node {
            meta: Meta::new(id),
            ..Node::default()
        };
        if engine {
            node.description.engine_version = "0.1.0".into();
        }
        node
    }

    /// [`plan_volumes`] on nodes `ids`, each with an engine, `stack` the only one.
    fn plan_on(id: &str, stack: Option<&Stack>, all: &[&Volume], ids: &[&str]) -> Plan {
        let nodes: Vec<Node> = ids.iter().map(|n| node(n, true)).collect();
        let refs: Vec<&Node> = nodes.iter().collect();
        let stacks: Vec<&Stack> = stack.into_iter().collect();
        plan_volumes(id, stack, all, &stacks, &refs)
    }

    fn created(plan: &Plan) -> Vec<Volume> {
        plan.changes
            .iter()
            .filter_map(|c| match c {
                Change::Create(Object::Volume(v)) | Change::Update(Object::Volume(v)) => {
                    Some(v.clone())
                }
                _ => None,
            })
            .collect()
    }

    fn deleted(plan: &Plan) -> Vec<&str> {
        plan.changes
            .iter()
            .filter_map(|c| match c {
                Change::Delete { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn declared_volumes_become_objects_but_external_ones_do_not() {
        let labelled = VolumeSpec {
            labels: [("tier".to_owned(), "db".to_owned())].into(),
            ..VolumeSpec::default()
        };
        let named = VolumeSpec {
            name: "shared-cache".into(),
            ..VolumeSpec::default()
        };
        let external = VolumeSpec {
            name: "keep".into(),
            external: true,
            ..VolumeSpec::default()
        };
        let stack = stack(&[("data", labelled), ("cache", named), ("keep", external)]);
        let plan = plan_on("shop", Some(&stack), &[], &["n1"]);
        let made = created(&plan);
        let names: Vec<&str> = made.iter().map(|v| v.meta.id.as_str()).collect();
        assert_eq!(names, ["shared-cache", "shop_data"]);
        assert!(made.iter().all(|v| v.stack == "shop"));
        assert_eq!(made[1].meta.labels["tier"], "db");
        assert_eq!(made[1].desired_state, VolumeState::Active);

        // Applied: nothing more to do; a changed spec is an update.
        let refs: Vec<&Volume> = made.iter().collect();
        assert!(
            plan_on("shop", Some(&stack), &refs, &["n1"])
                .changes
                .is_empty()
        );
        let mut changed = stack.clone();
        changed.spec.volumes.get_mut("data").unwrap().labels.clear();
        let again = created(&plan_on("shop", Some(&changed), &refs, &["n1"]));
        assert_eq!(again.len(), 1);
        assert!(again[0].meta.labels.is_empty());
    }

    #[test]
    fn a_volume_another_stack_declared_first_stays_its_while_that_stack_declares_it() {
        let other = Volume {
            meta: Meta::new("shared"),
            stack: "blog".into(),
            ..Volume::default()
        };
        let spec = VolumeSpec {
            name: "shared".into(),
            ..VolumeSpec::default()
        };
        let shop = stack(&[("data", spec.clone())]);
        let mut blog = stack(&[("cache", spec)]);
        blog.meta.id = "blog".into();
        let n1 = node("n1", true);
        let plan = plan_volumes("shop", Some(&shop), &[&other], &[&shop, &blog], &[&n1]);
        assert!(plan.changes.is_empty(), "{plan:?}");
        let removing = marked_for_removal(&other).expect("not marked yet");
        let plan = plan_on("shop", Some(&shop), &[&removing], &["n1"]);
        assert!(plan.changes.is_empty(), "blog removes it first: {plan:?}");

        // Blog is gone (or no longer declares it): shop takes it, data and all.
        let taken = created(&plan_on("shop", Some(&shop), &[&other], &["n1"]));
        assert_eq!(taken.len(), 1);
        assert_eq!(
            (taken[0].meta.id.as_str(), taken[0].stack.as_str()),
            ("shared", "shop")
        );
        assert_eq!(taken[0].desired_state, VolumeState::Active);
    }

    #[test]
    fn a_deleted_stack_keeps_its_volumes_until_they_are_removed_everywhere() {
        let kept = Volume {
            meta: Meta::new("shop_data"),
            stack: "shop".into(),
            ..Volume::default()
        };
        let plan = plan_on("shop", None, &[&kept], &["n1"]);
        assert!(plan.changes.is_empty(), "kept: {plan:?}");
        let undeclared = stack(&[]);
        let plan = plan_on("shop", Some(&undeclared), &[&kept], &["n1"]);
        assert!(plan.changes.is_empty(), "kept: {plan:?}");

        let mut removing = marked_for_removal(&kept).expect("not marked yet");
        assert!(marked_for_removal(&removing).is_none());
        assert!(
            plan_on("shop", None, &[&removing], &["n1", "n2"])
                .changes
                .is_empty()
        );
        removing.removed_on.insert("n1".into());
        assert!(
            plan_on("shop", None, &[&removing], &["n1", "n2"])
                .changes
                .is_empty(),
            "n2 has not confirmed"
        );
        let plan = plan_on("shop", None, &[&removing], &["n1"]);
        assert_eq!(deleted(&plan), ["shop_data"], "n2 left the cluster");
        removing.removed_on.insert("n2".into());
        let plan = plan_on("shop", None, &[&removing], &["n1", "n2"]);
        assert_eq!(deleted(&plan), ["shop_data"]);
    }

    #[test]
    fn only_the_local_driver_without_options_is_taken() {
        let spec = |driver: Option<&str>, opts: &[(&str, &str)], external| VolumeSpec {
            driver: driver.map(str::to_owned),
            driver_opts: opts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            external,
            ..VolumeSpec::default()
        };
        assert_eq!(unsupported(&spec(None, &[], false)), None);
        assert_eq!(unsupported(&spec(Some("local"), &[], false)), None);
        assert_eq!(unsupported(&spec(Some("nfs"), &[], true)), None, "external");
        let why = unsupported(&spec(Some("rexray"), &[], false)).expect("refused");
        assert!(why.contains("\"rexray\""), "{why}");
        let why =
            unsupported(&spec(None, &[("type", "nfs"), ("o", "addr=x")], false)).expect("refused");
        assert!(why.contains("o, type"), "{why}");
    }

    #[test]
    fn a_node_without_an_engine_does_not_hold_a_removal_back() {
        let removing = Volume {
            meta: Meta::new("shop_data"),
            stack: "shop".into(),
            desired_state: VolumeState::Remove,
            removed_on: ["w1".to_owned()].into(),
            ..Volume::default()
        };
        let (worker, manager) = (node("w1", true), node("m1", false));
        let plan = plan_volumes("shop", None, &[&removing], &[], &[&worker, &manager]);
        assert_eq!(deleted(&plan), ["shop_data"], "m1 never ran an agent");
        let plan = plan_volumes(
            "shop",
            None,
            &[&removing],
            &[],
            &[&worker, &node("w2", true)],
        );
        assert!(plan.changes.is_empty(), "w2 has not confirmed");
    }

    #[test]
    fn declaring_a_volume_again_cancels_its_removal() {
        let mut removing = Volume {
            meta: Meta::new("shop_data"),
            stack: "shop".into(),
            desired_state: VolumeState::Remove,
            ..Volume::default()
        };
        removing.removed_on.insert("n1".into());
        let stack = stack(&[("data", VolumeSpec::default())]);
        let back = created(&plan_on("shop", Some(&stack), &[&removing], &["n1", "n2"]));
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].desired_state, VolumeState::Active);
        assert!(back[0].removed_on.is_empty());
    }
}
