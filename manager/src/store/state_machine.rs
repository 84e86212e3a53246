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

/// `last_applied`, `membership`, `cluster`, `snapshot_meta`, `snapshot_data`.
const META: MetaTable = TableDefinition::new("state_meta");

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
        };
        Ok((store, closed))
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
    let snapshot: Option<SnapshotMeta> = disk::get(&meta, "snapshot_meta")?;
    if let Some(snapshot) = snapshot.filter(|s| s.last_log_id > last_applied) {
        let data = meta
            .get("snapshot_data")?
            .map(|v| v.value().to_vec())
            .unwrap_or_default();
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
            let mut table = txn.open_table(META)?;
            table.insert("snapshot_meta", snapshot_meta.as_slice())?;
            table.insert("snapshot_data", data.as_slice())?;
            drop(table);
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
            let table = txn.open_table(META)?;
            let Some(meta) = disk::get::<SnapshotMeta>(&table, "snapshot_meta")? else {
                return Ok(None);
            };
            let data = table
                .get("snapshot_data")?
                .map(|v| v.value().to_vec())
                .unwrap_or_default();
            Ok(Some(Snapshot {
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
            let mut table = txn.open_table(META)?;
            table.insert("snapshot_meta", encoded_meta.as_slice())?;
            table.insert("snapshot_data", stored.as_slice())?;
            drop(table);
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
