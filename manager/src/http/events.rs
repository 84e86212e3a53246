//! `/v1/events`: committed changes as server-sent events, resumable.
//!
//! Each commit is sent as its object events (`created`, `updated`, `deleted`; data: the
//! [`Event`] as JSON) followed by a `commit` event whose SSE `id` is the commit's
//! version. Object events carry no id of their own, so a client's last event id is
//! always a whole commit: resuming (`Last-Event-ID`, or `?since=` for a first connect)
//! replays every commit after it and nothing is skipped. A resume point older than the
//! kept history answers 410 `gone` (re-read, then watch from the version read). A
//! stream that falls behind the history ends with an `error` event (the envelope).

use super::ApiState;
use super::error::HttpError;
use super::params::Params;
use crate::store::StoreError;
use api::cluster::{Event, Kind, Object};
use api::error::{ErrorCode, ErrorEnvelope};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{self, KeepAlive, Sse};
use futures_core::Stream;
use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;

/// The header a reconnecting event source names its last event id in.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// Where a stream starts: `Last-Event-ID` first, then `?since=`; neither: now.
pub fn resume_point(headers: &HeaderMap, since: Option<u64>) -> Result<Option<u64>, HttpError> {
    match headers.get(LAST_EVENT_ID) {
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            text.trim().parse::<u64>().map(Some).map_err(|_| {
                HttpError::invalid(format!(
                    "Last-Event-ID is `{text}`; expected a commit version"
                ))
                .with("header", LAST_EVENT_ID)
            })
        }
        None => Ok(since),
    }
}

/// The SSE event of one store event; `None` when `kinds` filters it out.
pub fn to_sse(event: &Event, kinds: &[Kind]) -> Option<sse::Event> {
    let (name, object) = match event {
        Event::Created { object } => ("created", Some(object)),
        Event::Updated { object } => ("updated", Some(object)),
        Event::Deleted { object } => ("deleted", Some(object)),
        Event::Commit { .. } => ("commit", None),
    };
    if let Some(object) = object
        && !kinds.is_empty()
        && !kinds.contains(&object.kind())
    {
        return None;
    }
    let redacted = redact(event);
    let data = serde_json::to_string(redacted.as_ref().unwrap_or(event)).unwrap_or_else(|e| {
        let error =
            api::error::ApiError::new(ErrorCode::Internal, format!("encode a {name} event: {e}"));
        serde_json::to_string(&ErrorEnvelope { error }).unwrap_or_default()
    });
    let sse = sse::Event::default().event(name).data(data);
    Some(match event {
        Event::Commit { version } => sse.id(version.to_string()),
        _ => sse,
    })
}

/// A secret's event without its ciphertext (`None`: any other event, sent as it is).
fn redact(event: &Event) -> Option<Event> {
    let secret = |object: &Object| match object {
        Object::Secret(s) => Some(Object::Secret(s.clone().redacted())),
        _ => None,
    };
    match event {
        Event::Created { object } => secret(object).map(|object| Event::Created { object }),
        Event::Updated { object } => secret(object).map(|object| Event::Updated { object }),
        Event::Deleted { object } => secret(object).map(|object| Event::Deleted { object }),
        Event::Commit { .. } => None,
    }
}

fn error_event(e: StoreError) -> sse::Event {
    let HttpError(error) = HttpError::from(e);
    let data = serde_json::to_string(&ErrorEnvelope { error }).unwrap_or_default();
    sse::Event::default().event("error").data(data)
}

/// Stream committed events.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(
        ("since" = Option<u64>, Query, description = "Send the commits after this version (default: from now on)"),
        ("kind" = Option<Vec<Kind>>, Query, description = "Only object events of these kinds (repeatable); commit events are always sent"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this commit version (wins over `since`)"),
    ),
    responses(
        (status = 200, description = "A stream of server-sent events: `created`, `updated`, `deleted` (data: the event JSON), then `commit` with `id` = the commit version; `error` ends a stream", content_type = "text/event-stream", body = String),
        (status = 410, description = "The resume point is older than the kept history: re-read and watch from the version read", body = ErrorEnvelope),
    ))]
pub async fn stream(
    State(api): State<Arc<ApiState>>,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Sse<impl Stream<Item = Result<sse::Event, Infallible>>>, HttpError> {
    let since = params.number("since")?;
    let kinds: Vec<Kind> = params.variants("kind", "`node`, `stack`, `service` or `task`")?;
    params.finish()?;
    let from = match resume_point(&headers, since)? {
        Some(version) => version,
        None => api.store.view(|_| ()).version,
    };
    let watcher = api.store.watch_from(from)?;
    let events = watcher.into_stream().filter_map(move |item| {
        let out = match item {
            Ok(event) => to_sse(&event, &kinds),
            Err(e) => Some(error_event(e)),
        };
        std::future::ready(out.map(Ok))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
