//! Timers: each connection's earliest deadline sits in the shard's timing
//! wheel (its other timers stay inside the engine); expiry is budgeted per
//! turn. TIME_WAIT records expire from the table's FIFO.

use super::{Conn, Stack};
use crate::table::Handle;
use crate::time::Instant;
use crate::timer::Wheel;

impl Stack {
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
                c.timer = None;
                c.deadline = Instant::NEVER;
                if c.tcp.poll_timeout().is_some_and(|t| t <= now) {
                    c.tcp.handle_timeout(now, cfg, &mut self.stats.tcp);
                }
                self.touch(h);
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
pub(super) fn rearm(wheel: &mut Wheel<Handle>, c: &mut Conn, h: Handle, want: Instant) {
    if c.timer.is_some() && c.deadline <= want {
        return;
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
    c.deadline = want;
}

/// Takes connection `c`'s timer out of the wheel (it is leaving the table).
pub(super) fn disarm(wheel: &mut Wheel<Handle>, c: &mut Conn) {
    if let Some(id) = c.timer.take() {
        wheel.cancel(id);
    }
}
