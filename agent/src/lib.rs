//! An orch node.
//!
//! Modules:
//! - [`engine`]: the local container engine (today: the image content store and layer
//!   unpacking; containers and networks follow).
pub mod engine;
