//! The node's side of the cluster: the session with the managers, and the executor
//! that runs the tasks they assign.
//!
//! - [`archive`]: the logs of task containers that are gone.
//! - [`executor`]: reconcile the node's assignment set into the local engine (networks,
//!   containers) and report task status.
//! - [`logs`]: read the logs of this node's tasks for the leader's log subscriptions.
//! - [`session`]: register with the leader's dispatcher and heartbeat at the period it
//!   sets; fail over to another manager when the current one stops answering.

pub mod archive;
pub mod executor;
pub mod logs;
pub mod session;
