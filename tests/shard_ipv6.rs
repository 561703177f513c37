//! IPv6 at a shard (issue 14, before the engine takes TCP over IPv6): a
//! stack with IPv6 addresses answers Neighbor Solicitations and ICMPv6 echo
//! requests through its responder, counts what it cannot take yet, and a
//! stack without IPv6 counts IPv6 as the other EtherType it was before.

use sluice::shard::{Iface, MemNic, Nic, Stack, StackConfig};
use sluice::stats::DropReason;
use sluice::tcp::TcpConfig;
use sluice::time::Instant;
use sluice::wire::addr::{multicast_mac, solicited_node};
use sluice::wire::frame::Ipv6Payload;
use sluice::wire::{
    ChecksumMode, EtherType, EthernetAddress, EthernetRepr, Icmpv6Repr, IpProtocol, Ipv6Range,
    Ipv6Repr, NdFlags, Parsed, emit_frame, parse_frame,
};
use std::net::{Ipv4Addr, Ipv6Addr};

const US_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const US: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fn stack(ipv6: bool) -> Stack {
    let mut iface = Iface::new(US_MAC, Ipv4Addr::new(10, 0, 0, 2));
    if ipv6 {
        iface = iface.with_ipv6(Ipv6Range::single(US));
    }
    Stack::new(StackConfig::new(iface, TcpConfig::default()), Instant::ZERO)
}

fn frame(dst_mac: EthernetAddress, dst: Ipv6Addr, payload: Ipv6Payload<'_>, hops: u8) -> Vec<u8> {
    let (proto, len) = match &payload {
        Ipv6Payload::Icmp(m) => (IpProtocol::Icmpv6, m.buffer_len()),
        Ipv6Payload::Tcp(t) => (IpProtocol::Tcp, t.buffer_len()),
        Ipv6Payload::Other => (IpProtocol::Udp, 0),
    };
    let p = Parsed::Ipv6(
        EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: dst_mac,
            ethertype: EtherType::Ipv6,
        },
        Ipv6Repr {
            src_addr: PEER,
            dst_addr: dst,
            next_header: proto,
            payload_len: len,
            hop_limit: hops,
            traffic_class: 0,
            flow_label: 0,
        },
        payload,
    );
    let mut out = vec![0u8; 2048];
    let n = emit_frame(&p, &mut out);
    out.truncate(n);
    out
}

/// Feeds `frames` to the stack; what it sends back.
fn exchange(s: &mut Stack, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let (mut ours, peer) = MemNic::pair(64);
    for f in frames {
        peer.tx.push(f).unwrap();
    }
    s.poll(Instant::from_millis(1), &mut ours as &mut dyn Nic);
    let mut got = Vec::new();
    while let Some(f) = peer.rx.pop() {
        got.push(f);
    }
    got
}

#[test]
fn answers_solicitation_and_ping6() {
    let mut s = stack(true);
    let sn = solicited_node(&US);
    let ns = Icmpv6Repr::NeighborSolicit {
        target_addr: US,
        source_lladdr: Some(PEER_MAC),
    };
    let echo = Icmpv6Repr::EchoRequest {
        ident: 7,
        seq_no: 1,
        data: b"sluice over IPv6",
    };
    let got = exchange(
        &mut s,
        vec![
            frame(multicast_mac(&sn), sn, Ipv6Payload::Icmp(ns), 255),
            frame(US_MAC, US, Ipv6Payload::Icmp(echo), 64),
        ],
    );
    assert_eq!(got.len(), 2, "{got:?}");
    let answers: Vec<Parsed> = got
        .iter()
        .map(|f| parse_frame(f, ChecksumMode::Verify).unwrap())
        .collect();
    let Parsed::Ipv6(e, ip, Ipv6Payload::Icmp(na)) = &answers[0] else {
        panic!("{:?}", answers[0]);
    };
    assert_eq!((e.src_addr, e.dst_addr), (US_MAC, PEER_MAC));
    assert_eq!((ip.src_addr, ip.dst_addr, ip.hop_limit), (US, PEER, 255));
    assert_eq!(
        *na,
        Icmpv6Repr::NeighborAdvert {
            flags: NdFlags::SOLICITED | NdFlags::OVERRIDE,
            target_addr: US,
            target_lladdr: Some(US_MAC),
        }
    );
    let Parsed::Ipv6(_, ip, Ipv6Payload::Icmp(reply)) = &answers[1] else {
        panic!("{:?}", answers[1]);
    };
    assert_eq!((ip.src_addr, ip.dst_addr), (US, PEER));
    assert_eq!(
        *reply,
        Icmpv6Repr::EchoReply {
            ident: 7,
            seq_no: 1,
            data: b"sluice over IPv6",
        }
    );
    assert_eq!(s.stats.icmp_answered, 1);
    assert_eq!(s.stats.drops.iter().sum::<u64>(), 0);
}

#[test]
fn what_ipv6_cannot_take_yet_is_counted() {
    let tcp = sluice::wire::TcpRepr {
        src_port: 40000,
        dst_port: 80,
        control: sluice::wire::TcpControl::Syn,
        seq_number: sluice::wire::SeqNumber(1),
        ..sluice::wire::TcpRepr::EMPTY
    };
    let ping = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"x",
    };
    let frames = || {
        vec![
            frame(US_MAC, US, Ipv6Payload::Tcp(tcp), 64),
            frame(US_MAC, US, Ipv6Payload::Icmp(ping), 64),
        ]
    };
    // With IPv6: TCP waits for the engine (unsupported); the ping is answered.
    let mut s = stack(true);
    assert_eq!(exchange(&mut s, frames()).len(), 1);
    assert_eq!(s.stats.dropped(DropReason::Unsupported), 1);
    // Without: both are the other EtherType they always were, unanswered.
    let mut s = stack(false);
    assert!(exchange(&mut s, frames()).is_empty());
    assert_eq!(s.stats.dropped(DropReason::OtherEtherType), 2);
    assert_eq!(s.stats.icmp_answered, 0);
}
