//! Images: content-addressed blobs and layers unpacked into snapshot directories.
//!
//! - [`digest`]: `sha256:<hex>` digests.
//! - [`reference`]: image references and Docker Hub's naming rules.
//! - [`store`]: the blob store (atomic ingest, verification, one writer per digest).
//! - [`unpack`]: layer tarballs (tar, gzip, zstd) into a directory, OCI whiteouts as
//!   overlayfs whiteouts, nothing written outside the directory.
pub mod digest;
pub mod reference;
pub mod store;
#[cfg(test)]
mod tests;
pub mod unpack;
