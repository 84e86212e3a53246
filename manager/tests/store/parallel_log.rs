//! The leader writes its log in parallel with replicating it, and nothing outside raft
//! sees an entry before a majority has it on disk. A held log writer stands in for a
//! disk that stalls.

use crate::common::TempDir;
use crate::common::node::{TestNode, listen};
use api::cluster::{Meta, Object, Task, TaskState};
use manager::store::{Applied, Command, NodeId, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a write that must wait is watched not to finish: a wrong gate lets it
/// through in milliseconds.
const WATCH: Duration = Duration::from_millis(700);

struct Three {
    nodes: BTreeMap<NodeId, TestNode>,
    _dirs: Vec<TempDir>,
    leader: NodeId,
}

impl Three {
    async fn start() -> Three {
        let mut dirs = Vec::new();
        let mut nodes = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for id in 1..=3 {
            let dir = TempDir::new(&format!("parallel-log-{id}"));
            let (listener, addr) = listen().await;
            nodes.insert(id, TestNode::start(dir.path(), id, listener).await);
            addrs.insert(id, addr);
            dirs.push(dir);
        }
        nodes[&1].store.initialize(addrs).await.expect("initialize");
        let leader = nodes[&1]
            .store
            .wait_for_leader(Duration::from_secs(30))
            .await
            .expect("leader");
        Three {
            nodes,
            _dirs: dirs,
            leader,
        }
    }

    fn store(&self, id: NodeId) -> &Arc<Store> {
        &self.nodes[&id].store
    }

    fn leader(&self) -> &Arc<Store> {
        self.store(self.leader)
    }

    fn followers(&self) -> Vec<NodeId> {
        (1..=3).filter(|id| *id != self.leader).collect()
    }

    /// Start a write of a new task on the leader.
    fn write(&self, id: &str) -> JoinHandle<Result<Applied, StoreError>> {
        let store = self.leader().clone();
        let object = Object::Task(Box::new(Task {
            meta: Meta::new(id),
            service: "web".into(),
            slot: 1,
            desired_state: TaskState::Running,
            ..Task::default()
        }));
        tokio::spawn(async move { store.write(Command::create(object)).await })
    }

    /// The follower `id` as the leader's replication has it (durably, there).
    fn matched(&self, id: NodeId) -> u64 {
        self.leader()
            .metrics()
            .replication
            .and_then(|r| r.get(&id).copied().flatten())
            .map_or(0, |l| l.index)
    }

    fn applied(&self, id: NodeId) -> u64 {
        self.store(id).metrics().last_applied.map_or(0, |l| l.index)
    }

    async fn stop(self) {
        for (_, node) in self.nodes {
            node.stop().await;
        }
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_replicates_before_its_disk_has_the_entry_and_answers_only_after() {
    let three = Three::start().await;
    let first = three.write("before").await.expect("task").expect("write");
    let followers = three.followers();

    let hold = three.leader().log_disk().hold();
    let write = three.write("held");
    let index = first.version + 1;
    // Both followers hold the entry on disk while the leader's disk has none of it:
    // replication did not wait for the leader's flush.
    eventually("both followers have the entry on disk", || {
        followers.iter().all(|f| three.matched(*f) >= index)
    })
    .await;
    assert!(
        three
            .leader()
            .log_disk()
            .durable_last()
            .map_or(0, |l| l.index)
            < index,
        "the leader's disk was held"
    );
    // Raft counts that a commit, but nobody may see it: not the client, not the
    // leader's state, not the followers (the commit index they are told stops at the
    // leader's disk).
    tokio::time::sleep(WATCH).await;
    assert!(
        !write.is_finished(),
        "answered before the leader's disk had it"
    );
    for id in 1..=3 {
        assert!(
            three.applied(id) < index,
            "manager {id} applied an entry only the followers had on disk"
        );
    }

    drop(hold);
    let applied = tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("answered once the disk went on")
        .expect("task")
        .expect("write");
    assert_eq!(applied.version, index);
    eventually("every manager applied it", || {
        (1..=3).all(|id| three.applied(id) >= index)
    })
    .await;
    three.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_counts_for_an_entry_only_once_its_disk_has_it() {
    let three = Three::start().await;
    let first = three.write("before").await.expect("task").expect("write");
    let followers = three.followers();

    // One follower stalls: the leader and the other one are a majority on disk.
    let one = three.store(followers[0]).log_disk().hold();
    three.write("one-held").await.expect("task").expect("write");
    assert!(three.matched(followers[0]) <= first.version);

    // Both stall: only the leader's disk has the entry, no majority.
    let other = three.store(followers[1]).log_disk().hold();
    let write = three.write("both-held");
    tokio::time::sleep(WATCH).await;
    assert!(!write.is_finished(), "answered with only the leader's disk");
    for f in &followers {
        assert!(
            three.matched(*f) <= first.version + 1,
            "follower {f} acknowledged what its disk does not have"
        );
    }

    drop(other);
    tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("answered once a follower's disk went on")
        .expect("task")
        .expect("write");
    drop(one);
    let last = three.leader().metrics().last_log_index.unwrap_or(0);
    eventually("the stalled follower caught up", || {
        three.matched(followers[0]) >= last
    })
    .await;
    three.stop().await;
}
