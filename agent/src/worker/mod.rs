//! The node's side of the cluster: the session with the managers, and the executor
//! that runs the tasks they assign.
//!
//! - [`executor`]: reconcile the node's assignment set into the local engine (networks,
//!   containers) and report task status.
//! - [`session`]: register with the leader's dispatcher and heartbeat at the period it
//!   sets; fail over to another manager when the current one stops answering.

pub mod executor;
pub mod session;
