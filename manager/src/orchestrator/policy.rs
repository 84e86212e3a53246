//! A service's restart policy and update settings with the defaults filled in, as
//! swarm applies them: `deploy.restart_policy`, else compose's `restart:`, else
//! restart on any exit after 5 s; jobs restart on failure only.

use api::ServiceSpec;
use api::cluster::{TaskState, Timestamp};
use api::deploy::{DeployMode, FailureAction, RestartCondition, UpdateOrder};

/// When and how often a stopped task is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restart {
    pub condition: RestartCondition,
    /// Between the task's stop and its replacement.
    pub delay_ms: u64,
    /// Replacements allowed (within `window_ms`, when set); `None`: unbounded.
    pub max_attempts: Option<u64>,
    /// The window `max_attempts` counts in (0: the service's whole life).
    pub window_ms: u64,
}

/// The default delay before a stopped task is replaced (swarm's).
pub const DEFAULT_RESTART_DELAY_MS: u64 = 5_000;

impl Restart {
    /// The policy of `spec`.
    pub fn of(spec: &ServiceSpec) -> Restart {
        let deploy = spec.deploy.as_ref();
        let job = matches!(
            mode(spec),
            DeployMode::ReplicatedJob | DeployMode::GlobalJob
        );
        let default_condition = if job {
            RestartCondition::OnFailure
        } else {
            RestartCondition::Any
        };
        if let Some(policy) = deploy.and_then(|d| d.restart_policy.as_ref()) {
            return Restart {
                condition: policy.condition.unwrap_or(default_condition),
                delay_ms: policy
                    .delay
                    .map(|d| d.as_nanos() / 1_000_000)
                    .unwrap_or(DEFAULT_RESTART_DELAY_MS),
                max_attempts: policy.max_attempts.filter(|n| *n > 0),
                window_ms: policy.window.map(|d| d.as_nanos() / 1_000_000).unwrap_or(0),
            };
        }
        let mut restart = Restart {
            condition: default_condition,
            delay_ms: DEFAULT_RESTART_DELAY_MS,
            max_attempts: None,
            window_ms: 0,
        };
        // compose's `restart:`, which `docker stack deploy` ignores.
        match spec.restart.as_deref().map(str::trim) {
            Some("no") => restart.condition = RestartCondition::None,
            Some("always" | "unless-stopped") => restart.condition = RestartCondition::Any,
            Some(text) if text.starts_with("on-failure") => {
                restart.condition = RestartCondition::OnFailure;
                restart.max_attempts = text
                    .strip_prefix("on-failure:")
                    .and_then(|n| n.trim().parse().ok())
                    .filter(|n| *n > 0);
            }
            _ => {}
        }
        restart
    }

    /// Whether a task that ended in `state` is to be replaced at all.
    pub fn wants(&self, state: TaskState) -> bool {
        match self.condition {
            RestartCondition::None => false,
            RestartCondition::OnFailure => state != TaskState::Complete,
            RestartCondition::Any => true,
        }
    }

    /// Whether `restarts` (their stop times) leave room for another at `now`.
    pub fn attempts_left(&self, restarts: &[Timestamp], now: Timestamp) -> bool {
        let Some(max) = self.max_attempts else {
            return true;
        };
        let counted = restarts
            .iter()
            .filter(|t| self.window_ms == 0 || t.0 + self.window_ms > now.0)
            .count() as u64;
        counted < max
    }
}

/// How a changed spec rolls out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// Slots replaced at once (0: all).
    pub parallelism: u64,
    /// After a batch is running, before the next starts.
    pub delay_ms: u64,
    pub order: UpdateOrder,
    pub failure_action: FailureAction,
    /// How long after a new task starts a failure still counts against the update.
    pub monitor_ms: u64,
    pub max_failure_ratio: f64,
}

impl Update {
    /// The update settings of `spec` (swarm's defaults: one at a time, no delay,
    /// stop-first, pause on failure, monitor 5 s).
    pub fn of(spec: &ServiceSpec) -> Update {
        let config = spec
            .deploy
            .as_ref()
            .and_then(|d| d.update_config.clone())
            .unwrap_or_default();
        Update::from_config(config)
    }

    /// The rollback settings of `spec` (`rollback_config`, same defaults).
    pub fn rollback_of(spec: &ServiceSpec) -> Update {
        let config = spec
            .deploy
            .as_ref()
            .and_then(|d| d.rollback_config.clone())
            .unwrap_or_default();
        Update::from_config(config)
    }

    fn from_config(config: api::deploy::UpdateConfig) -> Update {
        Update {
            parallelism: config.parallelism.unwrap_or(1),
            delay_ms: config.delay.map(|d| d.as_nanos() / 1_000_000).unwrap_or(0),
            order: config.order.unwrap_or_default(),
            failure_action: config.failure_action.unwrap_or_default(),
            monitor_ms: config
                .monitor
                .map(|d| d.as_nanos() / 1_000_000)
                .unwrap_or(5_000),
            max_failure_ratio: config.max_failure_ratio.unwrap_or(0.0),
        }
    }
}

/// The service's mode (replicated unless set).
pub fn mode(spec: &ServiceSpec) -> DeployMode {
    spec.deploy
        .as_ref()
        .and_then(|d| d.mode)
        .unwrap_or(DeployMode::Replicated)
}

/// The replica count of a replicated service (`deploy.replicas`, else `scale`, else 1).
pub fn replicas(spec: &ServiceSpec) -> u64 {
    spec.deploy
        .as_ref()
        .and_then(|d| d.replicas)
        .or(spec.scale)
        .unwrap_or(1)
}

/// Whether a task made from `old` runs what `new` says: every field but the ones that
/// only steer the orchestrator (replica count, update and rollback settings, service
/// labels — `deploy.labels`, which swarm does not put on containers either).
pub fn same_task_spec(old: &ServiceSpec, new: &ServiceSpec) -> bool {
    fn steering_cleared(spec: &ServiceSpec) -> ServiceSpec {
        let mut spec = spec.clone();
        spec.scale = None;
        if let Some(deploy) = spec.deploy.as_mut() {
            deploy.replicas = None;
            deploy.update_config = None;
            deploy.rollback_config = None;
            deploy.labels.clear();
        }
        spec
    }
    old == new || steering_cleared(old) == steering_cleared(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::deploy::{DeploySpec, RestartPolicy};
    use api::units::Duration;

    #[test]
    fn compose_restart_is_the_policy_when_deploy_has_none() {
        let spec = ServiceSpec {
            restart: Some("on-failure:3".into()),
            ..ServiceSpec::default()
        };
        let r = Restart::of(&spec);
        assert_eq!(r.condition, RestartCondition::OnFailure);
        assert_eq!(r.max_attempts, Some(3));
        let spec = ServiceSpec {
            restart: Some("no".into()),
            deploy: Some(DeploySpec {
                restart_policy: Some(RestartPolicy {
                    delay: Some(Duration(2_000_000_000)),
                    ..RestartPolicy::default()
                }),
                ..DeploySpec::default()
            }),
            ..ServiceSpec::default()
        };
        let r = Restart::of(&spec);
        assert_eq!(r.condition, RestartCondition::Any, "deploy wins");
        assert_eq!(r.delay_ms, 2_000);
    }

    #[test]
    fn attempts_count_within_the_window() {
        let r = Restart {
            condition: RestartCondition::Any,
            delay_ms: 0,
            max_attempts: Some(2),
            window_ms: 10_000,
        };
        let now = Timestamp(100_000);
        assert!(r.attempts_left(&[Timestamp(1_000), Timestamp(2_000)], now));
        assert!(!r.attempts_left(&[Timestamp(95_000), Timestamp(99_000)], now));
    }

    #[test]
    fn replica_count_does_not_make_tasks_outdated() {
        let mut a = ServiceSpec {
            image: Some("busybox".into()),
            deploy: Some(DeploySpec {
                replicas: Some(2),
                ..DeploySpec::default()
            }),
            ..ServiceSpec::default()
        };
        let b = a.clone();
        a.deploy.as_mut().unwrap().replicas = Some(5);
        assert!(same_task_spec(&a, &b));
        a.image = Some("busybox:2".into());
        assert!(!same_task_spec(&a, &b));
    }
}
