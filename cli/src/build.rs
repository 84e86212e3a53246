//! `orch build`: send a build context to the engine and show the build.

use crate::login::all_credentials;
use crate::progress::Progress;
use crate::render::size;
use agent::engine::api::build::SIDE_DOCKERFILE;
use agent::engine::image::build::ignore::Ignore;
use anyhow::{Context, bail};
use api::client::{BuildOptions, EngineClient};
use api::image::BuildEvent;
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
    /// Print only the image id.
    #[arg(short, long)]
    quiet: bool,
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
