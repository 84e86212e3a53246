//! Places tasks onto simulated nodes with each strategy and prints placements per second
//! and peak memory (VmHWM of /proc/self/status, reset between strategies).
//!
//! The cluster: `--nodes` nodes (default 10,000) of three sizes (8, 16, 32 cpus with
//! 4 GiB per cpu) in five zones, half with an `ssd` engine label, three managers. The
//! work: `--tasks` tasks (default 1,000,000) of `--services` services (default 1,000)
//! with reservations of 0.05 to 0.2 cpus and 64 to 256 MiB; every 10th service has a
//! zone constraint, every 7th an engine-label constraint, every 5th spreads over
//! zones, every 20th allows one replica per node, every 50th publishes a port. Tasks
//! come service by service, as the orchestrator creates them; `--interleave K` rotates
//! over K services at a time instead. `--batch` hands all tasks to `place_all` at once
//! (which groups them by spec) instead of calling `place` for each. `--strategy S`
//! runs one strategy.
//!
//! Usage: `scheduler-bench [--nodes N] [--tasks N] [--services N] [--interleave K]
//! [--batch] [--strategy spread|binpack|random] [--seed N]`

use api::ServiceSpec;
use api::cluster::{Availability, Node, NodeRole, NodeState, Task};
use api::deploy::{DeploySpec, Placement, PlacementPreference, ResourceReservations, Resources};
use api::service::{PortMode, PortSpec};
use api::units::Bytes;
use manager::scheduler::{Scheduler, Strategy, Unschedulable};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: scheduler-bench [--nodes N] [--tasks N] [--services N] \
                     [--interleave K] [--batch] [--strategy spread|binpack|random] [--seed N]";

/// What to run.
struct Options {
    nodes: usize,
    tasks: usize,
    services: usize,
    interleave: usize,
    strategies: Vec<Strategy>,
    seed: u64,
    /// Hand all tasks to `place_all` at once instead of `place` one by one.
    batch: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        nodes: 10_000,
        tasks: 1_000_000,
        services: 1_000,
        interleave: 1,
        strategies: vec![Strategy::Spread, Strategy::Binpack, Strategy::Random],
        seed: 42,
        batch: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        if flag == "--batch" {
            options.batch = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .replace('_', "")
                .parse::<usize>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--nodes" => options.nodes = number()?,
            "--tasks" => options.tasks = number()?,
            "--services" => options.services = number()?.max(1),
            "--interleave" => options.interleave = number()?.max(1),
            "--seed" => options.seed = number()? as u64,
            "--strategy" => {
                options.strategies = vec![value.parse().map_err(|e| format!("{e}"))?];
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

/// The simulated nodes.
fn nodes(count: usize) -> Vec<Node> {
    (0..count)
        .map(|i| {
            let mut node = Node::default();
            node.meta.id = format!("node-{i:05}");
            node.meta
                .labels
                .insert("zone".into(), format!("z{}", i % 5));
            node.description.hostname = node.meta.id.clone();
            node.description.cpus = [8, 16, 32][i % 3];
            node.description.memory_bytes = u64::from(node.description.cpus) * (4 << 30);
            node.description.os = "linux".into();
            node.description.arch = "amd64".into();
            if i.is_multiple_of(2) {
                node.description
                    .engine_labels
                    .insert("disk".into(), "ssd".into());
            }
            node.spec.role = if i < 3 {
                NodeRole::Manager
            } else {
                NodeRole::Worker
            };
            node.spec.availability = Availability::Active;
            node.status.state = NodeState::Ready;
            node
        })
        .collect()
}

/// One task of service `index` (the scheduler reads only the service and its spec).
fn service_task(index: usize) -> Task {
    let mut placement = Placement::default();
    if index.is_multiple_of(10) {
        placement.constraints.push("node.labels.zone!=z0".into());
    }
    if index.is_multiple_of(7) {
        placement.constraints.push("engine.labels.disk==ssd".into());
    }
    if index.is_multiple_of(5) {
        placement.preferences.push(PlacementPreference {
            spread: "node.labels.zone".into(),
        });
    }
    if index.is_multiple_of(20) {
        placement.max_replicas_per_node = Some(1);
    }
    let mut spec = ServiceSpec {
        deploy: Some(DeploySpec {
            placement: Some(placement),
            resources: Some(Resources {
                reservations: Some(ResourceReservations {
                    cpus: Some([0.05, 0.1, 0.2][index % 3]),
                    memory: Some(Bytes([64, 128, 256][index % 3] << 20)),
                    ..ResourceReservations::default()
                }),
                ..Resources::default()
            }),
            ..DeploySpec::default()
        }),
        ..ServiceSpec::default()
    };
    if index.is_multiple_of(50) {
        spec.ports.push(PortSpec {
            mode: PortMode::Host,
            target: 80,
            published: Some((10_000 + index % 50_000).to_string()),
            ..PortSpec::default()
        });
    }
    Task {
        service: format!("bench_s{index}"),
        stack: "bench".into(),
        name: format!("s{index}"),
        spec,
        ..Task::default()
    }
}

/// The order tasks are placed in: service indexes, `interleave` services at a time.
fn order(options: &Options) -> Vec<u32> {
    let per_service = options.tasks.div_ceil(options.services);
    let mut order = Vec::with_capacity(options.tasks);
    for first in (0..options.services).step_by(options.interleave) {
        let last = (first + options.interleave).min(options.services);
        for _ in 0..per_service {
            for service in first..last {
                order.push(service as u32);
            }
        }
    }
    order.truncate(options.tasks);
    order
}

/// Peak resident memory in KiB (`VmHWM`), if /proc says.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Seconds this thread has run on a cpu (user + system), from /proc/thread-self/stat in
/// clock ticks of 10 ms (`getconf CLK_TCK` is 100 on Linux): unlike the wall clock,
/// it does not count time lost to other processes on a busy machine.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The fields after the command name, which may hold spaces, in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Resets the peak to the current resident size (Linux: 5 > clear_refs).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("scheduler-bench: {error}");
            return ExitCode::from(2);
        }
    };
    let cluster = nodes(options.nodes);
    let tasks: Vec<Task> = (0..options.services).map(service_task).collect();
    let order = order(&options);
    println!(
        "{} placements of {} services onto {} nodes, {} service(s) at a time, {}",
        order.len(),
        options.services,
        options.nodes,
        options.interleave,
        if options.batch {
            "all in one place_all"
        } else {
            "one place call each"
        }
    );
    println!(
        "{:<8} {:>10} {:>8} {:>8} {:>13} {:>8} {:>15} {:>13}",
        "strategy",
        "placed",
        "pending",
        "wall s",
        "placements/s",
        "cpu s",
        "per cpu-second",
        "peak RSS MiB"
    );
    for &strategy in &options.strategies {
        let reset = reset_peak_rss();
        let start = Instant::now();
        let cpu_start = cpu_seconds();
        let mut scheduler = Scheduler::new(&cluster, [], strategy, options.seed);
        let (mut placed, mut pending) = (0usize, 0usize);
        let mut first_pending = None;
        let mut count = |service: u32, result: Result<String, Unschedulable>| match result {
            Ok(_) => placed += 1,
            Err(verdict) => {
                pending += 1;
                first_pending.get_or_insert((service, verdict));
            }
        };
        if options.batch {
            let results = scheduler.place_all(order.iter().map(|&s| &tasks[s as usize]));
            for (&service, result) in order.iter().zip(results) {
                count(service, result);
            }
        } else {
            for &service in &order {
                count(service, scheduler.place(&tasks[service as usize]));
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_start.zip(cpu_seconds()).map(|(a, b)| b - a);
        let peak = peak_rss_kib().map_or("?".to_owned(), |k| format!("{}", k / 1024));
        let peak = if reset {
            peak
        } else {
            format!("{peak} (whole run)")
        };
        println!(
            "{:<8} {:>10} {:>8} {:>8.2} {:>13.0} {:>8} {:>15} {:>13}",
            strategy.as_str(),
            placed,
            pending,
            seconds,
            order.len() as f64 / seconds,
            cpu.map_or("?".to_owned(), |c| format!("{c:.2}")),
            cpu.filter(|c| *c > 0.0)
                .map_or("?".to_owned(), |c| format!("{:.0}", order.len() as f64 / c)),
            peak
        );
        if let Some((service, verdict)) = first_pending {
            println!("         first pending: service s{service}: {verdict}");
        }
        drop(scheduler);
    }
    ExitCode::SUCCESS
}
