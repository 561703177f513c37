//! Timers: each connection's earliest deadline sits in the shard's timing
//! wheel (its other timers stay inside the engine), or, for its first
//! entry in the handshake, in a queue of fixed-length entries; expiry is
//! budgeted per turn. TIME_WAIT records expire from the table's FIFO.

use super::{ARMED, Conn, Stack, StackFamily, THINK_QUEUED, mark};
use crate::app::AppConn;
use crate::flags::Flags8;
use crate::table::Handle;
use crate::tcp::State;
use crate::time::Instant;
use crate::timer::{FifoTimers, TimerId, Wheel};

impl<A: StackFamily> Stack<A> {
    /// Expired timers (at most the budget): the engine's timeouts run and the
    /// connection is driven this turn; then ended TIME_WAIT records go.
    pub(super) fn run_timers(&mut self, now: Instant) {
        self.expired.clear();
        self.wheel
            .advance(now, self.cfg.timer_budget, &mut self.expired);
        // The handshake queue's: only those still their connection's entry
        // (most connections are gone, or moved to the wheel, by then).
        let wheel_fired = self.expired.len();
        self.opening
            .advance(now, self.cfg.timer_budget, &mut self.expired);
        // (Taken out while walked: its length and buffer stay in registers.)
        let expired = std::mem::take(&mut self.expired);
        for (i, &h) in expired.iter().enumerate() {
            let cfg = &self.cfg.tcp;
            if let Some(c) = self.table.get_mut(h) {
                if i >= wheel_fired && c.timer != Some(TimerId::OUTSIDE) {
                    continue;
                }
                // (`ARMED` stays: the connection has been armed before, see
                // `rearm`.)
                c.timer = None;
                if c.tcp.poll_timeout().is_some_and(|t| t <= now) {
                    c.tcp.handle_timeout(now, cfg, &mut self.stats.tcp);
                }
                mark(&mut self.touched, c, h);
            }
        }
        self.expired = expired;
        self.stats.time_wait_expired +=
            self.table.expire_time_wait(now, self.cfg.timer_budget) as u64;
        self.run_think_times(now);
    }

    /// `run_timers` alone, outside a turn: for bench/stack_cost.rs only,
    /// whose run in virtual time ends long before the timers its
    /// connections leave behind are due (handshake entries at RTO.min,
    /// TIME_WAIT records at 2MSL). It expires them after the connections
    /// have ended, in a phase of its own, and counts this work (and none
    /// of a turn's other work) as part of each connection's cost. A shard
    /// runs its timers in `poll`; nothing else should call this.
    #[doc(hidden)]
    pub fn run_timers_alone(&mut self, now: Instant) {
        self.run_timers(now);
    }

    /// When the earliest of this shard's timers (the wheel's, the handshake
    /// queue's, the TIME_WAIT records') is due, if it has any (a wheel
    /// entry's is when its slot comes up, which may be early).
    pub fn next_timer_deadline(&self) -> Option<Instant> {
        [
            self.wheel.next_deadline(),
            self.opening.next_deadline(),
            self.table.next_time_wait_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Think times over, from the think queues (`drive` files them): each
    /// connection still thinking to that deadline is driven, which sends its
    /// next request. An entry whose connection has ended, or stopped
    /// thinking, or thinks to another deadline now, is passed over.
    #[inline(never)]
    fn run_think_times(&mut self, now: Instant) {
        // (New work, as `poll`'s generator calls: not while behind.)
        let Some(q) = self.thinking.as_mut().filter(|_| !self.rx_behind) else {
            return;
        };
        for _ in 0..self.cfg.timer_budget {
            let Some((at, h)) = q.pop_due(now) else {
                break;
            };
            if let Some(c) = self.table.get_mut(h) {
                if matches!(&c.app, AppConn::Client(cl) if cl.wake_at() == at) {
                    c.set(THINK_QUEUED, false);
                    mark(&mut self.touched, c, h);
                }
            }
        }
    }
}

/// How long after `now` (less than `think`) the clock next reads `phase`
/// modulo `think` (nanoseconds).
#[inline]
fn first_wait(phase: u64, now: u64, think: u64) -> u64 {
    if phase >= now {
        (phase - now) % think
    } else {
        (think - (now - phase) % think) % think
    }
}

/// A closed loop's think times, out of the wheel. At millions of
/// connections a 20 s think time each, wheel entries are filed in its top
/// levels and cascaded down through four more, a cache miss or more each
/// time: most of a shard's time. Here a think time is one entry pushed at
/// the back of a queue and popped from the front, because the queues'
/// deadlines only grow:
/// - `think`: each think time, filed as it starts: all the same length.
/// - `first`: each connection's first request, at a point of its first
///   think time (`L`) that `first_request_at` spreads evenly: the `n`-th of
///   `N` to complete its handshake asks when the clock next reads `L n / N`
///   from the start, modulo `L`. Connections opened together do not ask in
///   lockstep, and each second of the think time gets its share of the
///   requests whether the opening takes less than `L` or longer (so the
///   request rate is the steady `N / L` once all are open). While the
///   opening is slower than `N / L` a second these times only grow (the
///   queue takes them); where one does not, it goes to the wheel.
#[derive(Debug)]
pub(super) struct ThinkQueues {
    think: FifoTimers<Handle>,
    first: FifoTimers<Handle>,
    /// The first request's spacing (`L / N`) and origin, and how many have
    /// been given out.
    first_step_ns: u64,
    think_ns: u64,
    first_origin: Instant,
    firsts: u64,
    first_count: u64,
}

impl ThinkQueues {
    pub(super) fn new(think: std::time::Duration, connections: u32, now: Instant) -> ThinkQueues {
        let think_ns = u64::try_from(think.as_nanos()).unwrap_or(u64::MAX);
        ThinkQueues {
            think: FifoTimers::new(think),
            first: FifoTimers::new(std::time::Duration::ZERO),
            first_step_ns: think_ns / u64::from(connections.max(1)),
            think_ns,
            first_origin: now,
            firsts: 0,
            first_count: u64::from(connections),
        }
    }

    /// When the connection whose handshake just completed makes its first
    /// request (see above), if it is one of the first `N`; a later one (a
    /// connection replacing one that ended) keeps the application's spread
    /// (and the wheel).
    pub(super) fn first_request_at(&mut self, now: Instant) -> Option<Instant> {
        if self.firsts >= self.first_count || self.think_ns == 0 {
            return None;
        }
        let phase = self
            .first_origin
            .0
            .wrapping_add(self.first_step_ns.wrapping_mul(self.firsts));
        self.firsts += 1;
        // Its point passed a little ago (a handshake's round trip, or an
        // opening only just slower than `N / L`): at once, rather than a
        // whole think time later, which would put it after the next ones.
        if phase < now.0 && now.0 - phase <= self.think_ns / 16 {
            return Some(now);
        }
        Some(Instant(now.0 + first_wait(phase, now.0, self.think_ns)))
    }

    /// Files connection `h`'s think time, over at `at`, if a queue takes it
    /// (in order): false if not (the wheel's, then).
    #[inline]
    pub(super) fn file(&mut self, now: Instant, at: Instant, h: Handle) -> bool {
        if at == self.think.deadline_from(now) {
            self.think.push_at(at, h);
        } else if self.first.next_back().is_none_or(|b| b <= at) {
            self.first.push_at(at, h);
        } else {
            return false;
        }
        true
    }

    /// Entries held (some may be passed over when due).
    pub(super) fn len(&self) -> usize {
        self.think.len() + self.first.len()
    }

    /// The earlier of the two queues' expired entries, with its deadline.
    #[inline]
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, Handle)> {
        match (self.think.next_deadline(), self.first.next_deadline()) {
            (Some(a), Some(b)) if b < a => self.first.pop_due(now),
            (Some(_), _) => self.think.pop_due(now),
            (None, _) => self.first.pop_due(now),
        }
    }
}

/// Makes sure the wheel wakes connection `h` by `want`, its next deadline.
///
/// Lazily: an entry already due no later than `want` stays where it is (most
/// changes move a deadline later: every ACK restarts the retransmission
/// timer). When it fires early, `run_timers` finds nothing due and the
/// connection is driven, which puts its true deadline here again. Only an
/// earlier deadline moves the entry.
///
/// A connection's first entry, in the handshake, goes no later than
/// `now + rto_min` (the earliest a retransmission timer restarted from now
/// can be; worked out only for that entry): the handshake's initial RTO is long (1 s), and the first ACK restarts the
/// timer at RTO.min or more, which that entry then already covers, instead of
/// moving it earlier. A handshake slower than RTO.min costs one early wake-up.
///
/// That first entry, due exactly RTO.min from now, goes in `opening`, a
/// queue in which every entry has that length (so filing order is expiry
/// order), not in the wheel: a push there, and nothing to take out when the
/// connection ends first, as a short one does (the entry, found no longer
/// its connection's, is passed over when due). The connection's `timer`
/// then holds `TimerId::OUTSIDE`; a later deadline no earlier than RTO.min
/// from then keeps it, an earlier one (or one not known to be later) goes
/// to the wheel and leaves the queued entry behind.
#[inline(always)]
pub(super) fn rearm<A: StackFamily>(
    (wheel, opening): (&mut Wheel<Handle>, &mut FifoTimers<Handle>),
    c: &mut Conn<A>,
    h: Handle,
    want: Instant,
    now: Instant,
) {
    // (The queue's length is RTO.min as the shard was built with it.)
    let soonest = opening.deadline_from(now);
    match c.timer {
        // Queued at RTO.min from then, no later than RTO.min from now.
        Some(TimerId::OUTSIDE) if want >= soonest => return,
        Some(TimerId::OUTSIDE) => {}
        // (Nothing to wait for: the entry goes now, while it is likely still
        // in cache, not when it fires, cold, perhaps after cascading.)
        Some(id) if want != Instant::NEVER && wheel.fires_by(id, want) => return,
        Some(_) => {}
        None if !c.has(ARMED)
            && want >= soonest
            && matches!(c.tcp.state(), State::SynSent | State::SynReceived) =>
        {
            // The first entry: RTO.min from now (`opening`'s length).
            opening.push_at(soonest, h);
            c.timer = Some(TimerId::OUTSIDE);
            c.set(ARMED, true);
            return;
        }
        None => {}
    }
    move_timer(wheel, c, h, want);
}

/// `rearm`'s work when the wheel changes.
#[inline(never)]
fn move_timer<A: StackFamily>(
    wheel: &mut Wheel<Handle>,
    c: &mut Conn<A>,
    h: Handle,
    want: Instant,
) {
    // An entry in the handshake queue is left there (passed over when due).
    if c.timer == Some(TimerId::OUTSIDE) {
        c.timer = None;
    }
    match c.timer {
        Some(id) if want != Instant::NEVER && wheel.reschedule(id, want) => {}
        Some(_) if want != Instant::NEVER => {
            c.timer = Some(wheel.schedule(want, h));
        }
        Some(id) => {
            wheel.cancel(id);
            c.timer = None;
        }
        None if want != Instant::NEVER => {
            c.timer = Some(wheel.schedule(want, h));
        }
        None => {}
    }
    // Armed while it has asked for a deadline (one that fired still counts).
    c.set(ARMED, want != Instant::NEVER);
}

/// Takes connection `c`'s timer out of the wheel (it is leaving the table).
#[inline]
pub(super) fn disarm<A: StackFamily>(wheel: &mut Wheel<Handle>, c: &mut Conn<A>) {
    // (An entry in the handshake queue is passed over when due.)
    if let Some(id) = c.timer.take() {
        if id != TimerId::OUTSIDE {
            wheel.cancel(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::first_wait;

    #[test]
    fn first_wait_is_the_next_time_the_clock_reads_the_phase() {
        let think = 1000;
        assert_eq!(first_wait(5300, 5000, think), 300);
        assert_eq!(first_wait(7300, 5000, think), 300);
        assert_eq!(first_wait(4700, 5000, think), 700);
        assert_eq!(first_wait(5000, 5000, think), 0);
        assert_eq!(first_wait(2000, 5000, think), 0);
        for (phase, now) in [(0u64, 123_456u64), (999_999, 3), (42, 42)] {
            let w = first_wait(phase, now, think);
            assert!(w < think);
            assert_eq!((now + w) % think, phase % think);
        }
    }
}
