//! The state machine applies without fsync (the raft log is the durable copy): the
//! files as a crash leaves them — copied while the store runs, so redb finds what it
//! last synced — still restart to every acknowledged write, also when snapshots let
//! raft purge the log. Concurrent writes share log entries and each gets its own answer.

use crate::common::TempDir;
use crate::common::node::{TestNode, listen, test_config};
use api::cluster::{Kind, Meta, Object, Task, TaskState};
use manager::store::state_machine::StateMachineStore;
use manager::store::{Command, Store, StoreError};
use openraft::storage::RaftStateMachine;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn task(id: &str) -> Object {
    Object::Task(Box::new(Task {
        meta: Meta::new(id),
        service: "web".into(),
        slot: 1,
        desired_state: TaskState::Running,
        ..Task::default()
    }))
}

/// A single-manager store in `dir`, leader, with snapshots every `snapshot_every`
/// entries and no log kept behind them (purges go as far as raft allows).
async fn single(dir: &Path, snapshot_every: u64) -> TestNode {
    let (listener, _) = listen().await;
    let config = manager::store::StoreConfig {
        snapshot_every,
        keep_logs: 0,
        ..test_config()
    };
    let node = TestNode::serve(dir, 1, listener, config, |_| axum::Router::new()).await;
    match node.store.initialize(BTreeMap::new()).await {
        Ok(()) | Err(StoreError::AlreadyInitialized) => {}
        Err(e) => panic!("initialize: {e}"),
    }
    node.store
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("leader");
    node
}

/// Copy the store's files as they are on disk now: what a crash of the process leaves.
fn crash_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("log")).expect("create copy dir");
    std::fs::copy(from.join("state.redb"), to.join("state.redb")).expect("copy state.redb");
    for file in std::fs::read_dir(from.join("log")).expect("list the log's files") {
        let file = file.expect("list the log's files").path();
        let name = file.file_name().expect("a file name");
        std::fs::copy(&file, to.join("log").join(name)).expect("copy a log file");
    }
}

/// The last applied index `state.redb` in `dir` holds by itself.
async fn applied_on_disk(dir: &Path) -> u64 {
    let mut machine = StateMachineStore::open(&dir.join("state.redb"), 16).expect("open state");
    let (applied, _) = machine.applied_state().await.expect("applied state");
    applied.map_or(0, |l| l.index)
}

async fn crash_restart(snapshot_every: u64, writes: usize) {
    let dir = TempDir::new("durability");
    let live = dir.path().join("live");
    let node = single(&live, snapshot_every).await;
    let mut acked = BTreeSet::new();
    let mut last = 0;
    for i in 0..writes {
        let id = format!("t{i:05}");
        let applied = node
            .store
            .write(Command::create(task(&id)))
            .await
            .expect("write");
        last = applied.version;
        acked.insert(id);
    }
    // Idle now (one manager: no heartbeats), so the copy is not torn by a commit.
    let crashed = dir.path().join("crashed");
    crash_copy(&live, &crashed);
    node.stop().await;

    // The state file alone is behind: the last applies were not synced.
    let on_disk = applied_on_disk(&crashed).await;
    assert!(
        on_disk < last,
        "state.redb holds {on_disk}, the last acknowledged write is {last}"
    );

    // Restarted from the crashed files, raft applies the log again: nothing is lost.
    let node = single(&crashed, snapshot_every).await;
    let present: BTreeSet<String> = node
        .store
        .read(|s| s.tasks.iter().map(|t| t.meta.id.clone()).collect())
        .await
        .expect("read after restart")
        .value;
    let missing: Vec<&String> = acked.difference(&present).collect();
    assert!(missing.is_empty(), "lost acknowledged writes: {missing:?}");
    assert!(node.store.view(|_| ()).version >= last);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_no_acknowledged_write_the_state_file_had_not_synced() {
    // Fewer entries than an apply that syncs: the state file holds none of them.
    tokio::time::timeout(Duration::from_secs(300), crash_restart(100_000, 300))
        .await
        .expect("test hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_snapshots_and_purges_loses_no_acknowledged_write() {
    // Snapshots every 250 entries purge the log behind them; the last writes after the
    // last snapshot are only in the log.
    tokio::time::timeout(Duration::from_secs(300), crash_restart(250, 1130))
        .await
        .expect("test hung");
}

/// `writers` concurrent creates of distinct tasks, and as many of one id.
async fn concurrent_writes(store: Arc<Store>, writers: usize) {
    let mut distinct = tokio::task::JoinSet::new();
    let mut same = tokio::task::JoinSet::new();
    for i in 0..writers {
        let writer = store.clone();
        distinct.spawn(async move {
            let id = format!("c{i:04}");
            let applied = writer.write(Command::create(task(&id))).await;
            (id, applied)
        });
        let writer = store.clone();
        same.spawn(async move { writer.write(Command::create(task("same"))).await });
    }
    while let Some(joined) = distinct.join_next().await {
        let (id, applied) = joined.expect("writer");
        let applied = applied.expect("a create of a new id");
        // Each write is answered with its own change.
        let ids: Vec<&str> = applied
            .changes
            .iter()
            .map(|e| match e {
                api::cluster::Event::Created { object } => object.meta().id.as_str(),
                other => panic!("a create answered {other:?}"),
            })
            .collect();
        assert_eq!(ids, vec![id.as_str()]);
    }
    let mut created = 0;
    while let Some(joined) = same.join_next().await {
        match joined.expect("writer") {
            Ok(_) => created += 1,
            Err(StoreError::Exists {
                kind: Kind::Task, ..
            }) => {}
            Err(e) => panic!("a create of an existing id answered {e}"),
        }
    }
    assert_eq!(created, 1, "exactly one create of the same id succeeds");
    let count = store
        .read(|s| s.tasks.iter().count())
        .await
        .expect("read")
        .value;
    assert_eq!(count, writers + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_each_get_their_own_answer() {
    let run = async {
        let dir = TempDir::new("group");
        let node = single(dir.path(), 100_000).await;
        concurrent_writes(node.store.clone(), 200).await;
        node.stop().await;
    };
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("test hung");
}
