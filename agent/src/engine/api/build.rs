//! `POST /v1/build`: a build context tarball in, build events out.

use super::Engine;
use super::body::{event_stream, spool};
use super::error::{Failure, image_error, invalid};
use super::params::Params;
use crate::engine::image::build::run::{RunEnv, RunLimits};
use crate::engine::image::build::{BuildRequest, DockerfileSource};
use crate::engine::image::reference::Reference;
use crate::engine::image::unpack::unpack;
use crate::engine::runtime::limits::parse_ulimit;
use api::image::{BuildEvent, BuildUlimit, REGISTRY_CONFIG_HEADER, RegistryConfig, from_header};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a client puts a Dockerfile that lives outside its context.
pub const SIDE_DOCKERFILE: &str = ".orch-build/Dockerfile";

fn registry_config(headers: &HeaderMap) -> Result<RegistryConfig, Failure> {
    match headers.get(REGISTRY_CONFIG_HEADER) {
        None => Ok(RegistryConfig::new()),
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| invalid("X-Registry-Config is not ASCII"))?;
            from_header(text, "X-Registry-Config").map_err(invalid)
        }
    }
}

/// A relative path inside the context, without `..`.
fn contained(file: &str) -> Result<PathBuf, Failure> {
    let p = Path::new(file);
    if p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(p.to_owned())
    } else {
        Err(invalid(format!(
            "file {file:?}: the Dockerfile must be a relative path inside the context"
        )))
    }
}

/// A directory removed on drop.
struct ContextDir(PathBuf);

impl Drop for ContextDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `labels`: a JSON object of strings (Docker's `/build?labels=`).
fn labels(p: &Params) -> Result<BTreeMap<String, String>, Failure> {
    match p.get("labels").filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(text).map_err(|err| {
            invalid(format!(
                "build: query parameter \"labels\" must be a JSON object of strings: {err}"
            ))
        }),
    }
}

/// `shmsize` (bytes; 0: the default) and `ulimits` (a JSON array of `{Name, Soft, Hard}`), as
/// Docker's `/build` takes them; each ulimit is checked as a container's is.
fn run_limits(p: &Params) -> Result<RunLimits, Failure> {
    // 0 is the default, as Docker takes it.
    let shm_size = match p.get("shmsize").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return Err(invalid(format!(
                    "build: query parameter \"shmsize\" must be a number of bytes, not {text:?}"
                )));
            }
        },
    };
    let ulimits = match p.get("ulimits").filter(|v| !v.is_empty()) {
        None => Vec::new(),
        Some(text) => {
            let given: Vec<BuildUlimit> = serde_json::from_str(text).map_err(|err| {
                invalid(format!(
                    "build: query parameter \"ulimits\" must be a JSON array of {{Name, Soft, Hard}}: {err}"
                ))
            })?;
            given
                .iter()
                .map(|u| parse_ulimit(&format!("{}={}:{}", u.name, u.soft, u.hard)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| invalid(format!("build: query parameter \"ulimits\": {err}")))?
        }
    };
    Ok(RunLimits { shm_size, ulimits })
}

/// `POST /v1/build?t=&file=&build-arg=K=V&target=&no-cache=&labels=&shmsize=&ulimits=`
/// with the context tarball.
pub async fn build(
    State(e): State<Arc<Engine>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let p = Params::parse(q.as_deref());
    let auths = registry_config(&headers)?;
    let mut build_args = BTreeMap::new();
    for kv in p.all("build-arg") {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(invalid(format!("build-arg {kv:?}: expected KEY=VALUE")));
        };
        build_args.insert(k.to_owned(), v.to_owned());
    }
    let file = p.get("file").map(contained).transpose()?;
    let labels = labels(&p)?;
    let limits = run_limits(&p)?;
    let tags = p
        .all("t")
        .iter()
        .map(|t| t.parse::<Reference>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid(format!("build: {err}")))?;
    let upload = spool(body, &e.scratch, "build").await?;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = ContextDir(e.scratch.join(format!(
        "context-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )));
    let target = dir.0.clone();
    let unpacked = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&target)?;
        let f = std::fs::File::open(upload.path())?;
        unpack(f, &target).map_err(std::io::Error::other)
    })
    .await
    .map_err(|err| invalid(format!("build: {err}")))?;
    unpacked.map_err(|err| {
        invalid(format!(
            "build: the context is not a readable tarball: {err}"
        ))
    })?;
    let dockerfile = match file {
        Some(f) if f == Path::new(SIDE_DOCKERFILE) => {
            let text = std::fs::read_to_string(dir.0.join(&f)).map_err(|err| {
                invalid(format!(
                    "build: {SIDE_DOCKERFILE} is missing from the context: {err}"
                ))
            })?;
            let _ = std::fs::remove_dir_all(dir.0.join(".orch-build"));
            DockerfileSource::Text(text)
        }
        Some(f) => DockerfileSource::Path(f),
        None => DockerfileSource::Default,
    };
    let spec = BuildRequest {
        context: dir.0.clone(),
        dockerfile,
        tags,
        build_args,
        target: p.get("target").filter(|t| !t.is_empty()).map(str::to_owned),
        no_cache: p.flag("no-cache")?,
        labels,
        limits,
        // The engine runs as `orch`: its own binary starts RUN containers.
        runtime: Some(RunEnv {
            init_exe: PathBuf::from("/proc/self/exe"),
        }),
    };
    let (tx, body) = event_stream();
    tokio::spawn(async move {
        let sink = tx.clone();
        let result = e
            .images
            .build(spec, &auths, &move |ev| sink.send(&ev))
            .await;
        drop(dir);
        let last = match result {
            Ok(built) => BuildEvent::Done {
                digest: built.manifest.to_string(),
                id: built.config.to_string(),
            },
            Err(err) => BuildEvent::Error(image_error(&err)),
        };
        tx.send_wait(&last).await;
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::runtime::limits::Ulimit;

    fn params(q: &str) -> Params {
        Params::parse(Some(q))
    }

    fn message(f: Failure) -> String {
        assert_eq!(f.0.code, api::error::ErrorCode::InvalidArgument);
        f.0.message
    }

    #[test]
    fn labels_are_a_json_object() {
        assert!(labels(&params("")).unwrap().is_empty());
        let l = labels(&params("labels=%7B%22a.b%22%3A%22x%20y%22%7D")).unwrap();
        assert_eq!(l, BTreeMap::from([("a.b".into(), "x y".into())]));
        let err = message(labels(&params("labels=%5B1%5D")).unwrap_err());
        assert!(err.contains("\"labels\""), "{err}");
    }

    #[test]
    fn shmsize_and_ulimits_follow_docker() {
        assert_eq!(run_limits(&params("")).unwrap(), RunLimits::default());
        assert_eq!(
            run_limits(&params("shmsize=0")).unwrap(),
            RunLimits::default()
        );
        let q = "shmsize=134217728&ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A512%2C%22Hard%22%3A1024%7D%2C%7B%22Name%22%3A%22core%22%2C%22Soft%22%3A-1%2C%22Hard%22%3A-1%7D%5D";
        let l = run_limits(&params(q)).unwrap();
        assert_eq!(l.shm_size, Some(128 << 20));
        assert_eq!(
            l.ulimits,
            [
                Ulimit {
                    name: "nofile".into(),
                    soft: 512,
                    hard: 1024
                },
                Ulimit {
                    name: "core".into(),
                    soft: u64::MAX,
                    hard: u64::MAX
                },
            ]
        );
        for (q, names) in [
            ("shmsize=-1", "shmsize"),
            ("shmsize=64m", "shmsize"),
            ("ulimits=nofile", "ulimits"),
            (
                "ulimits=%5B%7B%22Name%22%3A%22files%22%2C%22Soft%22%3A1%2C%22Hard%22%3A1%7D%5D",
                "unknown limit",
            ),
            (
                "ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A9%2C%22Hard%22%3A1%7D%5D",
                "soft limit is above",
            ),
        ] {
            let err = message(run_limits(&params(q)).unwrap_err());
            assert!(err.contains(names), "{q}: {err}");
        }
    }
}
