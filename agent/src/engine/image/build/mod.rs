//! Building images from a Dockerfile.
//!
//! Pure parts: [`dockerfile`] (text -> stages of instructions with line numbers),
//! [`instruction`] (each instruction's form), [`words`] (quotes and `$VAR`
//! substitution), [`scope`] (ARG / ENV values in scope), [`plan`] (the stages a target
//! needs, the base images to pull: [`base_images`]), [`ignore`] (`.dockerignore`),
//! [`metadata`] (config-only instructions).
//!
//! The shell: [`executor`] runs the stages ([`build`]); [`inputs`] reads the Dockerfile and ignore file, [`tree`] reads the context and
//! stage file systems, [`copy`] turns COPY/ADD into layer entries, [`users`] resolves
//! `--chown`, [`layer`] writes deterministic layers, [`cache`] remembers them, [`state`]
//! holds the image being built. [`error`] has the one error type.
//!
//! RUN needs the container runtime (engine part 2); until then it fails with
//! [`BuildError::RunNeedsRuntime`] naming its line. Not supported either, each with a
//! clear error or stated here: ADD from URLs (error), heredocs (`<<EOF`, parsed as
//! words), bzip2/xz archives for ADD (copied as files), running a base image's ONBUILD
//! triggers (they are kept in the config, not run), platforms other than linux/amd64.

pub mod cache;
pub mod copy;
pub mod diff;
pub mod dockerfile;
pub mod error;
pub mod executor;
pub mod ignore;
pub mod inputs;
pub mod instruction;
pub mod layer;
pub mod metadata;
pub mod plan;
pub mod run;
pub mod scope;
pub mod state;
pub mod tree;
pub mod users;
pub mod words;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_more;

pub use error::BuildError;
pub use executor::build;
pub use plan::base_images;

use super::digest::Digest;
use super::reference::Reference;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the Dockerfile comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DockerfileSource {
    /// `<context>/Dockerfile`.
    #[default]
    Default,
    /// A file (relative paths are taken from the context directory).
    Path(PathBuf),
    /// The Dockerfile's text itself.
    Text(String),
}

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct BuildRequest {
    /// The build context: a directory on disk.
    pub context: PathBuf,
    pub dockerfile: DockerfileSource,
    /// Every tag the image gets.
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (the last one when `None`).
    pub target: Option<String>,
    /// Make every layer anew instead of reusing cached ones.
    pub no_cache: bool,
    /// Labels set on the image over the Dockerfile's LABELs of the same key.
    pub labels: BTreeMap<String, String>,
    /// /dev/shm size and rlimits of RUN steps.
    pub limits: run::RunLimits,
    /// How to run RUN steps; `None`: a RUN fails with [`BuildError::RunNeedsRuntime`].
    pub runtime: Option<run::RunEnv>,
}

/// Progress of a build, for the caller to display: the API's build events (a build
/// emits `Step`, `Cached`, `Layer`, `UnusedBuildArgs` and `Tagged`).
pub use api::image::BuildEvent;

/// The image a build made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub manifest: Digest,
    pub config: Digest,
}
