//! The node's side of the log broker: follow the log subscriptions of the assignment
//! set; for each task of this node a subscription reads, read its container's logs
//! from the engine (with the subscription's `follow`, `tail` and `since`) and publish
//! them in batches through the session (`POST /v1/session/logs`), then a final `close`
//! (not following, or the container ended). A subscription that leaves the set stops
//! its readers.
//!
//! Memory is bounded by back-pressure, never by dropping: a reader waits while the
//! session's queue is full, and the session's post waits while the reader on the
//! leader is behind, so a slow client slows the engine reads.

use super::archive::LogArchive;
use crate::engine::daemon::AbortOnDrop;
use crate::engine::runtime::container::parse_time;
use api::client::EngineClient;
use api::container::LogLine;
use api::logs::{LogOptions, LogPublish, LogSource, LogStream, PublishedLine};
use api::session::Assignments;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};

/// The most lines in one batch.
const BATCH: usize = 256;
/// A batch waits this long for more lines before it is sent.
const LINGER: Duration = Duration::from_millis(50);

/// Follows the log subscriptions of `assigned` until dropped, publishing into `out`
/// (the session sends what it takes from there).
pub async fn run(
    engine: EngineClient,
    archive: LogArchive,
    mut assigned: watch::Receiver<Assignments>,
    out: mpsc::Sender<LogPublish>,
) {
    // Each reader ends with its entry, and all of them when this future is dropped.
    let mut readers: BTreeMap<(String, String), AbortOnDrop> = BTreeMap::new();
    loop {
        let wanted: BTreeMap<(String, String), (LogSource, LogOptions)> = assigned
            .borrow_and_update()
            .log_subscriptions
            .iter()
            .flat_map(|sub| {
                sub.sources.iter().map(|source| {
                    (
                        (sub.id.clone(), source.task.clone()),
                        (source.clone(), sub.options.clone()),
                    )
                })
            })
            .collect();
        readers.retain(|key, _| wanted.contains_key(key));
        for (key, (source, options)) in wanted {
            readers.entry(key.clone()).or_insert_with(|| {
                AbortOnDrop(tokio::spawn(read(
                    engine.clone(),
                    archive.clone(),
                    key.0,
                    source,
                    options,
                    out.clone(),
                )))
            });
        }
        if assigned.changed().await.is_err() {
            break;
        }
    }
}

/// `line` as published, unless it is older than `since`.
fn publishable(line: LogLine, since: Option<SystemTime>) -> Option<PublishedLine> {
    if let Some(since) = since
        && parse_time(&line.time).is_none_or(|t| t < since)
    {
        return None;
    }
    let stream = if line.stream == "stderr" {
        LogStream::Stderr
    } else {
        LogStream::Stdout
    };
    let text = line.log.strip_suffix('\n').unwrap_or(&line.log);
    let text = text.strip_suffix('\r').unwrap_or(text);
    Some(PublishedLine {
        time: line.time.clone(),
        stream,
        line: text.to_owned(),
    })
}

/// Reads one task's logs and publishes them; ends with a `close`. A task whose
/// container is gone has its kept log read (see [`LogArchive`]).
async fn read(
    engine: EngineClient,
    archive: LogArchive,
    subscription: String,
    source: LogSource,
    options: LogOptions,
    out: mpsc::Sender<LogPublish>,
) {
    let since = options
        .since_ms
        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    let tail = options
        .tail
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let batch = |lines: Vec<PublishedLine>, close: bool| LogPublish {
        session_id: String::new(),
        subscription: subscription.clone(),
        task: source.task.clone(),
        lines,
        close,
    };
    let mut events = match engine.logs(&source.container, options.follow, tail).await {
        Ok(events) => events,
        Err(e)
            if e.code() == Some(api::error::ErrorCode::NotFound)
                && let Some(kept) = archive.read(&source.task, tail) =>
        {
            let lines: Vec<PublishedLine> = kept
                .into_iter()
                .filter_map(|line| publishable(line, since))
                .collect();
            let mut chunks = lines.chunks(BATCH).peekable();
            if chunks.peek().is_none() {
                let _ = out.send(batch(Vec::new(), true)).await;
            }
            while let Some(chunk) = chunks.next() {
                let last = chunks.peek().is_none();
                if out.send(batch(chunk.to_vec(), last)).await.is_err() {
                    return;
                }
            }
            return;
        }
        Err(e) => {
            let line = PublishedLine {
                time: String::new(),
                stream: LogStream::Error,
                line: format!(
                    "read the logs of container {} of task {}: {e}",
                    source.container, source.task
                ),
            };
            let _ = out.send(batch(vec![line], true)).await;
            return;
        }
    };
    let mut lines = Vec::new();
    loop {
        let next = if lines.is_empty() {
            Ok(events.next().await)
        } else {
            tokio::time::timeout(LINGER, events.next()).await
        };
        let ended = match next {
            Err(_) => false,
            Ok(None) => true,
            Ok(Some(Ok(line))) => {
                lines.extend(publishable(line, since));
                if lines.len() < BATCH {
                    continue;
                }
                false
            }
            Ok(Some(Err(e))) => {
                lines.push(PublishedLine {
                    time: String::new(),
                    stream: LogStream::Error,
                    line: format!(
                        "the logs of container {} of task {} broke: {e}",
                        source.container, source.task
                    ),
                });
                true
            }
        };
        if ended {
            let _ = out.send(batch(std::mem::take(&mut lines), true)).await;
            return;
        }
        if out
            .send(batch(std::mem::take(&mut lines), false))
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: &str, stream: &str, log: &str) -> LogLine {
        LogLine {
            time: time.into(),
            stream: stream.into(),
            log: log.into(),
        }
    }

    #[test]
    fn lines_lose_their_newline_and_keep_their_stream() {
        let l = publishable(line("2026-11-23T10:00:00.5Z", "stderr", "boom\n"), None);
        assert_eq!(
            l,
            Some(PublishedLine {
                time: "2026-11-23T10:00:00.5Z".into(),
                stream: LogStream::Stderr,
                line: "boom".into()
            })
        );
    }

    #[test]
    fn since_drops_older_lines() {
        let since = parse_time("2026-11-23T10:00:00Z");
        assert!(publishable(line("2026-11-23T09:59:59.9Z", "stdout", "old\n"), since).is_none());
        assert!(publishable(line("2026-11-23T10:00:00.1Z", "stdout", "new\n"), since).is_some());
        assert!(publishable(line("garbage", "stdout", "x\n"), since).is_none());
    }
}
