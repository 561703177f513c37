//! Fuzz the receive path's parser: arbitrary bytes into `parse_frame`, with and
//! without checksum checks. Whatever parses as ARP, ICMP or TCP, over IPv4 or
//! IPv6, or as ICMPv6 echo or Neighbor Discovery, must emit to a frame that
//! parses again (checksums verified) to the same thing; TCP may keep fewer
//! SACK blocks when sluice's option layout needs more room. (IPv4 options and
//! IPv6 extension headers are skipped on parse, so they are not re-emitted
//! either; nor are the Neighbor Discovery options sluice does not keep.) The
//! receive fast path (`parse_tcp_frame`) must agree with `parse_frame` on
//! every frame it takes, and takes no IPv6.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::wire::frame::Ipv6Payload;
use sluice::wire::{
    ChecksumMode, IcmpRepr, Icmpv6Repr, Ipv6Repr, Parsed, TcpFrame, TcpRepr, emit_frame,
    parse_frame, parse_tcp_frame,
};

/// `t1` with the SACK blocks `t2` kept, and no more.
fn sack_kept<'a>(t1: &TcpRepr<'a>, t2: &TcpRepr<'_>) -> TcpRepr<'a> {
    let kept = t2.sack_ranges.iter().flatten().count();
    let mut t1 = *t1;
    for r in t1.sack_ranges.iter_mut().skip(kept) {
        *r = None;
    }
    t1
}

fuzz_target!(|data: &[u8]| {
    for mode in [ChecksumMode::Verify, ChecksumMode::Ignore] {
        let general = parse_frame(data, mode);
        match parse_tcp_frame(data, mode) {
            Ok(None) => {}
            Ok(Some(_)) if matches!(general, Ok(Parsed::Ipv6(..))) => {
                panic!("the IPv4 fast path took an IPv6 frame")
            }
            Ok(Some(f)) => match general {
                Ok(Parsed::Tcp(e, ip, seg)) => assert_eq!(f, TcpFrame::from_parsed(&e, &ip, seg)),
                other => panic!("the fast path took a frame parse_frame gives {other:?}"),
            },
            Err(e) => assert_eq!(general.map(|_| ()), Err(e)),
        }
    }
    let Ok(p) = parse_frame(data, ChecksumMode::Ignore) else {
        return;
    };
    // Kinds sluice never emits are parsed to a summary that does not round-trip.
    let summary_only = matches!(
        p,
        Parsed::OtherIp(..)
            | Parsed::OtherEther(..)
            | Parsed::Icmp(_, _, IcmpRepr::Other { .. })
            | Parsed::Ipv6(_, _, Ipv6Payload::Other)
            | Parsed::Ipv6(_, _, Ipv6Payload::Icmp(Icmpv6Repr::Other { .. }))
    );
    if summary_only || data.len() > 1514 {
        return;
    }
    let mut out = vec![0u8; 2048];
    let n = emit_frame(&p, &mut out);
    let again = parse_frame(&out[..n], ChecksumMode::Verify)
        .expect("an emitted frame parses, checksums included");
    match (&p, &again) {
        (Parsed::Tcp(e1, i1, t1), Parsed::Tcp(e2, i2, t2)) => {
            assert_eq!(e1, e2);
            assert_eq!(i1.src_addr, i2.src_addr);
            assert_eq!(i1.dst_addr, i2.dst_addr);
            assert_eq!(&sack_kept(t1, t2), t2);
        }
        (Parsed::Ipv6(e1, i1, Ipv6Payload::Tcp(t1)), Parsed::Ipv6(e2, i2, Ipv6Payload::Tcp(t2))) => {
            // The length follows the options sluice writes (as over IPv4).
            let i1 = Ipv6Repr {
                payload_len: i2.payload_len,
                ..*i1
            };
            assert_eq!((e1, &i1), (e2, i2));
            assert_eq!(&sack_kept(t1, t2), t2);
        }
        (Parsed::Ipv6(e1, i1, Ipv6Payload::Icmp(m1)), Parsed::Ipv6(..)) => {
            // Neighbor Discovery options sluice does not keep are left out.
            let i1 = Ipv6Repr {
                payload_len: m1.buffer_len(),
                ..*i1
            };
            assert_eq!(Parsed::Ipv6(*e1, i1, Ipv6Payload::Icmp(*m1)), again);
        }
        _ => assert_eq!(p, again),
    }
});
