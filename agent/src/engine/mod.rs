//! The local container engine, usable alone like dockerd.
//!
//! - [`api`]: the HTTP API on the engine's unix socket.
//! - [`daemon`]: the engine as a daemon: data dir lock, socket, serve.
//! - [`image`]: content-addressed blobs and layer snapshots.
//! - [`network`]: container networks (the embedded DNS server).
//! - [`runtime`]: containers: namespaces, root file system, process.
//! - [`volume`]: named volumes, filled from the image on first use.
pub mod api;
pub mod daemon;
pub mod image;
pub mod network;
pub mod runtime;
pub mod volume;
