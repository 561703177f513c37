//! Fuzz the receive path's parser: arbitrary bytes into `parse_frame`, with and
//! without checksum checks. Whatever parses as ARP, ICMP or TCP must emit to a
//! frame that parses again (checksums verified) to the same thing; TCP may
//! keep fewer SACK blocks when sluice's option layout needs more room. (IPv4
//! options are skipped on parse, so they are not re-emitted either.) The
//! receive fast path (`parse_tcp_frame`) must agree with `parse_frame` on
//! every frame it takes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::wire::{
    ChecksumMode, IcmpRepr, Parsed, TcpFrame, emit_frame, parse_frame, parse_tcp_frame,
};

fuzz_target!(|data: &[u8]| {
    for mode in [ChecksumMode::Verify, ChecksumMode::Ignore] {
        let general = parse_frame(data, mode);
        match parse_tcp_frame(data, mode) {
            Ok(None) => {}
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
        Parsed::OtherIp(..) | Parsed::OtherEther(..) | Parsed::Icmp(_, _, IcmpRepr::Other { .. })
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
            let kept = t2.sack_ranges.iter().flatten().count();
            let mut t1 = *t1;
            for r in t1.sack_ranges.iter_mut().skip(kept) {
                *r = None;
            }
            assert_eq!(&t1, t2);
        }
        _ => assert_eq!(p, again),
    }
});
