//! `/v1/openapi.json`: the OpenAPI document, generated from the handlers' annotations and
//! the api types' schemas, with the bearer security scheme and the error responses
//! every operation can give (in one place, here).

use api::error::ErrorEnvelope;
use axum::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

/// The document's fixed parts; paths come from the routers in `super::router`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "orch manager API",
        description = "The control plane of an orch cluster. Errors answer `{\"error\": {\"code\", \"message\", \"details\"}}` with the HTTP status of their code."
    ),
    components(schemas(ErrorEnvelope)),
    modifiers(&Bearer),
    tags(
        (name = "nodes", description = "Hosts of the cluster (created by joining)"),
        (name = "stacks", description = "Deployed stacks"),
        (name = "services", description = "Services of stacks"),
        (name = "networks", description = "Cluster networks (overlays)"),
        (name = "secrets", description = "Secrets: values sealed by the managers, mounted by tasks under /run/secrets"),
        (name = "configs", description = "Configs: values mounted by tasks as files"),
        (name = "volumes", description = "Named volumes of stacks, kept on the nodes or being removed from them"),
        (name = "tasks", description = "Replicas of services"),
        (name = "events", description = "Committed changes as server-sent events"),
        (name = "cluster", description = "The raft group of managers"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "openapi", description = "This document"),
    )
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The fixed parts of the document.
pub fn base() -> OpenApi {
    ApiDoc::openapi()
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
}

fn add_errors(operation: &mut Operation, path: &str) {
    let mut errors = vec![
        (
            "400",
            "invalid_argument: a malformed parameter, header or body",
        ),
        (
            "401",
            "unauthorized: no credentials, or a refused bearer token",
        ),
        (
            "403",
            "permission_denied: the caller (a worker node) may not use this API",
        ),
        ("500", "internal: this manager is broken (storage, raft)"),
        (
            "503",
            "unavailable: no leader, no quorum, or not the leader (details.leader names it)",
        ),
    ];
    if operation.request_body.is_some() {
        errors.push(("413", "payload_too_large: the body is over the limit"));
        errors.push((
            "415",
            "unsupported_media_type: the body is not application/json",
        ));
    }
    let resource = [
        "/v1/nodes",
        "/v1/stacks",
        "/v1/services",
        "/v1/tasks",
        "/v1/networks",
        "/v1/volumes",
    ];
    if resource.iter().any(|r| path.starts_with(r)) {
        errors.push(("502", "upstream: forwarding to the leader failed"));
    }
    for (status, description) in errors {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description).into());
    }
}

/// Add the error responses every operation can give.
pub fn document_errors(openapi: &mut OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ];
        for operation in operations.into_iter().flatten() {
            add_errors(operation, path);
        }
    }
}

/// The document, serialized once.
#[derive(Clone, Debug)]
pub struct Document(pub Arc<String>);

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "openapi",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub async fn document(Extension(doc): Extension<Document>) -> Response {
    let mut response = doc.0.as_str().to_owned().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
