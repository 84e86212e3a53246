//! A simulated cluster for the orchestrator's tests: the real pure passes and the
//! store's pure `apply`, a clock moved by hand, agents and placement played by the
//! test (the scheduler has its own tests).

use super::{Change, plan, to_command};
use crate::store::apply::apply;
use crate::store::{Command, CommandResult, Proposal, State};
use api::cluster::{
    Availability, Meta, Node, NodeState, NodeStatus, Object, Stack, Task, TaskState, Timestamp,
};
use api::{ServiceSpec, StackSpec};

pub struct Sim {
    pub state: State,
    pub version: u64,
    pub now: Timestamp,
    /// Place with the real scheduling pass and this strategy instead of the
    /// simulation's fewest-tasks placement.
    pub scheduler: Option<crate::scheduler::Strategy>,
    next_id: u64,
}

impl Sim {
    pub fn new(nodes: &[&str]) -> Sim {
        let mut sim = Sim {
            state: State::default(),
            version: 0,
            now: Timestamp(1_000_000),
            scheduler: None,
            next_id: 0,
        };
        for id in nodes {
            sim.add_node(id);
        }
        sim
    }

    pub fn add_node(&mut self, id: &str) {
        let node = Node {
            meta: Meta::new(id),
            status: NodeStatus {
                state: NodeState::Ready,
                ..NodeStatus::default()
            },
            ..Node::default()
        };
        self.commit(vec![Command::create(Object::Node(node))]);
    }

    pub fn commit(&mut self, commands: Vec<Command>) {
        self.version += 1;
        let proposal = Proposal {
            at: self.now,
            command: Command::Batch { commands },
        };
        match apply(&mut self.state, self.version, &proposal) {
            CommandResult::Applied(_) => {}
            CommandResult::Rejected { reason } => panic!("rejected: {reason}"),
            other => panic!("a batch answered {other:?}"),
        }
    }

    fn write(&mut self, changes: Vec<Change>) -> bool {
        if changes.is_empty() {
            return false;
        }
        self.commit(changes.into_iter().map(to_command).collect());
        true
    }

    /// Deploys a stack of `services` (name, spec).
    pub fn deploy(&mut self, name: &str, services: &[(&str, ServiceSpec)]) {
        let spec = StackSpec {
            name: name.into(),
            services: services
                .iter()
                .map(|(n, s)| ((*n).to_owned(), s.clone()))
                .collect(),
            ..StackSpec::default()
        };
        self.deploy_spec(name, spec);
    }

    /// Deploys (or updates) stack `name` as `spec` says.
    pub fn deploy_spec(&mut self, name: &str, spec: StackSpec) {
        let object = match self.state.stacks.get(name) {
            Some(old) => {
                let mut stack = old.clone();
                stack.spec = spec;
                let version = stack.meta.version;
                Command::update(Object::Stack(stack), version)
            }
            None => Command::create(Object::Stack(Stack {
                meta: Meta::new(name),
                spec,
            })),
        };
        self.commit(vec![object]);
        self.settle();
    }

    /// Runs the orchestrator, the allocator and a round-robin placement until they
    /// have nothing more to write.
    pub fn settle(&mut self) {
        for _ in 0..50 {
            let mut next = self.next_id;
            let plan = {
                let mut ids = || {
                    next += 1;
                    format!("t{next}")
                };
                plan(&self.state, self.now, &mut ids)
            };
            self.next_id = next;
            let a = self.write(plan.changes);
            let b = self.write(crate::allocator::plan(&self.state).changes);
            let c = self.place();
            if !(a || b || c) {
                return;
            }
        }
        panic!("the passes do not settle");
    }

    /// Pending tasks go to the ready, active node with the fewest tasks (or where
    /// the real scheduler puts them, when the simulation uses it).
    fn place(&mut self) -> bool {
        if let Some(strategy) = self.scheduler {
            let plan = super::schedule::plan(&self.state, strategy, self.now);
            let placed: Vec<Change> = plan
                .changes
                .into_iter()
                .filter(|c| match c {
                    Change::Update(Object::Task(t)) => t.status.state == TaskState::Assigned,
                    _ => false,
                })
                .collect();
            return self.write(placed);
        }
        let mut changes = Vec::new();
        let mut load: std::collections::BTreeMap<String, usize> = self
            .state
            .nodes
            .iter()
            .filter(|n| {
                n.status.state == NodeState::Ready && n.spec.availability == Availability::Active
            })
            .map(|n| {
                (
                    n.meta.id.clone(),
                    self.state
                        .tasks
                        .by_node(&n.meta.id)
                        .filter(|t| super::wanted(t))
                        .count(),
                )
            })
            .collect();
        for task in self.state.tasks.iter() {
            if task.status.state != TaskState::Pending || !super::wanted(task) {
                continue;
            }
            let node = match &task.node {
                Some(n) => Some(n.clone()),
                None => load.iter().min_by_key(|(_, c)| **c).map(|(n, _)| n.clone()),
            };
            let Some(node) = node else { continue };
            *load.entry(node.clone()).or_default() += 1;
            let mut t = task.clone();
            t.node = Some(node);
            t.status.state = TaskState::Assigned;
            changes.push(Change::update_task(t));
        }
        self.write(changes)
    }

    /// The agents: every assigned task runs; every unwanted one stops.
    pub fn agents_run(&mut self) {
        self.agents(|task| {
            if super::wanted(task) && task.status.state == TaskState::Assigned {
                Some((TaskState::Running, None))
            } else if !super::wanted(task)
                && !super::ended(task.status.state)
                && task.status.state >= TaskState::Assigned
            {
                Some((TaskState::Shutdown, None))
            } else {
                None
            }
        });
    }

    /// Applies `report` to every task on a ready node; settles.
    pub fn agents(&mut self, report: impl Fn(&Task) -> Option<(TaskState, Option<i32>)>) {
        let mut changes = Vec::new();
        for task in self.state.tasks.iter() {
            let up = task
                .node
                .as_deref()
                .and_then(|n| self.state.nodes.get(n))
                .is_some_and(|n| n.status.state == NodeState::Ready);
            if !up {
                continue;
            }
            if let Some((state, exit_code)) = report(task) {
                let mut t = task.clone();
                t.status.state = state;
                t.status.exit_code = exit_code;
                t.status.timestamp = self.now;
                changes.push(Change::update_task(t));
            }
        }
        self.write(changes);
        self.settle();
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = Timestamp(self.now.0 + ms);
        self.settle();
    }

    pub fn set_node(&mut self, id: &str, change: impl FnOnce(&mut Node)) {
        let mut node = self.state.nodes.get(id).expect("node").clone();
        change(&mut node);
        let version = node.meta.version;
        self.commit(vec![Command::update(Object::Node(node), version)]);
        self.settle();
    }

    /// Tasks of service `id` the orchestrator wants running.
    pub fn wanted(&self, service: &str) -> Vec<Task> {
        self.state
            .tasks
            .by_service(service)
            .filter(|t| super::wanted(t))
            .cloned()
            .collect()
    }

    /// Wanted tasks of `service` in `state`.
    pub fn count(&self, service: &str, state: TaskState) -> usize {
        self.wanted(service)
            .iter()
            .filter(|t| t.status.state == state)
            .count()
    }
}
