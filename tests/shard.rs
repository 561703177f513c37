//! The shard loop without DPDK: client and server stacks over the in-memory
//! link, in virtual time. HTTP connections complete, every close is counted,
//! TIME_WAIT records are kept, and with two shards per side each shard holds
//! only the flows it owns while none is lost.

use sluice::app::{ClientConfig, Request, ServerApp, http};
use sluice::shard::rss::Reta;
use sluice::shard::{Iface, MemNic, Nic, Ownership, Stack, StackConfig, SteerQueues, flow_owner};
use sluice::stats::ShardStats;
use sluice::tcp::{CloseReason, TcpConfig};
use sluice::time::Instant;
use sluice::wire::EthernetAddress;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 0);

fn client_cfg(connections: u32, requests: u32) -> ClientConfig {
    ClientConfig {
        target: SocketAddrV4::new(SERVER_IP, 80),
        src_first: CLIENT_IP,
        src_count: 4,
        ports: (10_000, 10_999),
        connections,
        requests,
        cps: 0,
        rps: 0,
        echo: None,
        request_list: Request::only(
            http::request("10.0.0.2", "/", false),
            http::request("10.0.0.2", "/", false),
        ),
        think: Duration::ZERO,
        open_burst: 16,
    }
}

fn stacks(shards: u32, tcp: &TcpConfig) -> (Vec<Stack>, Vec<Stack>) {
    stacks_owned(shards, tcp, Ownership::Hash)
}

fn stacks_owned(shards: u32, tcp: &TcpConfig, own: Ownership) -> (Vec<Stack>, Vec<Stack>) {
    let now = Instant::ZERO;
    let mk = |mac, ip, count, shard| {
        let mut iface = Iface::new(mac, ip);
        iface.ip_count = count;
        let mut c = StackConfig::new(iface, tcp.clone());
        c.shard = shard;
        c.shards = shards;
        c.ownership = own.clone();
        c.capacity = 100_000;
        Stack::new(c, now)
    };
    let mut clients: Vec<Stack> = (0..shards)
        .map(|i| mk(CLIENT_MAC, CLIENT_IP, 4, i))
        .collect();
    let mut servers: Vec<Stack> = (0..shards)
        .map(|i| mk(SERVER_MAC, SERVER_IP, 1, i))
        .collect();
    for side in [&mut clients, &mut servers] {
        let queues = SteerQueues::new(shards as usize, 4096);
        for s in side.iter_mut() {
            s.set_steering(queues.clone());
        }
    }
    for c in clients.iter_mut() {
        c.add_neighbour(SERVER_IP, SERVER_MAC);
    }
    for s in servers.iter_mut() {
        s.listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(100, 0));
    }
    (clients, servers)
}

/// Runs until every client connection has ended (or a virtual-time limit).
fn run(clients: &mut [Stack], servers: &mut [Stack], open_for: Duration) -> Instant {
    let (cn, sn) = MemNic::pair(65_536);
    let mut cnics: Vec<MemNic> = vec![cn];
    let mut snics: Vec<MemNic> = vec![sn];
    for _ in 1..clients.len() {
        let c = cnics[0].tx_only();
        cnics.push(c);
        let s = snics[0].tx_only();
        snics.push(s);
    }
    let mut now = Instant::from_millis(1);
    for c in clients.iter_mut() {
        c.start_client(client_cfg(64, 1), now, open_for, Duration::ZERO);
    }
    let limit = now + open_for + Duration::from_secs(30);
    loop {
        for (s, n) in clients.iter_mut().zip(cnics.iter_mut()) {
            s.poll(now, n as &mut dyn Nic);
        }
        for (s, n) in servers.iter_mut().zip(snics.iter_mut()) {
            s.poll(now, n as &mut dyn Nic);
        }
        now += Duration::from_micros(20);
        let active: u32 = clients.iter().map(|c| c.client_active()).sum();
        if now > limit || (now > Instant::from_millis(1) + open_for && active == 0) {
            break;
        }
    }
    now
}

fn total(v: &[Stack]) -> ShardStats {
    ShardStats::sum(v.iter().map(|s| &s.stats))
}

#[test]
fn http_connections_complete_over_one_shard_each() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    run(&mut clients, &mut servers, Duration::from_millis(50));
    let c = total(&clients);
    let s = total(&servers);
    eprintln!(
        "opened {} responses {} closed normal {} client TW {} retransmits {}",
        c.opened,
        c.responses,
        c.closed_by(CloseReason::Normal),
        clients[0].time_wait_records(),
        c.tcp.retransmits
    );
    assert!(c.opened > 100, "only {} connections", c.opened);
    assert_eq!(c.responses, c.opened, "every connection got its response");
    assert_eq!(c.requests_sent, c.opened);
    assert_eq!(s.responses, c.opened);
    assert_eq!(s.accepted, c.opened);
    assert_eq!(c.app_errors + s.app_errors + c.non_2xx, 0);
    assert_eq!(c.abnormal_closes() + s.abnormal_closes(), 0);
    assert_eq!(c.closed_by(CloseReason::Normal), c.opened);
    assert_eq!(s.closed_by(CloseReason::Normal), c.opened);
    // The client closed first: it holds TIME_WAIT (2MSL = 60 s) for every one.
    assert_eq!(clients[0].time_wait_records() as u64, c.opened);
    assert_eq!(clients[0].connections(), 0);
    assert_eq!(servers[0].connections(), 0);
    assert_eq!(clients[0].latency.connect.len(), c.opened);
    assert_eq!(clients[0].latency.request.len(), c.opened);
    assert_eq!(c.tcp.retransmits + s.tcp.retransmits, 0, "a lossless link");
}

/// A client whose TIME_WAIT record table holds 8: its other connections close
/// without a record, counted as refused and not as entered, and none is left
/// behind in the connection table.
#[test]
fn time_wait_records_refused_when_full_are_counted_not_leaked() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let mut cfg = clients[0].cfg.clone();
    cfg.time_wait_capacity = 8;
    clients[0] = Stack::new(cfg, Instant::ZERO);
    clients[0].add_neighbour(SERVER_IP, SERVER_MAC);
    run(&mut clients, &mut servers, Duration::from_millis(20));
    let c = total(&clients);
    let s = total(&servers);
    assert!(c.opened > 8, "only {} connections", c.opened);
    assert_eq!(c.responses, c.opened);
    assert_eq!(clients[0].time_wait_records(), 8);
    assert_eq!(c.time_wait_entered, 8);
    assert_eq!(c.time_wait_refused, c.opened - 8);
    assert_eq!(c.closed_by(CloseReason::Normal), c.opened);
    assert_eq!(c.abnormal_closes() + s.abnormal_closes(), 0);
    assert_eq!(clients[0].connections(), 0, "no connection left behind");
    assert_eq!(clients[0].client_active(), 0);
    assert_eq!(servers[0].connections(), 0);
}

#[test]
fn keep_alive_requests_share_connections() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let (cn, sn) = MemNic::pair(65_536);
    let (mut cn, mut sn) = (cn, sn);
    let mut now = Instant::from_millis(1);
    clients[0].start_client(
        client_cfg(8, 50),
        now,
        Duration::from_millis(5),
        Duration::ZERO,
    );
    for _ in 0..200_000 {
        clients[0].poll(now, &mut cn);
        servers[0].poll(now, &mut sn);
        now += Duration::from_micros(10);
        if now > Instant::from_millis(10) && clients[0].client_active() == 0 {
            break;
        }
    }
    let c = &clients[0].stats;
    assert!(c.opened >= 8);
    // Up to 50 requests each; at the end of the run a connection finishes its
    // request and closes, so the last ones carry fewer.
    assert!(
        c.responses > c.opened * 25,
        "{} for {}",
        c.responses,
        c.opened
    );
    assert!(c.responses <= c.opened * 50);
    assert_eq!(c.responses, c.requests_sent, "every request answered");
    assert_eq!(c.completed, c.opened);
    assert_eq!(servers[0].stats.responses, c.responses);
    assert_eq!(c.app_errors + c.abnormal_closes(), 0);
}

#[test]
fn two_shards_own_their_flows_and_lose_none() {
    two_shards(Ownership::Hash);
}

/// Ownership by RSS (Toeplitz with the symmetric key, a round-robin
/// redirection table): the clients choose source ports whose replies hash to
/// their own queue, and both directions of a flow agree.
#[test]
fn two_shards_with_rss_ownership() {
    two_shards(Ownership::Rss(Arc::new(Reta::round_robin(128, 2))));
}

fn two_shards(own: Ownership) {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks_owned(2, &tcp, own);
    // Stop half-way through once to look at the tables with connections open.
    let (cn, sn) = MemNic::pair(65_536);
    let (ct, st) = (cn.tx_only(), sn.tx_only());
    let mut cnics = [cn, ct];
    let mut snics = [sn, st];
    let mut now = Instant::from_millis(1);
    for c in clients.iter_mut() {
        c.start_client(
            client_cfg(32, 3),
            now,
            Duration::from_millis(40),
            Duration::ZERO,
        );
    }
    let mut checked_open = false;
    for step in 0..400_000 {
        for (s, n) in clients.iter_mut().zip(cnics.iter_mut()) {
            s.poll(now, n as &mut dyn Nic);
        }
        for (s, n) in servers.iter_mut().zip(snics.iter_mut()) {
            s.poll(now, n as &mut dyn Nic);
        }
        if step == 300 {
            for s in clients.iter().chain(servers.iter()) {
                assert!(s.connections() > 0);
                assert!(s.owns_all_flows(), "a shard holds another's flow");
            }
            checked_open = true;
        }
        now += Duration::from_micros(20);
        let active: u32 = clients.iter().map(|c| c.client_active()).sum();
        if now > Instant::from_millis(41) && active == 0 {
            break;
        }
    }
    assert!(checked_open);
    let c = total(&clients);
    let s = total(&servers);
    eprintln!(
        "opened {} (per shard {:?}); steered client {} server {}",
        c.opened,
        clients.iter().map(|x| x.stats.opened).collect::<Vec<_>>(),
        c.steered_out,
        s.steered_out
    );
    for (i, x) in clients.iter().chain(servers.iter()).enumerate() {
        assert!(
            x.stats.opened + x.stats.accepted > 0,
            "shard {i} did nothing"
        );
        assert!(x.owns_all_flows());
    }
    // Only shard 0 receives from the link: shard 1's flows came by steering.
    assert!(c.steered_out > 0 && s.steered_out > 0);
    assert_eq!(c.steered_out, c.steered_in);
    assert_eq!(s.steered_out, s.steered_in);
    assert_eq!(c.responses, c.opened * 3, "none lost");
    assert_eq!(s.accepted, c.opened);
    assert_eq!(
        c.app_errors + s.app_errors + c.abnormal_closes() + s.abnormal_closes(),
        0
    );
    assert_eq!(c.tcp.retransmits + s.tcp.retransmits, 0);
}

#[test]
fn server_closes_first_on_connection_close_and_holds_time_wait() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let (mut cn, mut sn) = MemNic::pair(65_536);
    let mut now = Instant::from_millis(1);
    let mut cfg = client_cfg(16, 1);
    cfg.request_list = Request::only(
        http::request("10.0.0.2", "/", false),
        http::request("10.0.0.2", "/", true),
    );
    clients[0].start_client(cfg, now, Duration::from_millis(20), Duration::ZERO);
    for _ in 0..100_000 {
        clients[0].poll(now, &mut cn);
        servers[0].poll(now, &mut sn);
        now += Duration::from_micros(10);
        if now > Instant::from_millis(21) && clients[0].client_active() == 0 {
            break;
        }
    }
    let c = &clients[0].stats;
    let s = &servers[0].stats;
    assert!(c.opened > 100);
    assert_eq!(c.completed, c.opened);
    assert_eq!(c.app_errors + c.abnormal_closes() + s.abnormal_closes(), 0);
    assert_eq!(s.time_wait_entered, c.opened);
    assert_eq!(clients[0].time_wait_records(), 0);
    // 4 addresses × 1000 ports: past 4000 connections the client reuses
    // 4-tuples the server still holds in TIME_WAIT, which a newer timestamp
    // reopens (RFC 6191) — one record per 4-tuple.
    assert!(c.opened > 4000, "{}", c.opened);
    assert_eq!(servers[0].time_wait_records(), 4000);
    // SYN, SYN-ACK, ACK+request, response+FIN, FIN+ACK, ACK: six segments.
    assert_eq!(c.tx_packets + s.tx_packets, 6 * c.opened);
}

/// Raw echo: 3000-byte requests (more than one segment) come back byte for
/// byte from the echo server, 5 per connection.
#[test]
fn echo_payloads_come_back_exactly() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    servers[0].listen(SocketAddrV4::new(SERVER_IP, 7), ServerApp::Echo);
    let (mut cn, mut sn) = MemNic::pair(65_536);
    let mut now = Instant::from_millis(1);
    let mut cfg = client_cfg(8, 5);
    cfg.target = SocketAddrV4::new(SERVER_IP, 7);
    cfg.echo = Some(3000);
    let req: Vec<u8> = (0..3000).map(sluice::app::echo_byte).collect();
    cfg.request_list = Request::only(req.clone(), req);
    clients[0].start_client(cfg, now, Duration::from_millis(10), Duration::ZERO);
    for _ in 0..100_000 {
        clients[0].poll(now, &mut cn);
        servers[0].poll(now, &mut sn);
        now += Duration::from_micros(10);
        if now > Instant::from_millis(11) && clients[0].client_active() == 0 {
            break;
        }
    }
    let c = &clients[0].stats;
    assert!(c.opened >= 8);
    assert_eq!(c.responses, c.requests_sent);
    assert_eq!(c.completed, c.opened);
    assert_eq!(c.app_errors + c.abnormal_closes(), 0, "{c:?}");
    assert!(c.rx_bytes > c.responses * 3000);
}

#[test]
fn flow_owner_is_symmetric_and_spread() {
    let a = SocketAddrV4::new(SERVER_IP, 80);
    let mut per = [0u32; 4];
    for port in 1000..5000 {
        let b = SocketAddrV4::new(CLIENT_IP, port);
        let o = flow_owner(a, b, 4);
        assert_eq!(o, flow_owner(b, a, 4));
        per[o as usize] += 1;
    }
    assert!(per.iter().all(|&n| n > 800), "{per:?}");
}

/// Runs a client and a server shard over an in-memory link in 10 µs steps
/// until the client's 100 ms load is done, the server not polled from
/// `stall.0` to `stall.1` ms.
fn run_with_stall(client: &mut Stack, server: &mut Stack, stall: (u64, u64)) {
    let (mut cn, mut sn) = MemNic::pair(65_536);
    let mut now = Instant::from_millis(1);
    let stall = (Instant::from_millis(stall.0), Instant::from_millis(stall.1));
    loop {
        client.poll(now, &mut cn);
        if now < stall.0 || now >= stall.1 {
            server.poll(now, &mut sn);
        }
        now += Duration::from_micros(10);
        if now > Instant::from_millis(102) && client.client_active() == 0 {
            break;
        }
        assert!(now < Instant::from_millis(5_000), "run did not end");
    }
}

/// Open loop: connections are due at a fixed rate and latency counts from
/// when each was due. A server that stops for 30 ms must show up as ~30 ms
/// in the histogram (a closed loop would just send less and hide it).
#[test]
fn open_loop_latency_counts_from_the_schedule() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let now = Instant::from_millis(1);
    let mut cfg = client_cfg(10_000, 1);
    cfg.cps = 20_000; // one every 50 µs
    clients[0].start_client(cfg, now, Duration::from_millis(100), Duration::ZERO);
    run_with_stall(&mut clients[0], &mut servers[0], (40, 70));
    let c = &clients[0].stats;
    // 100 ms at 20k/s: ~2000 connections due, all opened on schedule.
    assert!((1990..=2010).contains(&c.opened), "{}", c.opened);
    assert_eq!(c.completed, c.opened);
    assert_eq!(c.app_errors + c.abnormal_closes(), 0);
    let h = &clients[0].latency.request;
    let ms = |v: u64| v as f64 / 1e6;
    let p50 = ms(h.value_at_quantile(0.5));
    let max = ms(h.max());
    eprintln!(
        "open loop: p50 {p50:.3} ms, p90 {:.3} ms, max {max:.3} ms",
        ms(h.value_at_quantile(0.9))
    );
    assert!(p50 < 1.0, "p50 {p50} ms");
    // The first connection due in the stall waited for all of it.
    assert!((29.0..40.0).contains(&max), "max {max} ms");
    // About 30% of connections were due during the stall (30 of 100 ms) and
    // waited on average half of it: p90 sits well inside the stall.
    assert!(ms(h.value_at_quantile(0.9)) > 10.0);
}

/// `--rps` (wrk2's -R): requests due at a fixed rate over keep-alive
/// connections; a 20 ms server stall shows in the latency of the requests
/// that were due during it, and the rate is kept.
#[test]
fn open_loop_requests_count_from_the_schedule() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let now = Instant::from_millis(1);
    let mut cfg = client_cfg(32, u32::MAX);
    cfg.rps = 10_000; // one every 100 µs
    clients[0].start_client(cfg, now, Duration::from_millis(100), Duration::ZERO);
    run_with_stall(&mut clients[0], &mut servers[0], (50, 70));
    let c = &clients[0].stats;
    assert_eq!(c.opened, 32, "keep-alive: the connections stay");
    assert!(
        (990..=1001).contains(&c.responses),
        "{} responses",
        c.responses
    );
    assert_eq!(c.responses, c.requests_sent);
    assert_eq!(c.completed, 32);
    assert_eq!(c.app_errors + c.abnormal_closes(), 0);
    let h = &clients[0].latency.request;
    let ms = |v: u64| v as f64 / 1e6;
    eprintln!(
        "rps open loop: p50 {:.3} ms, p90 {:.3} ms, max {:.3} ms",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.max())
    );
    assert!(ms(h.value_at_quantile(0.5)) < 1.0);
    assert!((19.0..30.0).contains(&ms(h.max())), "max {}", ms(h.max()));
}

/// A link end that loses, duplicates and reorders what it sends (seeded).
struct Lossy {
    inner: MemNic,
    rng: u64,
    /// Per mille: lost, duplicated, held back (sent after the next frame).
    loss: u64,
    dup: u64,
    hold: u64,
    held: Option<Vec<u8>>,
    buf: Vec<u8>,
    lost: u64,
}

impl Lossy {
    fn new(inner: MemNic, seed: u64, loss: u64) -> Lossy {
        Lossy {
            inner,
            rng: seed | 1,
            loss,
            dup: loss / 2,
            hold: loss,
            held: None,
            buf: vec![0; 4096],
            lost: 0,
        }
    }
    fn roll(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 1000
    }
    fn put(&mut self, f: &[u8]) {
        let _ = self.inner.tx(f.len(), &mut |b| {
            b[..f.len()].copy_from_slice(f);
            f.len()
        });
    }
}

impl Nic for Lossy {
    fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        self.inner.rx(f)
    }
    fn tx_buf(&mut self, max: usize) -> Option<&mut [u8]> {
        Some(&mut self.buf[..max])
    }
    fn tx_commit(&mut self, n: usize) {
        // A 1500-byte link: a longer frame would be dropped on a real one (an
        // af_packet socket discards it without a trace).
        assert!(n <= 1514, "a {n}-byte frame exceeds a 1500-byte MTU");
        let f = self.buf[..n].to_vec();
        let r = self.roll();
        if r < self.loss {
            self.lost += 1;
        } else if r < self.loss + self.hold && self.held.is_none() {
            self.held = Some(f);
        } else {
            self.put(&f);
            if r < self.loss + self.hold + self.dup {
                self.put(&f);
            }
            if let Some(h) = self.held.take() {
                self.put(&h); // after a later frame: reordered
            }
        }
    }
    fn flush(&mut self) -> u64 {
        if let Some(h) = self.held.take() {
            self.put(&h);
        }
        self.inner.flush()
    }
    fn tx_pending(&self) -> usize {
        self.inner.tx_pending()
    }
}

/// The whole shard (demux, timers, TIME_WAIT, applications) over a link
/// that loses 2 % of frames, duplicates 1 % and reorders 2 %, both ways (and
/// 5 / 2.5 / 5 % for half the seeds):
/// HTTP and 20 KB echo exchanges all complete, byte-exact, every connection
/// ends normally on both sides, and retransmissions did the work.
#[test]
fn http_and_echo_complete_over_a_lossy_link() {
    for seed in 1..=16u64 {
        // 2 % loss for the first eight seeds, 5 % for the rest.
        let loss = if seed <= 8 { 20 } else { 50 };
        let tcp = TcpConfig::default();
        let (mut clients, mut servers) = stacks(1, &tcp);
        servers[0].listen(SocketAddrV4::new(SERVER_IP, 7), ServerApp::Echo);
        let (cn, sn) = MemNic::pair(65_536);
        let (mut cn, mut sn) = (
            Lossy::new(cn, seed * 7919, loss),
            Lossy::new(sn, seed * 104_729, loss),
        );
        let mut now = Instant::from_millis(1);
        let mut cfg = client_cfg(16, 3);
        if seed % 2 == 0 {
            cfg.target = SocketAddrV4::new(SERVER_IP, 7);
            cfg.echo = Some(20_000);
            let req: Vec<u8> = (0..20_000).map(sluice::app::echo_byte).collect();
            cfg.request_list = Request::only(req.clone(), req);
        }
        clients[0].start_client(cfg, now, Duration::from_millis(200), Duration::ZERO);
        let limit = Instant::from_millis(120_000);
        while now < limit {
            clients[0].poll(now, &mut cn);
            servers[0].poll(now, &mut sn);
            now += Duration::from_micros(50);
            if now > Instant::from_millis(201) && clients[0].client_active() == 0 {
                break;
            }
        }
        // Let the server finish its side (last ACKs, FIN retransmissions).
        let until = now + Duration::from_secs(30);
        while now < until && servers[0].connections() > 0 {
            clients[0].poll(now, &mut cn);
            servers[0].poll(now, &mut sn);
            now += Duration::from_micros(500);
        }
        let (c, s) = (&clients[0].stats, &servers[0].stats);
        let what = format!(
            "seed {seed}: client {:?} server {:?}",
            c.closes_map(),
            s.closes_map()
        );
        eprintln!(
            "seed {seed}: {} connections, {} responses, frames lost {}, retransmits {}, {:.1} s virtual",
            c.opened,
            c.responses,
            cn.lost + sn.lost,
            c.tcp.retransmits + s.tcp.retransmits,
            now.as_millis() as f64 / 1000.0
        );
        assert!(cn.lost + sn.lost > 10, "the link lost frames ({what})");
        assert!(c.tcp.retransmits + s.tcp.retransmits > 0, "{what}");
        assert!(c.opened >= 16, "{what}");
        assert_eq!(c.completed, c.opened, "{what}");
        assert_eq!(c.responses, c.requests_sent, "{what}");
        assert_eq!(c.app_errors + c.non_2xx + s.app_errors, 0, "{what}");
        assert_eq!(c.abnormal_closes(), 0, "{what}");
        assert_eq!(s.abnormal_closes(), 0, "{what}");
        assert_eq!(
            servers[0].connections(),
            0,
            "server side all ended ({what})"
        );
    }
}

// ---- Bad input from the wire: frames built by hand, fed to one server shard ----

use sluice::wire::{
    EtherType, EthernetRepr, IpProtocol, Ipv4Repr, Parsed, SeqNumber, TcpControl, TcpRepr,
    emit_frame,
};

const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

/// A server shard listening on port 80 of SERVER_IP, with no neighbours.
fn lone_server(tcp: &TcpConfig) -> Stack {
    let mut c = StackConfig::new(Iface::new(SERVER_MAC, SERVER_IP), tcp.clone());
    c.capacity = 1024;
    let mut s = Stack::new(c, Instant::ZERO);
    s.listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(100, 0));
    s
}

/// `seg` from `src` to `dst` in an Ethernet frame from `eth_src` to `eth_dst`.
fn tcp_frame(
    eth_src: EthernetAddress,
    eth_dst: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: &TcpRepr,
) -> Vec<u8> {
    let e = EthernetRepr {
        src_addr: eth_src,
        dst_addr: eth_dst,
        ethertype: EtherType::Ipv4,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: seg.buffer_len(),
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
    };
    let mut out = vec![0u8; 1514];
    let n = emit_frame(&Parsed::Tcp(e, ip, *seg), &mut out);
    out.truncate(n);
    out
}

fn syn_to_80(port: u16) -> TcpRepr<'static> {
    TcpRepr {
        src_port: port,
        dst_port: 80,
        seq_number: SeqNumber(1000),
        control: TcpControl::Syn,
        window_len: 65535,
        max_seg_size: Some(1460),
        ..TcpRepr::default()
    }
}

/// Drops counted under `reason` (0 for a reason that does not exist yet).
fn dropped(s: &Stack, reason: &str) -> u64 {
    s.stats.drops_map().get(reason).copied().unwrap_or(0)
}

/// Feeds `frames` to `s` and runs one turn; returns the frames it sent.
fn feed(s: &mut Stack, now: Instant, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let (mut ours, mut peer) = MemNic::pair(1024);
    for f in frames {
        let _ = peer.tx(f.len(), &mut |b| {
            b[..f.len()].copy_from_slice(f);
            f.len()
        });
    }
    peer.flush();
    // A turn takes one burst: turn until all are in.
    while s.poll(now, &mut ours) > 0 {}
    let mut out = Vec::new();
    while peer.rx(&mut |f| out.push(f.to_vec())) > 0 {}
    out
}

/// RFC 1122 4.2.3.10 and 3.2.1.3: a SYN whose source address is broadcast,
/// multicast, unspecified, loopback, reserved (class E) or our own address
/// cannot come from a real peer; it must be silently discarded — no SYN-ACK,
/// no connection — and sluice counts it.
#[test]
fn rfc1122_4_2_3_10_syn_from_invalid_source_dropped() {
    let tcp = TcpConfig::default();
    let mut s = lone_server(&tcp);
    let bad = [
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(239, 255, 255, 250),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(240, 0, 0, 1),
        SERVER_IP,
    ];
    let frames: Vec<Vec<u8>> = bad
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            tcp_frame(
                PEER_MAC,
                SERVER_MAC,
                *ip,
                SERVER_IP,
                &syn_to_80(4000 + i as u16),
            )
        })
        .collect();
    let sent = feed(&mut s, Instant::from_millis(1), &frames);
    assert_eq!(sent.len(), 0, "nothing answered");
    assert_eq!(s.connections(), 0, "no connection opened");
    assert_eq!(
        dropped(&s, "bad_source"),
        bad.len() as u64,
        "{:?}",
        s.stats.drops_map()
    );
    // A good source still gets its SYN-ACK.
    let good = tcp_frame(PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &syn_to_80(5000));
    let sent = feed(&mut s, Instant::from_millis(2), &[good]);
    assert_eq!(sent.len(), 1);
    assert_eq!(s.connections(), 1);
}

/// RFC 1122 3.3.6: a datagram that arrived in a link-layer broadcast (or
/// multicast) frame but names a unicast IP destination should be silently
/// discarded: sluice counts it and answers nothing.
#[test]
fn rfc1122_3_3_6_unicast_ip_in_link_broadcast_dropped() {
    let tcp = TcpConfig::default();
    let mut s = lone_server(&tcp);
    let frames = [
        tcp_frame(
            PEER_MAC,
            EthernetAddress::BROADCAST,
            PEER_IP,
            SERVER_IP,
            &syn_to_80(4000),
        ),
        tcp_frame(
            PEER_MAC,
            EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]),
            PEER_IP,
            SERVER_IP,
            &syn_to_80(4001),
        ),
    ];
    let sent = feed(&mut s, Instant::from_millis(1), &frames);
    assert_eq!(sent.len(), 0);
    assert_eq!(s.connections(), 0);
    assert_eq!(
        dropped(&s, "link_broadcast"),
        2,
        "{:?}",
        s.stats.drops_map()
    );
}

// ---- The neighbour table (issue 13, item 8) ----

use sluice::wire::{ArpOperation, ArpRepr, EthernetFrame};

const ATTACKER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x66]);

/// An ARP packet from `eth_src` (to `eth_dst`).
fn arp_frame(
    op: ArpOperation,
    eth_src: EthernetAddress,
    eth_dst: EthernetAddress,
    sender: Ipv4Addr,
    target: Ipv4Addr,
) -> Vec<u8> {
    let e = EthernetRepr {
        src_addr: eth_src,
        dst_addr: eth_dst,
        ethertype: EtherType::Arp,
    };
    let a = ArpRepr {
        operation: op,
        source_hardware_addr: eth_src,
        source_protocol_addr: sender,
        target_hardware_addr: if op == ArpOperation::Reply {
            eth_dst
        } else {
            EthernetAddress([0; 6])
        },
        target_protocol_addr: target,
    };
    let mut out = vec![0u8; 60];
    let n = emit_frame(&Parsed::Arp(e, a), &mut out);
    out.truncate(n.max(60));
    out
}

fn arp_requests_in(frames: &[Vec<u8>]) -> Vec<Ipv4Addr> {
    frames
        .iter()
        .filter_map(|f| match sluice::wire::parse_frame(f, Default::default()) {
            Ok(Parsed::Arp(_, a)) if a.operation == ArpOperation::Request => {
                Some(a.target_protocol_addr)
            }
            _ => None,
        })
        .collect()
}

/// A SYN is no proof of who owns an address: one spoofed SYN must not rebind
/// a known host's address to the sender's MAC, nor a flood of them fill the
/// table. Learning is ARP's (RFC 826), and even then only from answers to our
/// own requests and from requests addressed to us (what Linux does).
#[test]
fn spoofed_syns_neither_rebind_nor_fill_the_neighbour_table() {
    let tcp = TcpConfig::default();
    let mut s = lone_server(&tcp);
    // The peer asks for us: we answer, and know it (as Linux does).
    let who_has = arp_frame(
        ArpOperation::Request,
        PEER_MAC,
        EthernetAddress::BROADCAST,
        PEER_IP,
        SERVER_IP,
    );
    let sent = feed(&mut s, Instant::from_millis(1), &[who_has]);
    assert_eq!(sent.len(), 1, "the ARP request is answered");
    assert_eq!(s.neighbour(PEER_IP), Some(PEER_MAC));
    // A spoofed SYN from the peer's address does not move it.
    let spoofed = tcp_frame(
        ATTACKER_MAC,
        SERVER_MAC,
        PEER_IP,
        SERVER_IP,
        &syn_to_80(4000),
    );
    feed(&mut s, Instant::from_millis(2), &[spoofed]);
    assert_eq!(s.neighbour(PEER_IP), Some(PEER_MAC));
    // SYNs from a thousand addresses, to a listener and to a closed port.
    let frames: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| {
            let mut syn = syn_to_80(5000);
            syn.dst_port = if i % 2 == 0 { 80 } else { 81 };
            tcp_frame(
                ATTACKER_MAC,
                SERVER_MAC,
                Ipv4Addr::from(0x0a02_0000 + i),
                SERVER_IP,
                &syn,
            )
        })
        .collect();
    feed(&mut s, Instant::from_millis(3), &frames);
    assert!((0..1000u32).all(|i| s.neighbour(Ipv4Addr::from(0x0a02_0000 + i)).is_none()));
}

/// The server answers a client it never ARPed for: the SYN-ACK (and the rest
/// of the connection) goes to the MAC the client's SYN came from — kept with
/// the connection, not in the shared table. This is how a kernel peer in a
/// namespace, or a load generator with many addresses behind one MAC, is
/// served.
#[test]
fn a_client_never_arped_is_answered_at_its_syns_mac() {
    let tcp = TcpConfig::default();
    let mut s = lone_server(&tcp);
    let syn = tcp_frame(PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &syn_to_80(4000));
    let sent = feed(&mut s, Instant::from_millis(1), &[syn]);
    assert_eq!(sent.len(), 1);
    let f = EthernetFrame::new_checked(&sent[0][..]).unwrap();
    assert_eq!(f.dst_addr(), PEER_MAC);
    assert_eq!(s.connections(), 1);
    assert_eq!(s.neighbour(PEER_IP), None, "nothing learnt from a SYN");
    // The RST for a closed port goes back the same way.
    let mut to_closed = syn_to_80(4001);
    to_closed.dst_port = 81;
    let sent = feed(
        &mut s,
        Instant::from_millis(2),
        &[tcp_frame(
            PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &to_closed,
        )],
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(
        EthernetFrame::new_checked(&sent[0][..]).unwrap().dst_addr(),
        PEER_MAC
    );
}

/// ARP answers we did not ask for are not trusted to create entries (Linux's
/// default, arp_accept=0); gratuitous ARP updates a known entry only (the
/// default `GratuitousArp::UpdateKnown` policy); answers to our own requests
/// are learnt. Refusals are counted.
#[test]
fn only_solicited_arp_replies_create_neighbours() {
    let tcp = TcpConfig::default();
    let mut s = lone_server(&tcp);
    let other = Ipv4Addr::new(10, 0, 0, 7);
    let unsolicited = arp_frame(
        ArpOperation::Reply,
        ATTACKER_MAC,
        SERVER_MAC,
        other,
        SERVER_IP,
    );
    let garp = arp_frame(
        ArpOperation::Request,
        ATTACKER_MAC,
        EthernetAddress::BROADCAST,
        other,
        other,
    );
    feed(
        &mut s,
        Instant::from_millis(1),
        &[unsolicited.clone(), garp],
    );
    assert_eq!(s.neighbour(other), None);
    assert_eq!(s.stats.neighbours_refused, 2);
    // Asked for, it is learnt.
    s.request_arp(other);
    let sent = feed(&mut s, Instant::from_millis(2), &[]);
    assert_eq!(arp_requests_in(&sent), [other]);
    let reply = arp_frame(ArpOperation::Reply, PEER_MAC, SERVER_MAC, other, SERVER_IP);
    feed(&mut s, Instant::from_millis(3), &[reply]);
    assert_eq!(s.neighbour(other), Some(PEER_MAC));
    // A gratuitous ARP moves a known host (a fail-over); a second,
    // unsolicited reply does too under the same policy.
    let moved = EthernetAddress([2, 0, 0, 0, 0, 0x77]);
    let garp = arp_frame(
        ArpOperation::Request,
        moved,
        EthernetAddress::BROADCAST,
        other,
        other,
    );
    feed(&mut s, Instant::from_millis(4), &[garp]);
    assert_eq!(s.neighbour(other), Some(moved));
}

/// The table has a bound: requests addressed to us from more senders than
/// it holds fill it to the bound and the rest are counted, not stored.
#[test]
fn the_neighbour_table_is_bounded() {
    let tcp = TcpConfig::default();
    let mut cfg = StackConfig::new(Iface::new(SERVER_MAC, SERVER_IP), tcp);
    cfg.neighbour_capacity = 16;
    let mut s = Stack::new(cfg, Instant::ZERO);
    let frames: Vec<Vec<u8>> = (0..100u32)
        .map(|i| {
            arp_frame(
                ArpOperation::Request,
                PEER_MAC,
                EthernetAddress::BROADCAST,
                Ipv4Addr::from(0x0a03_0000 + i),
                SERVER_IP,
            )
        })
        .collect();
    let sent = feed(&mut s, Instant::from_millis(1), &frames);
    assert_eq!(sent.len(), 100, "each request is still answered");
    assert_eq!(s.neighbours(), 16);
    assert_eq!(s.stats.neighbours_full, 84);
}

/// Entries age (Linux: reachable for ~30 s, then re-probed): a learnt entry
/// not confirmed for `neighbour_reachable` is asked for again; one that
/// stays silent through the probes is forgotten; an answer keeps it.
/// Entries given on the command line (`add_neighbour`) never age.
#[test]
fn neighbours_age_out_unless_they_answer_a_re_arp() {
    let tcp = TcpConfig::default();
    let mut s = lone_server(&tcp);
    let quiet = Ipv4Addr::new(10, 0, 0, 7);
    let alive = Ipv4Addr::new(10, 0, 0, 8);
    let fixed = Ipv4Addr::new(10, 0, 0, 1);
    s.add_neighbour(fixed, ATTACKER_MAC);
    for ip in [quiet, alive] {
        let ask = arp_frame(
            ArpOperation::Request,
            PEER_MAC,
            EthernetAddress::BROADCAST,
            ip,
            SERVER_IP,
        );
        feed(&mut s, Instant::from_millis(1), &[ask]);
    }
    assert_eq!(s.neighbours(), 3);
    let reachable = s.cfg.neighbour_reachable;
    let mut now = Instant::from_millis(1) + reachable;
    let mut probed = Vec::new();
    for _ in 0..10 {
        now += Duration::from_secs(1);
        let sent = feed(&mut s, now, &[]);
        let asked = arp_requests_in(&sent);
        if asked.contains(&alive) {
            let answer = arp_frame(ArpOperation::Reply, PEER_MAC, SERVER_MAC, alive, SERVER_IP);
            feed(&mut s, now, &[answer]);
        }
        probed.extend(asked);
    }
    assert!(
        probed.contains(&quiet) && probed.contains(&alive),
        "{probed:?}"
    );
    assert!(!probed.contains(&fixed));
    assert_eq!(s.neighbour(quiet), None, "silent: forgotten");
    assert_eq!(s.neighbour(alive), Some(PEER_MAC), "answered: kept");
    assert_eq!(s.neighbour(fixed), Some(ATTACKER_MAC), "static: kept");
    assert_eq!(s.stats.neighbours_expired, 1);
}

/// RFC 1191 / RFC 5927 through the shard: an ICMP "fragmentation needed"
/// quoting a live connection's unacknowledged segment lowers its MSS; one
/// quoting a 4-tuple with no connection, or a sequence number outside the
/// flight, changes nothing and is counted.
#[test]
fn rfc1191_frag_needed_reaches_the_connection_it_quotes() {
    let tcp = TcpConfig::default();
    let mut s = lone_server(&tcp);
    s.listen(SocketAddrV4::new(SERVER_IP, 7), ServerApp::Echo);
    // Open a connection to the echo port and send 3000 bytes to echo.
    let mut syn = syn_to_80(4000);
    syn.dst_port = 7;
    let sent = feed(
        &mut s,
        Instant::from_millis(1),
        &[tcp_frame(PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &syn)],
    );
    let synack = match sluice::wire::parse_frame(&sent[0], Default::default()).unwrap() {
        Parsed::Tcp(_, _, t) => t,
        _ => panic!("a SYN-ACK"),
    };
    let iss = synack.seq_number;
    let data = vec![1u8; 1400];
    let mut seg = TcpRepr {
        src_port: 4000,
        dst_port: 7,
        seq_number: SeqNumber(1001),
        ack_number: Some(iss + 1),
        window_len: 65535,
        payload: &data,
        ..TcpRepr::default()
    };
    let a = tcp_frame(PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &seg);
    seg.seq_number = SeqNumber(1001 + 1400);
    let b = tcp_frame(PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &seg);
    let echoed = feed(&mut s, Instant::from_millis(2), &[a, b]);
    let first = echoed
        .iter()
        .find_map(
            |f| match sluice::wire::parse_frame(f, Default::default()).unwrap() {
                Parsed::Tcp(_, _, t) if !t.payload.is_empty() => {
                    Some((t.seq_number, t.payload.len()))
                }
                _ => None,
            },
        )
        .expect("the echo");
    assert!(first.1 > 1000);
    // The router's ICMP quotes the echo's first segment.
    let frag_needed = |seq: SeqNumber, port: u16| {
        let mut quoted = tcp_frame(
            SERVER_MAC,
            PEER_MAC,
            SERVER_IP,
            PEER_IP,
            &TcpRepr {
                src_port: 7,
                dst_port: port,
                seq_number: seq,
                ..TcpRepr::default()
            },
        )[14..14 + 28]
            .to_vec();
        quoted[2..4].copy_from_slice(&1500u16.to_be_bytes());
        let mut icmp = vec![3u8, 4, 0, 0, 0, 0];
        icmp.extend_from_slice(&1200u16.to_be_bytes());
        icmp.extend_from_slice(&quoted);
        let sum = !icmp.chunks(2).fold(0u32, |a, c| {
            let s = a + u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            (s & 0xffff) + (s >> 16)
        }) as u16;
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let e = EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: SERVER_MAC,
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 254),
            dst_addr: SERVER_IP,
            protocol: IpProtocol::Icmp,
            payload_len: icmp.len(),
            ttl: 64,
            tos: 0,
            ident: 9,
            dont_frag: false,
        };
        let mut out = vec![0u8; 14 + 20];
        e.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        ip.emit(&mut sluice::wire::Ipv4Packet::new_unchecked(&mut out[14..]));
        out.extend_from_slice(&icmp);
        out
    };
    let bad = [
        frag_needed(first.0 + 100_000, 4000),
        frag_needed(first.0, 4999),
    ];
    let resent = feed(&mut s, Instant::from_millis(3), &bad);
    assert!(resent.is_empty());
    assert_eq!(dropped(&s, "icmp_unmatched"), 2);
    let resent = feed(
        &mut s,
        Instant::from_millis(4),
        &[frag_needed(first.0, 4000)],
    );
    assert_eq!(s.stats.pmtu_reductions, 1);
    assert!(!resent.is_empty(), "the flight goes again");
    for f in &resent {
        assert!(f.len() <= 14 + 1200, "{} bytes", f.len());
    }
}

/// RFC 9293 3.10.7.1 (CLOSED): a segment with no ACK is refused with
/// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. A full table refuses a SYN so;
/// without the ACK (SEQ=0 alone) a SYN-SENT peer finds the RST unacceptable
/// (RFC 9293 3.10.7.3) and the refusal works as a silent drop.
#[test]
fn rfc9293_3_10_7_1_table_full_refusal_rst_acks_the_syn() {
    use sluice::wire::{
        ChecksumMode, EtherType, EthernetRepr, IpProtocol, Ipv4Repr, Parsed, SeqNumber, TcpControl,
        TcpRepr, emit_frame, parse_tcp_frame,
    };
    let mut c = StackConfig::new(Iface::new(SERVER_MAC, SERVER_IP), TcpConfig::default());
    c.capacity = 1;
    let mut server = Stack::new(c, Instant::ZERO);
    server.add_neighbour(CLIENT_IP, CLIENT_MAC);
    server.listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(100, 0));
    let (wire, mut nic) = MemNic::pair(64);
    let syn = |port: u16, seq: u32| {
        let seg = TcpRepr {
            src_port: port,
            dst_port: 80,
            control: TcpControl::Syn,
            seq_number: SeqNumber(seq),
            window_len: 65535,
            max_seg_size: Some(1460),
            ..TcpRepr::default()
        };
        let p = Parsed::Tcp(
            EthernetRepr {
                src_addr: CLIENT_MAC,
                dst_addr: SERVER_MAC,
                ethertype: EtherType::Ipv4,
            },
            Ipv4Repr {
                src_addr: CLIENT_IP,
                dst_addr: SERVER_IP,
                protocol: IpProtocol::Tcp,
                payload_len: seg.buffer_len(),
                ttl: 64,
                tos: 0,
                ident: 1,
                dont_frag: true,
            },
            seg,
        );
        let mut out = vec![0u8; 1514];
        let n = emit_frame(&p, &mut out);
        out.truncate(n);
        out
    };
    // The first SYN takes the only slot; the second is refused.
    wire.tx.push(syn(20_000, 1000)).unwrap();
    wire.tx.push(syn(20_001, 7000)).unwrap();
    server.poll(Instant::from_millis(1), &mut nic as &mut dyn Nic);
    let mut rst = None;
    while let Some(f) = wire.rx.pop() {
        let t = parse_tcp_frame(&f, ChecksumMode::Verify).unwrap().unwrap();
        if t.seg.dst_port == 20_001 {
            rst = Some((t.seg.control, t.seg.seq_number, t.seg.ack_number));
        }
    }
    assert_eq!(
        rst,
        Some((TcpControl::Rst, SeqNumber(0), Some(SeqNumber(7001)))),
        "<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>"
    );
}

/// RFC 9293 3.10.7.2 (LISTEN): a segment with neither SYN, ACK nor RST is
/// dropped without an answer ("any other text or control ... drop the
/// segment and return"), unlike one for a port nobody listens on (CLOSED,
/// 3.10.7.1), which gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
#[test]
fn rfc9293_3_10_7_2_listener_drops_segments_without_syn_or_ack() {
    let mut s = lone_server(&TcpConfig::default());
    let seg = |port: u16, dst_port: u16, control: TcpControl| TcpRepr {
        src_port: port,
        dst_port,
        seq_number: SeqNumber(1000),
        control,
        window_len: 65535,
        payload: b"x",
        ..TcpRepr::default()
    };
    let to_listener: Vec<Vec<u8>> = [TcpControl::None, TcpControl::Fin]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            tcp_frame(
                PEER_MAC,
                SERVER_MAC,
                PEER_IP,
                SERVER_IP,
                &seg(6000 + i as u16, 80, *c),
            )
        })
        .collect();
    let sent = feed(&mut s, Instant::from_millis(1), &to_listener);
    assert_eq!(sent.len(), 0, "a listener answers neither");
    assert_eq!(s.connections(), 0);
    // The same to a closed port is refused.
    let closed = tcp_frame(
        PEER_MAC,
        SERVER_MAC,
        PEER_IP,
        SERVER_IP,
        &seg(6002, 81, TcpControl::None),
    );
    let sent = feed(&mut s, Instant::from_millis(2), &[closed]);
    assert_eq!(sent.len(), 1, "a closed port answers with RST");
}

// Scale and overload (issue 12): the generator's pacing, back-pressure on a
// full transmit ring, and the end of a run.

/// A keep-alive client config: `connections` held, a request every `think`.
fn held(
    connections: u32,
    think: Duration,
    pacing: sluice::app::Pacing,
) -> (ClientConfig, sluice::app::Pacing) {
    (
        ClientConfig {
            think,
            ..client_cfg(connections, u32::MAX)
        },
        pacing,
    )
}

/// What a run of one client and one server shard saw.
#[derive(Default)]
struct Seen {
    /// The most client handshakes in flight, and the largest window.
    max_handshakes: u64,
    max_window: u64,
    /// The most SYN-RECEIVED connections the server held.
    max_half_open: u64,
    /// When every connection was open, from the start.
    all_open_after: Option<Duration>,
    /// Connections open at the run's midpoint.
    open_at_half: Option<u64>,
}

/// One client and one server shard over `MemNic::pair(depth)`, stepping 10 µs
/// of virtual time a turn; the server polls once every `server_every` client
/// turns (a slower peer). The load runs `load` long; the run ends once every
/// client connection has closed (or 5 s of virtual time).
fn run_paced(
    clients: &mut [Stack],
    servers: &mut [Stack],
    cfg: (ClientConfig, sluice::app::Pacing),
    depth: usize,
    server_every: u32,
    load: Duration,
) -> Seen {
    run_paced_on(
        clients,
        servers,
        cfg,
        MemNic::pair(depth),
        server_every,
        load,
    )
}

fn run_paced_on(
    clients: &mut [Stack],
    servers: &mut [Stack],
    (cfg, pacing): (ClientConfig, sluice::app::Pacing),
    (mut cn, mut sn): (MemNic, MemNic),
    server_every: u32,
    load: Duration,
) -> Seen {
    let start = Instant::from_millis(1);
    let mut now = start;
    clients[0].start_client(cfg, now, load, Duration::ZERO);
    clients[0].pace_client(pacing);
    let mut seen = Seen::default();
    let mut turn = 0u32;
    let limit = start + load + Duration::from_secs(5);
    while now < limit {
        clients[0].poll(now, &mut cn);
        if turn % server_every == 0 {
            servers[0].poll(now, &mut sn);
        }
        turn += 1;
        if turn % 16 == 0 {
            clients[0].client_gauges();
            let c = &clients[0].stats;
            seen.max_handshakes = seen.max_handshakes.max(c.handshakes);
            seen.max_window = seen.max_window.max(c.open_window);
            servers[0].count_states();
            let sr = servers[0].stats.states[sluice::tcp::State::SynReceived.index()];
            seen.max_half_open = seen.max_half_open.max(sr);
        }
        if seen.open_at_half.is_none() && now >= start + load / 2 {
            seen.open_at_half = Some(u64::from(clients[0].client_active()));
        }
        if seen.all_open_after.is_none() {
            seen.all_open_after = clients[0].client_all_open_at().map(|t| t - start);
        }
        now += Duration::from_micros(10);
        if now > start + load && clients[0].client_active() == 0 {
            break;
        }
    }
    // The last ACKs reach the server (as `load::drive` lets them out).
    for _ in 0..1000 {
        clients[0].poll(now, &mut cn);
        servers[0].poll(now, &mut sn);
        now += Duration::from_micros(10);
    }
    seen
}

fn tx_full(s: &ShardStats) -> u64 {
    s.dropped(sluice::stats::DropReason::TxFull)
}

/// The closed loop's default pacing: asked for 3000 connections against a
/// server that runs a quarter as often, the generator keeps at most a window
/// of handshakes in flight (grown from 64 while they complete fast), so the
/// server's SYN-RECEIVED count stays under its cookie threshold and nothing
/// is sent twice. Unpaced, the same run floods the server past it.
#[test]
fn paced_opening_keeps_handshakes_within_the_window() {
    use sluice::app::Pacing;
    use sluice::app::schedule::{WINDOW_MAX, WINDOW_START};
    let tcp = TcpConfig::default();
    let think = Duration::from_secs(10);
    let (mut clients, mut servers) = stacks(1, &tcp);
    let seen = run_paced(
        &mut clients,
        &mut servers,
        held(3000, think, Pacing::Adaptive),
        65_536,
        4,
        Duration::from_millis(300),
    );
    let (c, s) = (&clients[0].stats, &servers[0].stats);
    eprintln!(
        "paced: all open after {:?}, max handshakes {} window {} half-open {}",
        seen.all_open_after, seen.max_handshakes, seen.max_window, seen.max_half_open
    );
    assert!(seen.all_open_after.is_some(), "all 3000 open: {}", c.opened);
    assert_eq!(c.opened, 3000);
    assert!(seen.max_window > u64::from(WINDOW_START), "the window grew");
    assert!(seen.max_window <= u64::from(WINDOW_MAX));
    assert!(seen.max_handshakes <= u64::from(WINDOW_MAX));
    assert!(
        seen.max_half_open < tcp.syn_cookie_threshold as u64,
        "{} half-open",
        seen.max_half_open
    );
    assert_eq!(s.syn_cookies_sent, 0);
    assert_eq!(c.tcp.retransmits + s.tcp.retransmits, 0);
    assert_eq!(c.responses, c.requests_sent);
    assert_eq!(c.abnormal_closes() + s.abnormal_closes(), 0);
    assert_eq!(
        c.closed_at_end, 3000,
        "each closed by the generator at the end"
    );

    // The control: the same run unpaced overruns the server's half-open limit.
    let (mut clients, mut servers) = stacks(1, &tcp);
    let seen = run_paced(
        &mut clients,
        &mut servers,
        held(3000, think, Pacing::None),
        65_536,
        4,
        Duration::from_millis(300),
    );
    eprintln!(
        "unpaced: max half-open {}, cookies {}",
        seen.max_half_open, servers[0].stats.syn_cookies_sent
    );
    assert!(servers[0].stats.syn_cookies_sent > 0 || seen.max_half_open > 1024);
}

/// `--ramp`: 2000 connections evenly over 100 ms: about half open at 50 ms,
/// all open at about 100 ms.
#[test]
fn ramp_opens_evenly_over_its_time() {
    use sluice::app::Pacing;
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let ramp = Duration::from_millis(100);
    let seen = run_paced(
        &mut clients,
        &mut servers,
        held(2000, Duration::from_secs(10), Pacing::Ramp(ramp)),
        65_536,
        1,
        Duration::from_millis(200),
    );
    let half = seen.open_at_half.unwrap();
    let after = seen.all_open_after.unwrap();
    eprintln!("ramp: {half} open at 100 ms, all open after {after:?}");
    // The midpoint of the load (100 ms) is the ramp's end.
    assert!(after >= ramp - Duration::from_millis(2), "{after:?}");
    assert!(after <= ramp + Duration::from_millis(10), "{after:?}");
    assert!(half >= 1900, "{half}");
    assert_eq!(clients[0].stats.tcp.retransmits, 0);
}

/// Back-pressure: a link whose queues hold 8 frames, 1000 keep-alive
/// connections asking 1 ms after each answer. Frames the queue refuses
/// wait, the shards make no new work meanwhile, and nothing is dropped: every
/// request is answered and every connection ends normally.
#[test]
fn a_full_transmit_ring_holds_new_work_instead_of_dropping() {
    use sluice::app::Pacing;
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    // A turn's new work is at most 64 timers (and a burst of openings), so
    // a backlog of 256 frames holds it; without back-pressure the backlog
    // outgrows that and frames are dropped.
    for s in clients.iter_mut().chain(servers.iter_mut()) {
        let mut cfg = s.cfg.clone();
        cfg.timer_budget = 64;
        *s = Stack::new(cfg, Instant::ZERO);
    }
    clients[0].add_neighbour(SERVER_IP, SERVER_MAC);
    servers[0].listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(100, 0));
    let (mut cn, mut sn) = MemNic::pair(8);
    cn.max_backlog = 256;
    sn.max_backlog = 256;
    run_paced_on(
        &mut clients,
        &mut servers,
        held(1000, Duration::from_millis(1), Pacing::Adaptive),
        (cn, sn),
        1,
        Duration::from_millis(30),
    );
    let (c, s) = (&clients[0].stats, &servers[0].stats);
    eprintln!(
        "tiny ring: {} responses, waits client {} server {}; closes {:?} {:?}, active {}, conns {} {}, cookies {} drops {:?} {:?}",
        c.responses,
        c.tx_waits,
        s.tx_waits,
        c.closes_map(),
        s.closes_map(),
        clients[0].client_active(),
        clients[0].connections(),
        servers[0].connections(),
        s.syn_cookies_sent,
        c.drops_map()
            .into_iter()
            .filter(|x| x.1 > 0)
            .collect::<Vec<_>>(),
        s.drops_map()
            .into_iter()
            .filter(|x| x.1 > 0)
            .collect::<Vec<_>>(),
    );
    assert!(c.tx_waits + s.tx_waits > 0, "the ring filled");
    assert_eq!(tx_full(c) + tx_full(s), 0);
    assert!(c.responses > 1000, "{}", c.responses);
    assert_eq!(c.responses, c.requests_sent, "every request answered");
    assert_eq!(s.responses, c.responses);
    assert_eq!(c.opened, 1000);
    assert_eq!(c.closed_by(CloseReason::Normal), 1000);
    assert_eq!(s.closed_by(CloseReason::Normal), 1000);
    assert_eq!(c.abnormal_closes() + s.abnormal_closes(), 0);
    assert_eq!(c.tcp.retransmits + s.tcp.retransmits, 0);
}

/// The end of a keep-alive run with think time: every connection, idle or
/// waiting for a response, is closed by the generator with a FIN and counted
/// `closed_at_end`; nothing is reset, both sides close normally, the client
/// holds TIME_WAIT for each, and no table keeps a connection.
#[test]
fn the_end_of_a_keep_alive_run_closes_every_connection_cleanly() {
    use sluice::app::Pacing;
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    run_paced(
        &mut clients,
        &mut servers,
        held(400, Duration::from_millis(7), Pacing::Adaptive),
        4096,
        1,
        Duration::from_millis(50),
    );
    let (c, s) = (&clients[0].stats, &servers[0].stats);
    eprintln!(
        "end: closes client {:?} server {:?} active {} conns {} {} closed_at_end {}",
        c.closes_map(),
        s.closes_map(),
        clients[0].client_active(),
        clients[0].connections(),
        servers[0].connections(),
        c.closed_at_end
    );
    assert_eq!(c.opened, 400);
    assert!(c.responses >= 400 * 5, "{}", c.responses);
    assert_eq!(c.responses, c.requests_sent);
    assert_eq!(c.closed_at_end, 400);
    assert_eq!(c.completed, 400);
    assert_eq!(c.closed_by(CloseReason::Aborted), 0);
    assert_eq!(c.closed_by(CloseReason::Normal), 400);
    assert_eq!(s.closed_by(CloseReason::Normal), 400);
    assert_eq!(c.abnormal_closes() + s.abnormal_closes(), 0);
    assert_eq!(c.tcp.rsts_out + s.tcp.rsts_out, 0);
    assert_eq!(clients[0].time_wait_records(), 400);
    assert_eq!(clients[0].connections() + servers[0].connections(), 0);
}

/// RFC 6298 2.1 and 5 (RFC 9293 3.8.1): a SYN-ACK that is not acknowledged
/// is sent again when the retransmission timer expires, one second after it
/// went (the initial RTO), not before. The connection's first timer entry
/// sits in the shard's fixed-length handshake queue, due at RTO.min: it must
/// wake the connection, which then waits in the wheel for the RTO (an early
/// wake-up sends nothing); and a handshake completed before that entry is
/// due leaves it to be passed over, sending nothing.
#[test]
fn rfc6298_2_1_syn_ack_sent_again_after_the_initial_rto_not_before() {
    let tcp = TcpConfig::default();
    let mut s = lone_server(&tcp);
    let ms = Instant::from_millis;
    let flags = |f: &Vec<u8>| f[14 + 20 + 13];
    let syn = tcp_frame(PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &syn_to_80(7000));
    let sent = feed(&mut s, ms(0), &[syn]);
    assert_eq!(sent.len(), 1, "the SYN-ACK");
    assert_eq!(flags(&sent[0]), 0x12, "SYN and ACK");
    // Past RTO.min (the handshake queue's entry) and up to just before 1 s:
    // nothing.
    for t in [1, 100, 199, 200, 201, 300, 500, 999] {
        let sent = feed(&mut s, ms(t), &[]);
        assert!(sent.is_empty(), "{t} ms: {} frames", sent.len());
    }
    let mut again = Vec::new();
    for t in 1000..1010 {
        again.extend(feed(&mut s, ms(t), &[]));
        if !again.is_empty() {
            break;
        }
    }
    assert_eq!(again.len(), 1, "the SYN-ACK again at 1 s");
    assert_eq!(flags(&again[0]), 0x12);
    assert_eq!(s.stats.tcp.retransmits, 1);

    // A handshake that completes at once: its queued entry comes due at
    // RTO.min and is passed over (nothing is sent, nothing retransmitted).
    let syn = tcp_frame(PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &syn_to_80(7001));
    let sent = feed(&mut s, ms(2000), &[syn]);
    assert_eq!(sent.len(), 1);
    let synack_seq = u32::from_be_bytes(sent[0][38..42].try_into().unwrap());
    let ack = TcpRepr {
        src_port: 7001,
        dst_port: 80,
        seq_number: SeqNumber(1001),
        ack_number: Some(SeqNumber(synack_seq.wrapping_add(1))),
        control: TcpControl::None,
        window_len: 65535,
        ..TcpRepr::default()
    };
    let ack = tcp_frame(PEER_MAC, SERVER_MAC, PEER_IP, SERVER_IP, &ack);
    assert!(feed(&mut s, ms(2001), &[ack]).is_empty());
    // (Up to before the first connection's second SYN-ACK, at 3 s.)
    for t in [2199, 2200, 2201, 2300, 2999] {
        let sent = feed(&mut s, ms(t), &[]);
        assert!(sent.is_empty(), "{t} ms: {} frames", sent.len());
    }
    assert_eq!(s.stats.tcp.retransmits, 1, "only the first connection's");
    assert_eq!(s.connections(), 2);
}

/// Issue 12 (ten million connections): a closed loop's think times go in
/// queues, not the wheel, and still end on time. 2,000 connections, 200 ms
/// think: the first requests spread evenly over the first think time (about
/// half asked by its middle, not all at once), then every connection asks
/// once per think time (the steady rate); while they think, the wheel holds
/// almost nothing and the think queues one entry a connection.
#[test]
fn think_times_queue_out_of_the_wheel_and_end_on_time() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let (mut cn, mut sn) = MemNic::pair(65_536);
    let think = Duration::from_millis(200);
    let start = Instant::from_millis(1);
    let (cfg, _) = held(2000, think, sluice::app::Pacing::None);
    clients[0].start_client(cfg, start, Duration::from_secs(2), Duration::ZERO);
    let mut now = start;
    let mut at_half = None;
    let mut most_wheel = 0;
    let mut most_queued = 0;
    let mut responses_at_1s = 0;
    while now < start + Duration::from_millis(1500) {
        clients[0].poll(now, &mut cn);
        servers[0].poll(now, &mut sn);
        now += Duration::from_micros(20);
        if at_half.is_none() && now >= start + think / 2 {
            at_half = Some(clients[0].stats.requests_sent);
        }
        if now >= start + Duration::from_millis(10) {
            let (wheel, queued) = clients[0].timer_entries();
            most_wheel = most_wheel.max(wheel);
            most_queued = most_queued.max(queued);
        }
        if now <= start + Duration::from_secs(1) {
            responses_at_1s = clients[0].stats.responses;
        }
    }
    let c = &clients[0].stats;
    eprintln!(
        "think queues: {} asked by {:?}, {} responses by 1 s, wheel at most {most_wheel}, queued at most {most_queued}",
        at_half.unwrap_or(0),
        think / 2,
        responses_at_1s
    );
    assert_eq!(c.opened, 2000);
    let half = at_half.unwrap_or(0);
    assert!(
        (800..=1200).contains(&half),
        "first requests by mid-think: {half}"
    );
    // In the first second: five think times, one request each (the first
    // spread over the first), 10,000 at most, none missed by more than one.
    assert!(
        (9_000..=10_000).contains(&responses_at_1s),
        "{responses_at_1s}"
    );
    // Thinking connections hold no wheel entry (a few in a request may).
    assert!(
        most_wheel < 200,
        "wheel entries while thinking: {most_wheel}"
    );
    assert!(
        (2000..=2200).contains(&most_queued),
        "queued: {most_queued}"
    );
    assert_eq!(c.tcp.retransmits, 0);
    assert_eq!(tx_full(c), 0);
}

/// RFC 1122 4.2.3.2: an ACK may be delayed (at most 500 ms) so that it can
/// ride on data. A client that will think for longer than the delay after a
/// response has no data for it to ride on, so it acks at once (as Linux's
/// TCP_QUICKACK): the same one segment, sooner. A think time shorter than
/// the delay keeps the delayed ACK, which then rides on the next request.
#[test]
fn rfc1122_4_2_3_2_response_acked_at_once_when_the_client_thinks_past_the_ack_delay() {
    let tcp = TcpConfig::default();
    // (think, whether the response's ACK goes alone within 1 ms)
    for (think, at_once) in [
        (Duration::from_millis(100), true),
        (Duration::from_millis(10), false),
    ] {
        let (mut clients, mut servers) = stacks(1, &tcp);
        let (mut cn, mut sn) = MemNic::pair(1024);
        let start = Instant::from_millis(1);
        let (cfg, _) = held(1, think, sluice::app::Pacing::None);
        clients[0].start_client(cfg, start, Duration::from_secs(1), Duration::ZERO);
        let mut now = start;
        let mut answered = None;
        let mut rx_then = 0;
        while now < start + Duration::from_millis(500) {
            clients[0].poll(now, &mut cn);
            // (Before the server's turn: what the client sent in this one
            // is counted after.)
            if answered.is_none() && clients[0].stats.responses == 1 {
                answered = Some(now);
                rx_then = servers[0].stats.rx_packets;
            }
            servers[0].poll(now, &mut sn);
            now += Duration::from_micros(10);
            if answered.is_some_and(|t| now >= t + Duration::from_millis(1)) {
                break;
            }
        }
        let acks = servers[0].stats.rx_packets - rx_then;
        eprintln!("think {think:?}: server got {acks} segment(s) within 1 ms of the response");
        assert!(answered.is_some(), "no response");
        assert_eq!(acks, u64::from(at_once), "think {think:?}");
    }
}

/// Back-pressure the other way (issue 12: a clean end at ten million): a
/// client slower to read than its server. Everything the client starts is
/// answered, and if it went on starting work while the answers came faster
/// than it read them, they would pile up in the server's backlog past its
/// bound (dropped, retransmitted: the storm that ended 10 M runs). While its
/// receive bursts come back full, the client starts nothing new: no frame is
/// dropped, and every request is answered.
#[test]
fn a_client_behind_in_reading_starts_no_new_work() {
    use sluice::app::Pacing;
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    for s in clients.iter_mut().chain(servers.iter_mut()) {
        let mut cfg = s.cfg.clone();
        cfg.timer_budget = 256;
        *s = Stack::new(cfg, Instant::ZERO);
    }
    clients[0].add_neighbour(SERVER_IP, SERVER_MAC);
    servers[0].listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(100, 0));
    let (mut cn, mut sn) = MemNic::pair(64);
    cn.max_backlog = 512;
    sn.max_backlog = 512;
    let start = Instant::from_millis(1);
    let (cfg, _) = held(4000, Duration::from_millis(5), Pacing::Adaptive);
    clients[0].start_client(cfg, start, Duration::from_millis(100), Duration::ZERO);
    clients[0].pace_client(Pacing::Adaptive);
    let mut now = start;
    let mut turn = 0u64;
    while now < start + Duration::from_secs(3) {
        // The client reads a burst every 64th turn (32 frames in 128 µs,
        // fewer than the 800 k requests a second it would start); the
        // server every turn.
        if turn % 64 == 0 {
            clients[0].poll(now, &mut cn);
        }
        servers[0].poll(now, &mut sn);
        turn += 1;
        now += Duration::from_micros(2);
        if now > start + Duration::from_millis(100) && clients[0].client_active() == 0 {
            break;
        }
    }
    let (c, s) = (&clients[0].stats, &servers[0].stats);
    eprintln!(
        "slow reader: {} requests, {} responses, tx_full client {} server {}, retransmits {} {}",
        c.requests_sent,
        c.responses,
        tx_full(c),
        tx_full(s),
        c.tcp.retransmits,
        s.tcp.retransmits
    );
    assert!(c.responses > 4000, "{}", c.responses);
    assert_eq!(tx_full(c) + tx_full(s), 0);
    assert_eq!(c.responses, c.requests_sent, "every request answered");
    assert_eq!(c.tcp.retransmits + s.tcp.retransmits, 0);
}

/// The think queues' first requests when the opening is slower than the
/// steady rate (2,000 connections over a 300 ms ramp, 200 ms think: 6,667
/// openings a second against 10,000 requests): each connection's first
/// request still falls at its own point of its first think time, so once all
/// are open each 100 ms gets its 1,000 requests. Had each asked first as it
/// opened, the 100 ms from 800 ms would get those opened in the first and
/// third 100 ms of the ramp: 1,333.
#[test]
fn first_requests_spread_over_the_think_time_when_opening_is_slower() {
    use sluice::app::Pacing;
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let (mut cn, mut sn) = MemNic::pair(65_536);
    let think = Duration::from_millis(200);
    let start = Instant::from_millis(1);
    let (cfg, _) = held(2000, think, Pacing::None);
    clients[0].start_client(cfg, start, Duration::from_secs(2), Duration::ZERO);
    clients[0].pace_client(Pacing::Ramp(Duration::from_millis(300)));
    let mut now = start;
    let (mut at_800, mut at_900) = (0, 0);
    while now < start + Duration::from_millis(900) {
        clients[0].poll(now, &mut cn);
        servers[0].poll(now, &mut sn);
        now += Duration::from_micros(20);
        if now <= start + Duration::from_millis(800) {
            at_800 = clients[0].stats.responses;
        }
        at_900 = clients[0].stats.responses;
    }
    let (wheel, queued) = clients[0].timer_entries();
    eprintln!(
        "slow opening: {} responses from 800 to 900 ms; wheel {wheel}, queued {queued}",
        at_900 - at_800
    );
    assert_eq!(clients[0].stats.opened, 2000);
    assert!(
        (900..=1100).contains(&(at_900 - at_800)),
        "{}",
        at_900 - at_800
    );
    assert!(wheel < 100, "{wheel}");
}

/// Runs one client stack and one server over a fresh link, the client
/// with `cfg` for `open_for`, until its connections have ended.
fn run_one(client: &mut Stack, server: &mut Stack, cfg: ClientConfig, at: Instant) -> Instant {
    let (mut cn, mut sn) = MemNic::pair(65_536);
    let open_for = Duration::from_millis(30);
    let mut now = at;
    client.start_client(cfg, now, open_for, Duration::ZERO);
    let limit = now + open_for + Duration::from_secs(5);
    while now <= limit {
        client.poll(now, &mut cn);
        server.poll(now, &mut sn);
        now += Duration::from_micros(20);
        if now > at + open_for && client.client_active() == 0 {
            break;
        }
    }
    now
}

/// RFC 9293 3.10.7.4 / RFC 6191: a 4-tuple this client holds in TIME_WAIT is
/// not opened again within its 2MSL (nor one still open). The generator
/// counts each such candidate as a port collision and goes on to the next
/// of its tuples; with every tuple taken it opens nothing, and its turns
/// still end (at most 4096 tries each). Checked to fail when the insert
/// skips its TIME_WAIT lookup (1,500 opened instead of 16).
#[test]
fn rfc9293_3_10_7_4_generator_skips_tuples_held_in_time_wait_and_takes_the_free_ones() {
    let tcp = TcpConfig::default();
    let (mut clients, mut servers) = stacks(1, &tcp);
    let (client, server) = (&mut clients[0], &mut servers[0]);
    let cfg = |ports: (u16, u16)| ClientConfig {
        src_count: 1,
        ports,
        connections: 4,
        ..client_cfg(4, 1)
    };
    // 16 tuples, each used once: then all are held (the client closes
    // first: 2MSL = 60 s) and nothing more opens.
    let now = run_one(
        client,
        server,
        cfg((10_000, 10_015)),
        Instant::from_millis(1),
    );
    let c = client.stats;
    assert_eq!(c.opened, 16, "each of the 16 tuples once");
    assert_eq!(client.time_wait_records(), 16);
    assert!(
        c.port_collisions > 0,
        "the held tuples were tried and counted"
    );
    assert_eq!(c.responses, 16);
    // Twice the tuples, the first 16 still held: exactly the 16 free ones
    // open, each once, whatever port the walk starts at.
    run_one(client, server, cfg((10_000, 10_031)), now);
    let c2 = client.stats;
    assert_eq!(
        c2.opened - c.opened,
        16,
        "the 16 free tuples, and no held one"
    );
    assert_eq!(client.time_wait_records(), 32);
    assert!(c2.port_collisions > c.port_collisions);
    assert_eq!(c2.responses, 32);
    let s = server.stats;
    assert_eq!(s.accepted, 32, "the server saw no SYN for a held tuple");
    assert_eq!(c2.abnormal_closes() + s.abnormal_closes(), 0);
    assert_eq!(c2.app_errors + s.app_errors, 0);
    assert_eq!(client.connections(), 0);
    assert_eq!(server.connections(), 0);
}
