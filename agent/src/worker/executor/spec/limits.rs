//! Resource limits of a task's container: `deploy.resources` first (what Swarm
//! reads), then the service-level keys compose also has (`mem_limit`, `cpus`,
//! `pids_limit`, `mem_reservation`, `cpu_quota`/`cpu_period`), and `ulimits`.

use super::ExecutorError;
use api::container::ContainerCreate;
use api::deploy::{ResourceLimits, ResourceReservations};
use api::service::ServiceSpec;

/// The CFS period the engine uses when `cpu_period` is not given (100 ms).
const DEFAULT_CPU_PERIOD_US: u64 = 100_000;

/// Set the limits of `spec` on `create`.
pub(super) fn apply(spec: &ServiceSpec, create: &mut ContainerCreate) -> Result<(), ExecutorError> {
    let resources = spec.deploy.as_ref().and_then(|d| d.resources.as_ref());
    let limits = resources.and_then(|r| r.limits.clone()).unwrap_or_default();
    let reservations = resources
        .and_then(|r| r.reservations.clone())
        .unwrap_or_default();
    create.memory = limits.memory.or(spec.mem_limit).map(|b| b.0);
    create.memory_reservation = reservations.memory.or(spec.mem_reservation).map(|b| b.0);
    create.memory_swap = spec.memswap_limit;
    create.cpus = cpus(spec, &limits)?;
    create.cpu_shares = spec.cpu_shares;
    create.pids_limit = limits.pids.or(spec.pids_limit);
    refuse_devices(&reservations)?;
    create.ulimits = spec
        .ulimits
        .iter()
        .map(|(name, u)| format!("{name}={}:{}", u.soft, u.hard))
        .collect();
    Ok(())
}

/// CPUs from `deploy.resources.limits.cpus`, `cpus`, or `cpu_quota` over `cpu_period`.
fn cpus(spec: &ServiceSpec, limits: &ResourceLimits) -> Result<Option<f64>, ExecutorError> {
    let (field, value) = if let Some(c) = limits.cpus {
        ("deploy.resources.limits.cpus", c)
    } else if let Some(c) = spec.cpus {
        ("cpus", c)
    } else if let Some(quota) = spec.cpu_quota {
        let period = spec.cpu_period.unwrap_or(DEFAULT_CPU_PERIOD_US);
        if quota <= 0 || period == 0 {
            return Err(ExecutorError::unsupported(
                "cpu_quota",
                format!(
                    "cpu_quota {quota} over cpu_period {period} is no CPU time: give both as positive microseconds"
                ),
            ));
        }
        ("cpu_quota", quota as f64 / period as f64)
    } else if spec.cpu_period.is_some() {
        return Err(ExecutorError::unsupported(
            "cpu_period",
            "cpu_period alone sets no limit: give cpu_quota too, or use cpus",
        ));
    } else {
        return Ok(None);
    };
    if !(value.is_finite() && value > 0.0) {
        return Err(ExecutorError::unsupported(
            field,
            format!("{value} is not a positive number of CPUs"),
        ));
    }
    Ok(Some(value))
}

/// Device reservations (GPUs) and generic resources: the engine hands out none.
fn refuse_devices(r: &ResourceReservations) -> Result<(), ExecutorError> {
    if !r.devices.is_empty() {
        return Err(ExecutorError::unsupported(
            "deploy.resources.reservations.devices",
            "the engine cannot pass devices such as GPUs by reservation: use devices",
        ));
    }
    if !r.generic_resources.is_empty() {
        return Err(ExecutorError::unsupported(
            "deploy.resources.reservations.generic_resources",
            "the engine has no generic resources to hand out",
        ));
    }
    Ok(())
}
