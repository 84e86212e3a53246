//! `orch image ...`: images of the local engine.

use crate::login::credentials;
use crate::progress::Progress;
use crate::render;
use agent::engine::image::reference::Reference;
use anyhow::{Context, bail};
use api::client::{ArchiveFormat, EngineClient, Events, ImportOptions};
use api::image::TransferEvent;
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

/// `orch image` subcommands.
#[derive(Subcommand)]
pub enum ImageCommand {
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show everything about images (JSON).
    Inspect(InspectArgs),
    /// Remove images (untag; delete when no name is left).
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Delete unused content: unnamed images, leftovers of interrupted pulls.
    Prune(PruneArgs),
    /// Make an image from a root file system tarball (like `docker import`).
    Import(ImportArgs),
    /// Load images from a docker-archive or OCI-layout tarball.
    Load(LoadArgs),
    /// Write images to a tarball (docker-archive or OCI layout).
    Save(SaveArgs),
}

/// Flags of `orch image pull`.
#[derive(Args)]
pub struct PullArgs {
    /// The image: `busybox`, `busybox:1.36`, `host:5000/a/b@sha256:...`.
    image: String,
    /// Platform to pull from a multi-platform image (`os/arch[/variant]`).
    #[arg(long)]
    platform: Option<String>,
    /// Print only the digest.
    #[arg(short, long)]
    quiet: bool,
}

/// Flags of `orch image push`.
#[derive(Args)]
pub struct PushArgs {
    /// The image name, including the registry (`localhost:5000/app:1`).
    image: String,
    /// Print only the digest.
    #[arg(short, long)]
    quiet: bool,
}

/// Output formats of `ls` and `inspect`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Flags of `orch image ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print only image ids.
    #[arg(short, long)]
    quiet: bool,
    /// Show full digests.
    #[arg(long)]
    no_trunc: bool,
}

/// Flags of `orch image inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Images by name, digest or id.
    #[arg(required = true)]
    images: Vec<String>,
    /// Output format (`table` prints a short summary per image).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// Flags of `orch image rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Images by name, digest or id.
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove an image named several times by id, with all its names.
    #[arg(short, long)]
    force: bool,
}

/// Flags of `orch image tag`.
#[derive(Args)]
pub struct TagArgs {
    /// Existing image (name, digest or id).
    source: String,
    /// New name.
    target: String,
}

/// Flags of `orch image prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Also remove named images that no container uses.
    #[arg(short, long)]
    all: bool,
}

/// Flags of `orch image import`.
#[derive(Args)]
pub struct ImportArgs {
    /// Root file system tarball (tar or tar.gz); `-` reads standard input.
    file: String,
    /// Name of the new image.
    reference: String,
    /// Dockerfile instruction to apply: `CMD ...`, `ENV K=V`, `WORKDIR /dir`.
    #[arg(short, long = "change")]
    changes: Vec<String>,
}

/// Flags of `orch image load`.
#[derive(Args)]
pub struct LoadArgs {
    /// Read from this file instead of standard input.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Print only the loaded names / digests.
    #[arg(short, long)]
    quiet: bool,
}

/// Archive formats of `orch image save`.
#[derive(Clone, Copy, ValueEnum)]
pub enum SaveFormat {
    /// What `docker save` writes.
    Docker,
    /// OCI image layout.
    Oci,
}

/// Flags of `orch image save`.
#[derive(Args)]
pub struct SaveArgs {
    /// Images to write.
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Archive format.
    #[arg(long, value_enum, default_value_t = SaveFormat::Docker)]
    format: SaveFormat,
}

/// Run one `orch image` subcommand.
pub fn run(client: &EngineClient, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    crate::engine::block_on(async {
        match cmd {
            ImageCommand::Pull(a) => pull(client, a).await,
            ImageCommand::Push(a) => push(client, a).await,
            ImageCommand::Ls(a) => ls(client, a).await,
            ImageCommand::Inspect(a) => inspect(client, a).await,
            ImageCommand::Rm(a) => rm(client, a).await,
            ImageCommand::Tag(a) => {
                client.tag(&a.source, &a.target).await?;
                Ok(ExitCode::SUCCESS)
            }
            ImageCommand::Prune(a) => prune(client, a).await,
            ImageCommand::Import(a) => import(client, a).await,
            ImageCommand::Load(a) => load(client, a).await,
            ImageCommand::Save(a) => save(client, a).await,
        }
    })?
}

fn auth_for(image: &str) -> anyhow::Result<Option<api::image::RegistryAuth>> {
    let r: Reference = image.parse()?;
    credentials(&r.registry)
}

/// Show a transfer stream; the digest of `Done`, or the error.
async fn follow(mut events: Events<TransferEvent>, quiet: bool) -> anyhow::Result<String> {
    let mut progress = (!quiet).then(Progress::new);
    while let Some(ev) = events.next().await {
        match ev? {
            TransferEvent::Done { digest, .. } => {
                if let Some(p) = progress.as_mut() {
                    p.finish();
                }
                return Ok(digest);
            }
            TransferEvent::Error(e) => {
                if let Some(p) = progress.as_mut() {
                    p.finish();
                }
                return Err(api::client::ClientError::Api(e).into());
            }
            ev => {
                if let Some(p) = progress.as_mut() {
                    p.show(&ev);
                }
            }
        }
    }
    bail!("the engine closed the stream before the transfer finished")
}

/// Pull `image` with progress (for `container run` of a missing image).
pub async fn follow_pull(client: &EngineClient, image: &str) -> anyhow::Result<String> {
    let auth = auth_for(image)?;
    let events = client.pull(image, None, auth.as_ref()).await?;
    follow(events, false).await
}

async fn pull(client: &EngineClient, a: PullArgs) -> anyhow::Result<ExitCode> {
    let auth = auth_for(&a.image)?;
    let events = client
        .pull(&a.image, a.platform.as_deref(), auth.as_ref())
        .await?;
    let digest = follow(events, a.quiet).await?;
    if a.quiet {
        println!("{digest}");
    } else {
        println!("Pulled {} ({digest})", a.image);
    }
    Ok(ExitCode::SUCCESS)
}

async fn push(client: &EngineClient, a: PushArgs) -> anyhow::Result<ExitCode> {
    let auth = auth_for(&a.image)?;
    let events = client.push(&a.image, auth.as_ref()).await?;
    let digest = follow(events, a.quiet).await?;
    if a.quiet {
        println!("{digest}");
    } else {
        println!("Pushed {} ({digest})", a.image);
    }
    Ok(ExitCode::SUCCESS)
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        return id.to_owned();
    }
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex).to_owned()
}

async fn ls(client: &EngineClient, a: LsArgs) -> anyhow::Result<ExitCode> {
    let images = client.images().await?;
    if let Format::Json = a.format {
        render::json(&images)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.quiet {
        let mut out = std::io::stdout().lock();
        let mut seen = std::collections::BTreeSet::new();
        for i in &images {
            if seen.insert(&i.id) {
                writeln!(out, "{}", short_id(&i.id, a.no_trunc))?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = SystemTime::now();
    let mut rows = Vec::new();
    for i in &images {
        for t in &i.tags {
            let (repo, tag) = split_tag(t);
            rows.push(vec![
                repo.to_owned(),
                tag.to_owned(),
                short_id(&i.id, a.no_trunc),
                i.platform.clone(),
                render::age(i.created.as_deref(), now),
                render::size(i.size),
            ]);
        }
    }
    render::table(
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "PLATFORM",
            "CREATED",
            "SIZE",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `repo:tag` -> (`repo`, `tag`); the tag is what follows the last `:` after the
/// last `/` (a registry port is not a tag).
fn split_tag(name: &str) -> (&str, &str) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, "<none>"),
    }
}

async fn inspect(client: &EngineClient, a: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut found = Vec::new();
    let mut failed = false;
    for image in &a.images {
        match client.image(image).await {
            Ok(d) => found.push(d),
            Err(e) => {
                eprintln!("orch: {e}");
                failed = true;
            }
        }
    }
    match a.format {
        Format::Json => render::json(&found)?,
        Format::Table => {
            for d in &found {
                println!("{}", d.summary.tags.join(", "));
                println!("  id:       {}", d.summary.id);
                println!("  digest:   {}", d.summary.digest);
                println!("  platform: {}", d.summary.platform);
                println!("  size:     {}", render::size(d.summary.size));
                println!("  layers:   {}", d.layers.len());
                if let Some(e) = &d.config.entrypoint {
                    println!("  entrypoint: {e:?}");
                }
                if let Some(c) = &d.config.cmd {
                    println!("  cmd:      {c:?}");
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn rm(client: &EngineClient, a: RmArgs) -> anyhow::Result<ExitCode> {
    render::each(&a.images, |image| async move {
        let report = client.remove_image(&image, a.force).await?;
        let untagged = report.untagged.iter().map(|u| format!("Untagged: {u}"));
        let deleted = report.deleted.iter().map(|d| format!("Deleted: {d}"));
        Ok::<_, api::client::ClientError>(untagged.chain(deleted).collect::<Vec<_>>().join("\n"))
    })
    .await
}

async fn prune(client: &EngineClient, a: PruneArgs) -> anyhow::Result<ExitCode> {
    let report = client.prune_images(a.all).await?;
    for u in &report.untagged {
        println!("Untagged: {u}");
    }
    println!(
        "Deleted {} blobs and {} snapshots",
        report.blobs.len(),
        report.snapshots.len()
    );
    println!("Total reclaimed space: {}", render::size(report.reclaimed));
    Ok(ExitCode::SUCCESS)
}

/// Import options from `--change` instructions.
fn changes(list: &[String]) -> anyhow::Result<ImportOptions> {
    let mut opts = ImportOptions::default();
    for c in list {
        let (word, rest) = c.trim().split_once(char::is_whitespace).unwrap_or((c, ""));
        let rest = rest.trim();
        match word.to_ascii_uppercase().as_str() {
            "CMD" => {
                opts.cmd = if rest.starts_with('[') {
                    serde_json::from_str(rest).with_context(|| {
                        format!("--change {c:?}: CMD [...] must be a JSON array of strings")
                    })?
                } else {
                    vec!["/bin/sh".into(), "-c".into(), rest.to_owned()]
                }
            }
            "ENV" => {
                if !rest.contains('=') {
                    bail!("--change {c:?}: ENV needs KEY=VALUE");
                }
                opts.env.push(rest.to_owned());
            }
            "WORKDIR" => opts.working_dir = Some(rest.to_owned()),
            other => {
                bail!("--change {c:?}: {other} is not supported by import (CMD, ENV, WORKDIR are)")
            }
        }
    }
    Ok(opts)
}

async fn import(client: &EngineClient, a: ImportArgs) -> anyhow::Result<ExitCode> {
    let opts = changes(&a.changes)?;
    let body = if a.file == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
            .context("read standard input")?;
        reqwest::Body::from(buf)
    } else {
        let f = tokio::fs::File::open(&a.file)
            .await
            .with_context(|| format!("open {}", a.file))?;
        reqwest::Body::from(f)
    };
    let loaded = client.import_image(body, &a.reference, &opts).await?;
    println!("{}", loaded.digest);
    Ok(ExitCode::SUCCESS)
}

async fn load(client: &EngineClient, a: LoadArgs) -> anyhow::Result<ExitCode> {
    let body = match &a.input {
        Some(path) => reqwest::Body::from(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("open {}", path.display()))?,
        ),
        None => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
                .context("read standard input")?;
            reqwest::Body::from(buf)
        }
    };
    for l in client.load_images(body).await? {
        match (&l.reference, a.quiet) {
            (Some(r), true) => println!("{r}"),
            (Some(r), false) => println!("Loaded image: {r}"),
            (None, true) => println!("{}", l.digest),
            (None, false) => println!("Loaded image ID: {}", l.digest),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn save(client: &EngineClient, a: SaveArgs) -> anyhow::Result<ExitCode> {
    let format = match a.format {
        SaveFormat::Docker => ArchiveFormat::Docker,
        SaveFormat::Oci => ArchiveFormat::Oci,
    };
    let mut out: Box<dyn Write> = match &a.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
        ),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("refusing to write a tarball to a terminal; use -o FILE or a redirect");
            }
            Box::new(std::io::stdout().lock())
        }
    };
    let mut resp = client.save_images(&a.images, format).await?;
    while let Some(chunk) = resp
        .chunk()
        .await
        .context("read the archive from the engine")?
    {
        out.write_all(&chunk).context("write the archive")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
