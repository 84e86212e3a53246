//! Compose keys the engine honours beyond its defaults, each proved from inside a
//! real busybox container: a service spec goes through the worker's mapping
//! ([`executor::container_create`]) to the engine's API, runs to its end, and its
//! output says what the kernel gave it.

use crate::engine::{Agent, ok};
use agent::worker::executor;
use api::client::EngineClient;
use api::cluster::{Meta, Task};
use api::service::ServiceSpec;
use api::units::Bytes;

/// An engine with the busybox image and a runtime for its client.
struct Engine {
    rt: tokio::runtime::Runtime,
    client: EngineClient,
    agent: Agent,
}

impl Engine {
    /// An engine, or `None` (having said why) when the busybox image cannot be made.
    fn start(tag: &str) -> Option<Engine> {
        let agent = Agent::start(&format!("keys-{tag}"));
        if !agent.busybox() {
            return None;
        }
        let endpoint = format!("unix://{}", agent.dir.join("engine.sock").display());
        Some(Engine {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: EngineClient::new(&endpoint).unwrap(),
            agent,
        })
    }

    /// Task `id` of a service running `sh -c script` with `spec`'s other keys.
    fn task(id: &str, script: &str, spec: ServiceSpec) -> Task {
        Task {
            meta: Meta::new(format!("k{}{id}", std::process::id())),
            service: id.to_owned(),
            name: id.to_owned(),
            slot: 1,
            spec: ServiceSpec {
                image: Some("busybox".into()),
                command: Some(vec!["sh".into(), "-c".into(), script.into()]),
                ..spec
            },
            ..Task::default()
        }
    }

    /// Run `script` as task `id` with `spec` to its end; its exit code and output.
    /// The container is removed either way.
    fn run(&self, id: &str, script: &str, spec: ServiceSpec) -> (i32, String) {
        let create = executor::container_create(&Engine::task(id, script, spec))
            .expect("the worker maps the spec");
        let c = &self.client;
        let created = self
            .rt
            .block_on(c.create_container(&create))
            .expect("the engine creates the container");
        let exit = self.rt.block_on(async {
            c.start_container(&created.id).await?;
            c.wait_container(&created.id).await
        });
        let logs = self.agent.orch(&["container", "logs", &created.id], None);
        let _ = self.rt.block_on(c.remove_container(&created.id, true));
        let exit = exit.expect("the container starts and ends");
        (exit.exit_code, ok(&logs))
    }
}

/// The options of the mount on `target` in /proc/mounts text.
fn mount_options<'a>(mounts: &'a str, target: &str) -> &'a str {
    mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(target))
        .and_then(|l| l.split(' ').nth(3))
        .unwrap_or_else(|| panic!("no mount on {target} in {mounts}"))
}

#[test]
fn shm_size_sizes_the_containers_dev_shm() {
    let Some(e) = Engine::start("shm") else {
        return;
    };
    let spec = ServiceSpec {
        shm_size: Some(Bytes(256 << 20)),
        ..ServiceSpec::default()
    };
    let script = "cat /proc/mounts; df -k /dev/shm";
    let (code, out) = e.run("shm", script, spec);
    assert_eq!(code, 0, "{out}");
    assert!(
        mount_options(&out, "/dev/shm").contains("size=262144k"),
        "{out}"
    );
    let df = out.lines().last().unwrap_or_default();
    assert_eq!(df.split_whitespace().nth(1), Some("262144"), "{out}");
    // Without it: Docker's 64 MiB.
    let (_, out) = e.run("shm-default", "cat /proc/mounts", ServiceSpec::default());
    assert!(
        mount_options(&out, "/dev/shm").contains("size=65536k"),
        "{out}"
    );
}
