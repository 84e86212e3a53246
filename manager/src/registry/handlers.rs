//! The `/v2` requests, one function per route and method.

use super::blobs::digest_of;
use super::path::{self, Route};
use super::{LOCAL_ONLY, Registry, RegistryError};
use crate::store::Command;
use api::cluster::{Kind, Meta, Object};
use api::registry::{MAX_MANIFEST, Manifest};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

const API_VERSION: &str = "docker-distribution-api-version";
const CONTENT_DIGEST: &str = "docker-content-digest";
const UPLOAD_UUID: &str = "docker-upload-uuid";

/// Every `/v2` request.
pub(super) async fn handle(
    State(registry): State<Arc<Registry>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut response = serve(&registry, &method, &uri, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

async fn serve(
    registry: &Registry,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    let rest = uri.path().strip_prefix("/v2").unwrap_or_default();
    let route = path::parse(rest)?;
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let head = method == Method::HEAD;
    match (route, method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(respond(StatusCode::OK, Body::from("{}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body_or_empty(head)),
        (Route::Blob { name, digest }, Method::GET | Method::HEAD) => {
            let local_only = headers.contains_key(LOCAL_ONLY);
            let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
            get_blob(registry, &name, &digest, head, range, local_only).await
        }
        (Route::Uploads { name }, Method::POST) => {
            start_upload(registry, &name, &query, body).await
        }
        (Route::Upload { name, id }, Method::PATCH) => {
            let offset = headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .map(content_range_start)
                .transpose()?;
            let size = registry.blobs.append(&id, offset, body).await?;
            Ok(upload_state(StatusCode::ACCEPTED, &name, &id, size))
        }
        (Route::Upload { name, id }, Method::PUT) => {
            let digest = query.get("digest").ok_or_else(|| {
                RegistryError::DigestInvalid(format!(
                    "closing upload {id} needs ?digest=sha256:<hex> of its content"
                ))
            })?;
            path::check_digest(digest)?;
            registry.blobs.append(&id, None, body).await?;
            registry.blobs.finish(&id, digest).await?;
            Ok(blob_created(&name, digest))
        }
        (Route::Upload { name, id }, Method::GET) => {
            let size = registry.blobs.uploaded(&id).await?;
            Ok(upload_state(StatusCode::NO_CONTENT, &name, &id, size))
        }
        (Route::Upload { id, .. }, Method::DELETE) => {
            registry.blobs.cancel(&id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Route::Manifest { name, reference }, Method::GET | Method::HEAD) => {
            get_manifest(registry, &name, &reference, head)
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            put_manifest(registry, &name, &reference, headers, body).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            delete_manifest(registry, &name, &reference).await
        }
        (Route::Tags { name }, Method::GET) => tags(registry, &name),
        (_, method) => Err(RegistryError::Unsupported(format!(
            "{method} is not allowed on {}",
            uri.path()
        ))),
    }
}

/// A response builder with `status` and an empty body when `head`.
struct Answer {
    builder: axum::http::response::Builder,
    body: Body,
}

fn respond(status: StatusCode, body: Body) -> Answer {
    Answer {
        builder: Response::builder().status(status),
        body,
    }
}

impl Answer {
    fn header(mut self, name: impl AsRef<str>, value: impl ToString) -> Answer {
        self.builder = self.builder.header(name.as_ref(), value.to_string());
        self
    }

    fn body_or_empty(self, head: bool) -> Response {
        let body = if head { Body::empty() } else { self.body };
        self.builder.body(body).unwrap_or_else(|e| {
            RegistryError::Unsupported(format!("build the answer: {e}")).into_response()
        })
    }
}

fn blob_created(name: &str, digest: &str) -> Response {
    respond(StatusCode::CREATED, Body::empty())
        .header(header::LOCATION, format!("/v2/{name}/blobs/{digest}"))
        .header(CONTENT_DIGEST, digest)
        .header(header::CONTENT_LENGTH, 0)
        .body_or_empty(true)
}

fn upload_state(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    respond(status, Body::empty())
        .header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
        .header(header::RANGE, format!("0-{}", size.saturating_sub(1)))
        .header(UPLOAD_UUID, id)
        .header(header::CONTENT_LENGTH, 0)
        .body_or_empty(true)
}

/// The start of a chunk's `Content-Range: START-END`.
fn content_range_start(value: &str) -> Result<u64, RegistryError> {
    let value = value
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    value
        .split_once('-')
        .and_then(|(start, _)| start.trim().parse().ok())
        .ok_or_else(|| {
            RegistryError::RangeInvalid(format!("Content-Range {value:?} is not START-END"))
        })
}

/// `bytes=START-[END]` of a blob of `size` bytes, as (start, length).
fn byte_range(value: &str, size: u64) -> Result<(u64, u64), RegistryError> {
    let bad = || RegistryError::RangeInvalid(format!("Range {value:?} of a {size}-byte blob"));
    let spec = value.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (start, end) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = match end.trim() {
        "" => size.saturating_sub(1),
        end => end
            .parse::<u64>()
            .map_err(|_| bad())?
            .min(size.saturating_sub(1)),
    };
    if start >= size || end < start {
        return Err(bad());
    }
    Ok((start, end - start + 1))
}

async fn get_blob(
    registry: &Registry,
    name: &str,
    digest: &str,
    head: bool,
    range: Option<&str>,
    local_only: bool,
) -> Result<Response, RegistryError> {
    let mut found = registry.blobs.open_blob(digest).await;
    if found.is_none() && !local_only && registry.fetch_from_peers(name, digest).await {
        found = registry.blobs.open_blob(digest).await;
    }
    let (mut file, size) = found.ok_or_else(|| RegistryError::BlobUnknown(digest.into()))?;
    let answer = |status, length: u64, body| {
        respond(status, body)
            .header(header::CONTENT_LENGTH, length)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::ACCEPT_RANGES, "bytes")
            .header(CONTENT_DIGEST, digest)
    };
    match range {
        Some(range) if !head => {
            let (start, length) = byte_range(range, size)?;
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(RegistryError::disk(format!("read blob {digest}")))?;
            Ok(answer(
                StatusCode::PARTIAL_CONTENT,
                length,
                file_body(file.take(length)),
            )
            .header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{size}", start + length - 1),
            )
            .body_or_empty(false))
        }
        _ => Ok(answer(StatusCode::OK, size, file_body(file)).body_or_empty(head)),
    }
}

/// A body streaming `reader` in 64 KiB chunks.
fn file_body(reader: impl AsyncRead + Unpin + Send + 'static) -> Body {
    let stream = futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; 64 << 10];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Body::from_stream(stream)
}

async fn start_upload(
    registry: &Registry,
    name: &str,
    query: &BTreeMap<String, String>,
    body: Body,
) -> Result<Response, RegistryError> {
    // A blob the registry has is "mounted": blobs are shared by every repository.
    if let Some(mount) = query.get("mount") {
        path::check_digest(mount)?;
        if registry.blobs.size(mount).await.is_some() {
            return Ok(blob_created(name, mount));
        }
    }
    let id = registry.blobs.start().await?;
    if let Some(digest) = query.get("digest") {
        path::check_digest(digest)?;
        registry.blobs.append(&id, None, body).await?;
        registry.blobs.finish(&id, digest).await?;
        return Ok(blob_created(name, digest));
    }
    Ok(upload_state(StatusCode::ACCEPTED, name, &id, 0))
}

fn get_manifest(
    registry: &Registry,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response, RegistryError> {
    let manifest = registry
        .store
        .view(|s| s.manifests.resolve(name, reference).cloned())
        .value
        .ok_or_else(|| RegistryError::ManifestUnknown(reference_text(name, reference)))?;
    Ok(
        respond(StatusCode::OK, Body::from(manifest.content.clone()))
            .header(header::CONTENT_TYPE, &manifest.media_type)
            .header(header::CONTENT_LENGTH, manifest.content.len())
            .header(CONTENT_DIGEST, &manifest.digest)
            .body_or_empty(head),
    )
}

fn reference_text(name: &str, reference: &str) -> String {
    if reference.contains(':') {
        format!("{name}@{reference}")
    } else {
        format!("{name}:{reference}")
    }
}

async fn put_manifest(
    registry: &Registry,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|_| {
            RegistryError::SizeInvalid(format!(
                "manifest {}: larger than {MAX_MANIFEST} bytes",
                reference_text(name, reference)
            ))
        })?;
    let what = reference_text(name, reference);
    let content = String::from_utf8(bytes.to_vec())
        .map_err(|_| RegistryError::ManifestInvalid(format!("manifest {what}: not UTF-8 JSON")))?;
    let value: serde_json::Value = serde_json::from_str(&content)
        .map_err(|e| RegistryError::ManifestInvalid(format!("manifest {what}: not JSON: {e}")))?;
    let digest = digest_of(content.as_bytes());
    if reference.contains(':') && reference != digest {
        return Err(RegistryError::DigestInvalid(format!(
            "manifest {what}: its content hashes to {digest}"
        )));
    }
    if value["schemaVersion"] != 2 {
        return Err(RegistryError::ManifestInvalid(format!(
            "manifest {what}: only schemaVersion 2 manifests (OCI, Docker v2) are taken"
        )));
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|v| !v.is_empty() && v != "application/octet-stream")
        .or_else(|| value["mediaType"].as_str().map(str::to_owned))
        .ok_or_else(|| {
            RegistryError::ManifestInvalid(format!(
                "manifest {what}: no media type (send Content-Type, or mediaType in the manifest)"
            ))
        })?;
    // Every blob it names must be here (fetched from a peer if need be); every
    // manifest an index names must be pushed already.
    let digests = |key: &str| -> Vec<String> {
        value[key]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|d| d["digest"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut blobs = digests("layers");
    if let Some(config) = value["config"]["digest"].as_str() {
        blobs.push(config.to_owned());
    }
    for blob in &blobs {
        path::check_digest(blob)?;
        if registry.blobs.size(blob).await.is_none() && !registry.fetch_from_peers(name, blob).await
        {
            return Err(RegistryError::ManifestBlobUnknown(format!("blob {blob}")));
        }
    }
    for child in digests("manifests") {
        let known = registry
            .store
            .view(|s| s.manifests.get(&Manifest::id(name, &child)).is_some())
            .value;
        if !known {
            return Err(RegistryError::ManifestBlobUnknown(format!(
                "manifest {child}"
            )));
        }
    }
    let tag = (!reference.contains(':')).then_some(reference);
    registry
        .write_manifest(name, &digest, &media_type, content, tag)
        .await?;
    Ok(respond(StatusCode::CREATED, Body::empty())
        .header(header::LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header(CONTENT_DIGEST, &digest)
        .header(header::CONTENT_LENGTH, 0)
        .body_or_empty(true))
}

async fn delete_manifest(
    registry: &Registry,
    name: &str,
    reference: &str,
) -> Result<Response, RegistryError> {
    if !reference.contains(':') {
        return Err(RegistryError::Unsupported(format!(
            "delete {name}:{reference}: manifests are deleted by digest (a tag moves when pushed again)"
        )));
    }
    let id = Manifest::id(name, reference);
    let command = Command::delete(Kind::Manifest, id, None);
    match registry.store.write(command).await {
        Ok(_) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(crate::store::StoreError::NotFound { .. }) => Err(RegistryError::ManifestUnknown(
            reference_text(name, reference),
        )),
        Err(e) => Err(RegistryError::Unavailable(e.to_string())),
    }
}

fn tags(registry: &Registry, name: &str) -> Result<Response, RegistryError> {
    let tags = registry
        .store
        .view(|s| {
            let manifests: Vec<&Manifest> = s.manifests.by_repository(name).collect();
            (!manifests.is_empty()).then(|| {
                let mut tags: Vec<String> = manifests.iter().flat_map(|m| m.tags.clone()).collect();
                tags.sort();
                tags
            })
        })
        .value
        .ok_or_else(|| RegistryError::NameUnknown(name.into()))?;
    let body = serde_json::json!({"name": name, "tags": tags});
    Ok(axum::Json(body).into_response())
}

impl Registry {
    /// Fetches blob `digest` from the first peer manager that has it; `true` when
    /// this manager holds it now.
    pub(super) async fn fetch_from_peers(&self, name: &str, digest: &str) -> bool {
        let Some((client, scheme)) = &self.peers else {
            return false;
        };
        let me = self.store.addr().to_owned();
        for peer in self.store.managers_leader_first() {
            if peer == me {
                continue;
            }
            let url = format!("{scheme}://{peer}/v2/{name}/blobs/{digest}");
            let response = match client.get(&url).header(LOCAL_ONLY, "1").send().await {
                Ok(r) if r.status() == StatusCode::OK => r,
                _ => continue,
            };
            let Ok(id) = self.blobs.start().await else {
                return false;
            };
            let stream = response
                .bytes_stream()
                .map(|chunk| chunk.map_err(std::io::Error::other));
            let stored = match self.blobs.append_stream(&id, stream).await {
                Ok(_) => self.blobs.finish(&id, digest).await.is_ok(),
                Err(_) => false,
            };
            if stored {
                return true;
            }
            let _ = self.blobs.cancel(&id).await;
        }
        false
    }

    /// Records manifest `digest` of `name` (and moves `tag` onto it), naming the
    /// versions read; again when another write won.
    async fn write_manifest(
        &self,
        name: &str,
        digest: &str,
        media_type: &str,
        content: String,
        tag: Option<&str>,
    ) -> Result<(), RegistryError> {
        let mut last = String::new();
        for _ in 0..5 {
            let commands = self
                .store
                .view(|s| {
                    let id = Manifest::id(name, digest);
                    let mut commands = Vec::new();
                    match s.manifests.get(&id) {
                        Some(old) => {
                            let mut new = old.clone();
                            if let Some(tag) = tag.filter(|t| !old.tags.iter().any(|o| o == t)) {
                                new.tags.push(tag.to_owned());
                                new.tags.sort();
                                commands
                                    .push(Command::update(Object::Manifest(new), old.meta.version));
                            }
                        }
                        None => commands.push(Command::create(Object::Manifest(Manifest {
                            meta: Meta::new(id),
                            repository: name.to_owned(),
                            digest: digest.to_owned(),
                            media_type: media_type.to_owned(),
                            content: content.clone(),
                            tags: tag.map(|t| vec![t.to_owned()]).unwrap_or_default(),
                        }))),
                    }
                    if let Some(tag) = tag {
                        for other in s.manifests.by_repository(name) {
                            if other.digest != digest && other.tags.iter().any(|t| t == tag) {
                                let mut moved = other.clone();
                                moved.tags.retain(|t| t != tag);
                                commands.push(Command::update(
                                    Object::Manifest(moved),
                                    other.meta.version,
                                ));
                            }
                        }
                    }
                    commands
                })
                .value;
            if commands.is_empty() {
                return Ok(());
            }
            match self.store.write(Command::Batch { commands }).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(RegistryError::Unavailable(format!(
            "record manifest {name}@{digest}: {last}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_against_the_blob() {
        assert_eq!(byte_range("bytes=0-", 10).unwrap(), (0, 10));
        assert_eq!(byte_range("bytes=4-6", 10).unwrap(), (4, 3));
        assert_eq!(byte_range("bytes=4-99", 10).unwrap(), (4, 6));
        for bad in ["bytes=10-", "bytes=5-2", "items=0-1", "bytes=x-"] {
            assert!(byte_range(bad, 10).is_err(), "{bad}");
        }
        assert_eq!(content_range_start("0-99").unwrap(), 0);
        assert_eq!(content_range_start("bytes 100-199").unwrap(), 100);
        assert!(content_range_start("nope").is_err());
    }
}
