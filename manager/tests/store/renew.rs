//! Certificate renewal through a real manager on 127.0.0.1 over real mutual TLS: a
//! worker renews with a new key and keeps its id, role and the data directory in step;
//! a demoted manager renews as a worker; a removed node and an expired certificate are
//! refused, the latter with what to do.

use crate::common::TempDir;
use crate::daemon::start_with;
use manager::ca::{CaConfig, CaError, LiveIdentity, NodeIdentity};
use manager::server::renewal::Renewal;
use manager::server::{Layout, Manager, ServerError, client, live_http_client};
use reqwest::Method;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The serial number of a node's certificate.
fn serial(identity: &NodeIdentity) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(identity.cert()).expect("certificate");
    cert.raw_serial().to_vec()
}

/// A worker that joined `addr` and keeps its identity in `dir`, with its renewal.
async fn worker(addr: &str, token: &str, dir: &std::path::Path) -> Renewal {
    let joined = client::join(addr, token, "w1", None).await.expect("join");
    let layout = Layout::new(dir);
    let node = joined.keep(&layout).expect("keep the identity");
    let live = LiveIdentity::new(layout.identity(&node).expect("identity")).expect("live");
    let managers = vec![addr.to_owned()];
    Renewal {
        live,
        layout,
        managers: Arc::new(move || managers.clone()),
        announced: None,
    }
}

/// The identity kept on disk.
fn kept(renewal: &Renewal) -> NodeIdentity {
    let node = renewal.layout.node().expect("read").expect("joined");
    renewal.layout.identity(&node).expect("identity")
}

#[tokio::test]
async fn a_worker_renews_with_a_new_key_and_a_removed_one_is_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("renew");
    let (manager, tokens) = start_with(&dir, CaConfig::default()).await;
    let addr = manager.advertise().to_owned();
    let renewal = worker(&addr, &tokens.worker, &dir.path().join("w1")).await;
    let first = renewal.live.get();

    let renewed = renewal.renew_once().await.expect("renew");
    assert_eq!(renewed.node_id(), first.node_id());
    assert_eq!(renewed.role(), first.role());
    assert_ne!(serial(&renewed), serial(&first), "a new certificate");
    assert_ne!(renewed.key().pem(), first.key().pem(), "for a new key");
    assert_eq!(serial(&renewal.live.get()), serial(&renewed), "in use");
    assert_eq!(serial(&kept(&renewal)), serial(&renewed), "and kept");
    assert_eq!(kept(&renewal).key().pem(), renewed.key().pem());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("w1/node"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("next") || name.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The renewed certificate works at once, on a new connection.
    renewal.renew_once().await.expect("renew again");

    // Removed: refused at the next connection.
    let admin = crate::nodes::Admin::new(&manager, &tokens.api);
    let path = format!("/v1/nodes/{}?force=true", first.node_id());
    let (status, body) = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{body}");
    let refused = renewal
        .renew_once()
        .await
        .expect_err("a removed node renews nothing");
    let text = format!("{refused}: {refused:?}");
    assert!(
        text.contains("removed") || text.contains("Revoked"),
        "{text}"
    );
    manager.shutdown().await;
}

#[tokio::test]
async fn a_demoted_manager_renews_as_a_worker() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("renew-demote");
    let (m1, tokens) = start_with(&dir, CaConfig::default()).await;
    let config = crate::daemon::loopback(&dir, "m2");
    let m2 = Manager::join(config, m1.advertise(), &tokens.manager)
        .await
        .expect("a second manager joins");
    let admin = crate::nodes::Admin::new(&m1, &tokens.api);
    let (status, body) = admin
        .put_node(m2.node_id(), serde_json::json!({"role": "worker"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let live = m2.identity().clone();
    assert_eq!(live.get().role(), api::cluster::NodeRole::Manager);
    let m1_addr = vec![m1.advertise().to_owned()];
    let renewal = Renewal {
        live: live.clone(),
        layout: Layout::new(&dir.path().join("m2")),
        managers: Arc::new(move || m1_addr.clone()),
        announced: None,
    };
    let renewed = renewal.renew_once().await.expect("renew");
    assert_eq!(renewed.role(), api::cluster::NodeRole::Worker);
    assert_eq!(live.get().role(), api::cluster::NodeRole::Worker, "in use");
    assert_eq!(
        kept(&renewal).role(),
        api::cluster::NodeRole::Worker,
        "kept"
    );
    m2.shutdown().await;
    m1.shutdown().await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused_with_what_to_do() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("renew-expired");
    let short = CaConfig {
        node_cert_validity: Duration::from_secs(2),
    };
    let (manager, tokens) = start_with(&dir, short).await;
    let addr = manager.advertise().to_owned();
    let renewal = worker(&addr, &tokens.worker, &dir.path().join("w1")).await;
    let identity = renewal.live.get();
    // Certificates and handshakes count whole seconds: wait one more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while identity
        .check(SystemTime::now() - Duration::from_secs(1))
        .is_ok()
    {
        assert!(Instant::now() < deadline, "the certificate never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The node knows before it connects.
    match renewal.renew_once().await {
        Err(ServerError::Ca(CaError::Expired { node, .. })) => {
            assert_eq!(node, identity.node_id());
        }
        other => panic!(
            "expected an expiry: {:?}",
            other.map(|i| i.node_id().to_owned())
        ),
    }
    let text = CaError::Expired {
        node: "n".into(),
        not_after: SystemTime::now(),
    }
    .to_string();
    assert!(text.contains("joins again with a token"), "{text}");

    // And the manager refuses the expired certificate at the handshake.
    let refused = live_http_client(&renewal.live)
        .expect("client")
        .post(format!("https://{addr}/v1/certificates/renew"))
        .json(&api::join::RenewRequest {
            csr_pem: identity.key().csr().expect("csr"),
        })
        .send()
        .await;
    let refused = match refused {
        Err(e) => e,
        Ok(answer) => panic!(
            "an expired certificate is refused: {:?}",
            answer.text().await
        ),
    };
    let chain = format!("{refused:?}");
    assert!(chain.contains("CertificateExpired"), "{chain}");
    manager.shutdown().await;
}
