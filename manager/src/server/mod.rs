//! The manager daemon: what `orch manager init|join` and `orch manager` run.
//!
//! - [`layout`]: the data directory (identity, store) and id helpers.
//! - [`listen`]: serving the router over TLS (the client certificate becomes the
//!   request's [`Caller`]) and over a root-only unix socket.
//! - `caller`: the store's word on a certified caller at each request (removed nodes
//!   refused, demoted managers count as workers).
//! - [`join`]: `POST /v1/join` and `POST /v1/managers`; [`client`]: the joining side.
//! - `renew`: `POST /v1/certificates/renew`; [`renewal`]: the node side, which renews
//!   in the background and switches the node's TLS identity without a restart.
//! - [`failure`]: the daemon's endpoints' answers in the API's error shape.
//! - [`error`]: the daemon's error type, [`ServerError`].
//!
//! One TCP port serves everything: raft RPCs (manager certificates only), joining
//! (a token instead of a certificate) and the REST API.

mod caller;
pub mod client;
pub mod error;
mod failure;
mod join;
pub mod layout;
mod listen;
mod renew;
pub mod renewal;

pub use error::ServerError;
pub use layout::{Layout, NodeFile, raft_id, random_id};

use crate::ca::{self, CaConfig, ClientAuth, LiveIdentity, NodeIdentity, NodeKey, Revocations};
use crate::dispatcher::Dispatcher;
use crate::http::{ApiState, Forwarder, Tokens};
use crate::keyring::Keyring;
use crate::store::network::Transport;
use crate::store::{ClusterRecord, ClusterSettings, Command, Store, StoreConfig};
use api::cluster::{
    Meta, Node, NodeDescription, NodeRole, NodeSpec, NodeState, NodeStatus, Object,
};
use api::join::Member;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::JoinSet;

pub use crate::http::Caller;

/// The certificate a caller presented on its TLS connection (DER), beside its
/// [`Caller`] in the request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct PeerCert(pub rustls::pki_types::CertificateDer<'static>);

/// How to run a manager.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Where its identity and store live.
    pub data_dir: PathBuf,
    /// The TCP address to listen on (`0.0.0.0:4242`, `127.0.0.1:0`, ...).
    pub listen: String,
    /// The address other nodes reach it at; default: the listen address, unless that
    /// is unspecified (0.0.0.0), when it must be given.
    pub advertise: Option<String>,
    /// The root-only unix socket of the local CLI (none: no socket).
    pub socket: Option<PathBuf>,
    /// Raft tuning.
    pub store: StoreConfig,
}

/// What `init` hands to the person who made the cluster.
#[derive(Clone, Debug)]
pub struct InitTokens {
    pub worker: String,
    pub manager: String,
    /// A bearer token of the REST API (only its hash is stored).
    pub api: String,
}

/// What the daemon's handlers share.
pub(crate) struct Shared {
    pub store: Arc<Store>,
    pub node: NodeFile,
    pub ca_cert_pem: String,
    /// The cluster's data key (secrets).
    pub keyring: Arc<Keyring>,
}

impl Shared {
    /// The raft members, leader first.
    fn members(&self) -> Vec<Member> {
        let metrics = self.store.metrics();
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let ids: BTreeMap<u64, String> = self
            .store
            .view(|state| {
                state
                    .nodes
                    .iter()
                    .filter(|n| n.spec.role == NodeRole::Manager)
                    .map(|n| (raft_id(&n.meta.id), n.meta.id.clone()))
                    .collect()
            })
            .value;
        let mut members: Vec<Member> = membership
            .nodes()
            .map(|(id, node)| Member {
                node_id: ids.get(id).cloned().unwrap_or_default(),
                raft_id: *id,
                addr: node.addr.clone(),
                voter: voters.contains(id),
            })
            .collect();
        members.sort_by_key(|m| (Some(m.raft_id) != metrics.current_leader, m.raft_id));
        members
    }
}

/// A running manager. Dropping it stops serving; [`Manager::shutdown`] also closes the
/// store.
pub struct Manager {
    shared: Arc<Shared>,
    live: LiveIdentity,
    addr: SocketAddr,
    advertise: String,
    tasks: JoinSet<()>,
}

/// The HTTP client of a node with a certificate: mutual TLS to managers of its cluster.
pub fn node_http_client(identity: &NodeIdentity) -> Result<reqwest::Client, ServerError> {
    live_http_client(&LiveIdentity::new(identity.clone())?)
}

/// The HTTP client of a node whose certificate is renewed: each new connection presents
/// the certificate `identity` holds then.
pub fn live_http_client(identity: &LiveIdentity) -> Result<reqwest::Client, ServerError> {
    let mut tls = ca::node_client_config(identity)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_idle_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(3))
        .build()
        .map_err(|source| ServerError::Client {
            what: "node traffic",
            source,
        })
}

/// The TLS client configuration of raft RPCs: the node's renewed certificate, as for
/// [`live_http_client`], and HTTP/1.1 only. Raft keeps one RPC in flight per peer, so
/// HTTP/2's multiplexing buys nothing, while its framing, header compression and flow
/// control cost cpu on both ends of every append.
fn raft_tls(identity: &LiveIdentity) -> Result<Arc<rustls::ClientConfig>, ServerError> {
    let mut tls = ca::node_client_config(identity)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

impl Manager {
    /// `orch manager init`: a new cluster with this manager as its only member — the
    /// CA, the join tokens, an API token, this manager's certificate and Node object.
    /// `ca` sets the node certificates' lifetime.
    pub async fn init(
        config: ManagerConfig,
        settings: ClusterSettings,
        ca: CaConfig,
    ) -> Result<(Manager, InitTokens), ServerError> {
        let layout = Layout::new(&config.data_dir);
        layout.check_empty()?;
        let (listener, advertise) = bind(&config).await?;
        let cluster_id = random_id(10, "a cluster id")?;
        let node_id = random_id(10, "a node id")?;
        let now = SystemTime::now();
        let mut ca_state = ca::init(&cluster_id, &ca, now)?;
        let key = NodeKey::generate()?;
        let manager_token = ca_state.token(NodeRole::Manager)?;
        let issued = ca_state.issue(&manager_token, &key.csr()?, &node_id, now)?;
        let node = NodeFile {
            node_id: node_id.clone(),
            raft_id: raft_id(&node_id),
            cluster_id,
        };
        let identity = NodeIdentity::new(key.clone(), &issued)?;
        let api_token = format!("orchapi-{}", random_id(20, "an API token")?);
        let tokens = InitTokens {
            worker: ca_state.token(NodeRole::Worker)?.to_string(),
            manager: manager_token.to_string(),
            api: api_token.clone(),
        };
        let keyring = Keyring::generate().map_err(|source| ServerError::DataKey {
            path: layout.dir().to_owned(),
            source,
        })?;
        layout.save_data_key(&keyring)?;
        layout.save(&node, &key, &issued)?;
        let manager = Manager::serve(
            &config,
            layout,
            node,
            LiveIdentity::new(identity)?,
            listener,
            advertise,
        )
        .await?;
        let store = &manager.shared.store;
        store
            .initialize(BTreeMap::from([(
                manager.shared.node.raft_id,
                manager.advertise.clone(),
            )]))
            .await?;
        store.wait_for_leader(Duration::from_secs(10)).await?;
        let record = ClusterRecord {
            version: 0,
            ca: ca_state,
            settings,
            api_tokens: BTreeMap::from([("admin".to_owned(), token_hash(&api_token))]),
        };
        let me = Node {
            meta: Meta::new(node_id),
            spec: NodeSpec {
                role: NodeRole::Manager,
                ..NodeSpec::default()
            },
            description: NodeDescription {
                hostname: hostname(),
                ..NodeDescription::default()
            },
            status: NodeStatus {
                state: NodeState::Ready,
                addr: Some(manager.advertise.clone()),
                message: None,
            },
        };
        store
            .write(Command::Batch {
                commands: vec![
                    Command::SetCluster {
                        record: Box::new(record),
                        expected_version: None,
                    },
                    Command::create(Object::Node(me)),
                ],
            })
            .await?;
        Ok((manager, tokens))
    }

    /// `orch manager join --token T HOST:PORT`: get a manager certificate from the
    /// cluster at `remote`, then become a raft member.
    pub async fn join(
        config: ManagerConfig,
        remote: &str,
        token: &str,
    ) -> Result<Manager, ServerError> {
        let layout = Layout::new(&config.data_dir);
        layout.check_empty()?;
        let (listener, advertise) = bind(&config).await?;
        let joined = client::join(remote, token, &hostname(), Some(advertise.clone())).await?;
        if joined.response.role != NodeRole::Manager {
            return Err(ServerError::BadAnswer {
                addr: remote.to_owned(),
                op: "join",
                why: "a worker token makes a worker: use `orch agent --join` or the manager token"
                    .to_owned(),
            });
        }
        let data_key =
            joined
                .response
                .data_key
                .as_deref()
                .ok_or_else(|| ServerError::BadAnswer {
                    addr: remote.to_owned(),
                    op: "join",
                    why: "the answer carries no data key (is the manager older?)".to_owned(),
                })?;
        let keyring = Keyring::from_base64(data_key).map_err(|source| ServerError::DataKey {
            path: layout.dir().to_owned(),
            source,
        })?;
        layout.save_data_key(&keyring)?;
        let node = joined.keep(&layout)?;
        let identity = layout.identity(&node)?;
        let http = node_http_client(&identity)?;
        let manager = Manager::serve(
            &config,
            layout,
            node,
            LiveIdentity::new(identity)?,
            listener,
            advertise,
        )
        .await?;
        let managers = joined.response.managers.clone();
        client::add_manager(&http, &managers, &manager.advertise).await?;
        manager
            .shared
            .store
            .wait_for_leader(Duration::from_secs(10))
            .await?;
        Ok(manager)
    }

    /// A worker that was promoted starts its manager: from its data directory (where its
    /// renewal kept the manager certificate and the cluster's data key) with `live`, the
    /// identity its agent uses too, then becomes a voting raft member like a manager
    /// that joined.
    pub async fn promote(
        config: ManagerConfig,
        live: LiveIdentity,
    ) -> Result<Manager, ServerError> {
        let layout = Layout::new(&config.data_dir);
        let node = layout.node()?.ok_or_else(|| ServerError::NotInitialized {
            dir: config.data_dir.clone(),
        })?;
        let identity = live.get();
        if identity.role() != NodeRole::Manager {
            return Err(ServerError::NotPromoted {
                node: node.node_id.clone(),
            });
        }
        let managers = layout.managers()?;
        let (listener, advertise) = bind(&config).await?;
        let http = live_http_client(&live)?;
        let manager = Manager::serve(&config, layout, node, live, listener, advertise).await?;
        client::add_manager(&http, &managers, &manager.advertise).await?;
        manager
            .shared
            .store
            .wait_for_leader(Duration::from_secs(10))
            .await?;
        Ok(manager)
    }

    /// `orch manager`: start the manager kept in the data directory.
    pub async fn start(config: ManagerConfig) -> Result<Manager, ServerError> {
        let layout = Layout::new(&config.data_dir);
        let node = layout.node()?.ok_or_else(|| ServerError::NotInitialized {
            dir: config.data_dir.clone(),
        })?;
        let identity = layout.identity(&node)?;
        let (listener, advertise) = bind(&config).await?;
        Manager::serve(
            &config,
            layout,
            node,
            LiveIdentity::new(identity)?,
            listener,
            advertise,
        )
        .await
    }

    async fn serve(
        config: &ManagerConfig,
        layout: Layout,
        node: NodeFile,
        live: LiveIdentity,
        listener: tokio::net::TcpListener,
        advertise: String,
    ) -> Result<Manager, ServerError> {
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
        let mut store_config = config.store.clone();
        store_config.transport = Some(Transport {
            tls: Some(raft_tls(&live)?),
        });
        let store = Arc::new(
            Store::open(
                &layout.raft_dir(),
                node.raft_id,
                advertise.clone(),
                store_config,
            )
            .await?,
        );
        let revocations = Revocations::default();
        let mut tls = ca::server_config(&live, revocations.clone(), ClientAuth::Optional)?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let ca_cert_pem = layout.ca_cert_pem()?;
        let keyring = Arc::new(layout.data_key()?);
        let shared = Arc::new(Shared {
            store: store.clone(),
            node,
            ca_cert_pem,
            keyring: keyring.clone(),
        });
        let api = Arc::new(ApiState::new(
            store.clone(),
            Tokens::default(),
            Some(Forwarder {
                client: live_http_client(&live)?,
                scheme: "https".to_owned(),
            }),
            keyring.clone(),
        ));
        let dispatcher = Dispatcher::new(store.clone(), keyring, api.logs().clone());
        let registry = crate::registry::Registry::open(
            &layout.registry_dir(),
            api.clone(),
            Some((live_http_client(&live)?, "https".to_owned())),
        )?;
        let app = router(shared.clone())
            .merge(dispatcher.router())
            .merge(crate::registry::router(registry))
            .merge(crate::http::router(api.clone()))
            .layer(middleware::from_fn_with_state(store.clone(), caller::check));
        let mut tasks = JoinSet::new();
        tasks.spawn(dispatcher.run());
        tasks.spawn(
            crate::orchestrator::Reconciler::new(store.clone(), crate::orchestrator::passes())
                .run(),
        );
        tasks.spawn(listen::serve_tls(
            listener,
            Arc::new(tls),
            app.clone(),
            store.cluster(),
        ));
        if let Some(path) = &config.socket {
            let unix = bind_unix(path)?;
            tasks.spawn(listen::serve_unix(unix, app));
        }
        tasks.spawn(follow_cluster(store.clone(), revocations, api));
        let renewal = renewal::Renewal {
            live: live.clone(),
            layout,
            managers: Arc::new(move || store.managers_leader_first()),
            announced: None,
        };
        tasks.spawn(async move {
            let end = renewal
                .run(|event| eprintln!("orch manager: {}", renewal::render(&event)))
                .await;
            if let renewal::RenewalEnd::Expired(expired) = end {
                eprintln!("orch manager: {expired}");
            }
        });
        Ok(Manager {
            shared,
            live,
            addr,
            advertise,
            tasks,
        })
    }

    /// The TCP address the manager listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address other nodes reach it at.
    pub fn advertise(&self) -> &str {
        &self.advertise
    }

    /// This manager's node identity as its TLS server and clients use it (renewed in
    /// the background), e.g. for the worker session of `--agent`.
    pub fn identity(&self) -> &LiveIdentity {
        &self.live
    }

    /// The cluster CA certificate (PEM), for clients to pin.
    pub fn ca_cert_pem(&self) -> String {
        self.shared.ca_cert_pem.clone()
    }

    /// This manager's node id.
    pub fn node_id(&self) -> &str {
        &self.shared.node.node_id
    }

    /// The store (for tests and the components started on it).
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// Stop serving, then stop raft and close the store's files.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
        let _ = self.shared.store.shutdown().await;
    }
}

/// The lowercase hex SHA-256 of an API token (what the cluster record keeps).
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    data_encoding::HEXLOWER.encode(digest.as_ref())
}

async fn bind(config: &ManagerConfig) -> Result<(tokio::net::TcpListener, String), ServerError> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    let advertise = match &config.advertise {
        Some(a) => a.clone(),
        None if local.ip().is_unspecified() => {
            return Err(ServerError::Listen {
                addr: config.listen.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "listening on every address: say which one other nodes use with --advertise",
                ),
            });
        }
        None => local.to_string(),
    };
    Ok((listener, advertise))
}

fn bind_unix(path: &std::path::Path) -> Result<tokio::net::UnixListener, ServerError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |op, source| ServerError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove the old socket", e)),
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| io("bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("restrict", e))?;
    Ok(listener)
}

/// Keeps the TLS verifiers' set of removed nodes and the API's bearer tokens equal to
/// the cluster record's.
async fn follow_cluster(store: Arc<Store>, revocations: Revocations, api: Arc<ApiState>) {
    let mut cluster = store.cluster();
    loop {
        if let Some(record) = cluster.borrow_and_update().as_ref() {
            revocations.replace(record.ca.removed_nodes().clone());
            api.tokens().replace_digests(record.api_tokens.values());
        }
        if cluster.changed().await.is_err() {
            return;
        }
    }
}

/// Everything one manager serves.
fn router(shared: Arc<Shared>) -> Router {
    let raft = shared
        .store
        .router()
        .layer(middleware::from_fn(managers_only));
    Router::new()
        .route("/v1/join", post(join::join))
        .route("/v1/managers", post(join::add_manager))
        .route("/v1/certificates/renew", post(renew::renew))
        .with_state(shared)
        .merge(raft)
}

/// Raft RPCs come only from managers of the cluster.
async fn managers_only(req: Request, next: Next) -> Response {
    match req.extensions().get::<Caller>() {
        Some(Caller::Node {
            role: NodeRole::Manager,
            ..
        }) => next.run(req).await,
        _ => crate::http::error::HttpError::new(
            api::error::ErrorCode::Unauthorized,
            "raft RPCs need a manager certificate of this cluster",
        )
        .into_response(),
    }
}
