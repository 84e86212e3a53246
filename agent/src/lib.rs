//! An orch node.
//!
//! Modules:
//! - [`engine`]: the local container engine (today: the image content store and layer
//!   unpacking, its API daemon; containers and networks follow).
//! - [`worker`]: the node's session with the cluster's managers.
//! - `testing` (feature `testing`): real peers for tests (a registry).
pub mod engine;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod worker;
