//! The embedded DNS server of each container, like Docker's resolver at 127.0.0.11.
//!
//! The engine opens a UDP socket and a TCP listener on 127.0.0.11 inside the
//! container's network namespace, at ports the kernel picks (the namespace's table
//! `ip orch-dns` sends 127.0.0.11:53 there, so port 53 stays free for the
//! container's own programs), and hands them to [`DnsServer::spawn`], which serves
//! them on the agent's runtime. Names the container may resolve (services, their
//! aliases, `tasks.<service>`, container names of the networks it is on) come as a
//! [`Records`] table through a watch channel, so they change as tasks come and go;
//! everything else is forwarded, from the agent's own namespace, to the host's
//! resolvers ([`upstreams_from_resolv_conf`]).
//!
//! - [`records`]: the table of names one container may resolve.
//! - [`answer`]: the pure core: one query in, a reply (or "forward", or "drop") out.
//! - [`upstream`]: the host's resolvers, and forwarding a query to them (UDP, TCP).
//! - [`server`]: the UDP and TCP loops and the handle that stops them.
pub mod answer;
#[cfg(test)]
mod answer_tests;
pub mod records;
pub mod server;
#[cfg(test)]
mod server_tests;
pub mod upstream;

pub use answer::{Outcome, TTL, answer};
pub use records::Records;
pub use server::{DnsHandle, DnsServer};
pub use upstream::upstreams_from_resolv_conf;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// What went wrong in the DNS server or while forwarding a query.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// [`DnsServer::spawn`] was called outside a tokio runtime.
    #[error("start the DNS server: not called from within a tokio runtime")]
    NoRuntime,
    /// A socket handed to the server could not be prepared.
    #[error("{op} the DNS server's {socket} socket: {source}")]
    Socket {
        op: &'static str,
        socket: &'static str,
        source: io::Error,
    },
    /// Talking to an upstream resolver failed.
    #[error("{op} upstream DNS server {server}: {source}")]
    Upstream {
        op: &'static str,
        server: SocketAddr,
        source: io::Error,
    },
    /// An upstream resolver did not answer in time.
    #[error("upstream DNS server {server} did not answer within {timeout:?}")]
    UpstreamTimeout {
        server: SocketAddr,
        timeout: Duration,
    },
    /// An upstream resolver answered something that is not the reply to our query.
    #[error("upstream DNS server {server} sent a reply that does not match the query")]
    UpstreamMismatch { server: SocketAddr },
    /// There is no upstream resolver to forward to.
    #[error("forward a DNS query: no upstream DNS server is configured")]
    NoUpstream,
    /// The query to forward is not a DNS query with one question.
    #[error("forward a DNS query: not a query with one question")]
    NotAQuery,
}
