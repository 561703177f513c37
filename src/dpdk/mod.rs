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

pub use eal::{Eal, EalOptions, MemoryMode, free_hugepages, memif_zero_copy};
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
/// running now (up to `timeout`). Drivers such as memif handle their
/// control channel on that thread; a caller that must not touch a device
/// while such a handler is still at work waits here first.
///
/// The mark is a callback of our own on a socket of our own, registered
/// with the interrupt thread, made readable, and unregistered again before
/// this returns (waiting if it is running): nothing of it is left with the
/// interrupt thread. (An EAL alarm would do as a mark, but EAL never
/// unregisters its alarm source, and `rte_eal_cleanup` frees it under the
/// still-running interrupt thread: a SIGSEGV in `rte_intr_fd_get` at exit.)
pub fn interrupt_thread_barrier(timeout: std::time::Duration) -> Result<(), DpdkError> {
    use std::io::{Read, Write};
    use std::os::unix::io::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Mark {
        rx: UnixStream,
        done: AtomicBool,
    }
    unsafe extern "C" fn mark(arg: *mut std::ffi::c_void) {
        // SAFETY: `arg` points at the `Mark` below, which outlives the
        // registration (it is unregistered, synchronously, before `Mark`
        // is dropped); the callback only reads through a shared reference.
        let m = unsafe { &*(arg as *const Mark) };
        let mut byte = [0u8; 16];
        let _ = (&m.rx).read(&mut byte); // non-blocking: empties the socket
        m.done.store(true, Ordering::Release);
    }

    let (tx, rx) = UnixStream::pair().map_err(|e| DpdkError::msg("socketpair", e.to_string()))?;
    rx.set_nonblocking(true)
        .map_err(|e| DpdkError::msg("socketpair", e.to_string()))?;
    let m = Box::new(Mark {
        rx,
        done: AtomicBool::new(false),
    });
    let arg = &*m as *const Mark as *mut std::ffi::c_void;
    // SAFETY: EAL is initialised (the caller holds ports). The handle is
    // ours (private memory), freed below after its callback is gone.
    let handle = unsafe { ffi::rte_intr_instance_alloc(0) };
    if handle.is_null() {
        return Err(DpdkError::last("rte_intr_instance_alloc"));
    }
    // SAFETY: `handle` is a live instance; `m.rx`'s descriptor stays open
    // until after the unregistration; `mark` matches rte_intr_callback_fn and
    // `arg` stays valid as long as it is registered.
    let registered = unsafe {
        ffi::rte_intr_type_set(handle, ffi::rte_intr_handle_type_RTE_INTR_HANDLE_EXT) == 0
            && ffi::rte_intr_fd_set(handle, m.rx.as_raw_fd()) == 0
            && ffi::rte_intr_callback_register(handle, Some(mark), arg) == 0
    };
    if !registered {
        // SAFETY: nothing was registered (or registration failed): ours to free.
        unsafe { ffi::rte_intr_instance_free(handle) };
        return Err(DpdkError::last("rte_intr_callback_register"));
    }
    let _ = (&tx).write(&[1]);
    let t0 = std::time::Instant::now();
    let mut in_time = true;
    while !m.done.load(Ordering::Acquire) {
        if t0.elapsed() > timeout {
            in_time = false;
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    // SAFETY: the pair registered above; `_sync` returns once the callback is
    // not running and never will again, so `m` and `handle` may go.
    unsafe {
        ffi::rte_intr_callback_unregister_sync(handle, Some(mark), arg);
        ffi::rte_intr_instance_free(handle);
    }
    drop(m);
    if in_time {
        Ok(())
    } else {
        Err(DpdkError::msg(
            "EAL interrupt thread",
            format!("still busy after {timeout:?}"),
        ))
    }
}

/// The DPDK lcore id of the calling thread (`u32::MAX` on a non-EAL thread).
pub fn lcore_id() -> u32 {
    // SAFETY: reads a per-thread variable.
    unsafe { ffi::sluice_lcore_id() }
}
