//! Flow ownership and software steering between one port's shards.
//!
//! Which shard owns a flow is a pure function of the 4-tuple that every shard
//! computes alike ([`Ownership`]). Where the NIC cannot put every frame on its
//! owner's queue, a shard hands a frame it does not own to the owner over a
//! bounded lock-free queue ([`SteerQueues`]), and the owner hands the buffer
//! back, so steering allocates only while the queues warm up.

use crossbeam_queue::ArrayQueue;
use std::net::SocketAddrV4;
use std::sync::Arc;

/// Which shard owns a flow: a pure function of the 4-tuple that every shard
/// computes alike.
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
    pub fn owner(&self, local: SocketAddrV4, remote: SocketAddrV4, shards: u32) -> u32 {
        match self {
            Ownership::Hash => flow_owner(local, remote, shards),
            Ownership::Rss(reta) => {
                let h = super::rss::hash_v4(&super::rss::SYMMETRIC_KEY, remote, local);
                u32::from(reta.queue(h)) % shards.max(1)
            }
        }
    }
}

/// The shard that owns a flow: a pure function of the 4-tuple, the same
/// whichever direction the tuple is written in (symmetric), known to every
/// shard. Software steering uses it where the NIC cannot spread flows itself.
pub fn flow_owner(a: SocketAddrV4, b: SocketAddrV4, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let x = u32::from(*a.ip()) ^ u32::from(*b.ip());
    let p = u32::from(a.port()) ^ u32::from(b.port());
    let mut h = u64::from(x) << 16 | u64::from(p);
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
    use std::net::Ipv4Addr;

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
