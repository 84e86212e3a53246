//! The leader's reconcile loop in the daemon, which skips rounds after commits its
//! passes cannot act on: a task waiting for a config still moves on once the config
//! is created, after configs no task uses were written. (Which events wake a round is
//! tested where it is decided, in `orchestrator::run`; a round also follows every 5 s
//! regardless, so this end-to-end test checks the outcome, not the wake-up.)

use crate::common::TempDir;
use crate::daemon::start;
use api::cluster::{Meta, Object, Stack, TaskState};
use api::secret::Config;
use api::service::FileReference;
use api::stack::FileObjectSpec;
use api::{ServiceSpec, StackSpec};
use manager::server::Manager;
use manager::store::Command;
use std::time::{Duration, Instant};

/// The status message of the one task of service `service`, once it has one.
fn message(manager: &Manager, service: &str) -> Option<String> {
    manager
        .store()
        .view(|s| {
            s.tasks
                .by_service(service)
                .find(|t| t.desired_state <= TaskState::Running)
                .map(|t| t.status.message.clone())
        })
        .value
}

/// Waits (at most 30 s, polling) until `done` holds for the task's message.
async fn wait_for(manager: &Manager, service: &str, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = message(manager, service);
        if now.as_deref().is_some_and(&done) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: the task says {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(id: &str) -> Object {
    Object::Config(Config {
        meta: Meta::new(id),
        ..Config::default()
    })
}

#[tokio::test]
async fn creating_the_config_a_pending_task_waits_for_wakes_the_scheduler() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("reconcile");
    let (manager, _) = start(&dir).await;

    let mut spec = StackSpec {
        name: "shop".into(),
        ..StackSpec::default()
    };
    spec.configs.insert(
        "conf".into(),
        FileObjectSpec {
            name: "ext".into(),
            external: true,
            ..FileObjectSpec::default()
        },
    );
    let mut app = ServiceSpec {
        image: Some("busybox".into()),
        ..ServiceSpec::default()
    };
    app.configs.push(FileReference {
        source: "conf".into(),
        ..FileReference::default()
    });
    spec.services.insert("app".into(), app);
    let stack = Object::Stack(Stack {
        meta: Meta::new("shop"),
        spec,
    });
    let store = manager.store().clone();
    store.write(Command::create(stack)).await.expect("deploy");
    let waiting = "config ext does not exist";
    wait_for(&manager, "shop_app", "the task waits for its config", |m| {
        m == waiting
    })
    .await;

    // Configs no task uses change nothing the passes plan.
    for i in 0..20 {
        let id = format!("unrelated-{i}");
        store
            .write(Command::create(config(&id)))
            .await
            .expect("config");
    }
    assert_eq!(message(&manager, "shop_app").as_deref(), Some(waiting));

    // The one it waits for: the scheduler tries to place it (no node takes tasks here).
    store
        .write(Command::create(config("ext")))
        .await
        .expect("ext");
    wait_for(&manager, "shop_app", "the config's creation is seen", |m| {
        m != waiting
    })
    .await;
    manager.shutdown().await;
}
