//! Loading a docker-archive: each `manifest.json` entry's config and layer files are
//! found (links followed), checked (a config named `<hex>.json` must hash to that
//! name; an uncompressed layer must hash to its diff id), then committed with a new
//! OCI manifest over them. Compressed layers are accepted and checked against their
//! diff id when a snapshot unpacks them.

use super::entries::{Content, Contents, MANIFEST_JSON, Staged, named};
use super::{ArchiveError, LoadNote, Loaded, clean, merge, read_blob};
use crate::engine::image::digest::Digest;
use crate::engine::image::manifest::{Descriptor, ImageConfig, ImageManifest, OCI_LAYER_GZIP};
use crate::engine::image::reference::Reference;
use crate::engine::image::store::ContentStore;
use crate::engine::image::unpack::Compression;

/// OCI's media type of an uncompressed layer.
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI's media type of a zstd layer.
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// One `manifest.json` entry.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// An image checked and ready to commit.
struct Ready {
    files: Vec<String>,
    manifest: Vec<u8>,
    loaded: Loaded,
}

/// Check every image of a docker-archive, then commit them all.
pub(super) fn commit(
    store: &ContentStore,
    read: &mut Contents,
) -> Result<Vec<Loaded>, ArchiveError> {
    let entries: Vec<Entry> = read
        .meta
        .get(MANIFEST_JSON)
        .map(|b| serde_json::from_slice(b))
        .transpose()
        .map_err(|source| ArchiveError::Json {
            entry: MANIFEST_JSON.into(),
            source,
        })?
        .ok_or(ArchiveError::UnknownFormat)?;
    let mut ready = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        ready.push(check(
            store,
            read,
            e,
            &format!("{MANIFEST_JSON} entry {i}"),
        )?);
    }
    let mut out: Vec<Loaded> = Vec::new();
    for r in ready {
        for f in &r.files {
            read.commit(f, store)?;
        }
        store.ingest(
            &r.loaded.digest,
            Some(r.manifest.len() as u64),
            &mut &r.manifest[..],
        )?;
        match out.iter_mut().find(|l| l.digest == r.loaded.digest) {
            Some(l) => merge(&mut l.tags, r.loaded.tags),
            None => out.push(r.loaded),
        }
    }
    Ok(out)
}

/// The file `path` of `manifest.json` names, links followed.
fn find<'a>(
    read: &'a mut Contents,
    path: &str,
    referrer: &str,
    what: &'static str,
) -> Result<(String, &'a mut Staged), ArchiveError> {
    let missing = || ArchiveError::Missing {
        referrer: referrer.to_owned(),
        what,
        target: path.to_owned(),
    };
    let clean = clean(path)?.ok_or_else(missing)?;
    read.resolve(&clean)?.ok_or_else(missing)
}

/// The digest a docker-archive file name states: `<hex>.json` or `blobs/sha256/<hex>`.
fn stated(path: &str) -> Option<Digest> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let from_name = name
        .strip_suffix(".json")
        .and_then(|hex| format!("sha256:{hex}").parse().ok());
    from_name.or_else(|| named(path))
}

fn check(
    store: &ContentStore,
    read: &mut Contents,
    e: &Entry,
    referrer: &str,
) -> Result<Ready, ArchiveError> {
    let (config_path, c) = find(read, &e.config, referrer, "config")?;
    let (config_d, config_size) = (c.digest.clone(), c.size);
    let in_memory = match &c.content {
        Content::Memory(b) => Some(b.clone()),
        Content::Stored | Content::Pending(_) => None,
    };
    if let Some(expected) = stated(&config_path).filter(|d| *d != config_d) {
        return Err(ArchiveError::BlobMismatch {
            entry: config_path,
            expected,
            actual: config_d,
        });
    }
    let bytes = match in_memory {
        Some(b) => b,
        None => {
            // A config too large to keep in memory is needed anyway: commit it now.
            read.commit(&config_path, store)?;
            read_blob(store, &config_d)?
        }
    };
    let config: ImageConfig =
        serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Json {
            entry: config_path.clone(),
            source,
        })?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != e.layers.len() {
        return Err(ArchiveError::LayerCount {
            image: referrer.to_owned(),
            config: config_d,
            layers: e.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut files = vec![config_path];
    let mut layers = Vec::new();
    for (path, diff_id) in e.layers.iter().zip(diff_ids) {
        let (at, l) = find(read, path, referrer, "layer")?;
        let media_type = match l.compression {
            Compression::None => OCI_LAYER,
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        };
        if l.compression == Compression::None && &l.digest != diff_id {
            return Err(ArchiveError::DiffId {
                image: referrer.to_owned(),
                layer: at,
                config: config_d,
                expected: diff_id.clone(),
                actual: l.digest.clone(),
            });
        }
        layers.push(Descriptor::new(media_type, l.digest.clone(), l.size));
        files.push(at);
    }
    let manifest = ImageManifest::oci(config_d.clone(), config_size, layers);
    let manifest = serde_json::to_vec(&manifest).map_err(|source| ArchiveError::Json {
        entry: format!("{referrer}: the OCI manifest made for it"),
        source,
    })?;
    let mut notes = Vec::new();
    let mut tags = Vec::new();
    for name in e.repo_tags.iter().flatten() {
        match name.parse::<Reference>() {
            Ok(r) if r.digest.is_none() => tags.push(r),
            Ok(_) => notes.push(LoadNote::TagOnly { name: name.clone() }),
            Err(error) => notes.push(LoadNote::InvalidName {
                name: name.clone(),
                error,
            }),
        }
    }
    Ok(Ready {
        files,
        loaded: Loaded {
            digest: Digest::of(&manifest),
            config: Some(config_d),
            tags,
            notes,
        },
        manifest,
    })
}
