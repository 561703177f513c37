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

/// Waits until EAL's interrupt thread has finished whatever callback it is
/// running now (up to `timeout`): an alarm, which that thread runs after
/// the callback in hand, marks the point. Drivers such as memif handle
/// their control channel on that thread; a caller that must not touch a
/// device while such a handler is still at work waits here first.
pub fn interrupt_thread_barrier(timeout: std::time::Duration) -> Result<(), DpdkError> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    unsafe extern "C" fn mark(arg: *mut std::ffi::c_void) {
        // SAFETY: `arg` is the `Arc` given to `rte_eal_alarm_set` below,
        // turned into a raw pointer once; this callback runs at most once
        // and takes that reference back.
        let done = unsafe { Arc::from_raw(arg as *const AtomicBool) };
        done.store(true, Ordering::Release);
    }

    let done = Arc::new(AtomicBool::new(false));
    let arg = Arc::into_raw(done.clone()) as *mut std::ffi::c_void;
    // SAFETY: EAL is initialised (the caller holds ports); `mark` matches
    // rte_eal_alarm_callback and owns `arg` once it runs.
    let rc = unsafe { ffi::rte_eal_alarm_set(1, Some(mark), arg) };
    if rc != 0 {
        // SAFETY: the alarm was not set, so `arg` is still ours.
        drop(unsafe { Arc::from_raw(arg as *const AtomicBool) });
        return Err(DpdkError::last("rte_eal_alarm_set"));
    }
    let t0 = std::time::Instant::now();
    while !done.load(Ordering::Acquire) {
        if t0.elapsed() > timeout {
            // SAFETY: `mark` and `arg` are the pair set above; a cancelled
            // alarm never runs, so its reference comes back to us.
            if unsafe { ffi::rte_eal_alarm_cancel(Some(mark), arg) } > 0 {
                drop(unsafe { Arc::from_raw(arg as *const AtomicBool) });
            }
            return Err(DpdkError::msg(
                "EAL interrupt thread",
                format!("still busy after {timeout:?}"),
            ));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    Ok(())
}

/// The DPDK lcore id of the calling thread (`u32::MAX` on a non-EAL thread).
pub fn lcore_id() -> u32 {
    // SAFETY: reads a per-thread variable.
    unsafe { ffi::sluice_lcore_id() }
}
