//! COPY and ADD as the entries of a new layer, following Docker's rules: sources are
//! taken from the context (or another stage / image) with wildcards; a directory source
//! copies its contents; a destination ending in `/`, an existing directory, or several
//! sources mean "into this directory"; relative destinations are under WORKDIR; the
//! destination's symlinks are resolved inside the image. New directories get mode
//! 0755 and the `--chown` owner (0:0 without); existing parents keep their metadata in
//! the layer so the merged view does not change them. ADD extracts local tar archives
//! (plain, gzip, zstd) into the destination, keeping the archive's owners.

use super::ignore::Glob;
use super::layer::{Entries, Entry};
use super::tree::{DirTree, Kind, Node, Tree, resolve};
use crate::engine::image::unpack::{Compression, UnpackError, detect, unpack};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// What a COPY or ADD copies, after substitution.
pub struct CopySpec<'a> {
    pub sources: &'a [String],
    pub dest: &'a str,
    /// The stage's WORKDIR, absolute.
    pub workdir: &'a str,
    /// `--chown`, resolved.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// ADD: extract local archives.
    pub extract: bool,
    /// An empty directory for extracted archives, alive until the layer is written.
    pub scratch: &'a Path,
}

/// Why a COPY or ADD cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{source_path}: not found in {place}")]
    NotFound { source_path: String, place: String },
    #[error("{pattern}: no file in {place} matches")]
    NoMatch { pattern: String, place: String },
    #[error(
        "copying more than one source needs a destination directory ending with '/', not {dest}"
    )]
    NeedsDir { dest: String },
    #[error("destination {dest} is not a directory")]
    NotADir { dest: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("extract archive {path}: {source}")]
    Extract { path: PathBuf, source: UnpackError },
}

fn ioe(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CopyError + use<> {
    let path = path.to_owned();
    move |source| CopyError::Io { op, path, source }
}

/// `path` without root, `.` and with `..` applied lexically (never above the root).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The paths in `tree` matching `pattern` component by component, sorted.
fn glob(tree: &dyn Tree, pattern: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = vec![PathBuf::new()];
    for c in pattern.components() {
        let Component::Normal(c) = c else { continue };
        let text = c.to_string_lossy();
        let mut next = Vec::new();
        for base in &found {
            if !has_glob(&text) {
                let p = base.join(c);
                if tree.stat(&p)?.is_some() {
                    next.push(p);
                }
                continue;
            }
            let Ok(g) = Glob::new(&text) else { continue };
            let (dir, node) = resolve(tree, base, true)?;
            if node.is_none_or(|n| n.kind != Kind::Dir) && !base.as_os_str().is_empty() {
                continue;
            }
            for name in tree.list(&dir)? {
                if g.matches(&name.to_string_lossy()) {
                    next.push(base.join(name));
                }
            }
        }
        found = next;
    }
    found.retain(|p| !p.as_os_str().is_empty());
    found.sort();
    Ok(found)
}

/// Whether the file at `host` is a tar archive (plain, gzip or zstd compressed).
fn is_archive(host: &Path) -> io::Result<bool> {
    let mut head = Vec::new();
    fs::File::open(host)?.take(4).read_to_end(&mut head)?;
    let file = fs::File::open(host)?;
    let mut block = Vec::new();
    match detect(&head) {
        Compression::None => file.take(512).read_to_end(&mut block)?,
        Compression::Gzip => flate2::read::GzDecoder::new(file)
            .take(512)
            .read_to_end(&mut block)
            .unwrap_or(0),
        Compression::Zstd => match ruzstd::decoding::StreamingDecoder::new(file) {
            Ok(d) => d.take(512).read_to_end(&mut block).unwrap_or(0),
            Err(_) => 0,
        },
    };
    Ok(block.len() == 512 && &block[257..262] == b"ustar")
}

/// The entries of the new layer for `spec`, reading sources from `src` (named `place`
/// in errors) and the destination from `dst`.
pub fn plan(
    src: &dyn Tree,
    place: &str,
    dst: &dyn Tree,
    spec: &CopySpec,
) -> Result<Entries, CopyError> {
    let dest_text = if spec.dest.starts_with('/') {
        spec.dest.to_owned()
    } else {
        format!("{}/{}", spec.workdir.trim_end_matches('/'), spec.dest)
    };
    let dir_syntax = dest_text.ends_with('/')
        || dest_text.ends_with("/.")
        || dest_text.ends_with("/..")
        || spec.dest == "."
        || spec.dest == "..";
    let mut matched: Vec<(PathBuf, Node)> = Vec::new();
    for s in spec.sources {
        let rel = clean(Path::new(s));
        let paths = if has_glob(s) {
            let found = glob(src, &rel).map_err(ioe("match", &rel))?;
            if found.is_empty() {
                return Err(CopyError::NoMatch {
                    pattern: s.clone(),
                    place: place.to_owned(),
                });
            }
            found
        } else {
            vec![rel]
        };
        for p in paths {
            let not_found = || CopyError::NotFound {
                source_path: s.clone(),
                place: place.to_owned(),
            };
            let node = match resolve(src, &p, true) {
                Ok((_, Some(n))) => n,
                Ok((_, None)) => return Err(not_found()),
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Err(not_found()),
                Err(e) => return Err(ioe("resolve", &p)(e)),
            };
            matched.push((p, node));
        }
    }
    let (dest, dest_node) =
        resolve(dst, Path::new(&dest_text), true).map_err(ioe("resolve", Path::new(&dest_text)))?;
    let dest_is_dir_now = dest_node.as_ref().is_some_and(|n| n.kind == Kind::Dir);
    if matched.len() > 1 && !dir_syntax && !dest_is_dir_now {
        return Err(CopyError::NeedsDir { dest: dest_text });
    }
    let into_dir = dir_syntax || dest_is_dir_now || matched.len() > 1;
    let mut c = Copier {
        dst,
        spec,
        entries: Entries::new(),
        ensure: Vec::new(),
    };
    if into_dir || matched.iter().any(|(_, n)| n.kind == Kind::Dir) {
        c.ensure.push(dest.clone());
    }
    for (i, (path, node)) in matched.iter().enumerate() {
        if node.kind == Kind::Dir {
            if dest_node.as_ref().is_some_and(|n| n.kind != Kind::Dir) {
                return Err(CopyError::NotADir { dest: dest_text });
            }
            let (resolved, _) = resolve(src, path, true).map_err(ioe("resolve", path))?;
            c.dir_contents(src, &resolved, &dest, false)?;
        } else if spec.extract
            && node.kind == Kind::File
            && is_archive(&node.host).map_err(ioe("read", &node.host))?
        {
            let tmp = spec.scratch.join(format!("archive-{i}"));
            fs::create_dir_all(&tmp).map_err(ioe("create", &tmp))?;
            let file = fs::File::open(&node.host).map_err(ioe("open", &node.host))?;
            unpack(file, &tmp).map_err(|source| CopyError::Extract {
                path: path.clone(),
                source,
            })?;
            let tree = DirTree {
                root: tmp,
                ignore: None,
            };
            c.dir_contents(&tree, Path::new(""), &dest, true)?;
        } else {
            let target = if into_dir {
                if dest_node.as_ref().is_some_and(|n| n.kind != Kind::Dir) {
                    return Err(CopyError::NotADir { dest: dest_text });
                }
                dest.join(path.file_name().unwrap_or(OsStr::new("")))
            } else {
                dest.clone()
            };
            c.add(&target, node, false);
        }
    }
    c.parents()?;
    Ok(c.entries)
}

/// The entries that create directory `dir` (relative, symlinks resolved) and its
/// missing parents in `dst` (WORKDIR): 0755, root-owned.
pub fn mkdir(dst: &dyn Tree, dir: &Path, scratch: &Path) -> Result<Entries, CopyError> {
    let spec = CopySpec {
        sources: &[],
        dest: "/",
        workdir: "/",
        owner: None,
        chmod: None,
        extract: false,
        scratch,
    };
    let mut c = Copier {
        dst,
        spec: &spec,
        entries: Entries::new(),
        ensure: vec![dir.to_owned()],
    };
    c.parents()?;
    Ok(c.entries)
}

struct Copier<'a> {
    dst: &'a dyn Tree,
    spec: &'a CopySpec<'a>,
    entries: Entries,
    /// Directories that must exist even with nothing copied into them.
    ensure: Vec<PathBuf>,
}

impl Copier<'_> {
    fn add(&mut self, target: &Path, n: &Node, preserve_owner: bool) {
        if n.kind == Kind::Other || target.as_os_str().is_empty() {
            return;
        }
        let (uid, gid) = match self.spec.owner {
            Some(o) => o,
            None if preserve_owner => (n.uid, n.gid),
            None => (0, 0),
        };
        let mode = match (&n.kind, self.spec.chmod) {
            (Kind::Symlink(_), _) => 0o777,
            (_, Some(m)) => m,
            (_, None) => n.mode,
        };
        self.entries.insert(
            target.to_owned(),
            Entry {
                kind: n.kind.clone(),
                mode,
                uid,
                gid,
                mtime: n.mtime,
                host: (n.kind == Kind::File).then(|| n.host.clone()),
            },
        );
    }

    /// Copy what is inside directory `from` of `tree` into `to` (resolved in the image).
    fn dir_contents(
        &mut self,
        tree: &dyn Tree,
        from: &Path,
        to: &Path,
        preserve_owner: bool,
    ) -> Result<(), CopyError> {
        for name in tree.list(from).map_err(ioe("list", from))? {
            let path = from.join(&name);
            let Some(node) = tree.stat(&path).map_err(ioe("read", &path))? else {
                continue;
            };
            let mut target = to.join(&name);
            if node.kind == Kind::Dir {
                // Into an existing directory of the image, through its symlinks.
                if let Ok((r, Some(n))) = resolve(self.dst, &target, true)
                    && n.kind == Kind::Dir
                {
                    target = r;
                }
                self.add(&target, &node, preserve_owner);
                self.dir_contents(tree, &path, &target, preserve_owner)?;
            } else {
                self.add(&target, &node, preserve_owner);
            }
        }
        Ok(())
    }

    /// Entries for every parent directory: existing ones with their metadata, new ones
    /// 0755 owned by the `--chown` owner (or root).
    fn parents(&mut self) -> Result<(), CopyError> {
        let mut missing: Vec<PathBuf> = self
            .ensure
            .iter()
            .filter(|d| !d.as_os_str().is_empty() && !self.entries.contains_key(*d))
            .cloned()
            .collect();
        for path in self.entries.keys().chain(&self.ensure) {
            let mut p = path.parent();
            while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty()) {
                if !self.entries.contains_key(dir) && !missing.iter().any(|m: &PathBuf| m == dir) {
                    missing.push(dir.to_owned());
                }
                p = dir.parent();
            }
        }
        for dir in missing {
            let existing = self.dst.stat(&dir).map_err(ioe("read", &dir))?;
            let entry = match existing {
                Some(n) if n.kind == Kind::Dir => Entry {
                    kind: Kind::Dir,
                    mode: n.mode,
                    uid: n.uid,
                    gid: n.gid,
                    mtime: n.mtime,
                    host: None,
                },
                _ => {
                    let (uid, gid) = self.spec.owner.unwrap_or((0, 0));
                    Entry {
                        kind: Kind::Dir,
                        mode: 0o755,
                        uid,
                        gid,
                        mtime: 0,
                        host: None,
                    }
                }
            };
            self.entries.insert(dir, entry);
        }
        Ok(())
    }
}
