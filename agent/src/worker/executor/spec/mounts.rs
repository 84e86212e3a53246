//! A task's mounts: `volumes` (bind: a host path; volume: the node-level volume's
//! name, as the manager names it; tmpfs), `tmpfs` and `devices`, in the engine's
//! `-v`, `--tmpfs` and `--device` forms.
//!
//! A bind's source must exist on the node (as in Swarm; the engine refuses a missing
//! one and the task is rejected with that reason); `create_host_path` is therefore not
//! honoured. `consistency` (macOS only) is ignored.

use super::ExecutorError;
use api::container::ContainerCreate;
use api::service::{MountType, ServiceSpec, ServiceVolume};

/// Set the mounts and devices of `spec` on `create`.
pub(super) fn apply(spec: &ServiceSpec, create: &mut ContainerCreate) -> Result<(), ExecutorError> {
    for (i, v) in spec.volumes.iter().enumerate() {
        let field = format!("volumes[{i}]");
        match v.kind {
            MountType::Bind | MountType::Volume => create.binds.push(bind(&field, v)?),
            MountType::Tmpfs => create.tmpfs.push(tmpfs(&field, v)?),
            other => {
                return Err(ExecutorError::unsupported(
                    format!("{field}.type"),
                    format!(
                        "{} mounts are not supported by the engine: use bind, volume or tmpfs",
                        format!("{other:?}").to_lowercase()
                    ),
                ));
            }
        }
    }
    for (i, t) in spec.tmpfs.iter().enumerate() {
        if !t.starts_with('/') {
            return Err(ExecutorError::unsupported(
                format!("tmpfs[{i}]"),
                format!("{t:?} is not an absolute path"),
            ));
        }
        create.tmpfs.push(t.clone());
    }
    for (i, d) in spec.devices.iter().enumerate() {
        let field = format!("devices[{i}]");
        if d.source.is_empty() {
            return Err(ExecutorError::unsupported(
                field,
                "the device has no source path",
            ));
        }
        if [&d.source, &d.target, &d.permissions]
            .iter()
            .any(|p| p.contains(':'))
        {
            return Err(ExecutorError::unsupported(
                field,
                "a device path cannot hold ':'",
            ));
        }
        let target = if d.target.is_empty() {
            &d.source
        } else {
            &d.target
        };
        let perms = if d.permissions.is_empty() {
            "rwm"
        } else {
            &d.permissions
        };
        create
            .devices
            .push(format!("{}:{target}:{perms}", d.source));
    }
    Ok(())
}

/// `SOURCE:TARGET[:ro]` of a bind or named-volume mount; `TARGET[:ro]` of an
/// anonymous volume (the task's container's own, on its node, removed with it).
fn bind(field: &str, v: &ServiceVolume) -> Result<String, ExecutorError> {
    let source = v.source.as_deref().filter(|s| !s.is_empty());
    if source.is_none() && v.kind == MountType::Bind {
        return Err(ExecutorError::unsupported(
            format!("{field}.source"),
            "a bind mount needs the host path to mount",
        ));
    }
    for (what, text) in [
        ("source", source.unwrap_or_default()),
        ("target", v.target.as_str()),
    ] {
        if text.contains(':') {
            return Err(ExecutorError::unsupported(
                format!("{field}.{what}"),
                format!("{text:?}: the engine's mounts cannot hold ':'"),
            ));
        }
    }
    if let Some(b) = &v.bind {
        if b.propagation.as_deref().is_some_and(|p| p != "rprivate") {
            return Err(ExecutorError::unsupported(
                format!("{field}.bind.propagation"),
                "the engine mounts binds rprivate only",
            ));
        }
        if b.selinux.is_some() {
            return Err(ExecutorError::unsupported(
                format!("{field}.bind.selinux"),
                "the engine does not relabel for SELinux",
            ));
        }
        if b.recursive.as_deref().is_some_and(|r| r != "enabled") {
            return Err(ExecutorError::unsupported(
                format!("{field}.bind.recursive"),
                "the engine's binds are always recursive",
            ));
        }
    }
    if let Some(o) = &v.volume {
        if o.subpath.is_some() {
            return Err(ExecutorError::unsupported(
                format!("{field}.volume.subpath"),
                "the engine mounts whole volumes only",
            ));
        }
        if o.nocopy {
            return Err(ExecutorError::unsupported(
                format!("{field}.volume.nocopy"),
                "the engine always fills an empty volume from the image",
            ));
        }
    }
    let ro = if v.read_only { ":ro" } else { "" };
    Ok(match source {
        Some(source) => format!("{source}:{}{ro}", v.target),
        None => format!("{}{ro}", v.target),
    })
}

/// `TARGET[:size=N,mode=M,ro]` of a tmpfs mount.
fn tmpfs(field: &str, v: &ServiceVolume) -> Result<String, ExecutorError> {
    if !v.target.starts_with('/') || v.target.contains(':') {
        return Err(ExecutorError::unsupported(
            format!("{field}.target"),
            format!("{:?} is not an absolute path without ':'", v.target),
        ));
    }
    let mut opts = Vec::new();
    if let Some(t) = &v.tmpfs {
        if let Some(size) = t.size {
            opts.push(format!("size={}", size.0));
        }
        if let Some(mode) = t.mode {
            opts.push(format!("mode={:o}", mode.0));
        }
    }
    if v.read_only {
        opts.push("ro".into());
    }
    Ok(if opts.is_empty() {
        v.target.clone()
    } else {
        format!("{}:{}", v.target, opts.join(","))
    })
}
