//! Builds as the engine API offers them: a context directory and a Dockerfile in,
//! base images pulled when missing, the build run on a blocking thread, progress out
//! as API events.

use super::build::{self, BuildError, BuildRequest, DockerfileSource};
use super::service::{ImageService, ImageServiceError};
use api::image::{BuildEvent, RegistryConfig, TransferEvent};
use std::sync::Arc;

impl ImageService {
    /// Build `req`, pulling base images that are not here with `auths`. Returns the
    /// image (manifest digest, config digest).
    pub async fn build(
        self: &Arc<Self>,
        req: BuildRequest,
        auths: &RegistryConfig,
        events: &(dyn Fn(BuildEvent) + Sync),
    ) -> Result<build::Built, ImageServiceError> {
        let text = match &req.dockerfile {
            DockerfileSource::Text(t) => t.clone(),
            DockerfileSource::Default | DockerfileSource::Path(_) => {
                let path = match &req.dockerfile {
                    DockerfileSource::Path(p) => req.context.join(p),
                    _ => req.context.join("Dockerfile"),
                };
                std::fs::read_to_string(&path)
                    .map_err(|source| BuildError::ReadDockerfile { path, source })?
            }
        };
        let bases = build::base_images(&text, req.target.as_deref(), &req.build_args)?;
        for base in bases {
            let name = base.to_string();
            if self.resolve(&name).is_ok() {
                continue;
            }
            events(BuildEvent::Pulling {
                reference: base.familiar(),
            });
            let auth = auths.get(&base.registry);
            self.pull(&name, None, auth, &|t: TransferEvent| {
                events(BuildEvent::Transfer(t))
            })
            .await?;
        }
        let me = Arc::clone(self);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let job = tokio::task::spawn_blocking(move || {
            let mut progress = |e: BuildEvent| {
                let _ = tx.send(e);
            };
            build::build(me.images(), me.snapshots(), &req, &mut progress)
        });
        while let Some(e) = rx.recv().await {
            events(e);
        }
        let built = job.await.map_err(|e| ImageServiceError::Worker {
            op: "build".into(),
            why: e.to_string(),
        })??;
        Ok(built)
    }
}
