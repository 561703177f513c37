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

/// Makes the calling thread (one DPDK did not start) an lcore, so it gets an
/// lcore id and per-lcore mempool caches. Returns its lcore id.
pub fn register_thread() -> Result<u32, DpdkError> {
    // SAFETY: EAL is initialised by the caller's contract (an `Eal` exists); the
    // call only touches EAL's lcore table and this thread's TLS.
    let rc = unsafe { ffi::rte_thread_register() };
    if rc != 0 {
        return Err(DpdkError::last("rte_thread_register")
            .with_hint(" (all RTE_MAX_LCORE lcore ids are in use; start fewer threads)"));
    }
    Ok(lcore_id())
}

/// Undoes `register_thread` (before the thread ends).
pub fn unregister_thread() {
    // SAFETY: called on a thread `register_thread` registered; releases its lcore id.
    unsafe { ffi::rte_thread_unregister() }
}

/// Nanoseconds from the TSC: one read per shard loop turn.
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    t0: u64,
    /// Nanoseconds per tick, as a 32.32 fixed-point number.
    mult: u64,
}

impl TscClock {
    /// Valid after `Eal::init` (EAL measures the TSC frequency).
    pub fn new() -> TscClock {
        let hz = tsc_hz().max(1);
        TscClock {
            t0: rdtsc(),
            mult: ((1_000_000_000u128 << 32) / u128::from(hz)) as u64,
        }
    }

    #[inline]
    pub fn now(&self) -> crate::time::Instant {
        let d = rdtsc().wrapping_sub(self.t0);
        crate::time::Instant(((u128::from(d) * u128::from(self.mult)) >> 32) as u64)
    }
}

impl Default for TscClock {
    fn default() -> Self {
        TscClock::new()
    }
}

/// The DPDK lcore id of the calling thread (`u32::MAX` on a non-EAL thread).
pub fn lcore_id() -> u32 {
    // SAFETY: reads a per-thread variable.
    unsafe { ffi::sluice_lcore_id() }
}
