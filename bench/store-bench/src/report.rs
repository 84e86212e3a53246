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

/// One load run as it finishes (`round` counts from 0).
pub fn print_sample(system: &str, round: usize, concurrency: usize, sample: &Sample, load: &str) {
    println!(
        "round {} conc {concurrency:>2} {system} {:>6.0} puts/s (load {load})",
        round + 1,
        sample.rate()
    );
}

/// One failover trial as it finishes (`trial` counts from 0), with the last refusal.
pub fn print_trial(system: &str, trial: usize, killed: &str, f: &Failover) {
    println!(
        "failover {} {system}: killed {killed} -> acknowledged by {} after {:.3} s ({} refused first)",
        trial + 1,
        f.by,
        f.time.as_secs_f64(),
        f.refused
    );
    if let Some(last) = &f.last_refusal {
        println!("  last refusal: {last}");
    }
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

fn mib(rss: &[Option<u64>]) -> String {
    rss.iter()
        .map(|r| r.map_or("-".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The largest of `rss` (KiB).
fn largest(rss: &[Option<u64>]) -> Option<u64> {
    rss.iter().flatten().copied().max()
}

/// Resident memory of every member (MiB) at one `moment`, with the orch/etcd ratio of
/// the largest member of each.
pub fn print_memory(moment: &str, orch: &[Option<u64>], etcd: Option<&[Option<u64>]>) {
    let etcd_cells = etcd.map_or("(skipped)".to_owned(), mib);
    let ratio = match (largest(orch), etcd.and_then(largest)) {
        (Some(o), Some(e)) if e > 0 => format!("{:.2}", o as f64 / e as f64),
        _ => "-".to_owned(),
    };
    println!(
        "RSS MiB {moment}: orch {}  etcd {}  orch/etcd (largest) {ratio}",
        mib(orch),
        etcd_cells
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let us: Vec<u32> = (1..=100).rev().map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&us, 0.0), 1.0);
        assert_eq!(percentile_ms(&us, 50.0), 51.0);
        assert_eq!(percentile_ms(&us, 99.0), 99.0);
        assert_eq!(percentile_ms(&us, 100.0), 100.0);
        assert_eq!(percentile_ms(&[1500], 99.0), 1.5);
        assert!(percentile_ms(&[], 50.0).is_nan());
    }

    #[test]
    fn a_line_keeps_every_round() {
        let mut line = Line::new();
        for (acked, us) in [(10, 1000), (30, 3000)] {
            line.add(&Sample {
                acked,
                wall: Duration::from_secs(1),
                latencies_us: vec![us; acked as usize],
            });
        }
        assert_eq!(line.rates, vec![10.0, 30.0]);
        assert_eq!(line.total.rate(), 20.0);
        assert_eq!(line.total.latencies_us.len(), 40);
    }

    #[test]
    fn medians_and_memory() {
        let s = Duration::from_secs;
        assert_eq!(median(&[s(3), s(1), s(2)]), s(2));
        assert_eq!(median(&[]), Duration::ZERO);
        assert_eq!(mib(&[Some(2048), None]), "2 -");
        assert_eq!(largest(&[Some(1), None, Some(5)]), Some(5));
        assert_eq!(largest(&[None]), None);
    }
}
