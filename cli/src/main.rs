//! `orch`: one binary that turns Linux hosts into a cluster and keeps compose stacks
//! running on it. This file parses the command line and dispatches; each command group
//! lives in its own module.

mod agent_cmd;
mod build;
mod cluster_cmd;
mod cluster_images;
mod config;
mod container;
mod context;
mod down_cmd;
mod engine;
mod engine_check;
mod events_cmd;
mod exec;
mod file_object_cmd;
mod image;
mod local_cluster;
mod login;
mod logs_cmd;
mod manager_api;
mod manager_cmd;
mod network;
mod progress;
mod render;
mod service_cmd;
mod stack_cmd;
mod stack_files;
mod token_cmd;
mod volume;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// orch — run compose stacks on a cluster of Linux hosts.
#[derive(Parser)]
#[command(name = "orch", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// The engine to talk to (default unix:///run/orch/engine.sock).
    #[arg(long, global = true, env = "ORCH_ENGINE", value_name = "unix://PATH")]
    engine: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy a stack file to the cluster and wait until it runs (like `docker stack deploy` + `docker compose up`).
    Up(stack_cmd::UpArgs),
    /// Remove a stack from the cluster and wait until its tasks stopped (`--volumes`: and its named volumes are gone from every node).
    Down(down_cmd::DownArgs),
    /// List the stacks on the cluster.
    Ls(stack_cmd::LsArgs),
    /// List the tasks of a stack: node, desired and current state, error.
    Ps(stack_cmd::PsArgs),
    /// Show the logs of a service's tasks (or a task) from every node (like `docker service logs`).
    Logs(logs_cmd::LogsArgs),
    /// Print the cluster's changes as they happen: time, kind, id, action, state.
    Events(events_cmd::EventsArgs),
    /// Set the replica count of services (`orch scale web=3 api=2`).
    Scale(service_cmd::ScaleArgs),
    /// The services of the cluster's stacks.
    Service {
        #[command(flatten)]
        host: cluster_cmd::HostArgs,
        #[command(subcommand)]
        cmd: service_cmd::ServiceCommand,
    },
    /// Validate stack files and print the normalized stack (like `docker compose config`).
    Config(config::ConfigArgs),
    /// The cluster's secrets: values sealed by the managers, mounted by tasks under /run/secrets.
    Secret {
        #[command(flatten)]
        host: manager_api::HostArgs,
        #[command(subcommand)]
        cmd: file_object_cmd::FileObjectCommand,
    },
    /// The cluster's configs (`docker config`): values mounted by tasks as files.
    #[command(name = "cluster-config")]
    ClusterConfig {
        #[command(flatten)]
        host: manager_api::HostArgs,
        #[command(subcommand)]
        cmd: file_object_cmd::FileObjectCommand,
    },
    /// Run this node's engine: images, containers, volumes and networks.
    Agent(agent_cmd::AgentArgs),
    /// The cluster's nodes (through a manager's API).
    Node {
        #[command(flatten)]
        host: cluster_cmd::HostArgs,
        #[command(subcommand)]
        cmd: cluster_cmd::NodeCommand,
    },
    /// Print (or rotate) the join token of a role, with the line to run on a new host.
    Token(token_cmd::TokenArgs),
    /// The cluster's control plane as a manager sees it.
    Cluster {
        #[command(flatten)]
        host: cluster_cmd::HostArgs,
        #[command(subcommand)]
        cmd: cluster_cmd::ClusterCommand,
    },
    /// Run a manager of the cluster's control plane (init, join, run).
    #[command(subcommand)]
    Manager(manager_cmd::ManagerCommand),
    /// Manage containers of the local engine.
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Manage images of the local engine.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Manage named volumes of the local engine.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage networks of the local engine (bridge, overlay).
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Log in to a registry (credentials are checked, then kept in ~/.orch/config.json).
    Login(login::LoginArgs),
    /// Forget the credentials of a registry.
    Logout(login::LogoutArgs),
}

/// The engine's own helpers (`orch shim DIR`, `orch init SPEC`, `orch enter SPEC`),
/// started by the engine, never by hand: dispatched before the command line parser
/// so that the per-container shim touches as little of the binary as it can.
fn internal() {
    let mut args = std::env::args_os().skip(1);
    let (Some(cmd), Some(path), None) = (args.next(), args.next(), args.next()) else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    match cmd.to_str() {
        Some("shim") => agent::engine::runtime::shim::run(&path),
        Some("init") => agent::engine::runtime::init::run(&path),
        Some("enter") => agent::engine::runtime::enter::run(&path),
        _ => {}
    }
}

fn main() -> ExitCode {
    internal();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Config(args) => config::run(args),
        Command::Up(args) => stack_cmd::up(args),
        Command::Down(args) => down_cmd::down(args),
        Command::Ls(args) => stack_cmd::ls(args),
        Command::Ps(args) => stack_cmd::ps(args),
        Command::Scale(args) => service_cmd::scale(args),
        Command::Logs(args) => logs_cmd::logs(args),
        Command::Events(args) => events_cmd::events(args),
        Command::Service { host, cmd } => service_cmd::run(cmd, &host),
        Command::Secret { host, cmd } => {
            file_object_cmd::run(file_object_cmd::Which::Secret, cmd, &host)
        }
        Command::ClusterConfig { host, cmd } => {
            file_object_cmd::run(file_object_cmd::Which::Config, cmd, &host)
        }
        Command::Agent(args) => agent_cmd::run(args),
        Command::Manager(cmd) => manager_cmd::run(cmd),
        Command::Node { host, cmd } => cluster_cmd::node(cmd, &host),
        Command::Cluster { host, cmd } => cluster_cmd::cluster(cmd, &host),
        Command::Token(args) => token_cmd::run(args),
        Command::Container(cmd) => {
            engine::client(cli.engine.as_deref()).and_then(|c| container::run(&c, cmd))
        }
        Command::Image(cmd) => {
            engine::client(cli.engine.as_deref()).and_then(|c| image::run(&c, cmd))
        }
        Command::Build(args) => {
            engine::client(cli.engine.as_deref()).and_then(|c| build::run(&c, args))
        }
        Command::Volume(cmd) => {
            engine::client(cli.engine.as_deref()).and_then(|c| volume::run(&c, cmd))
        }
        Command::Network(cmd) => {
            engine::client(cli.engine.as_deref()).and_then(|c| network::run(&c, cmd))
        }
        Command::Login(args) => {
            engine::client(cli.engine.as_deref()).and_then(|c| login::login(&c, args))
        }
        Command::Logout(args) => login::logout(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orch: {e:#}");
            ExitCode::FAILURE
        }
    }
}
