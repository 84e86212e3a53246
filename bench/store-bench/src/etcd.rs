//! Three `etcd` members on loopback (Debian's etcd-server 3.4, default raft timings:
//! 100 ms heartbeat, 1 s election), and etcd as a [`Target`]: a put is
//! `POST /v3/kv/put` on its HTTP/JSON gateway with a base64 key and value.

use crate::error::BenchError;
use crate::load::{Outcome, Target, client_builder};
use crate::procs::{RunDir, Server, free_port, wait_until};
use reqwest::StatusCode;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the members may take to elect a first leader.
const START_SECS: u64 = 30;

/// The part of `POST /v3/maintenance/status` the bench needs (ids are strings: the
/// gateway writes 64-bit numbers so).
#[derive(Deserialize)]
struct Status {
    header: Header,
    #[serde(default)]
    leader: String,
}

#[derive(Deserialize)]
struct Header {
    member_id: String,
}

/// A running 3-member etcd cluster.
pub struct EtcdCluster {
    bin: PathBuf,
    dir: PathBuf,
    initial: String,
    servers: Vec<Option<Server>>,
    /// Client addresses (`127.0.0.1:port`), in member order.
    pub addrs: Vec<String>,
    peers: Vec<String>,
}

impl EtcdCluster {
    /// Start e1..e3 as a new cluster with data under `run/etcd`; returns once a leader
    /// answers puts.
    pub fn start(bin: &Path, run: &RunDir) -> Result<EtcdCluster, BenchError> {
        let dir = run.path().join("etcd");
        std::fs::create_dir_all(&dir).map_err(|source| BenchError::File {
            what: "create",
            path: dir.clone(),
            source,
        })?;
        let mut addrs = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..3 {
            addrs.push(format!("127.0.0.1:{}", free_port()?));
            peers.push(format!("127.0.0.1:{}", free_port()?));
        }
        let initial = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("e{}=http://{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            bin: bin.to_owned(),
            dir,
            initial,
            servers: Vec::new(),
            addrs,
            peers,
        };
        for member in 0..3 {
            let server = cluster.spawn(member)?;
            cluster.servers.push(Some(server));
        }
        Ok(cluster)
    }

    /// `etcd` for `member` (the same flags start it anew and restart it from its data).
    fn spawn(&self, member: usize) -> Result<Server, BenchError> {
        let name = format!("e{}", member + 1);
        let client = format!("http://{}", self.addrs[member]);
        let peer = format!("http://{}", self.peers[member]);
        let mut command = Command::new(&self.bin);
        command
            .args(["--name", &name, "--data-dir"])
            .arg(self.dir.join(&name))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--log-level", "warn", "--logger", "zap"]);
        Server::spawn(command, &self.dir, &name)
    }

    /// SIGKILL `member` (and reap it).
    pub fn kill(&mut self, member: usize) {
        if let Some(mut server) = self.servers[member].take() {
            server.kill();
        }
    }

    /// Start a killed `member` again from its data directory.
    pub fn restart(&mut self, member: usize) -> Result<(), BenchError> {
        if self.servers[member].is_none() {
            self.servers[member] = Some(self.spawn(member)?);
        }
        Ok(())
    }

    /// The resident memory (KiB) of each member, in order (`None`: not running).
    pub fn rss_kib(&self) -> Vec<Option<u64>> {
        self.servers
            .iter()
            .map(|s| s.as_ref().and_then(Server::rss_kib))
            .collect()
    }
}

/// etcd's JSON gateway as a target.
pub struct EtcdTarget {
    value: String,
}

impl EtcdTarget {
    pub fn new() -> EtcdTarget {
        EtcdTarget {
            value: data_encoding::BASE64.encode(&crate::payload()),
        }
    }

    /// Whether `member` is the leader (`None`: it does not answer).
    pub async fn is_leader(&self, member: &str) -> Option<bool> {
        let client = self.client().ok()?;
        let answer = client
            .post(format!("http://{member}/v3/maintenance/status"))
            .body("{}")
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status: Status = serde_json::from_slice(&answer.bytes().await.ok()?).ok()?;
        Some(!status.leader.is_empty() && status.leader == status.header.member_id)
    }

    /// The index of the leader among `members`, waiting up to `secs` for one.
    pub async fn wait_for_leader(
        &self,
        members: &[String],
        secs: u64,
    ) -> Result<usize, BenchError> {
        let deadline = Instant::now() + Duration::from_secs(secs.max(START_SECS));
        loop {
            for (i, member) in members.iter().enumerate() {
                if self.is_leader(member).await == Some(true) {
                    return Ok(i);
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::NotReady {
                    what: "an etcd leader".to_owned(),
                    secs: secs.max(START_SECS),
                    last: "no member says it leads".to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Target for EtcdTarget {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn client(&self) -> Result<reqwest::Client, BenchError> {
        client_builder()
            .build()
            .map_err(|source| BenchError::Client {
                target: "etcd",
                source,
            })
    }

    fn put(&self, client: &reqwest::Client, endpoint: &str, seq: u64) -> reqwest::RequestBuilder {
        let key = data_encoding::BASE64.encode(format!("bench-{seq}").as_bytes());
        let body = format!(r#"{{"key":"{key}","value":"{}"}}"#, self.value);
        client
            .post(format!("http://{endpoint}/v3/kv/put"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }

    fn outcome(&self, status: StatusCode, body: &[u8]) -> Outcome {
        if status.is_success() {
            Outcome::Acked
        } else {
            Outcome::Refused(format!("HTTP {status}: {}", String::from_utf8_lossy(body)))
        }
    }
}

/// Wait until a restarted etcd member answers its status, then let it catch up.
pub async fn wait_member(target: &EtcdTarget, addr: &str, secs: u64) -> Result<(), BenchError> {
    let what = format!("restarted etcd member {addr} answers");
    wait_until(&what, secs, "no status", || async {
        target.is_leader(addr).await.is_some()
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}
