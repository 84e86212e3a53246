//! Images in and out of tar files, like `docker save` / `docker load`.
//!
//! Two formats are written and read:
//! - **docker-archive** ([`ArchiveFormat::DockerArchive`]): `manifest.json`
//!   (`[{Config, RepoTags, Layers}]`), `repositories`, `<config hex>.json` and each layer
//!   uncompressed as `<diff id hex>/layer.tar` — the layout every `docker load` since
//!   1.10, podman and skopeo read. A layer is written uncompressed so that its file
//!   hashes to the diff id the config names; the manifest is not part of the format,
//!   so a loaded image keeps its config digest (its id) and diff ids, and gets a new
//!   OCI manifest whose layers are those tar files.
//! - **OCI image layout** ([`ArchiveFormat::OciLayout`]): `oci-layout`, `index.json`
//!   (one entry per reference, named by `org.opencontainers.image.ref.name` and
//!   `io.containerd.image.name`) and `blobs/sha256/<hex>` holding manifests, configs
//!   and layers byte for byte as stored, so every digest survives the trip.
//!
//! [`save`] streams every blob from the content store into the tar (a layer is never
//! held in memory). [`load`] reads a plain, gzip or zstd tar of either format: blobs
//! named by digest are verified and committed as they stream by; other files (a
//! docker-archive's configs and layers) wait uncommitted in the store's ingest area
//! until `manifest.json` shows which are needed. Tags are written only after every
//! blob of every image is in, so a refused archive leaves no tag and no partial blob.
//!
//! - `save`: writing both formats.
//! - `entries`: reading the tar into staged files.
//! - `oci`, `docker`: checking a read archive and committing its images.

mod docker;
mod entries;
mod oci;
mod save;
#[cfg(test)]
mod tests;

use super::digest::Digest;
use super::images::{Images, ImagesError};
use super::manifest::ManifestError;
use super::reference::{Reference, ReferenceError};
use super::store::{ContentStore, StoreError};
use std::io::{self, Read, Write};

/// The largest JSON document (manifest.json, index.json, a manifest or config) read.
const JSON_LIMIT: u64 = 16 << 20;

/// Which tar layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// What `docker save` writes: `manifest.json` and uncompressed `layer.tar` files.
    DockerArchive,
    /// An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`) in a tar.
    OciLayout,
}

/// One image an archive held, as stored after [`load`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// What the image is stored under: its manifest, or the index it came as.
    pub digest: Digest,
    /// Its config (docker's image id); `None` when `digest` is an index.
    pub config: Option<Digest>,
    /// The references now pointing at it (empty: loaded untagged).
    pub tags: Vec<Reference>,
    /// Names not applied and content not present, with the reason.
    pub notes: Vec<LoadNote>,
}

/// Something [`load`] left out, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadNote {
    /// An OCI `ref.name` that is only a tag (`1.0`): no repository to tag.
    TagOnly { name: String },
    /// A name that is not an image reference.
    InvalidName { name: String, error: ReferenceError },
    /// Manifests of an index (other platforms) that are not in the archive.
    PlatformsMissing { index: Digest, missing: Vec<Digest> },
}

/// What went wrong saving or loading an archive; names the entry or image.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Images(#[from] ImagesError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("read archive: {0}")]
    Read(io::Error),
    #[error("read archive entry {entry}: {source}")]
    ReadEntry { entry: String, source: io::Error },
    #[error("write archive entry {entry}: {source}")]
    Write { entry: String, source: io::Error },
    #[error("archive path {path:?} is absolute or climbs out of the archive with ..")]
    UnsafePath { path: String },
    #[error("archive entry {entry} is a link that leads to no file of the archive")]
    BrokenLink { entry: String },
    #[error(
        "the archive has neither manifest.json (docker-archive) nor index.json (OCI image layout)"
    )]
    UnknownFormat,
    #[error("oci-layout says imageLayoutVersion {version:?}; orch reads 1.0.0")]
    LayoutVersion { version: String },
    #[error("archive entry {entry} is not valid JSON of its kind: {source}")]
    Json {
        entry: String,
        source: serde_json::Error,
    },
    #[error("archive entry {entry} is larger than the {limit} bytes allowed for it")]
    TooLarge { entry: String, limit: u64 },
    #[error("archive entry {entry}: its content hashes to {actual}, its name says {expected}")]
    BlobMismatch {
        entry: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{referrer} names {what} {target}, which is not in the archive")]
    Missing {
        referrer: String,
        what: &'static str,
        target: String,
    },
    #[error("blob {digest} is {actual} bytes, {referrer} says {expected}")]
    Size {
        referrer: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{image}: manifest {digest} cannot be used: {source}")]
    Manifest {
        image: String,
        digest: Digest,
        source: ManifestError,
    },
    #[error("{image}: {layers} layers but {diff_ids} diff ids in config {config}")]
    LayerCount {
        image: String,
        config: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error(
        "{image}: layer {layer} uncompressed hashes to {actual}, config {config} says {expected}"
    )]
    DiffId {
        image: String,
        layer: String,
        config: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("{image}: index {index} has no manifest whose content is all in the store")]
    NoManifest { image: String, index: Digest },
    #[error("{image}: indexes nested deeper than {limit} levels")]
    TooDeep { image: String, limit: usize },
}

/// Write the images `refs` name to `out` as a tar in `format`.
pub fn save(
    images: &Images,
    refs: &[Reference],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<(), ArchiveError> {
    match format {
        ArchiveFormat::DockerArchive => save::docker(images, refs, out),
        ArchiveFormat::OciLayout => save::oci(images, refs, out),
    }
}

/// Read a docker-archive or OCI layout tar (plain, gzip or zstd) into `images`, tag
/// what it names, and report every image it held.
pub fn load(images: &Images, input: impl Read) -> Result<Vec<Loaded>, ArchiveError> {
    let mut read = entries::read(&images.content, input)?;
    let loaded = if read.meta.contains_key(entries::INDEX_JSON) {
        oci::commit(&images.content, &read)?
    } else if read.meta.contains_key(entries::MANIFEST_JSON) {
        docker::commit(&images.content, &mut read)?
    } else {
        return Err(ArchiveError::UnknownFormat);
    };
    for l in &loaded {
        for t in &l.tags {
            images.tag(t, &l.digest)?;
        }
    }
    Ok(loaded)
}

/// The bytes of blob `d` (at most [`JSON_LIMIT`]), verified.
fn read_blob(store: &ContentStore, d: &Digest) -> Result<Vec<u8>, ArchiveError> {
    let mut bytes = Vec::new();
    store
        .open_verified(d)?
        .take(JSON_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| StoreError::Read {
            digest: d.clone(),
            source,
        })?;
    if bytes.len() as u64 > JSON_LIMIT {
        return Err(ArchiveError::TooLarge {
            entry: format!("blob {d}"),
            limit: JSON_LIMIT,
        });
    }
    Ok(bytes)
}

/// `path` as a clean relative path (`a/b`): `.` parts and a leading `./` dropped; an
/// absolute path or any `..` is refused. `None` for the archive root itself.
fn clean(path: &str) -> Result<Option<String>, ArchiveError> {
    join(&[], path, false)
}

/// `path` taken relative to the directory `base` (components), `..` allowed when
/// `up` is, as long as it stays inside the archive.
fn join(base: &[&str], path: &str, up: bool) -> Result<Option<String>, ArchiveError> {
    let unsafe_path = || ArchiveError::UnsafePath {
        path: path.to_owned(),
    };
    if path.starts_with('/') {
        return Err(unsafe_path());
    }
    let mut parts: Vec<&str> = base.to_vec();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." if up => {
                parts.pop().ok_or_else(unsafe_path)?;
            }
            ".." => return Err(unsafe_path()),
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Append the items of `from` that `into` does not hold yet.
fn merge<T: PartialEq>(into: &mut Vec<T>, from: Vec<T>) {
    for x in from {
        if !into.contains(&x) {
            into.push(x);
        }
    }
}
