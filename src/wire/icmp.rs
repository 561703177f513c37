//! ICMPv4 (RFC 792): echo request and reply; other types are parsed as `Other`.

use super::checksum;
use super::{ChecksumMode, Error, Ipv4Addr, Result, be16, put16};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
}

/// Length of an echo header (type, code, checksum, identifier, sequence).
pub const HEADER_LEN: usize = 8;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(IcmpPacket { buffer })
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQ)
    }
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

/// An ICMPv4 message sluice understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// Any other type (destination unreachable, ...): counted, not acted on.
    Other { msg_type: u8, code: u8 },
}

impl<'a> IcmpRepr<'a> {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &IcmpPacket<&'a T>,
        mode: ChecksumMode,
    ) -> Result<Self> {
        if mode == ChecksumMode::Verify && !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        let buf: &'a [u8] = p.buffer.as_ref();
        let data = &buf[HEADER_LEN..];
        Ok(match (p.msg_type(), p.msg_code()) {
            (8, 0) => IcmpRepr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            (0, 0) => IcmpRepr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            (msg_type, code) => IcmpRepr::Other { msg_type, code },
        })
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            IcmpRepr::Other { .. } => HEADER_LEN,
        }
    }

    /// Writes the message and its checksum into a buffer of `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut IcmpPacket<T>) {
        let b = p.buffer.as_mut();
        let (t, c, ident, seq, data): (u8, u8, u16, u16, &[u8]) = match *self {
            IcmpRepr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (8, 0, ident, seq_no, data),
            IcmpRepr::EchoReply {
                ident,
                seq_no,
                data,
            } => (0, 0, ident, seq_no, data),
            IcmpRepr::Other { msg_type, code } => (msg_type, code, 0, 0, &[]),
        };
        b[field::TYPE] = t;
        b[field::CODE] = c;
        put16(b, field::IDENT, ident);
        put16(b, field::SEQ, seq);
        b[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
        put16(b, field::CHECKSUM, 0);
        let sum = checksum::checksum(&b[..HEADER_LEN + data.len()]);
        put16(b, field::CHECKSUM, sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_round_trip() {
        let data = b"abcdefgh-sluice";
        let r = IcmpRepr::EchoRequest {
            ident: 0x1234,
            seq_no: 7,
            data,
        };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut IcmpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..2], &[8, 0]);
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(IcmpRepr::parse(&p, ChecksumMode::Verify).unwrap(), r);
        buf[9] ^= 0xff;
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            IcmpRepr::parse(&p, ChecksumMode::Verify).unwrap_err(),
            Error::Checksum
        );
    }

    #[test]
    fn truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                IcmpPacket::new_checked(&[0u8; 8][..n]).unwrap_err(),
                Error::Truncated
            );
        }
    }
}

/// An ICMP "fragmentation needed and DF set" (type 3, code 4, RFC 1191) for
/// a TCP segment: the next hop's MTU and what the quoted header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragNeeded {
    pub mtu: u16,
    /// The quoted segment's source (ours) and destination.
    pub src: std::net::SocketAddrV4,
    pub dst: std::net::SocketAddrV4,
    pub seq: crate::wire::SeqNumber,
}

impl FragNeeded {
    /// From an ICMP message (checksum already checked): `None` unless it is
    /// type 3 code 4 quoting an IPv4 header and 8 bytes of TCP.
    pub fn parse(icmp: &[u8]) -> Option<FragNeeded> {
        if icmp.len() < HEADER_LEN || icmp[0] != 3 || icmp[1] != 4 {
            return None;
        }
        let mtu = crate::wire::be16(icmp, 6);
        let ip = &icmp[HEADER_LEN..];
        let ihl = usize::from(*ip.first()? & 0x0f) * 4;
        if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl + 8 || ip[9] != 6 {
            return None;
        }
        let addr = |at: usize| Ipv4Addr::from(crate::wire::be32(ip, at));
        let tcp = &ip[ihl..];
        Some(FragNeeded {
            mtu,
            src: std::net::SocketAddrV4::new(addr(12), crate::wire::be16(tcp, 0)),
            dst: std::net::SocketAddrV4::new(addr(16), crate::wire::be16(tcp, 2)),
            seq: crate::wire::SeqNumber(crate::wire::be32(tcp, 4)),
        })
    }
}
