//! Where an arriving TCP segment goes, with no I/O: the one routing function
//! that the shard ([`super::Stack`]) and the simulation ([`crate::sim::Host`])
//! both call, so the lossy simulation exercises the shard's own routing.
//!
//! In order (RFC 9293 3.10.7): the 4-tuple's open connection; else its
//! TIME_WAIT record (which re-ACKs a retransmitted FIN, drops the rest, or
//! lets a new SYN reopen the tuple, RFC 6191); else a listener on the local
//! address: a SYN opens a connection, or, past the half-open limit, is answered
//! with a SYN cookie (RFC 4987); an ACK carrying a valid cookie (looked for
//! only within `COOKIE_WINDOW` of the last cookie sent) opens a connection
//! from it; any other segment without an ACK (and not an RST) a listener
//! drops unanswered (RFC 9293 3.10.7.2); else the segment is for no
//! connection and gets the RST RFC 9293 3.10.7.1 gives (none to a RST).

use crate::tcp::{SynCookies, TcpConfig, TimeWaitRecord, TimeWaitVerdict, TupleHasher};
use crate::time::Instant;
use crate::wire::{AsFlowKey, IpFamily, SeqNumber, TcpControl, TcpRepr};
use std::net::Ipv4Addr;
use std::time::Duration;

/// What the endpoint holds for a 4-tuple (of family `A`, IPv4 by default).
pub enum Lookup<'a, H, A: IpFamily = Ipv4Addr> {
    /// An open connection (any state but TIME_WAIT once swapped for a record).
    Conn(H),
    /// A TIME_WAIT record.
    TimeWait(&'a mut TimeWaitRecord<A>),
    None,
}

/// The family of a `Flows`' tuples.
pub type FamilyOf<F> = <<F as Flows>::Tuple as AsFlowKey>::Ip;

/// The endpoint's flows, as routing needs to see them: of one family, named
/// by their tuple type (the engine's IPv4 `FourTuple`, or a `FlowKey` of
/// either family).
pub trait Flows {
    type Handle: Copy;
    type Tuple: AsFlowKey;
    /// The 4-tuple's open connection or TIME_WAIT record.
    fn lookup(&mut self, t: Self::Tuple) -> Lookup<'_, Self::Handle, FamilyOf<Self>>;
    /// Forgets the 4-tuple's TIME_WAIT record: a new SYN reopens it (RFC 6191).
    fn reopen(&mut self, t: Self::Tuple);
    /// Whether a listener takes connections to `local`.
    fn listening(&self, local: <FamilyOf<Self> as IpFamily>::SocketAddr) -> bool;
    /// Connections in SYN-RECEIVED now (asked only for a SYN to a listener).
    fn half_open(&self) -> usize;
    /// When a SYN was last answered with a cookie (the half-open limit hit).
    fn syn_overflow_at(&self) -> Option<Instant>;
    fn set_syn_overflow_at(&mut self, now: Instant);
}

/// How long after the last SYN answered with a cookie an ACK may carry one:
/// a cookie lives for its 64-second tick and the next (`tcp::syncookie`).
/// Linux keeps cookies checkable for 2 minutes (`TCP_SYNCOOKIE_VALID`).
pub const COOKIE_WINDOW: Duration = Duration::from_secs(128);

/// Where a segment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<H, A: IpFamily = Ipv4Addr> {
    /// To the open connection (the engine's SEGMENT ARRIVES takes it).
    Conn(H),
    /// The TIME_WAIT record answers with its ACK (a retransmitted FIN, or an
    /// unacceptable segment, RFC 9293 3.10.7.4 and RFC 1337).
    TimeWaitAck(TimeWaitRecord<A>),
    /// The TIME_WAIT record drops it.
    TimeWaitDrop,
    /// A SYN a listener takes: open a connection in SYN-RECEIVED.
    Syn,
    /// A SYN past the half-open limit: answer with this cookie as our ISS and
    /// keep nothing (RFC 4987).
    CookieSynAck(SeqNumber),
    /// An ACK that carries a valid cookie: open a connection from it, with
    /// our ISS and the MSS the cookie encoded.
    CookieAck { iss: SeqNumber, mss: u16 },
    /// A listener drops it: neither SYN, ACK nor RST (RFC 9293 3.10.7.2,
    /// "any other text or control").
    ListenDrop,
    /// For no connection: answer with `rst_reply` (RFC 9293 3.10.7.1).
    NoConnection,
}

/// Routes `seg`, which arrived for `tuple` (local = our side).
#[inline(always)]
pub fn route<F: Flows>(
    flows: &mut F,
    now: Instant,
    tuple: F::Tuple,
    seg: &TcpRepr,
    cfg: &TcpConfig,
    hasher: &TupleHasher,
) -> Route<F::Handle, FamilyOf<F>> {
    match flows.lookup(tuple) {
        Lookup::Conn(h) => return Route::Conn(h),
        Lookup::TimeWait(r) => match r.handle_segment(now, cfg.time_wait(), seg) {
            TimeWaitVerdict::Drop => return Route::TimeWaitDrop,
            TimeWaitVerdict::Ack => return Route::TimeWaitAck(*r),
            TimeWaitVerdict::NewSyn => flows.reopen(tuple),
        },
        Lookup::None => {}
    }
    if !flows.listening(tuple.flow_key().local()) {
        return Route::NoConnection;
    }
    let is_syn = seg.control == TcpControl::Syn && seg.ack_number.is_none();
    if is_syn {
        if flows.half_open() >= cfg.syn_cookie_threshold {
            let cookies = SynCookies::new(*hasher);
            let mss = seg.max_seg_size.unwrap_or(536);
            flows.set_syn_overflow_at(now);
            return Route::CookieSynAck(cookies.encode(now, tuple, seg.seq_number, mss));
        }
        return Route::Syn;
    }
    // RFC 9293 3.10.7.2: a listener answers an ACK with RST (below, unless it
    // carries a cookie) and ignores an RST; anything else it drops.
    if seg.ack_number.is_none() && seg.control != TcpControl::Rst {
        return Route::ListenDrop;
    }
    // Only while cookies we sent may be alive (Linux's last-overflow check):
    // otherwise no ACK is worth a hash, nor a guess at one.
    let recent = |at: Instant| now.saturating_since(at) <= COOKIE_WINDOW;
    if let (TcpControl::None | TcpControl::Fin, Some(ack), Some(true)) = (
        seg.control,
        seg.ack_number,
        flows.syn_overflow_at().map(recent),
    ) {
        let cookies = SynCookies::new(*hasher);
        if let Some(mss) = cookies.validate(now, tuple, seg.seq_number, ack) {
            return Route::CookieAck { iss: ack - 1, mss };
        }
    }
    Route::NoConnection
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::{Connection, FourTuple};
    use crate::wire::FlowKey;
    use std::collections::HashMap;
    use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};

    /// Flows in plain maps.
    #[derive(Default)]
    struct Maps {
        conns: HashMap<FourTuple, u32>,
        tw: HashMap<FourTuple, TimeWaitRecord>,
        listening: bool,
        half_open: usize,
        reopened: u32,
        overflow: Option<Instant>,
    }

    impl Flows for Maps {
        type Handle = u32;
        type Tuple = FourTuple;
        fn lookup(&mut self, t: FourTuple) -> Lookup<'_, u32> {
            if let Some(h) = self.conns.get(&t) {
                return Lookup::Conn(*h);
            }
            match self.tw.get_mut(&t) {
                Some(r) => Lookup::TimeWait(r),
                None => Lookup::None,
            }
        }
        fn reopen(&mut self, t: FourTuple) {
            self.tw.remove(&t);
            self.reopened += 1;
        }
        fn listening(&self, _: SocketAddrV4) -> bool {
            self.listening
        }
        fn half_open(&self) -> usize {
            self.half_open
        }
        fn syn_overflow_at(&self) -> Option<Instant> {
            self.overflow
        }
        fn set_syn_overflow_at(&mut self, now: Instant) {
            self.overflow = Some(now);
        }
    }

    fn tuple() -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80),
            remote: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40000),
        }
    }

    /// The ACK of a SYN-ACK whose ISN was `iss` (the SYN of `syn()`).
    fn cookie_ack(iss: SeqNumber) -> TcpRepr<'static> {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq_number: SeqNumber(1001),
            ack_number: Some(iss + 1),
            ..TcpRepr::default()
        }
    }

    fn syn() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq_number: SeqNumber(1000),
            control: TcpControl::Syn,
            max_seg_size: Some(1460),
            ..TcpRepr::default()
        }
    }

    const NOW: Instant = Instant(5_000_000_000);

    /// IPv6 flows in plain maps, keyed by `FlowKey<Ipv6Addr>`.
    #[derive(Default)]
    struct Maps6 {
        tw: HashMap<FlowKey<Ipv6Addr>, TimeWaitRecord<Ipv6Addr>>,
        listening: Option<SocketAddrV6>,
        half_open: usize,
        overflow: Option<Instant>,
    }

    impl Flows for Maps6 {
        type Handle = u32;
        type Tuple = FlowKey<Ipv6Addr>;
        fn lookup(&mut self, t: FlowKey<Ipv6Addr>) -> Lookup<'_, u32, Ipv6Addr> {
            match self.tw.get_mut(&t) {
                Some(r) => Lookup::TimeWait(r),
                None => Lookup::None,
            }
        }
        fn reopen(&mut self, t: FlowKey<Ipv6Addr>) {
            self.tw.remove(&t);
        }
        fn listening(&self, local: SocketAddrV6) -> bool {
            self.listening == Some(local)
        }
        fn half_open(&self) -> usize {
            self.half_open
        }
        fn syn_overflow_at(&self) -> Option<Instant> {
            self.overflow
        }
        fn set_syn_overflow_at(&mut self, now: Instant) {
            self.overflow = Some(now);
        }
    }

    /// The same routing over IPv6 tuples: a listener on the local address
    /// takes a SYN, answers with an IPv6 cookie past the half-open limit
    /// (MSS 1440, from the IPv6 table), validates its ACK; another local
    /// address has no listener.
    #[test]
    fn ipv6_tuples_route_to_listeners_and_cookies() {
        let (cfg, h) = (TcpConfig::default(), TupleHasher::new(1, 2));
        let local: SocketAddrV6 = "[2001:db8::1]:80".parse().unwrap();
        let remote: SocketAddrV6 = "[2001:db8::2]:40000".parse().unwrap();
        let t = FlowKey::<Ipv6Addr>::new(local, remote);
        let mut m = Maps6 {
            listening: Some(local),
            ..Maps6::default()
        };
        let syn6 = TcpRepr {
            max_seg_size: Some(1440),
            ..syn()
        };
        assert_eq!(route(&mut m, NOW, t, &syn6, &cfg, &h), Route::Syn);
        let other = FlowKey::<Ipv6Addr>::new("[2001:db8::9]:80".parse().unwrap(), remote);
        assert_eq!(
            route(&mut m, NOW, other, &syn6, &cfg, &h),
            Route::NoConnection
        );
        m.half_open = cfg.syn_cookie_threshold;
        let Route::CookieSynAck(iss) = route(&mut m, NOW, t, &syn6, &cfg, &h) else {
            panic!("past the half-open limit a SYN gets a cookie");
        };
        assert_eq!(
            route(&mut m, NOW, t, &cookie_ack(iss), &cfg, &h),
            Route::CookieAck { iss, mss: 1440 }
        );
        // The cookie is the tuple's: the same ACK on another remote is not taken.
        let elsewhere = FlowKey::<Ipv6Addr>::new(local, "[2001:db8::3]:40000".parse().unwrap());
        assert_eq!(
            route(&mut m, NOW, elsewhere, &cookie_ack(iss), &cfg, &h),
            Route::NoConnection
        );
    }

    #[test]
    fn an_open_connection_takes_its_segments_first() {
        let (cfg, h) = (TcpConfig::default(), TupleHasher::new(1, 2));
        let mut m = Maps {
            listening: true,
            ..Maps::default()
        };
        m.conns.insert(tuple(), 7);
        assert_eq!(
            route(&mut m, NOW, tuple(), &syn(), &cfg, &h),
            Route::Conn(7)
        );
    }

    #[test]
    fn a_listener_takes_a_syn_then_answers_with_cookies_past_the_limit() {
        let (cfg, h) = (TcpConfig::default(), TupleHasher::new(1, 2));
        let mut m = Maps {
            listening: true,
            ..Maps::default()
        };
        assert_eq!(route(&mut m, NOW, tuple(), &syn(), &cfg, &h), Route::Syn);
        m.half_open = cfg.syn_cookie_threshold;
        let Route::CookieSynAck(iss) = route(&mut m, NOW, tuple(), &syn(), &cfg, &h) else {
            panic!("past the half-open limit a SYN gets a cookie");
        };
        // The peer's ACK of that SYN-ACK carries the cookie back.
        let ack = cookie_ack(iss);
        assert_eq!(
            route(&mut m, NOW, tuple(), &ack, &cfg, &h),
            Route::CookieAck { iss, mss: 1460 }
        );
        // A forged one does not.
        let forged = TcpRepr {
            ack_number: Some(iss + 2),
            ..ack
        };
        assert_eq!(
            route(&mut m, NOW, tuple(), &forged, &cfg, &h),
            Route::NoConnection
        );
    }

    /// RFC 4987 3.6 has a listener keep no state for SYNs it answers with a
    /// cookie; the cost is that any ACK could carry a valid one, and 24 bits
    /// of hash are all a blind attacker must guess. As Linux does
    /// (`tcp_synq_no_recent_overflow`), an ACK is checked for a cookie only
    /// while cookies we sent can still be alive: within the window after the
    /// half-open limit was last hit. Otherwise it is for no connection.
    #[test]
    fn rfc4987_cookie_acks_checked_only_after_a_recent_overflow() {
        let (cfg, h) = (TcpConfig::default(), TupleHasher::new(1, 2));
        let mut m = Maps {
            listening: true,
            ..Maps::default()
        };
        let ack_for = |now: Instant| {
            cookie_ack(SynCookies::new(h).encode(now, tuple(), SeqNumber(1000), 1460))
        };
        // No cookie was ever sent: a correct one (guessed) is not looked at.
        assert_eq!(
            route(&mut m, NOW, tuple(), &ack_for(NOW), &cfg, &h),
            Route::NoConnection
        );
        // The limit is hit: cookies go out and their ACKs are taken.
        m.half_open = cfg.syn_cookie_threshold;
        assert!(matches!(
            route(&mut m, NOW, tuple(), &syn(), &cfg, &h),
            Route::CookieSynAck(_)
        ));
        m.half_open = 0;
        let later = NOW + std::time::Duration::from_secs(60);
        let ack = ack_for(later);
        assert_eq!(
            route(&mut m, later, tuple(), &ack, &cfg, &h),
            Route::CookieAck {
                iss: ack.ack_number.unwrap() - 1,
                mss: 1460
            }
        );
        // Long after the last overflow, cookies are not checked again.
        let much_later = NOW + std::time::Duration::from_secs(300);
        assert_eq!(
            route(&mut m, much_later, tuple(), &ack_for(much_later), &cfg, &h),
            Route::NoConnection
        );
    }

    #[test]
    fn no_listener_means_no_connection() {
        let (cfg, h) = (TcpConfig::default(), TupleHasher::new(1, 2));
        let mut m = Maps::default();
        assert_eq!(
            route(&mut m, NOW, tuple(), &syn(), &cfg, &h),
            Route::NoConnection
        );
    }

    #[test]
    fn a_time_wait_record_answers_a_fin_and_a_new_syn_reopens_it() {
        let (cfg, h) = (TcpConfig::default(), TupleHasher::new(1, 2));
        // A record from a real close: the passive side's FIN, then ours.
        let t = tuple();
        let mut c = Connection::connect(&cfg, t, SeqNumber(5000), NOW);
        let mut a = Connection::listen(&cfg, t.remote, SeqNumber(9000), NOW);
        a.set_remote(t.local);
        let mut st = crate::tcp::TcpStats::default();
        let mut buf = [0u8; 1600];
        let mut fin_from_a = None;
        for step in 0..40 {
            if step == 6 {
                c.close(NOW, &cfg);
            }
            if step == 12 {
                a.close(NOW, &cfg);
            }
            while let Some(n) = c.poll_transmit(NOW, &cfg, &mut st, &mut buf) {
                let p = crate::wire::TcpPacket::new_checked(&buf[..n]).unwrap();
                let s = TcpRepr::parse(
                    &p,
                    *t.local.ip(),
                    *t.remote.ip(),
                    crate::wire::ChecksumMode::Verify,
                )
                .unwrap();
                a.handle_segment(NOW, &cfg, &mut st, &s);
            }
            while let Some(n) = a.poll_transmit(NOW, &cfg, &mut st, &mut buf) {
                let p = crate::wire::TcpPacket::new_checked(&buf[..n]).unwrap();
                let s = TcpRepr::parse(
                    &p,
                    *t.remote.ip(),
                    *t.local.ip(),
                    crate::wire::ChecksumMode::Verify,
                )
                .unwrap();
                if s.control == TcpControl::Fin {
                    fin_from_a = Some((s.seq_number, s.ack_number, s.timestamp));
                }
                c.handle_segment(NOW, &cfg, &mut st, &s);
            }
        }
        assert_eq!(c.state(), crate::tcp::State::TimeWait);
        let rec = TimeWaitRecord::from_connection(&c, t, NOW, cfg.time_wait()).unwrap();
        let mut m = Maps {
            listening: true,
            ..Maps::default()
        };
        m.tw.insert(t, rec);
        let (seq, ack, ts) = fin_from_a.expect("the peer sent a FIN");
        let fin = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            control: TcpControl::Fin,
            seq_number: seq,
            ack_number: ack,
            timestamp: ts,
            ..TcpRepr::default()
        };
        assert!(matches!(
            route(&mut m, NOW, t, &fin, &cfg, &h),
            Route::TimeWaitAck(_)
        ));
        // RFC 6191: a SYN with a newer timestamp (or, without timestamps, a
        // sequence number above the old ones) reopens the tuple.
        let new_syn = TcpRepr {
            seq_number: seq + 100_000,
            timestamp: ts.map(|mut v| {
                v.tsval = v.tsval.wrapping_add(1000);
                v
            }),
            ..syn()
        };
        assert_eq!(route(&mut m, NOW, t, &new_syn, &cfg, &h), Route::Syn);
        assert_eq!((m.reopened, m.tw.len()), (1, 0));
    }
}
