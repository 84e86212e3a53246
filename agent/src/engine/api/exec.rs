//! `POST /v1/containers/{id}/exec`: the request carries an [`ExecCreate`]; the answer
//! is `101 Switching Protocols`, after which the connection carries frames both ways
//! ([`api::container::frame`]): stdin, resize and stdin-close in; stdout, stderr and
//! finally the exit code out.

use super::Engine;
use super::error::{Failure, invalid};
use crate::engine::runtime::exec::{ExecIo, ExecProcess, resize};
use api::container::ExecCreate;
use api::container::frame::{self, Decoder};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The protocol name in the `Upgrade` header.
pub const PROTOCOL: &str = "orch-stream";

/// Copy `from` into frames of `kind` until it ends.
fn pump(
    mut from: impl AsyncRead + Unpin + Send + 'static,
    kind: u8,
    out: mpsc::Sender<Vec<u8>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.send(frame::encode(kind, &buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// Run the conversation between the client on `conn` and the process.
async fn bridge(conn: impl AsyncRead + AsyncWrite + Send + 'static, mut proc: ExecProcess) {
    let (mut rx, mut tx) = tokio::io::split(conn);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    let mut stdin: Option<Box<dyn AsyncWrite + Unpin + Send>>;
    let mut pumps = Vec::new();
    let mut pty_master = None;
    match proc.io {
        ExecIo::Pipes {
            stdin: i,
            stdout,
            stderr,
        } => {
            stdin = Some(Box::new(i));
            pumps.push(pump(stdout, frame::STDOUT, out_tx.clone()));
            pumps.push(pump(stderr, frame::STDERR, out_tx.clone()));
        }
        ExecIo::Pty { master } => {
            let reader = master
                .try_clone()
                .map(|fd| tokio::fs::File::from_std(std::fs::File::from(fd)));
            let writer = master
                .try_clone()
                .map(|fd| tokio::fs::File::from_std(std::fs::File::from(fd)));
            stdin = writer
                .ok()
                .map(|w| Box::new(w) as Box<dyn AsyncWrite + Unpin + Send>);
            if let Ok(r) = reader {
                pumps.push(pump(r, frame::STDOUT, out_tx.clone()));
            }
            pty_master = Some(master);
        }
    }
    let writer = tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            if tx.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = tx.shutdown().await;
    });
    let input = tokio::spawn(async move {
        let mut decoder = Decoder::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            decoder.push(&buf[..n]);
            while let Ok(Some(f)) = decoder.next_frame() {
                match f.kind {
                    frame::STDIN => {
                        if let Some(w) = stdin.as_mut()
                            && w.write_all(&f.payload).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    frame::STDIN_CLOSE => stdin = None,
                    frame::RESIZE if f.payload.len() == 4 => {
                        if let Some(m) = &pty_master {
                            let rows = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                            let cols = u16::from_be_bytes([f.payload[2], f.payload[3]]);
                            resize(m, rows, cols);
                        }
                    }
                    _ => {}
                }
            }
        }
    });
    let code = match proc.child.wait().await {
        Ok(s) => s.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
        }),
        Err(_) => 255,
    };
    for p in pumps {
        // A pty's reader ends with EIO once the last holder of the slave is gone;
        // pipes end at EOF. Either way, wait a moment for the tail of the output.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), p).await;
    }
    let _ = out_tx
        .send(frame::encode(frame::EXIT, &code.to_be_bytes()))
        .await;
    drop(out_tx);
    let _ = writer.await;
    input.abort();
}

/// Refuse a request that does not ask for the [`PROTOCOL`] upgrade.
fn check_upgrade(req: &Request, what: &str) -> Result<(), Failure> {
    let wants = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(PROTOCOL));
    if wants {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} needs an `Upgrade: {PROTOCOL}` request"
        )))
    }
}

/// The `101 Switching Protocols` answer.
fn switching(what: &str) -> Result<Response, Failure> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, PROTOCOL)
        .body(Body::empty())
        .map_err(|err| invalid(format!("{what}: {err}")))
}

/// `POST /v1/containers/{id}/exec` (an upgrade request).
pub async fn exec(
    State(e): State<Arc<Engine>>,
    Path(what): Path<String>,
    mut req: Request,
) -> Result<Response, Failure> {
    check_upgrade(&req, "exec")?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|err| invalid(format!("exec: read the request: {err}")))?
        .to_bytes();
    let create: ExecCreate = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("exec: the body is not an exec spec: {err}")))?;
    let id = e.containers.resolve(&what)?;
    let proc = e.containers.exec(&id, &create)?;
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            bridge(TokioIo::new(upgraded), proc).await;
        }
    });
    switching("exec")
}

/// `POST /v1/containers/{id}/attach` (an upgrade request): the connection is joined
/// to the container's attach socket, which speaks the same frames.
pub async fn attach(
    State(e): State<Arc<Engine>>,
    Path(what): Path<String>,
    mut req: Request,
) -> Result<Response, Failure> {
    check_upgrade(&req, "attach")?;
    let id = e.containers.resolve(&what)?;
    let path = crate::engine::runtime::attach::socket_path(&e.data_dir, &id);
    let shim = tokio::net::UnixStream::connect(&path)
        .await
        .map_err(|err| {
            Failure(api::error::ApiError::new(
                api::error::ErrorCode::Conflict,
                format!("container {what} cannot be attached (is it running?): {err}"),
            ))
        })?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut client = TokioIo::new(upgraded);
            let mut shim = shim;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut shim).await;
        }
    });
    switching("attach")
}
