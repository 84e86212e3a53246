//! The pure core of the state machine: `(state, version, proposal) -> result + events`.
//!
//! Deterministic: no clock (times come from the proposal), no I/O, no randomness, and
//! iteration only over ordered maps. A rejected command (also one inside a batch) leaves
//! the state exactly as it was: every change records how to undo it, and a rejection
//! undoes them in reverse order.

use super::cluster::ClusterRecord;
use super::command::{Applied, Command, CommandResult, Problem, Proposal, Rejection};
use super::state::State;
use api::cluster::{Event, Kind, Object, Timestamp};

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 253;

/// Apply `proposal`, committed at log index `version`, to `state`.
pub fn apply(state: &mut State, version: u64, proposal: &Proposal) -> CommandResult {
    match &proposal.command {
        Command::Each { commands } => CommandResult::Each {
            results: commands
                .iter()
                .map(|command| apply_one(state, version, proposal.at, command))
                .collect(),
        },
        command => apply_one(state, version, proposal.at, command),
    }
}

/// Apply one command (all of it or nothing).
fn apply_one(state: &mut State, version: u64, at: Timestamp, command: &Command) -> CommandResult {
    let mut run = Run {
        state,
        version,
        at,
        undo: Vec::new(),
        cluster_undo: None,
        changes: Vec::new(),
    };
    match run.command(command, false) {
        Ok(()) => CommandResult::Applied(Applied {
            version,
            changes: run.changes,
        }),
        Err(reason) => {
            run.rollback();
            CommandResult::Rejected { reason }
        }
    }
}

/// One application in progress.
struct Run<'s> {
    state: &'s mut State,
    version: u64,
    at: Timestamp,
    /// What each change replaced: `(kind, id, previous object)`.
    undo: Vec<(Kind, String, Option<Object>)>,
    /// The cluster record before the first change to it, if it changed.
    cluster_undo: Option<Option<ClusterRecord>>,
    changes: Vec<Event>,
}

impl Run<'_> {
    fn command(&mut self, command: &Command, in_batch: bool) -> Result<(), Rejection> {
        match command {
            Command::Create { object } => self.create(object),
            Command::Update {
                object,
                expected_version,
            } => self.update(object, *expected_version),
            Command::Delete {
                kind,
                id,
                expected_version,
            } => self.delete(*kind, id, *expected_version),
            Command::SetCluster {
                record,
                expected_version,
            } => self.set_cluster(record, *expected_version),
            Command::Batch { commands } => {
                if in_batch {
                    return Err(invalid(Problem::NestedBatch));
                }
                commands.iter().try_for_each(|c| self.command(c, true))
            }
            Command::Each { .. } => Err(invalid(Problem::NestedEach)),
            Command::Unknown => Err(invalid(Problem::UnknownCommand)),
        }
    }

    fn create(&mut self, object: &Object) -> Result<(), Rejection> {
        let (kind, id) = checked_id(object)?;
        if self.state.version(kind, &id).is_some() {
            return Err(Rejection::Exists { kind, id });
        }
        let mut object = object.clone();
        let meta = object.meta_mut();
        meta.version = self.version;
        meta.created = self.at;
        meta.updated = self.at;
        self.state.put(object.clone());
        self.undo.push((kind, id, None));
        self.changes.push(Event::Created { object });
        Ok(())
    }

    fn update(&mut self, object: &Object, expected: u64) -> Result<(), Rejection> {
        let (kind, id) = checked_id(object)?;
        let Some(old) = self.state.get(kind, &id) else {
            return Err(Rejection::NotFound { kind, id });
        };
        let actual = old.meta().version;
        if actual != expected {
            return Err(Rejection::Conflict {
                kind,
                id,
                expected,
                actual,
            });
        }
        let mut object = object.clone();
        let meta = object.meta_mut();
        meta.version = self.version;
        meta.created = old.meta().created;
        meta.updated = self.at;
        self.state.put(object.clone());
        self.undo.push((kind, id, Some(old)));
        self.changes.push(Event::Updated { object });
        Ok(())
    }

    fn delete(&mut self, kind: Kind, id: &str, expected: Option<u64>) -> Result<(), Rejection> {
        let Some(actual) = self.state.version(kind, id) else {
            return Err(Rejection::NotFound {
                kind,
                id: id.to_owned(),
            });
        };
        if let Some(expected) = expected.filter(|e| *e != actual) {
            return Err(Rejection::Conflict {
                kind,
                id: id.to_owned(),
                expected,
                actual,
            });
        }
        if let Some(old) = self.state.remove(kind, id) {
            self.undo.push((kind, id.to_owned(), Some(old.clone())));
            self.changes.push(Event::Deleted { object: old });
        }
        Ok(())
    }

    fn set_cluster(
        &mut self,
        record: &ClusterRecord,
        expected: Option<u64>,
    ) -> Result<(), Rejection> {
        let actual = self.state.cluster.as_ref().map(|c| c.version);
        if actual != expected {
            return Err(Rejection::ClusterChanged { expected, actual });
        }
        let mut record = record.clone();
        record.version = self.version;
        let previous = self.state.cluster.replace(record);
        self.cluster_undo.get_or_insert(previous);
        Ok(())
    }

    fn rollback(&mut self) {
        if let Some(previous) = self.cluster_undo.take() {
            self.state.cluster = previous;
        }
        for (kind, id, previous) in self.undo.drain(..).rev() {
            match previous {
                Some(object) => {
                    self.state.put(object);
                }
                None => {
                    self.state.remove(kind, &id);
                }
            }
        }
        self.changes.clear();
    }
}

fn invalid(problem: Problem) -> Rejection {
    Rejection::Invalid { problem }
}

/// The object's kind and id, if the id is acceptable.
fn checked_id(object: &Object) -> Result<(Kind, String), Rejection> {
    let kind = object.kind();
    let id = &object.meta().id;
    if id.is_empty() {
        return Err(invalid(Problem::EmptyId { kind }));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid(Problem::IdTooLong {
            kind,
            id: id.clone(),
            max: MAX_ID_LEN,
        }));
    }
    Ok((kind, id.clone()))
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
