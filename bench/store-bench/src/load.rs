//! The client side, the same for both systems: keep-alive workers that put in a loop
//! and time each put, and a single writer that times a leader failover.

use crate::error::BenchError;
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one put may take before the failover writer gives up on it and tries
/// another member.
const FAILOVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after every member refused in turn (no leader yet), before the next round.
const FAILOVER_ROUND_PAUSE: Duration = Duration::from_millis(20);
/// Puts the failover writer gets acknowledged before it kills the leader.
const FAILOVER_WARMUP: u32 = 20;

/// What an answer to a put says.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed.
    Acked,
    /// Not done here; the answer names the leader (`host:port`) when it knows one.
    NotLeader(Option<String>),
    /// Refused for another reason (the answer, for the report).
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
    /// From the SIGKILL of the leader to the next acknowledged put.
    pub time: Duration,
    /// Puts tried (and not acknowledged) in between.
    pub attempts: u32,
    /// The member that acknowledged it.
    pub by: String,
}

/// One writer puts in a loop on `members[leader]`; after a few acknowledged puts it
/// calls `kill` (which SIGKILLs the leader and reaps it, so its sockets are closed) and
/// keeps writing: on a refusal it goes to the leader the answer names, else to the next
/// member in turn (pausing briefly after a full round), each put with a short timeout.
/// The time is from just before the kill to the next acknowledged put.
pub async fn failover(
    target: &dyn Target,
    members: &[String],
    leader: usize,
    give_up: Duration,
    kill: impl FnOnce(),
) -> Result<Failover, BenchError> {
    let client = target.client()?;
    let mut at = leader;
    for _ in 0..FAILOVER_WARMUP {
        let seq = next_seq();
        let outcome = put_once(target, &client, &members[at], seq, None).await;
        check(target, &members[at], seq, outcome)?;
    }
    let killed = Instant::now();
    kill();
    let mut attempts = 0;
    let mut refused_in_row = 0;
    let mut last = String::new();
    while killed.elapsed() < give_up {
        let outcome = put_once(
            target,
            &client,
            &members[at],
            next_seq(),
            Some(FAILOVER_REQUEST_TIMEOUT),
        )
        .await;
        if outcome == Outcome::Acked {
            return Ok(Failover {
                time: killed.elapsed(),
                attempts,
                by: members[at].clone(),
            });
        }
        attempts += 1;
        refused_in_row += 1;
        last = format!("{} answered {outcome:?}", members[at]);
        let named = match outcome {
            Outcome::NotLeader(Some(leader)) => members.iter().position(|m| *m == leader),
            _ => None,
        };
        at = match named {
            Some(i) if i != at => i,
            _ => (at + 1) % members.len(),
        };
        if refused_in_row >= members.len() {
            refused_in_row = 0;
            tokio::time::sleep(FAILOVER_ROUND_PAUSE).await;
        }
    }
    Err(BenchError::NoFailover {
        target: target.name(),
        secs: give_up.as_secs(),
        last,
    })
}
