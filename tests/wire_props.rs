//! Properties: for arbitrary representations, emit then parse gives the same
//! representation back, and parsing arbitrary bytes never panics.

use proptest::prelude::*;
use sluice::wire::*;

fn seq() -> impl Strategy<Value = SeqNumber> {
    any::<u32>().prop_map(SeqNumber)
}

prop_compose! {
    fn tcp_repr()(
        src_port in 1u16.., dst_port in 1u16..,
        control in prop_oneof![Just(TcpControl::None), Just(TcpControl::Syn), Just(TcpControl::Fin), Just(TcpControl::Rst)],
        push: bool, seq_number in seq(), ack in proptest::option::of(seq()),
        window_len: u16, window_scale in proptest::option::of(0u8..=14),
        max_seg_size in proptest::option::of(any::<u16>()), sack_permitted: bool,
        nblocks in 0usize..=4, edges in proptest::collection::vec((seq(), seq()), 4),
        timestamp in proptest::option::of((any::<u32>(), any::<u32>())),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) -> (TcpRepr<'static>, usize) {
        let mut sack_ranges = [None; 4];
        for i in 0..nblocks { sack_ranges[i] = Some(edges[i]); }
        let payload: &'static [u8] = Box::leak(payload.into_boxed_slice());
        (TcpRepr {
            src_port, dst_port, control, push, seq_number, ack_number: ack, window_len,
            window_scale, max_seg_size, sack_permitted, sack_ranges,
            timestamp: timestamp.map(|(tsval, tsecr)| TcpTimestamp { tsval, tsecr }),
            payload,
        }, nblocks)
    }
}

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn tcp_round_trip((repr, nblocks) in tcp_repr(), src in ip(), dst in ip()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        prop_assert!(repr.header_len() <= 60);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        let back = TcpRepr::parse(&p, src, dst, ChecksumMode::Verify).unwrap();
        // Blocks that did not fit the 40 option bytes are left out, in order.
        let kept = back.sack_ranges.iter().flatten().count();
        prop_assert!(kept <= nblocks);
        let mut expect = repr;
        for i in kept..4 { expect.sack_ranges[i] = None; }
        prop_assert_eq!(back, expect);
    }

    #[test]
    fn ipv4_round_trip(src in ip(), dst in ip(), proto: u8, payload_len in 0usize..1480,
                       ttl: u8, tos: u8, ident: u16, dont_frag: bool) {
        let r = Ipv4Repr { src_addr: src, dst_addr: dst, protocol: IpProtocol::from(proto),
                           payload_len, ttl, tos, ident, dont_frag };
        let mut buf = vec![0u8; 20 + payload_len];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&p, ChecksumMode::Verify).unwrap(), r);
    }

    #[test]
    fn arp_round_trip(op in 1u16..=2, sha: [u8; 6], spa in ip(), tha: [u8; 6], tpa in ip()) {
        let r = ArpRepr { operation: op.into(), source_hardware_addr: EthernetAddress(sha),
            source_protocol_addr: spa, target_hardware_addr: EthernetAddress(tha), target_protocol_addr: tpa };
        let mut buf = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn icmp_round_trip(ident: u16, seq_no: u16, data in proptest::collection::vec(any::<u8>(), 0..200), req: bool) {
        let r = if req { IcmpRepr::EchoRequest { ident, seq_no, data: &data } }
                else { IcmpRepr::EchoReply { ident, seq_no, data: &data } };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut IcmpPacket::new_unchecked(&mut buf[..]));
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(IcmpRepr::parse(&p, ChecksumMode::Verify).unwrap(), r);
    }

    #[test]
    fn ethernet_round_trip(src: [u8; 6], dst: [u8; 6], t: u16) {
        let r = EthernetRepr { src_addr: EthernetAddress(src), dst_addr: EthernetAddress(dst), ethertype: t.into() };
        let mut buf = [0u8; 14];
        r.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        prop_assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).unwrap()).unwrap(), r);
    }

    /// Arbitrary bytes, with a valid-looking Ethernet+IPv4 prefix half of the
    /// time so the inner parsers are reached: never a panic.
    #[test]
    fn parse_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..200), shape in 0u8..4) {
        if bytes.len() >= 34 && shape > 0 {
            bytes[12] = 0x08; bytes[13] = 0x00; bytes[14] = 0x45;
            bytes[23] = [6u8, 1, 17][usize::from(shape - 1)];
        }
        let _ = parse_frame(&bytes, ChecksumMode::Verify);
        let _ = parse_frame(&bytes, ChecksumMode::Ignore);
    }
}

/// What the receive fast path makes of `bytes`, and what `parse_frame` does:
/// when the fast path takes a frame, both give the same segment and
/// addresses, or the same error.
fn fast_path_agrees(bytes: &[u8], mode: ChecksumMode) -> std::result::Result<(), TestCaseError> {
    let general = parse_frame(bytes, mode);
    match parse_tcp_frame(bytes, mode) {
        Ok(None) => {
            // Not taken: only frames that are not IPv4 (IHL 5) carrying TCP.
            let taken =
                bytes.len() >= 34 && bytes[12..14] == [8, 0] && bytes[14] == 0x45 && bytes[23] == 6;
            prop_assert!(!taken);
        }
        Ok(Some(f)) => match general {
            Ok(Parsed::Tcp(e, ip, seg)) => prop_assert_eq!(f, TcpFrame::from_parsed(&e, &ip, seg)),
            other => prop_assert!(
                false,
                "fast path took a frame parse_frame gives {:?}",
                other
            ),
        },
        Err(e) => prop_assert_eq!(Err(e), general.map(|_| ())),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Arbitrary bytes, shaped as IPv4 TCP most of the time (lengths that
    /// mostly fit, fragment fields, data offsets, and often a correct IPv4
    /// header checksum): the fast path and `parse_frame` agree, with and
    /// without checksum checks.
    #[test]
    fn fast_path_agrees_on_arbitrary_frames(mut bytes in proptest::collection::vec(any::<u8>(), 0..120),
                                            shape in 0u8..4, ver_ihl in prop_oneof![3 => Just(0x45u8), 1 => any::<u8>()],
                                            slack in prop_oneof![3 => 0usize..8, 1 => any::<usize>()],
                                            frag in prop_oneof![Just(0u16), Just(0x4000), Just(0x2000), Just(0x0001), Just(0x6000), any::<u16>()],
                                            off in proptest::option::of(0u8..16), fix_sum: bool) {
        if bytes.len() >= 34 && shape > 0 {
            bytes[12] = 0x08; bytes[13] = 0x00; bytes[14] = ver_ihl;
            bytes[23] = if shape == 3 { 17 } else { 6 };
            // Total length: the frame's (less some Ethernet padding), or anything.
            let total = (bytes.len() - 14).wrapping_sub(slack % 16) as u16;
            bytes[16..18].copy_from_slice(&total.to_be_bytes());
            bytes[20..22].copy_from_slice(&frag.to_be_bytes());
            if let (true, Some(o)) = (bytes.len() > 46, off) { bytes[46] = (o << 4) | (bytes[46] & 0x0f); }
            if fix_sum {
                // Over the first 20 bytes, whatever the IHL says.
                bytes[24] = 0; bytes[25] = 0;
                let c = checksum::checksum(&bytes[14..34]);
                bytes[24..26].copy_from_slice(&c.to_be_bytes());
            }
        }
        fast_path_agrees(&bytes, ChecksumMode::Verify)?;
        fast_path_agrees(&bytes, ChecksumMode::Ignore)?;
    }

    /// Valid TCP frames (any options, flags, payload, Ethernet padding), then
    /// the same with one byte changed: the fast path parses them as
    /// `parse_frame` does, checksums verified.
    #[test]
    fn fast_path_agrees_on_valid_tcp_frames((seg, _) in tcp_repr(), src in ip(), dst in ip(),
                                            esrc: [u8; 6], edst: [u8; 6], ttl: u8, ident: u16,
                                            dont_frag: bool, pad in 0usize..8,
                                            flip in proptest::option::of((any::<usize>(), 1u8..))) {
        let p = Parsed::Tcp(
            EthernetRepr { src_addr: EthernetAddress(esrc), dst_addr: EthernetAddress(edst), ethertype: EtherType::Ipv4 },
            Ipv4Repr { src_addr: src, dst_addr: dst, protocol: IpProtocol::Tcp, payload_len: seg.buffer_len(),
                       ttl, tos: 0, ident, dont_frag },
            seg,
        );
        let mut out = vec![0u8; 2048];
        let n = emit_frame(&p, &mut out);
        out.truncate(n + pad);
        let f = parse_tcp_frame(&out, ChecksumMode::Verify).unwrap().expect("the fast path takes it");
        prop_assert_eq!(f.seg.payload, seg.payload);
        fast_path_agrees(&out, ChecksumMode::Verify)?;
        if let Some((at, x)) = flip {
            let at = at % out.len();
            out[at] ^= x;
            fast_path_agrees(&out, ChecksumMode::Verify)?;
            fast_path_agrees(&out, ChecksumMode::Ignore)?;
        }
    }
}

// IPv6.

fn ip6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

prop_compose! {
    fn ipv6_repr()(src in ip6(), dst in ip6(), proto: u8, payload_len in 0usize..1460,
                   hop_limit: u8, traffic_class: u8, flow_label in 0u32..(1 << 20)) -> Ipv6Repr {
        Ipv6Repr { src_addr: src, dst_addr: dst, next_header: IpProtocol::from(proto),
                   payload_len, hop_limit, traffic_class, flow_label }
    }
}

/// An ICMPv6 message sluice emits, valid between `src` and `dst` (a
/// solicitation from `::` goes to a solicited-node group without an address
/// option; a solicited advertisement is not multicast).
fn icmpv6_repr(data: &'static [u8]) -> impl Strategy<Value = Icmpv6Repr<'static>> {
    let unicast = || ip6().prop_filter("unicast target", |a| !a.is_multicast());
    prop_oneof![
        (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(move |(ident, seq_no, req)| if req {
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
        }),
        (unicast(), proptest::option::of(mac())).prop_map(|(target_addr, source_lladdr)| {
            Icmpv6Repr::NeighborSolicit {
                target_addr,
                source_lladdr,
            }
        }),
        (unicast(), proptest::option::of(mac()), 0u8..8).prop_map(
            |(target_addr, target_lladdr, f)| {
                Icmpv6Repr::NeighborAdvert {
                    flags: NdFlags::from_bits(f << 5),
                    target_addr,
                    target_lladdr,
                }
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ipv6_round_trip(r in ipv6_repr()) {
        let mut buf = vec![0u8; 40 + r.payload_len];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        // What the next header names: an extension header is walked into
        // (over a zero payload: refused or read), anything else is the repr's.
        match Ipv6Repr::parse(&p) {
            Ok(back) if back.next_header == r.next_header => prop_assert_eq!(back, r),
            other => prop_assert!(
                matches!(u8::from(r.next_header), 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254),
                "{:?} -> {:?}", r, other
            ),
        }
    }

    #[test]
    fn icmpv6_round_trip((r, src, dst) in proptest::collection::vec(any::<u8>(), 0..200)
        .prop_flat_map(|d| {
            let d: &'static [u8] = Box::leak(d.into_boxed_slice());
            (icmpv6_repr(d), ip6().prop_filter("a source", |a| !a.is_unspecified()), ip6()
                .prop_filter("unicast", |a| !a.is_multicast()))
        })) {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Icmpv6Repr::parse(&p, &src, &dst, ChecksumMode::Verify).unwrap(), r);
    }

    /// Whole IPv6 frames (TCP with any options, ICMPv6), emitted then parsed:
    /// the same frame, checksums over the IPv6 pseudo-header verified.
    #[test]
    fn ipv6_frame_round_trip((seg, nblocks) in tcp_repr(), ip in ipv6_repr(), esrc in mac(), edst in mac(),
                             tcp: bool, ident: u16, seq_no: u16) {
        let e = EthernetRepr { src_addr: esrc, dst_addr: edst, ethertype: EtherType::Ipv6 };
        let ip = Ipv6Repr { src_addr: if ip.src_addr.is_unspecified() { Ipv6Addr::LOCALHOST } else { ip.src_addr }, ..ip };
        let (proto, pl) = if tcp {
            (IpProtocol::Tcp, frame::Ipv6Payload::Tcp(seg))
        } else {
            (IpProtocol::Icmpv6, frame::Ipv6Payload::Icmp(Icmpv6Repr::EchoRequest { ident, seq_no, data: seg.payload }))
        };
        let len = match &pl { frame::Ipv6Payload::Tcp(t) => t.buffer_len(), frame::Ipv6Payload::Icmp(m) => m.buffer_len(), _ => 0 };
        let p = Parsed::Ipv6(e, Ipv6Repr { next_header: proto, payload_len: len, ..ip }, pl);
        let mut out = vec![0u8; 2048];
        let n = emit_frame(&p, &mut out);
        let back = parse_frame(&out[..n], ChecksumMode::Verify).unwrap();
        match (&p, &back) {
            (Parsed::Ipv6(e1, i1, frame::Ipv6Payload::Tcp(t1)), Parsed::Ipv6(e2, i2, frame::Ipv6Payload::Tcp(t2))) => {
                prop_assert_eq!((e1, i1), (e2, i2));
                let kept = t2.sack_ranges.iter().flatten().count();
                prop_assert!(kept <= nblocks);
                let mut t1 = *t1;
                for r in t1.sack_ranges.iter_mut().skip(kept) { *r = None; }
                prop_assert_eq!(&t1, t2);
            }
            _ => prop_assert_eq!(&p, &back),
        }
        // The receive fast path leaves IPv6 to parse_frame.
        prop_assert_eq!(parse_tcp_frame(&out[..n], ChecksumMode::Verify), Ok(None));
    }

    /// Arbitrary bytes behind an Ethernet + IPv6 header whose length fits
    /// (most of the time), with a next header drawn from the extension
    /// headers, TCP and ICMPv6, and the payload's first bytes often another
    /// plausible chain: never a panic, in either checksum mode.
    #[test]
    fn ipv6_parse_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 54..300),
                               nh in prop_oneof![Just(0u8), Just(43), Just(44), Just(60), Just(6), Just(58), Just(51), any::<u8>()],
                               chain in proptest::collection::vec((prop_oneof![Just(0u8), Just(43), Just(44), Just(60), Just(6), Just(58)], 0u8..4), 0..4),
                               slack in prop_oneof![3 => 0usize..8, 1 => any::<usize>()]) {
        bytes[12] = 0x86; bytes[13] = 0xdd; bytes[14] = 0x60 | (bytes[14] & 0x0f);
        let len = (bytes.len() - 54).wrapping_sub(slack % 16) as u16;
        bytes[18..20].copy_from_slice(&len.to_be_bytes());
        bytes[20] = nh;
        let mut at = 54;
        for (next, units) in chain {
            if at + 2 > bytes.len() { break; }
            bytes[at] = next;
            bytes[at + 1] = units;
            at += (usize::from(units) + 1) * 8;
        }
        for mode in [ChecksumMode::Verify, ChecksumMode::Ignore] {
            let _ = parse_frame(&bytes, mode);
            prop_assert_eq!(parse_tcp_frame(&bytes, mode), Ok(None));
        }
    }
}
