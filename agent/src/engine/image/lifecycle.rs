//! Images in and out of the engine other than through a registry, and their end:
//! import, load, save, remove, prune — as the engine API offers them, each holding
//! the right content lease (prune alone is exclusive).

use super::archive::{self, ArchiveError, ArchiveFormat};
use super::digest::Digest;
use super::gc::{self, GcError, PruneMode};
use super::images::{ImagesError, ImportConfig};
use super::reference::Reference;
use super::service::{ImageService, ImageServiceError};
use api::image::{LoadedImage, PruneReport, RemoveReport};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Interrupted downloads younger than this are left alone by prune (a pull may be
/// writing them).
pub const INGEST_MAX_AGE: Duration = Duration::from_secs(3600);

/// What went wrong moving images in, out or away.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Archive(Box<ArchiveError>),
    #[error(transparent)]
    Gc(#[from] GcError),
}

impl From<ArchiveError> for LifecycleError {
    fn from(e: ArchiveError) -> LifecycleError {
        LifecycleError::Archive(Box::new(e))
    }
}

fn worker(op: &str) -> impl FnOnce(tokio::task::JoinError) -> ImageServiceError + use<> {
    let op = op.to_owned();
    move |e| ImageServiceError::Worker {
        op,
        why: e.to_string(),
    }
}

impl ImageService {
    /// Import the root file system tarball at `file` as a one-layer image `reference`.
    pub async fn import(
        self: &Arc<Self>,
        file: PathBuf,
        reference: &str,
        cfg: ImportConfig,
    ) -> Result<LoadedImage, ImageServiceError> {
        let r: Reference = reference.parse()?;
        let lease = self.lease().await;
        let me = Arc::clone(self);
        let name = r.familiar();
        let digest = tokio::task::spawn_blocking(move || {
            let _lease = lease;
            let f = std::fs::File::open(&file).map_err(|source| ImagesError::Import {
                reference: r.familiar(),
                source,
            })?;
            me.images().import(f, &r, &cfg)
        })
        .await
        .map_err(worker("import"))??;
        Ok(LoadedImage {
            reference: Some(name),
            digest: digest.to_string(),
        })
    }

    /// Load the images of the docker-archive or OCI-layout tarball at `file`.
    pub async fn load(
        self: &Arc<Self>,
        file: PathBuf,
    ) -> Result<Vec<LoadedImage>, ImageServiceError> {
        let lease = self.lease().await;
        let me = Arc::clone(self);
        let loaded = tokio::task::spawn_blocking(move || {
            let _lease = lease;
            let f = std::fs::File::open(&file)
                .map_err(|e| LifecycleError::from(ArchiveError::Read(e)))?;
            archive::load(me.images(), f).map_err(LifecycleError::from)
        })
        .await
        .map_err(worker("load"))??;
        let mut out = Vec::new();
        for l in loaded {
            if l.tags.is_empty() {
                out.push(LoadedImage {
                    reference: None,
                    digest: l.digest.to_string(),
                });
            }
            for t in &l.tags {
                out.push(LoadedImage {
                    reference: Some(t.familiar()),
                    digest: l.digest.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Check that `names` can be saved (each names a local image); the references.
    pub fn saveable(&self, names: &[String]) -> Result<Vec<Reference>, ImageServiceError> {
        let mut refs = Vec::new();
        for n in names {
            self.resolve(n)?;
            refs.push(n.parse::<Reference>()?);
        }
        Ok(refs)
    }

    /// Write `refs` as a `format` tarball to `out`, on a blocking thread.
    pub async fn save(
        self: &Arc<Self>,
        refs: Vec<Reference>,
        format: ArchiveFormat,
        out: impl Write + Send + 'static,
    ) -> Result<(), ImageServiceError> {
        let lease = self.lease().await;
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _lease = lease;
            archive::save(me.images(), &refs, format, out).map_err(LifecycleError::from)
        })
        .await
        .map_err(worker("save"))??;
        Ok(())
    }

    /// Remove the name `target` (or, by digest or id, the image with all its names
    /// when `force`); an image left without names is deleted with everything no
    /// other named image uses, as `docker rmi` does.
    pub async fn remove(
        self: &Arc<Self>,
        target: &str,
        force: bool,
        keep: Vec<Digest>,
    ) -> Result<RemoveReport, ImageServiceError> {
        let removal = gc::remove(self.images(), target, force).map_err(LifecycleError::from)?;
        let mut report = RemoveReport {
            untagged: removal.untagged,
            deleted: Vec::new(),
        };
        if removal.dangling {
            self.prune_with(PruneMode::Dangling, keep).await?;
            if !self.images().content.contains(&removal.digest) {
                report.deleted.push(removal.digest.to_string());
            }
        }
        Ok(report)
    }

    /// Delete content no named image uses and `keep` (images containers use) does not
    /// need; with `all`, first remove every name of images not in `keep`.
    pub async fn prune(
        self: &Arc<Self>,
        all: bool,
        keep: Vec<Digest>,
    ) -> Result<PruneReport, ImageServiceError> {
        let mode = if all {
            PruneMode::All
        } else {
            PruneMode::Dangling
        };
        self.prune_with(mode, keep).await
    }

    async fn prune_with(
        self: &Arc<Self>,
        mode: PruneMode,
        keep: Vec<Digest>,
    ) -> Result<PruneReport, ImageServiceError> {
        let exclusive = self.exclusive().await;
        let me = Arc::clone(self);
        let r = tokio::task::spawn_blocking(move || {
            let _exclusive = exclusive;
            gc::prune(
                me.images(),
                me.snapshots(),
                &keep,
                mode,
                SystemTime::now(),
                INGEST_MAX_AGE,
            )
            .map_err(LifecycleError::from)
        })
        .await
        .map_err(worker("prune"))??;
        Ok(PruneReport {
            untagged: r.untagged,
            blobs: r.blobs.iter().map(ToString::to_string).collect(),
            snapshots: r.snapshots.iter().map(ToString::to_string).collect(),
            reclaimed: r.bytes,
        })
    }
}
