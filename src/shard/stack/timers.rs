//! Timers: each connection's earliest deadline sits in the shard's timing
//! wheel (its other timers stay inside the engine); expiry is budgeted per
//! turn. TIME_WAIT records expire from the table's FIFO.

use super::{ARMED, Conn, Stack, StackFamily, mark};
use crate::flags::Flags8;
use crate::table::Handle;
use crate::tcp::State;
use crate::time::Instant;
use crate::timer::Wheel;

impl<A: StackFamily> Stack<A> {
    /// Expired timers (at most the budget): the engine's timeouts run and the
    /// connection is driven this turn; then ended TIME_WAIT records go.
    pub(super) fn run_timers(&mut self, now: Instant) {
        self.expired.clear();
        self.wheel
            .advance(now, self.cfg.timer_budget, &mut self.expired);
        for i in 0..self.expired.len() {
            let h = self.expired[i];
            let cfg = &self.cfg.tcp;
            if let Some(c) = self.table.get_mut(h) {
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
#[inline]
pub(super) fn rearm<A: StackFamily>(
    wheel: &mut Wheel<Handle>,
    c: &mut Conn<A>,
    h: Handle,
    want: Instant,
    (now, rto_min): (Instant, crate::tcp::Micros),
) {
    if let Some(id) = c.timer {
        if wheel.fires_by(id, want) {
            return;
        }
    }
    let first = c.timer.is_none()
        && !c.has(ARMED)
        && matches!(c.tcp.state(), State::SynSent | State::SynReceived);
    let want = if first {
        want.min(Instant(now.0.saturating_add(rto_min.as_micros() * 1_000)))
    } else {
        want
    };
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
    if let Some(id) = c.timer.take() {
        wheel.cancel(id);
    }
}
