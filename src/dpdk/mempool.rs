use super::error::DpdkError;
use super::ffi;
use std::ffi::CString;
use std::ptr::NonNull;

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
#[derive(Debug)]
pub struct PktPool {
    ptr: NonNull<ffi::rte_mempool>,
    size: u32,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe by design
// (ring_mp_mc ops); the pointer itself is never freed while the pool lives.
unsafe impl Send for PktPool {}
// SAFETY: as above: get/put from many threads is the mempool's contract.
unsafe impl Sync for PktPool {}

impl PktPool {
    /// Creates a pool of `n` mbufs with a per-lcore cache and the default 2 KB data room.
    pub fn new(name: &str, n: u32, cache: u32, socket: i32) -> Result<PktPool, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::msg("mbuf pool", "name contains a NUL byte"))?;
        // SAFETY: cname is a valid C string for the duration of the call; the
        // other arguments are plain values.
        let p = unsafe {
            ffi::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n,
                cache,
                0,
                ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                socket,
            )
        };
        NonNull::new(p)
            .map(|ptr| PktPool { ptr, size: n })
            .ok_or_else(|| {
                DpdkError::last(format!("mbuf pool '{name}' of {n} mbufs")).with_hint(
                    " (not enough DPDK memory: give EAL more with -m, reserve hugepages, or use fewer mbufs)",
                )
            })
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Mbufs currently free in the pool (including per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive; the count is a read-only walk of its state.
        unsafe { ffi::sluice_mempool_avail_count(self.ptr.as_ptr()) }
    }

    pub fn size(&self) -> u32 {
        self.size
    }
}

impl Drop for PktPool {
    fn drop(&mut self) {
        // SAFETY: the pool was created by us and every Mbuf borrows nothing from
        // it by reference; ports using it must be stopped first (caller's order).
        unsafe { ffi::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
