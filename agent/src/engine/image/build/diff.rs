//! The layer a RUN step made: the overlay's upper directory, turned into an OCI layer.
//! Overlay whiteouts (0/0 character devices) become `.wh.NAME` entries and opaque
//! directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry; hard links
//! inside the layer stay hard links; entries are sorted so the tar is stable.

use super::layer::{LayerError, LayerTar};
use crate::engine::image::snapshot::{is_opaque, is_whiteout};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

fn header(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

/// An empty marker file (a whiteout) at `name`.
fn marker(tar: &mut LayerTar, name: &Path) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o600);
    h.set_size(0);
    tar.append_data(&mut h, name, io::empty())
}

/// Append everything under `upper` to `tar`.
pub fn append_upper(tar: &mut LayerTar, upper: &Path) -> Result<(), LayerError> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = upper.join(&rel);
        let fail = |source: io::Error| LayerError::Entry {
            path: rel.clone(),
            source,
        };
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(fail)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let path = rel.join(&name);
            let host = upper.join(&path);
            let fail = |source: io::Error| LayerError::Entry {
                path: path.clone(),
                source,
            };
            let meta = fs::symlink_metadata(&host).map_err(fail)?;
            let ft = meta.file_type();
            if is_whiteout(&meta) {
                let mut wh = std::ffi::OsString::from(".wh.");
                wh.push(&name);
                marker(tar, &rel.join(wh)).map_err(fail)?;
                continue;
            }
            if ft.is_dir() {
                let mut h = header(&meta, tar::EntryType::Directory);
                tar.append_data(&mut h, &path, io::empty()).map_err(fail)?;
                if is_opaque(&host) {
                    marker(tar, &path.join(".wh..wh..opq")).map_err(fail)?;
                }
                subdirs.push(path);
            } else if ft.is_symlink() {
                let target = fs::read_link(&host).map_err(fail)?;
                let mut h = header(&meta, tar::EntryType::Symlink);
                tar.append_link(&mut h, &path, &target).map_err(fail)?;
            } else if ft.is_file() {
                let key = (meta.dev(), meta.ino());
                if meta.nlink() > 1 {
                    if let Some(first) = links.get(&key) {
                        let mut h = header(&meta, tar::EntryType::Link);
                        tar.append_link(&mut h, &path, first).map_err(fail)?;
                        continue;
                    }
                    links.insert(key, path.clone());
                }
                let mut h = header(&meta, tar::EntryType::Regular);
                h.set_size(meta.len());
                let f = fs::File::open(&host).map_err(fail)?;
                tar.append_data(&mut h, &path, io::Read::take(f, meta.len()))
                    .map_err(fail)?;
            } else {
                let kind = if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else {
                    // Sockets are not kept in layers.
                    continue;
                };
                let mut h = header(&meta, kind);
                let rdev = meta.rdev();
                h.set_device_major(libc::major(rdev)).map_err(fail)?;
                h.set_device_minor(libc::minor(rdev)).map_err(fail)?;
                tar.append_data(&mut h, &path, io::empty()).map_err(fail)?;
            }
        }
        // Depth-first in name order: push reversed so the first name comes out first.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}
