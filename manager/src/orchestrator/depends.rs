//! Start order from compose's `depends_on`: a pending task of a service waits until
//! each service it depends on has started, is healthy, or completed successfully, as
//! the condition says. Its status says what it waits for; the scheduling pass places
//! it once nothing is left to wait for. (A task reports `running` only once its
//! health check passed, so "healthy" is "a task running" for a service with one.)

use super::wanted;
use crate::store::State;
use api::cluster::{Task, TaskState};
use api::service::DependsOnCondition;

/// What `task` waits for, if anything.
pub fn waiting_for(state: &State, task: &Task) -> Option<String> {
    for (name, dependency) in &task.spec.depends_on {
        let id = if task.stack.is_empty() {
            name.clone()
        } else {
            super::stacks::service_id(&task.stack, name)
        };
        if state.services.get(&id).is_none() {
            if dependency.required {
                return Some(format!("waiting for service {name}, which does not exist"));
            }
            continue;
        }
        let tasks: Vec<&Task> = state.tasks.by_service(&id).collect();
        let running = tasks
            .iter()
            .any(|t| wanted(t) && t.status.state == TaskState::Running);
        let met = match dependency.condition {
            DependsOnCondition::ServiceStarted => {
                running || tasks.iter().any(|t| t.status.state == TaskState::Complete)
            }
            DependsOnCondition::ServiceHealthy => running,
            DependsOnCondition::ServiceCompletedSuccessfully => {
                let done = tasks.iter().any(|t| {
                    t.status.state == TaskState::Complete && t.status.exit_code.unwrap_or(0) == 0
                });
                let still_running = tasks
                    .iter()
                    .any(|t| wanted(t) && t.status.state <= TaskState::Running);
                done && !still_running
            }
        };
        if !met {
            let what = match dependency.condition {
                DependsOnCondition::ServiceStarted => "to start",
                DependsOnCondition::ServiceHealthy => "to be healthy",
                DependsOnCondition::ServiceCompletedSuccessfully => "to complete successfully",
            };
            return Some(format!("waiting for service {name} {what}"));
        }
    }
    None
}
