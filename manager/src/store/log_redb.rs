//! `log.redb`, where orch kept its raft log before [`super::wal`]: copied into the
//! write-ahead log once, the first time a manager opens an older data directory.
//!
//! The copy is built beside the log's directory and renamed into place
//! ([`Wal::create`]), and `log.redb` is deleted only after: a crash at any point leaves
//! either the old file alone, or the new log (with the old file removed at the next
//! open).

use super::disk::{self, DiskError, MetaTable};
use super::error::StoreError;
use super::types::{Entry, LogId, Vote};
use super::wal::{Op, SEGMENT, Wal};
use redb::{ReadableDatabase, TableDefinition};
use std::path::Path;

/// Entries by index.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// `vote`, `committed`, `last_purged`.
const META: MetaTable = TableDefinition::new("log_meta");

/// Move the log in the redb file `legacy` (if there is one) into a new write-ahead log
/// in `dir`.
pub(crate) fn migrate(legacy: &Path, dir: &Path) -> Result<(), StoreError> {
    if !legacy.exists() {
        return Ok(());
    }
    let remove = || {
        std::fs::remove_file(legacy).map_err(|source| StoreError::Io {
            op: "remove the copied raft log",
            path: legacy.to_owned(),
            source,
        })
    };
    if dir.exists() {
        // Copied already; a crash came before the old file was removed.
        return remove();
    }
    let read = || -> Result<_, DiskError> {
        let (db, _closed) = disk::open(legacy, |_| Ok(()))
            .map_err(|e| DiskError::Io(std::io::Error::other(e.to_string())))?;
        let txn = db.begin_read()?;
        let (vote, committed, last_purged) = match txn.open_table(META) {
            Ok(meta) => {
                let vote: Option<Vote> = disk::get(&meta, "vote")?;
                let committed: Option<Option<LogId>> = disk::get(&meta, "committed")?;
                let purged: Option<LogId> = disk::get(&meta, "last_purged")?;
                (vote, committed.flatten(), purged)
            }
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None, None),
            Err(e) => return Err(e.into()),
        };
        let mut entries: Vec<Entry> = Vec::new();
        match txn.open_table(LOG) {
            Ok(log) => {
                for row in log.range(0..)? {
                    let (_, value) = row?;
                    entries.push(disk::decode(value.value())?);
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok((vote, committed, last_purged, entries))
    };
    let (vote, committed, last_purged, entries) =
        read().map_err(|e| e.store("read the raft log to copy", legacy))?;
    // A frame per 1,024 entries: frames stay small whatever the size of the old log.
    let ops: Vec<Op> = [last_purged.map(Op::Purge), vote.map(Op::Vote)]
        .into_iter()
        .flatten()
        .chain(entries.chunks(1024).map(|c| Op::Append(c.to_vec())))
        .chain([Op::Committed(committed)])
        .collect();
    Wal::create(dir, SEGMENT, |wal| {
        ops.iter().try_for_each(|op| wal.write([op]))
    })
    .map_err(|e| e.store("copy the raft log into", dir))?;
    remove()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log_store::LogStore;
    use crate::store::scratch::Scratch;
    use openraft::storage::RaftLogStorage;
    use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader};

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn put(
        table: &mut redb::Table<'_, &'static str, &'static [u8]>,
        key: &str,
        value: &impl serde::Serialize,
    ) {
        table
            .insert(key, disk::encode(value).expect("encode").as_slice())
            .expect("insert");
    }

    /// A `log.redb` as orch wrote it before the write-ahead log.
    fn legacy_file(path: &Path, entries: std::ops::RangeInclusive<u64>) {
        let db = redb::Database::create(path).expect("create");
        let txn = db.begin_write().expect("begin");
        {
            let mut meta = txn.open_table(META).expect("meta");
            put(&mut meta, "vote", &Vote::new_committed(3, 1));
            put(&mut meta, "committed", &Some(log_id(3, 7)));
            put(&mut meta, "last_purged", &log_id(2, entries.start() - 1));
            let mut log = txn.open_table(LOG).expect("log");
            for index in entries {
                let entry = Entry {
                    log_id: log_id(3, index),
                    payload: EntryPayload::Blank,
                };
                log.insert(index, disk::encode(&entry).expect("encode").as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    #[tokio::test]
    async fn an_older_log_redb_is_copied_into_the_write_ahead_log_and_removed() {
        let scratch = Scratch::new("log-redb");
        let dir = scratch.path();
        let legacy = dir.join("log.redb");
        legacy_file(&legacy, 5..=9);
        for _ in 0..2 {
            // The second open reads the copy (and finds no old file).
            let mut log = LogStore::open(&dir.join("log")).expect("open");
            assert!(!legacy.exists(), "log.redb is removed once copied");
            let state = log.get_log_state().await.expect("state");
            assert_eq!(state.last_purged_log_id, Some(log_id(2, 4)));
            assert_eq!(state.last_log_id, Some(log_id(3, 9)));
            assert_eq!(
                log.read_vote().await.expect("vote"),
                Some(Vote::new_committed(3, 1))
            );
            assert_eq!(
                log.read_committed().await.expect("committed"),
                Some(log_id(3, 7))
            );
            let entries = log.try_get_log_entries(0..100).await.expect("entries");
            let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
            assert_eq!(indexes, [5, 6, 7, 8, 9]);
            drop(log);
            // The writer thread lets go of the lock when the last handle drops.
            for _ in 0..100 {
                if Wal::open(&dir.join("log")).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        // Copied, but the old file not yet removed (a crash in between): it goes.
        legacy_file(&legacy, 1..=2);
        let mut log = LogStore::open(&dir.join("log")).expect("open");
        assert!(!legacy.exists());
        let state = log.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(3, 9)), "the copy is kept");
    }
}
