//! The raft state machine: the [`State`] in memory for reads, persisted in `state.redb`
//! (one table per kind, plus `last_applied` and membership) so a restart loads it
//! instead of replaying the log; snapshots are the whole state as JSON.
//!
//! Apply runs the pure [`apply`](super::apply::apply) under the state lock, then writes
//! the changed rows and `last_applied` in one redb transaction, then publishes the
//! events. Entries reach apply only once raft committed them, so readers may see the
//! new state before its own redb commit: the raft log already holds it durably.
//!
//! Durability: an apply commits without fsync (only every [`SYNC_EVERY`]th entry
//! syncs), because the raft log holds every committed entry durably: after a crash
//! `state.redb` is back at its last synced `last_applied`, and openraft applies the log
//! from there again. That needs the log to keep every entry after the synced state,
//! which holds because raft purges the log only up to a snapshot, and a snapshot is
//! written with fsync — which makes every earlier commit of this file durable too, and
//! [`load`] prefers the snapshot when the tables are older.

use super::apply::apply;
use super::cluster::ClusterRecord;
use super::command::{Applied, CommandResult};
use super::disk::{self, Closed, Db, DiskError, MetaTable};
use super::error::StoreError;
use super::log_store::LogDisk;
use super::state::State;
use super::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use super::watch::Hub;
use api::cluster::{Event, Kind, Object};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `last_applied`, `membership`, `cluster` (and `snapshot_meta`, `snapshot_data` in
/// files written before [`SNAPSHOT`]).
const META: MetaTable = TableDefinition::new("state_meta");
/// The last snapshot: `meta`, `data`. A table of its own: redb copies the leaf a write
/// changes, and every apply writes `last_applied`: beside megabytes of snapshot, each
/// apply copied them.
const SNAPSHOT: MetaTable = TableDefinition::new("snapshot");

/// Applied entries between two applies that fsync (the others do not; see the module
/// documentation). Bounds the log a restart applies again.
pub(crate) const SYNC_EVERY: u64 = 1000;

/// The redb table holding objects of `kind`, by id.
fn table_of(kind: Kind) -> MetaTable {
    match kind {
        Kind::Node => TableDefinition::new("nodes"),
        Kind::Stack => TableDefinition::new("stacks"),
        Kind::Service => TableDefinition::new("services"),
        Kind::Task => TableDefinition::new("tasks"),
        Kind::Network => TableDefinition::new("networks"),
        Kind::Secret => TableDefinition::new("secrets"),
        Kind::Config => TableDefinition::new("configs"),
        Kind::Manifest => TableDefinition::new("manifests"),
        Kind::Volume => TableDefinition::new("volumes"),
    }
}

/// The applied state and how far it goes.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    pub state: State,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

/// What the state machine shares with the [`Store`](super::Store) handle.
pub(crate) struct Shared {
    machine: RwLock<Machine>,
    pub hub: Arc<Hub>,
    /// The cluster record as last applied, for whoever follows its changes.
    pub cluster: tokio::sync::watch::Sender<Option<Arc<ClusterRecord>>>,
}

impl Shared {
    /// Read the applied state (never held across an await).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Machine> {
        // A panic under the lock cannot leave a half-applied command (apply undoes), so
        // a poisoned lock still guards a consistent state.
        self.machine.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Machine> {
        self.machine.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A snapshot's payload.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    #[serde(default)]
    objects: Vec<Object>,
    #[serde(default)]
    cluster: Option<ClusterRecord>,
}

impl SnapshotBody {
    fn into_state(self) -> State {
        let mut state = State::from_objects(self.objects);
        state.cluster = self.cluster;
        state
    }
}

/// The state machine store (clones share everything; a clone builds snapshots).
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Db>,
    path: Arc<PathBuf>,
    shared: Arc<Shared>,
    snapshot_seq: Arc<AtomicU64>,
    /// Entries applied since the last apply that synced.
    unsynced: Arc<AtomicU64>,
    /// The raft log's disk: an entry is applied only once it is durable there (see
    /// [`log_store`](super::log_store)). `None` in tests of the state machine alone.
    log: Option<LogDisk>,
}

impl StateMachineStore {
    /// Open or create the state in `path`; `history` commits are kept for watchers.
    pub fn open(path: &Path, history: usize) -> Result<StateMachineStore, StoreError> {
        Ok(StateMachineStore::open_closing(path, history)?.0)
    }

    /// Open, and learn when the file is closed (all clones dropped).
    pub(crate) fn open_closing(
        path: &Path,
        history: usize,
    ) -> Result<(StateMachineStore, Closed), StoreError> {
        let (db, closed) = disk::open(path, |txn| {
            txn.open_table(META)?;
            txn.open_table(SNAPSHOT)?;
            for kind in Kind::ALL {
                txn.open_table(table_of(kind))?;
            }
            Ok(())
        })?;
        let (machine, from_snapshot) = load(&db).map_err(|e| e.store("load state", path))?;
        if from_snapshot {
            let rewrite = || -> Result<(), DiskError> {
                let txn = db.begin_write()?;
                write_all(&txn, &machine)?;
                txn.commit()?;
                Ok(())
            };
            rewrite().map_err(|e| e.store("restore state from snapshot", path))?;
        }
        let floor = machine.last_applied.map_or(0, |l| l.index);
        let cluster = tokio::sync::watch::Sender::new(machine.state.cluster.clone().map(Arc::new));
        let store = StateMachineStore {
            db: Arc::new(db),
            path: Arc::new(path.to_owned()),
            shared: Arc::new(Shared {
                machine: RwLock::new(machine),
                hub: Arc::new(Hub::new(floor, history)),
                cluster,
            }),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            unsynced: Arc::new(AtomicU64::new(0)),
            log: None,
        };
        Ok((store, closed))
    }

    /// Apply entries only once `log` has them on disk.
    pub(crate) fn wait_for(mut self, log: LogDisk) -> StateMachineStore {
        self.log = Some(log);
        self
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The file this state lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Read the persisted state. If the stored snapshot is newer than the tables (a crash
/// between building a snapshot from memory and persisting the batch it included), the
/// snapshot wins: raft may already have purged the log entries in between.
fn load(db: &Database) -> Result<(Machine, bool), DiskError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let last_applied: Option<LogId> = disk::get(&meta, "last_applied")?;
    let snapshot = stored_snapshot(&txn)?;
    if let Some((snapshot, data)) = snapshot.filter(|(s, _)| s.last_log_id > last_applied) {
        let body: SnapshotBody = disk::decode(&data)?;
        let machine = Machine {
            state: body.into_state(),
            last_applied: snapshot.last_log_id,
            membership: snapshot.last_membership,
        };
        return Ok((machine, true));
    }
    let mut objects = Vec::new();
    for kind in Kind::ALL {
        for row in txn.open_table(table_of(kind))?.iter()? {
            let (_, value) = row?;
            objects.push(disk::decode::<Object>(value.value())?);
        }
    }
    let mut state = State::from_objects(objects);
    state.cluster = disk::get(&meta, "cluster")?;
    let machine = Machine {
        state,
        last_applied,
        membership: disk::get(&meta, "membership")?.unwrap_or_default(),
    };
    Ok((machine, false))
}

/// The stored snapshot and its data, from [`SNAPSHOT`] or in an older file [`META`].
fn stored_snapshot(
    txn: &redb::ReadTransaction,
) -> Result<Option<(SnapshotMeta, Vec<u8>)>, DiskError> {
    for (table, meta_key, data_key) in [
        (SNAPSHOT, "meta", "data"),
        (META, "snapshot_meta", "snapshot_data"),
    ] {
        let table = txn.open_table(table)?;
        if let Some(meta) = disk::get::<SnapshotMeta>(&table, meta_key)? {
            let data = table
                .get(data_key)?
                .map(|v| v.value().to_vec())
                .unwrap_or_default();
            return Ok(Some((meta, data)));
        }
    }
    Ok(None)
}

/// Store a snapshot (encoded meta and data), and drop one an older file kept in [`META`].
fn store_snapshot(txn: &redb::WriteTransaction, meta: &[u8], data: &[u8]) -> Result<(), DiskError> {
    let mut table = txn.open_table(SNAPSHOT)?;
    table.insert("meta", meta)?;
    table.insert("data", data)?;
    let mut old = txn.open_table(META)?;
    old.remove("snapshot_meta")?;
    old.remove("snapshot_data")?;
    Ok(())
}

/// Replace every table with `machine` (after a snapshot took the place of the rows).
fn write_all(txn: &redb::WriteTransaction, machine: &Machine) -> Result<(), DiskError> {
    for kind in Kind::ALL {
        txn.open_table(table_of(kind))?.retain(|_, _| false)?;
    }
    for object in machine.state.objects() {
        let bytes = disk::encode(&object)?;
        txn.open_table(table_of(object.kind()))?
            .insert(object.meta().id.as_str(), bytes.as_slice())?;
    }
    let mut meta = txn.open_table(META)?;
    match &machine.state.cluster {
        Some(cluster) => meta.insert("cluster", disk::encode(cluster)?.as_slice())?,
        None => meta.remove("cluster")?,
    };
    meta.insert(
        "last_applied",
        disk::encode(&machine.last_applied)?.as_slice(),
    )?;
    meta.insert("membership", disk::encode(&machine.membership)?.as_slice())?;
    Ok(())
}

/// Rows to write: `Some(json)` to upsert, `None` to delete.
type Dirty = BTreeMap<(Kind, String), Option<Vec<u8>>>;

fn record_changes(dirty: &mut Dirty, changes: &[Event]) -> Result<(), DiskError> {
    for change in changes {
        match change {
            Event::Created { object } | Event::Updated { object } => {
                let key = (object.kind(), object.meta().id.clone());
                dirty.insert(key, Some(disk::encode(object)?));
            }
            Event::Deleted { object } => {
                dirty.insert((object.kind(), object.meta().id.clone()), None);
            }
            Event::Commit { .. } => {}
        }
    }
    Ok(())
}

fn sm_err(e: DiskError, verb: ErrorVerb) -> StorageError {
    e.storage(ErrorSubject::StateMachine, verb)
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let machine = self.shared.read();
        Ok((machine.last_applied, machine.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if let (Some(log), Some(last)) = (&self.log, entries.last()) {
            log.entry(last.log_id.index).await.map_err(|e| {
                StorageError::from(openraft::StorageIOError::<u64>::new(
                    ErrorSubject::Logs,
                    ErrorVerb::Read,
                    &e,
                ))
            })?;
        }
        let mut results = Vec::new();
        let mut published = Vec::new();
        let mut dirty = Dirty::new();
        let mut cluster = None;
        let (last_applied, membership) = {
            let mut machine = self.shared.write();
            let cluster_before = machine.state.cluster.as_ref().map(|c| c.version);
            for entry in entries {
                let version = entry.log_id.index;
                machine.last_applied = Some(entry.log_id);
                let result = match entry.payload {
                    EntryPayload::Blank => CommandResult::Applied(Applied {
                        version,
                        changes: Vec::new(),
                    }),
                    EntryPayload::Normal(proposal) => apply(&mut machine.state, version, &proposal),
                    EntryPayload::Membership(m) => {
                        machine.membership = StoredMembership::new(Some(entry.log_id), m);
                        CommandResult::Applied(Applied {
                            version,
                            changes: Vec::new(),
                        })
                    }
                };
                let mut changes = Vec::new();
                for applied in result.applied() {
                    record_changes(&mut dirty, &applied.changes)
                        .map_err(|e| sm_err(e, ErrorVerb::Write))?;
                    changes.extend(applied.changes.iter().cloned());
                }
                if !changes.is_empty() {
                    published.push((version, changes));
                }
                results.push(result);
            }
            if machine.state.cluster.as_ref().map(|c| c.version) != cluster_before {
                cluster = machine.state.cluster.clone();
            }
            (machine.last_applied, machine.membership.clone())
        };
        let cluster_row = match &cluster {
            Some(record) => Some(disk::encode(record).map_err(|e| sm_err(e, ErrorVerb::Write))?),
            None => None,
        };
        let last_applied = disk::encode(&last_applied).map_err(|e| sm_err(e, ErrorVerb::Write))?;
        let membership = disk::encode(&membership).map_err(|e| sm_err(e, ErrorVerb::Write))?;
        let count = u64::try_from(results.len()).unwrap_or(u64::MAX);
        let unsynced = self.unsynced.fetch_add(count, Ordering::Relaxed) + count;
        let sync = unsynced >= SYNC_EVERY;
        if sync {
            self.unsynced.store(0, Ordering::Relaxed);
        }
        // On this task, which raft waits on anyway: a commit without fsync is
        // cheaper than a hand-off to the blocking pool and back.
        let write = || -> Result<(), DiskError> {
            let mut txn = self.db.begin_write()?;
            if !sync {
                txn.set_durability(Durability::None)?;
            }
            for ((kind, id), row) in &dirty {
                let mut table = txn.open_table(table_of(*kind))?;
                match row {
                    Some(bytes) => table.insert(id.as_str(), bytes.as_slice())?,
                    None => table.remove(id.as_str())?,
                };
            }
            let mut meta = txn.open_table(META)?;
            if let Some(row) = &cluster_row {
                meta.insert("cluster", row.as_slice())?;
            }
            meta.insert("last_applied", last_applied.as_slice())?;
            meta.insert("membership", membership.as_slice())?;
            drop(meta);
            txn.commit()?;
            Ok(())
        };
        write().map_err(|e| sm_err(e, ErrorVerb::Write))?;
        for (version, changes) in published {
            self.shared.hub.publish(version, changes);
        }
        if let Some(record) = cluster {
            self.shared.cluster.send_replace(Some(Arc::new(record)));
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachineStore {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let snap_err = |e: DiskError| {
            e.storage(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
            )
        };
        let body: SnapshotBody = disk::decode(&data).map_err(snap_err)?;
        let machine = Machine {
            state: body.into_state(),
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let snapshot_meta = disk::encode(meta).map_err(snap_err)?;
        let db = self.db.clone();
        let machine = disk::blocking(move || {
            let txn = db.begin_write()?;
            write_all(&txn, &machine)?;
            store_snapshot(&txn, &snapshot_meta, &data)?;
            txn.commit()?;
            Ok(machine)
        })
        .await
        .map_err(snap_err)?;
        let cluster = machine.state.cluster.clone().map(Arc::new);
        *self.shared.write() = machine;
        self.shared.cluster.send_replace(cluster);
        self.shared
            .hub
            .reset(meta.last_log_id.map_or(0, |l| l.index));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let read = || -> Result<Option<Snapshot>, DiskError> {
            let txn = self.db.begin_read()?;
            Ok(stored_snapshot(&txn)?.map(|(meta, data)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }))
        };
        read().map_err(|e| e.storage(ErrorSubject::Snapshot(None), ErrorVerb::Read))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (objects, cluster, last_applied, membership) = {
            let machine = self.shared.read();
            (
                machine.state.objects().collect::<Vec<_>>(),
                machine.state.cluster.clone(),
                machine.last_applied,
                machine.membership.clone(),
            )
        };
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let snap_err = |e: DiskError| {
            e.storage(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
            )
        };
        let data = disk::encode(&SnapshotBody { objects, cluster }).map_err(snap_err)?;
        let encoded_meta = disk::encode(&meta).map_err(snap_err)?;
        let db = self.db.clone();
        let stored = data.clone();
        disk::blocking(move || {
            let txn = db.begin_write()?;
            store_snapshot(&txn, &encoded_meta, &stored)?;
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(snap_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::Meta;
    use api::secret::Config;

    fn config(id: &str) -> Object {
        Object::Config(Config {
            meta: Meta::new(id),
            ..Config::default()
        })
    }

    /// A file written before snapshots had their own table: its snapshot (newer than its
    /// tables) is still found, loaded, and moved out of the meta table by the next one.
    #[tokio::test]
    async fn a_snapshot_kept_in_the_meta_table_of_an_older_file_is_loaded() {
        let dir = std::env::temp_dir().join(format!("orch-sm-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("state.redb");
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), 7)),
            last_membership: StoredMembership::default(),
            snapshot_id: "1-1-7-0".to_owned(),
        };
        let body = SnapshotBody {
            objects: vec![config("c1")],
            cluster: None,
        };
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("begin");
            let mut table = txn.open_table(META).expect("meta table");
            let encoded = disk::encode(&meta).expect("encode meta");
            table
                .insert("snapshot_meta", encoded.as_slice())
                .expect("insert");
            let data = disk::encode(&body).expect("encode body");
            table
                .insert("snapshot_data", data.as_slice())
                .expect("insert");
            drop(table);
            txn.commit().expect("commit");
        }
        let mut store = StateMachineStore::open(&path, 16).expect("open");
        let (applied, _) = store.applied_state().await.expect("applied");
        assert_eq!(applied, meta.last_log_id);
        assert!(store.shared.read().state.configs.get("c1").is_some());
        let current = store.get_current_snapshot().await.expect("read snapshot");
        assert_eq!(current.map(|s| s.meta), Some(meta));

        let mut builder = store.get_snapshot_builder().await;
        builder.build_snapshot().await.expect("build");
        let txn = store.db.begin_read().expect("read");
        let old = txn.open_table(META).expect("meta table");
        assert!(old.get("snapshot_data").expect("get").is_none());
        drop((old, txn, builder, store));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
