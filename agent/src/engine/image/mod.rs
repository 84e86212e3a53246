//! Images: content-addressed blobs and layers unpacked into snapshot directories.
//!
//! - [`archive`]: images in and out of tar files (docker-archive, OCI image layout).
//! - [`build`]: images from a Dockerfile (parse, plan, COPY/ADD layers, build cache).
//! - [`builds`]: builds as the engine API offers them (base images pulled first).
//! - [`digest`]: `sha256:<hex>` digests.
//! - [`gc`]: removing images (`rmi`) and pruning unreferenced blobs and snapshots.
//! - [`images`]: images by name (tags), and import of a root file system tarball.
//! - [`lifecycle`]: import, load, save, remove and prune as the engine API offers them.
//! - [`manifest`]: OCI / Docker schema 2 manifests, indexes, configs; platform choice.
//! - [`reference`]: image references and Docker Hub's naming rules.
//! - [`registry`]: the distribution API client (pull, push, token and basic auth).
//! - [`service`]: the image operations the engine API offers.
//! - [`snapshot`]: layers unpacked once per chain id; overlay mount specs.
//! - [`store`]: the blob store (atomic ingest, verification, one writer per digest).
//! - [`unpack`]: layer tarballs (tar, gzip, zstd) into a directory, OCI whiteouts as
//!   overlayfs whiteouts, nothing written outside the directory.
pub mod archive;
pub mod build;
pub mod builds;
pub mod digest;
pub mod gc;
#[cfg(test)]
mod gc_tests;
pub mod images;
pub mod lifecycle;
pub mod manifest;
pub mod reference;
pub mod registry;
#[cfg(test)]
mod registry_tests;
pub mod service;
pub mod snapshot;
pub mod store;
#[cfg(test)]
mod tests;
pub mod unpack;
