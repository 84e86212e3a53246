//! Task statuses out of what the engine shows: pure, the time passed in.

use api::cluster::{TaskState, TaskStatus, Timestamp};
use api::container::{ContainerDetail, ContainerExit, ContainerStatus};

/// What a task's container is doing, as far as its task's status goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Made, never started.
    Created,
    /// Its process runs; its health check has not passed yet.
    Starting,
    /// Its process runs (and is healthy, when it has a health check).
    Running,
    /// Its health check failed: the last probe's output.
    Unhealthy(String),
    /// Its process ended.
    Exited(ContainerExit),
}

impl Observed {
    /// What `detail` shows.
    pub fn of(detail: &ContainerDetail) -> Observed {
        match &detail.summary.status {
            ContainerStatus::Created => Observed::Created,
            ContainerStatus::Exited {
                exit_code,
                oom_killed,
                ..
            } => Observed::Exited(ContainerExit {
                exit_code: *exit_code,
                oom_killed: *oom_killed,
            }),
            ContainerStatus::Running { .. } => match detail.health.as_deref() {
                Some("starting") => Observed::Starting,
                Some("unhealthy") => Observed::Unhealthy(last_probe(detail)),
                _ => Observed::Running,
            },
        }
    }
}

/// The output of `detail`'s last health probe, trimmed (or why there is none).
fn last_probe(detail: &ContainerDetail) -> String {
    detail
        .health_log
        .last()
        .map(|(_, code, out)| {
            let out = out.trim();
            if out.is_empty() {
                format!("probe exit {code}")
            } else {
                format!("probe exit {code}: {out}")
            }
        })
        .unwrap_or_else(|| "no probe output".into())
}

/// A status in `state` at `now`.
pub fn status(state: TaskState, now: Timestamp, container: Option<&str>) -> TaskStatus {
    TaskStatus {
        state,
        timestamp: now,
        container: container.map(str::to_owned),
        ..TaskStatus::default()
    }
}

/// A status in `state` with `message`.
pub fn with_message(
    state: TaskState,
    now: Timestamp,
    container: Option<&str>,
    message: impl Into<String>,
) -> TaskStatus {
    TaskStatus {
        message: message.into(),
        ..status(state, now, container)
    }
}

/// The end of a container's process: `complete` on 0, else `failed` with why.
pub fn exited(exit: &ContainerExit, now: Timestamp, container: Option<&str>) -> TaskStatus {
    let (state, message) = if exit.oom_killed {
        (TaskState::Failed, "OOM killed".to_owned())
    } else if exit.exit_code == 0 {
        (TaskState::Complete, "exit 0".to_owned())
    } else {
        (TaskState::Failed, format!("exit {}", exit.exit_code))
    };
    TaskStatus {
        exit_code: Some(exit.exit_code),
        ..with_message(state, now, container, message)
    }
}

/// The status of an observed container (an adopted one, or after a start).
pub fn observed(seen: &Observed, now: Timestamp, container: Option<&str>) -> TaskStatus {
    match seen {
        Observed::Created | Observed::Starting => status(TaskState::Starting, now, container),
        Observed::Running => status(TaskState::Running, now, container),
        Observed::Unhealthy(why) => with_message(
            TaskState::Failed,
            now,
            container,
            format!("unhealthy: {why}"),
        ),
        Observed::Exited(exit) => exited(exit, now, container),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32, oom: bool) -> ContainerExit {
        ContainerExit {
            exit_code: code,
            oom_killed: oom,
        }
    }

    #[test]
    fn exits_say_complete_failed_or_oom() {
        let t = Timestamp(7);
        let s = exited(&exit(0, false), t, Some("c"));
        assert_eq!(
            (s.state, s.exit_code, s.message.as_str()),
            (TaskState::Complete, Some(0), "exit 0")
        );
        assert_eq!(s.container.as_deref(), Some("c"));
        let s = exited(&exit(3, false), t, None);
        assert_eq!(
            (s.state, s.exit_code, s.message.as_str()),
            (TaskState::Failed, Some(3), "exit 3")
        );
        let s = exited(&exit(137, true), t, None);
        assert_eq!(
            (s.state, s.message.as_str()),
            (TaskState::Failed, "OOM killed")
        );
        assert_eq!(s.timestamp, t);
    }

    #[test]
    fn health_decides_starting_running_or_failed() {
        let t = Timestamp(1);
        assert_eq!(
            observed(&Observed::Starting, t, None).state,
            TaskState::Starting
        );
        assert_eq!(
            observed(&Observed::Running, t, None).state,
            TaskState::Running
        );
        let s = observed(&Observed::Unhealthy("probe exit 1: down".into()), t, None);
        assert_eq!(s.state, TaskState::Failed);
        assert_eq!(s.message, "unhealthy: probe exit 1: down");
    }
}
