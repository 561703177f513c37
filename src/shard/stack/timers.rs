//! Timers: each connection's earliest deadline sits in the shard's timing
//! wheel (its other timers stay inside the engine), or, for its first
//! entry in the handshake, in a queue of fixed-length entries; expiry is
//! budgeted per turn. TIME_WAIT records expire from the table's FIFO.

use super::{ARMED, Conn, Stack, StackFamily, mark};
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
        for i in 0..self.expired.len() {
            let h = self.expired[i];
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
        self.stats.time_wait_expired +=
            self.table.expire_time_wait(now, self.cfg.timer_budget) as u64;
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
        Some(id) if wheel.fires_by(id, want) => return,
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
