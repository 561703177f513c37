//! One TCP connection, sans-I/O (RFC 9293).
//!
//! The connection never reads a clock and never does I/O. The caller (a shard,
//! or the simulation) drives it, in this order, each time something happens:
//!
//! 1. inputs: [`Connection::handle_segment`] for each segment that belongs to it,
//!    [`Connection::handle_timeout`] when its deadline has passed, and the
//!    application's commands ([`Connection::send`], [`Connection::recv`],
//!    [`Connection::shutdown`], [`Connection::close`], [`Connection::abort`]);
//! 2. [`Connection::poll_transmit`] until it returns `None`, sending each segment;
//! 3. [`Connection::poll_event`] until it returns `None`, telling the application;
//! 4. [`Connection::poll_timeout`]: the next deadline, for the timer wheel.
//!
//! When the state becomes `TimeWait` the owner may swap the connection for a
//! [`super::TimeWaitRecord`] (which answers for it until 2MSL has passed); when
//! it becomes `Closed` and `poll_event` has reported `Closed`, it can be dropped.

use super::buffer::{Assembler, Ring};
use super::cc::{AckAction, NewReno};
use super::config::{DataAfterClose, TcpConfig};
use super::rtt::RttEstimator;
use crate::time::Instant;
use crate::wire::checksum::add_sums;
use crate::wire::{
    FamilySocketAddr, FlowKey, IpFamily, SeqNumber, TcpControl, TcpPacket, TcpRepr, TcpTimestamp,
    tcp,
};
use std::net::SocketAddrV4;

crate::counters::declare_labels! {
    /// The eleven states of RFC 9293 section 3.3.2 (`State::ALL` in this order;
    /// names as RFC 9293 writes them).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum State {
        Closed = "CLOSED",
        Listen = "LISTEN",
        SynSent = "SYN_SENT",
        SynReceived = "SYN_RECEIVED",
        Established = "ESTABLISHED",
        FinWait1 = "FIN_WAIT_1",
        FinWait2 = "FIN_WAIT_2",
        CloseWait = "CLOSE_WAIT",
        Closing = "CLOSING",
        LastAck = "LAST_ACK",
        TimeWait = "TIME_WAIT",
    }
}

impl State {
    /// Synchronized states: both ISNs known (RFC 9293 3.5.2).
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }
}

crate::counters::declare_labels! {
    /// How a connection ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum CloseReason {
        /// Both FINs exchanged and acknowledged (after TIME_WAIT on the side that closed first).
        Normal = "normal",
        /// The peer sent an acceptable RST on an established connection.
        ResetByPeer = "reset_by_peer",
        /// RST in answer to our SYN: nothing listens there.
        Refused = "refused",
        /// No answer to our SYN (or SYN-ACK) after `syn_retries` transmissions.
        TimedOutSyn = "timed_out_syn",
        /// Data or FIN unacknowledged after `max_retries` retransmissions.
        TimedOutRetransmit = "timed_out_retransmit",
        /// The peer stopped answering keepalive probes.
        TimedOutKeepalive = "timed_out_keepalive",
        /// FIN_WAIT_2 waited `fin_wait_2_timeout` for the peer's FIN.
        FinWait2Timeout = "fin_wait_2_timeout",
        /// The application aborted (we sent RST).
        Aborted = "aborted",
    }
}

/// What the application is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed.
    Connected,
    /// New in-order data can be read.
    Readable,
    /// Send buffer space opened after a short `send`.
    Writable,
    /// The peer sent FIN: no more data will arrive (reads drain what is buffered).
    PeerClosed,
    /// The connection is over; no further events.
    Closed(CloseReason),
}

/// Errors from application commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("connection is not open for sending")]
    NotWritable,
}

/// The smallest path MTU taken from ICMP "fragmentation needed" (Linux's
/// min_pmtu: 512 + 20 + 20 bytes); a router naming less is not believed.
pub const MIN_PMTU: u16 = 552;

/// Local and remote addresses (IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
}

/// A connection's two ends as its control block keeps them, whatever the
/// family: the ports, and the addresses only as the TCP checksum takes them
/// (their ones'-complement sum, RFC 9293 3.1, RFC 8200 8.1). The owner
/// keeps the addresses themselves (its table's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ends {
    pub local_port: u16,
    pub remote_port: u16,
    /// `IpFamily::pseudo_addr_sum` of the two addresses.
    pub addr_sum: u16,
}

impl Ends {
    /// The ends of the connection from `local` to `remote`.
    #[inline]
    pub fn new<S: FamilySocketAddr>(local: S, remote: S) -> Ends {
        Ends {
            local_port: local.port(),
            remote_port: remote.port(),
            addr_sum: S::Ip::pseudo_addr_sum(&local.host(), &remote.host()),
        }
    }
}

impl Ends {
    /// A listening connection's: the local end alone (`set_remote` adds the
    /// remote one).
    #[inline]
    fn listening<S: FamilySocketAddr>(local: S) -> Ends {
        Ends {
            local_port: local.port(),
            remote_port: 0,
            addr_sum: local.host().address_sum(),
        }
    }
}

impl From<FourTuple> for Ends {
    #[inline]
    fn from(t: FourTuple) -> Ends {
        Ends::new(t.local, t.remote)
    }
}

impl<A: IpFamily> From<FlowKey<A>> for Ends {
    #[inline]
    fn from(k: FlowKey<A>) -> Ends {
        Ends::new(k.local(), k.remote())
    }
}

crate::counters::declare_counters! {
    /// Counters the engine bumps. Owned by the caller (one per shard), passed to
    /// the calls that count, so no control block carries them.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct TcpStats {
        pub segs_in,
        /// Segments header prediction took (of `segs_in`): in-order data and
        /// new ACKs in ESTABLISHED, and in the close the peer's FIN after
        /// its text and ACKs (perhaps with its FIN), with nothing else to check.
        pub segs_predicted,
        pub segs_out,
        /// Segments the transmit fast path wrote (of `segs_out`): new data
        /// (and a FIN queued after it) of an established or closing
        /// connection that the window, the MSS and Nagle let go whole, with
        /// nothing else to send first.
        pub segs_out_predicted,
        pub retransmits,
        pub fast_retransmits,
        pub rto_expirations,
        pub dup_acks_in,
        pub challenge_acks,
        pub challenge_acks_limited,
        /// RSTs sent: the engine's own (abort, RFC 9293 resets) and those the
        /// shard sends for it (answers to segments for no connection, refusals).
        pub rsts_out,
        pub out_of_window,
        pub paws_drops,
        /// ACKs not sent, for `invalid_ack_ratelimit`, in answer to an
        /// out-of-window or PAWS-failed segment.
        pub invalid_acks_limited,
        pub ooo_segments,
        /// Zero-window probes sent (RFC 9293 3.8.6.1).
        pub zero_window_probes,
        /// Connections reset because new data arrived after the application
        /// closed (RFC 1122 4.2.2.13; `TcpConfig::data_after_close`).
        pub resets_on_data_after_close,
        pub bytes_discarded_after_close,
    }
}

mod flag {
    pub const TS_OK: u16 = 1 << 0;
    pub const SACK_OK: u16 = 1 << 1;
    pub const FIN_QUEUED: u16 = 1 << 2;
    pub const ACK_NOW: u16 = 1 << 3;
    pub const RST_PENDING: u16 = 1 << 4;
    pub const PASSIVE: u16 = 1 << 5;
    pub const PEER_FIN: u16 = 1 << 6;
    pub const TIMING: u16 = 1 << 7;
    pub const WANT_WRITE: u16 = 1 << 8;
    pub const RETRANSMIT_FIRST: u16 = 1 << 9;
    pub const APP_CLOSED: u16 = 1 << 10;
    pub const PROBE: u16 = 1 << 11;
    pub const KEEPALIVE_PROBE: u16 = 1 << 12;
    pub const SYN_ACKED: u16 = 1 << 13;
    /// `rto_at` is the persist timer (zero-window probes), not the retransmit timer.
    pub const PERSIST: u16 = 1 << 14;
    /// `Reorder::peer_fin_at` holds a FIN that arrived beyond a hole.
    pub const FIN_PENDING: u16 = 1 << 15;
}

mod ev {
    pub const CONNECTED: u8 = 1 << 0;
    pub const READABLE: u8 = 1 << 1;
    pub const WRITABLE: u8 = 1 << 2;
    pub const PEER_CLOSED: u8 = 1 << 3;
    pub const CLOSED: u8 = 1 << 4;
}

/// SACK blocks the peer reported beyond snd_una (the sender's scoreboard).
type Scoreboard = [(SeqNumber, SeqNumber); 3];

/// What a connection needs only while segments are lost or reordered: the
/// SACK scoreboard (sending), the out-of-order ranges and a FIN that came
/// beyond a hole (receiving). Out of line: taken with the first such segment
/// and given back once it holds nothing (`release_idle_buffers`), so a short
/// connection never has one and its control block stays small.
#[derive(Debug, Clone, Default)]
struct Reorder {
    sacked: Scoreboard,
    assembler: Assembler,
    /// Sequence number of the peer's FIN (valid with `flag::FIN_PENDING`).
    peer_fin_at: SeqNumber,
}

impl Reorder {
    fn holds_nothing(&self, flags: u16) -> bool {
        self.assembler.is_empty()
            && flags & flag::FIN_PENDING == 0
            && self.sacked.iter().all(|b| b.0 == b.1)
    }
}

/// A TCP connection's control block.
#[derive(Debug, Clone)]
pub struct Connection {
    state: State,
    ends: Ends,
    flags: u16,
    events: u8,
    close_reason: Option<CloseReason>,
    // Send sequence space (RFC 9293 3.3.1).
    iss: SeqNumber,
    snd_una: SeqNumber,
    snd_nxt: SeqNumber,
    /// Highest sequence number sent + 1 (snd_nxt goes back on retransmission).
    snd_max: SeqNumber,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    /// Sequence number of the first byte in the send buffer.
    snd_buf_seq: SeqNumber,
    // Receive sequence space.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    /// Right edge of the window we last advertised (never moves left).
    rcv_adv: SeqNumber,
    /// The acknowledgment number we last sent (RFC 7323 4.3 Last.ACK.sent).
    last_ack_sent: SeqNumber,
    // Options.
    snd_mss: u16,
    /// Window scale shifts (RFC 7323), 0..=14 each: the peer's in the high
    /// nibble (applied to windows it sends), ours in the low nibble.
    wscales: u8,
    ts_recent: u32,
    ts_offset: u32,
    // Reliability.
    rtt: RttEstimator,
    rtt_seq: SeqNumber,
    /// When `rtt_seq` went out, in µs modulo 2^32 (an RTT under 71 minutes
    /// is read right; four bytes kept the room for `last_ack_sent`).
    rtt_time_us: u32,
    cc: NewReno,
    backoff: u8,
    retries: u8,
    keepalive_probes: u8,
    segs_unacked: u8,
    challenge_count: u8,
    challenge_second: u8,
    /// When an unacceptable segment was last ACKed, in ms modulo 2^16.
    invalid_ack_ms: u16,
    // Timers, as data (Instant::NEVER = not armed).
    rto_at: Instant,
    delack_at: Instant,
    /// TIME_WAIT's 2MSL, or FIN_WAIT_2's timeout.
    close_at: Instant,
    // Buffers: memory taken as data arrives, given back when they empty.
    send_buf: Ring,
    recv_buf: Ring,
    /// Loss and reordering state; `None` while there is none.
    reorder: Option<Box<Reorder>>,
}

/// Where bytes queued with their sum went (`Connection::send_summed`):
/// `len` bytes from `seq`, whose `checksum::partial_sum` is `sum`. The
/// bytes at a sequence number never change once queued, so a segment that
/// carries exactly these has this payload sum (`poll_transmit_summed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedSum {
    seq: SeqNumber,
    len: u32,
    sum: u16,
}

impl QueuedSum {
    /// Nothing queued with a sum (it matches only an empty payload, whose
    /// sum it has).
    pub const NONE: QueuedSum = QueuedSum {
        seq: SeqNumber(0),
        len: 0,
        sum: 0,
    };
}

impl Default for QueuedSum {
    fn default() -> QueuedSum {
        QueuedSum::NONE
    }
}

/// `now` plus `us` microseconds (saturating, as `Instant + Duration` is).
#[inline]
fn after_us(now: Instant, us: u64) -> Instant {
    Instant(now.0.saturating_add(us.saturating_mul(1_000)))
}

/// How `emit_range_as` sends a range (what `emit_data` decided of it).
#[derive(Clone, Copy)]
struct Range {
    /// Below SND.MAX: counted, and never timed (Karn).
    retransmit: bool,
    /// One segment at SND.UNA: SND.NXT only moves forward.
    rexmit_one: bool,
    /// The byte beyond a zero window: the persist timer stays.
    zero_window_probe: bool,
}

impl Range {
    /// New data (from SND.NXT = SND.MAX).
    const NEW: Range = Range {
        retransmit: false,
        rexmit_one: false,
        zero_window_probe: false,
    };
}

/// What `handle_segment` makes of an incoming segment (for counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentVerdict {
    Accepted,
    /// Dropped: outside the window, a stale timestamp, no ACK, ...
    Dropped,
    /// Answered with a challenge ACK (RFC 5961) and dropped.
    ChallengeAck,
    /// The connection was reset by this segment.
    Reset,
    /// Dropped, and the owner answers with `rst_reply(seg)` (<SEQ=SEG.ACK><CTL=RST>):
    /// an unacceptable ACK in SYN-SENT or SYN-RECEIVED (RFC 9293 3.10.7.3, 3.10.7.4).
    RstReply,
}

impl Connection {
    fn new(cfg: &TcpConfig, ends: Ends, state: State, iss: SeqNumber, now: Instant) -> Connection {
        Connection {
            state,
            ends,
            flags: 0,
            events: 0,
            close_reason: None,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: SeqNumber(0),
            snd_buf_seq: iss + 1,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_adv: SeqNumber(0),
            last_ack_sent: SeqNumber(0),
            snd_mss: 536, // RFC 9293 3.7.1 default until the peer says otherwise
            wscales: 0,
            ts_recent: 0,
            // RFC 7323 5.4 suggests a random offset per connection; derive one from the ISN.
            ts_offset: iss.0.rotate_left(13),
            rtt: RttEstimator::new(cfg.rto_initial),
            rtt_seq: iss,
            rtt_time_us: now.as_micros() as u32,
            // RFC 6582 3.2: recover starts at the ISS.
            cc: NewReno::new(536, cfg.initial_cwnd_segments).starting_at(iss),
            backoff: 0,
            retries: 0,
            keepalive_probes: 0,
            segs_unacked: 0,
            challenge_count: 0,
            challenge_second: 0,
            // Long enough ago that the first one is answered.
            invalid_ack_ms: (now.as_millis() as u16).wrapping_sub(1 << 15),
            rto_at: Instant::NEVER,
            delack_at: Instant::NEVER,
            close_at: Instant::NEVER,
            send_buf: Ring::new(),
            recv_buf: Ring::new(),
            reorder: None,
        }
    }

    /// Active open (RFC 9293 3.10.1): the SYN goes out at the next `poll_transmit`.
    /// `ends`: a `FourTuple`, a `FlowKey` of either family, or `Ends`.
    pub fn connect(
        cfg: &TcpConfig,
        ends: impl Into<Ends>,
        iss: SeqNumber,
        now: Instant,
    ) -> Connection {
        Connection::new(cfg, ends.into(), State::SynSent, iss, now)
    }

    /// Passive open: a connection in LISTEN on `local` (either family). The
    /// owner binds the remote end of the first acceptable SYN with
    /// `set_remote`; `iss` is used for the SYN-ACK.
    pub fn listen<S: FamilySocketAddr>(
        cfg: &TcpConfig,
        local: S,
        iss: SeqNumber,
        now: Instant,
    ) -> Connection {
        let mut c = Connection::new(cfg, Ends::listening(local), State::Listen, iss, now);
        c.flags |= flag::PASSIVE;
        c
    }

    /// `listen` and `set_remote` in one: the passive open of a listener for
    /// the SYN that arrived on `ends` (the shard's form).
    pub fn listen_for(
        cfg: &TcpConfig,
        ends: impl Into<Ends>,
        iss: SeqNumber,
        now: Instant,
    ) -> Connection {
        let mut c = Connection::new(cfg, ends.into(), State::Listen, iss, now);
        c.flags |= flag::PASSIVE;
        c
    }

    /// `listen_for`, in place of a connection that is over (as `reconnect`).
    pub fn relisten_for(
        &mut self,
        cfg: &TcpConfig,
        ends: impl Into<Ends>,
        iss: SeqNumber,
        now: Instant,
    ) {
        self.renew(cfg, ends.into(), State::Listen, iss, now);
        self.flags |= flag::PASSIVE;
    }

    /// `connect`, in place of a connection that is over: the same new
    /// connection, keeping the memory of its buffers (emptied) for this one.
    pub fn reconnect(
        &mut self,
        cfg: &TcpConfig,
        ends: impl Into<Ends>,
        iss: SeqNumber,
        now: Instant,
    ) {
        self.renew(cfg, ends.into(), State::SynSent, iss, now);
    }

    /// `listen`, in place of a connection that is over (as `reconnect`).
    pub fn relisten<S: FamilySocketAddr>(
        &mut self,
        cfg: &TcpConfig,
        local: S,
        iss: SeqNumber,
        now: Instant,
    ) {
        self.renew(cfg, Ends::listening(local), State::Listen, iss, now);
        self.flags |= flag::PASSIVE;
    }

    /// `Connection::new` in place of this one, field by field (no new one
    /// built aside and copied in), its buffers emptied and their memory kept
    /// when it is of the smallest size (what a short connection takes; larger
    /// ones go, so a slot never holds more than a new connection soon would).
    /// The pattern names every field, so a field added to `new` must be
    /// added here (`renewed_is_new` checks the values agree).
    #[inline(always)]
    fn renew(&mut self, cfg: &TcpConfig, ends: Ends, state: State, iss: SeqNumber, now: Instant) {
        /// `Ring`'s smallest allocation.
        const KEEP: usize = 256;
        let Connection {
            state: c_state,
            ends: c_ends,
            flags,
            events,
            close_reason,
            iss: c_iss,
            snd_una,
            snd_nxt,
            snd_max,
            snd_wnd,
            max_snd_wnd,
            snd_wl1,
            snd_wl2,
            snd_buf_seq,
            irs,
            rcv_nxt,
            rcv_adv,
            last_ack_sent,
            snd_mss,
            wscales,
            ts_recent,
            ts_offset,
            rtt,
            rtt_seq,
            rtt_time_us,
            cc,
            backoff,
            retries,
            keepalive_probes,
            segs_unacked,
            challenge_count,
            challenge_second,
            invalid_ack_ms,
            rto_at,
            delack_at,
            close_at,
            send_buf,
            recv_buf,
            reorder,
        } = self;
        *c_state = state;
        *c_ends = ends;
        *flags = 0;
        *events = 0;
        *close_reason = None;
        *c_iss = iss;
        *snd_una = iss;
        *snd_nxt = iss;
        *snd_max = iss;
        *snd_wnd = 0;
        *max_snd_wnd = 0;
        *snd_wl1 = SeqNumber(0);
        *snd_wl2 = SeqNumber(0);
        *snd_buf_seq = iss + 1;
        *irs = SeqNumber(0);
        *rcv_nxt = SeqNumber(0);
        *rcv_adv = SeqNumber(0);
        *last_ack_sent = SeqNumber(0);
        *snd_mss = 536;
        *wscales = 0;
        *ts_recent = 0;
        *ts_offset = iss.0.rotate_left(13);
        *rtt = RttEstimator::new(cfg.rto_initial);
        *rtt_seq = iss;
        *rtt_time_us = now.as_micros() as u32;
        *cc = NewReno::new(536, cfg.initial_cwnd_segments).starting_at(iss);
        *backoff = 0;
        *retries = 0;
        *keepalive_probes = 0;
        *segs_unacked = 0;
        *challenge_count = 0;
        *challenge_second = 0;
        *invalid_ack_ms = (now.as_millis() as u16).wrapping_sub(1 << 15);
        *rto_at = Instant::NEVER;
        *delack_at = Instant::NEVER;
        *close_at = Instant::NEVER;
        for r in [send_buf, recv_buf] {
            if r.allocated() > KEEP {
                *r = Ring::new();
            } else {
                r.clear();
            }
        }
        *reorder = None;
    }

    /// A connection from a valid SYN cookie (RFC 4987): the ACK `seg` completes
    /// a handshake we kept no state for. `iss` is the cookie, `mss` what it
    /// encoded. Call `handle_segment` with the same `seg` next: it establishes
    /// the connection and takes any data it carries.
    pub fn from_syn_cookie(
        cfg: &TcpConfig,
        ends: impl Into<Ends>,
        iss: SeqNumber,
        seg: &TcpRepr<'_>,
        mss: u16,
        now: Instant,
    ) -> Connection {
        let mut c = Connection::new(cfg, ends.into(), State::SynReceived, iss, now);
        c.flags |= flag::PASSIVE;
        c.irs = seg.seq_number - 1;
        c.rcv_nxt = seg.seq_number;
        c.rcv_adv = c.rcv_nxt + (cfg.recv_buffer.min(65535) as u32);
        c.last_ack_sent = c.rcv_nxt; // the cookie SYN-ACK's
        c.snd_nxt = iss + 1;
        c.snd_max = iss + 1;
        c.snd_mss = mss.min(cfg.mss);
        c.cc.set_mss(u32::from(c.eff_mss()), cfg.initial_cwnd_segments);
        c.snd_wnd = u32::from(seg.window_len);
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = seg.seq_number;
        c.snd_wl2 = iss;
        c.set_rto(after_us(now, c.rtt.rto_us()));
        c
    }

    // ---- getters ----

    pub fn state(&self) -> State {
        self.state
    }
    /// Its ports and address sum (the owner keeps the addresses).
    pub fn ends(&self) -> Ends {
        self.ends
    }
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }
    pub fn snd_una(&self) -> SeqNumber {
        self.snd_una
    }
    pub fn snd_nxt(&self) -> SeqNumber {
        self.snd_nxt
    }
    pub fn rcv_nxt(&self) -> SeqNumber {
        self.rcv_nxt
    }
    pub fn iss(&self) -> SeqNumber {
        self.iss
    }
    pub fn irs(&self) -> SeqNumber {
        self.irs
    }
    pub fn ts_recent(&self) -> Option<u32> {
        (self.flags & flag::TS_OK != 0).then_some(self.ts_recent)
    }
    pub fn snd_wnd(&self) -> u32 {
        self.snd_wnd
    }
    pub fn snd_mss(&self) -> u16 {
        self.snd_mss
    }
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd
    }
    pub fn rto(&self) -> std::time::Duration {
        self.rtt.rto()
    }
    pub fn srtt(&self) -> Option<std::time::Duration> {
        self.rtt.srtt()
    }
    /// Bytes the application can read now.
    pub fn recv_available(&self) -> usize {
        self.recv_buf.len()
    }
    /// Bytes the application can still queue.
    pub fn send_capacity(&self, cfg: &TcpConfig) -> usize {
        self.send_buf.free(cfg.send_buffer)
    }
    /// Bytes queued and not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.send_buf.len()
    }
    /// Bytes of memory held now beside the control block (send and receive
    /// rings, loss and reordering state); 0 for an idle connection once
    /// `release_idle_buffers` has run.
    pub fn buffer_memory(&self) -> usize {
        let reorder = self
            .reorder
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<Reorder>());
        self.send_buf.allocated() + self.recv_buf.allocated() + reorder
    }
    /// Gives the loss and reordering state back once it holds nothing, and
    /// the send and receive buffers to the thread's pool if both are empty
    /// and nothing sits out of order: an idle connection then
    /// costs its control block only, and data arriving later takes buffers
    /// again. The shard calls it after driving a connection; one that is
    /// busy (a request in flight either way) keeps its buffers, so back-to-back
    /// requests do not cycle them through the pool. Nor does one opening
    /// (SYN-SENT, SYN-RECEIVED) or ending in LAST_ACK (both sides closed,
    /// only our FIN's ACK awaited): each lasts a handshake's or a FIN's
    /// retransmissions at most, and holds only what its slot kept from the
    /// connection before (`renew` keeps the smallest buffers, for the data a
    /// new connection soon has): giving them back at the SYN would only
    /// cycle them through the pool, two buffers each way per short connection.
    #[inline(always)]
    pub fn release_idle_buffers(&mut self) {
        if matches!(
            self.state,
            State::SynSent | State::SynReceived | State::LastAck
        ) {
            return;
        }
        if let Some(r) = &self.reorder {
            if !r.holds_nothing(self.flags) {
                return;
            }
            self.reorder = None;
        }
        if self.send_buf.is_empty() && self.recv_buf.is_empty() {
            self.send_buf.release_if_empty();
            self.recv_buf.release_if_empty();
        }
    }
    pub fn timestamps_enabled(&self) -> bool {
        self.flags & flag::TS_OK != 0
    }
    pub fn sack_enabled(&self) -> bool {
        self.flags & flag::SACK_OK != 0
    }
    pub fn window_scales(&self) -> (u8, u8) {
        (self.snd_wscale(), self.rcv_wscale())
    }
    pub fn peer_closed(&self) -> bool {
        self.flags & flag::PEER_FIN != 0
    }
    /// Offset added to our timestamp clock (RFC 7323 5.4).
    pub fn ts_offset(&self) -> u32 {
        self.ts_offset
    }
    /// Sets the offset added to our timestamp clock (RFC 7323 5.4). Call it
    /// before the first `poll_transmit`. Use one offset per pair of hosts
    /// (`TupleHasher::ts_offset`): timestamps then grow across connections,
    /// so a peer still in TIME_WAIT can accept a new SYN (RFC 6191), and the
    /// keyed offset hides our clock. The default is derived from the ISN.
    pub fn set_ts_offset(&mut self, offset: u32) {
        self.ts_offset = offset;
    }
    /// The window field we would send now (scaled).
    pub fn last_window_field(&self) -> u16 {
        let shown = self.rcv_adv.0.wrapping_sub(self.rcv_nxt.0);
        (shown >> self.rcv_wscale()).min(65535) as u16
    }
    /// Time of the 2MSL or FIN_WAIT_2 deadline, if armed.
    pub fn close_deadline(&self) -> Option<Instant> {
        let armed = matches!(self.state, State::TimeWait | State::FinWait2);
        (armed && self.close_at != Instant::NEVER).then_some(self.close_at)
    }

    // ---- application commands ----

    /// Queues data to send; returns how much fit in the send buffer.
    pub fn send(&mut self, cfg: &TcpConfig, data: &[u8]) -> Result<usize, CommandError> {
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
                if self.flags & flag::FIN_QUEUED == 0 => {}
            _ => return Err(CommandError::NotWritable),
        }
        let n = self.send_buf.push(data, cfg.send_buffer);
        if n < data.len() {
            self.flags |= flag::WANT_WRITE;
        }
        Ok(n)
    }

    /// The application says it will send nothing for `idle`: an ACK being
    /// delayed in the hope of riding on its data (RFC 1122 4.2.3.2) goes now
    /// if `idle` is longer than the delay, since nothing would ride on it
    /// (Linux's TCP_QUICKACK does this for a socket). The same one ACK, only
    /// sooner: the peer's retransmission timer stops sooner, and no timer is
    /// kept for it.
    #[inline]
    pub fn sending_nothing_for(&mut self, cfg: &TcpConfig, idle: std::time::Duration) {
        if self.delack_at != Instant::NEVER && idle > cfg.delayed_ack {
            self.delack_at = Instant::NEVER;
            self.flags |= flag::ACK_NOW;
        }
    }

    /// `send` of `data` whose `checksum::partial_sum` is `sum` (bytes an
    /// application sends again and again, summed once). When all of it is
    /// queued, `queued` says where it went in the sequence space, with its
    /// sum: given to `poll_transmit_summed`, the segment that carries
    /// exactly those bytes needs no pass over them for its checksum.
    #[inline]
    pub fn send_summed(
        &mut self,
        cfg: &TcpConfig,
        data: &[u8],
        sum: u16,
        queued: &mut QueuedSum,
    ) -> Result<usize, CommandError> {
        let seq = self.data_end();
        let n = self.send(cfg, data)?;
        if let (true, Ok(len)) = (n == data.len(), u32::try_from(n)) {
            *queued = QueuedSum { seq, len, sum };
        }
        Ok(n)
    }

    /// The sequence number after the last byte queued to send.
    #[inline(always)]
    fn data_end(&self) -> SeqNumber {
        self.snd_buf_seq + self.send_buf.len() as u32
    }

    /// Asks for `Event::Writable` when the send buffer has room again (an
    /// application that checked `send_capacity` instead of calling `send`).
    pub fn want_writable(&mut self) {
        self.flags |= flag::WANT_WRITE;
    }

    /// Reads buffered in-order data.
    pub fn recv(&mut self, cfg: &TcpConfig, out: &mut [u8]) -> usize {
        let before = self.advertisable_window(cfg);
        let n = self.recv_buf.pop(out);
        if n > 0 {
            self.window_reopened(cfg, before);
        }
        n
    }

    /// `recv` without the copy: `f` is given every buffered in-order byte
    /// where it lies, and they are then consumed; `None`, and no call, when
    /// there are none. Bytes that wrap around the end of the receive ring
    /// are copied into `scratch` first (as many as fit) and given from there.
    #[inline(always)]
    pub fn recv_in_place<R>(
        &mut self,
        cfg: &TcpConfig,
        scratch: &mut [u8],
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        let front = self.recv_buf.front();
        let n = front.len();
        if n == 0 {
            return None;
        }
        if n < self.recv_buf.len() {
            return self.recv_wrapped(cfg, scratch, f);
        }
        let before = self.advertisable_window(cfg);
        let r = f(front);
        if self.has_holes() {
            self.recv_buf.consume(n);
        } else {
            // Nothing placed past them either: the next bytes go to the
            // front of the ring again, so a request or response at a time
            // never wraps.
            self.recv_buf.clear();
        }
        self.window_reopened(cfg, before);
        Some(r)
    }

    /// `recv_in_place` of bytes that wrap around the end of the ring.
    #[cold]
    #[inline(never)]
    fn recv_wrapped<R>(
        &mut self,
        cfg: &TcpConfig,
        scratch: &mut [u8],
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        let n = self.recv(cfg, scratch);
        (n > 0).then(|| f(&scratch[..n]))
    }

    /// After the application read some bytes (the window we could offer was
    /// `before`): tell the peer when the window reopens meaningfully (RFC
    /// 1122 4.2.3.3).
    #[inline(always)]
    fn window_reopened(&mut self, cfg: &TcpConfig, before: u32) {
        if self.state.is_synchronized() {
            let after = self.advertisable_window(cfg);
            let shown = self.rcv_adv.0.wrapping_sub(self.rcv_nxt.0);
            if after > shown
                && after - shown >= (cfg.recv_buffer as u32 / 2).min(2 * u32::from(self.snd_mss))
                || (before == 0 && after > 0)
            {
                self.flags |= flag::ACK_NOW;
            }
        }
    }

    /// Half-close (RFC 9293 3.10.4 CLOSE): FIN after the queued data; we can still receive.
    pub fn shutdown(&mut self) {
        match self.state {
            State::Listen | State::SynSent => self.enter_closed(CloseReason::Normal),
            // RFC 9293 3.10.4: in SYN-RECEIVED the FIN waits until ESTABLISHED.
            State::SynReceived => self.flags |= flag::FIN_QUEUED,
            State::Established => {
                self.flags |= flag::FIN_QUEUED;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.flags |= flag::FIN_QUEUED;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Full close: like `shutdown`, and the application reads no more. New data
    /// that still arrives resets the connection, or with
    /// `DataAfterClose::Discard` is acknowledged and discarded (counted);
    /// FIN_WAIT_2 then gives up after `fin_wait_2_timeout`. Unread data at close means the
    /// application lost it: the connection is reset instead (RFC 2525 2.17).
    #[inline(always)]
    pub fn close(&mut self, now: Instant, cfg: &TcpConfig) {
        if !self.recv_buf.is_empty() && self.state.is_synchronized() {
            self.abort();
            return;
        }
        self.flags |= flag::APP_CLOSED;
        self.shutdown();
        if self.state == State::FinWait2 {
            self.arm_fin_wait_2(now, cfg);
        }
    }

    /// Abort (RFC 9293 3.10.5): RST to the peer if synchronized, then CLOSED.
    pub fn abort(&mut self) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.flags |= flag::RST_PENDING;
        }
        self.enter_closed(CloseReason::Aborted);
    }

    // ---- outputs ----

    /// Whether `poll_event` has an event to give.
    #[inline]
    pub fn has_event(&self) -> bool {
        self.events != 0
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events == 0 {
            return None;
        }
        // The lowest bit first: connected, readable, writable, peer closed, closed.
        let bit = self.events & self.events.wrapping_neg();
        self.events &= !bit;
        match bit {
            ev::CONNECTED => Some(Event::Connected),
            ev::READABLE => Some(Event::Readable),
            ev::WRITABLE => Some(Event::Writable),
            ev::PEER_CLOSED => Some(Event::PeerClosed),
            _ => self.close_reason.map(Event::Closed),
        }
    }

    /// The earliest armed timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.rto_at.min(self.delack_at).min(self.close_at);
        (t != Instant::NEVER).then_some(t)
    }

    // ---- timers ----
    //
    // Three deadlines carry five timers. `rto_at` is the retransmit timer, or
    // the persist timer when `flag::PERSIST` is set (persist runs only with
    // nothing in flight, when there is nothing to retransmit). `close_at` is
    // the keepalive timer in ESTABLISHED and CLOSE_WAIT, FIN_WAIT_2's timeout,
    // and TIME_WAIT's 2MSL: the state says which. `delack_at` is the delayed ACK.

    /// Arms (or with `Instant::NEVER` stops) the retransmit timer.
    fn set_rto(&mut self, at: Instant) {
        self.rto_at = at;
        self.flags &= !flag::PERSIST;
    }

    fn keepalive_armed(&self) -> bool {
        matches!(self.state, State::Established | State::CloseWait)
            && self.close_at != Instant::NEVER
    }

    /// Runs every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant, cfg: &TcpConfig, st: &mut TcpStats) {
        if self.close_at <= now {
            self.close_at = Instant::NEVER;
            match self.state {
                State::TimeWait => self.enter_closed(CloseReason::Normal),
                State::FinWait2 => self.enter_closed(CloseReason::FinWait2Timeout),
                State::Established | State::CloseWait => {
                    if let Some(k) = cfg.keepalive {
                        if self.keepalive_probes >= k.count {
                            self.enter_closed(CloseReason::TimedOutKeepalive);
                        } else {
                            self.keepalive_probes += 1;
                            self.flags |= flag::KEEPALIVE_PROBE;
                            self.close_at = now + k.interval;
                        }
                    }
                }
                _ => {}
            }
        }
        if self.rto_at <= now {
            if self.flags & flag::PERSIST != 0 {
                self.on_persist(now, cfg);
            } else {
                self.on_rto(now, cfg, st);
            }
        }
        if self.delack_at <= now {
            self.delack_at = Instant::NEVER;
            self.flags |= flag::ACK_NOW;
        }
    }

    fn on_rto(&mut self, now: Instant, cfg: &TcpConfig, st: &mut TcpStats) {
        self.set_rto(Instant::NEVER);
        let in_handshake = matches!(self.state, State::SynSent | State::SynReceived);
        let limit = if in_handshake {
            cfg.syn_retries
        } else {
            cfg.max_retries
        };
        if self.snd_una == self.snd_max && !in_handshake {
            return; // nothing outstanding
        }
        if self.snd_wnd == 0 && !in_handshake {
            // The peer shut its window on data in flight: nothing can be
            // retransmitted into it, so probe it instead (RFC 9293 3.8.6.1).
            return self.on_persist(now, cfg);
        }
        if self.retries >= limit {
            let reason = if in_handshake {
                CloseReason::TimedOutSyn
            } else {
                CloseReason::TimedOutRetransmit
            };
            self.enter_closed(reason);
            return;
        }
        self.retries += 1;
        self.backoff = self.backoff.saturating_add(1);
        st.rto_expirations += 1;
        let flight = self.snd_max.0.wrapping_sub(self.snd_una.0);
        self.cc
            .on_rto(flight, u32::from(self.eff_mss()), self.snd_max);
        // RFC 2018 8: the receiver may have reneged on what it SACKed; after
        // a timeout retransmit from SND.UNA as if nothing had been SACKed.
        if let Some(r) = &mut self.reorder {
            r.sacked = [(SeqNumber(0), SeqNumber(0)); 3];
        }
        // Go back to the first unacknowledged byte (the SYN in the handshake);
        // Karn: the retransmission is not timed.
        self.snd_nxt = self.snd_una;
        self.flags &= !flag::TIMING;
        self.set_rto(after_us(now, self.rtt.rto_backed_off_us(self.backoff, cfg)));
    }

    /// The persist timer fired: probe the window (RFC 9293 3.8.6.1) from the
    /// first unacknowledged byte, and back off like the RTO (capped at
    /// `rto_max`). Probes the peer answers do not count (RFC 1122 4.2.2.17: a
    /// receiver that keeps ACKing may keep its window shut forever); after
    /// `max_retries` unanswered ones the peer is taken for dead.
    fn on_persist(&mut self, now: Instant, cfg: &TcpConfig) {
        if self.retries >= cfg.max_retries {
            self.enter_closed(CloseReason::TimedOutRetransmit);
            return;
        }
        self.retries += 1;
        self.rto_at = after_us(now, self.rtt.rto_backed_off_us(self.backoff, cfg));
        self.flags |= flag::PERSIST | flag::PROBE;
        self.backoff = self.backoff.saturating_add(1);
        self.snd_nxt = self.snd_una;
    }

    fn arm_fin_wait_2(&mut self, now: Instant, cfg: &TcpConfig) {
        self.close_at = Instant::NEVER; // the keepalive, if it ran
        if let Some(t) = cfg.fin_wait_2_timeout {
            if self.flags & flag::APP_CLOSED != 0 {
                self.close_at = now + t;
            }
        }
    }

    fn arm_keepalive(&mut self, now: Instant, cfg: &TcpConfig) {
        if let Some(k) = cfg.keepalive {
            self.close_at = now + k.idle;
            self.keepalive_probes = 0;
        }
    }

    fn enter_closed(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        if self.close_reason.is_none() {
            self.close_reason = Some(reason);
            self.events |= ev::CLOSED;
        }
        self.set_rto(Instant::NEVER);
        self.delack_at = Instant::NEVER;
        self.close_at = Instant::NEVER;
        self.flags &=
            !(flag::ACK_NOW | flag::PROBE | flag::KEEPALIVE_PROBE | flag::RETRANSMIT_FIRST);
    }

    fn enter_time_wait(&mut self, now: Instant, cfg: &TcpConfig) {
        self.state = State::TimeWait;
        self.set_rto(Instant::NEVER);
        self.close_at = now + cfg.time_wait();
    }

    // ---- input ----

    /// Window we could advertise now: free receive buffer space.
    fn advertisable_window(&self, cfg: &TcpConfig) -> u32 {
        self.recv_buf.free(cfg.recv_buffer) as u32
    }

    /// The window to put in the next segment (RFC 1122 4.2.3.3 receiver SWS
    /// avoidance: move the right edge only by a useful amount, never left).
    fn window_to_advertise(&mut self, cfg: &TcpConfig) -> u32 {
        let shown = self.rcv_adv.0.wrapping_sub(self.rcv_nxt.0) as i32;
        let shown = shown.max(0) as u32;
        let free = self.advertisable_window(cfg);
        let cap = cfg.recv_buffer as u32;
        let threshold = (cap / 2).min(u32::from(self.snd_mss));
        let wnd = if free >= shown + threshold || free == cap {
            free
        } else {
            shown.min(free.max(shown))
        };
        let max = 65535u32 << self.rcv_wscale();
        let wnd = wnd.min(max);
        // Round down to what the scaled field can say, then remember the edge.
        let wnd = (wnd >> self.rcv_wscale()) << self.rcv_wscale();
        let edge = self.rcv_nxt + wnd;
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        wnd
    }

    /// Time since the timed segment (or SYN) went out, in microseconds.
    fn since_timed(&self, now: Instant) -> u32 {
        (now.as_micros() as u32).wrapping_sub(self.rtt_time_us)
    }

    /// The window we last advertised is zero: the right edge is at RCV.NXT.
    fn advertised_zero_window(&self) -> bool {
        self.rcv_adv == self.rcv_nxt
    }

    fn tsval(&self, now: Instant) -> u32 {
        // 1 ms per tick (RFC 7323 5.4: between 1 ms and 1 s).
        (now.as_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// `handle_segment` without header prediction: every segment through the
    /// general path. The engine's scenario tests run it beside
    /// `handle_segment` on every segment they deliver and check that both
    /// leave the same connection, counters and verdict.
    pub fn handle_segment_unpredicted(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
    ) -> SegmentVerdict {
        st.segs_in += 1;
        self.segment_general(now, cfg, st, seg)
    }

    /// Processes one segment addressed to this connection (RFC 9293 3.10.7).
    /// Always inlined: its one call in the shard per family (`Stack<A>`,
    /// two of them in a binary) keeps it in line, as a single caller did.
    #[inline(always)]
    pub fn handle_segment(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
    ) -> SegmentVerdict {
        st.segs_in += 1;
        if self.take_predicted(now, cfg, st, seg) {
            return SegmentVerdict::Accepted;
        }
        self.handle_segment_general(now, cfg, st, seg)
    }

    /// `handle_segment` in two halves, for a caller with less to do after
    /// a predicted segment (the shard: no verdict to look at, no RST to
    /// count). First the header predictions: true when the segment took
    /// one (accepted, counted as predicted; `segs_in` is the caller's to
    /// count). A segment they take carries no RST and no SYN.
    #[inline(always)]
    pub fn take_predicted(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
    ) -> bool {
        if let Some(ack) = self.predicted(cfg, seg) {
            st.segs_predicted += 1;
            self.segment_predicted(now, cfg, seg, ack);
            return true;
        }
        if let Some(ack) = self.edge_predicted(cfg, seg) {
            st.segs_predicted += 1;
            self.segment_edge_predicted(now, cfg, seg, ack);
            return true;
        }
        false
    }

    /// The second half: a segment `take_predicted` did not take, by state.
    #[inline(always)]
    pub fn handle_segment_general(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
    ) -> SegmentVerdict {
        self.segment_general(now, cfg, st, seg)
    }

    /// Every segment but a predicted one, by state (RFC 9293 3.10.7).
    #[inline(always)]
    fn segment_general(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
    ) -> SegmentVerdict {
        match self.state {
            // Closed a moment ago (its owner removes it after this batch of
            // segments): answered as CLOSED is (RFC 9293 3.10.7.1), an RST
            // for anything but an RST.
            State::Closed if seg.control == TcpControl::Rst => SegmentVerdict::Dropped,
            State::Closed => SegmentVerdict::RstReply,
            State::Listen => self.segment_in_listen(now, cfg, seg),
            State::SynSent => self.segment_in_syn_sent(now, cfg, st, seg),
            _ => self.segment_synchronized(now, cfg, st, seg),
        }
    }

    /// Takes the peer's SYN: its ISN, options, and its (never scaled, RFC 7323
    /// 2.2) window.
    #[inline(always)]
    fn take_syn(&mut self, cfg: &TcpConfig, seg: &TcpRepr<'_>) {
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1;
        // The right edge we offered: an active opener's SYN offered its
        // window (never scaled); a passive one offers it in its SYN-ACK.
        self.rcv_adv = self.rcv_nxt
            + if self.state == State::SynSent {
                cfg.recv_buffer.min(65535) as u32
            } else {
                0
            };
        self.last_ack_sent = self.rcv_nxt; // what our SYN-ACK or ACK will say
        self.take_syn_options(cfg, seg);
        self.snd_wnd = u32::from(seg.window_len);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq_number;
        self.snd_wl2 = self.iss;
    }

    /// Our SYN is acknowledged (SYN-SENT or SYN-RECEIVED): ESTABLISHED. `una` is
    /// the new SND.UNA. The handshake is timed (Karn: only if the SYN went once).
    #[inline(always)]
    fn enter_established(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &TcpRepr<'_>,
        una: SeqNumber,
    ) {
        self.state = State::Established;
        self.flags |= flag::SYN_ACKED;
        self.events |= ev::CONNECTED;
        if self.retries == 0 {
            self.rtt.sample_us(self.since_timed(now), cfg);
        } else {
            // RFC 6298 5.7: the SYN was retransmitted (no sample): 3 s at least.
            self.rtt.at_least(std::time::Duration::from_secs(3), cfg);
        }
        self.retries = 0;
        self.backoff = 0;
        self.set_rto(Instant::NEVER);
        self.snd_una = una;
        // RFC 7323 2.2: the window of a SYN-ACK is never scaled.
        self.snd_wnd = u32::from(seg.window_len)
            << if seg.control == TcpControl::Syn {
                0
            } else {
                self.snd_wscale()
            };
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = seg.seq_number;
        self.snd_wl2 = una;
        self.arm_keepalive(now, cfg);
    }

    /// Negotiated options from a SYN (RFC 9293 3.7.1, RFC 7323, RFC 2018).
    fn take_syn_options(&mut self, cfg: &TcpConfig, seg: &TcpRepr<'_>) {
        let peer_mss = seg.max_seg_size.unwrap_or(536).max(64);
        self.snd_mss = peer_mss.min(cfg.mss);
        match (cfg.window_scale, seg.window_scale) {
            (true, Some(s)) => {
                self.wscales = (s.min(14) << 4) | cfg.rcv_wscale().min(14);
            }
            _ => self.wscales = 0,
        }
        if cfg.timestamps {
            if let Some(ts) = seg.timestamp {
                self.flags |= flag::TS_OK;
                self.ts_recent = ts.tsval;
            }
        }
        if cfg.sack && seg.sack_permitted {
            self.flags |= flag::SACK_OK;
        }
        self.cc
            .set_mss(u32::from(self.eff_mss()), cfg.initial_cwnd_segments);
    }

    /// Payload bytes per segment: the MSS minus the options every segment carries.
    fn eff_mss(&self) -> u16 {
        let opts = if self.flags & flag::TS_OK != 0 { 12 } else { 0 };
        self.snd_mss.saturating_sub(opts).max(1)
    }

    /// Payload bytes for the next data segment: `eff_mss` less the SACK
    /// option it will carry while our receive queue has holes (RFC 9293
    /// 3.7.1, RFC 6691: every option comes out of the MSS). The blocks are
    /// those `emit_with_payload` writes: up to 4, or 3 beside timestamps.
    fn seg_mss(&self) -> u32 {
        let mss = u32::from(self.eff_mss());
        let Some(r) = self.reorder.as_ref().filter(|r| !r.assembler.is_empty()) else {
            return mss;
        };
        if self.flags & flag::SACK_OK == 0 {
            return mss;
        }
        let room = if self.flags & flag::TS_OK != 0 { 3 } else { 4 };
        let blocks = r.assembler.ranges().count().min(room) as u32;
        mss.saturating_sub(4 + 8 * blocks).max(1)
    }

    // RFC 9293 3.10.7.2: LISTEN.
    fn segment_in_listen(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &TcpRepr<'_>,
    ) -> SegmentVerdict {
        // First: an RST is ignored.
        if seg.control == TcpControl::Rst {
            return SegmentVerdict::Dropped;
        }
        // Second: an ACK is answered with <SEQ=SEG.ACK><CTL=RST> (the owner's job:
        // a listener has no peer; see `rst_reply`).
        if seg.ack_number.is_some() {
            return SegmentVerdict::Dropped;
        }
        // Third: a SYN.
        if seg.control != TcpControl::Syn {
            return SegmentVerdict::Dropped;
        }
        self.take_syn(cfg, seg);
        self.state = State::SynReceived;
        self.set_rto(after_us(now, self.rtt.rto_us()));
        SegmentVerdict::Accepted
    }

    /// Binds the remote end of a connection from `listen` (the owner calls
    /// this once, with the SYN's source, before `handle_segment`): its
    /// address joins the local one in the checksum's sum.
    pub fn set_remote<S: FamilySocketAddr>(&mut self, remote: S) {
        if self.state == State::Listen {
            self.ends.remote_port = remote.port();
            self.ends.addr_sum = add_sums(self.ends.addr_sum, remote.host().address_sum());
        }
    }

    // RFC 9293 3.10.7.3: SYN-SENT.
    fn segment_in_syn_sent(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
    ) -> SegmentVerdict {
        // First: check the ACK.
        let mut ack_ok = false;
        if let Some(ack) = seg.ack_number {
            if ack <= self.iss || ack > self.snd_max {
                // Unacceptable: <SEQ=SEG.ACK><CTL=RST> unless it is an RST (the owner
                // sends it; see `rst_reply`). A peer still in TIME_WAIT for this
                // 4-tuple answers our SYN so, and the RST frees it (RFC 9293 3.10.7.3).
                if seg.control == TcpControl::Rst {
                    return SegmentVerdict::Dropped;
                }
                return SegmentVerdict::RstReply;
            }
            ack_ok = ack > self.snd_una;
        }
        // Second: RST. Acceptable only with an acceptable ACK (RFC 5961 3.2 agrees).
        if seg.control == TcpControl::Rst {
            if ack_ok {
                self.enter_closed(CloseReason::Refused);
                return SegmentVerdict::Reset;
            }
            return SegmentVerdict::Dropped;
        }
        // Fourth: SYN.
        if seg.control != TcpControl::Syn {
            return SegmentVerdict::Dropped;
        }
        self.take_syn(cfg, seg);
        if let Some(ack) = seg.ack_number {
            // Our SYN is acknowledged: ESTABLISHED.
            self.enter_established(now, cfg, seg, ack);
            self.flags |= flag::ACK_NOW;
            // Text on the SYN-ACK goes on at the sixth step (RFC 9293
            // 3.10.7.3): queued like any segment's, after the SYN.
            if !seg.payload.is_empty() {
                let text = TcpRepr {
                    control: TcpControl::None,
                    seq_number: seg.seq_number + 1,
                    ..*seg
                };
                self.process_text_and_fin(now, cfg, st, &text);
            }
        } else {
            // Simultaneous open (RFC 9293 3.5, figure 8): SYN-RECEIVED, send SYN,ACK.
            self.state = State::SynReceived;
            self.snd_nxt = self.iss; // resend our SYN, now with an ACK
            self.set_rto(after_us(now, self.rtt.rto_us()));
        }
        SegmentVerdict::Accepted
    }

    /// RFC 9293 3.10.7.4, first check: is the segment in the receive window?
    fn acceptable(&self, seq: SeqNumber, seg_len: u32, wnd: u32) -> bool {
        match (seg_len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_window(self.rcv_nxt, wnd),
            (_, 0) => false,
            (_, _) => {
                seq.in_window(self.rcv_nxt, wnd)
                    || (seq + (seg_len - 1)).in_window(self.rcv_nxt, wnd)
            }
        }
    }

    /// RFC 5961 challenge ACK, rate limited (section 7) to
    /// `challenge_acks_per_sec` per connection.
    fn challenge_ack(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
    ) -> SegmentVerdict {
        // Seconds modulo 2^8: a count from exactly 256 s ago could be taken
        // for this second's, which only delays the next challenge ACK (one
        // byte each keeps the control block at 256 bytes).
        let second = (now.as_millis() / 1000) as u8;
        if second != self.challenge_second {
            self.challenge_second = second;
            self.challenge_count = 0;
        }
        if u16::from(self.challenge_count) >= cfg.challenge_acks_per_sec.min(255) {
            st.challenge_acks_limited += 1;
            return SegmentVerdict::Dropped;
        }
        self.challenge_count += 1;
        st.challenge_acks += 1;
        self.flags |= flag::ACK_NOW;
        SegmentVerdict::ChallengeAck
    }

    /// The ACK RFC 9293 3.10.7.4 sends for an unacceptable (or PAWS-failed)
    /// segment, at most once per `invalid_ack_ratelimit` unless the segment
    /// carries data or a FIN (Linux's `tcp_oow_rate_limited`: those are not
    /// ACK loops, and a retransmitted FIN in TIME_WAIT needs its ACK).
    fn ack_invalid(&mut self, now: Instant, cfg: &TcpConfig, st: &mut TcpStats, data: bool) {
        // Milliseconds modulo 2^16 (a limit up to 65 s): an ACK exactly a
        // multiple of 65.5 s after the last can be taken for a recent one,
        // which only skips that ACK.
        let ms = now.as_millis() as u16;
        if !data {
            let limit = cfg.invalid_ack_ratelimit.as_millis().min(u16::MAX.into()) as u16;
            if ms.wrapping_sub(self.invalid_ack_ms) < limit {
                st.invalid_acks_limited += 1;
                return;
            }
            self.invalid_ack_ms = ms;
        }
        self.flags |= flag::ACK_NOW;
    }

    /// An ICMP "fragmentation needed" (RFC 1191) for this connection, which
    /// quoted our segment `seq` and names the next hop's `mtu`. Taken only if
    /// `seq` is sent and unacknowledged (SND.UNA <= seq < SND.NXT, RFC 5927
    /// 4.1) in a synchronized state: the MSS drops to fit `mtu` (at least
    /// `MIN_PMTU`) and the flight is sent again in the smaller size (RFC 1191
    /// 6.5; Karn: not timed). Returns whether it was taken.
    pub fn path_mtu_reduced(&mut self, mtu: u16, seq: SeqNumber) -> bool {
        let flight = self.snd_max.0.wrapping_sub(self.snd_una.0);
        if !self.state.is_synchronized()
            || self.state == State::TimeWait
            // RFC 5927 4.1: SND.UNA..SND.NXT, both included (as Linux):
            // with nothing in flight, a quoted pure ACK at SND.NXT counts.
            || seq.0.wrapping_sub(self.snd_una.0) > flight
        {
            return false;
        }
        let mss = mtu.max(MIN_PMTU) - 40; // IPv4 and TCP headers
        if mss < self.snd_mss {
            self.snd_mss = mss;
            self.snd_nxt = self.snd_una;
            self.flags &= !flag::TIMING;
        }
        true
    }

    // RFC 9293 3.10.7.4: every other state.
    fn segment_synchronized(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
    ) -> SegmentVerdict {
        // RCV.WND: what we advertised; data past its edge is taken into room
        // we have, except when we advertised nothing (RFC 9293 3.10.7.4: with
        // RCV.WND zero no segment with data is acceptable; a zero-window
        // probe is refused and ACKed, as Linux does).
        let rcv_wnd = if self.advertised_zero_window() {
            0
        } else {
            self.rcv_adv
                .0
                .wrapping_sub(self.rcv_nxt.0)
                .max(self.advertisable_window(cfg))
        };
        let is_rst = seg.control == TcpControl::Rst;

        // A retransmitted SYN while our SYN-ACK is unanswered: send the SYN-ACK again.
        if self.state == State::SynReceived
            && seg.control == TcpControl::Syn
            && seg.seq_number == self.irs
            && seg.ack_number.is_none()
        {
            self.snd_nxt = self.iss;
            return SegmentVerdict::Accepted;
        }
        // Simultaneous open (RFC 9293 figure 8, line 6): the peer's SYN,ACK repeats
        // the SYN we already took; what is new in it is the ACK. Trim the SYN.
        let trimmed;
        let syn_ack = self.state == State::SynReceived
            && seg.control == TcpControl::Syn
            && seg.seq_number == self.irs
            && seg.ack_number.is_some();
        let max_snd_wnd_before = self.max_snd_wnd;
        let seg = if syn_ack {
            trimmed = TcpRepr {
                control: TcpControl::None,
                seq_number: seg.seq_number + 1,
                ..*seg
            };
            &trimmed
        } else {
            seg
        };
        let seg_len = seg.segment_len() as u32;

        // RFC 7323 5.3 PAWS: a timestamp older than ts_recent is a stale duplicate.
        if self.flags & flag::TS_OK != 0 && !is_rst {
            if let Some(ts) = seg.timestamp {
                if (ts.tsval.wrapping_sub(self.ts_recent) as i32) < 0 {
                    st.paws_drops += 1;
                    self.ack_invalid(now, cfg, st, seg_len != 0 && seg.control != TcpControl::Syn);
                    return SegmentVerdict::Dropped;
                }
            }
        }

        // First: sequence number check.
        let mut acceptable = self.acceptable(seg.seq_number, seg_len, rcv_wnd);
        // With a zero window, still take ACKs and RSTs at exactly RCV.NXT.
        let zero_window_allowance = !acceptable && rcv_wnd == 0 && seg.seq_number == self.rcv_nxt;
        if zero_window_allowance {
            acceptable = true;
        }
        if !acceptable {
            st.out_of_window += 1;
            if !is_rst {
                // A retransmitted FIN in TIME_WAIT (it ends just at RCV.NXT):
                // re-ACK and restart 2MSL (RFC 9293 3.10.7.4). Any other FIN
                // out of the window is only ACKed.
                if self.state == State::TimeWait
                    && seg.control == TcpControl::Fin
                    && seg.seq_number + seg_len == self.rcv_nxt
                {
                    self.close_at = now + cfg.time_wait();
                }
                self.ack_invalid(now, cfg, st, seg_len != 0 && seg.control != TcpControl::Syn);
            }
            return SegmentVerdict::Dropped;
        }

        // Second: RST (RFC 5961 3.2: exact match resets, in-window challenges).
        if is_rst {
            if self.state == State::TimeWait {
                // RFC 1337: ignore RST in TIME_WAIT (TIME-WAIT assassination).
                return SegmentVerdict::Dropped;
            }
            if seg.seq_number != self.rcv_nxt {
                return self.challenge_ack(now, cfg, st);
            }
            let reason = match self.state {
                State::SynReceived if self.flags & flag::PASSIVE == 0 => CloseReason::Refused,
                State::Closing | State::LastAck => CloseReason::Normal,
                _ => CloseReason::ResetByPeer,
            };
            self.enter_closed(reason);
            return SegmentVerdict::Reset;
        }

        // Fourth: SYN in a synchronized state (RFC 5961 4.2): challenge ACK.
        if seg.control == TcpControl::Syn {
            return self.challenge_ack(now, cfg, st);
        }

        // Fifth: the ACK field.
        let Some(ack) = seg.ack_number else {
            return SegmentVerdict::Dropped;
        };

        // RFC 7323 4.3: remember the timestamp to echo if the segment
        // covers Last.ACK.sent (not RCV.NXT: with an ACK delayed, the ACK
        // echoes the earliest segment it acknowledges).
        if self.flags & flag::TS_OK != 0 {
            if let Some(ts) = seg.timestamp {
                if seg.seq_number <= self.last_ack_sent {
                    self.ts_recent = ts.tsval;
                }
            }
        }

        if self.state == State::SynReceived {
            if ack > self.snd_una && ack <= self.snd_max {
                self.enter_established(now, cfg, seg, self.iss + 1);
                self.snd_wl2 = ack;
                // A FIN was queued before the handshake finished.
                if self.flags & flag::FIN_QUEUED != 0 {
                    self.state = State::FinWait1;
                }
            } else {
                // <SEQ=SEG.ACK><CTL=RST>: the owner sends it (`rst_reply`).
                return SegmentVerdict::RstReply;
            }
        }

        if ack > self.snd_max {
            // RFC 5961 5.2 / RFC 9293: an ACK for data never sent: ACK and drop.
            self.flags |= flag::ACK_NOW;
            return SegmentVerdict::Dropped;
        }
        if (self.snd_una.0.wrapping_sub(ack.0) as i32) > self.max_snd_wnd.max(1) as i32 {
            // RFC 5961 5.2: an ACK too far in the past is dropped with an ACK.
            self.flags |= flag::ACK_NOW;
            return SegmentVerdict::Dropped;
        }

        self.process_ack(now, cfg, st, seg, ack);
        if self.state == State::Closed {
            return SegmentVerdict::Accepted;
        }
        if syn_ack {
            // The trimmed SYN,ACK's window was taken as scaled: it is not
            // (RFC 7323 2.2).
            self.snd_wnd = u32::from(seg.window_len);
            self.max_snd_wnd = max_snd_wnd_before.max(self.snd_wnd);
        }

        // Keepalive: any segment from the peer shows it is alive.
        if self.keepalive_armed() {
            self.arm_keepalive(now, cfg);
        }

        // Seventh: segment text; eighth: FIN.
        self.process_text_and_fin(now, cfg, st, seg);
        SegmentVerdict::Accepted
    }

    /// Out-of-order data is waiting for a hole to fill.
    #[inline]
    fn has_holes(&self) -> bool {
        self.reorder
            .as_ref()
            .is_some_and(|r| !r.assembler.is_empty())
    }

    /// The loss and reordering state, taken now if there was none.
    fn reorder(&mut self) -> &mut Reorder {
        self.reorder.get_or_insert_with(Default::default)
    }

    fn fin_seq(&self) -> SeqNumber {
        self.snd_buf_seq + self.send_buf.len() as u32
    }

    fn fin_acked(&self) -> bool {
        self.flags & flag::FIN_QUEUED != 0 && self.snd_una > self.fin_seq()
    }

    /// Header prediction (as BSD and Linux do it): in ESTABLISHED, nearly
    /// every segment is the next one expected, with an ACK that moves
    /// SND.UNA on or with new data, and nothing else to look at. Such a
    /// segment passes every check of RFC 9293 3.10.7.4 (in the window, no
    /// RST, no SYN, an acceptable ACK, PAWS (RFC 7323 5.3) passed, no FIN)
    /// and only its effects remain: `segment_predicted` applies them through
    /// the same steps the general path takes. The close of a connection has
    /// its own prediction (`edge_predicted`); anything else (a duplicate
    /// or window-only ACK, SACK blocks, out-of-order data, a zero window, a
    /// persist timer, recovery) takes the general path.
    #[inline(always)]
    fn predicted(&self, cfg: &TcpConfig, seg: &TcpRepr<'_>) -> Option<SeqNumber> {
        const SLOW: u16 = flag::PERSIST
            | flag::FIN_PENDING
            | flag::APP_CLOSED
            | flag::FIN_QUEUED
            | flag::RETRANSMIT_FIRST;
        let fast = self.state == State::Established
            && seg.control == TcpControl::None
            && self.flags & SLOW == 0;
        if !fast {
            return None;
        }
        self.in_order_acceptable(cfg, seg)
    }

    /// Header prediction for a connection's edges (what `predicted` leaves
    /// of them): in SYN-RECEIVED the ACK of our SYN-ACK, perhaps with text
    /// (a request) and the peer's FIN; in ESTABLISHED the peer's FIN right
    /// after its text (a response and its close); once either side has
    /// closed (CLOSE-WAIT, FIN-WAIT-1/2, CLOSING, LAST-ACK), a segment
    /// without text: an ACK, perhaps of our FIN, perhaps with the peer's
    /// first FIN. The same checks pass as for `predicted`;
    /// `segment_edge_predicted` applies the effects, the state changes of
    /// the handshake, of our FIN acknowledged and of the peer's included.
    #[inline(always)]
    fn edge_predicted(&self, cfg: &TcpConfig, seg: &TcpRepr<'_>) -> Option<SeqNumber> {
        const SLOW: u16 = flag::PERSIST | flag::FIN_PENDING | flag::RETRANSMIT_FIRST;
        const CLOSED: u16 = flag::APP_CLOSED | flag::FIN_QUEUED | flag::PEER_FIN;
        let fin = seg.control == TcpControl::Fin;
        let state_ok = match self.state {
            // (With a FIN queued or the application gone, the general path:
            // the handshake goes on to FIN-WAIT-1.)
            // Only an ACK of the SYN-ACK: above SND.UNA (the ISS).
            State::SynReceived => {
                self.flags & CLOSED == 0
                    && matches!(seg.control, TcpControl::None | TcpControl::Fin)
                    && seg.ack_number.is_some_and(|a| a > self.snd_una)
            }
            State::Established => fin && self.flags & CLOSED == 0,
            State::CloseWait
            | State::FinWait1
            | State::FinWait2
            | State::Closing
            | State::LastAck => {
                seg.payload.is_empty()
                    && (seg.control == TcpControl::None
                        || (fin && self.flags & flag::PEER_FIN == 0))
            }
            _ => false,
        };
        if !state_ok || self.flags & SLOW != 0 {
            return None;
        }
        self.in_order_acceptable(cfg, seg)
    }

    /// What both predictions ask of a segment (beside its state and
    /// control): at RCV.NXT, no SACK blocks and no holes here, an ACK of new
    /// data (or, not a duplicate ACK, with text or a FIN), a timestamp PAWS
    /// passes, and all of its text fitting where we said it may go. The
    /// segment's ACK when it does (for the prediction's effects).
    #[inline(always)]
    fn in_order_acceptable(&self, cfg: &TcpConfig, seg: &TcpRepr<'_>) -> Option<SeqNumber> {
        if seg.seq_number != self.rcv_nxt || seg.sack_ranges[0].is_some() || self.has_holes() {
            return None;
        }
        let ack = seg.ack_number?;
        let len = seg.payload.len();
        // New data acknowledged, or (not a duplicate ACK) new text or a FIN.
        let ack_ok = (ack > self.snd_una && ack <= self.snd_max)
            || (ack == self.snd_una && (len > 0 || seg.control == TcpControl::Fin));
        if !ack_ok {
            return None;
        }
        if self.flags & flag::TS_OK != 0 {
            match seg.timestamp {
                Some(ts) if (ts.tsval.wrapping_sub(self.ts_recent) as i32) >= 0 => {}
                _ => return None,
            }
        }
        // All of the text fits where we said it may go.
        let fits = len == 0
            || (!self.advertised_zero_window() && len <= self.recv_buf.free(cfg.recv_buffer));
        fits.then_some(ack)
    }

    /// A segment `predicted` accepted (`ack` its ACK): the effects
    /// `segment_synchronized`, `process_ack` and `process_text_and_fin`
    /// would have, in their order.
    #[inline(never)]
    fn segment_predicted(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &TcpRepr<'_>,
        ack: SeqNumber,
    ) {
        self.predicted_ack(now, cfg, seg, ack);
        if self.keepalive_armed() {
            self.arm_keepalive(now, cfg);
        }
        if !seg.payload.is_empty() {
            self.take_in_order_text(now, cfg, seg.payload);
        }
    }

    /// A segment `edge_predicted` accepted (`ack` its ACK):
    /// `segment_predicted`'s effects, with those of the handshake
    /// completed, of our FIN acknowledged and of the peer's FIN.
    #[inline(never)]
    fn segment_edge_predicted(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &TcpRepr<'_>,
        ack: SeqNumber,
    ) {
        if self.state == State::SynReceived {
            // As `segment_synchronized` takes it: the timestamp to echo, our
            // SYN acknowledged (ESTABLISHED), then the ACK (nothing more to
            // acknowledge) and its window.
            if self.flags & flag::TS_OK != 0 {
                if let Some(ts) = seg.timestamp {
                    if seg.seq_number <= self.last_ack_sent {
                        self.ts_recent = ts.tsval;
                    }
                }
            }
            self.enter_established(now, cfg, seg, self.iss + 1);
            self.snd_wl2 = ack;
            self.update_window(seg, ack);
        } else {
            self.predicted_ack(now, cfg, seg, ack);
        }
        self.on_fin_acked(now, cfg);
        if self.state == State::Closed {
            return;
        }
        if self.keepalive_armed() {
            self.arm_keepalive(now, cfg);
        }
        if !seg.payload.is_empty() {
            self.take_in_order_text(now, cfg, seg.payload);
        }
        if seg.control == TcpControl::Fin {
            // Eighth: the FIN, right after the text (all of it taken).
            self.take_fin(now, cfg);
        }
    }

    /// A predicted segment's timestamp to echo, its ACK and its window.
    #[inline(always)]
    fn predicted_ack(&mut self, now: Instant, cfg: &TcpConfig, seg: &TcpRepr<'_>, ack: SeqNumber) {
        // RFC 7323 4.3 (see `segment_synchronized`).
        if self.flags & flag::TS_OK != 0 {
            if let Some(ts) = seg.timestamp {
                if seg.seq_number <= self.last_ack_sent {
                    self.ts_recent = ts.tsval;
                }
            }
        }
        if ack > self.snd_una {
            let flight = self.snd_max.0.wrapping_sub(self.snd_una.0);
            self.take_new_ack(now, cfg, ack, flight);
        }
        self.update_window(seg, ack);
    }

    /// SEG.ACK acknowledges new data (SND.UNA < SEG.ACK =< SND.MAX): the
    /// send buffer, the RTT sample, congestion control and the retransmit
    /// timer move on (RFC 9293 3.10.7.4 fifth, RFC 6298, RFC 5681).
    #[inline(always)]
    fn take_new_ack(&mut self, now: Instant, cfg: &TcpConfig, ack: SeqNumber, flight: u32) {
        let acked = ack - self.snd_una;
        // Data bytes leaving the send buffer (the FIN is not in it).
        let data_acked = (ack.0.wrapping_sub(self.snd_buf_seq.0) as usize).min(self.send_buf.len());
        if ack > self.snd_buf_seq {
            self.send_buf.consume(data_acked);
            self.snd_buf_seq += data_acked as u32;
        }
        // RTT sample (Karn: the timed segment was not retransmitted).
        if self.flags & flag::TIMING != 0 && ack > self.rtt_seq {
            self.rtt.sample_us(self.since_timed(now), cfg);
            self.flags &= !flag::TIMING;
        }
        self.snd_una = ack;
        if self.snd_nxt < self.snd_una {
            self.snd_nxt = self.snd_una;
        }
        self.retries = 0;
        self.backoff = 0;
        if self
            .cc
            .on_ack(ack, acked, flight, u32::from(self.eff_mss()))
            == AckAction::RetransmitFirst
        {
            self.flags |= flag::RETRANSMIT_FIRST;
        }
        self.set_rto(if self.snd_una == self.snd_max {
            Instant::NEVER
        } else {
            after_us(now, self.rtt.rto_us())
        });
        if self.flags & flag::WANT_WRITE != 0 && self.send_buf.free(cfg.send_buffer) > 0 {
            self.flags &= !flag::WANT_WRITE;
            self.events |= ev::WRITABLE;
        }
        // Forget SACK blocks now below the cumulative ACK.
        if let Some(r) = &mut self.reorder {
            for b in r.sacked.iter_mut() {
                if b.1 <= ack {
                    *b = (SeqNumber(0), SeqNumber(0));
                }
            }
        }
    }

    /// Window update (RFC 9293 3.10.7.4, fifth, ESTABLISHED): only from an
    /// ACK in SND.UNA =< SEG.ACK (SND.UNA has moved to it already), an old
    /// one says nothing of the window now; then the SND.WL1/WL2 rule.
    #[inline(always)]
    fn update_window(&mut self, seg: &TcpRepr<'_>, ack: SeqNumber) {
        if ack >= self.snd_una
            && (self.snd_wl1 < seg.seq_number
                || (self.snd_wl1 == seg.seq_number && self.snd_wl2 <= ack))
        {
            self.snd_wnd = u32::from(seg.window_len) << self.snd_wscale();
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = ack;
            if self.snd_wnd > 0 && self.flags & flag::PERSIST != 0 {
                // The window opened: stop probing. A probe byte not taken goes
                // again at once with what follows it.
                self.set_rto(Instant::NEVER);
                self.snd_nxt = self.snd_una;
            }
        }
    }

    /// Text at RCV.NXT that fits the buffer: kept, RCV.NXT moves (over any
    /// out-of-order data it joins), and the ACK goes now or delayed (RFC 1122
    /// 4.2.3.2: at least every second full segment; at once while holes are
    /// being filled, RFC 5681 4.2).
    #[inline(always)]
    fn take_in_order_text(&mut self, now: Instant, cfg: &TcpConfig, data: &[u8]) {
        let had_holes = self.has_holes();
        let at = self.recv_buf.len();
        self.recv_buf.write_at(at, data, cfg.recv_buffer);
        self.recv_buf.extend(data.len());
        let extra = match &mut self.reorder {
            Some(r) => r.assembler.advance(data.len() as u32),
            None => 0,
        };
        self.recv_buf.extend(extra as usize);
        self.rcv_nxt += data.len() as u32 + extra;
        if self.rcv_adv < self.rcv_nxt {
            self.rcv_adv = self.rcv_nxt;
        }
        self.events |= ev::READABLE;
        self.segs_unacked = self.segs_unacked.saturating_add(1);
        if had_holes || self.segs_unacked >= 2 || data.len() >= 2 * usize::from(self.snd_mss) {
            self.flags |= flag::ACK_NOW;
        } else if self.delack_at == Instant::NEVER {
            self.delack_at = now + cfg.delayed_ack;
        }
    }

    fn process_ack(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
        ack: SeqNumber,
    ) {
        let flight = self.snd_max.0.wrapping_sub(self.snd_una.0);
        if ack > self.snd_una {
            self.take_new_ack(now, cfg, ack, flight);
        } else if ack == self.snd_una && self.flags & flag::PERSIST != 0 {
            // An answer to a zero-window probe: the peer is alive (RFC 1122
            // 4.2.2.17), so probing goes on; not a duplicate ACK either.
            self.retries = 0;
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && seg.control == TcpControl::None
            && (u32::from(seg.window_len) << self.snd_wscale()) == self.snd_wnd
            && self.snd_max > self.snd_una
            && self.snd_wnd != 0
        {
            st.dup_acks_in += 1;
            if self.cc.on_dup_ack(
                self.snd_una,
                self.snd_max,
                flight,
                u32::from(self.eff_mss()),
            ) == AckAction::RetransmitFirst
            {
                self.flags |= flag::RETRANSMIT_FIRST;
                st.fast_retransmits += 1;
            }
        }
        if self.flags & flag::SACK_OK != 0 {
            self.record_sack(seg);
        }
        // Window update (RFC 9293 3.10.7.4, fifth, ESTABLISHED): only from
        // an ACK in SND.UNA =< SEG.ACK (SND.UNA has moved to it already), an
        // old one says nothing of the window now; then the SND.WL1/WL2 rule.
        self.update_window(seg, ack);
        self.on_fin_acked(now, cfg);
    }

    /// State changes when our FIN is acknowledged (RFC 9293 3.10.7.4,
    /// fifth: FIN-WAIT-1, CLOSING, LAST-ACK).
    #[inline(always)]
    fn on_fin_acked(&mut self, now: Instant, cfg: &TcpConfig) {
        if self.fin_acked() {
            match self.state {
                State::FinWait1 => {
                    self.state = State::FinWait2;
                    self.set_rto(Instant::NEVER);
                    self.arm_fin_wait_2(now, cfg);
                }
                State::Closing => self.enter_time_wait(now, cfg),
                State::LastAck => self.enter_closed(CloseReason::Normal),
                _ => {}
            }
        }
    }

    fn record_sack(&mut self, seg: &TcpRepr<'_>) {
        for (l, r) in seg.sack_ranges.iter().flatten().copied() {
            if r <= l || l < self.snd_una || r > self.snd_max {
                continue; // D-SACK, stale or bogus
            }
            // Merge into the scoreboard; if full, replace the lowest block.
            let una = self.snd_una;
            let sacked = &mut self.reorder.get_or_insert_with(Default::default).sacked;
            let mut merged = false;
            for b in sacked.iter_mut() {
                if b.1 == b.0 {
                    continue;
                }
                if l <= b.1 && r >= b.0 {
                    b.0 = b.0.min(l);
                    b.1 = b.1.max(r);
                    merged = true;
                    break;
                }
            }
            if !merged {
                if let Some(slot) = sacked.iter_mut().find(|b| b.0 == b.1) {
                    *slot = (l, r);
                } else if let Some(slot) =
                    sacked.iter_mut().min_by_key(|b| b.0.0.wrapping_sub(una.0))
                {
                    *slot = (l, r);
                }
            }
        }
    }

    /// If `seq` is inside a SACKed block, where that block ends.
    fn sacked_until(&self, seq: SeqNumber) -> Option<SeqNumber> {
        self.reorder
            .as_ref()?
            .sacked
            .iter()
            .find(|b| b.0 != b.1 && seq >= b.0 && seq < b.1)
            .map(|b| b.1)
    }

    fn process_text_and_fin(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        seg: &TcpRepr<'_>,
    ) {
        let mut seq = seg.seq_number;
        let mut payload = seg.payload;
        let mut fin = seg.control == TcpControl::Fin;
        // Trim what we already have (RFC 9293 3.10.7.4: "trimmed" segments).
        if seq < self.rcv_nxt {
            let skip = (self.rcv_nxt - seq) as usize;
            if skip > payload.len() {
                // Only a (duplicate) FIN may remain.
                payload = &[];
                if fin && seq + (seg.payload.len() as u32) < self.rcv_nxt {
                    fin = false;
                    if self.flags & flag::PEER_FIN != 0 {
                        // A retransmitted FIN: our ACK was lost. ACK again.
                        self.flags |= flag::ACK_NOW;
                        if self.state == State::TimeWait {
                            self.close_at = now + cfg.time_wait();
                        }
                    }
                }
            } else {
                payload = &payload[skip..];
            }
            seq = self.rcv_nxt;
        }
        let accepts_text = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        );
        if !payload.is_empty() {
            if !accepts_text {
                // CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT: the peer already sent FIN.
                self.flags |= flag::ACK_NOW;
                payload = &[];
                fin = false;
            } else if self.flags & flag::APP_CLOSED != 0
                && cfg.data_after_close == DataAfterClose::Reset
            {
                // New data nobody will read: RST, so the peer knows it was
                // lost (RFC 1122 4.2.2.13).
                st.resets_on_data_after_close += 1;
                self.abort();
                return;
            } else if self.flags & flag::APP_CLOSED != 0 {
                // Nobody will read it: acknowledge and discard. RCV.NXT and
                // the out-of-order ranges move together (so SACK blocks stay
                // true), and a FIN after the data is where the data ends.
                let off = seq - self.rcv_nxt;
                let len = payload.len() as u32;
                if off == 0 {
                    let extra = match &mut self.reorder {
                        Some(r) => r.assembler.advance(len),
                        None => 0,
                    };
                    self.rcv_nxt += len + extra;
                    self.rcv_adv = self.rcv_adv.max(self.rcv_nxt);
                    st.bytes_discarded_after_close += u64::from(len + extra);
                } else if !self.reorder().assembler.add(off, off + len) {
                    fin = false; // not kept: the FIN comes again with it
                }
                self.flags |= flag::ACK_NOW;
                seq += len;
                payload = &[];
            }
        }
        if !payload.is_empty() {
            let off = (seq - self.rcv_nxt) as usize;
            // Trim to the buffer (the window edge; RFC 9293: excess is dropped),
            // and to nothing when we advertised a zero window (a probe).
            let room = if self.advertised_zero_window() {
                0
            } else {
                self.recv_buf.free(cfg.recv_buffer)
            };
            let take = payload.len().min(room.saturating_sub(off));
            if take < payload.len() {
                // Beyond the window (a zero-window probe, say): not acceptable,
                // so ACK it (RFC 9293 3.10.7.4, first check); the FIN lies
                // beyond what we keep.
                fin = false;
                self.flags |= flag::ACK_NOW;
            }
            let data = &payload[..take];
            if off == 0 && !data.is_empty() {
                self.take_in_order_text(now, cfg, data);
            } else if !data.is_empty() {
                // Out of order: keep it in place, ACK at once with SACK (RFC 5681 4.2).
                st.ooo_segments += 1;
                let at = self.recv_buf.len() + off;
                if self
                    .reorder()
                    .assembler
                    .add(off as u32, (off + data.len()) as u32)
                {
                    self.recv_buf.write_at(at, data, cfg.recv_buffer);
                }
                self.flags |= flag::ACK_NOW;
            }
        }
        // Eighth: FIN, once everything before it has arrived (this
        // segment's, or one that came beyond a hole).
        let fin_at = if fin {
            Some(seq + payload.len() as u32)
        } else if self.flags & flag::FIN_PENDING != 0 {
            self.reorder.as_ref().map(|r| r.peer_fin_at)
        } else {
            None
        };
        if let Some(at) = fin_at {
            if at == self.rcv_nxt && self.flags & flag::PEER_FIN == 0 {
                self.take_fin(now, cfg);
            } else if at < self.rcv_nxt {
                self.flags &= !flag::FIN_PENDING;
            } else {
                // Beyond a hole: it waits for the data before it.
                self.flags |= flag::FIN_PENDING;
                self.reorder().peer_fin_at = at;
            }
        }
    }

    /// The peer's FIN at RCV.NXT, the first one: RCV.NXT passes it, it is
    /// ACKed at once, the application told, and the state moves on (RFC 9293
    /// 3.10.7.4, eighth).
    #[inline(always)]
    fn take_fin(&mut self, now: Instant, cfg: &TcpConfig) {
        self.flags &= !flag::FIN_PENDING;
        self.rcv_nxt += 1;
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt);
        self.flags |= flag::PEER_FIN | flag::ACK_NOW;
        self.events |= ev::PEER_CLOSED;
        if self.keepalive_armed() {
            self.close_at = Instant::NEVER; // no keepalive after the peer's FIN
        }
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now, cfg);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now, cfg),
            _ => {}
        }
    }

    // ---- output ----

    /// Writes the next segment to send into `out` (TCP header + payload, with
    /// its checksum), returning its length. `out` must hold the MSS plus 60 bytes.
    /// Always inlined, as `handle_segment`.
    #[inline(always)]
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        out: &mut [u8],
    ) -> Option<usize> {
        self.poll_transmit_more(now, cfg, st, out).map(|(n, _)| n)
    }

    /// `poll_transmit`, and whether there may be another segment after this
    /// one: false when `wants_transmit` would certainly say no (the
    /// predicted segment took everything there was to send), so that a
    /// caller need not ask.
    #[inline(always)]
    pub fn poll_transmit_more(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        out: &mut [u8],
    ) -> Option<(usize, bool)> {
        self.poll_transmit_summed(now, cfg, st, &QueuedSum::NONE, out)
    }

    /// `poll_transmit_more`, told what the application last queued with
    /// its sum (`send_summed`): the segment that carries exactly those
    /// bytes takes its payload's part of the checksum from there.
    #[inline(always)]
    pub fn poll_transmit_summed(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        queued: &QueuedSum,
        out: &mut [u8],
    ) -> Option<(usize, bool)> {
        // (Asked with the FIN and without, each a constant: one call with
        // the FIN flag read at run time costs more.)
        let r = if let Some(len) = self.transmit_predicted(cfg, false) {
            st.segs_out_predicted += 1;
            let n = self.emit_range(now, cfg, st, self.snd_nxt, len, false, queued, out);
            // All the unsent data went, with none of the flags that ask for
            // more.
            debug_assert!(!self.wants_transmit());
            Some((n, false))
        } else if let Some(len) = self.transmit_predicted(cfg, true) {
            st.segs_out_predicted += 1;
            let n = self.emit_range(now, cfg, st, self.snd_nxt, len, true, queued, out);
            // The data and the FIN after it.
            debug_assert!(!self.wants_transmit());
            Some((n, false))
        } else {
            self.next_segment(now, cfg, st, out).map(|n| (n, true))
        };
        st.segs_out += u64::from(r.is_some());
        r
    }

    /// `poll_transmit` without the transmit fast path: every segment through
    /// the general path. The engine's scenario tests run it on a copy beside
    /// `poll_transmit` on every poll and check that both write the same
    /// bytes and leave the same connection and counters.
    pub fn poll_transmit_unpredicted(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        out: &mut [u8],
    ) -> Option<usize> {
        let n = self.next_segment(now, cfg, st, out);
        st.segs_out += u64::from(n.is_some());
        n
    }

    /// Transmit prediction, the output side of header prediction: in
    /// ESTABLISHED or CLOSE-WAIT, the next segment is nearly always the
    /// unsent data the application just queued (a request, a response),
    /// all of it; once the application has closed (FIN-WAIT-1, CLOSING,
    /// LAST-ACK with the FIN not yet sent), that data and the FIN after it,
    /// or the FIN alone. With nothing to retransmit (SND.NXT = SND.MAX), no
    /// RST, probe or persist timer pending, and the usable window (RFC 5681
    /// 3.1: min(SND.WND, cwnd) less what is in flight), the segment size and
    /// Nagle (RFC 1122 4.2.3.4; all of it goes, so sender SWS avoidance
    /// passes) letting it go at once. `next_segment` would send it through
    /// `emit_data` from SND.NXT (which sends a FIN that ends the data
    /// whatever the window); this returns its length (`fin`: asked for the
    /// closing states, the FIN after it), and `emit_range` sends it as
    /// `emit_data` does, without the checks.
    #[inline(always)]
    fn transmit_predicted(&self, cfg: &TcpConfig, fin: bool) -> Option<u32> {
        const SLOW: u16 = flag::RST_PENDING
            | flag::RETRANSMIT_FIRST
            | flag::PROBE
            | flag::KEEPALIVE_PROBE
            | flag::FIN_QUEUED
            | flag::PERSIST
            | flag::SYN_ACKED;
        // With `fin`, FIN_QUEUED must be set (and SYN_ACKED); else neither
        // it nor any other of SLOW but SYN_ACKED.
        let expect = flag::SYN_ACKED | if fin { flag::FIN_QUEUED } else { 0 };
        let state_ok = if fin {
            matches!(
                self.state,
                State::FinWait1 | State::Closing | State::LastAck
            )
        } else {
            matches!(self.state, State::Established | State::CloseWait)
        };
        if self.flags & SLOW != expect || !state_ok || self.snd_nxt != self.snd_max {
            return None;
        }
        let data_end = self.snd_buf_seq + self.send_buf.len() as u32;
        // Data to send, or (closing) at least the FIN not yet sent.
        if self.snd_nxt > data_end || (self.snd_nxt == data_end && !fin) {
            return None;
        }
        let unsent = data_end - self.snd_nxt;
        let in_flight = self.snd_nxt.0.wrapping_sub(self.snd_una.0);
        let allowed = self.snd_wnd.min(self.cc.cwnd).saturating_sub(in_flight);
        // Within a segment: `seg_mss` with no SACK option to make room for
        // (our receive queue has no holes), that is `eff_mss`, here as the
        // MSS less the timestamp option (never more than `eff_mss`).
        let opts = if self.flags & flag::TS_OK != 0 { 12 } else { 0 };
        (unsent <= allowed
            && unsent + opts <= u32::from(self.snd_mss)
            && !self.has_holes()
            && (!cfg.nagle || in_flight == 0))
            .then_some(unsent)
    }

    /// Whether `poll_transmit` may have a segment to give. False only when it
    /// would certainly return `None` and change nothing, so a caller can skip
    /// taking a buffer for it; reads flags, state and sequence numbers only.
    pub fn wants_transmit(&self) -> bool {
        const OUTPUT: u16 = flag::RST_PENDING
            | flag::ACK_NOW
            | flag::PROBE
            | flag::KEEPALIVE_PROBE
            | flag::RETRANSMIT_FIRST;
        if self.flags & OUTPUT != 0 {
            return true;
        }
        match self.state {
            State::Closed | State::Listen => false,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => true,
            State::SynSent => false,
            _ => {
                // As `emit_data` from snd_nxt: a retransmission, unsent data or
                // an unsent FIN.
                let data_end = self.snd_buf_seq + self.send_buf.len() as u32;
                self.snd_nxt < self.snd_max
                    || self.snd_nxt < data_end
                    || (self.flags & flag::FIN_QUEUED != 0 && self.snd_nxt == data_end)
            }
        }
    }

    #[inline(always)]
    fn next_segment(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        out: &mut [u8],
    ) -> Option<usize> {
        // A pending RST (abort) goes out even though the state is CLOSED.
        if self.flags & flag::RST_PENDING != 0 {
            self.flags &= !flag::RST_PENDING;
            st.rsts_out += 1;
            let repr = TcpRepr {
                control: TcpControl::Rst,
                seq_number: self.snd_max,
                ack_number: Some(self.rcv_nxt),
                // RFC 7323 3.2: with timestamps agreed, an RST carries TSopt too.
                timestamp: (self.flags & flag::TS_OK != 0).then(|| TcpTimestamp {
                    tsval: self.tsval(now),
                    tsecr: self.ts_recent,
                }),
                ..self.header()
            };
            return Some(self.emit(&repr, 0, 0, out));
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                return Some(self.emit_syn(now, cfg, st, out));
            }
            _ => {}
        }
        if self.state == State::SynSent {
            return None; // nothing but the SYN until the handshake completes
        }
        let can_send_data = matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::LastAck
                | State::Closing
        ) && self.flags & flag::SYN_ACKED != 0;

        if can_send_data {
            if self.flags & flag::RETRANSMIT_FIRST != 0 {
                self.flags &= !flag::RETRANSMIT_FIRST;
                if self.snd_una < self.snd_max {
                    if let Some(n) = self.emit_data(now, cfg, st, self.snd_una, true, out) {
                        return Some(n);
                    }
                }
            }
            if let Some(n) = self.emit_data(now, cfg, st, self.snd_nxt, false, out) {
                return Some(n);
            }
            // A probe with nothing to send: a bare ACK will do.
            if self.flags & flag::PROBE != 0 {
                self.flags &= !flag::PROBE;
                self.flags |= flag::ACK_NOW;
            }
        }
        if self.flags & flag::KEEPALIVE_PROBE != 0 {
            self.flags &= !flag::KEEPALIVE_PROBE;
            // RFC 1122 4.2.3.6: a sequence number just below what the peer has
            // (SND.UNA - 1, as Linux does), no data: the peer must ACK it.
            return Some(self.emit_with_payload(
                now,
                cfg,
                self.snd_una - 1,
                0,
                0,
                0,
                &QueuedSum::NONE,
                out,
            ));
        }
        if self.flags & flag::ACK_NOW != 0 && self.state != State::SynSent {
            // A pure ACK carries the highest sequence number sent: snd_nxt may have
            // gone back for a retransmission, and the peer has seen up to snd_max.
            return Some(self.emit_with_payload(
                now,
                cfg,
                self.snd_max,
                0,
                0,
                0,
                &QueuedSum::NONE,
                out,
            ));
        }
        None
    }

    fn header(&self) -> TcpRepr<'static> {
        TcpRepr {
            src_port: self.ends.local_port,
            dst_port: self.ends.remote_port,
            ..TcpRepr::default()
        }
    }

    #[inline(always)]
    fn emit_syn(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        out: &mut [u8],
    ) -> usize {
        let passive = self.state == State::SynReceived;
        // RFC 7323 2.2: the window in a SYN is not scaled.
        let window_len = cfg.recv_buffer.min(65535) as u16;
        let window_scale = if passive {
            (self.rcv_wscale() > 0 || (cfg.window_scale && self.snd_wscale_offered()))
                .then_some(self.rcv_wscale())
        } else {
            cfg.window_scale.then(|| cfg.rcv_wscale())
        };
        let sack_permitted = if passive {
            self.flags & flag::SACK_OK != 0
        } else {
            cfg.sack
        };
        let timestamp =
            if (passive && self.flags & flag::TS_OK != 0) || (!passive && cfg.timestamps) {
                Some(TcpTimestamp {
                    tsval: self.tsval(now),
                    tsecr: if passive { self.ts_recent } else { 0 },
                })
            } else {
                None
            };
        let ack_number = passive.then_some(self.rcv_nxt);
        if self.snd_max == self.iss {
            self.rtt_time_us = now.as_micros() as u32; // time the first transmission only
        }
        self.snd_nxt = self.iss + 1;
        if self.snd_max < self.snd_nxt {
            self.snd_max = self.snd_nxt;
        } else {
            st.retransmits += 1;
        }
        if self.rto_at == Instant::NEVER {
            self.set_rto(after_us(now, self.rtt.rto_backed_off_us(self.backoff, cfg)));
        }
        self.rcv_adv = self.rcv_nxt + u32::from(window_len);
        let (local_port, remote_port) = (self.ends.local_port, self.ends.remote_port);
        if let (true, Some(timestamp), Some(window_scale)) =
            (sack_permitted, timestamp, window_scale)
        {
            // Every option (the usual SYN of both ends): the fixed layout,
            // its checksum summed from its fields.
            return tcp::SynHeader {
                src_port: local_port,
                dst_port: remote_port,
                seq_number: self.iss,
                ack_number,
                window_len,
                mss: cfg.mss,
                timestamp,
                window_scale,
            }
            .emit_checksummed(out, self.ends.addr_sum);
        }
        let h = TcpRepr {
            control: TcpControl::Syn,
            seq_number: self.iss,
            ack_number,
            window_len,
            max_seg_size: Some(cfg.mss),
            window_scale,
            sack_permitted,
            timestamp,
            ..self.header()
        }
        .emit_header(out);
        TcpPacket::new_unchecked(&mut out[..h]).fill_checksum_sum(self.ends.addr_sum);
        h
    }

    /// In SYN-RECEIVED: did the peer's SYN carry window scale? (Then we answer with ours.)
    /// Shift applied to the windows the peer sends.
    fn snd_wscale(&self) -> u8 {
        self.wscales >> 4
    }

    /// Shift applied to the windows we send.
    fn rcv_wscale(&self) -> u8 {
        self.wscales & 0x0f
    }

    fn snd_wscale_offered(&self) -> bool {
        self.snd_wscale() > 0 || self.rcv_wscale() > 0
    }

    /// Sends data (and/or FIN) from `from`. `rexmit_one`: one segment at
    /// snd_una without moving snd_nxt (fast retransmit, partial ACK).
    fn emit_data(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        mut from: SeqNumber,
        rexmit_one: bool,
        out: &mut [u8],
    ) -> Option<usize> {
        let data_end = self.snd_buf_seq + self.send_buf.len() as u32;
        // Skip what the peer already SACKed (RFC 2018: retransmit only the holes).
        if from < self.snd_max {
            while let Some(end) = self.sacked_until(from) {
                from = end;
            }
            if from > self.snd_max {
                from = self.snd_max;
            }
        }
        let is_retransmit = from < self.snd_max;
        let mss = self.seg_mss();
        let in_flight = from.0.wrapping_sub(self.snd_una.0);
        let unsent = if from < data_end { data_end - from } else { 0 };
        let allowed = if rexmit_one {
            mss
        } else {
            self.snd_wnd.min(self.cc.cwnd).saturating_sub(in_flight)
        };
        let mut len = unsent.min(mss).min(allowed);
        if is_retransmit {
            // A retransmission stops where the next SACKed block starts.
            if let Some(s) = self
                .reorder
                .iter()
                .flat_map(|r| r.sacked.iter())
                .filter(|b| b.0 != b.1 && b.0 > from)
                .map(|b| b.0)
                .min()
            {
                len = len.min(s - from);
            }
        }
        // The persist timer fired: send what the window allows even if small (RFC
        // 1122 4.2.3.4's override), or one byte beyond a zero window (a probe,
        // RFC 9293 3.8.6.1; from snd_una, so a probe not taken is sent again).
        let forced = !rexmit_one && self.flags & flag::PROBE != 0 && unsent > 0;
        let mut zero_window_probe = false;
        if forced {
            self.flags &= !flag::PROBE;
            if len == 0 {
                len = 1;
                zero_window_probe = true;
                st.zero_window_probes += 1;
            }
        }
        let fin_here = self.flags & flag::FIN_QUEUED != 0 && from + len == data_end;
        if !is_retransmit && len > 0 && !forced {
            // Sender SWS avoidance (RFC 1122 4.2.3.4) and Nagle (4.2.3.4 too).
            let all_left = len == unsent;
            let nagle_ok = !cfg.nagle || in_flight == 0;
            let ok =
                len == mss || (all_left && nagle_ok) || (len >= self.max_snd_wnd / 2 && nagle_ok);
            if !ok {
                self.arm_persist(now, cfg, in_flight);
                return None;
            }
        }
        if len == 0 && !fin_here {
            if unsent > 0 {
                self.arm_persist(now, cfg, in_flight);
            }
            return None;
        }
        let how = Range {
            retransmit: is_retransmit,
            rexmit_one,
            zero_window_probe,
        };
        Some(self.emit_range_as(
            now,
            cfg,
            st,
            from,
            len,
            fin_here,
            how,
            &QueuedSum::NONE,
            out,
        ))
    }

    /// New data from `from` (SND.NXT = SND.MAX), `len` bytes, and the FIN
    /// after them with `fin_here`: what `emit_data` does for it once it has
    /// been let go.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn emit_range(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        from: SeqNumber,
        len: u32,
        fin_here: bool,
        queued: &QueuedSum,
        out: &mut [u8],
    ) -> usize {
        self.emit_range_as(now, cfg, st, from, len, fin_here, Range::NEW, queued, out)
    }

    /// Sends `len` bytes from `from` (and the FIN after them with
    /// `fin_here`), then the state that follows: RTT timing (RFC 6298, Karn),
    /// SND.NXT and SND.MAX, the retransmit timer.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn emit_range_as(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
        from: SeqNumber,
        len: u32,
        fin_here: bool,
        how: Range,
        queued: &QueuedSum,
        out: &mut [u8],
    ) -> usize {
        let data_end = self.snd_buf_seq + self.send_buf.len() as u32;
        let off = from.0.wrapping_sub(self.snd_buf_seq.0) as usize;
        let ctl = if fin_here { tcp::flags::FIN } else { 0 }
            | if len > 0 && from + len == data_end {
                tcp::flags::PSH
            } else {
                0
            };
        let n = self.emit_with_payload(now, cfg, from, ctl, off, len as usize, queued, out);
        let end = from + len + u32::from(fin_here);
        if how.retransmit {
            st.retransmits += u64::from(!how.zero_window_probe);
            self.flags &= !flag::TIMING; // Karn: never time a retransmission
        } else if self.flags & flag::TIMING == 0 {
            self.flags |= flag::TIMING;
            self.rtt_seq = from;
            self.rtt_time_us = now.as_micros() as u32;
        }
        if !how.rexmit_one || self.snd_nxt < end {
            self.snd_nxt = end;
        }
        if self.snd_max < end {
            self.snd_max = end;
        }
        // A probe keeps the persist timer (already re-armed); data in the
        // window runs the retransmit timer.
        if !how.zero_window_probe
            && (self.rto_at == Instant::NEVER || self.flags & flag::PERSIST != 0)
        {
            self.set_rto(after_us(now, self.rtt.rto_backed_off_us(self.backoff, cfg)));
        }
        n
    }

    /// Data waits on the window with nothing in flight: no ACK will come to move
    /// it, so the persist timer will (RFC 9293 3.8.6.1, RFC 1122 4.2.3.4).
    fn arm_persist(&mut self, now: Instant, cfg: &TcpConfig, in_flight: u32) {
        if in_flight == 0 && self.rto_at == Instant::NEVER {
            self.rto_at = after_us(now, self.rtt.rto_backed_off_us(self.backoff, cfg));
            self.flags |= flag::PERSIST;
        }
    }

    /// Emits a segment at `seq` with ACK and `ctl` (FIN and/or PSH) and `len`
    /// payload bytes from the send buffer at `off`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn emit_with_payload(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seq: SeqNumber,
        ctl: u8,
        off: usize,
        len: usize,
        queued: &QueuedSum,
        out: &mut [u8],
    ) -> usize {
        let hdr = tcp::AckHeader {
            src_port: self.ends.local_port,
            dst_port: self.ends.remote_port,
            seq_number: seq,
            ack_number: self.rcv_nxt,
            flags: ctl,
            window_len: (self.window_to_advertise(cfg) >> self.rcv_wscale()).min(65535) as u16,
            timestamp: (self.flags & flag::TS_OK != 0).then(|| TcpTimestamp {
                tsval: self.tsval(now),
                tsecr: self.ts_recent,
            }),
        };
        // Any segment with an ACK acknowledges everything so far.
        self.last_ack_sent = self.rcv_nxt;
        self.flags &= !flag::ACK_NOW;
        self.segs_unacked = 0;
        self.delack_at = Instant::NEVER;
        // The usual segment at fixed offsets; with SACK blocks, the general path.
        let holes = self
            .reorder
            .as_deref()
            .map(|r| &r.assembler)
            .filter(|a| !a.is_empty());
        if let (true, Some(assembler)) = (self.flags & flag::SACK_OK != 0, holes) {
            let mut r = hdr.to_repr();
            // RFC 2018 4: the most recently changed block first.
            let first = assembler.most_recent();
            let mut blocks = [None; 4];
            let mut k = 0;
            if let Some((s, e)) = first {
                blocks[k] = Some((self.rcv_nxt + s, self.rcv_nxt + e));
                k += 1;
            }
            for (s, e) in assembler.ranges() {
                if Some((s, e)) != first && k < 4 {
                    blocks[k] = Some((self.rcv_nxt + s, self.rcv_nxt + e));
                    k += 1;
                }
            }
            r.sack_ranges = blocks;
            let h = r.emit_header(out);
            return self.finish(h, off, len, out);
        }
        // The payload behind the header, then the header with its checksum
        // summed from its fields and the payload's sum.
        let h = hdr.header_len();
        let total = h + len;
        let payload = &mut out[h..total];
        self.send_buf.read_at(off, payload);
        let sum = Self::payload_sum(seq, payload, queued);
        hdr.emit_checksummed(out, self.ends.addr_sum, len, sum);
        total
    }

    /// The `checksum::partial_sum` of `payload`, the bytes from `seq` on
    /// about to be sent: the sum the application gave with them when they
    /// are exactly those it queued with it (`queued`; the bytes at a
    /// sequence number never change once queued), else summed now.
    #[inline(always)]
    fn payload_sum(seq: SeqNumber, payload: &[u8], queued: &QueuedSum) -> u16 {
        let len = payload.len();
        if seq == queued.seq && len == queued.len as usize {
            queued.sum
        } else if len == 0 {
            0
        } else {
            crate::wire::checksum::partial_sum(payload)
        }
    }

    fn emit(&mut self, repr: &TcpRepr<'_>, off: usize, len: usize, out: &mut [u8]) -> usize {
        // Header, payload, then the checksum once over both.
        let h = repr.emit_header(out);
        self.finish(h, off, len, out)
    }

    /// Places `len` payload bytes from the send buffer at `off` after the
    /// `h`-byte header in `out`, then the checksum once over both.
    #[inline(always)]
    fn finish(&self, h: usize, off: usize, len: usize, out: &mut [u8]) -> usize {
        let total = h + len;
        self.send_buf.read_at(off, &mut out[h..total]);
        TcpPacket::new_unchecked(&mut out[..total]).fill_checksum_sum(self.ends.addr_sum);
        total
    }
}

/// The RST to send in answer to `seg` when no connection wants it (RFC 9293
/// 3.10.7.1, "If the state is CLOSED"), or when a LISTEN or SYN-SENT
/// connection refuses an ACK. `None` for an incoming RST (never answered).
pub fn rst_reply<'a>(seg: &TcpRepr<'_>) -> Option<TcpRepr<'a>> {
    if seg.control == TcpControl::Rst {
        return None;
    }
    let base = TcpRepr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        control: TcpControl::Rst,
        ..TcpRepr::default()
    };
    Some(match seg.ack_number {
        // <SEQ=SEG.ACK><CTL=RST>
        Some(ack) => TcpRepr {
            seq_number: ack,
            ..base
        },
        // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
        None => TcpRepr {
            seq_number: SeqNumber(0),
            ack_number: Some(seg.seq_number + seg.segment_len() as u32),
            ..base
        },
    })
}

/// Bytes a segment from this connection can take at most (header + options + MSS).
pub fn max_segment_len(cfg: &TcpConfig) -> usize {
    tcp::HEADER_LEN + tcp::MAX_OPTIONS_LEN + usize::from(cfg.mss)
}

/// The stateless SYN-ACK answering `syn` with a cookie `iss` (RFC 4987): MSS
/// only, no window scale, SACK or timestamps. Writes it into `out`, returns
/// its length.
pub fn emit_cookie_syn_ack(
    cfg: &TcpConfig,
    ends: impl Into<Ends>,
    syn: &TcpRepr<'_>,
    iss: SeqNumber,
    out: &mut [u8],
) -> usize {
    let ends = ends.into();
    let repr = TcpRepr {
        src_port: ends.local_port,
        dst_port: ends.remote_port,
        control: TcpControl::Syn,
        seq_number: iss,
        ack_number: Some(syn.seq_number + 1),
        window_len: cfg.recv_buffer.min(65535) as u16,
        max_seg_size: Some(cfg.mss),
        ..TcpRepr::default()
    };
    let n = repr.buffer_len();
    repr.emit_sum(&mut TcpPacket::new_unchecked(&mut out[..n]), ends.addr_sum);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ChecksumMode;
    use std::net::Ipv4Addr;

    /// Segments both ways until neither has one.
    /// A client at 10.0.0.1:40000 (ISN `isn.0`) and a listener at
    /// 10.0.0.2:80 (ISN `isn.1`) that expects it, with their addresses.
    fn pair_of(
        cfg: &TcpConfig,
        isn: (u32, u32),
        now: Instant,
    ) -> (Connection, Connection, SocketAddrV4, SocketAddrV4) {
        let a_addr: SocketAddrV4 = "10.0.0.1:40000".parse().unwrap();
        let b_addr: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
        let t = FourTuple {
            local: a_addr,
            remote: b_addr,
        };
        let a = Connection::connect(cfg, t, SeqNumber(isn.0), now);
        let mut b = Connection::listen(cfg, b_addr, SeqNumber(isn.1), now);
        b.set_remote(a_addr);
        (a, b, a_addr, b_addr)
    }

    fn exchange(a: &mut Connection, b: &mut Connection, cfg: &TcpConfig, now: Instant) {
        let mut st = TcpStats::default();
        let mut buf = vec![0u8; 2048];
        let mut step = |x: &mut Connection, y: &mut Connection| {
            while let Some(n) = x.poll_transmit(now, cfg, &mut st, &mut buf) {
                // Both ends sum the same two addresses (in either order).
                assert_eq!(x.ends().addr_sum, y.ends().addr_sum);
                assert!(crate::wire::checksum::tcp_checksum_ok(
                    x.ends().addr_sum,
                    &buf[..n]
                ));
                hand_over(y, &buf[..n], now, cfg, &mut st);
            }
        };
        for _ in 0..8 {
            step(a, b);
            step(b, a);
        }
    }

    /// Payloads queued with their sum (`send_summed`), without, in pieces
    /// and behind one another, some segments lost and sent again after a
    /// timeout: every segment's checksum, summed from its parts, is the one
    /// folded from its bytes, and every byte arrives once, in order.
    #[test]
    fn summed_payloads_checksum_as_their_bytes() {
        use crate::wire::checksum::{partial_sum, tcp_checksum_ok};
        let cfg = TcpConfig::default();
        let mut now = Instant::from_millis(1000);
        let (mut a, mut b, _, _) = pair_of(&cfg, (7, 9), now);
        let mut st = TcpStats::default();
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let (mut sent, mut got) = (Vec::new(), Vec::new());
        let mut buf = vec![0u8; 2048];
        let mut segments = 0;
        // What A last queued with its sum: kept across rounds (still true
        // of those bytes, whenever they are sent).
        let mut queued = QueuedSum::NONE;
        let mut summed = 0;
        for round in 0..400 {
            // Queue: summed (the usual), plain, or summed after a plain piece.
            let r = next();
            let len = 1 + (r % 1500) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let n = match r >> 32 & 3 {
                0 => a.send(&cfg, &data).unwrap_or(0),
                1 => {
                    let k = a.send(&cfg, &data[..len / 2]).unwrap_or(0);
                    let rest = &data[k..];
                    k + a
                        .send_summed(&cfg, rest, partial_sum(rest), &mut queued)
                        .unwrap_or(0)
                }
                _ => a
                    .send_summed(&cfg, &data, partial_sum(&data), &mut queued)
                    .unwrap_or(0),
            };
            sent.extend_from_slice(&data[..n]);
            // Then both ends send what they have; one segment in five is lost
            // (the timer sends it again).
            for _ in 0..8 {
                for turn in 0..2 {
                    let (x, y) = if turn == 0 {
                        (&mut a, &mut b)
                    } else {
                        (&mut b, &mut a)
                    };
                    let q = if turn == 0 { queued } else { QueuedSum::NONE };
                    while let Some((n, _)) =
                        x.poll_transmit_summed(now, &cfg, &mut st, &q, &mut buf)
                    {
                        segments += 1;
                        let h = usize::from(buf[12] >> 4) * 4;
                        summed += usize::from(turn == 0 && n > h && q.len as usize == n - h);
                        assert!(
                            tcp_checksum_ok(x.ends().addr_sum, &buf[..n]),
                            "round {round}: {:02x?}",
                            &buf[..n.min(40)]
                        );
                        if next() % 5 == 0 && round > 0 {
                            continue;
                        }
                        hand_over(y, &buf[..n], now, &cfg, &mut st);
                    }
                }
                let mut out = [0u8; 4096];
                loop {
                    let k = b.recv(&cfg, &mut out);
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&out[..k]);
                }
                now += std::time::Duration::from_millis(300);
                for c in [&mut a, &mut b] {
                    if c.poll_timeout().is_some_and(|t| t <= now) {
                        c.handle_timeout(now, &cfg, &mut st);
                    }
                }
            }
        }
        assert!(
            segments > 400 && summed > 50 && st.retransmits > 0,
            "{segments} segments, {summed} with a payload of the queued length, {} retransmits",
            st.retransmits
        );
        assert!(
            got.len() > sent.len() / 2,
            "{} of {}",
            got.len(),
            sent.len()
        );
        assert_eq!(got, sent[..got.len()]);
    }

    /// Issue 14 item 2: one control block for both families (the
    /// addresses only as their checksum sum), at most 256 bytes.
    #[test]
    fn the_control_block_is_family_agnostic_and_at_most_256_bytes() {
        let size = std::mem::size_of::<Connection>();
        println!("control block {size} B");
        assert!(size <= 256, "{size} B");
        assert_eq!(std::mem::size_of::<Ends>(), 6);
    }

    /// The control block's address sum gives the checksum each family's
    /// own pseudo-header gives (RFC 9293 3.1, RFC 8200 8.1), for segments
    /// of every length parity.
    #[test]
    fn the_address_sum_checksums_as_each_familys_pseudo_header() {
        use crate::wire::checksum::{tcp_checksum, tcp_checksum_ok, transport_checksum};
        use std::net::{Ipv6Addr, SocketAddrV6};
        let v4 = FourTuple {
            local: "192.168.7.1:443".parse().unwrap(),
            remote: "10.200.0.254:61000".parse().unwrap(),
        };
        let (l6, r6): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::ffff:1".parse().unwrap(),
            "fe80::1:2:3:fffe".parse().unwrap(),
        );
        let k6 = FlowKey::<Ipv6Addr>::new(
            SocketAddrV6::new(l6, 80, 0, 0),
            SocketAddrV6::new(r6, 9, 0, 0),
        );
        for len in [20usize, 21, 33, 64, 1460, 1461] {
            let mut seg: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            seg[16] = 0;
            seg[17] = 0;
            let e4 = Ends::from(v4);
            let c4 = transport_checksum(*v4.local.ip(), *v4.remote.ip(), 6, &seg);
            assert_eq!(tcp_checksum(e4.addr_sum, &seg), c4, "IPv4, {len} B");
            let e6 = Ends::from(k6);
            let c6 = Ipv6Addr::transport_checksum(&l6, &r6, 6, &seg);
            assert_eq!(tcp_checksum(e6.addr_sum, &seg), c6, "IPv6, {len} B");
            seg[16..18].copy_from_slice(&c6.to_be_bytes());
            assert!(tcp_checksum_ok(e6.addr_sum, &seg));
            assert_eq!(
                e6.addr_sum,
                Ends::from(k6.reversed()).addr_sum,
                "the same sum both ways"
            );
            seg[len - 1] ^= 1;
            assert!(!tcp_checksum_ok(e6.addr_sum, &seg));
        }
    }

    /// A listening connection bound by `set_remote` has the ends of a
    /// connection opened with both addresses.
    #[test]
    fn set_remote_binds_the_same_ends_as_the_whole_tuple() {
        let cfg = TcpConfig::default();
        let (l, r): (std::net::SocketAddrV6, std::net::SocketAddrV6) = (
            "[2001:db8::1]:80".parse().unwrap(),
            "[2001:db8::2]:5000".parse().unwrap(),
        );
        let mut c = Connection::listen(&cfg, l, SeqNumber(1), Instant::from_millis(1));
        c.set_remote(r);
        assert_eq!(c.ends(), Ends::new(l, r));
        let d =
            Connection::listen_for(&cfg, Ends::new(l, r), SeqNumber(1), Instant::from_millis(1));
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }

    /// A xorshift64 generator from `x` (not 0): the tests' repeatable
    /// random lengths, bytes and choices.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// What `renew` keeps aside from `new`'s connection: its emptied buffers.
    fn without_buffers(mut c: Connection) -> (String, Ring, Ring) {
        let (s, r) = (
            std::mem::take(&mut c.send_buf),
            std::mem::take(&mut c.recv_buf),
        );
        (format!("{c:?}"), s, r)
    }

    /// Reads in place (`recv_in_place`) and copied (`recv`), mixed, with
    /// segments reordered: every byte sent is read once, in order, whether
    /// it lay where it was (the ring read to its end starts at its front
    /// again), wrapped around the ring's end (given through the scratch
    /// buffer), or behind data waiting beyond a hole (left where it lies).
    #[test]
    fn reads_in_place_give_every_byte_once_in_order() {
        let cfg = TcpConfig::default();
        let now = Instant::from_millis(1000);
        let (mut a, mut b, _, _) = pair_of(&cfg, (5, 6), now);
        exchange(&mut a, &mut b, &cfg, now);
        let mut st = TcpStats::default();
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let (mut sent, mut got) = (Vec::new(), Vec::new());
        let (mut wrapped, mut behind_hole, mut at_front) = (0, 0, 0);
        let mut buf = vec![0u8; 2048];
        let mut scratch = vec![0u8; 8192];
        for round in 0..300 {
            let len = 1 + (next() % 3000) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let n = a.send(&cfg, &data).unwrap();
            sent.extend_from_slice(&data[..n]);
            let mut segs = Vec::new();
            while let Some(n) = a.poll_transmit(now, &cfg, &mut st, &mut buf) {
                segs.push(buf[..n].to_vec());
            }
            if round % 3 == 0 {
                segs.reverse();
            }
            for (k, seg) in segs.iter().enumerate() {
                hand_over(&mut b, seg, now, &cfg, &mut st);
                if k + 1 == segs.len() {
                    break;
                }
                // Between segments: what is in order so far.
                behind_hole += usize::from(b.has_holes() && b.recv_available() > 0);
                if b.has_holes() && next() % 2 == 0 {
                    while let Some(()) =
                        b.recv_in_place(&cfg, &mut scratch, |d| got.extend_from_slice(d))
                    {
                    }
                }
            }
            if next() % 4 != 0 {
                // Some copied out: the ring's front moves on.
                let k = b.recv(&cfg, &mut scratch[..1 + (next() % 4000) as usize]);
                got.extend_from_slice(&scratch[..k]);
            } else {
                wrapped += usize::from(b.recv_buf.front().len() < b.recv_available());
                let read = b.recv_in_place(&cfg, &mut scratch, |d| got.extend_from_slice(d));
                if read.is_some() && b.recv_available() == 0 {
                    at_front += usize::from(b.recv_buf.head() == 0);
                }
            }
            deliver_all(&mut b, &mut a, &cfg, now);
        }
        while let Some(()) = b.recv_in_place(&cfg, &mut scratch, |d| got.extend_from_slice(d)) {}
        assert!(got == sent, "{} bytes read of {}", got.len(), sent.len());
        assert!(
            wrapped > 0 && behind_hole > 0 && at_front > 0,
            "{wrapped} wrapped, {behind_hole} behind a hole, {at_front} at the front"
        );
    }

    /// Out-of-order data takes the loss and reordering state; once the hole
    /// is filled it is given back with the idle buffers, so an idle control
    /// block is its fixed size again.
    #[test]
    fn reorder_state_is_given_back_once_empty() {
        let cfg = TcpConfig::default();
        let now = Instant::from_millis(1000);
        let (mut a, mut b, a_addr, b_addr) = pair_of(&cfg, (1, 2), now);
        exchange(&mut a, &mut b, &cfg, now);
        assert_eq!(b.state(), State::Established);
        let mut st = TcpStats::default();
        // Three segments from A, held back and delivered 2, 3, 1.
        let mut segs = Vec::new();
        for chunk in [&b"first "[..], b"second ", b"third"] {
            a.send(&cfg, chunk).unwrap();
            let mut buf = vec![0u8; 2048];
            let n = a.poll_transmit(now, &cfg, &mut st, &mut buf).unwrap();
            buf.truncate(n);
            segs.push(buf);
        }
        let deliver = |b: &mut Connection, st: &mut TcpStats, raw: &[u8]| {
            let p = TcpPacket::new_checked(raw).unwrap();
            let seg = TcpRepr::parse(&p, *a_addr.ip(), *b_addr.ip(), ChecksumMode::Verify).unwrap();
            b.handle_segment(now, &cfg, st, &seg);
        };
        assert!(b.reorder.is_none());
        deliver(&mut b, &mut st, &segs[1]);
        deliver(&mut b, &mut st, &segs[2]);
        assert!(b.has_holes());
        let held = b.buffer_memory();
        assert!(held > b.recv_buf.allocated(), "counted while held");
        b.release_idle_buffers();
        assert!(b.reorder.is_some(), "kept while data waits beyond a hole");
        deliver(&mut b, &mut st, &segs[0]);
        assert!(!b.has_holes());
        let mut out = [0u8; 64];
        let n = b.recv(&cfg, &mut out);
        assert_eq!(&out[..n], b"first second third");
        b.release_idle_buffers();
        assert!(b.reorder.is_none());
        assert_eq!(b.buffer_memory(), 0);
    }

    /// Segments `x` has to send, delivered to `y` (one direction only).
    fn deliver_all(x: &mut Connection, y: &mut Connection, cfg: &TcpConfig, now: Instant) {
        let mut st = TcpStats::default();
        let mut buf = vec![0u8; 2048];
        while let Some(n) = x.poll_transmit(now, cfg, &mut st, &mut buf) {
            hand_over(y, &buf[..n], now, cfg, &mut st);
        }
    }

    /// One segment's bytes (checksum not checked) to `y`.
    fn hand_over(
        y: &mut Connection,
        bytes: &[u8],
        now: Instant,
        cfg: &TcpConfig,
        st: &mut TcpStats,
    ) {
        let p = TcpPacket::new_checked(bytes).unwrap();
        let seg = TcpRepr::parse(
            &p,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            ChecksumMode::Ignore,
        )
        .unwrap();
        y.handle_segment(now, cfg, st, &seg);
    }

    /// A connection renewed in a used slot keeps the slot's smallest
    /// buffers while it opens (SYN-SENT, SYN-RECEIVED) and in LAST_ACK,
    /// where each is about to take data or to close; idle and ESTABLISHED,
    /// it gives them back.
    #[test]
    fn buffers_stay_while_opening_and_in_last_ack() {
        let cfg = TcpConfig::default();
        let now = Instant::from_millis(1000);
        let (mut a, mut b, _, b_addr) = pair_of(&cfg, (1, 2), now);
        let mut out = [0u8; 64];
        let mut used = |a: &mut Connection, b: &mut Connection| {
            exchange(a, b, &cfg, now);
            a.send(&cfg, b"GET / HTTP/1.1\r\n\r\n").unwrap();
            exchange(a, b, &cfg, now);
            b.recv(&cfg, &mut out);
            b.send(&cfg, b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
            exchange(a, b, &cfg, now);
            a.recv(&cfg, &mut out);
        };
        used(&mut a, &mut b);
        let later = now + std::time::Duration::from_secs(3);
        let t2 = FourTuple {
            local: "10.0.0.1:40001".parse().unwrap(),
            remote: b_addr,
        };
        a.reconnect(&cfg, t2, SeqNumber(77), later);
        b.relisten(&cfg, b_addr, SeqNumber(99), later);
        b.set_remote(t2.local);
        let kept = 2 * 256;
        assert_eq!((a.buffer_memory(), b.buffer_memory()), (kept, kept));
        deliver_all(&mut a, &mut b, &cfg, later);
        a.release_idle_buffers();
        b.release_idle_buffers();
        assert_eq!((a.state(), b.state()), (State::SynSent, State::SynReceived));
        assert_eq!((a.buffer_memory(), b.buffer_memory()), (kept, kept));
        deliver_all(&mut b, &mut a, &cfg, later);
        deliver_all(&mut a, &mut b, &cfg, later);
        assert_eq!(
            (a.state(), b.state()),
            (State::Established, State::Established)
        );
        a.release_idle_buffers();
        b.release_idle_buffers();
        assert_eq!(
            (a.buffer_memory(), b.buffer_memory()),
            (0, 0),
            "idle: given back"
        );
        // The server's response and FIN; the client reads and closes.
        b.send(&cfg, b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        b.close(later, &cfg);
        deliver_all(&mut b, &mut a, &cfg, later);
        assert_eq!(a.recv(&cfg, &mut [0u8; 64]), 19);
        a.close(later, &cfg);
        assert_eq!(a.state(), State::LastAck);
        a.release_idle_buffers();
        assert!(a.buffer_memory() > 0, "kept in LAST_ACK");
    }

    #[test]
    fn renewed_is_new() {
        let cfg = TcpConfig::default();
        let now = Instant::from_millis(1000);
        let (mut a, mut b, _, b_addr) = pair_of(&cfg, (1, 2), now);
        exchange(&mut a, &mut b, &cfg, now);
        a.send(&cfg, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        exchange(&mut a, &mut b, &cfg, now);
        b.send(&cfg, b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        b.shutdown();
        exchange(&mut a, &mut b, &cfg, now);
        assert_eq!(b.state(), State::FinWait2);
        assert!(a.recv_buf.allocated() > 0 && b.recv_buf.allocated() > 0);
        // Unread data, a state, timers and options: all of it goes.
        assert!(a.recv_available() > 0);

        let later = now + std::time::Duration::from_secs(3);
        let t2 = FourTuple {
            local: "10.0.0.1:40001".parse().unwrap(),
            remote: b_addr,
        };
        a.reconnect(&cfg, t2, SeqNumber(77), later);
        b.relisten(&cfg, b_addr, SeqNumber(99), later);
        for (renewed, fresh) in [
            (a, Connection::connect(&cfg, t2, SeqNumber(77), later)),
            (b, Connection::listen(&cfg, b_addr, SeqNumber(99), later)),
        ] {
            let (r, send, recv) = without_buffers(renewed);
            let (f, _, _) = without_buffers(fresh);
            assert_eq!(r, f);
            assert!(send.is_empty() && recv.is_empty());
            assert_eq!(recv.allocated(), 256, "the smallest buffer is kept");
        }
    }
}
