//! The registry's manifest table, indexed by repository.

use crate::store::table::{IndexName, Record, Table};
use api::cluster::{Kind, Meta, Object};
use api::registry::Manifest;

const REPOSITORY: IndexName = "repository";

impl Record for Manifest {
    const KIND: Kind = Kind::Manifest;

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    fn index_keys(&self) -> Vec<(IndexName, String)> {
        vec![(REPOSITORY, self.repository.clone())]
    }

    fn into_object(self) -> Object {
        Object::Manifest(self)
    }

    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Manifest(record) => Some(record),
            _ => None,
        }
    }
}

impl Table<Manifest> {
    /// The manifests of `repository`.
    pub fn by_repository<'a>(
        &'a self,
        repository: &str,
    ) -> impl Iterator<Item = &'a Manifest> + use<'a> {
        self.find(REPOSITORY, repository)
    }

    /// The manifest `reference` (a tag or a digest) names in `repository`.
    pub fn resolve(&self, repository: &str, reference: &str) -> Option<&Manifest> {
        if reference.contains(':') {
            return self.get(&Manifest::id(repository, reference));
        }
        self.by_repository(repository)
            .find(|m| m.tags.iter().any(|t| t == reference))
    }
}
