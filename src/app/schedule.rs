//! The load generator's schedule, with no I/O: when the next connection opens
//! (a closed loop paced by its handshakes in flight or by `--ramp`, or an open
//! loop at `--cps`), which idle
//! connection takes the next `--rps` request and when that request was due,
//! when the run stops opening and when latencies start to count, and which
//! source address (and port) comes next. The DPDK shard (`shard::Stack`) and
//! the kernel-socket loop (`kernel::KernelShard`) both drive one; they differ
//! only in how a connection is opened.

use super::{ClientConfig, Pacing};
use crate::time::Instant;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// Nanoseconds between events at `per_sec` a second (0: not paced).
fn interval_ns(per_sec: u64) -> u64 {
    1_000_000_000u64
        .checked_div(per_sec)
        .map_or(0, |i| i.max(1))
}

/// `Pacing::Adaptive`: the handshake window a closed loop starts with, the
/// least it shrinks to and the most it grows to. 512 handshakes in flight
/// stay well within a server's usual SYN backlog (ours: 1024 before cookies;
/// Linux's tcp_max_syn_backlog), so a peer that keeps up never needs cookies.
pub const WINDOW_START: u32 = 64;
pub const WINDOW_MIN: u32 = 8;
pub const WINDOW_MAX: u32 = 512;
/// A handshake slower than this shrinks the window: a quarter of the initial
/// retransmission timeout (RFC 6298 2.1: 1 s), far enough below it that the
/// window shrinks before SYNs are sent again.
pub const SLOW_HANDSHAKE: Duration = Duration::from_millis(250);

/// `--ramp`: how far behind its schedule the ramp may be and still catch up.
const RAMP_SLACK_NS: u64 = 1_000_000;

/// What the schedule asks of an idle connection under `--rps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Send the request that was due at this time (latency counts from it).
    Request(Instant),
    /// The run is over: the idle connection is done and closes.
    Finish,
}

/// One shard's load schedule. `H` names a connection (a table handle, a slot).
#[derive(Debug, Clone)]
pub struct Schedule<H> {
    /// Connections open now (counted from `opened` until `closed`).
    active: u32,
    /// At most this many open at once.
    limit: u32,
    /// At most this many opened per turn.
    open_burst: u32,
    /// Open loop: when the next connection is due, and the spacing.
    next_open: Instant,
    open_interval_ns: u64,
    /// No new connections or requests from this time on.
    stop_at: Instant,
    /// Latencies are recorded for what starts from here on (after warm-up).
    record_from: Instant,
    /// `--rps`: when the next request is due, the spacing, and the
    /// connections waiting for one (oldest first).
    next_request: Instant,
    request_interval_ns: u64,
    idle: VecDeque<H>,
    /// Where new connections come from.
    pub sources: Sources,
    /// The closed loop's pacing (none in an open loop).
    pacing: Pacing,
    /// `--ramp`: nanoseconds between openings until all are open (0: none).
    ramp_interval_ns: u64,
    /// Handshakes in flight now, and the most allowed (`Pacing::Adaptive`;
    /// u32::MAX otherwise).
    handshakes: u32,
    window: u32,
    /// Connections opened so far, and that count when the window last shrank
    /// (it shrinks at most once per window's worth of openings, as TCP's
    /// congestion window at most once per round trip).
    opens: u64,
    shrunk_at: u64,
    /// When every connection asked for was first open at once.
    all_open_at: Option<Instant>,
    /// The time of the last `open_due`: when an opening happened.
    last_now: Instant,
    /// At the end of the run: connections still to close, and whether that
    /// list was made.
    closing: Vec<H>,
    closing_started: bool,
}

impl<H> Schedule<H> {
    /// A run of `duration` from `now` whose first `warmup` is not recorded.
    /// `first_port`: the offset into the source-port range to start from.
    pub fn new(
        cfg: &ClientConfig,
        now: Instant,
        duration: Duration,
        warmup: Duration,
        first_port: u16,
    ) -> Schedule<H> {
        Schedule {
            pacing: Pacing::None,
            ramp_interval_ns: 0,
            handshakes: 0,
            window: u32::MAX,
            opens: 0,
            shrunk_at: 0,
            all_open_at: None,
            last_now: now,
            closing: Vec::new(),
            closing_started: false,
            active: 0,
            limit: cfg.connections,
            open_burst: cfg.open_burst,
            next_open: now,
            open_interval_ns: interval_ns(cfg.cps),
            stop_at: now + duration,
            record_from: now + warmup,
            next_request: now,
            request_interval_ns: interval_ns(cfg.rps),
            idle: VecDeque::new(),
            sources: Sources::new(cfg, first_port),
        }
    }

    /// How a closed loop paces its opening (none until set; an open loop
    /// keeps its rate and ignores this).
    pub fn set_pacing(&mut self, pacing: Pacing) {
        if self.open_interval_ns > 0 {
            return;
        }
        self.pacing = pacing;
        self.ramp_interval_ns = match pacing {
            Pacing::Ramp(d) => (d.as_nanos() as u64) / u64::from(self.limit.max(1)),
            _ => 0,
        };
        self.window = match pacing {
            Pacing::None => u32::MAX,
            _ => WINDOW_START,
        };
    }

    /// Stops opening connections and starting requests from `now` on.
    pub fn stop(&mut self, now: Instant) {
        self.stop_at = self.stop_at.min(now);
    }

    pub fn stop_at(&self) -> Instant {
        self.stop_at
    }

    pub fn record_from(&self) -> Instant {
        self.record_from
    }

    /// Connections open now.
    pub fn active(&self) -> u32 {
        self.active
    }

    /// If one more connection may open now (`opened` this turn so far): the
    /// time it was due, from which its latencies count. The slot is used up
    /// whether or not the caller manages to open it.
    pub fn open_due(&mut self, now: Instant, opened: u32) -> Option<Instant> {
        if now >= self.stop_at || self.active >= self.limit || opened >= self.open_burst {
            return None;
        }
        self.last_now = now;
        if self.open_interval_ns == 0 {
            // Closed loop: within the handshake window, and on the ramp
            // until every connection is open.
            if self.handshakes >= self.window {
                return None;
            }
            if self.ramp_interval_ns > 0 && self.all_open_at.is_none() {
                if self.next_open > now {
                    return None;
                }
                // Several a turn when turns are longer than the interval;
                // after a pause (back-pressure) it catches up at most
                // RAMP_SLACK's worth, not in one burst.
                let from = self.next_open.0.max(now.0.saturating_sub(RAMP_SLACK_NS));
                self.next_open = Instant(from + self.ramp_interval_ns);
            }
            return Some(now);
        }
        if self.next_open > now {
            return None;
        }
        let due = self.next_open;
        self.next_open = Instant(due.0 + self.open_interval_ns);
        Some(due)
    }

    /// A connection opened (its handshake begins). True when this one makes
    /// every connection asked for open at once, the first time.
    pub fn opened(&mut self) -> bool {
        self.active += 1;
        self.handshakes += 1;
        self.opens += 1;
        if self.active >= self.limit && self.all_open_at.is_none() {
            self.all_open_at = Some(self.last_now);
            return true;
        }
        false
    }

    /// A connection ended.
    pub fn closed(&mut self) {
        self.active = self.active.saturating_sub(1);
    }

    /// A handshake completed, `latency` after its SYN: a fast one grows the
    /// window by one (doubling it each round trip, as slow start), a slow one
    /// halves it.
    pub fn handshake_done(&mut self, latency: Duration) {
        self.handshakes = self.handshakes.saturating_sub(1);
        if self.pacing == Pacing::None {
            return;
        }
        if latency < SLOW_HANDSHAKE {
            self.window = (self.window + 1).min(WINDOW_MAX);
        } else {
            self.shrink();
        }
    }

    /// A connection ended before its handshake completed (refused, timed
    /// out, reset): the window halves.
    pub fn handshake_failed(&mut self) {
        self.handshakes = self.handshakes.saturating_sub(1);
        if self.pacing != Pacing::None {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        if self.opens.saturating_sub(self.shrunk_at) >= u64::from(self.window) {
            self.window = (self.window / 2).max(WINDOW_MIN);
            self.shrunk_at = self.opens;
        }
    }

    /// Handshakes in flight now, and the window (u32::MAX: not paced).
    pub fn handshakes(&self) -> (u32, u32) {
        (self.handshakes, self.window)
    }

    /// Whether the opening is paced (and measuring waits for it).
    pub fn paced(&self) -> bool {
        self.pacing != Pacing::None
    }

    /// At the end of the run: the connections to close, handed over once
    /// (the caller closes them a burst at a time), after which this is empty.
    pub fn closing(&mut self) -> &mut Vec<H> {
        &mut self.closing
    }

    /// Whether the end-of-run walk has been set up.
    pub fn closing_started(&self) -> bool {
        self.closing_started
    }

    pub fn start_closing(&mut self, list: Vec<H>) {
        self.closing_started = true;
        self.closing = list;
    }

    /// When every connection asked for was first open at once.
    pub fn all_open_at(&self) -> Option<Instant> {
        self.all_open_at
    }

    /// Latencies count from `t` on, if that is later (the connections were
    /// all open only then).
    pub fn record_from_at_least(&mut self, t: Instant) {
        self.record_from = self.record_from.max(t);
    }

    /// `--rps`: connection `h` waits for a request.
    pub fn idle(&mut self, h: H) {
        self.idle.push_back(h);
    }

    /// `--rps`: the next idle connection and what it should do now, if
    /// anything is due. After a `Dispatch::Request` the caller says
    /// `request_started` if the connection took it (else the request stays
    /// due for the next idle connection).
    pub fn dispatch(&mut self, now: Instant) -> Option<(H, Dispatch)> {
        if self.request_interval_ns == 0 {
            return None;
        }
        let what = if now >= self.stop_at {
            Dispatch::Finish
        } else if self.next_request <= now && self.next_request < self.stop_at {
            Dispatch::Request(self.next_request)
        } else {
            return None;
        };
        self.idle.pop_front().map(|h| (h, what))
    }

    /// `--rps`: the request `dispatch` offered was taken.
    pub fn request_started(&mut self) {
        self.next_request = Instant(self.next_request.0 + self.request_interval_ns);
    }

    /// The earliest time the schedule has something to do, from `now` and no
    /// later than `limit` (for a loop that sleeps between events).
    pub fn next_event(&self, now: Instant, limit: Instant) -> Instant {
        let mut due = limit;
        if now < self.stop_at {
            if self.open_interval_ns > 0 {
                due = due.min(self.next_open);
            } else if self.active < self.limit && self.handshakes < self.window {
                due = if self.ramp_interval_ns > 0 && self.all_open_at.is_none() {
                    due.min(self.next_open.max(now))
                } else {
                    now
                };
            }
            if self.request_interval_ns > 0 && !self.idle.is_empty() {
                due = due.min(self.next_request);
            }
        }
        due
    }
}

/// The source addresses and ports new connections take, in turn.
#[derive(Debug, Clone)]
pub struct Sources {
    first: Ipv4Addr,
    count: u32,
    ports: (u16, u16),
    /// The next address (index from `first`) and port.
    idx: u32,
    port: u16,
}

impl Sources {
    /// From the config's addresses and ports, starting `first_port` into the
    /// port range (wrapped to it).
    pub fn new(cfg: &ClientConfig, first_port: u16) -> Sources {
        let span = u32::from(cfg.ports.1.saturating_sub(cfg.ports.0)) + 1;
        Sources {
            first: cfg.src_first,
            count: cfg.src_count.max(1),
            ports: cfg.ports,
            idx: 0,
            port: cfg.ports.0 + (u32::from(first_port) % span) as u16,
        }
    }

    /// The next source address and port: every port of an address, then the
    /// next address (the caller picks its own 4-tuples, as the DPDK shard does).
    pub fn next_tuple(&mut self) -> SocketAddrV4 {
        let ip = Ipv4Addr::from(u32::from(self.first).wrapping_add(self.idx));
        let local = SocketAddrV4::new(ip, self.port);
        if self.port >= self.ports.1 {
            self.port = self.ports.0;
            self.idx = (self.idx + 1) % self.count;
        } else {
            self.port += 1;
        }
        local
    }

    /// The next source address, one per connection in turn (the kernel picks
    /// the port); `None` when no source address was given.
    pub fn next_addr(&mut self) -> Option<Ipv4Addr> {
        if self.first.is_unspecified() {
            return None;
        }
        let ip = Ipv4Addr::from(u32::from(self.first).wrapping_add(self.idx));
        self.idx = (self.idx + 1) % self.count;
        Some(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(connections: u32, cps: u64, rps: u64) -> ClientConfig {
        ClientConfig {
            target: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80),
            src_first: Ipv4Addr::new(10, 0, 0, 2),
            src_count: 2,
            ports: (1000, 1002),
            connections,
            requests: 1,
            cps,
            rps,
            echo: None,
            request_list: crate::app::Request::only(
                &b"GET / HTTP/1.1\r\n\r\n"[..],
                &b"GET / HTTP/1.1\r\n\r\n"[..],
            ),
            think: Duration::ZERO,
            open_burst: 4,
        }
    }

    const T0: Instant = Instant(1_000_000_000);
    fn at_ms(ms: u64) -> Instant {
        Instant(T0.0 + ms * 1_000_000)
    }

    #[test]
    fn closed_loop_opens_up_to_the_limit_and_the_burst() {
        let mut s: Schedule<u32> =
            Schedule::new(&cfg(6, 0, 0), T0, Duration::from_secs(1), Duration::ZERO, 0);
        let mut opened = 0;
        while let Some(due) = s.open_due(T0, opened) {
            assert_eq!(due, T0, "closed loop: due now");
            s.opened();
            opened += 1;
        }
        assert_eq!(opened, 4, "one turn opens at most open_burst");
        let mut opened = 0;
        while s.open_due(at_ms(1), opened).is_some() {
            s.opened();
            opened += 1;
        }
        assert_eq!((opened, s.active()), (2, 6), "then up to the limit");
        s.closed();
        assert_eq!(
            s.open_due(at_ms(2), 0),
            Some(at_ms(2)),
            "a close frees a slot"
        );
        s.opened();
        assert_eq!(s.open_due(at_ms(1000), 0), None, "nothing at the stop time");
    }

    #[test]
    fn open_loop_paces_and_catches_up_from_the_due_time() {
        // 1000 connections a second: one each millisecond.
        let mut s: Schedule<u32> = Schedule::new(
            &cfg(100, 1000, 0),
            T0,
            Duration::from_secs(1),
            Duration::ZERO,
            0,
        );
        assert_eq!(s.open_due(T0, 0), Some(T0));
        s.opened();
        assert_eq!(s.open_due(T0, 1), None, "the next is due 1 ms later");
        // 3.5 ms late: three are due, each keeps its own due time.
        let now = at_ms(3) + Duration::from_micros(500);
        let mut dues = Vec::new();
        while let Some(d) = s.open_due(now, dues.len() as u32) {
            s.opened();
            dues.push(d);
        }
        assert_eq!(dues, vec![at_ms(1), at_ms(2), at_ms(3)]);
        assert_eq!(s.next_event(now, at_ms(100)), at_ms(4));
    }

    #[test]
    fn a_ramp_opens_several_a_turn_when_turns_are_longer_than_its_interval() {
        // 1000 connections over 10 ms: one each 10 µs; turns 100 µs apart.
        let mut c = cfg(1000, 0, 0);
        c.open_burst = 64;
        let mut s: Schedule<u32> = Schedule::new(&c, T0, Duration::from_secs(1), Duration::ZERO, 0);
        s.set_pacing(Pacing::Ramp(Duration::from_millis(10)));
        let mut per_turn = Vec::new();
        for turn in 0..5u64 {
            let now = T0 + Duration::from_micros(100 * turn);
            let mut n = 0;
            while s.open_due(now, n).is_some() {
                s.opened();
                s.handshake_done(Duration::from_micros(10));
                n += 1;
            }
            per_turn.push(n);
        }
        assert_eq!(
            per_turn,
            vec![1, 10, 10, 10, 10],
            "on schedule, not one a turn"
        );
        // After a 5 ms pause it catches up 1 ms (100) at most, bounded by the burst.
        let now = T0 + Duration::from_micros(400 + 5_000);
        let mut n = 0;
        while s.open_due(now, n).is_some() {
            s.opened();
            s.handshake_done(Duration::from_micros(10));
            n += 1;
        }
        assert_eq!(n, 64, "the burst bounds the catching up");
        let mut m = 0;
        while s.open_due(now, m).is_some() {
            s.opened();
            m += 1;
        }
        assert_eq!(m, 37, "then the rest of the 1 ms slack");
    }

    #[test]
    fn rps_hands_due_requests_to_idle_connections_then_finishes_them() {
        // 100 requests a second: one each 10 ms.
        let mut s: Schedule<u32> = Schedule::new(
            &cfg(10, 0, 100),
            T0,
            Duration::from_millis(50),
            Duration::ZERO,
            0,
        );
        assert_eq!(s.dispatch(T0), None, "no idle connection yet");
        s.idle(7);
        s.idle(8);
        assert_eq!(s.dispatch(T0), Some((7, Dispatch::Request(T0))));
        s.request_started();
        assert_eq!(s.dispatch(at_ms(5)), None, "the next is due at 10 ms");
        // Late: the request keeps its due time.
        assert_eq!(
            s.dispatch(at_ms(15)),
            Some((8, Dispatch::Request(at_ms(10))))
        );
        // Not taken (the connection could not): the next idle one gets it.
        s.idle(9);
        assert_eq!(
            s.dispatch(at_ms(15)),
            Some((9, Dispatch::Request(at_ms(10))))
        );
        s.request_started();
        s.idle(7);
        assert_eq!(
            s.dispatch(at_ms(50)),
            Some((7, Dispatch::Finish)),
            "at the stop time idle connections finish"
        );
        assert_eq!(s.dispatch(at_ms(50)), None);
    }

    #[test]
    fn no_request_is_due_at_or_after_the_stop_time() {
        let mut s: Schedule<u32> = Schedule::new(
            &cfg(10, 0, 100),
            T0,
            Duration::from_millis(10),
            Duration::ZERO,
            0,
        );
        s.idle(1);
        assert_eq!(s.dispatch(T0), Some((1, Dispatch::Request(T0))));
        s.request_started();
        s.idle(1);
        // The next is due at 10 ms, which is the stop time: not sent.
        assert_eq!(s.dispatch(at_ms(9)), None);
        s.stop(at_ms(5));
        assert_eq!(s.stop_at(), at_ms(5));
        assert_eq!(s.dispatch(at_ms(9)), Some((1, Dispatch::Finish)));
    }

    #[test]
    fn warmup_and_stop_times() {
        let s: Schedule<u32> = Schedule::new(
            &cfg(1, 0, 0),
            T0,
            Duration::from_secs(3),
            Duration::from_secs(1),
            0,
        );
        assert_eq!(s.record_from(), at_ms(1000));
        assert_eq!(s.stop_at(), at_ms(3000));
    }

    #[test]
    fn sources_walk_ports_then_addresses_from_the_first() {
        let mut src = Sources::new(&cfg(1, 0, 0), 1);
        let got: Vec<String> = (0..7).map(|_| src.next_tuple().to_string()).collect();
        assert_eq!(
            got,
            [
                "10.0.0.2:1001",
                "10.0.0.2:1002",
                "10.0.0.3:1000",
                "10.0.0.3:1001",
                "10.0.0.3:1002",
                "10.0.0.2:1000",
                "10.0.0.2:1001",
            ]
        );
        // Addresses in turn, the first one first (both backends alike).
        let mut src = Sources::new(&cfg(1, 0, 0), 0);
        let got: Vec<Option<Ipv4Addr>> = (0..3).map(|_| src.next_addr()).collect();
        assert_eq!(
            got,
            [
                Some(Ipv4Addr::new(10, 0, 0, 2)),
                Some(Ipv4Addr::new(10, 0, 0, 3)),
                Some(Ipv4Addr::new(10, 0, 0, 2)),
            ]
        );
        let mut c = cfg(1, 0, 0);
        c.src_first = Ipv4Addr::UNSPECIFIED;
        assert_eq!(Sources::new(&c, 0).next_addr(), None);
    }
}
