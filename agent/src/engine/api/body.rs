//! Request and response bodies that do not fit in memory or arrive over time:
//! uploads spooled to a file, downloads produced by a blocking writer, and
//! newline-delimited JSON event streams.

use super::error::Failure;
use api::error::{ApiError, ErrorCode};
use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use serde::Serialize;
use std::convert::Infallible;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// A response body fed from a channel.
struct ChannelStream(mpsc::Receiver<Bytes>);

impl futures_core::Stream for ChannelStream {
    type Item = Result<Bytes, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|o| o.map(Ok))
    }
}

/// The sending side of an NDJSON event stream.
#[derive(Clone)]
pub struct EventSender(mpsc::Sender<Bytes>);

impl EventSender {
    /// Queue one event (dropped when the client went away).
    pub fn send<T: Serialize>(&self, event: &T) {
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        let _ = self.0.try_send(Bytes::from(line));
    }

    /// Whether the client went away.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Queue one event, waiting for room (for events that must not be dropped).
    pub async fn send_wait<T: Serialize>(&self, event: &T) {
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        let _ = self.0.send(Bytes::from(line)).await;
    }
}

/// An NDJSON response body and the sender that feeds it.
pub fn event_stream() -> (EventSender, Body) {
    let (tx, rx) = mpsc::channel(1024);
    (EventSender(tx), Body::from_stream(ChannelStream(rx)))
}

/// A `Write` that feeds a response body from a blocking thread; writes fail with
/// `BrokenPipe` once the client is gone.
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

/// A streamed response body and the blocking writer that produces it.
pub fn download() -> (ChannelWriter, Body) {
    let (tx, rx) = mpsc::channel(8);
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        Body::from_stream(ChannelStream(rx)),
    )
}

/// A file that is removed when dropped.
pub struct SpoolFile {
    path: PathBuf,
}

impl SpoolFile {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

static SPOOLED: AtomicU64 = AtomicU64::new(0);

/// Write a request body to a new file in `dir`.
pub async fn spool(body: Body, dir: &Path, what: &str) -> Result<SpoolFile, Failure> {
    let n = SPOOLED.fetch_add(1, Ordering::Relaxed);
    let spool = SpoolFile {
        path: dir.join(format!("upload-{}-{n}", std::process::id())),
    };
    let local = |e: io::Error| {
        Failure(ApiError::new(
            ErrorCode::Internal,
            format!("{what}: spool the upload to {}: {e}", spool.path.display()),
        ))
    };
    let mut file = tokio::fs::File::create(&spool.path).await.map_err(local)?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Failure(ApiError::new(
                ErrorCode::InvalidArgument,
                format!("{what}: the upload broke off: {e}"),
            ))
        })?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data).await.map_err(local)?;
        }
    }
    file.flush().await.map_err(local)?;
    Ok(spool)
}
