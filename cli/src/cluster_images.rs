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
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Pushes the images of `spec` that the engine at `socket` holds, and rewrites them
/// to their cluster names. On a dry run (`Some(fresh)`) nothing is pushed: each is
/// rewritten to the name a push would give it (the digest of the engine's manifest),
/// so `up --dry-run` compares what `up` would write — but for the images in `fresh`,
/// which a build would replace first. An engine that is not there, or not a node of the
/// cluster, changes nothing (said on stderr).
pub async fn publish(
    spec: &mut StackSpec,
    socket: &Path,
    dry_run: Option<&BTreeSet<String>>,
) -> anyhow::Result<()> {
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
            let outcome = match (held(&engine, &image).await, dry_run) {
                (Some((parsed, _)), None) => push(&engine, &image, &parsed).await,
                (Some(_), Some(fresh)) if fresh.contains(&image) => None,
                (Some((parsed, digest)), Some(_)) => Some(cluster_name(&parsed, &digest)),
                (None, _) => None,
            };
            pushed.insert(image.clone(), outcome);
        }
        if let Some(Some(named)) = pushed.get(&image) {
            service.image = Some(named.clone());
        }
    }
    Ok(())
}

/// `image` parsed, with the digest of its manifest, when the engine holds it and it
/// is not a cluster name already.
async fn held(engine: &EngineClient, image: &str) -> Option<(Reference, String)> {
    let parsed: Reference = image.parse().ok()?;
    if parsed.registry == CLUSTER_REGISTRY {
        return None;
    }
    let detail = engine.image(image).await.ok()?;
    Some((parsed, detail.summary.digest))
}

/// The name by digest of `image` in the cluster registry.
fn cluster_name(image: &Reference, digest: &str) -> String {
    format!("{CLUSTER_REGISTRY}/{}@{digest}", image.repository)
}

/// The cluster name of `image` (`parsed`) once pushed; `None` when the push failed
/// (said on stderr).
async fn push(engine: &EngineClient, image: &str, parsed: &Reference) -> Option<String> {
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
            let named = cluster_name(parsed, &digest);
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

/// Builds the services of `spec` that have `build:` — all of them when `always`
/// (`orch up --build`), else those whose image the engine at `socket` lacks — and
/// names each service's image (`image:`, or `PROJECT-SERVICE` as compose does).
/// Returns the images built; with `dry_run`, those it would build (said on stderr).
pub async fn build(
    spec: &mut StackSpec,
    socket: &Path,
    always: bool,
    dry_run: bool,
) -> anyhow::Result<BTreeSet<String>> {
    let project = spec.name.clone();
    let mut engine = None;
    let mut built = BTreeSet::new();
    for (name, service) in spec.services.iter_mut() {
        let Some(build) = service.build.clone() else {
            continue;
        };
        let image = service
            .image
            .clone()
            .unwrap_or_else(|| format!("{project}-{name}"));
        if dry_run && !socket.exists() {
            eprintln!("would build {image} (service {name})");
            built.insert(image.clone());
            service.image = Some(image);
            continue;
        }
        if engine.is_none() {
            anyhow::ensure!(
                socket.exists(),
                "services.{name}.build: building needs this machine's engine ({} is not there: start the local cluster, or `orch agent`)",
                socket.display()
            );
            engine = Some(
                EngineClient::new(&format!("unix://{}", socket.display()))
                    .context("a client of this machine's engine")?,
            );
        }
        let client = engine.as_ref().context("the engine")?;
        if !always && client.image(&image).await.is_ok() {
            // Built before: kept.
        } else if dry_run {
            eprintln!("would build {image} (service {name})");
            built.insert(image.clone());
        } else {
            eprintln!("building {image} (service {name})");
            built.insert(image.clone());
            let opts = build_options(name, &build, &image)?;
            let context = Path::new(&build.context);
            let dockerfile = context.join(opts.file.as_deref().unwrap_or("Dockerfile"));
            let (tar, file) = crate::build::context_tar(context, &dockerfile)
                .with_context(|| format!("services.{name}.build"))?;
            let opts = api::client::BuildOptions { file, ..opts };
            crate::build::stream(client, tar, &opts, false)
                .await
                .with_context(|| format!("build service {name}"))?;
        }
        service.image = Some(image);
    }
    Ok(built)
}

/// The engine's build options for `build`, or an error naming a key the engine's
/// builder does not take.
fn build_options(
    service: &str,
    build: &api::service::BuildSpec,
    image: &str,
) -> anyhow::Result<api::client::BuildOptions> {
    let refused = [
        ("dockerfile_inline", build.dockerfile_inline.is_some()),
        ("additional_contexts", !build.additional_contexts.is_empty()),
        ("secrets", !build.secrets.is_empty()),
        ("ssh", !build.ssh.is_empty()),
        (
            "network",
            build.network.as_deref().is_some_and(|n| n != "default"),
        ),
        ("extra_hosts", !build.extra_hosts.is_empty()),
        ("privileged", build.privileged == Some(true)),
        ("entitlements", !build.entitlements.is_empty()),
        ("platforms", build.platforms.len() > 1),
    ];
    if let Some((key, _)) = refused.iter().find(|(_, set)| *set) {
        anyhow::bail!(
            "services.{service}.build.{key}: orch's builder does not take it; build the image with a tool that does, then name it in `image:`"
        );
    }
    let mut tags = vec![image.to_owned()];
    tags.extend(build.tags.iter().cloned());
    let build_args = build
        .args
        .iter()
        .filter_map(|(k, v)| {
            v.clone()
                .or_else(|| std::env::var(k).ok())
                .map(|v| (k.clone(), v))
        })
        .collect();
    let ulimits = build
        .ulimits
        .iter()
        .map(|(name, u)| {
            crate::build::ulimit(&format!("{name}={}:{}", u.soft, u.hard))
                .map_err(|why| anyhow::anyhow!("services.{service}.build.ulimits.{name}: {why}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(api::client::BuildOptions {
        tags,
        file: build.dockerfile.clone(),
        build_args,
        target: build.target.clone(),
        no_cache: build.no_cache.unwrap_or(false),
        labels: build.labels.clone(),
        // 0 is the default, as for a service's `shm_size`.
        shm_size: build.shm_size.map(|b| b.0).filter(|n| *n > 0),
        ulimits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::image::BuildUlimit;
    use api::service::{BuildSpec, Ulimit};
    use api::units::Bytes;

    #[test]
    fn build_options_carry_labels_shm_size_and_ulimits() {
        let build = BuildSpec {
            context: ".".into(),
            labels: [("com.example.tier".into(), "web".into())].into(),
            shm_size: Some(Bytes(256 << 20)),
            ulimits: [
                (
                    "nofile".into(),
                    Ulimit {
                        soft: 512,
                        hard: 1024,
                    },
                ),
                ("core".into(), Ulimit { soft: -1, hard: -1 }),
            ]
            .into(),
            ..BuildSpec::default()
        };
        let opts = build_options("web", &build, "app-web").unwrap();
        assert_eq!(opts.tags, ["app-web"]);
        assert_eq!(opts.labels, build.labels);
        assert_eq!(opts.shm_size, Some(256 << 20));
        let u = |name: &str, soft, hard| BuildUlimit {
            name: name.into(),
            soft,
            hard,
        };
        assert_eq!(opts.ulimits, [u("core", -1, -1), u("nofile", 512, 1024)]);
        let plain = build_options("web", &BuildSpec::default(), "app-web").unwrap();
        assert!(plain.labels.is_empty() && plain.ulimits.is_empty());
        assert_eq!(plain.shm_size, None);
        let zero = BuildSpec {
            shm_size: Some(Bytes(0)),
            ..BuildSpec::default()
        };
        let zero = build_options("web", &zero, "app-web").unwrap();
        assert_eq!(zero.shm_size, None, "0 is the default");
    }

    #[test]
    fn bad_build_limits_name_their_key() {
        let err = |build: BuildSpec| build_options("web", &build, "x").unwrap_err().to_string();
        let e = err(BuildSpec {
            ulimits: [("files".into(), Ulimit { soft: 1, hard: 1 })].into(),
            ..BuildSpec::default()
        });
        assert!(e.starts_with("services.web.build.ulimits.files: "), "{e}");
        assert!(e.contains("unknown limit"), "{e}");
        let e = err(BuildSpec {
            ulimits: [("nofile".into(), Ulimit { soft: 9, hard: 1 })].into(),
            ..BuildSpec::default()
        });
        assert!(e.contains("services.web.build.ulimits.nofile"), "{e}");
    }
}
