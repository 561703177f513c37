//! Per-core packet handling. For now: the L2/L3 responder (ARP and ICMP echo)
//! that every shard runs in front of TCP.

pub mod responder;

pub use responder::{Drop, Iface, Responder, ResponderStats};
