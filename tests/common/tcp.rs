//! A two-connection harness for TCP engine tests: segments move between two
//! `Connection`s as bytes (so checksums and parsing are exercised), in
//! virtual time, with hooks to drop, hold or forge segments.

#![allow(dead_code)]

use sluice::tcp::{Connection, Ends, Event, FourTuple, SegmentVerdict, TcpConfig, TcpStats};
use sluice::time::Instant;
use sluice::wire::{ChecksumMode, SeqNumber, TcpPacket, TcpRepr};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Duration;

thread_local! {
    /// The engine's counters, one set per connection (by local address), for
    /// the test running on this thread. A shard keeps one set for all.
    static STATS: RefCell<HashMap<SocketAddrV4, TcpStats>> = RefCell::new(HashMap::new());
}

fn with_stats<R>(local: SocketAddrV4, f: impl FnOnce(&mut TcpStats) -> R) -> R {
    STATS.with(|m| f(m.borrow_mut().entry(local).or_default()))
}

/// The counters `c`'s calls have bumped in this test.
pub fn stats(c: &Connection) -> TcpStats {
    with_stats(tuple_of(c).local, |s| *s)
}

pub const A: &str = "10.0.0.1:40000";
pub const B: &str = "10.0.0.2:80";

pub fn addr(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

pub fn tuple_ab() -> FourTuple {
    FourTuple {
        local: addr(A),
        remote: addr(B),
    }
}

/// `c`'s 4-tuple: one of the two the scenarios use (`tuple_ab`, `tuple_ba`),
/// known by its local port (a control block keeps only the ports and the
/// addresses' sum, which must agree).
pub fn tuple_of(c: &Connection) -> FourTuple {
    let e = c.ends();
    let t = match e.local_port {
        40000 => tuple_ab(),
        80 => tuple_ba(),
        p => panic!("no scenario tuple with local port {p}"),
    };
    // A listening connection has no remote end yet.
    if e.remote_port != 0 {
        assert_eq!(
            Ends::from(t),
            e,
            "the scenario tuple and the control block's ends"
        );
    }
    t
}

pub fn tuple_ba() -> FourTuple {
    FourTuple {
        local: addr(B),
        remote: addr(A),
    }
}

/// One segment on the wire.
#[derive(Clone, Debug)]
pub struct Seg {
    pub bytes: Vec<u8>,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

impl Seg {
    pub fn repr(&self) -> TcpRepr<'_> {
        let p = TcpPacket::new_checked(&self.bytes[..]).expect("valid segment");
        TcpRepr::parse(&p, *self.src.ip(), *self.dst.ip(), ChecksumMode::Verify)
            .expect("valid segment")
    }
}

/// Everything `c` wants to send now.
pub fn drain(c: &mut Connection, now: Instant, cfg: &TcpConfig) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(n) = poll_transmit_checked(c, now, cfg, &mut buf) {
        // RFC 9293 3.7.1 (with RFC 6691): the MSS counts data only, so header
        // options, SACK blocks included, come out of it: a segment is never
        // longer than the MSS plus the 20-byte fixed header. Both ends of
        // these scenarios announce `cfg.mss`.
        assert!(
            n <= 20 + usize::from(cfg.mss),
            "a {n}-byte segment exceeds MSS {} + 20",
            cfg.mss
        );
        out.push(Seg {
            bytes: buf[..n].to_vec(),
            src: tuple_of(c).local,
            dst: tuple_of(c).remote,
        });
        assert!(out.len() < 10_000, "runaway transmit");
    }
    out
}

/// `poll_transmit`, first checking `wants_transmit` against it: when the
/// connection says it wants nothing, the poll must give nothing and change
/// nothing (the shard skips the poll then), so every scenario test checks it.
pub fn poll_transmit_checked(
    c: &mut Connection,
    now: Instant,
    cfg: &TcpConfig,
    buf: &mut [u8],
) -> Option<usize> {
    let local = tuple_of(c).local;
    let before = (!c.wants_transmit()).then(|| (format!("{c:?}"), stats(c)));
    let mut general = c.clone();
    let mut general_stats = stats(c);
    let mut general_buf = vec![0u8; buf.len()];
    let expected =
        general.poll_transmit_unpredicted(now, cfg, &mut general_stats, &mut general_buf);
    let n = with_stats(local, |st| c.poll_transmit(now, cfg, st, buf));
    assert_transmit_unpredicted_agrees(c, n, buf, &general, expected, &general_buf, general_stats);
    if let Some(n) = n {
        assert_general_emit_agrees(c, &buf[..n]);
    }
    if let Some((conn, st)) = before {
        assert_eq!(
            n, None,
            "wants_transmit said no, poll_transmit sent: {conn}"
        );
        assert_eq!(
            format!("{c:?}"),
            conn,
            "wants_transmit said no, the poll changed the connection"
        );
        assert_eq!(stats(c), st, "wants_transmit said no, the poll counted");
    }
    n
}

/// The transmit fast path must do exactly what the general path
/// (`poll_transmit_unpredicted`, run on a copy) does: the same segment,
/// byte for byte, the same connection afterwards, the same counters but
/// the count of predicted segments. Every poll of every scenario is
/// checked so.
fn assert_transmit_unpredicted_agrees(
    c: &Connection,
    n: Option<usize>,
    buf: &[u8],
    general: &Connection,
    expected: Option<usize>,
    general_buf: &[u8],
    mut general_stats: TcpStats,
) {
    assert_eq!(
        n.map(|n| &buf[..n]),
        expected.map(|n| &general_buf[..n]),
        "the transmit fast path wrote another segment than the general path: {general:?}"
    );
    assert_eq!(
        format!("{c:?}"),
        format!("{general:?}"),
        "the transmit fast path left another connection than the general path"
    );
    // The one difference allowed: the count of predicted segments.
    general_stats.segs_out_predicted = stats(c).segs_out_predicted;
    assert_eq!(
        stats(c),
        general_stats,
        "the transmit fast path counted otherwise"
    );
}

/// The engine writes its usual segments at fixed offsets: the general
/// `TcpRepr` path must write exactly the same bytes for what they say, so
/// every segment of every scenario is parsed and emitted again.
fn assert_general_emit_agrees(c: &Connection, seg: &[u8]) {
    let t = tuple_of(c);
    let p = TcpPacket::new_checked(seg).expect("valid segment");
    let r = TcpRepr::parse(&p, *t.local.ip(), *t.remote.ip(), ChecksumMode::Verify)
        .expect("valid segment");
    let mut again = vec![0u8; r.buffer_len()];
    r.emit(
        &mut TcpPacket::new_unchecked(&mut again[..]),
        *t.local.ip(),
        *t.remote.ip(),
    );
    assert_eq!(again, seg, "the general emit disagrees: {r:?}");
}

/// Hands `s` to `c`, checking on a copy that the general path (no header
/// prediction) does exactly what `handle_segment` did: the same connection
/// afterwards, the same counters, the same verdict. Every segment of every
/// scenario is checked so.
pub fn deliver(c: &mut Connection, now: Instant, cfg: &TcpConfig, s: &Seg) -> SegmentVerdict {
    let seg = s.repr();
    let mut general = c.clone();
    let mut general_stats = stats(c);
    let expected = general.handle_segment_unpredicted(now, cfg, &mut general_stats, &seg);
    let verdict = with_stats(tuple_of(c).local, |st| c.handle_segment(now, cfg, st, &seg));
    // What to say of the segment: its header and its length, not its bytes.
    let len = seg.payload.len();
    let seg = TcpRepr {
        payload: &[],
        ..seg
    };
    assert_eq!(
        verdict, expected,
        "header prediction changed the verdict: {seg:?} with {len} bytes"
    );
    assert_eq!(
        format!("{c:?}"),
        format!("{general:?}"),
        "header prediction left another connection than the general path: {seg:?} with {len} bytes"
    );
    // The one difference allowed: the count of predicted segments.
    general_stats.segs_predicted = stats(c).segs_predicted;
    assert_eq!(
        stats(c),
        general_stats,
        "header prediction counted otherwise: {seg:?} with {len} bytes"
    );
    verdict
}

/// Runs `c`'s expired timers.
pub fn timeout(c: &mut Connection, now: Instant, cfg: &TcpConfig) {
    with_stats(tuple_of(c).local, |st| c.handle_timeout(now, cfg, st))
}

pub fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Builds a segment as the peer of `c` would send it (for forged input).
pub fn forge(c: &Connection, cfg: &TcpConfig, f: impl FnOnce(&mut TcpRepr<'static>)) -> Seg {
    let t = tuple_of(c);
    let mut r = TcpRepr {
        src_port: t.remote.port(),
        dst_port: t.local.port(),
        seq_number: c.rcv_nxt(),
        ack_number: Some(c.snd_nxt()),
        window_len: 65535,
        ..TcpRepr::default()
    };
    if c.timestamps_enabled() {
        r.timestamp = Some(sluice::wire::TcpTimestamp {
            tsval: c.ts_recent().unwrap_or(0).wrapping_add(1),
            tsecr: 0,
        });
    }
    f(&mut r);
    let _ = cfg;
    let mut bytes = vec![0u8; r.buffer_len()];
    r.emit(
        &mut TcpPacket::new_unchecked(&mut bytes[..]),
        *t.remote.ip(),
        *t.local.ip(),
    );
    Seg {
        bytes,
        src: t.remote,
        dst: t.local,
    }
}

/// Two connections and a clock.
pub struct Pair {
    pub cfg: TcpConfig,
    pub a: Connection,
    pub b: Connection,
    pub now: Instant,
}

impl Pair {
    /// A connects to B (B in LISTEN).
    pub fn new(cfg: TcpConfig) -> Pair {
        let now = Instant::from_millis(1_000);
        let a = Connection::connect(&cfg, tuple_ab(), SeqNumber(1000), now);
        let mut b = Connection::listen(&cfg, addr(B), SeqNumber(5000), now);
        b.set_remote(addr(A));
        Pair { cfg, a, b, now }
    }

    /// Moves segments both ways until nothing more is sent. Returns how many moved.
    pub fn exchange(&mut self) -> usize {
        let mut moved = 0;
        loop {
            let sa = drain(&mut self.a, self.now, &self.cfg);
            let sb = drain(&mut self.b, self.now, &self.cfg);
            if sa.is_empty() && sb.is_empty() {
                return moved;
            }
            moved += sa.len() + sb.len();
            for s in &sa {
                deliver(&mut self.b, self.now, &self.cfg, s);
            }
            for s in &sb {
                deliver(&mut self.a, self.now, &self.cfg, s);
            }
            assert!(moved < 1_000_000, "runaway exchange");
        }
    }

    /// Advances time to the earlier deadline (or by `max`), firing timers, then exchanges.
    pub fn advance(&mut self, max: Duration) {
        let limit = self.now + max;
        let next = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        self.now = match next {
            Some(t) if t <= limit => t.max(self.now),
            _ => limit,
        };
        timeout(&mut self.a, self.now, &self.cfg);
        timeout(&mut self.b, self.now, &self.cfg);
        self.exchange();
    }

    pub fn handshake(&mut self) {
        self.exchange();
    }
}
