//! `orch logs [-f] [-t] [--tail N] [--since WHEN] SERVICE|TASK`: the logs of a service's
//! tasks (or one task) from the nodes that run them, through the managers, each line
//! prefixed `NAME.SLOT@NODE |` like `docker service logs`.

use crate::manager_api::{HostArgs, List, ManagerApi, is_not_found, runtime};
use anyhow::{Context, bail};
use api::cluster::{Node, Task};
use api::logs::{LogStream, TaskLogLine};
use clap::Args;
use reqwest::Method;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// `orch logs`.
#[derive(Args)]
pub struct LogsArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Keep printing new lines until interrupted.
    #[arg(short, long)]
    follow: bool,
    /// Show each line's time.
    #[arg(short, long)]
    timestamps: bool,
    /// Only the last N lines of each task.
    #[arg(long, value_name = "N")]
    tail: Option<u64>,
    /// Only lines since a time: RFC 3339 (`2026-11-23T10:00:00Z`) or a duration ago (`10m`, `1h30m`).
    #[arg(long, value_name = "DURATION|RFC3339")]
    since: Option<String>,
    /// A service (id or name) or a task (id).
    #[arg(value_name = "SERVICE|TASK")]
    target: String,
}

/// `--since` as Unix seconds, `now` being the current time.
fn since_secs(text: &str, now: SystemTime) -> anyhow::Result<f64> {
    if let Some(time) = agent::engine::runtime::container::parse_time(text) {
        let d = time
            .duration_since(UNIX_EPOCH)
            .with_context(|| format!("--since {text} is before 1970"))?;
        return Ok(d.as_secs_f64());
    }
    let ago = api::units::parse_duration(text).map_err(|e| {
        anyhow::anyhow!("--since {text} is neither an RFC 3339 time nor a duration: {e}")
    })?;
    let at = now.checked_sub(ago.to_std()).unwrap_or(UNIX_EPOCH);
    Ok(at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64())
}

/// How nodes are named in the prefix: their hostname, or their id when several share
/// one.
fn node_names(nodes: Vec<Node>) -> BTreeMap<String, String> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for n in &nodes {
        *count.entry(n.description.hostname.clone()).or_default() += 1;
    }
    nodes
        .into_iter()
        .map(|n| {
            let host = &n.description.hostname;
            let name = if host.is_empty() || count.get(host).copied().unwrap_or(0) > 1 {
                n.meta.id.clone()
            } else {
                host.clone()
            };
            (n.meta.id, name)
        })
        .collect()
}

/// The prefix of a line: `NAME.SLOT@HOSTNAME`.
fn prefix(
    line: &TaskLogLine,
    tasks: &BTreeMap<String, String>,
    nodes: &BTreeMap<String, String>,
) -> String {
    let task = tasks.get(&line.task).unwrap_or(&line.task);
    let node = nodes.get(&line.node).unwrap_or(&line.node);
    format!("{task}@{node}")
}

/// `orch logs`.
pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = ManagerApi::connect(&args.host)?;
        let path = match crate::service_cmd::find(&api, &args.target).await {
            Ok(service) => format!("/v1/services/{}/logs", service.meta.id),
            Err(service_error) => {
                let task: anyhow::Result<Task> = api
                    .call(Method::GET, &format!("/v1/tasks/{}", args.target))
                    .await;
                match task {
                    Ok(task) => format!("/v1/tasks/{}/logs", task.meta.id),
                    Err(e) if is_not_found(&e) => return Err(service_error),
                    Err(e) => return Err(e),
                }
            }
        };
        let tasks: List<Task> = api.call(Method::GET, "/v1/tasks").await?;
        let tasks: BTreeMap<String, String> = tasks
            .items
            .iter()
            .map(|t| (t.meta.id.clone(), crate::stack_cmd::task_name(t)))
            .collect();
        let nodes: List<Node> = api.call(Method::GET, "/v1/nodes").await?;
        let nodes = node_names(nodes.items);
        let mut query = vec![
            format!("follow={}", args.follow),
            format!("timestamps={}", args.timestamps),
        ];
        if let Some(n) = args.tail {
            query.push(format!("tail={n}"));
        }
        if let Some(since) = &args.since {
            query.push(format!("since={}", since_secs(since, SystemTime::now())?));
        }
        let mut answer = api
            .stream(&format!("{path}?{}", query.join("&")))
            .await
            .with_context(|| format!("the logs of {}", args.target))?;
        let mut buffer: Vec<u8> = Vec::new();
        let mut failed = false;
        let stdout = std::io::stdout();
        while let Some(chunk) = answer
            .chunk()
            .await
            .with_context(|| format!("read the logs of {}", args.target))?
        {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = buffer.drain(..=end).collect();
                if raw.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let line: TaskLogLine = serde_json::from_slice(&raw)
                    .with_context(|| format!("a log line of {} is not valid", args.target))?;
                let who = prefix(&line, &tasks, &nodes);
                let time = if args.timestamps && !line.time.is_empty() {
                    format!("{} ", line.time)
                } else {
                    String::new()
                };
                match line.stream {
                    LogStream::Error => {
                        failed = true;
                        eprintln!("{who} | error: {}", line.line);
                    }
                    LogStream::Stderr => eprintln!("{who} | {time}{}", line.line),
                    LogStream::Stdout => {
                        let mut out = stdout.lock();
                        writeln!(out, "{who} | {time}{}", line.line)?;
                        out.flush()?;
                    }
                }
            }
        }
        if failed {
            bail!("some logs of {} could not be read (see above)", args.target);
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(since_secs("10m", now).ok(), Some(1_000_000.0 - 600.0));
        assert_eq!(
            since_secs("1970-01-02T00:00:00.5Z", now).ok(),
            Some(86_400.5)
        );
        assert!(since_secs("yesterday", now).is_err());
    }

    #[test]
    fn nodes_are_named_by_hostname_unless_several_share_it() {
        let node = |id: &str, host: &str| {
            let mut n = Node::default();
            n.meta.id = id.into();
            n.description.hostname = host.into();
            n
        };
        let names = node_names(vec![node("n1", "a"), node("n2", "b"), node("n3", "b")]);
        assert_eq!(names["n1"], "a");
        assert_eq!(names["n2"], "n2");
        assert_eq!(names["n3"], "n3");
    }

    #[test]
    fn lines_are_prefixed_by_task_name_and_node_hostname() {
        let tasks = BTreeMap::from([("t1".to_owned(), "web.1".to_owned())]);
        let nodes = BTreeMap::from([("n1".to_owned(), "host-a".to_owned())]);
        let line = TaskLogLine {
            task: "t1".into(),
            node: "n1".into(),
            ..TaskLogLine::default()
        };
        assert_eq!(prefix(&line, &tasks, &nodes), "web.1@host-a");
        let unknown = TaskLogLine {
            task: "t9".into(),
            node: "n9".into(),
            ..TaskLogLine::default()
        };
        assert_eq!(prefix(&unknown, &tasks, &nodes), "t9@n9");
    }
}
