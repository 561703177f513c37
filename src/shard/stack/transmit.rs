//! Output: control frames first (they answer what just arrived), then every
//! touched connection driven and its segments built in place in the NIC's
//! buffers (`Nic::tx_buf`, then `tx_commit`), then the flush. What the device
//! refuses waits in the NIC's backlog and goes first next turn, and the turn
//! makes no new work until it has (`tx_room`); a frame is dropped (and
//! counted `tx_full`) only past that backlog's bound.

use super::control::{hdrs, write_headers};
use super::neighbours::Neighbours;
use super::{Conn, HAS_MAC, Stack, StackConfig, StackFamily};
use crate::flags::Flags8;
use crate::shard::nic::Nic;
use crate::stats::{DropReason, ShardStats};
use crate::tcp::QueuedSum;
use crate::time::Instant;
use crate::wire::EthernetTail;

/// How a connection's transmit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Segments {
    /// Everything it had to send is out (or it had nothing).
    Sent,
    /// No MAC for its peer: nothing sent, the connection is left as it is.
    NoNeighbour,
    /// A segment was left unsent for want of an mbuf (counted `no_buffer`).
    NoBuffer,
}

impl<A: StackFamily> Stack<A> {
    /// Whether the device has room for new work: frames it refused before
    /// are handed to it again first; if some still wait, the turn is counted
    /// in `tx_waits` and makes nothing new. One call into the NIC a turn
    /// when nothing waits.
    #[inline]
    pub(super) fn tx_room(&mut self, nic: &mut dyn Nic) -> bool {
        if nic.tx_pending() == 0 {
            return true;
        }
        self.tx_retry(nic)
    }

    #[cold]
    #[inline(never)]
    fn tx_retry(&mut self, nic: &mut dyn Nic) -> bool {
        let dropped = nic.flush();
        self.count_tx_dropped(dropped);
        if nic.tx_pending() == 0 {
            return true;
        }
        self.stats.tx_waits += 1;
        false
    }

    /// Frames the device would not take even after waiting: the last resort.
    fn count_tx_dropped(&mut self, dropped: u64) {
        for _ in 0..dropped {
            self.stats.drop(DropReason::TxFull);
        }
        self.stats.tx_packets -= dropped.min(self.stats.tx_packets);
    }

    /// The turn's output phase.
    pub(super) fn output(&mut self, now: Instant, nic: &mut dyn Nic) {
        for i in 0..self.ctrl_used {
            let f = &self.ctrl[i];
            let n = f.len();
            let Some(buf) = nic.tx_buf(n) else {
                self.stats.drop(DropReason::NoBuffer);
                continue;
            };
            buf.copy_from_slice(f);
            nic.tx_commit(n);
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += n as u64;
        }
        self.ctrl_used = 0;
        // The run's bounds the applications see, the same all turn.
        let run = self
            .client
            .as_ref()
            .map_or((Instant::NEVER, Instant::NEVER), |g| {
                (g.stop_at(), g.record_from())
            });
        let mut i = 0;
        while i < self.touched.len() {
            let h = self.touched[i];
            i += 1;
            self.drive(now, h, nic, run);
        }
        self.touched.clear();
        let dropped = nic.flush();
        self.count_tx_dropped(dropped);
    }
}

/// The parts of the shard `transmit` uses (`drive` keeps the connection in
/// hand, so the shard is lent out field by field).
pub(super) struct Tx<'a, A: StackFamily> {
    pub stats: &'a mut ShardStats,
    pub neigh: &'a Neighbours<A>,
    pub cfg: &'a StackConfig,
    pub ip_ident: &'a mut u16,
    pub eth_tail: &'a EthernetTail,
}

impl<A: StackFamily> Tx<'_, A> {
    /// Connection `c`'s segments, each written by the engine straight into a
    /// NIC buffer behind its Ethernet and IPv4 headers.
    #[inline(always)]
    pub(super) fn transmit(
        &mut self,
        now: Instant,
        c: &mut Conn<A>,
        queued: &QueuedSum,
        nic: &mut dyn Nic,
    ) -> Segments {
        // Nothing to send: no neighbour lookup, no buffer, no call into the NIC.
        if !c.tcp.wants_transmit() {
            return Segments::Sent;
        }
        if !c.has(HAS_MAC) {
            let Some(m) = self.neigh.get(&c.key.remote_host()) else {
                self.stats.drop(DropReason::NoNeighbour);
                return Segments::NoNeighbour;
            };
            c.set_mac(m);
        }
        // Both MACs by reference: copied once, into the frame (the field
        // itself: the control block is borrowed below).
        let dst_mac = &c.mac;
        let (local, remote) = (c.key.local_host(), c.key.remote_host());
        let cfg = &self.cfg.tcp;
        let hdrs = hdrs::<A>();
        let max = hdrs + usize::from(cfg.mss) + 60;
        // Only while the engine may have a segment (asked above for the
        // first): a connection with nothing to send costs no buffer and no
        // call into the NIC.
        loop {
            let Some(buf) = nic.tx_buf(max) else {
                self.stats.drop(DropReason::NoBuffer);
                return Segments::NoBuffer;
            };
            let Some((n, more)) =
                c.tcp
                    .poll_transmit_summed(now, cfg, &mut self.stats.tcp, queued, &mut buf[hdrs..])
            else {
                // Nothing after all: the buffer is left for the next frame.
                break;
            };
            *self.ip_ident = self.ip_ident.wrapping_add(1);
            write_headers(
                buf,
                self.eth_tail,
                dst_mac,
                &local,
                &remote,
                n,
                *self.ip_ident,
            );
            let len = hdrs + n;
            nic.tx_commit(len);
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += len as u64;
            if !more || !c.tcp.wants_transmit() {
                break;
            }
        }
        Segments::Sent
    }
}
