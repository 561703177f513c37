//! What a SYN flood costs each side, in instructions: the server shard and
//! the load generator's shard of `sluice bench --syn-flood max` (the client's
//! NIC wrapped in `tools::flood::FloodNic`), joined by a real DPDK memif pair
//! and polled in turn on one thread with a virtual clock, so that callgrind
//! counts the same on every run (as bench/stack_cost.rs, kept apart so that
//! a second NIC type does not change how that harness is compiled).
//!
//!   scripts/flood-instructions.sh       # runs this under callgrind
//!
//! The server's turns and the client's are separate functions
//! (`flood_server_turn`, `flood_client_turn`): each one's instructions over
//! the SYNs the server received (the client's: over those it sent) is what
//! a SYN costs that side. Beside the flood, the client keeps
//! `SLUICE_CONCURRENCY` (8) keep-alive connections busy. Environment:
//! `SLUICE_WARMUP`, `SLUICE_COUNT` (SYNs received by the server before and in
//! the measured part), `SLUICE_SYN_BUDGET` (the server's `syn_budget`: a
//! number, or `off`).

#[path = "memif_pair.rs"]
mod memif_pair;
use sluice::app::{ClientConfig, Request, ServerApp, http};
use sluice::dpdk::{Eal, EalOptions, MemoryMode, PktPool};
use sluice::shard::{DpdkNic, Iface, Nic, Stack, StackConfig};
use sluice::tcp::TcpConfig;
use sluice::time::Instant;
use sluice::tools::flood::{FloodNic, FloodRate, SynBudget};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 0);
/// Virtual time a turn.
const TURN_NS: u64 = 20_000;

/// The client's turn. Not inlined: callgrind counts it apart.
#[inline(never)]
fn flood_client_turn<N: Nic>(client: &mut Stack, now: Instant, nic: &mut N) {
    client.poll(now, nic);
}

/// The server's turn. Not inlined: counted apart.
#[inline(never)]
fn flood_server_turn(server: &mut Stack, now: Instant, nic: &mut DpdkNic) {
    server.poll(now, nic);
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Run by `cargo test --all-targets` (no count given): a short smoke run.
    let smoke = std::env::var_os("SLUICE_COUNT").is_none();
    let (warmup, count) = if smoke {
        (2_000, 5_000)
    } else {
        (
            env_u64("SLUICE_WARMUP", 20_000),
            env_u64("SLUICE_COUNT", 50_000),
        )
    };
    let budget: SynBudget = match std::env::var("SLUICE_SYN_BUDGET") {
        Ok(b) => b.parse()?,
        Err(_) => SynBudget::default(),
    };
    let concurrency = env_u64("SLUICE_CONCURRENCY", 8) as u32;
    let sock = format!("/tmp/sluice-flood-cost-{}.sock", std::process::id());
    let vdevs = sluice::tools::memif_pair(&sock, ",rsize=12", false).to_vec();
    let opts = EalOptions {
        vdevs,
        lcores: Some("0".into()),
        no_huge_mb: 512,
        memory: Some(MemoryMode::NoHuge { mb: 512 }),
        pci: false,
        log_level: "error".into(),
        extra: vec![],
    };
    let eal = match Eal::init(&opts) {
        Ok(e) => e,
        Err(e) if smoke && !is_root() => {
            println!("flood_cost: skipped: EAL needs root here ({e})");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let pool = Arc::new(PktPool::new("flood_pool", 32767, 256, -1)?);
    let (s_end, c_end) = memif_pair::memif_pair(&pool)?;
    let (sport, cport) = (s_end.port, c_end.port);
    let (squeue, cqueue) = (s_end.queue, c_end.queue);
    let (smac, cmac) = (s_end.mac, c_end.mac);

    let tcp = TcpConfig::default();
    let start = Instant(1_000_000_000);
    let mut scfg = StackConfig::new(Iface::new(smac, SERVER_IP), tcp.clone());
    scfg.seed = Some(1);
    scfg.capacity = 1 << 16;
    scfg.syn_budget = budget.0;
    let mut server = Stack::new(scfg, start);
    server.listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(100, 0));
    let mut ccfg = StackConfig::new(Iface::new(cmac, CLIENT_IP), tcp);
    ccfg.seed = Some(2);
    ccfg.capacity = 1 << 16;
    let mut client = Stack::new(ccfg, start);
    client.add_neighbour(SERVER_IP, smac);
    client.start_client(
        ClientConfig {
            target: SocketAddrV4::new(SERVER_IP, 80),
            src_first: CLIENT_IP,
            src_count: 1,
            ports: (1024, 65535),
            connections: concurrency,
            requests: u32::MAX,
            cps: 0,
            rps: 0,
            echo: None,
            request_list: Request::only(
                http::request_sized("10.0.0.2", "/", false, 0),
                http::request_sized("10.0.0.2", "/", false, 0),
            ),
            think: Duration::ZERO,
            open_burst: 32,
        },
        start,
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    let mut snic = DpdkNic::new(squeue, pool.clone());
    let mut cnic = DpdkNic::new(cqueue, pool.clone());
    let now = std::cell::Cell::new(start);
    let mut f = FloodNic::new(
        &mut cnic,
        || now.get(),
        FloodRate::Max,
        cmac,
        smac,
        (SERVER_IP, 80),
        5,
    );
    let turn =
        |f: &mut FloodNic<_, _>, server: &mut Stack, client: &mut Stack, snic: &mut DpdkNic| {
            now.set(Instant(now.get().0 + TURN_NS));
            flood_client_turn(client, now.get(), f);
            flood_server_turn(server, now.get(), snic);
        };
    while server.stats.rx_packets < warmup {
        turn(&mut f, &mut server, &mut client, &mut snic);
    }
    let (s0, f0) = (server.stats, f.stats);
    let c0 = client.stats;
    let mut turns = 0u64;
    while server.stats.rx_packets < s0.rx_packets + count {
        turn(&mut f, &mut server, &mut client, &mut snic);
        turns += 1;
    }
    let (s, c, fs) = (server.stats, client.stats, f.stats);
    println!("syn budget: {budget}");
    println!("measured turns: {turns}");
    println!("server frames received: {}", s.rx_packets - s0.rx_packets);
    println!("server frames sent: {}", s.tx_packets - s0.tx_packets);
    println!(
        "server cookies sent: {}",
        s.syn_cookies_sent - s0.syn_cookies_sent
    );
    println!(
        "server syns shed: {}",
        s.dropped(sluice::stats::DropReason::SynShed)
            - s0.dropped(sluice::stats::DropReason::SynShed)
    );
    println!("flood syns sent: {}", fs.syns_sent - f0.syns_sent);
    println!(
        "flood answers dropped: {}",
        fs.answers_dropped - f0.answers_dropped
    );
    println!("client responses: {}", c.responses - c0.responses);
    let errors = c.app_errors + s.app_errors + c.non_2xx;
    println!("errors: {errors}");
    drop((server, client, snic, cnic));
    if let Err(e) = sluice::tools::close_pair(&sport, &cport) {
        eprintln!("flood_cost: closing the memif pair: {e:#}");
    }
    drop(pool);
    drop(eal);
    let _ = std::fs::remove_file(&sock);
    if errors > 0 {
        return Err(format!("{errors} application errors").into());
    }
    Ok(())
}
