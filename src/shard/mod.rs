//! Per-core packet handling: the shard's endpoint (`stack`), its view of a
//! NIC queue (`nic`), and the ARP/ICMP responder in front of TCP.

pub mod nic;
pub mod pcap;
pub mod responder;
pub mod rss;
pub mod stack;

#[cfg(feature = "dpdk")]
pub use nic::DpdkNic;
pub use nic::{MemNic, Nic, Tx};
pub use pcap::{CapturedNic, PcapWriter};
pub use responder::{Iface, Responder, ResponderStats};
pub use stack::{Ownership, Stack, StackConfig, SteerQueues, flow_owner};
