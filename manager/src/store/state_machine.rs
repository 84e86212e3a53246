//! The raft state machine: the [`State`] in memory for reads, persisted in `state.redb`
//! (one table per kind, plus `last_applied` and membership) so a restart loads it
//! instead of replaying the log; snapshots are the whole state as JSON.
//!
//! Apply runs the pure [`apply`](super::apply::apply) under the state lock, publishes
//! the events, and leaves the changed rows to [`StateFile`], which writes them to
//! `state.redb` a little later, several applies in one transaction (see
//! [`state_file`](super::state_file) for why that loses nothing). Entries reach apply
//! only once raft committed them and this node's log has them on disk.

use super::apply::apply;
use super::cluster::ClusterRecord;
use super::command::{Applied, CommandResult};
use super::disk::{self, Closed, DiskError};
use super::error::StoreError;
use super::log_store::LogDisk;
use super::state::State;
use super::state_file::{META, SNAPSHOT, StateFile, table_of};
use super::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use super::watch::Hub;
use api::cluster::{Event, Kind, Object};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
    file: Arc<StateFile>,
    path: Arc<PathBuf>,
    shared: Arc<Shared>,
    snapshot_seq: Arc<AtomicU64>,
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
            file: StateFile::new(Arc::new(db)),
            path: Arc::new(path.to_owned()),
            shared: Arc::new(Shared {
                machine: RwLock::new(machine),
                hub: Arc::new(Hub::new(floor, history)),
                cluster,
            }),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
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
                let changes: Vec<Event> = result
                    .applied()
                    .into_iter()
                    .flat_map(|applied| applied.changes.iter().cloned())
                    .collect();
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
        let count = u64::try_from(results.len()).unwrap_or(u64::MAX);
        let due = self.file.note(
            &published,
            cluster.as_ref(),
            (last_applied, membership),
            count,
        );
        if due {
            // Enough waits: written before this apply returns (raft waits for it).
            self.file
                .flush()
                .await
                .map_err(|e| sm_err(e, ErrorVerb::Write))?;
        }
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
        // Replaces the state: what waited to be written is older.
        let machine = self
            .file
            .transaction(true, move |txn| {
                write_all(txn, &machine)?;
                store_snapshot(txn, &snapshot_meta, &data)?;
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
            let txn = self.file.db().begin_read()?;
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
        // Under the state lock only a pointer per row (applies wait for this lock);
        // the rows are copied after it.
        let (rows, cluster, last_applied, membership) = {
            let machine = self.shared.read();
            (
                machine.state.shared_rows().collect::<Vec<_>>(),
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
        // Megabytes to copy and encode: off the async workers.
        let data = disk::blocking(move || {
            let objects = rows.iter().map(|row| row.object()).collect();
            drop(rows);
            disk::encode(&SnapshotBody { objects, cluster })
        })
        .await
        .map_err(snap_err)?;
        let encoded_meta = disk::encode(&meta).map_err(snap_err)?;
        let stored = data.clone();
        // With fsync (the default): every earlier write of the file is durable too.
        self.file
            .transaction(false, move |txn| {
                store_snapshot(txn, &encoded_meta, &stored)
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
        let txn = store.file.db().begin_read().expect("read");
        let old = txn.open_table(META).expect("meta table");
        assert!(old.get("snapshot_data").expect("get").is_none());
        drop((old, txn, builder, store));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// The applied index `state.redb` at `path` holds by itself.
    fn applied_in_file(path: &Path) -> Option<LogId> {
        let db = Database::create(path).expect("open");
        let txn = db.begin_read().expect("read");
        disk::get(&txn.open_table(META).expect("meta"), "last_applied")
            .expect("last_applied")
            .flatten()
    }

    fn creates(from: u64, to: u64) -> Vec<Entry> {
        (from..=to)
            .map(|i| Entry {
                log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), i),
                payload: EntryPayload::Normal(super::super::command::Proposal {
                    at: Default::default(),
                    command: super::super::command::Command::create(config(&format!("c{i}"))),
                }),
            })
            .collect()
    }

    /// Applies answer from memory; the file follows a little later, and a store that
    /// closes writes what still waits.
    #[tokio::test]
    async fn applied_changes_reach_the_file_behind_the_apply_and_all_of_them_at_close() {
        let dir = std::env::temp_dir().join(format!("orch-sm-behind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("state.redb");
        let (mut store, closed) = StateMachineStore::open_closing(&path, 16).expect("open");
        store.apply(creates(1, 10)).await.expect("apply");
        let mut flushed = None;
        for _ in 0..500 {
            flushed = store.file.db().begin_read().ok().and_then(|txn| {
                disk::get::<Option<LogId>>(&txn.open_table(META).ok()?, "last_applied")
                    .ok()
                    .flatten()
                    .flatten()
            });
            if flushed.is_some_and(|l| l.index == 10) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            flushed.map(|l| l.index),
            Some(10),
            "flushed behind the apply"
        );

        store.apply(creates(11, 15)).await.expect("apply");
        drop(store);
        // Resolves (with the sender gone) once the file is closed.
        let _ = closed.await;
        assert_eq!(applied_in_file(&path).map(|l| l.index), Some(15));
        let mut store = StateMachineStore::open(&path, 16).expect("reopen");
        let (applied, _) = store.applied_state().await.expect("applied");
        assert_eq!(applied.map(|l| l.index), Some(15));
        assert!(store.shared.read().state.configs.get("c15").is_some());
        drop(store);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
