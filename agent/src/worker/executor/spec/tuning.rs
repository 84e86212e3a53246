//! Settings of the container beyond the engine's defaults: `shm_size`, `group_add`,
//! `dns_search`, `dns_opt`, `oom_score_adj`, `domainname`, `ipc`, `pid`, `uts`, checked by the
//! engine's own rules ([`crate::engine::runtime::tuning`],
//! [`crate::engine::runtime::spec`]) so a bad value is refused naming its key before
//! any node tries it (a group name is looked up in the image by the node).

use super::ExecutorError;
use crate::engine::runtime::spec::{SpecError, group_id};
use crate::engine::runtime::tuning::{TuningError, check_entry, tuning};
use api::container::ContainerCreate;
use api::service::ServiceSpec;

/// Carry `spec`'s settings into `create` (its `sysctls` already there).
pub(super) fn apply(spec: &ServiceSpec, create: &mut ContainerCreate) -> Result<(), ExecutorError> {
    for (i, group) in spec.group_add.iter().enumerate() {
        group_id(i, group).map_err(refusal)?;
    }
    for (i, domain) in spec.dns_search.iter().enumerate() {
        check_entry("dns_search", i, domain).map_err(refusal_of)?;
    }
    for (i, option) in spec.dns_opt.iter().enumerate() {
        check_entry("dns_opt", i, option).map_err(refusal_of)?;
    }
    create.shm_size = spec.shm_size.map(|b| b.0);
    create.group_add = spec.group_add.clone();
    create.dns_search = spec.dns_search.clone();
    create.dns_options = spec.dns_opt.clone();
    create.oom_score_adj = spec.oom_score_adj;
    create.domainname = spec.domainname.clone();
    create.ipc_mode = spec.ipc.clone();
    create.pid_mode = spec.pid.clone();
    create.uts_mode = spec.uts.clone();
    // The node's own user namespace (--userns-remap) is checked there.
    tuning(create, false).map_err(refusal_of)?;
    Ok(())
}

/// The engine's refusal of a setting as the executor's, naming the key.
fn refusal_of(e: TuningError) -> ExecutorError {
    ExecutorError::unsupported(e.key(), e.detail())
}

/// The engine's refusal as the executor's, naming the key (`group_add[1]`).
fn refusal(e: SpecError) -> ExecutorError {
    match e {
        SpecError::GroupAdd { index, group, why } => {
            ExecutorError::unsupported(format!("group_add[{index}]"), format!("{group:?}: {why}"))
        }
        other => ExecutorError::unsupported("user", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::container_create;
    use super::super::tests::{image, refused, task};
    use api::service::ServiceSpec;
    use api::units::Bytes;

    #[test]
    fn shm_size_is_carried_in_bytes() {
        let spec = image(ServiceSpec {
            shm_size: Some(Bytes(256 << 20)),
            ..ServiceSpec::default()
        });
        let c = container_create(&task(spec)).unwrap();
        assert_eq!(c.shm_size, Some(256 << 20));
        let none = container_create(&task(image(ServiceSpec::default()))).unwrap();
        assert_eq!(none.shm_size, None);
    }

    #[test]
    fn group_add_names_and_ids_are_carried_and_bad_ones_refused_by_index() {
        let spec = image(ServiceSpec {
            group_add: vec!["audio".into(), "1234".into()],
            ..ServiceSpec::default()
        });
        let c = container_create(&task(spec)).unwrap();
        assert_eq!(c.group_add, ["audio", "1234"]);
        let e = refused(ServiceSpec {
            group_add: vec!["audio".into(), "wheel users".into()],
            ..ServiceSpec::default()
        });
        assert!(e.starts_with("group_add[1]: \"wheel users\": "), "{e}");
    }

    #[test]
    fn dns_search_and_options_are_carried_and_a_bad_entry_refused_by_index() {
        let spec = image(ServiceSpec {
            dns_search: vec!["corp.example".into()],
            dns_opt: vec!["ndots:2".into(), "rotate".into()],
            ..ServiceSpec::default()
        });
        let c = container_create(&task(spec)).unwrap();
        assert_eq!(c.dns_search, ["corp.example"]);
        assert_eq!(c.dns_options, ["ndots:2", "rotate"]);
        let e = refused(ServiceSpec {
            dns_search: vec!["a".into(), "b\nnameserver 6.6.6.6".into()],
            ..ServiceSpec::default()
        });
        assert!(e.starts_with("dns_search[1]: \"b\\nnameserver"), "{e}");
        let e = refused(ServiceSpec {
            dns_opt: vec!["ndots: 2".into()],
            ..ServiceSpec::default()
        });
        assert!(e.starts_with("dns_opt[0]: \"ndots: 2\": "), "{e}");
    }

    #[test]
    fn oom_score_adj_is_carried_within_the_kernels_range() {
        let spec = image(ServiceSpec {
            oom_score_adj: Some(-1000),
            ..ServiceSpec::default()
        });
        assert_eq!(
            container_create(&task(spec)).unwrap().oom_score_adj,
            Some(-1000)
        );
        for v in [1001, -1001] {
            let e = refused(ServiceSpec {
                oom_score_adj: Some(v),
                ..ServiceSpec::default()
            });
            assert_eq!(
                e,
                format!("oom_score_adj: {v} is out of range: the kernel takes -1000 to 1000")
            );
        }
    }

    #[test]
    fn domainname_is_carried_and_one_the_kernel_cannot_take_refused() {
        let spec = image(ServiceSpec {
            domainname: Some("corp.example".into()),
            ..ServiceSpec::default()
        });
        let c = container_create(&task(spec)).unwrap();
        assert_eq!(c.domainname.as_deref(), Some("corp.example"));
        let e = refused(ServiceSpec {
            domainname: Some("corp example".into()),
            ..ServiceSpec::default()
        });
        assert!(e.starts_with("domainname: \"corp example\": "), "{e}");
    }

    #[test]
    fn ipc_host_is_carried_and_what_would_be_the_hosts_refused() {
        let spec = image(ServiceSpec {
            ipc: Some("host".into()),
            ..ServiceSpec::default()
        });
        let c = container_create(&task(spec)).unwrap();
        assert_eq!(c.ipc_mode.as_deref(), Some("host"));
        let e = refused(ServiceSpec {
            ipc: Some("service:db".into()),
            ..ServiceSpec::default()
        });
        assert!(e.starts_with("ipc: \"service:db\": "), "{e}");
        let e = refused(ServiceSpec {
            ipc: Some("host".into()),
            shm_size: Some(Bytes(1 << 20)),
            ..ServiceSpec::default()
        });
        assert!(e.starts_with("ipc: host: shm_size cannot be set"), "{e}");
    }

    #[test]
    fn pid_host_is_carried_and_another_services_refused() {
        let spec = image(ServiceSpec {
            pid: Some("host".into()),
            ..ServiceSpec::default()
        });
        let c = container_create(&task(spec)).unwrap();
        assert_eq!(c.pid_mode.as_deref(), Some("host"));
        let e = refused(ServiceSpec {
            pid: Some("service:db".into()),
            ..ServiceSpec::default()
        });
        assert!(e.starts_with("pid: \"service:db\": "), "{e}");
    }

    #[test]
    fn uts_host_is_carried_and_a_hostname_with_it_refused() {
        let spec = image(ServiceSpec {
            uts: Some("host".into()),
            ..ServiceSpec::default()
        });
        let c = container_create(&task(spec)).unwrap();
        assert_eq!(c.uts_mode.as_deref(), Some("host"));
        let e = refused(ServiceSpec {
            uts: Some("host".into()),
            hostname: Some("db".into()),
            ..ServiceSpec::default()
        });
        assert!(e.starts_with("uts: host: hostname cannot be set"), "{e}");
    }
}
