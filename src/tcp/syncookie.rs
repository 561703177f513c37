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

use super::conn::FourTuple;
use super::isn::TupleHasher;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// MSS values a cookie can carry (RFC 4987 suggests a small table).
pub const MSS_TABLE: [u16; 8] = [536, 1024, 1200, 1360, 1400, 1440, 1460, 8960];

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

    fn hash(&self, t: FourTuple, peer_isn: SeqNumber, tick: u32) -> u32 {
        (self
            .hasher
            .hash(t.local, t.remote, peer_isn.0 ^ tick.rotate_left(16)) as u32)
            & 0x00ff_ffff
    }

    /// The ISN for a SYN-ACK answering `peer_isn` with the peer's `mss`.
    pub fn encode(&self, now: Instant, t: FourTuple, peer_isn: SeqNumber, mss: u16) -> SeqNumber {
        // The largest table MSS not above the peer's.
        let m = MSS_TABLE.iter().rposition(|&v| v <= mss).unwrap_or(0) as u32;
        let k = tick(now) & 31;
        SeqNumber((k << 27) | (m << 24) | self.hash(t, peer_isn, k))
    }

    /// Checks the ACK of a cookie SYN-ACK: `ack` is SEG.ACK, `seq` SEG.SEQ.
    /// Returns the MSS it encoded, or `None` for a forged or stale cookie.
    pub fn validate(
        &self,
        now: Instant,
        t: FourTuple,
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
        Some(MSS_TABLE[((cookie >> 24) & 7) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple() -> FourTuple {
        FourTuple {
            local: "10.0.0.2:80".parse().unwrap(),
            remote: "10.0.0.1:40000".parse().unwrap(),
        }
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
        }
    }

    #[test]
    fn rejects_forged_stale_and_other_tuples() {
        let c = SynCookies::new(TupleHasher::new(7, 9));
        let now = Instant::from_millis(1_000_000);
        let peer = SeqNumber(99);
        let isn = c.encode(now, tuple(), peer, 1460);
        // Next tick still fine; two ticks later stale.
        assert!(
            c.validate(
                now + std::time::Duration::from_secs(64),
                tuple(),
                peer + 1,
                isn + 1
            )
            .is_some()
        );
        assert!(
            c.validate(
                now + std::time::Duration::from_secs(200),
                tuple(),
                peer + 1,
                isn + 1
            )
            .is_none()
        );
        assert!(
            c.validate(now, tuple(), peer + 2, isn + 1).is_none(),
            "other peer ISN"
        );
        assert!(
            c.validate(now, tuple(), peer + 1, isn + 2).is_none(),
            "forged ACK"
        );
        let other = FourTuple {
            remote: "10.0.0.1:40001".parse().unwrap(),
            ..tuple()
        };
        assert!(c.validate(now, other, peer + 1, isn + 1).is_none());
        let other_key = SynCookies::new(TupleHasher::new(8, 9));
        assert!(
            other_key
                .validate(now, tuple(), peer + 1, isn + 1)
                .is_none()
        );
        // A blind guess succeeds about once in 2^24.
        let hits = (0..100_000u32)
            .filter(|g| {
                c.validate(
                    now,
                    tuple(),
                    peer + 1,
                    SeqNumber(g.wrapping_mul(2_654_435_761)),
                )
                .is_some()
            })
            .count();
        assert!(hits <= 1, "{hits}");
    }
}
