//! Registry errors in the distribution API's shape: `{"errors": [{"code", "message",
//! "detail"}]}` with the status its code calls for.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What went wrong with a registry request; each names its object.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    NameInvalid(String),
    #[error("{0}")]
    TagInvalid(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("blob {0} is not in the cluster registry")]
    BlobUnknown(String),
    #[error("{0} is not in progress (it finished, was cancelled or never started)")]
    UploadUnknown(String),
    #[error("manifest {0} is not in the cluster registry")]
    ManifestUnknown(String),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("the manifest refers to {0}, which was not pushed first")]
    ManifestBlobUnknown(String),
    #[error("repository {0} is not in the cluster registry")]
    NameUnknown(String),
    #[error("{0}")]
    SizeInvalid(String),
    #[error("{0}")]
    RangeInvalid(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    NotFound(String),
    /// The store refused or could not take a write (no leader, a conflict that kept
    /// recurring): worth retrying.
    #[error("{0}")]
    Unavailable(String),
    #[error("{what}: {source}")]
    Disk {
        what: String,
        source: std::io::Error,
    },
}

impl RegistryError {
    /// A disk error about `what`.
    pub fn disk(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RegistryError {
        let what = what.into();
        move |source| RegistryError::Disk { what, source }
    }

    /// The distribution API's code and the HTTP status that goes with it.
    pub fn code(&self) -> (&'static str, StatusCode) {
        use RegistryError::*;
        match self {
            NameInvalid(_) => ("NAME_INVALID", StatusCode::BAD_REQUEST),
            TagInvalid(_) => ("TAG_INVALID", StatusCode::BAD_REQUEST),
            DigestInvalid(_) => ("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            BlobUnknown(_) => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            UploadUnknown(_) => ("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND),
            ManifestUnknown(_) => ("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND),
            ManifestInvalid(_) => ("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestBlobUnknown(_) => ("MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST),
            NameUnknown(_) => ("NAME_UNKNOWN", StatusCode::NOT_FOUND),
            SizeInvalid(_) => ("SIZE_INVALID", StatusCode::BAD_REQUEST),
            RangeInvalid(_) => ("RANGE_INVALID", StatusCode::RANGE_NOT_SATISFIABLE),
            Unauthorized(_) => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            Denied(_) => ("DENIED", StatusCode::FORBIDDEN),
            Unsupported(_) => ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            NotFound(_) => ("NOT_FOUND", StatusCode::NOT_FOUND),
            Unavailable(_) => ("UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
            Disk { .. } => ("UNKNOWN", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (code, status) = self.code();
        let body = serde_json::json!({"errors": [{"code": code, "message": self.to_string()}]});
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"orch cluster registry\""),
            );
        }
        response
    }
}
