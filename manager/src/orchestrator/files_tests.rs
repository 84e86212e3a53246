//! A stack's secrets and configs on the simulated cluster: objects made with cluster
//! names, references resolved, values delivered only to the node running a task that
//! uses them, objects removed with the stack once no task uses them.

use super::sim::Sim;
use crate::dispatcher::assignments::assignments;
use crate::keyring::Keyring;
use crate::store::Command;
use api::cluster::Kind;
use api::service::FileReference;
use api::stack::FileObjectSpec;
use api::{ServiceSpec, StackSpec};

fn stack(keyring: &Keyring) -> StackSpec {
    let mut spec = StackSpec {
        name: "shop".into(),
        ..StackSpec::default()
    };
    spec.secrets.insert(
        "db_password".into(),
        FileObjectSpec {
            name: "shop_db_password".into(),
            sealed: Some(keyring.seal("shop_db_password", b"hunter2").unwrap()),
            ..FileObjectSpec::default()
        },
    );
    spec.configs.insert(
        "conf".into(),
        FileObjectSpec {
            name: "shop_conf".into(),
            content: Some("level=debug\n".into()),
            ..FileObjectSpec::default()
        },
    );
    let mut app = ServiceSpec {
        image: Some("busybox".into()),
        ..ServiceSpec::default()
    };
    app.secrets.push(FileReference {
        source: "db_password".into(),
        ..FileReference::default()
    });
    app.configs.push(FileReference {
        source: "conf".into(),
        ..FileReference::default()
    });
    spec.services.insert("app".into(), app);
    spec.services.insert(
        "other".into(),
        ServiceSpec {
            image: Some("busybox".into()),
            ..ServiceSpec::default()
        },
    );
    spec
}

#[test]
fn stack_secrets_reach_only_the_node_running_a_task_that_uses_them() {
    let keyring = Keyring::generate().unwrap();
    let mut sim = Sim::new(&["n1", "n2"]);
    sim.deploy_spec("shop", stack(&keyring));
    sim.agents_run();

    let secret = sim
        .state
        .secrets
        .get("shop_db_password")
        .expect("the secret");
    assert_eq!(secret.stack, "shop");
    assert_eq!(
        keyring.open(&secret.meta.id, &secret.value).unwrap(),
        b"hunter2"
    );
    let config = sim.state.configs.get("shop_conf").expect("the config");
    assert_eq!(config.data, data_encoding::BASE64.encode(b"level=debug\n"));

    let app = &sim.wanted("shop_app")[0];
    assert_eq!(app.spec.secrets[0].source, "shop_db_password");
    assert_eq!(app.spec.secrets[0].target.as_deref(), Some("db_password"));
    assert_eq!(app.spec.configs[0].source, "shop_conf");
    assert_eq!(app.spec.configs[0].target.as_deref(), Some("/conf"));

    let app_node = app.node.clone().expect("placed");
    let other_node = sim.wanted("shop_other")[0].node.clone().expect("placed");
    assert_ne!(app_node, other_node, "one task per node");
    let set = assignments(&sim.state, &app_node, 0, &keyring);
    assert_eq!(set.secrets.len(), 1);
    assert_eq!(set.secrets[0].id, "shop_db_password");
    assert_eq!(
        set.secrets[0].data,
        data_encoding::BASE64.encode(b"hunter2")
    );
    assert_eq!(set.configs[0].id, "shop_conf");
    let set = assignments(&sim.state, &other_node, 0, &keyring);
    assert!(set.secrets.is_empty() && set.configs.is_empty(), "{set:?}");

    // Another cluster's key opens nothing: the secret is left out, not sent sealed.
    let other_key = Keyring::generate().unwrap();
    assert!(
        assignments(&sim.state, &app_node, 0, &other_key)
            .secrets
            .is_empty()
    );

    // A changed value updates the object; the same value again changes nothing.
    let mut changed = stack(&keyring);
    changed.secrets.get_mut("db_password").unwrap().sealed =
        Some(keyring.seal("shop_db_password", b"new").unwrap());
    sim.deploy_spec("shop", changed);
    let secret = sim.state.secrets.get("shop_db_password").unwrap();
    assert_eq!(
        keyring.open(&secret.meta.id, &secret.value).unwrap(),
        b"new"
    );
}

#[test]
fn a_deleted_stack_removes_its_secrets_once_no_task_uses_them() {
    let keyring = Keyring::generate().unwrap();
    let mut sim = Sim::new(&["n1"]);
    sim.deploy_spec("shop", stack(&keyring));
    sim.agents_run();
    sim.commit(vec![Command::delete(Kind::Stack, "shop", None)]);
    sim.settle();
    assert!(
        sim.state.secrets.get("shop_db_password").is_some(),
        "the task still runs"
    );
    sim.agents_run();
    assert!(sim.state.secrets.get("shop_db_password").is_none());
    assert!(sim.state.configs.get("shop_conf").is_none());
}

#[test]
fn external_secrets_are_only_referenced() {
    let keyring = Keyring::generate().unwrap();
    let mut spec = stack(&keyring);
    spec.secrets.insert(
        "db_password".into(),
        FileObjectSpec {
            name: "prod_db".into(),
            external: true,
            ..FileObjectSpec::default()
        },
    );
    let mut sim = Sim::new(&["n1"]);
    sim.deploy_spec("shop", spec);
    assert_eq!(sim.state.secrets.iter().count(), 0);
    let app = &sim.wanted("shop_app")[0];
    assert_eq!(app.spec.secrets[0].source, "prod_db");
}

#[test]
fn a_task_whose_external_secret_is_missing_stays_pending_saying_so() {
    use super::change::Change;
    use api::cluster::{Meta, Object, TaskState};
    use api::secret::Secret;

    let keyring = Keyring::generate().unwrap();
    let mut spec = stack(&keyring);
    spec.secrets.insert(
        "db_password".into(),
        FileObjectSpec {
            name: "prod_db".into(),
            external: true,
            ..FileObjectSpec::default()
        },
    );
    // No node: the tasks stay pending for the scheduler.
    let mut sim = Sim::new(&[]);
    sim.deploy_spec("shop", spec);
    let app = sim.wanted("shop_app")[0].clone();
    assert_eq!(app.status.state, TaskState::Pending);
    let message_of = |plan: &super::change::Plan| {
        plan.changes.iter().find_map(|c| match c {
            Change::Update(Object::Task(t)) if t.meta.id == app.meta.id => {
                Some(t.status.message.clone())
            }
            _ => None,
        })
    };

    let plan = super::schedule::plan(&sim.state, Default::default(), sim.now);
    assert_eq!(
        message_of(&plan).as_deref(),
        Some("secret prod_db does not exist")
    );

    let secret = Secret {
        meta: Meta::new("prod_db"),
        value: keyring.seal("prod_db", b"pw").unwrap(),
        ..Secret::default()
    };
    sim.commit(vec![Command::create(Object::Secret(secret))]);
    let plan = super::schedule::plan(&sim.state, Default::default(), sim.now);
    let message = message_of(&plan).unwrap_or_default();
    assert!(
        message.starts_with("no node fits"),
        "now only the nodes are missing: {message}"
    );
}
