//! Networks of the engine: bridges with NAT and isolation, published ports, vxlan
//! overlays, and each container's place on them.
//!
//! - [`subnet`], [`ipam`], [`ports`]: pure address and port bookkeeping.
//! - [`nft`]: the packet rules as data, applied as one nftables transaction.
//! - [`netns`]: network namespaces held by the engine.
//! - [`link`]: links, addresses, routes and forwarding entries over rtnetlink.
//! - [`service`]: the networks, containers' endpoints and ports, kept on disk.
//! - [`dns`]: the embedded DNS server each container resolves through.
//! - [`vip`]: services on a network: their names and virtual-address rules.
pub mod dns;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod service;
pub mod subnet;
pub mod vip;
