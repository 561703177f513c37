//! Control frames — ARP, ICMP, RSTs, TIME_WAIT and cookie answers — queued in
//! reused buffers and sent first at the next output; and the Ethernet/IPv4
//! headers every TCP frame gets.

use super::Stack;
use crate::tcp::{FourTuple, rst_reply};
use crate::wire::{EtherType, EthernetAddress, TcpPacket, TcpRepr};
use std::net::Ipv4Addr;

pub(super) const ETH: usize = 14;
pub(super) const IP: usize = 20;
pub(super) const HDRS: usize = ETH + IP;

impl Stack {
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
    pub(super) fn send_rst_reply(&mut self, t: FourTuple, seg: &TcpRepr) {
        if let Some(rst) = rst_reply(seg) {
            self.send_rst(t, &rst);
        }
    }

    /// Queues the reset `rst` on `t` (counted).
    pub(super) fn send_rst(&mut self, t: FourTuple, rst: &TcpRepr) {
        let mut tcp = [0u8; 64];
        let n = rst.buffer_len();
        rst.emit(
            &mut TcpPacket::new_unchecked(&mut tcp[..n]),
            *t.local.ip(),
            *t.remote.ip(),
        );
        self.stats.tcp.rsts_out += 1;
        self.ctrl_tcp(t, &tcp[..n]);
    }

    /// Queues a TCP segment (already with its checksum) as a control frame,
    /// an answer to the frame being handled: to the MAC it came from.
    pub(super) fn ctrl_tcp(&mut self, t: FourTuple, tcp: &[u8]) {
        let mac = self.peer_mac;
        let src_mac = self.cfg.iface.mac;
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let ident = self.ip_ident;
        let buf = self.ctrl_buf(HDRS + tcp.len());
        write_headers(
            buf,
            &src_mac,
            &mac,
            *t.local.ip(),
            *t.remote.ip(),
            tcp.len(),
            ident,
        );
        buf[HDRS..].copy_from_slice(tcp);
    }
}

/// Writes Ethernet and IPv4 headers in front of a TCP segment of `tcp_len` bytes.
#[inline]
pub(super) fn write_headers(
    buf: &mut [u8],
    src_mac: &EthernetAddress,
    dst_mac: &EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    tcp_len: usize,
    ident: u16,
) {
    let b: &mut [u8; HDRS] = (&mut buf[..HDRS]).try_into().unwrap();
    b[..6].copy_from_slice(&dst_mac.0);
    b[6..12].copy_from_slice(&src_mac.0);
    b[12..ETH].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
    crate::wire::ipv4::emit_tcp_header(&mut b[ETH..], src, dst, tcp_len, ident);
}
