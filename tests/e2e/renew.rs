//! Node certificates that live seconds: an agent's session (the real session loop and
//! renewal loop of `orch agent`, against a real manager on 127.0.0.1 over mutual TLS)
//! outlives several certificates, and `orch agent` whose certificate expired while it
//! was stopped refuses to start, saying what to do.

use agent::worker::session::{self, SessionConfig, SessionEvent, Work};
use api::cluster::{NodeDescription, NodeState};
use api::session::{Heartbeat, SessionInfo};
use manager::ca::{CaConfig, LiveIdentity, NodeIdentity};
use manager::server::renewal::{Renewal, RenewalEvent};
use manager::server::{
    InitTokens, Layout, Manager, ManagerConfig, client, live_http_client, node_http_client,
};
use manager::store::{ClusterSettings, StoreConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A directory removed on drop, named per run.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("orch-e2e-renew-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A one-manager cluster on 127.0.0.1 whose node certificates live `validity`.
async fn cluster(dir: &Path, validity: Duration) -> (Manager, InitTokens) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ManagerConfig {
        data_dir: dir.join("m1"),
        listen: "127.0.0.1:0".to_owned(),
        advertise: None,
        socket: None,
        store: StoreConfig::default(),
    };
    let settings = ClusterSettings {
        heartbeat_ms: 200,
        node_down_grace_ms: 2000,
        ..ClusterSettings::default()
    };
    let ca = CaConfig {
        node_cert_validity: validity,
    };
    Manager::init(config, settings, ca).await.expect("init")
}

/// Joins as a worker and keeps the identity in `dir` as `orch agent` does.
async fn join(manager: &Manager, token: &str, dir: &Path) -> (Layout, NodeIdentity) {
    let joined = client::join(manager.advertise(), token, "renew-w1", None)
        .await
        .expect("join");
    let layout = Layout::new(dir);
    let node = joined.keep(&layout).expect("keep the identity");
    layout
        .save_managers(&joined.response.managers)
        .expect("keep the managers");
    let identity = layout.identity(&node).expect("identity");
    (layout, identity)
}

#[test]
fn an_agent_keeps_its_session_across_renewals() {
    let scratch = Scratch::new("session");
    let rt = runtime();
    rt.block_on(async {
        let (manager, tokens) = cluster(&scratch.0, Duration::from_secs(3)).await;
        let (layout, first) = join(&manager, &tokens.worker, &scratch.0.join("w1")).await;
        let live = LiveIdentity::new(first.clone()).expect("live identity");
        let (assignments, _assigned) = tokio::sync::watch::channel(Default::default());
        let (_reporter, reports) = tokio::sync::mpsc::channel(8);
        let (_publisher, logs) = tokio::sync::mpsc::channel(8);
        let config = SessionConfig {
            http: live_http_client(&live).expect("client"),
            managers: layout.managers().expect("managers"),
            description: NodeDescription {
                hostname: "renew-w1".to_owned(),
                ..NodeDescription::default()
            },
            addr: None,
        };
        let sessions: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
        let seen = sessions.clone();
        let (role, _) = tokio::sync::watch::channel(None);
        let (_removed, volumes_removed) = tokio::sync::mpsc::channel(1);
        let work = Work {
            assignments,
            reports,
            volumes_removed,
            logs,
            role,
        };
        let session = tokio::spawn(session::run(config, work, move |event| {
            seen.lock().unwrap().push(event);
        }));
        let renewals: Arc<Mutex<Vec<RenewalEvent>>> = Arc::default();
        let seen = renewals.clone();
        let layout_managers = layout.clone();
        let renewal = Renewal {
            live: live.clone(),
            layout: layout.clone(),
            managers: Arc::new(move || layout_managers.managers().unwrap_or_default()),
            announced: None,
        };
        let renewing = tokio::spawn(renewal.run(move |event| {
            seen.lock().unwrap().push(event);
        }));

        let renewed = |events: &[RenewalEvent]| {
            events
                .iter()
                .filter(|e| matches!(e, RenewalEvent::Renewed { .. }))
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(40);
        while renewed(&renewals.lock().unwrap()) < 3 {
            assert!(
                Instant::now() < deadline,
                "three renewals within 40 s: {:?}",
                renewals.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The first certificate is long expired by now (three renewals of a 3 s one).
        while first
            .check(SystemTime::now() - Duration::from_secs(1))
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let events = sessions.lock().unwrap().clone();
        let opened: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Opened { session_id, .. } => Some(session_id.clone()),
                SessionEvent::Lost { .. } => None,
            })
            .collect();
        assert_eq!(opened.len(), 1, "one session all along: {events:?}");
        let node = first.node_id().to_owned();
        let state = manager
            .store()
            .view(|s| s.nodes.get(&node).map(|n| n.status.state))
            .value;
        assert_eq!(state, Some(NodeState::Ready));

        // What the data directory keeps now is a new certificate of the same node, and it
        // reaches the same session on a connection of its own.
        let kept = layout
            .identity(&layout.node().expect("read").expect("joined"))
            .expect("kept identity");
        assert_eq!(kept.node_id(), first.node_id());
        assert_ne!(kept.cert(), first.cert());
        assert_eq!(kept.cert(), live.get().cert(), "the kept one is in use");
        let beat = Heartbeat {
            session_id: opened[0].clone(),
        };
        let addr = manager.advertise().to_owned();
        let fresh = node_http_client(&kept).expect("client");
        let answer: Result<SessionInfo, _> =
            api::client::managers::post(&fresh, &addr, "/v1/session/heartbeat", "beat", &beat)
                .await;
        answer.expect("the renewed certificate heartbeats the same session");
        // The first certificate opens nothing any more.
        let old = node_http_client(&first).expect("client");
        let refused: Result<SessionInfo, _> =
            api::client::managers::post(&old, &addr, "/v1/session/heartbeat", "beat", &beat).await;
        assert!(refused.is_err(), "an expired certificate is refused");

        session.abort();
        renewing.abort();
        manager.shutdown().await;
    });
}

#[test]
fn an_agent_whose_certificate_expired_while_stopped_says_to_join_again() {
    let scratch = Scratch::new("expired");
    let rt = runtime();
    let data = scratch.0.join("agent");
    let manager = rt.block_on(async {
        let (manager, tokens) = cluster(&scratch.0, Duration::from_secs(1)).await;
        let (_, identity) = join(&manager, &tokens.worker, &data.join("cluster")).await;
        while identity
            .check(SystemTime::now() - Duration::from_secs(1))
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        manager
    });
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(["agent", "--data-dir"])
        .arg(&data)
        .arg("--socket")
        .arg(scratch.0.join("engine.sock"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start orch agent");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("orch agent with an expired certificate kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("expired at"), "{stderr}");
    assert!(
        stderr.contains("join again with `orch agent --join"),
        "{stderr}"
    );
    rt.block_on(manager.shutdown());
}
