//! Reading an archive's tar into staged files.
//!
//! Root metadata (`manifest.json`, `index.json`, `oci-layout`, `repositories`) is kept
//! in memory. A file named `blobs/sha256/<hex>` is verified against its name and
//! committed as it streams by (skipped when the store has it, but still checked).
//! Any other file's digest is only known at its end: small ones are kept in memory,
//! large ones written uncommitted to the store's ingest area; the format's reader
//! commits the ones its images need and the rest are dropped with their temp files.

use super::{ArchiveError, JSON_LIMIT, clean, join};
use crate::engine::image::digest::Digest;
use crate::engine::image::store::{Adder, ContentStore, StoreError};
use crate::engine::image::unpack::{Compression, detect};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};

pub(super) const MANIFEST_JSON: &str = "manifest.json";
pub(super) const INDEX_JSON: &str = "index.json";
pub(super) const OCI_LAYOUT: &str = "oci-layout";
const METADATA: [&str; 4] = [MANIFEST_JSON, INDEX_JSON, OCI_LAYOUT, "repositories"];

/// Files up to this size are kept in memory whatever they hold.
const SMALL: u64 = 64 << 10;
/// Staged files kept in memory, in all; beyond it they go to the ingest area.
const MEMORY_BUDGET: u64 = 64 << 20;
/// Links followed to reach a file, at most.
const MAX_HOPS: usize = 16;

/// A file of the archive, read.
pub(super) struct Staged {
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
    pub content: Content,
}

/// Where a staged file's bytes are.
pub(super) enum Content {
    /// In the content store, under its digest.
    Stored,
    /// In memory (small files, JSON documents).
    Memory(Vec<u8>),
    /// Written to the store's ingest area, not committed.
    Pending(Adder),
}

/// A path of the archive.
pub(super) enum Item {
    File(Staged),
    /// A symbolic or hard link, as the archive path it leads to.
    Link(String),
}

/// What an archive held.
pub(super) struct Contents {
    pub meta: BTreeMap<String, Vec<u8>>,
    pub items: BTreeMap<String, Item>,
}

impl Contents {
    /// The path `path` finally leads to (links followed) and its file.
    pub fn resolve(&mut self, path: &str) -> Result<Option<(String, &mut Staged)>, ArchiveError> {
        let mut at = path.to_owned();
        for _ in 0..MAX_HOPS {
            match self.items.get(&at) {
                None => return Ok(None),
                Some(Item::Link(to)) => at = to.clone(),
                Some(Item::File(_)) => {
                    return Ok(match self.items.get_mut(&at) {
                        Some(Item::File(f)) => Some((at, f)),
                        _ => None,
                    });
                }
            }
        }
        Err(ArchiveError::BrokenLink {
            entry: path.to_owned(),
        })
    }

    /// Commit a staged file to the store (a no-op when it is there already).
    pub fn commit(&mut self, path: &str, store: &ContentStore) -> Result<(), ArchiveError> {
        let Some((_, f)) = self.resolve(path)? else {
            return Ok(());
        };
        match std::mem::replace(&mut f.content, Content::Stored) {
            Content::Stored => {}
            Content::Memory(bytes) => {
                store.ingest(&f.digest, Some(f.size), &mut &bytes[..])?;
            }
            Content::Pending(adder) => {
                adder.finish()?;
            }
        }
        Ok(())
    }
}

/// Read every entry of the tar in `input` (plain, gzip or zstd).
pub(super) fn read(store: &ContentStore, input: impl Read) -> Result<Contents, ArchiveError> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let tar: Box<dyn Read> = match detect(input.fill_buf().map_err(ArchiveError::Read)?) {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => {
            Box::new(ruzstd::decoding::StreamingDecoder::new(input).map_err(|e| {
                ArchiveError::Read(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            })?)
        }
    };
    let mut archive = tar::Archive::new(tar);
    let mut out = Contents {
        meta: BTreeMap::new(),
        items: BTreeMap::new(),
    };
    let mut budget = MEMORY_BUDGET;
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = clean(&raw)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        let item = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if METADATA.contains(&path.as_str()) {
                    let bytes = read_small(&mut entry, &path, JSON_LIMIT)?;
                    out.meta.insert(path, bytes);
                    continue;
                }
                Item::File(stage(store, &mut entry, &path, &mut budget)?)
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let dir: Vec<&str> = path.split('/').collect();
                let base = if kind == tar::EntryType::Symlink {
                    &dir[..dir.len() - 1]
                } else {
                    &[][..]
                };
                match join(base, &target, kind == tar::EntryType::Symlink)? {
                    Some(to) => Item::Link(to),
                    None => continue,
                }
            }
            _ => continue,
        };
        out.items.insert(path, item);
    }
    Ok(out)
}

fn read_small(entry: &mut impl Read, path: &str, limit: u64) -> Result<Vec<u8>, ArchiveError> {
    let mut bytes = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ArchiveError::ReadEntry {
            entry: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(ArchiveError::TooLarge {
            entry: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// The digest a path names: `blobs/sha256/<hex>`.
pub(super) fn named(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    format!("sha256:{hex}").parse().ok()
}

fn stage(
    store: &ContentStore,
    entry: &mut tar::Entry<'_, impl Read>,
    path: &str,
    budget: &mut u64,
) -> Result<Staged, ArchiveError> {
    let size = entry.header().size().unwrap_or(0);
    let rerr = |source| ArchiveError::ReadEntry {
        entry: path.to_owned(),
        source,
    };
    let mut r = BufReader::with_capacity(256 * 1024, entry);
    let head = r.fill_buf().map_err(rerr)?;
    let compression = detect(head);
    let json = matches!(
        head.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    );
    if let Some(expected) = named(path) {
        let actual = match store.begin(&expected, None)? {
            Some(mut ingest) => {
                copy(
                    &mut r,
                    |b| ingest.write(b).map_err(ArchiveError::from),
                    path,
                )?;
                match ingest.commit() {
                    Ok(_) => expected.clone(),
                    Err(StoreError::DigestMismatch { actual, .. }) => actual,
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                // Already stored: the archive's copy is still checked.
                let mut h = Sha256::new();
                copy(
                    &mut r,
                    |b| {
                        h.update(b);
                        Ok(())
                    },
                    path,
                )?;
                Digest::from_hasher(h)
            }
        };
        if actual != expected {
            return Err(ArchiveError::BlobMismatch {
                entry: path.to_owned(),
                expected,
                actual,
            });
        }
        return Ok(Staged {
            digest: expected,
            size,
            compression,
            content: Content::Stored,
        });
    }
    if size <= *budget && (size <= SMALL || (json && size <= JSON_LIMIT)) {
        let bytes = read_small(&mut r, path, size)?;
        *budget -= bytes.len() as u64;
        return Ok(Staged {
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            compression,
            content: Content::Memory(bytes),
        });
    }
    let mut adder = store.adder()?;
    let mut written = 0u64;
    copy(
        &mut r,
        |b| {
            written += b.len() as u64;
            adder.write_all(b).map_err(rerr)
        },
        path,
    )?;
    Ok(Staged {
        digest: adder.digest(),
        size: written,
        compression,
        content: Content::Pending(adder),
    })
}

/// Feed everything `r` holds to `sink`.
fn copy(
    r: &mut impl Read,
    mut sink: impl FnMut(&[u8]) -> Result<(), ArchiveError>,
    path: &str,
) -> Result<(), ArchiveError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sink(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ArchiveError::ReadEntry {
                    entry: path.to_owned(),
                    source,
                });
            }
        }
    }
}
