//! The typed HTTP client of orch's APIs. Today: the engine's local API, spoken over
//! its unix socket (`unix:///run/orch/engine.sock`).
//!
//! - [`events`]: newline-delimited JSON streams (pull, push and build progress).
//! - [`managers`]: calls to the cluster's managers over mutual TLS, leader-following.

pub mod events;
pub mod managers;

use crate::container::{
    ContainerCreate, ContainerCreated, ContainerDetail, ContainerExit, ContainerSummary,
    ExecCreate, LogLine,
};
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::image::{
    BuildEvent, BuildUlimit, EngineVersion, ImageDetail, ImageSummary, LoadedImage, LoginRequest,
    PruneReport, REGISTRY_CONFIG_HEADER, RegistryAuth, RegistryConfig, RemoveReport, TransferEvent,
};
use crate::network::{
    Ingress, Network, NetworkConnect, NetworkCreate, NetworkDisconnect, OverlayPeers,
    ServiceEndpoints,
};
use crate::volume::{Volume, VolumeCreate, VolumePrune};
pub use events::Events;
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The engine socket used when neither `--engine` nor `ORCH_ENGINE` names one.
pub const DEFAULT_ENGINE: &str = "unix:///run/orch/engine.sock";

pub use crate::image::REGISTRY_AUTH_HEADER;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint string is not one this client can reach.
    #[error("engine endpoint {endpoint:?}: {why}")]
    Endpoint { endpoint: String, why: String },
    /// Nothing answers on the socket.
    #[error(
        "cannot reach the engine at {endpoint}: {source} (is `orch agent` running? pick another with --engine or ORCH_ENGINE)"
    )]
    Connect {
        endpoint: String,
        source: reqwest::Error,
    },
    /// The request or its answer broke off.
    #[error("{op}: {source}")]
    Http { op: String, source: reqwest::Error },
    /// The server answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The answer is not what this client understands.
    #[error("{op}: unexpected answer: {why}")]
    Decode { op: String, why: String },
}

impl ClientError {
    /// The API error code, for errors the server reported.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api(e) => Some(e.code),
            _ => None,
        }
    }
}

/// Image archive formats for `save`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveFormat {
    /// What `docker save` writes and `docker load` reads.
    Docker,
    /// An OCI image layout.
    Oci,
}

/// Options of `import` (like `docker import`).
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Default command of the image.
    pub cmd: Vec<String>,
    /// Environment `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: Option<String>,
}

/// Options of `build`.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Names for the image.
    pub tags: Vec<String>,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    pub file: Option<String>,
    /// `--build-arg` values.
    pub build_args: Vec<(String, String)>,
    /// The stage to build.
    pub target: Option<String>,
    /// Make every layer anew.
    pub no_cache: bool,
    /// Labels of the image, over the Dockerfile's LABELs.
    pub labels: BTreeMap<String, String>,
    /// Size of /dev/shm in RUN steps, in bytes (the engine's default: 64 MiB).
    pub shm_size: Option<u64>,
    /// Rlimits of RUN steps.
    pub ulimits: Vec<BuildUlimit>,
}

/// A client of one engine.
#[derive(Clone)]
pub struct EngineClient {
    http: reqwest::Client,
    endpoint: String,
}

impl EngineClient {
    /// A client for `endpoint`: `unix:///path/to.sock` or a bare socket path.
    pub fn new(endpoint: &str) -> Result<EngineClient, ClientError> {
        let path = match endpoint.split_once("://") {
            Some(("unix", path)) => PathBuf::from(path),
            Some((scheme, _)) => {
                return Err(ClientError::Endpoint {
                    endpoint: endpoint.to_owned(),
                    why: format!("scheme {scheme}:// is not supported; use unix:///path"),
                });
            }
            None => PathBuf::from(endpoint),
        };
        if !path.is_absolute() {
            return Err(ClientError::Endpoint {
                endpoint: endpoint.to_owned(),
                why: "the socket path must be absolute".into(),
            });
        }
        // reqwest builds a TLS config even for a unix socket; orch uses ring only.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .unix_socket(path)
            // Only a unix socket: no root certificates to load (2 ms per command).
            .tls_certs_only([])
            .user_agent(concat!("orch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Endpoint {
                endpoint: endpoint.to_owned(),
                why: e.to_string(),
            })?;
        Ok(EngineClient {
            http,
            endpoint: endpoint.to_owned(),
        })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn request(&self, method: Method, path: &str, query: &[(&str, &str)]) -> RequestBuilder {
        self.http
            .request(method, format!("http://engine{path}"))
            .query(query)
    }

    /// Send `req`; a non-success answer becomes [`ClientError::Api`].
    async fn send(&self, op: &str, req: RequestBuilder) -> Result<Response, ClientError> {
        let resp = req.send().await.map_err(|source| {
            if source.is_connect() {
                ClientError::Connect {
                    endpoint: self.endpoint.clone(),
                    source,
                }
            } else {
                ClientError::Http {
                    op: op.to_owned(),
                    source,
                }
            }
        })?;
        if resp.status().is_success() || resp.status() == reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        Err(ClientError::Api(
            match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
                Ok(env) => env.error,
                Err(_) => ApiError::new(
                    ErrorCode::from_http_status(status.as_u16()),
                    format!(
                        "{op}: the engine answered {status}: {}",
                        String::from_utf8_lossy(&bytes).trim()
                    ),
                ),
            },
        ))
    }

    async fn json<T: DeserializeOwned>(
        &self,
        op: &str,
        req: RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = self.send(op, req).await?;
        let bytes = resp.bytes().await.map_err(|source| ClientError::Http {
            op: op.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            op: op.to_owned(),
            why: e.to_string(),
        })
    }

    fn with_auth(req: RequestBuilder, auth: Option<&RegistryAuth>) -> RequestBuilder {
        match auth {
            Some(a) => req.header(REGISTRY_AUTH_HEADER, crate::image::to_header(a)),
            None => req,
        }
    }

    /// `GET /v1/version`.
    pub async fn version(&self) -> Result<EngineVersion, ClientError> {
        self.json("version", self.request(Method::GET, "/v1/version", &[]))
            .await
    }

    /// `GET /v1/images`: every image.
    pub async fn images(&self) -> Result<Vec<ImageSummary>, ClientError> {
        self.json("list images", self.request(Method::GET, "/v1/images", &[]))
            .await
    }

    /// `GET /v1/images/inspect`: one image by name, digest or id.
    pub async fn image(&self, reference: &str) -> Result<ImageDetail, ClientError> {
        let req = self.request(Method::GET, "/v1/images/inspect", &[("ref", reference)]);
        self.json(&format!("inspect {reference}"), req).await
    }

    /// `POST /v1/images/pull`: progress events until `Done` or `Error`.
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        auth: Option<&RegistryAuth>,
    ) -> Result<Events<TransferEvent>, ClientError> {
        let mut q = vec![("ref", reference)];
        if let Some(p) = platform {
            q.push(("platform", p));
        }
        let req = Self::with_auth(self.request(Method::POST, "/v1/images/pull", &q), auth);
        let op = format!("pull {reference}");
        Ok(Events::new(op.clone(), self.send(&op, req).await?))
    }

    /// `POST /v1/images/push`: progress events until `Done` or `Error`.
    pub async fn push(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<Events<TransferEvent>, ClientError> {
        let req = Self::with_auth(
            self.request(Method::POST, "/v1/images/push", &[("ref", reference)]),
            auth,
        );
        let op = format!("push {reference}");
        Ok(Events::new(op.clone(), self.send(&op, req).await?))
    }

    /// `POST /v1/images/tag`: name `source` also `target`.
    pub async fn tag(&self, source: &str, target: &str) -> Result<(), ClientError> {
        let req = self.request(
            Method::POST,
            "/v1/images/tag",
            &[("source", source), ("target", target)],
        );
        self.send(&format!("tag {source} {target}"), req).await?;
        Ok(())
    }

    /// `DELETE /v1/images`: untag `reference`, deleting the image when no name is left.
    pub async fn remove_image(
        &self,
        reference: &str,
        force: bool,
    ) -> Result<RemoveReport, ClientError> {
        let force = if force { "true" } else { "false" };
        let req = self.request(
            Method::DELETE,
            "/v1/images",
            &[("ref", reference), ("force", force)],
        );
        self.json(&format!("remove {reference}"), req).await
    }

    /// `POST /v1/images/prune`: remove unreferenced content (and, with `all`, every
    /// image no container uses).
    pub async fn prune_images(&self, all: bool) -> Result<PruneReport, ClientError> {
        let all = if all { "true" } else { "false" };
        let req = self.request(Method::POST, "/v1/images/prune", &[("all", all)]);
        self.json("prune images", req).await
    }

    /// `POST /v1/images/import`: a root file system tarball as a one-layer image.
    pub async fn import_image(
        &self,
        body: impl Into<reqwest::Body>,
        reference: &str,
        opts: &ImportOptions,
    ) -> Result<LoadedImage, ClientError> {
        let mut q: Vec<(&str, &str)> = vec![("ref", reference)];
        q.extend(opts.cmd.iter().map(|c| ("cmd", c.as_str())));
        q.extend(opts.env.iter().map(|e| ("env", e.as_str())));
        if let Some(w) = &opts.working_dir {
            q.push(("workdir", w));
        }
        let req = self
            .request(Method::POST, "/v1/images/import", &q)
            .body(body);
        self.json(&format!("import {reference}"), req).await
    }

    /// `POST /v1/images/load`: images from a docker-archive or OCI-layout tarball.
    pub async fn load_images(
        &self,
        body: impl Into<reqwest::Body>,
    ) -> Result<Vec<LoadedImage>, ClientError> {
        let req = self
            .request(Method::POST, "/v1/images/load", &[])
            .body(body);
        self.json("load images", req).await
    }

    /// `GET /v1/images/save`: a tarball of `references`; read it from the response.
    pub async fn save_images(
        &self,
        references: &[String],
        format: ArchiveFormat,
    ) -> Result<Response, ClientError> {
        let format = match format {
            ArchiveFormat::Docker => "docker",
            ArchiveFormat::Oci => "oci",
        };
        let mut q: Vec<(&str, &str)> = references.iter().map(|r| ("ref", r.as_str())).collect();
        q.push(("format", format));
        self.send(
            "save images",
            self.request(Method::GET, "/v1/images/save", &q),
        )
        .await
    }

    /// `POST /v1/build`: build the context tarball `context`; build events until
    /// `Done` or `Error`. `auths` are the credentials for pulling base images.
    pub async fn build(
        &self,
        context: impl Into<reqwest::Body>,
        opts: &BuildOptions,
        auths: &RegistryConfig,
    ) -> Result<Events<BuildEvent>, ClientError> {
        let args: Vec<String> = opts
            .build_args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut q: Vec<(&str, &str)> = opts.tags.iter().map(|t| ("t", t.as_str())).collect();
        q.extend(args.iter().map(|a| ("build-arg", a.as_str())));
        if let Some(f) = &opts.file {
            q.push(("file", f));
        }
        if let Some(t) = &opts.target {
            q.push(("target", t));
        }
        if opts.no_cache {
            q.push(("no-cache", "true"));
        }
        let labels = serde_json::to_string(&opts.labels).unwrap_or_default();
        if !opts.labels.is_empty() {
            q.push(("labels", &labels));
        }
        let shm_size = opts.shm_size.map(|s| s.to_string());
        if let Some(s) = &shm_size {
            q.push(("shmsize", s));
        }
        let ulimits = serde_json::to_string(&opts.ulimits).unwrap_or_default();
        if !opts.ulimits.is_empty() {
            q.push(("ulimits", &ulimits));
        }
        let mut req = self
            .request(Method::POST, "/v1/build", &q)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(context);
        if !auths.is_empty() {
            req = req.header(REGISTRY_CONFIG_HEADER, crate::image::to_header(auths));
        }
        Ok(Events::new("build".into(), self.send("build", req).await?))
    }

    /// `POST /v1/auth`: check credentials against a registry.
    pub async fn login(&self, req: &LoginRequest) -> Result<(), ClientError> {
        let r = self.request(Method::POST, "/v1/auth", &[]).json(req);
        self.send(&format!("log in to {}", req.registry), r).await?;
        Ok(())
    }

    /// `POST /v1/containers`: create a container (not started).
    pub async fn create_container(
        &self,
        req: &ContainerCreate,
    ) -> Result<ContainerCreated, ClientError> {
        let r = self.request(Method::POST, "/v1/containers", &[]).json(req);
        self.json(&format!("create a container of {}", req.image), r)
            .await
    }

    /// `POST /v1/containers/{id}/start`.
    pub async fn start_container(&self, id: &str) -> Result<(), ClientError> {
        let r = self.request(Method::POST, &format!("/v1/containers/{id}/start"), &[]);
        self.send(&format!("start {id}"), r).await?;
        Ok(())
    }

    /// `POST /v1/containers/{id}/stop`: the stop signal, SIGKILL after `timeout`
    /// seconds (default: the container's).
    pub async fn stop_container(
        &self,
        id: &str,
        timeout: Option<u64>,
    ) -> Result<ContainerExit, ClientError> {
        let t = timeout.map(|t| t.to_string());
        let q: Vec<(&str, &str)> = t.iter().map(|t| ("timeout", t.as_str())).collect();
        let r = self.request(Method::POST, &format!("/v1/containers/{id}/stop"), &q);
        self.json(&format!("stop {id}"), r).await
    }

    /// `POST /v1/containers/{id}/kill`.
    pub async fn kill_container(&self, id: &str, signal: &str) -> Result<(), ClientError> {
        let r = self.request(
            Method::POST,
            &format!("/v1/containers/{id}/kill"),
            &[("signal", signal)],
        );
        self.send(&format!("kill {id}"), r).await?;
        Ok(())
    }

    /// `POST /v1/containers/{id}/wait`: blocks until the container exits.
    pub async fn wait_container(&self, id: &str) -> Result<ContainerExit, ClientError> {
        let r = self.request(Method::POST, &format!("/v1/containers/{id}/wait"), &[]);
        self.json(&format!("wait for {id}"), r).await
    }

    /// `DELETE /v1/containers/{id}`.
    pub async fn remove_container(&self, id: &str, force: bool) -> Result<(), ClientError> {
        let force = if force { "true" } else { "false" };
        let r = self.request(
            Method::DELETE,
            &format!("/v1/containers/{id}"),
            &[("force", force)],
        );
        self.send(&format!("remove {id}"), r).await?;
        Ok(())
    }

    /// `GET /v1/containers`.
    pub async fn containers(&self, all: bool) -> Result<Vec<ContainerSummary>, ClientError> {
        let all = if all { "true" } else { "false" };
        let r = self.request(Method::GET, "/v1/containers", &[("all", all)]);
        self.json("list containers", r).await
    }

    /// `GET /v1/containers/{id}`.
    pub async fn container(&self, id: &str) -> Result<ContainerDetail, ClientError> {
        let r = self.request(Method::GET, &format!("/v1/containers/{id}"), &[]);
        self.json(&format!("inspect {id}"), r).await
    }

    /// `GET /v1/containers/{id}/logs`: stored lines (the last `tail`), then new ones
    /// while it runs when `follow`.
    pub async fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<usize>,
    ) -> Result<Events<LogLine>, ClientError> {
        let tail = tail.map_or_else(|| "all".to_owned(), |n| n.to_string());
        let follow = if follow { "true" } else { "false" };
        let r = self.request(
            Method::GET,
            &format!("/v1/containers/{id}/logs"),
            &[("follow", follow), ("tail", &tail)],
        );
        let op = format!("logs of {id}");
        Ok(Events::new(op.clone(), self.send(&op, r).await?))
    }

    /// `POST /v1/containers/{id}/exec`: start a process in a running container; the
    /// connection then carries [`crate::container::frame`]s both ways.
    pub async fn exec(&self, id: &str, req: &ExecCreate) -> Result<reqwest::Upgraded, ClientError> {
        let r = self
            .request(Method::POST, &format!("/v1/containers/{id}/exec"), &[])
            .json(req);
        self.upgrade(format!("exec in {id}"), r).await
    }

    /// `POST /v1/containers/{id}/attach`: the container's output (recent output
    /// first) and its stdin, as [`crate::container::frame`]s.
    pub async fn attach(&self, id: &str) -> Result<reqwest::Upgraded, ClientError> {
        let r = self.request(Method::POST, &format!("/v1/containers/{id}/attach"), &[]);
        self.upgrade(format!("attach to {id}"), r).await
    }

    async fn upgrade(
        &self,
        op: String,
        r: RequestBuilder,
    ) -> Result<reqwest::Upgraded, ClientError> {
        let r = r
            .header(reqwest::header::CONNECTION, "Upgrade")
            .header(reqwest::header::UPGRADE, "orch-stream");
        let resp = self.send(&op, r).await?;
        if resp.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::Decode {
                op,
                why: format!("expected 101 Switching Protocols, got {}", resp.status()),
            });
        }
        resp.upgrade()
            .await
            .map_err(|source| ClientError::Http { op, source })
    }

    /// `POST /v1/containers/{id}/pause` (or `unpause`).
    pub async fn pause_container(&self, id: &str, paused: bool) -> Result<(), ClientError> {
        let verb = if paused { "pause" } else { "unpause" };
        let r = self.request(Method::POST, &format!("/v1/containers/{id}/{verb}"), &[]);
        self.send(&format!("{verb} {id}"), r).await?;
        Ok(())
    }

    /// `GET /v1/containers/{id}/stats`.
    pub async fn container_stats(
        &self,
        id: &str,
    ) -> Result<crate::container::ContainerStats, ClientError> {
        let r = self.request(Method::GET, &format!("/v1/containers/{id}/stats"), &[]);
        self.json(&format!("stats of {id}"), r).await
    }

    /// `GET /v1/volumes`.
    pub async fn volumes(&self) -> Result<Vec<Volume>, ClientError> {
        self.json(
            "list volumes",
            self.request(Method::GET, "/v1/volumes", &[]),
        )
        .await
    }

    /// `POST /v1/volumes`.
    pub async fn create_volume(&self, req: &VolumeCreate) -> Result<Volume, ClientError> {
        let r = self.request(Method::POST, "/v1/volumes", &[]).json(req);
        self.json(&format!("create volume {}", req.name), r).await
    }

    /// `GET /v1/volumes/{name}`.
    pub async fn volume(&self, name: &str) -> Result<Volume, ClientError> {
        let r = self.request(Method::GET, &format!("/v1/volumes/{name}"), &[]);
        self.json(&format!("inspect volume {name}"), r).await
    }

    /// `DELETE /v1/volumes/{name}`.
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<(), ClientError> {
        let force = if force { "true" } else { "false" };
        let r = self.request(
            Method::DELETE,
            &format!("/v1/volumes/{name}"),
            &[("force", force)],
        );
        self.send(&format!("remove volume {name}"), r).await?;
        Ok(())
    }

    /// `GET /v1/networks`.
    pub async fn networks(&self) -> Result<Vec<Network>, ClientError> {
        self.json(
            "list networks",
            self.request(Method::GET, "/v1/networks", &[]),
        )
        .await
    }

    /// `POST /v1/networks`.
    pub async fn create_network(&self, req: &NetworkCreate) -> Result<Network, ClientError> {
        let r = self.request(Method::POST, "/v1/networks", &[]).json(req);
        self.json(&format!("create network {}", req.name), r).await
    }

    /// `GET /v1/networks/{id}`.
    pub async fn network(&self, id: &str) -> Result<Network, ClientError> {
        let r = self.request(Method::GET, &format!("/v1/networks/{id}"), &[]);
        self.json(&format!("inspect network {id}"), r).await
    }

    /// `DELETE /v1/networks/{id}`.
    pub async fn remove_network(&self, id: &str) -> Result<(), ClientError> {
        let r = self.request(Method::DELETE, &format!("/v1/networks/{id}"), &[]);
        self.send(&format!("remove network {id}"), r).await?;
        Ok(())
    }

    /// `POST /v1/networks/{id}/connect`.
    pub async fn connect_network(&self, id: &str, req: &NetworkConnect) -> Result<(), ClientError> {
        let r = self
            .request(Method::POST, &format!("/v1/networks/{id}/connect"), &[])
            .json(req);
        self.send(&format!("connect {} to network {id}", req.container), r)
            .await?;
        Ok(())
    }

    /// `POST /v1/networks/{id}/disconnect`.
    pub async fn disconnect_network(
        &self,
        id: &str,
        req: &NetworkDisconnect,
    ) -> Result<(), ClientError> {
        let r = self
            .request(Method::POST, &format!("/v1/networks/{id}/disconnect"), &[])
            .json(req);
        self.send(
            &format!("disconnect {} from network {id}", req.container),
            r,
        )
        .await?;
        Ok(())
    }

    /// `PUT /v1/networks/{id}/peers`.
    pub async fn set_network_peers(
        &self,
        id: &str,
        req: &OverlayPeers,
    ) -> Result<Network, ClientError> {
        let r = self
            .request(Method::PUT, &format!("/v1/networks/{id}/peers"), &[])
            .json(req);
        self.json(&format!("set the peers of network {id}"), r)
            .await
    }

    /// `PUT /v1/networks/{id}/services`: the network's services (names, virtual
    /// addresses and backends), replaced as a whole.
    pub async fn set_network_services(
        &self,
        id: &str,
        req: &ServiceEndpoints,
    ) -> Result<Network, ClientError> {
        let r = self
            .request(Method::PUT, &format!("/v1/networks/{id}/services"), &[])
            .json(req);
        self.json(&format!("set the services of network {id}"), r)
            .await
    }

    /// `PUT /v1/networks/{id}/ingress`: the host's place on the routing mesh and the
    /// ports it publishes, replaced as a whole.
    pub async fn set_network_ingress(
        &self,
        id: &str,
        req: &Ingress,
    ) -> Result<Network, ClientError> {
        let r = self
            .request(Method::PUT, &format!("/v1/networks/{id}/ingress"), &[])
            .json(req);
        self.json(&format!("set the ingress of network {id}"), r)
            .await
    }

    /// `POST /v1/volumes/prune`.
    pub async fn prune_volumes(&self) -> Result<VolumePrune, ClientError> {
        self.json(
            "prune volumes",
            self.request(Method::POST, "/v1/volumes/prune", &[]),
        )
        .await
    }

    /// A raw request for endpoints this client has no method for yet.
    pub async fn call(
        &self,
        op: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<reqwest::Body>,
    ) -> Result<Response, ClientError> {
        let mut req = self.request(method, path, query);
        if let Some(b) = body {
            req = req.body(b);
        }
        self.send(op, req).await
    }
}
