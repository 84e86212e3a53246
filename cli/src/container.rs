//! `orch container ...`: containers of the local engine.

use crate::image::{Format, follow_pull};
use crate::render::{self, each};
use anyhow::Context;
use api::client::EngineClient;
use api::container::{ContainerCreate, ContainerStatus};
use api::error::ErrorCode;
use clap::{Args, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

/// `orch container` subcommands.
#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Create and start a container (pulling its image when missing).
    Run(Box<RunArgs>),
    /// List containers (running ones; `-a` for all).
    #[command(alias = "list", alias = "ps")]
    Ls(LsArgs),
    /// Show everything about containers (JSON).
    Inspect(IdsArgs),
    /// Run a command in a running container (`-it` for an interactive terminal).
    Exec(crate::exec::ExecArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Stop containers: SIGTERM, then SIGKILL after the timeout.
    Stop(StopArgs),
    /// Send a signal to containers.
    Kill(KillArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Wait for containers to exit; print their exit codes.
    Wait(IdsArgs),
    /// Freeze every process of containers.
    Pause(IdsArgs),
    /// Thaw paused containers.
    Unpause(IdsArgs),
    /// Live CPU, memory and process counts of running containers.
    Stats(StatsArgs),
}

/// Flags of `orch container stats`.
#[derive(Args)]
pub struct StatsArgs {
    #[arg(required = true)]
    containers: Vec<String>,
    /// Print one sample and stop.
    #[arg(long)]
    no_stream: bool,
}

/// Flags of `orch container run`.
#[derive(Args)]
pub struct RunArgs {
    /// The image.
    image: String,
    /// The command (replaces the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// Run in the background and print the container id.
    #[arg(short, long)]
    detach: bool,
    /// Keep stdin open and send this terminal's input to the process.
    #[arg(short, long)]
    interactive: bool,
    /// Give the process a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Run an init as pid 1 that forwards signals to the command and reaps orphans.
    #[arg(long)]
    init: bool,
    /// An extra /etc/hosts entry, NAME:ADDRESS (address `host-gateway`: the host).
    #[arg(long = "add-host", value_name = "NAME:ADDRESS")]
    add_host: Vec<String>,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// A name for the container.
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` to take it from here).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Mount a host path or a named volume: `/HOST:/CONTAINER[:ro]`, `NAME:/CONTAINER[:ro]`.
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:CONTAINER[:ro]")]
    volumes: Vec<String>,
    /// Mount a tmpfs `PATH[:size=64m,mode=1777,ro]`.
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    tmpfs: Vec<String>,
    /// Run as `USER[:GROUP]` (names from the image's /etc/passwd, or ids).
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Mount the root file system read-only.
    #[arg(long)]
    read_only: bool,
    /// The container's hostname.
    #[arg(long)]
    hostname: Option<String>,
    /// Replace the image's ENTRYPOINT (one word; the command follows it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// `no-new-privileges` forbids gaining privileges (setuid binaries).
    #[arg(long = "security-opt", value_name = "OPTION")]
    security_opts: Vec<String>,
    /// A label `KEY=VALUE`.
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped.
    #[arg(long, value_name = "POLICY")]
    restart: Option<String>,
    /// The signal `stop` sends first (default: the image's, else TERM).
    #[arg(long, value_name = "SIGNAL")]
    stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long, value_name = "SECONDS")]
    stop_timeout: Option<u64>,
    /// Health check command (run with /bin/sh -c in the container).
    #[arg(long, value_name = "CMD")]
    health_cmd: Option<String>,
    /// Time between health checks (e.g. 30s, 1m30s).
    #[arg(long, value_name = "DURATION")]
    health_interval: Option<String>,
    /// Time a health check may take.
    #[arg(long, value_name = "DURATION")]
    health_timeout: Option<String>,
    /// Consecutive failures that make the container unhealthy.
    #[arg(long, value_name = "N")]
    health_retries: Option<u64>,
    /// Time after start during which failures do not count.
    #[arg(long, value_name = "DURATION")]
    health_start_period: Option<String>,
    /// Disable the image's health check.
    #[arg(long)]
    no_healthcheck: bool,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short, long, value_name = "BYTES")]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long, value_name = "BYTES")]
    memory_reservation: Option<String>,
    /// Memory plus swap (-1: unlimited swap).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// CPU time as a number of CPUs (e.g. 1.5).
    #[arg(long)]
    cpus: Option<f64>,
    /// Relative CPU weight (1024 is the default).
    #[arg(long)]
    cpu_shares: Option<u64>,
    /// Most processes at once.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// A supplementary group: a name from the image's /etc/group, or an id
    /// (repeatable).
    #[arg(long = "group-add", value_name = "GROUP")]
    group_add: Vec<String>,
    /// A search domain of its /etc/resolv.conf (repeatable; `.`: none).
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    dns_search: Vec<String>,
    /// A resolver option of its /etc/resolv.conf (repeatable; e.g. ndots:2).
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPTION")]
    dns_options: Vec<String>,
    /// OOM score adjustment of its processes, -1000 to 1000.
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    oom_score_adj: Option<i64>,
    /// The NIS domain name of its UTS namespace.
    #[arg(long)]
    domainname: Option<String>,
    /// `host`: the host's IPC namespace and /dev/shm (default: its own).
    #[arg(long, value_name = "private|host")]
    ipc: Option<String>,
    /// `host`: the host's PID namespace (default: its own).
    #[arg(long, value_name = "host")]
    pid: Option<String>,
    /// `host`: the host's UTS namespace, its host and domain names (default: its own).
    #[arg(long, value_name = "host")]
    uts: Option<String>,
    /// Size of /dev/shm (e.g. 256m; default 64m).
    #[arg(long = "shm-size", value_name = "SIZE")]
    shm_size: Option<String>,
    /// Add a capability to Docker's default set (e.g. NET_ADMIN, ALL).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a capability (e.g. CHOWN, ALL).
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Every capability, no seccomp filter, all devices, /sys writable.
    #[arg(long)]
    privileged: bool,
    /// An rlimit `NAME=SOFT[:HARD]` (e.g. nofile=1024:2048).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    ulimits: Vec<String>,
    /// A namespaced kernel setting `KEY=VALUE` (net.*, kernel.shm*, fs.mqueue.*).
    #[arg(long = "sysctl", value_name = "KEY=VALUE")]
    sysctls: Vec<String>,
    /// A host device `HOST[:CONTAINER[:PERMS]]` (e.g. /dev/fuse).
    #[arg(long = "device", value_name = "HOST[:CONTAINER[:PERMS]]")]
    devices: Vec<String>,
    /// Run in a user namespace of its own mapping user ids `CONTAINER:HOST:COUNT`
    /// (repeatable; e.g. 0:100000:65536: root inside is 100000 on the host).
    #[arg(long = "uidmap", value_name = "CONTAINER:HOST:COUNT")]
    uidmap: Vec<String>,
    /// Map group ids the same way (default: as --uidmap).
    #[arg(long = "gidmap", value_name = "CONTAINER:HOST:COUNT")]
    gidmap: Vec<String>,
    /// `host`: the host's user ids, also when the engine remaps (--userns-remap).
    #[arg(long = "userns", value_name = "host")]
    userns: Option<String>,
    /// A network to join (repeatable), or `host`, `none`, `container:NAME`.
    #[arg(long = "network", alias = "net", value_name = "NETWORK")]
    networks: Vec<String>,
    /// Another name the container answers to on its (first) network.
    #[arg(long = "network-alias", value_name = "NAME")]
    network_aliases: Vec<String>,
    /// A fixed IPv4 address on its (first) network.
    #[arg(long)]
    ip: Option<String>,
    /// A fixed MAC address on its (first) network.
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
    /// Publish a port `[IP:][HOST[-END]:]CONTAINER[-END][/tcp|udp]`.
    #[arg(short = 'p', long = "publish", value_name = "[IP:][HOST:]PORT")]
    publish: Vec<String>,
}

/// Flags of `orch container ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    all: bool,
    /// Print only ids.
    #[arg(short, long)]
    quiet: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Containers by id, id prefix or name.
#[derive(Args)]
pub struct IdsArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Flags of `orch container logs`.
#[derive(Args)]
pub struct LogsArgs {
    container: String,
    /// Keep printing new lines until the container exits.
    #[arg(short, long)]
    follow: bool,
    /// Print only the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    timestamps: bool,
}

/// Flags of `orch container stop`.
#[derive(Args)]
pub struct StopArgs {
    #[arg(required = true)]
    containers: Vec<String>,
    /// Seconds to wait after the stop signal before SIGKILL (default: the
    /// container's stop timeout, else 10).
    #[arg(short, long)]
    time: Option<u64>,
}

/// Flags of `orch container kill`.
#[derive(Args)]
pub struct KillArgs {
    #[arg(required = true)]
    containers: Vec<String>,
    /// The signal (name or number).
    #[arg(short, long, default_value = "KILL")]
    signal: String,
}

/// Flags of `orch container rm`.
#[derive(Args)]
pub struct RmArgs {
    #[arg(required = true)]
    containers: Vec<String>,
    /// Kill a running container first.
    #[arg(short, long)]
    force: bool,
}

/// Run one `orch container` subcommand.
pub fn run(client: &EngineClient, cmd: ContainerCommand) -> anyhow::Result<ExitCode> {
    crate::engine::block_on(async {
        match cmd {
            ContainerCommand::Run(a) => run_container(client, *a).await,
            ContainerCommand::Ls(a) => ls(client, a).await,
            ContainerCommand::Exec(a) => crate::exec::run(client, a).await,
            ContainerCommand::Inspect(a) => {
                let mut out = Vec::new();
                for c in &a.containers {
                    out.push(client.container(c).await?);
                }
                render::json(&out)?;
                Ok(ExitCode::SUCCESS)
            }
            ContainerCommand::Logs(a) => {
                logs(client, &a.container, a.follow, a.tail, a.timestamps).await
            }
            ContainerCommand::Stop(a) => {
                each(&a.containers, |c| async move {
                    client.stop_container(&c, a.time).await.map(|_| c)
                })
                .await
            }
            ContainerCommand::Kill(a) => {
                let sig = a.signal.clone();
                each(&a.containers, |c| {
                    let sig = sig.clone();
                    async move { client.kill_container(&c, &sig).await.map(|_| c) }
                })
                .await
            }
            ContainerCommand::Rm(a) => {
                each(&a.containers, |c| async move {
                    client.remove_container(&c, a.force).await.map(|_| c)
                })
                .await
            }
            ContainerCommand::Pause(a) => {
                each(&a.containers, |c| async move {
                    client.pause_container(&c, true).await.map(|_| c)
                })
                .await
            }
            ContainerCommand::Unpause(a) => {
                each(&a.containers, |c| async move {
                    client.pause_container(&c, false).await.map(|_| c)
                })
                .await
            }
            ContainerCommand::Stats(a) => stats(client, a).await,
            ContainerCommand::Wait(a) => {
                each(&a.containers, |c| async move {
                    client
                        .wait_container(&c)
                        .await
                        .map(|e| e.exit_code.to_string())
                })
                .await
            }
        }
    })?
}

async fn run_container(client: &EngineClient, a: RunArgs) -> anyhow::Result<ExitCode> {
    let env = a
        .env
        .iter()
        .filter_map(|kv| match kv.split_once('=') {
            Some(_) => Some(kv.clone()),
            None => std::env::var(kv).ok().map(|v| format!("{kv}={v}")),
        })
        .collect();
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    for o in &a.security_opts {
        if o != "no-new-privileges" && o != "no-new-privileges:true" {
            anyhow::bail!("--security-opt {o:?}: orch knows no-new-privileges");
        }
    }
    let duration = |flag: &str,
                    v: &Option<String>|
     -> anyhow::Result<Option<api::units::Duration>> {
        v.as_deref()
            .map(|t| {
                api::units::parse_duration(t).map_err(|e| anyhow::anyhow!("--{flag} {t:?}: {e}"))
            })
            .transpose()
    };
    let healthcheck = if a.no_healthcheck {
        Some(api::service::Healthcheck {
            disable: true,
            ..Default::default()
        })
    } else if let Some(cmd) = &a.health_cmd {
        Some(api::service::Healthcheck {
            test: vec!["CMD-SHELL".into(), cmd.clone()],
            interval: duration("health-interval", &a.health_interval)?,
            timeout: duration("health-timeout", &a.health_timeout)?,
            retries: a.health_retries,
            start_period: duration("health-start-period", &a.health_start_period)?,
            ..Default::default()
        })
    } else {
        None
    };
    let bytes = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
        v.as_deref()
            .map(|t| {
                api::units::parse_bytes(t)
                    .map(|b| b.0)
                    .map_err(|e| anyhow::anyhow!("--{flag} {t:?}: {e}"))
            })
            .transpose()
    };
    let memory_swap = match a.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(t) => Some(i64::try_from(
            api::units::parse_bytes(t)
                .map_err(|e| anyhow::anyhow!("--memory-swap {t:?}: {e}"))?
                .0,
        )?),
    };
    let (network_mode, networks) = network_flags(&a)?;
    let req = ContainerCreate {
        network_mode,
        networks,
        publish: a.publish.clone(),
        memory: bytes("memory", &a.memory)?,
        memory_reservation: bytes("memory-reservation", &a.memory_reservation)?,
        memory_swap,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        pids_limit: a.pids_limit,
        shm_size: bytes("shm-size", &a.shm_size)?,
        group_add: a.group_add.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_options.clone(),
        oom_score_adj: a.oom_score_adj,
        domainname: a.domainname.clone(),
        ipc_mode: a.ipc.clone(),
        pid_mode: a.pid.clone(),
        uts_mode: a.uts.clone(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        tty: a.tty,
        init: a.init,
        extra_hosts: a.add_host.clone(),
        open_stdin: a.interactive,
        ulimits: a.ulimits.clone(),
        devices: a.devices.clone(),
        uidmap: a.uidmap.clone(),
        gidmap: a.gidmap.clone(),
        userns_mode: a.userns.clone(),
        sysctls: a
            .sysctls
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        image: a.image.clone(),
        name: a.name.clone(),
        cmd: a.command.clone(),
        entrypoint: a.entrypoint.as_ref().map(|e| vec![e.clone()]),
        env,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        hostname: a.hostname.clone(),
        read_only: a.read_only,
        binds: a.volumes.clone(),
        tmpfs: a.tmpfs.clone(),
        no_new_privileges: !a.security_opts.is_empty(),
        labels,
        // Attached runs remove the container here once its exit code is known;
        // detached ones leave it to the engine.
        auto_remove: a.rm && a.detach,
        restart: a.restart.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        healthcheck,
    };
    let created = match client.create_container(&req).await {
        Err(e)
            if e.code() == Some(ErrorCode::NotFound) && e.to_string().starts_with("no image") =>
        {
            eprintln!("Unable to find image {} here; pulling it", a.image);
            follow_pull(client, &a.image).await?;
            client.create_container(&req).await?
        }
        r => r?,
    };
    if let Err(e) = client.start_container(&created.id).await {
        if a.rm {
            let _ = client.remove_container(&created.id, true).await;
        }
        return Err(e.into());
    }
    if a.detach {
        println!("{}", created.id);
        return Ok(ExitCode::SUCCESS);
    }
    let code = if a.interactive || a.tty {
        match client.attach(&created.id).await {
            Ok(conn) => {
                crate::exec::converse(conn, a.interactive, a.tty).await?;
                client.wait_container(&created.id).await?.exit_code
            }
            // It ended before the attach: what it wrote is in its log.
            Err(_) => {
                logs(client, &created.id, false, None, false).await?;
                client.wait_container(&created.id).await?.exit_code
            }
        }
    } else {
        logs(client, &created.id, true, None, false).await?;
        client.wait_container(&created.id).await?.exit_code
    };
    if a.rm {
        client.remove_container(&created.id, true).await?;
    }
    Ok(ExitCode::from(
        u8::try_from(code.clamp(0, 255)).unwrap_or(255),
    ))
}

async fn logs(
    client: &EngineClient,
    id: &str,
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
) -> anyhow::Result<ExitCode> {
    let mut events = client.logs(id, follow, tail).await?;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    while let Some(line) = events.next().await {
        let line = line?;
        let text = if timestamps {
            format!("{} {}", line.time, line.log)
        } else {
            line.log
        };
        let w: &mut dyn Write = if line.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        w.write_all(text.as_bytes()).context("write the log")?;
        w.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn status_text(s: &ContainerStatus, now: SystemTime) -> String {
    match s {
        ContainerStatus::Created => "Created".into(),
        ContainerStatus::Running { started_at, .. } => {
            format!(
                "Up {}",
                render::age(Some(started_at), now).trim_end_matches(" ago")
            )
        }
        ContainerStatus::Exited {
            exit_code,
            oom_killed,
            finished_at,
            ..
        } => format!(
            "Exited ({exit_code}){} {}",
            if *oom_killed { " OOM" } else { "" },
            render::age(Some(finished_at), now)
        ),
    }
}

async fn ls(client: &EngineClient, a: LsArgs) -> anyhow::Result<ExitCode> {
    let list = client.containers(a.all).await?;
    if let Format::Json = a.format {
        render::json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.quiet {
        for c in &list {
            println!("{}", &c.id[..12]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = SystemTime::now();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let mut cmd = c.command.join(" ");
            if cmd.chars().count() > 30 {
                cmd = cmd.chars().take(29).collect::<String>() + "…";
            }
            vec![
                c.id[..12].to_owned(),
                c.image.clone(),
                format!("\"{cmd}\""),
                render::age(Some(&c.created), now),
                status_text(&c.status, now),
                c.name.clone(),
            ]
        })
        .collect();
    render::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Print CPU %, memory and pids, once a second (or once with `--no-stream`).
async fn stats(client: &EngineClient, a: StatsArgs) -> anyhow::Result<ExitCode> {
    let mut last: std::collections::HashMap<String, (u64, std::time::Instant)> = Default::default();
    loop {
        let mut rows = Vec::new();
        for c in &a.containers {
            let s = client.container_stats(c).await?;
            let now = std::time::Instant::now();
            let cpu = match last.insert(c.clone(), (s.cpu_usage_ns, now)) {
                Some((prev, t)) => {
                    let dt = now.duration_since(t).as_nanos().max(1) as f64;
                    format!(
                        "{:.2}%",
                        (s.cpu_usage_ns.saturating_sub(prev)) as f64 / dt * 100.0
                    )
                }
                None => "--".into(),
            };
            let mem = match s.memory_limit {
                Some(l) => format!("{} / {}", render::size(s.memory_usage), render::size(l)),
                None => render::size(s.memory_usage),
            };
            rows.push(vec![
                s.id[..12].to_owned(),
                s.name.clone(),
                cpu,
                mem,
                s.pids.to_string(),
            ]);
        }
        render::table(
            &["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS"],
            &rows,
        )?;
        if a.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// `--network` values as a mode (host, none, container:X) or networks to join, with
/// `--network-alias`, `--ip` and `--mac-address` on the first.
fn network_flags(
    a: &RunArgs,
) -> anyhow::Result<(Option<String>, Vec<api::network::NetworkAttach>)> {
    let special = |n: &str| matches!(n, "host" | "none") || n.starts_with("container:");
    if let Some(mode) = a.networks.iter().find(|n| special(n)) {
        if a.networks.len() > 1 {
            anyhow::bail!("--network {mode} cannot be combined with other networks");
        }
        return Ok((Some(mode.clone()), Vec::new()));
    }
    let mut names = a.networks.clone();
    if names.is_empty()
        && (a.ip.is_some() || a.mac_address.is_some() || !a.network_aliases.is_empty())
    {
        names.push("bridge".into());
    }
    let attach = names
        .into_iter()
        .enumerate()
        .map(|(i, network)| api::network::NetworkAttach {
            network,
            aliases: if i == 0 {
                a.network_aliases.clone()
            } else {
                Vec::new()
            },
            ipv4: if i == 0 { a.ip.clone() } else { None },
            mac: if i == 0 { a.mac_address.clone() } else { None },
        })
        .collect();
    Ok((None, attach))
}
