//! The container a task runs as: [`container_create`] maps a task's service spec onto
//! the engine's [`ContainerCreate`], pure, with a clear [`ExecutorError`] naming the
//! field for whatever the engine cannot honour.
//!
//! - [`limits`]: cpu, memory and pids limits, ulimits.
//! - [`mounts`]: volumes, bind mounts, tmpfs and devices.
//! - [`refused`]: fields the engine cannot honour, refused by name, and those left
//!   out on purpose (with why).
//! - [`tuning`]: settings beyond the engine's defaults (`shm_size`, ...).
//!
//! What Swarm does, kept here: the container's restart policy is `no` (the manager's
//! orchestrator restarts a task by making a new one); the name is
//! `<stack>_<service>.<slot>.<task id>` (the node id for a global service's slot 0);
//! the `orch.*` labels say which task, service, stack and slot it is, so an agent that
//! starts again finds its containers.

mod limits;
mod mounts;
mod refused;
#[cfg(test)]
mod tests;
mod tuning;

use super::ExecutorError;
use api::cluster::Task;
use api::container::ContainerCreate;
use api::network::{INGRESS_NETWORK, NetworkAttach};
use api::service::{Protocol, ServiceSpec};

/// The label holding the id of the task a container runs.
pub const TASK_LABEL: &str = "orch.task";
/// The label holding the id of the task's service.
pub const SERVICE_LABEL: &str = "orch.service";
/// The label holding the id of the task's stack (empty: none).
pub const STACK_LABEL: &str = "orch.stack";
/// The label holding the task's slot.
pub const SLOT_LABEL: &str = "orch.slot";
/// The engine network every task on cluster networks also joins, for its way out
/// (outbound NAT, a default route) and its published ports: Swarm's `docker_gwbridge`.
pub const GATEWAY_NETWORK: &str = "bridge";
/// Seconds a task gets between its stop signal and SIGKILL when the spec sets none
/// (Swarm's default).
pub const DEFAULT_GRACE_SECS: u64 = 10;

/// The container `task` runs as.
///
/// Each of the task's networks is joined with its fixed address and the task's
/// aliases there (plus `container_name`, which on a cluster names no container:
/// it becomes an alias so other services still reach the task by it). The service's
/// own name is not an alias: the network's service list (`PUT .../services`) makes it
/// answer the virtual address (`vip`) or every task (`dnsrr`), which an alias on each
/// container would defeat. A task on any network also joins [`GATEWAY_NETWORK`], last.
pub fn container_create(task: &Task) -> Result<ContainerCreate, ExecutorError> {
    let spec = &task.spec;
    refused::check(spec)?;
    super::image::PullPolicy::of(spec)?;
    let image = spec
        .image
        .clone()
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ExecutorError::NoImage {
            task: task.meta.id.clone(),
        })?;
    let cmd = match (&spec.command, &spec.entrypoint) {
        (Some(c), None) if c.is_empty() => {
            return Err(ExecutorError::unsupported(
                "command",
                "an empty command clears the image's CMD only with an entrypoint: set entrypoint too, or leave command out",
            ));
        }
        (c, _) => c.clone().unwrap_or_default(),
    };
    let mut create = ContainerCreate {
        image,
        name: Some(container_name(task)),
        cmd,
        entrypoint: spec.entrypoint.clone(),
        env: environment(spec),
        user: spec.user.clone(),
        workdir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        read_only: spec.read_only.unwrap_or(false),
        no_new_privileges: refused::no_new_privileges(spec)?,
        restart: Some("no".into()),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: Some(grace_secs(spec)),
        healthcheck: spec.healthcheck.clone(),
        cap_add: spec.cap_add.clone(),
        cap_drop: spec.cap_drop.clone(),
        privileged: spec.privileged.unwrap_or(false),
        tty: spec.tty.unwrap_or(false),
        init: spec.init.unwrap_or(false),
        extra_hosts: spec
            .extra_hosts
            .iter()
            .flat_map(|(name, addresses)| addresses.iter().map(move |a| format!("{name}:{a}")))
            .collect(),
        open_stdin: spec.stdin_open.unwrap_or(false),
        sysctls: spec.sysctls.clone(),
        userns_mode: spec.userns_mode.clone(),
        publish: publish(task)?,
        ..ContainerCreate::default()
    };
    limits::apply(spec, &mut create)?;
    mounts::apply(spec, &mut create)?;
    tuning::apply(spec, &mut create)?;
    create.labels = spec.labels.clone();
    create.labels.extend(labels(task));
    create.networks = networks(task);
    create.network_mode = network_mode(task)?;
    Ok(create)
}

/// `<stack>_<service>.<slot>.<task id>`; a global task's slot (0) is its node's id.
pub fn container_name(task: &Task) -> String {
    let service = if task.name.is_empty() {
        &task.service
    } else {
        &task.name
    };
    let slot = match (task.slot, &task.node) {
        (0, Some(node)) => node.clone(),
        (0, None) => "0".to_owned(),
        (n, _) => n.to_string(),
    };
    let stack = if task.stack.is_empty() {
        String::new()
    } else {
        format!("{}_", task.stack)
    };
    format!("{stack}{service}.{slot}.{}", task.meta.id)
}

/// The `orch.*` labels of `task`'s container.
pub fn labels(task: &Task) -> [(String, String); 4] {
    [
        (TASK_LABEL.to_owned(), task.meta.id.clone()),
        (SERVICE_LABEL.to_owned(), task.service.clone()),
        (STACK_LABEL.to_owned(), task.stack.clone()),
        (SLOT_LABEL.to_owned(), task.slot.to_string()),
    ]
}

/// Seconds between the stop signal and SIGKILL: `stop_grace_period`, rounded up to
/// whole seconds (what the engine's stop takes).
pub fn grace_secs(spec: &ServiceSpec) -> u64 {
    spec.stop_grace_period
        .map_or(DEFAULT_GRACE_SECS, |d| d.as_nanos().div_ceil(1_000_000_000))
}

/// `KEY=VALUE` entries; a variable set to nothing anywhere (`None`) is left unset,
/// as compose does.
fn environment(spec: &ServiceSpec) -> Vec<String> {
    spec.environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect()
}

/// The engine's `-p` form of each host port: those the node running the task
/// publishes (the scheduler's port filter keeps two of them off one node). A task on
/// the routing mesh leaves its mesh ports ([`api::service::PortSpec::mesh_port`]) to the mesh, which
/// publishes them on every node.
fn publish(task: &Task) -> Result<Vec<String>, ExecutorError> {
    let meshed = task.networks.iter().any(|n| n.network == INGRESS_NETWORK);
    task.spec
        .ports
        .iter()
        .enumerate()
        .filter(|(_, p)| !(meshed && p.mesh_port().is_some()))
        .map(|(i, p)| {
            let proto = match p.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => {
                    return Err(ExecutorError::unsupported(
                        format!("ports[{i}].protocol"),
                        "sctp is not supported by the engine: use tcp or udp",
                    ));
                }
            };
            let mut out = String::new();
            if let Some(ip) = &p.host_ip {
                out.push_str(ip);
                out.push(':');
                if p.published.is_none() {
                    out.push(':');
                }
            }
            if let Some(host) = &p.published {
                out.push_str(host);
                out.push(':');
            }
            out.push_str(&format!("{}/{proto}", p.target));
            Ok(out)
        })
        .collect()
}

/// Each task network with its fixed address (prefix dropped) and aliases, then the
/// gateway network.
fn networks(task: &Task) -> Vec<NetworkAttach> {
    if task.networks.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<NetworkAttach> = task
        .networks
        .iter()
        .map(|n| {
            let mut aliases = n.aliases.clone();
            if let Some(name) = &task.spec.container_name
                && !aliases.contains(name)
            {
                aliases.push(name.clone());
            }
            NetworkAttach {
                network: n.network.clone(),
                aliases,
                ipv4: Some(
                    n.address
                        .split_once('/')
                        .map_or(n.address.as_str(), |(ip, _)| ip)
                        .to_owned(),
                ),
                mac: None,
            }
        })
        .collect();
    out.push(NetworkAttach {
        network: GATEWAY_NETWORK.to_owned(),
        ..NetworkAttach::default()
    });
    out
}

/// `network_mode`: `host`, `none` and `bridge` where the task has no cluster network;
/// sharing another container's or service's namespace means nothing across nodes.
fn network_mode(task: &Task) -> Result<Option<String>, ExecutorError> {
    let Some(mode) = &task.spec.network_mode else {
        return Ok(None);
    };
    match mode.as_str() {
        "host" | "none" | "bridge" if task.networks.is_empty() => Ok(Some(mode.clone())),
        "host" | "none" | "bridge" => Err(ExecutorError::unsupported(
            "network_mode",
            format!("network_mode {mode} cannot be combined with networks: use one or the other"),
        )),
        other => Err(ExecutorError::unsupported(
            "network_mode",
            format!("{other} is not supported on a cluster: use host, none, bridge or networks"),
        )),
    }
}
