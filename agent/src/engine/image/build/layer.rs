//! A new layer as data (entries by path) and its deterministic tar+gzip blob: entries
//! sorted by path (parents first), modes, owners and mtimes from the entries, no user
//! or group names, no clock, so the same entries always give the same digest.

use super::tree::Kind;
use crate::engine::image::digest::Digest;
use crate::engine::image::store::ContentStore;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One entry of a new layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `File`, `Dir` or `Symlink`.
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    /// Where a file's bytes are on the host.
    pub host: Option<PathBuf>,
}

/// The entries of a layer by path inside the image (relative, no leading `/`); the
/// `BTreeMap` order of paths puts every directory before its contents.
pub type Entries = BTreeMap<PathBuf, Entry>;

/// A layer written to the content store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLayer {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

/// A digest of what the entries contain: paths, kinds, modes, owners, link targets
/// and file contents (not mtimes: touching a file does not change it, as in Docker).
pub fn content_digest(entries: &Entries) -> io::Result<Digest> {
    let mut h = Sha256::new();
    for (path, e) in entries {
        h.update(path.as_os_str().as_bytes());
        h.update([0]);
        let (kind, extra): (&str, Vec<u8>) = match &e.kind {
            Kind::File => {
                let mut fh = Sha256::new();
                if let Some(host) = &e.host {
                    io::copy(&mut fs::File::open(host)?, &mut fh)?;
                }
                ("f", fh.finalize().to_vec())
            }
            Kind::Dir => ("d", Vec::new()),
            Kind::Symlink(t) => ("l", t.as_os_str().as_bytes().to_vec()),
            Kind::Other => ("o", Vec::new()),
        };
        h.update(format!("{kind} {:o} {} {}\0", e.mode, e.uid, e.gid).as_bytes());
        h.update(&extra);
        h.update([b'\n']);
    }
    Ok(Digest::from_hasher(h))
}

/// Writes to two places: the gzip stream and the diff id hasher.
pub struct Tee<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What went wrong writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{path}: {source}")]
    Entry { path: PathBuf, source: io::Error },
    #[error("finish the tar stream: {0}")]
    Finish(io::Error),
    #[error(transparent)]
    Store(#[from] crate::engine::image::store::StoreError),
}

/// Write `entries` as a gzip-compressed tar blob into `store`.
pub fn write(store: &ContentStore, entries: &Entries) -> Result<NewLayer, LayerError> {
    write_with(store, &mut |tar| {
        for (path, e) in entries {
            append(tar, path, e).map_err(|source| LayerError::Entry {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    })
}

/// The tar a layer is written through: its uncompressed bytes are hashed (the diff
/// id) on their way to gzip and the store.
pub type LayerTar = tar::Builder<Tee<flate2::write::GzEncoder<crate::engine::image::store::Adder>>>;

/// Write the layer whose tar `fill` produces as a gzip-compressed blob into `store`.
pub fn write_with(
    store: &ContentStore,
    fill: &mut dyn FnMut(&mut LayerTar) -> Result<(), LayerError>,
) -> Result<NewLayer, LayerError> {
    let adder = store.adder()?;
    let gz = flate2::write::GzEncoder::new(adder, flate2::Compression::default());
    let mut tar = tar::Builder::new(Tee {
        inner: gz,
        hasher: Sha256::new(),
    });
    tar.mode(tar::HeaderMode::Complete);
    fill(&mut tar)?;
    let tee = tar.into_inner().map_err(LayerError::Finish)?;
    let diff_id = Digest::from_hasher(tee.hasher);
    let adder = tee.inner.finish().map_err(LayerError::Finish)?;
    let (digest, size) = adder.finish()?;
    Ok(NewLayer {
        digest,
        size,
        diff_id,
    })
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &Path, e: &Entry) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(e.mode);
    h.set_uid(u64::from(e.uid));
    h.set_gid(u64::from(e.gid));
    h.set_mtime(e.mtime);
    match &e.kind {
        Kind::File => {
            let host = e.host.as_deref().unwrap_or(Path::new("/dev/null"));
            let file = fs::File::open(host)?;
            let len = file.metadata()?.len();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(len);
            tar.append_data(&mut h, path, io::Read::take(file, len))
        }
        Kind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, path, io::empty())
        }
        Kind::Symlink(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, path, target)
        }
        Kind::Other => Ok(()),
    }
}
