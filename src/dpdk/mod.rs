//! Safe wrappers over DPDK: EAL, mbuf pools, owned mbufs, ethdev ports and
//! queues, and the virtual devices sluice runs on without a NIC.
//!
//! All `unsafe` in sluice's DPDK use lives in this module; each block says why
//! it is sound in a `// SAFETY:` line.

mod eal;
mod error;
mod ethdev;
pub mod ffi;
mod mbuf;
mod mempool;
mod ring;

pub use eal::{Eal, EalOptions, MemoryMode, free_hugepages};
pub use error::DpdkError;
pub use ethdev::{DevInfo, EthPort, LinkStatus, PortConfig, PortStats, Queue};
pub use mbuf::Mbuf;
pub use mempool::PktPool;
pub use ring::ring_pair;

/// Version of the libdpdk sluice was built against.
pub const DPDK_VERSION: &str = env!("SLUICE_DPDK_VERSION");

/// The CPU's time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the TSC; no memory is touched.
    unsafe { ffi::sluice_rdtsc() }
}

/// TSC ticks per second, as measured by EAL (valid after `Eal::init`).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init; no arguments.
    unsafe { ffi::sluice_tsc_hz() }
}

/// The DPDK lcore id of the calling thread (`u32::MAX` on a non-EAL thread).
pub fn lcore_id() -> u32 {
    // SAFETY: reads a per-thread variable.
    unsafe { ffi::sluice_lcore_id() }
}
