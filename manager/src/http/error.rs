//! Every failure of the API as the wire error `{"error": {"code", "message", "details"}}`
//! with the HTTP status of its code, in one place: store errors, axum's rejections
//! (malformed JSON, wrong types, missing content type, oversized bodies, bad paths or
//! queries), unknown paths and wrong methods.

use crate::store::StoreError;
use api::cluster::Kind;
use api::error::{ApiError, ErrorCode, ErrorEnvelope};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// An API failure that axum answers with its status and the error envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError(pub ApiError);

impl HttpError {
    /// A failure of `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> HttpError {
        HttpError(ApiError::new(code, message))
    }

    /// A malformed request.
    pub fn invalid(message: impl Into<String>) -> HttpError {
        HttpError::new(ErrorCode::InvalidArgument, message)
    }

    /// Add one detail.
    pub fn with(self, key: &str, value: impl Into<String>) -> HttpError {
        HttpError(self.0.with(key, value))
    }

    /// The HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(ErrorEnvelope { error: self.0 })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

fn object(e: HttpError, kind: Kind, id: &str) -> HttpError {
    e.with("kind", kind.as_str()).with("id", id)
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> HttpError {
        let message = e.to_string();
        match e {
            StoreError::Conflict {
                kind,
                id,
                expected,
                actual,
            } => object(HttpError::new(ErrorCode::Conflict, message), kind, &id)
                .with("expected_version", expected.to_string())
                .with("actual_version", actual.to_string()),
            StoreError::Exists { kind, id } => {
                object(HttpError::new(ErrorCode::Conflict, message), kind, &id)
            }
            StoreError::NotFound { kind, id } => {
                object(HttpError::new(ErrorCode::NotFound, message), kind, &id)
            }
            StoreError::Invalid { .. } | StoreError::NotAMember { .. } => {
                HttpError::new(ErrorCode::InvalidArgument, message)
            }
            StoreError::NotLeader { leader } => not_leader(leader.as_ref()),
            StoreError::NoQuorum | StoreError::Timeout { .. } => {
                HttpError::new(ErrorCode::Unavailable, message)
            }
            StoreError::Compacted { requested, oldest } => HttpError::new(ErrorCode::Gone, message)
                .with("requested", requested.to_string())
                .with("oldest", oldest.to_string()),
            StoreError::ClusterChanged(_) => HttpError::new(ErrorCode::Conflict, message),
            StoreError::Membership { .. } | StoreError::AlreadyInitialized => {
                HttpError::new(ErrorCode::Conflict, message)
            }
            StoreError::Io { .. }
            | StoreError::Db { .. }
            | StoreError::LogDamaged { .. }
            | StoreError::InUse { .. }
            | StoreError::Decode { .. }
            | StoreError::Config { .. }
            | StoreError::Raft { .. }
            | StoreError::Stopped => HttpError::new(ErrorCode::Internal, message),
        }
    }
}

/// This manager cannot serve the request and the leader (if known) must: 503 with the
/// leader's id and address in the details.
pub fn not_leader(leader: Option<&(u64, String)>) -> HttpError {
    match leader {
        Some((id, addr)) => HttpError::new(
            ErrorCode::Unavailable,
            format!("this manager is not the leader; send the request to manager {id} at {addr}"),
        )
        .with("leader", addr.clone())
        .with("leader_id", id.to_string()),
        None => HttpError::new(
            ErrorCode::Unavailable,
            "this manager is not the leader and knows of no leader (election in progress?); retry",
        ),
    }
}

/// axum's rejections carry a status and a text: keep both, in the envelope.
fn rejection(status: StatusCode, what: &str, text: String) -> HttpError {
    HttpError::new(
        ErrorCode::from_http_status(status.as_u16()),
        format!("{what}: {text}"),
    )
}

impl From<JsonRejection> for HttpError {
    fn from(e: JsonRejection) -> HttpError {
        rejection(e.status(), "request body", e.body_text())
    }
}

impl From<PathRejection> for HttpError {
    fn from(e: PathRejection) -> HttpError {
        rejection(e.status(), "request path", e.body_text())
    }
}

/// The answer for a path no route serves.
pub async fn unknown_path(uri: Uri) -> HttpError {
    HttpError::new(
        ErrorCode::NotFound,
        format!("no API endpoint at {}", uri.path()),
    )
    .with("path", uri.path())
}

/// The answer for a method a path does not serve.
pub async fn wrong_method(method: axum::http::Method, uri: Uri) -> HttpError {
    HttpError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} does not serve {method}", uri.path()),
    )
    .with("method", method.as_str())
    .with("path", uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_name_both_versions_and_the_object() {
        let e = HttpError::from(StoreError::Conflict {
            kind: Kind::Stack,
            id: "web".into(),
            expected: 3,
            actual: 7,
        });
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.0.details["expected_version"], "3");
        assert_eq!(e.0.details["actual_version"], "7");
        assert_eq!(e.0.details["id"], "web");
        assert!(e.0.message.contains("stack web"));
    }

    #[test]
    fn a_follower_names_its_leader() {
        let e = HttpError::from(StoreError::NotLeader {
            leader: Some((2, "10.0.0.2:4242".into())),
        });
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.0.details["leader"], "10.0.0.2:4242");
    }
}
