//! Snapshots: each layer unpacked once into `<root>/<chain id>/`, named by its OCI
//! chain id so images sharing a base share its directories; a container's root file
//! system is an overlay of an image's snapshots, returned as a mount spec (data) and
//! mounted by one function.

use super::digest::Digest;
use super::manifest::{Descriptor, ImageConfig, ImageManifest};
use super::store::{ContentStore, StoreError};
use super::unpack::{UnpackError, unpack};
use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What went wrong preparing snapshots.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unpack layer {layer}: {source}")]
    Unpack { layer: Digest, source: UnpackError },
    #[error(
        "layer {layer}: its uncompressed content hashes to {actual}, the image config says {expected}"
    )]
    DiffId {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("image {manifest}: {why}")]
    Image { manifest: Digest, why: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Whether `m` is an overlayfs whiteout (a 0/0 character device).
pub fn is_whiteout(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Whether the directory `dir` is overlayfs-opaque (`trusted.overlay.opaque=y`).
pub fn is_opaque(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(p) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: `p` and the attribute name are NUL-terminated; `buf` is valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

/// The OCI chain ids of a stack of diff ids (bottom first).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// An overlay mount, as data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSpec {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Unpacked layers.
pub struct Snapshots {
    root: PathBuf,
    seq: AtomicU64,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + use<> {
    let path = path.to_owned();
    move |source| SnapshotError::Io { op, path, source }
}

fn read_json<T: serde::de::DeserializeOwned>(
    store: &ContentStore,
    d: &Digest,
    manifest: &Digest,
) -> Result<T, SnapshotError> {
    let mut bytes = Vec::new();
    store
        .open_verified(d)?
        .read_to_end(&mut bytes)
        .map_err(|source| StoreError::Read {
            digest: d.clone(),
            source,
        })?;
    serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Image {
        manifest: manifest.clone(),
        why: format!("{d} is not valid JSON: {e}"),
    })
}

impl Snapshots {
    /// Open (creating) the snapshot directory; leftovers of interrupted unpacks go.
    pub fn open(root: &Path) -> Result<Snapshots, SnapshotError> {
        fs::create_dir_all(root).map_err(io_err("create", root))?;
        for e in fs::read_dir(root).map_err(io_err("list", root))?.flatten() {
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                let _ = remove_tree(&e.path());
            }
        }
        Ok(Snapshots {
            root: root.to_owned(),
            seq: AtomicU64::new(0),
        })
    }

    /// Unpack every layer of the image `manifest` that is not unpacked yet, checking
    /// each against its diff id; returns the layer directories, top layer first (the
    /// order of overlayfs' `lowerdir`).
    pub fn prepare(
        &self,
        store: &ContentStore,
        manifest: &Digest,
    ) -> Result<Vec<PathBuf>, SnapshotError> {
        let m: ImageManifest = read_json(store, manifest, manifest)?;
        let config: ImageConfig = read_json(store, &m.config.digest, manifest)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != m.layers.len() {
            return Err(SnapshotError::Image {
                manifest: manifest.clone(),
                why: format!(
                    "{} layers but {} diff ids in the config",
                    m.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        self.prepare_layers(store, &m.layers, diff_ids)
    }

    /// Unpack the layers `layers` (bottom first, with their diff ids) that are not
    /// unpacked yet; returns the layer directories, top layer first. For images that
    /// exist only in memory so far (a build in progress).
    pub fn prepare_layers(
        &self,
        store: &ContentStore,
        layers: &[Descriptor],
        diff_ids: &[Digest],
    ) -> Result<Vec<PathBuf>, SnapshotError> {
        let chains = chain_ids(diff_ids);
        let mut dirs = Vec::new();
        for ((layer, expected), chain) in layers.iter().zip(diff_ids).zip(&chains) {
            let dir = self.root.join(chain.hex());
            if !dir.is_dir() {
                let n = self.seq.fetch_add(1, Ordering::Relaxed);
                let tmp = self.root.join(format!("tmp-{}-{n}", std::process::id()));
                fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
                let result = (|| {
                    let stats =
                        unpack(store.open_verified(&layer.digest)?, &tmp).map_err(|source| {
                            SnapshotError::Unpack {
                                layer: layer.digest.clone(),
                                source,
                            }
                        })?;
                    let actual = stats.diff_id.unwrap_or_else(|| Digest::of(b""));
                    if &actual != expected {
                        return Err(SnapshotError::DiffId {
                            layer: layer.digest.clone(),
                            expected: expected.clone(),
                            actual,
                        });
                    }
                    fs::rename(&tmp, &dir).map_err(io_err("commit snapshot", &dir))
                })();
                if let Err(e) = result {
                    let _ = fs::remove_dir_all(&tmp);
                    if !dir.is_dir() {
                        return Err(e);
                    }
                }
            }
            dirs.push(dir);
        }
        dirs.reverse();
        Ok(dirs)
    }

    /// The chain ids of every snapshot present.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out: Vec<Digest> = fs::read_dir(&self.root)
            .map_err(io_err("list", &self.root))?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| format!("sha256:{}", e.file_name().to_str()?).parse().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Remove the snapshot `chain` (absent is fine). It is first renamed out of the
    /// way, so it disappears at once and a crash leaves only a `tmp-` leftover that
    /// [`Snapshots::open`] removes.
    pub fn remove(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let dir = self.root.join(chain.hex());
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.root.join(format!("tmp-rm-{}-{n}", std::process::id()));
        match fs::rename(&dir, &tmp) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            r => r.map_err(io_err("remove snapshot", &dir))?,
        }
        remove_tree(&tmp).map_err(io_err("remove snapshot", &dir))
    }

    /// The overlay of `lowers` (top first) with a writable `upper` and its `work` dir.
    pub fn overlay(lowers: &[PathBuf], upper: &Path, work: &Path) -> MountSpec {
        let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        MountSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}", lower.join(":")),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
            ],
        }
    }
}

/// Remove a directory tree as unpack left it: whiteouts (0/0 character devices) are
/// unlinked like files, directories without write or search permission are opened up
/// first (needed when not root), symlinks are removed, never followed.
fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    if meta.permissions().mode() & 0o700 != 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    for entry in fs::read_dir(path)? {
        remove_tree(&entry?.path())?;
    }
    fs::remove_dir(path)
}

/// Mount `spec` at `target`.
pub fn mount(spec: &MountSpec, target: &Path) -> Result<(), SnapshotError> {
    let cs = |s: &str| {
        CString::new(s).map_err(|_| SnapshotError::Io {
            op: "mount",
            path: target.to_owned(),
            source: io::Error::other("NUL in mount argument"),
        })
    };
    let (source, fstype, data) = (
        cs(&spec.source)?,
        cs(&spec.fstype)?,
        cs(&spec.options.join(","))?,
    );
    let t = cs(&target.display().to_string())?;
    // SAFETY: all arguments are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            t.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(SnapshotError::Io {
            op: "mount overlay at",
            path: target.to_owned(),
            source: io::Error::last_os_error(),
        })
    }
}
