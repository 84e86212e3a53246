//! Committed events to watchers: a broadcast for the live tail plus a bounded history of
//! recent commits, so a watcher can resume from any version still in the history.
//!
//! A watcher that asks for a version older than the history, or that falls so far
//! behind that the history moved past it, gets [`StoreError::Compacted`]: it must
//! re-read the state (`view`/`read`, which report the version they saw) and watch from
//! there. The same happens to every watcher when a snapshot replaces the state, since
//! the commits it covered were never applied here one by one.

use super::error::StoreError;
use api::cluster::Event;
use futures_core::Stream;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// The events of one commit, ending with `Event::Commit { version }`.
#[derive(Debug)]
pub(crate) struct CommitEvents {
    version: u64,
    events: Vec<Event>,
}

#[derive(Clone, Debug)]
enum Message {
    Commit(Arc<CommitEvents>),
    /// The state was replaced (snapshot installed): history before `floor` is gone.
    Reset,
}

struct History {
    /// Every commit with a version above `floor` is in `commits`.
    floor: u64,
    commits: VecDeque<Arc<CommitEvents>>,
    capacity: usize,
}

/// Where commits are published and watchers subscribe.
pub(crate) struct Hub {
    history: Mutex<History>,
    tx: broadcast::Sender<Message>,
}

impl Hub {
    /// A hub whose history starts after `floor` and keeps `capacity` commits.
    pub(crate) fn new(floor: u64, capacity: usize) -> Hub {
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(capacity);
        Hub {
            history: Mutex::new(History {
                floor,
                commits: VecDeque::new(),
                capacity,
            }),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        // The history stays consistent even if a holder panicked: take it anyway.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publish the changes of the commit at `version` (called after it is applied).
    pub(crate) fn publish(&self, version: u64, mut events: Vec<Event>) {
        events.push(Event::Commit { version });
        let commit = Arc::new(CommitEvents { version, events });
        let mut history = self.lock();
        history.commits.push_back(commit.clone());
        while history.commits.len() > history.capacity {
            if let Some(old) = history.commits.pop_front() {
                history.floor = old.version;
            }
        }
        // No receiver is not an error: nobody watches.
        let _ = self.tx.send(Message::Commit(commit));
    }

    /// Forget the history: the state was replaced as of `version`.
    pub(crate) fn reset(&self, version: u64) {
        let mut history = self.lock();
        history.commits.clear();
        history.floor = version;
        let _ = self.tx.send(Message::Reset);
    }

    /// The oldest version a watcher may resume from.
    pub(crate) fn floor(&self) -> u64 {
        self.lock().floor
    }

    /// Commits after `after`, or `Compacted` when the history no longer reaches back.
    fn replay(history: &History, after: u64) -> Result<Vec<Arc<CommitEvents>>, StoreError> {
        if after < history.floor {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: history.floor,
            });
        }
        Ok(history
            .commits
            .iter()
            .filter(|c| c.version > after)
            .cloned()
            .collect())
    }

    /// A watcher of every commit after `version`.
    pub(crate) fn watch_from(self: &Arc<Self>, version: u64) -> Result<Watcher, StoreError> {
        let history = self.lock();
        let backlog = Hub::replay(&history, version)?;
        let rx = self.tx.subscribe();
        drop(history);
        let mut watcher = Watcher {
            last: version,
            pending: VecDeque::new(),
            rx,
            hub: self.clone(),
        };
        backlog.iter().for_each(|c| watcher.take(c));
        Ok(watcher)
    }
}

/// A stream of committed events after a version; see [`Watcher::next`].
pub struct Watcher {
    /// The version of the last commit taken into `pending`.
    last: u64,
    pending: VecDeque<Event>,
    rx: broadcast::Receiver<Message>,
    hub: Arc<Hub>,
}

impl Watcher {
    fn take(&mut self, commit: &CommitEvents) {
        if commit.version > self.last {
            self.pending.extend(commit.events.iter().cloned());
            self.last = commit.version;
        }
    }

    /// The version of the last commit this watcher has queued or returned.
    pub fn version(&self) -> u64 {
        self.last
    }

    /// As a stream; it ends after yielding its first error.
    pub fn into_stream(self) -> impl Stream<Item = Result<Event, StoreError>> + Send {
        futures_util::stream::unfold(Some(self), |watcher| async move {
            let mut watcher = watcher?;
            match watcher.next().await {
                Ok(event) => Some((Ok(event), Some(watcher))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The next event, waiting for the next commit if needed. Errors: `Compacted` (resync
    /// and watch again) or `Stopped` (the store shut down).
    pub async fn next(&mut self) -> Result<Event, StoreError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            match self.rx.recv().await {
                Ok(Message::Commit(commit)) => self.take(&commit),
                Ok(Message::Reset) => {
                    return Err(StoreError::Compacted {
                        requested: self.last,
                        oldest: self.hub.floor(),
                    });
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed live messages: catch up from the history, if it still has them.
                    let backlog = Hub::replay(&self.hub.lock(), self.last)?;
                    backlog.iter().for_each(|c| self.take(c));
                }
                Err(broadcast::error::RecvError::Closed) => return Err(StoreError::Stopped),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::{Meta, Object, Task};

    fn created(id: &str) -> Event {
        Event::Created {
            object: Object::Task(Box::new(Task {
                meta: Meta::new(id),
                ..Task::default()
            })),
        }
    }

    #[tokio::test]
    async fn resumes_from_history_then_follows_live_commits() {
        let hub = Arc::new(Hub::new(0, 8));
        hub.publish(1, vec![created("a")]);
        hub.publish(3, vec![created("b")]);
        let mut watcher = hub.watch_from(1).expect("in history");
        hub.publish(4, vec![]);
        assert_eq!(watcher.next().await.ok(), Some(created("b")));
        assert_eq!(
            watcher.next().await.ok(),
            Some(Event::Commit { version: 3 })
        );
        assert_eq!(
            watcher.next().await.ok(),
            Some(Event::Commit { version: 4 })
        );
    }

    #[tokio::test]
    async fn too_old_or_too_slow_watchers_get_compacted() {
        let hub = Arc::new(Hub::new(0, 2));
        let mut slow = hub.watch_from(0).expect("in history");
        for v in 1..=5 {
            hub.publish(v, vec![]);
        }
        assert!(matches!(
            hub.watch_from(1),
            Err(StoreError::Compacted {
                requested: 1,
                oldest: 3
            })
        ));
        assert!(matches!(
            slow.next().await,
            Err(StoreError::Compacted { .. })
        ));

        let mut reset = hub.watch_from(5).expect("current");
        hub.reset(9);
        assert!(matches!(
            reset.next().await,
            Err(StoreError::Compacted { oldest: 9, .. })
        ));
    }
}
