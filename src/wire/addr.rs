//! Addresses of both IP families, for code that works over either.
//!
//! The family is a type parameter, not a runtime tag: [`IpFamily`] is
//! implemented by [`Ipv4Addr`] and [`Ipv6Addr`], and a [`FlowKey<A>`] is a
//! 4-tuple of that family. Monomorphised, an IPv4 key stays 12 bytes and
//! hashes as three words, as before; an IPv6 key is 36 bytes. (A single
//! 16-byte representation with v4-mapped addresses would make every IPv4 key
//! 36 bytes and triple the bytes hashed per packet; an enum key would be 38
//! bytes for both.) Where one value must hold either family (configuration,
//! reports) the standard `IpAddr` / `SocketAddr` serve.
//!
//! Also here: the IPv6 addresses Neighbor Discovery derives from others
//! (solicited-node multicast, its Ethernet group, the EUI-64 link-local
//! address) and a range of our own IPv6 addresses.

use super::{EtherType, EthernetAddress, EthernetTail, checksum};
use core::fmt::Debug;
use core::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// An IP family, named by its address type.
pub trait IpFamily: Copy + Eq + Ord + Hash + Debug + Send + Sync + 'static {
    /// As a flow key holds it.
    fn to_bits(self) -> Self::Bits;
    /// From a flow key's form.
    fn from_bits(b: Self::Bits) -> Self;

    /// The EtherType that carries it.
    const ETHERTYPE: EtherType;
    /// The IP version number.
    const VERSION: u8;
    /// The fixed header's length (IPv4 without options, IPv6 without
    /// extension headers).
    const HEADER_LEN: usize;
    /// The TCP MSS on a 1500-byte MTU (RFC 9293 3.7.1: MTU less both fixed
    /// headers): 1460 for IPv4, 1440 for IPv6.
    const MSS_1500: u16 = (1500 - Self::HEADER_LEN - 20) as u16;
    /// The unspecified address (0.0.0.0, ::).
    const UNSPECIFIED: Self;
    /// The socket address of the family (`SocketAddrV4`, `SocketAddrV6`).
    type SocketAddr: FamilySocketAddr<Ip = Self>;
    /// The address as a [`FlowKey`] holds it: IPv4 as a host-order `u32`
    /// (what the IPv4 table's key always held, so its compares and hashes
    /// are the ones it had), IPv6 as itself.
    type Bits: Copy + Eq + Ord + Hash + Debug + Send + Sync + 'static;
    /// The bytes `pair_words` gives for two addresses (8 for IPv4, 32 for
    /// IPv6): a keyed hash that pads its message by length counts them.
    const PAIR_BYTES: u8;

    /// The checksum of `segment` behind this family's pseudo-header (RFC
    /// 9293 3.1, RFC 8200 8.1), with the checksum field as it is.
    fn transport_checksum(src: &Self, dst: &Self, protocol: u8, segment: &[u8]) -> u16;

    /// The folded sum of the address's bytes, as a TCP pseudo-header takes
    /// it (`checksum::address_sum`).
    fn address_sum(&self) -> u16;

    /// Both addresses of a pseudo-header summed: all the TCP checksum
    /// needs of them (`checksum::tcp_checksum`).
    #[inline]
    fn pseudo_addr_sum(src: &Self, dst: &Self) -> u16 {
        checksum::add_sums(src.address_sum(), dst.address_sum())
    }

    /// Writes the Ethernet header (to `dst_mac`, then `tail`: the source
    /// address and this family's EtherType) and this family's fixed IP
    /// header (TTL or hop limit 64) in front of a TCP segment of `tcp_len`
    /// bytes, into the first `ETH + HEADER_LEN` bytes of `b`; `ident` is
    /// IPv4's.
    fn emit_tcp_headers(
        b: &mut [u8],
        tail: &EthernetTail,
        dst_mac: &EthernetAddress,
        src: &Self,
        dst: &Self,
        tcp_len: usize,
        ident: u16,
    );

    /// As a family-agnostic address.
    fn to_ip(self) -> IpAddr;

    /// The address as big-endian words into a hasher (one `write_u32` for
    /// IPv4, two `write_u64` for IPv6).
    fn hash_words<H: Hasher>(&self, h: &mut H);

    /// Two addresses into a hasher, as few whole words as they fill (a
    /// flow key's hash): one `write_u64` for IPv4 (`local << 32 | remote`,
    /// what the IPv4 table has always hashed); four for IPv6.
    fn hash_pair<H: Hasher>(local: &Self::Bits, remote: &Self::Bits, h: &mut H);

    /// Two addresses as the 64-bit message words of a keyed hash over a
    /// tuple (SipHash for ISNs and cookies), handed to `f` in order. IPv4:
    /// one word, `local << 32 | remote` (as the IPv4 ISN has always hashed
    /// it). IPv6: four words, each 8 address bytes in network order read as
    /// a little-endian word, so the message is the 32 bytes local ‖ remote.
    fn pair_words(local: &Self::Bits, remote: &Self::Bits, f: impl FnMut(u64));
}

/// A socket address of one family: `SocketAddrV4` or `SocketAddrV6`, with
/// the family's address type as `Ip`.
pub trait FamilySocketAddr: Copy + Eq + Ord + Hash + Debug + Send + Sync + 'static {
    type Ip: IpFamily<SocketAddr = Self>;
    /// The socket address of `ip` and `port` (IPv6: flow info and scope 0).
    fn from_parts(ip: Self::Ip, port: u16) -> Self;
    /// Its address.
    fn host(&self) -> Self::Ip;
    /// Its port.
    fn port(&self) -> u16;
}

impl FamilySocketAddr for SocketAddrV4 {
    type Ip = Ipv4Addr;
    #[inline]
    fn from_parts(ip: Ipv4Addr, port: u16) -> Self {
        SocketAddrV4::new(ip, port)
    }
    #[inline]
    fn host(&self) -> Ipv4Addr {
        *self.ip()
    }
    #[inline]
    fn port(&self) -> u16 {
        SocketAddrV4::port(self)
    }
}

impl FamilySocketAddr for SocketAddrV6 {
    type Ip = Ipv6Addr;
    #[inline]
    fn from_parts(ip: Ipv6Addr, port: u16) -> Self {
        SocketAddrV6::new(ip, port, 0, 0)
    }
    #[inline]
    fn host(&self) -> Ipv6Addr {
        *self.ip()
    }
    #[inline]
    fn port(&self) -> u16 {
        SocketAddrV6::port(self)
    }
}

impl IpFamily for Ipv4Addr {
    const ETHERTYPE: EtherType = EtherType::Ipv4;
    const VERSION: u8 = 4;
    const HEADER_LEN: usize = super::ipv4::HEADER_LEN;
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;
    type SocketAddr = SocketAddrV4;
    type Bits = u32;
    const PAIR_BYTES: u8 = 8;

    #[inline]
    fn to_bits(self) -> u32 {
        u32::from(self)
    }
    #[inline]
    fn from_bits(b: u32) -> Self {
        Ipv4Addr::from(b)
    }

    #[inline]
    fn transport_checksum(src: &Self, dst: &Self, protocol: u8, segment: &[u8]) -> u16 {
        checksum::transport_checksum(*src, *dst, protocol, segment)
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(self)
    }
    #[inline]
    fn address_sum(&self) -> u16 {
        checksum::address_sum(&self.octets())
    }
    /// One fold of the two words (the general form folds three times).
    #[inline]
    fn pseudo_addr_sum(src: &Self, dst: &Self) -> u16 {
        checksum::fold(
            u64::from(u32::from_le_bytes(src.octets()))
                + u64::from(u32::from_le_bytes(dst.octets())),
        )
    }
    #[inline]
    fn emit_tcp_headers(
        b: &mut [u8],
        tail: &EthernetTail,
        dst_mac: &EthernetAddress,
        src: &Self,
        dst: &Self,
        tcp_len: usize,
        ident: u16,
    ) {
        const ETH: usize = super::ethernet::HEADER_LEN;
        let b: &mut [u8; ETH + Self::HEADER_LEN] =
            (&mut b[..ETH + Self::HEADER_LEN]).try_into().unwrap();
        debug_assert_eq!(tail.0[6..], u16::from(Self::ETHERTYPE).to_be_bytes());
        b[..6].copy_from_slice(&dst_mac.0);
        b[6..ETH].copy_from_slice(&tail.0);
        super::ipv4::emit_tcp_header(&mut b[ETH..], *src, *dst, tcp_len, ident);
    }
    #[inline]
    fn hash_words<H: Hasher>(&self, h: &mut H) {
        h.write_u32(u32::from(*self));
    }
    #[inline]
    fn hash_pair<H: Hasher>(local: &u32, remote: &u32, h: &mut H) {
        h.write_u64(u64::from(*local) << 32 | u64::from(*remote));
    }
    #[inline]
    fn pair_words(local: &u32, remote: &u32, mut f: impl FnMut(u64)) {
        f(u64::from(*local) << 32 | u64::from(*remote));
    }
}

impl IpFamily for Ipv6Addr {
    const ETHERTYPE: EtherType = EtherType::Ipv6;
    const VERSION: u8 = 6;
    const HEADER_LEN: usize = super::ipv6::HEADER_LEN;
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;
    type SocketAddr = SocketAddrV6;
    type Bits = Ipv6Addr;
    const PAIR_BYTES: u8 = 32;

    #[inline]
    fn to_bits(self) -> Ipv6Addr {
        self
    }
    #[inline]
    fn from_bits(b: Ipv6Addr) -> Self {
        b
    }

    #[inline]
    fn transport_checksum(src: &Self, dst: &Self, protocol: u8, segment: &[u8]) -> u16 {
        checksum::transport_checksum_v6(src, dst, protocol, segment)
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(self)
    }
    #[inline]
    fn address_sum(&self) -> u16 {
        checksum::address_sum(&self.octets())
    }
    #[inline]
    fn emit_tcp_headers(
        b: &mut [u8],
        tail: &EthernetTail,
        dst_mac: &EthernetAddress,
        src: &Self,
        dst: &Self,
        tcp_len: usize,
        ident: u16,
    ) {
        const ETH: usize = super::ethernet::HEADER_LEN;
        let b: &mut [u8; ETH + Self::HEADER_LEN] =
            (&mut b[..ETH + Self::HEADER_LEN]).try_into().unwrap();
        debug_assert_eq!(tail.0[6..], u16::from(Self::ETHERTYPE).to_be_bytes());
        b[..6].copy_from_slice(&dst_mac.0);
        b[6..ETH].copy_from_slice(&tail.0);
        let _ = ident;
        super::ipv6::emit_tcp_header(&mut b[ETH..], src, dst, tcp_len);
    }
    #[inline]
    fn hash_words<H: Hasher>(&self, h: &mut H) {
        let v = u128::from(*self);
        h.write_u64((v >> 64) as u64);
        h.write_u64(v as u64);
    }
    #[inline]
    fn hash_pair<H: Hasher>(local: &Self, remote: &Self, h: &mut H) {
        local.hash_words(h);
        remote.hash_words(h);
    }
    #[inline]
    fn pair_words(local: &Self, remote: &Self, mut f: impl FnMut(u64)) {
        for a in [local, remote] {
            let o = a.octets();
            let (hi, lo) = o.split_at(8);
            f(u64::from_le_bytes(hi.try_into().expect("8 bytes")));
            f(u64::from_le_bytes(lo.try_into().expect("8 bytes")));
        }
    }
}

/// A TCP 4-tuple of one family, as a connection table keys it: 12 bytes
/// for IPv4 (the addresses as host-order `u32`s, `IpFamily::Bits`), 36 for
/// IPv6. The family defaults to IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey<A: IpFamily = Ipv4Addr> {
    pub local_ip: A::Bits,
    pub remote_ip: A::Bits,
    pub local_port: u16,
    pub remote_port: u16,
}

impl<A: IpFamily> Hash for FlowKey<A> {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        // The addresses as whole words (`IpFamily::hash_pair`), then the
        // ports in one, the remote port low (`LocalHasher` reads its order
        // from there).
        A::hash_pair(&self.local_ip, &self.remote_ip, h);
        h.write_u32(u32::from(self.local_port) << 16 | u32::from(self.remote_port));
    }
}

/// What names a TCP 4-tuple of one family: a [`FlowKey`], or the engine's
/// `FourTuple`. The keyed hashes over tuples (ISN, SYN cookies) take any.
pub trait AsFlowKey: Copy {
    type Ip: IpFamily;
    fn flow_key(&self) -> FlowKey<Self::Ip>;
}

impl<A: IpFamily> AsFlowKey for FlowKey<A> {
    type Ip = A;
    #[inline]
    fn flow_key(&self) -> FlowKey<A> {
        *self
    }
}

impl<A: IpFamily> FlowKey<A> {
    /// The key of the flow between two socket addresses.
    #[inline]
    pub fn new(local: A::SocketAddr, remote: A::SocketAddr) -> Self {
        FlowKey {
            local_ip: local.host().to_bits(),
            remote_ip: remote.host().to_bits(),
            local_port: local.port(),
            remote_port: remote.port(),
        }
    }

    /// The local end.
    #[inline]
    pub fn local(&self) -> A::SocketAddr {
        A::SocketAddr::from_parts(self.local_host(), self.local_port)
    }

    /// The remote end.
    #[inline]
    pub fn remote(&self) -> A::SocketAddr {
        A::SocketAddr::from_parts(self.remote_host(), self.remote_port)
    }

    /// The local address.
    #[inline]
    pub fn local_host(&self) -> A {
        A::from_bits(self.local_ip)
    }

    /// The remote address.
    #[inline]
    pub fn remote_host(&self) -> A {
        A::from_bits(self.remote_ip)
    }

    /// The same flow seen from the other end.
    pub fn reversed(&self) -> Self {
        FlowKey {
            local_ip: self.remote_ip,
            remote_ip: self.local_ip,
            local_port: self.remote_port,
            remote_port: self.local_port,
        }
    }
}

/// RFC 4291 2.7.1: the solicited-node multicast address of `a`,
/// ff02::1:ffXX:XXXX with the low 24 bits of `a`. Neighbor Solicitations for
/// `a` are sent there (RFC 4861 7.2.2).
pub fn solicited_node(a: &Ipv6Addr) -> Ipv6Addr {
    let low = u128::from(*a) & 0x00ff_ffff;
    Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000u128 | low)
}

/// Whether `a` is a solicited-node multicast address (ff02::1:ff00:0/104).
pub fn is_solicited_node(a: &Ipv6Addr) -> bool {
    u128::from(*a) & !0x00ff_ffff == 0xff02_0000_0000_0000_0000_0001_ff00_0000
}

/// RFC 2464 7: the Ethernet group address of an IPv6 multicast address,
/// 33:33 then its low 32 bits (33:33:ff:xx:xx:xx for a solicited-node one).
pub fn multicast_mac(a: &Ipv6Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The all-nodes link-local multicast address (RFC 4291 2.7.1), where an
/// unsolicited Neighbor Advertisement goes (RFC 4861 7.2.4).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// RFC 4291 2.5.6 and appendix A, RFC 2464 5: the link-local address made
/// from a MAC (fe80::/64, then the EUI-64 interface identifier: ff:fe in the
/// middle, the universal/local bit inverted).
pub fn link_local(mac: EthernetAddress) -> Ipv6Addr {
    let m = mac.0;
    let iid = [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
    Ipv6Addr::from(0xfe80u128 << 112 | u128::from(u64::from_be_bytes(iid)))
}

/// `count` consecutive IPv6 addresses from `first` (a load generator spreads
/// its connections over many; a /64 is 2^64 of them). Count 0 is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Range {
    pub first: Ipv6Addr,
    pub count: u128,
}

impl Ipv6Range {
    pub const EMPTY: Ipv6Range = Ipv6Range {
        first: Ipv6Addr::UNSPECIFIED,
        count: 0,
    };

    /// One address.
    pub fn single(a: Ipv6Addr) -> Ipv6Range {
        Ipv6Range { first: a, count: 1 }
    }

    /// Every address of `a`/`len` but the all-zeros one (RFC 4291 2.6.1: the
    /// subnet-router anycast address), or `None` for a length over 128. A
    /// /128 is `a` itself.
    pub fn prefix(a: Ipv6Addr, len: u8) -> Option<Ipv6Range> {
        if len > 128 {
            return None;
        }
        if len == 128 {
            return Some(Ipv6Range::single(a));
        }
        let host_bits = u32::from(128 - len);
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        let first = (u128::from(a) & mask) + 1;
        let count = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        Some(Ipv6Range {
            first: Ipv6Addr::from(first),
            count,
        })
    }

    /// Whether `a` is in the range.
    #[inline]
    pub fn owns(&self, a: &Ipv6Addr) -> bool {
        u128::from(*a).wrapping_sub(u128::from(self.first)) < self.count
    }

    /// The `i`th address (`None` past the end).
    pub fn nth(&self, i: u128) -> Option<Ipv6Addr> {
        (i < self.count).then(|| Ipv6Addr::from(u128::from(self.first).wrapping_add(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn key_sizes() {
        // IPv4 pays nothing for IPv6: its key is the 12 bytes it was.
        assert_eq!(std::mem::size_of::<FlowKey<Ipv4Addr>>(), 12);
        assert_eq!(std::mem::size_of::<FlowKey<Ipv6Addr>>(), 36);
        assert_eq!(std::mem::align_of::<FlowKey<Ipv6Addr>>(), 2);
    }

    #[test]
    fn ipv4_key_hashes_as_the_table_does_today() {
        // The words the IPv4 table hashed before the family became a
        // parameter: 64 bits of addresses, then 32 of ports (the remote
        // port low, LocalHasher's order).
        let k = FlowKey::<Ipv4Addr> {
            local_ip: 0x0a00_0001,
            remote_ip: 0x0a00_0002,
            local_port: 80,
            remote_port: 40000,
        };
        let s = std::hash::RandomState::new();
        let mut h = s.build_hasher();
        h.write_u64(0x0a00_0001_0a00_0002);
        h.write_u32(80 << 16 | 40000);
        assert_eq!(s.hash_one(k), h.finish());
    }

    #[test]
    fn keys_from_socket_addresses_and_back() {
        let l: SocketAddrV4 = "10.0.0.1:80".parse().unwrap();
        let r: SocketAddrV4 = "10.0.0.2:40000".parse().unwrap();
        let k = FlowKey::<Ipv4Addr>::new(l, r);
        assert_eq!((k.local(), k.remote()), (l, r));
        assert_eq!(k.reversed(), FlowKey::new(r, l));
        assert_eq!(k.flow_key(), k);
        let l: SocketAddrV6 = "[2001:db8::1]:80".parse().unwrap();
        let r: SocketAddrV6 = "[2001:db8::2]:40000".parse().unwrap();
        let k = FlowKey::<Ipv6Addr>::new(l, r);
        assert_eq!((k.local(), k.remote()), (l, r));
        assert_eq!((k.local_port, k.remote_ip), (80, *r.ip()));
        assert_eq!((k.local_host(), k.remote_host()), (*l.ip(), *r.ip()));
        assert_eq!(FamilySocketAddr::host(&l), *l.ip());
    }

    #[test]
    fn pair_words_are_the_message_bytes() {
        // IPv4: local << 32 | remote, one word.
        let mut w = vec![];
        let (l, r) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        Ipv4Addr::pair_words(&l.to_bits(), &r.to_bits(), |x| w.push(x));
        assert_eq!(w, [0x0a00_0001_0a00_0002]);
        // IPv6: the 32 address bytes, local first, in little-endian words.
        let l: Ipv6Addr = "0001:0203:0405:0607:0809:0a0b:0c0d:0e0f".parse().unwrap();
        let r: Ipv6Addr = "1011:1213:1415:1617:1819:1a1b:1c1d:1e1f".parse().unwrap();
        let mut bytes = vec![];
        Ipv6Addr::pair_words(&l, &r, |x| bytes.extend_from_slice(&x.to_le_bytes()));
        assert_eq!(bytes, (0u8..32).collect::<Vec<_>>());
        assert_eq!(bytes.len(), usize::from(Ipv6Addr::PAIR_BYTES));
        assert_eq!(Ipv4Addr::PAIR_BYTES, 8);
    }

    #[test]
    fn ipv6_keys_differ_in_every_part() {
        let s = std::hash::RandomState::new();
        let k = FlowKey::<Ipv6Addr> {
            local_ip: "2001:db8::1".parse().unwrap(),
            remote_ip: "2001:db8::2".parse().unwrap(),
            local_port: 80,
            remote_port: 40000,
        };
        let mut others = vec![k.reversed()];
        let mut o = k;
        o.local_ip = "2001:db9::1".parse().unwrap(); // the high half
        others.push(o);
        let mut o = k;
        o.remote_ip = "2001:db8::3".parse().unwrap();
        others.push(o);
        let mut o = k;
        o.remote_port = 40001;
        others.push(o);
        for o in others {
            assert_ne!(o, k);
            assert_ne!(s.hash_one(o), s.hash_one(k), "{o:?}");
        }
        assert_eq!(k.reversed().reversed(), k);
    }

    #[test]
    fn mss_on_1500() {
        assert_eq!(<Ipv4Addr as IpFamily>::MSS_1500, 1460);
        assert_eq!(<Ipv6Addr as IpFamily>::MSS_1500, 1440);
    }

    #[test]
    fn solicited_node_and_its_mac() {
        // RFC 4291 2.7.1's form; the MAC per RFC 2464 7.
        let a: Ipv6Addr = "2001:db8::abcd:1234:5678".parse().unwrap();
        let s = solicited_node(&a);
        assert_eq!(s, "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap());
        assert!(is_solicited_node(&s));
        assert!(!is_solicited_node(&a));
        assert!(!is_solicited_node(&ALL_NODES));
        assert_eq!(multicast_mac(&s).to_string(), "33:33:ff:34:56:78");
        assert_eq!(multicast_mac(&ALL_NODES).to_string(), "33:33:00:00:00:01");
        assert!(multicast_mac(&s).is_multicast());
    }

    #[test]
    fn link_local_is_eui64() {
        // RFC 4291 appendix A: 02:00:00:00:00:01 -> fe80::ff:fe00:1
        // (u/l bit 0x02 inverted to 0).
        let mac = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(
            link_local(mac),
            "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap()
        );
        let mac = "52:54:00:12:34:56".parse().unwrap();
        assert_eq!(
            link_local(mac),
            "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn ranges() {
        let a: Ipv6Addr = "2001:db8:1::".parse().unwrap();
        let r = Ipv6Range::prefix(a, 64).unwrap();
        assert_eq!(r.first, "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(r.count, (1u128 << 64) - 1);
        assert!(r.owns(&"2001:db8:1::ffff:ffff:ffff:ffff".parse().unwrap()));
        assert!(!r.owns(&"2001:db8:1::".parse().unwrap()));
        assert!(!r.owns(&"2001:db8:2::".parse().unwrap()));
        assert!(!r.owns(&"2001:db8:0:ffff:ffff:ffff:ffff:ffff".parse().unwrap()));
        assert_eq!(r.nth(0), Some(r.first));
        assert_eq!(r.nth(r.count), None);
        let one = Ipv6Range::prefix(a, 128).unwrap();
        assert_eq!((one.first, one.count), (a, 1));
        let p127 = Ipv6Range::prefix(a, 127).unwrap();
        assert_eq!(p127.count, 1);
        let all = Ipv6Range::prefix(a, 0).unwrap();
        assert!(all.owns(&"::1".parse().unwrap()) && !all.owns(&Ipv6Addr::UNSPECIFIED));
        assert!(all.owns(&Ipv6Addr::from(u128::MAX)));
        assert!(Ipv6Range::prefix(a, 129).is_none());
        assert!(!Ipv6Range::EMPTY.owns(&Ipv6Addr::UNSPECIFIED));
    }
}
