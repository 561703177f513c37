//! IPv4 (RFC 791). Options are skipped; fragments are recognised and refused
//! with [`Error::Fragment`] so the caller can count them.

use super::checksum;
use super::{ChecksumMode, Error, Result, be16, put16};
use std::net::Ipv4Addr;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    /// ICMP for IPv6 (RFC 4443), IPv6's next header 58.
    Icmpv6,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            58 => IpProtocol::Icmpv6,
            o => IpProtocol::Unknown(o),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> u8 {
        match v {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Unknown(o) => o,
        }
    }
}

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Checks version, IHL and total length against the buffer. The buffer may be
    /// longer than the total length (Ethernet padding); `payload` stops at it.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::Unsupported);
        }
        let header_len = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        let total_len = usize::from(be16(b, field::LENGTH));
        if total_len < header_len {
            return Err(Error::Malformed);
        }
        if b.len() < header_len || b.len() < total_len {
            return Err(Error::Truncated);
        }
        Ok(Ipv4Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::LENGTH))
    }
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & 0x4000 != 0
    }
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & 0x2000 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::FLG_OFF) & 0x1fff) * 8
    }
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> IpProtocol {
        self.buffer.as_ref()[field::PROTOCOL].into()
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// True when the header checksum (options included) is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
    /// The options bytes (skipped by sluice, but visible).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), self.total_len());
        &mut self.buffer.as_mut()[h..t]
    }
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }
    /// Recomputes the header checksum.
    pub fn fill_checksum(&mut self) {
        let h = self.header_len();
        let b = self.buffer.as_mut();
        put16(b, field::CHECKSUM, 0);
        let c = checksum::checksum(&b[..h]);
        put16(b, field::CHECKSUM, c);
    }
}

/// An IPv4 header (without options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: IpProtocol,
    pub payload_len: usize,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Parses a checked packet: verifies the checksum (per `mode`) and refuses
    /// fragments with [`Error::Fragment`].
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>, mode: ChecksumMode) -> Result<Self> {
        if mode == ChecksumMode::Verify && !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        if p.is_fragment() {
            return Err(Error::Fragment);
        }
        Ok(Ipv4Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len(),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with its checksum. The buffer must hold at least
    /// `HEADER_LEN` bytes; the payload (if any) follows it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv4Packet<T>) {
        let b = p.buffer.as_mut();
        b[field::VER_IHL] = 0x45;
        b[field::TOS] = self.tos;
        let total = (HEADER_LEN + self.payload_len).min(usize::from(u16::MAX)) as u16;
        put16(b, field::LENGTH, total);
        put16(b, field::IDENT, self.ident);
        put16(b, field::FLG_OFF, if self.dont_frag { 0x4000 } else { 0 });
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol.into();
        b[field::SRC].copy_from_slice(&self.src_addr.octets());
        b[field::DST].copy_from_slice(&self.dst_addr.octets());
        put16(b, field::CHECKSUM, 0);
        let c = checksum::checksum(&b[..HEADER_LEN]);
        put16(b, field::CHECKSUM, c);
    }
}

/// The usual header of a TCP segment, written straight into `b` (20
/// bytes): no options, TOS 0, DF, TTL 64, with its checksum summed from the
/// fields instead of read back from the buffer. The same bytes as
/// [`Ipv4Repr::emit`] with those fields.
///
/// The header is five big-endian 32-bit words; their sum folds to the same
/// ones' complement sum as the 16-bit words' (2^16 = 1 modulo 2^16 - 1), so
/// the checksum is four adds and a fold, and the words are stored whole.
#[inline]
pub fn emit_tcp_header(b: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize, ident: u16) {
    let b: &mut [u8; HEADER_LEN] = (&mut b[..HEADER_LEN]).try_into().unwrap();
    let total = (HEADER_LEN + payload_len).min(usize::from(u16::MAX)) as u32;
    let (s, d) = (u32::from(src), u32::from(dst));
    // Version 4, IHL 5, TOS 0, total length | identification, DF.
    let w0 = 0x4500_0000 | total;
    let w1 = u32::from(ident) << 16 | 0x4000;
    // TTL 64, TCP, then the checksum.
    const TTL_PROTO: u32 = 0x4006_0000;
    let sum = u64::from(w0) + u64::from(w1) + u64::from(TTL_PROTO) + u64::from(s) + u64::from(d);
    let w2 = TTL_PROTO | u32::from(!checksum::fold(sum));
    b[..8].copy_from_slice(&(u64::from(w0) << 32 | u64::from(w1)).to_be_bytes());
    b[8..16].copy_from_slice(&(u64::from(w2) << 32 | u64::from(s)).to_be_bytes());
    b[16..20].copy_from_slice(&d.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_header_fast_emit_is_the_general_one() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut cases: Vec<(u32, u32, usize, u16)> = vec![
            (0, 0, 0, 0),
            (u32::MAX, u32::MAX, 65_535, u16::MAX),
            (0x0a00_0001, 0x0a00_0002, 1480, 1),
        ];
        for _ in 0..10_000 {
            let r = next();
            cases.push((
                r as u32,
                (r >> 32) as u32,
                (next() % 70_000) as usize,
                next() as u16,
            ));
        }
        for (s, d, len, ident) in cases {
            let (src, dst) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
            let mut want = [0u8; HEADER_LEN];
            Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                protocol: IpProtocol::Tcp,
                payload_len: len,
                ttl: 64,
                tos: 0,
                ident,
                dont_frag: true,
            }
            .emit(&mut Ipv4Packet::new_unchecked(&mut want[..]));
            let mut got = [0u8; HEADER_LEN];
            emit_tcp_header(&mut got, src, dst, len, ident);
            assert_eq!(got, want, "{src} {dst} {len} {ident}");
        }
    }

    // An ICMP echo request header from Linux `ping` (10.0.0.1 -> 10.0.0.2), 84 bytes total.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 10, 0, 0, 1, 10, 0,
        0, 2,
    ];

    fn packet() -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v.resize(84, 0x5a);
        let c = checksum::checksum(&v[..20]);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v
    }

    #[test]
    fn parse_and_emit() {
        let v = packet();
        let p = Ipv4Packet::new_checked(&v[..]).unwrap();
        let r = Ipv4Repr::parse(&p, ChecksumMode::Verify).unwrap();
        assert_eq!(r.src_addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(r.protocol, IpProtocol::Icmp);
        assert_eq!(r.payload_len, 64);
        assert!(r.dont_frag);
        let mut out = [0u8; 84];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..20], &v[..20]);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut v = packet();
        v.extend_from_slice(&[0; 6]);
        let p = Ipv4Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.payload().len(), 64);
    }

    #[test]
    fn bad_inputs() {
        let v = packet();
        for n in 0..84 {
            assert!(Ipv4Packet::new_checked(&v[..n]).is_err(), "len {n}");
        }
        let mut bad = v.clone();
        bad[0] = 0x44; // IHL 4
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        bad[0] = 0x65; // version 6
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Unsupported
        );
        bad[0] = 0x4f; // IHL 15 = 60 bytes, longer than total length 84? no: fits
        assert!(Ipv4Packet::new_checked(&bad[..]).is_ok());
        bad[2..4].copy_from_slice(&40u16.to_be_bytes()); // total < header len
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        let mut bad = v.clone();
        bad[2..4].copy_from_slice(&100u16.to_be_bytes()); // total > buffer
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = v.clone();
        bad[12] ^= 1; // checksum now wrong
        let p = Ipv4Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&p, ChecksumMode::Verify).unwrap_err(),
            Error::Checksum
        );
        assert!(Ipv4Repr::parse(&p, ChecksumMode::Ignore).is_ok());
    }

    #[test]
    fn fragments_recognised() {
        for flg in [0x2000u16, 0x0001, 0x2010] {
            let mut v = packet();
            v[6..8].copy_from_slice(&flg.to_be_bytes());
            let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
            p.fill_checksum();
            assert!(p.is_fragment());
            assert_eq!(
                Ipv4Repr::parse(&p, ChecksumMode::Verify).unwrap_err(),
                Error::Fragment
            );
        }
    }

    #[test]
    fn options_skipped() {
        let mut v = packet();
        // Turn into IHL 6 with a 4-byte option (NOP NOP NOP EOL) before the payload.
        v[0] = 0x46;
        v.splice(20..20, [1, 1, 1, 0]);
        v[2..4].copy_from_slice(&88u16.to_be_bytes());
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum();
        let r = Ipv4Repr::parse(&p, ChecksumMode::Verify).unwrap();
        assert_eq!(r.payload_len, 64);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert!(p.payload().iter().all(|&b| b == 0x5a));
    }
}
