//! What a shard needs from a network queue: receive a burst of frames, build
//! frames in place, flush. `DpdkNic` is the real one (one DPDK rx/tx queue
//! pair); `MemNic` links shards in memory for tests without DPDK.

use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

/// How a transmit attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tx {
    /// A frame was queued.
    Queued,
    /// `fill` had nothing to send.
    Nothing,
    /// No buffer to build a frame in (counted by the caller).
    NoBuffer,
}

/// One rx/tx queue pair, owned by one shard.
pub trait Nic {
    /// Receives up to one burst, calling `f` with each frame's bytes. Returns
    /// how many frames there were.
    fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize;
    /// Builds one frame of at most `max` bytes: `fill` writes it and returns its
    /// length (0: nothing to send).
    fn tx(&mut self, max: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> Tx;
    /// Hands queued frames to the device. Returns how many were dropped because
    /// the device would not take them.
    fn flush(&mut self) -> u64;
}

/// An in-memory link end: frames are `Vec<u8>` in bounded lock-free queues.
/// For tests and the simulation-like checks of the shard loop (allocates per
/// frame, which the DPDK path never does).
pub struct MemNic {
    pub rx: Arc<ArrayQueue<Vec<u8>>>,
    pub tx: Arc<ArrayQueue<Vec<u8>>>,
    pending: Vec<Vec<u8>>,
    burst: usize,
}

impl MemNic {
    /// Two ends of a link, each queue holding `depth` frames.
    pub fn pair(depth: usize) -> (MemNic, MemNic) {
        let a = Arc::new(ArrayQueue::new(depth));
        let b = Arc::new(ArrayQueue::new(depth));
        (
            MemNic {
                rx: a.clone(),
                tx: b.clone(),
                pending: Vec::new(),
                burst: 32,
            },
            MemNic {
                rx: b,
                tx: a,
                pending: Vec::new(),
                burst: 32,
            },
        )
    }
}

impl MemNic {
    /// Another transmit handle on the same link with nothing to receive (a
    /// second shard on a device with one receive queue).
    pub fn tx_only(&self) -> MemNic {
        MemNic {
            rx: Arc::new(ArrayQueue::new(1)),
            tx: self.tx.clone(),
            pending: Vec::new(),
            burst: self.burst,
        }
    }
}

impl Nic for MemNic {
    fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < self.burst {
            let Some(frame) = self.rx.pop() else { break };
            f(&frame);
            n += 1;
        }
        n
    }

    fn tx(&mut self, max: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> Tx {
        let mut buf = vec![0u8; max];
        let n = fill(&mut buf);
        if n == 0 {
            return Tx::Nothing;
        }
        buf.truncate(n);
        self.pending.push(buf);
        Tx::Queued
    }

    fn flush(&mut self) -> u64 {
        let mut dropped = 0;
        for f in self.pending.drain(..) {
            if self.tx.push(f).is_err() {
                dropped += 1;
            }
        }
        dropped
    }
}

#[cfg(feature = "dpdk")]
pub use dpdk_nic::DpdkNic;

#[cfg(feature = "dpdk")]
mod dpdk_nic {
    use super::{Nic, Tx};
    use crate::dpdk::{Mbuf, PktPool, Queue};
    use std::sync::Arc;

    const BURST: usize = 32;
    /// Fresh mbufs taken from the pool at a time for building frames.
    const REFILL: usize = 32;
    /// Fresh mbufs kept at most (received ones are kept up to this).
    const FRESH_MAX: usize = 2 * BURST;
    /// Frames kept for the next turn when the device is full.
    const MAX_PENDING: usize = 8192;

    /// A DPDK rx/tx queue pair. Frames are built straight into fresh mbufs:
    /// received ones once read (reset as new), else taken from the pool a burst
    /// at a time.
    pub struct DpdkNic {
        // The mbuf vectors come first: fields drop in order, so they are freed
        // while the pool is certainly alive.
        rx: Vec<Mbuf>,
        tx: Vec<Mbuf>,
        /// Fresh mbufs; a frame is built in the last one, which stays here when
        /// `fill` had nothing to send.
        fresh: Vec<Mbuf>,
        queue: Queue,
        pool: Arc<PktPool>,
    }

    impl DpdkNic {
        pub fn new(queue: Queue, pool: Arc<PktPool>) -> DpdkNic {
            DpdkNic {
                rx: Vec::with_capacity(BURST),
                tx: Vec::with_capacity(4 * BURST),
                fresh: Vec::with_capacity(FRESH_MAX),
                queue,
                pool,
            }
        }

        /// The mbuf the next frame is built in, taking a batch from the pool
        /// when none is left (or a single one when the pool is nearly empty).
        #[inline]
        fn next_fresh(&mut self) -> Option<&mut Mbuf> {
            if self.fresh.is_empty() && !Mbuf::alloc_bulk(&self.pool, &mut self.fresh, REFILL) {
                self.fresh.push(Mbuf::alloc(&self.pool)?);
            }
            self.fresh.last_mut()
        }
    }

    impl Nic for DpdkNic {
        fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
            let n = self.queue.rx_burst(&mut self.rx, BURST);
            for m in self.rx.iter() {
                // A chained mbuf (a frame larger than one buffer) is not
                // handled: it goes up empty and is counted as malformed.
                f(if m.segments() == 1 { m.data() } else { &[] });
            }
            Mbuf::recycle(&mut self.rx, &self.pool, &mut self.fresh, FRESH_MAX);
            n
        }

        fn tx(&mut self, max: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> Tx {
            let Some(m) = self.next_fresh() else {
                return Tx::NoBuffer;
            };
            let Some(buf) = m.tailroom_mut().get_mut(..max) else {
                return Tx::NoBuffer;
            };
            let n = fill(buf);
            if n == 0 {
                return Tx::Nothing;
            }
            debug_assert!(n <= max, "fill wrote {n} bytes into {max}");
            m.set_len(n.min(max));
            if let Some(m) = self.fresh.pop() {
                self.tx.push(m);
            }
            if self.tx.len() >= BURST {
                self.queue.tx_burst(&mut self.tx);
            }
            Tx::Queued
        }

        fn flush(&mut self) -> u64 {
            // A full ring drains as the peer polls: what it refuses now waits
            // for the next turn, and only a backlog past MAX_PENDING is dropped
            // (TCP retransmits it; the caller counts the drop).
            for _ in 0..4 {
                if self.tx.is_empty() {
                    return 0;
                }
                if self.queue.tx_burst(&mut self.tx) == 0 {
                    break;
                }
            }
            if self.tx.len() <= MAX_PENDING {
                return 0;
            }
            let dropped = self.tx.len() - MAX_PENDING;
            self.tx.truncate(MAX_PENDING);
            dropped as u64
        }
    }
}
