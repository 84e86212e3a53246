//! Serving the manager's router: over TLS on its TCP address (each connection's client
//! certificate becomes the [`Caller`] of its requests) and over a root-only unix
//! socket (the caller is [`Caller::Local`]). A node's connection is cut when the node
//! is removed, so its long-lived streams end and it must connect again — which the TLS
//! verifier refuses.

use super::{Caller, PeerCert};
use crate::ca::peer_identity;
use crate::store::ClusterRecord;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster record as the store publishes it.
type ClusterWatch = watch::Receiver<Option<Arc<ClusterRecord>>>;

/// Serve `app` over TLS on `listener` until the returned future is dropped (its
/// connections are dropped with it). `cluster` says when a node is removed.
pub(crate) async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    cluster: ClusterWatch,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((tcp, _)) = accepted else {
            // Out of file descriptors and the like: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let mut cluster = cluster.clone();
        connections.spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| PeerCert(cert.clone().into_owned()));
            let caller = match peer_identity(stream.get_ref().1) {
                Ok(Some(peer)) => Caller::Node {
                    id: peer.node_id,
                    role: peer.role,
                },
                _ => Caller::Anonymous,
            };
            let Caller::Node { id, .. } = &caller else {
                serve_connection(TokioIo::new(stream), app, caller, None).await;
                return;
            };
            let id = id.clone();
            // Dropping the connection closes it, and every stream on it.
            tokio::select! {
                () = serve_connection(TokioIo::new(stream), app, caller, cert) => {}
                () = removal(&mut cluster, &id) => {}
            }
        });
    }
}

/// Returns once node `id` is removed from the cluster (never, if the store stops).
async fn removal(cluster: &mut ClusterWatch, id: &str) {
    loop {
        let removed = cluster
            .borrow_and_update()
            .as_ref()
            .is_some_and(|record| record.ca.is_removed(id));
        if removed {
            return;
        }
        if cluster.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Serve `app` on a unix socket: every request comes from [`Caller::Local`].
pub(crate) async fn serve_unix(listener: UnixListener, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let app = app.clone();
        connections.spawn(serve_connection(
            TokioIo::new(stream),
            app,
            Caller::Local,
            None,
        ));
    }
}

/// Serve one connection; its requests carry `caller` and the certificate it presented.
async fn serve_connection<IO>(io: TokioIo<IO>, app: Router, caller: Caller, cert: Option<PeerCert>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(caller.clone());
        if let Some(cert) = &cert {
            req.extensions_mut().insert(cert.clone());
        }
        req
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(io, TowerToHyperService::new(service))
        .await;
}
