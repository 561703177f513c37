//! Answers ARP requests for our address (RFC 826) and ICMP echo requests
//! (RFC 792, RFC 1122 3.2.2.6), and counts everything else by reason (the
//! shard's `DropReason`: TCP, which it leaves to the shard, is `NoConnection`).
//! Pure: bytes in, bytes out; no DPDK types.

use crate::stats::DropReason;
use crate::wire::{
    ArpOperation, ArpPacket, ArpRepr, ChecksumMode, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, IcmpPacket, IcmpRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
};
use std::net::Ipv4Addr;

/// Our interface: one MAC, and `ip_count` consecutive IPv4 addresses from
/// `ip` (a load generator uses many source addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iface {
    pub mac: EthernetAddress,
    pub ip: Ipv4Addr,
    pub ip_count: u32,
}

impl Iface {
    pub fn new(mac: EthernetAddress, ip: Ipv4Addr) -> Iface {
        Iface {
            mac,
            ip,
            ip_count: 1,
        }
    }

    /// Whether `ip` is one of ours.
    #[inline]
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip).wrapping_sub(u32::from(self.ip)) < self.ip_count
    }
}

crate::counters::declare_counters! {
    /// Counters, read by the reporter.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct ResponderStats {
        pub rx_frames,
        pub arp_requests_answered,
        pub arp_replies_received,
        pub icmp_echo_answered,
        /// Frames not answered, by reason (the shard's `DropReason`s).
        pub drops: [DropReason],
    }
}

impl ResponderStats {
    pub fn dropped(&self, d: DropReason) -> u64 {
        self.drops[d.index()]
    }
    pub fn total_dropped(&self) -> u64 {
        self.drops.iter().sum()
    }
    /// `name=value` pairs of the non-zero drop counters.
    pub fn drop_summary(&self) -> String {
        let v: Vec<String> = DropReason::ALL
            .iter()
            .filter(|d| self.dropped(**d) > 0)
            .map(|d| format!("{}={}", d.name(), self.dropped(*d)))
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(" ")
        }
    }
}

/// The responder for one interface.
#[derive(Debug, Clone)]
pub struct Responder {
    pub iface: Iface,
    pub stats: ResponderStats,
}

impl Responder {
    pub fn new(iface: Iface) -> Responder {
        Responder {
            iface,
            stats: ResponderStats::default(),
        }
    }

    /// Handles one received frame. If it calls for an answer, writes it into `out`
    /// (which must hold at least `frame.len().max(42)` bytes) and returns its
    /// length; `Ok(None)` if it needs none (an ARP reply), or why it was dropped
    /// (counted here too).
    pub fn handle(&mut self, frame: &[u8], out: &mut [u8]) -> Result<Option<usize>, DropReason> {
        self.stats.rx_frames += 1;
        let r = self.process(frame, out);
        if let Err(d) = r {
            self.stats.drops[d.index()] += 1;
        }
        r
    }

    fn process(&mut self, frame: &[u8], out: &mut [u8]) -> Result<Option<usize>, DropReason> {
        let eth = EthernetFrame::new_checked(frame).map_err(DropReason::from)?;
        let dst = eth.dst_addr();
        if dst != self.iface.mac && !dst.is_broadcast() {
            return Err(DropReason::NotForUs);
        }
        match eth.ethertype() {
            EtherType::Arp => self.arp(&eth, out),
            EtherType::Ipv4 => self.ipv4(&eth, out),
            _ => Err(DropReason::OtherEtherType),
        }
    }

    fn arp(
        &mut self,
        eth: &EthernetFrame<&[u8]>,
        out: &mut [u8],
    ) -> Result<Option<usize>, DropReason> {
        let pkt = ArpPacket::new_checked(eth.payload()).map_err(DropReason::from)?;
        let arp = ArpRepr::parse(&pkt).map_err(DropReason::from)?;
        if !self.iface.owns(arp.target_protocol_addr) {
            return Err(DropReason::NotForUs);
        }
        match arp.operation {
            ArpOperation::Request => {
                let reply = ArpRepr {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: self.iface.mac,
                    source_protocol_addr: arp.target_protocol_addr,
                    target_hardware_addr: arp.source_hardware_addr,
                    target_protocol_addr: arp.source_protocol_addr,
                };
                let e = EthernetRepr {
                    src_addr: self.iface.mac,
                    dst_addr: arp.source_hardware_addr,
                    ethertype: EtherType::Arp,
                };
                let len = e.buffer_len() + reply.buffer_len();
                let buf = out.get_mut(..len).ok_or(DropReason::Unsupported)?;
                let mut f = EthernetFrame::new_unchecked(buf);
                e.emit(&mut f);
                reply.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
                self.stats.arp_requests_answered += 1;
                Ok(Some(len))
            }
            ArpOperation::Reply => {
                self.stats.arp_replies_received += 1;
                Ok(None)
            }
            ArpOperation::Unknown(_) => Err(DropReason::Unsupported),
        }
    }

    fn ipv4(
        &mut self,
        eth: &EthernetFrame<&[u8]>,
        out: &mut [u8],
    ) -> Result<Option<usize>, DropReason> {
        let pkt = Ipv4Packet::new_checked(eth.payload()).map_err(DropReason::from)?;
        let ip = Ipv4Repr::parse(&pkt, ChecksumMode::Verify).map_err(DropReason::from)?;
        if !self.iface.owns(ip.dst_addr) {
            return Err(DropReason::NotForUs);
        }
        // RFC 1122 3.3.6: our (unicast) address in a link-layer broadcast.
        if eth.dst_addr().is_multicast() {
            return Err(DropReason::LinkBroadcast);
        }
        match ip.protocol {
            IpProtocol::Icmp => {}
            IpProtocol::Tcp => return Err(DropReason::NoConnection),
            _ => return Err(DropReason::OtherIpProtocol),
        }
        let payload = pkt.payload();
        let icmp = IcmpPacket::new_checked(payload).map_err(DropReason::from)?;
        let (ident, seq_no, data) =
            match IcmpRepr::parse(&icmp, ChecksumMode::Verify).map_err(DropReason::from)? {
                IcmpRepr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                } => (ident, seq_no, data),
                _ => return Err(DropReason::IcmpNotEcho),
            };
        let reply = IcmpRepr::EchoReply {
            ident,
            seq_no,
            data,
        };
        let ip_out = Ipv4Repr {
            src_addr: ip.dst_addr,
            dst_addr: ip.src_addr,
            protocol: IpProtocol::Icmp,
            payload_len: reply.buffer_len(),
            ttl: 64,
            tos: ip.tos,
            ident: ip.ident,
            dont_frag: ip.dont_frag,
        };
        let e = EthernetRepr {
            src_addr: self.iface.mac,
            dst_addr: eth.src_addr(),
            ethertype: EtherType::Ipv4,
        };
        let len = e.buffer_len() + ip_out.buffer_len() + reply.buffer_len();
        let buf = out.get_mut(..len).ok_or(DropReason::Unsupported)?;
        let mut f = EthernetFrame::new_unchecked(buf);
        e.emit(&mut f);
        let mut ipp = Ipv4Packet::new_unchecked(f.payload_mut());
        ip_out.emit(&mut ipp);
        reply.emit(&mut IcmpPacket::new_unchecked(ipp.payload_mut()));
        self.stats.icmp_echo_answered += 1;
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Iface = Iface {
        mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x02]),
        ip: Ipv4Addr::new(10, 0, 0, 2),
        ip_count: 1,
    };
    const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn arp_request(target: Ipv4Addr) -> Vec<u8> {
        let mut buf = vec![0u8; 42];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
        }
        .emit(&mut f);
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: PEER_MAC,
            source_protocol_addr: PEER_IP,
            target_hardware_addr: EthernetAddress::default(),
            target_protocol_addr: target,
        }
        .emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
        buf
    }

    fn ping(data: &[u8]) -> Vec<u8> {
        let icmp = IcmpRepr::EchoRequest {
            ident: 77,
            seq_no: 3,
            data,
        };
        ipv4_frame(IpProtocol::Icmp, icmp)
    }

    /// `icmp` in an IPv4 packet that says it carries `protocol`.
    fn ipv4_frame(protocol: IpProtocol, icmp: IcmpRepr) -> Vec<u8> {
        let ip = Ipv4Repr {
            src_addr: PEER_IP,
            dst_addr: US.ip,
            protocol,
            payload_len: icmp.buffer_len(),
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_frag: true,
        };
        let mut buf = vec![0u8; 14 + 20 + icmp.buffer_len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: US.mac,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut f);
        let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
        ip.emit(&mut p);
        icmp.emit(&mut IcmpPacket::new_unchecked(p.payload_mut()));
        buf
    }

    #[test]
    fn answers_arp_for_us_only() {
        let mut r = Responder::new(US);
        let mut out = [0u8; 64];
        let n = r.handle(&arp_request(US.ip), &mut out).unwrap().unwrap();
        let f = EthernetFrame::new_checked(&out[..n]).unwrap();
        assert_eq!(f.dst_addr(), PEER_MAC);
        assert_eq!(f.src_addr(), US.mac);
        let a = ArpRepr::parse(&ArpPacket::new_checked(f.payload()).unwrap()).unwrap();
        assert_eq!(a.operation, ArpOperation::Reply);
        assert_eq!(a.source_hardware_addr, US.mac);
        assert_eq!(a.source_protocol_addr, US.ip);
        assert_eq!(a.target_protocol_addr, PEER_IP);
        assert_eq!(
            r.handle(&arp_request(Ipv4Addr::new(10, 0, 0, 9)), &mut out),
            Err(DropReason::NotForUs)
        );
        assert_eq!(r.stats.dropped(DropReason::NotForUs), 1);
        assert_eq!(r.stats.arp_requests_answered, 1);
    }

    #[test]
    fn answers_ping_with_same_data() {
        let mut r = Responder::new(US);
        let req = ping(b"0123456789abcdef0123456789abcdef");
        let mut out = vec![0u8; req.len()];
        let n = r.handle(&req, &mut out).unwrap().unwrap();
        assert_eq!(n, req.len());
        let f = EthernetFrame::new_checked(&out[..n]).unwrap();
        let p = Ipv4Packet::new_checked(f.payload()).unwrap();
        let ip = Ipv4Repr::parse(&p, ChecksumMode::Verify).unwrap();
        assert_eq!((ip.src_addr, ip.dst_addr), (US.ip, PEER_IP));
        let icmp = IcmpPacket::new_checked(p.payload()).unwrap();
        assert_eq!(
            IcmpRepr::parse(&icmp, ChecksumMode::Verify).unwrap(),
            IcmpRepr::EchoReply {
                ident: 77,
                seq_no: 3,
                data: b"0123456789abcdef0123456789abcdef"
            }
        );
    }

    /// RFC 1122 3.3.6: a ping to our unicast address inside a link-layer
    /// broadcast frame is discarded, not answered.
    #[test]
    fn rfc1122_3_3_6_ping_in_link_broadcast_dropped() {
        let mut r = Responder::new(US);
        let mut req = ping(b"x");
        req[..6].copy_from_slice(&EthernetAddress::BROADCAST.0);
        let mut out = vec![0u8; req.len()];
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::LinkBroadcast));
        assert_eq!(r.stats.icmp_echo_answered, 0);
    }

    #[test]
    fn bad_input_is_counted_never_answered() {
        let mut r = Responder::new(US);
        let mut out = vec![0u8; 128];
        let good = ping(b"xyz");
        // Every truncation of a good ping is dropped, with a reason.
        for n in 0..good.len() {
            assert!(r.handle(&good[..n], &mut out).is_err());
        }
        let mut bad = good.clone();
        bad[14 + 12] ^= 1; // IPv4 header checksum
        assert_eq!(r.handle(&bad, &mut out), Err(DropReason::BadChecksum));
        let mut bad = good.clone();
        bad[14 + 20 + 8] ^= 1; // ICMP checksum
        assert_eq!(r.handle(&bad, &mut out), Err(DropReason::BadChecksum));
        assert_eq!(r.stats.dropped(DropReason::BadChecksum), 2);
        assert_eq!(r.stats.total_dropped(), good.len() as u64 + 2);
        assert_eq!(r.stats.icmp_echo_answered, 0);
    }

    #[test]
    fn drops_are_counted_under_the_shards_reasons() {
        let mut r = Responder::new(US);
        let mut out = vec![0u8; 128];
        let reply = IcmpRepr::EchoReply {
            ident: 1,
            seq_no: 1,
            data: b"x",
        };
        assert_eq!(
            r.handle(&ipv4_frame(IpProtocol::Icmp, reply), &mut out),
            Err(DropReason::IcmpNotEcho)
        );
        // TCP is the shard's business: here it finds no connection.
        assert_eq!(
            r.handle(&ipv4_frame(IpProtocol::Tcp, reply), &mut out),
            Err(DropReason::NoConnection)
        );
        assert_eq!(r.stats.dropped(DropReason::IcmpNotEcho), 1);
        assert_eq!(r.stats.dropped(DropReason::NoConnection), 1);
        assert_eq!(r.stats.drop_summary(), "icmp_not_echo=1 no_connection=1");
    }
}
