//! Issue 12 item 3: an idle connection costs its control block. Once both of
//! its rings are empty (and no out-of-order data sits past the receive
//! ring's length), the shard has the connection give their memory back to
//! the thread's pool (`Connection::release_idle_buffers`, after each drive);
//! data arriving later takes it again.

mod common;
use common::tcp::*;
use sluice::tcp::TcpConfig;
use std::time::Duration;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// One keep-alive request and its response, each read by its application.
fn request_response(p: &mut Pair) {
    assert_eq!(p.a.send(&p.cfg, REQUEST).unwrap(), REQUEST.len());
    p.exchange();
    let mut got = [0u8; 256];
    assert_eq!(p.b.recv(&p.cfg, &mut got), REQUEST.len());
    assert_eq!(p.b.send(&p.cfg, RESPONSE).unwrap(), RESPONSE.len());
    p.exchange();
    assert_eq!(p.a.recv(&p.cfg, &mut got), RESPONSE.len());
    settle(p);
    // What the shard does after driving each.
    p.a.release_idle_buffers();
    p.b.release_idle_buffers();
}

/// Time passes until the delayed ACKs are out and both sides' data is
/// acknowledged.
fn settle(p: &mut Pair) {
    for _ in 0..10 {
        p.advance(Duration::from_millis(500));
        if p.a.send_queued() == 0 && p.b.send_queued() == 0 {
            return;
        }
    }
    panic!("data left unacknowledged");
}

#[test]
fn keep_alive_connections_hold_no_buffer_between_requests() {
    // On a thread of its own: a pool of its own.
    std::thread::spawn(|| {
        let mut p = Pair::new(TcpConfig::default());
        p.handshake();
        assert_eq!((p.a.buffer_memory(), p.b.buffer_memory()), (0, 0));
        for i in 0..3 {
            request_response(&mut p);
            assert_eq!(
                (p.a.buffer_memory(), p.b.buffer_memory()),
                (0, 0),
                "request {i}: both idle ends gave their buffers back"
            );
        }
        // While a request is unacknowledged, or unread, it is held.
        p.a.send(&p.cfg, REQUEST).unwrap();
        p.a.release_idle_buffers();
        assert!(p.a.buffer_memory() > 0, "unacknowledged data is kept");
        settle(&mut p);
        p.a.release_idle_buffers();
        p.b.release_idle_buffers();
        assert_eq!(p.a.buffer_memory(), 0, "acknowledged: given back");
        assert!(p.b.buffer_memory() > 0, "received and not yet read");
        // One end busy both ways (its request read, its response unsent
        // and unacknowledged): kept.
        let mut got = [0u8; 256];
        p.b.recv(&p.cfg, &mut got);
        p.b.send(&p.cfg, RESPONSE).unwrap();
        p.b.release_idle_buffers();
        assert!(p.b.buffer_memory() > 0, "unacknowledged response kept");
    })
    .join()
    .unwrap();
}

/// Out-of-order data sits past the receive ring's length: reading the
/// in-order part must not give the ring back (the data past it would be
/// lost), and once the hole is filled and everything is read, it goes.
#[test]
fn out_of_order_data_keeps_the_receive_ring() {
    std::thread::spawn(|| {
        let mut p = Pair::new(TcpConfig::default());
        p.handshake();
        let mss = usize::from(p.cfg.mss);
        let data: Vec<u8> = (0..3 * mss).map(|i| (i % 251) as u8).collect();
        p.a.send(&p.cfg, &data).unwrap();
        let segs = drain(&mut p.a, p.now, &p.cfg);
        assert!(segs.len() >= 3, "{} segments", segs.len());
        // The first arrives, the second is lost, the rest arrive.
        deliver(&mut p.b, p.now, &p.cfg, &segs[0]);
        for s in &segs[2..] {
            deliver(&mut p.b, p.now, &p.cfg, s);
        }
        let first = segs[0].repr().payload.len();
        let mut got = vec![0u8; data.len()];
        assert_eq!(p.b.recv(&p.cfg, &mut got), first);
        p.b.release_idle_buffers();
        assert!(
            p.b.buffer_memory() > 0,
            "out-of-order data past the read part is kept"
        );
        deliver(&mut p.b, p.now, &p.cfg, &segs[1]);
        let rest = p.b.recv(&p.cfg, &mut got[first..]);
        assert_eq!(first + rest, data.len());
        assert_eq!(got, data, "every byte, in order");
        p.b.release_idle_buffers();
        assert_eq!(p.b.buffer_memory(), 0, "all read: given back");
    })
    .join()
    .unwrap();
}

// ---- The shard: connections idle in think time hold no buffers ----

use sluice::app::{ClientConfig, Request, ServerApp, http};
use sluice::shard::{Iface, MemNic, Nic, Stack, StackConfig};
use sluice::time::Instant;
use sluice::wire::EthernetAddress;
use std::net::{Ipv4Addr, SocketAddrV4};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 0);

/// A load-generator shard (sources from `CLIENT_IP`) and a server shard
/// (`SERVER_IP`, HTTP on port 80) that know each other's MAC.
fn shard_pair() -> (Stack, Stack) {
    let (smac, cmac) = (
        EthernetAddress([2, 0, 0, 0, 0, 2]),
        EthernetAddress([2, 0, 0, 0, 0, 1]),
    );
    let tcp = TcpConfig::default();
    let mut client = Stack::new(
        StackConfig::new(Iface::new(cmac, CLIENT_IP), tcp.clone()),
        Instant::ZERO,
    );
    client.add_neighbour(SERVER_IP, smac);
    let mut server = Stack::new(
        StackConfig::new(Iface::new(smac, SERVER_IP), tcp),
        Instant::ZERO,
    );
    server.listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(100, 0));
    (client, server)
}

#[test]
fn a_shards_connections_idle_in_think_time_hold_no_buffers() {
    std::thread::spawn(|| {
        let (mut client, mut server) = shard_pair();
        let target = SocketAddrV4::new(SERVER_IP, 80);
        let cfg = ClientConfig {
            target,
            src_first: CLIENT_IP,
            src_count: 1,
            ports: (10_000, 19_999),
            connections: 32,
            requests: 3,
            cps: 0,
            rps: 0,
            echo: None,
            request_list: Request::only(
                http::request("10.0.0.2", "/", false),
                http::request("10.0.0.2", "/", true),
            ),
            think: Duration::from_millis(500),
            open_burst: 32,
        };
        let (mut cn, mut sn) = MemNic::pair(4096);
        let mut now = Instant::from_millis(1);
        client.start_client(cfg, now, Duration::from_secs(10), Duration::ZERO);
        // Each connection's first request comes at a point spread over the
        // first think time (500 ms), the next ones 500 ms after each
        // response. An endpoint holds buffers only from its request until
        // the delayed ACK of its response (40 ms), so at any moment only a
        // few of the 64 do; kept buffers would make it all 64 once each has
        // been used (at least 64 x 256 B).
        let (mut busy, mut most_in_think) = (0, 0);
        while now < Instant::from_millis(2_100) {
            client.poll(now, &mut cn as &mut dyn Nic);
            server.poll(now, &mut sn as &mut dyn Nic);
            let held = client.buffer_memory() + server.buffer_memory();
            busy = busy.max(held);
            // Every connection has had its first request, and none its last.
            if now >= Instant::from_millis(600) && now < Instant::from_millis(1_000) {
                assert_eq!((client.connections(), server.connections()), (32, 32));
                most_in_think = most_in_think.max(held);
            }
            now += Duration::from_micros(100);
        }
        assert!(busy > 0, "buffers were taken while requests were in flight");
        assert!(
            most_in_think <= 8 * 512,
            "{most_in_think} B held by 64 endpoints mostly idle in think time"
        );
        // The closed loop keeps 32 open: past two responses each, new
        // connections follow those that made their three requests.
        assert!(client.stats.responses > 64, "{}", client.stats.responses);
    })
    .join()
    .unwrap();
}

// ---- Resident bytes per idle established endpoint (issue 12 item 3) ----

/// Resident memory of this process (VmRSS), in bytes.
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// What one more idle established connection endpoint costs in resident
/// memory, measured as `bench/scale.sh` does: a client shard opens N
/// keep-alive connections to a server shard (in memory) whose first request
/// waits out a long think time; the resident memory with all 2N endpoints
/// ESTABLISHED, less that with N/10 of them, over the endpoints added. What
/// each holds is its shard record (control block, application state, wheel
/// entry), its table index entry and, for a client, its think-time timer.
#[test]
fn resident_bytes_per_idle_established_endpoint() {
    std::thread::spawn(|| {
        const N: usize = 40_000;
        let (mut client, mut server) = shard_pair();
        let cfg = ClientConfig {
            target: SocketAddrV4::new(SERVER_IP, 80),
            src_first: CLIENT_IP,
            src_count: 1,
            ports: (10_000, 60_000),
            connections: N as u32,
            requests: 2,
            cps: 0,
            rps: 0,
            echo: None,
            request_list: Request::only(
                http::request("10.0.0.2", "/", false),
                http::request("10.0.0.2", "/", true),
            ),
            // Idle for the whole test (the first request comes at a point
            // spread over it).
            think: Duration::from_secs(100_000),
            open_burst: 64,
        };
        let (mut cn, mut sn) = MemNic::pair(4096);
        let mut now = Instant::from_millis(1);
        client.start_client(cfg, now, Duration::from_secs(1_000_000), Duration::ZERO);
        let established = |s: &mut Stack| {
            s.count_states();
            s.stats.states[sluice::tcp::State::Established as usize] as usize
        };
        let mut at_tenth = None;
        for turn in 0.. {
            client.poll(now, &mut cn as &mut dyn Nic);
            server.poll(now, &mut sn as &mut dyn Nic);
            now += Duration::from_micros(100);
            if turn % 64 != 0 {
                continue;
            }
            let (c, s) = (established(&mut client), established(&mut server));
            if at_tenth.is_none() && c.min(s) >= N / 10 {
                at_tenth = Some((c + s, rss()));
            }
            if c == N && s == N {
                break;
            }
            assert!(now < Instant::from_millis(600_000), "{c} + {s} established");
        }
        let (e0, r0) = at_tenth.unwrap();
        let (e1, r1) = (2 * N, rss());
        let per = (r1 as f64 - r0 as f64) / (e1 - e0) as f64;
        println!(
            "resident bytes per idle established endpoint: {per:.0} ({e0} -> {e1} endpoints, \
             RSS {:.1} -> {:.1} MiB)",
            r0 as f64 / 1048576.0,
            r1 as f64 / 1048576.0
        );
        assert_eq!((client.buffer_memory(), server.buffer_memory()), (0, 0));
        // Issue 12's target is 320 B. Measured: 279 B run alone (a 264 B
        // shard record in a 272 B slab slot, a 4 B index entry, slots kept
        // at the index's load, a 24 B wheel entry for a client), up to 294 B
        // beside this file's other tests (their memory is in the same
        // process's RSS); the bound leaves that room and no more, so an
        // endpoint that grows fails here.
        assert!(per <= 310.0, "{per:.0} B per idle endpoint");
    })
    .join()
    .unwrap();
}
