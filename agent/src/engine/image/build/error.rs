//! The one error type of image builds; every variant names the Dockerfile line, the
//! file or the stage at fault.

use super::dockerfile::ParseError;
use super::ignore::IgnoreError;
use super::layer::LayerError;
use super::state::StateError;
use crate::engine::image::images::ImagesError;
use crate::engine::image::reference::ReferenceError;
use crate::engine::image::snapshot::SnapshotError;
use crate::engine::image::store::StoreError;
use std::io;
use std::path::PathBuf;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{file}:{line}: {what}")]
    Dockerfile {
        file: String,
        line: usize,
        what: String,
    },
    #[error(
        "{file}:{line}: RUN needs the container runtime, and this build was started without one \
         (builds through `orch build` have it)"
    )]
    RunNeedsRuntime { file: String, line: usize },
    #[error("{file}:{line}: RUN {command}: returned a non-zero code: {code}")]
    RunFailed {
        file: String,
        line: usize,
        command: String,
        code: i32,
    },
    #[error("{file}:{line}: image {reference} is not in the image store; pull it before the build")]
    MissingImage {
        file: String,
        line: usize,
        reference: String,
    },
    #[error("{file}:{line}: {source}")]
    Reference {
        file: String,
        line: usize,
        source: ReferenceError,
    },
    #[error("target stage {target:?} not found; the stages are: {stages}")]
    UnknownTarget { target: String, stages: String },
    #[error("read the Dockerfile {path}: {source}")]
    ReadDockerfile { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Ignore { path: PathBuf, source: IgnoreError },
    #[error("{file}:{line}: {op} {path}: {source}")]
    Source {
        file: String,
        line: usize,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{file}:{line}: write the new layer: {source}")]
    Layer {
        file: String,
        line: usize,
        source: LayerError,
    },
    #[error("{file}:{line}: image {reference}: {source}")]
    BaseImage {
        file: String,
        line: usize,
        reference: String,
        source: StateError,
    },
    #[error("build context {path}: {source}")]
    Context { path: PathBuf, source: io::Error },
    #[error("{file}:{line}: {source}")]
    Snapshot {
        file: String,
        line: usize,
        source: SnapshotError,
    },
    #[error("build cache {path}: {op}: {source}")]
    Cache {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error(transparent)]
    Images(#[from] ImagesError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BuildError {
    /// A syntax or usage error at a line of `file`.
    pub fn at(file: &str, e: ParseError) -> BuildError {
        BuildError::Dockerfile {
            file: file.to_owned(),
            line: e.line,
            what: e.what,
        }
    }
}
