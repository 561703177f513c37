//! Answers ARP requests for our address (RFC 826), ICMP echo requests
//! (RFC 792, RFC 1122 3.2.2.6), ICMPv6 echo requests (RFC 4443 4.1) and
//! Neighbor Solicitations (RFC 4861 7.2.3, 7.2.4; our addresses are static,
//! so there is no duplicate address detection of our own), and counts
//! everything else by reason (the shard's `DropReason`: TCP, which it leaves
//! to the shard, is `NoConnection`; TCP over IPv6, which the engine does not
//! take yet, is `Unsupported`). Pure: bytes in, bytes out; no DPDK types.

use crate::stats::DropReason;
use crate::wire::addr::{self, ALL_NODES};
use crate::wire::{
    ArpOperation, ArpPacket, ArpRepr, ChecksumMode, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, IcmpPacket, IcmpRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Range, Ipv6Repr, NdFlags, ipv6,
};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Our interface: one MAC, `ip_count` consecutive IPv4 addresses from `ip`
/// (a load generator uses many source addresses), and optionally IPv6
/// addresses: a range of them and the link-local address made from the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iface {
    pub mac: EthernetAddress,
    pub ip: Ipv4Addr,
    pub ip_count: u32,
    /// Our IPv6 addresses besides the link-local one (empty: none).
    pub ip6: Ipv6Range,
    /// Our link-local address (RFC 4291 2.5.6), when IPv6 is on.
    pub link_local: Option<Ipv6Addr>,
}

impl Iface {
    /// An IPv4 interface (IPv6 off: `with_ipv6` turns it on).
    pub fn new(mac: EthernetAddress, ip: Ipv4Addr) -> Iface {
        Iface {
            mac,
            ip,
            ip_count: 1,
            ip6: Ipv6Range::EMPTY,
            link_local: None,
        }
    }

    /// IPv6 on, with the addresses of `ip6` and the EUI-64 link-local address
    /// of our MAC (RFC 4862 5.3: every interface has one).
    pub fn with_ipv6(mut self, ip6: Ipv6Range) -> Iface {
        self.ip6 = ip6;
        self.link_local = Some(addr::link_local(self.mac));
        self
    }

    /// Whether `ip` is one of ours.
    #[inline]
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip).wrapping_sub(u32::from(self.ip)) < self.ip_count
    }

    /// Whether `ip` is one of our IPv6 (unicast) addresses.
    #[inline]
    pub fn owns6(&self, ip: &Ipv6Addr) -> bool {
        self.ip6.owns(ip) || self.link_local == Some(*ip)
    }
}

crate::counters::declare_counters! {
    /// Counters, read by the reporter.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct ResponderStats {
        pub rx_frames,
        pub arp_requests_answered,
        pub arp_replies_received,
        /// Echo requests answered, ICMP and ICMPv6.
        pub icmp_echo_answered,
        /// Of those, ICMPv6.
        pub icmpv6_echo_answered,
        /// Neighbor Solicitations answered with an advertisement.
        pub nd_solicitations_answered,
        pub nd_advertisements_received,
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
    /// Room `handle` needs in `out` beyond the received frame's length: a
    /// Neighbor Advertisement (86 bytes) may answer a shorter solicitation.
    pub const MIN_OUT: usize = 128;

    pub fn new(iface: Iface) -> Responder {
        Responder {
            iface,
            stats: ResponderStats::default(),
        }
    }

    /// Handles one received frame. If it calls for an answer, writes it into `out`
    /// (which must hold at least `frame.len().max(Self::MIN_OUT)` bytes) and returns its
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
        if eth.ethertype() == EtherType::Ipv6 {
            // Solicitations come to a multicast MAC: checked there.
            return self.ipv6(&eth, out);
        }
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

impl Responder {
    fn ipv6(
        &mut self,
        eth: &EthernetFrame<&[u8]>,
        out: &mut [u8],
    ) -> Result<Option<usize>, DropReason> {
        if self.iface.link_local.is_none() {
            // IPv6 is off: as before it was understood.
            return Err(DropReason::OtherEtherType);
        }
        let pkt = Ipv6Packet::new_checked(eth.payload()).map_err(DropReason::from)?;
        let ip = Ipv6Repr::parse(&pkt).map_err(DropReason::from)?;
        // To one of our addresses in a frame to our MAC (a unicast address in
        // a group frame is dropped, as RFC 1122 3.3.6 says for IPv4), or to
        // a solicited-node group in that group's frame (RFC 2464 7).
        let unicast = self.iface.owns6(&ip.dst_addr);
        if unicast {
            if eth.dst_addr().is_multicast() {
                return Err(DropReason::LinkBroadcast);
            }
            if eth.dst_addr() != self.iface.mac {
                return Err(DropReason::NotForUs);
            }
        } else if !addr::is_solicited_node(&ip.dst_addr)
            || eth.dst_addr() != addr::multicast_mac(&ip.dst_addr)
        {
            return Err(DropReason::NotForUs);
        }
        // RFC 4291 2.7: a multicast address is never a source.
        if ip.src_addr.is_multicast() {
            return Err(DropReason::BadSource);
        }
        match ip.next_header {
            IpProtocol::Icmpv6 => {}
            IpProtocol::Tcp if unicast => return Err(DropReason::Unsupported),
            _ => return Err(DropReason::OtherIpProtocol),
        }
        let end = pkt.payload_len();
        let l4 = &pkt.payload()[end - ip.payload_len..end];
        let icmp = Icmpv6Packet::new_checked(l4).map_err(DropReason::from)?;
        let msg = Icmpv6Repr::parse(&icmp, &ip.src_addr, &ip.dst_addr, ChecksumMode::Verify)
            .map_err(DropReason::from)?;
        let (reply, to_ip, to_mac, hop_limit) = match msg {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } if unicast => (
                Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                },
                ip.src_addr,
                eth.src_addr(),
                64,
            ),
            Icmpv6Repr::NeighborSolicit {
                target_addr,
                source_lladdr,
            } => {
                // RFC 4861 7.1.1: from this link only.
                if ip.hop_limit != 255 {
                    return Err(DropReason::Malformed);
                }
                // For one of ours, and if to a group, to the target's.
                if !self.iface.owns6(&target_addr)
                    || (!unicast && ip.dst_addr != addr::solicited_node(&target_addr))
                {
                    return Err(DropReason::NotForUs);
                }
                // RFC 4861 7.2.4: to the solicitor, solicited; or, when it
                // has no address yet (detecting duplicates), to all nodes.
                // Override set: the address is ours, not a proxy's.
                let (to_ip, to_mac, flags) = if ip.src_addr.is_unspecified() {
                    (
                        ALL_NODES,
                        addr::multicast_mac(&ALL_NODES),
                        NdFlags::OVERRIDE,
                    )
                } else {
                    let mac = source_lladdr.unwrap_or(eth.src_addr());
                    (ip.src_addr, mac, NdFlags::SOLICITED | NdFlags::OVERRIDE)
                };
                let na = Icmpv6Repr::NeighborAdvert {
                    flags,
                    target_addr,
                    target_lladdr: Some(self.iface.mac),
                };
                // The advertisement comes from the target address itself.
                let n = self.emit6(&na, &target_addr, &to_ip, to_mac, 255, out)?;
                self.stats.nd_solicitations_answered += 1;
                return Ok(Some(n));
            }
            Icmpv6Repr::NeighborAdvert { .. } => {
                // RFC 4861 7.1.2.
                if ip.hop_limit != 255 {
                    return Err(DropReason::Malformed);
                }
                self.stats.nd_advertisements_received += 1;
                return Ok(None);
            }
            _ => return Err(DropReason::IcmpNotEcho),
        };
        let n = self.emit6(&reply, &ip.dst_addr, &to_ip, to_mac, hop_limit, out)?;
        self.stats.icmp_echo_answered += 1;
        self.stats.icmpv6_echo_answered += 1;
        Ok(Some(n))
    }

    /// Writes `msg` from `src` to `dst` (at `mac`) into `out`: its length.
    fn emit6(
        &self,
        msg: &Icmpv6Repr<'_>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        mac: EthernetAddress,
        hop_limit: u8,
        out: &mut [u8],
    ) -> Result<usize, DropReason> {
        let ip = Ipv6Repr {
            src_addr: *src,
            dst_addr: *dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: msg.buffer_len(),
            hop_limit,
            traffic_class: 0,
            flow_label: 0,
        };
        let e = EthernetRepr {
            src_addr: self.iface.mac,
            dst_addr: mac,
            ethertype: EtherType::Ipv6,
        };
        let len = e.buffer_len() + ipv6::HEADER_LEN + msg.buffer_len();
        let buf = out.get_mut(..len).ok_or(DropReason::Unsupported)?;
        let mut f = EthernetFrame::new_unchecked(buf);
        e.emit(&mut f);
        let mut p = Ipv6Packet::new_unchecked(f.payload_mut());
        ip.emit(&mut p);
        msg.emit(src, dst, &mut Icmpv6Packet::new_unchecked(p.payload_mut()));
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Iface = Iface {
        mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x02]),
        ip: Ipv4Addr::new(10, 0, 0, 2),
        ip_count: 1,
        ip6: Ipv6Range::EMPTY,
        link_local: None,
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

    // IPv6: our addresses 2001:db8::2 and on (4 of them), and the link-local.
    const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const US6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    fn us6() -> Iface {
        US.with_ipv6(Ipv6Range {
            first: US6,
            count: 4,
        })
    }

    /// `msg` from `src` to `dst` in a frame to `mac`, hop limit `hops`.
    fn v6_frame(
        msg: Icmpv6Repr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        mac: EthernetAddress,
        hops: u8,
    ) -> Vec<u8> {
        let mut buf = vec![0u8; 14 + 40 + msg.buffer_len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: mac,
            ethertype: EtherType::Ipv6,
        }
        .emit(&mut f);
        let mut p = Ipv6Packet::new_unchecked(f.payload_mut());
        Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: msg.buffer_len(),
            hop_limit: hops,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut p);
        msg.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(p.payload_mut()),
        );
        buf
    }

    /// The answer's Ethernet and IPv6 headers and its ICMPv6 message.
    fn answer(out: &[u8]) -> (EthernetRepr, Ipv6Repr, Icmpv6Repr<'_>) {
        let f = EthernetFrame::new_checked(out).unwrap();
        let e = EthernetRepr::parse(&f).unwrap();
        let p = Ipv6Packet::new_checked(&out[14..]).unwrap();
        let ip = Ipv6Repr::parse(&p).unwrap();
        let m = Icmpv6Packet::new_checked(&out[54..]).unwrap();
        let m = Icmpv6Repr::parse(&m, &ip.src_addr, &ip.dst_addr, ChecksumMode::Verify).unwrap();
        (e, ip, m)
    }

    fn solicit(target: Ipv6Addr, ll: Option<EthernetAddress>) -> Icmpv6Repr<'static> {
        Icmpv6Repr::NeighborSolicit {
            target_addr: target,
            source_lladdr: ll,
        }
    }

    #[test]
    fn rfc4443_4_1_answers_ping6_with_same_data() {
        let mut r = Responder::new(us6());
        let echo = Icmpv6Repr::EchoRequest {
            ident: 9,
            seq_no: 4,
            data: b"0123456789abcdef",
        };
        for dst in [
            US6,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5),
            addr::link_local(US.mac),
        ] {
            let req = v6_frame(echo, PEER6, dst, US.mac, 64);
            let mut out = vec![0u8; req.len().max(Responder::MIN_OUT)];
            let n = r.handle(&req, &mut out).unwrap().unwrap();
            assert_eq!(n, req.len());
            let (e, ip, m) = answer(&out[..n]);
            assert_eq!((e.src_addr, e.dst_addr), (US.mac, PEER_MAC));
            assert_eq!((ip.src_addr, ip.dst_addr), (dst, PEER6));
            assert_eq!(
                m,
                Icmpv6Repr::EchoReply {
                    ident: 9,
                    seq_no: 4,
                    data: b"0123456789abcdef"
                }
            );
        }
        assert_eq!(r.stats.icmpv6_echo_answered, 3);
        assert_eq!(r.stats.icmp_echo_answered, 3);
        // Not ours: the address after the range.
        let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 6);
        let req = v6_frame(echo, PEER6, other, US.mac, 64);
        let mut out = vec![0u8; 256];
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::NotForUs));
        // Ours, but in a group frame (RFC 1122 3.3.6's rule, kept for IPv6).
        let req = v6_frame(echo, PEER6, US6, addr::multicast_mac(&US6), 64);
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::LinkBroadcast));
        // From a multicast address (RFC 4291 2.7).
        let req = v6_frame(echo, ALL_NODES, US6, US.mac, 64);
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::BadSource));
    }

    #[test]
    fn rfc4861_7_2_4_answers_solicitations_for_our_addresses() {
        let mut r = Responder::new(us6());
        let mut out = vec![0u8; 256];
        // Multicast to the target's solicited-node group, with the
        // solicitor's address; unicast (reachability), with and without it.
        let sn = addr::solicited_node(&US6);
        let other_mac = EthernetAddress([2, 0, 0, 0, 0, 0x77]);
        for (dst, mac, ll, want_mac) in [
            (sn, addr::multicast_mac(&sn), Some(other_mac), other_mac),
            (US6, US.mac, Some(other_mac), other_mac),
            (US6, US.mac, None, PEER_MAC),
        ] {
            let req = v6_frame(solicit(US6, ll), PEER6, dst, mac, 255);
            let n = r.handle(&req, &mut out).unwrap().unwrap();
            let (e, ip, m) = answer(&out[..n]);
            assert_eq!((e.src_addr, e.dst_addr), (US.mac, want_mac));
            assert_eq!((ip.src_addr, ip.dst_addr, ip.hop_limit), (US6, PEER6, 255));
            assert_eq!(
                m,
                Icmpv6Repr::NeighborAdvert {
                    flags: NdFlags::SOLICITED | NdFlags::OVERRIDE,
                    target_addr: US6,
                    target_lladdr: Some(US.mac),
                }
            );
        }
        assert_eq!(r.stats.nd_solicitations_answered, 3);
    }

    #[test]
    fn rfc4861_7_2_4_duplicate_address_probe_answered_to_all_nodes() {
        let mut r = Responder::new(us6());
        let sn = addr::solicited_node(&US6);
        let req = v6_frame(
            solicit(US6, None),
            Ipv6Addr::UNSPECIFIED,
            sn,
            addr::multicast_mac(&sn),
            255,
        );
        // The advertisement is longer than the probe.
        let mut out = vec![0u8; req.len().max(Responder::MIN_OUT)];
        let n = r.handle(&req, &mut out).unwrap().unwrap();
        assert!(n > req.len());
        let (e, ip, m) = answer(&out[..n]);
        assert_eq!(e.dst_addr.to_string(), "33:33:00:00:00:01");
        assert_eq!((ip.src_addr, ip.dst_addr), (US6, ALL_NODES));
        assert_eq!(
            m,
            Icmpv6Repr::NeighborAdvert {
                flags: NdFlags::OVERRIDE,
                target_addr: US6,
                target_lladdr: Some(US.mac),
            }
        );
    }

    #[test]
    fn solicitations_not_answered() {
        let mut r = Responder::new(us6());
        let mut out = vec![0u8; 256];
        let sn = addr::solicited_node(&US6);
        let smac = addr::multicast_mac(&sn);
        let ll = Some(PEER_MAC);
        // RFC 4861 7.1.1: a hop limit below 255 (from off link).
        let req = v6_frame(solicit(US6, ll), PEER6, sn, smac, 254);
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::Malformed));
        // For an address not ours, to its own group.
        let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0x10, 2);
        let req = v6_frame(solicit(other, ll), PEER6, sn, smac, 255);
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::NotForUs));
        // For ours, but sent to another address's group.
        let sn3 = addr::solicited_node(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3));
        let req = v6_frame(solicit(US6, ll), PEER6, sn3, addr::multicast_mac(&sn3), 255);
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::NotForUs));
        // The group address in another group's frame.
        let req = v6_frame(solicit(US6, ll), PEER6, sn, US.mac, 255);
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::NotForUs));
        assert_eq!(r.stats.nd_solicitations_answered, 0);
        // An advertisement is noted, not answered; with a bad hop limit, dropped.
        let na = Icmpv6Repr::NeighborAdvert {
            flags: NdFlags::SOLICITED,
            target_addr: PEER6,
            target_lladdr: ll,
        };
        assert_eq!(
            r.handle(&v6_frame(na, PEER6, US6, US.mac, 255), &mut out),
            Ok(None)
        );
        assert_eq!(
            r.handle(&v6_frame(na, PEER6, US6, US.mac, 1), &mut out),
            Err(DropReason::Malformed)
        );
        assert_eq!(r.stats.nd_advertisements_received, 1);
    }

    #[test]
    fn ipv6_off_and_other_ipv6_traffic() {
        let echo = Icmpv6Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: b"x",
        };
        let req = v6_frame(echo, PEER6, US6, US.mac, 64);
        let mut out = vec![0u8; 256];
        // Without IPv6 addresses, IPv6 counts as before.
        let mut r = Responder::new(US);
        assert_eq!(r.handle(&req, &mut out), Err(DropReason::OtherEtherType));
        let mut r = Responder::new(us6());
        // TCP over IPv6: for the engine, which does not take it yet.
        let mut tcp = req.clone();
        tcp[14 + 6] = 6;
        assert_eq!(r.handle(&tcp, &mut out), Err(DropReason::Unsupported));
        let mut udp = req.clone();
        udp[14 + 6] = 17;
        assert_eq!(r.handle(&udp, &mut out), Err(DropReason::OtherIpProtocol));
        // A reply, or a router solicitation to us: not answered.
        let reply = Icmpv6Repr::EchoReply {
            ident: 1,
            seq_no: 1,
            data: b"x",
        };
        let rs = Icmpv6Repr::Other {
            msg_type: 133,
            code: 0,
        };
        for m in [reply, rs] {
            assert_eq!(
                r.handle(&v6_frame(m, PEER6, US6, US.mac, 255), &mut out),
                Err(DropReason::IcmpNotEcho)
            );
        }
        // An IPv6 fragment (RFC 8200 4.5) is counted as one.
        let mut frag = req.clone();
        frag[14 + 6] = 44;
        frag.splice(54..54, [58, 0, 0, 1, 0, 0, 0, 1]);
        let len = (frag.len() - 54) as u16;
        frag[18..20].copy_from_slice(&len.to_be_bytes());
        assert_eq!(r.handle(&frag, &mut out), Err(DropReason::Ipv6Fragment));
        // Every truncation and a bad checksum: dropped with a reason, never answered.
        for n in 0..req.len() {
            assert!(r.handle(&req[..n], &mut out).is_err(), "cut at {n}");
        }
        let mut bad = req.clone();
        bad[14 + 40 + 8] ^= 1;
        assert_eq!(r.handle(&bad, &mut out), Err(DropReason::BadChecksum));
        assert_eq!(r.stats.icmp_echo_answered, 0);
    }
}
