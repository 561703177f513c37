//! One shard's TCP/IP endpoint: frames in, frames out, in one thread.
//!
//! `Stack::poll` is one turn of the shard loop: receive a burst → parse →
//! demultiplex → TCP engine → expired timers (budgeted) → applications and new
//! client connections → transmit → flush. While frames built earlier still
//! wait for the device, a turn only answers what arrives (back-pressure). It takes `now` from the caller (one
//! clock read per turn) and a `Nic` for I/O, so the same code runs over DPDK
//! and over the in-memory link in tests.
//!
//! One job a file:
//! - `mod.rs` (here): the shard's state, its settings, and the turn (`poll`);
//! - `input.rs`: a received frame: parse, address checks, steering, the TCP
//!   segment's route (`shard::route`, shared with the simulation);
//! - `accept.rs`: what listeners do: new connections, SYN cookies, refusals;
//! - `shed.rs`: under a SYN flood, SYNs past the turn's budget dropped early;
//! - `neighbours.rs`: ARP and the neighbour table, ARP/ICMP answers;
//! - `control.rs`: control frames (ARP, ICMP, RST, TIME_WAIT ACKs) and headers;
//! - `timers.rs`: the timer wheel and TIME_WAIT expiry;
//! - `generator.rs`: the load generator (driving `app::schedule`);
//! - `drive.rs`: after input or a timer: events to the application, then
//!   where the connection goes next (closed, TIME_WAIT, its next deadline);
//! - `transmit.rs`: segments to the NIC, and the turn's flush.

mod accept;
mod control;
mod drive;
mod family;
mod generator;
mod input;
mod neighbours;
mod shed;
mod timers;
mod transmit;

pub use self::family::StackFamily;
use self::neighbours::Neighbours;
use super::Iface;
use super::nic::Nic;
use super::responder::Responder;
use super::steer::{Ownership, SteerQueues};
use crate::app::schedule::Schedule;
use crate::app::{AppConn, ClientConfig, ServerApp};
use crate::flags::Flags8;
use crate::stats::{Latency, STATES, ShardStats};
use crate::table::{ConnTable, FlowHashBuilder, FlowKey, FullPolicy, Handle, LocalHashBuilder};
use crate::tcp::{Connection, HostPair, State, TcpConfig, TupleHasher};
use crate::time::Instant;
use crate::timer::{FifoTimers, TimerId, Wheel};
use crate::wire::{EthernetAddress, EthernetTail};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A shard's settings.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub iface: Iface,
    pub tcp: TcpConfig,
    /// Connections (control blocks) this shard holds at most.
    pub capacity: usize,
    /// TIME_WAIT records it holds at most.
    pub time_wait_capacity: usize,
    /// TIME_WAIT records to make room for at start (no growing mid-run).
    pub time_wait_reserve: usize,
    pub full_policy: FullPolicy,
    /// Timers expired per turn at most.
    pub timer_budget: usize,
    /// Which shard this is, of how many (flow ownership).
    pub shard: u32,
    pub shards: u32,
    /// How a flow's owner is found.
    pub ownership: Ownership,
    /// Neighbours (IPv4 → MAC) learnt from ARP this shard keeps at most;
    /// more are refused and counted (`neighbours_full`).
    pub neighbour_capacity: usize,
    /// How long a learnt neighbour is trusted before it is asked for again
    /// (Linux's base_reachable_time: 30 s); silent through 3 probes, 1 s
    /// apart, it is forgotten.
    pub neighbour_reachable: std::time::Duration,
    /// What an ARP packet we did not ask for may do (gratuitous ARP,
    /// unsolicited replies).
    pub gratuitous_arp: GratuitousArp,
    /// SYN flood overload (issue 12): in a turn whose receive burst before
    /// came back full (the shard is behind) while its listener is past the
    /// half-open limit (answering with SYN cookies), SYNs are answered up to
    /// this many; past it, the turn's other SYNs are dropped before they are
    /// parsed (`syn_shed`), so that the frames behind them in the queue wait
    /// less and the way back is not filled with answers to spoofed sources.
    /// A real peer's SYN dropped so is retransmitted (RFC 6298 5.7: after
    /// 1 s). None: every SYN is answered, however far behind (Linux's way).
    pub syn_budget: Option<usize>,
    /// Keys (ISNs, SYN cookies, timestamp offsets, hash tables) from this
    /// seed instead of the system's randomness: for repeatable measurements
    /// only (bench/stack_cost.rs). A known seed makes ISNs and cookies
    /// predictable (RFC 6528), so never set it for real traffic.
    pub seed: Option<u64>,
}

impl StackConfig {
    pub fn new(iface: Iface, tcp: TcpConfig) -> StackConfig {
        StackConfig {
            iface,
            tcp,
            capacity: 1 << 20,
            time_wait_capacity: 1 << 24,
            time_wait_reserve: 0,
            full_policy: FullPolicy::Rst,
            timer_budget: 4096,
            shard: 0,
            shards: 1,
            ownership: Ownership::Hash,
            neighbour_capacity: 1024,
            neighbour_reachable: std::time::Duration::from_secs(30),
            gratuitous_arp: GratuitousArp::UpdateKnown,
            syn_budget: Some(DEFAULT_SYN_BUDGET),
            seed: None,
        }
    }
}

/// `StackConfig::syn_budget`'s default: SYNs answered a turn while the shard
/// is behind, of a receive burst of 32.
pub const DEFAULT_SYN_BUDGET: usize = 8;

/// Frames in a full receive burst (`DpdkNic`'s and `MemNic`'s): a turn that
/// got as many left more waiting.
pub(super) const FULL_BURST: usize = 32;

/// What an ARP packet we did not ask for (a gratuitous ARP, an unsolicited
/// reply, a request for another host) may do to the neighbour table. It never
/// creates an entry (Linux's default, arp_accept=0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GratuitousArp {
    /// Update the MAC of a host already known (a fail-over; Linux's default).
    UpdateKnown,
    /// Change nothing: only answers to our requests and requests to us count.
    Ignore,
}

/// A connection as the shard keeps it: its control block, its
/// application's state between events, and a few bytes of the shard's own.
/// Its wheel entry's deadline is the wheel's.
struct Conn<A: StackFamily = Ipv4Addr> {
    tcp: Connection,
    /// Its 4-tuple, as the table knows it (the control block keeps only
    /// the ports and the addresses' sum).
    key: FlowKey<A>,
    app: AppConn,
    /// Its entry in the wheel (`timers::rearm`).
    timer: Option<TimerId>,
    /// Where its segments go (with `HAS_MAC`): the MAC its SYN came from (a
    /// server's connection), or its peer's neighbour entry, looked up once
    /// (a client's).
    mac: EthernetAddress,
    /// `TOUCHED`, `HALF_OPEN`, `ARMED`, `HAS_MAC`.
    flags: u8,
}

/// The table's index keeps slots, and reads a connection's 4-tuple here.
impl<A: StackFamily> crate::table::Keyed<A> for Conn<A> {
    #[inline(always)]
    fn key(&self) -> FlowKey<A> {
        self.key
    }
}

// `Conn::flags`.
/// Marked for `drive` in this turn (in `Stack::touched`).
const TOUCHED: u8 = 1;
/// Counted in `Stack::half_open` (SYN-RECEIVED from a listener's SYN).
const HALF_OPEN: u8 = 2;
/// Has been in the wheel (its first entry is placed early, `timers::rearm`).
const ARMED: u8 = 4;
/// `mac` is known.
const HAS_MAC: u8 = 8;
/// A client connection whose think time is in `Stack::thinking` (its
/// deadline is left out of its wheel entry's).
const THINK_QUEUED: u8 = 16;

impl<A: StackFamily> crate::flags::Flags8 for Conn<A> {
    #[inline(always)]
    fn bits(&mut self) -> &mut u8 {
        &mut self.flags
    }
    #[inline(always)]
    fn bits_ref(&self) -> u8 {
        self.flags
    }
}

impl<A: StackFamily> Conn<A> {
    /// A new connection (not yet armed), marked for this turn's `drive`.
    #[inline(always)]
    fn new(
        tcp: Connection,
        key: FlowKey<A>,
        app: AppConn,
        half_open: bool,
        mac: Option<EthernetAddress>,
    ) -> Conn<A> {
        let mut c = Conn {
            tcp,
            key,
            app,
            timer: None,
            mac: EthernetAddress([0; 6]),
            flags: 0,
        };
        c.renew(key, half_open, mac);
        c
    }

    /// The shard's part of a connection renewed in a slot (its control
    /// block and application state set apart): as `new` leaves it.
    #[inline(always)]
    fn renew(&mut self, key: FlowKey<A>, half_open: bool, mac: Option<EthernetAddress>) {
        self.key = key;
        self.timer = None;
        self.flags = TOUCHED | if half_open { HALF_OPEN } else { 0 };
        if let Some(m) = mac {
            self.set_mac(m);
        }
    }

    /// Its 4-tuple, as the table knows it.
    #[inline(always)]
    fn key(&self) -> FlowKey<A> {
        self.key
    }

    #[inline(always)]
    fn set_mac(&mut self, m: EthernetAddress) {
        self.mac = m;
        self.flags |= HAS_MAC;
    }
}

/// A shard's endpoint, for TCP over one IP family (IPv4 by default;
/// `Stack<Ipv6Addr>` for IPv6).
pub struct Stack<A: StackFamily = Ipv4Addr> {
    /// The settings it was built with. Its interface's MAC is read once, at
    /// `new`, into every frame's Ethernet header: not to be changed after.
    pub cfg: StackConfig,
    /// Listeners' entries name their applications here (a connection keeps
    /// the index, `ServerConn::listener`); a listener replaced adds one.
    table: ConnTable<Conn<A>, u16, A>,
    servers: Vec<ServerApp>,
    wheel: Wheel<Handle>,
    /// Connections' first timer entries, each RTO.min long (`timers::rearm`).
    opening: FifoTimers<Handle>,
    /// A closed loop with think time: its connections' think times
    /// (`timers::ThinkQueues`). `None` for other loads.
    thinking: Option<timers::ThinkQueues>,
    /// The end of a client's run: the next table slot to look at for
    /// connections to close (`close_client_burst`).
    close_cursor: usize,
    expired: Vec<Handle>,
    touched: Vec<Handle>,
    neigh: Neighbours<A>,
    responder: Responder,
    hasher: TupleHasher,
    half_open: usize,
    /// When a SYN was last answered with a cookie (`shard::route`).
    syn_overflow_at: Option<Instant>,
    /// SYNs this turn may still answer (`StackConfig::syn_budget`;
    /// `usize::MAX`: no limit this turn), and whether it has answered as
    /// many and sheds the others.
    syn_left: usize,
    shedding: bool,
    /// Whether the last receive burst was full (the shard is behind).
    rx_behind: bool,
    /// Sources that completed a SYN cookie handshake lately: their SYNs are
    /// not shed (`shed.rs`).
    verified: shed::VerifiedSources<A>,
    pub stats: ShardStats,
    pub latency: Latency,
    /// Control frames (ARP, ICMP, RST, TIME_WAIT ACKs) waiting for transmit;
    /// buffers are reused.
    ctrl: Vec<Vec<u8>>,
    ctrl_used: usize,
    ip_ident: u16,
    scratch: Vec<u8>,
    heads: crate::app::http::HeadMemos,
    /// The load generator's schedule and settings (a client shard).
    client: Option<Schedule<Handle>>,
    client_cfg: Option<ClientConfig>,
    /// Where the generator's connections go (`client_cfg.target`, or the
    /// IPv6 one of `start_client_to`).
    client_target: Option<A::SocketAddr>,
    /// An IPv6 generator's source addresses.
    client_sources6: crate::wire::Ipv6Range,
    last_turn_at: Instant,
    last_turn_busy: bool,
    /// The keyed hash's state for the last pair of hosts a connection was
    /// opened between (ISNs, timestamp offset): consecutive connections
    /// mostly share their addresses.
    host_pair: HostPair<A>,
    /// The source MAC of the TCP frame being handled: where answers to it
    /// go, and a new server connection's `mac`.
    peer_mac: EthernetAddress,
    /// Our MAC (`cfg.iface.mac`) and this family's EtherType: the part of
    /// every Ethernet header the shard sends that does not change.
    eth_tail: EthernetTail,
    /// Software steering between this port's shards (None: one shard, or RSS
    /// alone decides).
    steer: Option<SteerQueues>,
    /// A dual-stack shard's IPv6 half (`Stack::add_ipv6`; always None in an
    /// IPv6 stack): it gets the IPv6 frames this one receives (EtherType
    /// 0x86DD, off the IPv4 fast path), and its own part of every turn.
    ipv6: Option<Box<Stack<Ipv6Addr>>>,
}

impl Stack {
    /// An IPv4 shard.
    pub fn new(cfg: StackConfig, now: Instant) -> Stack {
        Stack::new_family(cfg, now)
    }

    /// Makes this IPv4 shard dual-stack (issue 14): an IPv6 stack with this
    /// one's settings but `tcp` (IPv6's MSS), and its own table, timers,
    /// neighbours and counters, fed the IPv6 frames this one receives and
    /// run in each of its turns, on the same NIC queue. Its listeners are
    /// added through the returned stack (or `ipv6_mut`). Steering, if set, is
    /// shared (its frames for other shards go to their inboxes, which their
    /// IPv4 halves read). Replaces an IPv6 half added before.
    pub fn add_ipv6(&mut self, tcp: TcpConfig, now: Instant) -> &mut Stack<Ipv6Addr> {
        let cfg = StackConfig {
            tcp,
            ..self.cfg.clone()
        };
        let mut v6 = Stack::<Ipv6Addr>::new_family(cfg, now);
        v6.steer = self.steer.clone();
        self.ipv6.insert(Box::new(v6))
    }
}

impl<A: StackFamily> Stack<A> {
    /// A shard of family `A`.
    pub fn new_family(cfg: StackConfig, now: Instant) -> Stack<A> {
        let (hasher, flows, local) = match cfg.seed {
            None => (
                TupleHasher::random(),
                FlowHashBuilder::random(),
                LocalHashBuilder::random(),
            ),
            Some(s) => {
                let k = |i: u64| {
                    s.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        .rotate_left(i as u32 * 13)
                        ^ i
                };
                (
                    TupleHasher::new(k(1), k(2)),
                    FlowHashBuilder::with_key(k(3), k(4)),
                    LocalHashBuilder::with_key(k(5), k(6)),
                )
            }
        };
        let mut table = ConnTable::with_keys(
            cfg.capacity,
            cfg.time_wait_capacity,
            cfg.tcp.time_wait(),
            (flows, local),
        );
        table.policy = cfg.full_policy;
        table.reserve_time_wait(cfg.time_wait_reserve);
        Stack {
            responder: Responder::new(cfg.iface),
            table,
            servers: Vec::new(),
            wheel: Wheel::with_capacity(now, cfg.capacity.min(1 << 20)),
            // One entry per connection opened in the last RTO.min (those
            // that ended are passed over when due): room up front, as for
            // the wheel, so a burst of openings does not copy the queue.
            opening: FifoTimers::with_capacity(cfg.tcp.rto_min.into(), cfg.capacity.min(1 << 16)),
            thinking: None,
            close_cursor: 0,
            expired: Vec::with_capacity(cfg.timer_budget),
            touched: Vec::with_capacity(1024),
            neigh: Neighbours::new(flows),
            hasher,
            half_open: 0,
            syn_overflow_at: None,
            syn_left: usize::MAX,
            shedding: false,
            rx_behind: false,
            verified: shed::VerifiedSources::new(cfg.seed),
            stats: ShardStats::default(),
            latency: Latency::default(),
            ctrl: Vec::new(),
            ctrl_used: 0,
            ip_ident: 0,
            scratch: vec![0u8; 64 * 1024],
            heads: Default::default(),
            client: None,
            client_cfg: None,
            client_target: None,
            client_sources6: crate::wire::Ipv6Range::EMPTY,
            last_turn_at: now,
            last_turn_busy: false,
            host_pair: hasher.host_pair(A::UNSPECIFIED, A::UNSPECIFIED),
            steer: None,
            ipv6: None,
            peer_mac: EthernetAddress([0; 6]),
            eth_tail: EthernetTail::new(&cfg.iface.mac, A::ETHERTYPE),
            cfg,
        }
    }

    /// Software steering for devices that cannot spread flows over queues:
    /// the port's queues, in which this shard (`cfg.shard`) has its inbox.
    pub fn set_steering(&mut self, queues: SteerQueues) {
        if let Some(v6) = &mut self.ipv6 {
            v6.steer = Some(queues.clone());
        }
        self.steer = Some(queues);
    }

    /// A dual-stack shard's IPv6 half (`Stack::add_ipv6`), if it has one.
    pub fn ipv6(&self) -> Option<&Stack<Ipv6Addr>> {
        self.ipv6.as_deref()
    }

    pub fn ipv6_mut(&mut self) -> Option<&mut Stack<Ipv6Addr>> {
        self.ipv6.as_deref_mut()
    }

    /// This shard's counters, a dual-stack shard's two halves summed (the
    /// IPv6 half's turns and busy time are the IPv4 half's: it runs inside
    /// them).
    pub fn total_stats(&self) -> ShardStats {
        match &self.ipv6 {
            None => self.stats,
            Some(v6) => ShardStats::sum([&self.stats, &v6.stats]),
        }
    }

    /// This shard's latencies, a dual-stack shard's two halves merged.
    pub fn total_latency(&self) -> Latency {
        let mut l = self.latency.clone();
        if let Some(v6) = &self.ipv6 {
            l.merge(&v6.latency);
        }
        l
    }

    /// Whether every connection here belongs to this shard (both halves of
    /// a dual-stack shard).
    pub fn owns_all_flows(&self) -> bool {
        let mine = self.table.iter().all(|(_, c)| {
            let k = &c.key;
            self.cfg
                .ownership
                .owner(k.local(), k.remote(), self.cfg.shards)
                == self.cfg.shard
        });
        mine && self.ipv6.as_ref().is_none_or(|v6| v6.owns_all_flows())
    }

    /// Listens on `addr` (0.0.0.0 for every local address) with `app`.
    ///
    /// # Panics
    /// Past 65,536 calls (a connection names its listener's application in
    /// 16 bits).
    pub fn listen(&mut self, addr: A::SocketAddr, app: ServerApp) {
        let i = u16::try_from(self.servers.len()).expect("at most 65,536 listen calls a shard");
        self.servers.push(app);
        self.table.listen(addr, i);
    }

    /// Entries in the neighbour table.
    pub fn neighbours(&self) -> usize {
        self.neigh.len()
    }

    /// Connections in the table (not counting TIME_WAIT records); a
    /// dual-stack shard's in both halves.
    /// Timer entries held: in the wheel, and in the think queues (a closed
    /// loop's think times, `timers::ThinkQueues`).
    pub fn timer_entries(&self) -> (usize, usize) {
        (
            self.wheel.len(),
            self.thinking.as_ref().map_or(0, |q| q.len()),
        )
    }

    pub fn connections(&self) -> usize {
        self.table.len() + self.ipv6.as_ref().map_or(0, |v6| v6.connections())
    }

    /// Bytes of send and receive buffers the connections hold now.
    pub fn buffer_memory(&self) -> usize {
        let own: usize = self.table.iter().map(|(_, c)| c.tcp.buffer_memory()).sum();
        own + self.ipv6.as_ref().map_or(0, |v6| v6.buffer_memory())
    }

    /// TIME_WAIT records held (both halves of a dual-stack shard).
    pub fn time_wait_records(&self) -> usize {
        self.table.time_wait_len() + self.ipv6.as_ref().map_or(0, |v6| v6.time_wait_records())
    }

    /// Resets every open connection (at exit); the next `poll` sends the RSTs.
    pub fn abort_all(&mut self) {
        let hs: Vec<Handle> = self.table.iter().map(|(h, _)| h).collect();
        for h in hs {
            if let Some(c) = self.table.get_mut(h) {
                c.tcp.abort();
                self.touch(h);
            }
        }
        if let Some(v6) = &mut self.ipv6 {
            v6.abort_all();
        }
    }

    /// Fills `states` with a count of connections per TCP state.
    pub fn count_states(&mut self) {
        let mut s = [0u64; STATES.len()];
        self.count_states_part(0, usize::MAX, &mut s);
        self.set_state_counts(s);
    }

    /// Adds the states of the connections in table slots `from..from + n`
    /// to `into` (a walk of a large table a part at a time). Returns where
    /// the next part starts, or None once the walk has passed the end. A
    /// dual-stack shard's IPv6 half's slots follow this one's.
    pub fn count_states_part(
        &self,
        from: usize,
        n: usize,
        into: &mut [u64; STATES.len()],
    ) -> Option<usize> {
        let end = from.saturating_add(n);
        for (_, c) in self.table.iter_part(from, end) {
            into[c.tcp.state() as usize] += 1;
        }
        let slots = self.table.slot_count();
        match &self.ipv6 {
            None => (end < slots).then_some(end),
            Some(v6) => {
                let at = from.saturating_sub(slots);
                let left = end.saturating_sub(slots.max(from));
                if left == 0 {
                    return Some(end);
                }
                v6.count_states_part(at, left, into)
                    .map(|next| slots + next)
            }
        }
    }

    /// Publishes a whole walk's counts (`count_states_part`), with the
    /// TIME_WAIT records and listeners as they are now (a dual-stack
    /// shard's, both halves', all in this half's counters).
    pub fn set_state_counts(&mut self, mut s: [u64; STATES.len()]) {
        s[State::TimeWait as usize] += self.table.time_wait_len() as u64;
        s[State::Listen as usize] += self.table.listener_count() as u64;
        if let Some(v6) = &mut self.ipv6 {
            s[State::TimeWait as usize] += v6.table.time_wait_len() as u64;
            s[State::Listen as usize] += v6.table.listener_count() as u64;
            v6.client_gauges();
        }
        self.stats.states = s;
        self.client_gauges();
    }

    /// Marks a connection for `drive` in this turn's output phase.
    fn touch(&mut self, h: Handle) {
        if let Some(c) = self.table.get_mut(h) {
            mark(&mut self.touched, c, h);
        }
    }

    /// One turn of the loop. Returns the number of frames received.
    pub fn poll(&mut self, now: Instant, nic: &mut dyn Nic) -> usize {
        // Busy time: a turn that did work lasted until this one started.
        if self.last_turn_busy {
            self.stats.busy_ns += now.0.saturating_sub(self.last_turn_at.0);
        }
        self.stats.turns += 1;
        self.last_turn_at = now;
        // Back-pressure: frames the device refused wait and go first; while
        // any do, the turn answers what arrives but makes no new work.
        let room = self.tx_room(nic);
        // A shard behind (`shed.rs`) may shed SYNs: off the usual path.
        let mut n = if self.rx_behind && self.may_shed() {
            self.rx_behind_turn(now, nic)
        } else {
            // (The closure holds `now` itself: one load less per frame.)
            let stack = &mut *self;
            nic.rx(&mut move |frame| stack.input(now, frame))
        };
        let behind = n >= FULL_BURST;
        self.rx_behind = behind;
        self.stats.rx_full_bursts += u64::from(behind);
        n += self.steered_input(now);
        if room {
            self.run_timers(now);
            self.age_neighbours(now);
            // The generator's new work waits, too, while this shard is behind
            // in reading (its burst came back full): what it would start is
            // answered by the peer, whose answers would then pile up in the
            // peer's backlog (they come faster than this shard reads them),
            // past its bound, and be dropped. Answering and timers go on.
            if !behind {
                self.open_client_connections(now);
                self.close_client_connections(now);
                self.dispatch_requests(now);
            }
        }
        let mut busy = n > 0 || !self.touched.is_empty() || self.ctrl_used > 0 || !room;
        self.output(now, nic);
        if let Some(v6) = &mut self.ipv6 {
            // (Its frames came in this burst: behind as this half is.)
            v6.rx_behind = behind;
            busy |= v6.half_turn(now, nic, room);
        }
        self.last_turn_busy = busy;
        n
    }

    /// A dual-stack shard's IPv6 half's part of the turn (its frames came
    /// in through the IPv4 half's receive): timers, applications, output.
    /// Returns whether it had work.
    #[inline(never)]
    fn half_turn(&mut self, now: Instant, nic: &mut dyn Nic, room: bool) -> bool {
        if room {
            self.run_timers(now);
            self.age_neighbours(now);
            // (Not while behind in reading, as in `poll`.)
            if !self.rx_behind {
                self.open_client_connections(now);
                self.close_client_connections(now);
                self.dispatch_requests(now);
            }
        }
        let busy = !self.touched.is_empty() || self.ctrl_used > 0;
        self.output(now, nic);
        busy
    }
}

/// `Stack::touch` for a connection in hand (`c` is `h`'s): no second lookup.
#[inline]
fn mark<A: StackFamily>(touched: &mut Vec<Handle>, c: &mut Conn<A>, h: Handle) {
    if !c.has(TOUCHED) {
        c.flags |= TOUCHED;
        touched.push(h);
    }
}

/// The keyed hash's state for a pair of hosts (ISNs and timestamp offset of
/// their connections), remembering the last one.
#[inline]
fn host_pair_cached<'c, A: StackFamily>(
    cache: &'c mut HostPair<A>,
    hasher: &TupleHasher,
    local: A,
    remote: A,
) -> &'c HostPair<A> {
    if cache.local != local || cache.remote != remote || cache.local == A::UNSPECIFIED {
        *cache = hasher.host_pair(local, remote);
    }
    cache
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{ClientConn, ServerConn};
    use std::mem::size_of;

    /// Issue 12 item 3: what the shard keeps per connection beside its
    /// control block (application state, wheel entry, MAC, flags) stays
    /// within one 64-byte line, and the application state between requests
    /// within 32 bytes (no copy of the server's application, no framer: both
    /// are out of line; the server's in 24, so the enum's tag goes in the
    /// client's `handshaking` niche).
    #[test]
    fn a_connections_record_beside_its_control_block_stays_small() {
        let (cb, conn) = (size_of::<Connection>(), size_of::<Conn>());
        println!(
            "control block {cb} B; shard record {conn} B; application state {} B \
             (server {} B, client {} B)",
            size_of::<AppConn>(),
            size_of::<ServerConn>(),
            size_of::<ClientConn>()
        );
        assert!(size_of::<ServerConn>() <= 24, "{}", size_of::<ServerConn>());
        assert!(size_of::<ClientConn>() <= 32, "{}", size_of::<ClientConn>());
        assert!(size_of::<AppConn>() <= 32, "{}", size_of::<AppConn>());
        // The 4-tuple lives in the record (the control block keeps its ports
        // and address sum): it counts with the control block here. Issue 12:
        // application state 32, wheel handle 8 (`Option<TimerId>` in its
        // niche), MAC 6, flags 1: 47, padded with the 12 B IPv4 key (and the
        // 200 B control block) to 8.
        let key = size_of::<FlowKey>();
        assert!(
            conn - cb - key <= 52,
            "shard record {conn} B for a {cb} B control block and a {key} B key"
        );
    }
}
