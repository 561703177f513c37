//! IPv6 (RFC 8200). The fixed header is a view and a `Repr`; extension
//! headers are walked to the upper layer: hop-by-hop options (first only),
//! destination options and routing headers with no segments left are skipped
//! by their length; a fragment is refused with [`Error::Ipv6Fragment`] (an
//! atomic fragment, offset 0 and no more, is read as the packet it is, RFC
//! 6946); anything else sluice cannot read past (ESP, AH, mobility, HIP,
//! shim6, experimental numbers) is refused as unsupported.

use super::{Error, IpProtocol, Result, be16, be32, put16, put32};
use std::net::Ipv6Addr;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: usize = 0;
    pub const LENGTH: usize = 4;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// Next Header values of the extension headers (IANA "IPv6 Extension Header
/// Types") and the one that ends a chain.
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const NO_NEXT: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
    pub const EXPERIMENT_1: u8 = 253;
    pub const EXPERIMENT_2: u8 = 254;
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Checks the version and the payload length against the buffer. The
    /// buffer may be longer (Ethernet padding); `payload` stops at the
    /// length. A payload length of 0 is an empty payload (sluice takes no
    /// jumbograms, RFC 2675, whose hop-by-hop option is refused on parse).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(Error::Unsupported);
        }
        if b.len() < HEADER_LEN + usize::from(be16(b, field::LENGTH)) {
            return Err(Error::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn traffic_class(&self) -> u8 {
        (be16(self.buffer.as_ref(), 0) >> 4) as u8
    }
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }
    /// The payload length field: extension headers and upper layer.
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::LENGTH))
    }
    /// The fixed header's Next Header (an extension header or the upper layer).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }
    /// Everything after the fixed header, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }
    /// The upper-layer protocol and where its bytes start in `payload()`,
    /// past the extension headers.
    pub fn upper_layer(&self) -> Result<(IpProtocol, usize)> {
        skip_extension_headers(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let n = self.payload_len();
        &mut self.buffer.as_mut()[HEADER_LEN..HEADER_LEN + n]
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// Walks the extension header chain at the start of `payload` (the bytes
/// after the fixed header) that begins with Next Header `nh`: the upper-layer
/// protocol and its offset in `payload`.
pub fn skip_extension_headers(mut nh: u8, payload: &[u8]) -> Result<(IpProtocol, usize)> {
    use next_header::*;
    let mut at = 0;
    loop {
        match nh {
            HOP_BY_HOP | ROUTING | FRAGMENT | DEST_OPTS => {}
            ESP | AH | MOBILITY | HIP | SHIM6 | EXPERIMENT_1 | EXPERIMENT_2 => {
                return Err(Error::Unsupported);
            }
            // The upper layer (or No Next Header, 59, which has none).
            _ => return Ok((IpProtocol::from(nh), at)),
        }
        // RFC 8200 4.3: hop-by-hop options only right after the fixed header.
        if nh == HOP_BY_HOP && at != 0 {
            return Err(Error::Malformed);
        }
        // Every extension header is a multiple of 8 bytes, at least 8; all
        // but the fragment header say how many more in their second byte.
        let Some(h) = payload.get(at..at + 8) else {
            return Err(Error::Truncated);
        };
        let len = if nh == FRAGMENT {
            8
        } else {
            (usize::from(h[1]) + 1) * 8
        };
        let Some(body) = payload.get(at..at + len) else {
            return Err(Error::Truncated);
        };
        match nh {
            HOP_BY_HOP | DEST_OPTS => check_options(&body[2..])?,
            // RFC 8200 4.4: with segments left the packet is for a later hop,
            // which an endpoint does not route to (and type 0 is deprecated,
            // RFC 5095); with none left the header is skipped.
            ROUTING if body[3] != 0 => return Err(Error::Unsupported),
            ROUTING => {}
            _ => {
                // RFC 8200 4.5: offset (13 bits), 2 reserved, M. RFC 6946:
                // offset 0 without M is a whole packet.
                if be16(body, 2) & 0xfff9 != 0 {
                    return Err(Error::Ipv6Fragment);
                }
            }
        }
        nh = body[0];
        at += len;
    }
}

/// RFC 8200 4.2: the TLV-encoded options of a hop-by-hop or destination
/// options header. Pad1 and PadN are padding, and other options whose
/// type's top two bits are 00 are skipped; sluice acts on none, so an option
/// that says "discard the packet if not understood" (01, 10, 11: the
/// jumbo payload among them) is refused as unsupported.
fn check_options(mut o: &[u8]) -> Result<()> {
    while let Some((&kind, rest)) = o.split_first() {
        if kind == 0 {
            // Pad1: a single byte.
            o = rest;
            continue;
        }
        let Some((&len, rest)) = rest.split_first() else {
            return Err(Error::Malformed);
        };
        let Some(rest) = rest.get(usize::from(len)..) else {
            return Err(Error::Malformed);
        };
        if kind != 1 && kind >> 6 != 0 {
            return Err(Error::Unsupported);
        }
        o = rest;
    }
    Ok(())
}

/// An IPv6 header as sluice uses it: the fixed header, with the upper-layer
/// protocol and length found past any extension headers (which it does not
/// keep: `emit` writes a header without them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    /// The upper-layer protocol.
    pub next_header: IpProtocol,
    /// The upper-layer packet's length.
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses a checked packet, walking its extension headers
    /// ([`skip_extension_headers`]). There is no header checksum.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Self> {
        let (next_header, at) = p.upper_layer()?;
        Ok(Ipv6Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header,
            payload_len: p.payload_len() - at,
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte fixed header, Next Header the upper layer. The
    /// buffer must hold at least `HEADER_LEN` bytes; the payload follows.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<T>) {
        let b = p.buffer.as_mut();
        let first = 6 << 28 | u32::from(self.traffic_class) << 20 | (self.flow_label & 0x000f_ffff);
        put32(b, field::VER_TC_FLOW, first);
        put16(
            b,
            field::LENGTH,
            self.payload_len.min(usize::from(u16::MAX)) as u16,
        );
        b[field::NXT_HDR] = self.next_header.into();
        b[field::HOP_LIMIT] = self.hop_limit;
        b[field::SRC].copy_from_slice(&self.src_addr.octets());
        b[field::DST].copy_from_slice(&self.dst_addr.octets());
    }
}

/// The hop limit of what sluice sends (Linux's default, as the IPv4 TTL).
pub const HOP_LIMIT: u8 = 64;

/// Writes the fixed header of a packet carrying a TCP segment of
/// `payload_len` bytes (traffic class and flow label 0, hop limit 64), at
/// fixed offsets: the transmit path's form of `Ipv6Repr::emit`.
#[inline]
pub fn emit_tcp_header(b: &mut [u8], src: &Ipv6Addr, dst: &Ipv6Addr, payload_len: usize) {
    let b: &mut [u8; HEADER_LEN] = (&mut b[..HEADER_LEN]).try_into().unwrap();
    let len = payload_len.min(usize::from(u16::MAX)) as u32;
    // Version 6 | payload length, next header TCP, hop limit.
    let w = 0x6000_0000u64 << 32 | u64::from(len) << 16 | 6 << 8 | u64::from(HOP_LIMIT);
    b[..8].copy_from_slice(&w.to_be_bytes());
    b[8..24].copy_from_slice(&src.octets());
    b[24..40].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_header_fast_emit_is_the_general_one() {
        for len in [0usize, 20, 1460, 70_000] {
            let mut fast = [0u8; HEADER_LEN];
            emit_tcp_header(&mut fast, &SRC, &DST, len);
            let mut general = [0u8; HEADER_LEN];
            Ipv6Repr {
                src_addr: SRC,
                dst_addr: DST,
                next_header: IpProtocol::Tcp,
                payload_len: len,
                hop_limit: HOP_LIMIT,
                traffic_class: 0,
                flow_label: 0,
            }
            .emit(&mut Ipv6Packet::new_unchecked(&mut general[..]));
            assert_eq!(fast, general, "{len}");
        }
    }

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A fixed header for `next` carrying `payload`.
    fn packet(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN];
        // Traffic class 0xb8, flow label 0x12345.
        v[..4].copy_from_slice(&0x6b81_2345u32.to_be_bytes());
        v[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        v[6] = next;
        v[7] = 64;
        v[8..24].copy_from_slice(&SRC.octets());
        v[24..40].copy_from_slice(&DST.octets());
        v.extend_from_slice(payload);
        v
    }

    /// An extension header (not a fragment) of `8 * units` bytes after its
    /// first two, next header `next`, `body` then zeros (Pad1s).
    fn ext(next: u8, units: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![next, units];
        v.extend_from_slice(body);
        v.resize(8 * (usize::from(units) + 1), 0);
        v
    }

    #[test]
    fn parse_and_emit() {
        let v = packet(6, &[0x5a; 24]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        let r = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Ipv6Repr {
                src_addr: SRC,
                dst_addr: DST,
                next_header: IpProtocol::Tcp,
                payload_len: 24,
                hop_limit: 64,
                traffic_class: 0xb8,
                flow_label: 0x12345,
            }
        );
        let mut out = vec![0u8; v.len()];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..HEADER_LEN], &v[..HEADER_LEN]);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut v = packet(58, &[1, 2, 3, 4, 5, 6, 7, 8]);
        v.extend_from_slice(&[0; 10]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn truncated_and_wrong_version() {
        let v = packet(6, &[0; 20]);
        for n in 0..v.len() {
            assert_eq!(
                Ipv6Packet::new_checked(&v[..n]).unwrap_err(),
                Error::Truncated,
                "len {n}"
            );
        }
        let mut bad = v.clone();
        bad[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Unsupported
        );
    }

    #[test]
    fn skips_the_common_extension_headers() {
        use next_header::*;
        // Hop-by-hop (router alert, RFC 2711, as MLD reports carry it), then
        // destination options (PadN), a routing header with no segments left,
        // an atomic fragment (RFC 6946), then TCP.
        let mut pl = ext(DEST_OPTS, 0, &[5, 2, 0, 0, 1, 0]);
        pl.extend(ext(ROUTING, 0, &[1, 4, 0, 0, 0, 0]));
        // Type 4 (segment routing), no segments left.
        pl.extend(ext(FRAGMENT, 1, &[4, 0]));
        pl.extend_from_slice(&[6, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
        pl.extend_from_slice(&[0xaa; 20]);
        let v = packet(HOP_BY_HOP, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap(), (IpProtocol::Tcp, 40));
        let r = Ipv6Repr::parse(&p).unwrap();
        assert_eq!((r.next_header, r.payload_len), (IpProtocol::Tcp, 20));
    }

    #[test]
    fn rfc8200_4_5_fragments_are_refused() {
        use next_header::*;
        // More fragments; an offset; both. Then the atomic fragment, taken.
        for (off_m, want) in [
            (0x0001u16, Err(Error::Ipv6Fragment)),
            (0x0008, Err(Error::Ipv6Fragment)),
            (0xfff9, Err(Error::Ipv6Fragment)),
            (0x0006, Ok((IpProtocol::Udp, 8))),
        ] {
            let mut pl = vec![17, 0];
            pl.extend_from_slice(&off_m.to_be_bytes());
            pl.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
            let v = packet(FRAGMENT, &pl);
            let p = Ipv6Packet::new_checked(&v[..]).unwrap();
            assert_eq!(p.upper_layer(), want, "{off_m:#x}");
        }
    }

    #[test]
    fn rfc8200_4_3_hop_by_hop_only_first() {
        use next_header::*;
        let mut pl = ext(HOP_BY_HOP, 0, &[]);
        pl.extend(ext(6, 0, &[]));
        let v = packet(DEST_OPTS, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::Malformed);
    }

    #[test]
    fn rfc8200_4_4_routing_with_segments_left_is_refused() {
        let v = packet(next_header::ROUTING, &ext(6, 0, &[0, 1]));
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn rfc8200_4_2_options_that_demand_understanding_are_refused() {
        use next_header::*;
        // Top bits 01, 10, 11 (0xc2 is the jumbo payload): discard. 00 (an
        // unknown 0x1e): skip.
        for (kind, ok) in [(0x5eu8, false), (0x9e, false), (0xc2, false), (0x1e, true)] {
            let v = packet(DEST_OPTS, &ext(59, 0, &[kind, 4, 0, 0, 0, 0]));
            let p = Ipv6Packet::new_checked(&v[..]).unwrap();
            let r = p.upper_layer();
            if ok {
                assert_eq!(r, Ok((IpProtocol::Unknown(59), 8)));
            } else {
                assert_eq!(r, Err(Error::Unsupported), "{kind:#x}");
            }
        }
    }

    #[test]
    fn bad_extension_chains() {
        use next_header::*;
        // An option running past its header.
        let v = packet(HOP_BY_HOP, &ext(6, 0, &[1, 5, 0, 0, 0, 0]));
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::Malformed);
        // An option type with no length byte (the last byte of the header).
        let v = packet(HOP_BY_HOP, &ext(6, 0, &[1, 3, 0, 0, 0, 7]));
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::Malformed);
        // A header longer than the payload; one cut short; none at all.
        let v = packet(DEST_OPTS, &ext(6, 2, &[]));
        let p = Ipv6Packet::new_checked(&v[..v.len()]).unwrap();
        assert!(p.upper_layer().is_ok());
        for cut in [1, 8, 23] {
            let mut w = v.clone();
            w.truncate(v.len() - cut);
            let len = (w.len() - HEADER_LEN) as u16;
            w[4..6].copy_from_slice(&len.to_be_bytes());
            let p = Ipv6Packet::new_checked(&w[..]).unwrap();
            assert_eq!(p.upper_layer().unwrap_err(), Error::Truncated, "cut {cut}");
        }
        // Headers that cannot be read past.
        for nh in [ESP, AH, MOBILITY, HIP, SHIM6, EXPERIMENT_1, EXPERIMENT_2] {
            let v = packet(nh, &ext(6, 0, &[]));
            let p = Ipv6Packet::new_checked(&v[..]).unwrap();
            assert_eq!(p.upper_layer().unwrap_err(), Error::Unsupported, "{nh}");
        }
        // A long chain of destination options ends where the bytes do.
        let mut pl = Vec::new();
        for _ in 0..100 {
            pl.extend(ext(DEST_OPTS, 0, &[]));
        }
        let v = packet(DEST_OPTS, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::Truncated);
    }
}
