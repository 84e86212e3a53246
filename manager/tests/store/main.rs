//! The raft store for real, in one test binary: openraft's storage conformance suite
//! on the redb log store and state machine ([`storage_suite`]), a single manager
//! ([`single_node`]), and three managers with a leader killed mid-stream ([`cluster`]).
//! The cluster CA over real TLS on 127.0.0.1 (join, mutual TLS, refusals): [`ca`].
//! The REST API over HTTP on 127.0.0.1 in front of real stores: [`http`].
//! The manager daemon over TLS: joining, agent sessions, nodes marked down: [`daemon`];
//! join token rotation, node updates and removal (revocation): [`nodes`]; certificate
//! renewal, for a new key and the role the store says, and its refusals: [`renew`];
//! managers leaving the raft group, only with a quorum: [`membership`]; a worker
//! promoted to manager: [`promote`]; a task waiting for a config placed once it exists
//! ([`reconcile`]). The leader writes its log in parallel with replicating it, and
//! nothing outside raft sees an entry before a majority has it on disk: [`parallel_log`].
//! The cluster image registry on two managers: [`registry`].

mod ca;
mod cluster;
mod common;
mod daemon;
mod durability;
mod http;
mod membership;
mod nodes;
mod parallel_log;
mod promote;
mod reconcile;
mod registry;
mod renew;
mod single_node;
mod storage_suite;
