//! What goes through raft: [`Proposal`] (a [`Command`] stamped with the leader's time)
//! and what applying it answers: [`CommandResult`].
//!
//! These types are replayed from old log entries by newer binaries, so they stay
//! tolerant: new fields get `#[serde(default)]`, and a command this binary does not know
//! decodes as [`Command::Unknown`] and is rejected the same way on every replica.

use super::cluster::ClusterRecord;
use api::cluster::{Event, Kind, Object, Timestamp};
use serde::{Deserialize, Serialize};

/// The raft payload (`D`): one command and the time the leader proposed it at. The
/// state machine never reads a clock: `created`/`updated` come from `at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    #[serde(default)]
    pub at: Timestamp,
    pub command: Command,
}

/// A desired-state write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Create an object; its id must be new. Version and times are set by the store.
    Create { object: Object },
    /// Replace an object that is still at `expected_version`.
    Update {
        object: Object,
        expected_version: u64,
    },
    /// Delete an object, if `expected_version` is given only while still at it.
    Delete {
        kind: Kind,
        id: String,
        #[serde(default)]
        expected_version: Option<u64>,
    },
    /// Set the cluster record. With `expected_version: None` only while there is none
    /// (`orch manager init`); otherwise only while it is still at that version.
    SetCluster {
        record: Box<ClusterRecord>,
        #[serde(default)]
        expected_version: Option<u64>,
    },
    /// Several commands applied atomically: all of them or none.
    Batch { commands: Vec<Command> },
    /// Independent commands proposed together (concurrent writes sharing one log entry,
    /// so one append and one fsync): each is applied or refused on its own, in order,
    /// as if each were an entry of its own at this entry's index.
    Each { commands: Vec<Command> },
    /// A command of a newer binary; always rejected.
    #[serde(other)]
    Unknown,
}

impl Command {
    /// A create.
    pub fn create(object: Object) -> Command {
        Command::Create { object }
    }

    /// An update naming the version it read.
    pub fn update(object: Object, expected_version: u64) -> Command {
        Command::Update {
            object,
            expected_version,
        }
    }

    /// A delete, optionally version-checked.
    pub fn delete(kind: Kind, id: impl Into<String>, expected_version: Option<u64>) -> Command {
        Command::Delete {
            kind,
            id: id.into(),
            expected_version,
        }
    }
}

/// What applying one log entry did (the raft response `R`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CommandResult {
    /// Everything was applied at `version`.
    Applied(Applied),
    /// Nothing was applied.
    Rejected { reason: Rejection },
    /// The result of each command of a [`Command::Each`], in order.
    Each { results: Vec<CommandResult> },
}

impl CommandResult {
    /// What took effect: this result if applied, or the applied ones of an `Each`.
    pub fn applied(&self) -> Vec<&Applied> {
        match self {
            CommandResult::Applied(applied) => vec![applied],
            CommandResult::Rejected { .. } => Vec::new(),
            CommandResult::Each { results } => {
                results.iter().flat_map(CommandResult::applied).collect()
            }
        }
    }
}

/// A command that took effect.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The log index of the commit: every changed object now has this version.
    pub version: u64,
    /// The object events, in order (without the `Commit` marker).
    pub changes: Vec<Event>,
}

/// Why a command was refused. Deterministic: every replica refuses it the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Rejection {
    #[error("{kind} {id} changed: the write expected version {expected}, it is at {actual}")]
    Conflict {
        kind: Kind,
        id: String,
        expected: u64,
        actual: u64,
    },
    #[error("{kind} {id} already exists")]
    Exists { kind: Kind, id: String },
    #[error("{kind} {id} does not exist")]
    NotFound { kind: Kind, id: String },
    #[error("the cluster record changed: the write expected {}, it is at {}", version_text(*expected), version_text(*actual))]
    ClusterChanged {
        expected: Option<u64>,
        actual: Option<u64>,
    },
    #[error("invalid command: {problem}")]
    Invalid { problem: Problem },
}

/// What is wrong with an invalid command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    #[error("a {kind} needs a non-empty id")]
    EmptyId { kind: Kind },
    #[error("the id of {kind} {id} is longer than {max} bytes")]
    IdTooLong { kind: Kind, id: String, max: usize },
    #[error("a batch may not contain a batch")]
    NestedBatch,
    #[error("independent commands are only grouped at the top of a log entry")]
    NestedEach,
    #[error("this manager does not know the command (written by a newer version)")]
    UnknownCommand,
}

/// A version for messages: "version N" or "none".
fn version_text(version: Option<u64>) -> String {
    version.map_or_else(|| "none".to_owned(), |v| format!("version {v}"))
}
