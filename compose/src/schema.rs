//! The keys each object of the Compose Specification allows. Unknown keys are errors
//! (with a suggestion); `x-*` keys are allowed where the spec allows extensions.

/// An object kind of the compose model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obj {
    Top,
    Service,
    Build,
    Deploy,
    Placement,
    Preference,
    Resources,
    Limits,
    Reservations,
    RestartPolicy,
    UpdateConfig,
    Healthcheck,
    Logging,
    Port,
    Mount,
    BindOpts,
    VolumeOpts,
    TmpfsOpts,
    ImageOpts,
    ServiceNetwork,
    DependsOn,
    FileRef,
    Ulimit,
    Device,
    Hook,
    Network,
    Ipam,
    IpamPool,
    Volume,
    Secret,
    Config,
    External,
    Include,
    Extends,
    EnvFile,
}

impl Obj {
    /// The keys of this object.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Obj::Top => &[
                "version", "name", "include", "services", "models", "networks", "volumes",
                "secrets", "configs",
            ],
            Obj::Service => &[
                "develop",
                "deploy",
                "annotations",
                "attach",
                "build",
                "blkio_config",
                "cap_add",
                "cap_drop",
                "cgroup",
                "cgroup_parent",
                "command",
                "configs",
                "container_name",
                "cpu_count",
                "cpu_percent",
                "cpu_shares",
                "cpu_quota",
                "cpu_period",
                "cpu_rt_period",
                "cpu_rt_runtime",
                "cpus",
                "cpuset",
                "credential_spec",
                "depends_on",
                "device_cgroup_rules",
                "devices",
                "dns",
                "dns_opt",
                "dns_search",
                "domainname",
                "entrypoint",
                "env_file",
                "label_file",
                "environment",
                "expose",
                "extends",
                "provider",
                "external_links",
                "extra_hosts",
                "gpus",
                "group_add",
                "healthcheck",
                "hostname",
                "image",
                "init",
                "ipc",
                "isolation",
                "labels",
                "links",
                "logging",
                "mac_address",
                "mem_limit",
                "mem_reservation",
                "mem_swappiness",
                "memswap_limit",
                "network_mode",
                "models",
                "networks",
                "oom_kill_disable",
                "oom_score_adj",
                "pid",
                "pids_limit",
                "platform",
                "ports",
                "post_start",
                "pre_stop",
                "privileged",
                "profiles",
                "pull_policy",
                "pull_refresh_after",
                "read_only",
                "restart",
                "runtime",
                "scale",
                "security_opt",
                "shm_size",
                "secrets",
                "sysctls",
                "stdin_open",
                "stop_grace_period",
                "stop_signal",
                "storage_opt",
                "tmpfs",
                "tty",
                "ulimits",
                "use_api_socket",
                "user",
                "uts",
                "userns_mode",
                "volumes",
                "volumes_from",
                "working_dir",
            ],
            Obj::Build => &[
                "context",
                "dockerfile",
                "dockerfile_inline",
                "entitlements",
                "args",
                "ssh",
                "labels",
                "cache_from",
                "cache_to",
                "no_cache",
                "additional_contexts",
                "network",
                "provenance",
                "sbom",
                "pull",
                "target",
                "shm_size",
                "extra_hosts",
                "isolation",
                "privileged",
                "secrets",
                "tags",
                "ulimits",
                "platforms",
            ],
            Obj::Deploy => &[
                "mode",
                "endpoint_mode",
                "replicas",
                "labels",
                "rollback_config",
                "update_config",
                "resources",
                "restart_policy",
                "placement",
            ],
            Obj::Placement => &["constraints", "preferences", "max_replicas_per_node"],
            Obj::Preference => &["spread"],
            Obj::Resources => &["limits", "reservations"],
            Obj::Limits => &["cpus", "memory", "pids"],
            Obj::Reservations => &["cpus", "memory", "generic_resources", "devices"],
            Obj::RestartPolicy => &["condition", "delay", "max_attempts", "window"],
            Obj::UpdateConfig => &[
                "parallelism",
                "delay",
                "failure_action",
                "monitor",
                "max_failure_ratio",
                "order",
            ],
            Obj::Healthcheck => &[
                "disable",
                "interval",
                "retries",
                "test",
                "timeout",
                "start_period",
                "start_interval",
            ],
            Obj::Logging => &["driver", "options"],
            Obj::Port => &[
                "name",
                "mode",
                "host_ip",
                "target",
                "published",
                "protocol",
                "app_protocol",
            ],
            Obj::Mount => &[
                "type",
                "source",
                "target",
                "read_only",
                "consistency",
                "bind",
                "volume",
                "tmpfs",
                "image",
            ],
            Obj::BindOpts => &["propagation", "create_host_path", "recursive", "selinux"],
            Obj::VolumeOpts => &["labels", "nocopy", "subpath"],
            Obj::TmpfsOpts => &["size", "mode"],
            Obj::ImageOpts => &["subpath"],
            Obj::ServiceNetwork => &[
                "aliases",
                "interface_name",
                "ipv4_address",
                "ipv6_address",
                "link_local_ips",
                "mac_address",
                "driver_opts",
                "priority",
                "gw_priority",
            ],
            Obj::DependsOn => &["condition", "restart", "required"],
            Obj::FileRef => &["source", "target", "uid", "gid", "mode"],
            Obj::Ulimit => &["soft", "hard"],
            Obj::Device => &["source", "target", "permissions"],
            Obj::Hook => &[
                "command",
                "user",
                "privileged",
                "working_dir",
                "environment",
            ],
            Obj::Network => &[
                "name",
                "driver",
                "driver_opts",
                "ipam",
                "external",
                "internal",
                "enable_ipv4",
                "enable_ipv6",
                "attachable",
                "labels",
            ],
            Obj::Ipam => &["driver", "config", "options"],
            Obj::IpamPool => &["subnet", "ip_range", "gateway", "aux_addresses"],
            Obj::Volume => &["name", "driver", "driver_opts", "external", "labels"],
            Obj::Secret => &[
                "name",
                "environment",
                "file",
                "external",
                "labels",
                "driver",
                "driver_opts",
                "template_driver",
            ],
            Obj::Config => &[
                "name",
                "content",
                "environment",
                "file",
                "external",
                "labels",
                "template_driver",
            ],
            Obj::External => &["name"],
            Obj::Include => &["path", "env_file", "project_directory"],
            Obj::Extends => &["service", "file"],
            Obj::EnvFile => &["path", "format", "required"],
        }
    }

    /// Whether `x-*` keys are allowed in this object.
    pub fn allows_extensions(self) -> bool {
        !matches!(
            self,
            Obj::Preference | Obj::Ulimit | Obj::External | Obj::Include | Obj::Extends
        )
    }

    /// Whether the compose model keeps `x-*` keys of this object (elsewhere they are
    /// accepted, and dropped with a warning).
    pub fn keeps_extensions(self) -> bool {
        matches!(
            self,
            Obj::Top
                | Obj::Service
                | Obj::Build
                | Obj::Deploy
                | Obj::Mount
                | Obj::Network
                | Obj::Volume
                | Obj::Secret
                | Obj::Config
        )
    }

    /// How the object is named in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Obj::Top => "a compose file",
            Obj::Service => "a service",
            Obj::Build => "build",
            Obj::Deploy => "deploy",
            Obj::Placement => "deploy.placement",
            Obj::Preference => "a placement preference",
            Obj::Resources => "deploy.resources",
            Obj::Limits => "resource limits",
            Obj::Reservations => "resource reservations",
            Obj::RestartPolicy => "deploy.restart_policy",
            Obj::UpdateConfig => "an update or rollback config",
            Obj::Healthcheck => "healthcheck",
            Obj::Logging => "logging",
            Obj::Port => "a port",
            Obj::Mount => "a volume mount",
            Obj::BindOpts => "bind options",
            Obj::VolumeOpts => "volume options",
            Obj::TmpfsOpts => "tmpfs options",
            Obj::ImageOpts => "image options",
            Obj::ServiceNetwork => "a service's network",
            Obj::DependsOn => "a depends_on entry",
            Obj::FileRef => "a secret or config reference",
            Obj::Ulimit => "a ulimit",
            Obj::Device => "a device",
            Obj::Hook => "a lifecycle hook",
            Obj::Network => "a network",
            Obj::Ipam => "ipam",
            Obj::IpamPool => "an ipam pool",
            Obj::Volume => "a volume",
            Obj::Secret => "a secret",
            Obj::Config => "a config",
            Obj::External => "external",
            Obj::Include => "an include entry",
            Obj::Extends => "extends",
            Obj::EnvFile => "an env_file entry",
        }
    }
}

/// How the objects under a key are laid out.
enum Child {
    One(Obj),
    EachValue(Obj),
    EachItem(Obj),
}

fn child(obj: Obj, key: &str) -> Option<Child> {
    use Child::*;
    Some(match (obj, key) {
        (Obj::Top, "services") => EachValue(Obj::Service),
        (Obj::Top, "networks") => EachValue(Obj::Network),
        (Obj::Top, "volumes") => EachValue(Obj::Volume),
        (Obj::Top, "secrets") => EachValue(Obj::Secret),
        (Obj::Top, "configs") => EachValue(Obj::Config),
        (Obj::Top, "include") => EachItem(Obj::Include),
        (Obj::Service, "build") => One(Obj::Build),
        (Obj::Service, "deploy") => One(Obj::Deploy),
        (Obj::Service, "healthcheck") => One(Obj::Healthcheck),
        (Obj::Service, "logging") => One(Obj::Logging),
        (Obj::Service, "extends") => One(Obj::Extends),
        (Obj::Service, "ports") => EachItem(Obj::Port),
        (Obj::Service, "volumes") => EachItem(Obj::Mount),
        (Obj::Service, "devices") => EachItem(Obj::Device),
        (Obj::Service, "env_file") => EachItem(Obj::EnvFile),
        (Obj::Service, "secrets" | "configs") => EachItem(Obj::FileRef),
        (Obj::Service, "post_start" | "pre_stop") => EachItem(Obj::Hook),
        (Obj::Service, "depends_on") => EachValue(Obj::DependsOn),
        (Obj::Service, "networks") => EachValue(Obj::ServiceNetwork),
        (Obj::Service, "ulimits") | (Obj::Build, "ulimits") => EachValue(Obj::Ulimit),
        (Obj::Deploy, "placement") => One(Obj::Placement),
        (Obj::Deploy, "resources") => One(Obj::Resources),
        (Obj::Deploy, "restart_policy") => One(Obj::RestartPolicy),
        (Obj::Deploy, "update_config" | "rollback_config") => One(Obj::UpdateConfig),
        (Obj::Placement, "preferences") => EachItem(Obj::Preference),
        (Obj::Resources, "limits") => One(Obj::Limits),
        (Obj::Resources, "reservations") => One(Obj::Reservations),
        (Obj::Mount, "bind") => One(Obj::BindOpts),
        (Obj::Mount, "volume") => One(Obj::VolumeOpts),
        (Obj::Mount, "tmpfs") => One(Obj::TmpfsOpts),
        (Obj::Mount, "image") => One(Obj::ImageOpts),
        (Obj::Network | Obj::Volume | Obj::Secret | Obj::Config, "external") => One(Obj::External),
        (Obj::Network, "ipam") => One(Obj::Ipam),
        (Obj::Ipam, "config") => EachItem(Obj::IpamPool),
        _ => return None,
    })
}

/// Structural check of an uninterpolated document: every key of every object is one
/// the spec defines (values are not looked at). This is what a JSON-schema check of
/// the raw file would catch about keys.
pub fn unknown_keys(
    node: &crate::yaml::Node,
    obj: Obj,
    path: &str,
    out: &mut Vec<crate::diag::Diagnostic>,
) {
    use crate::diag::{Diagnostic, did_you_mean};
    use crate::yaml::Kind;
    let Some(entries) = node.as_map() else { return };
    for e in entries {
        let p = if path.is_empty() {
            e.key.clone()
        } else {
            format!("{path}.{}", e.key)
        };
        if !(obj.keys().contains(&e.key.as_str())
            || (obj.allows_extensions() && e.key.starts_with("x-")))
        {
            let mut d = Diagnostic::error(
                &e.key_pos,
                &p,
                format!("unknown key {:?} in {}", e.key, obj.noun()),
            );
            if let Some(s) = did_you_mean(&e.key, obj.keys().iter().copied()) {
                d = d.with_hint(format!("did you mean {s:?}?"));
            }
            out.push(d);
            continue;
        }
        match (child(obj, &e.key), &e.value.kind) {
            (Some(Child::One(o)), _) => unknown_keys(&e.value, o, &p, out),
            (Some(Child::EachValue(o)), Kind::Map(items)) => {
                for i in items {
                    unknown_keys(&i.value, o, &format!("{p}.{}", i.key), out);
                }
            }
            (Some(Child::EachItem(o)), Kind::Seq(items)) => {
                for (n, i) in items.iter().enumerate() {
                    unknown_keys(i, o, &format!("{p}[{n}]"), out);
                }
            }
            _ => {}
        }
    }
}
