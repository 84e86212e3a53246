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
}
