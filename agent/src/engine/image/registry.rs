//! A client of the OCI distribution API (Docker Registry HTTP API v2): manifests and
//! blobs, pull and push, with the `WWW-Authenticate` flows (bearer token, basic).
//!
//! `http://` is used only for loopback registries and hosts marked insecure; every
//! blob is verified against its digest before it enters the store.

use super::digest::Digest;
use super::manifest::{ACCEPT, Descriptor, Manifest, ManifestError, Platform};
use super::reference::Reference;
use super::store::{ContentStore, StoreError};
use reqwest::header::{
    ACCEPT as ACCEPT_HEADER, CONTENT_TYPE, HeaderMap, LOCATION, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

/// What went wrong talking to a registry; names the registry and the object.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("set up the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("{op} {url}: {source}")]
    Http {
        op: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{op} {url}: the registry answered {status}: {body}")]
    Status {
        op: &'static str,
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("{reference}: not found in the registry (manifest unknown)")]
    ManifestUnknown { reference: String },
    #[error("{url}: authentication failed: {why}")]
    Auth { url: String, why: String },
    #[error("manifest {reference}: {source}")]
    Manifest {
        reference: String,
        source: ManifestError,
    },
    #[error("manifest {reference}: its content hashes to {actual}, not {expected}")]
    ManifestDigest {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{reference}: {CLUSTER_REGISTRY} is the cluster's own registry, and this engine is not a node of a cluster"
    )]
    NotInCluster { reference: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Username and password for one registry.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The registry on the cluster's managers: references under [`CLUSTER_REGISTRY`] (or
/// a manager's own address) go to a manager over the node's mutual TLS.
#[derive(Clone, Debug)]
pub struct ClusterRegistry {
    /// The managers' addresses (host:port), the one to try first first; the node's
    /// session keeps it current.
    pub managers: std::sync::Arc<std::sync::RwLock<Vec<String>>>,
    /// A client with the node's certificate that trusts the cluster CA alone.
    pub client: reqwest::Client,
}

/// The registry host that names the cluster's own registry in image references
/// (`orch.internal/shop/web:1`): any manager serves it.
pub const CLUSTER_REGISTRY: &str = "orch.internal";

impl ClusterRegistry {
    /// The manager address to use for registry host `host`, if it is the cluster's.
    fn address_for(&self, host: &str) -> Option<String> {
        let managers = self.managers.read().unwrap_or_else(|p| p.into_inner());
        if host == CLUSTER_REGISTRY {
            return managers.first().cloned();
        }
        managers.iter().find(|m| *m == host).cloned()
    }
}

/// Client settings.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Registries (host[:port]) reached over plain http besides loopback ones.
    pub insecure: Vec<String>,
    /// Credentials by registry host.
    pub credentials: HashMap<String, Credentials>,
    /// Upload chunk size (default [`UPLOAD_CHUNK`]).
    pub upload_chunk: Option<u64>,
    /// The cluster's registry, on a node of a cluster.
    pub cluster: Option<ClusterRegistry>,
}

/// What a pull fetched.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// Digest of the manifest the reference resolved to (the index's, for a list).
    pub digest: Digest,
    /// Digest of the platform's image manifest.
    pub manifest_digest: Digest,
    pub manifest: super::manifest::ImageManifest,
}

/// Blobs larger than this are uploaded in PATCH chunks of this size.
pub const UPLOAD_CHUNK: u64 = 16 << 20;

/// How often a broken blob download is resumed before giving up.
const RESUMES: usize = 5;

/// The absolute URL of an upload session from a response's `Location` header, which
/// may be relative to `base`.
fn location(base: &str, resp: &Response) -> Result<reqwest::Url, RegistryError> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Status {
            op: "upload",
            url: base.to_owned(),
            status: resp.status(),
            body: "no Location header".into(),
        })?;
    reqwest::Url::parse(loc)
        .or_else(|_| reqwest::Url::parse(base).and_then(|b| b.join(loc)))
        .map_err(|e| RegistryError::Status {
            op: "upload",
            url: base.to_owned(),
            status: resp.status(),
            body: format!("bad Location {loc:?}: {e}"),
        })
}

/// One step of a blob transfer, reported while pulling or pushing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer<'a> {
    /// The transfer of `digest` (`total` bytes) begins.
    Start { digest: &'a Digest, total: u64 },
    /// `current` bytes of `digest` have moved so far.
    Bytes { digest: &'a Digest, current: u64 },
    /// Nothing to move: the destination has `digest` already.
    Exists { digest: &'a Digest },
    /// The blob was mounted from another repository of the same registry.
    Mounted { digest: &'a Digest },
    /// `digest` arrived and was verified.
    Done { digest: &'a Digest },
}

/// Where transfer steps go (a progress display, an event stream, or nowhere: `()`).
pub trait Progress: Sync {
    /// Report one step.
    fn transfer(&self, step: Transfer<'_>);
}

impl Progress for () {
    fn transfer(&self, _: Transfer<'_>) {}
}

impl<F: Fn(Transfer<'_>) + Sync> Progress for F {
    fn transfer(&self, step: Transfer<'_>) {
        self(step)
    }
}

/// A registry client; reuse it for connection pooling and cached tokens.
pub struct RegistryClient {
    http: reqwest::Client,
    opts: ClientOptions,
    tokens: Mutex<HashMap<(String, String), String>>,
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The parameters of a `WWW-Authenticate` challenge.
fn challenge(headers: &HeaderMap) -> Option<(String, HashMap<String, String>)> {
    let v = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while let Some((k, after)) = s.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_owned();
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_owned(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(k, val);
        s = next.trim_start_matches(',').trim();
    }
    Some((scheme.to_ascii_lowercase(), params))
}

impl RegistryClient {
    /// A client with `opts`.
    pub fn new(opts: ClientOptions) -> Result<RegistryClient, RegistryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("orch/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(RegistryError::Client)?;
        Ok(RegistryClient {
            http,
            opts,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn base(&self, r: &Reference) -> String {
        let host = r.api_host();
        if let Some(addr) = self.cluster_address(host) {
            return format!("https://{addr}/v2/{}", r.repository);
        }
        let plain = is_loopback(host) || self.opts.insecure.iter().any(|h| h == host);
        format!(
            "{}://{host}/v2/{}",
            if plain { "http" } else { "https" },
            r.repository
        )
    }

    /// The manager that serves registry host `host`, when it is the cluster's.
    fn cluster_address(&self, host: &str) -> Option<String> {
        self.opts.cluster.as_ref()?.address_for(host)
    }

    /// The HTTP client for registry host `host`: the node's cluster client for the
    /// cluster's registry.
    fn client_for(&self, host: &str) -> &reqwest::Client {
        match &self.opts.cluster {
            Some(c) if c.address_for(host).is_some() => &c.client,
            _ => &self.http,
        }
    }

    /// Send a request built by `make`, answering an auth challenge once.
    async fn send(
        &self,
        r: &Reference,
        op: &'static str,
        url: &str,
        push: bool,
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Sync),
    ) -> Result<Response, RegistryError> {
        if r.api_host() == CLUSTER_REGISTRY && self.cluster_address(CLUSTER_REGISTRY).is_none() {
            return Err(RegistryError::NotInCluster {
                reference: format!("{}/{}", r.registry, r.repository),
            });
        }
        let scope = format!(
            "repository:{}:{}",
            r.repository,
            if push { "pull,push" } else { "pull" }
        );
        let key = (r.api_host().to_owned(), scope.clone());
        let cached = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let http = |e| RegistryError::Http {
            op,
            url: url.to_owned(),
            source: e,
        };
        let client = self.client_for(r.api_host());
        let mut req = make(client);
        if let Some(t) = &cached {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(http)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some((scheme, params)) = challenge(resp.headers()) else {
            return Err(RegistryError::Auth {
                url: url.to_owned(),
                why: "401 without a WWW-Authenticate challenge".into(),
            });
        };
        let creds = self
            .opts
            .credentials
            .get(&r.registry)
            .or_else(|| self.opts.credentials.get(r.api_host()));
        let retry = match scheme.as_str() {
            "basic" => {
                let Some(c) = creds else {
                    return Err(RegistryError::Auth {
                        url: url.to_owned(),
                        why: "the registry wants a username and password (orch login)".into(),
                    });
                };
                make(client).basic_auth(&c.username, Some(&c.password))
            }
            "bearer" => {
                let token = self.token(&params, &scope, creds, url).await?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, token.clone());
                make(client).bearer_auth(token)
            }
            other => {
                return Err(RegistryError::Auth {
                    url: url.to_owned(),
                    why: format!("unsupported auth scheme {other:?}"),
                });
            }
        };
        let resp = retry.send().await.map_err(http)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            // An anonymous token that grants too little: no credentials were refused.
            let why = if creds.is_some() {
                "credentials refused"
            } else {
                "the registry wants a username and password (orch login)"
            };
            return Err(RegistryError::Auth {
                url: url.to_owned(),
                why: why.into(),
            });
        }
        Ok(resp)
    }

    /// Fetch a bearer token from the challenge's realm.
    async fn token(
        &self,
        params: &HashMap<String, String>,
        scope: &str,
        creds: Option<&Credentials>,
        url: &str,
    ) -> Result<String, RegistryError> {
        let Some(realm) = params.get("realm") else {
            return Err(RegistryError::Auth {
                url: url.to_owned(),
                why: "bearer challenge without a realm".into(),
            });
        };
        let mut token_url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Auth {
            url: url.to_owned(),
            why: format!("bad token realm {realm:?}: {e}"),
        })?;
        {
            let mut q = token_url.query_pairs_mut();
            let scope = params.get("scope").map_or(scope, String::as_str);
            if !scope.is_empty() {
                q.append_pair("scope", scope);
            }
            if let Some(service) = params.get("service") {
                q.append_pair("service", service);
            }
        }
        let mut req = self.http.get(token_url);
        if let Some(c) = creds {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req.send().await.map_err(|e| RegistryError::Http {
            op: "get token",
            url: realm.clone(),
            source: e,
        })?;
        if !resp.status().is_success() {
            // Wrong credentials, said the way the basic flow says it.
            let refused = creds.is_some()
                && matches!(
                    resp.status(),
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                );
            return Err(RegistryError::Auth {
                url: realm.clone(),
                why: format!(
                    "{}token endpoint answered {}",
                    if refused {
                        "credentials refused: the "
                    } else {
                        ""
                    },
                    resp.status()
                ),
            });
        }
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Http {
            op: "read token",
            url: realm.clone(),
            source: e,
        })?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Auth {
                url: realm.clone(),
                why: format!("token response is not JSON: {e}"),
            })?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::Auth {
                url: realm.clone(),
                why: "token response without a token".into(),
            })
    }

    async fn check(
        op: &'static str,
        url: &str,
        resp: Response,
        ok: &[StatusCode],
    ) -> Result<Response, RegistryError> {
        if ok.contains(&resp.status()) {
            return Ok(resp);
        }
        let status = resp.status();
        let body: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        Err(RegistryError::Status {
            op,
            url: url.to_owned(),
            status,
            body,
        })
    }

    /// Check `creds` against `registry` (host[:port], `docker.io` for Docker Hub)
    /// the way `docker login` does: `GET /v2/`, then answer its challenge (basic, or
    /// a bearer token fetched with the credentials).
    pub async fn login(&self, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let host = if registry == super::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let plain = is_loopback(host) || self.opts.insecure.iter().any(|h| h == host);
        let url = format!("{}://{host}/v2/", if plain { "http" } else { "https" });
        let http = |e| RegistryError::Http {
            op: "ping",
            url: url.clone(),
            source: e,
        };
        let resp = self.http.get(&url).send().await.map_err(http)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            Self::check("ping", &url, resp, &[StatusCode::OK]).await?;
            return Ok(());
        }
        let Some((scheme, params)) = challenge(resp.headers()) else {
            return Err(RegistryError::Auth {
                url,
                why: "401 without a WWW-Authenticate challenge".into(),
            });
        };
        let resp = match scheme.as_str() {
            "basic" => self
                .http
                .get(&url)
                .basic_auth(&creds.username, Some(&creds.password))
                .send()
                .await
                .map_err(http)?,
            "bearer" => {
                let token = self.token(&params, "", Some(creds), &url).await?;
                self.http
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .map_err(http)?
            }
            other => {
                return Err(RegistryError::Auth {
                    url,
                    why: format!("unsupported auth scheme {other:?}"),
                });
            }
        };
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Auth {
                url,
                why: "credentials refused".into(),
            });
        }
        Self::check("ping", &url, resp, &[StatusCode::OK]).await?;
        Ok(())
    }

    /// Fetch the manifest `reference` (a tag or a digest) as bytes and content type.
    pub async fn manifest(
        &self,
        r: &Reference,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>), RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base(r));
        let accept = ACCEPT.join(", ");
        let resp = self
            .send(r, "get manifest", &url, false, &|c| {
                c.get(&url).header(ACCEPT_HEADER, &accept)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            let sep = if reference.starts_with("sha256:") {
                '@'
            } else {
                ':'
            };
            return Err(RegistryError::ManifestUnknown {
                reference: format!("{}/{}{sep}{reference}", r.registry, r.repository),
            });
        }
        let resp = Self::check("get manifest", &url, resp, &[StatusCode::OK]).await?;
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Http {
            op: "read manifest",
            url: url.clone(),
            source: e,
        })?;
        Ok((bytes.to_vec(), ct))
    }

    /// Download blob `desc` into `store` (verified); nothing when it is already there.
    pub async fn fetch_blob(
        &self,
        r: &Reference,
        desc: &Descriptor,
        store: &ContentStore,
        progress: &dyn Progress,
    ) -> Result<u64, RegistryError> {
        let digest = &desc.digest;
        let lock = store.download_lock(digest);
        let _downloading = lock.lock().await;
        let Some(mut ingest) = store.begin(digest, Some(desc.size))? else {
            progress.transfer(Transfer::Exists { digest });
            return Ok(0);
        };
        progress.transfer(Transfer::Start {
            digest,
            total: desc.size,
        });
        let url = format!("{}/blobs/{}", self.base(r), desc.digest);
        let mut current = 0u64;
        let mut resumes = 0;
        'attempt: loop {
            let from = current;
            let resp = self
                .send(r, "get blob", &url, false, &|c| {
                    let req = c.get(&url);
                    if from > 0 {
                        req.header(RANGE, format!("bytes={from}-"))
                    } else {
                        req
                    }
                })
                .await?;
            let ok = [StatusCode::OK, StatusCode::PARTIAL_CONTENT];
            let mut resp = Self::check("get blob", &url, resp, &ok).await?;
            // A server that ignores the range sends everything again: skip what we have.
            let mut skip = if resp.status() == StatusCode::OK {
                from
            } else {
                0
            };
            loop {
                let chunk = match resp.chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break 'attempt,
                    Err(_) if resumes < RESUMES && current < desc.size => {
                        resumes += 1;
                        continue 'attempt;
                    }
                    Err(source) => {
                        return Err(RegistryError::Http {
                            op: "read blob",
                            url: url.clone(),
                            source,
                        });
                    }
                };
                let mut data = &chunk[..];
                if skip > 0 {
                    let n = skip.min(data.len() as u64);
                    data = &data[n as usize..];
                    skip -= n;
                }
                if data.is_empty() {
                    continue;
                }
                ingest.write(data)?;
                current += data.len() as u64;
                progress.transfer(Transfer::Bytes { digest, current });
            }
        }
        let n = ingest.commit()?;
        progress.transfer(Transfer::Done { digest });
        Ok(n)
    }

    /// Pull `r` for `platform`: the manifest (through an index if there is one), the
    /// config and every layer, into `store`.
    pub async fn pull(
        &self,
        r: &Reference,
        store: &ContentStore,
        platform: &Platform,
        progress: &dyn Progress,
    ) -> Result<Pulled, RegistryError> {
        let wanted = r
            .digest
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| r.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let (bytes, ct) = self.manifest(r, &wanted).await?;
        let digest = self.keep_manifest(r, &bytes, r.digest.as_ref(), store)?;
        let parse = |b: &[u8], ct: Option<&str>| {
            Manifest::parse(b, ct).map_err(|source| RegistryError::Manifest {
                reference: r.to_string(),
                source,
            })
        };
        let (manifest_digest, manifest) = match parse(&bytes, ct.as_deref())? {
            Manifest::Image(m) => (digest.clone(), m),
            Manifest::Index(idx) => {
                let desc = idx
                    .select(platform)
                    .map_err(|source| RegistryError::Manifest {
                        reference: r.to_string(),
                        source,
                    })?;
                let (b, ct) = self.manifest(r, &desc.digest.to_string()).await?;
                let d = self.keep_manifest(r, &b, Some(&desc.digest), store)?;
                match parse(&b, ct.as_deref())? {
                    Manifest::Image(m) => (d, m),
                    Manifest::Index(_) => {
                        return Err(RegistryError::Manifest {
                            reference: r.to_string(),
                            source: ManifestError::Unsupported {
                                media_type: "an index inside an index".into(),
                            },
                        });
                    }
                }
            }
        };
        self.fetch_blob(r, &manifest.config, store, &()).await?;
        for layer in &manifest.layers {
            self.fetch_blob(r, layer, store, progress).await?;
        }
        Ok(Pulled {
            digest,
            manifest_digest,
            manifest,
        })
    }

    /// Verify manifest bytes against the digest asked for, and store them.
    fn keep_manifest(
        &self,
        r: &Reference,
        bytes: &[u8],
        expected: Option<&Digest>,
        store: &ContentStore,
    ) -> Result<Digest, RegistryError> {
        let actual = Digest::of(bytes);
        if let Some(e) = expected.filter(|e| **e != actual) {
            return Err(RegistryError::ManifestDigest {
                reference: r.to_string(),
                expected: e.clone(),
                actual,
            });
        }
        store.ingest(&actual, Some(bytes.len() as u64), &mut &bytes[..])?;
        Ok(actual)
    }

    /// Start an upload session, or mount `digest` from the first of `mount_from`
    /// (other repositories of the same registry). `None` when the mount succeeded.
    async fn start_upload(
        &self,
        r: &Reference,
        digest: &Digest,
        mount_from: &[String],
    ) -> Result<Option<reqwest::Url>, RegistryError> {
        let start = format!("{}/blobs/uploads/", self.base(r));
        // A refused mount opens an ordinary upload session (distribution spec), so
        // one candidate is asked; it is the repository most likely to have the blob.
        let from = mount_from.iter().find(|from| **from != r.repository);
        let url = match from {
            Some(from) => format!("{start}?mount={digest}&from={from}"),
            None => start.clone(),
        };
        let resp = self
            .send(r, "start upload", &url, true, &|c| c.post(&url))
            .await?;
        if resp.status() == StatusCode::CREATED && from.is_some() {
            return Ok(None);
        }
        let resp = Self::check("start upload", &url, resp, &[StatusCode::ACCEPTED]).await?;
        location(&start, &resp).map(Some)
    }

    /// Upload blob `digest` from `store` unless the registry has it: mounted from
    /// `mount_from` when the registry allows, else sent in one PUT (small blobs) or
    /// in PATCH chunks of [`UPLOAD_CHUNK`] bytes. Returns whether bytes were sent.
    pub async fn push_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        store: &ContentStore,
        mount_from: &[String],
        progress: &dyn Progress,
    ) -> Result<bool, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base(r));
        let head = self
            .send(r, "check blob", &url, true, &|c| c.head(&url))
            .await?;
        if head.status() == StatusCode::OK {
            progress.transfer(Transfer::Exists { digest });
            return Ok(false);
        }
        let Some(mut session) = self.start_upload(r, digest, mount_from).await? else {
            progress.transfer(Transfer::Mounted { digest });
            return Ok(false);
        };
        let path = store.path(digest);
        let read_err = |source| StoreError::Read {
            digest: digest.clone(),
            source,
        };
        let mut file = std::fs::File::open(&path).map_err(read_err)?;
        let total = file.metadata().map_err(read_err)?.len();
        progress.transfer(Transfer::Start { digest, total });
        let mut body = Vec::new();
        let chunk = self.opts.upload_chunk.unwrap_or(UPLOAD_CHUNK).max(1);
        if total <= chunk {
            file.read_to_end(&mut body).map_err(read_err)?;
        } else {
            let mut sent = 0u64;
            while sent < total {
                body.clear();
                (&mut file)
                    .take(chunk)
                    .read_to_end(&mut body)
                    .map_err(read_err)?;
                if body.is_empty() {
                    break;
                }
                let range = format!("{sent}-{}", sent + body.len() as u64 - 1);
                let patch_url = session.to_string();
                let resp = self
                    .send(r, "upload chunk", &patch_url, true, &|c| {
                        c.request(Method::PATCH, session.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header("Content-Range", &range)
                            .body(body.clone())
                    })
                    .await?;
                let resp =
                    Self::check("upload chunk", &patch_url, resp, &[StatusCode::ACCEPTED]).await?;
                session = location(&patch_url, &resp)?;
                sent += body.len() as u64;
                progress.transfer(Transfer::Bytes {
                    digest,
                    current: sent,
                });
            }
            body.clear();
        }
        session
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let put_url = session.to_string();
        let resp = self
            .send(r, "upload blob", &put_url, true, &|c| {
                c.request(Method::PUT, session.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        Self::check("upload blob", &put_url, resp, &[StatusCode::CREATED]).await?;
        progress.transfer(Transfer::Done { digest });
        Ok(true)
    }

    /// Push a manifest stored in `store` and everything it refers to, under `r`'s tag.
    /// Returns the manifest's digest.
    pub async fn push(
        &self,
        r: &Reference,
        manifest: &Digest,
        store: &ContentStore,
        mount_from: &[String],
        progress: &dyn Progress,
    ) -> Result<Digest, RegistryError> {
        let bytes = std::fs::read(store.path(manifest)).map_err(|source| StoreError::Read {
            digest: manifest.clone(),
            source,
        })?;
        let parsed = Manifest::parse(&bytes, None).map_err(|source| RegistryError::Manifest {
            reference: r.to_string(),
            source,
        })?;
        let media_type = match &parsed {
            Manifest::Image(m) => {
                self.push_blob(r, &m.config.digest, store, mount_from, &())
                    .await?;
                for l in &m.layers {
                    self.push_blob(r, &l.digest, store, mount_from, progress)
                        .await?;
                }
                m.media_type
                    .clone()
                    .unwrap_or_else(|| super::manifest::OCI_MANIFEST.into())
            }
            Manifest::Index(idx) => {
                for d in &idx.manifests {
                    Box::pin(self.push(
                        &Reference {
                            tag: None,
                            digest: Some(d.digest.clone()),
                            ..r.clone()
                        },
                        &d.digest,
                        store,
                        mount_from,
                        progress,
                    ))
                    .await?;
                }
                idx.media_type
                    .clone()
                    .unwrap_or_else(|| super::manifest::OCI_INDEX.into())
            }
        };
        let target = r.tag.clone().unwrap_or_else(|| manifest.to_string());
        let url = format!("{}/manifests/{target}", self.base(r));
        let resp = self
            .send(r, "put manifest", &url, true, &|c| {
                c.put(&url)
                    .header(CONTENT_TYPE, &media_type)
                    .body(bytes.clone())
            })
            .await?;
        Self::check("put manifest", &url, resp, &[StatusCode::CREATED]).await?;
        Ok(manifest.clone())
    }
}
