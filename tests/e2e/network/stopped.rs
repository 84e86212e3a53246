//! DNS answers only for containers that run: a created one resolves once started,
//! a stopped one stops resolving (its endpoint stays, its name goes).

use super::{exec, leftovers};
use crate::engine::{Agent, ok};
use api::client::EngineClient;
use api::container::ContainerCreate;
use api::network::NetworkAttach;
use std::time::{Duration, Instant};

/// Whether `name` resolves in container `client`, once it says the same for 10 s
/// of asking (the engine learns of an exit within a tick of its supervisor).
fn resolves_eventually(a: &Agent, client: &str, name: &str, want: bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (fine, _) = exec(a, client, &format!("nslookup {name}"));
        if fine == want || Instant::now() > deadline {
            return fine;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dns_answers_running_containers_only() {
    let mut a = Agent::start("net-stopped");
    if !a.busybox() {
        return;
    }
    ok(&a.orch(&["network", "create", "shop"], None));
    ok(&a.orch(
        &[
            "container",
            "run",
            "-d",
            "--name",
            "client",
            "--network",
            "shop",
            "busybox",
            "sleep",
            "600",
        ],
        None,
    ));
    let client =
        EngineClient::new(&format!("unix://{}", a.dir.join("engine.sock").display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let created = rt
        .block_on(client.create_container(&ContainerCreate {
            image: "busybox".into(),
            name: Some("web".into()),
            cmd: vec!["sleep".into(), "600".into()],
            networks: vec![NetworkAttach {
                network: "shop".into(),
                aliases: vec!["api".into()],
                ..NetworkAttach::default()
            }],
            ..ContainerCreate::default()
        }))
        .expect("create web");

    // Created, not started: no name yet.
    let (fine, out) = exec(&a, "client", "nslookup web; nslookup api");
    assert!(!fine, "a created container resolves: {out}");
    // Started: its name and alias at once.
    rt.block_on(client.start_container(&created.id))
        .expect("start web");
    let (fine, out) = exec(&a, "client", "nslookup web && nslookup api");
    assert!(fine, "a started container does not resolve: {out}");
    // Stopped: gone, though its endpoint stays.
    ok(&a.orch(&["container", "stop", "-t", "1", "web"], None));
    assert!(
        !resolves_eventually(&a, "client", "web", false),
        "a stopped container still resolves"
    );
    let (fine, out) = exec(&a, "client", "nslookup api");
    assert!(!fine, "a stopped container's alias still resolves: {out}");
    let net = ok(&a.orch(&["network", "inspect", "shop"], None));
    assert!(
        net.contains("\"web\""),
        "the endpoint went with the stop: {net}"
    );

    ok(&a.orch(&["container", "rm", "-f", "web", "client"], None));
    ok(&a.orch(&["network", "rm", "shop"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}
