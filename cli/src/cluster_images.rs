//! `orch up` and the cluster registry: a service image this machine's engine holds
//! (built or imported here, or pulled earlier) is pushed to the cluster's own registry
//! and the stack names it there by digest — every node then runs exactly that image,
//! and needs no registry of its own. Images the engine lacks are left as written:
//! the nodes pull them from their registries.

use agent::engine::image::reference::Reference;
use agent::engine::image::registry::CLUSTER_REGISTRY;
use anyhow::Context;
use api::StackSpec;
use api::client::EngineClient;
use api::image::TransferEvent;
use std::collections::BTreeMap;
use std::path::Path;

/// Pushes the images of `spec` that the engine at `socket` holds, and rewrites them
/// to their cluster names. An engine that is not there, or not a node of the cluster,
/// changes nothing (said on stderr).
pub async fn publish(spec: &mut StackSpec, socket: &Path) -> anyhow::Result<()> {
    if !socket.exists() {
        return Ok(());
    }
    let engine = EngineClient::new(&format!("unix://{}", socket.display()))
        .context("a client of this machine's engine")?;
    let mut pushed: BTreeMap<String, Option<String>> = BTreeMap::new();
    for service in spec.services.values_mut() {
        let Some(image) = service.image.clone() else {
            continue;
        };
        if !pushed.contains_key(&image) {
            let outcome = push(&engine, &image).await;
            pushed.insert(image.clone(), outcome);
        }
        if let Some(Some(named)) = pushed.get(&image) {
            service.image = Some(named.clone());
        }
    }
    Ok(())
}

/// The cluster name of `image` once pushed; `None` when the engine does not hold it
/// or the push failed (said on stderr).
async fn push(engine: &EngineClient, image: &str) -> Option<String> {
    let parsed: Reference = image.parse().ok()?;
    if parsed.registry == CLUSTER_REGISTRY || engine.image(image).await.is_err() {
        return None;
    }
    let tag = parsed.tag.clone().unwrap_or_else(|| "latest".to_owned());
    let target = format!("{CLUSTER_REGISTRY}/{}:{tag}", parsed.repository);
    let outcome = async {
        engine.tag(image, &target).await?;
        let mut events = engine.push(&target, None).await?;
        while let Some(event) = events.next().await {
            match event? {
                TransferEvent::Done { digest, .. } => return Ok(digest),
                TransferEvent::Error(e) => anyhow::bail!("{}", e.message),
                TransferEvent::Layer { .. } => {}
            }
        }
        anyhow::bail!("the engine's push ended without saying it was done")
    }
    .await;
    match outcome {
        Ok(digest) => {
            let named = format!("{CLUSTER_REGISTRY}/{}@{digest}", parsed.repository);
            eprintln!("{image}: pushed to the cluster registry as {named}");
            Some(named)
        }
        Err(e) => {
            eprintln!(
                "warning: {image} was not pushed to the cluster registry ({e:#}); nodes pull it themselves"
            );
            None
        }
    }
}
