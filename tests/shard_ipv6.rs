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
    ChecksumMode, EtherType, EthernetAddress, EthernetRepr, Icmpv6Repr, IpFamily, IpProtocol,
    Ipv6Range, Ipv6Repr, NdFlags, Parsed, emit_frame, parse_frame,
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

// ---- TCP over IPv6 at a shard of its own family (`Stack<Ipv6Addr>`) ----

use sluice::app::ServerApp;
use sluice::shard::stack::StackFamily;
use sluice::tcp::{Connection, State, TcpStats};
use sluice::wire::{FlowKey, SeqNumber, TcpControl, TcpRepr, parse_tcp6_frame};
use std::net::SocketAddrV6;

/// An IPv6 shard (MSS 1440: a 1500-byte MTU less 60 bytes of headers)
/// listening on [US]:80 with the HTTP server.
fn v6_server() -> Stack<Ipv6Addr> {
    let iface = Iface::new(US_MAC, Ipv4Addr::new(10, 0, 0, 2)).with_ipv6(Ipv6Range::single(US));
    let tcp = TcpConfig {
        mss: 1440,
        ..TcpConfig::default()
    };
    let mut s = Stack::<Ipv6Addr>::new_family(StackConfig::new(iface, tcp), Instant::ZERO);
    s.listen(SocketAddrV6::new(US, 80, 0, 0), ServerApp::http(100, 0));
    s
}

/// A TCP segment from the peer (checksum already in it) in Ethernet and IPv6.
fn wrap(seg: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 54 + seg.len()];
    f[..6].copy_from_slice(&US_MAC.0);
    f[6..12].copy_from_slice(&PEER_MAC.0);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    sluice::wire::ipv6::emit_tcp_header(&mut f[14..], &PEER, &US, seg.len());
    f[54..].copy_from_slice(seg);
    f
}

/// Feeds `frames` to the stack at `now`; what it sends back.
fn exchange_at<A: StackFamily>(
    s: &mut Stack<A>,
    now: Instant,
    frames: Vec<Vec<u8>>,
) -> Vec<Vec<u8>> {
    let (mut ours, peer) = MemNic::pair(64);
    for f in frames {
        peer.tx.push(f).unwrap();
    }
    s.poll(now, &mut ours as &mut dyn Nic);
    let mut got = Vec::new();
    while let Some(f) = peer.rx.pop() {
        got.push(f);
    }
    got
}

/// The peer's end: an engine connection whose segments travel as IPv6
/// frames, every answer parsed (checksum verified) by the IPv6 fast path.
struct Peer {
    c: Connection,
    cfg: TcpConfig,
    st: TcpStats,
    got: Vec<u8>,
}

impl Peer {
    fn new(port: u16) -> Peer {
        let cfg = TcpConfig {
            mss: 1440,
            ..TcpConfig::default()
        };
        let key = FlowKey::<Ipv6Addr>::new(
            SocketAddrV6::new(PEER, port, 0, 0),
            SocketAddrV6::new(US, 80, 0, 0),
        );
        let c = Connection::connect(&cfg, key, SeqNumber(1000), Instant::ZERO);
        Peer {
            c,
            cfg,
            st: TcpStats::default(),
            got: Vec::new(),
        }
    }

    fn out(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        let mut v = Vec::new();
        while let Some(n) = self.c.poll_transmit(now, &self.cfg, &mut self.st, &mut buf) {
            v.push(wrap(&buf[..n]));
        }
        v
    }

    /// Takes the server's frames; returns their segments' headers.
    fn take(&mut self, now: Instant, frames: &[Vec<u8>]) -> Vec<TcpRepr<'static>> {
        let mut segs = Vec::new();
        for f in frames {
            let t = parse_tcp6_frame(f, ChecksumMode::Verify)
                .expect("a valid IPv6 TCP frame")
                .expect("IPv6 TCP without extension headers");
            assert_eq!((t.src_addr, t.dst_addr), (US, PEER));
            assert_eq!((t.eth_src, t.eth_dst), (US_MAC, PEER_MAC));
            assert_eq!(f[14 + 7], 64, "hop limit 64");
            self.c.handle_segment(now, &self.cfg, &mut self.st, &t.seg);
            segs.push(TcpRepr {
                payload: &[],
                ..t.seg
            });
            let mut b = vec![0u8; 4096];
            let n = self.c.recv(&self.cfg, &mut b);
            self.got.extend_from_slice(&b[..n]);
        }
        while self.c.poll_event().is_some() {}
        segs
    }
}

/// RFC 9293 3.5 and 3.6 over IPv6 (RFC 8200 8.1 checksums): a whole HTTP
/// exchange with `Stack<Ipv6Addr>` — handshake (MSS 1440 offered),
/// request, response, the server closing first and holding TIME_WAIT — then
/// the record answers a retransmitted FIN.
#[test]
fn ipv6_http_exchange_ends_in_time_wait() {
    let mut s = v6_server();
    let mut p = Peer::new(40_000);
    let mut now = Instant::from_millis(1);
    let syn = p.out(now);
    let back = exchange_at(&mut s, now, syn);
    let segs = p.take(now, &back);
    assert_eq!(segs.len(), 1, "one SYN-ACK");
    assert_eq!(segs[0].control, TcpControl::Syn);
    assert_eq!(segs[0].max_seg_size, Some(1440));
    assert_eq!(p.c.state(), State::Established);
    let req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    p.c.send(&p.cfg, req).unwrap();
    let mut fin_seen = false;
    for _ in 0..8 {
        now += std::time::Duration::from_millis(1);
        let out = p.out(now);
        let back = exchange_at(&mut s, now, out);
        fin_seen |= p
            .take(now, &back)
            .iter()
            .any(|g| g.control == TcpControl::Fin);
        if p.c.state() == State::CloseWait {
            p.c.close(now, &p.cfg);
        }
    }
    assert!(fin_seen, "the server closes first (Connection: close)");
    let text = String::from_utf8_lossy(&p.got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(p.got.len() - text.find("\r\n\r\n").unwrap() - 4, 100);
    assert_eq!(
        p.c.state(),
        State::Closed,
        "the peer's LAST-ACK was acknowledged"
    );
    assert_eq!(s.connections(), 0);
    assert_eq!(s.time_wait_records(), 1, "the server holds TIME_WAIT");
    assert_eq!(s.stats.accepted, 1);
    assert_eq!(s.stats.drops.iter().sum::<u64>(), 0);
}

/// RFC 9293 3.10.7.1 over IPv6: a segment for no connection is answered
/// with an RST whose checksum is over the IPv6 pseudo-header, to the MAC it
/// came from; an RST is not answered.
#[test]
fn ipv6_segments_for_no_connection_get_rsts() {
    let mut s = v6_server();
    let cfg = TcpConfig::default();
    let key = FlowKey::<Ipv6Addr>::new(
        SocketAddrV6::new(PEER, 40_001, 0, 0),
        SocketAddrV6::new(US, 81, 0, 0),
    );
    let mut c = Connection::connect(&cfg, key, SeqNumber(7), Instant::ZERO);
    let mut buf = vec![0u8; 256];
    let n = c
        .poll_transmit(Instant::ZERO, &cfg, &mut TcpStats::default(), &mut buf)
        .unwrap();
    let back = exchange_at(&mut s, Instant::from_millis(1), vec![wrap(&buf[..n])]);
    assert_eq!(back.len(), 1);
    let f = parse_tcp6_frame(&back[0], ChecksumMode::Verify)
        .unwrap()
        .unwrap();
    assert_eq!(f.seg.control, TcpControl::Rst);
    assert_eq!(
        f.seg.ack_number,
        Some(SeqNumber(8)),
        "<SEQ=0><ACK=SEG.SEQ+1>"
    );
    assert_eq!((f.seg.src_port, f.seg.dst_port), (81, 40_001));
    assert_eq!(f.eth_dst, PEER_MAC);
    assert_eq!(s.stats.tcp.rsts_out, 1);
    // The RST itself, sent back: no answer.
    let rst = back[0][54..].to_vec();
    let mut echo = wrap(&rst);
    // (Its checksum is over US -> PEER; recompute for PEER -> US.)
    echo[54 + 16..54 + 18].copy_from_slice(&[0, 0]);
    let c = Ipv6Addr::transport_checksum(&PEER, &US, 6, &echo[54..]);
    echo[54 + 16..54 + 18].copy_from_slice(&c.to_be_bytes());
    assert!(exchange_at(&mut s, Instant::from_millis(2), vec![echo]).is_empty());
    assert_eq!(s.stats.tcp.rsts_out, 1);
}

/// TCP to an IPv6 address not ours is not for us: counted, unanswered.
#[test]
fn an_ipv6_shard_drops_tcp_to_other_addresses() {
    let mut s = v6_server();
    let mut p = Peer::new(40_002);
    let mut syn = p.out(Instant::ZERO);
    // Another destination address (2001:db8::99), the checksum made right.
    let f = &mut syn[0];
    f[14 + 24 + 15] = 0x99;
    let other: Ipv6Addr = "2001:db8::99".parse().unwrap();
    f[54 + 16..54 + 18].copy_from_slice(&[0, 0]);
    let c = Ipv6Addr::transport_checksum(&PEER, &other, 6, &f[54..]);
    f[54 + 16..54 + 18].copy_from_slice(&c.to_be_bytes());
    assert!(exchange_at(&mut s, Instant::from_millis(1), syn).is_empty());
    assert_eq!(s.stats.dropped(DropReason::NotForUs), 1);
    assert_eq!(s.stats.drops.iter().sum::<u64>(), 1);
}

/// The load generator over IPv6, shard to shard (`Stack<Ipv6Addr>` both
/// ends, in memory): connections from a /120 of sources spread over its
/// addresses (every frame checked), each an HTTP request and its response,
/// no retransmission, no drop, no connection left.
#[test]
fn ipv6_generator_loads_an_ipv6_server() {
    use sluice::app::{ClientConfig, Request, http};
    use std::time::Duration;
    const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);
    let sources = Ipv6Range::prefix("2001:db8:1::".parse().unwrap(), 120).unwrap();
    let tcp = TcpConfig {
        mss: 1440,
        ..TcpConfig::default()
    };
    let mk = |mac, range: Ipv6Range| {
        let iface = Iface {
            ip_count: 0,
            ..Iface::new(mac, Ipv4Addr::UNSPECIFIED)
        }
        .with_ipv6(range);
        Stack::<Ipv6Addr>::new_family(StackConfig::new(iface, tcp.clone()), Instant::ZERO)
    };
    let mut server = mk(US_MAC, Ipv6Range::single(US));
    server.listen(SocketAddrV6::new(US, 80, 0, 0), ServerApp::http(100, 0));
    let mut client = mk(CLIENT_MAC, sources);
    client.add_neighbour(US, US_MAC);
    let cfg = ClientConfig {
        target: "0.0.0.0:80".parse().unwrap(),
        src_first: Ipv4Addr::UNSPECIFIED,
        src_count: 256,
        ports: (10_000, 10_003),
        connections: 64,
        requests: 1,
        cps: 0,
        rps: 0,
        echo: None,
        request_list: Request::only(
            http::request("[2001:db8::2]", "/", false),
            http::request("[2001:db8::2]", "/", false),
        ),
        think: Duration::ZERO,
        open_burst: 16,
    };
    let (mut cn, mut sn) = MemNic::pair(65_536);
    let mut now = Instant::from_millis(1);
    let open_for = Duration::from_millis(30);
    client.start_client_to(
        cfg,
        SocketAddrV6::new(US, 80, 0, 0),
        sources,
        now,
        open_for,
        Duration::ZERO,
    );
    let limit = now + open_for + Duration::from_secs(10);
    let mut sources_seen = std::collections::BTreeSet::new();
    while now < limit && (now < Instant::from_millis(1) + open_for || client.client_active() > 0) {
        client.poll(now, &mut cn as &mut dyn Nic);
        // The frames on the wire: every one an IPv6 TCP frame with a right
        // checksum, from the sources' range.
        let frames: Vec<Vec<u8>> = std::iter::from_fn(|| sn.rx.pop()).collect();
        for f in &frames {
            let t = parse_tcp6_frame(f, ChecksumMode::Verify).unwrap().unwrap();
            assert!(sources.owns(&t.src_addr), "{}", t.src_addr);
            sources_seen.insert(t.src_addr);
        }
        for f in frames {
            sn.rx.push(f).unwrap();
        }
        server.poll(now, &mut sn as &mut dyn Nic);
        now += Duration::from_micros(20);
    }
    let (c, s) = (&client.stats, &server.stats);
    assert!(c.opened > 100, "only {} connections", c.opened);
    assert_eq!(c.responses, c.opened, "a response per connection");
    assert_eq!(s.accepted, c.opened);
    assert_eq!(c.tcp.retransmits + s.tcp.retransmits, 0);
    assert_eq!(c.drops.iter().sum::<u64>() + s.drops.iter().sum::<u64>(), 0);
    assert!(sources_seen.len() > 1, "sources spread: {sources_seen:?}");
    assert_eq!(client.connections(), 0);
}

/// RFC 4861 7.2.2 and 7.2.5 at an IPv6 shard: asking for a neighbour sends
/// a Neighbor Solicitation to its solicited-node multicast address (with our
/// link-layer address, hop limit 255); the solicited advertisement is
/// learnt; an unsolicited one without Override teaches nothing.
#[test]
fn ipv6_neighbours_are_solicited_and_learnt() {
    let iface = Iface {
        ip_count: 0,
        ..Iface::new(PEER_MAC, Ipv4Addr::UNSPECIFIED)
    }
    .with_ipv6(Ipv6Range::single(PEER));
    let mut s =
        Stack::<Ipv6Addr>::new_family(StackConfig::new(iface, TcpConfig::default()), Instant::ZERO);
    let other: Ipv6Addr = "2001:db8::77".parse().unwrap();
    // Unasked, no Override: nothing learnt.
    let na = |target: Ipv6Addr, flags: NdFlags| {
        let m = Icmpv6Repr::NeighborAdvert {
            flags,
            target_addr: target,
            target_lladdr: Some(US_MAC),
        };
        let mut f = frame(PEER_MAC, PEER, Ipv6Payload::Icmp(m), 255);
        // From `target` to us (the helper writes PEER -> dst: swap the
        // addresses and the MACs, then fix the checksum).
        f[6..12].copy_from_slice(&US_MAC.0);
        f[0..6].copy_from_slice(&PEER_MAC.0);
        f[22..38].copy_from_slice(&target.octets());
        f[38..54].copy_from_slice(&PEER.octets());
        f[54 + 2..54 + 4].copy_from_slice(&[0, 0]);
        let c = Ipv6Addr::transport_checksum(&target, &PEER, 58, &f[54..]);
        f[54 + 2..54 + 4].copy_from_slice(&c.to_be_bytes());
        f
    };
    exchange_at(
        &mut s,
        Instant::from_millis(1),
        vec![na(other, NdFlags::SOLICITED)],
    );
    assert_eq!(s.neighbour(other), None, "not asked for");
    // Asked for: one NS out, to the solicited-node group.
    s.request_arp(US);
    let out = exchange_at(&mut s, Instant::from_millis(2), vec![]);
    assert_eq!(out.len(), 1);
    let Parsed::Ipv6(e, ip, Ipv6Payload::Icmp(m)) =
        parse_frame(&out[0], ChecksumMode::Verify).unwrap()
    else {
        panic!("an ICMPv6 frame");
    };
    assert_eq!(e.dst_addr, multicast_mac(&solicited_node(&US)));
    assert_eq!(ip.dst_addr, solicited_node(&US));
    assert_eq!((ip.src_addr, ip.hop_limit), (PEER, 255));
    assert_eq!(
        m,
        Icmpv6Repr::NeighborSolicit {
            target_addr: US,
            source_lladdr: Some(PEER_MAC),
        }
    );
    exchange_at(
        &mut s,
        Instant::from_millis(3),
        vec![na(US, NdFlags::SOLICITED)],
    );
    assert_eq!(s.neighbour(US), Some(US_MAC));
    assert_eq!(s.stats.neighbours_learned, 1);
}
