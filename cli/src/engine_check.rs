//! What the nodes' engines would refuse in a stack, found before `orch up` builds,
//! pushes or writes anything: each service's spec goes through the same mapping a
//! node applies to its tasks ([`agent::worker::executor::container_create`]), so a key
//! the engine cannot honour (`pid: container:x`, `runtime`, ...) is an error naming the
//! service and the key at once, not a task rejected again and again until `up`'s
//! timeout.

use agent::worker::executor::{ExecutorError, container_create};
use api::StackSpec;
use api::cluster::Task;

/// One line per service whose tasks every node would reject:
/// `services.NAME.KEY: why`.
pub fn refusals(spec: &StackSpec) -> Vec<String> {
    let mut out = Vec::new();
    for (name, service) in &spec.services {
        let mut task = Task {
            name: name.clone(),
            spec: service.clone(),
            ..Task::default()
        };
        // A service built by `up` has no image yet: any name stands in for it.
        task.spec.image.get_or_insert_with(|| name.clone());
        if let Err(ExecutorError::Unsupported { field, why }) = container_create(&task) {
            out.push(format!("services.{name}.{field}: {why}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::service::ServiceSpec;

    #[test]
    fn every_refused_service_is_named_with_its_key() {
        let mut spec = StackSpec::default();
        spec.services.insert(
            "db".into(),
            ServiceSpec {
                image: Some("busybox".into()),
                pid: Some("container:db".into()),
                ..ServiceSpec::default()
            },
        );
        spec.services.insert(
            "api".into(),
            ServiceSpec {
                security_opt: vec!["seccomp=unconfined".into()],
                ..ServiceSpec::default()
            },
        );
        spec.services.insert(
            "web".into(),
            ServiceSpec {
                image: Some("busybox".into()),
                restart: Some("always".into()),
                ..ServiceSpec::default()
            },
        );
        let found = refusals(&spec);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("services.api.security_opt[0]: "),
            "{found:?}"
        );
        assert!(found[1].starts_with("services.db.pid: "), "{found:?}");
    }

    #[test]
    fn the_keys_the_engine_now_honours_pass_and_bad_values_are_named() {
        let stack = |service: ServiceSpec| {
            let mut spec = StackSpec::default();
            spec.services.insert("db".into(), service);
            refusals(&spec)
        };
        let honoured = ServiceSpec {
            image: Some("postgres".into()),
            shm_size: Some(api::units::Bytes(256 << 20)),
            group_add: vec!["audio".into(), "1234".into()],
            dns_search: vec!["corp.example".into()],
            dns_opt: vec!["ndots:2".into()],
            oom_score_adj: Some(500),
            domainname: Some("corp.example".into()),
            ipc: Some("shareable".into()),
            pid: Some("host".into()),
            ..ServiceSpec::default()
        };
        assert_eq!(stack(honoured), Vec::<String>::new());
        let bad = ServiceSpec {
            dns_opt: vec!["ndots:2".into(), "rotate timeout:1".into()],
            ..ServiceSpec::default()
        };
        let found = stack(bad);
        assert!(
            found.len() == 1
                && found[0].starts_with("services.db.dns_opt[1]: \"rotate timeout:1\": "),
            "{found:?}"
        );
        let found = stack(ServiceSpec {
            oom_score_adj: Some(-1001),
            ..ServiceSpec::default()
        });
        assert_eq!(
            found,
            ["services.db.oom_score_adj: -1001 is out of range: the kernel takes -1000 to 1000"]
        );
    }
}
