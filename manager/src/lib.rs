//! The orch manager: the cluster's control plane.
//!
//! Modules:
//! - [`allocator`]: cluster-wide addresses — network subnets and vxlan ids, service
//!   virtual IPs, task addresses.
//! - [`ca`]: the cluster CA — join tokens, node certificates, revocation, and the rustls
//!   configurations of mutual TLS between nodes.
//! - [`dispatcher`]: agent sessions on the leader — heartbeats, nodes marked down.
//! - [`keyring`]: the cluster's data key — secret values sealed (AES-256-GCM) before
//!   they enter the raft log, and their keyed digests.
//! - [`logbroker`]: task logs across nodes — subscriptions on the leader, fed by the
//!   nodes through their sessions.
//! - [`orchestrator`]: stacks to services and networks, services to tasks (replicas,
//!   global, restarts, rolling updates), and the reconcile loop on the leader.
//! - [`scheduler`]: pure placement of tasks on nodes — filters (state, availability,
//!   constraints, dependencies, affinities, replicas per node, ports, resources) and
//!   strategies (spread, binpack, random), with a structured reason when no node fits.
//! - [`server`]: the manager daemon — data directory, TLS listener, join endpoints.
//! - [`http`]: the REST API `/v1` (resources, events, cluster, OpenAPI document) and
//!   `/metrics`, with authentication and leader forwarding.
//! - [`store`]: the replicated store — openraft with a durable log and state machine on
//!   redb, typed tables of the cluster objects, optimistic concurrency by version, and a
//!   watch of committed events.

pub mod allocator;
pub mod ca;
pub mod dispatcher;
pub mod http;
pub mod keyring;
pub mod logbroker;
pub mod orchestrator;
pub mod registry;
pub mod scheduler;
pub mod server;
pub mod store;
