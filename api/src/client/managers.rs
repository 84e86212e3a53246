//! Calls to the cluster's managers over mutual TLS (the caller brings a client with
//! its TLS identity): POST to whichever manager answers, following a follower's
//! `details.leader` to the leader.

use super::ClientError;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How many times a follower's "the leader is at ..." is followed.
const MAX_HOPS: usize = 5;

/// POST `body` as JSON to `path` on the first of `managers` (`host:port`) that answers,
/// following the leader a follower names. A refusal is `ClientError::Api`; when no
/// manager answers, the last transport error.
pub async fn post_to_leader<B: Serialize, T: DeserializeOwned>(
    http: &reqwest::Client,
    managers: &[String],
    path: &str,
    op: &str,
    body: &B,
) -> Result<T, ClientError> {
    let mut queue: Vec<String> = managers.to_vec();
    let mut last = None;
    let mut hops = 0;
    while !queue.is_empty() {
        let addr = queue.remove(0);
        match post(http, &addr, path, op, body).await {
            Err(ClientError::Api(error))
                if error.code == ErrorCode::Unavailable && hops < MAX_HOPS =>
            {
                hops += 1;
                match error.details.get("leader") {
                    Some(leader) => queue.insert(0, leader.clone()),
                    // No leader known yet (an election): wait, then ask again.
                    None => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        queue.insert(0, addr);
                    }
                }
                last = Some(ClientError::Api(error));
            }
            Err(e @ ClientError::Http { .. }) => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| ClientError::Decode {
        op: op.to_owned(),
        why: "no manager address to try".to_owned(),
    }))
}

/// One POST to one manager.
pub async fn post<B: Serialize, T: DeserializeOwned>(
    http: &reqwest::Client,
    addr: &str,
    path: &str,
    op: &str,
    body: &B,
) -> Result<T, ClientError> {
    let url = format!("https://{addr}{path}");
    let op = format!("{op} at {addr}");
    let answer = http
        .post(&url)
        .json(body)
        .send()
        .await
        .map_err(|source| ClientError::Http {
            op: op.clone(),
            source,
        })?;
    let status = answer.status();
    let bytes = answer.bytes().await.map_err(|source| ClientError::Http {
        op: op.clone(),
        source,
    })?;
    if !status.is_success() {
        let error = serde_json::from_slice::<ErrorEnvelope>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| {
                ApiError::new(
                    ErrorCode::from_http_status(status.as_u16()),
                    format!("{op}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
                )
            });
        return Err(ClientError::Api(error));
    }
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
        op,
        why: e.to_string(),
    })
}
