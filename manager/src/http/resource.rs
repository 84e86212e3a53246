//! What the four resource files share: the JSON body extractor, validation of ids and
//! labels, reads (linearizable or `?stale=true`), and the store calls of get, create,
//! update and delete for any record type, answering with the object and its `ETag`.

use super::ApiState;
use super::error::HttpError;
use crate::store::apply::MAX_ID_LEN;
use crate::store::table::Record;
use crate::store::{Applied, Command, State, Versioned};
use api::cluster::{Event, Kind};
use api::error::ErrorCode;
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// The largest request body accepted.
pub const MAX_BODY: usize = 4 << 20;
/// Labels an object may carry.
pub const MAX_LABELS: usize = 256;
/// The longest label key.
pub const MAX_LABEL_KEY: usize = 253;
/// The longest label value.
pub const MAX_LABEL_VALUE: usize = 4096;

/// A JSON request body; its rejections answer in the error envelope.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Body<T>, HttpError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Body(value))
    }
}

/// The `{id}` of a resource path; its rejections answer in the error envelope.
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Id, HttpError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state).await?;
        Ok(Id(id))
    }
}

/// An object as answered: 200 or 201, `ETag: "<version>"`, the object as JSON.
pub struct Found<T> {
    pub status: StatusCode,
    pub version: u64,
    pub object: T,
}

impl<T: Serialize> IntoResponse for Found<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.object)).into_response();
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", self.version)) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        response
    }
}

/// Refuse an id the store would not take, or that could not appear in a URL path.
pub fn check_id(kind: Kind, id: &str) -> Result<(), HttpError> {
    let invalid = |why: String| {
        HttpError::invalid(format!("{kind} id `{id}`: {why}"))
            .with("kind", kind.as_str())
            .with("id", id)
    };
    if id.is_empty() {
        return Err(invalid("is empty".into()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid(format!("is longer than {MAX_ID_LEN} bytes")));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) || !id.chars().all(allowed) {
        return Err(invalid(
            "must start with a letter or digit and hold only letters, digits, `-`, `_` and `.`"
                .into(),
        ));
    }
    Ok(())
}

/// Refuse labels that are too many, too long, or have empty or control-character keys.
pub fn check_labels(kind: Kind, labels: &BTreeMap<String, String>) -> Result<(), HttpError> {
    if labels.len() > MAX_LABELS {
        return Err(HttpError::invalid(format!(
            "a {kind} may carry at most {MAX_LABELS} labels, not {}",
            labels.len()
        )));
    }
    for (key, value) in labels {
        let bad_key = key.is_empty()
            || key.len() > MAX_LABEL_KEY
            || key.chars().any(|c| c.is_control() || c == '=');
        if bad_key {
            return Err(HttpError::invalid(format!(
                "label key `{key}`: needs 1 to {MAX_LABEL_KEY} bytes, without `=` or control characters"
            ))
            .with("label", key.clone()));
        }
        if value.len() > MAX_LABEL_VALUE {
            return Err(HttpError::invalid(format!(
                "label `{key}`: the value is longer than {MAX_LABEL_VALUE} bytes"
            ))
            .with("label", key.clone()));
        }
    }
    Ok(())
}

/// Read the state: linearizable (confirmed by the leader's quorum) unless `stale`,
/// then this manager's applied state.
pub async fn read<T>(
    api: &ApiState,
    stale: bool,
    f: impl FnOnce(&State) -> T,
) -> Result<Versioned<T>, HttpError> {
    if stale {
        Ok(api.store.view(f))
    } else {
        Ok(api.store.read(f).await?)
    }
}

fn not_found(kind: Kind, id: &str) -> HttpError {
    HttpError::new(ErrorCode::NotFound, format!("{kind} {id} does not exist"))
        .with("kind", kind.as_str())
        .with("id", id)
}

/// The record `id` of kind `R`, as read.
pub async fn fetch<R: Record>(api: &ApiState, id: &str, stale: bool) -> Result<R, HttpError> {
    read(api, stale, |s| s.get(R::KIND, id))
        .await?
        .value
        .and_then(R::from_object)
        .ok_or_else(|| not_found(R::KIND, id))
}

/// The record `id` of kind `R`, as a 200 answer.
pub async fn get<R: Record + Serialize>(
    api: &ApiState,
    id: &str,
    stale: bool,
) -> Result<Found<R>, HttpError> {
    let object: R = fetch(api, id, stale).await?;
    Ok(Found {
        status: StatusCode::OK,
        version: object.meta().version,
        object,
    })
}

/// The record of kind `R` with `id` as the commit `applied` left it.
fn committed<R: Record>(applied: Applied, id: &str) -> Result<R, HttpError> {
    applied
        .changes
        .into_iter()
        .find_map(|event| match event {
            Event::Created { object } | Event::Updated { object } | Event::Deleted { object }
                if object.kind() == R::KIND && object.meta().id == id =>
            {
                R::from_object(object)
            }
            _ => None,
        })
        .ok_or_else(|| {
            HttpError::new(
                ErrorCode::Internal,
                format!(
                    "the commit at version {} does not report {} {id}",
                    applied.version,
                    R::KIND
                ),
            )
        })
}

/// Commit `command` about record `id` and answer with the record it left (201 for a
/// create, 200 otherwise).
pub async fn commit<R: Record + Serialize>(
    api: &ApiState,
    command: Command,
    id: &str,
    status: StatusCode,
) -> Result<Found<R>, HttpError> {
    let applied = api.store.write(command).await?;
    let version = applied.version;
    let object = committed::<R>(applied, id)?;
    Ok(Found {
        status,
        version,
        object,
    })
}

/// Create `record` (its id and labels already checked).
pub async fn create<R: Record + Serialize>(
    api: &ApiState,
    record: R,
) -> Result<Found<R>, HttpError> {
    let id = record.meta().id.clone();
    commit(
        api,
        Command::create(record.into_object()),
        &id,
        StatusCode::CREATED,
    )
    .await
}

/// Replace `record` if it is still at `expected`.
pub async fn update<R: Record + Serialize>(
    api: &ApiState,
    record: R,
    expected: u64,
) -> Result<Found<R>, HttpError> {
    let id = record.meta().id.clone();
    commit(
        api,
        Command::update(record.into_object(), expected),
        &id,
        StatusCode::OK,
    )
    .await
}

/// Delete record `id` (if `expected` is given, only while still at it); answers with
/// the record as it was.
pub async fn delete<R: Record + Serialize>(
    api: &ApiState,
    id: &str,
    expected: Option<u64>,
) -> Result<Found<R>, HttpError> {
    commit(
        api,
        Command::delete(R::KIND, id, expected),
        id,
        StatusCode::OK,
    )
    .await
}

/// The version an update must name; absent: a 400 saying how to name it.
pub fn required_version(kind: Kind, id: &str, version: Option<u64>) -> Result<u64, HttpError> {
    version.ok_or_else(|| {
        HttpError::invalid(format!(
            "updating {kind} {id} needs the version you read: send `If-Match: \"<version>\"` or `?version=<version>`"
        ))
        .with("kind", kind.as_str())
        .with("id", id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_safe() {
        assert!(check_id(Kind::Stack, "web-1.prod_a").is_ok());
        for bad in ["", "-x", "a/b", "a b", "é", &"x".repeat(254)] {
            assert!(check_id(Kind::Stack, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels_are_bounded() {
        let ok: BTreeMap<String, String> = [("env".to_owned(), "prod".to_owned())].into();
        assert!(check_labels(Kind::Node, &ok).is_ok());
        let bad: BTreeMap<String, String> = [("".to_owned(), "x".to_owned())].into();
        assert!(check_labels(Kind::Node, &bad).is_err());
        let eq: BTreeMap<String, String> = [("a=b".to_owned(), "x".to_owned())].into();
        assert!(check_labels(Kind::Node, &eq).is_err());
    }
}
