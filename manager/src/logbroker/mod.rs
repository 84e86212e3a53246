//! The log broker on the leader (swarmkit's): a reader of task logs makes a
//! subscription; the dispatcher adds each node's share of the active subscriptions to
//! the node's assignment stream; nodes publish lines (`POST /v1/session/logs`) and the
//! broker hands them to the reader. Dropping the [`Subscription`] ends it, and the nodes
//! stop reading at their next assignment set.
//!
//! Back-pressure: each reader has a bounded channel; a node's publish waits while it is
//! full, so a slow reader slows the nodes' posts (and their engine reads) instead of
//! growing memory.
//!
//! - [`table`]: the subscription table as a pure structure.

pub mod table;

pub use table::{Refused, Source};

use api::logs::{LogOptions, LogPublish, LogSubscription, TaskLogLine};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use table::Table;
use tokio::sync::{mpsc, watch};

/// Lines buffered per reader before publishers wait.
const READER_BUFFER: usize = 1024;

type Reader = mpsc::Sender<TaskLogLine>;

/// The broker of one manager (only the leader's has subscriptions).
pub struct LogBroker {
    table: Mutex<Table<Reader>>,
    /// Bumped on every change of the table (the assignment streams follow it).
    changed: watch::Sender<u64>,
    next_id: AtomicU64,
    /// The nodes whose assignment stream is open here, with how many streams.
    attached: Mutex<BTreeMap<String, usize>>,
}

impl Default for LogBroker {
    fn default() -> Self {
        LogBroker {
            table: Mutex::new(Table::default()),
            changed: watch::channel(0).0,
            next_id: AtomicU64::new(1),
            attached: Mutex::new(BTreeMap::new()),
        }
    }
}

/// A node's open assignment stream, as the broker counts it: the node hears of
/// subscriptions while one is held.
pub struct Attached {
    node: String,
    broker: Arc<LogBroker>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut attached = self.broker.attached();
        if let Some(n) = attached.get_mut(&self.node) {
            *n -= 1;
            if *n == 0 {
                attached.remove(&self.node);
            }
        }
    }
}

/// An active subscription: its lines, until every task is closed. Dropping it ends it.
pub struct Subscription {
    /// The subscription's id.
    pub id: String,
    /// The lines the nodes publish; `None` once every task is closed.
    pub lines: mpsc::Receiver<TaskLogLine>,
    broker: Arc<LogBroker>,
}

impl Subscription {
    /// The tasks not closed yet, with their nodes.
    pub fn open(&self) -> Vec<Source> {
        self.broker.table().open(&self.id)
    }

    /// Closes `task` without its node (it is down, or silent too long).
    pub fn close(&self, task: &str) {
        self.broker.table().close(&self.id, task);
        self.broker.bump();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.broker.table().remove(&self.id) {
            self.broker.bump();
        }
    }
}

impl LogBroker {
    /// A broker with no subscription.
    pub fn new() -> Arc<LogBroker> {
        Arc::new(LogBroker::default())
    }

    fn table(&self) -> MutexGuard<'_, Table<Reader>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn attached(&self) -> MutexGuard<'_, BTreeMap<String, usize>> {
        self.attached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an open assignment stream of `node` until the guard drops.
    pub fn attach(self: &Arc<Self>, node: &str) -> Attached {
        *self.attached().entry(node.to_owned()).or_default() += 1;
        Attached {
            node: node.to_owned(),
            broker: self.clone(),
        }
    }

    /// Whether `node` has an assignment stream open here (it hears of subscriptions).
    pub fn is_attached(&self, node: &str) -> bool {
        self.attached().contains_key(node)
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// A receiver that changes whenever the subscriptions do.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Starts a subscription reading `sources` with `options`.
    pub fn subscribe(self: &Arc<Self>, options: LogOptions, sources: Vec<Source>) -> Subscription {
        let id = format!("logs-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (reader, lines) = mpsc::channel(READER_BUFFER);
        if !sources.is_empty() {
            self.table().add(&id, options, sources, reader);
            self.bump();
        }
        Subscription {
            id,
            lines,
            broker: self.clone(),
        }
    }

    /// The share of `node` in the active subscriptions.
    pub fn for_node(&self, node: &str) -> Vec<LogSubscription> {
        self.table().for_node(node)
    }

    /// Takes a batch `node` published and hands its lines to the reader, waiting while
    /// the reader's buffer is full.
    pub async fn publish(&self, node: &str, batch: &LogPublish) -> Result<(), Refused> {
        let delivery = self.table().accept(node, batch)?;
        if batch.close {
            self.bump();
        }
        for line in delivery.lines {
            if delivery.reader.send(line).await.is_err() {
                return Err(Refused::Ended(batch.subscription.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::logs::{LogStream, PublishedLine};

    #[tokio::test]
    async fn published_lines_reach_the_reader_and_the_last_close_ends_it() {
        let broker = LogBroker::new();
        let mut changes = broker.changes();
        let source = Source {
            task: "t1".into(),
            node: "n1".into(),
            container: "c1".into(),
        };
        let mut sub = broker.subscribe(LogOptions::default(), vec![source]);
        assert!(changes.has_changed().unwrap_or(false));
        changes.mark_unchanged();
        assert_eq!(broker.for_node("n1").len(), 1);
        let batch = LogPublish {
            subscription: sub.id.clone(),
            task: "t1".into(),
            lines: vec![PublishedLine {
                time: String::new(),
                stream: LogStream::Stderr,
                line: "boom".into(),
            }],
            close: true,
            ..LogPublish::default()
        };
        broker.publish("n1", &batch).await.expect("published");
        let line = sub.lines.recv().await.expect("a line");
        assert_eq!((line.task.as_str(), line.node.as_str()), ("t1", "n1"));
        assert_eq!(line.stream, LogStream::Stderr);
        assert!(sub.lines.recv().await.is_none(), "closed: the stream ends");
        assert!(broker.for_node("n1").is_empty());
        assert!(changes.has_changed().unwrap_or(false));
    }

    #[test]
    fn a_node_is_attached_while_one_of_its_streams_is_open() {
        let broker = LogBroker::new();
        let a = broker.attach("n1");
        let b = broker.attach("n1");
        assert!(broker.is_attached("n1") && !broker.is_attached("n2"));
        drop(a);
        assert!(broker.is_attached("n1"));
        drop(b);
        assert!(!broker.is_attached("n1"));
    }

    #[tokio::test]
    async fn dropping_the_subscription_ends_it_for_the_nodes() {
        let broker = LogBroker::new();
        let source = Source {
            task: "t1".into(),
            node: "n1".into(),
            container: "c1".into(),
        };
        let sub = broker.subscribe(LogOptions::default(), vec![source]);
        let id = sub.id.clone();
        drop(sub);
        assert!(broker.for_node("n1").is_empty());
        let batch = LogPublish {
            subscription: id.clone(),
            task: "t1".into(),
            ..LogPublish::default()
        };
        assert_eq!(broker.publish("n1", &batch).await, Err(Refused::Ended(id)));
    }
}
