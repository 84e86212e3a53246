//! The client side, the same for both systems: keep-alive workers that put in a loop
//! and time each put, and a single writer that times a leader failover.

use crate::error::BenchError;
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the failover writer starts a put after the kill.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// How long one put of the failover writer may take before it counts as refused (an
/// etcd member without a leader holds a put until its own timeout).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Puts the failover writer gets acknowledged by every member before the kill.
const FAILOVER_WARMUP: u32 = 5;

/// What an answer to a put says.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed.
    Acked,
    /// Not committed (the answer or the transport error, for the report).
    Refused(String),
}

/// One system under test as the client sees it: how a put is asked and what its
/// answer means. Everything else (connections, timing, retries) is shared.
pub trait Target: Send + Sync + 'static {
    /// The system's name in the table (`orch`, `etcd`).
    fn name(&self) -> &'static str;
    /// A client of its own for one worker; it keeps one connection alive.
    fn client(&self) -> Result<reqwest::Client, BenchError>;
    /// The request that puts value number `seq` on member `endpoint` (`host:port`).
    fn put(&self, client: &reqwest::Client, endpoint: &str, seq: u64) -> reqwest::RequestBuilder;
    /// What the answer `status` + `body` to a put says.
    fn outcome(&self, status: StatusCode, body: &[u8]) -> Outcome;
}

/// A plain HTTP/1.1 keep-alive client builder both targets start from.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .connect_timeout(Duration::from_secs(2))
}

/// The numbers of one load run.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Puts acknowledged in the timed window.
    pub acked: u64,
    /// Length of the timed window.
    pub wall: Duration,
    /// Latency of each acknowledged put, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl Sample {
    /// Acknowledged puts per second.
    pub fn rate(&self) -> f64 {
        self.acked as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Add another run's numbers to these.
    pub fn merge(&mut self, other: &Sample) {
        self.acked += other.acked;
        self.wall += other.wall;
        self.latencies_us.extend_from_slice(&other.latencies_us);
    }
}

/// The next value number: unique over the whole run, so every put is a new object.
static SEQ: AtomicU64 = AtomicU64::new(0);

fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// One put on `endpoint`: its outcome (a transport error is `Refused`).
async fn put_once<T: Target + ?Sized>(
    target: &T,
    client: &reqwest::Client,
    endpoint: &str,
    seq: u64,
    timeout: Option<Duration>,
) -> Outcome {
    let mut request = target.put(client, endpoint, seq);
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return Outcome::Refused(format!("send: {e}")),
    };
    let status = answer.status();
    match answer.bytes().await {
        Ok(body) => target.outcome(status, &body),
        Err(e) => Outcome::Refused(format!("read the answer: {e}")),
    }
}

/// `concurrency` workers, each with its own keep-alive connection to `endpoint`, put
/// for `duration` after one untimed put each (which opens the connection).
pub async fn measure(
    target: Arc<dyn Target>,
    endpoint: &str,
    concurrency: usize,
    duration: Duration,
) -> Result<Sample, BenchError> {
    let start = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let target = Arc::clone(&target);
        let start = Arc::clone(&start);
        let endpoint = endpoint.to_owned();
        let client = target.client()?;
        workers.push(tokio::spawn(async move {
            let warm = next_seq();
            let first = put_once(&*target, &client, &endpoint, warm, None).await;
            start.wait().await;
            check(&*target, &endpoint, warm, first)?;
            let deadline = Instant::now() + duration;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let seq = next_seq();
                let t0 = Instant::now();
                let outcome = put_once(&*target, &client, &endpoint, seq, None).await;
                let took = t0.elapsed();
                check(&*target, &endpoint, seq, outcome)?;
                latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            }
            Ok::<_, BenchError>(latencies)
        }));
    }
    start.wait().await;
    let t0 = Instant::now();
    let mut sample = Sample::default();
    let mut failed = None;
    for worker in workers {
        match worker.await {
            Ok(Ok(latencies)) => sample.latencies_us.extend(latencies),
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(e) => {
                failed = failed.or(Some(BenchError::Worker {
                    target: target.name(),
                    why: e.to_string(),
                }))
            }
        }
    }
    sample.wall = t0.elapsed();
    sample.acked = sample.latencies_us.len() as u64;
    match failed {
        Some(e) => Err(e),
        None => Ok(sample),
    }
}

fn check<T: Target + ?Sized>(
    target: &T,
    endpoint: &str,
    seq: u64,
    outcome: Outcome,
) -> Result<(), BenchError> {
    match outcome {
        Outcome::Acked => Ok(()),
        other => Err(BenchError::Put {
            target: target.name(),
            seq,
            endpoint: endpoint.to_owned(),
            why: format!("{other:?}"),
        }),
    }
}

/// How one failover went.
#[derive(Clone, Debug)]
pub struct Failover {
    /// From the SIGKILL of the leader to the first acknowledged put.
    pub time: Duration,
    /// Puts that were answered (or timed out) without an acknowledgement first.
    pub refused: u32,
    /// The last of those answers, if any (what the client saw meanwhile).
    pub last_refusal: Option<String>,
    /// The member that acknowledged it.
    pub by: String,
}

/// One writer warms a connection to every member with a few acknowledged puts (a
/// follower passes them to the leader), calls `kill` (which SIGKILLs
/// `members[leader]` and reaps it, so its sockets are closed), then starts a put every
/// [`PROBE_EVERY`] on the surviving members in turn, without waiting for earlier ones
/// to answer. The time is from just before the kill to the first acknowledgement, so
/// neither a member that answers "no leader" at once nor one that holds the put until
/// a leader exists is favoured; its resolution is the probe interval.
pub async fn failover(
    target: Arc<dyn Target>,
    members: &[String],
    leader: usize,
    give_up: Duration,
    kill: impl FnOnce(),
) -> Result<Failover, BenchError> {
    let client = target.client()?;
    for member in members {
        for _ in 0..FAILOVER_WARMUP {
            let seq = next_seq();
            let outcome = put_once(&*target, &client, member, seq, None).await;
            check(&*target, member, seq, outcome)?;
        }
    }
    let survivors: Vec<&String> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, m)| m)
        .collect();
    let killed = Instant::now();
    kill();
    let mut probes = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    let mut started = 0_usize;
    let mut refused = 0;
    let mut last: Option<String> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if killed.elapsed() >= give_up {
                    break;
                }
                let member = survivors[started % survivors.len()].clone();
                started += 1;
                let (target, client) = (Arc::clone(&target), client.clone());
                probes.spawn(async move {
                    let outcome =
                        put_once(&*target, &client, &member, next_seq(), Some(PROBE_TIMEOUT))
                            .await;
                    (Instant::now(), member, outcome)
                });
            }
            Some(done) = probes.join_next() => {
                let (at, member, outcome) = done.map_err(|e| BenchError::Worker {
                    target: target.name(),
                    why: e.to_string(),
                })?;
                match outcome {
                    Outcome::Acked => {
                        return Ok(Failover {
                            time: at - killed,
                            refused,
                            last_refusal: last,
                            by: member,
                        });
                    }
                    Outcome::Refused(why) => {
                        refused += 1;
                        last = Some(format!("{member}: {why}"));
                    }
                }
            }
        }
    }
    Err(BenchError::NoFailover {
        target: target.name(),
        secs: give_up.as_secs(),
        last: last.unwrap_or_else(|| "no answer".to_owned()),
    })
}
