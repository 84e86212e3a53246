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
    /// A DNS server (IP[:PORT]) containers' names that are not the engine's are
    /// sent to (repeatable; default: the nameservers of /etc/resolv.conf).
    #[arg(long = "dns-upstream", value_name = "IP[:PORT]", value_parser = upstream)]
    dns_upstreams: Vec<std::net::SocketAddr>,
}

fn upstream(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse::<std::net::SocketAddr>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
        .map_err(|_| format!("{text:?} is not IP or IP:PORT"))
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
                dns_upstreams: args.dns_upstreams,
            },
            shutdown,
        )
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}
