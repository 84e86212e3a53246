//! Three managers in one process, each with its own raft server on 127.0.0.1: 10,000
//! concurrent writes, the leader killed mid-stream, every acknowledged write present
//! after the election and after a full restart from disk; a stale write refused.

use crate::common::TempDir;
use crate::common::node::{TestNode, listen};
use api::cluster::{Kind, Meta, Object, Task, TaskState};
use manager::store::{Applied, Command, NodeId, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const MANAGERS: u64 = 3;
const WRITERS: usize = 8;
const WRITES: usize = 10_000;
const KILL_AFTER: usize = 3_000;

/// The live managers, as the writers see them (a killed one is `None`).
#[derive(Clone, Default)]
struct Cluster {
    stores: Arc<Mutex<BTreeMap<NodeId, Option<Arc<Store>>>>>,
}

impl Cluster {
    fn get(&self, id: NodeId) -> Option<Arc<Store>> {
        self.stores.lock().ok()?.get(&id).cloned().flatten()
    }

    fn set(&self, id: NodeId, store: Option<Arc<Store>>) {
        if let Ok(mut stores) = self.stores.lock() {
            stores.insert(id, store);
        }
    }
}

fn task(id: &str, service: &str) -> Object {
    Object::Task(Box::new(Task {
        meta: Meta::new(id),
        service: service.into(),
        slot: 1,
        desired_state: TaskState::Running,
        ..Task::default()
    }))
}

fn next(id: NodeId) -> NodeId {
    id % MANAGERS + 1
}

/// What a client does: try the manager it last wrote through (`target`), follow
/// `NotLeader` hints, move on when a manager is gone or has no leader yet. `Ok(None)`: an earlier, unanswered attempt of this
/// create had committed (the retry found the object).
async fn write(
    cluster: &Cluster,
    target: &mut NodeId,
    command: Command,
) -> Result<Option<Applied>, StoreError> {
    let mut retried = false;
    for _ in 0..2_000 {
        let Some(store) = cluster.get(*target) else {
            *target = next(*target);
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        match store.write(command.clone()).await {
            Ok(applied) => return Ok(Some(applied)),
            Err(StoreError::Exists { .. }) if retried => return Ok(None),
            Err(StoreError::NotLeader {
                leader: Some((leader, _)),
            }) if leader != *target => *target = leader,
            Err(
                StoreError::NotLeader { .. }
                | StoreError::Timeout { .. }
                | StoreError::NoQuorum
                | StoreError::Raft { .. }
                | StoreError::Stopped,
            ) => {
                // The outcome of a timed-out or interrupted write is unknown: retry.
                retried = true;
                *target = next(*target);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Stopped)
}

/// Wait until some live manager is leader; returns it.
async fn leader(cluster: &Cluster, ids: impl Iterator<Item = NodeId> + Clone) -> Arc<Store> {
    loop {
        for id in ids.clone() {
            let Some(store) = cluster.get(id) else {
                continue;
            };
            if let Ok(leader) = store.wait_for_leader(Duration::from_secs(5)).await
                && let Some(store) = cluster.get(leader)
                && store.metrics().current_leader == Some(leader)
            {
                return store;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every id in `acked` is in the store (linearizable read on the leader).
async fn assert_all_present(store: &Store, acked: &BTreeSet<String>) {
    let read = store
        .read(|s| {
            acked
                .iter()
                .filter(|id| s.tasks.get(id).is_none())
                .cloned()
                .collect::<Vec<_>>()
        })
        .await
        .expect("linearizable read");
    assert!(
        read.value.is_empty(),
        "acknowledged writes lost: {:?}",
        read.value
    );
    let count = store.read(|s| s.tasks.len()).await.expect("count").value;
    assert_eq!(
        count,
        acked.len(),
        "every write was acknowledged exactly once"
    );
}

/// Wait until every live manager applied the same index, then compare their states.
async fn assert_replicas_equal(cluster: &Cluster) {
    let stores: Vec<Arc<Store>> = (1..=MANAGERS).filter_map(|id| cluster.get(id)).collect();
    let target = stores
        .iter()
        .filter_map(|s| s.metrics().last_applied.map(|l| l.index))
        .max()
        .unwrap_or(0);
    for store in &stores {
        store
            .raft()
            .wait(Some(Duration::from_secs(60)))
            .applied_index_at_least(Some(target), "replica caught up")
            .await
            .expect("replica caught up");
    }
    let states: Vec<_> = stores
        .iter()
        .map(|s| s.view(|state| state.clone()))
        .collect();
    for (store, state) in stores.iter().zip(&states) {
        let m = store.metrics();
        println!(
            "manager {}: applied {}, snapshot {:?}, purged {:?}",
            store.id(),
            state.version,
            m.snapshot.map(|l| l.index),
            m.purged.map(|l| l.index)
        );
        // No write is in flight: every replica holds the same objects.
        assert_eq!(state.value, states[0].value, "replicas diverged");
    }
}

async fn run() {
    let dirs: BTreeMap<NodeId, TempDir> = (1..=MANAGERS)
        .map(|id| (id, TempDir::new(&format!("m{id}"))))
        .collect();
    let mut addrs = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    let cluster = Cluster::default();
    for id in 1..=MANAGERS {
        let (listener, addr) = listen().await;
        let node = TestNode::start(dirs[&id].path(), id, listener).await;
        cluster.set(id, Some(node.store.clone()));
        addrs.insert(id, addr);
        nodes.insert(id, node);
    }
    nodes[&1]
        .store
        .initialize(addrs.clone())
        .await
        .expect("initialize");
    let first = leader(&cluster, 1..=MANAGERS).await;
    println!("leader elected: manager {}", first.id());

    // 8 writers create 10,000 tasks; the leader dies after 3,000 acknowledgements.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let kill_now = Arc::new(Notify::new());
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (cluster, acked, count, kill_now) = (
            cluster.clone(),
            acked.clone(),
            count.clone(),
            kill_now.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut target = 1;
            for n in (w..WRITES).step_by(WRITERS) {
                let id = format!("t{n:05}");
                let result = write(
                    &cluster,
                    &mut target,
                    Command::create(task(&id, &format!("svc{w}"))),
                )
                .await;
                result.unwrap_or_else(|e| panic!("write {id}: {e}"));
                acked.lock().expect("acked").insert(id);
                if count.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                    kill_now.notify_one();
                }
            }
        }));
    }
    kill_now.notified().await;
    let before_kill = started.elapsed();
    println!(
        "first {KILL_AFTER} writes in {before_kill:?}: {:.0} writes/s (steady state)",
        KILL_AFTER as f64 / before_kill.as_secs_f64()
    );
    let victim = leader(&cluster, 1..=MANAGERS).await.id();
    let acked_at_kill = count.load(Ordering::SeqCst);
    cluster.set(victim, None);
    if let Some(node) = nodes.remove(&victim) {
        node.stop().await;
    }
    let killed_at = Instant::now();
    println!("killed leader {victim} after {acked_at_kill} acknowledged writes");
    let survivors: Vec<NodeId> = (1..=MANAGERS).filter(|id| *id != victim).collect();
    let new_leader = leader(&cluster, survivors.iter().copied()).await;
    println!(
        "new leader {} after {:?}",
        new_leader.id(),
        killed_at.elapsed()
    );
    for writer in writers {
        writer.await.expect("writer");
    }
    let elapsed = started.elapsed();
    println!(
        "{WRITES} writes by {WRITERS} writers in {elapsed:?}: {:.0} writes/s (including the failover)",
        WRITES as f64 / elapsed.as_secs_f64()
    );
    let acked = acked.lock().expect("acked").clone();
    assert_eq!(acked.len(), WRITES);

    // After the election: everything acknowledged is there, on the new leader.
    let leader_now = leader(&cluster, survivors.iter().copied()).await;
    assert_all_present(&leader_now, &acked).await;

    // A write naming a stale version is refused.
    let (v1, object) = leader_now
        .read(|s| s.tasks.get("t00000").cloned())
        .await
        .expect("read")
        .value
        .map(|t| (t.meta.version, t))
        .expect("t00000");
    let mut moved = object.clone();
    moved.node = Some("n1".into());
    write(
        &cluster,
        &mut 1,
        Command::update(Object::Task(Box::new(moved.clone())), v1),
    )
    .await
    .expect("update");
    let stale = leader_now
        .write(Command::update(Object::Task(Box::new(object)), v1))
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { kind: Kind::Task, expected, .. }) if expected == v1),
        "stale write: {stale:?}"
    );
    assert_replicas_equal(&cluster).await;
    drop(leader_now);
    drop(new_leader);
    drop(first);

    // Full restart from disk, the killed manager included (it catches up by log or snapshot).
    for (id, node) in std::mem::take(&mut nodes) {
        cluster.set(id, None);
        node.stop().await;
    }
    for id in 1..=MANAGERS {
        let node = TestNode::restart(dirs[&id].path(), id, &addrs[&id]).await;
        cluster.set(id, Some(node.store.clone()));
        nodes.insert(id, node);
    }
    let restarted = leader(&cluster, 1..=MANAGERS).await;
    assert_all_present(&restarted, &acked).await;
    let moved_back = restarted
        .read(|s| s.tasks.get("t00000").cloned())
        .await
        .expect("read")
        .value;
    assert_eq!(moved_back.and_then(|t| t.node), Some("n1".to_owned()));
    assert_replicas_equal(&cluster).await;
    drop(restarted);
    for (_, node) in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_managers_survive_a_leader_kill_and_a_full_restart() {
    // A hang guard, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(600), run())
        .await
        .expect("test hung");
}
