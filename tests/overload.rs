//! Issue 12 item 5: overload of the shard's resources degrades into counted
//! refusals, never a crash, a hang or a leak. An exhausted mbuf pool (no
//! buffer to build a frame in) and a full connection table, each on either
//! side, over the in-memory link in virtual time.

use sluice::app::{ClientConfig, Request, ServerApp, http};
use sluice::shard::{Iface, MemNic, Nic, Stack, StackConfig};
use sluice::stats::ShardStats;
use sluice::table::FullPolicy;
use sluice::tcp::{CloseReason, TcpConfig};
use sluice::time::Instant;
use sluice::wire::EthernetAddress;
use std::net::{Ipv4Addr, SocketAddrV4};
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
        ports: (10_000, 19_999),
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

/// A client and a server shard; `client_cap` and `server_cap` connections.
fn pair(client_cap: usize, server_cap: usize, policy: FullPolicy) -> (Stack, Stack) {
    let tcp = TcpConfig::default();
    let mut c = StackConfig::new(Iface::new(CLIENT_MAC, CLIENT_IP), tcp.clone());
    c.iface.ip_count = 4;
    c.capacity = client_cap;
    let mut client = Stack::new(c, Instant::ZERO);
    client.add_neighbour(SERVER_IP, SERVER_MAC);
    let mut s = StackConfig::new(Iface::new(SERVER_MAC, SERVER_IP), tcp);
    s.capacity = server_cap;
    s.full_policy = policy;
    let mut server = Stack::new(s, Instant::ZERO);
    server.listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(100, 0));
    (client, server)
}

/// A link end whose mbuf pool runs dry: of every `period` calls to `tx_buf`,
/// the last `dry` find no buffer (as `DpdkNic::tx_buf` does when the pool is
/// empty).
struct Starved {
    inner: MemNic,
    calls: u64,
    period: u64,
    dry: u64,
    refused: u64,
}

impl Starved {
    fn new(inner: MemNic, period: u64, dry: u64) -> Starved {
        Starved {
            inner,
            calls: 0,
            period,
            dry,
            refused: 0,
        }
    }
}

impl Nic for Starved {
    fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        self.inner.rx(f)
    }
    fn tx_buf(&mut self, max: usize) -> Option<&mut [u8]> {
        self.calls += 1;
        if self.calls % self.period >= self.period - self.dry {
            self.refused += 1;
            return None;
        }
        self.inner.tx_buf(max)
    }
    fn tx_commit(&mut self, n: usize) {
        self.inner.tx_commit(n)
    }
    fn flush(&mut self) -> u64 {
        self.inner.flush()
    }
}

/// Runs the client's load (`conns` connections of `reqs` requests, opened
/// for `open_for`) until every client connection has ended, or `limit` of
/// virtual time; returns when it stopped.
fn run(
    client: &mut Stack,
    server: &mut Stack,
    nics: (&mut dyn Nic, &mut dyn Nic),
    load: (u32, u32, Duration),
    limit: Duration,
) -> Instant {
    let (cn, sn) = nics;
    let mut now = Instant::from_millis(1);
    client.start_client(client_cfg(load.0, load.1), now, load.2, Duration::ZERO);
    let end = now + limit;
    let opened_until = now + load.2;
    while now < end {
        client.poll(now, cn);
        server.poll(now, sn);
        now += Duration::from_micros(50);
        if now > opened_until && client.client_active() == 0 {
            // Let the last FINs and ACKs land (retransmitted, if need be).
            for _ in 0..60_000 {
                client.poll(now, cn);
                server.poll(now, sn);
                now += Duration::from_millis(1);
                if server.connections() == 0 {
                    break;
                }
            }
            break;
        }
    }
    now
}

/// Connections per state, by name (those with any).
fn states(s: &mut Stack) -> Vec<(&'static str, u64)> {
    s.count_states();
    sluice::tcp::State::ALL
        .iter()
        .map(|st| (st.name(), s.stats.states[*st as usize]))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn drops(s: &ShardStats, reason: &str) -> u64 {
    s.drops_map().get(reason).copied().unwrap_or(0)
}

/// No buffer for one frame in five, on both sides: each refusal is counted
/// (`no_buffer`), the segment is sent later (a retransmission or the next
/// segment's ACK), and every connection completes normally and leaves the
/// table on both sides.
#[test]
fn mbuf_exhaustion_is_counted_and_no_connection_is_lost_or_leaked() {
    let (mut client, mut server) = pair(10_000, 10_000, FullPolicy::Rst);
    let (c, s) = MemNic::pair(65_536);
    let (mut c, mut s) = (Starved::new(c, 50, 10), Starved::new(s, 50, 10));
    run(
        &mut client,
        &mut server,
        (&mut c, &mut s),
        (32, 4, Duration::from_millis(200)),
        Duration::from_secs(400),
    );
    eprintln!(
        "client {:?} server {:?}",
        states(&mut client),
        states(&mut server)
    );
    let (cs, ss) = (&client.stats, &server.stats);
    eprintln!(
        "opened {} responses {} no_buffer {}/{} refused {}/{} retransmits {}/{} closes {:?}",
        cs.opened,
        cs.responses,
        drops(cs, "no_buffer"),
        drops(ss, "no_buffer"),
        c.refused,
        s.refused,
        cs.tcp.retransmits,
        ss.tcp.retransmits,
        cs.closes_map(),
    );
    assert!(c.refused > 0 && s.refused > 0, "the pools did run dry");
    assert_eq!(drops(cs, "no_buffer"), c.refused, "every refusal counted");
    assert_eq!(drops(ss, "no_buffer"), s.refused, "every refusal counted");
    assert!(cs.opened > 32, "only {} connections", cs.opened);
    assert!(cs.responses > cs.opened, "{} responses", cs.responses);
    assert_eq!(cs.responses, cs.requests_sent, "every request answered");
    assert_eq!(ss.responses, cs.responses);
    assert_eq!(cs.abnormal_closes() + ss.abnormal_closes(), 0);
    assert_eq!(cs.closed_by(CloseReason::Normal), cs.opened);
    assert_eq!(client.client_active(), 0);
    assert_eq!(client.connections(), 0, "no client connection left behind");
    assert_eq!(server.connections(), 0, "no server connection left behind");
}

/// A server table of 8 and 32 clients; policy `Drop`: a SYN past the
/// capacity is dropped unanswered and counted (`table_full`); the client
/// retransmits it (RFC 6298) and is taken in once a slot frees, so every
/// connection completes, and nothing is left behind.
#[test]
fn a_full_server_table_drops_syns_by_policy_and_the_clients_get_in_later() {
    let (mut client, mut server) = pair(10_000, 8, FullPolicy::Drop);
    let (mut c, mut s) = MemNic::pair(65_536);
    run(
        &mut client,
        &mut server,
        (&mut c, &mut s),
        (32, 1, Duration::from_millis(1)),
        Duration::from_secs(400),
    );
    eprintln!(
        "client {:?} server {:?}",
        states(&mut client),
        states(&mut server)
    );
    let (cs, ss) = (&client.stats, &server.stats);
    eprintln!(
        "opened {} responses {} table_full {} rsts out {} closes {:?}",
        cs.opened,
        cs.responses,
        drops(ss, "table_full"),
        ss.tcp.rsts_out,
        cs.closes_map()
    );
    assert!(drops(ss, "table_full") > 0, "the table was full");
    assert_eq!(ss.tcp.rsts_out, 0, "policy Drop: no RST");
    assert_eq!(cs.responses, cs.opened, "every connection served");
    assert_eq!(cs.abnormal_closes() + ss.abnormal_closes(), 0);
    assert_eq!(client.connections() + server.connections(), 0, "no leak");
}

/// The same with policy `Rst`: the refused SYNs are answered with RST, which
/// the clients take as a refusal (`refused`, an error they report), and both
/// tables end empty.
#[test]
fn a_full_server_table_refuses_with_rst_by_policy() {
    let (mut client, mut server) = pair(10_000, 4, FullPolicy::Rst);
    let (mut c, mut s) = MemNic::pair(65_536);
    run(
        &mut client,
        &mut server,
        (&mut c, &mut s),
        (32, 1, Duration::from_millis(1)),
        Duration::from_secs(400),
    );
    let (cs, ss) = (&client.stats, &server.stats);
    let full = drops(ss, "table_full");
    assert!(full > 0, "the table was full");
    assert_eq!(ss.tcp.rsts_out, full, "one RST per refused SYN");
    assert_eq!(cs.closed_by(CloseReason::Refused), full);
    assert_eq!(
        cs.responses + full,
        cs.opened,
        "served or refused, no third way"
    );
    assert_eq!(client.connections() + server.connections(), 0, "no leak");
}

/// The client's own table full: the generator stops opening for the turn,
/// counts it (`table_full`), and opens the rest as connections end.
#[test]
fn a_full_client_table_is_counted_and_the_load_goes_on() {
    let (mut client, mut server) = pair(8, 10_000, FullPolicy::Rst);
    let (mut c, mut s) = MemNic::pair(65_536);
    run(
        &mut client,
        &mut server,
        (&mut c, &mut s),
        (32, 2, Duration::from_millis(100)),
        Duration::from_secs(400),
    );
    let (cs, ss) = (&client.stats, &server.stats);
    assert!(drops(cs, "table_full") > 0, "the client's table was full");
    assert!(cs.opened > 32, "only {} connections", cs.opened);
    assert!(cs.responses > cs.opened, "{} responses", cs.responses);
    assert_eq!(cs.responses, cs.requests_sent, "every request answered");
    assert_eq!(cs.abnormal_closes() + ss.abnormal_closes(), 0);
    assert_eq!(client.connections() + server.connections(), 0, "no leak");
}

/// RFC 4987: a SYN flood from random spoofed sources (`tools::flood`) at
/// 200,000 SYNs a second for 200 ms while a normal client opens short connections.
/// Past the half-open limit the listener answers with SYN cookies and keeps
/// nothing, so the table holds no more than the limit of the flood's
/// half-open connections; the client's connections (opened through
/// cookies) are all served, none fails; and once the flood stops, the
/// half-open ones time out and nothing is left.
#[test]
fn rfc4987_syn_flood_past_the_half_open_limit_is_answered_with_cookies() {
    use sluice::tools::flood::{FloodNic, FloodRate};
    use std::cell::Cell;
    use std::rc::Rc;
    let (mut client, mut server) = pair(10_000, 100_000, FullPolicy::Rst);
    let limit = server.cfg.tcp.syn_cookie_threshold;
    let (c, mut s) = MemNic::pair(1 << 16);
    let clock = Rc::new(Cell::new(Instant::from_millis(1)));
    let t = clock.clone();
    let mut c = FloodNic::new(
        c,
        move || t.get(),
        FloodRate::PerSecond(200_000),
        CLIENT_MAC,
        SERVER_MAC,
        (SERVER_IP, 80),
        42,
    );
    let mut now = clock.get();
    client.start_client(
        client_cfg(32, 1),
        now,
        Duration::from_millis(200),
        Duration::ZERO,
    );
    let mut most = 0;
    while now < Instant::from_millis(201) || client.client_active() > 0 {
        clock.set(now);
        client.poll(now, &mut c);
        server.poll(now, &mut s);
        most = most.max(server.connections());
        now += Duration::from_micros(20);
        assert!(now < Instant::from_millis(5_000), "the client's load ended");
    }
    let (cs, ss) = (&client.stats, &server.stats);
    eprintln!(
        "flood {:?}; opened {} responses {}; server: cookies sent {} accepted {}, most connections {most}",
        c.stats, cs.opened, cs.responses, ss.syn_cookies_sent, ss.syn_cookies_accepted
    );
    assert!(c.stats.syns_sent >= 39_000, "{:?}", c.stats);
    assert!(ss.syn_cookies_sent > 35_000, "past the limit: cookies");
    assert!(most <= limit + 32, "half-open held to the limit: {most}");
    assert!(
        ss.syn_cookies_accepted > 0,
        "the client got in through cookies"
    );
    assert!(cs.opened > 1_000, "only {} connections", cs.opened);
    assert_eq!(cs.responses, cs.opened, "every connection served");
    assert_eq!(cs.abnormal_closes(), 0, "{:?}", cs.closes_map());
    assert_eq!(drops(cs, "tx_full") + drops(ss, "tx_full"), 0);
    // The flood over, its half-open connections give up (SYN-ACK retries)
    // and leave; nothing is left behind.
    let mut s2 = FloodNic::new(
        c.into_inner(),
        || Instant::ZERO,
        FloodRate::PerSecond(1),
        CLIENT_MAC,
        SERVER_MAC,
        (SERVER_IP, 80),
        1,
    );
    for _ in 0..30_000 {
        client.poll(now, &mut s2);
        server.poll(now, &mut s);
        now += Duration::from_millis(10);
        if server.connections() == 0 {
            break;
        }
    }
    assert_eq!(server.connections(), 0, "no half-open connection left");
    assert_eq!(client.connections(), 0);
}

/// Issue 12 item 4, and the shard's back-pressure (item 2): a client whose
/// own flood (`--syn-flood max`) fills the link keeps making its requests.
/// The flood only adds SYNs to an empty backlog, so those the link had no
/// room for wait ahead of the client's next frames; they are the flood's,
/// not the client's back-pressure. (Counted as the client's, they stopped it
/// from making new work in nearly every turn: no request went out.)
#[test]
fn a_client_beside_its_own_flood_at_link_rate_keeps_making_requests() {
    use sluice::tools::flood::{FloodNic, FloodRate};
    use std::cell::Cell;
    use std::rc::Rc;
    let (mut client, mut server) = pair(10_000, 100_000, FullPolicy::Rst);
    // A short link, so that the flood fills it in every turn.
    let (c, mut s) = MemNic::pair(256);
    let clock = Rc::new(Cell::new(Instant::from_millis(1)));
    let t = clock.clone();
    let mut c = FloodNic::new(
        c,
        move || t.get(),
        FloodRate::Max,
        CLIENT_MAC,
        SERVER_MAC,
        (SERVER_IP, 80),
        9,
    );
    let mut now = clock.get();
    let run = Duration::from_millis(200);
    // Requests 1 ms apart on each connection (as `--think`): timers the
    // shard runs only in turns with room.
    let mut cfg = client_cfg(16, 1_000_000);
    cfg.think = Duration::from_millis(1);
    client.start_client(cfg, now, run, Duration::ZERO);
    let turns = 10_000;
    for _ in 0..turns {
        clock.set(now);
        client.poll(now, &mut c);
        server.poll(now, &mut s);
        now += Duration::from_micros(20);
    }
    let cs = &client.stats;
    eprintln!(
        "flood {:?}; client: opened {} responses {} turns without room {}; server: cookies sent {}",
        c.stats, cs.opened, cs.responses, cs.tx_waits, server.stats.syn_cookies_sent
    );
    assert!(c.stats.link_full > turns / 2, "the flood fills the link");
    assert!(
        server.stats.syn_cookies_sent > 10_000,
        "past the limit: cookies"
    );
    // Its own frames wait for room now and then (the link is full), but
    // the flood's SYNs never hold it back.
    assert!(
        cs.tx_waits < turns / 2,
        "{} turns without room",
        cs.tx_waits
    );
    assert_eq!(cs.opened, 16);
    // 16 connections, a request each 1 ms plus the time it takes, behind
    // a link's worth of SYNs each way (~0.2 ms here): 200 ms make about
    // 2,600 responses.
    assert!(cs.responses > 2_000, "only {} responses", cs.responses);
    assert_eq!(cs.abnormal_closes(), 0, "{:?}", cs.closes_map());
}

/// Issue 12 item 4, the server's side: a SYN flood past the half-open limit
/// that keeps the server behind (every receive burst full). In such a turn
/// it answers at most `syn_budget` SYNs with cookies and drops the others
/// before parsing them, counted (`syn_shed`); every frame is accounted for.
/// A real client's SYN shed so is retransmitted and gets in (its handshake
/// through a cookie), after which its source is verified and its next
/// connections' SYNs are not shed (`syns_verified`). With the flood over
/// (the server no longer behind), a SYN from a new source is answered at
/// once again. The normal client sees no error.
#[test]
fn past_the_syn_budget_a_flood_is_shed_unparsed_and_real_clients_still_get_in() {
    use sluice::tools::flood::{FloodNic, FloodRate};
    use std::cell::Cell;
    use std::rc::Rc;
    let (mut client, mut server) = pair(10_000, 100_000, FullPolicy::Rst);
    let budget = server.cfg.syn_budget.expect("a budget by default");
    let limit = server.cfg.tcp.syn_cookie_threshold;
    let (c, mut s) = MemNic::pair(1 << 16);
    let clock = Rc::new(Cell::new(Instant::from_millis(1)));
    let t = clock.clone();
    let mut c = FloodNic::new(
        c,
        move || t.get(),
        FloodRate::Max,
        CLIENT_MAC,
        SERVER_MAC,
        (SERVER_IP, 80),
        17,
    );
    let mut now = clock.get();
    let step = Duration::from_micros(20);
    // The flood alone: the half-open limit fills, then every turn is behind.
    let mut over_budget_turns = 0;
    for _ in 0..2_000 {
        clock.set(now);
        c.flush();
        c.rx(&mut |_| {});
        let before = server.stats;
        let n = server.poll(now, &mut s);
        let cookies = server.stats.syn_cookies_sent - before.syn_cookies_sent;
        let shed = drops(&server.stats, "syn_shed") - drops(&before, "syn_shed");
        let accepted = server.stats.accepted - before.accepted;
        assert_eq!(n, 32, "the flood keeps every burst full");
        assert_eq!(
            cookies + shed + accepted,
            32,
            "each SYN answered, accepted or shed"
        );
        if before.rx_full_bursts > 0 && server.connections() >= limit && accepted == 0 {
            assert!(cookies <= budget as u64, "{cookies} answers in a turn");
            over_budget_turns += u64::from(shed > 0);
        }
        now += step;
    }
    assert_eq!(server.connections(), limit, "half-open held to the limit");
    assert!(over_budget_turns > 1_900, "{over_budget_turns} turns shed");
    let ss = &server.stats;
    assert_eq!(ss.rx_full_bursts, 2_000);
    assert!(drops(ss, "syn_shed") > 1_900 * (32 - budget as u64));
    let malformed: u64 = ["bad_checksum", "malformed", "truncated"]
        .iter()
        .map(|r| drops(ss, r))
        .sum();
    assert_eq!(malformed, 0);

    // A real client beside the flood: 40 connections, a request each, their
    // SYNs together (more than a turn's budget).
    let mut cfg = client_cfg(40, 1);
    cfg.open_burst = 40;
    client.start_client(cfg, now, Duration::from_millis(1), Duration::ZERO);
    let opened_at = now;
    while now < opened_at + Duration::from_millis(2) || client.client_active() > 0 {
        clock.set(now);
        client.poll(now, &mut c);
        server.poll(now, &mut s);
        now += step;
        assert!(
            now < Instant::from_millis(20_000),
            "the client's load ended"
        );
    }
    let (cs, ss) = (&client.stats, &server.stats);
    eprintln!(
        "flood {:?}; client: opened {} responses {} retransmits {}; server: cookies sent {} \
         accepted {}, shed {}, verified {}",
        c.stats,
        cs.opened,
        cs.responses,
        cs.tcp.retransmits,
        ss.syn_cookies_sent,
        ss.syn_cookies_accepted,
        drops(ss, "syn_shed"),
        ss.syns_verified
    );
    assert_eq!(cs.opened, 40);
    assert_eq!(cs.responses, 40, "every connection served");
    assert_eq!(cs.abnormal_closes(), 0, "{:?}", cs.closes_map());
    assert!(ss.syn_cookies_accepted >= 1, "in through a cookie");
    // Its first SYNs (from one source) went out together: those the budget
    // did not reach were shed and retransmitted, and once one handshake had
    // completed, the retransmissions were let through.
    assert!(cs.tcp.retransmits > 0, "some of its SYNs were shed");
    assert!(ss.syns_verified > 0, "its source verified");

    // Its source is verified now: more of its connections open while the
    // flood goes on, their SYNs not shed.
    let retransmits = client.stats.tcp.retransmits;
    client.start_client(
        client_cfg(8, 1),
        now,
        Duration::from_millis(1),
        Duration::ZERO,
    );
    let opened_at = now;
    while now < opened_at + Duration::from_millis(2) || client.client_active() > 0 {
        clock.set(now);
        client.poll(now, &mut c);
        server.poll(now, &mut s);
        now += step;
        assert!(now < opened_at + Duration::from_secs(20));
    }
    assert_eq!(client.stats.tcp.retransmits, retransmits);
    assert_eq!(client.stats.responses, 48);
    assert!(
        now < opened_at + Duration::from_millis(500),
        "no SYN waited for a retransmission: {:?}",
        now.saturating_since(opened_at)
    );

    // The flood over: not behind, so a SYN from a new source is answered
    // at once (a cookie while the flood's half-open connections linger).
    let mut quiet = FloodNic::new(
        c.into_inner(),
        || Instant::ZERO,
        FloodRate::PerSecond(1),
        CLIENT_MAC,
        SERVER_MAC,
        (SERVER_IP, 80),
        1,
    );
    // What the link still holds of the flood drains first.
    for _ in 0..10_000 {
        let n = server.poll(now, &mut s);
        client.poll(now, &mut quiet);
        now += step;
        if n < 32 {
            break;
        }
    }
    let shed = drops(&server.stats, "syn_shed");
    let mut cfg = client_cfg(1, 1);
    cfg.src_first = Ipv4Addr::new(10, 1, 0, 3);
    cfg.src_count = 1;
    client.start_client(cfg, now, Duration::from_millis(1), Duration::ZERO);
    let opened_at = now;
    while now < opened_at + Duration::from_millis(2) || client.client_active() > 0 {
        client.poll(now, &mut quiet);
        server.poll(now, &mut s);
        now += step;
        assert!(now < opened_at + Duration::from_secs(20));
    }
    // (Closed loop: connections that end within the millisecond it opens
    // for are followed by more.)
    assert!(client.stats.responses > 48);
    assert_eq!(client.stats.responses, client.stats.opened);
    assert_eq!(drops(&server.stats, "syn_shed"), shed, "nothing shed");
    assert!(now < opened_at + Duration::from_millis(100));
    assert_eq!(client.stats.abnormal_closes(), 0);
}
