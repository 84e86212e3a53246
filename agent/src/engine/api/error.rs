//! Engine errors as API errors: each failure gets its code (and so its HTTP status)
//! here, in one place.

use crate::engine::image::archive::ArchiveError;
use crate::engine::image::build::BuildError;
use crate::engine::image::gc::GcError;
use crate::engine::image::images::ImagesError;
use crate::engine::image::lifecycle::LifecycleError;
use crate::engine::image::manifest::ManifestError;
use crate::engine::image::registry::RegistryError;
use crate::engine::image::service::ImageServiceError;
use crate::engine::image::store::StoreError;
use crate::engine::runtime::service::ContainerError;
use api::error::{ApiError, ErrorCode, ErrorEnvelope};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An [`ApiError`] that axum can answer with.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(ErrorEnvelope { error: self.0 })).into_response()
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure(e)
    }
}

impl From<ImageServiceError> for Failure {
    fn from(e: ImageServiceError) -> Failure {
        Failure(image_error(&e))
    }
}

impl From<ContainerError> for Failure {
    fn from(e: ContainerError) -> Failure {
        let code = match &e {
            ContainerError::Image(i) => return Failure(image_error(i)),
            ContainerError::Network(n) => return Failure(super::networks::net_error(n)),
            ContainerError::NotFound(_) => ErrorCode::NotFound,
            ContainerError::Ambiguous { .. }
            | ContainerError::Invalid { .. }
            | ContainerError::Spec(_)
            | ContainerError::Tuning(_)
            | ContainerError::Userns(_) => ErrorCode::InvalidArgument,
            ContainerError::NameTaken(_) | ContainerError::State { .. } => ErrorCode::Conflict,
            ContainerError::Start { .. } => ErrorCode::InvalidArgument,
            ContainerError::Record(_) | ContainerError::Io { .. } => ErrorCode::Internal,
        };
        Failure(ApiError::new(code, e.to_string()))
    }
}

/// A bad request parameter.
pub fn invalid(message: impl Into<String>) -> Failure {
    Failure(ApiError::new(ErrorCode::InvalidArgument, message))
}

fn registry_code(e: &RegistryError) -> ErrorCode {
    match e {
        RegistryError::Auth { .. } => ErrorCode::Unauthorized,
        RegistryError::ManifestUnknown { .. } => ErrorCode::NotFound,
        RegistryError::Status { status, .. } if status.as_u16() == 404 => ErrorCode::NotFound,
        RegistryError::Status { status, .. } if matches!(status.as_u16(), 401 | 403) => {
            ErrorCode::Unauthorized
        }
        RegistryError::Manifest {
            source: ManifestError::NoPlatform { .. },
            ..
        } => ErrorCode::NotFound,
        RegistryError::Client(_)
        | RegistryError::Store(
            StoreError::Create { .. }
            | StoreError::Write { .. }
            | StoreError::Read { .. }
            | StoreError::Remove { .. },
        ) => ErrorCode::Internal,
        _ => ErrorCode::Upstream,
    }
}

fn build_code(e: &BuildError) -> ErrorCode {
    match e {
        BuildError::MissingImage { .. } => ErrorCode::NotFound,
        BuildError::Layer { .. }
        | BuildError::Cache { .. }
        | BuildError::Snapshot { .. }
        | BuildError::Images(_)
        | BuildError::Store(_) => ErrorCode::Internal,
        _ => ErrorCode::InvalidArgument,
    }
}

fn lifecycle_code(e: &LifecycleError) -> ErrorCode {
    match e {
        LifecycleError::Gc(GcError::NotFound { .. }) => ErrorCode::NotFound,
        LifecycleError::Gc(GcError::Ambiguous { .. }) => ErrorCode::InvalidArgument,
        LifecycleError::Gc(GcError::Tagged { .. }) => ErrorCode::Conflict,
        LifecycleError::Gc(_) => ErrorCode::Internal,
        LifecycleError::Archive(a) => match **a {
            ArchiveError::Images(_) | ArchiveError::Store(_) | ArchiveError::Write { .. } => {
                ErrorCode::Internal
            }
            _ => ErrorCode::InvalidArgument,
        },
    }
}

/// The API error for an image failure.
pub fn image_error(e: &ImageServiceError) -> ApiError {
    let code = match e {
        ImageServiceError::Reference(_) | ImageServiceError::Platform { .. } => {
            ErrorCode::InvalidArgument
        }
        ImageServiceError::NotFound { .. }
        | ImageServiceError::Images(ImagesError::NotFound { .. }) => ErrorCode::NotFound,
        ImageServiceError::Ambiguous { .. } => ErrorCode::InvalidArgument,
        ImageServiceError::Images(ImagesError::Import { .. }) => ErrorCode::InvalidArgument,
        ImageServiceError::Registry(r) => registry_code(r),
        ImageServiceError::Build(b) => build_code(b),
        ImageServiceError::Lifecycle(l) => lifecycle_code(l),
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}
