//! Answers of the daemon's own endpoints (join, managers, session) in the API's error
//! shape, with one mapping from each internal error to a code.

use super::error::ServerError;
use crate::ca::CaError;
use crate::store::StoreError;
use api::error::{ApiError, ErrorCode, ErrorEnvelope};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failed request, answered as `{"error": ...}` with its code's status.
#[derive(Debug)]
pub(crate) struct Failure(pub ApiError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorEnvelope { error: self.0 })).into_response()
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        let code = match &e {
            StoreError::NotFound { .. } => ErrorCode::NotFound,
            StoreError::Conflict { .. }
            | StoreError::Exists { .. }
            | StoreError::ClusterChanged(_) => ErrorCode::Conflict,
            StoreError::Invalid { .. } => ErrorCode::InvalidArgument,
            StoreError::NotLeader { .. }
            | StoreError::NoQuorum
            | StoreError::Timeout { .. }
            | StoreError::Compacted { .. }
            | StoreError::Stopped => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        let mut error = ApiError::new(code, e.to_string());
        if let StoreError::NotLeader {
            leader: Some((_, addr)),
        } = &e
        {
            error = ApiError::new(
                code,
                format!("this manager is not the leader; the leader is at {addr}"),
            )
            .with("leader", addr.clone());
        }
        Failure(error)
    }
}

impl From<CaError> for Failure {
    fn from(e: CaError) -> Failure {
        let code = match &e {
            CaError::BadToken { .. } | CaError::BadCsr { .. } | CaError::BadId { .. } => {
                ErrorCode::InvalidArgument
            }
            e if e.is_refusal() => ErrorCode::Unauthorized,
            _ => ErrorCode::Internal,
        };
        Failure(ApiError::new(code, e.to_string()))
    }
}

impl From<ServerError> for Failure {
    fn from(e: ServerError) -> Failure {
        match e {
            ServerError::Store(e) => e.into(),
            ServerError::Ca(e) => e.into(),
            ServerError::NoCluster => Failure(ApiError::new(ErrorCode::Unavailable, e.to_string())),
            e => Failure(ApiError::new(ErrorCode::Internal, e.to_string())),
        }
    }
}
