//! The `sluice` binary's allocator: the system's, and one thing more. A
//! block of `HUGE_MIN` bytes or more (a shard's connection slab, its
//! flow index, its timer slabs and queues: gigabytes at ten million
//! connections) is marked for transparent huge pages (`madvise`,
//! `MADV_HUGEPAGE`). Kernels set to give huge pages only where asked
//! (`/sys/kernel/mm/transparent_hugepage/enabled` is `madvise`, as Debian's
//! is) would otherwise map those gigabytes in 4 KiB pages: a TLB miss, and a
//! page-table walk that misses the cache too, on nearly every connection a
//! shard touches. Measured at 10 M keep-alive connections (`sluice bench
//! --keep-alive -c 10000000 --think 20000`): both shards 97-99 % busy while
//! opening with 4 KiB pages, 70-80 % with huge pages. Small blocks are left
//! alone (a huge page for a few kilobytes would waste memory).
//!
//! Nothing else changes: the memory is the same, only how the kernel maps
//! it. Where huge pages are off (`never`) or the call fails, the advice is
//! ignored.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks this large or larger are advised.
pub const HUGE_MIN: usize = 32 << 20;
const HUGE_PAGE: usize = 2 << 20;
const MADV_HUGEPAGE: i32 = 14;

unsafe extern "C" {
    fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
}

/// The system allocator, advising huge pages for large blocks.
pub struct HugeAlloc;

/// Advises the whole huge pages inside `len` bytes at `p` (a block the
/// allocator just handed out, so mapped and ours).
fn advise(p: *mut u8, len: usize) {
    let start = (p as usize).next_multiple_of(HUGE_PAGE);
    let end = (p as usize + len) & !(HUGE_PAGE - 1);
    if end > start {
        // SAFETY: [start, end) lies inside the block just allocated (mapped,
        // and no one else's); MADV_HUGEPAGE changes how the kernel backs it,
        // never its contents. A failure is harmless and ignored.
        unsafe {
            madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every call goes to `System` with the caller's arguments
// unchanged; `advise` only adds advice about pages of the returned block.
unsafe impl GlobalAlloc for HugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `System.alloc`'s contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if layout.size() >= HUGE_MIN && !p.is_null() {
            advise(p, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `System.alloc_zeroed`'s contract, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if layout.size() >= HUGE_MIN && !p.is_null() {
            advise(p, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `System.dealloc`'s contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `System.realloc`'s contract, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if new_size >= HUGE_MIN && !p.is_null() {
            advise(p, new_size);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_come_back_usable_and_advised_ranges_stay_inside() {
        let a = HugeAlloc;
        let layout = Layout::from_size_align(HUGE_MIN + 12345, 64).unwrap();
        // SAFETY: a nonzero layout; the block is written within its size and
        // freed with the same layout.
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(*p.add(HUGE_MIN), 0);
            *p.add(HUGE_MIN + 12344) = 7;
            let q = a.realloc(p, layout, 2 * HUGE_MIN);
            assert!(!q.is_null());
            assert_eq!(*q.add(HUGE_MIN + 12344), 7);
            a.dealloc(q, Layout::from_size_align(2 * HUGE_MIN, 64).unwrap());
        }
    }
}
