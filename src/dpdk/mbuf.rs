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

    /// The mbuf's header, read in place (the fast path reads fields from Rust
    /// rather than through the C shim).
    #[inline]
    fn raw(&self) -> &ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf; nothing else reads or writes it while we do.
        unsafe { self.0.as_ref() }
    }

    /// Bytes in the first segment.
    #[inline]
    pub fn data_len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    /// Bytes in the whole packet (all segments).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Segments in the chain; sluice configures ports so received packets have one.
    #[inline]
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Room left after the data in the first segment (`rte_pktmbuf_tailroom`).
    #[inline]
    pub fn tailroom(&self) -> usize {
        let r = self.raw();
        usize::from(r.buf_len) - usize::from(r.data_off) - usize::from(r.data_len)
    }

    /// The first segment's data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let r = self.raw();
        // SAFETY: buf_addr + data_off (rte_pktmbuf_mtod) starts data_len
        // initialised bytes inside the mbuf's buffer, which lives as long as we
        // own the mbuf; &self forbids writes.
        unsafe {
            std::slice::from_raw_parts(
                (r.buf_addr as *const u8).add(usize::from(r.data_off)),
                usize::from(r.data_len),
            )
        }
    }

    /// The first segment's data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = (usize::from(self.raw().data_off), self.data_len());
        // SAFETY: as for `data`, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut((self.raw().buf_addr as *mut u8).add(off), len) }
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

    /// The first segment's room after its data (what `append` could take), to
    /// write a frame in place before `set_len` says how much of it is data.
    /// Zeroed is not promised.
    #[inline]
    pub fn tailroom_mut(&mut self) -> &mut [u8] {
        let r = self.raw();
        let start = usize::from(r.data_off) + usize::from(r.data_len);
        let room = usize::from(r.buf_len) - start;
        // SAFETY: buf_addr points at buf_len bytes owned by the mbuf, which we
        // own exclusively (&mut self); `start + room` is buf_len, so the slice
        // stays inside the buffer.
        unsafe { std::slice::from_raw_parts_mut((r.buf_addr as *mut u8).add(start), room) }
    }

    /// Sets a one-segment mbuf's data to its first `len` bytes (data_len and
    /// pkt_len at once, where `append` + `trim` would take two calls): what was
    /// written through `tailroom_mut` after the old data counts.
    ///
    /// # Panics
    /// If the mbuf is chained or `len` is more than fits after `data_off`.
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        let r = self.raw();
        assert!(
            r.nb_segs == 1 && len <= usize::from(r.buf_len) - usize::from(r.data_off),
            "set_len past a one-segment mbuf's buffer"
        );
        // SAFETY: we own the mbuf exclusively (&mut self); len fits the first and
        // only segment (checked above), so data_len == pkt_len keeps it consistent.
        let r = unsafe { self.0.as_mut() };
        r.data_len = len as u16;
        r.pkt_len = len as u32;
    }

    /// Allocates `n` mbufs at once (`rte_pktmbuf_alloc_bulk`, one trip to the
    /// pool), appended to `out`: all of them, or none and false when the pool
    /// has fewer than `n` free.
    pub fn alloc_bulk(pool: &PktPool, out: &mut Vec<Mbuf>, n: usize) -> bool {
        let Ok(n32) = u32::try_from(n) else {
            return false;
        };
        out.reserve(n);
        let len = out.len();
        // SAFETY: Mbuf is repr(transparent) over a non-null rte_mbuf pointer, and
        // `out` has room for `n` more; on success (0) the pool wrote `n` fresh
        // mbufs that we now own, on failure it wrote none that count.
        unsafe {
            let dst = out.as_mut_ptr().add(len) as *mut *mut ffi::rte_mbuf;
            if ffi::sluice_pktmbuf_alloc_bulk(pool.as_ptr(), dst, n32) != 0 {
                return false;
            }
            out.set_len(len + n);
        }
        true
    }

    /// Frees every mbuf in `mbufs` at once (`rte_pktmbuf_free_bulk`, one trip
    /// to each pool for the lot), leaving the vector empty.
    pub fn free_bulk(mbufs: &mut Vec<Mbuf>) {
        let n = mbufs.len();
        if n == 0 {
            return;
        }
        // SAFETY: the vector holds `n` owned mbufs laid out as rte_mbuf pointers
        // (repr(transparent)); we give them all to DPDK and forget them here
        // (set_len(0) first, so none is freed twice, even if the call unwound).
        unsafe {
            mbufs.set_len(0);
            ffi::rte_pktmbuf_free_bulk(mbufs.as_mut_ptr() as *mut *mut ffi::rte_mbuf, n as u32);
        }
    }

    /// Takes back mbufs we are done with (a received burst) as fresh ones to
    /// build frames in, saving a trip to the pool and back: while `fresh` has
    /// fewer than `cap`, each one-segment, direct mbuf of `pool` whose last
    /// reference this was is reset as `alloc` would and pushed on `fresh`; the
    /// others are freed (in bulk) as on drop. `mbufs` is left empty.
    pub fn recycle(mbufs: &mut Vec<Mbuf>, pool: &PktPool, fresh: &mut Vec<Mbuf>, cap: usize) {
        let n = mbufs.len();
        if n == 0 {
            return;
        }
        let room = cap.saturating_sub(fresh.len()).min(n);
        fresh.reserve(room);
        let len = fresh.len();
        // SAFETY: both vectors hold owned mbufs laid out as rte_mbuf pointers
        // (repr(transparent)). `mbufs` gives all `n` up (set_len(0) first, so
        // none is freed twice); the shim frees or keeps each, writing at most
        // `room` kept ones into `fresh`'s reserved spare capacity, which become
        // its next elements, owned by us.
        unsafe {
            mbufs.set_len(0);
            let keep = fresh.as_mut_ptr().add(len) as *mut *mut ffi::rte_mbuf;
            let kept = ffi::sluice_pktmbuf_recycle(
                mbufs.as_mut_ptr() as *mut *mut ffi::rte_mbuf,
                n as u32,
                pool.as_ptr(),
                keep,
                room as u32,
            );
            fresh.set_len(len + kept as usize);
        }
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
