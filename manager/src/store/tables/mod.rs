//! One file per table: its [`Record`](super::table::Record) impl (kind, index keys)
//! and typed queries over its indexes.

pub mod file;
pub mod manifest;
pub mod network;
pub mod node;
pub mod service;
pub mod stack;
pub mod task;
