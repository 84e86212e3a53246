//! Named volumes: directories under `<data>/volumes/<name>/_data` that outlive
//! containers. A volume mounted for the first time while empty gets the image's
//! content at the mount point copied in (owners, modes, links), as Docker does.

use crate::engine::image::build::tree::{Kind, Tree, resolve};
use crate::engine::runtime::container::{read_json, rfc3339_nanos, write_json};
use api::volume::Volume;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What went wrong with a volume.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume name {0:?}: use letters, digits, _ . - (starting with a letter or digit)")]
    Name(String),
    #[error("no volume {0}")]
    NotFound(String),
    #[error(
        "volume {name} is in use by container {container}; remove the container first, or force"
    )]
    InUse { name: String, container: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VolumeError + use<> {
    let path = path.to_owned();
    move |source| VolumeError::Io { op, path, source }
}

/// `meta.json` of a volume.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Meta {
    created: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Whether `name` can name a volume.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The volumes of one engine.
pub struct Volumes {
    root: PathBuf,
}

impl Volumes {
    /// The volumes under `root`.
    pub fn open(root: &Path) -> Result<Volumes, VolumeError> {
        fs::create_dir_all(root).map_err(io_err("create", root))?;
        Ok(Volumes {
            root: root.to_owned(),
        })
    }

    fn dir(&self, name: &str) -> Result<PathBuf, VolumeError> {
        if !valid_name(name) {
            return Err(VolumeError::Name(name.to_owned()));
        }
        Ok(self.root.join(name))
    }

    /// Create volume `name` (an existing one is returned as it is).
    pub fn create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        let dir = self.dir(name)?;
        if !dir.join("meta.json").exists() {
            let data = dir.join("_data");
            fs::create_dir_all(&data).map_err(io_err("create", &data))?;
            let meta = Meta {
                created: rfc3339_nanos(SystemTime::now()),
                labels: labels.clone(),
            };
            write_json(&dir.join("meta.json"), &meta).map_err(|e| VolumeError::Io {
                op: "write",
                path: dir.join("meta.json"),
                source: io::Error::other(e.to_string()),
            })?;
        }
        self.get(name, Vec::new())
    }

    /// Volume `name`; `used_by` as the caller knows it.
    pub fn get(&self, name: &str, used_by: Vec<String>) -> Result<Volume, VolumeError> {
        let dir = self.dir(name)?;
        let meta: Meta = read_json(&dir.join("meta.json"))
            .map_err(|_| VolumeError::NotFound(name.to_owned()))?;
        Ok(Volume {
            name: name.to_owned(),
            mountpoint: dir.join("_data").display().to_string(),
            created: meta.created,
            labels: meta.labels,
            used_by,
        })
    }

    /// Every volume's name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("meta.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        out.sort();
        out
    }

    /// Remove volume `name` and its files.
    pub fn remove(&self, name: &str) -> Result<u64, VolumeError> {
        let dir = self.dir(name)?;
        if !dir.join("meta.json").exists() {
            return Err(VolumeError::NotFound(name.to_owned()));
        }
        let bytes = du(&dir.join("_data"));
        // The metadata goes first: a crash midway leaves no half volume.
        fs::remove_file(dir.join("meta.json")).map_err(io_err("remove", &dir))?;
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        Ok(bytes)
    }

    /// The host directory of volume `name` for a container that mounts it at
    /// `target`: created when missing, and filled from `image` at `target` when the
    /// volume is empty.
    pub fn mount_source(
        &self,
        name: &str,
        image: &dyn Tree,
        target: &Path,
    ) -> Result<PathBuf, VolumeError> {
        let data = PathBuf::from(self.create(name, &BTreeMap::new())?.mountpoint);
        let empty = fs::read_dir(&data)
            .map_err(io_err("list", &data))?
            .next()
            .is_none();
        if empty
            && let Ok((at, Some(node))) = resolve(image, target, true)
            && node.kind == Kind::Dir
        {
            copy_tree(image, &at, &data)?;
            let _ = lchown(&data, Some(node.uid), Some(node.gid));
            let _ = fs::set_permissions(&data, fs::Permissions::from_mode(node.mode));
        }
        Ok(data)
    }
}

/// Bytes of the files under `dir`.
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Copy the directory `from` of `tree` into `to` with owners and modes.
fn copy_tree(tree: &dyn Tree, from: &Path, to: &Path) -> Result<(), VolumeError> {
    let list = tree.list(from).map_err(io_err("list", from))?;
    for name in list {
        let src = from.join(&name);
        let dst = to.join(&name);
        let Some(node) = tree.stat(&src).map_err(io_err("read", &src))? else {
            continue;
        };
        match &node.kind {
            Kind::Dir => {
                fs::create_dir(&dst).map_err(io_err("create", &dst))?;
                copy_tree(tree, &src, &dst)?;
            }
            Kind::File => {
                fs::copy(&node.host, &dst).map_err(io_err("copy", &dst))?;
            }
            Kind::Symlink(target) => symlink(target, &dst).map_err(io_err("link", &dst))?,
            Kind::Other => continue,
        }
        lchown(&dst, Some(node.uid), Some(node.gid)).map_err(io_err("chown", &dst))?;
        if !matches!(node.kind, Kind::Symlink(_)) {
            fs::set_permissions(&dst, fs::Permissions::from_mode(node.mode))
                .map_err(io_err("chmod", &dst))?;
        }
    }
    Ok(())
}
