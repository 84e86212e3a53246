//! Where each service's tasks are: per service, how many of its tasks occupy each node.
//! A service is known by its id and by its name within its stack, so affinities can
//! name a service before any of its tasks is seen.

use super::hash::FastMap;
use api::cluster::Task;

/// The index of a service in [`Services`].
pub(super) type ServiceIndex = u32;

/// The tasks of every service, by node.
#[derive(Clone, Debug, Default)]
pub(super) struct Services {
    /// Per service: node index -> tasks of the service on it.
    on_node: Vec<FastMap<u32, u32>>,
    by_id: FastMap<String, ServiceIndex>,
    /// `stack` NUL `name` -> service.
    by_name: FastMap<String, ServiceIndex>,
}

fn name_key(stack: &str, name: &str) -> String {
    format!("{stack}\0{name}")
}

impl Services {
    /// The service of a task, if any task of it (or a reference to it) was seen.
    pub fn find_task(&self, task: &Task) -> Option<ServiceIndex> {
        self.by_id.get(&task.service).copied().or_else(|| {
            (!task.name.is_empty())
                .then(|| {
                    self.by_name
                        .get(&name_key(&task.stack, &task.name))
                        .copied()
                })
                .flatten()
        })
    }

    /// The service of a task, made known under its id and name if it was not.
    pub fn of_task(&mut self, task: &Task) -> ServiceIndex {
        if let Some(&index) = self.by_id.get(&task.service) {
            return index;
        }
        let named = (!task.name.is_empty()).then(|| name_key(&task.stack, &task.name));
        let found = named
            .as_ref()
            .and_then(|key| self.by_name.get(key).copied());
        let index = found.unwrap_or_else(|| self.add());
        self.by_id.insert(task.service.clone(), index);
        if let Some(key) = named {
            self.by_name.entry(key).or_insert(index);
        }
        index
    }

    /// The service a task of `stack` names `name`: a service of that stack by name,
    /// else a service with that id.
    pub fn find_name(&self, stack: &str, name: &str) -> Option<ServiceIndex> {
        self.by_name
            .get(&name_key(stack, name))
            .or_else(|| self.by_id.get(name))
            .copied()
    }

    /// Like [`Services::find_name`], made known under that name if it was not.
    pub fn of_name(&mut self, stack: &str, name: &str) -> ServiceIndex {
        if let Some(index) = self.find_name(stack, name) {
            return index;
        }
        let index = self.add();
        self.by_name.insert(name_key(stack, name), index);
        index
    }

    fn add(&mut self) -> ServiceIndex {
        self.on_node.push(FastMap::default());
        (self.on_node.len() - 1) as ServiceIndex
    }

    /// How many tasks of the service occupy the node.
    pub fn count(&self, service: ServiceIndex, node: u32) -> u32 {
        self.on_node
            .get(service as usize)
            .and_then(|nodes| nodes.get(&node))
            .copied()
            .unwrap_or(0)
    }

    /// Whether a task of the service (if known) occupies the node.
    pub fn runs_on(&self, service: Option<ServiceIndex>, node: u32) -> bool {
        service.is_some_and(|s| self.count(s, node) > 0)
    }

    /// Counts one more task of the service on the node.
    pub fn add_task(&mut self, service: ServiceIndex, node: u32) {
        if let Some(nodes) = self.on_node.get_mut(service as usize) {
            *nodes.entry(node).or_insert(0) += 1;
        }
    }
}
