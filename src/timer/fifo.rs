//! Fixed-length timers (TIME_WAIT's 2MSL, SYN-RECEIVED's timeout): every entry
//! has the same duration, so insertion order is expiry order and a queue is
//! all it takes. Cancellation is lazy: the owner checks a generation or state
//! when the entry comes out.

use crate::time::Instant;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FifoTimers<T> {
    duration: Duration,
    /// `duration` in nanoseconds (saturating), for `deadline_from`.
    duration_ns: u64,
    queue: VecDeque<(Instant, T)>,
}

impl<T> FifoTimers<T> {
    /// Room for `n` more timers without growing.
    pub fn reserve(&mut self, n: usize) {
        self.queue.reserve(n);
    }

    pub fn new(duration: Duration) -> FifoTimers<T> {
        FifoTimers::with_capacity(duration, 0)
    }

    /// As `new`, with room for `n` timers before the queue first grows.
    pub fn with_capacity(duration: Duration, n: usize) -> FifoTimers<T> {
        FifoTimers {
            duration,
            duration_ns: u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
            queue: VecDeque::with_capacity(n),
        }
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Adds a timer expiring `duration` after `now` (`now` must not go backwards).
    pub fn push(&mut self, now: Instant, value: T) -> Instant {
        let at = self.deadline_from(now);
        self.push_at(at, value);
        at
    }

    /// When a timer pushed at `now` expires.
    #[inline]
    pub fn deadline_from(&self, now: Instant) -> Instant {
        Instant(now.0.saturating_add(self.duration_ns))
    }

    /// Adds a timer expiring at `at`, which `deadline_from` gave for a `now`
    /// no earlier than the last one's.
    #[inline]
    pub fn push_at(&mut self, at: Instant, value: T) {
        debug_assert!(self.queue.back().is_none_or(|b| b.0 <= at));
        self.queue.push_back((at, value));
    }

    /// The last entry's deadline (the latest).
    pub fn next_back(&self) -> Option<Instant> {
        self.queue.back().map(|e| e.0)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.front().map(|e| e.0)
    }

    /// Pops up to `budget` expired entries into `out`.
    ///
    /// A batch: the due entries are found by a walk of the queue's
    /// contiguous parts, copied out together, then dropped from the front
    /// at once (not popped one by one).
    #[inline]
    pub fn advance(&mut self, now: Instant, budget: usize, out: &mut Vec<T>) -> usize
    where
        T: Copy,
    {
        if self.queue.front().is_none_or(|e| e.0 > now) {
            return 0;
        }
        let (a, b) = self.queue.as_slices();
        let due = |part: &[(Instant, T)], most: usize| {
            let part = &part[..part.len().min(most)];
            part.iter().position(|e| e.0 > now).unwrap_or(part.len())
        };
        let n_a = due(a, budget);
        let n_b = if n_a == a.len() {
            due(b, budget - n_a)
        } else {
            0
        };
        out.extend(a[..n_a].iter().chain(&b[..n_b]).map(|e| e.1));
        let n = n_a + n_b;
        self.queue.drain(..n);
        n
    }

    /// The first entry, with its deadline, if it has expired by `now`.
    #[inline]
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.queue.front().is_some_and(|e| e.0 <= now) {
            self.queue.pop_front()
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_budget() {
        let mut f = FifoTimers::new(Duration::from_secs(60));
        for i in 0..10u32 {
            f.push(Instant::from_millis(u64::from(i)), i);
        }
        let mut out = Vec::new();
        assert_eq!(f.advance(Instant::from_millis(59_999), 100, &mut out), 0);
        assert_eq!(f.advance(Instant::from_millis(60_004), 3, &mut out), 3);
        assert_eq!(f.advance(Instant::from_millis(60_004), 100, &mut out), 2);
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        assert_eq!(f.next_deadline(), Some(Instant::from_millis(60_005)));
    }

    #[test]
    fn a_batch_across_the_rings_wrap_keeps_order_budget_and_the_rest() {
        // Pops make room at the front, so later pushes wrap around the
        // ring: the due entries then lie in two parts.
        let mut f = FifoTimers::with_capacity(Duration::from_millis(10), 8);
        let mut out = Vec::new();
        for i in 0..6u32 {
            f.push(Instant::from_millis(u64::from(i)), i);
        }
        assert_eq!(f.advance(Instant::from_millis(14), 100, &mut out), 5);
        for i in 6..12u32 {
            f.push(Instant::from_millis(u64::from(i)), i);
        }
        assert!(!f.queue.as_slices().1.is_empty(), "the ring wrapped");
        out.clear();
        // Due by 19 ms: 5..=9; a budget of 3, then the rest.
        assert_eq!(f.advance(Instant::from_millis(19), 3, &mut out), 3);
        assert_eq!(f.advance(Instant::from_millis(19), 100, &mut out), 2);
        assert_eq!(out, vec![5, 6, 7, 8, 9]);
        assert_eq!(f.len(), 2);
        assert_eq!(f.next_deadline(), Some(Instant::from_millis(20)));
        out.clear();
        assert_eq!(f.advance(Instant::from_millis(100), 100, &mut out), 2);
        assert_eq!((out, f.is_empty()), (vec![10, 11], true));
    }
}
