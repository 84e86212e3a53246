//! `state.redb` written behind the apply: an applied change is in memory (and answered)
//! at once, and reaches the file with the next flush — a few milliseconds later, when
//! [`FLUSH_AFTER`] entries wait, or when the store closes. etcd's backend batches its
//! commits the same way.
//!
//! Why that loses nothing: the raft log holds every committed entry durably, and the
//! file is only where a restart starts from. Each flush writes the rows of the entries
//! it takes with the `last_applied` of the last one, in one transaction, so the file is
//! always the state at some applied index, and a restart applies the log from there.
//! The log keeps those entries because raft purges it only up to a snapshot, and a
//! snapshot is written with fsync (and loaded instead of older tables).
//!
//! Transactions on the file go one at a time ([`StateFile::writing`]), so a flush never
//! writes rows older than a snapshot installed before it.

use super::cluster::ClusterRecord;
use super::disk::{self, Db, DiskError, MetaTable};
use super::types::{LogId, StoredMembership};
use api::cluster::{Event, Kind, Object};
use redb::Durability;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Applied entries that are written at once, by the apply that reaches this many.
pub(crate) const FLUSH_AFTER: u64 = 256;
/// How long changes may wait for a flush otherwise (more of them share it).
const FLUSH_DELAY: Duration = Duration::from_millis(20);
/// Entries flushed between two flushes that fsync (the others do not). Bounds the log
/// a restart applies again.
pub(crate) const SYNC_EVERY: u64 = 1000;

/// What the flushes write, from the applies since the last one.
#[derive(Default)]
struct Unwritten {
    /// Rows by kind and id: `Some` to upsert, `None` to delete.
    rows: BTreeMap<(Kind, String), Option<Object>>,
    cluster: Option<ClusterRecord>,
    applied: Option<(Option<LogId>, StoredMembership)>,
    entries: u64,
}

/// The state file and what waits to be written to it.
pub(crate) struct StateFile {
    db: Arc<Db>,
    unwritten: Mutex<Unwritten>,
    /// Held by each transaction on the file.
    writing: Mutex<()>,
    /// Entries flushed since the last flush that synced.
    unsynced: Mutex<u64>,
    /// Wakes the flusher.
    soon: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each holds values changed in one step: a panic elsewhere leaves them whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StateFile {
    /// The file `db`; flushes run on a task of the current runtime (without one, every
    /// [`note`](StateFile::note) asks for a flush).
    pub(crate) fn new(db: Arc<Db>) -> Arc<StateFile> {
        let file = Arc::new(StateFile {
            db,
            unwritten: Mutex::default(),
            writing: Mutex::new(()),
            unsynced: Mutex::new(0),
            soon: Arc::new(Notify::new()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(flusher(Arc::downgrade(&file), file.soon.clone()));
        }
        file
    }

    pub(crate) fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Note what `entries` applied entries changed (`events`, the cluster record if it
    /// changed) and where the state is now. `true`: flush now (enough waits).
    pub(crate) fn note(
        &self,
        events: &[(u64, Vec<Event>)],
        cluster: Option<&ClusterRecord>,
        applied: (Option<LogId>, StoredMembership),
        entries: u64,
    ) -> bool {
        let mut unwritten = lock(&self.unwritten);
        for event in events.iter().flat_map(|(_, events)| events) {
            match event {
                Event::Created { object } | Event::Updated { object } => {
                    let key = (object.kind(), object.meta().id.clone());
                    unwritten.rows.insert(key, Some(object.clone()));
                }
                Event::Deleted { object } => {
                    unwritten
                        .rows
                        .insert((object.kind(), object.meta().id.clone()), None);
                }
                Event::Commit { .. } => {}
            }
        }
        if let Some(record) = cluster {
            unwritten.cluster = Some(record.clone());
        }
        unwritten.applied = Some(applied);
        unwritten.entries += entries;
        let due =
            unwritten.entries >= FLUSH_AFTER || tokio::runtime::Handle::try_current().is_err();
        if !due {
            self.soon.notify_one();
        }
        due
    }

    /// Write what waits, off the async workers.
    pub(crate) async fn flush(self: &Arc<Self>) -> Result<(), DiskError> {
        let file = self.clone();
        disk::blocking(move || file.flush_now()).await
    }

    /// Write what waits, on this thread.
    fn flush_now(&self) -> Result<(), DiskError> {
        let _writing = lock(&self.writing);
        let unwritten = std::mem::take(&mut *lock(&self.unwritten));
        let Some((last_applied, membership)) = &unwritten.applied else {
            return Ok(());
        };
        let sync = {
            let mut unsynced = lock(&self.unsynced);
            *unsynced += unwritten.entries;
            let sync = *unsynced >= SYNC_EVERY;
            if sync {
                *unsynced = 0;
            }
            sync
        };
        let mut txn = self.db.begin_write()?;
        if !sync {
            txn.set_durability(Durability::None)?;
        }
        for ((kind, id), row) in &unwritten.rows {
            let mut table = txn.open_table(table_of(*kind))?;
            match row {
                Some(object) => table.insert(id.as_str(), disk::encode(object)?.as_slice())?,
                None => table.remove(id.as_str())?,
            };
        }
        let mut meta = txn.open_table(META)?;
        if let Some(record) = &unwritten.cluster {
            meta.insert("cluster", disk::encode(record)?.as_slice())?;
        }
        meta.insert("last_applied", disk::encode(last_applied)?.as_slice())?;
        meta.insert("membership", disk::encode(membership)?.as_slice())?;
        drop(meta);
        txn.commit()?;
        Ok(())
    }

    /// Run `write` as the next transaction on the file, after dropping what waits
    /// (`drop_unwritten`: the state written now replaces it).
    pub(crate) async fn transaction<T: Send + 'static>(
        self: &Arc<Self>,
        drop_unwritten: bool,
        write: impl FnOnce(&redb::WriteTransaction) -> Result<T, DiskError> + Send + 'static,
    ) -> Result<T, DiskError> {
        let file = self.clone();
        disk::blocking(move || {
            let _writing = lock(&file.writing);
            if drop_unwritten {
                *lock(&file.unwritten) = Unwritten::default();
            }
            let txn = file.db.begin_write()?;
            let done = write(&txn)?;
            txn.commit()?;
            Ok(done)
        })
        .await
    }
}

impl Drop for StateFile {
    /// A closing store writes what waits, so a clean restart applies nothing again (a
    /// failure here only means more to apply).
    fn drop(&mut self) {
        let _ = self.flush_now();
        self.soon.notify_one();
    }
}

/// Flush a little after each change, until the file is gone.
async fn flusher(file: Weak<StateFile>, soon: Arc<Notify>) {
    loop {
        soon.notified().await;
        tokio::time::sleep(FLUSH_DELAY).await;
        let Some(file) = file.upgrade() else {
            return;
        };
        if let Err(e) = file.flush().await {
            // The log still holds everything: a restart applies it again.
            eprintln!("orch manager: state.redb not written (the raft log still has it): {e}");
        }
    }
}

/// `last_applied`, `membership`, `cluster` (and `snapshot_meta`, `snapshot_data` in
/// files written before [`SNAPSHOT`]).
pub(crate) const META: MetaTable = redb::TableDefinition::new("state_meta");
/// The last snapshot: `meta`, `data`. A table of its own: redb copies the leaf a write
/// changes, and every flush writes `last_applied`: beside megabytes of snapshot, each
/// copied them.
pub(crate) const SNAPSHOT: MetaTable = redb::TableDefinition::new("snapshot");

/// The redb table holding objects of `kind`, by id.
pub(crate) fn table_of(kind: Kind) -> MetaTable {
    match kind {
        Kind::Node => redb::TableDefinition::new("nodes"),
        Kind::Stack => redb::TableDefinition::new("stacks"),
        Kind::Service => redb::TableDefinition::new("services"),
        Kind::Task => redb::TableDefinition::new("tasks"),
        Kind::Network => redb::TableDefinition::new("networks"),
        Kind::Secret => redb::TableDefinition::new("secrets"),
        Kind::Config => redb::TableDefinition::new("configs"),
        Kind::Manifest => redb::TableDefinition::new("manifests"),
        Kind::Volume => redb::TableDefinition::new("volumes"),
    }
}
