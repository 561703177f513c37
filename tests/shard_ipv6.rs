//! IPv6 at a shard (issue 14): an IPv4 stack with IPv6 addresses answers
//! Neighbor Solicitations and ICMPv6 echo requests through its responder and
//! counts the TCP it cannot take, and one without IPv6 counts IPv6 as the
//! other EtherType it was before; `Stack<Ipv6Addr>` runs TCP over IPv6
//! (HTTP, TIME_WAIT, RSTs, the generator, neighbours); a dual-stack shard
//! (`Stack::add_ipv6`) serves both families at once, alone and two shards a
//! side with steering; connections opened before their neighbour is known
//! wait for it.

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

// ---- A dual-stack shard: one IPv4 stack with an IPv6 half (`add_ipv6`) ----

const US4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const C4_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 4]);
const C6_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 6]);

/// One shard serving HTTP on 10.0.0.2:80 and [2001:db8::2]:80 (shard `i`
/// of `shards`), as `sluice server --ip 10.0.0.2 --ip 2001:db8::2` builds it.
fn dual_server(shard: u32, shards: u32) -> Stack {
    let iface = Iface::new(US_MAC, US4).with_ipv6(Ipv6Range::single(US));
    let cfg = |mss| {
        let mut c = StackConfig::new(
            iface,
            TcpConfig {
                mss,
                ..TcpConfig::default()
            },
        );
        (c.shard, c.shards) = (shard, shards);
        c
    };
    let mut s = Stack::new(cfg(1460), Instant::ZERO);
    s.listen(
        std::net::SocketAddrV4::new(US4, 80),
        ServerApp::http(100, 0),
    );
    let tcp6 = TcpConfig {
        mss: 1440,
        ..TcpConfig::default()
    };
    s.add_ipv6(tcp6, Instant::ZERO)
        .listen(SocketAddrV6::new(US, 80, 0, 0), ServerApp::http(100, 0));
    s
}

/// The generator's settings: `connections` at once, one request each
/// (`Connection: close` on the last: the server closes first).
fn dual_client_cfg(
    target: &str,
    host: &str,
    src_count: u32,
    ports: (u16, u16),
) -> sluice::app::ClientConfig {
    use sluice::app::{ClientConfig, Request, http};
    ClientConfig {
        target: target.parse().unwrap(),
        src_first: if target.starts_with("0.") {
            Ipv4Addr::UNSPECIFIED
        } else {
            Ipv4Addr::new(10, 1, 0, 0)
        },
        src_count,
        ports,
        connections: 32,
        requests: 1,
        cps: 0,
        rps: 0,
        echo: None,
        request_list: Request::only(
            http::request(host, "/", false),
            http::request(host, "/", true),
        ),
        think: std::time::Duration::ZERO,
        open_burst: 16,
    }
}

/// A TCP segment (checksum in it) of family `A` from `src` (MAC `smac`) to
/// `dst` (MAC `dmac`), in its Ethernet and IP headers.
fn frame_of<A: StackFamily>(
    smac: EthernetAddress,
    dmac: EthernetAddress,
    src: A,
    dst: A,
    seg: &[u8],
) -> Vec<u8> {
    let h = 14 + A::HEADER_LEN;
    let mut f = vec![0u8; h + seg.len()];
    let tail = sluice::wire::EthernetTail::new(&smac, A::ETHERTYPE);
    A::emit_tcp_headers(&mut f, &tail, &dmac, &src, &dst, seg.len(), 1);
    f[h..].copy_from_slice(seg);
    f
}

/// A SYN of family `A` from `src` to `dst`, framed.
fn syn_frame<A: StackFamily>(
    smac: EthernetAddress,
    src: A::SocketAddr,
    dst: A::SocketAddr,
) -> Vec<u8> {
    use sluice::wire::FamilySocketAddr;
    let cfg = TcpConfig::default();
    let mut c = Connection::connect(
        &cfg,
        FlowKey::<A>::new(src, dst),
        SeqNumber(7),
        Instant::ZERO,
    );
    let mut buf = vec![0u8; 256];
    let n = c
        .poll_transmit(Instant::ZERO, &cfg, &mut TcpStats::default(), &mut buf)
        .unwrap();
    frame_of::<A>(smac, US_MAC, src.host(), dst.host(), &buf[..n])
}

/// A link between one server NIC and two clients' NICs: the server's
/// frames go to the client their destination MAC names (broadcast and
/// multicast to both).
struct Switch {
    server: MemNic,
    clients: Vec<(EthernetAddress, MemNic)>,
}

impl Switch {
    /// Moves every waiting frame one hop; returns the server's frames.
    fn carry(&mut self) -> Vec<Vec<u8>> {
        for (_, c) in &self.clients {
            while let Some(f) = c.rx.pop() {
                self.server.tx.push(f).unwrap();
            }
        }
        let mut out = Vec::new();
        while let Some(f) = self.server.rx.pop() {
            let dst = EthernetAddress::from_bytes(&f[..6]);
            for (mac, c) in &self.clients {
                if dst == *mac || dst.is_multicast() {
                    c.tx.push(f.clone()).unwrap();
                }
            }
            out.push(f);
        }
        out
    }
}

/// Issue 14: ONE dual-stack server shard takes an IPv4 and an IPv6 load
/// generator at once (RFC 9293 3.5/3.6 over both families): every
/// connection an HTTP exchange, the server closing first and holding
/// TIME_WAIT in each family's table, the IPv6 half's frames counted there
/// and the sums (`total_stats`, `connections`, `time_wait_records`, the
/// state counts) over both; then RFC 9293 3.10.7.1: a SYN to a closed port
/// is answered with an RST of its own family.
#[test]
fn one_dual_stack_shard_serves_ipv4_and_ipv6_clients() {
    use std::net::SocketAddrV4;
    use std::time::Duration;
    let mut server = dual_server(0, 1);
    let mut c4 = Stack::new(
        StackConfig::new(
            {
                let mut i = Iface::new(C4_MAC, Ipv4Addr::new(10, 1, 0, 0));
                i.ip_count = 4;
                i
            },
            TcpConfig::default(),
        ),
        Instant::ZERO,
    );
    let sources = Ipv6Range::prefix("2001:db8:1::".parse().unwrap(), 124).unwrap();
    let mut c6 = Stack::<Ipv6Addr>::new_family(
        StackConfig::new(
            Iface {
                ip_count: 0,
                ..Iface::new(C6_MAC, Ipv4Addr::UNSPECIFIED)
            }
            .with_ipv6(sources),
            TcpConfig {
                mss: 1440,
                ..TcpConfig::default()
            },
        ),
        Instant::ZERO,
    );
    // The clients find the server's MAC by ARP and by Neighbor Solicitation.
    c4.request_arp(US4);
    c6.request_arp(US);
    let (sn, sp) = MemNic::pair(65_536);
    let (c4n, c4p) = MemNic::pair(65_536);
    let (c6n, c6p) = MemNic::pair(65_536);
    let mut sw = Switch {
        server: sp,
        clients: vec![(C4_MAC, c4p), (C6_MAC, c6p)],
    };
    let (mut sn, mut c4n, mut c6n) = (sn, c4n, c6n);
    let mut now = Instant::from_millis(1);
    // ARP and Neighbor Discovery first, both answered by the one shard.
    for _ in 0..3 {
        c4.poll(now, &mut c4n as &mut dyn Nic);
        c6.poll(now, &mut c6n as &mut dyn Nic);
        sw.carry();
        server.poll(now, &mut sn as &mut dyn Nic);
        sw.carry();
    }
    assert_eq!(c4.neighbour(US4), Some(US_MAC), "ARP answered");
    assert_eq!(c6.neighbour(US), Some(US_MAC), "NS answered");
    let open_for = Duration::from_millis(30);
    c4.start_client(
        dual_client_cfg("10.0.0.2:80", "10.0.0.2", 4, (20_000, 24_999)),
        now,
        open_for,
        Duration::ZERO,
    );
    c6.start_client_to(
        dual_client_cfg("0.0.0.0:80", "[2001:db8::2]", 16, (30_000, 31_999)),
        SocketAddrV6::new(US, 80, 0, 0),
        sources,
        now,
        open_for,
        Duration::ZERO,
    );
    let limit = now + open_for + Duration::from_secs(10);
    let (mut v4_frames, mut v6_frames) = (0u64, 0u64);
    let mut states_checked = false;
    while now < limit
        && (now < Instant::from_millis(1) + open_for || c4.client_active() + c6.client_active() > 0)
    {
        c4.poll(now, &mut c4n as &mut dyn Nic);
        c6.poll(now, &mut c6n as &mut dyn Nic);
        sw.carry();
        server.poll(now, &mut sn as &mut dyn Nic);
        for f in sw.carry() {
            match [f[12], f[13]] {
                [0x08, 0x00] => v4_frames += 1,
                [0x86, 0xdd] => v6_frames += 1,
                _ => {}
            }
        }
        if !states_checked
            && server.ipv6().unwrap().connections() > 0
            && server.connections() > server.ipv6().unwrap().connections()
        {
            // Both halves hold connections: the state counts walk both.
            server.count_states();
            let st = server.total_stats().states;
            let open: u64 =
                st.iter().sum::<u64>() - st[State::Listen as usize] - st[State::TimeWait as usize];
            assert_eq!(open as usize, server.connections());
            assert_eq!(st[State::Listen as usize], 2, "a listener in each half");
            // The same walked a few slots at a time (the live line's walk),
            // across the halves' boundary.
            let mut parts = [0u64; sluice::stats::STATES.len()];
            let (mut at, mut walks) = (0, 0);
            while let Some(next) = server.count_states_part(at, 7, &mut parts) {
                at = next;
                walks += 1;
            }
            server.set_state_counts(parts);
            assert_eq!(server.total_stats().states, st);
            assert!(walks > 1);
            states_checked = true;
        }
        now += Duration::from_micros(20);
    }
    assert!(states_checked, "both halves never held connections at once");
    let v6 = server.ipv6().unwrap();
    let (s4, s6) = (&server.stats, &v6.stats);
    for (c, s, what) in [(&c4.stats, s4, "IPv4"), (&c6.stats, s6, "IPv6")] {
        assert!(c.opened > 50, "{what}: only {} connections", c.opened);
        assert_eq!(c.responses, c.opened, "{what}: a response per connection");
        assert_eq!(
            s.accepted, c.opened,
            "{what}: each half accepts its own family"
        );
        assert_eq!(c.tcp.retransmits + s.tcp.retransmits, 0, "{what}");
        assert_eq!(
            c.drops.iter().sum::<u64>() + s.drops.iter().sum::<u64>(),
            0,
            "{what}"
        );
        assert!(
            s.rx_packets >= 3 * c.opened,
            "{what}: frames counted in its half"
        );
    }
    assert!(v4_frames > 0 && v6_frames > 0);
    // Every frame the server received is counted once, in one half.
    let total = server.total_stats();
    assert_eq!(total.rx_packets, c4.stats.tx_packets + c6.stats.tx_packets);
    assert_eq!(total.tx_packets, c4.stats.rx_packets + c6.stats.rx_packets);
    assert_eq!(total.accepted, c4.stats.opened + c6.stats.opened);
    // The server closed first: TIME_WAIT held in both tables, summed.
    let tw6 = v6.time_wait_records();
    assert!(tw6 > 0 && server.time_wait_records() > tw6);
    assert_eq!(server.time_wait_records() as u64, total.time_wait_entered);
    assert_eq!(server.connections(), 0);
    // A SYN to a closed port, one of each family: an RST of its family each.
    let syn4 = syn_frame::<Ipv4Addr>(
        C4_MAC,
        SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 9), 40_000),
        SocketAddrV4::new(US4, 81),
    );
    let syn6 = syn_frame::<Ipv6Addr>(
        C6_MAC,
        SocketAddrV6::new("2001:db8:1::9".parse().unwrap(), 40_000, 0, 0),
        SocketAddrV6::new(US, 81, 0, 0),
    );
    let rsts_before = (
        server.stats.tcp.rsts_out,
        server.ipv6().unwrap().stats.tcp.rsts_out,
    );
    let back = exchange_at(&mut server, now, vec![syn4, syn6]);
    assert_eq!(back.len(), 2, "{back:?}");
    let r4 = sluice::wire::parse_tcp_frame(&back[0], ChecksumMode::Verify)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r4.seg.control, r4.eth_dst, r4.seg.src_port),
        (TcpControl::Rst, C4_MAC, 81)
    );
    let r6 = parse_tcp6_frame(&back[1], ChecksumMode::Verify)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r6.seg.control, r6.eth_dst, r6.seg.src_port),
        (TcpControl::Rst, C6_MAC, 81)
    );
    assert_eq!(r6.dst_addr, "2001:db8:1::9".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        (
            server.stats.tcp.rsts_out,
            server.ipv6().unwrap().stats.tcp.rsts_out
        ),
        (rsts_before.0 + 1, rsts_before.1 + 1)
    );
}

/// Issue 14 item 2: two shards a side over IPv6 (and IPv4 beside it): two
/// IPv4 and two IPv6 generator shards against two dual-stack server shards,
/// only shard 0 of each side reading the link (a device without RSS). Each
/// shard opens only tuples it owns (by `flow_owner`, or by RSS: source
/// ports whose Toeplitz hash with the symmetric key lands on its queue) and
/// software steering hands every other frame, of either family, to its
/// owner: at the end no shard holds another's flow and no exchange is lost.
fn two_shards_both_families(own: sluice::shard::Ownership) {
    use sluice::shard::SteerQueues;
    use std::time::Duration;
    let shards = 2;
    let sources = Ipv6Range::prefix("2001:db8:1::".parse().unwrap(), 124).unwrap();
    let set = |c: &mut StackConfig, i: u32| {
        (c.shard, c.shards, c.ownership) = (i, shards, own.clone());
    };
    let mut servers: Vec<Stack> = (0..shards).map(|i| dual_server(i, shards)).collect();
    for s in servers.iter_mut() {
        s.cfg.ownership = own.clone();
        s.ipv6_mut().unwrap().cfg.ownership = own.clone();
    }
    let mut c4s: Vec<Stack> = (0..shards)
        .map(|i| {
            let mut iface = Iface::new(C4_MAC, Ipv4Addr::new(10, 1, 0, 0));
            iface.ip_count = 4;
            let mut c = StackConfig::new(iface, TcpConfig::default());
            set(&mut c, i);
            Stack::new(c, Instant::ZERO)
        })
        .collect();
    let mut c6s: Vec<Stack<Ipv6Addr>> = (0..shards)
        .map(|i| {
            let iface = Iface {
                ip_count: 0,
                ..Iface::new(C6_MAC, Ipv4Addr::UNSPECIFIED)
            }
            .with_ipv6(sources);
            let tcp = TcpConfig {
                mss: 1440,
                ..TcpConfig::default()
            };
            let mut c = StackConfig::new(iface, tcp);
            set(&mut c, i);
            Stack::<Ipv6Addr>::new_family(c, Instant::ZERO)
        })
        .collect();
    let q = SteerQueues::new(2, 4096);
    servers.iter_mut().for_each(|s| s.set_steering(q.clone()));
    let q = SteerQueues::new(2, 4096);
    c4s.iter_mut().for_each(|s| s.set_steering(q.clone()));
    let q = SteerQueues::new(2, 4096);
    c6s.iter_mut().for_each(|s| s.set_steering(q.clone()));
    for c in c4s.iter_mut() {
        c.add_neighbour(US4, US_MAC);
    }
    for c in c6s.iter_mut() {
        c.add_neighbour(US, US_MAC);
    }
    let (sn, sp) = MemNic::pair(65_536);
    let (c4n, c4p) = MemNic::pair(65_536);
    let (c6n, c6p) = MemNic::pair(65_536);
    let mut snics = [sn.tx_only(), sn];
    snics.swap(0, 1);
    let mut c4nics = [c4n.tx_only(), c4n];
    c4nics.swap(0, 1);
    let mut c6nics = [c6n.tx_only(), c6n];
    c6nics.swap(0, 1);
    let mut sw = Switch {
        server: sp,
        clients: vec![(C4_MAC, c4p), (C6_MAC, c6p)],
    };
    let mut now = Instant::from_millis(1);
    let open_for = Duration::from_millis(20);
    for c in c4s.iter_mut() {
        let cfg = dual_client_cfg("10.0.0.2:80", "10.0.0.2", 4, (20_000, 24_999));
        c.start_client(cfg, now, open_for, Duration::ZERO);
    }
    for c in c6s.iter_mut() {
        let cfg = dual_client_cfg("0.0.0.0:80", "[2001:db8::2]", 16, (30_000, 31_999));
        let target = SocketAddrV6::new(US, 80, 0, 0);
        c.start_client_to(cfg, target, sources, now, open_for, Duration::ZERO);
    }
    let limit = now + open_for + Duration::from_secs(10);
    let mut checked_open = false;
    let active = |c4s: &[Stack], c6s: &[Stack<Ipv6Addr>]| {
        c4s.iter().map(|c| c.client_active()).sum::<u32>()
            + c6s.iter().map(|c| c.client_active()).sum::<u32>()
    };
    let mut step = 0;
    while now < limit && (now < Instant::from_millis(1) + open_for || active(&c4s, &c6s) > 0) {
        for (c, n) in c4s.iter_mut().zip(c4nics.iter_mut()) {
            c.poll(now, n as &mut dyn Nic);
        }
        for (c, n) in c6s.iter_mut().zip(c6nics.iter_mut()) {
            c.poll(now, n as &mut dyn Nic);
        }
        sw.carry();
        for (s, n) in servers.iter_mut().zip(snics.iter_mut()) {
            s.poll(now, n as &mut dyn Nic);
        }
        sw.carry();
        if step == 300 {
            for s in &servers {
                assert!(s.ipv6().unwrap().connections() > 0, "an IPv6 half idle");
                assert!(s.owns_all_flows(), "a server shard holds another's flow");
            }
            for c in &c6s {
                assert!(c.connections() > 0 && c.owns_all_flows());
            }
            for c in &c4s {
                assert!(c.connections() > 0 && c.owns_all_flows());
            }
            checked_open = true;
        }
        step += 1;
        now += Duration::from_micros(20);
    }
    assert!(checked_open);
    let sum = |v: Vec<sluice::stats::ShardStats>| sluice::stats::ShardStats::sum(v.iter());
    let c4 = sum(c4s.iter().map(|c| c.stats).collect());
    let c6 = sum(c6s.iter().map(|c| c.stats).collect());
    let s6 = sum(servers.iter().map(|s| s.ipv6().unwrap().stats).collect());
    let s = sum(servers.iter().map(|s| s.total_stats()).collect());
    for (c, what) in [(&c4, "IPv4"), (&c6, "IPv6")] {
        assert!(c.opened > 50, "{what}: only {}", c.opened);
        assert_eq!(c.responses, c.opened, "{what}: none lost");
        assert_eq!(c.drops.iter().sum::<u64>(), 0, "{what}");
        assert!(
            c.steered_out > 0,
            "{what}: the clients' shard 1 flows came by steering"
        );
        assert_eq!(c.steered_out, c.steered_in, "{what}");
    }
    for c in &c6s {
        assert!(c.stats.opened > 0, "an IPv6 client shard opened nothing");
    }
    assert_eq!(s6.accepted, c6.opened);
    assert!(s6.steered_out > 0, "IPv6 frames steered at the server");
    assert_eq!(s.accepted, c4.opened + c6.opened);
    assert_eq!(s.steered_out, s.steered_in);
    assert_eq!(s.drops.iter().sum::<u64>(), 0, "{:?}", s.drops);
    assert_eq!(
        c4.tcp.retransmits + c6.tcp.retransmits + s.tcp.retransmits,
        0
    );
    for sv in &servers {
        assert!(sv.owns_all_flows());
        assert_eq!(sv.connections(), 0);
    }
}

#[test]
fn two_dual_stack_shards_steer_both_families_by_hash() {
    two_shards_both_families(sluice::shard::Ownership::Hash);
}

#[test]
fn two_dual_stack_shards_steer_both_families_by_rss() {
    use sluice::shard::rss::Reta;
    let reta = std::sync::Arc::new(Reta::round_robin(128, 2));
    two_shards_both_families(sluice::shard::Ownership::Rss(reta));
}

/// RFC 1122 2.3.2.2 and RFC 4861 7.2.2: a segment for a neighbour not yet
/// resolved waits for the resolution (it is not lost): connections the
/// generator opens before it knows the server's MAC ask for it once (one
/// Neighbor Solicitation for all of them, or one ARP request over IPv4) and
/// go out when the answer comes, every one completing.
#[test]
fn rfc4861_7_2_2_connections_opened_before_resolution_wait_for_it() {
    use std::time::Duration;
    let sources = Ipv6Range::prefix("2001:db8:1::".parse().unwrap(), 124).unwrap();
    let mut server = dual_server(0, 1);
    let mut c6 = Stack::<Ipv6Addr>::new_family(
        StackConfig::new(
            Iface {
                ip_count: 0,
                ..Iface::new(C6_MAC, Ipv4Addr::UNSPECIFIED)
            }
            .with_ipv6(sources),
            TcpConfig {
                mss: 1440,
                ..TcpConfig::default()
            },
        ),
        Instant::ZERO,
    );
    let mut c4 = Stack::new(
        StackConfig::new(
            {
                let mut i = Iface::new(C4_MAC, Ipv4Addr::new(10, 1, 0, 0));
                i.ip_count = 4;
                i
            },
            TcpConfig::default(),
        ),
        Instant::ZERO,
    );
    let (mut sn, sp) = MemNic::pair(65_536);
    let (mut c4n, c4p) = MemNic::pair(65_536);
    let (mut c6n, c6p) = MemNic::pair(65_536);
    let mut sw = Switch {
        server: sp,
        clients: vec![(C4_MAC, c4p), (C6_MAC, c6p)],
    };
    let mut now = Instant::from_millis(1);
    let open_for = Duration::from_millis(10);
    // No neighbour known, none asked for: the generators start at once.
    c4.start_client(
        dual_client_cfg("10.0.0.2:80", "10.0.0.2", 4, (20_000, 24_999)),
        now,
        open_for,
        Duration::ZERO,
    );
    c6.start_client_to(
        dual_client_cfg("0.0.0.0:80", "[2001:db8::2]", 16, (30_000, 31_999)),
        SocketAddrV6::new(US, 80, 0, 0),
        sources,
        now,
        open_for,
        Duration::ZERO,
    );
    let limit = now + Duration::from_secs(5);
    while now < limit
        && (now < Instant::from_millis(1) + open_for || c4.client_active() + c6.client_active() > 0)
    {
        c4.poll(now, &mut c4n as &mut dyn Nic);
        c6.poll(now, &mut c6n as &mut dyn Nic);
        sw.carry();
        server.poll(now, &mut sn as &mut dyn Nic);
        sw.carry();
        now += Duration::from_micros(20);
    }
    for (c, what) in [(&c4.stats, "IPv4"), (&c6.stats, "IPv6")] {
        assert!(c.opened >= 16, "{what}: {}", c.opened);
        assert_eq!(c.responses, c.opened, "{what}: every connection completed");
        assert_eq!(c.arp_requests_sent, 1, "{what}: asked for once");
        assert_eq!(c.neighbours_learned, 1, "{what}");
    }
    assert_eq!(c4.neighbour(US4), Some(US_MAC));
    assert_eq!(c6.neighbour(US), Some(US_MAC));
    assert_eq!(c4.connections() + c6.connections(), 0);
    assert!(now < limit, "the run ended");
}
