//! Stack volumes on nodes (pure): which volumes a node creates for its tasks (with
//! their labels), which it is told to remove, and the volume objects a node's
//! confirmations change.

use crate::orchestrator::wanted;
use crate::store::State;
use api::cluster::{Task, Volume, VolumeState};
use api::service::MountType;
use api::volume::VolumeCreate;
use std::collections::BTreeSet;

/// The label that names the stack of a volume on a node's engine.
pub const STACK_LABEL: &str = "orch.stack";

/// The stack volumes that `tasks` which are to run mount, as the node's engine is
/// to create them: the declared labels and [`STACK_LABEL`].
pub fn creates(state: &State, tasks: &[Task]) -> Vec<VolumeCreate> {
    let names: BTreeSet<&str> = tasks
        .iter()
        .filter(|t| wanted(t))
        .flat_map(|t| &t.spec.volumes)
        .filter(|m| m.kind == MountType::Volume)
        .filter_map(|m| m.source.as_deref())
        .collect();
    names
        .into_iter()
        .filter_map(|name| state.volumes.get(name))
        .filter(|v| v.desired_state == VolumeState::Active)
        .map(|v| {
            let mut labels = v.spec.labels.clone();
            labels.insert(STACK_LABEL.into(), v.stack.clone());
            VolumeCreate {
                name: v.meta.id.clone(),
                labels,
            }
        })
        .collect()
}

/// The volumes node `node` is to remove: those marked `remove` it has not confirmed.
pub fn removals(state: &State, node: &str) -> Vec<String> {
    state
        .volumes
        .iter()
        .filter(|v| v.desired_state == VolumeState::Remove && !v.removed_on.contains(node))
        .map(|v| v.meta.id.clone())
        .collect()
}

/// The volumes that change when node `node` confirms it removed `names`: each one
/// marked `remove` that did not list the node yet. Other names (a volume declared
/// again, or gone) change nothing.
pub fn confirm(state: &State, node: &str, names: &[String]) -> Vec<Volume> {
    let mut changed: Vec<Volume> = Vec::new();
    for name in names {
        let Some(volume) = state.volumes.get(name) else {
            continue;
        };
        let listed = volume.removed_on.contains(node) || changed.iter().any(|v| v.meta.id == *name);
        if volume.desired_state != VolumeState::Remove || listed {
            continue;
        }
        let mut volume = volume.clone();
        volume.removed_on.insert(node.to_owned());
        changed.push(volume);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::{Meta, Object};

    fn volume(id: &str, state: VolumeState, removed_on: &[&str]) -> Object {
        Object::Volume(Volume {
            meta: Meta::new(id),
            stack: "shop".into(),
            desired_state: state,
            removed_on: removed_on.iter().map(|n| (*n).to_owned()).collect(),
            ..Volume::default()
        })
    }

    fn state() -> State {
        State::from_objects([
            volume("shop_kept", VolumeState::Active, &[]),
            volume("shop_data", VolumeState::Remove, &["n1"]),
            volume("shop_logs", VolumeState::Remove, &[]),
        ])
    }

    #[test]
    fn tasks_to_run_get_their_stack_volumes_with_labels() {
        use api::ServiceSpec;
        use api::cluster::TaskState;
        use api::service::ServiceVolume;
        let mut state = state();
        let Object::Volume(mut kept) = volume("shop_kept", VolumeState::Active, &[]) else {
            unreachable!()
        };
        kept.spec.labels.insert("tier".into(), "db".into());
        state.volumes.insert(kept);
        let mount = |source: &str| ServiceVolume {
            kind: MountType::Volume,
            source: Some(source.into()),
            target: "/data".into(),
            ..ServiceVolume::default()
        };
        let task = |id: &str, desired, sources: &[&str]| Task {
            meta: Meta::new(id),
            desired_state: desired,
            spec: ServiceSpec {
                volumes: sources.iter().map(|s| mount(s)).collect(),
                ..ServiceSpec::default()
            },
            ..Task::default()
        };
        let tasks = [
            task(
                "t1",
                TaskState::Running,
                &["shop_kept", "shop_logs", "external"],
            ),
            task("t2", TaskState::Shutdown, &["shop_data"]),
        ];
        let got = creates(&state, &tasks);
        assert_eq!(
            got.len(),
            1,
            "only active stack volumes of tasks to run: {got:?}"
        );
        assert_eq!(got[0].name, "shop_kept");
        assert_eq!(got[0].labels["tier"], "db");
        assert_eq!(got[0].labels[STACK_LABEL], "shop");
    }

    #[test]
    fn nodes_are_told_to_remove_only_what_they_have_not_confirmed() {
        let state = state();
        assert_eq!(removals(&state, "n1"), ["shop_logs"]);
        assert_eq!(removals(&state, "n2"), ["shop_data", "shop_logs"]);
    }

    #[test]
    fn a_confirmation_lists_the_node_once_and_only_on_volumes_to_remove() {
        let state = state();
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let changed = confirm(
            &state,
            "n1",
            &names(&["shop_kept", "shop_data", "shop_logs", "shop_logs", "gone"]),
        );
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(changed[0].meta.id, "shop_logs");
        assert!(changed[0].removed_on.contains("n1"));
        let changed = confirm(&state, "n2", &names(&["shop_data"]));
        let on: Vec<&str> = changed[0].removed_on.iter().map(String::as_str).collect();
        assert_eq!(on, ["n1", "n2"]);
    }
}
