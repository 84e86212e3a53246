//! `POST /v1/session/logs`: a node publishes the log lines of one of its tasks for an
//! active subscription. The answer waits while the reader's buffer is full
//! (back-pressure); a subscription that ended answers `not_found`, so the node stops.

use super::stream::check_session;
use super::{Dispatcher, Refusal, node_caller};
use crate::logbroker::Refused;
use api::error::ErrorCode;
use api::logs::LogPublish;
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;

/// `POST /v1/session/logs`.
pub async fn publish(
    State(d): State<Arc<Dispatcher>>,
    caller: Option<Extension<crate::server::Caller>>,
    Json(batch): Json<LogPublish>,
) -> Result<Json<serde_json::Value>, Refusal> {
    let node = node_caller(caller)?;
    d.leader_only()?;
    check_session(&d, &node, &batch.session_id)?;
    match d.logs.publish(&node, &batch).await {
        Ok(()) => Ok(Json(serde_json::json!({}))),
        Err(e @ Refused::Ended(_)) => Err(Refusal::new(ErrorCode::NotFound, e.to_string())),
        Err(e @ Refused::NotOurs { .. }) => {
            Err(Refusal::new(ErrorCode::PermissionDenied, e.to_string()))
        }
    }
}
