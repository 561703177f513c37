//! Control frames — ARP, ICMP, RSTs, TIME_WAIT and cookie answers — queued in
//! reused buffers and sent first at the next output; and the Ethernet/IPv4
//! headers every TCP frame gets.

use super::{Stack, StackFamily};
use crate::tcp::rst_reply;
use crate::wire::{EthernetAddress, EthernetTail, FlowKey, TcpPacket, TcpRepr};

pub(super) const ETH: usize = 14;

/// The Ethernet and IP headers in front of a TCP segment of family `A`
/// (34 bytes for IPv4, 54 for IPv6).
#[inline(always)]
pub(super) const fn hdrs<A: StackFamily>() -> usize {
    ETH + A::HEADER_LEN
}

impl<A: StackFamily> Stack<A> {
    /// The next control frame's buffer, `len` bytes of zeros.
    pub(super) fn ctrl_buf(&mut self, len: usize) -> &mut [u8] {
        if self.ctrl_used == self.ctrl.len() {
            self.ctrl.push(Vec::with_capacity(1514));
        }
        let b = &mut self.ctrl[self.ctrl_used];
        b.clear();
        b.resize(len, 0);
        self.ctrl_used += 1;
        b
    }

    /// The last control frame is `n` bytes long.
    pub(super) fn ctrl_commit(&mut self, n: usize) {
        self.ctrl[self.ctrl_used - 1].truncate(n);
    }

    /// The last control frame is not sent after all.
    pub(super) fn ctrl_cancel(&mut self) {
        self.ctrl_used -= 1;
    }

    /// Answers `seg` with the RST RFC 9293 gives for it (none to an RST).
    pub(super) fn send_rst_reply(&mut self, t: FlowKey<A>, seg: &TcpRepr) {
        if let Some(rst) = rst_reply(seg) {
            self.send_rst(t, &rst);
        }
    }

    /// Queues the reset `rst` on `t` (counted).
    pub(super) fn send_rst(&mut self, t: FlowKey<A>, rst: &TcpRepr) {
        let mut tcp = [0u8; 64];
        let n = rst.buffer_len();
        let sum = A::pseudo_addr_sum(&t.local_host(), &t.remote_host());
        rst.emit_sum(&mut TcpPacket::new_unchecked(&mut tcp[..n]), sum);
        self.stats.tcp.rsts_out += 1;
        self.ctrl_tcp(t, &tcp[..n]);
    }

    /// Queues a TCP segment (already with its checksum) as a control frame,
    /// an answer to the frame being handled: to the MAC it came from.
    pub(super) fn ctrl_tcp(&mut self, t: FlowKey<A>, tcp: &[u8]) {
        let mac = self.peer_mac;
        let tail = self.eth_tail;
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let ident = self.ip_ident;
        let hdrs = hdrs::<A>();
        let buf = self.ctrl_buf(hdrs + tcp.len());
        let (local, remote) = (t.local_host(), t.remote_host());
        write_headers(buf, &tail, &mac, &local, &remote, tcp.len(), ident);
        buf[hdrs..].copy_from_slice(tcp);
    }
}

/// Writes Ethernet and IP headers (family `A`) in front of a TCP segment
/// of `tcp_len` bytes.
#[inline(always)]
pub(super) fn write_headers<A: StackFamily>(
    buf: &mut [u8],
    tail: &EthernetTail,
    dst_mac: &EthernetAddress,
    src: &A,
    dst: &A,
    tcp_len: usize,
    ident: u16,
) {
    A::emit_tcp_headers(buf, tail, dst_mac, src, dst, tcp_len, ident);
}
