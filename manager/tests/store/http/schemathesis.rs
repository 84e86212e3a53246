//! schemathesis (from PyPI, installed by scripts/setup) against `/v1/openapi.json` of a
//! real single-manager API: no request may get a 5xx, and answers must match their
//! documented schemas. Skips, saying why, when schemathesis is not installed.

use super::{Api, TOKEN};
use reqwest::Method;
use std::path::PathBuf;
use std::process::Command;

/// Where scripts/setup installs it (`SCHEMATHESIS` overrides).
fn schemathesis() -> Option<PathBuf> {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/orch-tools/schemathesis/bin/schemathesis"));
    path.is_file().then_some(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors() {
    let Some(program) = schemathesis() else {
        eprintln!(
            "skipped: schemathesis is not installed at /opt/orch-tools/schemathesis (run scripts/setup, or set SCHEMATHESIS)"
        );
        return;
    };
    let api = Api::start().await;
    let doc = api.call(Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    let dir = crate::common::TempDir::new("schemathesis");
    let schema = dir.path().join("openapi.json");
    std::fs::write(&schema, doc.body.to_string()).expect("write the schema");
    let report = dir.path().join("report");
    let url = api.url.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .arg("run")
            .arg(&schema)
            .args(["--url", &url])
            .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            // A stream never ends: its behaviour is tested in `events`.
            .args(["--exclude-path", "/v1/events"])
            // The coverage phase trips over its own generator on the large service
            // schema (a hypothesis "inconsistent results" error, no request involved).
            .args(["--phases", "examples,fuzzing"])
            .args(["--max-examples", "25"])
            .args(["--max-time", "75"])
            .args(["--request-timeout", "10"])
            .args(["--workers", "2"])
            .args(["--seed", "1"])
            .args(["--report", "junit"])
            .arg("--report-dir")
            .arg(&report)
            .output()
    })
    .await
    .expect("join")
    .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // The summary, for the log (cases run, per operation).
    eprintln!("{stdout}");
    assert!(
        run.status.success(),
        "schemathesis failed:\n{stdout}\n{stderr}"
    );
    // How fast the API answered it all, from its own histograms.
    let metrics = api
        .http
        .get(format!("{}/metrics", api.url))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let total = |suffix: &str| -> f64 {
        let prefix = format!("orch_http_request_duration_seconds_{suffix}{{");
        metrics
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    };
    let (count, sum) = (total("count"), total("sum"));
    let mean_ms = if count > 0.0 {
        sum * 1000.0 / count
    } else {
        0.0
    };
    eprintln!("API: {count} requests, mean latency {mean_ms:.2} ms");
    api.node.stop().await;
}
