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
