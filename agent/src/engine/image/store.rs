//! The blob store: blobs by digest under `<root>/blobs/sha256/<hex>`.
//!
//! A blob is written to `<root>/ingest/` first, hashed while it is written, fsync'd,
//! and renamed into place only when its digest and size are the expected ones, so a
//! reader never sees a partial or wrong blob. One writer per digest at a time: a second
//! ingest of the same digest waits and then finds the blob already there.

use super::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

/// What went wrong in the blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("create content store directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("write blob {digest}: {source}")]
    Write { digest: Digest, source: io::Error },
    #[error("blob {expected} rejected: its content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest} rejected: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} is not in the store")]
    NotFound { digest: Digest },
    #[error("read blob {digest}: {source}")]
    Read { digest: Digest, source: io::Error },
    #[error("remove blob {digest}: {source}")]
    Remove { digest: Digest, source: io::Error },
    #[error("remove ingest temp file {name}: {source}")]
    RemoveIngest { name: String, source: io::Error },
}

/// Blobs by digest.
pub struct ContentStore {
    root: PathBuf,
    writers: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    downloads: Mutex<HashMap<Digest, Weak<tokio::sync::Mutex<()>>>>,
    seq: AtomicU64,
}

impl ContentStore {
    /// Open (creating) the store under `root`; leftovers of interrupted ingests are removed.
    pub fn open(root: &Path) -> Result<ContentStore, StoreError> {
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(|source| StoreError::Create {
                path: dir.clone(),
                source,
            })?;
        }
        if let Ok(entries) = fs::read_dir(root.join("ingest")) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(ContentStore {
            root: root.to_owned(),
            writers: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
        })
    }

    /// The lock a download of `digest` holds, so that concurrent pulls of the same
    /// blob fetch it once: the second waits, then finds the blob in the store.
    pub fn download_lock(&self, digest: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lock) = map.get(digest).and_then(Weak::upgrade) {
            return lock;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(digest.clone(), Arc::downgrade(&lock));
        lock
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob is in the store.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Store the bytes of `reader` as `digest`, verifying digest and (when known) size.
    /// Returns the number of bytes written, 0 when the blob was already there.
    pub fn ingest(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<u64, StoreError> {
        let lock = {
            let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
            writers.entry(digest.clone()).or_default().clone()
        };
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.copy_in(digest, size, reader);
        self.writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(digest);
        result
    }

    fn copy_in(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<u64, StoreError> {
        let Some(mut ingest) = self.begin(digest, size)? else {
            return Ok(0);
        };
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => ingest.write(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(StoreError::Write {
                        digest: digest.clone(),
                        source,
                    });
                }
            }
        }
        ingest.commit()
    }

    /// Start writing blob `digest` piece by piece (for streamed downloads); `None` when
    /// the blob is already in the store. Commit with [`Ingest::commit`]; dropping an
    /// uncommitted ingest removes its temp file.
    pub fn begin(&self, digest: &Digest, size: Option<u64>) -> Result<Option<Ingest>, StoreError> {
        if self.contains(digest) {
            return Ok(None);
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp =
            self.root
                .join("ingest")
                .join(format!("{}-{}-{n}", digest.hex(), std::process::id()));
        let file = File::create(&tmp).map_err(|source| StoreError::Write {
            digest: digest.clone(),
            source,
        })?;
        Ok(Some(Ingest {
            digest: digest.clone(),
            size,
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
            dest: self.path(digest),
        }))
    }

    /// Start writing a blob whose digest is not known yet (content orch creates);
    /// [`Adder::finish`] names it by its digest.
    pub fn adder(&self) -> Result<Adder, StoreError> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("ingest")
            .join(format!("new-{}-{n}", std::process::id()));
        let placeholder = Digest::of(b"");
        let file = File::create(&tmp).map_err(|source| StoreError::Write {
            digest: placeholder,
            source,
        })?;
        Ok(Adder {
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
            dir: self.root.join("blobs/sha256"),
        })
    }

    /// Open a blob for reading after checking that its content still matches its digest.
    pub fn open_verified(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.path(digest);
        let rerr = |source| StoreError::Read {
            digest: digest.clone(),
            source,
        };
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    digest: digest.clone(),
                });
            }
            Err(e) => return Err(rerr(e)),
        };
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).map_err(rerr)?;
        let actual = Digest::from_hasher(hasher);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        File::open(&path).map_err(rerr)
    }

    /// Every blob in the store.
    pub fn list(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = fs::read_dir(self.root.join("blobs/sha256"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                format!("sha256:{}", e.file_name().to_string_lossy())
                    .parse()
                    .ok()
            })
            .collect();
        out.sort();
        out
    }

    /// Temp files under `ingest/` (ingests in progress or left by a crash): file name
    /// and last modification time.
    pub fn ingests(&self) -> Vec<(String, SystemTime)> {
        let mut out: Vec<(String, SystemTime)> = fs::read_dir(self.root.join("ingest"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let modified = e.metadata().ok()?.modified().ok()?;
                Some((e.file_name().to_str()?.to_owned(), modified))
            })
            .collect();
        out.sort();
        out
    }

    /// Remove the ingest temp file `name` (as [`ContentStore::ingests`] lists it;
    /// absent is fine).
    pub fn remove_ingest(&self, name: &str) -> Result<(), StoreError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Ok(());
        }
        match fs::remove_file(self.root.join("ingest").join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::RemoveIngest {
                name: name.to_owned(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Remove a blob (absent blobs are fine).
    pub fn remove(&self, digest: &Digest) -> Result<(), StoreError> {
        match fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Remove {
                digest: digest.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// A blob being written; verified and moved into place by [`Ingest::commit`].
pub struct Ingest {
    digest: Digest,
    size: Option<u64>,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    written: u64,
    dest: PathBuf,
}

impl Ingest {
    /// Append bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let digest = &self.digest;
        self.written += bytes.len() as u64;
        if let Some(expected) = self.size.filter(|s| self.written > *s) {
            return Err(StoreError::SizeMismatch {
                digest: digest.clone(),
                expected,
                actual: self.written,
            });
        }
        self.hasher.update(bytes);
        match &mut self.file {
            Some(f) => f.write_all(bytes).map_err(|source| StoreError::Write {
                digest: digest.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Verify size and digest, fsync and move the blob into the store.
    pub fn commit(mut self) -> Result<u64, StoreError> {
        let digest = self.digest.clone();
        if let Some(expected) = self.size.filter(|s| *s != self.written) {
            return Err(StoreError::SizeMismatch {
                digest,
                expected,
                actual: self.written,
            });
        }
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest,
                actual,
            });
        }
        let werr = |source| StoreError::Write {
            digest: digest.clone(),
            source,
        };
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(werr)?;
        }
        fs::rename(&self.tmp, &self.dest).map_err(werr)?;
        if let Some(dir) = self.dest.parent().and_then(|d| File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(self.written)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// A blob of not yet known digest being written.
pub struct Adder {
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    written: u64,
    dir: PathBuf,
}

impl Write for Adder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.file {
            Some(f) => f.write(buf)?,
            None => return Err(io::Error::other("blob already finished")),
        };
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Adder {
    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    /// Fsync and move the blob into the store under its digest; (digest, size).
    pub fn finish(mut self) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::from_hasher(std::mem::take(&mut self.hasher));
        let werr = |source| StoreError::Write {
            digest: digest.clone(),
            source,
        };
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(werr)?;
        }
        fs::rename(&self.tmp, self.dir.join(digest.hex())).map_err(werr)?;
        Ok((digest, self.written))
    }
}

impl Drop for Adder {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("orch-store-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn ingest_verify_and_reject() {
        let root = tmp("a");
        let store = ContentStore::open(&root).unwrap();
        let data = b"hello layer".to_vec();
        let d = Digest::of(&data);
        assert_eq!(
            store
                .ingest(&d, Some(data.len() as u64), &mut &data[..])
                .unwrap(),
            data.len() as u64
        );
        assert_eq!(
            store.ingest(&d, None, &mut &data[..]).unwrap(),
            0,
            "second ingest is a no-op"
        );
        let mut back = Vec::new();
        store
            .open_verified(&d)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);

        let wrong = Digest::of(b"something else");
        let err = store.ingest(&wrong, None, &mut &data[..]).unwrap_err();
        assert!(err.to_string().contains(&wrong.to_string()), "{err}");
        assert!(!store.contains(&wrong));
        let err = store
            .ingest(&Digest::of(b"abc"), Some(2), &mut &b"abc"[..])
            .unwrap_err();
        assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
        assert_eq!(
            fs::read_dir(root.join("ingest")).unwrap().count(),
            0,
            "nothing half-written stays"
        );
        assert_eq!(store.list(), vec![d.clone()]);

        // A blob corrupted on disk is refused on use.
        fs::write(store.path(&d), b"tampered").unwrap();
        assert!(matches!(
            store.open_verified(&d),
            Err(StoreError::DigestMismatch { .. })
        ));
        store.remove(&d).unwrap();
        assert!(matches!(
            store.open_verified(&d),
            Err(StoreError::NotFound { .. })
        ));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn concurrent_ingests_write_once() {
        let root = tmp("b");
        let store = Arc::new(ContentStore::open(&root).unwrap());
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::of(&data);
        let written: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let (store, data, d) = (store.clone(), &data, d.clone());
                    s.spawn(move || {
                        store
                            .ingest(&d, Some(data.len() as u64), &mut &data[..])
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            written,
            data.len() as u64,
            "exactly one writer wrote the blob"
        );
        fs::remove_dir_all(root).unwrap();
    }
}
