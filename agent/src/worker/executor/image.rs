//! A task's image on the node: pulled or not according to its `pull_policy`.

use super::ExecutorError;
use api::client::EngineClient;
use api::error::ErrorCode;
use api::image::TransferEvent;
use api::service::ServiceSpec;

/// When the node pulls a task's image (compose's `pull_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull every time a task starts.
    Always,
    /// Pull when the node does not have it (the default; also `build`, and the
    /// refreshing policies `daily`, `weekly`, `every_<duration>`, whose refresh the
    /// node does not track: a new task of an updated service pulls what it names).
    Missing,
    /// Never pull: a missing image rejects the task.
    Never,
}

impl PullPolicy {
    /// The policy of `spec`.
    pub fn of(spec: &ServiceSpec) -> Result<PullPolicy, ExecutorError> {
        match spec.pull_policy.as_deref() {
            None | Some("missing" | "if_not_present" | "build" | "daily" | "weekly") => {
                Ok(PullPolicy::Missing)
            }
            Some(p) if p.starts_with("every_") => Ok(PullPolicy::Missing),
            Some("always") => Ok(PullPolicy::Always),
            Some("never") => Ok(PullPolicy::Never),
            Some(other) => Err(ExecutorError::unsupported(
                "pull_policy",
                format!("{other:?} is not a pull policy: use always, missing, never or build"),
            )),
        }
    }
}

/// Whether `image` is on the node.
async fn present(engine: &EngineClient, image: &str) -> Result<bool, ExecutorError> {
    match engine.image(image).await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(false),
        Err(e) => Err(ExecutorError::engine(format!("inspect image {image}"))(e)),
    }
}

/// Whether `image` must be pulled under `policy` (an error when it is missing and
/// may not be).
pub async fn needs_pull(
    engine: &EngineClient,
    image: &str,
    policy: PullPolicy,
) -> Result<bool, ExecutorError> {
    match policy {
        PullPolicy::Always => Ok(true),
        PullPolicy::Missing => Ok(!present(engine, image).await?),
        PullPolicy::Never if present(engine, image).await? => Ok(false),
        PullPolicy::Never => Err(ExecutorError::NotPulled {
            image: image.to_owned(),
            policy: "never".into(),
        }),
    }
}

/// Pull `image` (for `platform`, when the service names one) to the end.
pub async fn pull(
    engine: &EngineClient,
    image: &str,
    platform: Option<&str>,
) -> Result<(), ExecutorError> {
    let failed = |why: String| ExecutorError::Pull {
        image: image.to_owned(),
        why,
    };
    let mut events = engine
        .pull(image, platform, None)
        .await
        .map_err(|e| failed(e.to_string()))?;
    while let Some(event) = events.next().await {
        match event.map_err(|e| failed(e.to_string()))? {
            TransferEvent::Done { .. } => return Ok(()),
            TransferEvent::Error(e) => return Err(failed(e.message)),
            TransferEvent::Layer { .. } => {}
        }
    }
    Err(failed(
        "the engine ended the pull without saying it was done".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_read_as_compose_writes_them() {
        let of = |p: Option<&str>| {
            PullPolicy::of(&ServiceSpec {
                pull_policy: p.map(str::to_owned),
                ..ServiceSpec::default()
            })
        };
        for (text, want) in [
            (None, PullPolicy::Missing),
            (Some("missing"), PullPolicy::Missing),
            (Some("if_not_present"), PullPolicy::Missing),
            (Some("build"), PullPolicy::Missing),
            (Some("daily"), PullPolicy::Missing),
            (Some("every_12h"), PullPolicy::Missing),
            (Some("always"), PullPolicy::Always),
            (Some("never"), PullPolicy::Never),
        ] {
            assert_eq!(of(text).unwrap(), want, "{text:?}");
        }
        let e = of(Some("sometimes")).unwrap_err().to_string();
        assert!(e.starts_with("pull_policy: \"sometimes\""), "{e}");
    }
}
