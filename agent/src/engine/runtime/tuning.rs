//! (pure) What a container asks for beyond the engine's defaults, checked and turned
//! into the [`Tuning`] init applies: the size of /dev/shm.

use super::init::Tuning;
use super::service::ContainerError;
use api::container::ContainerCreate;

/// The checked settings of `req`. A `shm_size` of 0 means the default, as in Docker.
pub fn tuning(req: &ContainerCreate) -> Result<Tuning, ContainerError> {
    Ok(Tuning {
        shm_size: req.shm_size.filter(|s| *s > 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_size_zero_is_the_default() {
        let req = |shm_size| ContainerCreate {
            shm_size,
            ..ContainerCreate::default()
        };
        assert_eq!(tuning(&req(Some(0))).unwrap().shm_size, None);
        assert_eq!(tuning(&req(None)).unwrap().shm_size, None);
        assert_eq!(tuning(&req(Some(1 << 28))).unwrap().shm_size, Some(1 << 28));
    }
}
