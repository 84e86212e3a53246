//! The raft store for real, in one test binary: openraft's storage conformance suite
//! on the redb log store and state machine ([`storage_suite`]), a single manager
//! ([`single_node`]), and three managers with a leader killed mid-stream ([`cluster`]).
//! The cluster CA over real TLS on 127.0.0.1 (join, mutual TLS, refusals): [`ca`].

mod ca;
mod cluster;
mod common;
mod single_node;
mod storage_suite;
