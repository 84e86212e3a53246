//! The local container engine, usable alone like dockerd.
//!
//! - [`image`]: content-addressed blobs and layer snapshots.
pub mod image;
