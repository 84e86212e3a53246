//! Service fields the engine cannot honour: each is refused by name when set (the
//! task is then `rejected` with the reason), so a stack never runs differently from
//! what it says.
//!
//! Left out on purpose, because they do not change what runs or belong to someone
//! else: `annotations`, `attach`, `build` (built before deploy), `depends_on`,
//! `profiles`, `scale`, `restart` and `deploy.restart_policy` (the manager's
//! orchestrator restarts by making new tasks), `deploy.mode/replicas/placement/
//! update_config/rollback_config/endpoint_mode/labels` (the manager's), `develop`,
//! `expose` and `links` (names resolve by DNS anyway), `external_links`,
//! `ports[].name/app_protocol`, `platform` (the node pulls for its own platform),
//! `networks` (the manager's addresses in the task are used), `dns` (the engine's
//! resolver forwards to the node's upstream servers), `mem_swappiness`,
//! `logging.options` (the engine rotates its JSON logs by size), `pull_refresh_after`
//! and `x-*` extensions.

use super::ExecutorError;
use api::service::ServiceSpec;

/// Refuse the first field of `spec` the engine cannot honour.
pub(super) fn check(spec: &ServiceSpec) -> Result<(), ExecutorError> {
    let checks: [(&str, bool, &str); 24] = [
        (
            "blkio_config",
            spec.blkio_config.is_some(),
            "the engine sets no block I/O limits",
        ),
        (
            "cgroup",
            spec.cgroup.as_deref().is_some_and(|c| c != "private"),
            "the engine gives every container its own cgroup namespace (private)",
        ),
        (
            "cgroup_parent",
            spec.cgroup_parent.is_some(),
            "the engine places containers under its own cgroup",
        ),
        (
            "cpu_count",
            spec.cpu_count.is_some(),
            "Windows only: use cpus",
        ),
        (
            "cpu_percent",
            spec.cpu_percent.is_some(),
            "Windows only: use cpus",
        ),
        (
            "cpu_rt_period",
            spec.cpu_rt_period.is_some(),
            "the engine sets no real-time scheduling",
        ),
        (
            "cpu_rt_runtime",
            spec.cpu_rt_runtime.is_some(),
            "the engine sets no real-time scheduling",
        ),
        (
            "cpuset",
            spec.cpuset.is_some(),
            "the engine does not pin CPUs",
        ),
        (
            "credential_spec",
            spec.credential_spec.is_some(),
            "Windows only",
        ),
        (
            "device_cgroup_rules",
            !spec.device_cgroup_rules.is_empty(),
            "the engine takes devices, not cgroup rules: use devices",
        ),
        (
            "gpus",
            spec.gpus.is_some(),
            "the engine cannot pass GPUs: use devices",
        ),
        (
            "isolation",
            spec.isolation.as_deref().is_some_and(|i| i != "default"),
            "Linux containers have only the default isolation",
        ),
        (
            "mac_address",
            spec.mac_address.is_some(),
            "overlay addresses carry MACs derived from them: leave mac_address out",
        ),
        ("models", spec.models.is_some(), "the engine runs no models"),
        (
            "oom_kill_disable",
            spec.oom_kill_disable == Some(true),
            "the engine leaves the OOM killer on",
        ),
        (
            "post_start",
            !spec.post_start.is_empty(),
            "the engine runs no lifecycle hooks",
        ),
        (
            "pre_stop",
            !spec.pre_stop.is_empty(),
            "the engine runs no lifecycle hooks",
        ),
        (
            "provider",
            spec.provider.is_some(),
            "provider services are not run by the engine",
        ),
        (
            "runtime",
            spec.runtime.is_some(),
            "the engine is the only runtime",
        ),
        (
            "storage_opt",
            !spec.storage_opt.is_empty(),
            "the engine's overlay snapshots take no options",
        ),
        (
            "use_api_socket",
            spec.use_api_socket == Some(true),
            "the engine's socket is not passed into containers",
        ),
        (
            "userns_mode",
            spec.userns_mode.as_deref().is_some_and(|m| m != "host"),
            "each node's engine decides the map (orch agent --userns-remap); a service can only opt out with host",
        ),
        (
            "volumes_from",
            !spec.volumes_from.is_empty(),
            "containers on a cluster share no volumes by container: name a volume",
        ),
        (
            "logging.driver",
            spec.logging
                .as_ref()
                .and_then(|l| l.driver.as_deref())
                .is_some_and(|d| d != "json-file"),
            "the engine writes json-file logs only",
        ),
    ];
    for (field, set, why) in checks {
        if set {
            return Err(ExecutorError::unsupported(field, why));
        }
    }
    Ok(())
}

/// `security_opt`: only `no-new-privileges` (`:true`, `=true`, `:false`) is honoured.
pub(super) fn no_new_privileges(spec: &ServiceSpec) -> Result<bool, ExecutorError> {
    let mut on = false;
    for (i, opt) in spec.security_opt.iter().enumerate() {
        match opt.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => on = true,
            "no-new-privileges:false" | "no-new-privileges=false" => on = false,
            other => {
                return Err(ExecutorError::unsupported(
                    format!("security_opt[{i}]"),
                    format!("{other:?} is not supported by the engine: only no-new-privileges is"),
                ));
            }
        }
    }
    Ok(on)
}
