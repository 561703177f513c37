//! sluice: a user-space TCP endpoint on DPDK.
//!
//! Layers (see README.md): `wire` (packet formats), `dpdk` (packet I/O, behind the
//! `dpdk` feature), `shard` (per-core packet handling).

pub mod app;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod kernel;
pub mod shard;
pub mod sim;
pub mod stats;
pub mod table;
pub mod tcp;
pub mod time;
pub mod timer;
pub mod tools;
pub mod wire;
