//! A connection after input, a timer or the generator touched it: events to
//! its application, its segments out (`transmit.rs`), then where it goes
//! next — closed and removed, swapped for a TIME_WAIT record, or its next
//! deadline in the wheel.

use super::timers::{disarm, rearm};
use super::transmit::{Segments, Tx};
use super::{Conn, HALF_OPEN, Stack, StackFamily, THINK_QUEUED, TOUCHED};
use crate::app::schedule::Schedule;
use crate::app::{AppConn, AppCx, ClientConfig, EngineSocket, ServerApp};
use crate::flags::Flags8;
use crate::shard::nic::Nic;
use crate::stats::{Latency, ShardStats};
use crate::table::{Handle, TimeWaitEntry};
use crate::tcp::{CloseReason, Event, QueuedSum, State, TcpConfig, TimeWaitRecord};
use crate::time::Instant;

/// How soon a connection whose segment found no mbuf tries again.
const NO_BUFFER_RETRY: std::time::Duration = std::time::Duration::from_millis(1);

/// How soon a connection whose peer's MAC is not known yet tries again.
const NO_NEIGHBOUR_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

impl<A: StackFamily> Stack<A> {
    /// Events to the application, segments to the NIC, then the timer and
    /// the table updated for connection `h`: one table lookup for the three
    /// (the connection stays in hand from its events to where it goes next).
    /// (`run`: the load generator's `stop_at` and `record_from`, for the
    /// application's context.)
    #[inline(always)]
    pub(super) fn drive(
        &mut self,
        now: Instant,
        h: Handle,
        nic: &mut dyn Nic,
        run: (Instant, Instant),
    ) {
        let Some(c) = self.table.get_mut(h) else {
            return;
        };
        // What the application queues whole with its sum, for the transmit.
        let mut queued = QueuedSum::NONE;
        let closed = deliver(
            Apps {
                stats: &mut self.stats,
                latency: &mut self.latency,
                scratch: &mut self.scratch,
                heads: &mut self.heads,
                client: &mut self.client,
                client_cfg: self.client_cfg.as_ref(),
                servers: &self.servers,
                cfg: &self.cfg.tcp,
                half_open: &mut self.half_open,
                thinking: &mut self.thinking,
                queued: &mut queued,
                run,
            },
            now,
            h,
            c,
        );
        let mut tx = Tx {
            stats: &mut self.stats,
            neigh: &self.neigh,
            cfg: &self.cfg,
            ip_ident: &mut self.ip_ident,
            eth_tail: &self.eth_tail,
        };
        let sent = tx.transmit(now, c, &queued, nic);
        if sent == Segments::NoNeighbour {
            // RFC 1122 2.3.2.2, RFC 4861 7.2.2: what waits for its
            // neighbour's address is kept (unbuilt, in the engine) while the
            // neighbour is asked for, and tried again soon.
            let remote = c.key.remote_host();
            let retry = now + NO_NEIGHBOUR_RETRY;
            rearm((&mut self.wheel, &mut self.opening), c, h, retry, now);
            return self.ask_neighbour(remote);
        }
        // Where the connection goes after its segments are out.
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
                if c.has(HALF_OPEN) {
                    self.half_open -= 1;
                }
                let key = c.key();
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
                let key = c.key();
                let tw = self.cfg.tcp.time_wait();
                if let Some(r) = TimeWaitRecord::from_connection(&c.tcp, key, now, tw) {
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
                // Idle (nothing buffered either way): its buffers go back
                // to the pool until data comes again.
                c.tcp.release_idle_buffers();
                let mut want = c.tcp.poll_timeout().unwrap_or(Instant::NEVER);
                if sent == Segments::NoBuffer {
                    // A segment left unsent for want of an mbuf (counted as
                    // `no_buffer`): tried again soon, not left to a timer
                    // the engine arms only once it is sent (a SYN's).
                    want = want.min(now + NO_BUFFER_RETRY);
                }
                if let AppConn::Client(cl) = &c.app {
                    // Think time: a think that starts now goes in the think
                    // queue (`Stack::thinking`, whose entries are all that
                    // long); one that does not (a first request spread over
                    // the first think time) is the wheel's.
                    let at = cl.wake_at();
                    // (`THINK_QUEUED`: this think time is in a queue. A
                    // think time can end without its entry, which is then
                    // passed over: a connection driven for something else
                    // past its deadline.)
                    if at == Instant::NEVER {
                        c.flags &= !THINK_QUEUED;
                    } else if !c.has(THINK_QUEUED) {
                        let filed = self.thinking.as_mut().is_some_and(|q| q.file(now, at, h));
                        if filed {
                            c.set(THINK_QUEUED, true);
                        } else {
                            want = want.min(at);
                        }
                    }
                }
                rearm((&mut self.wheel, &mut self.opening), c, h, want, now);
            }
        }
    }
}

/// What `deliver` works with: the shard's parts the applications see.
struct Apps<'a> {
    stats: &'a mut ShardStats,
    latency: &'a mut Latency,
    scratch: &'a mut Vec<u8>,
    heads: &'a mut crate::app::http::HeadMemos,
    client: &'a mut Option<Schedule<Handle>>,
    client_cfg: Option<&'a ClientConfig>,
    /// The listeners' applications (`ServerConn::listener`).
    servers: &'a [ServerApp],
    cfg: &'a TcpConfig,
    half_open: &'a mut usize,
    /// A closed loop's think queues (its first requests' spread).
    thinking: &'a mut Option<super::timers::ThinkQueues>,
    /// What the application queued whole with its sum (`EngineSocket`).
    queued: &'a mut QueuedSum,
    /// The generator's `stop_at` and `record_from` (`AppCx`).
    run: (Instant, Instant),
}

/// The engine's events to connection `c`'s (`h`'s) application, until it has
/// nothing more to say; think time and `--rps` readiness. The close reason
/// an event gave, if one did.
#[inline(always)]
fn deliver<A: StackFamily>(
    a: Apps<'_>,
    now: Instant,
    h: Handle,
    c: &mut Conn<A>,
) -> Option<CloseReason> {
    c.flags &= !TOUCHED;
    let client_cfg = a.client_cfg;
    let cfg = a.cfg;
    let mut closed = None;
    // A client's handshake completed in this call (the pacing learns).
    let mut connected = false;
    // When its SYN went, for the pacing (the client's state keeps it only
    // until it is connected).
    let mut opened_at = Instant::NEVER;
    let client_due = |c: &Conn<A>| matches!(&c.app, AppConn::Client(cl) if cl.next_at() <= now);
    // Nothing to tell and no think time over (a SYN-ACK sent, a FIN taken
    // into TIME_WAIT): no context to build.
    if c.tcp.has_event() || (client_cfg.is_some() && client_due(c)) {
        let mut cx = AppCx {
            now,
            stats: a.stats,
            latency: a.latency,
            scratch: a.scratch,
            heads: a.heads,
            stop_at: a.run.0,
            record_from: a.run.1,
        };
        // One socket for every event and the tick (the connection's
        // engine, beside its application).
        let mut sock = EngineSocket {
            conn: &mut c.tcp,
            cfg,
            now,
            queued: &mut *a.queued,
        };
        // Until the engine has nothing more to say (what the application
        // does may give more events: they are taken in the same loop).
        while let Some(ev) = sock.conn.poll_event() {
            if let Event::Closed(r) = ev {
                closed = Some(r);
            }
            match &mut c.app {
                AppConn::Server(s) => match a.servers.get(s.listener()) {
                    Some(app) => s.on_event(app, &mut cx, &mut sock, ev),
                    None => debug_assert!(false, "a connection of no listener"),
                },
                AppConn::Client(cl) => {
                    if ev == Event::Connected && !connected {
                        connected = true;
                        opened_at = cl.opened_at();
                    }
                    if let Some(cc) = client_cfg {
                        cl.on_event(&mut cx, cc, &mut sock, ev);
                    }
                }
            }
        }
        // Think time over (the connection's timer covers `next_at`); an
        // event above may have ended it (no think time: at once).
        if let (AppConn::Client(cl), Some(cc)) = (&mut c.app, client_cfg) {
            // The handshake completed: the pacing learns how fast.
            if connected {
                if let Some(g) = a.client.as_mut() {
                    g.handshake_done(now.saturating_since(opened_at));
                }
                // A closed loop with think time: the first request when the
                // think queues spread it (`timers::ThinkQueues`).
                if let Some(at) = a.thinking.as_mut().and_then(|q| q.first_request_at(now)) {
                    cl.set_first_request_at(at);
                }
            }
            if cl.next_at() <= now {
                cl.on_tick(&mut cx, cc, &mut sock);
            }
        }
    }
    // `--rps`: ready for a scheduled request.
    if let (AppConn::Client(cl), Some(_)) = (&mut c.app, client_cfg) {
        if cl.wants_queueing() {
            if let Some(g) = a.client {
                cl.set_queued(true);
                g.idle(h);
            }
        }
    }
    if c.has(HALF_OPEN) && c.tcp.state() != State::SynReceived {
        c.flags &= !HALF_OPEN;
        *a.half_open -= 1;
    }
    closed
}
