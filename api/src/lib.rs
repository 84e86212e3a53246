//! orch's shared language: the object types every other crate speaks.
//!
//! Modules:
//! - [`cluster`]: cluster objects (nodes, stacks, services, tasks) and their events.
//! - [`join`]: joining a cluster (token + certificate request -> node certificate).
//! - [`session`]: an agent's session with the managers (register, heartbeat).
//! - [`stack`]: a stack (services, networks, volumes, secrets, configs).
//! - [`secret`]: secrets (sealed by the managers) and configs, mounted as files.
//! - [`service`]: a service in the compose model's canonical long form.
//! - [`deploy`]: placement, resources, restart and update policies.
//! - [`units`]: durations, byte sizes and file modes as stack files write them.
//! - [`value`]: a free-form value for `x-*` extensions.
//! - [`volume`]: named volumes as the engine's API shows them.
//! - [`network`]: networks as the engine's API shows them, and published ports.
//! - [`container`]: containers as the engine's API shows them, and log lines.
//! - [`logs`]: task logs across nodes (subscriptions, published batches, lines).
//! - [`error`]: errors on the wire (`{"error": {"code", "message", "details"}}`).
//! - [`image`]: images as the engine's API shows them, and transfer progress.
//! - `client` (feature `client`): the typed HTTP client of the APIs.
//! - `openapi` (feature `openapi`): hand-written OpenAPI schemas; with the feature, the
//!   types derive `utoipa::ToSchema` for the manager's `/v1/openapi.json`.

#[cfg(feature = "client")]
pub mod client;
pub mod cluster;
pub mod container;
pub mod deploy;
pub mod error;
pub mod image;
pub mod join;
pub mod logs;
pub mod network;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod registry;
pub mod secret;
pub mod service;
pub mod session;
pub mod stack;
pub mod units;
pub mod value;
pub mod volume;

pub use service::ServiceSpec;
pub use stack::StackSpec;
pub use value::Value;

/// `true` when a value equals its type's default (used to omit defaults when serializing).
pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
