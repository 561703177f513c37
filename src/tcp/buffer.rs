//! Bounded byte rings for a connection's send and receive data: memory is
//! taken as data arrives, from a per-thread pool (so a short connection costs
//! no allocation), up to the configured capacity, and given back to the pool
//! when the ring empties (so an idle connection costs its control block only).

/// A ring of bytes: `len` bytes starting at `head`, at most `cap`.
///
/// Memory is taken as data arrives, doubling up to the capacity, so a short
/// connection (a 100-byte request) costs a small buffer rather than a
/// zeroed full-size one, and, once its owner calls `release_if_empty` with
/// nothing buffered, an idle one costs nothing. The capacity is
/// the configuration's (the same for every connection of a shard) and is
/// passed to the calls that need it, so the ring does not store it.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    buf: Box<[u8]>,
    head: u32,
    len: u32,
}

impl Ring {
    /// Smallest allocation once data arrives.
    const MIN_ALLOC: usize = 256;

    pub fn new() -> Ring {
        Ring::default()
    }
    /// Bytes allocated now.
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Room left under capacity `cap`.
    pub fn free(&self, cap: usize) -> usize {
        cap.saturating_sub(self.len())
    }

    #[inline(always)]
    fn index(&self, offset: usize) -> usize {
        let phys = self.buf.len();
        let i = self.head as usize + offset;
        if i >= phys { i - phys } else { i }
    }

    /// Makes room for offsets up to `end` (<= `cap`), keeping every byte at
    /// its offset from the head (out-of-order data past `len` included).
    #[inline(always)]
    fn reserve(&mut self, end: usize, cap: usize) {
        if end <= self.buf.len() {
            return;
        }
        // The usual case: an empty ring's first bytes, in the smallest size.
        if self.buf.is_empty() && end <= Self::MIN_ALLOC && cap >= Self::MIN_ALLOC {
            self.buf = pool::take_small();
            self.head = 0;
            return;
        }
        self.grow(end, cap);
    }

    /// `reserve`'s work: a buffer from the pool (the usual case: an empty
    /// ring's first bytes), or a larger one with the old contents moved in.
    /// Out of line, so that the writes that need no memory stay small.
    #[inline(never)]
    fn grow(&mut self, end: usize, cap: usize) {
        let phys = self.buf.len();
        let new_len = end
            .max(phys * 2)
            .max(Self::MIN_ALLOC)
            .next_power_of_two()
            .min(cap)
            .max(end);
        let mut grown = pool::take(new_len);
        // Unwrap the old ring into the new one: offset k goes to index k
        // (nothing to copy for a ring that had no memory yet, the usual case).
        if phys > 0 {
            let h = self.head as usize;
            grown[..phys - h].copy_from_slice(&self.buf[h..]);
            grown[phys - h..phys].copy_from_slice(&self.buf[..h]);
        }
        let old = std::mem::replace(&mut self.buf, grown);
        if phys > 0 {
            pool::give(old);
        }
        self.head = 0;
    }

    /// Appends as much of `data` as fits under `cap`; returns how much.
    #[inline]
    pub fn push(&mut self, data: &[u8], cap: usize) -> usize {
        let n = data.len().min(self.free(cap));
        self.write_at(self.len(), &data[..n], cap);
        self.len += n as u32;
        n
    }

    /// Writes `data` at `offset` from the head, past the current length (for
    /// out-of-order data); the caller keeps `offset + data.len() <= cap`.
    #[inline(always)]
    pub fn write_at(&mut self, offset: usize, data: &[u8], cap: usize) {
        debug_assert!(offset + data.len() <= cap);
        if data.is_empty() {
            return;
        }
        self.reserve(offset + data.len(), cap);
        let phys = self.buf.len();
        let start = self.index(offset);
        let first = data.len().min(phys - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        let rest = data.len() - first;
        if rest > 0 {
            // Wrapped past the end (a call to copy nothing is not free).
            self.buf[..rest].copy_from_slice(&data[first..]);
        }
    }

    /// Marks `n` more bytes (already written with `write_at`) as present.
    pub fn extend(&mut self, n: usize) {
        debug_assert!(self.len() + n <= self.allocated());
        self.len += n as u32;
    }

    /// Copies bytes at `offset..offset + out.len()` (within `len`) into `out`.
    #[inline(always)]
    pub fn read_at(&self, offset: usize, out: &mut [u8]) {
        debug_assert!(offset + out.len() <= self.len());
        if out.is_empty() {
            return;
        }
        let phys = self.buf.len();
        let start = self.index(offset);
        let first = out.len().min(phys - start);
        out[..first].copy_from_slice(&self.buf[start..start + first]);
        let rest = out.len() - first;
        if rest > 0 {
            out[first..].copy_from_slice(&self.buf[..rest]);
        }
    }

    /// The bytes at the front that lie together in memory: all `len` of
    /// them, unless they wrap past the end of the buffer (then those up to
    /// the end; the rest follow once these are consumed).
    #[inline(always)]
    pub fn front(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        let start = self.head as usize;
        let end = (start + self.len()).min(self.buf.len());
        &self.buf[start..end]
    }

    /// Where the front is in the buffer (for tests).
    #[cfg(test)]
    pub(crate) fn head(&self) -> usize {
        self.head as usize
    }

    /// Drops `n` bytes from the front.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        self.head = self.index(n) as u32;
        // The head never jumps back to 0 when empty: out-of-order data may sit
        // past the end, placed relative to it.
        self.len -= n as u32;
    }

    /// Gives the memory back to the thread's pool if the ring holds no bytes,
    /// for a caller that knows none were written past its length either (no
    /// out-of-order data). The next byte written takes a buffer again.
    #[inline]
    pub fn release_if_empty(&mut self) {
        if self.len == 0 && !self.buf.is_empty() {
            pool::give(std::mem::take(&mut self.buf));
            self.head = 0;
        }
    }

    /// Empties the ring and starts it again at the front of its memory,
    /// which it keeps (a new connection's ring without taking a buffer).
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Copies up to `out.len()` bytes from the front into `out` and drops them.
    #[inline]
    pub fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len());
        self.read_at(0, &mut out[..n]);
        self.consume(n);
        n
    }
}

impl Drop for Ring {
    #[inline]
    fn drop(&mut self) {
        // A ring that never held data has no memory to give back.
        if !self.buf.is_empty() {
            pool::give(std::mem::take(&mut self.buf));
        }
    }
}

/// Ring buffers, kept per thread (one shard's core) for the next connection
/// or the next burst of data instead of going back to the allocator: a ring
/// that fills and empties (a keep-alive request) costs neither a zeroed
/// allocation nor a free. One list per power-of-two size from
/// `Ring::MIN_ALLOC` to 64 KiB, each bounded in bytes (`KEEP_BYTES`), so a
/// burst of connections leaves a bounded amount behind; other sizes (a ring
/// capped at a capacity that is not a power of two) go to the allocator.
mod pool {
    use super::Ring;
    use std::cell::RefCell;

    /// Sizes kept: `MIN_ALLOC << 0 ..= MIN_ALLOC << (CLASSES - 1)`.
    const CLASSES: usize = 9;
    /// Bytes kept per size at most (4096 of the smallest buffers).
    const KEEP_BYTES: usize = 4096 * Ring::MIN_ALLOC;
    const MIN_SHIFT: u32 = Ring::MIN_ALLOC.trailing_zeros();

    thread_local! {
        static FREE: RefCell<[Vec<Box<[u8]>>; CLASSES]> = const {
            RefCell::new([const { Vec::new() }; CLASSES])
        };
    }

    /// The list for buffers of `len` bytes, if it is a size kept: one
    /// compare for the usual size, a power-of-two test for the others.
    #[inline(always)]
    fn class(len: usize) -> Option<usize> {
        if len == Ring::MIN_ALLOC {
            return Some(0);
        }
        let c = (len.trailing_zeros().wrapping_sub(MIN_SHIFT)) as usize;
        (len.is_power_of_two() && c < CLASSES).then_some(c)
    }

    /// A buffer of `len` bytes, its contents whatever they were.
    #[inline]
    pub(super) fn take(len: usize) -> Box<[u8]> {
        if let Some(c) = class(len) {
            if let Some(b) = FREE.with(|f| f.borrow_mut()[c].pop()) {
                return b;
            }
        }
        vec![0u8; len].into_boxed_slice()
    }

    /// A buffer of `Ring::MIN_ALLOC` bytes (`take`'s usual case, inline).
    #[inline(always)]
    pub(super) fn take_small() -> Box<[u8]> {
        match FREE.with(|f| f.borrow_mut()[0].pop()) {
            Some(b) => b,
            None => vec![0u8; Ring::MIN_ALLOC].into_boxed_slice(),
        }
    }

    /// Keeps `buf` for `take` if it is a size kept and its list has room,
    /// else frees it.
    #[inline(always)]
    pub(super) fn give(buf: Box<[u8]>) {
        if buf.len() == Ring::MIN_ALLOC {
            // During thread exit the pool may be gone: then it is freed.
            let _ = FREE.try_with(|f| {
                let list = &mut f.borrow_mut()[0];
                if list.len() < KEEP_BYTES / Ring::MIN_ALLOC {
                    list.push(buf);
                }
            });
            return;
        }
        give_other(buf);
    }

    /// `give` for the larger sizes.
    #[inline(never)]
    fn give_other(buf: Box<[u8]>) {
        let Some(c) = class(buf.len()) else {
            return;
        };
        // (A shift: buffer sizes are powers of two.)
        let keep = KEEP_BYTES >> (c as u32 + MIN_SHIFT);
        // During thread exit the pool may be gone already: then it is freed.
        let _ = FREE.try_with(|f| {
            let list = &mut f.borrow_mut()[c];
            if list.len() < keep {
                list.push(buf);
            }
        });
    }

    /// Buffers kept now, of every size (for tests).
    #[cfg(test)]
    pub(super) fn kept() -> usize {
        FREE.with(|f| f.borrow().iter().map(Vec::len).sum())
    }
}

/// Out-of-order ranges received beyond `rcv_nxt`, as offsets from it.
/// A handful of holes is plenty in practice; past that, new out-of-order data
/// that would need another range is dropped (and the peer resends it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Assembler {
    /// Sorted, non-overlapping, non-adjacent `(start, end)` offsets; `end == 0` marks unused.
    ranges: [(u32, u32); Assembler::MAX],
    /// The range most recently added to (reported first in SACK, RFC 2018 4).
    last: u8,
}

impl Assembler {
    /// Three: the most SACK blocks that fit beside a timestamp option (RFC 2018 3).
    pub const MAX: usize = 3;

    pub fn is_empty(&self) -> bool {
        self.ranges[0].1 == 0
    }

    pub fn ranges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.ranges.iter().copied().take_while(|r| r.1 != 0)
    }

    fn count(&self) -> usize {
        self.ranges().count()
    }

    /// Records `start..end` (offsets from rcv_nxt, start > 0) as received.
    /// Returns false when it would need more ranges than we keep.
    pub fn add(&mut self, start: u32, end: u32) -> bool {
        if start >= end {
            return true;
        }
        let n = self.count();
        let mut v = [(0u32, 0u32); Assembler::MAX + 1];
        v[..n].copy_from_slice(&self.ranges[..n]);
        // Merge into a new sorted list.
        let mut out = [(0u32, 0u32); Assembler::MAX + 1];
        let mut k = 0;
        let (mut s, mut e) = (start, end);
        let mut placed = false;
        for &(rs, re) in &v[..n] {
            if re < s {
                out[k] = (rs, re);
                k += 1;
            } else if rs > e {
                if !placed {
                    out[k] = (s, e);
                    k += 1;
                    placed = true;
                }
                out[k] = (rs, re);
                k += 1;
            } else {
                s = s.min(rs);
                e = e.max(re);
            }
        }
        if !placed {
            out[k] = (s, e);
            k += 1;
        }
        if k > Assembler::MAX {
            return false;
        }
        self.ranges = [(0, 0); Assembler::MAX];
        self.ranges[..k].copy_from_slice(&out[..k]);
        self.last = out[..k].iter().position(|r| r.0 == s).unwrap_or(0) as u8;
        true
    }

    /// rcv_nxt advanced by `n` (in-order data accepted): drops what that
    /// covered, shifts the rest, and returns how many further bytes are now
    /// contiguous (a range the new data reached). The caller advances rcv_nxt
    /// by that much too; the remaining ranges are already shifted for it.
    #[inline]
    pub fn advance(&mut self, n: u32) -> u32 {
        if self.is_empty() {
            return 0; // nearly always: nothing out of order
        }
        self.advance_ranges(n)
    }

    #[inline(never)]
    fn advance_ranges(&mut self, n: u32) -> u32 {
        let mut extra = 0;
        let mut out = [(0u32, 0u32); Assembler::MAX];
        let mut k = 0;
        for (s, e) in self.ranges() {
            if e <= n {
                continue;
            }
            if s <= n {
                extra = e - n;
                continue;
            }
            out[k] = (s - n, e - n);
            k += 1;
        }
        // Ranges are non-adjacent, so every remaining one starts after `extra`.
        for r in out.iter_mut().take(k) {
            r.0 -= extra;
            r.1 -= extra;
        }
        self.ranges = out;
        self.last = 0;
        extra
    }

    /// The range to report first in SACK (the most recently changed one).
    pub fn most_recent(&self) -> Option<(u32, u32)> {
        self.ranges()
            .nth(self.last as usize)
            .or_else(|| self.ranges().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_rings_buffer_serves_the_next_connection() {
        // On a thread of its own: its pool starts empty.
        std::thread::spawn(|| {
            let mut a = Ring::new();
            assert_eq!(a.push(b"GET / HTTP/1.1", 4096), 14);
            let p = a.buf.as_ptr();
            assert_eq!(a.allocated(), Ring::MIN_ALLOC);
            drop(a);
            let mut b = Ring::new();
            b.push(b"x", 4096);
            assert_eq!(b.buf.as_ptr(), p, "the same buffer, from the pool");
            // Growing past the smallest size gives the small buffer back.
            b.push(&[7u8; 300], 4096);
            assert_eq!(b.allocated(), 512);
            let mut c = Ring::new();
            c.push(b"y", 4096);
            assert_eq!(c.buf.as_ptr(), p);
            let mut out = [0u8; 301];
            assert_eq!(b.pop(&mut out), 301);
            assert_eq!(out[0], b'x');
            assert!(out[1..].iter().all(|&v| v == 7));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn an_emptied_ring_gives_its_buffer_back_and_takes_one_on_demand() {
        std::thread::spawn(|| {
            let cap = 4096;
            let mut r = Ring::new();
            r.push(b"GET / HTTP/1.1\r\n\r\n", cap);
            let p = r.buf.as_ptr();
            // Data still in it: kept.
            r.release_if_empty();
            assert_eq!(r.allocated(), Ring::MIN_ALLOC);
            assert_eq!(pool::kept(), 0);
            let mut out = [0u8; 64];
            assert_eq!(r.pop(&mut out), 18);
            assert_eq!(r.allocated(), Ring::MIN_ALLOC, "pop alone keeps it");
            r.release_if_empty();
            assert_eq!(r.allocated(), 0, "an empty ring holds no memory");
            assert_eq!(pool::kept(), 1);
            // The next request takes it back, whole and in order.
            r.push(b"GET /b HTTP/1.1\r\n\r\n", cap);
            assert_eq!((r.buf.as_ptr(), pool::kept()), (p, 0));
            assert_eq!(r.pop(&mut out), 19);
            assert_eq!(&out[..19], b"GET /b HTTP/1.1\r\n\r\n");
            // A larger buffer goes to its own size's list, and comes back
            // for a ring that needs that size.
            r.push(&[5u8; 1000], cap);
            assert_eq!(r.allocated(), 1024);
            let big = r.buf.as_ptr();
            r.consume(1000);
            r.release_if_empty();
            assert_eq!(pool::kept(), 2);
            let mut s = Ring::new();
            s.push(&[6u8; 700], cap);
            assert_eq!((s.allocated(), s.buf.as_ptr()), (1024, big));
            let mut t = Ring::new();
            t.push(b"x", cap);
            assert_eq!(t.buf.as_ptr(), p);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_bytes() {
        std::thread::spawn(|| {
            let rings: Vec<Ring> = (0..5000)
                .map(|_| {
                    let mut r = Ring::new();
                    r.push(b"x", 4096);
                    r
                })
                .collect();
            drop(rings);
            assert_eq!(
                pool::kept(),
                4096,
                "4096 smallest buffers kept, the rest freed"
            );
            // A capacity that is not a power of two: its buffer is freed.
            let mut r = Ring::new();
            r.push(&[1u8; 3000], 3000);
            assert_eq!(r.allocated(), 3000);
            r.consume(3000);
            r.release_if_empty();
            assert_eq!(r.allocated(), 0);
            assert_eq!(pool::kept(), 4096);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn ring_wraps() {
        let mut r = Ring::new();
        let cap = 8;
        assert_eq!(r.push(b"abcdef", cap), 6);
        let mut out = [0u8; 4];
        assert_eq!(r.pop(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.push(b"ghijklmn", cap), 6);
        assert_eq!(r.len(), 8);
        let mut all = [0u8; 8];
        r.read_at(0, &mut all);
        assert_eq!(&all, b"efghijkl");
        r.consume(3);
        let mut rest = [0u8; 5];
        assert_eq!(r.pop(&mut rest), 5);
        assert_eq!(&rest, b"hijkl");
        assert!(r.is_empty());
    }

    #[test]
    fn ring_write_at_past_len() {
        let mut r = Ring::new();
        let cap = 8;
        r.push(b"xy", cap);
        r.consume(2);
        r.write_at(3, b"DEF", cap);
        r.write_at(0, b"abc", cap);
        r.extend(6);
        let mut out = [0u8; 6];
        r.read_at(0, &mut out);
        assert_eq!(&out, b"abcDEF");
    }

    #[test]
    fn ring_grows_on_demand_keeping_offsets() {
        let mut r = Ring::new();
        let cap = 100_000;
        assert_eq!(r.allocated(), 0);
        r.push(&[1u8; 100], cap);
        assert_eq!(r.allocated(), 256);
        r.consume(60);
        // Wrapped data, plus out-of-order bytes past the end, survive growth.
        r.push(&[2u8; 200], cap);
        r.write_at(5_000, b"ooo", cap);
        assert!(r.allocated() >= 5_003);
        let mut out = vec![0u8; 240];
        r.read_at(0, &mut out);
        assert_eq!(&out[..40], &[1u8; 40][..]);
        assert_eq!(&out[40..], &[2u8; 200][..]);
        r.write_at(240, &vec![3u8; 4_760], cap);
        r.extend(4_763);
        let mut tail = [0u8; 3];
        r.read_at(5_000, &mut tail);
        assert_eq!(&tail, b"ooo");
        assert!(r.allocated() <= 100_000);
    }

    #[test]
    fn assembler_merges_and_advances() {
        let mut a = Assembler::default();
        assert!(a.add(10, 20));
        assert!(a.add(30, 40));
        assert!(a.add(20, 30)); // fills the gap between them
        assert_eq!(a.ranges().collect::<Vec<_>>(), vec![(10, 40)]);
        assert!(a.add(50, 60));
        assert_eq!(a.most_recent(), Some((50, 60)));
        // In-order data 0..10 arrives: 10..40 becomes contiguous.
        assert_eq!(a.advance(10), 30);
        assert_eq!(a.ranges().collect::<Vec<_>>(), vec![(10, 20)]);
        assert_eq!(a.advance(5), 0);
        assert_eq!(a.ranges().collect::<Vec<_>>(), vec![(5, 15)]);
    }

    #[test]
    fn assembler_limits_ranges() {
        let mut a = Assembler::default();
        for i in 0..Assembler::MAX as u32 {
            assert!(a.add(10 + 10 * i, 15 + 10 * i));
        }
        assert!(!a.add(100, 110), "one range too many is refused");
        assert!(a.add(15, 20), "extending an existing range is fine");
        assert_eq!(a.ranges().count(), Assembler::MAX - 1);
    }
}
