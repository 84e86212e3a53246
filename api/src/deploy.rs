//! `deploy:` of a service: how the cluster places, sizes, restarts and updates its tasks.

use crate::units::{Bytes, Duration};
use crate::{Value, is_default};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Deployment settings of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DeploySpec {
    #[serde(skip_serializing_if = "is_default")]
    pub mode: Option<DeployMode>,
    #[serde(skip_serializing_if = "is_default")]
    pub replicas: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub endpoint_mode: Option<EndpointMode>,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub placement: Option<Placement>,
    #[serde(skip_serializing_if = "is_default")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "is_default")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(skip_serializing_if = "is_default")]
    pub update_config: Option<UpdateConfig>,
    #[serde(skip_serializing_if = "is_default")]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

/// How many tasks a service has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum DeployMode {
    /// `replicas` tasks, spread by the scheduler.
    #[default]
    Replicated,
    /// One task on every eligible node.
    Global,
    /// `replicas` tasks that run to completion.
    ReplicatedJob,
    /// One run-to-completion task per eligible node.
    GlobalJob,
}

/// How clients reach the service's tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    /// One virtual IP load-balanced over the tasks.
    #[default]
    Vip,
    /// DNS round-robin over the tasks' addresses.
    Dnsrr,
}

/// Where tasks may run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Placement {
    /// Expressions such as `node.role == manager`, `node.labels.zone != east`.
    #[serde(skip_serializing_if = "is_default")]
    pub constraints: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub preferences: Vec<PlacementPreference>,
    #[serde(skip_serializing_if = "is_default")]
    pub max_replicas_per_node: Option<u64>,
}

/// Spread tasks evenly over the values of a node label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PlacementPreference {
    /// E.g. `node.labels.zone`.
    pub spread: String,
}

/// Resource limits and reservations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Resources {
    #[serde(skip_serializing_if = "is_default")]
    pub limits: Option<ResourceLimits>,
    #[serde(skip_serializing_if = "is_default")]
    pub reservations: Option<ResourceReservations>,
}

/// Upper bounds of a task's resources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ResourceLimits {
    #[serde(skip_serializing_if = "is_default")]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "is_default")]
    pub memory: Option<Bytes>,
    #[serde(skip_serializing_if = "is_default")]
    pub pids: Option<i64>,
}

/// What the scheduler sets aside for a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ResourceReservations {
    #[serde(skip_serializing_if = "is_default")]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "is_default")]
    pub memory: Option<Bytes>,
    #[serde(skip_serializing_if = "is_default")]
    pub generic_resources: Vec<Value>,
    #[serde(skip_serializing_if = "is_default")]
    pub devices: Vec<Value>,
}

/// When a task that stopped is replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    /// Never.
    None,
    /// When it exits with a non-zero status.
    OnFailure,
    /// Always.
    #[default]
    Any,
}

/// Restart policy of a service's tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RestartPolicy {
    #[serde(skip_serializing_if = "is_default")]
    pub condition: Option<RestartCondition>,
    #[serde(skip_serializing_if = "is_default")]
    pub delay: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub max_attempts: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub window: Option<Duration>,
}

/// What to do when an update fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    #[default]
    Pause,
    Continue,
    Rollback,
}

/// Whether a replacement starts before or after the old task stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    #[default]
    StopFirst,
    StartFirst,
}

/// A rolling update (or rollback) of a service's tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UpdateConfig {
    #[serde(skip_serializing_if = "is_default")]
    pub parallelism: Option<u64>,
    #[serde(skip_serializing_if = "is_default")]
    pub delay: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub failure_action: Option<FailureAction>,
    #[serde(skip_serializing_if = "is_default")]
    pub monitor: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub max_failure_ratio: Option<f64>,
    #[serde(skip_serializing_if = "is_default")]
    pub order: Option<UpdateOrder>,
}
