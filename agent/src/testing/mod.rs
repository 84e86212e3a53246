//! Fixtures for tests of orch and of programs built on it (feature `testing`):
//! real peers started per test, cleaned up on drop.
//!
//! - [`proxy`]: a loopback HTTP proxy that breaks a download off midway.
//! - [`registry`]: a docker-registry process on a loopback port.
//! - [`token`]: a bearer-token service for a registry with token auth.

pub mod proxy;
pub mod registry;
pub mod token;
