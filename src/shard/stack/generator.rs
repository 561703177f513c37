//! The load generator on a shard: new client connections as the schedule
//! (`app::schedule`) allows, from 4-tuples this shard owns and nobody uses,
//! `--rps` requests handed to idle connections, and at the end of the run
//! its idle connections closed, a burst a turn.

use super::{Conn, Stack, StackFamily, host_pair_cached, mark};
use crate::app::schedule::{Dispatch, Schedule};
use crate::app::{AppConn, AppCx, ClientConfig, ClientConn, EngineSocket};
use crate::stats::DropReason;
use crate::table::{FlowKey, InsertError, Place};
use crate::tcp::{Connection, QueuedSum};
use crate::time::Instant;
use crate::wire::{FamilySocketAddr, Ipv6Range, SeqNumber};

impl<A: StackFamily> Stack<A> {
    /// Starts the load generator: connections open from `now` until
    /// `now + duration`; latencies count after `warmup`.
    pub fn start_client(
        &mut self,
        cfg: ClientConfig,
        now: Instant,
        duration: std::time::Duration,
        warmup: std::time::Duration,
    ) {
        // Start at a random port, as kernels pick ephemeral ports: a rerun then
        // rarely meets 4-tuples the peer still holds in TIME_WAIT from the last.
        let span = u64::from(cfg.ports.1.saturating_sub(cfg.ports.0)) + 1;
        let first_port = (self.hasher.hash(cfg.target, cfg.target, 0x706f) % span) as u16;
        self.client = Some(Schedule::new(&cfg, now, duration, warmup, first_port));
        // A closed loop whose connections think between requests: their
        // think times go in a queue of that length (`drive`).
        self.thinking = (cfg.cps == 0 && cfg.rps == 0 && cfg.requests > 1 && !cfg.think.is_zero())
            .then(|| super::timers::ThinkQueues::new(cfg.think, cfg.connections, now));
        self.client_target =
            A::from_v4(*cfg.target.ip()).map(|ip| A::SocketAddr::from_parts(ip, cfg.target.port()));
        self.client_cfg = Some(cfg);
    }

    /// `start_client` for an IPv6 shard: connections to `target` from the
    /// addresses of `sources` (the schedule walks their indexes as it walks
    /// IPv4 addresses: give `cfg.src_first` 0.0.0.0 and `cfg.src_count` the
    /// range's size, at most 2^32).
    pub fn start_client_to(
        &mut self,
        cfg: ClientConfig,
        target: A::SocketAddr,
        sources: Ipv6Range,
        now: Instant,
        duration: std::time::Duration,
        warmup: std::time::Duration,
    ) {
        self.start_client(cfg, now, duration, warmup);
        self.client_target = Some(target);
        self.client_sources6 = sources;
    }

    /// Makes room for `n` connections (table and timers) up front, for a
    /// run that will hold that many (client or server): none of them grows,
    /// and stalls the shard, mid-run.
    pub fn reserve_connections(&mut self, n: usize) {
        self.table.reserve(n);
        self.wheel.reserve(n.saturating_sub(self.wheel.len()));
    }

    /// Room for `n` handshake timer entries (`timers::rearm`'s queue) before
    /// it grows. A running shard's holds one RTO.min of openings (room for
    /// 65,536 is made up front); only a run in virtual time shorter than
    /// RTO.min (bench/stack_cost.rs), where no entry expires, needs one per
    /// connection. (Not part of `reserve_connections`: the queue's ring
    /// would walk through all of that room, resident, 16 bytes a connection.)
    pub fn reserve_handshake_timers(&mut self, n: usize) {
        self.opening.reserve(n.saturating_sub(self.opening.len()));
    }

    /// How the generator's closed loop paces its opening (after
    /// `start_client`; none unless set).
    pub fn pace_client(&mut self, pacing: crate::app::Pacing) {
        if let Some(g) = &mut self.client {
            g.set_pacing(pacing);
        }
    }

    /// Stops opening client connections.
    pub fn stop_client(&mut self, now: Instant) {
        if let Some(g) = &mut self.client {
            g.stop(now);
        }
    }

    /// Client connections still open.
    pub fn client_active(&self) -> u32 {
        self.client.as_ref().map_or(0, |g| g.active())
    }

    /// When every client connection asked for was first open at once.
    pub fn client_all_open_at(&self) -> Option<Instant> {
        self.client.as_ref().and_then(|g| g.all_open_at())
    }

    /// Whether the client's opening is paced (measuring waits for it).
    pub fn client_paced(&self) -> bool {
        self.client.as_ref().is_some_and(|g| g.paced())
    }

    /// The generator's gauges into the counters (before they are published).
    pub fn client_gauges(&mut self) {
        if let Some(g) = &self.client {
            let (n, w) = g.handshakes();
            self.stats.handshakes = u64::from(n);
            self.stats.open_window = if w == u32::MAX { 0 } else { u64::from(w) };
        }
    }

    /// The next source address and port this shard owns (`None` after 4096
    /// tries); whether it is free, the insert says (one probe of the
    /// table, `ConnTable::insert_in`).
    fn owned_tuple(&mut self, target: A::SocketAddr) -> Option<FlowKey<A>> {
        let g = self.client.as_mut()?;
        for _ in 0..4096 {
            let v4 = g.sources.next_tuple();
            let Some(local) = A::client_local(&self.client_sources6, v4) else {
                continue;
            };
            // A tuple this shard owns (RSS ownership: one whose replies the
            // NIC puts on this shard's queue), either family.
            if self.cfg.shards > 1
                && self.cfg.ownership.owner(local, target, self.cfg.shards) != self.cfg.shard
            {
                continue;
            }
            return Some(FlowKey::new(local, target));
        }
        None
    }

    /// Opens the connections the schedule allows this turn.
    pub(super) fn open_client_connections(&mut self, now: Instant) {
        let Some(target) = self.client_target else {
            return;
        };
        let mut opened = 0;
        // Tuples found taken (by an open connection or a TIME_WAIT record)
        // this turn: the next is tried, up to 4096.
        let mut taken = 0;
        'open: while let Some(due) = self.client.as_mut().and_then(|g| g.open_due(now, opened)) {
            loop {
                let Some(tuple) = self.owned_tuple(target) else {
                    break 'open;
                };
                let pair = host_pair_cached(
                    &mut self.host_pair,
                    &self.hasher,
                    tuple.local_host(),
                    tuple.remote_host(),
                );
                let (iss, off) = (SeqNumber(pair.isn_of(&tuple, now)), pair.ts_offset());
                let key = tuple;
                let cfg = &self.cfg.tcp;
                // Built in its table slot: no copies of the control block; in a
                // slot a connection ended in, in place of that one, with its
                // buffers.
                let conn = |place: Place<'_, Conn<A>>| match place {
                    Place::Empty(slot) => {
                        let mut tcp = Connection::connect(cfg, tuple, iss, now);
                        tcp.set_ts_offset(off);
                        // Driven this turn (pushed below once it is in).
                        *slot = Some(Conn::new(
                            tcp,
                            key,
                            AppConn::Client(ClientConn::new(due)),
                            false,
                            None,
                        ));
                    }
                    Place::Kept(c) => {
                        c.tcp.reconnect(cfg, tuple, iss, now);
                        c.tcp.set_ts_offset(off);
                        c.app = AppConn::Client(ClientConn::new(due));
                        c.renew(key, false, None);
                    }
                };
                match self.table.insert_in(key, conn) {
                    Ok(h) => {
                        if let Some(g) = &mut self.client {
                            if g.opened() && g.paced() && now > g.record_from() {
                                // Every connection is open only now: request
                                // latencies count from here (the measuring waits
                                // too); connect latencies are the opening's.
                                g.record_from_at_least(now);
                                self.latency.first_byte.reset();
                                self.latency.request.reset();
                            }
                        }
                        self.stats.opened += 1;
                        opened += 1;
                        self.touched.push(h);
                    }
                    Err(InsertError::Full { .. }) => {
                        self.stats.drop(DropReason::TableFull);
                        break 'open;
                    }
                    Err(InsertError::TupleTaken) => {
                        self.stats.port_collisions += 1;
                        taken += 1;
                        if taken >= 4096 {
                            break 'open;
                        }
                        continue;
                    }
                }
                break;
            }
        }
    }

    /// After the stop time: closes the client connections that have no
    /// request in flight, `CLOSE_BURST` a turn (each sends a FIN, so the
    /// turn's frames stay few; back-pressure holds the rest). Those waiting
    /// for a response close when it arrives.
    #[inline]
    pub(super) fn close_client_connections(&mut self, now: Instant) {
        if self.client.as_ref().is_some_and(|g| now >= g.stop_at()) {
            self.close_client_burst(now);
        }
    }

    #[cold]
    #[inline(never)]
    fn close_client_burst(&mut self, now: Instant) {
        const CLOSE_BURST: usize = 32;
        /// Table slots looked at a turn for connections to close: a walk of
        /// millions at once stalled the shard for a second or more (a
        /// sequential read of gigabytes), long enough for the peer's
        /// retransmission timers to fire on everything in flight.
        const CLOSE_WALK: usize = 8192;
        let Some(g) = &mut self.client else {
            return;
        };
        if !g.closing_started() {
            g.start_closing(Vec::new());
            self.close_cursor = 0;
        }
        if self.close_cursor < self.table.slot_count() {
            let end = self.close_cursor + CLOSE_WALK;
            let found = self
                .table
                .iter_part(self.close_cursor, end)
                .filter(|(_, c)| matches!(&c.app, AppConn::Client(cl) if !cl.finished()))
                .map(|(h, _)| h);
            g.closing().extend(found);
            self.close_cursor = end;
        }
        let (stop_at, record_from) = (g.stop_at(), g.record_from());
        for _ in 0..CLOSE_BURST {
            let Some(h) = g.closing().pop() else {
                return;
            };
            let Some(c) = self.table.get_mut(h) else {
                continue;
            };
            let AppConn::Client(cl) = &mut c.app else {
                continue;
            };
            let mut cx = AppCx {
                now,
                stats: &mut self.stats,
                latency: &mut self.latency,
                scratch: &mut self.scratch,
                heads: &mut self.heads,
                stop_at,
                record_from,
            };
            // (Sent at the output, in another call: what this queues
            // with a sum is summed again there.)
            let mut sock = EngineSocket {
                conn: &mut c.tcp,
                cfg: &self.cfg.tcp,
                now,
                queued: &mut QueuedSum::default(),
            };
            if cl.close_at_end(&mut cx, &mut sock) {
                mark(&mut self.touched, c, h);
            }
        }
    }

    /// `--rps`: hands each request that is due to an idle connection; a
    /// request keeps its due time while it waits for one, so queueing shows
    /// in the latency.
    pub(super) fn dispatch_requests(&mut self, now: Instant) {
        let (Some(g), Some(gc)) = (&mut self.client, &self.client_cfg) else {
            return;
        };
        while let Some((h, what)) = g.dispatch(now) {
            let Some(c) = self.table.get_mut(h) else {
                continue;
            };
            let AppConn::Client(cl) = &mut c.app else {
                continue;
            };
            cl.set_queued(false);
            let mut cx = AppCx {
                now,
                stats: &mut self.stats,
                latency: &mut self.latency,
                scratch: &mut self.scratch,
                heads: &mut self.heads,
                stop_at: g.stop_at(),
                record_from: g.record_from(),
            };
            // (Sent at the output, in another call: what this queues
            // with a sum is summed again there.)
            let mut sock = EngineSocket {
                conn: &mut c.tcp,
                cfg: &self.cfg.tcp,
                now,
                queued: &mut QueuedSum::default(),
            };
            match what {
                Dispatch::Finish => cl.finish_idle(&mut cx, &mut sock),
                Dispatch::Request(due) => {
                    if cl.start_scheduled(&mut cx, gc, &mut sock, due) {
                        g.request_started();
                    }
                }
            }
            mark(&mut self.touched, c, h);
        }
    }
}
