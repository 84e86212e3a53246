//! The raft log, vote and commit index in a write-ahead log ([`super::wal`]), written by
//! a thread of its own.
//!
//! **The leader writes its log in parallel with replicating it**, as etcd does.
//! openraft 0.9's core waits for the leader's own append to be flushed before it sends
//! the entries to the followers, so each write would wait for two fsyncs in a row
//! (the leader's, then a follower's). Here `append` queues the entries for the log
//! writer and reports them flushed at once; raft's commit may then count the leader's
//! own entry before its disk has it. Three gates on the real durability
//! ([`LogDisk`]) keep that invisible outside raft:
//! - a follower answers an append RPC only once what it appended is on its disk
//!   (`network::append` waits), so a leader counts a follower only for what it holds
//!   durably;
//! - the state machine applies an entry only once it is on this node's disk
//!   (`StateMachineStore::apply` waits), so a client is answered, and a watcher told,
//!   only when the leader's copy plus the followers' that raft counted make a majority
//!   on disk;
//! - the leader sends followers a commit index no further than its own durable log
//!   (`network::PeerClient::append_entries` clamps it), so no follower applies an entry
//!   a crash of the leader could still take away.
//!
//! The writer takes every queued operation into one frame of the log (one `pwrite` and
//! one `fdatasync` for all of them): under load, many appends share a commit. `save_vote` waits for its
//! write to be durable before it returns. The committed index is a hint (openraft
//! recovers it from a quorum), written with the next batch.
//!
//! Reads see the log as raft wrote it, durable or not: the newest entries (at least
//! those not yet durable) are kept in memory, with the operation that wrote each; older
//! ones are read from the log's files, which hold them durably.
//!
//! A data directory of an earlier orch has the log in `log.redb`; it is copied into the
//! write-ahead log once, at open ([`super::log_redb`]).

use super::consecutive::Consecutive;
use super::disk::{Closed, DiskError};
use super::error::StoreError;
use super::log_redb;
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use super::wal::{Op, Wal, WalReader};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::sync::{oneshot, watch};

/// Entries kept in memory once durable (the newest; a follower that is further behind
/// is read from the files).
const TAIL: usize = 512;
/// Most operations the writer commits together.
const BATCH: usize = 1024;

/// An operation handed to the writer, numbered.
struct Queued {
    seq: u64,
    op: Op,
    /// The last log id once this operation is done.
    last_after: Option<LogId>,
}

/// How far the log on disk has got.
#[derive(Clone, Debug, Default)]
struct Disk {
    /// Every operation up to this number is durable.
    seq: u64,
    /// The last log id of the durable log.
    last: Option<LogId>,
    /// Set when a write failed: nothing after it is durable, ever.
    failed: Option<Arc<str>>,
}

/// The log as raft sees it.
struct View {
    /// The number of the last operation queued.
    queued: u64,
    /// Every operation up to this number is durable.
    durable: u64,
    /// The log's newest entries, each with the operation that wrote it. Every operation
    /// not yet durable touches only entries in here.
    tail: Consecutive<(Entry, u64)>,
    last_purged: Option<LogId>,
    /// The last log id (the last purged one when the log is empty).
    last: Option<LogId>,
    /// The committed index raft saved last and the operation number it follows.
    committed: Option<(Option<LogId>, u64)>,
}

impl View {
    fn append(&mut self, entries: &[Entry], seq: u64) {
        for entry in entries {
            self.tail.put(entry.log_id.index, (entry.clone(), seq));
            self.last = Some(entry.log_id);
        }
    }

    /// Remove entries from `index` on; the last log id is then the one before.
    fn truncate(&mut self, index: u64, before: Option<LogId>) {
        self.tail.truncate(index);
        self.last = before.or(self.last_purged);
    }

    fn purge(&mut self, upto: LogId) {
        self.tail.purge(upto.index);
        self.last_purged = Some(upto);
        if self.last.is_none_or(|l| l.index <= upto.index) {
            self.last = Some(upto);
        }
    }

    /// Drop durable entries beyond the [`TAIL`] newest from memory.
    fn trim(&mut self) {
        let (durable, below) = (self.durable, self.tail.end().saturating_sub(TAIL as u64));
        self.tail.drop_front_while(below, |(_, s)| *s <= durable);
    }

    /// The number of the operation that wrote entry `index`, if it is in memory.
    fn writer_of(&self, index: u64) -> Option<u64> {
        self.tail.get(index).map(|(_, s)| *s)
    }
}

/// What the [`LogStore`] handles and the writer thread share.
struct Shared {
    view: Mutex<View>,
    disk: watch::Sender<Disk>,
    /// Holds of the writer ([`LogDisk::hold`]) in force.
    holds: Mutex<usize>,
    released: Condvar,
}

impl Shared {
    fn view(&self) -> MutexGuard<'_, View> {
        // Holds plain values, each changed in one step: a panic elsewhere cannot leave
        // them half-written.
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn holds(&self) -> MutexGuard<'_, usize> {
        self.holds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Block the writer while a hold is in force.
    fn wait_unheld(&self) {
        let mut holds = self.holds();
        while *holds > 0 {
            holds = self.released.wait(holds).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The log writer is stopped while this lives: what a stalled disk looks like.
pub struct LogHold {
    shared: Arc<Shared>,
}

impl Drop for LogHold {
    fn drop(&mut self) {
        *self.shared.holds() -= 1;
        self.shared.released.notify_all();
    }
}

/// Waits for the log on disk: what the gates of the module documentation use.
#[derive(Clone)]
pub struct LogDisk {
    shared: Arc<Shared>,
}

/// The log could not be written: nothing after the failure is durable.
#[derive(Debug, thiserror::Error)]
#[error("the raft log could not be written: {0}")]
pub struct LogWriteFailed(Arc<str>);

impl LogDisk {
    /// Wait until every operation queued so far is durable.
    pub async fn queued(&self) -> Result<(), LogWriteFailed> {
        let seq = self.shared.view().queued;
        self.until(seq).await
    }

    /// Wait until entry `index` (as the log holds it now) is durable.
    pub(crate) async fn entry(&self, index: u64) -> Result<(), LogWriteFailed> {
        let seq = self.shared.view().writer_of(index);
        match seq {
            Some(seq) => self.until(seq).await,
            None => Ok(()),
        }
    }

    /// Stop the log writer until the returned hold drops, as a disk that stalls would
    /// (fault-injection tests: what raft and its clients may see meanwhile).
    pub fn hold(&self) -> LogHold {
        *self.shared.holds() += 1;
        LogHold {
            shared: self.shared.clone(),
        }
    }

    /// The last log id on disk.
    pub fn durable_last(&self) -> Option<LogId> {
        self.shared.disk.borrow().last
    }

    async fn until(&self, seq: u64) -> Result<(), LogWriteFailed> {
        let mut rx = self.shared.disk.subscribe();
        let disk = rx
            .wait_for(|d| d.seq >= seq || d.failed.is_some())
            .await
            .map_err(|_| LogWriteFailed("the log writer stopped".into()))?;
        match &disk.failed {
            Some(why) if disk.seq < seq => Err(LogWriteFailed(why.clone())),
            _ => Ok(()),
        }
    }
}

/// The raft log store (cheap to clone: clones share the files and the writer).
#[derive(Clone)]
pub struct LogStore {
    wal: WalReader,
    shared: Arc<Shared>,
    /// To the writer thread; it ends when the last clone drops.
    writer: mpsc::Sender<Queued>,
}

impl LogStore {
    /// Open or create the log in the directory `dir` (moving `dir.redb`, the log of an
    /// earlier orch, into it first).
    pub fn open(dir: &Path) -> Result<LogStore, StoreError> {
        Ok(LogStore::open_closing(dir)?.0)
    }

    /// Open, and learn when the files are closed (all clones dropped and the writer done).
    pub(crate) fn open_closing(dir: &Path) -> Result<(LogStore, Closed), StoreError> {
        log_redb::migrate(&dir.with_extension("redb"), dir)?;
        let (wal, reader) = Wal::open(dir).map_err(|e| e.store("open the raft log", dir))?;
        let last = reader
            .last()
            .map_err(|e| e.store("read the log's end", dir))?;
        let last_purged = reader.meta().last_purged;
        let view = View {
            queued: 0,
            durable: 0,
            tail: Consecutive::new(last.map_or(0, |l| l.index + 1)),
            last_purged,
            last,
            committed: None,
        };
        let shared = Arc::new(Shared {
            view: Mutex::new(view),
            disk: watch::Sender::new(Disk {
                seq: 0,
                last,
                failed: None,
            }),
            holds: Mutex::new(0),
            released: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel();
        let (closing, closed) = oneshot::channel::<()>();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("raft-log".into())
            .spawn(move || {
                write_loop(wal, &thread_shared, &rx);
                // The files (and their lock) are closed: a new open may take them.
                drop(closing);
            })
            .map_err(|source| StoreError::Io {
                op: "start the raft log writer",
                path: dir.to_owned(),
                source,
            })?;
        let store = LogStore {
            wal: reader,
            shared,
            writer: tx,
        };
        Ok((store, closed))
    }

    /// Waits for this log's disk (for the state machine and the raft RPCs).
    pub fn disk(&self) -> LogDisk {
        LogDisk {
            shared: self.shared.clone(),
        }
    }

    /// Queue `op` (changing the view with `change` under the same lock, so operations
    /// reach the writer in the order raft made them); its number.
    fn queue(&self, op: Op, change: impl FnOnce(&mut View, u64, &Op)) -> Result<u64, String> {
        let mut view = self.shared.view();
        if let Some(why) = &self.shared.disk.borrow().failed {
            return Err(why.to_string());
        }
        let seq = view.queued + 1;
        change(&mut view, seq, &op);
        view.queued = seq;
        let queued = Queued {
            seq,
            op,
            last_after: view.last,
        };
        self.writer
            .send(queued)
            .map_err(|_| "the log writer stopped".to_owned())?;
        Ok(seq)
    }
}

fn log_err(e: DiskError, verb: ErrorVerb) -> StorageError {
    e.storage(ErrorSubject::Logs, verb)
}

fn io_err(why: impl ToString, subject: ErrorSubject<u64>, verb: ErrorVerb) -> StorageError {
    openraft::StorageIOError::new(subject, verb, &std::io::Error::other(why.to_string())).into()
}

/// The writer thread: takes whatever is queued, writes it in one frame, marks it
/// durable; stops at the first failure (everything after it is refused).
fn write_loop(mut wal: Wal, shared: &Shared, rx: &mpsc::Receiver<Queued>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let Some((seq, last)) = batch.last().map(|q| (q.seq, q.last_after)) else {
            continue;
        };
        shared.wait_unheld();
        let committed = {
            let mut view = shared.view();
            match view.committed {
                Some((committed, after)) if after <= seq => {
                    view.committed = None;
                    Some(Op::Committed(committed))
                }
                _ => None,
            }
        };
        let written = wal.write(batch.iter().map(|q| &q.op).chain(committed.as_ref()));
        let mut view = shared.view();
        match written {
            Ok(()) => {
                view.durable = seq;
                view.trim();
                shared.disk.send_modify(|d| {
                    d.seq = seq;
                    d.last = last;
                });
            }
            Err(e) => {
                let why: Arc<str> = e.to_string().into();
                eprintln!("orch manager: the raft log could not be written: {why}");
                shared.disk.send_modify(|d| d.failed = Some(why));
                return;
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        // Entries before the tail are durable and touched by nothing queued: the files
        // have them as they are.
        let (from_memory, tail_start) = {
            let view = self.shared.view();
            let entries: Vec<Entry> = view
                .tail
                .range(start, end)
                .map(|(e, _)| e.clone())
                .collect();
            (entries, view.tail.start())
        };
        if start >= tail_start {
            return Ok(from_memory);
        }
        let mut entries = self
            .wal
            .entries(start, end.min(tail_start))
            .map_err(|e| log_err(e, ErrorVerb::Read))?;
        entries.extend(from_memory);
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let view = self.shared.view();
        Ok(LogState {
            last_purged_log_id: view.last_purged,
            last_log_id: view.last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let err = |why: String| io_err(why, ErrorSubject::Vote, ErrorVerb::Write);
        let seq = self.queue(Op::Vote(*vote), |_, _, _| ()).map_err(err)?;
        self.disk().until(seq).await.map_err(|e| err(e.to_string()))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        // Durable when `save_vote` returned, so the files have the last one.
        Ok(self.wal.meta().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut view = self.shared.view();
        // Written with the batch holding the last entry queued (which it cannot pass).
        let after = view.queued;
        view.committed = Some((committed, after));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        if let Some((committed, _)) = self.shared.view().committed {
            return Ok(committed);
        }
        Ok(self.wal.meta().committed)
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
        let op = Op::Append(entries.into_iter().collect());
        let queued = self.queue(op, |view, seq, op| {
            if let Op::Append(entries) = op {
                view.append(entries, seq);
            }
        });
        match queued {
            Ok(_) => {
                // Not durable yet: see the module documentation for why raft may be
                // told so, and what waits for the disk instead.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(why) => {
                callback.log_io_completed(Err(std::io::Error::other(why.clone())));
                Err(io_err(why, ErrorSubject::Logs, ErrorVerb::Write))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The entry before `log_id` (the new last one), as the log holds it now.
        let before = match log_id.index.checked_sub(1) {
            Some(prev) => self
                .try_get_log_entries(prev..=prev)
                .await?
                .pop()
                .map(|e| e.log_id),
            None => None,
        };
        self.queue(Op::Truncate(log_id.index), |view, _, _| {
            view.truncate(log_id.index, before)
        })
        .map(|_| ())
        .map_err(|why| io_err(why, ErrorSubject::Logs, ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.queue(Op::Purge(log_id), |view, _, _| view.purge(log_id))
            .map(|_| ())
            .map_err(|why| io_err(why, ErrorSubject::Logs, ErrorVerb::Delete))
    }
}
