//! Percentiles and the printed table.

use crate::load::{Failover, Sample};
use std::time::Duration;

/// The `p`-th percentile (0..=100) of `latencies_us`, in milliseconds.
pub fn percentile_ms(latencies_us: &[u32], p: f64) -> f64 {
    if latencies_us.is_empty() {
        return f64::NAN;
    }
    let mut sorted = latencies_us.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// One system's numbers at one concurrency, over all rounds.
pub struct Line {
    pub total: Sample,
    /// Puts/s of each round.
    pub rates: Vec<f64>,
}

impl Line {
    pub fn new() -> Line {
        Line {
            total: Sample::default(),
            rates: Vec::new(),
        }
    }

    pub fn add(&mut self, sample: &Sample) {
        self.rates.push(sample.rate());
        self.total.merge(sample);
    }

    fn cells(&self) -> String {
        let (lo, hi) = self
            .rates
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        format!(
            "{:>8.0} ({:>5.0}-{:<5.0}) {:>7.2} {:>7.2}",
            self.total.rate(),
            lo,
            hi,
            percentile_ms(&self.total.latencies_us, 50.0),
            percentile_ms(&self.total.latencies_us, 99.0)
        )
    }
}

/// The throughput and latency table: orch and (when it ran) etcd per concurrency,
/// with orch/etcd ratios.
pub fn print_load(lines: &[(usize, Line, Option<Line>)]) {
    println!();
    println!(
        "{:>5} | {:^38} | {:^38} | {:^20}",
        "conc",
        "orch puts/s (rounds) p50 p99 ms",
        "etcd puts/s (rounds) p50 p99 ms",
        "orch/etcd put/s p50 p99"
    );
    for (concurrency, orch, etcd) in lines {
        let (etcd_cells, ratios) = match etcd {
            Some(etcd) => {
                let ratio = |a: f64, b: f64| a / b;
                (
                    etcd.cells(),
                    format!(
                        "{:>5.2} {:>5.2} {:>5.2}",
                        ratio(orch.total.rate(), etcd.total.rate()),
                        ratio(
                            percentile_ms(&orch.total.latencies_us, 50.0),
                            percentile_ms(&etcd.total.latencies_us, 50.0)
                        ),
                        ratio(
                            percentile_ms(&orch.total.latencies_us, 99.0),
                            percentile_ms(&etcd.total.latencies_us, 99.0)
                        )
                    ),
                )
            }
            None => ("(skipped)".to_owned(), "-".to_owned()),
        };
        println!(
            "{:>5} | {} | {:<38} | {}",
            concurrency,
            orch.cells(),
            etcd_cells,
            ratios
        );
    }
}

/// The median of `times`.
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn list(failovers: &[Failover]) -> String {
    failovers
        .iter()
        .map(|f| format!("{:.2}", f.time.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The failover table: each trial, the median and the orch/etcd ratio of medians.
pub fn print_failover(orch: &[Failover], etcd: Option<&[Failover]>) {
    let times = |f: &[Failover]| f.iter().map(|f| f.time).collect::<Vec<_>>();
    let orch_median = median(&times(orch));
    println!();
    println!("failover (SIGKILL leader -> next acknowledged put), seconds:");
    println!(
        "  orch: {}  median {:.2}",
        list(orch),
        orch_median.as_secs_f64()
    );
    if let Some(etcd) = etcd {
        let etcd_median = median(&times(etcd));
        println!(
            "  etcd: {}  median {:.2}",
            list(etcd),
            etcd_median.as_secs_f64()
        );
        println!(
            "  orch/etcd (medians): {:.2}",
            orch_median.as_secs_f64() / etcd_median.as_secs_f64().max(1e-9)
        );
    }
}
