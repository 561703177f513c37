//! A fast keyed hash for the flow index: a folded 64×64→128-bit multiply per
//! 64-bit word, keyed with 128 random bits per table (the construction of
//! foldhash/aHash's portable path). It keeps chosen 4-tuples from colliding on
//! purpose (the key is secret and per process) at a fraction of SipHash's cost
//! on the per-packet lookup. The finish is no keyed round of its own: a word
//! changed anywhere still goes through at least one keyed multiply (its low
//! and high halves folded together), then a fold and a plain multiply spread
//! the last round's bits, and buckets stay as evenly filled as a random
//! function's (`keyed_and_spread`, `ipv4_flow_keys_spread_under_any_key`).
//! It is not a cryptographic hash and need not be: the ISN's keyed hash (RFC
//! 6528) is SipHash, apart (`tcp::isn`).

use std::hash::{BuildHasher, Hasher};

const PI0: u64 = 0x243f_6a88_85a3_08d3;
const PI1: u64 = 0x1319_8a2e_0370_7344;

#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds `FlowHasher`s with one random key.
#[derive(Debug, Clone, Copy)]
pub struct FlowHashBuilder {
    k0: u64,
    k1: u64,
}

impl FlowHashBuilder {
    /// A key from std's per-process random source.
    pub fn random() -> FlowHashBuilder {
        let s = std::collections::hash_map::RandomState::new();
        let k0 = s.hash_one(0x5eed_u64);
        let k1 = s.hash_one(0xfeed_u64);
        FlowHashBuilder::with_key(k0, k1)
    }

    pub fn with_key(k0: u64, k1: u64) -> FlowHashBuilder {
        FlowHashBuilder { k0, k1: k1 | 1 }
    }
}

impl Default for FlowHashBuilder {
    fn default() -> Self {
        FlowHashBuilder::random()
    }
}

impl BuildHasher for FlowHashBuilder {
    type Hasher = FlowHasher;
    #[inline]
    fn build_hasher(&self) -> FlowHasher {
        FlowHasher {
            acc: self.k0,
            k1: self.k1,
            mixed: false,
        }
    }
}

/// Each word is XORed into the state and folded-multiplied under the key;
/// the finish only spreads the last round's bits (a shift, a multiply), so
/// an IPv4 key (a word of addresses, a word of ports) costs two rounds.
#[derive(Debug, Clone, Copy)]
pub struct FlowHasher {
    acc: u64,
    k1: u64,
    mixed: bool,
}

impl FlowHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        self.acc = folded_multiply(self.acc ^ v, self.k1 ^ PI0);
        self.mixed = true;
    }
}

impl Hasher for FlowHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(b));
        }
        self.mix(bytes.len() as u64);
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.mix(u64::from(v));
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.mix(u64::from(v));
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        if !self.mixed {
            return folded_multiply(self.acc, self.k1 ^ PI1);
        }
        // The last word went through one multiply: a small change to it moves
        // the product's low half by a multiple of the key, which leaves
        // patterns in the bits above a small table's; folding the well-mixed
        // upper half down and one more (plain) multiply spreads them.
        let h = self.acc;
        (h ^ (h >> 32)).wrapping_mul(PI0)
    }
}

/// The bits of a `LocalHasher`'s hash that place the tuple (the rest, the
/// top 7, are hashbrown's tag).
pub const POSITION: u64 = (1 << 57) - 1;

/// Builds `LocalHasher`s: for the TIME_WAIT index, where a million records
/// are written at random places unless their order is kept.
///
/// A load generator takes source ports in sequence, so consecutive 4-tuples
/// differ in the low bits of one port. This hash keeps that order in the
/// bucket position: the keyed hash of the tuple with the low 6 bits of both
/// ports cleared picks a region, and those 6 bits (of whichever port moves)
/// the place within it; the tag bits (hashbrown's top 7) come from a keyed
/// hash of the whole tuple. Neighbouring connections then share cache lines
/// and pages instead of missing both on every insert, lookup and expiry. A
/// chooser of ports can place at most 64 tuples side by side (at distinct
/// positions); where the regions fall stays secret.
#[derive(Debug, Clone, Copy)]
pub struct LocalHashBuilder {
    inner: FlowHashBuilder,
}

impl LocalHashBuilder {
    pub fn random() -> LocalHashBuilder {
        LocalHashBuilder {
            inner: FlowHashBuilder::random(),
        }
    }

    pub fn with_key(k0: u64, k1: u64) -> LocalHashBuilder {
        LocalHashBuilder {
            inner: FlowHashBuilder::with_key(k0, k1),
        }
    }
}

impl Default for LocalHashBuilder {
    fn default() -> Self {
        LocalHashBuilder::random()
    }
}

impl BuildHasher for LocalHashBuilder {
    type Hasher = LocalHasher;
    #[inline]
    fn build_hasher(&self) -> LocalHasher {
        LocalHasher {
            k0: self.inner.k0,
            k1: self.inner.k1,
            words: [0; 2],
            n: 0,
            other: self.inner.build_hasher(),
        }
    }
}

/// See `LocalHashBuilder`. Expects a flow key as u64s of addresses (one for
/// IPv4; four for IPv6, mixed into one under the key as `FlowHasher` mixes
/// them) then one u32 of ports; anything else is hashed like `FlowHasher`.
/// `LocalHasher::n` after more than one word of addresses.
const MANY: u8 = 3;

#[derive(Debug, Clone, Copy)]
pub struct LocalHasher {
    k0: u64,
    k1: u64,
    words: [u64; 2],
    n: u8,
    other: FlowHasher,
}

impl Hasher for LocalHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.n = u8::MAX;
        self.other.write(bytes);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        match self.n {
            0 => {
                self.words[0] = v;
                self.n = 1;
            }
            // Another word of addresses (an IPv6 key): the words so far are
            // mixed under the key, then this one, into one word, so that
            // chosen addresses cannot meet in it.
            1 | MANY => {
                if self.n == 1 {
                    self.words[0] = folded_multiply(self.words[0] ^ self.k0, self.k1 ^ PI0);
                    self.n = MANY;
                }
                self.words[0] = folded_multiply(self.words[0] ^ v, self.k1 ^ PI0);
            }
            _ => self.n = u8::MAX,
        }
        self.other.write_u64(v);
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        if self.n == 1 || self.n == MANY {
            self.words[1] = u64::from(v);
            self.n = 2;
        } else {
            self.n = u8::MAX;
        }
        self.other.write_u32(v);
    }
    #[inline]
    fn finish(&self) -> u64 {
        if self.n != 2 {
            return self.other.finish();
        }
        let (addrs, ports) = (self.words[0], self.words[1]);
        const LOW: u64 = 0x003f_003f;
        let region = folded_multiply(addrs ^ self.k0, (ports & !LOW) ^ self.k1 ^ PI0);
        let offset = (ports ^ (ports >> 16)) & 63;
        // Two rounds: the ports differ only in low bits, and one multiply
        // barely moves the top bits the tag is taken from.
        let tag = folded_multiply(
            folded_multiply(addrs ^ self.k1, ports ^ self.k0 ^ PI1),
            self.k1 ^ PI0,
        );
        (tag & !POSITION) | (region.wrapping_add(offset) & POSITION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keyed_and_spread() {
        let a = FlowHashBuilder::with_key(1, 2);
        let b = FlowHashBuilder::with_key(3, 4);
        assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
        // Sequential ports (what a load generator produces) spread over buckets.
        let mut low_bits = HashSet::new();
        for port in 0..4096u64 {
            low_bits.insert(a.hash_one((0x0a01_0000_0a00_0002u64, port)) & 4095);
        }
        assert!(low_bits.len() > 2500, "{}", low_bits.len());
    }

    /// IPv4 flow keys as a load generator makes them (sequential ports,
    /// sequential addresses, both) under weak keys and a strong one: the low
    /// bits (a table's bucket), the bits above them (a large table's) and the
    /// top 7 (hashbrown's tag) spread like a random function's, which the
    /// finish taken from the last word's round must keep.
    #[test]
    fn ipv4_flow_keys_spread_under_any_key() {
        use crate::wire::FlowKey;
        // Key `i` of 4096: its ports, its addresses, or both (64 ports per
        // address) count up.
        let key = |i: u32, ports: bool, addrs: bool| {
            let (addr, port) = match (ports, addrs) {
                (true, false) => (0, i),
                (false, true) => (i, 0),
                _ => (i >> 6, i & 63),
            };
            FlowKey::<std::net::Ipv4Addr> {
                local_ip: 0x0a00_0001,
                remote_ip: 0x0a00_0002 + addr,
                local_port: 80,
                remote_port: 1024 + port as u16,
            }
        };
        for (k0, k1) in [
            (0, 0),
            (1, 2),
            (u64::MAX, u64::MAX),
            (0xdead_beef, 0x1234_5678_9abc),
        ] {
            let b = FlowHashBuilder::with_key(k0, k1);
            for (ports, addrs) in [(true, false), (false, true), (true, true)] {
                let hs: Vec<u64> = (0..4096)
                    .map(|i| b.hash_one(key(i, ports, addrs)))
                    .collect();
                let distinct =
                    |f: &dyn Fn(u64) -> u64| hs.iter().map(|&h| f(h)).collect::<HashSet<_>>().len();
                // 4096 random values in 4096 places: about 2589 distinct.
                let low = distinct(&|h| h & 4095);
                let mid = distinct(&|h| (h >> 12) & 4095);
                let what = format!("key ({k0:#x}, {k1:#x}), ports {ports}, addresses {addrs}");
                assert!(low > 2400, "{what}: low bits {low}");
                assert!(mid > 2200, "{what}: bits 12-23 {mid}");
                assert_eq!(distinct(&|h| h >> 57), 128, "{what}: tags");
            }
        }
    }

    #[test]
    fn local_hash_keeps_port_order_within_a_region() {
        use crate::table::FlowKey;
        let b = LocalHashBuilder::random();
        let key = |port: u16| FlowKey::<std::net::Ipv4Addr> {
            local_ip: 0x0a00_0002,
            remote_ip: 0x0a01_0000,
            local_port: 80,
            remote_port: port,
        };
        const POS: u64 = (1 << 57) - 1;
        // Ports 6400..6464 (one aligned block of 64) take 64 distinct
        // positions in one 64-wide stretch.
        let pos: Vec<u64> = (6400..6464u16).map(|p| b.hash_one(key(p)) & POS).collect();
        let lo = *pos.iter().min().unwrap();
        assert!(pos.iter().all(|&h| h - lo < 64));
        assert_eq!(pos.iter().collect::<HashSet<_>>().len(), 64);
        let h0 = pos[0];
        // Tags differ within the region; other regions land elsewhere.
        let tags: HashSet<u64> = (6400..6464u16).map(|p| b.hash_one(key(p)) >> 57).collect();
        // 64 random 7-bit tags: about 50 distinct values on average.
        assert!(tags.len() > 32, "{}", tags.len());
        let far = b.hash_one(key(6464)) & POS;
        assert!(far.wrapping_sub(h0) > 1 << 20 || h0.wrapping_sub(far) > 1 << 20);
        // And a TIME_WAIT index built on it still finds everything.
        let mut m = std::collections::HashMap::with_hasher(b);
        for p in 1000..30000u16 {
            m.insert(key(p), p);
        }
        assert!((1000..30000u16).all(|p| m.get(&key(p)) == Some(&p)));
    }

    #[test]
    fn local_hash_keeps_port_order_for_ipv6_keys_too() {
        use crate::wire::FlowKey;
        use std::net::Ipv6Addr;
        let b = LocalHashBuilder::random();
        let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let key = |remote: Ipv6Addr, port: u16| FlowKey::<Ipv6Addr> {
            local_ip: ip("2001:db8::80"),
            remote_ip: remote,
            local_port: 80,
            remote_port: port,
        };
        let peer = ip("2001:db8:1::1");
        const POS: u64 = (1 << 57) - 1;
        // One aligned block of 64 ports: 64 distinct positions side by side.
        let pos: Vec<u64> = (6400..6464u16)
            .map(|p| b.hash_one(key(peer, p)) & POS)
            .collect();
        let lo = *pos.iter().min().unwrap();
        assert!(pos.iter().all(|&h| h - lo < 64));
        assert_eq!(pos.iter().collect::<HashSet<_>>().len(), 64);
        // Every address word moves the region: each half of the peer's
        // address, and XOR-equal changes to both halves (which a plain fold
        // of the words would not see).
        let h0 = b.hash_one(key(peer, 6400)) & POS;
        let far = |h: u64| h.wrapping_sub(h0) > 1 << 20 || h0.wrapping_sub(h) > 1 << 20;
        for other in [
            ip("2001:db9:1::1"),
            ip("2001:db8:1::2"),
            Ipv6Addr::from(u128::from(peer) ^ (0x55 << 64 | 0x55)),
        ] {
            assert!(far(b.hash_one(key(other, 6400)) & POS), "{other}");
        }
        // Keyed: another key puts the block elsewhere.
        let c = LocalHashBuilder::random();
        assert_ne!(c.hash_one(key(peer, 6400)), b.hash_one(key(peer, 6400)));
        // A TIME_WAIT index on it finds everything.
        let mut m = std::collections::HashMap::with_hasher(b);
        for p in 1000..30000u16 {
            m.insert(key(peer, p), p);
        }
        assert!((1000..30000u16).all(|p| m.get(&key(peer, p)) == Some(&p)));
    }
}
