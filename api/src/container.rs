//! Containers as the engine's API shows them: what to create, what one looks like,
//! and log lines.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /v1/containers`: what to run (the flags of `orch container run`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerCreate {
    /// The image (name, digest or id); it must be in the engine.
    pub image: String,
    /// A unique name (default: generated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Replaces the image's CMD.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// Replaces the image's ENTRYPOINT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries over the image's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub read_only: bool,
    /// `HOST:CONTAINER[:ro]` bind mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<String>,
    /// `PATH[:size=N,mode=M,ro]` tmpfs mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    pub no_new_privileges: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Remove the container when it exits.
    pub auto_remove: bool,
    /// `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// The signal `stop` sends first (default: the image's, else SIGTERM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// Overrides the image's HEALTHCHECK.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::service::Healthcheck>,
    /// Memory limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Memory soft limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u64>,
    /// Memory plus swap in bytes (`-1`: unlimited swap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// CPU time as a number of CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Relative CPU weight (1024 is the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// Most processes at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Capabilities to add to Docker's default set (`NET_ADMIN`, `ALL`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities to drop from it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Every capability, no seccomp filter, all devices, /sys writable.
    pub privileged: bool,
    /// Give the process a terminal.
    pub tty: bool,
    /// Extra `/etc/hosts` entries, `NAME:ADDRESS` (`--add-host`); the address
    /// `host-gateway` is the engine's default bridge gateway (the host).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Run an init as pid 1 that forwards signals to the command and reaps orphans
    /// (`--init`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// Keep its stdin open for attached clients.
    pub open_stdin: bool,
    /// `name=soft[:hard]` rlimits (`nofile=1024:2048`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<String>,
    /// Kernel settings of the container's namespaces (`net.ipv4.ip_forward`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// Host devices passed in: `HOST[:CONTAINER[:PERMS]]` (`/dev/fuse`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// `bridge` (default: the networks below, else the engine's default network),
    /// `host`, `none` or `container:NAME|ID` (share that container's network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Networks to join (in bridge mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<crate::network::NetworkAttach>,
    /// Published ports: `[IP:][HOST[-END]:]CONTAINER[-END][/tcp|udp]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// A user namespace mapping user ids `CONTAINER:HOST:COUNT` (`0:100000:65536`);
    /// empty: the host's user ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uidmap: Vec<String>,
    /// Its group ids the same way (default: as `uidmap`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gidmap: Vec<String>,
    /// `host`: the host's user ids even when the engine remaps (`--userns-remap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// Size of the container's `/dev/shm` tmpfs in bytes (default 64 MiB, as Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// Supplementary groups of its process: names from the image's /etc/group, or
    /// numeric ids (`--group-add`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Search domains of its /etc/resolv.conf (`.` alone: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// Resolver options of its /etc/resolv.conf (`ndots:2`, `timeout:1`, `rotate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// Its processes' OOM score adjustment, -1000 (never killed for memory) to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// The NIS domain name of its UTS namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// `private` (default; `shareable` is the same) or `host`: the host's IPC
    /// namespace and /dev/shm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<String>,
    /// `host`: the host's PID namespace (default: its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<String>,
    /// `host`: the host's UTS namespace, its host and domain names (default: its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts_mode: Option<String>,
}

/// Where a container is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ContainerStatus {
    /// Made, not started.
    Created,
    /// Its process runs.
    Running {
        /// The process id on the host.
        pid: i32,
        /// RFC 3339.
        started_at: String,
    },
    /// Its process ended.
    Exited {
        exit_code: i32,
        /// The kernel killed it for running out of memory.
        oom_killed: bool,
        started_at: String,
        finished_at: String,
    },
}

/// A container as `orch container ls` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSummary {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// The image as it was named at creation.
    pub image: String,
    /// The command line.
    pub command: Vec<String>,
    /// RFC 3339.
    pub created: String,
    #[serde(flatten)]
    pub status: ContainerStatus,
}

/// Everything about one container (`orch container inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDetail {
    #[serde(flatten)]
    pub summary: ContainerSummary,
    /// The image's manifest digest.
    pub image_digest: String,
    pub hostname: String,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `uid:gid`.
    pub user: String,
    pub read_only: bool,
    pub labels: BTreeMap<String, String>,
    /// Where its state and logs live on the host.
    pub dir: String,
    /// Capabilities its process has.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Its processes are frozen (`pause`).
    #[serde(default)]
    pub paused: bool,
    pub privileged: bool,
    /// The restart policy.
    pub restart_policy: String,
    /// Restarts so far.
    pub restart_count: u32,
    /// `starting`, `healthy` or `unhealthy` when it has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The last health probes (time, exit code, output), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_log: Vec<(String, i32, String)>,
    /// `bridge`, `host`, `none` or `container:ID`.
    #[serde(default)]
    pub network_mode: String,
    /// Its places on networks (name -> endpoint).
    #[serde(default)]
    pub networks: BTreeMap<String, crate::network::Endpoint>,
    /// Its published ports.
    #[serde(default)]
    pub ports: Vec<crate::network::PortBinding>,
}

/// `POST /v1/containers`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCreated {
    pub id: String,
    pub name: String,
}

/// `POST /v1/containers/{id}/wait`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerExit {
    pub exit_code: i32,
    pub oom_killed: bool,
}

/// One line of a container's log (as stored: one JSON document per line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The line, with its newline when it had one.
    pub log: String,
}

/// `POST /v1/containers/{id}/exec`: a process to start in a running container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecCreate {
    /// The command line (required).
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries over the container's environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `USER[:GROUP]` (default: the container's user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory (default: the container's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Allocate a terminal (stdout and stderr are then one stream).
    pub tty: bool,
}

/// The frames of an exec stream (after the HTTP upgrade): one byte of kind, four
/// bytes of big-endian length, the payload.
pub mod frame {
    /// Client to engine: bytes for the process's stdin.
    pub const STDIN: u8 = 0;
    /// Engine to client: bytes the process wrote to stdout (or to its terminal).
    pub const STDOUT: u8 = 1;
    /// Engine to client: bytes the process wrote to stderr.
    pub const STDERR: u8 = 2;
    /// Engine to client: the exit code (4 bytes, big-endian i32); the last frame.
    pub const EXIT: u8 = 3;
    /// Engine to client: the exec could not start (UTF-8 message); the last frame.
    pub const ERROR: u8 = 4;
    /// Client to engine: no more stdin.
    pub const STDIN_CLOSE: u8 = 5;
    /// Client to engine: the terminal's size (rows, cols: two big-endian u16).
    pub const RESIZE: u8 = 6;

    /// One frame.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Frame {
        pub kind: u8,
        pub payload: Vec<u8>,
    }

    /// The bytes of a frame.
    pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Frames out of a byte stream that arrives in pieces.
    #[derive(Default)]
    pub struct Decoder {
        buf: Vec<u8>,
    }

    /// Frames longer than this are refused (a broken or hostile peer).
    pub const MAX_FRAME: usize = 1 << 20;

    impl Decoder {
        /// Add bytes that arrived.
        pub fn push(&mut self, bytes: &[u8]) {
            self.buf.extend_from_slice(bytes);
        }

        /// The next whole frame, if one has arrived; an error for an oversized frame.
        pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
            if self.buf.len() < 5 {
                return Ok(None);
            }
            let len =
                u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
            if len > MAX_FRAME {
                return Err(format!(
                    "frame of {len} bytes is over the {MAX_FRAME}-byte limit"
                ));
            }
            if self.buf.len() < 5 + len {
                return Ok(None);
            }
            let kind = self.buf[0];
            let payload = self.buf[5..5 + len].to_vec();
            self.buf.drain(..5 + len);
            Ok(Some(Frame { kind, payload }))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn frames_survive_any_split() {
            let mut bytes = encode(STDOUT, b"hello");
            bytes.extend(encode(EXIT, &3i32.to_be_bytes()));
            for cut in 0..bytes.len() {
                let mut d = Decoder::default();
                let mut got = Vec::new();
                for part in [&bytes[..cut], &bytes[cut..]] {
                    d.push(part);
                    while let Some(f) = d.next_frame().unwrap() {
                        got.push(f);
                    }
                }
                assert_eq!(got.len(), 2, "cut at {cut}");
                assert_eq!(got[0].payload, b"hello");
                assert_eq!(got[1].kind, EXIT);
            }
            let mut d = Decoder::default();
            d.push(&[STDIN, 0xff, 0xff, 0xff, 0xff]);
            assert!(d.next_frame().is_err());
        }
    }
}

/// `GET /v1/containers/{id}/stats`: what a running container uses now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    /// Bytes of memory charged now.
    pub memory_usage: u64,
    /// The memory limit, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// CPU time used so far, nanoseconds (sample twice for a rate).
    pub cpu_usage_ns: u64,
    pub pids: u64,
    /// When these were read (RFC 3339).
    pub read_at: String,
}
