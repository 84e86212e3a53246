//! A typed in-memory table: rows by id plus the secondary indexes its kind declares.
//!
//! A [`Record`] says which kind it is, where its [`Meta`] is and which index keys it
//! has; [`Table`] keeps the indexes in step with every insert and remove, so a table
//! file (`tables/task.rs`, ...) only declares keys and typed queries.

use api::cluster::{Kind, Meta, Object};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The name of a secondary index of a table (`"service"`, `"node"`, ...).
pub type IndexName = &'static str;

/// A row type of a table.
pub trait Record: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The kind of object this is.
    const KIND: Kind;

    fn meta(&self) -> &Meta;

    fn meta_mut(&mut self) -> &mut Meta;

    /// The (index, key) pairs this row is found under; an index may hold several keys.
    fn index_keys(&self) -> Vec<(IndexName, String)> {
        Vec::new()
    }

    /// Wrap into the kind-tagged [`Object`].
    fn into_object(self) -> Object;

    /// Unwrap from an [`Object`] of this kind (`None` for another kind).
    fn from_object(object: Object) -> Option<Self>;
}

/// A row of any kind, shared with the table it was in (see [`Table::shared`]).
pub trait Row: Send + Sync {
    /// A copy of the row as an [`Object`].
    fn object(&self) -> Object;
}

impl<R: Record> Row for R {
    fn object(&self) -> Object {
        self.clone().into_object()
    }
}

/// Rows of one kind by id, with secondary indexes. Rows are shared (`Arc`): a copy of
/// the table, or of its rows for a snapshot, costs a pointer per row, and a row
/// replaced later leaves the copy's as it was.
#[derive(Clone, Debug)]
pub struct Table<R: Record> {
    rows: BTreeMap<String, Arc<R>>,
    index: BTreeMap<(IndexName, String), BTreeSet<String>>,
}

impl<R: Record> Default for Table<R> {
    fn default() -> Self {
        Table {
            rows: BTreeMap::new(),
            index: BTreeMap::new(),
        }
    }
}

/// Two tables are equal when their rows are (indexes are derived from rows).
impl<R: Record> PartialEq for Table<R> {
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows
    }
}

impl<R: Record> Table<R> {
    /// The row with `id`.
    pub fn get(&self, id: &str) -> Option<&R> {
        self.rows.get(id).map(|r| &**r)
    }

    /// Every row, by id.
    pub fn iter(&self) -> impl Iterator<Item = &R> {
        self.rows.values().map(|r| &**r)
    }

    /// Every row, by id, shared: no row is copied.
    pub fn shared(&self) -> impl Iterator<Item = Arc<dyn Row>> + '_ {
        self.rows.values().map(|r| r.clone() as Arc<dyn Row>)
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// `true` when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows whose `index` has `key`, by id.
    pub fn find<'a>(
        &'a self,
        index: IndexName,
        key: &str,
    ) -> impl Iterator<Item = &'a R> + use<'a, R> {
        self.index
            .get(&(index, key.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|id| self.rows.get(id).map(|r| &**r))
    }

    /// Insert or replace a row; returns the row it replaced.
    pub fn insert(&mut self, row: R) -> Option<R> {
        let id = row.meta().id.clone();
        let old = self.remove(&id);
        for key in row.index_keys() {
            self.index.entry(key).or_default().insert(id.clone());
        }
        self.rows.insert(id, Arc::new(row));
        old
    }

    /// Remove a row; returns it.
    pub fn remove(&mut self, id: &str) -> Option<R> {
        let old = Arc::unwrap_or_clone(self.rows.remove(id)?);
        for key in old.index_keys() {
            if let Some(ids) = self.index.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    self.index.remove(&key);
                }
            }
        }
        Some(old)
    }

    /// Every index entry (for tests of index consistency).
    pub fn index_entries(&self) -> impl Iterator<Item = (&(IndexName, String), &BTreeSet<String>)> {
        self.index.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::{Task, TaskState};

    fn task(id: &str, service: &str, node: Option<&str>) -> Task {
        Task {
            meta: Meta::new(id),
            service: service.into(),
            node: node.map(str::to_owned),
            desired_state: TaskState::Running,
            ..Task::default()
        }
    }

    #[test]
    fn indexes_follow_inserts_replacements_and_removes() {
        let mut table = Table::<Task>::default();
        table.insert(task("t1", "web", Some("n1")));
        table.insert(task("t2", "web", None));
        table.insert(task("t3", "db", Some("n1")));
        let ids = |it: Vec<&Task>| it.iter().map(|t| t.meta.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(table.find("service", "web").collect()), ["t1", "t2"]);
        assert_eq!(ids(table.find("node", "n1").collect()), ["t1", "t3"]);

        // Moving t1 to another node moves its index entry.
        let old = table.insert(task("t1", "web", Some("n2")));
        assert_eq!(old.and_then(|t| t.node), Some("n1".to_owned()));
        assert_eq!(ids(table.find("node", "n1").collect()), ["t3"]);
        assert_eq!(ids(table.find("node", "n2").collect()), ["t1"]);

        table.remove("t3");
        assert_eq!(table.find("node", "n1").count(), 0);
        assert!(table.index_entries().all(|(_, ids)| !ids.is_empty()));
        assert_eq!(table.len(), 2);
    }

    /// Shared rows (what a snapshot takes under the state lock) stay as they were when
    /// the table changes after.
    #[test]
    fn shared_rows_keep_what_they_were_when_the_table_changes() {
        let mut table = Table::<Task>::default();
        table.insert(task("t1", "web", Some("n1")));
        table.insert(task("t2", "web", None));
        let shared: Vec<_> = table.shared().collect();
        table.insert(task("t1", "web", Some("n2")));
        table.remove("t2");
        let then: Vec<Object> = shared.iter().map(|row| row.object()).collect();
        assert_eq!(
            then,
            vec![
                task("t1", "web", Some("n1")).into_object(),
                task("t2", "web", None).into_object()
            ]
        );
        assert_eq!(
            table.get("t1").and_then(|t| t.node.clone()),
            Some("n2".into())
        );
        assert_eq!(table.len(), 1);
    }
}
