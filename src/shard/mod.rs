//! Per-core packet handling: the shard's endpoint (`stack`, one file per job
//! in `stack/`), the I/O-free routing of TCP segments it shares with the
//! simulation (`route`), flow ownership and software steering (`steer`), its
//! view of a NIC queue (`nic`, `pcap`), RSS (`rss`), and the ARP/ICMP
//! responder in front of TCP.

pub mod nic;
pub mod pcap;
pub mod responder;
pub mod route;
pub mod rss;
pub mod stack;
pub mod steer;

#[cfg(feature = "dpdk")]
pub use nic::DpdkNic;
pub use nic::{MemNic, Nic, Tx};
pub use pcap::{CapturedNic, PcapWriter};
pub use responder::{Iface, Responder, ResponderStats};
pub use stack::{GratuitousArp, Stack, StackConfig};
pub use steer::{Ownership, SteerQueues, flow_owner};
