//! The replicated store: openraft over a write-ahead log and redb, typed tables, watch.
//!
//! - [`command`]: what goes through raft (proposals, commands, results, rejections).
//! - [`cluster`]: the cluster singleton (CA, settings, API token hashes).
//! - [`table`], [`tables`]: a typed table with indexes; one file per kind.
//! - [`state`]: all tables together; [`apply`]: the pure state transition.
//! - [`log_store`]: the raft log, in a write-ahead log of its own (`wal`: `log/`).
//! - [`state_machine`]: the applied state, in memory and behind it in redb (`state.redb`).
//! - [`network`]: raft RPCs over HTTPS (axum server; one hyper connection per peer).
//! - [`watch`]: committed events, resumable from a version.
//! - [`handle`]: [`Store`], the handle the manager uses; [`error`]: [`StoreError`].

pub mod apply;
pub mod cluster;
pub mod command;
mod consecutive;
mod disk;
pub mod error;
pub mod handle;
mod log_redb;
pub mod log_store;
pub mod network;
#[cfg(test)]
mod scratch;
pub mod state;
pub mod state_file;
pub mod state_machine;
pub mod table;
pub mod tables;
pub mod types;
mod wal;
pub mod watch;

pub use cluster::{ClusterRecord, ClusterSettings};
pub use command::{Applied, Command, CommandResult, Problem, Proposal, Rejection};
pub use error::StoreError;
pub use handle::{Store, StoreConfig, Versioned};
pub use state::State;
pub use types::{NodeId, TypeConfig};
pub use watch::Watcher;
