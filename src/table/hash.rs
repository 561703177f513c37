//! A fast keyed hash for the flow index: a folded 64×64→128-bit multiply per
//! 64-bit word, keyed with 128 random bits per table (the construction of
//! foldhash/aHash's portable path). It keeps chosen 4-tuples from colliding on
//! purpose (the key is secret and per process) at a fraction of SipHash's cost
//! on the per-packet lookup.

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
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FlowHasher {
    acc: u64,
    k1: u64,
}

impl FlowHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        self.acc = folded_multiply(self.acc ^ v, self.k1 ^ PI0);
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
        folded_multiply(self.acc, self.k1 ^ PI1)
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
}
