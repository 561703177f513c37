//! A received frame: parse (checksums verified), address checks, software
//! steering of other shards' flows, then the TCP segment's route — an open
//! connection, a TIME_WAIT record, a listener, or a RST (`shard::route`).

use super::{Conn, Stack, StackFamily, mark};
use crate::shard::route::{Flows, Lookup, Route, route};
use crate::stats::DropReason;
use crate::table::{ConnTable, FlowKey, Found, FoundMut, Handle};
use crate::tcp::SegmentVerdict;
use crate::time::Instant;
use crate::wire::{
    self, ChecksumMode, EthernetAddress, FamilySocketAddr, Parsed, TcpControl, TcpRepr,
    TcpSegmentIn,
};
use std::cell::Cell;
use std::mem::MaybeUninit;

/// The shard's table as routing sees it.
struct ShardFlows<'a, A: StackFamily> {
    table: &'a mut ConnTable<Conn<A>, u16, A>,
    half_open: usize,
    syn_overflow_at: &'a mut Option<Instant>,
    /// The tuple's hash: `ConnTable::conn_mut` has just found no open
    /// connection for it, so the lookup goes on from there.
    no_conn: u64,
    /// The application of the listener `listening` found (for `accept_syn`:
    /// no second search).
    listener: Cell<Option<u16>>,
}

impl<A: StackFamily> Flows for ShardFlows<'_, A> {
    type Handle = Handle;
    type Tuple = FlowKey<A>;

    #[inline(always)]
    fn lookup(&mut self, t: FlowKey<A>) -> Lookup<'_, Handle, A> {
        match self.table.find_time_wait_mut(t, self.no_conn) {
            FoundMut::Conn(h) => Lookup::Conn(h),
            FoundMut::TimeWait(r) => Lookup::TimeWait(r),
            FoundMut::None => Lookup::None,
        }
    }

    fn reopen(&mut self, t: FlowKey<A>) {
        self.table.reuse_time_wait(t);
    }

    fn listening(&self, local: A::SocketAddr) -> bool {
        let app = self.table.listener(local).copied();
        self.listener.set(app);
        app.is_some()
    }

    fn half_open(&self) -> usize {
        self.half_open
    }

    fn syn_overflow_at(&self) -> Option<Instant> {
        *self.syn_overflow_at
    }

    fn set_syn_overflow_at(&mut self, now: Instant) {
        *self.syn_overflow_at = Some(now);
    }
}

impl<A: StackFamily> Stack<A> {
    /// Handles one received frame.
    #[inline(always)]
    pub fn input(&mut self, now: Instant, frame: &[u8]) {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += frame.len() as u64;
        // Nearly every frame: the family's TCP at fixed offsets (IPv4
        // without options, IPv6 without extension headers), parsed in place.
        // Built in place, no default written first.
        let mut place = MaybeUninit::uninit();
        match A::parse_tcp_frame_in(frame, &mut place) {
            Ok(Some(f)) => self.tcp_frame_input(now, frame, f),
            Ok(None) => self.other_input(now, frame),
            Err(e) => self.stats.drop(e.into()),
        }
    }

    /// Whatever the fast path leaves: ARP, ICMP, other protocols, IPv4
    /// with options.
    #[inline(never)]
    fn other_input(&mut self, now: Instant, frame: &[u8]) {
        // A dual-stack shard: IPv6 (EtherType 0x86DD) is its IPv6 half's,
        // counted as received there.
        if let Some(v6) = &mut self.ipv6
            && frame.get(12..14) == Some(&[0x86, 0xdd][..])
        {
            self.stats.rx_packets -= 1;
            self.stats.rx_bytes -= frame.len() as u64;
            if v6.syn_left != usize::MAX {
                return v6.input_shedding(now, frame);
            }
            return v6.input(now, frame);
        }
        let parsed = match wire::parse_frame(frame, ChecksumMode::Verify) {
            Ok(p) => p,
            Err(e) => return self.stats.drop(e.into()),
        };
        if let Some(f) = A::tcp_segment(&parsed) {
            return self.tcp_frame_input(now, frame, &f);
        }
        match parsed {
            // TCP over the other family: not this shard's.
            Parsed::Tcp(..) => self.stats.drop(DropReason::NotForUs),
            Parsed::Arp(_, a) => {
                self.learn_from_arp(now, &a);
                self.control_reply(frame);
            }
            Parsed::Icmp(
                _,
                ip,
                wire::IcmpRepr::Other {
                    msg_type: 3,
                    code: 4,
                },
            ) if self.cfg.iface.owns(ip.dst_addr) => self.frag_needed(frame),
            Parsed::Icmp(..) => self.control_reply(frame),
            Parsed::OtherIp(..) => self.stats.drop(DropReason::OtherIpProtocol),
            Parsed::OtherEther(..) => self.stats.drop(DropReason::OtherEtherType),
            // ICMPv6 echo and Neighbor Discovery: the responder's (TCP over
            // IPv6 waits for the engine, issue 14 item 2).
            Parsed::Ipv6(_, ip, wire::frame::Ipv6Payload::Icmp(m)) => {
                self.learn_from_nd(now, ip.src_addr, &m);
                self.control_reply(frame);
            }
            Parsed::Ipv6(..) => self.control_reply(frame),
        }
    }

    /// ICMP "fragmentation needed" (RFC 1191): the quoted segment's
    /// connection, if it is live and the quoted sequence number is in its
    /// flight (RFC 5927 4.1), lowers its MSS to the next hop's MTU.
    fn frag_needed(&mut self, frame: &[u8]) {
        let quoted = wire::Ipv4Packet::new_checked(&frame[wire::ethernet::HEADER_LEN..])
            .ok()
            .and_then(|p| wire::icmp::FragNeeded::parse(p.payload()));
        let Some(q) = quoted.filter(|q| self.cfg.iface.owns(*q.src.ip())) else {
            return self.stats.drop(DropReason::IcmpUnmatched);
        };
        // (An IPv6 shard has no IPv4 flows.)
        let (Some(local), Some(remote)) = (A::from_v4(*q.src.ip()), A::from_v4(*q.dst.ip())) else {
            return self.stats.drop(DropReason::IcmpUnmatched);
        };
        let t = FlowKey::<A>::new(
            A::SocketAddr::from_parts(local, q.src.port()),
            A::SocketAddr::from_parts(remote, q.dst.port()),
        );
        // (Another shard's flow is left alone: its owner never sees it.)
        let Found::Conn(h) = self.table.find(t) else {
            return self.stats.drop(DropReason::IcmpUnmatched);
        };
        let Some(c) = self.table.get_mut(h) else {
            return;
        };
        if !c.tcp.path_mtu_reduced(q.mtu, q.seq) {
            return self.stats.drop(DropReason::IcmpUnmatched);
        }
        self.stats.pmtu_reductions += 1;
        self.touch(h);
    }

    /// A TCP frame (`f` parsed from `frame`): address checks, steering,
    /// then `tcp_input`.
    #[inline(always)]
    fn tcp_frame_input(&mut self, now: Instant, frame: &[u8], f: &TcpSegmentIn<A>) {
        // The link addresses, where they are (the frame was parsed as
        // Ethernet: always there).
        let Some(link) = frame.first_chunk::<12>() else {
            return self.stats.drop(DropReason::Truncated);
        };
        let (eth_dst, eth_src) = (EthernetAddress::from_bytes(&link[..6]), &link[6..]);
        // Compared as a 32-bit and a 16-bit word (their differences or-ed),
        // each against the interface's in place: no 48-bit value built of
        // either address first.
        let (d, m) = (&eth_dst.0, &self.cfg.iface.mac.0);
        let hi = u32::from_ne_bytes([d[0], d[1], d[2], d[3]])
            ^ u32::from_ne_bytes([m[0], m[1], m[2], m[3]]);
        let lo = u16::from_ne_bytes([d[4], d[5]]) ^ u16::from_ne_bytes([m[4], m[5]]);
        if hi | u32::from(lo) != 0 {
            // RFC 1122 3.3.6: TCP is unicast, so a broadcast or multicast
            // frame carrying it is discarded.
            return self.stats.drop(if eth_dst.is_multicast() {
                DropReason::LinkBroadcast
            } else {
                DropReason::NotForUs
            });
        }
        if !A::owned(&self.cfg.iface, &f.dst_addr) {
            return self.stats.drop(DropReason::NotForUs);
        }
        let seg = &f.seg;
        let local = A::SocketAddr::from_parts(f.dst_addr, seg.dst_port);
        let remote = A::SocketAddr::from_parts(f.src_addr, seg.src_port);
        if self.cfg.shards > 1 {
            let owner = self.cfg.ownership.owner(local, remote, self.cfg.shards);
            if owner != self.cfg.shard {
                return self.steer_out(owner, frame);
            }
        }
        self.peer_mac = EthernetAddress::from_bytes(eth_src);
        self.tcp_input(now, FlowKey::new(local, remote), seg);
    }

    /// Another shard's flow: hand over a copy (the path for devices without
    /// RSS); it is counted as received by its owner.
    fn steer_out(&mut self, owner: u32, frame: &[u8]) {
        let handed = self
            .steer
            .as_ref()
            .is_some_and(|st| st.hand_over(owner as usize, frame));
        if handed {
            self.stats.steered_out += 1;
            self.stats.rx_packets -= 1;
            self.stats.rx_bytes -= frame.len() as u64;
        } else {
            self.stats.drop(DropReason::SteerFull);
        }
    }

    /// Frames other shards handed over (a burst at most); returns how many.
    pub(super) fn steered_input(&mut self, now: Instant) -> usize {
        // Taken out for the loop: no Arc clone per turn.
        let Some(st) = self.steer.take() else {
            return 0;
        };
        let me = self.cfg.shard as usize;
        let mut n = 0;
        while n < 64 {
            let Some(f) = st.take(me) else { break };
            self.stats.steered_in += 1;
            self.input(now, &f);
            n += 1;
            st.give_back(me, f);
        }
        self.steer = Some(st);
        n
    }

    /// RFC 1122 3.2.1.3 (MUST discard) and 4.2.3.10 (SYNs): no peer sends
    /// from 0/8, loopback, multicast (224/4), class E and broadcast (240/4),
    /// one of our own addresses, or from a group MAC (nowhere to answer).
    #[inline]
    fn valid_source(&self, src: A) -> bool {
        A::host_source(&src) && !A::owned(&self.cfg.iface, &src) && self.peer_mac.is_unicast()
    }

    /// A TCP segment for us: to its open connection, found here first (RFC
    /// 9293 3.10.7: nearly every segment has one), else to wherever
    /// `shard::route` sends it.
    #[inline(always)]
    fn tcp_input(&mut self, now: Instant, tuple: FlowKey<A>, seg: &TcpRepr) {
        match self.table.conn_mut(tuple) {
            Ok((h, c)) => {
                // `Connection::handle_segment` in its two halves: a
                // predicted segment (no RST, accepted) leaves nothing more
                // to look at.
                let st = &mut self.stats.tcp;
                st.segs_in += 1;
                if c.tcp.take_predicted(now, &self.cfg.tcp, st, seg) {
                    return mark(&mut self.touched, c, h);
                }
                if seg.control == TcpControl::Rst {
                    self.stats.rsts_in += 1;
                }
                let verdict = c.tcp.handle_segment_general(now, &self.cfg.tcp, st, seg);
                mark(&mut self.touched, c, h);
                self.conn_verdict(tuple, seg, verdict);
            }
            Err(hash) => {
                if seg.control == TcpControl::Rst {
                    self.stats.rsts_in += 1;
                }
                self.tcp_input_no_conn(now, tuple, seg, hash)
            }
        }
    }

    /// What an open connection's segment leaves to the shard.
    #[inline(always)]
    fn conn_verdict(&mut self, tuple: FlowKey<A>, seg: &TcpRepr, verdict: SegmentVerdict) {
        match verdict {
            SegmentVerdict::Dropped => self.stats.drop(DropReason::Refused),
            SegmentVerdict::RstReply => {
                self.stats.drop(DropReason::Refused);
                self.send_rst_reply(tuple, seg);
            }
            _ => {}
        }
    }

    /// A segment with no open connection (`hash` is its tuple's): routed.
    #[inline(never)]
    fn tcp_input_no_conn(&mut self, now: Instant, tuple: FlowKey<A>, seg: &TcpRepr, hash: u64) {
        let mut flows = ShardFlows {
            table: &mut self.table,
            half_open: self.half_open,
            syn_overflow_at: &mut self.syn_overflow_at,
            no_conn: hash,
            listener: Cell::new(None),
        };
        let to = route(&mut flows, now, tuple, seg, &self.cfg.tcp, &self.hasher);
        let listener = flows.listener.get();
        match to {
            // (Not after `conn_mut` found none; routing's own first case.)
            Route::Conn(h) => {
                let Some(c) = self.table.get_mut(h) else {
                    return;
                };
                let verdict = c
                    .tcp
                    .handle_segment(now, &self.cfg.tcp, &mut self.stats.tcp, seg);
                mark(&mut self.touched, c, h);
                self.conn_verdict(tuple, seg, verdict);
            }
            Route::TimeWaitDrop => {}
            Route::ListenDrop => self.stats.drop(DropReason::ListenNoSynNoAck),
            // Anything that would be answered, or open a connection, from an
            // impossible source is dropped (no connection has one).
            _ if !self.valid_source(tuple.remote_host()) => self.stats.drop(DropReason::BadSource),
            Route::TimeWaitAck(r) => {
                let mut tcp = [0u8; 64];
                let n = r.emit_ack(now, &mut tcp);
                self.ctrl_tcp(tuple, &tcp[..n]);
            }
            Route::Syn => {
                if let Some(app) = listener {
                    self.accept_syn(now, tuple, seg, app);
                }
            }
            Route::CookieSynAck(iss) => self.send_cookie_syn_ack(tuple, seg, iss),
            Route::CookieAck { iss, mss } => self.accept_cookie(now, tuple, seg, iss, mss),
            Route::NoConnection => {
                self.stats.drop(DropReason::NoConnection);
                self.send_rst_reply(tuple, seg);
            }
        }
    }
}
