use super::ffi;
use super::mempool::PktPool;
use std::ptr::NonNull;

/// An owned packet buffer. Frees itself on drop, so a packet the NIC refused,
/// or one the application dropped, never leaks.
///
/// `repr(transparent)` over the pointer, so a `[Mbuf]` is a `[*mut rte_mbuf]`
/// and bursts move straight between Rust vectors and the driver.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<ffi::rte_mbuf>);

// SAFETY: an mbuf is owned by exactly one Mbuf value; moving it to another
// thread moves the ownership (DPDK mbufs are not tied to a thread).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Allocates an empty mbuf, or `None` when the pool is exhausted.
    #[inline]
    pub fn alloc(pool: &PktPool) -> Option<Mbuf> {
        // SAFETY: the pool is alive for the call; a non-null result is a fresh
        // mbuf that we now own.
        NonNull::new(unsafe { ffi::sluice_pktmbuf_alloc(pool.as_ptr()) }).map(Mbuf)
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that nothing else owns or will free.
    #[inline]
    pub unsafe fn from_raw(ptr: NonNull<ffi::rte_mbuf>) -> Mbuf {
        Mbuf(ptr)
    }

    /// Gives up ownership without freeing.
    #[inline]
    pub fn into_raw(self) -> NonNull<ffi::rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    /// Bytes in the first segment.
    #[inline]
    pub fn data_len(&self) -> usize {
        // SAFETY: we own a valid mbuf.
        usize::from(unsafe { ffi::sluice_pktmbuf_data_len(self.0.as_ptr()) })
    }

    /// Bytes in the whole packet (all segments).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        // SAFETY: we own a valid mbuf.
        unsafe { ffi::sluice_pktmbuf_pkt_len(self.0.as_ptr()) as usize }
    }

    /// Segments in the chain; sluice configures ports so received packets have one.
    #[inline]
    pub fn segments(&self) -> u16 {
        // SAFETY: we own a valid mbuf.
        unsafe { ffi::sluice_pktmbuf_nb_segs(self.0.as_ptr()) }
    }

    /// Room left after the data in the first segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        // SAFETY: we own a valid mbuf.
        usize::from(unsafe { ffi::sluice_pktmbuf_tailroom(self.0.as_ptr()) })
    }

    /// The first segment's data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: mtod points at data_len initialised bytes inside the mbuf's
        // buffer, which lives as long as we own the mbuf; &self forbids writes.
        unsafe {
            std::slice::from_raw_parts(
                ffi::sluice_pktmbuf_mtod(self.0.as_ptr()) as *const u8,
                self.data_len(),
            )
        }
    }

    /// The first segment's data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `data`, and &mut self makes the access exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                ffi::sluice_pktmbuf_mtod(self.0.as_ptr()) as *mut u8,
                self.data_len(),
            )
        }
    }

    /// Grows the data by `len` bytes at the tail and returns them (zeroed is not
    /// promised), or `None` when the tailroom is too small.
    #[inline]
    pub fn append(&mut self, len: usize) -> Option<&mut [u8]> {
        let len16 = u16::try_from(len).ok()?;
        // SAFETY: we own the mbuf; append returns NULL (and changes nothing) when
        // there is no room, else a pointer to `len` bytes inside the buffer.
        let p = unsafe { ffi::sluice_pktmbuf_append(self.0.as_ptr(), len16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: p points at len bytes we just appended, exclusively ours.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len) })
    }

    /// Shrinks the data by `len` bytes at the tail. False if it is shorter.
    #[inline]
    pub fn trim(&mut self, len: usize) -> bool {
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        // SAFETY: we own the mbuf; trim fails without change when too short.
        unsafe { ffi::sluice_pktmbuf_trim(self.0.as_ptr(), len16) == 0 }
    }

    /// Allocates an mbuf holding a copy of `bytes`.
    pub fn from_slice(pool: &PktPool, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = Mbuf::alloc(pool)?;
        m.append(bytes.len())?.copy_from_slice(bytes);
        Some(m)
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (and its chain); it is freed exactly once here.
        unsafe { ffi::sluice_pktmbuf_free(self.0.as_ptr()) }
    }
}
