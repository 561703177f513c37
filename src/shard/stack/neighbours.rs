//! ARP and the neighbour table: the peers' MACs, learnt from ARP (RFC 826's
//! merge step) and from SYNs, asked for with ARP requests; and the
//! responder's answers to ARP and ICMP echo requests.

use super::Stack;
use super::control::ETH;
use crate::wire::{self, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use std::net::Ipv4Addr;

impl Stack {
    /// Knows `ip`'s MAC without asking (the peer of a point-to-point link, a
    /// gateway given on the command line, or an ARP answer).
    pub fn add_neighbour(&mut self, ip: Ipv4Addr, mac: EthernetAddress) {
        self.neigh.insert(ip, mac);
    }

    pub fn neighbour(&self, ip: Ipv4Addr) -> Option<EthernetAddress> {
        self.neigh.get(&ip).copied()
    }

    /// Queues an ARP request for `ip` (sent at the next `poll`).
    pub fn request_arp(&mut self, ip: Ipv4Addr) {
        let arp = wire::ArpRepr {
            operation: wire::ArpOperation::Request,
            source_hardware_addr: self.cfg.iface.mac,
            source_protocol_addr: self.cfg.iface.ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        };
        let eth = EthernetRepr {
            src_addr: self.cfg.iface.mac,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
        };
        let len = ETH + arp.buffer_len();
        let buf = self.ctrl_buf(len.max(60));
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..ETH]));
        arp.emit(&mut wire::ArpPacket::new_unchecked(&mut buf[ETH..len]));
    }

    /// A SYN's sender, for the replies (a load generator may use many source
    /// addresses behind one MAC).
    pub(super) fn learn_from_syn(&mut self, ip: Ipv4Addr, mac: EthernetAddress) {
        if self.neigh.get(&ip) != Some(&mac) {
            self.neigh.insert(ip, mac);
        }
    }

    /// An ARP request for us or an answer to ours: either way the sender's
    /// address (RFC 826's merge step).
    pub(super) fn learn_from_arp(&mut self, a: &wire::ArpRepr) {
        if self.cfg.iface.owns(a.target_protocol_addr) {
            self.neigh
                .insert(a.source_protocol_addr, a.source_hardware_addr);
        }
    }

    /// ARP and ICMP: the responder answers or counts the drop.
    pub(super) fn control_reply(&mut self, frame: &[u8]) {
        let before = self.responder.stats;
        self.ctrl_buf(frame.len().max(64));
        let buf = &mut self.ctrl[self.ctrl_used - 1];
        let r = self.responder.handle(frame, buf);
        let after = self.responder.stats;
        self.stats.arp_answered += after.arp_requests_answered - before.arp_requests_answered;
        self.stats.icmp_answered += after.icmp_echo_answered - before.icmp_echo_answered;
        match r {
            Ok(Some(n)) => self.ctrl_commit(n),
            Ok(None) => self.ctrl_cancel(),
            Err(d) => {
                self.stats.drop(d);
                self.ctrl_cancel();
            }
        }
    }
}
