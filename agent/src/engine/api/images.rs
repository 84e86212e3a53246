//! `/v1/images/...` and `/v1/auth`: extract, call the image service, map the error.

use super::Engine;
use super::body::{EventSender, download, event_stream, spool};
use super::error::{Failure, image_error, invalid};
use super::params::Params;
use crate::engine::image::archive::ArchiveFormat;
use crate::engine::image::digest::Digest;
use crate::engine::image::images::ImportConfig;
use crate::engine::image::reference::Reference;
use crate::engine::image::service::ImageServiceError;
use api::error::{ApiError, ErrorCode};
use api::image::{
    ImageDetail, ImageSummary, LoadedImage, LoginRequest, PruneReport, REGISTRY_AUTH_HEADER,
    RegistryAuth, RemoveReport, TransferEvent, from_header,
};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

type St = State<Arc<Engine>>;

/// `GET /v1/images`
pub async fn list(State(e): St) -> Result<Json<Vec<ImageSummary>>, Failure> {
    Ok(Json(e.images.list()?))
}

/// `GET /v1/images/inspect?ref=`
pub async fn inspect(State(e): St, RawQuery(q): RawQuery) -> Result<Json<ImageDetail>, Failure> {
    let p = Params::parse(q.as_deref());
    Ok(Json(e.images.inspect(p.require("ref")?)?))
}

fn auth(headers: &HeaderMap) -> Result<Option<RegistryAuth>, Failure> {
    match headers.get(REGISTRY_AUTH_HEADER) {
        None => Ok(None),
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| invalid("X-Registry-Auth is not ASCII"))?;
            from_header(text, "X-Registry-Auth")
                .map(Some)
                .map_err(invalid)
        }
    }
}

fn ndjson(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// Run a transfer in its own task, streaming its events and then `Done` or `Error`.
fn transfer<F, Fut>(r: Reference, run: F) -> Response
where
    F: FnOnce(EventSender) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Digest, ImageServiceError>> + Send,
{
    let (tx, body) = event_stream();
    tokio::spawn(async move {
        let last = match run(tx.clone()).await {
            Ok(digest) => TransferEvent::Done {
                reference: r.familiar(),
                digest: digest.to_string(),
            },
            Err(err) => TransferEvent::Error(image_error(&err)),
        };
        tx.send_wait(&last).await;
    });
    ndjson(body)
}

/// `POST /v1/images/pull?ref=&platform=`: an NDJSON stream of [`TransferEvent`]s.
pub async fn pull(
    State(e): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let p = Params::parse(q.as_deref());
    let reference = p.require("ref")?.to_owned();
    let r: Reference = reference.parse().map_err(|e| invalid(format!("{e}")))?;
    let platform = p.get("platform").map(str::to_owned);
    let auth = auth(&headers)?;
    Ok(transfer(r, move |sink| async move {
        e.images
            .pull(&reference, platform.as_deref(), auth.as_ref(), &move |ev| {
                sink.send(&ev)
            })
            .await
    }))
}

/// `POST /v1/images/push?ref=`: an NDJSON stream of [`TransferEvent`]s.
pub async fn push(
    State(e): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let p = Params::parse(q.as_deref());
    let reference = p.require("ref")?.to_owned();
    let r: Reference = reference.parse().map_err(|e| invalid(format!("{e}")))?;
    // A missing image is a plain 404, not a stream that fails.
    e.images.resolve(&reference)?;
    let auth = auth(&headers)?;
    Ok(transfer(r, move |sink| async move {
        e.images
            .push(&reference, auth.as_ref(), &move |ev| sink.send(&ev))
            .await
    }))
}

/// `POST /v1/images/tag?source=&target=`
pub async fn tag(State(e): St, RawQuery(q): RawQuery) -> Result<StatusCode, Failure> {
    let p = Params::parse(q.as_deref());
    e.images.tag(p.require("source")?, p.require("target")?)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/images/import?ref=&cmd=&env=&workdir=` with a root file system tarball.
pub async fn import(
    State(e): St,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Json<LoadedImage>, Failure> {
    let p = Params::parse(q.as_deref());
    let reference = p.require("ref")?.to_owned();
    reference
        .parse::<Reference>()
        .map_err(|e| invalid(format!("{e}")))?;
    let cfg = ImportConfig {
        cmd: p.all("cmd"),
        env: p.all("env"),
        working_dir: p.get("workdir").map(str::to_owned),
        architecture: String::new(),
    };
    let file = spool(body, &e.scratch, &format!("import {reference}")).await?;
    let loaded = e
        .images
        .import(file.path().to_owned(), &reference, cfg)
        .await?;
    drop(file);
    Ok(Json(loaded))
}

/// `POST /v1/images/load` with a docker-archive or OCI-layout tarball.
pub async fn load(State(e): St, body: Body) -> Result<Json<Vec<LoadedImage>>, Failure> {
    let file = spool(body, &e.scratch, "load").await?;
    let loaded = e.images.load(file.path().to_owned()).await?;
    drop(file);
    Ok(Json(loaded))
}

/// `GET /v1/images/save?ref=&ref=&format=docker|oci`: the tarball, streamed.
pub async fn save(State(e): St, RawQuery(q): RawQuery) -> Result<Response, Failure> {
    let p = Params::parse(q.as_deref());
    let names = p.all("ref");
    if names.is_empty() {
        return Err(invalid("query parameter \"ref\" is required"));
    }
    let format = match p.get("format").unwrap_or("docker") {
        "docker" | "docker-archive" => ArchiveFormat::DockerArchive,
        "oci" | "oci-layout" => ArchiveFormat::OciLayout,
        other => {
            return Err(invalid(format!("format {other:?}: expected docker or oci")));
        }
    };
    // Unknown names are a plain 404 before the download starts.
    let refs = e.images.saveable(&names)?;
    let (writer, body) = download();
    tokio::spawn(async move {
        // A failure midway ends the body early; the archive's index comes last, so
        // a cut archive cannot be mistaken for a whole one.
        let _ = e.images.save(refs, format, writer).await;
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// `DELETE /v1/images?ref=&force=`
pub async fn remove(State(e): St, RawQuery(q): RawQuery) -> Result<Json<RemoveReport>, Failure> {
    let p = Params::parse(q.as_deref());
    let target = p.require("ref")?;
    let force = p.flag("force")?;
    let in_use = e.containers.images_in_use();
    if !force
        && let Ok(d) = e.images.resolve(target)
        && in_use.contains(&d)
    {
        return Err(Failure(ApiError::new(
            ErrorCode::Conflict,
            format!("image {target} is used by a container; remove the container first, or force"),
        )));
    }
    Ok(Json(e.images.remove(target, force, in_use).await?))
}

/// `POST /v1/images/prune?all=`
pub async fn prune(State(e): St, RawQuery(q): RawQuery) -> Result<Json<PruneReport>, Failure> {
    let p = Params::parse(q.as_deref());
    let keep = e.containers.images_in_use();
    Ok(Json(e.images.prune(p.flag("all")?, keep).await?))
}

/// `POST /v1/auth` with a [`LoginRequest`].
pub async fn login(State(e): St, body: Bytes) -> Result<StatusCode, Failure> {
    let req: LoginRequest = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("login: the body is not a login request: {err}")))?;
    if req.registry.is_empty() {
        return Err(invalid("login: registry is empty"));
    }
    e.images.login(&req.registry, &req.auth).await?;
    Ok(StatusCode::NO_CONTENT)
}
