//! `/v1/containers/...`: extract, call the container service, map the error.

use super::Engine;
use super::body::event_stream;
use super::error::{Failure, invalid};
use super::params::Params;
use crate::engine::runtime::logs::{Follower, read_rotated};
use crate::engine::runtime::service::signal_number;
use api::container::{
    ContainerCreate, ContainerCreated, ContainerDetail, ContainerExit, ContainerStatus,
    ContainerSummary,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

type St = State<Arc<Engine>>;

/// `GET /v1/containers?all=`
pub async fn list(
    State(e): St,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<ContainerSummary>>, Failure> {
    let p = Params::parse(q.as_deref());
    Ok(Json(e.containers.list(p.flag("all")?)?))
}

/// `POST /v1/containers` with a [`ContainerCreate`].
pub async fn create(
    State(e): St,
    body: Bytes,
) -> Result<(StatusCode, Json<ContainerCreated>), Failure> {
    let req: ContainerCreate = serde_json::from_slice(&body).map_err(|err| {
        invalid(format!(
            "create container: the body is not a container spec: {err}"
        ))
    })?;
    let c = e.containers.clone();
    let (id, name) = tokio::task::spawn_blocking(move || c.create(&req))
        .await
        .map_err(|err| invalid(format!("create container: {err}")))??;
    Ok((StatusCode::CREATED, Json(ContainerCreated { id, name })))
}

/// `GET /v1/containers/{id}`
pub async fn inspect(
    State(e): St,
    Path(what): Path<String>,
) -> Result<Json<ContainerDetail>, Failure> {
    let id = e.containers.resolve(&what)?;
    Ok(Json(e.containers.inspect(&id)?))
}

/// `POST /v1/containers/{id}/start`
pub async fn start(State(e): St, Path(what): Path<String>) -> Result<StatusCode, Failure> {
    let id = e.containers.resolve(&what)?;
    e.containers.set_manually_stopped(&id, false)?;
    let c = e.containers.clone();
    tokio::task::spawn_blocking(move || c.start(&id))
        .await
        .map_err(|err| invalid(format!("start container: {err}")))??;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/containers/{id}/kill?signal=`
pub async fn kill(
    State(e): St,
    Path(what): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, Failure> {
    let p = Params::parse(q.as_deref());
    let sig = signal_number(p.get("signal").unwrap_or("KILL"))?;
    let id = e.containers.resolve(&what)?;
    e.containers.set_manually_stopped(&id, true)?;
    e.containers.kill(&id, sig)?;
    Ok(StatusCode::NO_CONTENT)
}

fn exit(s: ContainerStatus) -> ContainerExit {
    match s {
        ContainerStatus::Exited {
            exit_code,
            oom_killed,
            ..
        } => ContainerExit {
            exit_code,
            oom_killed,
        },
        _ => ContainerExit {
            exit_code: 0,
            oom_killed: false,
        },
    }
}

/// `POST /v1/containers/{id}/stop?timeout=SECONDS`
pub async fn stop(
    State(e): St,
    Path(what): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ContainerExit>, Failure> {
    let p = Params::parse(q.as_deref());
    let grace = match p.get("timeout") {
        None => None,
        Some(t) => Some(Duration::from_secs(t.parse().map_err(|_| {
            invalid(format!("timeout {t:?} is not a number of seconds"))
        })?)),
    };
    let id = e.containers.resolve(&what)?;
    Ok(Json(exit(e.containers.stop(&id, grace).await?)))
}

/// `POST /v1/containers/{id}/wait`
pub async fn wait(State(e): St, Path(what): Path<String>) -> Result<Json<ContainerExit>, Failure> {
    let id = e.containers.resolve(&what)?;
    Ok(Json(exit(e.containers.wait(&id).await?)))
}

/// `DELETE /v1/containers/{id}?force=`
pub async fn remove(
    State(e): St,
    Path(what): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, Failure> {
    let p = Params::parse(q.as_deref());
    let id = e.containers.resolve(&what)?;
    e.containers.remove(&id, p.flag("force")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/containers/{id}/logs?follow=&tail=N`: NDJSON [`api::container::LogLine`]s.
pub async fn logs(
    State(e): St,
    Path(what): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, Failure> {
    let p = Params::parse(q.as_deref());
    let follow = p.flag("follow")?;
    let tail: Option<usize> = match p.get("tail") {
        None | Some("all") => None,
        Some(t) => Some(
            t.parse()
                .map_err(|_| invalid(format!("tail {t:?} is not a number")))?,
        ),
    };
    let id = e.containers.resolve(&what)?;
    let dir = e.containers.path(&id);
    let io = |err: std::io::Error| invalid(format!("read the log of {id}: {err}"));
    let mut lines = read_rotated(&dir).map_err(io)?;
    let mut follower = Follower::from_start(&dir).map_err(io)?;
    lines.extend(follower.poll().map_err(io)?);
    if let Some(n) = tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let (tx, body) = event_stream();
    tokio::spawn(async move {
        for l in &lines {
            tx.send_wait(l).await;
        }
        if !follow {
            return;
        }
        loop {
            let done = !matches!(
                e.containers.state(&id).map(|s| s.status),
                Ok(ContainerStatus::Running { .. } | ContainerStatus::Created)
            );
            match follower.poll() {
                Ok(new) => {
                    for l in &new {
                        tx.send_wait(l).await;
                    }
                    if done && new.is_empty() {
                        break;
                    }
                }
                Err(_) => break,
            }
            if tx.is_closed() {
                break;
            }
            // New lines are looked for every 100 ms, and at once when it exits.
            let _ = tokio::time::timeout(Duration::from_millis(100), e.containers.wait(&id)).await;
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// `POST /v1/containers/{id}/pause`
pub async fn pause(State(e): St, Path(what): Path<String>) -> Result<StatusCode, Failure> {
    let id = e.containers.resolve(&what)?;
    e.containers.pause(&id, true)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/containers/{id}/unpause`
pub async fn unpause(State(e): St, Path(what): Path<String>) -> Result<StatusCode, Failure> {
    let id = e.containers.resolve(&what)?;
    e.containers.pause(&id, false)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/containers/{id}/stats`
pub async fn stats(
    State(e): St,
    Path(what): Path<String>,
) -> Result<Json<api::container::ContainerStats>, Failure> {
    let id = e.containers.resolve(&what)?;
    Ok(Json(e.containers.stats(&id)?))
}
