//! One call from Ethernet bytes to a fully parsed frame: the path every
//! received packet takes, and the target the fuzzer drives.

use super::{
    ArpPacket, ArpRepr, ChecksumMode, Error, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, IcmpPacket, IcmpRepr, Icmpv6Packet, Icmpv6Repr, IpFamily, IpProtocol, Ipv4Addr,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, Result, TcpPacket, TcpRepr, be16, be32, checksum,
    ethernet, ipv4, ipv6, put16, tcp,
};
use std::mem::MaybeUninit;
use std::net::Ipv6Addr;

/// A received frame, parsed as far as sluice cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    Arp(EthernetRepr, ArpRepr),
    Icmp(EthernetRepr, Ipv4Repr, IcmpRepr<'a>),
    Tcp(EthernetRepr, Ipv4Repr, TcpRepr<'a>),
    /// IPv4 with another protocol (UDP, ...): not ours.
    OtherIp(EthernetRepr, Ipv4Repr),
    /// Another EtherType (LLDP, ...): not ours.
    OtherEther(EthernetRepr),
    /// IPv6 (RFC 8200), past its extension headers.
    Ipv6(EthernetRepr, Ipv6Repr, Ipv6Payload<'a>),
}

/// What an IPv6 packet carries, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv6Payload<'a> {
    Icmp(Icmpv6Repr<'a>),
    Tcp(TcpRepr<'a>),
    /// Another upper layer (UDP, no next header, ...): not ours.
    Other,
}

/// Parses Ethernet, then ARP or IPv4, then ICMP or TCP, checking lengths and
/// checksums (per `mode`) at each layer.
pub fn parse_frame(frame: &[u8], mode: ChecksumMode) -> Result<Parsed<'_>> {
    let eth = EthernetFrame::new_checked(frame)?;
    let e = EthernetRepr::parse(&eth)?;
    let payload: &[u8] = &frame[super::ethernet::HEADER_LEN..];
    match e.ethertype {
        EtherType::Arp => {
            let p = ArpPacket::new_checked(payload)?;
            Ok(Parsed::Arp(e, ArpRepr::parse(&p)?))
        }
        EtherType::Ipv4 => {
            let ip = Ipv4Packet::new_checked(payload)?;
            let ir = Ipv4Repr::parse(&ip, mode)?;
            let (h, t) = (ip.header_len(), ip.total_len());
            let l4: &[u8] = &payload[h..t];
            match ir.protocol {
                IpProtocol::Tcp => {
                    let tp = TcpPacket::new_checked(l4)?;
                    let tr = TcpRepr::parse(&tp, ir.src_addr, ir.dst_addr, mode)?;
                    Ok(Parsed::Tcp(e, ir, tr))
                }
                IpProtocol::Icmp => {
                    let p = IcmpPacket::new_checked(l4)?;
                    let r = IcmpRepr::parse(&p, mode)?;
                    Ok(Parsed::Icmp(e, ir, r))
                }
                _ => Ok(Parsed::OtherIp(e, ir)),
            }
        }
        EtherType::Ipv6 => parse_ipv6(e, payload, mode),
        _ => Ok(Parsed::OtherEther(e)),
    }
}

/// `parse_frame` for IPv6: the header and its extension headers, then ICMPv6
/// or TCP with their checksums over the IPv6 pseudo-header (per `mode`). Out
/// of line, so the IPv4 path does not carry it.
#[inline(never)]
fn parse_ipv6(e: EthernetRepr, payload: &[u8], mode: ChecksumMode) -> Result<Parsed<'_>> {
    let ip = Ipv6Packet::new_checked(payload)?;
    let ir = Ipv6Repr::parse(&ip)?;
    let end = ipv6::HEADER_LEN + ip.payload_len();
    let l4: &[u8] = &payload[end - ir.payload_len..end];
    let p = match ir.next_header {
        IpProtocol::Tcp => {
            let tp = TcpPacket::new_checked(l4)?;
            if mode == ChecksumMode::Verify
                && IpFamily::transport_checksum(&ir.src_addr, &ir.dst_addr, 6, l4) != 0
            {
                return Err(Error::Checksum);
            }
            // Checked above: the IPv4 pseudo-header would not match.
            let un = Ipv4Addr::UNSPECIFIED;
            Ipv6Payload::Tcp(TcpRepr::parse(&tp, un, un, ChecksumMode::Ignore)?)
        }
        IpProtocol::Icmpv6 => {
            let p = Icmpv6Packet::new_checked(l4)?;
            Ipv6Payload::Icmp(Icmpv6Repr::parse(&p, &ir.src_addr, &ir.dst_addr, mode)?)
        }
        _ => Ipv6Payload::Other,
    };
    Ok(Parsed::Ipv6(e, ir, p))
}

/// A TCP frame as the receive path needs it: the link and network
/// addresses beside the segment (what `Parsed::Tcp` holds, less the IP
/// fields nobody reads on receive). IPv4 by default; `TcpFrame<Ipv6Addr>`
/// for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFrame<'a, A: IpFamily = Ipv4Addr> {
    pub eth_src: EthernetAddress,
    pub eth_dst: EthernetAddress,
    pub src_addr: A,
    pub dst_addr: A,
    pub seg: TcpRepr<'a>,
}

/// A TCP segment with the IP addresses it came between: what the receive
/// path builds of a frame (`parse_tcp_frame_in`). The link addresses stay
/// in the frame's first 12 bytes, where the shard reads them (the frame is
/// at hand): not copied out per frame to be read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegmentIn<'a, A: IpFamily = Ipv4Addr> {
    pub src_addr: A,
    pub dst_addr: A,
    pub seg: TcpRepr<'a>,
}

impl<'a> TcpSegmentIn<'a> {
    /// The same segment from the general parser's pieces.
    pub fn from_parsed(ip: &Ipv4Repr, seg: TcpRepr<'a>) -> Self {
        TcpSegmentIn {
            src_addr: ip.src_addr,
            dst_addr: ip.dst_addr,
            seg,
        }
    }
}

impl<'a> TcpSegmentIn<'a, Ipv6Addr> {
    /// The same segment from the general parser's IPv6 pieces.
    pub fn from_parsed_v6(ip: &Ipv6Repr, seg: TcpRepr<'a>) -> Self {
        TcpSegmentIn {
            src_addr: ip.src_addr,
            dst_addr: ip.dst_addr,
            seg,
        }
    }
}

impl<'a, A: IpFamily> TcpSegmentIn<'a, A> {
    /// The whole frame's view: the link addresses read from `frame` (the
    /// bytes this was parsed from, at least an Ethernet header long).
    fn with_link(&self, frame: &[u8]) -> TcpFrame<'a, A> {
        TcpFrame {
            eth_dst: EthernetAddress::from_bytes(&frame[..6]),
            eth_src: EthernetAddress::from_bytes(&frame[6..12]),
            src_addr: self.src_addr,
            dst_addr: self.dst_addr,
            seg: self.seg,
        }
    }
}

impl<'a> TcpFrame<'a, Ipv6Addr> {
    /// The same frame from the general parser's IPv6 pieces.
    pub fn from_parsed_v6(e: &EthernetRepr, ip: &Ipv6Repr, seg: TcpRepr<'a>) -> Self {
        TcpFrame {
            eth_src: e.src_addr,
            eth_dst: e.dst_addr,
            src_addr: ip.src_addr,
            dst_addr: ip.dst_addr,
            seg,
        }
    }
}

/// The parsed segment in `place`, in one write, then what the TCP options
/// say (both families' fast paths).
#[inline(always)]
fn write_segment<'a, 'p, A: IpFamily>(
    place: &'p mut MaybeUninit<TcpSegmentIn<'a, A>>,
    src_addr: A,
    dst_addr: A,
    t: tcp::Head<'a>,
) -> Result<&'p TcpSegmentIn<'a, A>> {
    let f = place.write(TcpSegmentIn {
        src_addr,
        dst_addr,
        seg: tcp::segment_of!(t),
    });
    f.seg.parse_options(t.options)?;
    Ok(f)
}

/// The IPv6 receive fast path: Ethernet, the fixed IPv6 header with Next
/// Header TCP (no extension headers), TCP, at fixed offsets. `Ok(None)` for
/// any other shape (extension headers, ICMPv6, IPv4, ...): those go to
/// `parse_frame`. For the frames it takes, the checks and the result are
/// `parse_frame`'s (`Parsed::Ipv6` with `Ipv6Payload::Tcp`).
#[inline(always)]
pub fn parse_tcp6_frame_in<'a, 'p>(
    frame: &'a [u8],
    mode: ChecksumMode,
    place: &'p mut MaybeUninit<TcpSegmentIn<'a, Ipv6Addr>>,
) -> Result<Option<&'p TcpSegmentIn<'a, Ipv6Addr>>> {
    const IP: usize = ethernet::HEADER_LEN;
    const L4: usize = IP + ipv6::HEADER_LEN;
    let Some(h) = frame.first_chunk::<L4>() else {
        return Ok(None);
    };
    // EtherType IPv6, version 6, Next Header TCP.
    if be16(h, 12) != 0x86dd || h[IP] >> 4 != 6 || h[IP + 6] != 6 {
        return Ok(None);
    }
    let payload_len = usize::from(be16(h, IP + 4));
    let Some(l4) = frame.get(L4..L4 + payload_len) else {
        return Err(Error::Truncated);
    };
    let addr = |at: usize| Ipv6Addr::from(u128::from_be_bytes(h[at..at + 16].try_into().unwrap()));
    let (src_addr, dst_addr) = (addr(IP + 8), addr(IP + 24));
    let sum = Ipv6Addr::pseudo_addr_sum(&src_addr, &dst_addr);
    let t = tcp::Head::parse_sum(l4, sum, mode)?;
    write_segment(place, src_addr, dst_addr, t).map(Some)
}

/// `parse_tcp6_frame_in` as a value (tests and tools).
#[inline]
pub fn parse_tcp6_frame(
    frame: &[u8],
    mode: ChecksumMode,
) -> Result<Option<TcpFrame<'_, Ipv6Addr>>> {
    let mut place = MaybeUninit::uninit();
    Ok(parse_tcp6_frame_in(frame, mode, &mut place)?.map(|s| s.with_link(frame)))
}

impl<'a> TcpFrame<'a> {
    /// A place for `parse_tcp_frame_into` to fill.
    pub const EMPTY: TcpFrame<'static> = TcpFrame {
        eth_src: EthernetAddress([0; 6]),
        eth_dst: EthernetAddress([0; 6]),
        src_addr: Ipv4Addr::UNSPECIFIED,
        dst_addr: Ipv4Addr::UNSPECIFIED,
        seg: TcpRepr::EMPTY,
    };

    /// The same frame from the general parser's pieces.
    pub fn from_parsed(e: &EthernetRepr, ip: &Ipv4Repr, seg: TcpRepr<'a>) -> Self {
        TcpFrame {
            eth_src: e.src_addr,
            eth_dst: e.dst_addr,
            src_addr: ip.src_addr,
            dst_addr: ip.dst_addr,
            seg,
        }
    }
}

/// The receive fast path: Ethernet, IPv4 without options (IHL 5), TCP, read
/// at fixed offsets, each field once. `Ok(None)` for any other shape (ARP,
/// ICMP, IPv4 options, other protocols, frames shorter than the two fixed
/// headers): those go to `parse_frame`. For the frames it takes, the checks,
/// their order and the result are `parse_frame`'s: lengths, IPv4 header
/// checksum (per `mode`), fragments, then the TCP checks and checksum of
/// `TcpRepr::parse`.
#[inline]
pub fn parse_tcp_frame(frame: &[u8], mode: ChecksumMode) -> Result<Option<TcpFrame<'_>>> {
    let mut place = MaybeUninit::uninit();
    Ok(parse_tcp_frame_in(frame, mode, &mut place)?.map(|s| s.with_link(frame)))
}

/// `parse_tcp_frame` into the caller's place: `Ok(true)` when the frame was
/// taken and every field of `out` written, `Ok(false)` when it is for
/// `parse_frame`.
#[inline]
pub fn parse_tcp_frame_into<'a>(
    frame: &'a [u8],
    mode: ChecksumMode,
    out: &mut TcpFrame<'a>,
) -> Result<bool> {
    let mut place = MaybeUninit::uninit();
    Ok(match parse_tcp_frame_in(frame, mode, &mut place)? {
        Some(f) => {
            *out = f.with_link(frame);
            true
        }
        None => false,
    })
}

/// `parse_tcp_frame` building the segment and its IP addresses in `place`,
/// which needs no initialising (the receive path's form: no default written
/// first, then overwritten; the link addresses left in `frame`). The
/// segment, when taken, is returned from there.
#[inline(always)]
pub fn parse_tcp_frame_in<'a, 'p>(
    frame: &'a [u8],
    mode: ChecksumMode,
    place: &'p mut MaybeUninit<TcpSegmentIn<'a>>,
) -> Result<Option<&'p TcpSegmentIn<'a>>> {
    const IP: usize = ethernet::HEADER_LEN;
    const L4: usize = IP + ipv4::HEADER_LEN;
    let Some(h) = frame.first_chunk::<L4>() else {
        return Ok(None);
    };
    // EtherType IPv4, version 4 with IHL 5, protocol TCP.
    if be16(h, 12) != 0x0800 || h[IP] != 0x45 || h[IP + 9] != 6 {
        return Ok(None);
    }
    let total_len = usize::from(be16(h, IP + 2));
    if total_len < ipv4::HEADER_LEN {
        return Err(Error::Malformed);
    }
    let Some(l4) = frame.get(L4..IP + total_len) else {
        return Err(Error::Truncated);
    };
    // The IPv4 header is `h`'s last 20 bytes (always there: `h` is L4 long).
    let ip_header = h.last_chunk::<{ ipv4::HEADER_LEN }>();
    if mode == ChecksumMode::Verify && !ip_header.is_some_and(checksum::ipv4_header_ok) {
        return Err(Error::Checksum);
    }
    // More fragments, or a fragment offset.
    if be16(h, IP + 6) & 0x3fff != 0 {
        return Err(Error::Fragment);
    }
    let src_addr = Ipv4Addr::from(be32(h, IP + 12));
    let dst_addr = Ipv4Addr::from(be32(h, IP + 16));
    let t = tcp::Head::parse(l4, src_addr, dst_addr, mode)?;
    write_segment(place, src_addr, dst_addr, t).map(Some)
}

/// Writes a parsed frame back to bytes (Ethernet, IPv4 without options, L4),
/// returning the length. `out` must be large enough (1514 bytes always is for
/// frames that came off an Ethernet link).
pub fn emit_frame(p: &Parsed<'_>, out: &mut [u8]) -> usize {
    let e = match p {
        Parsed::Arp(e, _)
        | Parsed::Icmp(e, _, _)
        | Parsed::Tcp(e, _, _)
        | Parsed::OtherIp(e, _)
        | Parsed::OtherEther(e)
        | Parsed::Ipv6(e, _, _) => e,
    };
    e.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    let l3 = &mut out[ethernet::HEADER_LEN..];
    match p {
        Parsed::Arp(_, a) => {
            a.emit(&mut ArpPacket::new_unchecked(&mut l3[..a.buffer_len()]));
            ethernet::HEADER_LEN + a.buffer_len()
        }
        Parsed::Icmp(_, ip, icmp) => {
            ethernet::HEADER_LEN
                + emit_ipv4(ip, icmp.buffer_len(), l3, |l4, _| {
                    icmp.emit(&mut IcmpPacket::new_unchecked(l4))
                })
        }
        Parsed::Tcp(_, ip, tcp) => {
            ethernet::HEADER_LEN
                + emit_ipv4(ip, tcp.buffer_len(), l3, |l4, ip| {
                    tcp.emit(&mut TcpPacket::new_unchecked(l4), ip.src_addr, ip.dst_addr)
                })
        }
        Parsed::OtherIp(_, ip) => {
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut l3[..ipv4::HEADER_LEN]));
            ethernet::HEADER_LEN + ipv4::HEADER_LEN
        }
        Parsed::OtherEther(_) => ethernet::HEADER_LEN,
        Parsed::Ipv6(_, ip, p) => ethernet::HEADER_LEN + emit_ipv6(ip, p, l3),
    }
}

/// Where the TCP header's checksum is (RFC 9293 3.1).
const TCP_CHECKSUM: usize = 16;

/// Writes an IPv6 header (no extension headers) and what it carries into
/// `l3`; returns the IPv6 packet's length. `Other` writes the header alone.
fn emit_ipv6(ip: &Ipv6Repr, p: &Ipv6Payload<'_>, l3: &mut [u8]) -> usize {
    let l4_len = match p {
        Ipv6Payload::Icmp(m) => m.buffer_len(),
        Ipv6Payload::Tcp(t) => t.buffer_len(),
        Ipv6Payload::Other => 0,
    };
    let ip = Ipv6Repr {
        payload_len: l4_len,
        ..*ip
    };
    let len = ipv6::HEADER_LEN + l4_len;
    let mut ipp = Ipv6Packet::new_unchecked(&mut l3[..len]);
    ip.emit(&mut ipp);
    let l4 = ipp.payload_mut();
    match p {
        Ipv6Payload::Icmp(m) => m.emit(
            &ip.src_addr,
            &ip.dst_addr,
            &mut Icmpv6Packet::new_unchecked(l4),
        ),
        Ipv6Payload::Tcp(t) => {
            let un = Ipv4Addr::UNSPECIFIED;
            t.emit(&mut TcpPacket::new_unchecked(&mut l4[..]), un, un);
            // The checksum again, over the IPv6 pseudo-header (RFC 8200 8.1).
            put16(l4, TCP_CHECKSUM, 0);
            let c = checksum::transport_checksum_v6(&ip.src_addr, &ip.dst_addr, 6, l4);
            put16(l4, TCP_CHECKSUM, c);
        }
        Ipv6Payload::Other => {}
    }
    len
}

/// Writes an IPv4 header for `l4_len` payload bytes into `l3`, then lets `l4`
/// write the payload; returns the IPv4 packet's length.
fn emit_ipv4(
    ip: &Ipv4Repr,
    l4_len: usize,
    l3: &mut [u8],
    l4: impl FnOnce(&mut [u8], &Ipv4Repr),
) -> usize {
    let ip = Ipv4Repr {
        payload_len: l4_len,
        ..*ip
    };
    let len = super::ipv4::HEADER_LEN + l4_len;
    let mut ipp = Ipv4Packet::new_unchecked(&mut l3[..len]);
    ip.emit(&mut ipp);
    l4(ipp.payload_mut(), &ip);
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SeqNumber;

    /// An IPv6 TCP frame (SYN with options, or data with timestamps).
    fn v6_frame(data: bool) -> Vec<u8> {
        let seg = TcpRepr {
            src_port: 40_000,
            dst_port: 80,
            control: if data {
                crate::wire::TcpControl::None
            } else {
                crate::wire::TcpControl::Syn
            },
            seq_number: SeqNumber(0x0102_0304),
            ack_number: data.then_some(SeqNumber(77)),
            window_len: 1000,
            max_seg_size: (!data).then_some(1440),
            timestamp: Some(crate::wire::TcpTimestamp { tsval: 5, tsecr: 6 }),
            payload: if data { b"GET / HTTP/1.1\r\n\r\n" } else { b"" },
            ..TcpRepr::default()
        };
        let p = Parsed::Ipv6(
            EthernetRepr {
                src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
                dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
                ethertype: EtherType::Ipv6,
            },
            Ipv6Repr {
                src_addr: "2001:db8::2".parse().unwrap(),
                dst_addr: "2001:db8::1".parse().unwrap(),
                next_header: IpProtocol::Tcp,
                payload_len: 0,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
            },
            Ipv6Payload::Tcp(seg),
        );
        let mut out = vec![0u8; 1514];
        let n = emit_frame(&p, &mut out);
        out.truncate(n);
        out
    }

    /// What the general parser makes of a frame, as the fast path's result.
    fn general(frame: &[u8], mode: ChecksumMode) -> Result<Option<TcpFrame<'_, Ipv6Addr>>> {
        match parse_frame(frame, mode)? {
            Parsed::Ipv6(e, ip, Ipv6Payload::Tcp(seg)) => {
                Ok(Some(TcpFrame::from_parsed_v6(&e, &ip, seg)))
            }
            _ => Ok(None),
        }
    }

    /// The IPv6 fast path agrees with `parse_frame` on every frame it
    /// takes, and takes every IPv6 TCP frame without extension headers,
    /// through single-byte damage and truncation anywhere.
    #[test]
    fn the_ipv6_fast_path_is_the_general_parse() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for data in [false, true] {
            let good = v6_frame(data);
            let f = parse_tcp6_frame(&good, ChecksumMode::Verify)
                .unwrap()
                .expect("taken");
            assert_eq!(Ok(Some(f)), general(&good, ChecksumMode::Verify));
            assert_eq!(f.seg.dst_port, 80);
            for _ in 0..4000 {
                let mut b = good.clone();
                let r = next();
                let at = (r % b.len() as u64) as usize;
                b[at] ^= (r >> 32) as u8 | 1;
                if r & (1 << 20) != 0 {
                    b.truncate(((r >> 40) % b.len() as u64) as usize);
                }
                for mode in [ChecksumMode::Verify, ChecksumMode::Ignore] {
                    match parse_tcp6_frame(&b, mode) {
                        Ok(Some(f)) => assert_eq!(Ok(Some(f)), general(&b, mode), "{b:02x?}"),
                        Ok(None) => {
                            // Not an IPv6 TCP frame without extension headers.
                            let taken = b.len() >= 54
                                && b[12..14] == [0x86, 0xdd]
                                && b[14] >> 4 == 6
                                && b[20] == 6;
                            assert!(!taken, "{b:02x?}");
                        }
                        Err(e) => assert_eq!(general(&b, mode), Err(e), "{b:02x?}"),
                    }
                }
            }
        }
    }
}
