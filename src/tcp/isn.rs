//! Initial sequence numbers (RFC 6528): ISN = M + F(localip, localport,
//! remoteip, remoteport, secretkey), where M is a 4-microsecond clock and F a
//! keyed hash. F is SipHash-2-4 with a random 128-bit key per process, over
//! the tuple of either IP family.

use crate::time::Instant;
use crate::wire::{AsFlowKey, FamilySocketAddr, FlowKey, IpFamily};

/// SipHash-2-4 over a message of whole 8-byte words (`block`) and a last
/// block (`finish`): its 0 to 7 trailing message bytes (little-endian) with
/// the message length in the top byte, as the reference pads it.
#[derive(Clone, Copy)]
struct Sip {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl Sip {
    #[inline(always)]
    fn new(k0: u64, k1: u64) -> Sip {
        Sip {
            v0: 0x736f6d6570736575u64 ^ k0,
            v1: 0x646f72616e646f6du64 ^ k1,
            v2: 0x6c7967656e657261u64 ^ k0,
            v3: 0x7465646279746573u64 ^ k1,
        }
    }

    #[inline(always)]
    fn round(&mut self) {
        let Sip { v0, v1, v2, v3 } = self;
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
    }

    #[inline(always)]
    fn block(&mut self, w: u64) {
        self.v3 ^= w;
        self.round();
        self.round();
        self.v0 ^= w;
    }

    #[inline(always)]
    fn finish(mut self, last: u64) -> u64 {
        self.block(last);
        self.v2 ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }
}

/// SipHash-2-4 of the words `m` then the last block `last` (see `Sip`).
#[cfg(test)]
fn siphash24<const N: usize>(k0: u64, k1: u64, m: [u64; N], last: u64) -> u64 {
    let mut s = Sip::new(k0, k1);
    for w in m {
        s.block(w);
    }
    s.finish(last)
}

/// The salt of the timestamp offset's message (`TupleHasher::ts_offset`).
const TS_SALT: u32 = 0x7473_6f66;

/// What the ISNs of all connections between two hosts share: the keyed
/// hash's state with their addresses taken in (`TupleHasher::host_pair`),
/// and their timestamp offset. Kept for the last pair of hosts, it leaves a
/// connection's ISN the hash of its ports alone: for IPv4 one SipHash block
/// of two, for IPv6 one of five. The ISN is the same function of the same
/// message either way (RFC 6528's F, SipHash-2-4 of the whole tuple).
#[derive(Clone, Copy)]
pub struct HostPair<A: IpFamily> {
    pub local: A,
    pub remote: A,
    sip: Sip,
    ts_offset: u32,
}

impl<A: IpFamily> HostPair<A> {
    /// `TupleHasher::isn_of` for a tuple between these two hosts.
    #[inline]
    pub fn isn_of(&self, key: &FlowKey<A>, now: Instant) -> u32 {
        debug_assert!(
            key.local_ip == self.local.to_bits() && key.remote_ip == self.remote.to_bits()
        );
        let m = (now.as_nanos() / 4_000) as u32;
        let tail = (u64::from(key.local_port) << 16) | u64::from(key.remote_port);
        (self.sip.finish(tail | u64::from(A::PAIR_BYTES + 4) << 56) as u32).wrapping_add(m)
    }

    /// `TupleHasher::ts_offset` of the two hosts.
    #[inline]
    pub fn ts_offset(&self) -> u32 {
        self.ts_offset
    }
}

/// A keyed hash over 4-tuples of either family, for ISNs, SYN cookies and
/// timestamp offsets.
///
/// Its messages are the two addresses as `IpFamily::pair_words` gives them
/// (8 bytes for IPv4, local ‖ remote; 32 for IPv6), then the ports (and a
/// salt), so an IPv4 and an IPv6 tuple never make the same message.
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

    /// The hasher with the two addresses of a tuple taken in.
    #[inline(always)]
    fn addresses<A: IpFamily>(&self, local: &A::Bits, remote: &A::Bits) -> Sip {
        let mut s = Sip::new(self.k0, self.k1);
        A::pair_words(local, remote, |w| s.block(w));
        s
    }

    /// The keyed hash of a 4-tuple and a 32-bit `salt`: the addresses, then
    /// one word `local port << 48 | remote port << 32 | salt` (a 16-byte
    /// message for IPv4, 40 for IPv6).
    #[inline]
    pub fn hash<S: FamilySocketAddr>(&self, local: S, remote: S, salt: u32) -> u64 {
        let (l, r) = (local.host().to_bits(), remote.host().to_bits());
        let mut s = self.addresses::<S::Ip>(&l, &r);
        s.block(
            (u64::from(local.port()) << 48) | (u64::from(remote.port()) << 32) | u64::from(salt),
        );
        s.finish(u64::from(S::Ip::PAIR_BYTES + 8) << 56)
    }

    /// The keyed hash of the bare 4-tuple: the addresses, then the 4 bytes
    /// of `local port << 16 | remote port` in the last block (a 12-byte
    /// message for IPv4, 36 for IPv6), so one block fewer than `hash` and
    /// never equal to any of its messages (the length is hashed in).
    #[inline]
    fn tuple_hash<A: IpFamily>(&self, key: &FlowKey<A>) -> u64 {
        let s = self.addresses::<A>(&key.local_ip, &key.remote_ip);
        let tail = (u64::from(key.local_port) << 16) | u64::from(key.remote_port);
        s.finish(tail | u64::from(A::PAIR_BYTES + 4) << 56)
    }

    /// The hash with `local` and `remote`'s addresses taken in, for the ISNs
    /// and the timestamp offset of connections between the two hosts
    /// (`HostPair`): the same values as `isn` and `ts_offset`.
    #[inline]
    pub fn host_pair<A: IpFamily>(&self, local: A, remote: A) -> HostPair<A> {
        let sip = self.addresses::<A>(&local.to_bits(), &remote.to_bits());
        // `hash` of the two hosts with ports 0 and the offset's salt.
        let mut ts = sip;
        ts.block(u64::from(TS_SALT));
        let ts_offset = (ts.finish(u64::from(A::PAIR_BYTES + 8) << 56) >> 32) as u32;
        HostPair {
            local,
            remote,
            sip,
            ts_offset,
        }
    }

    /// The timestamp offset for a pair of hosts (RFC 7323 5.4, RFC 6191):
    /// keyed, so the peer cannot read our clock from it, and the same for
    /// every connection between the two addresses.
    pub fn ts_offset<A: IpFamily>(&self, local: A, remote: A) -> u32 {
        let a = A::SocketAddr::from_parts(local, 0);
        let b = A::SocketAddr::from_parts(remote, 0);
        (self.hash(a, b, TS_SALT) >> 32) as u32
    }

    /// RFC 6528 ISN: the keyed hash of the 4-tuple plus a clock ticking
    /// every 4 microseconds.
    #[inline]
    pub fn isn<S: FamilySocketAddr>(&self, local: S, remote: S, now: Instant) -> u32 {
        self.isn_of(&FlowKey::<S::Ip>::new(local, remote), now)
    }

    /// As `isn`, for a tuple named any way (`AsFlowKey`).
    #[inline]
    pub fn isn_of<T: AsFlowKey>(&self, t: &T, now: Instant) -> u32 {
        let m = (now.as_nanos() / 4_000) as u32;
        (self.tuple_hash(&t.flow_key()) as u32).wrapping_add(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    /// SipHash-2-4 of a byte string, written from the paper's description
    /// (not from `Sip`): 8-byte little-endian blocks, the tail padded with
    /// zeros and the length's low byte on top, c = 2 and d = 4 rounds.
    fn siphash_bytes(key: [u8; 16], msg: &[u8]) -> u64 {
        fn sipround(v: &mut [u64; 4]) {
            v[0] = v[0].wrapping_add(v[1]);
            v[2] = v[2].wrapping_add(v[3]);
            v[1] = v[1].rotate_left(13);
            v[3] = v[3].rotate_left(16);
            v[1] ^= v[0];
            v[3] ^= v[2];
            v[0] = v[0].rotate_left(32);
            v[2] = v[2].wrapping_add(v[1]);
            v[0] = v[0].wrapping_add(v[3]);
            v[1] = v[1].rotate_left(17);
            v[3] = v[3].rotate_left(21);
            v[1] ^= v[2];
            v[3] ^= v[0];
            v[2] = v[2].rotate_left(32);
        }
        let k0 = u64::from_le_bytes(key[..8].try_into().unwrap());
        let k1 = u64::from_le_bytes(key[8..].try_into().unwrap());
        // "somepseudorandomlygeneratedbytes"
        let mut v = [
            k0 ^ u64::from_be_bytes(*b"somepseu"),
            k1 ^ u64::from_be_bytes(*b"dorandom"),
            k0 ^ u64::from_be_bytes(*b"lygenera"),
            k1 ^ u64::from_be_bytes(*b"tedbytes"),
        ];
        let mut padded = msg.to_vec();
        padded.resize(msg.len() / 8 * 8 + 7, 0);
        padded.push(msg.len() as u8);
        for chunk in padded.chunks(8) {
            let m = u64::from_le_bytes(chunk.try_into().unwrap());
            v[3] ^= m;
            sipround(&mut v);
            sipround(&mut v);
            v[0] ^= m;
        }
        v[2] ^= 0xff;
        for _ in 0..4 {
            sipround(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }

    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    #[test]
    fn the_byte_siphash_meets_the_reference_vectors() {
        // The reference implementation's vectors (key 00..0f, message
        // 00..len-1) at the lengths the tuple hashes use: 12 and 16 (IPv4),
        // 36 and 40 (IPv6); and the empty message.
        for (len, want) in [
            (0, 0x726fdb47dd0e0e31u64),
            (12, 0x751e8fbc860ee5fb),
            (16, 0x3f2acc7f57c29bdb),
            (36, 0x314dffbe0815a3b4),
            (40, 0x0e3ea96b5304a7d0),
        ] {
            let msg: Vec<u8> = (0..len).collect();
            assert_eq!(siphash_bytes(KEY, &msg), want, "length {len}");
        }
    }

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
        // And the 36-byte message 00..23 (the IPv6 ISN's length).
        let w = |i: u8| u64::from_le_bytes(core::array::from_fn(|j| i * 8 + j as u8));
        let tail = u64::from(u32::from_le_bytes([32, 33, 34, 35]));
        assert_eq!(
            siphash24(k0, k1, [w(0), w(1), w(2), w(3)], tail | 36 << 56),
            0x314dffbe0815a3b4
        );
    }

    #[test]
    fn the_isn_hash_is_the_siphash_of_the_tuple_bytes() {
        // The 12-byte message: the local and remote addresses as one word
        // (10.0.0.1, 10.0.0.2), then the two ports (40000, 80).
        let h = TupleHasher::new(5, 7);
        let a: SocketAddrV4 = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
        let k = FlowKey::<Ipv4Addr>::new(a, b);
        let m0 = u64::from_le_bytes([2, 0, 0, 10, 1, 0, 0, 10]);
        let tail = u64::from(u32::from_le_bytes([80, 0, 0x40, 0x9c]));
        assert_eq!(h.tuple_hash(&k), siphash24(5, 7, [m0], tail | 12 << 56));
        // The same message as bytes.
        let mut key = [0u8; 16];
        key[0] = 5;
        key[8] = 7;
        assert_eq!(
            h.tuple_hash(&k),
            siphash_bytes(key, &[2, 0, 0, 10, 1, 0, 0, 10, 80, 0, 0x40, 0x9c])
        );
        // Not the 16-byte hash with a zero salt (another message).
        assert_ne!(h.tuple_hash(&k), h.hash(a, b, 0));
        assert_eq!(
            h.isn(a, b, Instant::ZERO),
            h.tuple_hash(&k) as u32,
            "at clock zero the ISN is the hash"
        );
    }

    #[test]
    fn the_ipv6_isn_hash_is_the_siphash_of_the_tuple_bytes() {
        // The 36-byte message: local address, remote address (network
        // order), then local port << 16 | remote port as 4 little-endian
        // bytes; hashed here byte-wise, apart from the word code.
        let h = TupleHasher::new(
            u64::from_le_bytes(KEY[..8].try_into().unwrap()),
            u64::from_le_bytes(KEY[8..].try_into().unwrap()),
        );
        let a: SocketAddrV6 = "[2001:db8::1]:40000".parse().unwrap();
        let b: SocketAddrV6 = "[2001:db8:ffff::2]:80".parse().unwrap();
        let mut msg = Vec::new();
        msg.extend_from_slice(&a.ip().octets());
        msg.extend_from_slice(&b.ip().octets());
        msg.extend_from_slice(&(40000u32 << 16 | 80).to_le_bytes());
        assert_eq!(msg.len(), 36);
        let want = siphash_bytes(KEY, &msg);
        assert_eq!(h.tuple_hash(&FlowKey::<Ipv6Addr>::new(a, b)), want);
        assert_eq!(h.isn(a, b, Instant::ZERO), want as u32);
        // 1 ms later the clock part has moved by 250 ticks.
        let later = h.isn(a, b, Instant::from_millis(1));
        assert_eq!(later.wrapping_sub(want as u32), 250);
        // The salted hash: 40 bytes, ports and salt in one word.
        let salt = 0x0102_0304u32;
        let mut msg40 = msg[..32].to_vec();
        msg40.extend_from_slice(&(40000u64 << 48 | 80 << 32 | u64::from(salt)).to_le_bytes());
        assert_eq!(h.hash(a, b, salt), siphash_bytes(KEY, &msg40));
        // Every part of the tuple counts.
        let isn = h.isn(a, b, Instant::ZERO);
        for (x, y) in [
            ("[2001:db8::1]:40000", "[2001:db8:ffff::3]:80"),
            ("[2001:db9::1]:40000", "[2001:db8:ffff::2]:80"),
            ("[2001:db8::1]:40001", "[2001:db8:ffff::2]:80"),
            ("[2001:db8::1]:40000", "[2001:db8:ffff::2]:81"),
            ("[2001:db8:ffff::2]:80", "[2001:db8::1]:40000"),
        ] {
            let (x, y): (SocketAddrV6, SocketAddrV6) = (x.parse().unwrap(), y.parse().unwrap());
            assert_ne!(h.isn(x, y, Instant::ZERO), isn, "{x} {y}");
        }
    }

    #[test]
    fn a_v4_mapped_tuple_is_not_its_ipv4_tuple() {
        // ::ffff:10.0.0.1 names the same host as 10.0.0.1, but the messages
        // differ (length and content): the families never share a hash.
        let h = TupleHasher::new(1, 2);
        let a4: SocketAddrV4 = "10.0.0.1:40000".parse().unwrap();
        let b4: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
        let a6 = SocketAddrV6::new(a4.ip().to_ipv6_mapped(), 40000, 0, 0);
        let b6 = SocketAddrV6::new(b4.ip().to_ipv6_mapped(), 80, 0, 0);
        assert_ne!(h.isn(a4, b4, Instant::ZERO), h.isn(a6, b6, Instant::ZERO));
        assert_ne!(
            h.ts_offset(*a4.ip(), *b4.ip()),
            h.ts_offset(*a6.ip(), *b6.ip())
        );
    }

    #[test]
    fn ts_offsets_are_per_host_pair_for_both_families() {
        // RFC 7323 5.4 / RFC 6191: one offset per pair of hosts (any ports),
        // keyed, different per pair. IPv4 as it always was: the salted hash
        // with zero ports.
        let h = TupleHasher::new(3, 4);
        let (l4, r4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let a = SocketAddrV4::new(l4, 0);
        let b = SocketAddrV4::new(r4, 0);
        assert_eq!(
            h.ts_offset(l4, r4),
            (h.hash(a, b, 0x7473_6f66) >> 32) as u32
        );
        assert_ne!(h.ts_offset(l4, r4), h.ts_offset(r4, l4));
        assert_ne!(
            h.ts_offset(l4, r4),
            TupleHasher::new(3, 5).ts_offset(l4, r4)
        );
        let l6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let r6: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut msg = l6.octets().to_vec();
        msg.extend_from_slice(&r6.octets());
        msg.extend_from_slice(&0x7473_6f66u64.to_le_bytes());
        let mut key = [0u8; 16];
        key[0] = 3;
        key[8] = 4;
        assert_eq!(h.ts_offset(l6, r6), (siphash_bytes(key, &msg) >> 32) as u32);
        assert_ne!(h.ts_offset(l6, r6), h.ts_offset(r6, l6));
        let other: Ipv6Addr = "2001:db8::1:2".parse().unwrap();
        assert_ne!(h.ts_offset(l6, r6), h.ts_offset(l6, other));
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

    /// A host pair's kept state gives every tuple between the two hosts the
    /// ISN and timestamp offset the whole hash gives (both families; the
    /// tuple hash itself is held to SipHash's bytes above).
    #[test]
    fn a_host_pairs_isns_and_offset_are_the_whole_hashs() {
        let h = TupleHasher::new(11, 13);
        let t = Instant::from_millis(1234);
        let (l4, r4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let p4 = h.host_pair(l4, r4);
        assert_eq!(p4.ts_offset(), h.ts_offset(l4, r4));
        for (lp, rp) in [(40000, 80), (40001, 80), (80, 40000), (1, 65535)] {
            let (a, b) = (SocketAddrV4::new(l4, lp), SocketAddrV4::new(r4, rp));
            let k = FlowKey::<Ipv4Addr>::new(a, b);
            assert_eq!(p4.isn_of(&k, t), h.isn(a, b, t), "{a} {b}");
        }
        let l6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let r6: Ipv6Addr = "2001:db8::2:3".parse().unwrap();
        let p6 = h.host_pair(l6, r6);
        assert_eq!(p6.ts_offset(), h.ts_offset(l6, r6));
        for (lp, rp) in [(40000, 80), (443, 50000)] {
            let (a, b) = (
                SocketAddrV6::new(l6, lp, 0, 0),
                SocketAddrV6::new(r6, rp, 0, 0),
            );
            let k = FlowKey::<Ipv6Addr>::new(a, b);
            assert_eq!(p6.isn_of(&k, t), h.isn(a, b, t), "{a} {b}");
        }
        // Another pair's state is another's.
        assert_ne!(h.host_pair(r4, l4).ts_offset(), p4.ts_offset());
    }
}
