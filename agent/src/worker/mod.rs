//! The node's side of the cluster: the session with the managers.
//!
//! - [`session`]: register with the leader's dispatcher and heartbeat at the period it
//!   sets; fail over to another manager when the current one stops answering.

pub mod session;
