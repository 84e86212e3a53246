//! Removing images and garbage collection.
//!
//! [`remove`] is `docker rmi`: by tag it untags; by digest or image id (a prefix of
//! the manifest or config digest) it removes every tag of the image, refusing when
//! there are several unless forced. Content is never deleted there: an image without
//! tags is dangling, and [`prune`] deletes what nothing reaches.
//!
//! [`plan`] is the pure core: from the roots (tagged images and whatever the caller
//! keeps, e.g. images of containers) it marks everything reachable (index →
//! manifests → config + layers; the chain ids of reachable configs' diff ids) and
//! plans the rest of the blobs and snapshots for removal, with ingest temp files
//! older than a given age. [`prune`] is the thin shell that reads the store, calls
//! it and deletes. There are no leases: a pull running during a prune may lose blobs
//! it has not tagged yet, so callers run them under one lock.

use super::digest::Digest;
use super::images::{Images, ImagesError};
use super::manifest::{ImageConfig, Manifest};
use super::reference::Reference;
use super::snapshot::{SnapshotError, Snapshots, chain_ids};
use super::store::{ContentStore, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::time::{Duration, SystemTime};

/// What went wrong removing images or pruning.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Images(#[from] ImagesError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("no image {target}")]
    NotFound { target: String },
    #[error("image id {prefix} is ambiguous: it matches {}", join(.matches))]
    Ambiguous {
        prefix: String,
        matches: Vec<Digest>,
    },
    #[error(
        "unable to remove {target}: image {digest} is tagged {}; remove the tags one by one, or force",
        .tags.join(", ")
    )]
    Tagged {
        target: String,
        digest: Digest,
        tags: Vec<String>,
    },
}

fn join(ds: &[Digest]) -> String {
    ds.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a manifest blob references, as the core needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// An index: its manifests.
    Index { manifests: Vec<Digest> },
    /// An image manifest: config, layers, and the config's diff ids (empty when the
    /// config is absent).
    Image {
        config: Digest,
        layers: Vec<Digest>,
        diff_ids: Vec<Digest>,
    },
    /// Not a manifest orch can read: kept, nothing known below it.
    Opaque,
}

/// What is present, and what must stay.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Manifest or index digests that must stay, with all they reach.
    pub roots: Vec<Digest>,
    /// Every blob present, with its size.
    pub blobs: BTreeMap<Digest, u64>,
    /// Every snapshot present, by chain id.
    pub snapshots: Vec<Digest>,
    /// Ingest temp files and their last modification time.
    pub ingests: Vec<(String, SystemTime)>,
}

/// What to delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub blobs: Vec<Digest>,
    pub snapshots: Vec<Digest>,
    pub ingests: Vec<String>,
    /// The size of the blobs planned for removal.
    pub bytes: u64,
}

/// Plan the removal of everything in `inv` no root reaches, and of ingest files older
/// than `max_age` at `now`. `read` tells what a present manifest blob references; it
/// is called only for present blobs reached as manifests, once each.
pub fn plan<E>(
    inv: &Inventory,
    now: SystemTime,
    max_age: Duration,
    mut read: impl FnMut(&Digest) -> Result<Node, E>,
) -> Result<Plan, E> {
    let mut blobs = BTreeSet::new();
    let mut chains = BTreeSet::new();
    // Apart from `blobs`: a blob marked as some image's config may still be a root
    // manifest that must be read.
    let mut read_already = BTreeSet::new();
    let mut todo: Vec<Digest> = inv.roots.clone();
    while let Some(d) = todo.pop() {
        if !inv.blobs.contains_key(&d) || !read_already.insert(d.clone()) {
            continue;
        }
        blobs.insert(d.clone());
        match read(&d)? {
            Node::Index { manifests } => todo.extend(manifests),
            Node::Image {
                config,
                layers,
                diff_ids,
            } => {
                blobs.insert(config);
                blobs.extend(layers);
                chains.extend(chain_ids(&diff_ids));
            }
            Node::Opaque => {}
        }
    }
    let gone: Vec<Digest> = inv
        .blobs
        .keys()
        .filter(|d| !blobs.contains(*d))
        .cloned()
        .collect();
    Ok(Plan {
        bytes: gone.iter().filter_map(|d| inv.blobs.get(d)).sum(),
        blobs: gone,
        snapshots: inv
            .snapshots
            .iter()
            .filter(|c| !chains.contains(*c))
            .cloned()
            .collect(),
        ingests: inv
            .ingests
            .iter()
            .filter(|(_, t)| now.duration_since(*t).is_ok_and(|age| age > max_age))
            .map(|(n, _)| n.clone())
            .collect(),
    })
}

/// Which images a prune removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PruneMode {
    /// Untagged images only (`docker image prune`).
    Dangling,
    /// Every image not kept, tagged or not (`docker image prune -a`).
    All,
}

/// What a prune removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Tags removed ([`PruneMode::All`]).
    pub untagged: Vec<String>,
    pub blobs: Vec<Digest>,
    pub snapshots: Vec<Digest>,
    pub ingests: Vec<String>,
    /// Bytes of blobs removed.
    pub bytes: u64,
    /// Reachable manifests that could not be read (corrupt): kept, but what they
    /// reference could not be known.
    pub unreadable: Vec<Digest>,
}

/// Delete every blob and snapshot that neither a tag (with [`PruneMode::Dangling`])
/// nor `keep` reaches, and ingest temp files older than `ingest_max_age` at `now`.
pub fn prune(
    images: &Images,
    snapshots: &Snapshots,
    keep: &[Digest],
    mode: PruneMode,
    now: SystemTime,
    ingest_max_age: Duration,
) -> Result<PruneReport, GcError> {
    let mut report = PruneReport::default();
    if mode == PruneMode::All {
        for (name, d) in images.list()? {
            if !keep.contains(&d) {
                let r: Result<Reference, _> = name.parse();
                if let Ok(r) = r {
                    images.untag(&r)?;
                    report.untagged.push(r.familiar());
                }
            }
        }
    }
    let store = &images.content;
    let mut roots: Vec<Digest> = images.list()?.into_values().collect();
    roots.extend(keep.iter().cloned());
    let inv = Inventory {
        roots,
        blobs: store
            .list()
            .into_iter()
            .map(|d| {
                let size = fs::metadata(store.path(&d)).map_or(0, |m| m.len());
                (d, size)
            })
            .collect(),
        snapshots: snapshots.list()?,
        ingests: store.ingests(),
    };
    let p = plan(&inv, now, ingest_max_age, |d| {
        read_node(store, d, &mut report.unreadable)
    })?;
    for d in &p.snapshots {
        snapshots.remove(d)?;
    }
    for d in &p.blobs {
        store.remove(d)?;
    }
    for n in &p.ingests {
        store.remove_ingest(n)?;
    }
    report.blobs = p.blobs;
    report.snapshots = p.snapshots;
    report.ingests = p.ingests;
    report.bytes = p.bytes;
    Ok(report)
}

/// The JSON document in blob `d`; `None` when it is corrupt or not JSON of `T`.
fn read_json(
    store: &ContentStore,
    d: &Digest,
    unreadable: &mut Vec<Digest>,
) -> Result<Option<Vec<u8>>, GcError> {
    let mut bytes = Vec::new();
    let file = match store.open_verified(d) {
        Ok(f) => f,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(StoreError::DigestMismatch { .. }) => {
            unreadable.push(d.clone());
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    file.take(16 << 20)
        .read_to_end(&mut bytes)
        .map_err(|source| StoreError::Read {
            digest: d.clone(),
            source,
        })?;
    Ok(Some(bytes))
}

fn read_node(
    store: &ContentStore,
    d: &Digest,
    unreadable: &mut Vec<Digest>,
) -> Result<Node, GcError> {
    let Some(bytes) = read_json(store, d, unreadable)? else {
        return Ok(Node::Opaque);
    };
    match Manifest::parse(&bytes, None) {
        Ok(Manifest::Index(i)) => Ok(Node::Index {
            manifests: i.manifests.into_iter().map(|m| m.digest).collect(),
        }),
        Ok(Manifest::Image(m)) => {
            let diff_ids = read_json(store, &m.config.digest, unreadable)?
                .and_then(|b| serde_json::from_slice::<ImageConfig>(&b).ok())
                .map(|c| c.rootfs.diff_ids)
                .unwrap_or_default();
            Ok(Node::Image {
                config: m.config.digest,
                layers: m.layers.into_iter().map(|l| l.digest).collect(),
                diff_ids,
            })
        }
        Err(_) => {
            unreadable.push(d.clone());
            Ok(Node::Opaque)
        }
    }
}

/// What [`remove`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The image (manifest or index digest).
    pub digest: Digest,
    /// The tags removed.
    pub untagged: Vec<String>,
    /// Whether no tag points at the image any more (a prune will delete it).
    pub dangling: bool,
}

/// Remove an image like `docker rmi`: `target` is a tag (`busybox:1`), a digest
/// (`sha256:…`, `name@sha256:…`) or an image id prefix (of the manifest or config
/// digest, at least 4 hex digits). An image with several tags is only removed by
/// digest or id with `force`.
pub fn remove(images: &Images, target: &str, force: bool) -> Result<Removal, GcError> {
    let tags = images.list()?;
    let parsed: Option<Reference> = target.parse().ok();
    if let Some(r) = parsed.as_ref().filter(|r| r.digest.is_none())
        && let Some(d) = tags.get(&r.to_string())
    {
        let digest = images.untag(r)?;
        return Ok(Removal {
            dangling: !tags.iter().any(|(k, v)| v == d && *k != r.to_string()),
            digest,
            untagged: vec![r.familiar()],
        });
    }
    let not_found = || GcError::NotFound {
        target: target.to_owned(),
    };
    let needle = match parsed.as_ref().and_then(|r| r.digest.as_ref()) {
        Some(d) if target.contains('@') => d.hex().to_owned(),
        _ => target.strip_prefix("sha256:").unwrap_or(target).to_owned(),
    };
    if needle.len() < 4 || !needle.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let needle = needle.to_ascii_lowercase();
    let images_tagged: BTreeSet<&Digest> = tags.values().collect();
    let mut matches = Vec::new();
    for d in images_tagged {
        let mut ids = vec![d.clone()];
        if let Ok(Node::Image { config, .. }) = read_node(&images.content, d, &mut Vec::new()) {
            ids.push(config);
        }
        if ids.iter().any(|id| id.hex().starts_with(&needle)) {
            matches.push(d.clone());
        }
    }
    let digest = match matches.len() {
        0 => {
            let full: Option<Digest> = format!("sha256:{needle}").parse().ok();
            return match full.filter(|d| images.content.contains(d)) {
                Some(digest) => Ok(Removal {
                    digest,
                    untagged: Vec::new(),
                    dangling: true,
                }),
                None => Err(not_found()),
            };
        }
        1 => matches.remove(0),
        _ => {
            return Err(GcError::Ambiguous {
                prefix: needle,
                matches,
            });
        }
    };
    let names: Vec<&String> = tags
        .iter()
        .filter(|(_, v)| **v == digest)
        .map(|(k, _)| k)
        .collect();
    let refs: Vec<Reference> = names.iter().filter_map(|n| n.parse().ok()).collect();
    if refs.len() > 1 && !force {
        return Err(GcError::Tagged {
            target: target.to_owned(),
            digest,
            tags: refs.iter().map(Reference::familiar).collect(),
        });
    }
    for r in &refs {
        images.untag(r)?;
    }
    Ok(Removal {
        digest,
        untagged: refs.iter().map(Reference::familiar).collect(),
        dangling: true,
    })
}
