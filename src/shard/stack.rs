//! One shard's TCP/IP endpoint: frames in, frames out, in one thread.
//!
//! `Stack::poll` is one turn of the shard loop: receive a burst → parse →
//! demultiplex → TCP engine → expired timers (budgeted) → applications and new
//! client connections → transmit → flush. It takes `now` from the caller (one
//! clock read per turn) and a `Nic` for I/O, so the same code runs over DPDK
//! and over the in-memory link in tests.

use super::Iface;
use super::nic::{Nic, Tx};
use super::responder::Responder;
use crate::app::{AppConn, AppCx, ClientConfig, ClientConn, EngineSocket, ServerApp, ServerConn};
use crate::stats::{DropReason, Latency, STATES, ShardStats};
use crate::table::{
    ConnTable, FlowHashBuilder, FlowKey, Found, FullPolicy, Handle, InsertError, TimeWaitEntry,
};
use crate::tcp::{
    Connection, Event, FourTuple, SegmentVerdict, State, SynCookies, TcpConfig, TimeWaitRecord,
    TimeWaitVerdict, TupleHasher, emit_cookie_syn_ack, rst_reply,
};
use crate::time::Instant;
use crate::timer::{TimerId, Wheel};
use crate::wire::{
    self, ChecksumMode, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol,
    Ipv4Packet, Ipv4Repr, Parsed, SeqNumber, TcpControl, TcpPacket, TcpRepr,
};
use crossbeam_queue::ArrayQueue;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

const ETH: usize = 14;
const IP: usize = 20;
const HDRS: usize = ETH + IP;

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
}

/// Which shard owns a flow: a pure function of the 4-tuple that every shard
/// computes alike.
#[derive(Debug, Clone, Default)]
pub enum Ownership {
    /// `flow_owner`: devices without RSS (memif, ring, af_packet, tap).
    #[default]
    Hash,
    /// The queue the NIC's RSS picks (Toeplitz with the symmetric key, then
    /// the redirection table), so most frames arrive at their owner and a
    /// client's chosen source ports bring its replies to its own queue.
    Rss(std::sync::Arc<super::rss::Reta>),
}

impl Ownership {
    pub fn owner(&self, local: SocketAddrV4, remote: SocketAddrV4, shards: u32) -> u32 {
        match self {
            Ownership::Hash => flow_owner(local, remote, shards),
            Ownership::Rss(reta) => {
                let h = super::rss::hash_v4(&super::rss::SYMMETRIC_KEY, remote, local);
                u32::from(reta.queue(h)) % shards.max(1)
            }
        }
    }
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
        }
    }
}

/// The shard that owns a flow: a pure function of the 4-tuple, the same
/// whichever direction the tuple is written in (symmetric), known to every
/// shard. Software steering uses it where the NIC cannot spread flows itself.
pub fn flow_owner(a: SocketAddrV4, b: SocketAddrV4, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let x = u32::from(*a.ip()) ^ u32::from(*b.ip());
    let p = u32::from(a.port()) ^ u32::from(b.port());
    let mut h = u64::from(x) << 16 | u64::from(p);
    // A fixed mixer (not keyed: ownership must agree across shards and runs).
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % u64::from(shards)) as u32
}

struct Conn {
    tcp: Connection,
    app: AppConn,
    key: FlowKey,
    timer: Option<TimerId>,
    deadline: Instant,
    touched: bool,
    half_open: bool,
}

/// The load generator's running state on this shard.
struct ClientGen {
    /// Next source address index and port to try.
    ip_idx: u32,
    port: u16,
    active: u32,
    /// Open loop: the next connection's scheduled time.
    next_open: Instant,
    open_interval_ns: u64,
    /// No new connections from this time on.
    stop_at: Instant,
    /// Latencies are recorded from this time on (warm-up before).
    record_from: Instant,
    /// `--rps`: the next request's due time, the interval, and connections
    /// waiting for one.
    next_request: Instant,
    request_interval_ns: u64,
    idle: std::collections::VecDeque<Handle>,
}

/// The bounded lock-free queues software steering uses between one port's
/// shards, indexed by shard: each shard's inbox of frames for flows it owns
/// that arrived on another shard's queue, and the spare buffers it hands back
/// after processing them (so steering allocates only while they warm up).
#[derive(Clone)]
pub struct SteerQueues {
    inbox: Vec<Arc<ArrayQueue<Vec<u8>>>>,
    spare: Vec<Arc<ArrayQueue<Vec<u8>>>>,
}

impl SteerQueues {
    /// Queues for `shards` shards, `depth` frames each.
    pub fn new(shards: usize, depth: usize) -> SteerQueues {
        let mk = || {
            (0..shards)
                .map(|_| Arc::new(ArrayQueue::new(depth)))
                .collect()
        };
        SteerQueues {
            inbox: mk(),
            spare: mk(),
        }
    }

    pub fn shards(&self) -> usize {
        self.inbox.len()
    }
}

/// A shard's endpoint.
pub struct Stack {
    pub cfg: StackConfig,
    table: ConnTable<Conn, ServerApp>,
    wheel: Wheel<Handle>,
    expired: Vec<Handle>,
    touched: Vec<Handle>,
    neigh: HashMap<Ipv4Addr, EthernetAddress, FlowHashBuilder>,
    responder: Responder,
    hasher: TupleHasher,
    half_open: usize,
    pub stats: ShardStats,
    pub latency: Latency,
    /// Control frames (ARP, ICMP, RST, TIME_WAIT ACKs) waiting for transmit;
    /// buffers are reused.
    ctrl: Vec<Vec<u8>>,
    ctrl_used: usize,
    ip_ident: u16,
    scratch: Vec<u8>,
    client: Option<ClientGen>,
    client_cfg: Option<ClientConfig>,
    last_turn_at: Instant,
    last_turn_busy: bool,
    /// The last (local, remote, offset) timestamp offset computed: consecutive
    /// connections mostly share their addresses.
    ts_offset_cache: (Ipv4Addr, Ipv4Addr, u32),
    /// Software steering between this port's shards (None: one shard, or RSS
    /// alone decides).
    steer: Option<SteerQueues>,
}

impl Stack {
    pub fn new(cfg: StackConfig, now: Instant) -> Stack {
        let mut table = ConnTable::new(cfg.capacity, cfg.time_wait_capacity, cfg.tcp.time_wait());
        table.policy = cfg.full_policy;
        table.reserve_time_wait(cfg.time_wait_reserve);
        Stack {
            responder: Responder::new(cfg.iface),
            table,
            wheel: Wheel::with_capacity(now, cfg.capacity.min(1 << 20)),
            expired: Vec::with_capacity(cfg.timer_budget),
            touched: Vec::with_capacity(1024),
            neigh: HashMap::with_hasher(FlowHashBuilder::random()),
            hasher: TupleHasher::random(),
            half_open: 0,
            stats: ShardStats::default(),
            latency: Latency::default(),
            ctrl: Vec::new(),
            ctrl_used: 0,
            ip_ident: 0,
            scratch: vec![0u8; 64 * 1024],
            client: None,
            client_cfg: None,
            last_turn_at: now,
            last_turn_busy: false,
            ts_offset_cache: (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, 0),
            steer: None,
            cfg,
        }
    }

    /// Software steering for devices that cannot spread flows over queues:
    /// `queues` are the port's queues, one inbox per shard (this shard's is
    /// `queues` at `cfg.shard`); frames for flows another shard owns go to
    /// its inbox.
    pub fn set_steering(&mut self, queues: SteerQueues) {
        self.steer = Some(queues);
    }

    /// Whether every connection and TIME_WAIT record here belongs to this shard.
    pub fn owns_all_flows(&self) -> bool {
        self.table.iter().all(|(_, c)| {
            let t = c.tcp.tuple();
            self.cfg.ownership.owner(t.local, t.remote, self.cfg.shards) == self.cfg.shard
        })
    }

    /// Listens on `addr` (0.0.0.0 for every local address) with `app`.
    pub fn listen(&mut self, addr: SocketAddrV4, app: ServerApp) {
        self.table.listen(addr, app);
    }

    /// Knows `ip`'s MAC without asking (the peer of a point-to-point link, a
    /// gateway given on the command line, or an ARP answer).
    pub fn add_neighbour(&mut self, ip: Ipv4Addr, mac: EthernetAddress) {
        self.neigh.insert(ip, mac);
    }

    /// Queues an ARP request for `ip` (sent at the next `poll`).
    pub fn request_arp(&mut self, ip: Ipv4Addr) {
        let arp = wire::ArpRepr {
            operation: wire::ArpOperation::Request,
            source_hardware_addr: self.cfg.iface.mac,
            source_protocol_addr: self.cfg.iface.ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        };
        let eth = EthernetRepr {
            src_addr: self.cfg.iface.mac,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
        };
        let len = ETH + arp.buffer_len();
        self.ctrl_buf(len.max(60));
        let buf = &mut self.ctrl[self.ctrl_used - 1];
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..ETH]));
        arp.emit(&mut wire::ArpPacket::new_unchecked(&mut buf[ETH..len]));
    }

    pub fn neighbour(&self, ip: Ipv4Addr) -> Option<EthernetAddress> {
        self.neigh.get(&ip).copied()
    }

    /// Starts the load generator: connections open from `now` until
    /// `now + duration`; latencies count after `warmup`.
    pub fn start_client(
        &mut self,
        cfg: ClientConfig,
        now: Instant,
        duration: std::time::Duration,
        warmup: std::time::Duration,
    ) {
        let interval = 1_000_000_000u64
            .checked_div(cfg.cps)
            .map_or(0, |i| i.max(1));
        // Start at a random port, as kernels pick ephemeral ports: a rerun then
        // rarely meets 4-tuples the peer still holds in TIME_WAIT from the last.
        let span = u32::from(cfg.ports.1 - cfg.ports.0) + 1;
        let start = (self.hasher.hash(cfg.target, cfg.target, 0x706f) % u64::from(span)) as u16;
        self.client = Some(ClientGen {
            ip_idx: 0,
            port: cfg.ports.0 + start,
            active: 0,
            next_open: now,
            open_interval_ns: interval,
            stop_at: now + duration,
            record_from: now + warmup,
            next_request: now,
            request_interval_ns: 1_000_000_000u64
                .checked_div(cfg.rps)
                .map_or(0, |i| i.max(1)),
            idle: std::collections::VecDeque::new(),
        });
        self.client_cfg = Some(cfg);
    }

    /// Stops opening client connections.
    pub fn stop_client(&mut self, now: Instant) {
        if let Some(g) = &mut self.client {
            g.stop_at = g.stop_at.min(now);
        }
    }

    /// Client connections still open.
    pub fn client_active(&self) -> u32 {
        self.client.as_ref().map_or(0, |g| g.active)
    }

    /// Connections in the table (not counting TIME_WAIT records).
    pub fn connections(&self) -> usize {
        self.table.len()
    }

    pub fn time_wait_records(&self) -> usize {
        self.table.time_wait_len()
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
    }

    /// Fills `states` with a count of connections per TCP state.
    pub fn count_states(&mut self) {
        let mut s = [0u64; STATES.len()];
        for (_, c) in self.table.iter() {
            s[c.tcp.state() as usize] += 1;
        }
        s[State::TimeWait as usize] += self.table.time_wait_len() as u64;
        s[State::Listen as usize] += self.table.listener_count() as u64;
        self.stats.states = s;
    }

    fn touch(&mut self, h: Handle) {
        if let Some(c) = self.table.get_mut(h) {
            if !c.touched {
                c.touched = true;
                self.touched.push(h);
            }
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
        let mut n = nic.rx(&mut |frame| self.input(now, frame));
        // Frames other shards handed over (taken out for the loop: no Arc
        // clone per turn).
        if let Some(st) = self.steer.take() {
            let me = self.cfg.shard as usize;
            for _ in 0..64 {
                let Some(f) = st.inbox[me].pop() else { break };
                self.stats.steered_in += 1;
                self.input(now, &f);
                n += 1;
                // The buffer goes back for the next frame steered here.
                let _ = st.spare[me].push(f);
            }
            self.steer = Some(st);
        }
        self.run_timers(now);
        self.open_client_connections(now);
        self.dispatch_requests(now);
        self.last_turn_busy = n > 0 || !self.touched.is_empty() || self.ctrl_used > 0;
        self.output(now, nic);
        n
    }

    // ---- input ----

    /// Handles one received frame.
    pub fn input(&mut self, now: Instant, frame: &[u8]) {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += frame.len() as u64;
        let parsed = match wire::parse_frame(frame, ChecksumMode::Verify) {
            Ok(p) => p,
            Err(e) => return self.stats.drop(e.into()),
        };
        match parsed {
            Parsed::Tcp(e, ip, seg) => {
                if e.dst_addr != self.cfg.iface.mac && !e.dst_addr.is_broadcast() {
                    return self.stats.drop(DropReason::NotForUs);
                }
                if !self.cfg.iface.owns(ip.dst_addr) {
                    return self.stats.drop(DropReason::NotForUs);
                }
                let local = SocketAddrV4::new(ip.dst_addr, seg.dst_port);
                let remote = SocketAddrV4::new(ip.src_addr, seg.src_port);
                if self.cfg.shards > 1 {
                    let owner = self.cfg.ownership.owner(local, remote, self.cfg.shards);
                    if owner != self.cfg.shard {
                        // Another shard's flow: hand over a copy (the path for
                        // devices without RSS), in a buffer the owner returned.
                        let handed = self.steer.as_ref().is_some_and(|st| {
                            let o = owner as usize;
                            let mut buf = st.spare.get(o).and_then(|q| q.pop()).unwrap_or_default();
                            buf.clear();
                            buf.extend_from_slice(frame);
                            st.inbox.get(o).is_some_and(|q| q.push(buf).is_ok())
                        });
                        if handed {
                            self.stats.steered_out += 1;
                            self.stats.rx_packets -= 1;
                            self.stats.rx_bytes -= frame.len() as u64;
                        } else {
                            self.stats.drop(DropReason::SteerFull);
                        }
                        return;
                    }
                }
                if seg.control == TcpControl::Syn && seg.ack_number.is_none() {
                    // The peer's MAC, for the replies (a load generator may use
                    // many source addresses behind one MAC).
                    if self.neigh.get(&ip.src_addr) != Some(&e.src_addr) {
                        self.neigh.insert(ip.src_addr, e.src_addr);
                    }
                }
                self.tcp_input(now, local, remote, &seg);
            }
            Parsed::Arp(_, a) => {
                if self.cfg.iface.owns(a.target_protocol_addr) {
                    // A request for us or an answer to ours: either way the
                    // sender's address (RFC 826's merge step).
                    self.neigh
                        .insert(a.source_protocol_addr, a.source_hardware_addr);
                }
                self.control_reply(frame);
            }
            Parsed::Icmp(..) => self.control_reply(frame),
            Parsed::OtherIp(..) => self.stats.drop(DropReason::OtherIpProtocol),
            Parsed::OtherEther(..) => self.stats.drop(DropReason::OtherEtherType),
        }
    }

    /// ARP and ICMP: the responder answers or counts the drop.
    fn control_reply(&mut self, frame: &[u8]) {
        let before = self.responder.stats;
        self.ctrl_buf(frame.len().max(64));
        let buf = &mut self.ctrl[self.ctrl_used - 1];
        let r = self.responder.handle(frame, buf);
        let after = self.responder.stats;
        self.stats.arp_answered += after.arp_requests_answered - before.arp_requests_answered;
        self.stats.icmp_answered += after.icmp_echo_answered - before.icmp_echo_answered;
        match r {
            Ok(Some(n)) => self.ctrl_commit(n),
            Ok(None) => self.ctrl_cancel(),
            Err(d) => {
                self.stats.drop(d);
                self.ctrl_cancel();
            }
        }
    }

    fn ctrl_buf(&mut self, len: usize) -> &mut [u8] {
        if self.ctrl_used == self.ctrl.len() {
            self.ctrl.push(Vec::with_capacity(1514));
        }
        let b = &mut self.ctrl[self.ctrl_used];
        b.clear();
        b.resize(len, 0);
        self.ctrl_used += 1;
        b
    }
    fn ctrl_commit(&mut self, n: usize) {
        self.ctrl[self.ctrl_used - 1].truncate(n);
    }
    fn ctrl_cancel(&mut self) {
        self.ctrl_used -= 1;
    }

    fn tcp_input(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr,
    ) {
        if seg.control == TcpControl::Rst {
            self.stats.rsts_in += 1;
        }
        let key = FlowKey::from(FourTuple { local, remote });
        match self.table.find(key) {
            Found::Conn(h) => {
                let cfg = &self.cfg.tcp;
                let Some(c) = self.table.get_mut(h) else {
                    return;
                };
                match c.tcp.handle_segment(now, cfg, &mut self.stats.tcp, seg) {
                    SegmentVerdict::Dropped => self.stats.drop(DropReason::Refused),
                    SegmentVerdict::RstReply => {
                        self.stats.drop(DropReason::Refused);
                        self.send_rst_reply(local, remote, seg);
                    }
                    _ => {}
                }
                self.touch(h);
                return;
            }
            Found::TimeWait => {
                let tw = self.cfg.tcp.time_wait();
                let Some(r) = self.table.time_wait_mut(key) else {
                    return;
                };
                match r.handle_segment(now, tw, seg) {
                    TimeWaitVerdict::Drop => return,
                    TimeWaitVerdict::Ack => {
                        let r = *r;
                        let mut tcp = [0u8; 64];
                        let n = r.emit_ack(now, &mut tcp);
                        self.ctrl_tcp(local, remote, &tcp[..n]);
                        return;
                    }
                    TimeWaitVerdict::NewSyn => {
                        // RFC 6191: the 4-tuple is reopened; the listener takes the SYN.
                        self.table.reuse_time_wait(key);
                    }
                }
            }
            Found::None => {}
        }
        self.no_connection(now, key, local, remote, seg);
    }

    /// A segment for no connection: a listener's SYN (or SYN cookie ACK), or a RST.
    fn no_connection(
        &mut self,
        now: Instant,
        key: FlowKey,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr,
    ) {
        let tuple = FourTuple { local, remote };
        let app = self.table.listener(local).cloned();
        let is_syn = seg.control == TcpControl::Syn && seg.ack_number.is_none();
        if let Some(app) = app {
            let cfg = &self.cfg.tcp;
            if is_syn && self.half_open >= cfg.syn_cookie_threshold {
                // SYN flood defence (RFC 4987): answer without keeping state.
                let cookies = SynCookies::new(self.hasher);
                let iss =
                    cookies.encode(now, tuple, seg.seq_number, seg.max_seg_size.unwrap_or(536));
                let mut tcp = [0u8; 64];
                let n = emit_cookie_syn_ack(cfg, tuple, seg, iss, &mut tcp);
                self.stats.syn_cookies_sent += 1;
                self.ctrl_tcp(local, remote, &tcp[..n]);
                return;
            }
            if is_syn {
                let iss = SeqNumber(self.hasher.isn(local, remote, now));
                let mut c = Connection::listen(cfg, local, iss, now);
                c.set_ts_offset(ts_offset_cached(
                    &mut self.ts_offset_cache,
                    &self.hasher,
                    *local.ip(),
                    *remote.ip(),
                ));
                c.set_remote(remote);
                c.handle_segment(now, cfg, &mut self.stats.tcp, seg);
                self.accept(key, c, app, true);
                return;
            }
            if let (TcpControl::None | TcpControl::Fin, Some(ack)) = (seg.control, seg.ack_number) {
                let cookies = SynCookies::new(self.hasher);
                if let Some(mss) = cookies.validate(now, tuple, seg.seq_number, ack) {
                    let mut c = Connection::from_syn_cookie(cfg, tuple, ack - 1, seg, mss, now);
                    c.handle_segment(now, cfg, &mut self.stats.tcp, seg);
                    self.stats.syn_cookies_accepted += 1;
                    self.accept(key, c, app, false);
                    return;
                }
            }
        }
        self.stats.drop(DropReason::NoConnection);
        self.send_rst_reply(local, remote, seg);
    }

    /// Answers `seg` with the RST RFC 9293 gives for it (none to an RST).
    fn send_rst_reply(&mut self, local: SocketAddrV4, remote: SocketAddrV4, seg: &TcpRepr) {
        if let Some(rst) = rst_reply(seg) {
            let mut tcp = [0u8; 64];
            let n = rst.buffer_len();
            rst.emit(
                &mut TcpPacket::new_unchecked(&mut tcp[..n]),
                *local.ip(),
                *remote.ip(),
            );
            self.stats.tcp.rsts_out += 1;
            self.ctrl_tcp(local, remote, &tcp[..n]);
        }
    }

    fn accept(&mut self, key: FlowKey, c: Connection, app: ServerApp, half_open: bool) {
        let conn = Conn {
            tcp: c,
            app: AppConn::Server(ServerConn::new(app)),
            key,
            timer: None,
            deadline: Instant::NEVER,
            touched: false,
            half_open,
        };
        match self.table.insert(key, conn) {
            Ok(h) => {
                self.stats.accepted += 1;
                if half_open {
                    self.half_open += 1;
                }
                self.touch(h);
            }
            // Free a moment ago (no connection, no record): cannot happen.
            // Dropped, not reset: an RST would hit whoever holds the tuple.
            Err(InsertError::TupleTaken) => self.stats.drop(DropReason::TupleTaken),
            Err(InsertError::Full { policy, .. }) => {
                self.stats.drop(DropReason::TableFull);
                if policy == FullPolicy::Rst {
                    // Refuse: RST the SYN (or the cookie's ACK).
                    let t = FourTuple {
                        local: SocketAddrV4::new(Ipv4Addr::from(key.local_ip), key.local_port),
                        remote: SocketAddrV4::new(Ipv4Addr::from(key.remote_ip), key.remote_port),
                    };
                    let rst = TcpRepr {
                        src_port: t.local.port(),
                        dst_port: t.remote.port(),
                        control: TcpControl::Rst,
                        ..TcpRepr::default()
                    };
                    let mut tcp = [0u8; 64];
                    let n = rst.buffer_len();
                    rst.emit(
                        &mut TcpPacket::new_unchecked(&mut tcp[..n]),
                        *t.local.ip(),
                        *t.remote.ip(),
                    );
                    self.stats.tcp.rsts_out += 1;
                    self.ctrl_tcp(t.local, t.remote, &tcp[..n]);
                }
            }
        }
    }

    /// Queues a TCP segment (already with its checksum) as a control frame.
    fn ctrl_tcp(&mut self, local: SocketAddrV4, remote: SocketAddrV4, tcp: &[u8]) {
        let Some(mac) = self.neigh.get(remote.ip()).copied() else {
            return self.stats.drop(DropReason::NoNeighbour);
        };
        let src_mac = self.cfg.iface.mac;
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let ident = self.ip_ident;
        let buf = self.ctrl_buf(HDRS + tcp.len());
        write_headers(
            buf,
            src_mac,
            mac,
            *local.ip(),
            *remote.ip(),
            tcp.len(),
            ident,
        );
        buf[HDRS..].copy_from_slice(tcp);
    }

    // ---- timers ----

    fn run_timers(&mut self, now: Instant) {
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

    // ---- the load generator ----

    fn open_client_connections(&mut self, now: Instant) {
        let (Some(g), Some(gc)) = (&mut self.client, &self.client_cfg) else {
            return;
        };
        let mut opened = 0;
        while now < g.stop_at && g.active < gc.connections && opened < gc.open_burst {
            let scheduled = if g.open_interval_ns > 0 {
                if g.next_open > now {
                    break;
                }
                let s = g.next_open;
                g.next_open = Instant(g.next_open.0 + g.open_interval_ns);
                s
            } else {
                now
            };
            // The next source address and port this shard owns and nobody uses.
            let mut tries = 0;
            let tuple = loop {
                tries += 1;
                if tries > 4096 {
                    break None;
                }
                let ip = Ipv4Addr::from(u32::from(gc.src_first).wrapping_add(g.ip_idx));
                let local = SocketAddrV4::new(ip, g.port);
                if g.port >= gc.ports.1 {
                    g.port = gc.ports.0;
                    g.ip_idx = (g.ip_idx + 1) % gc.src_count.max(1);
                } else {
                    g.port += 1;
                }
                if self.cfg.shards > 1
                    && self.cfg.ownership.owner(local, gc.target, self.cfg.shards) != self.cfg.shard
                {
                    continue;
                }
                let t = FourTuple {
                    local,
                    remote: gc.target,
                };
                if self.table.find(FlowKey::from(t)) != Found::None {
                    self.stats.port_collisions += 1;
                    continue;
                }
                break Some(t);
            };
            let Some(tuple) = tuple else { break };
            let iss = SeqNumber(self.hasher.isn(tuple.local, tuple.remote, now));
            let mut tcp = Connection::connect(&self.cfg.tcp, tuple, iss, now);
            let off = ts_offset_cached(
                &mut self.ts_offset_cache,
                &self.hasher,
                *tuple.local.ip(),
                *tuple.remote.ip(),
            );
            tcp.set_ts_offset(off);
            let conn = Conn {
                tcp,
                app: AppConn::Client(ClientConn::new(scheduled)),
                key: FlowKey::from(tuple),
                timer: None,
                deadline: Instant::NEVER,
                touched: false,
                half_open: false,
            };
            match self.table.insert(conn.key, conn) {
                Ok(h) => {
                    g.active += 1;
                    self.stats.opened += 1;
                    opened += 1;
                    if let Some(c) = self.table.get_mut(h) {
                        c.touched = true;
                        self.touched.push(h);
                    }
                }
                Err(InsertError::Full { .. }) => {
                    self.stats.drop(DropReason::TableFull);
                    break;
                }
                Err(InsertError::TupleTaken) => {
                    self.stats.port_collisions += 1;
                    break;
                }
            }
        }
    }

    /// `--rps`: hands each request that is due to an idle connection; a
    /// request keeps its due time while it waits for one, so queueing shows
    /// in the latency.
    fn dispatch_requests(&mut self, now: Instant) {
        let (Some(g), Some(gc)) = (&mut self.client, &self.client_cfg) else {
            return;
        };
        if g.request_interval_ns == 0 {
            return;
        }
        let end = g.stop_at;
        let stopping = now >= end;
        while (g.next_request <= now && g.next_request < end) || stopping {
            let Some(h) = g.idle.pop_front() else { break };
            let Some(c) = self.table.get_mut(h) else {
                continue;
            };
            let AppConn::Client(cl) = &mut c.app else {
                continue;
            };
            cl.queued = false;
            let mut cx = AppCx {
                now,
                stats: &mut self.stats,
                latency: &mut self.latency,
                scratch: &mut self.scratch,
                stop_at: end,
                record_from: g.record_from,
            };
            let mut sock = EngineSocket {
                conn: &mut c.tcp,
                cfg: &self.cfg.tcp,
                now,
            };
            if stopping {
                cl.finish_idle(&mut cx, &mut sock);
            } else if cl.start_scheduled(&mut cx, gc, &mut sock, g.next_request) {
                g.next_request = Instant(g.next_request.0 + g.request_interval_ns);
            }
            {
                if !c.touched {
                    c.touched = true;
                    self.touched.push(h);
                }
            }
        }
    }

    // ---- output ----

    fn output(&mut self, now: Instant, nic: &mut dyn Nic) {
        // Control frames first (they are answers to what just arrived).
        for i in 0..self.ctrl_used {
            let f = &self.ctrl[i];
            let r = nic.tx(f.len(), &mut |buf| {
                buf[..f.len()].copy_from_slice(f);
                f.len()
            });
            self.count_tx(r, f.len());
        }
        self.ctrl_used = 0;
        let mut i = 0;
        while i < self.touched.len() {
            let h = self.touched[i];
            i += 1;
            self.drive(now, h, nic);
        }
        self.touched.clear();
        let dropped = nic.flush();
        for _ in 0..dropped {
            self.stats.drop(DropReason::TxFull);
        }
        self.stats.tx_packets -= dropped.min(self.stats.tx_packets);
    }

    fn count_tx(&mut self, r: Tx, len: usize) {
        match r {
            Tx::Queued => {
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += len as u64;
            }
            Tx::NoBuffer => self.stats.drop(DropReason::NoBuffer),
            Tx::Nothing => {}
        }
    }

    /// Events to the application, segments to the NIC, then the timer and the
    /// table updated for one connection.
    fn drive(&mut self, now: Instant, h: Handle, nic: &mut dyn Nic) {
        let client_cfg = self.client_cfg.as_ref();
        let Some(c) = self.table.get_mut(h) else {
            return;
        };
        c.touched = false;
        let cfg = &self.cfg.tcp;
        let mut cx = AppCx {
            now,
            stats: &mut self.stats,
            latency: &mut self.latency,
            scratch: &mut self.scratch,
            stop_at: self.client.as_ref().map_or(Instant::NEVER, |g| g.stop_at),
            record_from: self
                .client
                .as_ref()
                .map_or(Instant::NEVER, |g| g.record_from),
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
        // Events, until the application has nothing more to say.
        let mut closed = None;
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
        // Think time over (the connection's timer covers `next_at`).
        if let (AppConn::Client(cl), Some(cc)) = (&mut c.app, client_cfg) {
            if cl.next_at <= now {
                cl.on_tick(&mut cx, cc, &mut sock!());
            }
            // `--rps`: ready for a scheduled request.
            if cl.idle && !cl.finished && !cl.queued {
                if let Some(g) = &mut self.client {
                    cl.queued = true;
                    g.idle.push_back(h);
                }
            }
        }
        if c.half_open && c.tcp.state() != State::SynReceived {
            c.half_open = false;
            self.half_open -= 1;
        }
        // Segments.
        let Some(dst_mac) = self.neigh.get(c.tcp.tuple().remote.ip()).copied() else {
            self.stats.drop(DropReason::NoNeighbour);
            return;
        };
        let t = c.tcp.tuple();
        let src_mac = self.cfg.iface.mac;
        let max = HDRS + usize::from(cfg.mss) + 60;
        loop {
            self.ip_ident = self.ip_ident.wrapping_add(1);
            let ident = self.ip_ident;
            let st = &mut self.stats.tcp;
            let tcp = &mut c.tcp;
            let mut len = 0;
            let r = nic.tx(max, &mut |buf| {
                let Some(n) = tcp.poll_transmit(now, cfg, st, &mut buf[HDRS..]) else {
                    return 0;
                };
                write_headers(
                    buf,
                    src_mac,
                    dst_mac,
                    *t.local.ip(),
                    *t.remote.ip(),
                    n,
                    ident,
                );
                len = HDRS + n;
                len
            });
            match r {
                Tx::Queued => {
                    self.stats.tx_packets += 1;
                    self.stats.tx_bytes += len as u64;
                }
                Tx::Nothing => break,
                Tx::NoBuffer => {
                    self.stats.drop(DropReason::NoBuffer);
                    break;
                }
            }
        }
        // Where the connection goes next.
        let state = c.tcp.state();
        let is_client = matches!(c.app, AppConn::Client(_));
        let think = match &c.app {
            AppConn::Client(cl) => cl.next_at != Instant::NEVER && !cl.finished,
            _ => false,
        };
        match state {
            State::Closed => {
                let reason = closed
                    .or(c.tcp.close_reason())
                    .unwrap_or(crate::tcp::CloseReason::Normal);
                if let Some(id) = c.timer.take() {
                    self.wheel.cancel(id);
                }
                if c.half_open {
                    self.half_open -= 1;
                }
                let key = c.key;
                self.table.remove(key, h);
                self.stats.count_close(reason);
                if is_client {
                    if let Some(g) = &mut self.client {
                        g.active -= 1;
                    }
                }
            }
            State::TimeWait => {
                if let Some(id) = c.timer.take() {
                    self.wheel.cancel(id);
                }
                let key = c.key;
                if let Some(r) = TimeWaitRecord::from_connection(&c.tcp, now, cfg.time_wait()) {
                    // Out of the table either way; without room for its
                    // record the 4-tuple is simply not held for 2MSL.
                    match self.table.enter_time_wait(key, h, r, now) {
                        Some(TimeWaitEntry::Stored(_)) => self.stats.time_wait_entered += 1,
                        Some(TimeWaitEntry::Refused(_)) => self.stats.time_wait_refused += 1,
                        None => {}
                    }
                    // The connection is done as far as the application goes.
                    self.stats.count_close(crate::tcp::CloseReason::Normal);
                    if is_client {
                        if let Some(g) = &mut self.client {
                            g.active -= 1;
                        }
                    }
                }
            }
            _ => {
                let want = c.tcp.poll_timeout().unwrap_or(Instant::NEVER);
                let want = if think {
                    match &c.app {
                        AppConn::Client(cl) => want.min(cl.next_at),
                        _ => want,
                    }
                } else {
                    want
                };
                if want != c.deadline {
                    match c.timer {
                        Some(id) if want != Instant::NEVER && self.wheel.reschedule(id, want) => {}
                        Some(_) if want != Instant::NEVER => {
                            c.timer = Some(self.wheel.schedule(want, h));
                        }
                        Some(id) => {
                            self.wheel.cancel(id);
                            c.timer = None;
                        }
                        None if want != Instant::NEVER => {
                            c.timer = Some(self.wheel.schedule(want, h));
                        }
                        None => {}
                    }
                    c.deadline = want;
                }
            }
        }
    }
}

/// The keyed timestamp offset for an address pair, remembering the last one.
fn ts_offset_cached(
    cache: &mut (Ipv4Addr, Ipv4Addr, u32),
    hasher: &TupleHasher,
    local: Ipv4Addr,
    remote: Ipv4Addr,
) -> u32 {
    if cache.0 != local || cache.1 != remote || cache.0.is_unspecified() {
        *cache = (local, remote, hasher.ts_offset(local, remote));
    }
    cache.2
}

/// Writes Ethernet and IPv4 headers in front of a TCP segment of `tcp_len` bytes.
fn write_headers(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    tcp_len: usize,
    ident: u16,
) {
    EthernetRepr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..ETH]));
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: tcp_len,
        ttl: 64,
        tos: 0,
        ident,
        dont_frag: true,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut buf[ETH..HDRS]));
}
