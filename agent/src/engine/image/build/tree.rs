//! File trees a build reads: the build context (a directory, filtered by
//! `.dockerignore`) and a stage's root file system.
//!
//! A stage's file system is read straight through its snapshot layers (top first),
//! the way overlayfs would merge them: an entry in a higher layer hides the same name
//! below, a 0/0 character device is a whiteout, a directory with
//! `trusted.overlay.opaque=y` hides the lower directories' contents. Reading the
//! layers instead of mounting an overlay needs no mount (and no unmount on every
//! error path), works without `CAP_SYS_ADMIN`, and leaves nothing behind when a build
//! dies. Paths are resolved by [`resolve`], which follows symlinks *inside* the tree's
//! root, so no lookup ever leaves the image or the context.

use super::ignore::Ignore;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed while resolving one path, at most (as Linux).
const MAX_HOPS: usize = 40;

/// The kind of a tree entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
    /// Devices, fifos, sockets: not copied.
    Other,
}

/// One entry of a tree, with where its bytes are on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub size: u64,
    pub host: PathBuf,
}

impl Node {
    fn from_meta(m: &fs::Metadata, host: &Path) -> io::Result<Node> {
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_symlink() {
            Kind::Symlink(fs::read_link(host)?)
        } else {
            Kind::Other
        };
        Ok(Node {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: u64::try_from(m.mtime()).unwrap_or(0),
            size: m.len(),
            host: host.to_owned(),
        })
    }
}

/// A tree of files addressed by clean relative paths.
pub trait Tree {
    /// The entry at `path` (whose parents are directories, not symlinks), not following
    /// a final symlink; `None` when there is none (or it is hidden).
    fn stat(&self, path: &Path) -> io::Result<Option<Node>>;
    /// The visible names in directory `path`, sorted.
    fn list(&self, path: &Path) -> io::Result<Vec<OsString>>;
}

/// Resolve `path` (absolute or relative, taken from the tree's root) following
/// symlinks inside the tree (the last one only when `follow_last`). Returns the
/// resolved path (relative; missing components appended as written) and the entry.
pub fn resolve(
    tree: &dyn Tree,
    path: &Path,
    follow_last: bool,
) -> io::Result<(PathBuf, Option<Node>)> {
    let mut queue: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    queue.reverse();
    let mut resolved = PathBuf::new();
    let mut node = None;
    let mut hops = 0;
    while let Some(c) = queue.pop() {
        if c == ".." {
            resolved.pop();
            node = None;
            continue;
        }
        let candidate = resolved.join(&c);
        let Some(n) = tree.stat(&candidate)? else {
            // Missing: the rest is taken as written.
            resolved.push(&c);
            while let Some(rest) = queue.pop() {
                if rest == ".." {
                    resolved.pop();
                } else {
                    resolved.push(rest);
                }
            }
            return Ok((resolved, None));
        };
        match &n.kind {
            Kind::Symlink(target) if follow_last || !queue.is_empty() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(io::Error::other(format!(
                        "{}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut parts: Vec<OsString> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(n) => Some(n.to_owned()),
                        Component::ParentDir => Some("..".into()),
                        _ => None,
                    })
                    .collect();
                parts.reverse();
                queue.extend(parts);
                node = if resolved.as_os_str().is_empty() {
                    tree.stat(Path::new(""))?
                } else {
                    tree.stat(&resolved)?
                };
            }
            Kind::Dir | Kind::Symlink(_) => {
                resolved.push(&c);
                node = Some(n);
            }
            _ if queue.is_empty() => {
                resolved.push(&c);
                node = Some(n);
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", candidate.display()),
                ));
            }
        }
    }
    if resolved.as_os_str().is_empty() {
        node = tree.stat(Path::new(""))?;
    }
    Ok((resolved, node))
}

/// A directory on the host (the build context, or an unpacked archive).
pub struct DirTree {
    pub root: PathBuf,
    pub ignore: Option<Ignore>,
}

impl DirTree {
    fn hidden(&self, path: &Path, is_dir: bool) -> bool {
        match &self.ignore {
            Some(ig) => ig.excludes(&path.to_string_lossy()) && !(is_dir && ig.has_exceptions()),
            None => false,
        }
    }
}

impl Tree for DirTree {
    fn stat(&self, path: &Path) -> io::Result<Option<Node>> {
        let host = self.root.join(path);
        match fs::symlink_metadata(&host) {
            Ok(m) if self.hidden(path, m.is_dir()) => Ok(None),
            Ok(m) => Node::from_meta(&m, &host).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join(path))? {
            let e = e?;
            let is_dir = e.file_type()?.is_dir();
            if !self.hidden(&path.join(e.file_name()), is_dir) {
                out.push(e.file_name());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A stage's root file system: its layer directories, top first.
pub struct ImageTree {
    pub layers: Vec<PathBuf>,
}

use crate::engine::image::snapshot::{is_opaque, is_whiteout};

impl ImageTree {
    /// The entry at `path` and, for a directory, the host directories that make it up
    /// (top first).
    fn lookup(&self, path: &Path) -> io::Result<Option<(Node, Vec<PathBuf>)>> {
        let mut stack: Vec<PathBuf> = self.layers.clone();
        let mut found: Option<Node> = None;
        if path.as_os_str().is_empty() {
            let top = match stack.first() {
                Some(t) => Node::from_meta(&fs::symlink_metadata(t)?, t)?,
                None => Node {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                    size: 0,
                    host: PathBuf::new(),
                },
            };
            return Ok(Some((top, stack)));
        }
        for c in path.components() {
            let Component::Normal(c) = c else { continue };
            if found.as_ref().is_some_and(|n| n.kind != Kind::Dir) {
                return Ok(None);
            }
            found = None;
            let mut next = Vec::new();
            for dir in &stack {
                let p = dir.join(c);
                let m = match fs::symlink_metadata(&p) {
                    Ok(m) => m,
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            || e.kind() == io::ErrorKind::NotADirectory =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if is_whiteout(&m) {
                    break;
                }
                if found.is_none() {
                    found = Some(Node::from_meta(&m, &p)?);
                }
                if !m.is_dir() || found.as_ref().is_some_and(|n| n.kind != Kind::Dir) {
                    break;
                }
                next.push(p.clone());
                if is_opaque(&p) {
                    break;
                }
            }
            if found.is_none() {
                return Ok(None);
            }
            stack = next;
        }
        Ok(found.map(|n| (n, stack)))
    }
}

impl Tree for ImageTree {
    fn stat(&self, path: &Path) -> io::Result<Option<Node>> {
        Ok(self.lookup(path)?.map(|(n, _)| n))
    }

    fn list(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let Some((node, dirs)) = self.lookup(path)? else {
            return Ok(Vec::new());
        };
        if node.kind != Kind::Dir {
            return Ok(Vec::new());
        }
        let mut seen = std::collections::BTreeMap::new();
        for d in dirs {
            for e in fs::read_dir(&d)? {
                let e = e?;
                if seen.contains_key(&e.file_name()) {
                    continue;
                }
                let visible = !is_whiteout(&e.metadata()?);
                seen.insert(e.file_name(), visible);
            }
        }
        Ok(seen
            .into_iter()
            .filter_map(|(n, v)| v.then_some(n))
            .collect())
    }
}

/// The text of the file at `path` of `tree` (empty when missing or unreadable:
/// for files like /etc/passwd that an image may lack).
pub fn read_text(tree: &dyn Tree, path: &str) -> String {
    read_file(tree, Path::new(path))
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Read the whole file at `path` of `tree` (symlinks followed inside the tree);
/// `None` when there is no such file.
pub fn read_file(tree: &dyn Tree, path: &Path) -> io::Result<Option<Vec<u8>>> {
    match resolve(tree, path, true) {
        Ok((_, Some(n))) if n.kind == Kind::File => fs::read(&n.host).map(Some),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(None),
        Err(e) => Err(e),
    }
}
