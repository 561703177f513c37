//! A deterministic network simulation for the TCP engine: hosts holding
//! connections, joined by a link with seeded loss, duplication, reordering,
//! delay jitter, corruption and a bandwidth limit, in virtual time.
//!
//! Used by `tests/sim.rs` (correctness under faults) and by benchmarks (cost
//! per connection without a network).
//!
//! Either IP family (`Scenario::ipv6`): the hosts, the link and the packets
//! take the family as a type parameter; segments are checksummed over the
//! family's pseudo-header and must fit a 1500-byte MTU with its IP header.

pub mod rng;

use crate::shard::route::{Flows, Lookup, Route, route};
use crate::tcp::{
    CloseReason, Connection, Ends, Event, SegmentVerdict, State, TcpConfig, TcpStats,
    TimeWaitRecord, TupleHasher, emit_cookie_syn_ack, rst_reply,
};
use crate::time::Instant;
use crate::timer::{FifoTimers, TimerId, Wheel};
use crate::wire::{
    ChecksumMode, FamilySocketAddr, FlowKey, IpFamily, SeqNumber, TcpPacket, TcpRepr,
};
use rng::Rng;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The MTU of the simulated link: every segment with its IP header fits.
pub const MTU: usize = 1500;

/// A family the simulation runs over: its hosts' addresses.
pub trait SimFamily: IpFamily {
    const CLIENT: Self;
    const SERVER: Self;
}

impl SimFamily for Ipv4Addr {
    const CLIENT: Self = Ipv4Addr::new(10, 0, 0, 1);
    const SERVER: Self = Ipv4Addr::new(10, 0, 0, 2);
}

/// Addresses whose words differ widely, so the pseudo-header's sum is not
/// a trivial one.
impl SimFamily for Ipv6Addr {
    const CLIENT: Self = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0x1, 0, 0xfe, 0x1234, 0x9);
    const SERVER: Self = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x80, 0, 0, 0, 0x2);
}

/// A connection's two ends as the simulation keys it: (local, remote).
pub type Pair<A> = (<A as IpFamily>::SocketAddr, <A as IpFamily>::SocketAddr);

/// Faults on the link (each direction independently).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    pub delay: Duration,
    /// Extra delay, uniform in 0..jitter: reorders packets.
    pub jitter: Duration,
    pub loss: f64,
    pub duplicate: f64,
    /// Probability a packet has one byte flipped (the receiver's checksum drops it).
    pub corrupt: f64,
    /// Bits per second per direction; `None`: unlimited.
    pub bandwidth_bps: Option<u64>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            corrupt: 0.0,
            bandwidth_bps: None,
        }
    }
}

/// One segment in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<A: IpFamily = Ipv4Addr> {
    pub src: A::SocketAddr,
    pub dst: A::SocketAddr,
    pub bytes: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
struct InFlight<A: IpFamily> {
    at: Instant,
    order: u64,
    pkt: Packet<A>,
}

impl<A: IpFamily> Ord for InFlight<A> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Min-heap on (at, order).
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}
impl<A: IpFamily> PartialOrd for InFlight<A> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Link counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    pub delivered: u64,
    /// Segments sent whose checksum over the family's pseudo-header (the
    /// wire's reference, `IpFamily::transport_checksum`) is wrong: none may be.
    pub bad_checksums: u64,
    /// Segments sent that, with their IP header, would not fit the MTU.
    pub oversize: u64,
    /// The largest IP packet sent (segment and fixed IP header).
    pub largest_ip_packet: usize,
}

/// The network: a priority queue of packets by delivery time.
pub struct Link<A: IpFamily = Ipv4Addr> {
    pub cfg: LinkConfig,
    rng: Rng,
    queue: BinaryHeap<InFlight<A>>,
    order: u64,
    /// When each direction (keyed by source IP) is free again (bandwidth limit).
    busy_until: HashMap<A, Instant>,
    pub stats: LinkStats,
}

impl<A: IpFamily> Link<A> {
    pub fn new(cfg: LinkConfig, seed: u64) -> Link<A> {
        Link {
            cfg,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            order: 0,
            busy_until: HashMap::new(),
            stats: LinkStats::default(),
        }
    }

    pub fn send(&mut self, now: Instant, mut pkt: Packet<A>) {
        self.stats.sent += 1;
        let (src, dst) = (pkt.src.host(), pkt.dst.host());
        if A::transport_checksum(&src, &dst, 6, &pkt.bytes) != 0 {
            self.stats.bad_checksums += 1;
        }
        let ip_len = A::HEADER_LEN + pkt.bytes.len();
        self.stats.largest_ip_packet = self.stats.largest_ip_packet.max(ip_len);
        if ip_len > MTU {
            self.stats.oversize += 1;
        }
        if self.rng.chance(self.cfg.loss) {
            self.stats.lost += 1;
            return;
        }
        let mut depart = now;
        if let Some(bps) = self.cfg.bandwidth_bps {
            let key = pkt.src.host();
            let free = self.busy_until.get(&key).copied().unwrap_or(now).max(now);
            let wire = Duration::from_nanos(
                (pkt.bytes.len() as u64 + 54) * 8 * 1_000_000_000 / bps.max(1),
            );
            depart = free + wire;
            self.busy_until.insert(key, depart);
        }
        if self.rng.chance(self.cfg.corrupt) && !pkt.bytes.is_empty() {
            let i = self.rng.below(pkt.bytes.len() as u64) as usize;
            pkt.bytes[i] ^= 1 << self.rng.below(8);
            self.stats.corrupted += 1;
        }
        let copies = if self.rng.chance(self.cfg.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = if self.cfg.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.rng.below(self.cfg.jitter.as_nanos() as u64))
            };
            self.order += 1;
            self.queue.push(InFlight {
                at: depart + self.cfg.delay + jitter,
                order: self.order,
                pkt: pkt.clone(),
            });
        }
    }

    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|p| p.at)
    }

    /// The next packet due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Packet<A>> {
        if self.queue.peek().is_some_and(|p| p.at <= now) {
            self.stats.delivered += 1;
            self.queue.pop().map(|p| p.pkt)
        } else {
            None
        }
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

/// Per-host counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    pub time_wait_records: u64,
    pub time_wait_acks: u64,
    pub time_wait_reopened: u64,
    pub syn_cookies_sent: u64,
    pub syn_cookies_accepted: u64,
    pub bad_segments: u64,
    pub rsts_sent: u64,
    pub no_connection: u64,
    pub accepted: u64,
}

/// A host: TCP connections by 4-tuple, and optionally a listening port.
pub struct Host<A: IpFamily = Ipv4Addr> {
    pub cfg: TcpConfig,
    pub listen_port: Option<u16>,
    pub conns: BTreeMap<Pair<A>, Connection>,
    /// Each connection's earliest deadline, in a timing wheel.
    timers: Wheel<Pair<A>>,
    timer_ids: HashMap<Pair<A>, (TimerId, Instant)>,
    expired: Vec<Pair<A>>,
    /// Connections in TIME_WAIT, swapped for their small records.
    pub time_wait: HashMap<Pair<A>, TimeWaitRecord<A>>,
    tw_queue: FifoTimers<Pair<A>>,
    /// TIME_WAIT records whose 2MSL ended since the application last looked.
    pub time_wait_ended: Vec<Pair<A>>,
    pub hasher: TupleHasher,
    /// When a SYN was last answered with a cookie (`shard::route`).
    syn_overflow_at: Option<Instant>,
    pub stats: HostStats,
    /// The engine's counters for all this host's connections.
    pub tcp: TcpStats,
    /// Connections the last `receive` created or touched (the application looks at these).
    pub touched: Vec<Pair<A>>,
}

/// A host's connections as `shard::route` sees them.
struct HostFlows<'a, A: IpFamily> {
    conns: &'a BTreeMap<Pair<A>, Connection>,
    time_wait: &'a mut HashMap<Pair<A>, TimeWaitRecord<A>>,
    listen_port: Option<u16>,
    reopened: &'a mut u64,
    syn_overflow_at: &'a mut Option<Instant>,
}

impl<A: IpFamily> Flows for HostFlows<'_, A> {
    type Handle = Pair<A>;
    type Tuple = FlowKey<A>;

    fn lookup(&mut self, t: FlowKey<A>) -> Lookup<'_, Self::Handle, A> {
        let key = (t.local(), t.remote());
        if self.conns.contains_key(&key) {
            return Lookup::Conn(key);
        }
        match self.time_wait.get_mut(&key) {
            Some(r) => Lookup::TimeWait(r),
            None => Lookup::None,
        }
    }

    fn reopen(&mut self, t: FlowKey<A>) {
        self.time_wait.remove(&(t.local(), t.remote()));
        *self.reopened += 1;
    }

    fn listening(&self, local: A::SocketAddr) -> bool {
        self.listen_port == Some(local.port())
    }

    fn half_open(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.state() == State::SynReceived)
            .count()
    }

    fn syn_overflow_at(&self) -> Option<Instant> {
        *self.syn_overflow_at
    }

    fn set_syn_overflow_at(&mut self, now: Instant) {
        *self.syn_overflow_at = Some(now);
    }
}

impl<A: IpFamily> Host<A> {
    pub fn new(cfg: TcpConfig, listen_port: Option<u16>, seed: u64) -> Host<A> {
        let time_wait = cfg.time_wait();
        Host {
            cfg,
            listen_port,
            conns: BTreeMap::new(),
            timers: Wheel::new(),
            timer_ids: HashMap::new(),
            expired: Vec::new(),
            time_wait: HashMap::new(),
            tw_queue: FifoTimers::new(time_wait),
            time_wait_ended: Vec::new(),
            hasher: TupleHasher::new(seed, seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15),
            syn_overflow_at: None,
            stats: HostStats::default(),
            tcp: TcpStats::default(),
            touched: Vec::new(),
        }
    }

    pub fn connect(
        &mut self,
        now: Instant,
        local: A::SocketAddr,
        remote: A::SocketAddr,
    ) -> Pair<A> {
        let iss = SeqNumber(self.hasher.isn(local, remote, now));
        self.conns.insert(
            (local, remote),
            Connection::connect(&self.cfg, Ends::new(local, remote), iss, now),
        );
        (local, remote)
    }

    /// Handles one packet addressed to this host. Returns a reply for packets no
    /// connection wants (an RST), to be sent by the caller.
    pub fn receive(&mut self, now: Instant, pkt: &Packet<A>) -> Option<Packet<A>> {
        let Some(seg) = parse(pkt) else {
            self.stats.bad_segments += 1;
            return None;
        };
        let key = (pkt.dst, pkt.src);
        let tuple = FlowKey::new(pkt.dst, pkt.src);
        let ends = Ends::new(pkt.dst, pkt.src);
        let mut flows = HostFlows {
            conns: &self.conns,
            time_wait: &mut self.time_wait,
            listen_port: self.listen_port,
            reopened: &mut self.stats.time_wait_reopened,
            syn_overflow_at: &mut self.syn_overflow_at,
        };
        // The shard's own routing (open connection, TIME_WAIT record,
        // listener, cookie, RST), so the simulation covers it too.
        let reply = |bytes: Vec<u8>| Packet {
            src: pkt.dst,
            dst: pkt.src,
            bytes,
        };
        match route(&mut flows, now, tuple, &seg, &self.cfg, &self.hasher) {
            Route::Conn(key) => {
                let c = self.conns.get_mut(&key)?;
                let verdict = c.handle_segment(now, &self.cfg, &mut self.tcp, &seg);
                self.touched.push(key);
                if verdict != SegmentVerdict::RstReply {
                    return None;
                }
                // <SEQ=SEG.ACK><CTL=RST> for an unacceptable ACK.
                self.rst_reply(ends, &seg).map(reply)
            }
            Route::TimeWaitDrop | Route::ListenDrop => None,
            Route::TimeWaitAck(r) => {
                self.stats.time_wait_acks += 1;
                let mut bytes = vec![0u8; 64];
                let n = r.emit_ack(now, &mut bytes);
                bytes.truncate(n);
                Some(reply(bytes))
            }
            Route::CookieSynAck(iss) => {
                let mut bytes = vec![0u8; 64];
                let n = emit_cookie_syn_ack(&self.cfg, ends, &seg, iss, &mut bytes);
                bytes.truncate(n);
                self.stats.syn_cookies_sent += 1;
                Some(reply(bytes))
            }
            Route::CookieAck { iss, mss } => {
                let mut c = Connection::from_syn_cookie(&self.cfg, ends, iss, &seg, mss, now);
                c.handle_segment(now, &self.cfg, &mut self.tcp, &seg);
                self.stats.syn_cookies_accepted += 1;
                self.stats.accepted += 1;
                self.touched.push(key);
                self.conns.insert(key, c);
                None
            }
            Route::Syn => {
                let iss = SeqNumber(self.hasher.isn(pkt.dst, pkt.src, now));
                let mut c = Connection::listen(&self.cfg, pkt.dst, iss, now);
                c.set_remote(pkt.src);
                c.handle_segment(now, &self.cfg, &mut self.tcp, &seg);
                self.stats.accepted += 1;
                self.touched.push(key);
                self.conns.insert(key, c);
                None
            }
            Route::NoConnection => {
                self.stats.no_connection += 1;
                self.rst_reply(ends, &seg).map(reply)
            }
        }
    }

    /// The RST RFC 9293 gives for `seg` (none to an RST), counted.
    fn rst_reply(&mut self, ends: Ends, seg: &TcpRepr) -> Option<Vec<u8>> {
        let rst = rst_reply(seg)?;
        self.stats.rsts_sent += 1;
        let mut bytes = vec![0u8; rst.buffer_len()];
        rst.emit_sum(&mut TcpPacket::new_unchecked(&mut bytes[..]), ends.addr_sum);
        Some(bytes)
    }

    /// Sends everything `tuple`'s connection has to send.
    pub fn flush(&mut self, now: Instant, tuple: Pair<A>, link: &mut Link<A>, scratch: &mut [u8]) {
        if let Some(c) = self.conns.get_mut(&tuple) {
            loop {
                // The shard polls only while wants_transmit says yes: a segment
                // after a no would be lost there.
                let wants = c.wants_transmit();
                let Some(n) = c.poll_transmit(now, &self.cfg, &mut self.tcp, scratch) else {
                    break;
                };
                assert!(wants, "wants_transmit said no, poll_transmit sent");
                link.send(
                    now,
                    Packet {
                        src: tuple.0,
                        dst: tuple.1,
                        bytes: scratch[..n].to_vec(),
                    },
                );
            }
        }
    }

    /// Puts a connection's next deadline in the wheel (after anything touched it).
    pub fn update_timer(&mut self, key: Pair<A>) {
        let want = self.conns.get(&key).and_then(|c| c.poll_timeout());
        match (want, self.timer_ids.get(&key).copied()) {
            (Some(t), Some((id, at))) if t != at => {
                if self.timers.reschedule(id, t) {
                    self.timer_ids.insert(key, (id, t));
                } else {
                    let id = self.timers.schedule(t, key);
                    self.timer_ids.insert(key, (id, t));
                }
            }
            (Some(t), None) => {
                let id = self.timers.schedule(t, key);
                self.timer_ids.insert(key, (id, t));
            }
            (None, Some((id, _))) => {
                self.timers.cancel(id);
                self.timer_ids.remove(&key);
            }
            _ => {}
        }
    }

    /// A connection that reached TIME_WAIT gives up its control block and
    /// buffers for a TIME_WAIT record (after it has sent its last ACK).
    pub fn swap_time_wait(&mut self, now: Instant, key: Pair<A>) {
        let Some(c) = self.conns.get(&key) else {
            return;
        };
        let Some(r) = TimeWaitRecord::from_connection(
            c,
            FlowKey::new(key.0, key.1),
            now,
            self.cfg.time_wait(),
        ) else {
            return;
        };
        self.conns.remove(&key);
        if let Some((id, _)) = self.timer_ids.remove(&key) {
            self.timers.cancel(id);
        }
        self.time_wait.insert(key, r);
        self.tw_queue.push(now, key);
        self.stats.time_wait_records += 1;
    }

    /// Fires due timers; returns the tuples whose timers fired.
    pub fn fire_timers(&mut self, now: Instant, out: &mut Vec<Pair<A>>) {
        let mut due = Vec::new();
        self.tw_queue.advance(now, usize::MAX, &mut due);
        for key in due {
            match self.time_wait.get(&key) {
                Some(r) if r.is_expired(now) => {
                    let k = r.key();
                    self.time_wait.remove(&key);
                    self.time_wait_ended.push((k.local(), k.remote()));
                }
                // 2MSL was restarted (a retransmitted FIN): wait again.
                Some(_) => {
                    self.tw_queue.push(now, key);
                }
                None => {}
            }
        }
        self.expired.clear();
        self.timers.advance(now, usize::MAX, &mut self.expired);
        for key in std::mem::take(&mut self.expired) {
            self.timer_ids.remove(&key);
            if let Some(c) = self.conns.get_mut(&key) {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now, &self.cfg, &mut self.tcp);
                }
                out.push(key);
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [self.timers.next_deadline(), self.tw_queue.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Drops closed connections (and their timers).
    pub fn reap(&mut self) {
        let ids = &mut self.timer_ids;
        let timers = &mut self.timers;
        self.conns.retain(|k, c| {
            let keep = c.state() != State::Closed || c.poll_timeout().is_some();
            if !keep {
                if let Some((id, _)) = ids.remove(k) {
                    timers.cancel(id);
                }
            }
            keep
        });
    }
}

/// What a connection in the scenario does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOrder {
    ClientFirst,
    ServerFirst,
    Both,
}

/// The scenario: `conns` connections, each sending random amounts both ways,
/// closed from either side or both at once.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub conns: usize,
    pub max_bytes: usize,
    pub link: LinkConfig,
    pub tcp: TcpConfig,
    /// Give up (and fail) after this much virtual time.
    pub time_limit: Duration,
    /// Print every packet of the connection from this client port (debugging).
    pub trace_port: Option<u16>,
    /// Over IPv6 (else IPv4): the hosts' addresses, pseudo-header and MSS
    /// (`tcp.mss` capped at the family's on a 1500-byte MTU, 1440).
    pub ipv6: bool,
}

/// Per-connection application state in the scenario.
#[derive(Debug, Clone)]
struct AppConn {
    id: u32,
    to_send: usize,
    sent: usize,
    expect: usize,
    got: usize,
    order: CloseOrder,
    shut: bool,
    peer_closed: bool,
    closed: Option<CloseReason>,
    bad_byte: Option<usize>,
    states: u16,
}

impl AppConn {
    fn new(id: u32, to_send: usize, expect: usize, order: CloseOrder) -> AppConn {
        AppConn {
            id,
            to_send,
            sent: 0,
            expect,
            got: 0,
            order,
            shut: false,
            peer_closed: false,
            closed: None,
            bad_byte: None,
            states: 0,
        }
    }
}

fn pattern(id: u32, dir: u8, i: usize) -> u8 {
    (i.wrapping_mul(31)
        .wrapping_add(id as usize * 7)
        .wrapping_add(dir as usize)
        % 251) as u8
}

/// The result of a scenario run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub ok: bool,
    pub problems: Vec<String>,
    pub virtual_time: Duration,
    pub bytes: u64,
    pub link: LinkStats,
    pub server: HostStats,
    /// Connections that went through a TIME_WAIT record, and ACKs records sent.
    pub time_wait_records: u64,
    pub time_wait_acks: u64,
    pub states_seen: u16,
    pub client_left: usize,
    pub server_left: usize,
    /// The MSS both hosts were configured with.
    pub mss: u16,
}

/// Parses a segment that arrived, its checksum verified over the family's
/// pseudo-header (the two addresses as their sum, as the shard checks it).
fn parse<A: IpFamily>(pkt: &Packet<A>) -> Option<TcpRepr<'_>> {
    let addr_sum = A::pseudo_addr_sum(&pkt.src.host(), &pkt.dst.host());
    if !crate::wire::checksum::tcp_checksum_ok(addr_sum, &pkt.bytes) {
        return None;
    }
    let p = TcpPacket::new_checked(&pkt.bytes[..]).ok()?;
    // The checksum is checked above, for either family.
    TcpRepr::parse(
        &p,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        ChecksumMode::Ignore,
    )
    .ok()
}

impl Scenario {
    /// Runs the scenario to the end and checks: every byte delivered once and in
    /// order, every connection ended normally and was removed on both sides.
    pub fn run(&self) -> Outcome {
        if self.ipv6 {
            self.run_in::<Ipv6Addr>()
        } else {
            self.run_in::<Ipv4Addr>()
        }
    }

    fn run_in<A: SimFamily>(&self) -> Outcome {
        let mut rng = Rng::new(self.seed ^ 0x5151);
        let mut link = Link::<A>::new(self.link, self.seed);
        let server_addr = A::SocketAddr::from_parts(A::SERVER, 80);
        let mut tcp = self.tcp.clone();
        tcp.mss = tcp.mss.min(A::MSS_1500);
        let mut client = Host::<A>::new(tcp.clone(), None, self.seed.wrapping_add(1));
        let mut server = Host::<A>::new(tcp.clone(), Some(80), self.seed.wrapping_add(2));
        let mut apps_c: HashMap<Pair<A>, AppConn> = HashMap::new();
        let mut apps_s: HashMap<Pair<A>, AppConn> = HashMap::new();
        let mut plans: HashMap<u16, (usize, usize, CloseOrder)> = HashMap::new();
        let mut now = Instant::from_millis(10);
        let mut scratch = vec![0u8; 4096];
        let mut touched = Vec::new();
        let mut outcome = Outcome {
            mss: tcp.mss,
            ..Outcome::default()
        };
        let size = |rng: &mut Rng| -> usize {
            // Log-uniform in 0..=max_bytes: many small transfers, some large ones.
            if rng.chance(0.05) {
                return 0;
            }
            let bits = (self.max_bytes.max(1) as f64).log2();
            (2f64.powf(rng.unit() * bits) as usize).min(self.max_bytes)
        };
        for i in 0..self.conns {
            let port = 10_000 + i as u16;
            let local = A::SocketAddr::from_parts(A::CLIENT, port);
            let up = size(&mut rng);
            let down = size(&mut rng);
            let order = match rng.below(3) {
                0 => CloseOrder::ClientFirst,
                1 => CloseOrder::ServerFirst,
                _ => CloseOrder::Both,
            };
            plans.insert(port, (up, down, order));
            let t = client.connect(now, local, server_addr);
            apps_c.insert(t, AppConn::new(i as u32, up, down, order));
            touched.push(t);
        }
        let deadline = now + self.time_limit;
        let mut readbuf = vec![0u8; 65536];
        loop {
            // Application work and transmission for the connections touched.
            touched.sort();
            touched.dedup();
            for t in touched.drain(..) {
                if let Some(app) = apps_c.get_mut(&t) {
                    if let Some(c) = client.conns.get_mut(&t) {
                        drive_app(c, app, 0, now, &client.cfg, &mut readbuf);
                    }
                    client.flush(now, t, &mut link, &mut scratch);
                    client.update_timer(t);
                    client.swap_time_wait(now, t);
                } else {
                    let key = t;
                    if !apps_s.contains_key(&key) && server.conns.contains_key(&key) {
                        let (up, down, order) =
                            plans
                                .get(&t.1.port())
                                .copied()
                                .unwrap_or((0, 0, CloseOrder::Both));
                        apps_s.insert(
                            key,
                            AppConn::new(u32::from(t.1.port() - 10_000), down, up, order),
                        );
                    }
                    if let (Some(app), Some(c)) = (apps_s.get_mut(&key), server.conns.get_mut(&key))
                    {
                        drive_app(c, app, 1, now, &server.cfg, &mut readbuf);
                    }
                    server.flush(now, t, &mut link, &mut scratch);
                    server.update_timer(key);
                    server.swap_time_wait(now, key);
                }
            }
            // Remove connections that are over.
            client
                .conns
                .retain(|_, c| c.state() != State::Closed || c.poll_timeout().is_some());
            server
                .conns
                .retain(|_, c| c.state() != State::Closed || c.poll_timeout().is_some());
            if client.conns.is_empty()
                && server.conns.is_empty()
                && client.time_wait.is_empty()
                && server.time_wait.is_empty()
                && link.in_flight() == 0
            {
                break;
            }
            // Next moment something happens.
            let next = [
                link.next_delivery(),
                client.next_deadline(),
                server.next_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else {
                outcome
                    .problems
                    .push("stalled: nothing scheduled but connections remain".into());
                break;
            };
            if next > deadline {
                outcome
                    .problems
                    .push(format!("virtual time limit {:?} reached", self.time_limit));
                break;
            }
            now = now.max(next);
            while let Some(pkt) = link.pop_due(now) {
                let to_server = pkt.dst.host() == server_addr.host();
                if let Some(port) = self.trace_port {
                    if pkt.src.port() == port || pkt.dst.port() == port {
                        trace(now, &pkt, to_server);
                    }
                }
                let host = if to_server { &mut server } else { &mut client };
                if let Some(reply) = host.receive(now, &pkt) {
                    link.send(now, reply);
                }
                touched.append(&mut host.touched);
            }
            client.fire_timers(now, &mut touched);
            server.fire_timers(now, &mut touched);
            // TIME_WAIT records that lived their 2MSL: those connections are over.
            for t in client.time_wait_ended.drain(..) {
                if let Some(a) = apps_c.get_mut(&t) {
                    a.closed = Some(CloseReason::Normal);
                }
            }
            for t in server.time_wait_ended.drain(..) {
                if let Some(a) = apps_s.get_mut(&t) {
                    a.closed = Some(CloseReason::Normal);
                }
            }
        }
        outcome.virtual_time = now.saturating_since(Instant::from_millis(10));
        outcome.link = link.stats;
        outcome.server = server.stats;
        outcome.client_left = client.conns.len() + client.time_wait.len();
        outcome.server_left = server.conns.len() + server.time_wait.len();
        outcome.time_wait_records = client.stats.time_wait_records + server.stats.time_wait_records;
        outcome.time_wait_acks = client.stats.time_wait_acks + server.stats.time_wait_acks;
        for (side, apps) in [
            ("client", apps_c.values().cloned().collect::<Vec<_>>()),
            ("server", apps_s.values().cloned().collect()),
        ] {
            for a in apps {
                outcome.bytes += a.got as u64;
                outcome.states_seen |= a.states;
                if a.got != a.expect {
                    outcome.problems.push(format!(
                        "{side} conn {}: received {} of {} bytes",
                        a.id, a.got, a.expect
                    ));
                }
                if let Some(at) = a.bad_byte {
                    outcome
                        .problems
                        .push(format!("{side} conn {}: wrong byte at offset {at}", a.id));
                }
                if a.closed != Some(CloseReason::Normal) {
                    outcome
                        .problems
                        .push(format!("{side} conn {}: ended {:?}", a.id, a.closed));
                }
            }
        }
        if apps_s.len() != self.conns {
            outcome.problems.push(format!(
                "server accepted {} of {} connections",
                apps_s.len(),
                self.conns
            ));
        }
        // Every segment sent is checksummed over the family's pseudo-header
        // and fits the MTU with the family's IP header (the MSS is right).
        if link.stats.bad_checksums > 0 {
            outcome.problems.push(format!(
                "{} segments sent with a wrong checksum over the IPv{} pseudo-header",
                link.stats.bad_checksums,
                A::VERSION
            ));
        }
        if link.stats.oversize > 0 {
            outcome.problems.push(format!(
                "{} segments over the {MTU}-byte MTU with the IPv{} header (largest IP packet {} bytes)",
                link.stats.oversize,
                A::VERSION,
                link.stats.largest_ip_packet
            ));
        }
        let timers_left = client.timers.len() + server.timers.len();
        if timers_left > 0 {
            outcome
                .problems
                .push(format!("{timers_left} timers left in the wheels"));
        }
        if outcome.client_left + outcome.server_left > 0 {
            outcome.problems.push(format!(
                "connections left: client {} server {}",
                outcome.client_left, outcome.server_left
            ));
        }
        outcome.ok = outcome.problems.is_empty();
        outcome
    }
}

fn trace<A: IpFamily>(now: Instant, pkt: &Packet<A>, to_server: bool) {
    let dir = if to_server { "c->s" } else { "s->c" };
    let flags = TcpPacket::new_checked(&pkt.bytes[..]).map(|p| p.flags());
    match parse(pkt)
        .ok_or("bad checksum or header")
        .and_then(|r| Ok((r, flags.map_err(|_| "")?)))
    {
        Ok((r, f)) => eprintln!(
            "{:>10.3} ms {dir} flags={f:02x} seq={} ack={:?} win={} len={} sack={:?} ts={:?}",
            now.as_micros() as f64 / 1000.0,
            r.seq_number,
            r.ack_number,
            r.window_len,
            r.payload.len(),
            r.sack_ranges.iter().flatten().collect::<Vec<_>>(),
            r.timestamp.map(|t| (t.tsval, t.tsecr)),
        ),
        Err(e) => eprintln!(
            "{:>10.3} ms {dir} unparseable: {e}",
            now.as_micros() as f64 / 1000.0
        ),
    }
}

fn drive_app(
    c: &mut Connection,
    app: &mut AppConn,
    dir: u8,
    now: Instant,
    cfg: &TcpConfig,
    buf: &mut [u8],
) {
    app.states |= 1 << (c.state() as u16);
    while let Some(e) = c.poll_event() {
        match e {
            Event::PeerClosed => app.peer_closed = true,
            Event::Closed(r) => app.closed = Some(r),
            _ => {}
        }
    }
    // Read everything available, checking the pattern.
    loop {
        let n = c.recv(cfg, buf);
        if n == 0 {
            break;
        }
        for (k, b) in buf[..n].iter().enumerate() {
            if *b != pattern(app.id, 1 - dir, app.got + k) && app.bad_byte.is_none() {
                app.bad_byte = Some(app.got + k);
            }
        }
        app.got += n;
    }
    // Send what fits.
    if app.sent < app.to_send && !app.shut {
        let mut chunk = [0u8; 4096];
        while app.sent < app.to_send {
            let len = (app.to_send - app.sent).min(chunk.len());
            for (k, b) in chunk[..len].iter_mut().enumerate() {
                *b = pattern(app.id, dir, app.sent + k);
            }
            match c.send(cfg, &chunk[..len]) {
                Ok(0) | Err(_) => break,
                Ok(n) => app.sent += n,
            }
        }
    }
    // Close per the plan once all data is queued.
    let first = match app.order {
        CloseOrder::Both => true,
        CloseOrder::ClientFirst => dir == 0,
        CloseOrder::ServerFirst => dir == 1,
    };
    if !app.shut
        && app.sent >= app.to_send
        && c.state() != State::SynSent
        && c.state() != State::Closed
        && (first || app.peer_closed)
    {
        app.shut = true;
        c.shutdown();
    }
    let _ = (now, cfg);
    app.states |= 1 << (c.state() as u16);
}
