//! Three `orch manager` processes on loopback (`init`, then two `join`s with the
//! manager token it prints), and orch as a [`Target`]: a put creates a config
//! (`POST /v1/configs`) with the bearer token of the saved CLI context, over TLS that
//! pins the cluster CA, as the CLI does.

use crate::error::BenchError;
use crate::load::{Outcome, Target, client_builder};
use crate::procs::{RunDir, Server, free_port, log_text, wait_until};
use api::error::ErrorEnvelope;
use reqwest::StatusCode;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a manager may take to print its tokens or to join.
const START_SECS: u64 = 60;

/// The part of the CLI context (`$ORCH_CONFIG_DIR/context.json`) the bench needs.
#[derive(Deserialize)]
struct Context {
    ca_cert_pem: String,
    token: String,
}

/// The part of `GET /v1/cluster` the bench needs.
#[derive(Deserialize)]
struct ClusterView {
    leader: Option<LeaderView>,
}

#[derive(Deserialize)]
struct LeaderView {
    addr: String,
}

/// A running 3-manager cluster.
pub struct OrchCluster {
    bin: PathBuf,
    dir: PathBuf,
    /// The members, `None` while killed.
    servers: Vec<Option<Server>>,
    /// Their API addresses (`127.0.0.1:port`), in member order.
    pub addrs: Vec<String>,
}

impl OrchCluster {
    /// `orch manager init` as m1, then m2 and m3 join through m1; data under `run/orch`.
    pub fn start(bin: &Path, run: &RunDir) -> Result<(OrchCluster, OrchTarget), BenchError> {
        let dir = run.path().join("orch");
        std::fs::create_dir_all(&dir).map_err(|source| BenchError::File {
            what: "create",
            path: dir.clone(),
            source,
        })?;
        let mut cluster = OrchCluster {
            bin: bin.to_owned(),
            dir,
            servers: Vec::new(),
            addrs: Vec::new(),
        };
        for _ in 0..3 {
            cluster.addrs.push(format!("127.0.0.1:{}", free_port()?));
        }
        cluster.servers.push(Some(cluster.spawn(0, &["init"])?));
        let token = cluster.wait_for_token()?;
        for member in 1..3 {
            let first = cluster.addrs[0].clone();
            let server = cluster.spawn(member, &["join", "--token", &token, &first])?;
            cluster.servers.push(Some(server));
            cluster.wait_for_log(member, "joined as a manager")?;
        }
        let target = OrchTarget::from_context(&cluster.dir.join("m1.cfg/context.json"))?;
        Ok((cluster, target))
    }

    fn name(member: usize) -> String {
        format!("m{}", member + 1)
    }

    /// `orch manager <args> --listen .. --data-dir .. --socket ..` for `member`.
    fn spawn(&self, member: usize, args: &[&str]) -> Result<Server, BenchError> {
        let name = Self::name(member);
        let mut command = Command::new(&self.bin);
        command
            .arg("manager")
            .args(args)
            .args(["--listen", &self.addrs[member]])
            .arg("--data-dir")
            .arg(self.dir.join(&name))
            .arg("--socket")
            .arg(self.dir.join(format!("{name}.sock")))
            .env("ORCH_CONFIG_DIR", self.dir.join(format!("{name}.cfg")))
            .env_remove("ORCH_HOST");
        Server::spawn(command, &self.dir, &name)
    }

    /// The manager join token m1 printed.
    fn wait_for_token(&self) -> Result<String, BenchError> {
        let deadline = Instant::now() + Duration::from_secs(START_SECS);
        loop {
            let out = log_text(&self.dir, "m1", "out");
            if let Some(token) = out
                .split_whitespace()
                .find(|w| w.starts_with("ORCH1-") && w.contains("-M-"))
            {
                return Ok(token.to_owned());
            }
            if Instant::now() > deadline {
                return Err(BenchError::NotReady {
                    what: "orch manager init prints the manager token".to_owned(),
                    secs: START_SECS,
                    last: log_text(&self.dir, "m1", "err"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `member`'s stderr says `text`.
    fn wait_for_log(&self, member: usize, text: &str) -> Result<(), BenchError> {
        let name = Self::name(member);
        let deadline = Instant::now() + Duration::from_secs(START_SECS);
        loop {
            let err = log_text(&self.dir, &name, "err");
            if err.contains(text) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::NotReady {
                    what: format!("orch {name} logs {text:?}"),
                    secs: START_SECS,
                    last: err,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL `member` (and reap it).
    pub fn kill(&mut self, member: usize) {
        if let Some(mut server) = self.servers[member].take() {
            server.kill();
        }
    }

    /// Start a killed `member` again from its data directory (`orch manager run`).
    pub fn restart(&mut self, member: usize) -> Result<(), BenchError> {
        if self.servers[member].is_none() {
            self.servers[member] = Some(self.spawn(member, &["run"])?);
        }
        Ok(())
    }

    /// Whether `member` runs.
    pub fn is_up(&self, member: usize) -> bool {
        self.servers[member].is_some()
    }

    /// The resident memory (KiB) of each manager, in order (`None`: not running).
    pub fn rss_kib(&self) -> Vec<Option<u64>> {
        self.servers
            .iter()
            .map(|s| s.as_ref().and_then(Server::rss_kib))
            .collect()
    }
}

/// Orch's API as a target: config creates with the context's token, CA pinned.
pub struct OrchTarget {
    tls: rustls::ClientConfig,
    auth: String,
    value: String,
}

impl OrchTarget {
    fn from_context(path: &Path) -> Result<OrchTarget, BenchError> {
        let bytes = std::fs::read(path).map_err(|source| BenchError::File {
            what: "read the CLI context",
            path: path.to_owned(),
            source,
        })?;
        let context: Context =
            serde_json::from_slice(&bytes).map_err(|source| BenchError::Context {
                path: path.to_owned(),
                source,
            })?;
        let ca = manager::ca::CaCert::from_pem(&context.ca_cert_pem).map_err(BenchError::Ca)?;
        let mut tls = manager::ca::pinned_client_config(ca.digest()).map_err(BenchError::Ca)?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(OrchTarget {
            tls,
            auth: format!("Bearer {}", context.token),
            value: data_encoding::BASE64.encode(&crate::payload()),
        })
    }

    /// The leader's address as `member` sees it (`GET /v1/cluster`), if it knows one.
    pub async fn leader(&self, member: &str) -> Option<String> {
        let client = self.client().ok()?;
        let answer = client
            .get(format!("https://{member}/v1/cluster"))
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let view: ClusterView = serde_json::from_slice(&answer.bytes().await.ok()?).ok()?;
        view.leader.map(|l| l.addr)
    }
}

impl Target for OrchTarget {
    fn name(&self) -> &'static str {
        "orch"
    }

    fn client(&self) -> Result<reqwest::Client, BenchError> {
        client_builder()
            .tls_backend_preconfigured(self.tls.clone())
            .build()
            .map_err(|source| BenchError::Client {
                target: "orch",
                source,
            })
    }

    fn put(&self, client: &reqwest::Client, endpoint: &str, seq: u64) -> reqwest::RequestBuilder {
        let body = format!(r#"{{"id":"bench-{seq}","data":"{}"}}"#, self.value);
        client
            .post(format!("https://{endpoint}/v1/configs"))
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }

    fn outcome(&self, status: StatusCode, body: &[u8]) -> Outcome {
        outcome(status, body)
    }
}

/// What orch's answer to a config create says: a refusal names the status, the error
/// code and its message.
fn outcome(status: StatusCode, body: &[u8]) -> Outcome {
    if status.is_success() {
        return Outcome::Acked;
    }
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(e) => Outcome::Refused(format!(
            "HTTP {status} ({:?}): {}",
            e.error.code, e.error.message
        )),
        Err(_) => Outcome::Refused(format!("HTTP {status}: {}", String::from_utf8_lossy(body))),
    }
}

/// The index of orch's leader in `cluster.addrs`, asking the members in turn.
pub async fn find_leader(
    cluster: &OrchCluster,
    target: &OrchTarget,
    secs: u64,
) -> Result<usize, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        for (m, addr) in cluster.addrs.iter().enumerate() {
            if !cluster.is_up(m) {
                continue;
            }
            if let Some(leader) = target.leader(addr).await
                && let Some(i) = cluster.addrs.iter().position(|a| *a == leader)
            {
                return Ok(i);
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::NotReady {
                what: "an orch leader".to_owned(),
                secs,
                last: "no manager names one".to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until a restarted orch manager knows the leader again, then let it catch up.
pub async fn wait_member(target: &OrchTarget, addr: &str, secs: u64) -> Result<(), BenchError> {
    let what = format!("restarted orch manager {addr} knows the leader");
    wait_until(&what, secs, "no leader named", || async {
        target.leader(addr).await.is_some()
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_status_code_and_message() {
        assert_eq!(outcome(StatusCode::CREATED, b"{}"), Outcome::Acked);
        let no_leader = br#"{"error":{"code":"unavailable","message":"knows of no leader"}}"#;
        assert_eq!(
            outcome(StatusCode::SERVICE_UNAVAILABLE, no_leader),
            Outcome::Refused(
                "HTTP 503 Service Unavailable (Unavailable): knows of no leader".to_owned()
            )
        );
        let conflict = br#"{"error":{"code":"conflict","message":"config bench-1 exists"}}"#;
        assert_eq!(
            outcome(StatusCode::CONFLICT, conflict),
            Outcome::Refused("HTTP 409 Conflict (Conflict): config bench-1 exists".to_owned())
        );
        assert_eq!(
            outcome(StatusCode::BAD_GATEWAY, b"proxy down"),
            Outcome::Refused("HTTP 502 Bad Gateway: proxy down".to_owned())
        );
    }
}
