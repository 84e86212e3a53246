//! [`Store`]: the handle the rest of the manager uses — open, join, write (returns after
//! commit), read (linearizable or local), watch, metrics.

use super::cluster::ClusterRecord;
use super::command::{Applied, Command, CommandResult, Problem, Proposal, Rejection};
use super::disk::Closed;
use super::error::StoreError;
use super::log_store::{LogDisk, LogStore};
use super::network::{self, HttpNetwork, Transport};
use super::state::State;
use super::state_machine::{Shared, StateMachineStore};
use super::types::{Metrics, NodeId, Raft};
use super::watch::Watcher;
use api::cluster::Timestamp;
use openraft::error::{
    CheckIsLeaderError, ClientWriteError, ForwardToLeader, InitializeError, RaftError,
};
use openraft::{BasicNode, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Tuning of a store; the defaults suit managers on a real network.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// How often the leader sends heartbeats.
    pub heartbeat: Duration,
    /// A follower starts an election after a random time in this range without a leader.
    pub election_timeout: (Duration, Duration),
    /// Build a snapshot after this many log entries since the last one. The default,
    /// 20,000, keeps snapshots rare: each writes the whole state (megabytes) with
    /// fsync, and while the disk does, every manager's log fsync waits (at 5,000 it set
    /// the store-bench's p99 at 32 clients: 23-27 ms, against 11-17 ms now and 8-9 ms
    /// with no snapshot at all). etcd's is 100,000.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot (so slightly late followers need no snapshot).
    pub keep_logs: u64,
    /// How long sending and installing one snapshot chunk may take (openraft's 200 ms
    /// default is too short for megabytes of state).
    pub snapshot_timeout: Duration,
    /// Recent commits kept for watchers that resume.
    pub history: usize,
    /// How long `write` waits for a commit before answering `Timeout`.
    pub write_timeout: Duration,
    /// How RPCs reach peers; `None`: plain HTTP (tests of the store alone).
    pub transport: Option<Transport>,
}

impl Default for StoreConfig {
    /// A 100 ms heartbeat as etcd's. openraft 0.9 lets a follower that knew a leader
    /// campaign only after the leader's lease (`election_timeout.1`) plus its own random
    /// election timeout without a heartbeat: 1.1 to 1.4 s here (etcd: 1 to 2 s), and it
    /// gets votes once the others' 0.7 s lease ran out. So a dead leader is replaced in
    /// about 1.5 s, and only 11 missed heartbeats in a row start an election.
    fn default() -> Self {
        StoreConfig {
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(400), Duration::from_millis(700)),
            snapshot_every: 20_000,
            keep_logs: 1000,
            snapshot_timeout: Duration::from_secs(10),
            history: 4096,
            write_timeout: Duration::from_secs(10),
            transport: None,
        }
    }
}

/// A value read from the state and the version (last applied log index) it was read at.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

/// Most writes proposed together as one log entry.
const MAX_GROUP: usize = 64;
/// Most log entries of grouped writes being committed at once: while that many are, new
/// writes queue up and go together into the next entry.
const IN_FLIGHT: usize = 8;

/// A write waiting to be proposed, and where its result goes.
type Pending = (Command, oneshot::Sender<Result<CommandResult, StoreError>>);

/// One manager's replicated store.
pub struct Store {
    id: NodeId,
    addr: String,
    raft: Raft,
    shared: Arc<Shared>,
    /// The raft log's disk (the append RPC answers once it holds what it appended).
    log_disk: LogDisk,
    /// Writes to the task that proposes them (see [`Store::write`]).
    proposals: mpsc::UnboundedSender<Pending>,
    /// Log entries of writes being committed (at most [`IN_FLIGHT`]).
    in_flight: Arc<Semaphore>,
    write_timeout: Duration,
    /// Resolve when the two database files are closed.
    closed: tokio::sync::Mutex<Vec<Closed>>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn not_leader(f: ForwardToLeader<NodeId, BasicNode>) -> StoreError {
    StoreError::NotLeader {
        leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
    }
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> StoreError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(f),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(source)) => {
            StoreError::Membership {
                source: Box::new(source),
            }
        }
        RaftError::Fatal(source) => StoreError::Raft {
            source: Box::new(source),
        },
    }
}

/// Propose the writes from `queue`: up to [`IN_FLIGHT`] log entries at once (counting
/// writes proposed on their own, see [`Store::write`]), each with every write queued
/// when it is made (at most [`MAX_GROUP`]).
async fn propose(
    raft: Raft,
    in_flight: Arc<Semaphore>,
    mut queue: mpsc::UnboundedReceiver<Pending>,
) {
    loop {
        let Some(first) = queue.recv().await else {
            return;
        };
        // The semaphore is never closed.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(pending) => group.push(pending),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            commit_group(&raft, group).await;
            drop(permit);
        });
    }
}

/// Commit `group` as one log entry and answer each write.
async fn commit_group(raft: &Raft, group: Vec<Pending>) {
    let (mut commands, waiters): (Vec<Command>, Vec<_>) = group.into_iter().unzip();
    let command = match commands.pop() {
        Some(only) if commands.is_empty() && !matches!(only, Command::Each { .. }) => only,
        last => {
            commands.extend(last);
            Command::Each { commands }
        }
    };
    // This node proposes, so it is the leader: its clock stamps the change.
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let proposal = Proposal {
        at: Timestamp(millis(at)),
        command,
    };
    match raft.client_write(proposal).await {
        Ok(written) => {
            let results = match written.data {
                CommandResult::Each { results } if waiters.len() > 1 => results,
                result => vec![result],
            };
            // One result per write (apply answers each command of an `Each`).
            for (waiter, result) in waiters.into_iter().zip(results) {
                let _ = waiter.send(Ok(result));
            }
        }
        Err(e) => {
            for waiter in waiters {
                let _ = waiter.send(Err(write_error(e.clone())));
            }
        }
    }
}

impl Store {
    /// Open the store in `dir` (created if missing) as node `id`, reachable by peers at
    /// `addr` (`host:port` of the server that mounts [`Store::router`]).
    pub async fn open(
        dir: &Path,
        id: NodeId,
        addr: impl Into<String>,
        config: StoreConfig,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            op: "create data directory",
            path: dir.to_owned(),
            source,
        })?;
        let (log, log_closed) = LogStore::open_closing(&dir.join("log"))?;
        let (state_machine, state_closed) =
            StateMachineStore::open_closing(&dir.join("state.redb"), config.history)?;
        let log_disk = log.disk();
        let state_machine = state_machine.wait_for(log_disk.clone());
        let shared = state_machine.shared();
        let raft_config = openraft::Config {
            cluster_name: "orch".to_owned(),
            heartbeat_interval: millis(config.heartbeat),
            election_timeout_min: millis(config.election_timeout.0),
            election_timeout_max: millis(config.election_timeout.1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.keep_logs,
            // Well under the server's body limit, even as JSON (about 4 bytes per byte).
            snapshot_max_chunk_size: 1 << 20,
            install_snapshot_timeout: millis(config.snapshot_timeout),
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|source| StoreError::Config {
            source: Box::new(source),
        })?;
        let network = match config.transport {
            Some(transport) => HttpNetwork::with(transport),
            None => HttpNetwork::new(),
        }
        .clamping_commit_to(log_disk.clone());
        let raft = Raft::new(id, Arc::new(raft_config), network, log, state_machine)
            .await
            .map_err(|source| StoreError::Raft {
                source: Box::new(source),
            })?;
        let (proposals, queue) = mpsc::unbounded_channel();
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        tokio::spawn(propose(raft.clone(), in_flight.clone(), queue));
        Ok(Store {
            id,
            addr: addr.into(),
            raft,
            shared,
            log_disk,
            proposals,
            in_flight,
            write_timeout: config.write_timeout,
            closed: tokio::sync::Mutex::new(vec![log_closed, state_closed]),
        })
    }

    /// This manager's raft id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address peers reach this node at.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// This node's raft log on disk (e.g. to hold its writer in fault-injection tests).
    pub fn log_disk(&self) -> &LogDisk {
        &self.log_disk
    }

    /// The raft RPC endpoints, to serve at this node's address.
    pub fn router(&self) -> axum::Router {
        network::router(self.raft.clone(), self.log_disk.clone())
    }

    /// Start a new cluster of `members` (id -> address; this node is added if missing).
    /// Call once, on one node; a restarted node answers `AlreadyInitialized`.
    pub async fn initialize(
        &self,
        mut members: BTreeMap<NodeId, String>,
    ) -> Result<(), StoreError> {
        members.entry(self.id).or_insert_with(|| self.addr.clone());
        let members: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(StoreError::AlreadyInitialized)
            }
            Err(RaftError::APIError(InitializeError::NotInMembers(_))) => {
                Err(StoreError::NotAMember { id: self.id })
            }
            Err(RaftError::Fatal(source)) => Err(StoreError::Raft {
                source: Box::new(source),
            }),
        }
    }

    /// Add manager `id` at `addr` as a learner; returns once it caught up (leader only).
    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<(), StoreError> {
        self.raft
            .add_learner(id, BasicNode::new(addr), true)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// Make `voters` the voting members (learners not named stay learners; leader only).
    pub async fn change_membership(&self, voters: BTreeSet<NodeId>) -> Result<(), StoreError> {
        self.raft
            .change_membership(voters, true)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// Commit `command`; returns once it is committed and applied. On a follower:
    /// `NotLeader` with the leader it knows of. Rejections (`Conflict`, `NotFound`, ...)
    /// are committed too, and change nothing.
    ///
    /// Concurrent writes share log entries (group commit): while a few entries are being
    /// committed, the writes that arrive meanwhile are proposed together as one
    /// [`Command::Each`], each applied or refused on its own. A write that finds room
    /// proposes itself alone, on the caller's task: two hand-offs between tasks fewer
    /// when writes come one at a time.
    pub async fn write(&self, command: Command) -> Result<Applied, StoreError> {
        let (tx, rx) = oneshot::channel();
        let timeout = |_| StoreError::Timeout {
            after: self.write_timeout,
        };
        let written = match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                let alone = commit_group(&self.raft, vec![(command, tx)]);
                tokio::time::timeout(self.write_timeout, alone)
                    .await
                    .map_err(timeout)?;
                drop(permit);
                rx.await
            }
            Err(_) => {
                self.proposals
                    .send((command, tx))
                    .map_err(|_| StoreError::Stopped)?;
                tokio::time::timeout(self.write_timeout, rx)
                    .await
                    .map_err(timeout)?
            }
        };
        match written.map_err(|_| StoreError::Stopped)?? {
            CommandResult::Applied(applied) => Ok(applied),
            CommandResult::Rejected { reason } => Err(reason.into()),
            // Only a caller's own `Each` (refused inside the group) answers so.
            CommandResult::Each { .. } => Err(Rejection::Invalid {
                problem: Problem::NestedEach,
            }
            .into()),
        }
    }

    /// Change node `id` with `change` (which answers whether it changed anything) and
    /// write it naming the version it read, again on a conflict. `Ok(false)`: no such
    /// node, or nothing to change.
    pub async fn update_node(
        &self,
        id: &str,
        mut change: impl FnMut(&mut api::cluster::Node) -> bool,
    ) -> Result<bool, StoreError> {
        const TRIES: usize = 16;
        for _ in 0..TRIES {
            let Some(mut node) = self.view(|s| s.nodes.get(id).cloned()).value else {
                return Ok(false);
            };
            let version = node.meta.version;
            if !change(&mut node) {
                return Ok(false);
            }
            match self
                .write(Command::update(api::cluster::Object::Node(node), version))
                .await
            {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Timeout {
            after: self.write_timeout,
        })
    }

    /// The managers' raft addresses, the leader first.
    pub fn managers_leader_first(&self) -> Vec<String> {
        let metrics = self.metrics();
        let mut managers: Vec<(bool, String)> = metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (Some(*id) != metrics.current_leader, n.addr.clone()))
            .collect();
        managers.sort();
        managers.into_iter().map(|(_, addr)| addr).collect()
    }

    /// A linearizable read: confirms leadership with a quorum, waits until this node
    /// applied everything committed before the read, then runs `f` on the state.
    pub async fn read<T>(&self, f: impl FnOnce(&State) -> T) -> Result<Versioned<T>, StoreError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(self.view(f)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(not_leader(f)),
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(StoreError::NoQuorum)
            }
            Err(RaftError::Fatal(source)) => Err(StoreError::Raft {
                source: Box::new(source),
            }),
        }
    }

    /// A local (possibly stale) read of this node's applied state.
    pub fn view<T>(&self, f: impl FnOnce(&State) -> T) -> Versioned<T> {
        let machine = self.shared.read();
        Versioned {
            version: machine.last_applied.map_or(0, |l| l.index),
            value: f(&machine.state),
        }
    }

    /// Events of every commit after `version` (use the version a read returned).
    pub fn watch_from(&self, version: u64) -> Result<Watcher, StoreError> {
        self.shared.hub.watch_from(version)
    }

    /// The cluster record as this node last applied it, and its changes from now on.
    pub fn cluster(&self) -> tokio::sync::watch::Receiver<Option<Arc<ClusterRecord>>> {
        self.shared.cluster.subscribe()
    }

    /// Raft's view of this node: state, term, leader, log and applied indexes, members.
    pub fn metrics(&self) -> Metrics {
        self.raft.metrics().borrow().clone()
    }

    /// The leader this node knows of, as (id, address).
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let id = metrics.current_leader?;
        let node = metrics.membership_config.membership().get_node(&id)?;
        Some((id, node.addr.clone()))
    }

    /// Wait until this node knows a leader (or `timeout` passes).
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, StoreError> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|_| StoreError::Timeout { after: timeout })?;
        metrics
            .current_leader
            .ok_or(StoreError::Timeout { after: timeout })
    }

    /// Stop raft and wait until its tasks closed the data files (so the directory can be
    /// opened again, e.g. by a restart in the same process).
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let stopped = self.raft.shutdown().await.map_err(|_| StoreError::Stopped);
        let closed = std::mem::take(&mut *self.closed.lock().await);
        for file in closed {
            // An error only means the sender is gone, i.e. the file is closed.
            let _ = file.await;
        }
        stopped
    }

    /// The raft handle (for tests and the future HTTP layer's metrics).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }
}
