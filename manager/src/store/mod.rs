//! The replicated store: openraft over redb, typed tables, watch.
//!
//! - [`command`]: what goes through raft (proposals, commands, results, rejections).
//! - [`cluster`]: the cluster singleton (CA, settings, API token hashes).
//! - [`table`], [`tables`]: a typed table with indexes; one file per kind.
//! - [`state`]: all tables together; [`apply`]: the pure state transition.
//! - [`log_store`], [`state_machine`]: raft storage on redb (`log.redb`, `state.redb`).
//! - [`network`]: raft RPCs over HTTP (axum server, reqwest client).
//! - [`watch`]: committed events, resumable from a version.
//! - [`handle`]: [`Store`], the handle the manager uses; [`error`]: [`StoreError`].

pub mod apply;
pub mod cluster;
pub mod command;
mod disk;
pub mod error;
pub mod handle;
pub mod log_store;
pub mod network;
pub mod state;
pub mod state_file;
pub mod state_machine;
pub mod table;
pub mod tables;
pub mod types;
pub mod watch;

pub use cluster::{ClusterRecord, ClusterSettings};
pub use command::{Applied, Command, CommandResult, Problem, Proposal, Rejection};
pub use error::StoreError;
pub use handle::{Store, StoreConfig, Versioned};
pub use state::State;
pub use types::{NodeId, TypeConfig};
pub use watch::Watcher;
