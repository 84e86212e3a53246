//! One manager: writes return after commit, reads, version conflicts, watch, restart
//! from disk.

use crate::common::TempDir;
use crate::common::node::{TestNode, listen};
use api::cluster::{Event, Kind, Meta, Node, NodeRole, Object, Task, TaskState};
use manager::store::{Command, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;

fn task(id: &str, service: &str) -> Object {
    Object::Task(Box::new(Task {
        meta: Meta::new(id),
        service: service.into(),
        slot: 1,
        desired_state: TaskState::Running,
        ..Task::default()
    }))
}

async fn run() {
    let dir = TempDir::new("single");
    let (listener, addr) = listen().await;
    let node = TestNode::start(dir.path(), 1, listener).await;
    let store = node.store.clone();
    store.initialize(BTreeMap::new()).await.expect("initialize");
    store
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("leader");

    let mut watcher = store.watch_from(store.view(|_| ()).version).expect("watch");
    let mut manager = Node {
        meta: Meta::new("n1"),
        ..Node::default()
    };
    manager.spec.role = NodeRole::Manager;
    let created = store
        .write(Command::create(Object::Node(manager.clone())))
        .await
        .expect("create node");
    let batch = Command::Batch {
        commands: vec![
            Command::create(task("t1", "web")),
            Command::create(task("t2", "web")),
        ],
    };
    let tasks = store.write(batch).await.expect("batch");
    assert!(tasks.version > created.version);

    // Watch: the node, its commit, both tasks, their commit.
    let mut seen = Vec::new();
    for _ in 0..5 {
        let event = tokio::time::timeout(Duration::from_secs(30), watcher.next())
            .await
            .expect("event in time");
        seen.push(event.expect("event"));
    }
    assert!(matches!(&seen[0], Event::Created { object: Object::Node(n) } if n.meta.id == "n1"));
    assert_eq!(
        seen[1],
        Event::Commit {
            version: created.version
        }
    );
    assert_eq!(
        seen[4],
        Event::Commit {
            version: tasks.version
        }
    );

    // Linearizable and local reads agree.
    let read = store
        .read(|s| s.tasks.by_service("web").count())
        .await
        .expect("read");
    assert_eq!(read.value, 2);
    assert_eq!(read.version, store.view(|_| ()).version);
    assert_eq!(
        store
            .view(|s| s.nodes.by_role(NodeRole::Manager).count())
            .value,
        1
    );

    // A stale version is refused with Conflict and changes nothing.
    let v1 = created.version;
    manager.meta.labels.insert("zone".into(), "a".into());
    let updated = store
        .write(Command::update(Object::Node(manager.clone()), v1))
        .await
        .expect("update");
    let stale = store
        .write(Command::update(Object::Node(manager.clone()), v1))
        .await;
    match stale {
        Err(StoreError::Conflict {
            kind: Kind::Node,
            id,
            expected,
            actual,
        }) => {
            assert_eq!((id.as_str(), expected, actual), ("n1", v1, updated.version));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let missing = store.write(Command::delete(Kind::Task, "nope", None)).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    let before = store.view(|s| s.clone());

    // Restart from disk: same state, same version; initialize again is refused.
    node.stop().await;
    drop(store);
    let node = TestNode::restart(dir.path(), 1, &addr).await;
    let store = node.store.clone();
    store
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("leader after restart");
    let after = store.read(|s| s.clone()).await.expect("read after restart");
    assert_eq!(after.value, before.value);
    assert!(after.version >= before.version);
    assert!(matches!(
        store.initialize(BTreeMap::new()).await,
        Err(StoreError::AlreadyInitialized)
    ));
    // Commits before the restart are not in the new history: resync.
    assert!(matches!(
        store.watch_from(1),
        Err(StoreError::Compacted { .. })
    ));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_manager_commits_reads_watches_and_restarts() {
    // A hang guard, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(120), run())
        .await
        .expect("test hung");
}

/// POST a raw body to the raft endpoint and return the HTTP status line.
async fn post_raw(addr: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_raft_rpcs_get_client_errors() {
    let run = async {
        let dir = TempDir::new("rpc");
        let (listener, addr) = listen().await;
        let node = TestNode::start(dir.path(), 1, listener).await;
        for (path, body) in [
            ("/raft/vote", "{not json"),
            ("/raft/append", r#"{"vote": 3}"#),
            ("/raft/snapshot", "[]"),
        ] {
            let status = post_raw(&addr, path, body).await;
            let code: u16 = status
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            assert!((400..500).contains(&code), "{path}: {status}");
        }
        node.stop().await;
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("test hung");
}
