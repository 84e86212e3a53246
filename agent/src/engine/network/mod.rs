//! Container networks: today the embedded DNS server each container resolves through.
pub mod dns;
