//! What the shard does differently per IP family, decided at compile time:
//! `Stack<A>` is monomorphised for each, so the IPv4 path carries no IPv6
//! test per packet (issue 14 item 6).

use crate::shard::Iface;
use crate::wire::Ipv6Range;
use crate::wire::{self, ChecksumMode, IpFamily, Parsed, Result, TcpSegmentIn, frame::Ipv6Payload};
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// TCP's flags byte: SYN, and the flags a bare SYN has none of.
const TCP_SYN: u8 = 0x02;
const TCP_SYN_ACK_RST_FIN: u8 = 0x17;

/// An IP family a shard's TCP runs over.
pub trait StackFamily: IpFamily {
    /// The receive fast path for this family's TCP frames (`Ok(None)`: for
    /// the general parse).
    fn parse_tcp_frame_in<'a, 'p>(
        frame: &'a [u8],
        place: &'p mut MaybeUninit<TcpSegmentIn<'a, Self>>,
    ) -> Result<Option<&'p TcpSegmentIn<'a, Self>>>;

    /// This family's TCP segment out of the general parse, if it is one.
    fn tcp_segment<'a>(p: &Parsed<'a>) -> Option<TcpSegmentIn<'a, Self>>;

    /// Whether `ip` is one of the interface's addresses.
    fn owned(iface: &Iface, ip: &Self) -> bool;

    /// RFC 1122 3.2.1.3 (IPv4), RFC 4291 2.5.2/2.7 (IPv6): whether a host
    /// may send from `ip` (not unspecified, loopback, multicast, ...).
    fn host_source(ip: &Self) -> bool;

    /// The address as IPv4 (ARP's), if it is one.
    fn to_v4(&self) -> Option<Ipv4Addr>;

    /// An IPv4 address (ARP's, ICMP's) as this family's, if it is one.
    fn from_v4(ip: Ipv4Addr) -> Option<Self>;

    /// The address as IPv6 (Neighbor Discovery's), if it is one.
    fn to_v6(&self) -> Option<Ipv6Addr>;

    /// An IPv6 address (Neighbor Discovery's) as this family's, if it is one.
    fn from_v6(ip: Ipv6Addr) -> Option<Self>;

    /// The source of `frame` if it is this family's TCP segment with SYN
    /// and without ACK, RST or FIN (a connection request), read at fixed
    /// offsets with nothing verified (IPv4 without options or fragmentation,
    /// IPv6 without extension headers): the SYN flood's shedding test.
    fn bare_syn_source(frame: &[u8]) -> Option<Self>;

    /// The address in 64 bits (IPv6's halves xored), for a keyed hash.
    fn fold64(&self) -> u64;

    /// The load generator's source for the schedule's next IPv4 one (IPv6:
    /// the address of the index it stands for in `sources6`; None past it).
    fn client_local(sources6: &Ipv6Range, v4: SocketAddrV4) -> Option<Self::SocketAddr>;
}

impl StackFamily for Ipv4Addr {
    #[inline(always)]
    fn parse_tcp_frame_in<'a, 'p>(
        frame: &'a [u8],
        place: &'p mut MaybeUninit<TcpSegmentIn<'a, Self>>,
    ) -> Result<Option<&'p TcpSegmentIn<'a, Self>>> {
        wire::parse_tcp_frame_in(frame, ChecksumMode::Verify, place)
    }
    #[inline]
    fn tcp_segment<'a>(p: &Parsed<'a>) -> Option<TcpSegmentIn<'a, Self>> {
        match p {
            Parsed::Tcp(_, ip, seg) => Some(TcpSegmentIn::from_parsed(ip, *seg)),
            _ => None,
        }
    }
    #[inline(always)]
    fn owned(iface: &Iface, ip: &Self) -> bool {
        iface.owns(*ip)
    }
    #[inline(always)]
    fn bare_syn_source(frame: &[u8]) -> Option<Self> {
        // Ethernet 14 + IPv4 20: the source at 26, the TCP flags at 47.
        let h = frame.get(..48)?;
        let syn = h[12..14] == [0x08, 0x00]
            && h[14] == 0x45
            && h[20] & 0x3f == 0
            && h[21] == 0
            && h[23] == 6
            && h[47] & TCP_SYN_ACK_RST_FIN == TCP_SYN;
        syn.then(|| Ipv4Addr::new(h[26], h[27], h[28], h[29]))
    }
    #[inline(always)]
    fn fold64(&self) -> u64 {
        u64::from(u32::from(*self))
    }
    #[inline]
    fn host_source(ip: &Self) -> bool {
        let a = u32::from(*ip);
        let net = a >> 24;
        net != 0 && net != 127 && a < 0xe000_0000
    }
    #[inline(always)]
    fn to_v4(&self) -> Option<Ipv4Addr> {
        Some(*self)
    }
    #[inline(always)]
    fn from_v4(ip: Ipv4Addr) -> Option<Self> {
        Some(ip)
    }
    #[inline(always)]
    fn to_v6(&self) -> Option<Ipv6Addr> {
        None
    }
    #[inline(always)]
    fn from_v6(_: Ipv6Addr) -> Option<Self> {
        None
    }
    #[inline(always)]
    fn client_local(_: &Ipv6Range, v4: SocketAddrV4) -> Option<SocketAddrV4> {
        Some(v4)
    }
}

impl StackFamily for Ipv6Addr {
    #[inline(always)]
    fn parse_tcp_frame_in<'a, 'p>(
        frame: &'a [u8],
        place: &'p mut MaybeUninit<TcpSegmentIn<'a, Self>>,
    ) -> Result<Option<&'p TcpSegmentIn<'a, Self>>> {
        wire::parse_tcp6_frame_in(frame, ChecksumMode::Verify, place)
    }
    #[inline]
    fn tcp_segment<'a>(p: &Parsed<'a>) -> Option<TcpSegmentIn<'a, Self>> {
        match p {
            Parsed::Ipv6(_, ip, Ipv6Payload::Tcp(seg)) => {
                Some(TcpSegmentIn::from_parsed_v6(ip, *seg))
            }
            _ => None,
        }
    }
    #[inline]
    fn owned(iface: &Iface, ip: &Self) -> bool {
        iface.owns6(ip)
    }
    #[inline(always)]
    fn bare_syn_source(frame: &[u8]) -> Option<Self> {
        // Ethernet 14 + IPv6 40 (next header TCP): the source at 22, the
        // TCP flags at 67.
        let h = frame.get(..68)?;
        let syn = h[12..14] == [0x86, 0xdd] && h[20] == 6 && h[67] & TCP_SYN_ACK_RST_FIN == TCP_SYN;
        let src: [u8; 16] = h[22..38].try_into().ok()?;
        syn.then(|| Ipv6Addr::from(src))
    }
    #[inline(always)]
    fn fold64(&self) -> u64 {
        let b = u128::from(*self);
        (b as u64) ^ ((b >> 64) as u64)
    }
    #[inline]
    fn host_source(ip: &Self) -> bool {
        !ip.is_unspecified() && !ip.is_loopback() && !ip.is_multicast()
    }
    #[inline]
    fn to_v4(&self) -> Option<Ipv4Addr> {
        None
    }
    #[inline]
    fn from_v4(_: Ipv4Addr) -> Option<Self> {
        None
    }
    #[inline(always)]
    fn to_v6(&self) -> Option<Ipv6Addr> {
        Some(*self)
    }
    #[inline(always)]
    fn from_v6(ip: Ipv6Addr) -> Option<Self> {
        Some(ip)
    }
    #[inline]
    fn client_local(sources6: &Ipv6Range, v4: SocketAddrV4) -> Option<SocketAddrV6> {
        let ip = sources6.nth(u128::from(u32::from(*v4.ip())))?;
        Some(SocketAddrV6::new(ip, v4.port(), 0, 0))
    }
}
