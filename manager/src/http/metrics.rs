//! `/metrics` in the Prometheus text format, written by hand: raft term and indexes,
//! apply lag, objects by kind, and request latency histograms per route, method and
//! status class (recorded by [`record`], a middleware around every route).

use super::ApiState;
use super::cluster::ClusterInfo;
use api::cluster::Kind;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Upper bounds (seconds) of the latency buckets.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latencies of one route, method and status class.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each bucket bound (not cumulative).
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The key of a histogram: route template (`/v1/tasks/{id}`), method, status class.
pub type RequestKey = (String, String, &'static str);

/// Request latencies since the manager started.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    histograms: Mutex<BTreeMap<RequestKey, Histogram>>,
}

impl RequestMetrics {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<RequestKey, Histogram>> {
        // Counters stay usable even if a holder panicked.
        self.histograms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one request.
    pub fn observe(&self, key: RequestKey, seconds: f64) {
        self.lock().entry(key).or_default().observe(seconds);
    }

    /// A copy of every histogram.
    pub fn snapshot(&self) -> BTreeMap<RequestKey, Histogram> {
        self.lock().clone()
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The middleware that times every request (until its response head).
pub async fn record(State(api): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let class = status_class(response.status().as_u16());
    api.metrics
        .observe((route, method, class), start.elapsed().as_secs_f64());
    response
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// The exposition text of these numbers.
pub fn render(
    cluster: &ClusterInfo,
    objects: &[(Kind, usize)],
    requests: &BTreeMap<RequestKey, Histogram>,
) -> String {
    let mut out = String::new();
    gauge(
        &mut out,
        "orch_raft_term",
        "The current raft term.",
        cluster.term,
    );
    gauge(
        &mut out,
        "orch_raft_is_leader",
        "1 when this manager is the raft leader.",
        u64::from(cluster.state == "leader"),
    );
    gauge(
        &mut out,
        "orch_raft_last_log_index",
        "The last raft log index this manager holds.",
        cluster.last_log_index,
    );
    gauge(
        &mut out,
        "orch_raft_commit_index",
        "The highest raft log index known committed.",
        cluster.commit_index,
    );
    gauge(
        &mut out,
        "orch_raft_applied_index",
        "The last raft log index applied to the state.",
        cluster.applied_index,
    );
    gauge(
        &mut out,
        "orch_raft_apply_lag",
        "Raft log entries held but not yet applied.",
        cluster.apply_lag,
    );
    let _ = writeln!(
        out,
        "# HELP orch_objects Cluster objects by kind.\n# TYPE orch_objects gauge"
    );
    for (kind, count) in objects {
        let _ = writeln!(out, "orch_objects{{kind=\"{kind}\"}} {count}");
    }
    let name = "orch_http_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} API request latency until the response head.\n# TYPE {name} histogram"
    );
    for ((route, method, class), h) in requests {
        let labels = format!(
            "route=\"{}\",method=\"{}\",status=\"{class}\"",
            escape(route),
            escape(method)
        );
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
    }
    out
}

/// Prometheus metrics of this manager.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "The Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(api): State<Arc<ApiState>>) -> Response {
    let cluster = ClusterInfo::from_metrics(&api.store.metrics());
    let objects: Vec<(Kind, usize)> = api
        .store
        .view(|state| Kind::ALL.map(|kind| (kind, state.count(kind))))
        .value
        .to_vec();
    let text = render(&cluster, &objects, &api.metrics.snapshot());
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let metrics = RequestMetrics::default();
        let key = || ("/v1/tasks".to_owned(), "GET".to_owned(), "2xx");
        metrics.observe(key(), 0.002);
        metrics.observe(key(), 0.2);
        metrics.observe(key(), 60.0);
        let h = &metrics.snapshot()[&key()];
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets.iter().sum::<u64>(), 2);
    }
}
