//! `orch build`: send a build context to the engine and show the build.

use crate::login::all_credentials;
use crate::progress::Progress;
use crate::render::size;
use agent::engine::api::build::SIDE_DOCKERFILE;
use agent::engine::image::build::ignore::Ignore;
use agent::engine::runtime::limits::parse_ulimit;
use anyhow::{Context, bail};
use api::client::{BuildOptions, EngineClient};
use api::image::{BuildEvent, BuildUlimit};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Flags of `orch build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The build context: a directory.
    context: PathBuf,
    /// Name for the image (repeatable).
    #[arg(short, long = "tag", value_name = "NAME")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// A build argument, KEY=VALUE, or KEY to take its value from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    build_args: Vec<String>,
    /// Build only up to this stage.
    #[arg(long)]
    target: Option<String>,
    /// Make every layer anew instead of reusing cached ones.
    #[arg(long)]
    no_cache: bool,
    /// A label of the image, KEY=VALUE (repeatable); it wins over a Dockerfile LABEL
    /// of the same key.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = label)]
    labels: Vec<(String, String)>,
    /// Size of /dev/shm in RUN steps, e.g. 256m (default and 0: 64m).
    #[arg(long = "shm-size", value_name = "SIZE", value_parser = shm_size)]
    shm_size: Option<u64>,
    /// An rlimit of RUN steps, NAME=SOFT[:HARD] (repeatable; -1 is unlimited), e.g.
    /// nofile=1024:2048.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]", value_parser = ulimit)]
    ulimits: Vec<BuildUlimit>,
    /// Print only the image id.
    #[arg(short, long)]
    quiet: bool,
}

/// `--label KEY=VALUE` (`KEY` alone: an empty value, as Docker takes it).
fn label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').unwrap_or((text, ""));
    if k.is_empty() {
        return Err(format!("{text:?}: expected KEY=VALUE"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// `--shm-size SIZE` in bytes (0: the default).
fn shm_size(text: &str) -> Result<u64, String> {
    api::units::parse_bytes(text).map(|b| b.0)
}

/// `--ulimit NAME=SOFT[:HARD]`, checked as a container's `--ulimit` is.
pub fn ulimit(text: &str) -> Result<BuildUlimit, String> {
    let u = parse_ulimit(text).map_err(|e| e.to_string())?;
    // Unlimited (u64::MAX) is -1 on the wire.
    let wire = |v: u64| i64::try_from(v).unwrap_or(-1);
    Ok(BuildUlimit {
        soft: wire(u.soft),
        hard: wire(u.hard),
        name: u.name,
    })
}

fn short(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    hex.get(..12).unwrap_or(hex)
}

/// The context as a tar: every file `.dockerignore` does not exclude (the ignore
/// file and the Dockerfile always), plus the Dockerfile under [`SIDE_DOCKERFILE`]
/// when it lives outside the context.
pub fn context_tar(context: &Path, dockerfile: &Path) -> anyhow::Result<(Vec<u8>, Option<String>)> {
    let ctx = context
        .canonicalize()
        .with_context(|| format!("build context {}", context.display()))?;
    if !ctx.is_dir() {
        bail!("build context {} is not a directory", context.display());
    }
    let df = dockerfile
        .canonicalize()
        .with_context(|| format!("Dockerfile {}", dockerfile.display()))?;
    let inside = df.strip_prefix(&ctx).ok().map(Path::to_owned);
    let mut own_ignore = df.clone().into_os_string();
    own_ignore.push(".dockerignore");
    let ignore_file = [PathBuf::from(own_ignore), ctx.join(".dockerignore")]
        .into_iter()
        .find(|p| p.is_file());
    let ignore = match &ignore_file {
        Some(p) => Some(
            Ignore::parse(
                &std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let mut stack = vec![ctx.clone()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("read {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(&ctx)?.to_path_buf();
            let rel_text = rel.to_string_lossy().into_owned();
            let always =
                Some(&rel) == inside.as_ref() || ignore_file.as_deref() == Some(path.as_path());
            let is_dir = e.file_type()?.is_dir();
            if !always && ignore.as_ref().is_some_and(|i| i.excludes(&rel_text)) {
                // An excluded directory may still hold `!`-excepted files.
                if !(is_dir && ignore.as_ref().is_some_and(Ignore::has_exceptions)) {
                    continue;
                }
            }
            tar.append_path_with_name(&path, &rel)
                .with_context(|| format!("add {} to the context", path.display()))?;
            if is_dir {
                stack.push(path);
            }
        }
    }
    let file = match &inside {
        Some(rel) => Some(rel.to_string_lossy().into_owned()),
        None => {
            let text = std::fs::read(&df).with_context(|| format!("read {}", df.display()))?;
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, SIDE_DOCKERFILE, &text[..])?;
            Some(SIDE_DOCKERFILE.to_owned())
        }
    };
    Ok((tar.into_inner()?, file))
}

/// Run `orch build`.
pub fn run(client: &EngineClient, a: BuildArgs) -> anyhow::Result<ExitCode> {
    let dockerfile = a
        .file
        .clone()
        .unwrap_or_else(|| a.context.join("Dockerfile"));
    let (tar, file) = context_tar(&a.context, &dockerfile)?;
    let mut build_args = Vec::new();
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) => build_args.push((k.to_owned(), v.to_owned())),
            None => {
                if let Ok(v) = std::env::var(kv) {
                    build_args.push((kv.clone(), v));
                }
            }
        }
    }
    let opts = BuildOptions {
        tags: a.tags.clone(),
        file,
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        labels: a.labels.iter().cloned().collect(),
        shm_size: a.shm_size,
        ulimits: a.ulimits.clone(),
    };
    let id = crate::engine::block_on(stream(client, tar, &opts, a.quiet))??;
    if a.quiet {
        println!("{id}");
    } else {
        println!("Successfully built {}", short(&id));
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the context `tar` as `opts` say, showing the steps unless `quiet`; the
/// image id.
pub async fn stream(
    client: &EngineClient,
    tar: Vec<u8>,
    opts: &BuildOptions,
    quiet: bool,
) -> anyhow::Result<String> {
    let auths = all_credentials()?;
    let mut events = client.build(tar, opts, &auths).await?;
    let mut transfers: Option<Progress> = None;
    while let Some(ev) = events.next().await {
        let ev = ev?;
        if !matches!(ev, BuildEvent::Transfer(_))
            && let Some(mut p) = transfers.take()
        {
            p.finish();
        }
        match ev {
            BuildEvent::Pulling { reference } if !quiet => {
                println!("Pulling {reference}");
                transfers = Some(Progress::new());
            }
            BuildEvent::Transfer(t) => {
                if let Some(p) = transfers.as_mut() {
                    p.show(&t);
                }
            }
            BuildEvent::Step {
                stage,
                index,
                total,
                instruction,
            } if !quiet => println!("Step {index}/{total} [{stage}] : {instruction}"),
            BuildEvent::Cached { digest } if !quiet => {
                println!(" ---> Using cache {}", short(&digest));
            }
            BuildEvent::Layer { digest, size: n } if !quiet => {
                println!(" ---> {} ({})", short(&digest), size(n));
            }
            BuildEvent::Output { text } if !quiet => println!("{text}"),
            BuildEvent::UnusedBuildArgs { names } => {
                eprintln!(
                    "[Warning] build arguments not consumed: {}",
                    names.join(", ")
                );
            }
            BuildEvent::Tagged { reference } if !quiet => {
                println!("Successfully tagged {reference}");
            }
            BuildEvent::Done { id, .. } => return Ok(id),
            BuildEvent::Error(e) => return Err(api::client::ClientError::Api(e).into()),
            _ => {}
        }
    }
    bail!("the engine closed the stream before the build finished")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_as_docker_build_takes_them() {
        assert_eq!(label("a.b=x=y").unwrap(), ("a.b".into(), "x=y".into()));
        assert_eq!(label("k").unwrap(), ("k".into(), String::new()));
        assert!(label("=v").is_err());
        assert_eq!(shm_size("128m").unwrap(), 128 << 20);
        assert_eq!(shm_size("0").unwrap(), 0);
        assert!(shm_size("lots").is_err());
        let u = ulimit("nofile=512:1024").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 512, 1024));
        let u = ulimit("core=-1").unwrap();
        assert_eq!((u.soft, u.hard), (-1, -1));
        assert!(ulimit("files=1").unwrap_err().contains("unknown limit"));
        assert!(ulimit("nofile=9:1").unwrap_err().contains("soft limit"));
    }
}
