//! Initial sequence numbers (RFC 6528): ISN = M + F(localip, localport,
//! remoteip, remoteport, secretkey), where M is a 4-microsecond clock and F a
//! keyed hash. F is SipHash-2-4 with a random 128-bit key per process.

use crate::time::Instant;
use std::net::SocketAddrV4;

/// SipHash-2-4 of a message of `m.len()` whole 8-byte words followed by
/// `last`: the final block, its 0 to 7 trailing message bytes (little-endian)
/// with the message length in the top byte, as the reference pads it.
#[inline(always)]
fn siphash24<const N: usize>(k0: u64, k1: u64, m: [u64; N], last: u64) -> u64 {
    let mut v0 = 0x736f6d6570736575u64 ^ k0;
    let mut v1 = 0x646f72616e646f6du64 ^ k1;
    let mut v2 = 0x6c7967656e657261u64 ^ k0;
    let mut v3 = 0x7465646279746573u64 ^ k1;
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    };
    let mut block = |w: u64| {
        v3 ^= w;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= w;
    };
    for w in m {
        block(w);
    }
    block(last);
    v2 ^= 0xff;
    for _ in 0..4 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^ v1 ^ v2 ^ v3
}

/// A keyed hash over 4-tuples, for ISNs, SYN cookies and the connection table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TupleHasher {
    k0: u64,
    k1: u64,
}

impl TupleHasher {
    pub fn new(k0: u64, k1: u64) -> TupleHasher {
        TupleHasher { k0, k1 }
    }

    /// A key from the OS's random source.
    pub fn random() -> TupleHasher {
        let mut b = [0u8; 16];
        let ok = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
            .is_ok();
        if !ok {
            // No /dev/urandom: std's per-process random hasher keys are the fallback.
            use std::hash::{BuildHasher, Hasher};
            let s = std::collections::hash_map::RandomState::new();
            let mut h = s.build_hasher();
            h.write_u64(0x5eed);
            b[..8].copy_from_slice(&h.finish().to_le_bytes());
            let mut h = s.build_hasher();
            h.write_u64(0xfeed);
            b[8..].copy_from_slice(&h.finish().to_le_bytes());
        }
        TupleHasher::new(
            u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(b[8..].try_into().expect("8 bytes")),
        )
    }

    pub fn hash(&self, local: SocketAddrV4, remote: SocketAddrV4, salt: u32) -> u64 {
        let m0 = (u64::from(u32::from(*local.ip())) << 32) | u64::from(u32::from(*remote.ip()));
        let m1 =
            (u64::from(local.port()) << 48) | (u64::from(remote.port()) << 32) | u64::from(salt);
        siphash24(self.k0, self.k1, [m0, m1], 16u64 << 56)
    }

    /// The keyed hash of the bare 4-tuple: a 12-byte message (addresses,
    /// then ports), so one block fewer than `hash` and never equal to any
    /// of its 16-byte messages (the length is hashed in).
    #[inline]
    fn tuple_hash(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u64 {
        let m0 = (u64::from(u32::from(*local.ip())) << 32) | u64::from(u32::from(*remote.ip()));
        let tail = (u64::from(local.port()) << 16) | u64::from(remote.port());
        siphash24(self.k0, self.k1, [m0], tail | (12u64 << 56))
    }

    /// The timestamp offset for a pair of hosts (RFC 7323 5.4, RFC 6191):
    /// keyed, so the peer cannot read our clock from it, and the same for
    /// every connection between the two addresses.
    pub fn ts_offset(&self, local: std::net::Ipv4Addr, remote: std::net::Ipv4Addr) -> u32 {
        let a = SocketAddrV4::new(local, 0);
        let b = SocketAddrV4::new(remote, 0);
        (self.hash(a, b, 0x7473_6f66) >> 32) as u32
    }

    /// RFC 6528 ISN: the keyed hash of the 4-tuple plus a clock ticking
    /// every 4 microseconds.
    pub fn isn(&self, local: SocketAddrV4, remote: SocketAddrV4, now: Instant) -> u32 {
        let m = (now.as_nanos() / 4_000) as u32;
        (self.tuple_hash(local, remote) as u32).wrapping_add(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_reference_vector() {
        // The reference implementation's vector for key 00..0f and the
        // 16-byte message 00..0f: db 9b c2 57 7f cc 2a 3f.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let m0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let m1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(siphash24(k0, k1, [m0, m1], 16 << 56), 0x3f2acc7f57c29bdb);
        // And for the 12-byte message 00..0b (the ISN's length):
        // fb e5 0e 86 bc 8f 1e 75.
        let tail = u64::from(u32::from_le_bytes([8, 9, 10, 11]));
        assert_eq!(siphash24(k0, k1, [m0], tail | 12 << 56), 0x751e8fbc860ee5fb);
    }

    #[test]
    fn the_isn_hash_is_the_siphash_of_the_tuple_bytes() {
        // The 12-byte message: the local and remote addresses as one word
        // (10.0.0.1, 10.0.0.2), then the two ports (40000, 80).
        let h = TupleHasher::new(5, 7);
        let a: SocketAddrV4 = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
        let m0 = u64::from_le_bytes([2, 0, 0, 10, 1, 0, 0, 10]);
        let tail = u64::from(u32::from_le_bytes([80, 0, 0x40, 0x9c]));
        assert_eq!(h.tuple_hash(a, b), siphash24(5, 7, [m0], tail | 12 << 56));
        // Not the 16-byte hash with a zero salt (another message).
        assert_ne!(h.tuple_hash(a, b), h.hash(a, b, 0));
        assert_eq!(
            h.isn(a, b, Instant::ZERO),
            h.tuple_hash(a, b) as u32,
            "at clock zero the ISN is the hash"
        );
    }

    #[test]
    fn isn_is_keyed_per_tuple_and_advances_with_time() {
        let a: SocketAddrV4 = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
        let c: SocketAddrV4 = "10.0.0.2:81".parse().unwrap();
        let h1 = TupleHasher::new(1, 2);
        let h2 = TupleHasher::new(3, 4);
        let t = Instant::from_millis(1000);
        assert_ne!(h1.isn(a, b, t), h2.isn(a, b, t), "different keys");
        assert_ne!(h1.isn(a, b, t), h1.isn(a, c, t), "different tuples");
        // 1 ms later the clock part has moved by 250 ticks.
        let later = h1.isn(a, b, Instant::from_millis(1001));
        assert_eq!(later.wrapping_sub(h1.isn(a, b, t)), 250);
        assert_ne!(TupleHasher::random(), TupleHasher::random());
    }
}
