//! The measuring window of a load run, one for both backends (the DPDK shard
//! in `tools::load::drive`, Linux sockets in `kernel::drive_client`): warm-up,
//! measure, drain, and the counts the report's rates come from.
//!
//! I/O-free: each turn the driver gives it the time, the shard's counts and
//! whether a stop (Ctrl-C / SIGTERM) was asked for, and does what the answer
//! says; it reads no clock and touches no connection.
//!
//! ```text
//! start ── warm-up ──► from ── measuring ──► to ── draining ──► done
//!                       (counts)              (counts)  (5 s, or nothing left open)
//! ```
//! A stop ends the measuring at once and the drain within 2 s; a stop during
//! the warm-up measures from the start.
//!
//! A paced opening (`wait_for_open`) also holds the measuring until every
//! connection is open (a run that never gets there measures from the
//! start, and says so). The generator then closes its idle connections at
//! the end itself, which takes a while at millions: with `drain_by_progress`
//! the drain lasts while connections keep closing, ending `DRAIN` after the
//! last one closed (the bound for a response still in flight) and at most
//! `DRAIN_MAX` after the load ended.

use crate::stats::report::Window;
use crate::time::Instant;
use std::time::Duration;

/// How long open connections may finish once the load has ended.
pub const DRAIN: Duration = Duration::from_secs(5);
/// `drain_by_progress`: the drain's bound however fast connections close.
pub const DRAIN_MAX: Duration = Duration::from_secs(120);
/// How long they may finish after a stop (Ctrl-C / SIGTERM).
pub const DRAIN_AFTER_STOP: Duration = Duration::from_secs(2);
/// How often the driver does its once-a-second work.
pub const TICK: Duration = Duration::from_secs(1);

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the warm-up ends: nothing counted yet.
    WarmUp,
    /// Counting.
    Measuring,
    /// The load has ended (or was stopped); open connections may finish
    /// until `until`.
    Draining { until: Instant },
}

/// What the driver does after a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turn {
    /// A second has passed: count states, close an interval histogram,
    /// publish the counters, print the live line.
    pub second: bool,
    /// A stop was asked for just now: the generator opens nothing more.
    pub stop_client: bool,
}

/// The measured part of a run: counts when it began and ended, and its length.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    pub from: Window,
    pub to: Window,
    pub seconds: f64,
    /// When the measuring began, seconds from the start of the run.
    pub from_s: f64,
}

impl Measured {
    /// The counts as `Report::build` takes them.
    pub fn window(&self) -> (Window, Window) {
        (self.from, self.to)
    }
}

/// One shard's measuring window (see the module doc).
#[derive(Debug, Clone)]
pub struct MeasureWindow {
    start: Instant,
    warm_at: Instant,
    end_at: Instant,
    next_tick: Instant,
    from: Option<(Instant, Window)>,
    to: Option<(Instant, Window)>,
    drain_until: Option<Instant>,
    stopped: bool,
    /// `wait_for_open`: measuring waits for `all_open`.
    open_wait: bool,
    all_open: bool,
    /// `drain_by_progress`: connections open at the last change, and when.
    progress: Option<(u32, Instant)>,
}

impl MeasureWindow {
    /// A run that starts at `start`, loads for `duration` and measures after
    /// `warmup`.
    pub fn new(start: Instant, duration: Duration, warmup: Duration) -> MeasureWindow {
        MeasureWindow {
            start,
            warm_at: start + warmup,
            end_at: start + duration,
            next_tick: start + TICK,
            from: None,
            to: None,
            drain_until: None,
            stopped: false,
            open_wait: false,
            all_open: false,
            progress: None,
        }
    }

    /// Measuring waits (past the warm-up) until `all_open` is said.
    pub fn wait_for_open(&mut self) {
        self.open_wait = true;
    }

    /// Every connection is open (for `wait_for_open`).
    pub fn all_open(&mut self) {
        self.all_open = true;
    }

    /// The drain lasts while connections keep closing (see the module doc).
    pub fn drain_by_progress(&mut self) {
        self.progress = Some((u32::MAX, self.end_at));
    }

    pub fn phase(&self) -> Phase {
        match (self.drain_until, self.from) {
            (Some(until), _) => Phase::Draining { until },
            (None, Some(_)) => Phase::Measuring,
            (None, None) => Phase::WarmUp,
        }
    }

    /// One turn of the driver's loop at `now`, with the shard's `counts` and
    /// whether a stop is asked for.
    pub fn turn(&mut self, now: Instant, counts: Window, stop: bool) -> Turn {
        let opened = !self.open_wait || self.all_open;
        if self.from.is_none() && self.to.is_none() && now >= self.warm_at && opened {
            self.from = Some((now, counts));
        }
        if self.to.is_none() && now >= self.end_at {
            self.to = Some((now, counts));
            self.drain_until = Some(now + DRAIN);
        }
        let second = now >= self.next_tick;
        if second {
            self.next_tick = now + TICK;
        }
        let stop_client = stop && !self.stopped;
        if stop_client {
            self.stopped = true;
            self.to.get_or_insert((now, counts));
            let d = now + DRAIN_AFTER_STOP;
            self.drain_until = Some(self.drain_until.map_or(d, |x| x.min(d)));
        }
        Turn {
            second,
            stop_client,
        }
    }

    /// The run is over: draining, and no client connection is left open
    /// (`active`) or the drain time is up.
    pub fn done(&mut self, now: Instant, active: u32) -> bool {
        let Some(until) = self.drain_until else {
            return false;
        };
        if active == 0 {
            return true;
        }
        match &mut self.progress {
            Some((last, at)) if !self.stopped => {
                if active != *last {
                    *last = active;
                    *at = now;
                }
                now >= (*at + DRAIN).min(self.end_at + DRAIN_MAX)
            }
            _ => now >= until,
        }
    }

    /// The measured counts and length at the end of the run (`counts` now,
    /// used if the window never closed).
    pub fn measured(&self, now: Instant, counts: Window) -> Measured {
        let (t0, from) = self.from.unwrap_or((self.start, Window::default()));
        let (t1, to) = self.to.unwrap_or((now, counts));
        Measured {
            from,
            to,
            seconds: (t1 - t0).as_secs_f64(),
            from_s: (t0 - self.start).as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn counts(completed: u64) -> Window {
        Window {
            completed,
            responses: 2 * completed,
        }
    }

    /// 10 s of load, 1 s of warm-up, from t = 0.
    fn ten_seconds() -> MeasureWindow {
        MeasureWindow::new(at(0), Duration::from_secs(10), Duration::from_secs(1))
    }

    #[test]
    fn warm_up_measure_drain_done() {
        let mut w = ten_seconds();
        assert_eq!(w.turn(at(500), counts(5), false), Turn::default());
        assert_eq!(w.phase(), Phase::WarmUp);
        w.turn(at(1_000), counts(10), false);
        assert_eq!(w.phase(), Phase::Measuring);
        w.turn(at(10_000), counts(100), false);
        assert_eq!(
            w.phase(),
            Phase::Draining {
                until: at(10_000) + DRAIN
            }
        );
        assert!(!w.done(at(12_000), 3), "connections still open");
        assert!(w.done(at(12_000), 0), "all closed");
        assert!(w.done(at(15_000), 3), "drain time up");
        // Counts after the window closed do not move it.
        w.turn(at(12_000), counts(120), false);
        let m = w.measured(at(12_000), counts(120));
        assert_eq!((m.from.completed, m.to.completed), (10, 100));
        assert_eq!((m.from.responses, m.to.responses), (20, 200));
        assert_eq!(m.seconds, 9.0);
    }

    #[test]
    fn not_done_before_the_load_ends() {
        let mut w = ten_seconds();
        for ms in (0..10_000).step_by(250) {
            w.turn(at(ms), counts(ms), false);
            assert!(!w.done(at(ms), 0), "at {ms} ms");
        }
    }

    #[test]
    fn a_second_passes_once_a_second() {
        let mut w = ten_seconds();
        let seconds: Vec<u64> = (0..=3_000)
            .step_by(100)
            .filter(|&ms| w.turn(at(ms), counts(0), false).second)
            .collect();
        assert_eq!(seconds, vec![1_000, 2_000, 3_000]);
        // A late turn counts one second, then one more a second after it.
        assert!(w.turn(at(5_500), counts(0), false).second);
        assert!(!w.turn(at(6_000), counts(0), false).second);
        assert!(w.turn(at(6_500), counts(0), false).second);
    }

    #[test]
    fn a_stop_ends_the_window_and_drains_two_seconds() {
        let mut w = ten_seconds();
        w.turn(at(1_000), counts(10), false);
        let t = w.turn(at(4_000), counts(40), true);
        assert!(t.stop_client);
        assert_eq!(
            w.phase(),
            Phase::Draining {
                until: at(4_000) + DRAIN_AFTER_STOP
            }
        );
        // Said once.
        assert!(!w.turn(at(4_100), counts(41), true).stop_client);
        assert!(!w.done(at(5_900), 1));
        assert!(w.done(at(6_000), 1));
        let m = w.measured(at(6_000), counts(60));
        assert_eq!((m.from.completed, m.to.completed), (10, 40));
        assert_eq!(m.seconds, 3.0);
    }

    #[test]
    fn a_stop_while_draining_shortens_the_drain() {
        let mut w = ten_seconds();
        w.turn(at(1_000), counts(10), false);
        w.turn(at(10_000), counts(100), false);
        w.turn(at(11_000), counts(105), true);
        assert_eq!(w.phase(), Phase::Draining { until: at(13_000) });
        // A stop late in the drain keeps the earlier end.
        let mut w = ten_seconds();
        w.turn(at(10_000), counts(100), false);
        w.turn(at(14_500), counts(105), true);
        assert_eq!(w.phase(), Phase::Draining { until: at(15_000) });
        assert_eq!(w.measured(at(15_000), counts(105)).to.completed, 100);
    }

    #[test]
    fn a_stop_during_warm_up_measures_from_the_start() {
        let mut w = ten_seconds();
        w.turn(at(500), counts(5), true);
        // The warm-up's end passes while draining: the window stays closed.
        w.turn(at(1_500), counts(15), false);
        let m = w.measured(at(2_500), counts(20));
        assert_eq!((m.from.completed, m.to.completed), (0, 5));
        assert_eq!(m.seconds, 0.5);
    }

    #[test]
    fn a_run_that_never_closed_its_window_measures_to_now() {
        let mut w = ten_seconds();
        w.turn(at(2_000), counts(20), false);
        let m = w.measured(at(3_000), counts(30));
        assert_eq!((m.from.completed, m.to.completed), (20, 30));
        assert_eq!(m.seconds, 1.0);
    }

    #[test]
    fn measuring_waits_for_every_connection_to_open() {
        let mut w = ten_seconds();
        w.wait_for_open();
        w.turn(at(1_000), counts(10), false);
        assert_eq!(w.phase(), Phase::WarmUp, "past the warm-up, still opening");
        w.turn(at(3_000), counts(30), false);
        assert_eq!(w.phase(), Phase::WarmUp);
        w.all_open();
        w.turn(at(3_500), counts(35), false);
        assert_eq!(w.phase(), Phase::Measuring);
        w.turn(at(10_000), counts(100), false);
        let m = w.measured(at(10_000), counts(100));
        assert_eq!((m.from.completed, m.to.completed), (35, 100));
        assert_eq!((m.seconds, m.from_s), (6.5, 3.5));
        // Never all open: measured from the start.
        let mut w = ten_seconds();
        w.wait_for_open();
        w.turn(at(5_000), counts(50), false);
        w.turn(at(10_000), counts(100), false);
        let m = w.measured(at(10_000), counts(100));
        assert_eq!((m.from.completed, m.from_s, m.seconds), (0, 0.0, 10.0));
    }

    #[test]
    fn a_drain_by_progress_lasts_while_connections_close() {
        let mut w = ten_seconds();
        w.drain_by_progress();
        w.turn(at(10_000), counts(100), false);
        // Closing 1000 a second for 9 s: past DRAIN, never 5 s without one.
        for k in 0..9u32 {
            let t = at(10_000 + 1_000 * u64::from(k));
            assert!(!w.done(t, 9_000 - 1_000 * k), "at {k} s");
        }
        // The last few stay (a response that never comes): DRAIN after the
        // last close, not more.
        assert!(!w.done(at(22_900), 1_000));
        assert!(w.done(at(23_000), 1_000));
        assert!(w.done(at(19_000), 0), "none left: done at once");
        // Never more than DRAIN_MAX after the end, however it goes.
        let mut w = ten_seconds();
        w.drain_by_progress();
        w.turn(at(10_000), counts(100), false);
        let end = at(10_000) + DRAIN_MAX;
        let mut t = at(10_000);
        let mut left = u32::MAX;
        while t < end {
            left -= 1;
            assert!(!w.done(t, left));
            t += Duration::from_secs(1);
        }
        assert!(w.done(end, left - 1));
        // A stop (Ctrl-C) keeps its short, fixed drain.
        let mut w = ten_seconds();
        w.drain_by_progress();
        w.turn(at(4_000), counts(40), true);
        assert!(!w.done(at(5_000), 7));
        assert!(w.done(at(6_000), 6));
    }

    #[test]
    fn no_warm_up_measures_from_the_first_turn() {
        let mut w = MeasureWindow::new(at(0), Duration::from_secs(2), Duration::ZERO);
        w.turn(at(1), counts(0), false);
        assert_eq!(w.phase(), Phase::Measuring);
        w.turn(at(2_001), counts(50), false);
        let m = w.measured(at(2_001), counts(50));
        assert_eq!(m.seconds, 2.0);
    }
}
