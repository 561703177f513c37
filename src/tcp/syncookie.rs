//! SYN cookies (RFC 4987 3.6): under a SYN flood the listener keeps no state
//! for a SYN; its SYN-ACK's sequence number encodes what it needs, and the
//! final ACK proves the peer got it.
//!
//! Cookie layout (the ISN of the SYN-ACK), 32 bits:
//! `t` (5 bits: a 64-second clock) | `m` (3 bits: MSS table index) |
//! 24 bits of a keyed hash of (4-tuple, peer ISN, t).
//! A cookie is valid for the current and the previous clock tick (64-128 s).
//! As with classic cookies, window scaling, SACK and timestamps are not
//! negotiated for connections made from one.
//!
//! Both IP families: the tuple is hashed as its family's (`TupleHasher`),
//! and `m` indexes the family's own table (`MSS_TABLE`, `MSS_TABLE_V6`).

use super::isn::TupleHasher;
use crate::time::Instant;
use crate::wire::{AsFlowKey, IpFamily, SeqNumber};

/// IPv4 MSS values a cookie can carry (RFC 4987 suggests a small table).
pub const MSS_TABLE: [u16; 8] = [536, 1024, 1200, 1360, 1400, 1440, 1460, 8960];

/// IPv6 MSS values a cookie can carry: the MSS (MTU less 60 bytes of IPv6
/// and TCP headers) of the path MTUs IPv6 traffic commonly meets, so that a
/// peer's MSS rounds down by little:
/// - 1220: the IPv6 minimum link MTU, 1280 (RFC 8200 5); also RFC 9293
///   3.7.1's default IPv6 MSS (what a SYN without the option means);
/// - 1360: MTU 1420, WireGuard's default;
/// - 1390: MTU 1450, VXLAN over IPv4 on a 1500 network (RFC 7348, 50 bytes);
/// - 1400: MTU 1460, the default of some cloud networks (e.g. Google VPC);
/// - 1420: MTU 1480, 6in4 / 6to4 tunnels (RFC 4213: 20 bytes of IPv4);
/// - 1432: MTU 1492, PPPoE (RFC 2516: 8 bytes), common on DSL;
/// - 1440: MTU 1500, Ethernet (the usual case);
/// - 8940: MTU 9000, jumbo frames.
///
/// (An IPv4 value below 1220 would never be chosen for IPv6: every IPv6 link
/// carries 1280.)
pub const MSS_TABLE_V6: [u16; 8] = [1220, 1360, 1390, 1400, 1420, 1432, 1440, 8940];

/// The MSS table of family `A` (a constant once monomorphised).
#[inline(always)]
pub fn mss_table<A: IpFamily>() -> &'static [u16; 8] {
    if A::VERSION == 6 {
        &MSS_TABLE_V6
    } else {
        &MSS_TABLE
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynCookies {
    hasher: TupleHasher,
}

fn tick(now: Instant) -> u32 {
    ((now.as_millis() / 1000) / 64) as u32
}

impl SynCookies {
    pub fn new(hasher: TupleHasher) -> SynCookies {
        SynCookies { hasher }
    }

    fn hash<T: AsFlowKey>(&self, t: T, peer_isn: SeqNumber, tick: u32) -> u32 {
        let k = t.flow_key();
        (self
            .hasher
            .hash(k.local(), k.remote(), peer_isn.0 ^ tick.rotate_left(16)) as u32)
            & 0x00ff_ffff
    }

    /// The ISN for a SYN-ACK answering `peer_isn` with the peer's `mss`, for
    /// the 4-tuple `t` (an IPv4 `FourTuple`, or a `FlowKey` of either family).
    pub fn encode<T: AsFlowKey>(
        &self,
        now: Instant,
        t: T,
        peer_isn: SeqNumber,
        mss: u16,
    ) -> SeqNumber {
        // The largest table MSS not above the peer's.
        let table = mss_table::<T::Ip>();
        let m = table.iter().rposition(|&v| v <= mss).unwrap_or(0) as u32;
        let k = tick(now) & 31;
        SeqNumber((k << 27) | (m << 24) | self.hash(t, peer_isn, k))
    }

    /// Checks the ACK of a cookie SYN-ACK: `ack` is SEG.ACK, `seq` SEG.SEQ.
    /// Returns the MSS it encoded, or `None` for a forged or stale cookie.
    pub fn validate<T: AsFlowKey>(
        &self,
        now: Instant,
        t: T,
        seq: SeqNumber,
        ack: SeqNumber,
    ) -> Option<u16> {
        let cookie = (ack - 1).0;
        let peer_isn = seq - 1;
        let k = cookie >> 27;
        let now_k = tick(now) & 31;
        // This tick or the one before (modulo the 5-bit clock).
        if k != now_k && k != (now_k + 31) & 31 {
            return None;
        }
        if cookie & 0x00ff_ffff != self.hash(t, peer_isn, k) {
            return None;
        }
        Some(mss_table::<T::Ip>()[((cookie >> 24) & 7) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::FourTuple;
    use crate::wire::FlowKey;
    use std::net::{Ipv6Addr, SocketAddrV6};
    use std::time::Duration;

    fn tuple() -> FourTuple {
        FourTuple {
            local: "10.0.0.2:80".parse().unwrap(),
            remote: "10.0.0.1:40000".parse().unwrap(),
        }
    }

    fn tuple6() -> FlowKey<Ipv6Addr> {
        let l: SocketAddrV6 = "[2001:db8::2]:80".parse().unwrap();
        let r: SocketAddrV6 = "[2001:db8:1::1]:40000".parse().unwrap();
        FlowKey::new(l, r)
    }

    #[test]
    fn round_trip_and_mss() {
        let c = SynCookies::new(TupleHasher::new(7, 9));
        let now = Instant::from_millis(1_000_000);
        let peer = SeqNumber(123_456);
        for (mss, want) in [
            (1460, 1460),
            (1500, 1460),
            (1300, 1200),
            (100, 536),
            (9000, 8960),
        ] {
            let isn = c.encode(now, tuple(), peer, mss);
            assert_eq!(c.validate(now, tuple(), peer + 1, isn + 1), Some(want));
            // A FourTuple and its FlowKey are the same tuple.
            let key = FlowKey::from(tuple());
            assert_eq!(c.encode(now, key, peer, mss), isn);
        }
    }

    #[test]
    fn ipv6_round_trip_and_mss() {
        // The IPv6 table: 1440 on a 1500 MTU, 1220 at the IPv6 minimum MTU
        // (RFC 8200 5) and below it, each common path MTU's MSS exactly.
        let c = SynCookies::new(TupleHasher::new(7, 9));
        let now = Instant::from_millis(1_000_000);
        let peer = SeqNumber(0xffff_fff0);
        for (mss, want) in [
            (1440, 1440),
            (1460, 1440),
            (1220, 1220),
            (536, 1220),
            (1300, 1220),
            (1360, 1360),
            (1392, 1390),
            (1400, 1400),
            (1420, 1420),
            (1432, 1432),
            (1439, 1432),
            (8940, 8940),
            (65535, 8940),
        ] {
            let isn = c.encode(now, tuple6(), peer, mss);
            assert_eq!(
                c.validate(now, tuple6(), peer + 1, isn + 1),
                Some(want),
                "mss {mss}"
            );
        }
        // Every entry of both tables round-trips through its index.
        for v in MSS_TABLE_V6 {
            let isn = c.encode(now, tuple6(), peer, v);
            assert_eq!(c.validate(now, tuple6(), peer + 1, isn + 1), Some(v));
        }
        for v in MSS_TABLE {
            let isn = c.encode(now, tuple(), peer, v);
            assert_eq!(c.validate(now, tuple(), peer + 1, isn + 1), Some(v));
        }
        assert!(MSS_TABLE_V6.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(MSS_TABLE_V6[0], 1280 - 60);
        assert!(MSS_TABLE_V6.contains(&<Ipv6Addr as IpFamily>::MSS_1500));
    }

    /// Forged, stale and misdirected ACKs of a cookie for tuple `t`
    /// (`other` another tuple of its family) are all refused.
    fn refuses_all_but_its_own<T: AsFlowKey>(t: T, other: T) {
        let c = SynCookies::new(TupleHasher::new(7, 9));
        let now = Instant::from_millis(1_000_000);
        let peer = SeqNumber(99);
        let isn = c.encode(now, t, peer, 1460);
        assert!(c.validate(now, t, peer + 1, isn + 1).is_some());
        // Next tick still fine; two ticks later stale.
        let next = now + Duration::from_secs(64);
        assert!(c.validate(next, t, peer + 1, isn + 1).is_some());
        let stale = now + Duration::from_secs(200);
        assert!(c.validate(stale, t, peer + 1, isn + 1).is_none());
        // Before it was made (clock from the future).
        let before = Instant::from_millis(1_000_000 - 128_000);
        assert!(c.validate(before, t, peer + 1, isn + 1).is_none());
        assert!(
            c.validate(now, t, peer + 2, isn + 1).is_none(),
            "other peer ISN"
        );
        assert!(
            c.validate(now, t, peer + 1, isn + 2).is_none(),
            "forged ACK"
        );
        assert!(c.validate(now, other, peer + 1, isn + 1).is_none());
        let other_key = SynCookies::new(TupleHasher::new(8, 9));
        assert!(other_key.validate(now, t, peer + 1, isn + 1).is_none());
        // A blind guess succeeds about once in 2^24.
        let hits = (0..100_000u32)
            .filter(|g| {
                c.validate(now, t, peer + 1, SeqNumber(g.wrapping_mul(2_654_435_761)))
                    .is_some()
            })
            .count();
        assert!(hits <= 1, "{hits}");
    }

    #[test]
    fn rejects_forged_stale_and_other_tuples() {
        let other = FourTuple {
            remote: "10.0.0.1:40001".parse().unwrap(),
            ..tuple()
        };
        refuses_all_but_its_own(tuple(), other);
    }

    #[test]
    fn ipv6_rejects_forged_stale_and_other_tuples() {
        let mut other = tuple6();
        other.remote_ip = "2001:db8:1::2".parse().unwrap();
        refuses_all_but_its_own(tuple6(), other);
        // Each part of the tuple is in the hash: the high half of an
        // address, the low, either port.
        let c = SynCookies::new(TupleHasher::new(7, 9));
        let now = Instant::from_millis(1_000_000);
        let isn = c.encode(now, tuple6(), SeqNumber(5), 1440);
        let mut changed = vec![];
        let mut k = tuple6();
        k.local_ip = "2001:db9::2".parse().unwrap();
        changed.push(k);
        let mut k = tuple6();
        k.local_ip = "2001:db8::3".parse().unwrap();
        changed.push(k);
        let mut k = tuple6();
        k.local_port = 81;
        changed.push(k);
        let mut k = tuple6();
        k.remote_port = 40001;
        changed.push(k);
        changed.push(tuple6().reversed());
        for k in changed {
            assert!(c.validate(now, k, SeqNumber(6), isn + 1).is_none(), "{k:?}");
        }
    }

    #[test]
    fn a_cookie_does_not_cross_families() {
        // The IPv4 tuple and its v4-mapped IPv6 form hash differently: a
        // cookie made for one does not open the other.
        let c = SynCookies::new(TupleHasher::new(7, 9));
        let now = Instant::from_millis(1_000_000);
        let t = tuple();
        let mapped: FlowKey<Ipv6Addr> = FlowKey::new(
            SocketAddrV6::new(t.local.ip().to_ipv6_mapped(), t.local.port(), 0, 0),
            SocketAddrV6::new(t.remote.ip().to_ipv6_mapped(), t.remote.port(), 0, 0),
        );
        let isn = c.encode(now, t, SeqNumber(1), 1460);
        assert!(c.validate(now, mapped, SeqNumber(2), isn + 1).is_none());
        let isn6 = c.encode(now, mapped, SeqNumber(1), 1440);
        assert!(c.validate(now, t, SeqNumber(2), isn6 + 1).is_none());
    }
}
