//! Errors on the wire: every API answers a failure with
//! `{"error": {"code", "message", "details"}}` and the HTTP status of its code.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What kind of failure; each code maps to one HTTP status ([`ErrorCode::http_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or names something invalid (400).
    InvalidArgument,
    /// Credentials are missing or were refused (401).
    Unauthorized,
    /// The caller is known but may not do this (403).
    PermissionDenied,
    /// The object does not exist (404).
    NotFound,
    /// The path exists but not with this method (405).
    MethodNotAllowed,
    /// The object exists already, or is in use, or changed since it was read (409).
    Conflict,
    /// What was asked for existed once and is no longer kept (410), e.g. events older
    /// than the history a stream can resume from.
    Gone,
    /// The request body is larger than the server accepts (413).
    PayloadTooLarge,
    /// The request body is not in a format the server accepts (415).
    UnsupportedMediaType,
    /// A server this one depends on (a registry, a peer) failed (502).
    Upstream,
    /// The server cannot serve the request now (503).
    Unavailable,
    /// The server itself is broken: a bug or a local I/O failure (500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code is sent with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::Gone => 410,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Internal => 500,
            ErrorCode::Upstream => 502,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The code a bare HTTP status stands for (for answers without an error body).
    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            400 | 411 | 422 => ErrorCode::InvalidArgument,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::PermissionDenied,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            409 => ErrorCode::Conflict,
            410 => ErrorCode::Gone,
            413 => ErrorCode::PayloadTooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            502 | 504 => ErrorCode::Upstream,
            503 => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}

/// A failure as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct ApiError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// A sentence naming the operation and the object, for people.
    pub message: String,
    /// Machine-readable facts about the failure (e.g. `reference`, `digest`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

impl ApiError {
    /// An error of `code` with `message` and no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: BTreeMap::new(),
        }
    }

    /// Add one detail.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> ApiError {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// The body of a failed response: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    /// The failure.
    pub error: ApiError,
}
