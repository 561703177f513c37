//! A connection after input, a timer or the generator touched it: events to
//! its application, its segments out (`transmit.rs`), then where it goes
//! next — closed and removed, swapped for a TIME_WAIT record, or its next
//! deadline in the wheel.

use super::timers::{disarm, rearm};
use super::{Stack, transmit::Segments};
use crate::app::{AppConn, AppCx, EngineSocket};
use crate::shard::nic::Nic;
use crate::table::{Handle, TimeWaitEntry};
use crate::tcp::{CloseReason, Event, State, TimeWaitRecord};
use crate::time::Instant;

impl Stack {
    /// Events to the application, segments to the NIC, then the timer and
    /// the table updated for connection `h`.
    pub(super) fn drive(&mut self, now: Instant, h: Handle, nic: &mut dyn Nic) {
        let Some(closed) = self.deliver(now, h) else {
            return;
        };
        if self.transmit(now, h, nic) == Segments::NoNeighbour {
            return;
        }
        self.settle(now, h, closed);
    }

    /// The engine's events to the application, until it has nothing more to
    /// say; think time and `--rps` readiness. `None` if `h` is gone, else the
    /// close reason an event gave, if one did.
    fn deliver(&mut self, now: Instant, h: Handle) -> Option<Option<CloseReason>> {
        let client_cfg = self.client_cfg.as_ref();
        let c = self.table.get_mut(h)?;
        c.touched = false;
        let cfg = &self.cfg.tcp;
        let mut cx = AppCx {
            now,
            stats: &mut self.stats,
            latency: &mut self.latency,
            scratch: &mut self.scratch,
            heads: &mut self.heads,
            stop_at: self.client.as_ref().map_or(Instant::NEVER, |g| g.stop_at()),
            record_from: self
                .client
                .as_ref()
                .map_or(Instant::NEVER, |g| g.record_from()),
        };
        macro_rules! sock {
            () => {
                EngineSocket {
                    conn: &mut c.tcp,
                    cfg,
                    now,
                }
            };
        }
        let mut closed = None;
        // A client's handshake completed in this call (the pacing learns).
        let mut connected = false;
        for _ in 0..16 {
            let mut any = false;
            while let Some(ev) = c.tcp.poll_event() {
                any = true;
                if let Event::Closed(r) = ev {
                    closed = Some(r);
                }
                match &mut c.app {
                    AppConn::Server(s) => s.on_event(&mut cx, &mut sock!(), ev),
                    AppConn::Client(cl) => {
                        connected |= ev == Event::Connected;
                        if let Some(cc) = client_cfg {
                            cl.on_event(&mut cx, cc, &mut sock!(), ev);
                        }
                    }
                }
            }
            if !any {
                break;
            }
        }
        if let (AppConn::Client(cl), Some(cc)) = (&mut c.app, client_cfg) {
            // The handshake completed: the pacing learns how fast.
            if connected {
                if let Some(g) = &mut self.client {
                    g.handshake_done(now.saturating_since(cl.opened_at()));
                }
            }
            // Think time over (the connection's timer covers `next_at`).
            if cl.next_at <= now {
                cl.on_tick(&mut cx, cc, &mut sock!());
            }
            // `--rps`: ready for a scheduled request.
            if cl.idle && !cl.finished && !cl.queued {
                if let Some(g) = &mut self.client {
                    cl.queued = true;
                    g.idle(h);
                }
            }
        }
        if c.half_open && c.tcp.state() != State::SynReceived {
            c.half_open = false;
            self.half_open -= 1;
        }
        Some(closed)
    }

    /// Where connection `h` goes after its segments are out.
    fn settle(&mut self, now: Instant, h: Handle, closed: Option<CloseReason>) {
        let Some(c) = self.table.get_mut(h) else {
            return;
        };
        // A client connection, and one that ends before its handshake completed.
        let (is_client, handshaking) = match &c.app {
            AppConn::Client(cl) => (true, cl.handshaking),
            AppConn::Server(_) => (false, false),
        };
        match c.tcp.state() {
            State::Closed => {
                let reason = closed
                    .or(c.tcp.close_reason())
                    .unwrap_or(CloseReason::Normal);
                disarm(&mut self.wheel, c);
                if c.half_open {
                    self.half_open -= 1;
                }
                let key = c.key;
                self.table.discard(key, h);
                self.stats.count_close(reason);
                if let Some(g) = &mut self.client {
                    if is_client {
                        g.closed();
                    }
                    if handshaking {
                        g.handshake_failed();
                    }
                }
            }
            State::TimeWait => {
                disarm(&mut self.wheel, c);
                let key = c.key;
                let tw = self.cfg.tcp.time_wait();
                if let Some(r) = TimeWaitRecord::from_connection(&c.tcp, now, tw) {
                    // Out of the table either way; without room for its
                    // record the 4-tuple is simply not held for 2MSL.
                    match self.table.enter_time_wait(key, h, r, now) {
                        Some(TimeWaitEntry::Stored) => self.stats.time_wait_entered += 1,
                        Some(TimeWaitEntry::Refused) => self.stats.time_wait_refused += 1,
                        None => {}
                    }
                    // The connection is done as far as the application goes.
                    self.stats.count_close(CloseReason::Normal);
                    if is_client {
                        if let Some(g) = &mut self.client {
                            g.closed();
                        }
                    }
                }
            }
            _ => {
                let mut want = c.tcp.poll_timeout().unwrap_or(Instant::NEVER);
                if let AppConn::Client(cl) = &c.app {
                    if cl.next_at != Instant::NEVER && !cl.finished {
                        want = want.min(cl.next_at); // think time
                    }
                }
                let floor = now + self.cfg.tcp.rto_min;
                rearm(&mut self.wheel, c, h, want, floor);
            }
        }
    }
}
