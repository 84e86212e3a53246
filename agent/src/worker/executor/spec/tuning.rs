//! Settings of the container beyond the engine's defaults: `shm_size`, checked by
//! the engine's own rules ([`crate::engine::runtime::tuning`]) so a bad value is
//! refused naming its key before any node tries it.

use super::ExecutorError;
use api::container::ContainerCreate;
use api::service::ServiceSpec;

/// Carry `spec`'s settings into `create`.
pub(super) fn apply(spec: &ServiceSpec, create: &mut ContainerCreate) -> Result<(), ExecutorError> {
    create.shm_size = spec.shm_size.map(|b| b.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::container_create;
    use super::super::tests::{image, task};
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
}
