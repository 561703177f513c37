//! Flow ownership and software steering between one port's shards.
//!
//! Which shard owns a flow is a pure function of the 4-tuple that every shard
//! computes alike ([`Ownership`]). Where the NIC cannot put every frame on its
//! owner's queue, a shard hands a frame it does not own to the owner over a
//! bounded lock-free queue ([`SteerQueues`]), and the owner hands the buffer
//! back, so steering allocates only while the queues warm up.

use crate::wire::{FamilySocketAddr, IpFamily};
use crossbeam_queue::ArrayQueue;
use std::net::IpAddr;
use std::sync::Arc;

/// Which shard owns a flow: a pure function of the 4-tuple that every shard
/// computes alike (either family).
#[derive(Debug, Clone, Default)]
pub enum Ownership {
    /// `flow_owner`: devices without RSS (memif, ring, af_packet, tap).
    #[default]
    Hash,
    /// The queue the NIC's RSS picks (Toeplitz with the symmetric key, then
    /// the redirection table), so most frames arrive at their owner and a
    /// client's chosen source ports bring its replies to its own queue.
    Rss(Arc<super::rss::Reta>),
}

impl Ownership {
    pub fn owner<S: FamilySocketAddr>(&self, local: S, remote: S, shards: u32) -> u32 {
        match self {
            Ownership::Hash => flow_owner(local, remote, shards),
            Ownership::Rss(reta) => {
                let h = super::rss::hash(&super::rss::SYMMETRIC_KEY, remote, local);
                u32::from(reta.queue(h)) % shards.max(1)
            }
        }
    }
}

/// An address folded to 64 bits by XOR: IPv4's 32 bits as they are, IPv6's
/// two halves together (so `fold(a) ^ fold(b)` is symmetric in a and b).
/// Monomorphised, the match on the family folds away.
#[inline]
fn fold<A: IpFamily>(ip: A) -> u64 {
    match ip.to_ip() {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v >> 64) as u64 ^ v as u64
        }
    }
}

/// The shard that owns a flow: a pure function of the 4-tuple, the same
/// whichever direction the tuple is written in (symmetric), known to every
/// shard, for either family. Software steering uses it where the NIC cannot
/// spread flows itself.
pub fn flow_owner<S: FamilySocketAddr>(a: S, b: S, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let x = fold(a.host()) ^ fold(b.host());
    let p = u64::from(a.port() ^ b.port());
    // The addresses above the ports: for IPv4 (x < 2^32) this is x << 16 | p,
    // the owner IPv4 flows have always had; IPv6's high 16 bits wrap round.
    let mut h = x.rotate_left(16) ^ p;
    // A fixed mixer (not keyed: ownership must agree across shards and runs).
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % u64::from(shards)) as u32
}

/// The bounded lock-free queues software steering uses between one port's
/// shards, indexed by shard: each shard's inbox of frames for flows it owns
/// that arrived on another shard's queue, and the spare buffers it hands back
/// after processing them.
#[derive(Clone)]
pub struct SteerQueues {
    inbox: Vec<Arc<ArrayQueue<Vec<u8>>>>,
    spare: Vec<Arc<ArrayQueue<Vec<u8>>>>,
}

impl SteerQueues {
    /// Queues for `shards` shards, `depth` frames each.
    pub fn new(shards: usize, depth: usize) -> SteerQueues {
        let mk = || {
            (0..shards)
                .map(|_| Arc::new(ArrayQueue::new(depth)))
                .collect()
        };
        SteerQueues {
            inbox: mk(),
            spare: mk(),
        }
    }

    pub fn shards(&self) -> usize {
        self.inbox.len()
    }

    /// Hands a copy of `frame` to shard `owner`, in a buffer it gave back if
    /// there is one. False if its inbox is full (or there is no such shard).
    pub fn hand_over(&self, owner: usize, frame: &[u8]) -> bool {
        let mut buf = self
            .spare
            .get(owner)
            .and_then(|q| q.pop())
            .unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.inbox.get(owner).is_some_and(|q| q.push(buf).is_ok())
    }

    /// The next frame handed to shard `me`.
    pub fn take(&self, me: usize) -> Option<Vec<u8>> {
        self.inbox.get(me)?.pop()
    }

    /// Shard `me` is done with a frame's buffer: it goes back for the next one.
    pub fn give_back(&self, me: usize, buf: Vec<u8>) {
        if let Some(q) = self.spare.get(me) {
            let _ = q.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    #[test]
    fn ownership_is_symmetric_and_in_range() {
        for p in 1000..1100u16 {
            let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), p);
            let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80);
            let o = flow_owner(a, b, 3);
            assert!(o < 3);
            assert_eq!(o, flow_owner(b, a, 3));
        }
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 1);
        assert_eq!(flow_owner(a, a, 1), 0);
    }

    /// The generic owner gives IPv4 flows the shard the IPv4-only function
    /// gave them (written out here as it was), so a mixed-version pair of
    /// shards, or a client choosing ports by it, agrees.
    #[test]
    fn ipv4_owner_unchanged_by_the_generic_function() {
        fn before(a: SocketAddrV4, b: SocketAddrV4, shards: u32) -> u32 {
            let x = u32::from(*a.ip()) ^ u32::from(*b.ip());
            let p = u32::from(a.port()) ^ u32::from(b.port());
            let mut h = u64::from(x) << 16 | u64::from(p);
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            (h % u64::from(shards)) as u32
        }
        for i in 0..2000u32 {
            let a = SocketAddrV4::new(
                Ipv4Addr::from(0x0a00_0000 ^ i.wrapping_mul(2_654_435_761)),
                80,
            );
            let b = SocketAddrV4::new(Ipv4Addr::from(0xc0a8_0000 | i), 1024 + (i * 31) as u16);
            for shards in [2, 3, 4, 7] {
                assert_eq!(
                    flow_owner(a, b, shards),
                    before(a, b, shards),
                    "{a} {b} /{shards}"
                );
            }
        }
    }

    #[test]
    fn ipv6_ownership_is_symmetric_in_range_and_spread() {
        let server = SocketAddrV6::new("2001:db8::1".parse().unwrap(), 80, 0, 0);
        let rss = Ownership::Rss(Arc::new(super::super::rss::Reta::round_robin(128, 4)));
        let mut per = [0u32; 4];
        for i in 0..4000u16 {
            // Sources over a /64 and ports, as `--ip 2001:db8:1::/64` spreads them.
            let ip = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, i / 64, i % 64);
            let c = SocketAddrV6::new(ip, 10_000 + i, 0, 0);
            let o = flow_owner(c, server, 4);
            assert_eq!(o, flow_owner(server, c, 4));
            per[o as usize] += 1;
            // By RSS with the symmetric key, also the same both ways.
            assert_eq!(rss.owner(c, server, 4), rss.owner(server, c, 4));
        }
        assert!(per.iter().all(|&n| n > 800), "{per:?}");
        // Addresses differing only in their high half still spread.
        let mut per = [0u32; 2];
        for i in 0..1000u16 {
            let ip = Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 7);
            per[flow_owner(SocketAddrV6::new(ip, 80, 0, 0), server, 2) as usize] += 1;
        }
        assert!(per.iter().all(|&n| n > 400), "{per:?}");
    }

    #[test]
    fn a_handed_frame_arrives_and_its_buffer_comes_back() {
        let q = SteerQueues::new(2, 2);
        assert!(q.hand_over(1, b"abc"));
        assert!(q.hand_over(1, b"de"));
        assert!(!q.hand_over(1, b"f"), "the inbox is bounded");
        assert!(!q.hand_over(5, b"f"), "no such shard");
        let f = q.take(1).unwrap();
        assert_eq!(f, b"abc");
        let cap = f.capacity();
        q.give_back(1, f);
        assert_eq!(q.take(1).unwrap(), b"de");
        assert!(q.take(1).is_none());
        assert!(q.hand_over(1, b"g"));
        let g = q.take(1).unwrap();
        assert_eq!(
            (g.as_slice(), g.capacity()),
            (&b"g"[..], cap),
            "the buffer is reused"
        );
    }
}
