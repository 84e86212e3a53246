use super::*;
use api::cluster::{Meta, Node, NodeRole, Task, TaskState};
use proptest::prelude::*;

fn task(id: &str, service: &str, node: Option<&str>) -> Object {
    Object::Task(Box::new(Task {
        meta: Meta::new(id),
        service: service.into(),
        slot: 1,
        node: node.map(str::to_owned),
        desired_state: TaskState::Running,
        ..Task::default()
    }))
}

fn node(id: &str, role: NodeRole) -> Object {
    let mut node = Node {
        meta: Meta::new(id),
        ..Node::default()
    };
    node.spec.role = role;
    Object::Node(node)
}

fn at(ms: u64, command: Command) -> Proposal {
    Proposal {
        at: Timestamp(ms),
        command,
    }
}

fn applied(result: CommandResult) -> Applied {
    match result {
        CommandResult::Applied(applied) => applied,
        CommandResult::Rejected { reason } => panic!("rejected: {reason}"),
        CommandResult::Each { results } => panic!("one command answered {results:?}"),
    }
}

fn rejected(result: CommandResult) -> Rejection {
    match result {
        CommandResult::Applied(a) => panic!("applied at {}", a.version),
        CommandResult::Rejected { reason } => reason,
        CommandResult::Each { results } => panic!("one command answered {results:?}"),
    }
}

#[test]
fn create_stamps_version_and_times_from_the_proposal() {
    let mut state = State::default();
    let result = applied(apply(
        &mut state,
        7,
        &at(1000, Command::create(task("t1", "web", None))),
    ));
    assert_eq!(result.version, 7);
    let stored = state.tasks.get("t1").expect("created");
    assert_eq!(
        (
            stored.meta.version,
            stored.meta.created,
            stored.meta.updated
        ),
        (7, Timestamp(1000), Timestamp(1000))
    );
    assert_eq!(
        result.changes,
        vec![Event::Created {
            object: Object::Task(Box::new(stored.clone()))
        }]
    );
}

#[test]
fn update_checks_the_version_and_keeps_created() {
    let mut state = State::default();
    applied(apply(
        &mut state,
        1,
        &at(10, Command::create(task("t1", "web", None))),
    ));
    applied(apply(
        &mut state,
        2,
        &at(20, Command::update(task("t1", "web", Some("n1")), 1)),
    ));
    let stored = state.tasks.get("t1").expect("present");
    assert_eq!(
        (
            stored.meta.version,
            stored.meta.created,
            stored.meta.updated
        ),
        (2, Timestamp(10), Timestamp(20))
    );
    assert_eq!(state.tasks.by_node("n1").count(), 1);

    let stale = rejected(apply(
        &mut state,
        3,
        &at(30, Command::update(task("t1", "web", None), 1)),
    ));
    assert_eq!(
        stale,
        Rejection::Conflict {
            kind: Kind::Task,
            id: "t1".into(),
            expected: 1,
            actual: 2
        }
    );
    assert_eq!(state.tasks.get("t1").map(|t| t.meta.version), Some(2));
}

#[test]
fn create_twice_update_or_delete_missing_are_refused() {
    let mut state = State::default();
    applied(apply(
        &mut state,
        1,
        &at(0, Command::create(node("n1", NodeRole::Worker))),
    ));
    let again = rejected(apply(
        &mut state,
        2,
        &at(0, Command::create(node("n1", NodeRole::Manager))),
    ));
    assert_eq!(
        again,
        Rejection::Exists {
            kind: Kind::Node,
            id: "n1".into()
        }
    );
    let missing = rejected(apply(
        &mut state,
        3,
        &at(0, Command::update(node("n2", NodeRole::Worker), 1)),
    ));
    assert_eq!(
        missing,
        Rejection::NotFound {
            kind: Kind::Node,
            id: "n2".into()
        }
    );
    let gone = rejected(apply(
        &mut state,
        4,
        &at(0, Command::delete(Kind::Stack, "s", None)),
    ));
    assert_eq!(
        gone,
        Rejection::NotFound {
            kind: Kind::Stack,
            id: "s".into()
        }
    );
}

#[test]
fn delete_with_and_without_a_version() {
    let mut state = State::default();
    applied(apply(
        &mut state,
        1,
        &at(0, Command::create(task("t1", "web", None))),
    ));
    applied(apply(
        &mut state,
        2,
        &at(0, Command::create(task("t2", "web", None))),
    ));
    let stale = rejected(apply(
        &mut state,
        3,
        &at(0, Command::delete(Kind::Task, "t1", Some(9))),
    ));
    assert!(matches!(stale, Rejection::Conflict { actual: 1, .. }));
    applied(apply(
        &mut state,
        4,
        &at(0, Command::delete(Kind::Task, "t1", Some(1))),
    ));
    let result = applied(apply(
        &mut state,
        5,
        &at(0, Command::delete(Kind::Task, "t2", None)),
    ));
    assert!(matches!(&result.changes[..], [Event::Deleted { .. }]));
    assert!(state.tasks.is_empty());
    assert_eq!(state.tasks.by_service("web").count(), 0);
}

#[test]
fn a_failing_batch_changes_nothing() {
    let mut state = State::default();
    applied(apply(
        &mut state,
        1,
        &at(0, Command::create(task("t1", "web", None))),
    ));
    let before = state.clone();
    let batch = Command::Batch {
        commands: vec![
            Command::create(task("t2", "web", None)),
            Command::update(task("t1", "web", Some("n1")), 1),
            Command::delete(Kind::Task, "t1", None),
            Command::create(task("t1", "db", None)),
            Command::update(task("t9", "web", None), 1),
        ],
    };
    let reason = rejected(apply(&mut state, 2, &at(0, batch)));
    assert_eq!(
        reason,
        Rejection::NotFound {
            kind: Kind::Task,
            id: "t9".into()
        }
    );
    assert_eq!(state, before);
    assert_eq!(
        state.tasks.index_entries().collect::<Vec<_>>(),
        before.tasks.index_entries().collect::<Vec<_>>()
    );
}

#[test]
fn invalid_commands_are_refused_with_the_problem() {
    let mut state = State::default();
    let empty = rejected(apply(
        &mut state,
        1,
        &at(0, Command::create(task("", "web", None))),
    ));
    assert_eq!(
        empty,
        Rejection::Invalid {
            problem: Problem::EmptyId { kind: Kind::Task }
        }
    );
    let nested = Command::Batch {
        commands: vec![Command::Batch { commands: vec![] }],
    };
    assert_eq!(
        rejected(apply(&mut state, 2, &at(0, nested))),
        Rejection::Invalid {
            problem: Problem::NestedBatch
        }
    );
    let nested = Command::Batch {
        commands: vec![Command::Each { commands: vec![] }],
    };
    assert_eq!(
        rejected(apply(&mut state, 2, &at(0, nested))),
        Rejection::Invalid {
            problem: Problem::NestedEach
        }
    );
    let nested = Command::Each {
        commands: vec![Command::Each { commands: vec![] }],
    };
    assert_eq!(
        apply(&mut state, 2, &at(0, nested)),
        CommandResult::Each {
            results: vec![CommandResult::Rejected {
                reason: Rejection::Invalid {
                    problem: Problem::NestedEach
                }
            }]
        }
    );
    assert_eq!(
        rejected(apply(&mut state, 3, &at(0, Command::Unknown))),
        Rejection::Invalid {
            problem: Problem::UnknownCommand
        }
    );
}

#[test]
fn unknown_commands_decode_and_are_refused() {
    let proposal: Proposal =
        serde_json::from_str(r#"{"at":5,"command":{"op":"rotate_everything","x":1}}"#)
            .expect("tolerant decode");
    assert_eq!(proposal.command, Command::Unknown);
}

// --- properties --------------------------------------------------------------

fn arb_object() -> impl Strategy<Value = Object> {
    let id = prop::sample::select(vec!["a", "b", "c"]);
    let owner = prop::sample::select(vec!["x", "y"]);
    prop_oneof![
        (id.clone(), owner.clone(), prop::option::of(owner.clone()))
            .prop_map(|(id, service, node)| task(id, service, node)),
        (id, prop::bool::ANY).prop_map(|(id, manager)| {
            node(
                id,
                if manager {
                    NodeRole::Manager
                } else {
                    NodeRole::Worker
                },
            )
        }),
    ]
}

fn arb_simple() -> impl Strategy<Value = Command> {
    let version = 0u64..6;
    prop_oneof![
        arb_object().prop_map(Command::create),
        (arb_object(), version.clone()).prop_map(|(o, v)| Command::update(o, v)),
        (arb_object(), prop::option::of(version)).prop_map(|(o, v)| Command::delete(
            o.kind(),
            o.meta().id.clone(),
            v
        )),
    ]
}

fn arb_batch() -> impl Strategy<Value = Command> {
    prop::collection::vec(arb_simple(), 0..5).prop_map(|commands| Command::Batch { commands })
}

/// What a group holds: writes as callers make them.
fn arb_member() -> impl Strategy<Value = Command> {
    prop_oneof![3 => arb_simple(), 1 => arb_batch()]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => arb_simple(),
        1 => arb_batch(),
        1 => prop::collection::vec(arb_member(), 0..5).prop_map(|commands| Command::Each { commands }),
    ]
}

fn arb_proposals() -> impl Strategy<Value = Vec<Proposal>> {
    prop::collection::vec((0u64..1000, arb_command()), 0..40)
        .prop_map(|v| v.into_iter().map(|(ms, c)| at(ms, c)).collect())
}

fn run_all(proposals: &[Proposal]) -> (State, Vec<CommandResult>) {
    let mut state = State::default();
    let results = proposals
        .iter()
        .enumerate()
        .map(|(i, p)| apply(&mut state, i as u64 + 1, p))
        .collect();
    (state, results)
}

proptest! {
    #[test]
    fn apply_is_deterministic(proposals in arb_proposals()) {
        let (state_a, results_a) = run_all(&proposals);
        // The same commands after a trip through the log's encoding.
        let decoded: Vec<Proposal> =
            serde_json::from_str(&serde_json::to_string(&proposals).unwrap()).unwrap();
        let (state_b, results_b) = run_all(&decoded);
        prop_assert_eq!(&state_a, &state_b);
        prop_assert_eq!(results_a, results_b);
        // Indexes are a function of the rows.
        let rebuilt = State::from_objects(state_a.objects());
        prop_assert_eq!(&rebuilt, &state_a);
        prop_assert!(rebuilt.tasks.index_entries().eq(state_a.tasks.index_entries()));
        prop_assert!(rebuilt.nodes.index_entries().eq(state_a.nodes.index_entries()));
    }

    #[test]
    fn batches_are_all_or_nothing(prefix in arb_proposals(), commands in prop::collection::vec(arb_simple(), 0..6)) {
        let (mut state, _) = run_all(&prefix);
        let version = prefix.len() as u64 + 1;
        let before = state.clone();
        let batch = at(5, Command::Batch { commands: commands.clone() });
        match apply(&mut state, version, &batch) {
            CommandResult::Rejected { .. } => prop_assert_eq!(&state, &before),
            CommandResult::Applied(applied) => {
                // Same as applying each command on its own, each of them succeeding.
                let mut one_by_one = before.clone();
                let mut changes = Vec::new();
                for command in commands {
                    match apply(&mut one_by_one, version, &at(5, command)) {
                        CommandResult::Applied(a) => changes.extend(a.changes),
                        other => {
                            return Err(TestCaseError::fail(format!("batch applied, single answered {other:?}")));
                        }
                    }
                }
                prop_assert_eq!(&state, &one_by_one);
                prop_assert_eq!(applied.changes, changes);
            }
            CommandResult::Each { results } => {
                return Err(TestCaseError::fail(format!("a batch answered {results:?}")));
            }
        }
    }

    #[test]
    fn grouped_commands_apply_as_if_alone(prefix in arb_proposals(), commands in prop::collection::vec(arb_member(), 0..6)) {
        let (mut state, _) = run_all(&prefix);
        let version = prefix.len() as u64 + 1;
        let mut one_by_one = state.clone();
        let grouped = apply(&mut state, version, &at(5, Command::Each { commands: commands.clone() }));
        // Each command, alone at the same index, does and answers the same.
        let alone: Vec<CommandResult> = commands
            .iter()
            .map(|command| apply(&mut one_by_one, version, &at(5, command.clone())))
            .collect();
        prop_assert_eq!(&state, &one_by_one);
        let CommandResult::Each { results } = grouped else {
            return Err(TestCaseError::fail(format!("a group answered {grouped:?}")));
        };
        prop_assert_eq!(results, alone);
    }
}
