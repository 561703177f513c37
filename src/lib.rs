//! sluice: a user-space TCP endpoint on DPDK.
//!
//! Layers, bottom up (README.md, "Layout"; no layer reaches up):
//! - `time`, `counters`: the engine's clock type; counters and their labels
//!   declared once.
//! - `wire`: zero-copy packet views, parse/emit, checksums, sequence numbers.
//! - `tcp`: the sans-I/O connection, TIME_WAIT records, ISNs, SYN cookies.
//! - `timer`: the timing wheel and FIFO timers (no clock inside).
//! - `table`: a shard's connections, TIME_WAIT records and listeners.
//! - `sim`: a deterministic lossy network for tests.
//! - `stats`: counters, latency histograms, reports and their outputs.
//! - `app`: the server applications and the HTTP load generator.
//! - `shard`: one core's endpoint over a packet I/O trait (DPDK or in memory).
//! - `kernel`: the same applications over Linux sockets (`--kernel`).
//! - `dpdk` (feature `dpdk`): the only unsafe code: EAL, mbufs, ports, queues.
//! - `tools` (feature `dpdk`): the commands and the shard runtime.

pub mod app;
pub mod counters;
#[cfg(feature = "dpdk")]
pub mod dpdk;
mod flags;
pub mod huge;
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
