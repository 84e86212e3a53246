//! The orch manager: the cluster's control plane.
//!
//! Modules:
//! - [`ca`]: the cluster CA — join tokens, node certificates, revocation, and the rustls
//!   configurations of mutual TLS between nodes.
//! - [`dispatcher`]: agent sessions on the leader — heartbeats, nodes marked down.
//! - [`scheduler`]: pure placement of tasks on nodes — filters (state, availability,
//!   constraints, dependencies, affinities, replicas per node, ports, resources) and
//!   strategies (spread, binpack, random), with a structured reason when no node fits.
//! - [`server`]: the manager daemon — data directory, TLS listener, join endpoints.
//! - [`http`]: the REST API `/v1` (resources, events, cluster, OpenAPI document) and
//!   `/metrics`, with authentication and leader forwarding.
//! - [`store`]: the replicated store — openraft with a durable log and state machine on
//!   redb, typed tables of the cluster objects, optimistic concurrency by version, and a
//!   watch of committed events.

pub mod ca;
pub mod dispatcher;
pub mod http;
pub mod scheduler;
pub mod server;
pub mod store;
