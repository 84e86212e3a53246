//! `orch agent`: run the node's engine (alone, like dockerd, until `--join` exists).

use agent::engine::daemon::{DEFAULT_DATA_DIR, DEFAULT_SOCKET, EngineConfig, serve};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `orch agent`.
#[derive(Args)]
pub struct AgentArgs {
    /// Where images, snapshots and state live.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The unix socket of the engine API (root-only).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// A registry (host[:port]) to reach over plain http (repeatable; loopback
    /// registries always are).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
}

/// Run the engine until SIGINT or SIGTERM.
pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async {
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("orch agent: shutting down");
        };
        eprintln!(
            "orch agent: engine on unix://{} (data in {})",
            args.socket.display(),
            args.data_dir.display()
        );
        serve(
            EngineConfig {
                data_dir: args.data_dir,
                socket: args.socket,
                insecure_registries: args.insecure_registries,
            },
            shutdown,
        )
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}
