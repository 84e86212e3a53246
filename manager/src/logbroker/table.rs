//! The broker's subscription table as a pure structure: which subscriptions a node
//! serves, and whether a published batch belongs to one (swarmkit's log broker).

use api::logs::{LogOptions, LogPublish, LogSource, LogSubscription, TaskLogLine};
use std::collections::BTreeMap;

/// Where one task of a subscription is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The task's id.
    pub task: String,
    /// The node that runs it.
    pub node: String,
    /// The container the node reported for it.
    pub container: String,
}

/// One active subscription; `R` is where its lines go (a channel on the leader).
#[derive(Debug)]
pub struct Active<R> {
    pub options: LogOptions,
    /// Tasks whose node has not closed them yet, by id.
    pub open: BTreeMap<String, Source>,
    pub reader: R,
}

/// Why a published batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("log subscription {0} is not active (its reader went away or it ended)")]
    Ended(String),
    #[error("task {task} is not read by log subscription {subscription} on node {node}")]
    NotOurs {
        subscription: String,
        task: String,
        node: String,
    },
}

/// What to do with an accepted batch.
#[derive(Debug)]
pub struct Delivery<R> {
    /// The lines for the reader.
    pub lines: Vec<TaskLogLine>,
    /// The reader's end (a clone).
    pub reader: R,
}

/// The active subscriptions by id.
#[derive(Debug)]
pub struct Table<R> {
    active: BTreeMap<String, Active<R>>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Table {
            active: BTreeMap::new(),
        }
    }
}

impl<R: Clone> Table<R> {
    /// Adds subscription `id` reading `sources`.
    pub fn add(&mut self, id: &str, options: LogOptions, sources: Vec<Source>, reader: R) {
        let open = sources.into_iter().map(|s| (s.task.clone(), s)).collect();
        self.active.insert(
            id.to_owned(),
            Active {
                options,
                open,
                reader,
            },
        );
    }

    /// Ends subscription `id`; `true` when it was active.
    pub fn remove(&mut self, id: &str) -> bool {
        self.active.remove(id).is_some()
    }

    /// The tasks of subscription `id` not closed yet, with their nodes.
    pub fn open(&self, id: &str) -> Vec<Source> {
        self.active
            .get(id)
            .map(|a| a.open.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Closes `task` of subscription `id` without its node (e.g. the node is down);
    /// a subscription with no open task left ends.
    pub fn close(&mut self, id: &str, task: &str) {
        if let Some(active) = self.active.get_mut(id) {
            active.open.remove(task);
            if active.open.is_empty() {
                self.active.remove(id);
            }
        }
    }

    /// The share of `node` in the active subscriptions: what its session streams.
    pub fn for_node(&self, node: &str) -> Vec<LogSubscription> {
        self.active
            .iter()
            .filter_map(|(id, active)| {
                let sources: Vec<LogSource> = active
                    .open
                    .values()
                    .filter(|s| s.node == node)
                    .map(|s| LogSource {
                        task: s.task.clone(),
                        container: s.container.clone(),
                    })
                    .collect();
                (!sources.is_empty()).then(|| LogSubscription {
                    id: id.clone(),
                    sources,
                    options: active.options.clone(),
                })
            })
            .collect()
    }

    /// Takes `batch` from `node`: its lines for the reader; a `close` closes the task
    /// (the subscription ends with its last task).
    pub fn accept(&mut self, node: &str, batch: &LogPublish) -> Result<Delivery<R>, Refused> {
        let id = &batch.subscription;
        let active = self
            .active
            .get_mut(id)
            .ok_or_else(|| Refused::Ended(id.clone()))?;
        if active
            .open
            .get(&batch.task)
            .is_none_or(|source| source.node != node)
        {
            return Err(Refused::NotOurs {
                subscription: id.clone(),
                task: batch.task.clone(),
                node: node.to_owned(),
            });
        }
        let lines = batch
            .lines
            .iter()
            .map(|l| TaskLogLine {
                task: batch.task.clone(),
                node: node.to_owned(),
                time: l.time.clone(),
                stream: l.stream,
                line: l.line.clone(),
            })
            .collect();
        let reader = active.reader.clone();
        if batch.close {
            self.close(id, &batch.task);
        }
        Ok(Delivery { lines, reader })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::logs::{LogStream, PublishedLine};

    fn source(task: &str, node: &str) -> Source {
        Source {
            task: task.into(),
            node: node.into(),
            container: format!("c-{task}"),
        }
    }

    fn table() -> Table<u8> {
        let mut t = Table::default();
        let options = LogOptions {
            tail: Some(1),
            ..LogOptions::default()
        };
        t.add(
            "s1",
            options,
            vec![source("t1", "n1"), source("t2", "n2")],
            7,
        );
        t
    }

    fn batch(task: &str, close: bool) -> LogPublish {
        LogPublish {
            session_id: "x".into(),
            subscription: "s1".into(),
            task: task.into(),
            lines: vec![PublishedLine {
                time: "2026-11-23T10:00:00.000000000Z".into(),
                stream: LogStream::Stdout,
                line: "hello".into(),
            }],
            close,
        }
    }

    #[test]
    fn a_node_gets_only_its_tasks_of_a_subscription() {
        let t = table();
        let n1 = t.for_node("n1");
        assert_eq!(n1.len(), 1);
        assert_eq!(n1[0].id, "s1");
        assert_eq!(n1[0].options.tail, Some(1));
        assert_eq!(
            n1[0].sources,
            vec![LogSource {
                task: "t1".into(),
                container: "c-t1".into()
            }]
        );
        assert!(t.for_node("n3").is_empty());
    }

    #[test]
    fn lines_are_named_by_task_and_node_and_closing_every_task_ends_it() {
        let mut t = table();
        let d = t.accept("n1", &batch("t1", false)).expect("accepted");
        assert_eq!(d.reader, 7);
        assert_eq!(d.lines[0].task, "t1");
        assert_eq!(d.lines[0].node, "n1");
        assert_eq!(d.lines[0].line, "hello");
        t.accept("n1", &batch("t1", true)).expect("accepted");
        assert!(t.for_node("n1").is_empty(), "t1 is closed");
        assert_eq!(t.open("s1"), vec![source("t2", "n2")]);
        t.accept("n2", &batch("t2", true)).expect("accepted");
        assert!(t.open("s1").is_empty());
        assert_eq!(
            t.accept("n2", &batch("t2", false)).map(|d| d.lines),
            Err(Refused::Ended("s1".into()))
        );
    }

    #[test]
    fn a_node_cannot_publish_another_nodes_task() {
        let mut t = table();
        let refused = t.accept("n2", &batch("t1", false)).map(|d| d.lines);
        assert!(
            matches!(refused, Err(Refused::NotOurs { .. })),
            "{refused:?}"
        );
        let refused = t.accept("n1", &batch("t9", false)).map(|d| d.lines);
        assert!(
            matches!(refused, Err(Refused::NotOurs { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn closing_a_task_without_its_node_and_removing_end_subscriptions() {
        let mut t = table();
        t.close("s1", "t2");
        assert!(t.for_node("n2").is_empty());
        assert!(t.remove("s1"));
        assert!(t.for_node("n1").is_empty());
        assert!(!t.remove("s1"));
    }
}
