//! The image side of the engine as its API offers it: resolve names, list and
//! inspect, pull and push with progress, tag, import. It ties the content store,
//! the tags, the snapshots and the registry client together and speaks `api` types.

use super::digest::Digest;
use super::images::{Images, ImagesError};
use super::manifest::{ImageConfig, ImageManifest, Manifest, ManifestError, Platform};
use super::reference::{Reference, ReferenceError};
use super::registry::{ClientOptions, Credentials, RegistryClient, RegistryError, Transfer};
use super::snapshot::{SnapshotError, Snapshots};
use super::store::StoreError;
use api::image::{
    ImageDetail, ImageLayer, ImageRunConfig, ImageSummary, LayerPhase, RegistryAuth, TransferEvent,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What went wrong serving an image request.
#[derive(Debug, thiserror::Error)]
pub enum ImageServiceError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("platform {text:?}: {why}")]
    Platform { text: String, why: String },
    #[error(transparent)]
    Images(#[from] ImagesError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no image {reference}")]
    NotFound { reference: String },
    #[error("{what} matches several images: {candidates}")]
    Ambiguous { what: String, candidates: String },
    #[error("image {digest}: {why}")]
    Corrupt { digest: Digest, why: String },
    #[error(transparent)]
    Build(#[from] super::build::BuildError),
    #[error(transparent)]
    Lifecycle(#[from] super::lifecycle::LifecycleError),
    #[error("{op}: the worker thread failed: {why}")]
    Worker { op: String, why: String },
}

/// The engine's images: tags, content and snapshots under one data dir.
pub struct ImageService {
    images: Images,
    snapshots: Snapshots,
    insecure: Vec<String>,
    /// The cluster's registry, once the node knows its cluster.
    cluster: std::sync::RwLock<Option<super::registry::ClusterRegistry>>,
    /// Leases on content: operations that add or read content hold a read lease,
    /// prune holds the write side, so it never deletes what a pull is writing.
    leases: Arc<tokio::sync::RwLock<()>>,
}

/// Parse `os/arch[/variant]`.
pub fn parse_platform(text: &str) -> Result<Platform, ImageServiceError> {
    let bad = |why: &str| ImageServiceError::Platform {
        text: text.to_owned(),
        why: why.to_owned(),
    };
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad("expected os/architecture[/variant], e.g. linux/arm64"));
    }
    Ok(Platform {
        os: parts[0].to_owned(),
        architecture: parts[1].to_owned(),
        variant: parts.get(2).map(|v| (*v).to_owned()),
        os_version: None,
    })
}

impl ImageService {
    /// Open (creating) the image state under `root` (`root/images`, `root/snapshots`).
    pub fn open(root: &Path, insecure: Vec<String>) -> Result<ImageService, ImageServiceError> {
        Ok(ImageService {
            images: Images::open(&root.join("images"))?,
            snapshots: Snapshots::open(&root.join("snapshots"))?,
            insecure,
            cluster: std::sync::RwLock::new(None),
            leases: Arc::new(tokio::sync::RwLock::new(())),
        })
    }

    /// Pulls and pushes of `orch.internal/...` (and of a manager's address) go to the
    /// cluster's managers from now on.
    pub fn set_cluster_registry(&self, cluster: super::registry::ClusterRegistry) {
        *self.cluster.write().unwrap_or_else(|p| p.into_inner()) = Some(cluster);
    }

    /// The tag index and content store.
    pub fn images(&self) -> &Images {
        &self.images
    }

    /// The unpacked layers.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// A lease that keeps prune away while content is added or read.
    pub async fn lease(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        Arc::clone(&self.leases).read_owned().await
    }

    /// Exclusive use of the content, for deleting some.
    pub async fn exclusive(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        Arc::clone(&self.leases).write_owned().await
    }

    fn registry(
        &self,
        registry: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<RegistryClient, ImageServiceError> {
        let mut credentials = HashMap::new();
        if let Some(a) = auth {
            credentials.insert(
                registry.to_owned(),
                Credentials {
                    username: a.username.clone(),
                    password: a.password.clone(),
                },
            );
        }
        Ok(RegistryClient::new(ClientOptions {
            insecure: self.insecure.clone(),
            credentials,
            upload_chunk: None,
            cluster: self
                .cluster
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        })?)
    }

    fn bytes(&self, d: &Digest) -> Result<Vec<u8>, ImageServiceError> {
        let mut bytes = Vec::new();
        self.images
            .content
            .open_verified(d)?
            .read_to_end(&mut bytes)
            .map_err(|source| StoreError::Read {
                digest: d.clone(),
                source,
            })?;
        Ok(bytes)
    }

    fn read<T: serde::de::DeserializeOwned>(&self, d: &Digest) -> Result<T, ImageServiceError> {
        let bytes = self.bytes(d)?;
        serde_json::from_slice(&bytes).map_err(|e| ImageServiceError::Corrupt {
            digest: d.clone(),
            why: format!("not valid JSON: {e}"),
        })
    }

    /// The image manifest for `digest`; an index is resolved to `platform`'s entry.
    fn image_manifest(
        &self,
        digest: &Digest,
        platform: &Platform,
    ) -> Result<(Digest, ImageManifest), ImageServiceError> {
        let bytes = self.bytes(digest)?;
        let corrupt = |e: ManifestError| ImageServiceError::Corrupt {
            digest: digest.clone(),
            why: e.to_string(),
        };
        match Manifest::parse(&bytes, None).map_err(corrupt)? {
            Manifest::Image(m) => Ok((digest.clone(), m)),
            Manifest::Index(idx) => {
                let d = idx.select(platform).map_err(corrupt)?.digest.clone();
                if !self.images.content.contains(&d) {
                    return Err(ImageServiceError::NotFound {
                        reference: format!(
                            "{digest} for {}/{}",
                            platform.os, platform.architecture
                        ),
                    });
                }
                let m = self.read(&d)?;
                Ok((d, m))
            }
        }
    }

    /// The manifest digest `what` names: a reference (`busybox:1.36`, `x@sha256:..`),
    /// a manifest digest, or an image id (config digest) or a unique prefix of one.
    pub fn resolve(&self, what: &str) -> Result<Digest, ImageServiceError> {
        let tags = self.images.list()?;
        let id_like = what
            .strip_prefix("sha256:")
            .unwrap_or(what)
            .chars()
            .all(|c| c.is_ascii_hexdigit());
        if id_like && what.len() >= 4 {
            let hex = what.strip_prefix("sha256:").unwrap_or(what);
            let mut hits: Vec<Digest> = Vec::new();
            for d in tags.values() {
                let config = self
                    .image_manifest(d, &Platform::linux_amd64())
                    .map(|(_, m)| m.config.digest);
                let matches = d.hex().starts_with(hex)
                    || config.as_ref().is_ok_and(|c| c.hex().starts_with(hex));
                if matches && !hits.contains(d) {
                    hits.push(d.clone());
                }
            }
            match hits.len() {
                1 => return Ok(hits.remove(0)),
                0 => {}
                _ => {
                    return Err(ImageServiceError::Ambiguous {
                        what: what.to_owned(),
                        candidates: hits
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            if let Ok(d) = what.parse::<Digest>()
                && self.images.content.contains(&d)
            {
                return Ok(d);
            }
            if what.len() == 64 || what.starts_with("sha256:") {
                return Err(ImageServiceError::NotFound {
                    reference: what.to_owned(),
                });
            }
        }
        let r: Reference = what.parse()?;
        if let Some(d) = &r.digest {
            if self.images.content.contains(d) {
                return Ok(d.clone());
            }
            return Err(ImageServiceError::NotFound {
                reference: r.familiar(),
            });
        }
        tags.get(&r.to_string())
            .cloned()
            .ok_or(ImageServiceError::NotFound {
                reference: r.familiar(),
            })
    }

    /// Every tagged image, one entry per manifest with all its names.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageServiceError> {
        let mut by_digest: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for (name, d) in self.images.list()? {
            let familiar = name
                .parse::<Reference>()
                .map(|r| r.familiar())
                .unwrap_or(name);
            by_digest.entry(d).or_default().push(familiar);
        }
        let mut out = Vec::new();
        for (d, tags) in by_digest {
            out.push(self.summary(&d, tags)?.0);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.tags.cmp(&b.tags)));
        Ok(out)
    }

    fn summary(
        &self,
        digest: &Digest,
        tags: Vec<String>,
    ) -> Result<(ImageSummary, ImageManifest, ImageConfig), ImageServiceError> {
        let (manifest_digest, m) = self.image_manifest(digest, &Platform::linux_amd64())?;
        let config: ImageConfig = self.read(&m.config.digest)?;
        let mut platform = format!("{}/{}", config.os, config.architecture);
        if let Some(v) = m.config.platform.as_ref().and_then(|p| p.variant.as_ref()) {
            platform.push('/');
            platform.push_str(v);
        }
        let summary = ImageSummary {
            id: m.config.digest.to_string(),
            digest: manifest_digest.to_string(),
            tags,
            size: m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
            created: config.created.clone(),
            platform,
        };
        Ok((summary, m, config))
    }

    /// All about the image `what` names.
    pub fn inspect(&self, what: &str) -> Result<ImageDetail, ImageServiceError> {
        let digest = self.resolve(what)?;
        let tags = self
            .images
            .list()?
            .into_iter()
            .filter(|(_, d)| *d == digest)
            .map(|(n, _)| n.parse::<Reference>().map(|r| r.familiar()).unwrap_or(n))
            .collect();
        let (summary, m, config) = self.summary(&digest, tags)?;
        let rc = config.config.clone().unwrap_or_default();
        let layers = m
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| ImageLayer {
                digest: l.digest.to_string(),
                diff_id: config
                    .rootfs
                    .diff_ids
                    .get(i)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                size: l.size,
                media_type: l.media_type.clone(),
            })
            .collect();
        Ok(ImageDetail {
            summary,
            media_type: m
                .media_type
                .clone()
                .unwrap_or_else(|| super::manifest::OCI_MANIFEST.into()),
            config: ImageRunConfig {
                user: rc.user.filter(|u| !u.is_empty()),
                env: rc.env.unwrap_or_default(),
                entrypoint: rc.entrypoint,
                cmd: rc.cmd,
                working_dir: rc.working_dir.filter(|w| !w.is_empty()),
                exposed_ports: rc.exposed_ports.unwrap_or_default().into_keys().collect(),
                volumes: rc.volumes.unwrap_or_default().into_keys().collect(),
                labels: rc.labels.unwrap_or_default(),
                stop_signal: rc.stop_signal,
            },
            layers,
        })
    }

    /// Pull `reference` for `platform` (default linux/amd64), unpack its layers and
    /// tag it; progress goes to `events`. Returns the image manifest's digest.
    pub async fn pull(
        self: &Arc<Self>,
        reference: &str,
        platform: Option<&str>,
        auth: Option<&RegistryAuth>,
        events: &(dyn Fn(TransferEvent) + Sync),
    ) -> Result<Digest, ImageServiceError> {
        let r: Reference = reference.parse()?;
        let asked = platform.map(parse_platform).transpose()?;
        let platform = asked.clone().unwrap_or_else(Platform::linux_amd64);
        let client = self.registry(&r.registry, auth)?;
        let meter = Meter::new(events, LayerPhase::Downloading);
        let _lease = self.lease().await;
        let pulled = client
            .pull(&r, &self.images.content, &platform, &meter)
            .await?;
        if let Some(want) = asked {
            let config: ImageConfig = self.read(&pulled.manifest.config.digest)?;
            if config.os != want.os || config.architecture != want.architecture {
                return Err(ImageServiceError::Platform {
                    text: format!("{}/{}", want.os, want.architecture),
                    why: format!(
                        "{} is a single-platform image for {}/{}",
                        r.familiar(),
                        config.os,
                        config.architecture
                    ),
                });
            }
        }
        let me = Arc::clone(self);
        let manifest = pulled.manifest_digest.clone();
        tokio::task::spawn_blocking(move || {
            me.snapshots.prepare(&me.images.content, &manifest)?;
            if r.digest.is_none() {
                me.images.tag(&r, &manifest)?;
            }
            Ok::<_, ImageServiceError>(())
        })
        .await
        .map_err(|e| ImageServiceError::Worker {
            op: format!("unpack {reference}"),
            why: e.to_string(),
        })??;
        Ok(pulled.manifest_digest)
    }

    /// Push the local image `reference` to its registry. Returns the manifest digest.
    pub async fn push(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
        events: &(dyn Fn(TransferEvent) + Sync),
    ) -> Result<Digest, ImageServiceError> {
        let r: Reference = reference.parse()?;
        let digest = self.resolve(reference)?;
        let client = self.registry(&r.registry, auth)?;
        let meter = Meter::new(events, LayerPhase::Uploading);
        let _lease = self.lease().await;
        // Other repositories of the same registry that hold this image (it was pulled
        // or pushed under their names): the registry can mount its blobs from there.
        let mount_from: Vec<String> = self
            .images
            .list()?
            .into_iter()
            .filter(|(_, d)| *d == digest)
            .filter_map(|(name, _)| name.parse::<Reference>().ok())
            .filter(|o| o.registry == r.registry && o.repository != r.repository)
            .map(|o| o.repository)
            .collect();
        Ok(client
            .push(&r, &digest, &self.images.content, &mount_from, &meter)
            .await?)
    }

    /// Check credentials against `registry`.
    pub async fn login(
        &self,
        registry: &str,
        auth: &RegistryAuth,
    ) -> Result<(), ImageServiceError> {
        let client = self.registry(registry, None)?;
        Ok(client
            .login(
                registry,
                &Credentials {
                    username: auth.username.clone(),
                    password: auth.password.clone(),
                },
            )
            .await?)
    }

    /// Name the image `source` also `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<Digest, ImageServiceError> {
        let digest = self.resolve(source)?;
        let r: Reference = target.parse()?;
        if r.digest.is_some() {
            return Err(ImageServiceError::Reference(ReferenceError {
                text: target.to_owned(),
                reason: "a tag target cannot carry a digest".into(),
            }));
        }
        self.images.tag(&r, &digest)?;
        Ok(digest)
    }
}

/// Turns registry transfer steps into API events, at most one byte count per
/// blob per 1% (or 1 MiB) so a stream stays small.
struct Meter<'a> {
    events: &'a (dyn Fn(TransferEvent) + Sync),
    phase: LayerPhase,
    state: Mutex<HashMap<Digest, (u64, u64)>>,
}

impl<'a> Meter<'a> {
    fn new(events: &'a (dyn Fn(TransferEvent) + Sync), phase: LayerPhase) -> Meter<'a> {
        Meter {
            events,
            phase,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn send(&self, digest: &Digest, phase: LayerPhase, current: u64, total: u64) {
        (self.events)(TransferEvent::Layer {
            digest: digest.to_string(),
            phase,
            current,
            total,
        });
    }
}

impl super::registry::Progress for Meter<'_> {
    fn transfer(&self, step: Transfer<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match step {
            Transfer::Start { digest, total } => {
                state.insert(digest.clone(), (total, 0));
                self.send(digest, self.phase, 0, total);
            }
            Transfer::Bytes { digest, current } => {
                let (total, last) = state.get(digest).copied().unwrap_or((0, 0));
                let step = (total / 100).max(1 << 20);
                if current >= last + step {
                    state.insert(digest.clone(), (total, current));
                    self.send(digest, self.phase, current, total);
                }
            }
            Transfer::Exists { digest } => self.send(digest, LayerPhase::Exists, 0, 0),
            Transfer::Mounted { digest } => self.send(digest, LayerPhase::Mounted, 0, 0),
            Transfer::Done { digest } => {
                let (total, _) = state.remove(digest).unwrap_or((0, 0));
                self.send(digest, LayerPhase::Complete, total, total);
            }
        }
    }
}
