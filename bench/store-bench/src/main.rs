//! store-bench: committed writes per second, p50/p99 commit latency and leader
//! failover time of orch's raft store (3 `orch manager` processes on loopback, puts
//! through the REST API) against etcd (3 members on loopback, puts through its JSON
//! gateway), measured interleaved in one run with the same client code.
//!
//! Modules:
//! - [`procs`]: the run's temp directory and server processes, cleaned up on drop;
//! - [`orch`], [`etcd`]: starting each cluster, and each system as a put target;
//! - [`load`]: the shared client: timed keep-alive workers and the failover writer;
//! - [`report`]: percentiles and the printed tables;
//! - [`options`]: the command line;
//! - [`error`]: what failed.

mod error;
mod etcd;
mod load;
mod options;
mod orch;
mod procs;
mod report;

use error::BenchError;
use load::Target;
use options::{Command, Options};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of every put's value.
const VALUE_BYTES: usize = 256;
/// How long the failover writer keeps trying after the kill.
const FAILOVER_GIVE_UP: Duration = Duration::from_secs(30);

/// The value every put writes: 256 printable bytes.
pub fn payload() -> Vec<u8> {
    (0..VALUE_BYTES).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The 1-minute load average (how busy the shared machine was).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The etcd binary to use, or why etcd is skipped.
fn etcd_binary(options: &Options) -> Result<PathBuf, String> {
    match &options.etcd {
        None => Err("--etcd none".to_owned()),
        Some(path) if Path::new(path).exists() => Ok(path.clone()),
        Some(path) => Err(format!(
            "{} not found: install Debian's etcd-server (`apt-get install etcd-server`, \
             scripts/setup does) or pass --etcd PATH",
            path.display()
        )),
    }
}

async fn run(options: &Options) -> Result<(), BenchError> {
    let run_dir = procs::RunDir::new()?;
    println!(
        "store-bench: {} B values, {} s per run, {} round(s), concurrency {:?}, load average {} at start",
        VALUE_BYTES,
        options.seconds,
        options.rounds,
        options.concurrency,
        load_average()
    );
    let (mut orch_cluster, orch_target) = orch::OrchCluster::start(&options.orch, &run_dir)?;
    let orch_target = Arc::new(orch_target);
    let mut etcd = match etcd_binary(options) {
        Ok(bin) => {
            let cluster = etcd::EtcdCluster::start(&bin, &run_dir)?;
            let target = Arc::new(etcd::EtcdTarget::new());
            target.wait_for_leader(&cluster.addrs, 30).await?;
            Some((cluster, target))
        }
        Err(why) => {
            println!("etcd skipped: {why}");
            None
        }
    };
    let orch_leader = orch::find_leader(&orch_cluster, &orch_target, 30).await?;
    println!(
        "orch managers {:?} (leader {}), etcd members {:?}",
        orch_cluster.addrs,
        orch_cluster.addrs[orch_leader],
        etcd.as_ref()
            .map(|(c, _)| c.addrs.clone())
            .unwrap_or_default()
    );

    // Let both settle after the elections (and orch's start-up writes) before the
    // idle memory is read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let orch_idle = orch_cluster.rss_kib();
    let etcd_idle = etcd.as_ref().map(|(c, _)| c.rss_kib());
    let duration = Duration::from_secs(options.seconds);
    let mut lines: Vec<(usize, report::Line, Option<report::Line>)> = options
        .concurrency
        .iter()
        .map(|&c| {
            (
                c,
                report::Line::new(),
                etcd.as_ref().map(|_| report::Line::new()),
            )
        })
        .collect();
    for round in 0..options.rounds {
        for (concurrency, orch_line, etcd_line) in lines.iter_mut() {
            // Alternate who goes first, so drift in the machine's load hits both.
            let orch_first = round % 2 == 0;
            for turn in 0..2 {
                if (turn == 0) == orch_first {
                    let leader = orch::find_leader(&orch_cluster, &orch_target, 30).await?;
                    let target: Arc<dyn Target> = orch_target.clone();
                    let sample =
                        load::measure(target, &orch_cluster.addrs[leader], *concurrency, duration)
                            .await?;
                    report::print_sample("orch", round, *concurrency, &sample, &load_average());
                    orch_line.add(&sample);
                } else if let (Some((cluster, target)), Some(line)) = (&etcd, etcd_line.as_mut()) {
                    let leader = target.wait_for_leader(&cluster.addrs, 30).await?;
                    let target: Arc<dyn Target> = target.clone();
                    let sample =
                        load::measure(target, &cluster.addrs[leader], *concurrency, duration)
                            .await?;
                    report::print_sample("etcd", round, *concurrency, &sample, &load_average());
                    line.add(&sample);
                }
            }
        }
    }
    report::print_load(&lines);
    println!();
    report::print_memory("idle", &orch_idle, etcd_idle.as_deref());
    report::print_memory(
        "after the load",
        &orch_cluster.rss_kib(),
        etcd.as_ref().map(|(c, _)| c.rss_kib()).as_deref(),
    );

    let mut orch_failovers = Vec::new();
    let mut etcd_failovers = Vec::new();
    for trial in 0..options.failovers {
        let leader = orch::find_leader(&orch_cluster, &orch_target, 30).await?;
        let addrs = orch_cluster.addrs.clone();
        let f = load::failover(
            orch_target.clone(),
            &addrs,
            leader,
            FAILOVER_GIVE_UP,
            || orch_cluster.kill(leader),
        )
        .await?;
        report::print_trial("orch", trial, &orch_cluster.addrs[leader], &f);
        orch_failovers.push(f);
        orch_cluster.restart(leader)?;
        orch::wait_member(&orch_target, &orch_cluster.addrs[leader], 60).await?;

        if let Some((cluster, target)) = etcd.as_mut() {
            let leader = target.wait_for_leader(&cluster.addrs, 30).await?;
            let addrs = cluster.addrs.clone();
            let f = load::failover(target.clone(), &addrs, leader, FAILOVER_GIVE_UP, || {
                cluster.kill(leader)
            })
            .await?;
            report::print_trial("etcd", trial, &cluster.addrs[leader], &f);
            etcd_failovers.push(f);
            cluster.restart(leader)?;
            etcd::wait_member(target, &cluster.addrs[leader], 60).await?;
        }
    }
    if options.failovers > 0 {
        report::print_failover(
            &orch_failovers,
            etcd.as_ref().map(|_| etcd_failovers.as_slice()),
        );
    }
    println!("\nload average {} at the end", load_average());
    Ok(())
}

fn main() -> ExitCode {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("orch")))
        .unwrap_or_else(|| PathBuf::from("orch"));
    let options = match options::parse(std::env::args().skip(1), beside) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{}", options::HELP);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("store-bench: {error}");
            return ExitCode::from(2);
        }
    };
    // reqwest is built without a crypto provider: both targets' clients use ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("store-bench: start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("store-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
