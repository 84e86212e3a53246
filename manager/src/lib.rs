//! The orch manager: the cluster's control plane.
//!
//! Modules:
//! - [`store`]: the replicated store — openraft with a durable log and state machine on
//!   redb, typed tables of the cluster objects, optimistic concurrency by version, and a
//!   watch of committed events.

pub mod store;
