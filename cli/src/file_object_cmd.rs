//! `orch secret create|ls|inspect|rm` and `orch cluster-config create|ls|inspect|rm`:
//! the cluster's secrets and configs (the ones stacks name as `external`; stacks make
//! their own). Configs live under `cluster-config` because `orch config` prints a
//! stack file. A secret's value never comes back: `inspect` shows its size and digest.

use crate::manager_api::{HostArgs, List, ManagerApi, runtime};
use crate::render;
use anyhow::{Context, bail};
use api::secret::{Config, MAX_SIZE, Secret};
use base64::Engine as _;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

/// The subcommands of `orch secret` and `orch cluster-config`.
#[derive(Subcommand)]
pub enum FileObjectCommand {
    /// Create one from a file, or from standard input with `-`.
    Create {
        name: String,
        /// The file holding the value (`-`: standard input).
        #[arg(value_name = "FILE|-")]
        file: String,
        /// A label, `KEY=VALUE` (repeatable).
        #[arg(short, long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
    /// List them: name, stack, size, digest.
    Ls {
        /// Only the names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show them as JSON (a secret without its value).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove them (refused while a task uses one).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Which kind of object the command is about.
#[derive(Clone, Copy)]
pub enum Which {
    Secret,
    Config,
}

impl Which {
    fn path(self) -> &'static str {
        match self {
            Which::Secret => "/v1/secrets",
            Which::Config => "/v1/configs",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Which::Secret => "secret",
            Which::Config => "config",
        }
    }
}

/// One row of `ls`, whichever the kind.
struct Row {
    id: String,
    stack: String,
    size: u64,
    digest: String,
}

/// Run `orch secret CMD` or `orch cluster-config CMD`.
pub fn run(which: Which, cmd: FileObjectCommand, host: &HostArgs) -> anyhow::Result<ExitCode> {
    let api = ManagerApi::connect(host)?;
    runtime()?.block_on(async {
        match cmd {
            FileObjectCommand::Create { name, file, labels } => {
                create(&api, which, &name, &file, &labels).await
            }
            FileObjectCommand::Ls { quiet } => ls(&api, which, quiet).await,
            FileObjectCommand::Inspect { names } => {
                let mut found = Vec::new();
                for name in &names {
                    let path = format!("{}/{name}", which.path());
                    let object: serde_json::Value = api.call(Method::GET, &path).await?;
                    found.push(object);
                }
                render::json(&found)?;
                Ok(ExitCode::SUCCESS)
            }
            FileObjectCommand::Rm { names } => {
                render::each(&names, |name| {
                    let api = &api;
                    async move {
                        let path = format!("{}/{name}", which.path());
                        api.call::<serde_json::Value>(Method::DELETE, &path)
                            .await
                            .map(|_| name)
                    }
                })
                .await
            }
        }
    })
}

fn read_value(noun: &str, file: &str) -> anyhow::Result<Vec<u8>> {
    let mut value = Vec::new();
    if file == "-" {
        std::io::stdin()
            .take(MAX_SIZE as u64 + 1)
            .read_to_end(&mut value)
            .with_context(|| format!("read the {noun} from standard input"))?;
    } else {
        value = std::fs::read(file).with_context(|| format!("read the {noun} from {file}"))?;
    }
    if value.len() > MAX_SIZE {
        bail!(
            "the {noun} in {file} is larger than {} KiB",
            MAX_SIZE / 1024
        );
    }
    Ok(value)
}

async fn create(
    api: &ManagerApi,
    which: Which,
    name: &str,
    file: &str,
    labels: &[String],
) -> anyhow::Result<ExitCode> {
    let value = read_value(which.noun(), file)?;
    let mut label_map = BTreeMap::new();
    for label in labels {
        let (k, v) = label.split_once('=').unwrap_or((label, ""));
        label_map.insert(k.to_owned(), v.to_owned());
    }
    let body = json!({
        "id": name,
        "labels": label_map,
        "data": base64::engine::general_purpose::STANDARD.encode(&value),
    });
    let _: serde_json::Value = api.send(Method::POST, which.path(), Some(&body)).await?;
    println!("{name}");
    Ok(ExitCode::SUCCESS)
}

async fn ls(api: &ManagerApi, which: Which, quiet: bool) -> anyhow::Result<ExitCode> {
    let rows: Vec<Row> = match which {
        Which::Secret => {
            let list: List<Secret> = api.call(Method::GET, which.path()).await?;
            list.items
                .into_iter()
                .map(|s| Row {
                    id: s.meta.id,
                    stack: s.stack,
                    size: s.value.size,
                    digest: s.value.digest,
                })
                .collect()
        }
        Which::Config => {
            let list: List<Config> = api.call(Method::GET, which.path()).await?;
            list.items
                .into_iter()
                .map(|c| Row {
                    id: c.meta.id,
                    stack: c.stack,
                    size: c.size,
                    digest: c.digest,
                })
                .collect()
        }
    };
    if quiet {
        for row in &rows {
            println!("{}", row.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            let short: String = r.digest.chars().take(24).collect();
            vec![r.id, r.stack, render::size(r.size), short]
        })
        .collect();
    render::table(&["NAME", "STACK", "SIZE", "DIGEST"], &table)?;
    Ok(ExitCode::SUCCESS)
}
