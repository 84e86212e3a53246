//! Shared plumbing of the store's files (`state.redb`, and the raft log of `wal`):
//! opening redb, JSON values, blocking calls, and the mapping of failures to openraft's
//! storage errors.
//!
//! Why redb for the state: pure Rust (no C++ toolchain, unlike RocksDB), ACID with one
//! fsync per commit, a single file, and a small, stable 4.x API; the state is megabytes
//! of desired state written behind the apply (`state_file`), so an LSM's trade-offs buy
//! nothing. The raft log, which every write waits for, is a file format of its own
//! (`wal`): one `pwrite` and one `fdatasync` per batch, where a redb commit costs about
//! ten page writes.

use super::error::StoreError;
use super::types::StorageError;
use openraft::{ErrorSubject, ErrorVerb, StorageIOError};
use redb::{Database, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

/// A string-keyed table of JSON values.
pub(crate) type MetaTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// A failure inside a storage call, before it is mapped to what the caller needs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiskError {
    #[error(transparent)]
    Db(#[from] redb::Error),
    #[error("stored value is not valid: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("storage task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The raft log's files hold something its writer never wrote.
    #[error("{} is damaged at byte {offset}: {problem}", path.display())]
    Damaged {
        path: PathBuf,
        offset: u64,
        problem: String,
    },
    /// Another process has the raft log open.
    #[error("{} is locked by another process", path.display())]
    InUse { path: PathBuf },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for DiskError {
            fn from(e: $t) -> DiskError {
                DiskError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl DiskError {
    /// As openraft's storage error about `subject` while doing `verb`.
    pub(crate) fn storage(&self, subject: ErrorSubject<u64>, verb: ErrorVerb) -> StorageError {
        StorageIOError::new(subject, verb, self).into()
    }

    /// As the store's error for `op` on the file at `path`.
    pub(crate) fn store(self, op: &'static str, path: &Path) -> StoreError {
        let path = path.to_owned();
        match self {
            DiskError::Db(source) => StoreError::Db {
                op,
                path,
                source: Box::new(source),
            },
            DiskError::Codec(source) => StoreError::Decode {
                what: op,
                path,
                source,
            },
            DiskError::Join(_) => StoreError::Stopped,
            DiskError::Io(source) => StoreError::Io { op, path, source },
            DiskError::Damaged {
                path,
                offset,
                problem,
            } => StoreError::LogDamaged {
                path,
                offset,
                problem,
            },
            DiskError::InUse { path } => StoreError::InUse { path },
        }
    }
}

/// An open database that reports when it is closed (when the last clone of the `Arc`
/// holding it drops), so a shutdown can wait until the file may be opened again.
pub(crate) struct Db {
    db: Database,
    // Dropped after `db` (fields drop in order): the receiver learns the file is closed.
    _closed: oneshot::Sender<()>,
}

impl std::ops::Deref for Db {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

/// Resolves once a [`Db`] is closed.
pub(crate) type Closed = oneshot::Receiver<()>;

/// redb's page cache per file. Both files are read little once open (the state lives
/// in memory, the newest log entries too), so redb's default (1 GiB) only grew the
/// resident memory of a busy manager.
const CACHE: usize = 32 << 20;

/// Open (or create) the database at `path`, then run `init` (create its tables).
pub(crate) fn open(
    path: &Path,
    init: impl FnOnce(&redb::WriteTransaction) -> Result<(), DiskError>,
) -> Result<(Db, Closed), StoreError> {
    let db = Database::builder()
        .set_cache_size(CACHE)
        .create(path)
        .map_err(|e| DiskError::from(e).store("open database", path))?;
    let create = || -> Result<(), DiskError> {
        let txn = db.begin_write()?;
        init(&txn)?;
        txn.commit()?;
        Ok(())
    };
    create().map_err(|e| e.store("create tables", path))?;
    let (tx, rx) = oneshot::channel();
    Ok((Db { db, _closed: tx }, rx))
}

/// Run blocking redb work (fsyncs) off the async workers.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, DiskError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, DiskError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}

/// Encode a value for storage.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, DiskError> {
    Ok(serde_json::to_vec(value)?)
}

/// Decode a stored value.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DiskError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Read and decode `key` of a string-keyed table.
pub(crate) fn get<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, DiskError> {
    match table.get(key)? {
        Some(value) => Ok(Some(decode(value.value())?)),
        None => Ok(None),
    }
}
