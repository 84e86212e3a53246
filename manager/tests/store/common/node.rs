//! A manager under test: a [`Store`] plus its raft RPC server on 127.0.0.1.

use manager::store::{NodeId, Store, StoreConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Raft timings for tests on a busy 2-core machine: slow enough to avoid spurious
/// elections under fsync load, small snapshots so compaction and install happen.
pub fn test_config() -> StoreConfig {
    StoreConfig {
        heartbeat: Duration::from_millis(150),
        election_timeout: (Duration::from_millis(800), Duration::from_millis(1600)),
        snapshot_every: 1000,
        keep_logs: 200,
        snapshot_timeout: Duration::from_secs(10),
        history: 4096,
        write_timeout: Duration::from_secs(5),
        transport: None,
    }
}

/// A running manager; [`TestNode::stop`] shuts raft and the server down.
pub struct TestNode {
    pub store: Arc<Store>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Bind a listener on an ephemeral loopback port.
pub async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr").to_string();
    (listener, addr)
}

impl TestNode {
    /// Open the store in `dir` and serve its raft RPCs on `listener`.
    pub async fn start(dir: &Path, id: NodeId, listener: TcpListener) -> TestNode {
        TestNode::serve(dir, id, listener, test_config(), |_| axum::Router::new()).await
    }

    /// Open the store in `dir` with `config` and serve its raft RPCs plus the routes
    /// `more` builds for it (e.g. the API) on `listener`.
    pub async fn serve(
        dir: &Path,
        id: NodeId,
        listener: TcpListener,
        config: StoreConfig,
        more: impl FnOnce(&Arc<Store>) -> axum::Router,
    ) -> TestNode {
        let addr = listener.local_addr().expect("local addr").to_string();
        let store = Store::open(dir, id, addr, config)
            .await
            .expect("open store");
        let store = Arc::new(store);
        let (stop, stopped) = oneshot::channel::<()>();
        let router = store.router().merge(more(&store));
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                eprintln!("raft server stopped: {e}");
            }
        });
        TestNode {
            store,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Restart on the same address (the cluster's membership names it).
    pub async fn restart(dir: &Path, id: NodeId, addr: &str) -> TestNode {
        let listener = TcpListener::bind(addr)
            .await
            .expect("rebind the node's address");
        TestNode::start(dir, id, listener).await
    }

    /// Stop raft (nothing more is acknowledged), then the server and its connections.
    pub async fn stop(mut self) {
        let _ = self.store.shutdown().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
