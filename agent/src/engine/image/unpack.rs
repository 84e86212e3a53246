//! Unpacking a layer (tar, tar+gzip or tar+zstd) into a snapshot directory.
//!
//! Every path is contained: names are taken relative to the snapshot (a leading `/` is
//! dropped, `..` cannot climb above it), symlinks met on the way to an entry are
//! resolved inside the snapshot (as the container will see them, never on the host),
//! an existing final symlink is replaced rather than followed, and hard links may only
//! point at files inside the snapshot. OCI whiteouts become overlayfs whiteouts: `.wh.x`
//! a 0/0 character device `x`, `.wh..wh..opq` the `trusted.overlay.opaque` xattr.
//! Modification times come from the layer (directories last, as their contents change them).

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed while resolving one entry's parent, at most.
const MAX_HOPS: usize = 40;

/// What went wrong unpacking a layer; names the entry.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("read layer: {0}")]
    Read(io::Error),
    #[error("layer entry {entry:?} escapes the layer root")]
    Escapes { entry: String },
    #[error("layer entry {entry:?}: {what}")]
    Invalid { entry: String, what: String },
    #[error("layer entry {entry:?}: {op}: {source}")]
    Io {
        entry: String,
        op: &'static str,
        source: io::Error,
    },
}

/// The compression of a layer blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Compression from the first bytes of a blob.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Counts of one unpack, and the digest of the uncompressed tar (the layer's diff id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
    pub diff_id: Option<super::digest::Digest>,
}

/// Hashes what is read through it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

/// Unpack the layer in `reader` into `dest` (which must exist).
pub fn unpack(reader: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let kind = detect(buffered.fill_buf().map_err(UnpackError::Read)?);
    match kind {
        Compression::None => unpack_tar(buffered, dest),
        Compression::Gzip => unpack_tar(flate2::read::MultiGzDecoder::new(buffered), dest),
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(buffered).map_err(|e| {
                UnpackError::Read(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            })?;
            unpack_tar(decoder, dest)
        }
    }
}

/// A tar entry's name as a path relative to the layer root; `None` for the root itself.
fn contained(raw: &[u8], entry: &str) -> Result<Option<PathBuf>, UnpackError> {
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return Err(UnpackError::Escapes {
                        entry: entry.to_owned(),
                    });
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// The host path of directory `rel` inside `root`, following symlinks inside the root
/// and creating missing directories.
/// The directory `rel` inside `root`, with symlinks resolved inside `root` (never
/// leaving it) and missing directories created: the one safe way to reach a path of
/// an untrusted tree from the host.
pub fn resolve_in_root(root: &Path, rel: &Path) -> Result<PathBuf, UnpackError> {
    resolve_dir(root, rel, &rel.display().to_string())
}

fn resolve_dir(root: &Path, rel: &Path, entry: &str) -> Result<PathBuf, UnpackError> {
    let mut resolved = PathBuf::new();
    let mut queue: VecDeque<OsString> =
        rel.components().map(|c| c.as_os_str().to_owned()).collect();
    let mut hops = 0;
    let ioerr = |op, source| UnpackError::Io {
        entry: entry.to_owned(),
        op,
        source,
    };
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if c == "." || c == "/" {
            continue;
        }
        let candidate = root.join(&resolved).join(&c);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(UnpackError::Invalid {
                        entry: entry.to_owned(),
                        what: "too many levels of symbolic links".into(),
                    });
                }
                let target = fs::read_link(&candidate).map_err(|e| ioerr("read link", e))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for (i, t) in target
                    .components()
                    .map(|c| c.as_os_str().to_owned())
                    .enumerate()
                {
                    queue.insert(i, t);
                }
            }
            Ok(m) if m.is_dir() => resolved.push(&c),
            Ok(_) => {
                return Err(UnpackError::Invalid {
                    entry: entry.to_owned(),
                    what: format!("{} is not a directory", resolved.join(&c).display()),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&candidate).map_err(|e| ioerr("create parent directory", e))?;
                resolved.push(&c);
            }
            Err(e) => return Err(ioerr("inspect parent directory", e)),
        }
    }
    Ok(root.join(resolved))
}

/// Remove whatever is at `path` (not following a symlink); keep a directory when
/// `keep_dir`.
fn clear(path: &Path, keep_dir: bool) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && keep_dir => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn mknod(path: &Path, kind: libc::mode_t, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: `p` is a valid NUL-terminated path; mknod does not retain it.
    let rc = unsafe {
        libc::mknod(
            p.as_ptr(),
            kind | (mode & 0o7777) as libc::mode_t,
            libc::makedev(major, minor),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_xattr(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let p = cstr(path)?;
    let n = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in xattr name"))?;
    // SAFETY: both strings are NUL-terminated and `value` is a valid buffer of its length.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Set the modification (and access) time of `path`, not following a symlink.
fn set_mtime(path: &Path, secs: u64) -> io::Result<()> {
    let p = cstr(path)?;
    let t = libc::timespec {
        tv_sec: libc::time_t::try_from(secs).unwrap_or(libc::time_t::MAX),
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `p` is NUL-terminated and `times` holds the two timespecs utimensat reads.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn unpack_tar(reader: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let hashing = Hashing {
        inner: reader,
        hasher: sha2::Sha256::default(),
    };
    let mut archive = tar::Archive::new(hashing);
    let mut stats = unpack_entries(&mut archive, dest)?;
    // The diff id covers the whole stream, padding after the end-of-archive blocks too.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(UnpackError::Read)?;
    stats.diff_id = Some(super::digest::Digest::from_hasher(rest.hasher));
    Ok(stats)
}

fn unpack_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    dest: &Path,
) -> Result<UnpackStats, UnpackError> {
    let mut stats = UnpackStats::default();
    // Directory mtimes are set last: creating their contents changes them.
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let ioerr = |op, source| UnpackError::Io {
            entry: name.clone(),
            op,
            source,
        };
        stats.entries += 1;
        let Some(rel) = contained(&raw, &name)? else {
            continue;
        };
        let file_name = rel.file_name().map(OsStr::to_owned).unwrap_or_default();
        let parent = resolve_dir(dest, rel.parent().unwrap_or(Path::new("")), &name)?;
        let target = parent.join(&file_name);
        let fname = file_name.as_bytes();
        if fname == b".wh..wh..opq" {
            set_xattr(&parent, b"trusted.overlay.opaque", b"y")
                .map_err(|e| ioerr("mark directory opaque", e))?;
            stats.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = fname.strip_prefix(b".wh.") {
            let path = parent.join(OsStr::from_bytes(hidden));
            clear(&path, false).map_err(|e| ioerr("remove before whiteout", e))?;
            mknod(&path, libc::S_IFCHR, 0, 0, 0).map_err(|e| ioerr("create whiteout", e))?;
            stats.whiteouts += 1;
            continue;
        }
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644);
        let kind = header.entry_type();
        match kind {
            tar::EntryType::Directory => {
                clear(&target, true).map_err(|e| ioerr("replace with directory", e))?;
                if !target.is_dir() {
                    fs::create_dir(&target).map_err(|e| ioerr("create directory", e))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                clear(&target, false).map_err(|e| ioerr("replace file", e))?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| ioerr("create file", e))?;
                stats.bytes +=
                    io::copy(&mut entry, &mut file).map_err(|e| ioerr("write file", e))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                clear(&target, false).map_err(|e| ioerr("replace with symlink", e))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), &target)
                    .map_err(|e| ioerr("create symlink", e))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let Some(link_rel) = contained(&link, &name)? else {
                    return Err(UnpackError::Invalid {
                        entry: name,
                        what: "hard link to the layer root".into(),
                    });
                };
                let link_parent =
                    resolve_dir(dest, link_rel.parent().unwrap_or(Path::new("")), &name)?;
                let source = link_parent.join(link_rel.file_name().unwrap_or_default());
                match fs::symlink_metadata(&source) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(UnpackError::Invalid {
                            entry: name,
                            what: format!(
                                "hard link target {:?} is not a file of this layer",
                                String::from_utf8_lossy(&link)
                            ),
                        });
                    }
                }
                clear(&target, false).map_err(|e| ioerr("replace with hard link", e))?;
                fs::hard_link(&source, &target).map_err(|e| ioerr("create hard link", e))?;
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                clear(&target, false).map_err(|e| ioerr("replace with device", e))?;
                let (t, major, minor) = match kind {
                    tar::EntryType::Char => {
                        (libc::S_IFCHR, header.device_major(), header.device_minor())
                    }
                    tar::EntryType::Block => {
                        (libc::S_IFBLK, header.device_major(), header.device_minor())
                    }
                    _ => (libc::S_IFIFO, Ok(Some(0)), Ok(Some(0))),
                };
                let major = major.ok().flatten().unwrap_or(0);
                let minor = minor.ok().flatten().unwrap_or(0);
                mknod(&target, t, mode, major, minor)
                    .map_err(|e| ioerr("create device node", e))?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            other => {
                return Err(UnpackError::Invalid {
                    entry: name,
                    what: format!("unsupported entry type {other:?}"),
                });
            }
        }
        let uid = header.uid().ok().and_then(|u| u32::try_from(u).ok());
        let gid = header.gid().ok().and_then(|g| u32::try_from(g).ok());
        std::os::unix::fs::lchown(&target, uid, gid).map_err(|e| ioerr("set owner", e))?;
        if kind != tar::EntryType::Symlink {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| ioerr("set mode", e))?;
        }
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                if let Some(attr) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    set_xattr(&target, attr, ext.value_bytes())
                        .map_err(|e| ioerr("set xattr", e))?;
                }
            }
        }
        let mtime = header.mtime().unwrap_or(0);
        if kind == tar::EntryType::Directory {
            dir_times.push((target, mtime));
        } else {
            set_mtime(&target, mtime).map_err(|e| ioerr("set mtime", e))?;
        }
    }
    for (dir, mtime) in dir_times.iter().rev() {
        set_mtime(dir, *mtime).map_err(|source| UnpackError::Io {
            entry: dir.display().to_string(),
            op: "set mtime",
            source,
        })?;
    }
    Ok(stats)
}
