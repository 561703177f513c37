//! `sluice bench`: a server shard and a client shard in one process, linked by
//! a DPDK memif pair (or net_ring), running short HTTP connections (or
//! keep-alive requests) for a fixed time, then the report. No NIC and no
//! hugepages needed.

use super::EalArgs;
use super::runtime::{LiveLine, ShardResult, parse_ip_range, parse_port_range, secs, spawn_shard};
use crate::app::{ClientConfig, ServerApp, http};
use crate::dpdk::{Eal, EthPort, Mbuf, PktPool, PortConfig, TscClock, ring_pair};
use crate::shard::{DpdkNic, Iface, Nic, Stack, StackConfig};
use crate::stats::Published;
use crate::stats::report::{Report, RunInfo, Window};
use crate::tcp::TcpConfig;
use anyhow::{Context, bail};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchLink {
    Memif,
    Ring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CloseFirst {
    Server,
    Client,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// How the two shards are linked.
    #[arg(long, value_enum, default_value = "memif")]
    pub link: BenchLink,
    /// Seconds of load (new connections stop after this).
    #[arg(short, long, default_value_t = 10.0, value_name = "SECS")]
    pub duration: f64,
    /// Seconds at the start not counted in rates and latencies.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub warmup: f64,
    /// Concurrent connections (closed loop), or the most open at once (--cps).
    #[arg(short, long, default_value_t = 64)]
    pub connections: u32,
    /// Requests per connection (1: the connections-per-second test).
    #[arg(short, long, default_value_t = 1)]
    pub requests: u32,
    /// Keep connections open for the whole run (the requests-per-second test).
    #[arg(long)]
    pub keep_alive: bool,
    /// Open loop: this many new connections per second (0: closed loop).
    #[arg(long, default_value_t = 0)]
    pub cps: u64,
    /// Which side closes first (and so holds TIME_WAIT): `server` asks with
    /// `Connection: close` on the last request, as wrk -H "Connection: close"
    /// does against nginx; `client` closes after the last response.
    #[arg(long, value_enum, default_value = "server")]
    pub close: CloseFirst,
    /// Response body bytes.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    pub body: usize,
    /// Core for the client shard (EAL's main lcore).
    #[arg(long, default_value_t = 0)]
    pub client_core: usize,
    /// Core for the server shard.
    #[arg(long, default_value_t = 1)]
    pub server_core: usize,
    /// 2MSL: how long TIME_WAIT is held, seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub time_wait: f64,
    /// Client source addresses (TIME_WAIT holds each 4-tuple for 2MSL, so a
    /// high rate needs many): an address or a prefix.
    #[arg(long, default_value = "10.1.0.0/16", value_name = "CIDR")]
    pub src_ips: String,
    /// Client source ports.
    #[arg(long, default_value = "1024-65535", value_name = "LO-HI")]
    pub src_ports: String,
    /// Write the result as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// No live line.
    #[arg(short, long)]
    pub quiet: bool,
}

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const BURST: usize = 32;

pub fn run(eal_args: &EalArgs, args: &BenchArgs) -> anyhow::Result<Report> {
    let duration = secs(args.duration, "duration")?;
    let warmup = secs(args.warmup, "warmup")?;
    let time_wait = secs(args.time_wait, "time-wait")?;
    if warmup >= duration {
        bail!(
            "--warmup ({}s) must be shorter than --duration ({}s)",
            args.warmup,
            args.duration
        );
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    super::runtime::check_capacity(
        args.connections,
        (duration.min(time_wait).as_secs_f64() * 400_000.0) as usize,
    )?;
    let (src_first, src_count) = parse_ip_range(&args.src_ips)?;
    let ports = parse_port_range(&args.src_ports)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (what, c) in [("client", args.client_core), ("server", args.server_core)] {
        if c >= cores {
            bail!(
                "--{what}-core {c}: this machine has cores 0..{} (see nproc)",
                cores - 1
            );
        }
    }
    if args.client_core == args.server_core && !args.quiet {
        eprintln!(
            "sluice bench: client and server share core {} (slower)",
            args.client_core
        );
    }

    let mut opts = eal_args.to_options();
    if opts.lcores.is_none() {
        opts.lcores = Some(args.client_core.to_string());
    }
    let sock = format!("/tmp/sluice-bench-{}.sock", std::process::id());
    if args.link == BenchLink::Memif {
        opts.vdevs.push(format!(
            "net_memif0,role=server,id=0,socket={sock},socket-abstract=no,rsize=12"
        ));
        opts.vdevs.push(format!(
            "net_memif1,role=client,id=0,socket={sock},socket-abstract=no,rsize=12"
        ));
    }
    let eal = Eal::init(&opts)?;
    if !args.quiet {
        eprintln!("sluice bench: EAL up, memory: {}", eal.memory_mode());
    }
    let pool = Arc::new(PktPool::new("bench_pool", 32767, 256, -1)?);
    let (sport, cport) = match args.link {
        BenchLink::Ring => ring_pair("bench_s", "bench_c", 2048)?,
        BenchLink::Memif => (
            EthPort::by_name("net_memif0")?,
            EthPort::by_name("net_memif1")?,
        ),
    };
    let pcfg = PortConfig::default();
    sport.configure(&pcfg, &pool)?;
    cport.configure(&pcfg, &pool)?;
    let mut squeue = sport.start(1)?.pop().context("server port has no queue")?;
    let mut cqueue = cport.start(1)?.pop().context("client port has no queue")?;
    let (smac, cmac) = (sport.mac()?, cport.mac()?);
    // memif: links come up once both sides have polled.
    let mut scratch: Vec<Mbuf> = Vec::with_capacity(BURST);
    let t0 = std::time::Instant::now();
    while !(sport.link()?.up && cport.link()?.up) {
        squeue.rx_burst(&mut scratch, BURST);
        cqueue.rx_burst(&mut scratch, BURST);
        scratch.clear();
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("the {:?} link did not come up within 10 s", args.link);
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    let tcp = TcpConfig {
        msl: time_wait / 2,
        ..TcpConfig::default()
    };
    let clock = TscClock::new();
    let stop_server = Arc::new(AtomicBool::new(false));
    let server_pub = Arc::new(Published::default());
    let server = {
        let tcp = tcp.clone();
        let pool = pool.clone();
        spawn_shard(
            "sluice-server".into(),
            args.server_core,
            clock,
            server_pub.clone(),
            stop_server.clone(),
            {
                let body = args.body;
                let server_tw = if args.close == CloseFirst::Server {
                    (duration.min(tcp.time_wait()).as_secs_f64() * 400_000.0) as usize
                } else {
                    0
                };
                move || {
                    let mut cfg = StackConfig::new(Iface::new(smac, SERVER_IP), tcp);
                    cfg.capacity = 1 << 20;
                    cfg.time_wait_reserve = server_tw;
                    let mut s = Stack::new(cfg, clock.now());
                    s.listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(body, 0));
                    (
                        s,
                        Box::new(DpdkNic::new(squeue, pool)) as Box<dyn Nic + Send>,
                    )
                }
            },
        )?
    };

    let result = drive_client(
        args,
        &tcp,
        clock,
        cmac,
        cqueue,
        &pool,
        (src_first, src_count, ports),
        (duration, warmup),
        &server_pub,
        &[&sport, &cport],
    );
    stop_server.store(true, Ordering::Relaxed);
    let server_res: anyhow::Result<ShardResult> = match server.join() {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the server shard panicked")),
    };
    let (client_res, window, measured) = result?;
    let server_res = server_res?;

    drop(scratch);
    sport.stop()?;
    cport.stop()?;
    sport.close()?;
    cport.close()?;
    drop(pool);
    drop(eal);
    let _ = std::fs::remove_file(&sock);

    let info = RunInfo {
        tool: "sluice bench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        link: format!("{:?}", args.link).to_lowercase(),
        target: format!("http://{SERVER_IP}:80/"),
        duration_s: args.duration,
        warmup_s: args.warmup,
        connections: args.connections,
        requests_per_connection: if args.keep_alive { 0 } else { args.requests },
        keep_alive: args.keep_alive,
        target_cps: args.cps,
        body_bytes: args.body,
        time_wait_s: args.time_wait,
        client_cores: vec![args.client_core],
        server_cores: vec![args.server_core],
    };
    let mut latency = client_res.latency;
    latency.merge(&server_res.latency);
    Ok(Report::build(
        info,
        &client_res.stats,
        Some(&server_res.stats),
        &latency,
        window,
        measured,
        client_res.time_wait_held + server_res.time_wait_held,
    ))
}

#[allow(clippy::too_many_arguments)]
fn drive_client(
    args: &BenchArgs,
    tcp: &TcpConfig,
    clock: TscClock,
    cmac: crate::wire::EthernetAddress,
    cqueue: crate::dpdk::Queue,
    pool: &Arc<PktPool>,
    (src_first, src_count, ports): (Ipv4Addr, u32, (u16, u16)),
    (duration, warmup): (Duration, Duration),
    server_pub: &Published,
    nic_ports: &[&EthPort],
) -> anyhow::Result<(ShardResult, (Window, Window), f64)> {
    let stop = super::stop_flag();
    let mut iface = Iface::new(cmac, src_first);
    iface.ip_count = src_count;
    let mut cfg = StackConfig::new(iface, tcp.clone());
    cfg.capacity = 1 << 20;
    // The side that closes first holds TIME_WAIT for every connection of the
    // last 2MSL: room for a fast run's worth up front.
    let held = (duration.min(tcp.time_wait()).as_secs_f64() * 400_000.0) as usize;
    if args.close == CloseFirst::Client {
        cfg.time_wait_reserve = held;
    }
    let mut stack = Stack::new(cfg, clock.now());
    let mut nic = DpdkNic::new(cqueue, pool.clone());

    // Resolve the server's MAC (ARP, with retries).
    let t0 = clock.now();
    let mut next_try = t0;
    let mut tries = 0;
    while stack.neighbour(SERVER_IP).is_none() {
        let now = clock.now();
        if now >= next_try {
            if tries == 10 {
                bail!(
                    "no ARP reply from {SERVER_IP} after 10 tries (the server shard did not answer)"
                );
            }
            tries += 1;
            stack.request_arp(SERVER_IP);
            next_try = now + Duration::from_millis(100);
        }
        stack.poll(now, &mut nic);
    }

    let client = ClientConfig {
        target: SocketAddrV4::new(SERVER_IP, 80),
        src_first,
        src_count,
        ports,
        connections: args.connections,
        requests: if args.keep_alive {
            u32::MAX
        } else {
            args.requests.max(1)
        },
        cps: args.cps,
        request: http::request(&SERVER_IP.to_string(), "/", false).into(),
        request_last: http::request(
            &SERVER_IP.to_string(),
            "/",
            args.close == CloseFirst::Server && !args.keep_alive,
        )
        .into(),
        think: Duration::ZERO,
        open_burst: 32,
    };
    let start = clock.now();
    stack.start_client(client, start, duration, warmup);
    let warm_at = start + warmup;
    let end_at = start + duration;
    let mut w0 = None;
    let mut w1 = None;
    let mut live = LiveLine::new(start);
    let mut next_line = start + Duration::from_secs(1);
    let mut drain_deadline = None;
    let mut stopped_early = false;
    loop {
        let now = clock.now();
        stack.poll(now, &mut nic);
        if w0.is_none() && now >= warm_at {
            w0 = Some((now, snapshot(&stack)));
        }
        if w1.is_none() && now >= end_at {
            w1 = Some((now, snapshot(&stack)));
            drain_deadline = Some(now + Duration::from_secs(5));
        }
        if now >= next_line {
            next_line = now + Duration::from_secs(1);
            stack.count_states();
            if !args.quiet {
                live.nic = Some(super::runtime::nic_counters(nic_ports));
                eprintln!("{}", live.line(now, &stack.stats, &server_pub.load()));
            }
        }
        if stop.load(Ordering::Relaxed) && !stopped_early {
            stopped_early = true;
            stack.stop_client(now);
            if w1.is_none() {
                w1 = Some((now, snapshot(&stack)));
            }
            drain_deadline = Some(now + Duration::from_secs(2));
        }
        if let Some(d) = drain_deadline {
            if stack.client_active() == 0 || now >= d {
                break;
            }
        }
    }
    // Let the last ACKs reach the server, then reset anything still open.
    let settle = clock.now() + Duration::from_millis(100);
    while clock.now() < settle {
        stack.poll(clock.now(), &mut nic);
    }
    stack.abort_all(clock.now());
    for _ in 0..8 {
        stack.poll(clock.now(), &mut nic);
    }
    stack.count_states();
    drop(nic);
    let (t0, a) = w0.unwrap_or((start, Window::default()));
    let (t1, b) = w1.unwrap_or((clock.now(), snapshot(&stack)));
    Ok((
        ShardResult {
            stats: stack.stats,
            time_wait_held: stack.time_wait_records() as u64,
            latency: stack.latency.clone(),
        },
        (a, b),
        (t1 - t0).as_secs_f64(),
    ))
}

fn snapshot(s: &Stack) -> Window {
    Window {
        completed: s.stats.completed,
        responses: s.stats.responses,
    }
}
