//! The worker's executor (swarmkit's agent executor): it turns the tasks assigned to
//! this node into containers on the node's own engine, through the engine's API only,
//! and reports each state a task reaches.
//!
//! - [`spec`]: [`container_create`], the container a task runs as (pure).
//! - [`reconcile`]: an assignment set against what the node has -> actions (pure).
//! - [`report`]: task statuses out of what the engine shows (pure).
//! - [`files`]: a task's secrets and configs, on a tmpfs of its own, bound read-only.
//! - [`image`]: a task's image pulled as its `pull_policy` says.
//! - [`runner`]: one task's life: prepare, create, start, watch, stop, remove.
//! - [`adopt`]: the task containers and cluster networks found on the engine.
//! - [`run`]: the loop that ties them together ([`run()`]).
//! - [`error`]: the executor's error type, [`ExecutorError`].

pub mod adopt;
pub mod error;
pub mod files;
pub mod image;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod runner;
pub mod spec;

pub use error::ExecutorError;
pub use run::run;
pub use spec::container_create;
