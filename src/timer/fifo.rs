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
    pub fn advance(&mut self, now: Instant, budget: usize, out: &mut Vec<T>) -> usize {
        let mut n = 0;
        while n < budget && self.queue.front().is_some_and(|e| e.0 <= now) {
            if let Some((_, v)) = self.queue.pop_front() {
                out.push(v);
                n += 1;
            }
        }
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
}
