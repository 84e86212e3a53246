//! Fixtures for tests of orch and of programs built on it (feature `testing`):
//! real peers started per test, cleaned up on drop.
//!
//! - [`engine`]: an `orch agent` process, optionally inside a test host.
//! - [`lan`]: test hosts made of network namespaces, and a private bridge joining them.
//! - [`proxy`]: a loopback HTTP proxy that breaks a download off midway.
//! - [`registry`]: a docker-registry process on a loopback port.
//! - [`stats`]: a chi-square test of how evenly counts spread.
//! - [`token`]: a bearer-token service for a registry with token auth.

pub mod engine;
pub mod lan;
pub mod proxy;
pub mod registry;
pub mod stats;
pub mod token;
