//! The raft log, vote and commit index in `log.redb`.
//!
//! Durability: `append` commits (fsync) before it reports the entries flushed, and
//! `save_vote` before it returns; the committed index is a hint (openraft recovers it
//! from a quorum, a stale one only means less to apply again at startup), so it is kept
//! in memory and written with the next append.
//!
//! `append` runs its redb commit on the calling task, the raft core, which waits for it
//! anyway: a hand-off to the blocking pool and back costs two thread wake-ups per
//! write on each manager, more than the commit's own 0.1 to 0.3 ms fsync.

use super::disk::{self, Closed, Db, DiskError, MetaTable};
use super::error::StoreError;
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Entries by index.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// `vote`, `committed`, `last_purged`.
const META: MetaTable = TableDefinition::new("log_meta");

/// The raft log store (cheap to clone: clones share the database).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Db>,
    /// The committed index raft saved last, until an append writes it.
    committed: Arc<Mutex<Option<Option<LogId>>>>,
}

impl LogStore {
    /// Open or create the log in `path`.
    pub fn open(path: &Path) -> Result<LogStore, StoreError> {
        Ok(LogStore::open_closing(path)?.0)
    }

    /// Open, and learn when the file is closed (all clones dropped).
    pub(crate) fn open_closing(path: &Path) -> Result<(LogStore, Closed), StoreError> {
        let (db, closed) = disk::open(path, |txn| {
            txn.open_table(LOG)?;
            txn.open_table(META)?;
            Ok(())
        })?;
        let store = LogStore {
            db: Arc::new(db),
            committed: Arc::new(Mutex::new(None)),
        };
        Ok((store, closed))
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DiskError> {
        let txn = self.db.begin_read()?;
        disk::get(&txn.open_table(META)?, key)
    }

    /// Write one meta value (fsync'd when this returns).
    async fn write_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), DiskError> {
        let bytes = disk::encode(value)?;
        let db = self.db.clone();
        disk::blocking(move || {
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    fn pending_committed(&self) -> MutexGuard<'_, Option<Option<LogId>>> {
        // Holds a plain value: a panic elsewhere cannot leave it half-written.
        self.committed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn last_log_id(&self) -> Result<Option<LogId>, DiskError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let last = table.last()?;
        match last {
            Some((_, value)) => Ok(Some(disk::decode::<Entry>(value.value())?.log_id)),
            None => Ok(None),
        }
    }
}

fn log_err(e: DiskError, verb: ErrorVerb) -> StorageError {
    e.storage(ErrorSubject::Logs, verb)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        let read = || -> Result<Vec<Entry>, DiskError> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let mut entries = Vec::new();
            for row in table.range::<u64>(bounds)? {
                let (_, value) = row?;
                entries.push(disk::decode(value.value())?);
            }
            Ok(entries)
        };
        read().map_err(|e| log_err(e, ErrorVerb::Read))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self
            .read_meta("last_purged")
            .map_err(|e| log_err(e, ErrorVerb::Read))?;
        let last = self
            .last_log_id()
            .map_err(|e| log_err(e, ErrorVerb::Read))?;
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta("vote", vote)
            .await
            .map_err(|e| e.storage(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta("vote")
            .map_err(|e| e.storage(ErrorSubject::Vote, ErrorVerb::Read))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        *self.pending_committed() = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        if let Some(committed) = *self.pending_committed() {
            return Ok(committed);
        }
        let committed: Option<Option<LogId>> = self
            .read_meta("committed")
            .map_err(|e| e.storage(ErrorSubject::Store, ErrorVerb::Read))?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let rows = entries
            .into_iter()
            .map(|entry| Ok((entry.log_id.index, disk::encode(&entry)?)))
            .collect::<Result<Vec<_>, DiskError>>()
            .map_err(|e| log_err(e, ErrorVerb::Write))?;
        let committed = self.pending_committed().take();
        let write = || -> Result<(), DiskError> {
            let txn = self.db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    table.insert(*index, bytes.as_slice())?;
                }
            }
            if let Some(committed) = &committed {
                txn.open_table(META)?
                    .insert("committed", disk::encode(committed)?.as_slice())?;
            }
            // Durability::Immediate (the default): fsync'd when commit returns.
            txn.commit()?;
            Ok(())
        };
        let written = write();
        if written.is_err() {
            // Not written: keep it for the next append (unless raft saved a newer one).
            let mut pending = self.pending_committed();
            if pending.is_none() {
                *pending = committed;
            }
        }
        match written {
            Ok(()) => {
                // Only now are the entries durable: tell raft.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(log_err(e, ErrorVerb::Write))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        disk::blocking(move || {
            let txn = db.begin_write()?;
            txn.open_table(LOG)?
                .retain_in(log_id.index.., |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| log_err(e, ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        let purged = disk::encode(&log_id).map_err(|e| log_err(e, ErrorVerb::Delete))?;
        disk::blocking(move || {
            let txn = db.begin_write()?;
            txn.open_table(META)?
                .insert("last_purged", purged.as_slice())?;
            txn.open_table(LOG)?
                .retain_in(..=log_id.index, |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| log_err(e, ErrorVerb::Delete))
    }
}
