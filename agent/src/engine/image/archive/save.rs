//! Writing images into a tar: blobs streamed from the content store, metadata last
//! (an interrupted save leaves no `index.json` / `manifest.json`, so no loader takes
//! it for complete). Entries carry mode 0644, owner 0 and time 0, so the same images
//! always give the same bytes.

use super::{ArchiveError, read_blob};
use crate::engine::image::digest::Digest;
use crate::engine::image::images::Images;
use crate::engine::image::manifest::{
    Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest, OCI_INDEX, OCI_MANIFEST, Platform,
};
use crate::engine::image::reference::Reference;
use crate::engine::image::unpack::{Compression, detect};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

/// The annotation OCI layouts name an image by.
pub(super) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd names an image by (the full reference).
pub(super) const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A tar being written.
struct Out<W: Write> {
    tar: tar::Builder<W>,
}

impl<W: Write> Out<W> {
    fn new(w: W) -> Out<W> {
        let mut tar = tar::Builder::new(w);
        tar.mode(tar::HeaderMode::Deterministic);
        Out { tar }
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        let mut h = Self::header(tar::EntryType::Directory, 0, 0o755);
        self.tar
            .append_data(&mut h, path, io::empty())
            .map_err(|source| ArchiveError::Write {
                entry: path.to_owned(),
                source,
            })
    }

    fn file(&mut self, path: &str, size: u64, data: impl Read) -> Result<(), ArchiveError> {
        let mut h = Self::header(tar::EntryType::Regular, size, 0o644);
        let exact = Exact {
            inner: data,
            left: size,
        };
        self.tar
            .append_data(&mut h, path, exact)
            .map_err(|source| ArchiveError::Write {
                entry: path.to_owned(),
                source,
            })
    }

    fn json(&mut self, path: &str, value: &impl Serialize) -> Result<(), ArchiveError> {
        let bytes = serde_json::to_vec(value).map_err(|e| ArchiveError::Write {
            entry: path.to_owned(),
            source: io::Error::other(e),
        })?;
        self.file(path, bytes.len() as u64, &bytes[..])
    }

    fn blob(&mut self, images: &Images, d: &Digest, path: &str) -> Result<(), ArchiveError> {
        let f = images.content.open_verified(d)?;
        let size = f.metadata().map_err(|source| ArchiveError::Write {
            entry: path.to_owned(),
            source,
        })?;
        self.file(path, size.len(), f)
    }

    fn finish(self) -> Result<(), ArchiveError> {
        self.tar
            .into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|source| ArchiveError::Write {
                entry: "end of archive".into(),
                source,
            })
    }
}

/// Reads exactly `left` bytes from `inner`: a source that ends early is an error
/// (tar would otherwise pad it silently), anything beyond is not read.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("content ended {} bytes early", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn parse(images: &Images, d: &Digest, image: &str) -> Result<Manifest, ArchiveError> {
    Manifest::parse(&read_blob(&images.content, d)?, None).map_err(|source| {
        ArchiveError::Manifest {
            image: image.to_owned(),
            digest: d.clone(),
            source,
        }
    })
}

/// Write an OCI image layout: every blob the images reach, then `index.json`.
pub(super) fn oci(
    images: &Images,
    refs: &[Reference],
    out: impl Write,
) -> Result<(), ArchiveError> {
    let mut entries = Vec::new();
    let mut blobs: Vec<Digest> = Vec::new();
    let mut seen = BTreeSet::new();
    for r in refs {
        let d = images.resolve(r)?;
        let bytes = read_blob(&images.content, &d)?;
        let parsed = Manifest::parse(&bytes, None).map_err(|source| ArchiveError::Manifest {
            image: r.familiar(),
            digest: d.clone(),
            source,
        })?;
        let size = bytes.len() as u64;
        let media_type = match parsed {
            Manifest::Image(m) => m.media_type.unwrap_or_else(|| OCI_MANIFEST.into()),
            Manifest::Index(i) => i.media_type.unwrap_or_else(|| OCI_INDEX.into()),
        };
        reach(images, &d, &r.familiar(), 0, &mut seen, &mut blobs)?;
        let mut annotations = BTreeMap::new();
        if r.digest.is_none() && r.tag.is_some() {
            annotations.insert(REF_NAME.to_owned(), r.to_string());
            annotations.insert(CONTAINERD_NAME.to_owned(), r.to_string());
        }
        entries.push(Descriptor {
            media_type,
            digest: d,
            size,
            platform: None,
            annotations,
        });
    }
    let mut out = Out::new(out);
    out.file("oci-layout", 30, &br#"{"imageLayoutVersion":"1.0.0"}"#[..])?;
    out.dir("blobs/")?;
    out.dir("blobs/sha256/")?;
    for d in &blobs {
        out.blob(images, d, &format!("blobs/sha256/{}", d.hex()))?;
    }
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests: entries,
        annotations: BTreeMap::new(),
    };
    out.json("index.json", &index)?;
    out.finish()
}

/// Collect `d` and everything it reaches (children first); an index's manifests that
/// are not in the store (platforms never pulled) are left out.
fn reach(
    images: &Images,
    d: &Digest,
    image: &str,
    depth: usize,
    seen: &mut BTreeSet<Digest>,
    out: &mut Vec<Digest>,
) -> Result<(), ArchiveError> {
    if depth > 4 {
        return Err(ArchiveError::TooDeep {
            image: image.to_owned(),
            limit: 4,
        });
    }
    if !seen.insert(d.clone()) {
        return Ok(());
    }
    match parse(images, d, image)? {
        Manifest::Image(m) => {
            for c in std::iter::once(&m.config).chain(&m.layers) {
                if seen.insert(c.digest.clone()) {
                    out.push(c.digest.clone());
                }
            }
        }
        Manifest::Index(i) => {
            let present: Vec<&Descriptor> = i
                .manifests
                .iter()
                .filter(|m| images.content.contains(&m.digest))
                .collect();
            if present.is_empty() {
                return Err(ArchiveError::NoManifest {
                    image: image.to_owned(),
                    index: d.clone(),
                });
            }
            for m in present {
                reach(images, &m.digest, image, depth + 1, seen, out)?;
            }
        }
    }
    out.push(d.clone());
    Ok(())
}

/// One `manifest.json` entry of a docker-archive.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// An image to write as a docker-archive: its config and (layer blob, diff id) pairs.
struct DockerImage {
    config: Digest,
    layers: Vec<(Digest, Digest)>,
    tags: Vec<Reference>,
}

/// Write a docker-archive: configs, uncompressed layers, then `manifest.json` and
/// `repositories`.
pub(super) fn docker(
    images: &Images,
    refs: &[Reference],
    out: impl Write,
) -> Result<(), ArchiveError> {
    let mut list: Vec<DockerImage> = Vec::new();
    for r in refs {
        let image = r.familiar();
        let d = images.resolve(r)?;
        let (md, m) = image_manifest(images, &d, &image)?;
        let config: ImageConfig =
            serde_json::from_slice(&read_blob(&images.content, &m.config.digest)?).map_err(
                |source| ArchiveError::Json {
                    entry: format!("{image}: config {}", m.config.digest),
                    source,
                },
            )?;
        let diff_ids = config.rootfs.diff_ids;
        if diff_ids.len() != m.layers.len() {
            return Err(ArchiveError::LayerCount {
                image: format!("{image} (manifest {md})"),
                config: m.config.digest,
                layers: m.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let tag = r.tag.is_some() && r.digest.is_none();
        match list.iter_mut().find(|i| i.config == m.config.digest) {
            Some(i) if tag => i.tags.push(r.clone()),
            Some(_) => {}
            None => list.push(DockerImage {
                config: m.config.digest,
                layers: m
                    .layers
                    .into_iter()
                    .map(|l| l.digest)
                    .zip(diff_ids)
                    .collect(),
                tags: if tag { vec![r.clone()] } else { Vec::new() },
            }),
        }
    }
    let mut out = Out::new(out);
    let mut written = BTreeSet::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in &list {
        let config_path = format!("{}.json", img.config.hex());
        out.blob(images, &img.config, &config_path)?;
        let mut layers = Vec::new();
        for (blob, diff_id) in &img.layers {
            let path = format!("{}/layer.tar", diff_id.hex());
            if written.insert(diff_id.clone()) {
                out.dir(&format!("{}/", diff_id.hex()))?;
                layer(images, &mut out, blob, diff_id, &img.config, &path)?;
            }
            layers.push(path);
        }
        for t in &img.tags {
            let repo = Reference {
                tag: None,
                digest: None,
                ..t.clone()
            }
            .familiar();
            if let (Some(tag), Some((_, top))) = (&t.tag, img.layers.last()) {
                repositories
                    .entry(repo)
                    .or_default()
                    .insert(tag.clone(), top.hex().to_owned());
            }
        }
        let tags: Vec<String> = img.tags.iter().map(Reference::familiar).collect();
        manifest.push(DockerEntry {
            config: config_path,
            repo_tags: (!tags.is_empty()).then_some(tags),
            layers,
        });
    }
    out.json("manifest.json", &manifest)?;
    out.json("repositories", &repositories)?;
    out.finish()
}

/// The image manifest `d` names, choosing from an index the host's platform, or else
/// the first manifest that is in the store.
fn image_manifest(
    images: &Images,
    d: &Digest,
    image: &str,
) -> Result<(Digest, ImageManifest), ArchiveError> {
    let mut d = d.clone();
    for _ in 0..4 {
        let index = match parse(images, &d, image)? {
            Manifest::Image(m) => return Ok((d, m)),
            Manifest::Index(i) => i,
        };
        let host = Platform {
            architecture: host_arch().into(),
            ..Platform::linux_amd64()
        };
        let present = |x: &&Descriptor| images.content.contains(&x.digest);
        let pick = index
            .select(&host)
            .ok()
            .filter(present)
            .or_else(|| index.manifests.iter().find(present))
            .ok_or_else(|| ArchiveError::NoManifest {
                image: image.to_owned(),
                index: d.clone(),
            })?;
        d = pick.digest.clone();
    }
    Err(ArchiveError::TooDeep {
        image: image.to_owned(),
        limit: 4,
    })
}

/// The host's CPU in OCI's words.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A layer blob, uncompressed, as one tar entry. A compressed blob is read twice:
/// once to learn its uncompressed size (and check its diff id), once to write it.
fn layer<W: Write>(
    images: &Images,
    out: &mut Out<W>,
    blob: &Digest,
    diff_id: &Digest,
    config: &Digest,
    path: &str,
) -> Result<(), ArchiveError> {
    let rerr = |source| ArchiveError::Write {
        entry: path.to_owned(),
        source,
    };
    let (size, actual) = {
        let mut r = decompressed(images.content.open_verified(blob)?).map_err(rerr)?;
        let mut h = Sha256::new();
        let n = io::copy(&mut r, &mut h).map_err(rerr)?;
        (n, Digest::from_hasher(h))
    };
    if &actual != diff_id {
        return Err(ArchiveError::DiffId {
            image: format!("saving config {config}"),
            layer: blob.to_string(),
            config: config.clone(),
            expected: diff_id.clone(),
            actual,
        });
    }
    // Verified by the first pass; the store never changes a blob in place.
    let path_in_store = images.content.path(blob);
    let r = decompressed(File::open(path_in_store).map_err(rerr)?).map_err(rerr)?;
    out.file(path, size, r)
}

/// The uncompressed content of a layer blob.
fn decompressed(f: File) -> io::Result<Box<dyn Read>> {
    let mut r = BufReader::with_capacity(256 * 1024, f);
    Ok(match detect(r.fill_buf()?) {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
        ),
    })
}
