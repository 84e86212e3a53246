//! An agent's session: open it on the leader (any manager names the leader), then
//! heartbeat at the period the cluster sets, follow the node's assignments (a stream
//! of whole sets) and send task status reports in batches. On any failure the agent
//! tries the next manager it knows (the list comes back with every heartbeat),
//! opening a new session; reports not yet accepted are sent on the next one.

use api::client::ClientError;
use api::client::managers::post_to_leader;
use api::cluster::{NodeDescription, NodeRole};
use api::error::ErrorCode;
use api::logs::LogPublish;
use api::session::{Assignments, Heartbeat, SessionInfo, SessionOpen, StatusBatch, TaskReport};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The most reports sent in one batch.
const BATCH: usize = 256;

/// An idle assignment stream sends an empty line every few seconds; this much
/// silence means the connection is dead.
const STREAM_SILENCE: Duration = Duration::from_secs(15);

/// Where the session delivers assignments and where it takes reports from.
pub struct Work {
    /// The latest assignment set (the executor follows it).
    pub assignments: watch::Sender<Assignments>,
    /// Task status changes to send (the executor produces them).
    pub reports: mpsc::Receiver<TaskReport>,
    /// Volumes removed as the assignments asked, to confirm (the executor produces
    /// them; sent with the task reports).
    pub volumes_removed: mpsc::Receiver<String>,
    /// Log batches to publish (the log readers produce them; sent on the open
    /// session, dropped when it breaks).
    pub logs: mpsc::Receiver<LogPublish>,
    /// The role the managers give this node, as the last session answer said (the
    /// certificate's renewal follows it).
    pub role: watch::Sender<Option<NodeRole>>,
}

/// What a session needs.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// A client with the node's certificate (mutual TLS).
    pub http: reqwest::Client,
    /// Managers to try (`host:port`), e.g. the one joined and those it named.
    pub managers: Vec<String>,
    /// What this host has.
    pub description: NodeDescription,
    /// The address other nodes reach this node at.
    pub addr: Option<String>,
}

/// What the session loop reports to its owner (for logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A session is open on the manager at `leader`.
    Opened { leader: String, session_id: String },
    /// The session broke; the agent retries.
    Lost { why: String },
}

/// A node description of this host (hostname, cpus, memory, platform).
pub fn describe_host(engine_version: &str) -> NodeDescription {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    NodeDescription {
        hostname,
        cpus,
        memory_bytes,
        os: std::env::consts::OS.to_owned(),
        arch: arch.to_owned(),
        engine_version: engine_version.to_owned(),
        engine_labels: Default::default(),
    }
}

/// Keep a session open until the future is dropped; `report` hears of changes.
pub async fn run(config: SessionConfig, mut work: Work, mut report: impl FnMut(SessionEvent)) {
    let mut unsent = Unsent::default();
    let mut managers = config.managers.clone();
    let open = SessionOpen {
        description: config.description.clone(),
        addr: config.addr.clone(),
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        let opened: Result<SessionInfo, ClientError> = post_to_leader(
            &config.http,
            &managers,
            "/v1/session",
            "open a session",
            &open,
        )
        .await;
        let info = match opened {
            Ok(info) => info,
            Err(e) => {
                report(SessionEvent::Lost { why: e.to_string() });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                let turn = 1.min(managers.len());
                managers.rotate_left(turn);
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        work.role
            .send_if_modified(|role| replace_if_other(role, info.role));
        if !info.managers.is_empty() {
            managers = info.managers.clone();
        }
        let leader = managers.first().cloned().unwrap_or_default();
        report(SessionEvent::Opened {
            leader: leader.clone(),
            session_id: info.session_id.clone(),
        });
        let session_id = info.session_id.clone();
        let why = tokio::select! {
            why = beat(&config.http, &leader, info, &mut managers, &work.role) => why,
            why = follow(&config.http, &leader, &session_id, &work.assignments) => why,
            why = send_reports(
                &config.http,
                &leader,
                &session_id,
                (&mut work.reports, &mut work.volumes_removed),
                &mut unsent,
            ) => why,
            why = send_logs(&config.http, &leader, &session_id, &mut work.logs) => why,
        };
        report(SessionEvent::Lost { why });
        // Not in a tight loop when the leader keeps refusing something.
        tokio::time::sleep(backoff).await;
        // The leader failed: start with the others.
        if let Some(pos) = managers.iter().position(|m| *m == leader) {
            let failed = managers.remove(pos);
            managers.push(failed);
        }
    }
}

/// Heartbeat the leader until it fails; returns why.
async fn beat(
    http: &reqwest::Client,
    leader: &str,
    mut info: SessionInfo,
    managers: &mut Vec<String>,
    role: &watch::Sender<Option<NodeRole>>,
) -> String {
    loop {
        tokio::time::sleep(Duration::from_millis(info.heartbeat_ms.max(50))).await;
        let req = Heartbeat {
            session_id: info.session_id.clone(),
        };
        // A busy leader (or this host starting a hundred containers) may answer
        // late: waiting is cheaper than dropping the session, which makes the node
        // look down and orphans its tasks. The wait ends before the leader's grace
        // period (3 heartbeats by default) would.
        let answer = tokio::time::timeout(
            Duration::from_millis((info.heartbeat_ms * 5 / 2).max(1000)),
            api::client::managers::post::<_, SessionInfo>(
                http,
                leader,
                "/v1/session/heartbeat",
                "heartbeat",
                &req,
            ),
        )
        .await;
        match answer {
            Ok(Ok(next)) => {
                if !next.managers.is_empty() {
                    *managers = next.managers.clone();
                }
                role.send_if_modified(|role| replace_if_other(role, next.role));
                info = next;
            }
            Ok(Err(ClientError::Api(e))) if e.code == ErrorCode::NotFound => {
                return format!("the leader forgot the session: {e}");
            }
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return format!("no heartbeat answer from {leader} in time"),
        }
    }
}

/// Sets `role` to `next` if it is another; says whether it changed.
fn replace_if_other(role: &mut Option<NodeRole>, next: Option<NodeRole>) -> bool {
    let changed = *role != next;
    *role = next;
    changed
}

/// Follows the assignment stream of the session; returns why it ended.
async fn follow(
    http: &reqwest::Client,
    leader: &str,
    session_id: &str,
    assignments: &watch::Sender<Assignments>,
) -> String {
    let url = format!("https://{leader}/v1/session/assignments?session_id={session_id}");
    let answer = match http.get(&url).send().await {
        Ok(answer) => answer,
        Err(e) => return format!("open the assignment stream at {leader}: {e}"),
    };
    if !answer.status().is_success() {
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        return format!("the assignment stream at {leader} was refused: HTTP {status}: {body}");
    }
    let mut answer = answer;
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(STREAM_SILENCE, answer.chunk()).await {
            Err(_) => return format!("the assignment stream at {leader} went silent"),
            Ok(Err(e)) => return format!("the assignment stream at {leader} broke: {e}"),
            Ok(Ok(None)) => return format!("the assignment stream at {leader} ended"),
            Ok(Ok(Some(chunk))) => chunk,
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Assignments>(&line) {
                Ok(set) => {
                    assignments.send_replace(set);
                }
                Err(e) => return format!("an assignment set from {leader} is not valid: {e}"),
            }
        }
    }
}

/// Reports and volume confirmations not yet accepted by a manager.
#[derive(Default)]
struct Unsent {
    reports: Vec<TaskReport>,
    volumes: Vec<String>,
}

impl Unsent {
    fn is_empty(&self) -> bool {
        self.reports.is_empty() && self.volumes.is_empty()
    }

    fn clear(&mut self) {
        self.reports.clear();
        self.volumes.clear();
    }
}

/// Sends reports and volume confirmations as they come, in batches; a batch not
/// accepted stays in `unsent`.
async fn send_reports(
    http: &reqwest::Client,
    leader: &str,
    session_id: &str,
    (reports, volumes): (&mut mpsc::Receiver<TaskReport>, &mut mpsc::Receiver<String>),
    unsent: &mut Unsent,
) -> String {
    loop {
        if unsent.is_empty() {
            tokio::select! {
                Some(report) = reports.recv() => unsent.reports.push(report),
                Some(volume) = volumes.recv() => unsent.volumes.push(volume),
                else => return std::future::pending().await,
            }
        }
        while unsent.reports.len() < BATCH {
            match reports.try_recv() {
                Ok(report) => unsent.reports.push(report),
                Err(_) => break,
            }
        }
        while let Ok(volume) = volumes.try_recv() {
            unsent.volumes.push(volume);
        }
        let batch = StatusBatch {
            session_id: session_id.to_owned(),
            reports: unsent.reports.clone(),
            volumes_removed: unsent.volumes.clone(),
        };
        let sent = api::client::managers::post::<_, serde_json::Value>(
            http,
            leader,
            "/v1/session/status",
            "report task status",
            &batch,
        )
        .await;
        match sent {
            Ok(_) => unsent.clear(),
            // The reports were refused (e.g. a task moved to another node): drop
            // them, the next set of assignments says what to do. The volume
            // confirmations were not looked at: they go again.
            Err(ClientError::Api(e)) if e.code == ErrorCode::PermissionDenied => {
                unsent.reports.clear()
            }
            Err(e) => return format!("report task status: {e}"),
        }
    }
}

/// Publishes log batches as they come; a subscription that ended (or a task not ours)
/// drops its batch.
async fn send_logs(
    http: &reqwest::Client,
    leader: &str,
    session_id: &str,
    logs: &mut mpsc::Receiver<LogPublish>,
) -> String {
    loop {
        let Some(mut batch) = logs.recv().await else {
            return std::future::pending().await;
        };
        session_id.clone_into(&mut batch.session_id);
        let sent = api::client::managers::post::<_, serde_json::Value>(
            http,
            leader,
            "/v1/session/logs",
            "publish task logs",
            &batch,
        )
        .await;
        match sent {
            Ok(_) => {}
            Err(ClientError::Api(e))
                if matches!(e.code, ErrorCode::NotFound | ErrorCode::PermissionDenied) => {}
            Err(e) => return format!("publish the logs of task {}: {e}", batch.task),
        }
    }
}
