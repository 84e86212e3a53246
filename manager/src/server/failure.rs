//! The daemon's own errors in the API's terms: each CA and daemon error mapped to one
//! [`HttpError`] (store errors map in [`crate::http::error`]).

use super::error::ServerError;
use crate::ca::CaError;
use crate::http::error::HttpError;
use api::error::ErrorCode;

impl From<CaError> for HttpError {
    fn from(e: CaError) -> HttpError {
        let code = match &e {
            CaError::BadToken { .. } | CaError::BadCsr { .. } | CaError::BadId { .. } => {
                ErrorCode::InvalidArgument
            }
            e if e.is_refusal() => ErrorCode::Unauthorized,
            _ => ErrorCode::Internal,
        };
        HttpError::new(code, e.to_string())
    }
}

impl From<ServerError> for HttpError {
    fn from(e: ServerError) -> HttpError {
        match e {
            ServerError::Store(e) => e.into(),
            ServerError::Ca(e) => e.into(),
            ServerError::NoCluster => HttpError::new(ErrorCode::Unavailable, e.to_string()),
            e => HttpError::new(ErrorCode::Internal, e.to_string()),
        }
    }
}
