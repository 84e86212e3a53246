//! `orch events [--since VERSION] [--kind KIND]...`: the cluster's committed changes as
//! they happen (`/v1/events`), one line per object event: time, kind, id, action,
//! state.

use crate::manager_api::{HostArgs, ManagerApi, runtime};
use anyhow::Context;
use api::cluster::{Event, Kind, Object};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

/// `orch events`.
#[derive(Args)]
pub struct EventsArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Replay the commits after this store version first (default: from now on).
    #[arg(long, value_name = "VERSION")]
    since: Option<u64>,
    /// Only events of this kind: node, stack, service, task, network, secret, config (repeatable).
    #[arg(long, value_name = "KIND")]
    kind: Vec<String>,
}

/// The state an object is in, where it has one (`-` otherwise).
fn state(object: &Object) -> String {
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "-".to_owned())
    };
    match object {
        Object::Task(task) => task.status.state.as_str().to_owned(),
        Object::Node(node) => name(serde_json::to_value(node.status.state)),
        Object::Volume(volume) => name(serde_json::to_value(volume.desired_state)),
        _ => "-".to_owned(),
    }
}

/// One event as a line; `None` for commit markers.
pub fn render(event: &Event) -> Option<String> {
    let (action, object) = match event {
        Event::Created { object } => ("created", object),
        Event::Updated { object } => ("updated", object),
        Event::Deleted { object } => ("deleted", object),
        Event::Commit { .. } => return None,
    };
    let meta = object.meta();
    let time = agent::engine::runtime::container::rfc3339_nanos(
        UNIX_EPOCH + Duration::from_millis(meta.updated.0),
    );
    Some(format!(
        "{time} {:<8} {} {action} {}",
        object.kind().as_str(),
        meta.id,
        state(object)
    ))
}

/// `orch events`.
pub fn events(args: EventsArgs) -> anyhow::Result<ExitCode> {
    let mut query: Vec<String> = Vec::new();
    for kind in &args.kind {
        serde_json::from_value::<Kind>(serde_json::Value::String(kind.clone()))
            .map_err(|_| anyhow::anyhow!("--kind {kind} is not a kind of object: node, stack, service, task, network, secret or config"))?;
        query.push(format!("kind={kind}"));
    }
    if let Some(v) = args.since {
        query.push(format!("since={v}"));
    }
    runtime()?.block_on(async {
        let api = ManagerApi::connect(&args.host)?;
        let mut answer = api
            .stream(&format!("/v1/events?{}", query.join("&")))
            .await
            .context("the event stream")?;
        let mut buffer: Vec<u8> = Vec::new();
        let mut name = String::new();
        let mut data = String::new();
        while let Some(chunk) = answer.chunk().await.context("read the event stream")? {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&raw);
                let line = line.trim_end_matches(['\n', '\r']);
                if let Some(v) = line.strip_prefix("event:") {
                    v.trim().clone_into(&mut name);
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                } else if line.is_empty() && !data.is_empty() {
                    let text = std::mem::take(&mut data);
                    if name == "error" {
                        anyhow::bail!("the event stream ended: {text}");
                    }
                    let event: Event = serde_json::from_str(&text)
                        .with_context(|| format!("an event is not valid: {text}"))?;
                    if let Some(out) = render(&event) {
                        let mut stdout = std::io::stdout().lock();
                        writeln!(stdout, "{out}")?;
                        stdout.flush()?;
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::cluster::{Meta, Task, TaskState};

    #[test]
    fn an_event_is_one_line_with_kind_id_action_and_state() {
        let mut task = Task {
            meta: Meta::new("t1"),
            ..Task::default()
        };
        task.meta.updated = api::cluster::Timestamp(86_400_000);
        task.status.state = TaskState::Running;
        let event = Event::Updated {
            object: Object::Task(Box::new(task)),
        };
        assert_eq!(
            render(&event).as_deref(),
            Some("1970-01-02T00:00:00.000000000Z task     t1 updated running")
        );
        assert_eq!(render(&Event::Commit { version: 3 }), None);
    }
}
