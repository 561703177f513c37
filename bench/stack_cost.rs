//! Whole-stack cost of a connection, both sides: the two shards `sluice bench`
//! builds (an HTTP server and the load generator), joined by a real DPDK memif
//! pair, polled in turn on one thread with a virtual clock, so that valgrind's
//! callgrind counts the same instructions on every run.
//!
//!   scripts/stack-instructions.sh       # the figures (runs this under callgrind)
//!
//! Environment: `SLUICE_MODE=cps|keepalive` (short connections, one request
//! each, the server closing first; or requests over kept-alive connections),
//! `SLUICE_WARMUP` and `SLUICE_COUNT` (connections or requests before and in
//! the measured part), `SLUICE_CONCURRENCY` (connections at once, default 64),
//! `SLUICE_ZERO_COPY=1` (the memif client end runs zero-copy; by default it
//! copies, as in `sluice bench`), `SLUICE_FAMILY=4|6` (IPv4, the default, or
//! both shards over IPv6: `Stack<Ipv6Addr>`, as `sluice bench --family 6`).
//! `SLUICE_STALLS=SECS` (keep-alive, for scale work, not counted): instead,
//! opens the connections, then runs SECS of virtual time (`SLUICE_TURN_NS`
//! a turn, default 20,000; `SLUICE_THINK_MS` between requests, default
//! 20,000) and prints the longest turns in wall-clock time: work that grows
//! with the number of connections and is done at once shows up there.
//! Counted (callgrind `--toggle-collect`): `measured_loop`, whose completed
//! connections or requests the script divides by; and, for short
//! connections, `deferred_timer_turn`, the timer work they leave for later.
//!
//! The deferred part. The measured loop spans a few ms of virtual time
//! (`TURN_NS` a turn), less than RTO.min (200 ms) and far less than 2MSL
//! (60 s), so what a connection costs once it has ended never runs in it:
//! its two handshake timer entries (client and server, `Stack::opening`,
//! popped at RTO.min and passed over, the connection gone) and the server's
//! TIME_WAIT record, ended at 2MSL. So after the loop the client opens no
//! more, the connections in flight finish (not counted), and
//! `deferred_phase` moves virtual time through the shards' timer deadlines,
//! `DEFERRED_STEP_NS` (1 ms) at a time, calling each shard's timer
//! processing (`Stack::run_timers_alone`, the `run_timers` of its turn) when
//! something is due, and nothing else of a turn: no receive poll, which in
//! the 60 s would be tens of millions of empty polls that no connection
//! causes. The script divides that phase's instructions by the TIME_WAIT
//! records it ended (`time_wait_expired`: one a connection, the warm-up's
//! included, as are their handshake entries) and adds the result to the
//! loop's figure. The step's implication: a call ends a millisecond's
//! entries (hundreds) at once, where a real shard, running its timers every
//! turn, microseconds apart, ends a few a turn. Instructions do not depend
//! on the batch beyond the call's fixed cost (the clock, the empty checks),
//! which a real shard pays in every turn anyway, timers due or not (counted
//! here in every turn of the loop); so the phase counts each entry's own
//! work. What it does not show is time: a real shard's expiry reads records
//! gone cold in the cache. Before the phase, `idle_timer_calls` makes calls
//! with nothing due yet, profiled apart (the script dumps the profile as it
//! returns), so the script can print a bound on the calls' fixed cost within
//! the phase.
//! Keep-alive connections stay open through the run: no deferred phase.

#[path = "memif_pair.rs"]
mod memif_pair;
use sluice::app::{ClientConfig, Request, ServerApp, http};
use sluice::dpdk::{Eal, EalOptions, MemoryMode, PktPool};
use sluice::shard::stack::StackFamily;
use sluice::shard::{DpdkNic, Iface, Stack, StackConfig};
use sluice::tcp::TcpConfig;
use sluice::time::Instant;
use sluice::wire::{FamilySocketAddr, Ipv6Range};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 0);
const SERVER_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const CLIENT_NET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0);

/// What the two shards are per family.
trait Family: StackFamily {
    const SERVER: Self;
    /// The interface of the server (`client` false) or the client, whose
    /// sources are 2^16 addresses.
    fn iface(mac: sluice::wire::EthernetAddress, client: bool) -> Iface;
    /// Starts the client's load (`cfg` names IPv4 sources and target).
    fn start(c: &mut Stack<Self>, cfg: ClientConfig, now: Instant);
}

impl Family for Ipv4Addr {
    const SERVER: Self = SERVER_IP;
    fn iface(mac: sluice::wire::EthernetAddress, client: bool) -> Iface {
        if client {
            let mut iface = Iface::new(mac, CLIENT_IP);
            iface.ip_count = 1 << 16;
            iface
        } else {
            Iface::new(mac, SERVER_IP)
        }
    }
    fn start(c: &mut Stack<Self>, cfg: ClientConfig, now: Instant) {
        c.start_client(cfg, now, Duration::from_secs(3600), Duration::ZERO);
    }
}

impl Family for Ipv6Addr {
    const SERVER: Self = SERVER_IP6;
    fn iface(mac: sluice::wire::EthernetAddress, client: bool) -> Iface {
        let ip6 = if client {
            Ipv6Range::prefix(CLIENT_NET6, 112).unwrap()
        } else {
            Ipv6Range::single(SERVER_IP6)
        };
        Iface {
            ip_count: 0,
            ..Iface::new(mac, Ipv4Addr::UNSPECIFIED)
        }
        .with_ipv6(ip6)
    }
    fn start(c: &mut Stack<Self>, cfg: ClientConfig, now: Instant) {
        let cfg = ClientConfig {
            src_first: Ipv4Addr::UNSPECIFIED,
            ..cfg
        };
        let sources = Ipv6Range::prefix(CLIENT_NET6, 112).unwrap();
        let target = SocketAddrV6::new(SERVER_IP6, 80, 0, 0);
        c.start_client_to(
            cfg,
            target,
            sources,
            now,
            Duration::from_secs(3600),
            Duration::ZERO,
        );
    }
}
/// Virtual time per turn of the two shards: about what a turn takes on a
/// real core, so timers behave as in `sluice bench`.
const TURN_NS: u64 = 1_000;

/// `SLUICE_STALLS`: turns of `turn_ns` virtual time for `secs`, each timed on
/// the wall clock; prints the longest and how many took over 1 and 10 ms.
fn stalls<A: Family>(p: &mut Pair<A>, secs: u64, turn_ns: u64) {
    let turns = secs * 1_000_000_000 / turn_ns;
    let (mut over1, mut over10, mut longest) = (0u64, 0u64, Vec::<(u64, f64)>::new());
    let responses = p.client.stats.responses;
    let wall = std::time::Instant::now();
    for _ in 0..turns {
        let t0 = std::time::Instant::now();
        p.now = Instant(p.now.0 + turn_ns);
        p.client.poll(p.now, &mut p.cnic);
        p.server.poll(p.now, &mut p.snic);
        let us = t0.elapsed().as_micros() as u64;
        over1 += u64::from(us > 1_000);
        over10 += u64::from(us > 10_000);
        if longest.len() < 5 || us > longest[4].0 {
            longest.push((us, p.now.0 as f64 / 1e9));
            longest.sort_by_key(|l| std::cmp::Reverse(l.0));
            longest.truncate(5);
        }
    }
    println!(
        "stalls: {turns} turns of {turn_ns} ns in {:.1} s wall; {} responses; turns over 1 ms: {over1}, over 10 ms: {over10}",
        wall.elapsed().as_secs_f64(),
        p.client.stats.responses - responses
    );
    for (us, at) in longest {
        println!("stalls: longest turn {us} us at virtual {at:.3} s");
    }
    let (c, s) = (&p.client.stats, &p.server.stats);
    println!(
        "stalls: retransmits {}, errors {}",
        c.tcp.retransmits + s.tcp.retransmits,
        c.app_errors + s.app_errors + c.non_2xx
    );
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Pair<A: Family> {
    server: Stack<A>,
    client: Stack<A>,
    snic: DpdkNic,
    cnic: DpdkNic,
    now: Instant,
    keep_alive: bool,
}

impl<A: Family> Pair<A> {
    /// Connections (cps) or responses (keep-alive) the client completed.
    fn done(&self) -> u64 {
        if self.keep_alive {
            self.client.stats.responses
        } else {
            self.client.stats.completed
        }
    }

    fn turn(&mut self) {
        self.now = Instant(self.now.0 + TURN_NS);
        self.client.poll(self.now, &mut self.cnic);
        self.server.poll(self.now, &mut self.snic);
    }
}

/// The counted part: turns until `count` more are done. Not inlined, so
/// callgrind can collect exactly this.
#[inline(never)]
fn measured_loop<A: Family>(p: &mut Pair<A>, count: u64) -> u64 {
    let target = p.done() + count;
    let mut turns = 0u64;
    while p.done() < target {
        p.turn();
        turns += 1;
    }
    turns
}

/// The deferred phase's step: its calls of a shard's timer processing are at
/// multiples of this much virtual time (1 ms: a thousand of the exchange's
/// turns), each expiring all that came due since the last.
const DEFERRED_STEP_NS: u64 = 1_000_000;

/// Calls of the timer processing with nothing due, before the deferred phase:
/// what one costs bounds the part of the phase that is a call's fixed cost
/// (the script prints the bound).
const IDLE_CALLS: u64 = 100;

/// One shard's timer processing, and nothing else of a turn: the deferred
/// phase's counted part (callgrind collects this function, toggled on entry
/// and off at exit, so nothing it calls may be toggled too).
#[inline(never)]
fn deferred_timer_turn<A: Family>(s: &mut Stack<A>, now: Instant) {
    s.run_timers_alone(now);
}

/// What the connections leave behind for later, expired: after the exchange,
/// with every connection ended, virtual time moves on through the shards'
/// timer deadlines (handshake entries at RTO.min, TIME_WAIT records at
/// 2MSL), a step of `DEFERRED_STEP_NS` at a time, and each shard with
/// something due runs its timers (`deferred_timer_turn`, the only counted
/// part). Returns the calls made.
fn deferred_phase<A: Family>(p: &mut Pair<A>) -> Result<u64, String> {
    let mut calls = 0u64;
    while let Some(next) = [
        p.client.next_timer_deadline(),
        p.server.next_timer_deadline(),
    ]
    .into_iter()
    .flatten()
    .min()
    {
        let at = next.0.div_ceil(DEFERRED_STEP_NS) * DEFERRED_STEP_NS;
        p.now = Instant(p.now.0.max(at));
        let now = p.now;
        for s in [&mut p.client, &mut p.server] {
            if s.next_timer_deadline().is_some_and(|d| d <= now) {
                deferred_timer_turn(s, now);
                calls += 1;
            }
        }
        if calls > 10_000_000 {
            return Err("the deferred phase's timers do not run out".into());
        }
    }
    Ok(calls)
}

/// `IDLE_CALLS` calls of each shard's timer processing with nothing due yet
/// (before `deferred_phase`: the earliest entry is RTO.min from the run's
/// start, the virtual time here advancing a turn a call). Counted on its own
/// (callgrind collects this function, and the script's run dumps the
/// profile as it returns), so it calls `run_timers_alone` itself, not the
/// toggled `deferred_timer_turn`.
#[inline(never)]
fn idle_timer_calls<A: Family>(p: &mut Pair<A>) {
    for _ in 0..IDLE_CALLS {
        p.now = Instant(p.now.0 + TURN_NS);
        let now = p.now;
        p.client.run_timers_alone(now);
        p.server.run_timers_alone(now);
    }
}

/// What `deferred_part` did.
struct Deferred {
    /// Connections whose timers it expired: the TIME_WAIT records it ended.
    connections: u64,
    /// Counted calls of a shard's timer processing.
    calls: u64,
    /// Virtual time it spanned, in milliseconds.
    virtual_ms: u64,
}

/// After the measured loop (short connections): the client opens no more,
/// the connections in flight finish (not counted), then `idle_timer_calls`
/// (counted apart), then `deferred_phase` expires every timer they all left
/// (counted).
/// `start` is when the run began: the exchange must end before its first
/// handshake entry is due, or part of the deferred work would have run
/// (and been counted) in the measured loop.
fn deferred_part<A: Family>(p: &mut Pair<A>, start: Instant) -> Result<Deferred, String> {
    // (The shards' RTO.min: `run` leaves TcpConfig's default.)
    let rto_min = TcpConfig::default().rto_min.as_micros() * 1_000;
    p.client.stop_client(p.now);
    let mut turns = 0u64;
    while p.client.connections() + p.server.connections() > 0 {
        p.turn();
        turns += 1;
        if turns > 1_000_000 {
            return Err("the connections in flight did not finish".into());
        }
    }
    let expired = |p: &Pair<A>| p.client.stats.time_wait_expired + p.server.stats.time_wait_expired;
    if p.now.0 - start.0 >= rto_min || expired(p) > 0 {
        return Err(format!(
            "the exchange took {} ms of virtual time, past RTO.min: its timers \
             began to expire in it",
            (p.now.0 - start.0) / 1_000_000
        ));
    }
    idle_timer_calls(p);
    let now = p.now;
    if [&p.client, &p.server]
        .iter()
        .any(|s| s.next_timer_deadline().is_some_and(|d| d <= now))
    {
        return Err("timers came due during the idle calls".into());
    }
    let from = p.now;
    let calls = deferred_phase(p)?;
    let d = Deferred {
        connections: expired(p),
        calls,
        virtual_ms: (p.now.0 - from.0) / 1_000_000,
    };
    if p.client.time_wait_records() + p.server.time_wait_records() > 0 {
        return Err("TIME_WAIT records left after the deferred phase".into());
    }
    Ok(d)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::var("SLUICE_FAMILY").as_deref() {
        Ok("4") | Err(_) => run::<Ipv4Addr>(),
        Ok("6") => run::<Ipv6Addr>(),
        Ok(other) => Err(format!("SLUICE_FAMILY={other}: 4 or 6").into()),
    }
}

fn run<A: Family>() -> Result<(), Box<dyn std::error::Error>> {
    let keep_alive = match std::env::var("SLUICE_MODE").as_deref() {
        Ok("keepalive") => true,
        Ok("cps") | Err(_) => false,
        Ok(other) => return Err(format!("SLUICE_MODE={other}: cps or keepalive").into()),
    };
    // Run by `cargo test --all-targets` (no `--bench`, no count given): a
    // short smoke run that the harness still works, not the figure.
    let smoke =
        std::env::var_os("SLUICE_COUNT").is_none() && !std::env::args().any(|a| a == "--bench");
    let (warmup, count) = if smoke {
        (200, 1_000)
    } else {
        (
            env_u64("SLUICE_WARMUP", 20_000),
            env_u64("SLUICE_COUNT", 50_000),
        )
    };
    let concurrency = env_u64("SLUICE_CONCURRENCY", 64) as u32;
    let stall_secs = env_u64("SLUICE_STALLS", 0);
    let capacity = (1usize << 16).max(concurrency as usize + concurrency as usize / 8);

    let sock = format!("/tmp/sluice-stack-cost-{}.sock", std::process::id());
    // The pair `sluice bench` makes (copying), or with its client end
    // zero-copy if asked.
    let zero_copy = std::env::var("SLUICE_ZERO_COPY").as_deref() == Ok("1");
    let vdevs = sluice::tools::memif_pair(&sock, ",rsize=12", zero_copy).to_vec();
    let opts = EalOptions {
        vdevs,
        lcores: Some("0".into()),
        no_huge_mb: 512,
        // No hugepages: the same under valgrind and on any machine.
        memory: Some(MemoryMode::NoHuge { mb: 512 }),
        pci: false,
        log_level: "error".into(),
        extra: vec![],
    };
    let eal = match Eal::init(&opts) {
        Ok(e) => e,
        Err(e) if smoke && !is_root() => {
            // Counted as skipped by scripts/test.sh, never as passed.
            println!("stack_cost: skipped: EAL needs root here ({e})");
            if let Some(log) = std::env::var_os("SLUICE_SKIP_LOG") {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(log)?;
                writeln!(f, "bench stack_cost (smoke): needs root for EAL")?;
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let pool = Arc::new(PktPool::new("cost_pool", 32767, 256, -1)?);
    let (s_end, c_end) = memif_pair::memif_pair(&pool)?;
    let (sport, cport) = (s_end.port, c_end.port);
    let (squeue, cqueue) = (s_end.queue, c_end.queue);
    let (smac, cmac) = (s_end.mac, c_end.mac);

    let tcp = TcpConfig {
        mss: A::MSS_1500,
        ..TcpConfig::default()
    };
    let now = Instant(1_000_000_000);
    let mut scfg = StackConfig::new(A::iface(smac, false), tcp.clone());
    scfg.capacity = capacity;
    scfg.seed = Some(1);
    // Every connection the run completes, and those still open when it ends.
    scfg.time_wait_reserve = (warmup + count + u64::from(concurrency)) as usize;
    let mut server = Stack::<A>::new_family(scfg, now);
    server.listen(
        A::SocketAddr::from_parts(A::SERVER, 80),
        ServerApp::http(100, 0),
    );
    let mut ccfg = StackConfig::new(A::iface(cmac, true), tcp);
    ccfg.capacity = capacity;
    ccfg.seed = Some(2);
    let mut client = Stack::<A>::new_family(ccfg, now);
    client.add_neighbour(A::SERVER, smac);
    let host = match A::SERVER.to_ip() {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    A::start(
        &mut client,
        ClientConfig {
            target: SocketAddrV4::new(SERVER_IP, 80),
            src_first: CLIENT_IP,
            src_count: 1 << 16,
            ports: (1024, 65535),
            connections: concurrency,
            requests: if keep_alive { u32::MAX } else { 1 },
            cps: 0,
            rps: 0,
            echo: None,
            // The server closes first, as wrk's "Connection: close" asks.
            request_list: Request::only(
                http::request_sized(&host, "/", false, 0),
                http::request_sized(&host, "/", !keep_alive, 0),
            ),
            think: if stall_secs > 0 {
                Duration::from_millis(env_u64("SLUICE_THINK_MS", 20_000))
            } else {
                Duration::ZERO
            },
            open_burst: 32,
        },
        now,
    );
    let mut p = Pair {
        server,
        client,
        snic: DpdkNic::new(squeue, pool.clone()),
        cnic: DpdkNic::new(cqueue, pool.clone()),
        now,
        keep_alive,
    };
    // Room up front for every connection the run opens, as `sluice bench`
    // makes for its own: no table, wheel or handshake queue grows (a copy)
    // mid-run. (In virtual time the run is shorter than RTO.min, so the
    // handshake queue, whose entries expire after that, holds them all; a
    // real shard's holds one RTO.min of openings.)
    let total = (warmup + count + u64::from(concurrency)) as usize;
    p.client.reserve_connections(total);
    p.server.reserve_connections(total);
    p.client.reserve_handshake_timers(total);
    p.server.reserve_handshake_timers(total);
    if stall_secs > 0 {
        // As `sluice bench` does: no table or wheel grows mid-run.
        p.client.reserve_connections(capacity);
        p.server.reserve_connections(capacity);
        let turn_ns = env_u64("SLUICE_TURN_NS", 20_000);
        let wall = std::time::Instant::now();
        let mut turns = 0u64;
        while p.server.connections() < concurrency as usize {
            p.now = Instant(p.now.0 + turn_ns);
            p.client.poll(p.now, &mut p.cnic);
            p.server.poll(p.now, &mut p.snic);
            turns += 1;
            if turns > 10_000_000 {
                return Err("the connections did not all open".into());
            }
        }
        println!(
            "stalls: {concurrency} connections open in {:.1} s wall",
            wall.elapsed().as_secs_f64()
        );
        stalls(&mut p, stall_secs, turn_ns);
        drop(p);
        let _ = sport.stop();
        let _ = cport.stop();
        let _ = cport.close();
        std::thread::sleep(Duration::from_millis(50));
        let _ = sport.close();
        drop(pool);
        drop(eal);
        let _ = std::fs::remove_file(&sock);
        return Ok(());
    }
    // Warm-up: tables, pools and rings reach their steady sizes.
    let mut turns = 0u64;
    while p.done() < warmup {
        p.turn();
        turns += 1;
        if turns > 100 * (warmup + 1000) {
            return Err("warm-up made no progress (see the counters)".into());
        }
    }
    let before = (p.client.stats, p.server.stats);
    let turns = measured_loop(&mut p, count);
    let (c, s) = (p.client.stats, p.server.stats);
    let deferred = if keep_alive {
        None
    } else {
        Some(deferred_part(&mut p, now)?)
    };
    let errors = c.app_errors + s.app_errors + c.non_2xx;
    let retrans = c.tcp.retransmits + s.tcp.retransmits;
    println!("mode: {}", if keep_alive { "keepalive" } else { "cps" });
    println!("family: IPv{}", A::VERSION);
    println!(
        "link: memif, rings of 4096, client end {}",
        if cport.zero_copy() {
            "zero-copy (SLUICE_ZERO_COPY=1; `sluice bench` copies)"
        } else {
            "copying (as in `sluice bench`)"
        }
    );
    println!("measured connections: {}", c.completed - before.0.completed);
    println!("measured requests: {}", c.responses - before.0.responses);
    println!(
        "measured packets: {}",
        c.tx_packets - before.0.tx_packets + s.tx_packets - before.1.tx_packets
    );
    println!(
        "measured frames received: {}",
        c.rx_packets - before.0.rx_packets + s.rx_packets - before.1.rx_packets
    );
    println!("measured turns: {turns}");
    if let Some(d) = deferred {
        println!("deferred connections: {}", d.connections);
        println!("deferred timer calls: {}", d.calls);
        println!("deferred idle calls: {}", 2 * IDLE_CALLS);
        println!("deferred virtual ms: {}", d.virtual_ms);
    }
    println!("errors: {errors}");
    println!("retransmits: {retrans}");
    drop(p);
    // As `sluice bench` does: the client end first, the server end once its
    // side of the teardown is done (else memif frees its regions twice).
    if let Err(e) = sluice::tools::close_pair(&sport, &cport) {
        eprintln!("stack_cost: closing the memif pair: {e:#}");
    }
    drop(pool);
    drop(eal);
    let _ = std::fs::remove_file(&sock);
    if errors > 0 {
        return Err(format!("{errors} application errors: the figure would mean nothing").into());
    }
    Ok(())
}
