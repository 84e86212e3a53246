//! Loading an OCI image layout: every image `index.json` names is checked to be
//! complete (manifests, config, layers present with the sizes their descriptors
//! give) before any of it is tagged. Blobs were verified against their names while
//! the tar was read.

use super::entries::{Contents, INDEX_JSON, OCI_LAYOUT};
use super::save::{CONTAINERD_NAME, REF_NAME};
use super::{ArchiveError, LoadNote, Loaded, merge, read_blob};
use crate::engine::image::digest::Digest;
use crate::engine::image::manifest::{Descriptor, ImageConfig, ImageIndex, Manifest};
use crate::engine::image::reference::Reference;
use crate::engine::image::store::ContentStore;
use std::fs;

/// Indexes nested deeper than this are refused.
const MAX_DEPTH: usize = 4;

/// Check the images of an OCI layout and say how to tag them.
pub(super) fn commit(store: &ContentStore, read: &Contents) -> Result<Vec<Loaded>, ArchiveError> {
    if let Some(layout) = read.meta.get(OCI_LAYOUT) {
        #[derive(serde::Deserialize)]
        struct Layout {
            #[serde(rename = "imageLayoutVersion")]
            version: String,
        }
        let l: Layout = serde_json::from_slice(layout).map_err(|source| ArchiveError::Json {
            entry: OCI_LAYOUT.into(),
            source,
        })?;
        if l.version != "1.0.0" {
            return Err(ArchiveError::LayoutVersion { version: l.version });
        }
    }
    let index: ImageIndex = read
        .meta
        .get(INDEX_JSON)
        .map(|b| serde_json::from_slice(b))
        .transpose()
        .map_err(|source| ArchiveError::Json {
            entry: INDEX_JSON.into(),
            source,
        })?
        .ok_or(ArchiveError::UnknownFormat)?;
    let mut loaded: Vec<Loaded> = Vec::new();
    for (i, desc) in index.manifests.iter().enumerate() {
        let referrer = format!("{INDEX_JSON} entry {i}");
        let mut notes = Vec::new();
        let config = check(store, desc, &referrer, 0, &mut notes)?;
        let mut tags = Vec::new();
        if let Some(name) = desc
            .annotations
            .get(CONTAINERD_NAME)
            .or_else(|| desc.annotations.get(REF_NAME))
        {
            match name_of(name) {
                Ok(r) => tags.push(r),
                Err(note) => notes.push(note),
            }
        }
        match loaded.iter_mut().find(|l| l.digest == desc.digest) {
            Some(l) => {
                merge(&mut l.tags, tags);
                merge(&mut l.notes, notes);
            }
            None => loaded.push(Loaded {
                digest: desc.digest.clone(),
                config,
                tags,
                notes,
            }),
        }
    }
    Ok(loaded)
}

/// The reference an annotation names, or why it names none.
fn name_of(name: &str) -> Result<Reference, LoadNote> {
    if !name.contains(['/', ':', '@']) {
        return Err(LoadNote::TagOnly {
            name: name.to_owned(),
        });
    }
    match name.parse::<Reference>() {
        Ok(r) if r.digest.is_none() => Ok(r),
        Ok(_) => Err(LoadNote::TagOnly {
            name: name.to_owned(),
        }),
        Err(error) => Err(LoadNote::InvalidName {
            name: name.to_owned(),
            error,
        }),
    }
}

/// Check that `desc` is in the store with its size.
fn present(store: &ContentStore, desc: &Descriptor, referrer: &str) -> Result<(), ArchiveError> {
    let actual = fs::metadata(store.path(&desc.digest))
        .map_err(|_| ArchiveError::Missing {
            referrer: referrer.to_owned(),
            what: "blob",
            target: desc.digest.to_string(),
        })?
        .len();
    if actual != desc.size {
        return Err(ArchiveError::Size {
            referrer: referrer.to_owned(),
            digest: desc.digest.clone(),
            expected: desc.size,
            actual,
        });
    }
    Ok(())
}

/// Check the manifest or index `desc` and all it reaches; its config for an image.
fn check(
    store: &ContentStore,
    desc: &Descriptor,
    referrer: &str,
    depth: usize,
    notes: &mut Vec<LoadNote>,
) -> Result<Option<Digest>, ArchiveError> {
    if depth > MAX_DEPTH {
        return Err(ArchiveError::TooDeep {
            image: referrer.to_owned(),
            limit: MAX_DEPTH,
        });
    }
    present(store, desc, referrer)?;
    let bytes = read_blob(store, &desc.digest)?;
    let parsed = Manifest::parse(&bytes, Some(&desc.media_type)).map_err(|source| {
        ArchiveError::Manifest {
            image: referrer.to_owned(),
            digest: desc.digest.clone(),
            source,
        }
    })?;
    let here = format!("manifest {}", desc.digest);
    match parsed {
        Manifest::Image(m) => {
            present(store, &m.config, &here)?;
            let config: ImageConfig = serde_json::from_slice(&read_blob(store, &m.config.digest)?)
                .map_err(|source| ArchiveError::Json {
                    entry: format!("blobs/sha256/{} (config)", m.config.digest.hex()),
                    source,
                })?;
            if config.rootfs.diff_ids.len() != m.layers.len() {
                return Err(ArchiveError::LayerCount {
                    image: here,
                    config: m.config.digest,
                    layers: m.layers.len(),
                    diff_ids: config.rootfs.diff_ids.len(),
                });
            }
            for l in &m.layers {
                present(store, l, &here)?;
            }
            Ok(Some(m.config.digest))
        }
        Manifest::Index(idx) => {
            let (there, missing): (Vec<&Descriptor>, Vec<&Descriptor>) = idx
                .manifests
                .iter()
                .partition(|m| store.contains(&m.digest));
            if there.is_empty() {
                return Err(ArchiveError::NoManifest {
                    image: referrer.to_owned(),
                    index: desc.digest.clone(),
                });
            }
            for m in there {
                check(store, m, &here, depth + 1, notes)?;
            }
            if !missing.is_empty() {
                notes.push(LoadNote::PlatformsMissing {
                    index: desc.digest.clone(),
                    missing: missing.iter().map(|m| m.digest.clone()).collect(),
                });
            }
            Ok(None)
        }
    }
}
