//! Golden bytes from the Linux kernel (tests/fixtures/linux.pcap and, over
//! IPv6, linux6.pcap, made by scripts/capture-fixture.sh): every frame parses
//! with valid checksums, and emitting the parsed form gives back the kernel's
//! exact bytes. Then every truncation and every single-byte corruption of
//! every frame: an error or a different parse, never a panic. Over IPv6 the
//! responder's answers to the kernel's solicitation and echo request are
//! checked against the kernel's own answers.

use sluice::shard::{Iface, Responder};
use sluice::wire::ipv6::next_header;
use sluice::wire::{
    ArpOperation, ChecksumMode, EthernetAddress, IcmpRepr, Icmpv6Repr, Ipv6Packet, Ipv6Range,
    Ipv6Repr, NdFlags, Parsed, TcpControl, emit_frame, frame::Ipv6Payload, parse_frame,
};

fn frames() -> Vec<Vec<u8>> {
    pcap("linux.pcap")
}

fn frames6() -> Vec<Vec<u8>> {
    pcap("linux6.pcap")
}

fn pcap(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).expect("fixture present");
    assert_eq!(
        &raw[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian pcap, microseconds"
    );
    assert_eq!(
        u32::from_le_bytes(raw[20..24].try_into().unwrap()),
        1,
        "Ethernet link type"
    );
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= raw.len() {
        let incl = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(raw[at + 12..at + 16].try_into().unwrap()) as usize;
        assert_eq!(incl, orig, "capture is not truncated (snaplen 0)");
        out.push(raw[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    assert_eq!(at, raw.len());
    out
}

#[derive(Default, Debug)]
struct Seen {
    arp_request: usize,
    arp_reply: usize,
    echo_request: usize,
    echo_reply: usize,
    syn: usize,
    syn_ack: usize,
    fin: usize,
    rst: usize,
    data: usize,
    sack_blocks: usize,
    timestamps: usize,
}

#[test]
fn kernel_frames_parse_and_reemit_byte_exact() {
    let frames = frames();
    assert!(frames.len() > 50, "{} frames", frames.len());
    let mut seen = Seen::default();
    let mut out = vec![0u8; 2048];
    for (i, f) in frames.iter().enumerate() {
        let p = parse_frame(f, ChecksumMode::Verify)
            .unwrap_or_else(|e| panic!("frame {i}: {e} ({} bytes)", f.len()));
        match &p {
            Parsed::Arp(_, a) => match a.operation {
                ArpOperation::Request => seen.arp_request += 1,
                ArpOperation::Reply => seen.arp_reply += 1,
                _ => {}
            },
            Parsed::Icmp(_, _, IcmpRepr::EchoRequest { .. }) => seen.echo_request += 1,
            Parsed::Icmp(_, _, IcmpRepr::EchoReply { .. }) => seen.echo_reply += 1,
            Parsed::Tcp(_, _, t) => {
                match (t.control, t.ack_number.is_some()) {
                    (TcpControl::Syn, false) => {
                        seen.syn += 1;
                        // Linux's SYN: MSS 1460 on a 1500 MTU veth, all options on.
                        assert_eq!(t.max_seg_size, Some(1460));
                        assert!(t.sack_permitted && t.window_scale.is_some());
                    }
                    (TcpControl::Syn, true) => seen.syn_ack += 1,
                    (TcpControl::Fin, _) => seen.fin += 1,
                    (TcpControl::Rst, _) => seen.rst += 1,
                    _ => {}
                }
                if !t.payload.is_empty() {
                    seen.data += 1;
                }
                if t.sack_ranges[0].is_some() {
                    seen.sack_blocks += 1;
                    let (l, r) = t.sack_ranges[0].unwrap();
                    assert!(r > l, "frame {i}: SACK block {l}..{r}");
                }
                if t.timestamp.is_some() {
                    seen.timestamps += 1;
                }
            }
            _ => {}
        }
        let n = emit_frame(&p, &mut out);
        assert_eq!(
            &out[..n],
            &f[..],
            "frame {i}: re-emitted bytes differ from the kernel's"
        );
    }
    println!("{seen:?}");
    assert!(seen.arp_request >= 1 && seen.arp_reply >= 1, "{seen:?}");
    assert!(seen.echo_request >= 2 && seen.echo_reply >= 2, "{seen:?}");
    assert!(seen.syn >= 2 && seen.syn_ack >= 1, "{seen:?}");
    assert!(seen.fin >= 2 && seen.rst >= 1, "{seen:?}");
    assert!(seen.data >= 40, "{seen:?}");
    assert!(seen.sack_blocks >= 1, "{seen:?}");
    assert!(seen.timestamps >= 40, "{seen:?}");
}

#[test]
fn every_truncation_is_an_error() {
    for (i, f) in frames().iter().enumerate() {
        for n in 0..f.len() {
            // Shorter than the kernel's frame: the IPv4 total length (or ARP's
            // fixed size) says bytes are missing, so every prefix is refused.
            // A 14-byte prefix of an unknown EtherType would be fine, but the
            // capture holds only ARP and IPv4.
            assert!(
                parse_frame(&f[..n], ChecksumMode::Verify).is_err(),
                "frame {i} cut at {n} parsed"
            );
        }
    }
}

#[test]
fn every_single_byte_corruption_is_handled() {
    let mut refused = 0usize;
    let mut total = 0usize;
    for f in frames().iter().take(40) {
        for at in 0..f.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut g = f.clone();
                g[at] ^= flip;
                total += 1;
                // Must not panic; checksums catch corruption beyond the
                // Ethernet header and ARP (which has none).
                if parse_frame(&g, ChecksumMode::Verify).is_err() {
                    refused += 1;
                }
            }
        }
    }
    println!("{refused} of {total} corrupted frames refused");
    assert!(refused * 10 > total * 7, "{refused} of {total}");
}

#[derive(Default, Debug)]
struct Seen6 {
    /// Multicast listener reports (143), behind a hop-by-hop header.
    mld_reports: usize,
    router_solicits: usize,
    /// Duplicate address detection: solicitations from ::.
    dad_solicits: usize,
    solicits: usize,
    adverts: usize,
    echo_request: usize,
    echo_reply: usize,
    syn: usize,
    syn_ack: usize,
    fin: usize,
    rst: usize,
    data: usize,
}

/// The frame as sluice emits it: the same with any extension headers left
/// out (the fixed header's next header and length say the upper layer).
fn without_extension_headers(f: &[u8]) -> Vec<u8> {
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    let (proto, at) = ip.upper_layer().unwrap();
    let upper = &ip.payload()[at..];
    let mut out = f[..14 + 40].to_vec();
    out[14 + 4..14 + 6].copy_from_slice(&(upper.len() as u16).to_be_bytes());
    out[14 + 6] = proto.into();
    out.extend_from_slice(upper);
    out
}

#[test]
fn kernel_ipv6_frames_parse_and_reemit_byte_exact() {
    let frames = frames6();
    assert!(frames.len() > 40, "{} frames", frames.len());
    let mut seen = Seen6::default();
    let mut out = vec![0u8; 2048];
    for (i, f) in frames.iter().enumerate() {
        let p = parse_frame(f, ChecksumMode::Verify)
            .unwrap_or_else(|e| panic!("frame {i}: {e} ({} bytes)", f.len()));
        let Parsed::Ipv6(e, ip, pl) = &p else {
            panic!("frame {i}: not IPv6: {p:?}");
        };
        let has_ext = f[14 + 6] != u8::from(ip.next_header);
        match pl {
            Ipv6Payload::Icmp(Icmpv6Repr::Other { msg_type: 143, .. }) => {
                // RFC 3810 5: MLDv2 reports carry a router alert (RFC 2711).
                assert_eq!(f[14 + 6], next_header::HOP_BY_HOP, "frame {i}");
                assert_eq!(ip.hop_limit, 1);
                seen.mld_reports += 1;
            }
            Ipv6Payload::Icmp(Icmpv6Repr::Other { msg_type: 133, .. }) => seen.router_solicits += 1,
            Ipv6Payload::Icmp(Icmpv6Repr::NeighborSolicit { source_lladdr, .. }) => {
                assert_eq!(ip.hop_limit, 255);
                if ip.src_addr.is_unspecified() {
                    // RFC 4862 5.4.2: no source address option (a nonce instead).
                    assert_eq!(*source_lladdr, None);
                    seen.dad_solicits += 1;
                } else {
                    assert_eq!(*source_lladdr, Some(EthernetAddress::from_bytes(&f[6..12])));
                    seen.solicits += 1;
                }
            }
            Ipv6Payload::Icmp(Icmpv6Repr::NeighborAdvert {
                flags,
                target_lladdr,
                ..
            }) => {
                assert_eq!(*flags, NdFlags::SOLICITED | NdFlags::OVERRIDE);
                assert_eq!(*target_lladdr, Some(EthernetAddress::from_bytes(&f[6..12])));
                seen.adverts += 1;
            }
            Ipv6Payload::Icmp(Icmpv6Repr::EchoRequest { .. }) => seen.echo_request += 1,
            Ipv6Payload::Icmp(Icmpv6Repr::EchoReply { .. }) => seen.echo_reply += 1,
            Ipv6Payload::Tcp(t) => {
                match (t.control, t.ack_number.is_some()) {
                    (TcpControl::Syn, false) => {
                        seen.syn += 1;
                        // Linux's SYN over IPv6: MSS 1440 on a 1500 MTU veth.
                        assert_eq!(t.max_seg_size, Some(1440));
                        assert!(t.sack_permitted && t.window_scale.is_some());
                        assert!(t.timestamp.is_some());
                    }
                    (TcpControl::Syn, true) => {
                        seen.syn_ack += 1;
                        assert_eq!(t.max_seg_size, Some(1440));
                    }
                    (TcpControl::Fin, _) => seen.fin += 1,
                    (TcpControl::Rst, _) => seen.rst += 1,
                    _ => {}
                }
                if !t.payload.is_empty() {
                    seen.data += 1;
                }
            }
            other => panic!("frame {i}: {other:?}"),
        }
        // Messages sluice only summarises are not emitted back.
        if matches!(pl, Ipv6Payload::Icmp(Icmpv6Repr::Other { .. })) {
            continue;
        }
        let n = emit_frame(&p, &mut out);
        if let Ipv6Payload::Icmp(m) = pl
            && m.buffer_len() < ip.payload_len
        {
            // Options sluice does not keep (the nonce of a DAD probe, RFC
            // 7527) are left out: the rest must come back the same.
            assert!(
                matches!(m, Icmpv6Repr::NeighborSolicit { .. }) && ip.src_addr.is_unspecified(),
                "frame {i}: {m:?}"
            );
            let shorter = Parsed::Ipv6(
                *e,
                Ipv6Repr {
                    payload_len: m.buffer_len(),
                    ..*ip
                },
                pl.clone(),
            );
            assert_eq!(parse_frame(&out[..n], ChecksumMode::Verify), Ok(shorter));
            continue;
        }
        let want = if has_ext {
            without_extension_headers(f)
        } else {
            f.clone()
        };
        assert_eq!(
            &out[..n],
            &want[..],
            "frame {i}: re-emitted bytes differ from the kernel's"
        );
    }
    println!("{seen:?}");
    assert!(
        seen.mld_reports >= 2 && seen.router_solicits >= 1,
        "{seen:?}"
    );
    assert!(seen.dad_solicits >= 1, "{seen:?}");
    assert!(seen.solicits >= 1 && seen.adverts >= 1, "{seen:?}");
    assert!(seen.echo_request >= 2 && seen.echo_reply >= 2, "{seen:?}");
    assert!(seen.syn >= 2 && seen.syn_ack >= 1, "{seen:?}");
    assert!(seen.fin >= 2 && seen.rst >= 1, "{seen:?}");
    assert!(seen.data >= 10, "{seen:?}");
}

/// The frames whose answer the kernel sent next: a solicitation and its
/// advertisement, each echo request and its reply.
fn requests_and_answers(frames: &[Vec<u8>]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let Ok(Parsed::Ipv6(_, ip, Ipv6Payload::Icmp(m))) = parse_frame(f, ChecksumMode::Verify)
        else {
            continue;
        };
        let asks = match m {
            Icmpv6Repr::NeighborSolicit { .. } => !ip.src_addr.is_unspecified(),
            Icmpv6Repr::EchoRequest { .. } => true,
            _ => false,
        };
        if asks {
            pairs.push((i, i + 1));
        }
    }
    pairs
}

#[test]
fn responder_answers_the_kernel_as_the_kernel_does() {
    // The responder in the place of 2001:db8:78::2, with its MAC.
    let frames = frames6();
    let pairs = requests_and_answers(&frames);
    assert!(pairs.len() >= 3, "{pairs:?}");
    let mut answered = 0;
    for (q, a) in pairs {
        let (req, linux) = (&frames[q], &frames[a]);
        let mac = EthernetAddress::from_bytes(&linux[6..12]);
        let us = Ipv6Packet::new_checked(&linux[14..]).unwrap().src_addr();
        let mut r = Responder::new(
            Iface::new(mac, "10.0.0.1".parse().unwrap()).with_ipv6(Ipv6Range::single(us)),
        );
        let mut out = vec![0u8; req.len().max(Responder::MIN_OUT)];
        let n = r
            .handle(req, &mut out)
            .unwrap_or_else(|d| panic!("frame {q}: dropped: {}", d.name()))
            .unwrap_or_else(|| panic!("frame {q}: no answer"));
        // The same bytes but the flow label (Linux labels its echo replies
        // with a hash of the flow; sluice leaves it 0, RFC 6437 3 allows both).
        let mut want = linux.clone();
        want[14 + 1] &= 0xf0;
        want[14 + 2..14 + 4].fill(0);
        assert_eq!(&out[..n], &want[..], "answer to frame {q}");
        answered += 1;
    }
    assert!(answered >= 3);
}

#[test]
fn every_ipv6_truncation_is_an_error() {
    for (i, f) in frames6().iter().enumerate() {
        for n in 0..f.len() {
            // The payload length says bytes are missing.
            assert!(
                parse_frame(&f[..n], ChecksumMode::Verify).is_err(),
                "frame {i} cut at {n} parsed"
            );
        }
    }
}

#[test]
fn every_single_ipv6_byte_corruption_is_handled() {
    let mut refused = 0usize;
    let mut total = 0usize;
    for f in frames6().iter().take(40) {
        for at in 0..f.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut g = f.clone();
                g[at] ^= flip;
                total += 1;
                // Must not panic. IPv6 has no header checksum, but its
                // addresses, length and next header are in the pseudo-header.
                if parse_frame(&g, ChecksumMode::Verify).is_err() {
                    refused += 1;
                }
            }
        }
    }
    println!("{refused} of {total} corrupted IPv6 frames refused");
    assert!(refused * 10 > total * 7, "{refused} of {total}");
}
