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
///
/// A frame is sent in two steps, with no closure between the shard and the
/// device: `tx_buf` hands out the place the next frame is built in (a DPDK
/// mbuf's room), the shard writes it there, and `tx_commit` queues it.
pub trait Nic {
    /// Receives up to one burst, calling `f` with each frame's bytes. Returns
    /// how many frames there were.
    fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize;
    /// The buffer the next frame is built in, `max` bytes long (not zeroed),
    /// or `None` when there is none (counted by the caller). Until
    /// `tx_commit`, every call hands out the same buffer with what was
    /// written in it; a buffer never committed is simply used for the next
    /// frame.
    fn tx_buf(&mut self, max: usize) -> Option<&mut [u8]>;
    /// Queues the frame written in the `tx_buf` buffer: its first `len`
    /// bytes (at most the `max` it was asked with).
    fn tx_commit(&mut self, len: usize);
    /// Builds one frame of at most `max` bytes through a closure (`tx_buf`,
    /// then `fill`, which writes the frame and returns its length, 0 for
    /// nothing to send, then `tx_commit`).
    fn tx(&mut self, max: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> Tx {
        let Some(buf) = self.tx_buf(max) else {
            return Tx::NoBuffer;
        };
        let n = fill(buf);
        if n == 0 {
            return Tx::Nothing;
        }
        self.tx_commit(n);
        Tx::Queued
    }
    /// Hands queued frames to the device. Returns how many were dropped because
    /// the device would not take them.
    fn flush(&mut self) -> u64;
    /// Frames queued that the device has not taken yet (after a `flush`:
    /// those it had no room for).
    fn tx_pending(&self) -> usize {
        0
    }
}

/// A NIC borrowed is a NIC (a wrapper such as the SYN flood's can take the
/// shard's for a run and give it back).
impl<N: Nic + ?Sized> Nic for &mut N {
    fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        (**self).rx(f)
    }
    fn tx_buf(&mut self, max: usize) -> Option<&mut [u8]> {
        (**self).tx_buf(max)
    }
    fn tx_commit(&mut self, len: usize) {
        (**self).tx_commit(len)
    }
    fn tx(&mut self, max: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> Tx {
        (**self).tx(max, fill)
    }
    fn flush(&mut self) -> u64 {
        (**self).flush()
    }
    fn tx_pending(&self) -> usize {
        (**self).tx_pending()
    }
}

/// An in-memory link end: frames are `Vec<u8>` in bounded lock-free queues.
/// For tests and the simulation-like checks of the shard loop (allocates per
/// frame, which the DPDK path never does). Like `DpdkNic`, frames the peer's
/// queue refuses wait (`tx_pending`), up to `max_backlog`; past it they are
/// dropped and counted by the caller.
pub struct MemNic {
    pub rx: Arc<ArrayQueue<Vec<u8>>>,
    pub tx: Arc<ArrayQueue<Vec<u8>>>,
    pending: std::collections::VecDeque<Vec<u8>>,
    /// The frame being built (`tx_buf`).
    building: Vec<u8>,
    burst: usize,
    /// Frames kept waiting at most.
    pub max_backlog: usize,
}

/// `MemNic`'s default `max_backlog` (as `DpdkNic`'s).
const MEM_MAX_BACKLOG: usize = 16384;

impl MemNic {
    /// Two ends of a link, each queue holding `depth` frames.
    pub fn pair(depth: usize) -> (MemNic, MemNic) {
        let a = Arc::new(ArrayQueue::new(depth));
        let b = Arc::new(ArrayQueue::new(depth));
        (
            MemNic {
                rx: a.clone(),
                tx: b.clone(),
                pending: Default::default(),
                building: Vec::new(),
                burst: 32,
                max_backlog: MEM_MAX_BACKLOG,
            },
            MemNic {
                rx: b,
                tx: a,
                pending: Default::default(),
                building: Vec::new(),
                burst: 32,
                max_backlog: MEM_MAX_BACKLOG,
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
            pending: Default::default(),
            building: Vec::new(),
            burst: self.burst,
            max_backlog: self.max_backlog,
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

    fn tx_buf(&mut self, max: usize) -> Option<&mut [u8]> {
        self.building.resize(max, 0);
        Some(&mut self.building)
    }

    fn tx_commit(&mut self, len: usize) {
        let mut f = std::mem::take(&mut self.building);
        f.truncate(len);
        self.pending.push_back(f);
    }

    fn flush(&mut self) -> u64 {
        // Oldest first; what the queue refuses waits for the next flush.
        while let Some(f) = self.pending.pop_front() {
            if let Err(f) = self.tx.push(f) {
                self.pending.push_front(f);
                break;
            }
        }
        let over = self.pending.len().saturating_sub(self.max_backlog);
        self.pending.truncate(self.max_backlog);
        over as u64
    }

    fn tx_pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(feature = "dpdk")]
pub use dpdk_nic::DpdkNic;

#[cfg(feature = "dpdk")]
mod dpdk_nic {
    use super::Nic;
    use crate::dpdk::{Mbuf, PktPool, Queue};
    use std::sync::Arc;

    const BURST: usize = 32;
    /// Fresh mbufs taken from the pool at a time for building frames.
    const REFILL: usize = 32;
    /// Fresh mbufs kept at most (received ones are kept up to this).
    const FRESH_MAX: usize = 2 * BURST;
    /// Frames kept for the next turn when the device is full. While any
    /// wait the shard makes no new work, but it still answers what arrives
    /// (else two shards that wait for each other would stall for good): a
    /// peer that stops reading for a while (a long turn: a table growing, a
    /// walk over millions of connections) leaves up to its own receive ring's
    /// worth of answers here, a few frames each. 16384 holds that for rings
    /// of 4096; past it frames are dropped (counted `tx_full`).
    const MAX_PENDING: usize = 16384;

    /// A DPDK rx/tx queue pair. Frames are built straight into fresh mbufs:
    /// sent ones back from a device that copies them out, or from a
    /// zero-copy memif end once its peer is done (`tx_burst_keep`),
    /// received ones once read (reset as new), else taken from the pool a
    /// burst at a time.
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

        /// No fresh mbuf left (received ones mostly keep `fresh` stocked):
        /// takes a batch from the pool, or a single one when the pool is
        /// nearly empty. Out of line, so that `tx_buf` stays a leaf.
        #[cold]
        #[inline(never)]
        fn refill(&mut self) -> Option<()> {
            if !Mbuf::alloc_bulk(&self.pool, &mut self.fresh, REFILL) {
                self.fresh.push(Mbuf::alloc(&self.pool)?);
            }
            Some(())
        }
    }

    impl DpdkNic {
        /// `tx_buf` with no fresh mbuf left.
        #[cold]
        #[inline(never)]
        fn refill_tx_buf(&mut self, max: usize) -> Option<&mut [u8]> {
            self.refill()?;
            self.fresh.last_mut()?.tailroom_mut().get_mut(..max)
        }

        /// `tx_commit`'s frame queued when it completes a burst, which goes
        /// to the device (or when the queue must grow): out of line, so that
        /// the usual commit is a leaf.
        #[inline(never)]
        fn queue_and_send(&mut self) {
            if let Some(m) = self.fresh.pop() {
                self.tx.push(m);
            }
            // A burst goes out when it completes, but only if nothing older
            // waits: a backlog means the device refused, and is offered again
            // once a turn (`flush`), not on every frame that joins it.
            if self.tx.len() == BURST {
                self.queue
                    .tx_burst_keep(&mut self.tx, &mut self.fresh, FRESH_MAX);
            }
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

        #[inline]
        fn tx_buf(&mut self, max: usize) -> Option<&mut [u8]> {
            // The frame is built in the last fresh mbuf; with none left, the
            // refill is a tail call, so the usual call needs no stack frame.
            if self.fresh.is_empty() {
                return self.refill_tx_buf(max);
            }
            self.fresh.last_mut()?.tailroom_mut().get_mut(..max)
        }

        #[inline]
        fn tx_commit(&mut self, len: usize) {
            // The frame was built in the last fresh mbuf (`tx_buf`).
            let Some(m) = self.fresh.last_mut() else {
                return;
            };
            m.set_len(len);
            // The burst's last frame, or no room queued: out of line.
            if self.tx.len() + 1 >= BURST || self.tx.len() == self.tx.capacity() {
                return self.queue_and_send();
            }
            if let Some(m) = self.fresh.pop() {
                self.tx.push(m);
            }
        }

        fn flush(&mut self) -> u64 {
            // A full ring drains as the peer polls: what it refuses now waits
            // for the next turn, and only a backlog past MAX_PENDING is dropped
            // (TCP retransmits it; the caller counts the drop).
            // (`tx_burst_keep` offers it all, a chunk at a time, until the
            // device refuses.)
            if self.tx.is_empty() {
                return 0;
            }
            self.queue
                .tx_burst_keep(&mut self.tx, &mut self.fresh, FRESH_MAX);
            if self.tx.len() <= MAX_PENDING {
                return 0;
            }
            let dropped = self.tx.len() - MAX_PENDING;
            self.tx.truncate(MAX_PENDING);
            dropped as u64
        }

        fn tx_pending(&self) -> usize {
            self.tx.len()
        }
    }
}
