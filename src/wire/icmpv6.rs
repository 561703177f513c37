//! ICMPv6 (RFC 4443): echo request and reply, and the two Neighbor
//! Discovery messages an endpoint with static addresses needs (RFC 4861
//! 4.3, 4.4): Neighbor Solicitation and Advertisement, with their source and
//! target link-layer address options. Other types parse as `Other`.
//!
//! The checksum covers the IPv6 pseudo-header (RFC 4443 2.3), so `parse` and
//! `emit` take the addresses.

use super::checksum::transport_checksum_v6;
use super::{ChecksumMode, Error, EthernetAddress, Result, be16, put16};
use std::net::Ipv6Addr;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    pub const ND_FLAGS: usize = 4;
    pub const ND_TARGET: Range<usize> = 8..24;
}

/// Length of the header every message has (type, code, checksum and four
/// bytes the type defines).
pub const HEADER_LEN: usize = 8;
/// Length of a Neighbor Solicitation or Advertisement before its options.
pub const ND_LEN: usize = 24;
/// Length of a link-layer address option for Ethernet (RFC 4861 4.6.1).
pub const LLADDR_OPT_LEN: usize = 8;

/// The ICMPv6 protocol number (IPv6 Next Header).
pub const PROTOCOL: u8 = 58;

mod msg {
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

mod opt {
    pub const SOURCE_LLADDR: u8 = 1;
    pub const TARGET_LLADDR: u8 = 2;
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
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
    /// Whether the checksum over the pseudo-header and message is right.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        transport_checksum_v6(src, dst, PROTOCOL, self.buffer.as_ref()) == 0
    }
}

/// The flags of a Neighbor Advertisement (RFC 4861 4.4): router, solicited,
/// override, in the top three bits of the byte after the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NdFlags(u8);

impl NdFlags {
    pub const ROUTER: NdFlags = NdFlags(0x80);
    pub const SOLICITED: NdFlags = NdFlags(0x40);
    pub const OVERRIDE: NdFlags = NdFlags(0x20);
    pub const NONE: NdFlags = NdFlags(0);

    /// From the wire byte: the reserved bits are ignored (RFC 4861 4.4).
    pub fn from_bits(b: u8) -> NdFlags {
        NdFlags(b & 0xe0)
    }
    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn contains(self, f: NdFlags) -> bool {
        self.0 & f.0 == f.0
    }
}

impl core::ops::BitOr for NdFlags {
    type Output = NdFlags;
    fn bitor(self, o: NdFlags) -> NdFlags {
        NdFlags(self.0 | o.0)
    }
}

/// An ICMPv6 message sluice understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
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
    /// RFC 4861 4.3.
    NeighborSolicit {
        target_addr: Ipv6Addr,
        source_lladdr: Option<EthernetAddress>,
    },
    /// RFC 4861 4.4.
    NeighborAdvert {
        flags: NdFlags,
        target_addr: Ipv6Addr,
        target_lladdr: Option<EthernetAddress>,
    },
    /// Any other type (errors, router and multicast listener messages, ...):
    /// counted, not acted on.
    Other { msg_type: u8, code: u8 },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a checked message from `src` to `dst`: the checksum (per
    /// `mode`), then for Neighbor Discovery the checks of RFC 4861 7.1.1 and
    /// 7.1.2 that the message itself can answer (the hop limit of 255 is the
    /// receiver's to check): code 0, at least 24 bytes, a unicast target,
    /// no option of length 0, and for a solicitation from the unspecified
    /// address a solicited-node destination and no source link-layer address;
    /// for an advertisement to a multicast address, the solicited flag clear.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &Icmpv6Packet<&'a T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        mode: ChecksumMode,
    ) -> Result<Self> {
        if mode == ChecksumMode::Verify && !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let buf: &'a [u8] = p.buffer.as_ref();
        let (t, code) = (p.msg_type(), p.msg_code());
        Ok(match t {
            msg::ECHO_REQUEST | msg::ECHO_REPLY if code == 0 => {
                let (ident, seq_no) = (be16(buf, field::IDENT), be16(buf, field::SEQ));
                let data = &buf[HEADER_LEN..];
                if t == msg::ECHO_REQUEST {
                    Icmpv6Repr::EchoRequest {
                        ident,
                        seq_no,
                        data,
                    }
                } else {
                    Icmpv6Repr::EchoReply {
                        ident,
                        seq_no,
                        data,
                    }
                }
            }
            msg::NEIGHBOR_SOLICIT | msg::NEIGHBOR_ADVERT => {
                if code != 0 {
                    return Err(Error::Malformed);
                }
                let Some(target) = buf.get(field::ND_TARGET) else {
                    return Err(Error::Truncated);
                };
                let mut a = [0u8; 16];
                a.copy_from_slice(target);
                let target_addr = Ipv6Addr::from(a);
                if target_addr.is_multicast() {
                    return Err(Error::Malformed);
                }
                let want = if t == msg::NEIGHBOR_SOLICIT {
                    opt::SOURCE_LLADDR
                } else {
                    opt::TARGET_LLADDR
                };
                let lladdr = lladdr_option(&buf[ND_LEN..], want)?;
                if t == msg::NEIGHBOR_SOLICIT {
                    if src.is_unspecified()
                        && (lladdr.is_some() || !super::addr::is_solicited_node(dst))
                    {
                        return Err(Error::Malformed);
                    }
                    Icmpv6Repr::NeighborSolicit {
                        target_addr,
                        source_lladdr: lladdr,
                    }
                } else {
                    let flags = NdFlags::from_bits(buf[field::ND_FLAGS]);
                    if dst.is_multicast() && flags.contains(NdFlags::SOLICITED) {
                        return Err(Error::Malformed);
                    }
                    Icmpv6Repr::NeighborAdvert {
                        flags,
                        target_addr,
                        target_lladdr: lladdr,
                    }
                }
            }
            msg_type => Icmpv6Repr::Other { msg_type, code },
        })
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. } | Icmpv6Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv6Repr::NeighborSolicit {
                source_lladdr: l, ..
            }
            | Icmpv6Repr::NeighborAdvert {
                target_lladdr: l, ..
            } => ND_LEN + if l.is_some() { LLADDR_OPT_LEN } else { 0 },
            Icmpv6Repr::Other { .. } => HEADER_LEN,
        }
    }

    /// Writes the message from `src` to `dst`, checksum included, into a
    /// buffer of at least `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        p: &mut Icmpv6Packet<T>,
    ) {
        let len = self.buffer_len();
        let b = &mut p.buffer.as_mut()[..len];
        b[HEADER_LEN..].fill(0);
        let (t, code) = match *self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                put16(b, field::IDENT, ident);
                put16(b, field::SEQ, seq_no);
                b[HEADER_LEN..].copy_from_slice(data);
                let t = if matches!(self, Icmpv6Repr::EchoRequest { .. }) {
                    msg::ECHO_REQUEST
                } else {
                    msg::ECHO_REPLY
                };
                (t, 0)
            }
            Icmpv6Repr::NeighborSolicit {
                target_addr,
                source_lladdr,
            } => {
                put_nd(b, 0, &target_addr, opt::SOURCE_LLADDR, source_lladdr);
                (msg::NEIGHBOR_SOLICIT, 0)
            }
            Icmpv6Repr::NeighborAdvert {
                flags,
                target_addr,
                target_lladdr,
            } => {
                put_nd(
                    b,
                    flags.bits(),
                    &target_addr,
                    opt::TARGET_LLADDR,
                    target_lladdr,
                );
                (msg::NEIGHBOR_ADVERT, 0)
            }
            Icmpv6Repr::Other { msg_type, code } => {
                b[4..HEADER_LEN].fill(0);
                (msg_type, code)
            }
        };
        b[field::TYPE] = t;
        b[field::CODE] = code;
        put16(b, field::CHECKSUM, 0);
        let c = transport_checksum_v6(src, dst, PROTOCOL, b);
        put16(b, field::CHECKSUM, c);
    }
}

/// The body of a solicitation or advertisement: flags, reserved, target, and
/// the link-layer address option if there is one.
fn put_nd(b: &mut [u8], flags: u8, target: &Ipv6Addr, kind: u8, lladdr: Option<EthernetAddress>) {
    b[4..8].copy_from_slice(&[flags, 0, 0, 0]);
    b[field::ND_TARGET].copy_from_slice(&target.octets());
    if let Some(mac) = lladdr {
        b[ND_LEN] = kind;
        b[ND_LEN + 1] = 1;
        b[ND_LEN + 2..ND_LEN + 8].copy_from_slice(&mac.0);
    }
}

/// The Ethernet address in the first option of type `want` (RFC 4861 4.6.1:
/// length 1, eight bytes). Other options, and link-layer options of another
/// length (another link type), are skipped (4.6: ignored). An option of
/// length 0, or one running past the message, makes the message invalid
/// (7.1.1, 7.1.2).
fn lladdr_option(mut o: &[u8], want: u8) -> Result<Option<EthernetAddress>> {
    let mut found = None;
    while !o.is_empty() {
        let Some(&[kind, units]) = o.first_chunk::<2>() else {
            return Err(Error::Malformed);
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > o.len() {
            return Err(Error::Malformed);
        }
        if kind == want && units == 1 && found.is_none() {
            found = Some(EthernetAddress::from_bytes(&o[2..8]));
        }
        o = &o[len..];
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);

    fn round_trip(r: Icmpv6Repr<'_>, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let mut buf = vec![0xeeu8; r.buffer_len()];
        r.emit(src, dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(src, dst));
        assert_eq!(
            Icmpv6Repr::parse(&p, src, dst, ChecksumMode::Verify).unwrap(),
            r
        );
        buf
    }

    #[test]
    fn echo_round_trip_and_checksum() {
        let r = Icmpv6Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 7,
            data: b"abcdefgh-sluice",
        };
        let mut buf = round_trip(r, &A, &B);
        assert_eq!(&buf[..2], &[128, 0]);
        // The pseudo-header counts: the same bytes between other addresses fail.
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&p, &B, &A, ChecksumMode::Verify),
            Ok(r),
            "swapping the addresses keeps the sum"
        );
        let c = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3);
        assert_eq!(
            Icmpv6Repr::parse(&p, &A, &c, ChecksumMode::Verify),
            Err(Error::Checksum)
        );
        buf[9] ^= 0xff;
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&p, &A, &B, ChecksumMode::Verify),
            Err(Error::Checksum)
        );
        let reply = Icmpv6Repr::EchoReply {
            ident: 1,
            seq_no: 2,
            data: &[],
        };
        assert_eq!(&round_trip(reply, &B, &A)[..2], &[129, 0]);
    }

    #[test]
    fn neighbor_discovery_round_trip() {
        let sn = super::super::addr::solicited_node(&B);
        for ll in [Some(MAC), None] {
            let ns = Icmpv6Repr::NeighborSolicit {
                target_addr: B,
                source_lladdr: ll,
            };
            let buf = round_trip(ns, &A, &sn);
            assert_eq!(buf.len(), if ll.is_some() { 32 } else { 24 });
            assert_eq!(buf[0], 135);
            let na = Icmpv6Repr::NeighborAdvert {
                flags: NdFlags::SOLICITED | NdFlags::OVERRIDE,
                target_addr: B,
                target_lladdr: ll,
            };
            let buf = round_trip(na, &B, &A);
            assert_eq!((buf[0], buf[4]), (136, 0x60));
        }
        // A DAD probe: from ::, to the solicited-node group, no address option.
        let dad = Icmpv6Repr::NeighborSolicit {
            target_addr: B,
            source_lladdr: None,
        };
        round_trip(dad, &Ipv6Addr::UNSPECIFIED, &sn);
    }

    fn nd_bytes(t: u8, src: &Ipv6Addr, dst: &Ipv6Addr, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = vec![t, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&B.octets());
        v.extend_from_slice(&[opt::SOURCE_LLADDR + t - 135, 1, 2, 0, 0, 0, 0, 1]);
        edit(&mut v);
        v[2..4].copy_from_slice(&[0, 0]);
        let c = transport_checksum_v6(src, dst, PROTOCOL, &v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        v
    }

    fn parse(v: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<Icmpv6Repr<'static>> {
        let v: &'static [u8] = Box::leak(v.to_vec().into_boxed_slice());
        Icmpv6Repr::parse(
            &Icmpv6Packet::new_checked(v)?,
            src,
            dst,
            ChecksumMode::Verify,
        )
    }

    #[test]
    fn rfc4861_7_1_invalid_neighbor_discovery_is_refused() {
        let sn = super::super::addr::solicited_node(&B);
        let any = Ipv6Addr::UNSPECIFIED;
        for t in [135u8, 136] {
            assert!(parse(&nd_bytes(t, &A, &B, |_| {}), &A, &B).is_ok());
            // Code not 0.
            let v = nd_bytes(t, &A, &B, |v| v[1] = 1);
            assert_eq!(parse(&v, &A, &B), Err(Error::Malformed), "{t}");
            // Shorter than 24 bytes.
            let v = nd_bytes(t, &A, &B, |v| v.truncate(20));
            assert_eq!(parse(&v, &A, &B), Err(Error::Truncated), "{t}");
            // A multicast target.
            let v = nd_bytes(t, &A, &B, |v| v[8] = 0xff);
            assert_eq!(parse(&v, &A, &B), Err(Error::Malformed), "{t}");
            // An option of length 0, one running past the end, a lone byte.
            for edit in [
                (|v: &mut Vec<u8>| v[25] = 0) as fn(&mut Vec<u8>),
                |v| v[25] = 2,
                |v| v.push(1),
            ] {
                let v = nd_bytes(t, &A, &B, edit);
                assert_eq!(parse(&v, &A, &B), Err(Error::Malformed), "{t}");
            }
        }
        // A solicitation from :: with a source address option, or not to a
        // solicited-node group.
        let v = nd_bytes(135, &any, &sn, |_| {});
        assert_eq!(parse(&v, &any, &sn), Err(Error::Malformed));
        let v = nd_bytes(135, &any, &B, |v| v.truncate(24));
        assert_eq!(parse(&v, &any, &B), Err(Error::Malformed));
        let v = nd_bytes(135, &any, &sn, |v| v.truncate(24));
        assert!(parse(&v, &any, &sn).is_ok());
        // A solicited advertisement to a multicast address.
        let all = super::super::addr::ALL_NODES;
        let v = nd_bytes(136, &B, &all, |v| v[4] = 0x40);
        assert_eq!(parse(&v, &B, &all), Err(Error::Malformed));
        let v = nd_bytes(136, &B, &all, |v| v[4] = 0x20);
        assert!(parse(&v, &B, &all).is_ok());
    }

    #[test]
    fn rfc4861_4_6_unknown_options_are_skipped() {
        // A nonce (14, RFC 7527) before the address, and a two-unit
        // link-layer option (another link type) that is not Ethernet's.
        let v = nd_bytes(135, &A, &B, |v| {
            v.truncate(24);
            v.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
            v.extend_from_slice(&[1, 2, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]);
            v.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 7]);
        });
        assert_eq!(
            parse(&v, &A, &B),
            Ok(Icmpv6Repr::NeighborSolicit {
                target_addr: B,
                source_lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 7])),
            })
        );
    }

    #[test]
    fn other_types_and_truncation() {
        // A router solicitation (133) is `Other`.
        let mut v = vec![133, 0, 0, 0, 0, 0, 0, 0];
        let c = transport_checksum_v6(&A, &B, PROTOCOL, &v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            parse(&v, &A, &B),
            Ok(Icmpv6Repr::Other {
                msg_type: 133,
                code: 0
            })
        );
        for n in 0..HEADER_LEN {
            assert_eq!(
                Icmpv6Packet::new_checked(&v[..n]).unwrap_err(),
                Error::Truncated
            );
        }
    }
}
