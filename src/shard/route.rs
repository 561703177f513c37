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
//!
//! Either family: `Flows<A>`, `Lookup`, `Route` and `route` take the family
//! as a parameter, IPv4 by default (whose tuple stays a `FourTuple`).

use crate::tcp::{FourTuple, SynCookies, TcpConfig, TimeWaitRecord, TimeWaitVerdict, TupleHasher};
use crate::time::Instant;
use crate::wire::{AsFlowKey, FlowKey, IpFamily, SeqNumber, TcpControl, TcpRepr};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// An IP family as routing takes it: how its endpoints name a 4-tuple
/// (IPv4: `FourTuple`, as the IPv4 shard always has; IPv6: a `FlowKey`).
pub trait RouteFamily: IpFamily {
    type Tuple: AsFlowKey<Ip = Self> + Copy + Eq + core::hash::Hash + core::fmt::Debug;
    /// The tuple's local end.
    fn local(t: &Self::Tuple) -> Self::SocketAddr;
    /// The tuple of `local` and `remote`.
    fn tuple(local: Self::SocketAddr, remote: Self::SocketAddr) -> Self::Tuple;
}

impl RouteFamily for Ipv4Addr {
    type Tuple = FourTuple;
    #[inline(always)]
    fn local(t: &FourTuple) -> std::net::SocketAddrV4 {
        t.local
    }
    #[inline(always)]
    fn tuple(local: std::net::SocketAddrV4, remote: std::net::SocketAddrV4) -> FourTuple {
        FourTuple { local, remote }
    }
}

impl RouteFamily for Ipv6Addr {
    type Tuple = FlowKey<Ipv6Addr>;
    #[inline(always)]
    fn local(t: &FlowKey<Ipv6Addr>) -> std::net::SocketAddrV6 {
        t.local()
    }
    #[inline(always)]
    fn tuple(local: std::net::SocketAddrV6, remote: std::net::SocketAddrV6) -> FlowKey<Ipv6Addr> {
        FlowKey::new(local, remote)
    }
}

/// What the endpoint holds for a 4-tuple.
pub enum Lookup<'a, H, A: IpFamily = Ipv4Addr> {
    /// An open connection (any state but TIME_WAIT once swapped for a record).
    Conn(H),
    /// A TIME_WAIT record.
    TimeWait(&'a mut TimeWaitRecord<A>),
    None,
}

/// The endpoint's flows of family `A`, as routing needs to see them.
pub trait Flows<A: RouteFamily = Ipv4Addr> {
    type Handle: Copy;
    /// The 4-tuple's open connection or TIME_WAIT record.
    fn lookup(&mut self, t: A::Tuple) -> Lookup<'_, Self::Handle, A>;
    /// Forgets the 4-tuple's TIME_WAIT record: a new SYN reopens it (RFC 6191).
    fn reopen(&mut self, t: A::Tuple);
    /// Whether a listener takes connections to `local`.
    fn listening(&self, local: A::SocketAddr) -> bool;
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
pub fn route<A: RouteFamily, F: Flows<A>>(
    flows: &mut F,
    now: Instant,
    tuple: A::Tuple,
    seg: &TcpRepr,
    cfg: &TcpConfig,
    hasher: &TupleHasher,
) -> Route<F::Handle, A> {
    match flows.lookup(tuple) {
        Lookup::Conn(h) => return Route::Conn(h),
        Lookup::TimeWait(r) => match r.handle_segment(now, cfg.time_wait(), seg) {
            TimeWaitVerdict::Drop => return Route::TimeWaitDrop,
            TimeWaitVerdict::Ack => return Route::TimeWaitAck(*r),
            TimeWaitVerdict::NewSyn => flows.reopen(tuple),
        },
        Lookup::None => {}
    }
    if !flows.listening(A::local(&tuple)) {
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
    use crate::tcp::Connection;
    use std::collections::HashMap;
    use std::net::SocketAddrV4;

    /// Flows in plain maps (IPv4: `Maps`).
    struct MapsOf<A: RouteFamily> {
        conns: HashMap<A::Tuple, u32>,
        tw: HashMap<A::Tuple, TimeWaitRecord<A>>,
        listening: bool,
        half_open: usize,
        reopened: u32,
        overflow: Option<Instant>,
    }

    type Maps = MapsOf<Ipv4Addr>;

    impl<A: RouteFamily> Default for MapsOf<A> {
        fn default() -> Self {
            MapsOf {
                conns: HashMap::new(),
                tw: HashMap::new(),
                listening: false,
                half_open: 0,
                reopened: 0,
                overflow: None,
            }
        }
    }

    impl<A: RouteFamily> Flows<A> for MapsOf<A> {
        type Handle = u32;
        fn lookup(&mut self, t: A::Tuple) -> Lookup<'_, u32, A> {
            if let Some(h) = self.conns.get(&t) {
                return Lookup::Conn(*h);
            }
            match self.tw.get_mut(&t) {
                Some(r) => Lookup::TimeWait(r),
                None => Lookup::None,
            }
        }
        fn reopen(&mut self, t: A::Tuple) {
            self.tw.remove(&t);
            self.reopened += 1;
        }
        fn listening(&self, _: A::SocketAddr) -> bool {
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

    /// The same routing over IPv6: a listener takes a SYN, answers with a
    /// cookie past the half-open limit, and the ACK carrying it back opens
    /// a connection with the MSS the cookie kept (from IPv6's MSS table:
    /// 1440, a 1500-byte MTU's, RFC 8200 5).
    #[test]
    fn ipv6_syn_and_cookie_round_trip() {
        let (cfg, h) = (TcpConfig::default(), TupleHasher::new(1, 2));
        let t = FlowKey::<Ipv6Addr>::new(
            "[2001:db8::1]:80".parse().unwrap(),
            "[2001:db8:1::9]:40000".parse().unwrap(),
        );
        let mut m = MapsOf::<Ipv6Addr> {
            listening: true,
            ..MapsOf::default()
        };
        let syn = TcpRepr {
            max_seg_size: Some(1440),
            ..syn()
        };
        assert_eq!(route(&mut m, NOW, t, &syn, &cfg, &h), Route::Syn);
        m.half_open = cfg.syn_cookie_threshold;
        let Route::CookieSynAck(iss) = route(&mut m, NOW, t, &syn, &cfg, &h) else {
            panic!("past the half-open limit a SYN gets a cookie");
        };
        assert_eq!(
            route(&mut m, NOW, t, &cookie_ack(iss), &cfg, &h),
            Route::CookieAck { iss, mss: 1440 }
        );
        // The cookie is the tuple's: the same ACK from another source is not.
        let other = FlowKey::<Ipv6Addr>::new(t.local(), "[2001:db8:1::a]:40000".parse().unwrap());
        assert_eq!(
            route(&mut m, NOW, other, &cookie_ack(iss), &cfg, &h),
            Route::NoConnection
        );
        // An open connection takes its segments first.
        m.conns.insert(t, 3);
        assert_eq!(route(&mut m, NOW, t, &syn, &cfg, &h), Route::Conn(3));
    }
}
