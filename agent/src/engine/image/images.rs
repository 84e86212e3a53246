//! Images by name: references mapped to manifest digests in `<root>/refs.json`
//! (written atomically), over the content store; import of a root file system tar as
//! a one-layer image (like `docker import`).

use super::digest::Digest;
use super::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use super::reference::Reference;
use super::store::{ContentStore, StoreError};
use super::unpack::{Compression, detect};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// What went wrong with the image index.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("read image index {path}: {source}")]
    ReadIndex { path: PathBuf, source: io::Error },
    #[error("image index {path} is corrupt: {source}")]
    CorruptIndex {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("write image index {path}: {source}")]
    WriteIndex { path: PathBuf, source: io::Error },
    #[error("import {reference}: read the root file system: {source}")]
    Import {
        reference: String,
        source: io::Error,
    },
    #[error("no image {reference}")]
    NotFound { reference: String },
}

/// Settings of an imported image.
#[derive(Clone, Debug, Default)]
pub struct ImportConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub architecture: String,
}

/// The image store of an engine.
pub struct Images {
    pub content: ContentStore,
    index: PathBuf,
    /// Serializes the read-modify-write of the index (tag, untag).
    writing: std::sync::Mutex<()>,
}

impl Images {
    /// Open (creating) the image store under `root`.
    pub fn open(root: &Path) -> Result<Images, ImagesError> {
        let content = ContentStore::open(&root.join("content"))?;
        Ok(Images {
            content,
            index: root.join("refs.json"),
            writing: std::sync::Mutex::new(()),
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        self.index.parent().unwrap_or(Path::new("/"))
    }

    /// Every tagged image: canonical reference -> manifest digest.
    pub fn list(&self) -> Result<BTreeMap<String, Digest>, ImagesError> {
        let text = match fs::read(&self.index) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(ImagesError::ReadIndex {
                    path: self.index.clone(),
                    source,
                });
            }
        };
        let raw: BTreeMap<String, String> =
            serde_json::from_slice(&text).map_err(|source| ImagesError::CorruptIndex {
                path: self.index.clone(),
                source,
            })?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, v)| v.parse().ok().map(|d| (k, d)))
            .collect())
    }

    /// The manifest digest `reference` names.
    pub fn resolve(&self, reference: &Reference) -> Result<Digest, ImagesError> {
        if let Some(d) = &reference.digest {
            return Ok(d.clone());
        }
        self.list()?
            .remove(&reference.to_string())
            .ok_or_else(|| ImagesError::NotFound {
                reference: reference.familiar(),
            })
    }

    /// Point `reference` at `manifest`.
    pub fn tag(&self, reference: &Reference, manifest: &Digest) -> Result<(), ImagesError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.list()?;
        all.insert(reference.to_string(), manifest.clone());
        self.write_index(&all)
    }

    /// Remove the tag `reference`; returns the manifest digest it pointed at. The
    /// image's content stays until a prune finds it unreferenced.
    pub fn untag(&self, reference: &Reference) -> Result<Digest, ImagesError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.list()?;
        let digest = all
            .remove(&reference.to_string())
            .ok_or_else(|| ImagesError::NotFound {
                reference: reference.familiar(),
            })?;
        self.write_index(&all)?;
        Ok(digest)
    }

    fn write_index(&self, all: &BTreeMap<String, Digest>) -> Result<(), ImagesError> {
        let raw: BTreeMap<&String, String> = all.iter().map(|(k, v)| (k, v.to_string())).collect();
        let tmp = self.index.with_extension("json.tmp");
        let werr = |source| ImagesError::WriteIndex {
            path: self.index.clone(),
            source,
        };
        let mut f = fs::File::create(&tmp).map_err(werr)?;
        f.write_all(&serde_json::to_vec_pretty(&raw).unwrap_or_default())
            .map_err(werr)?;
        f.sync_all().map_err(werr)?;
        fs::rename(&tmp, &self.index).map_err(werr)
    }

    /// Import a root file system tarball (plain or gzip) as a one-layer image tagged
    /// `reference`; the same input always gives the same manifest digest.
    pub fn import(
        &self,
        reader: impl Read,
        reference: &Reference,
        cfg: &ImportConfig,
    ) -> Result<Digest, ImagesError> {
        let ierr = |source| ImagesError::Import {
            reference: reference.familiar(),
            source,
        };
        let mut input = BufReader::new(reader);
        let compressed = detect(input.fill_buf().map_err(ierr)?) == Compression::Gzip;
        let mut tar: Box<dyn Read> = if compressed {
            Box::new(flate2::read::MultiGzDecoder::new(input))
        } else {
            Box::new(input)
        };
        let adder = self.content.adder()?;
        let mut gz = flate2::write::GzEncoder::new(adder, flate2::Compression::default());
        let mut diff = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = tar.read(&mut buf).map_err(ierr)?;
            if n == 0 {
                break;
            }
            diff.update(&buf[..n]);
            gz.write_all(&buf[..n]).map_err(ierr)?;
        }
        let (layer, layer_size) = gz.finish().map_err(ierr)?.finish()?;
        let diff_id = Digest::from_hasher(diff);
        let arch = if cfg.architecture.is_empty() {
            "amd64"
        } else {
            &cfg.architecture
        };
        let mut env = cfg.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": cfg.cmd, "Env": env, "WorkingDir": cfg.working_dir.clone().unwrap_or_default()},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        });
        let config = serde_json::to_vec(&config).unwrap_or_default();
        let config_d = self.put(&config)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_d.to_string(), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer.to_string(), "size": layer_size}],
        });
        let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
        let manifest_d = self.put(&manifest)?;
        self.tag(reference, &manifest_d)?;
        Ok(manifest_d)
    }

    fn put(&self, bytes: &[u8]) -> Result<Digest, ImagesError> {
        let d = Digest::of(bytes);
        self.content
            .ingest(&d, Some(bytes.len() as u64), &mut &bytes[..])?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::image::manifest::{ImageConfig, ImageManifest};
    use crate::engine::image::unpack::unpack;

    #[test]
    fn import_tag_resolve_and_unpack() {
        let root = std::env::temp_dir().join(format!("orch-images-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let images = Images::open(&root).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("bin/hello").unwrap();
        h.set_size(3);
        h.set_mode(0o755);
        h.set_cksum();
        b.append(&h, &b"hi\n"[..]).unwrap();
        let rootfs = b.into_inner().unwrap();
        let r: Reference = "orch-test/base:1".parse().unwrap();
        let cfg = ImportConfig {
            cmd: vec!["/bin/hello".into()],
            ..ImportConfig::default()
        };
        let d = images.import(&rootfs[..], &r, &cfg).unwrap();
        assert_eq!(
            images.import(&rootfs[..], &r, &cfg).unwrap(),
            d,
            "import is reproducible"
        );
        assert_eq!(images.resolve(&r).unwrap(), d);
        assert_eq!(images.list().unwrap().len(), 1);
        assert!(matches!(
            images.resolve(&"orch-test/other".parse().unwrap()),
            Err(ImagesError::NotFound { .. })
        ));

        let mut bytes = Vec::new();
        images
            .content
            .open_verified(&d)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let m: ImageManifest = serde_json::from_slice(&bytes).unwrap();
        let mut cbytes = Vec::new();
        images
            .content
            .open_verified(&m.config.digest)
            .unwrap()
            .read_to_end(&mut cbytes)
            .unwrap();
        let c: ImageConfig = serde_json::from_slice(&cbytes).unwrap();
        assert_eq!(c.rootfs.diff_ids[0], Digest::of(&rootfs));
        assert_eq!(c.config.unwrap().cmd.unwrap(), ["/bin/hello"]);
        let snap = root.join("snap");
        fs::create_dir_all(&snap).unwrap();
        unpack(
            images.content.open_verified(&m.layers[0].digest).unwrap(),
            &snap,
        )
        .unwrap();
        assert_eq!(fs::read(snap.join("bin/hello")).unwrap(), b"hi\n");
        fs::remove_dir_all(&root).unwrap();
    }
}
