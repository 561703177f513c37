//! `sluice bench`: a server shard and a client shard in one process, linked by
//! a DPDK memif pair (or net_ring), running short HTTP connections (or
//! keep-alive requests) for a fixed time, then the report. No NIC and no
//! hugepages needed.

use super::load::LoadArgs;
#[cfg(feature = "dpdk")]
use {
    super::EalArgs,
    super::load::{self, Outcome, Times},
    super::runtime::{
        Reporter, ShardResult, open_pcap, parse_ip_range, parse_port_range, spawn_shard,
        wait_for_link,
    },
    crate::app::ServerApp,
    crate::dpdk::{Eal, EthPort, PktPool, PortConfig, Queue, TscClock, ring_pair},
    crate::shard::{DpdkNic, Iface, Nic, Stack, StackConfig},
    crate::stats::Published,
    crate::stats::report::Report,
    crate::tcp::TcpConfig,
    crate::wire::{EthernetAddress, Ipv6Range},
    anyhow::{Context, bail},
    std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6},
    std::sync::Arc,
    std::sync::atomic::{AtomicBool, Ordering},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchLink {
    Memif,
    Ring,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// How the two shards are linked.
    #[arg(long, value_enum, default_value = "memif")]
    pub link: BenchLink,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Response body bytes.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    pub body: usize,
    /// Core for the client shard (EAL's main lcore).
    #[arg(long, default_value_t = 0)]
    pub client_core: usize,
    /// Core for the server shard.
    #[arg(long, default_value_t = 1)]
    pub server_core: usize,
    /// Client source addresses (TIME_WAIT holds each 4-tuple for 2MSL, so a
    /// high rate needs many): an address or a prefix.
    #[arg(long, default_value = "10.1.0.0/16", value_name = "CIDR")]
    pub src_ips: String,
    /// Client source ports.
    #[arg(long, default_value = "1024-65535", value_name = "LO-HI")]
    pub src_ports: String,
    #[command(flatten)]
    pub flood: super::flood::FloodArgs,
    #[command(flatten)]
    pub syn_defence: super::flood::SynDefenceArgs,
    /// The address family, 4 or 6 (IPv6: the server at 2001:db8::2, the
    /// client's sources in 2001:db8:1::/N as many as --src-ips gives).
    #[arg(long, default_value = "4", value_parser = family)]
    pub family: u8,
}

/// `--family`: 4 or 6.
fn family(s: &str) -> Result<u8, String> {
    match s {
        "4" => Ok(4),
        "6" => Ok(6),
        _ => Err(format!("{s:?}: 4 (IPv4) or 6 (IPv6)")),
    }
}

#[cfg(feature = "dpdk")]
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The server's address with --family 6.
#[cfg(feature = "dpdk")]
const SERVER_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// Where --family 6 client sources start.
#[cfg(feature = "dpdk")]
const CLIENT_NET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0);

/// The IPv6 sources standing for `count` IPv4 ones: the smallest prefix of
/// `CLIENT_NET6` that holds them.
#[cfg(feature = "dpdk")]
fn sources6(count: u32) -> Ipv6Range {
    let bits = if count <= 1 {
        0
    } else {
        32 - (count - 1).leading_zeros()
    };
    Ipv6Range::prefix(CLIENT_NET6, 128 - bits as u8).expect("a prefix of at most 32 bits")
}

#[cfg(feature = "dpdk")]
pub fn run(eal_args: &EalArgs, args: &BenchArgs) -> anyhow::Result<Report> {
    let v6 = args.family == 6;
    let load = &args.load;
    let times = load.check()?;
    // Both ends of every connection live in this process.
    super::runtime::check_capacity(load.connections, load.time_wait_records(&times), 2)?;
    let host = if v6 {
        format!("[{SERVER_IP6}]")
    } else {
        SERVER_IP.to_string()
    };
    let requests = load.requests(&host, &["/".into()], None)?;
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
    if args.client_core == args.server_core && !load.quiet {
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
        // Rings of 4096: bursts of new connections do not overflow them.
        opts.vdevs
            .extend(super::memif_pair(&sock, ",rsize=12", false));
    }
    let eal = Eal::init(&opts)?;
    if !load.quiet {
        eprintln!("sluice bench: EAL up, memory: {}", eal.memory_mode());
    }
    // Both shards' frames: their rings, and each one's transmit backlog of up
    // to 16384 while the other is slow to read.
    let pool = Arc::new(PktPool::new("bench_pool", 65535, 256, -1)?);
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
    wait_for_link(
        &[&sport, &cport],
        &mut [&mut squeue, &mut cqueue],
        &format!("the {:?} link", args.link),
    )?;

    let mut tcp = load.tcp(&times);
    if v6 {
        // A 1500-byte MTU less 60 bytes of IPv6 and TCP headers.
        tcp.mss = 1440;
    }
    let clock = TscClock::new();
    let syn_budget = args.syn_defence.syn_budget.0;
    let stop_server = Arc::new(AtomicBool::new(false));
    let server_pub = Arc::new(Published::default());
    let server = if v6 {
        let tcp = tcp.clone();
        let pool = pool.clone();
        let body = args.body;
        let server_tw = if load.client_closes_first() {
            0
        } else {
            load.time_wait_records(&times)
        };
        let capacity = super::runtime::table_capacity(load.connections);
        let (keep_alive, connections) = (load.keep_alive, load.connections as usize);
        spawn_shard(
            "sluice-server".into(),
            args.server_core,
            clock,
            server_pub.clone(),
            stop_server.clone(),
            move || {
                let iface = Iface {
                    ip_count: 0,
                    ..Iface::new(smac, Ipv4Addr::UNSPECIFIED)
                }
                .with_ipv6(Ipv6Range::single(SERVER_IP6));
                let mut cfg = StackConfig::new(iface, tcp);
                cfg.capacity = capacity;
                cfg.time_wait_reserve = server_tw;
                cfg.syn_budget = syn_budget;
                let mut s = Stack::<Ipv6Addr>::new_family(cfg, clock.now());
                if keep_alive {
                    s.reserve_connections(connections);
                }
                s.listen(
                    SocketAddrV6::new(SERVER_IP6, 80, 0, 0),
                    ServerApp::http(body, 0),
                );
                s.listen(SocketAddrV6::new(SERVER_IP6, 7, 0, 0), ServerApp::Echo);
                (
                    s,
                    Box::new(DpdkNic::new(squeue, pool)) as Box<dyn Nic + Send>,
                )
            },
        )?
    } else {
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
                let server_tw = if load.client_closes_first() {
                    0
                } else {
                    load.time_wait_records(&times)
                };
                let capacity = super::runtime::table_capacity(load.connections);
                let (keep_alive, connections) = (load.keep_alive, load.connections as usize);
                move || {
                    let mut cfg = StackConfig::new(Iface::new(smac, SERVER_IP), tcp);
                    cfg.capacity = capacity;
                    cfg.time_wait_reserve = server_tw;
                    cfg.syn_budget = syn_budget;
                    let mut s = Stack::new(cfg, clock.now());
                    if keep_alive {
                        s.reserve_connections(connections);
                    }
                    s.listen(SocketAddrV4::new(SERVER_IP, 80), ServerApp::http(body, 0));
                    s.listen(SocketAddrV4::new(SERVER_IP, 7), ServerApp::Echo);
                    (
                        s,
                        Box::new(DpdkNic::new(squeue, pool)) as Box<dyn Nic + Send>,
                    )
                }
            },
        )?
    };

    let result = ClientSide {
        args,
        requests,
        times: &times,
        tcp: &tcp,
        clock: &clock,
        mac: cmac,
        queue: cqueue,
        pool: &pool,
        src: (src_first, src_count),
        ports,
        v6,
        server_mac: smac,
        server_pub: &server_pub,
        nic_ports: &[&sport, &cport],
    }
    .drive();
    stop_server.store(true, Ordering::Relaxed);
    let server_res: anyhow::Result<ShardResult> = match server.join() {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the server shard panicked")),
    };
    let outcome = result?;
    let server_res = server_res?;

    super::close_pair(&sport, &cport)?;
    drop(pool);
    drop(eal);
    let _ = std::fs::remove_file(&sock);

    let mut info = load.info(
        "sluice bench",
        format!("{:?}", args.link).to_lowercase(),
        if load.echo > 0 {
            format!("echo://{host}:7 ({} B)", load.echo)
        } else {
            format!("http://{host}:80/")
        },
        Some(args.body),
    );
    info.client_cores = vec![args.client_core];
    info.server_cores = vec![args.server_core];
    let client_res = &outcome.result;
    let mut latency = client_res.latency.clone();
    latency.merge(&server_res.latency);
    let mut report = Report::build(
        info,
        &client_res.stats,
        Some(&server_res.stats),
        &latency,
        outcome.measured.window(),
        outcome.measured.seconds,
        client_res.time_wait_held + server_res.time_wait_held,
    );
    outcome.annotate(&mut report);
    Ok(report)
}

/// The bench's client shard, run on the calling thread (EAL's main lcore).
#[cfg(feature = "dpdk")]
struct ClientSide<'a> {
    args: &'a BenchArgs,
    /// What it sends, built once.
    requests: Arc<[crate::app::Request]>,
    times: &'a Times,
    tcp: &'a TcpConfig,
    clock: &'a TscClock,
    /// Its end of the link.
    mac: EthernetAddress,
    queue: Queue,
    pool: &'a Arc<PktPool>,
    /// Source addresses: the first and how many.
    src: (Ipv4Addr, u32),
    /// Source ports, inclusive.
    ports: (u16, u16),
    /// IPv6 (`--family 6`): sources in `sources6(src.1)`, the server at
    /// `SERVER_IP6`, whose MAC is `server_mac` (no Neighbor Discovery yet).
    v6: bool,
    server_mac: EthernetAddress,
    /// For the live line: the server shard's counters and both ports'.
    server_pub: &'a Published,
    nic_ports: &'a [&'a EthPort],
}

#[cfg(feature = "dpdk")]
impl ClientSide<'_> {
    /// Resolves the server, runs the load, writes the latency outputs.
    fn drive(self) -> anyhow::Result<Outcome> {
        if self.v6 {
            return self.drive6();
        }
        let load = &self.args.load;
        let stop = super::stop_flag();
        let mut iface = Iface::new(self.mac, self.src.0);
        iface.ip_count = self.src.1;
        let mut cfg = StackConfig::new(iface, self.tcp.clone());
        cfg.capacity = super::runtime::table_capacity(load.connections);
        if load.client_closes_first() {
            cfg.time_wait_reserve = load.time_wait_records(self.times);
        }
        let clock = self.clock;
        let mut stack = Stack::new(cfg, clock.now());
        if load.keep_alive {
            // Every connection stays open: room for them all from the start.
            stack.reserve_connections(load.connections as usize);
        }
        let mut nic = crate::shard::CapturedNic::new(
            DpdkNic::new(self.queue, self.pool.clone()),
            open_pcap(load.pcap.as_deref(), load.pcap_count)?,
        );
        load::resolve(&mut stack, &mut nic, &mut [], clock, SERVER_IP, &stop)?;
        // HTTP on port 80, or raw echo on port 7.
        let port = if load.echo > 0 { 7 } else { 80 };
        let client = load.client_config(
            SocketAddrV4::new(SERVER_IP, port),
            self.requests,
            self.src,
            self.ports,
        );
        let (server_pub, nic_ports) = (self.server_pub, self.nic_ports);
        let mut reporter = Reporter::new(clock.now(), load.quiet, load.stats.as_deref())?;
        if load.keep_alive && load.cps == 0 {
            reporter.show_opening(u64::from(load.connections));
        }
        let watch = reporter.wanted().then_some((&mut reporter, || {
            (server_pub.load(), super::runtime::nic_counters(nic_ports))
        }));
        let ctl = load::Control {
            stop: &stop,
            publish: None,
            intervals: load.hlog.is_some(),
            pacing: load.pacing(),
        };
        let start = (clock.now(), std::time::SystemTime::now());
        let server_mac = stack.neighbour(SERVER_IP);
        let outcome = flooded(
            self.args.flood.syn_flood,
            &mut nic,
            clock,
            self.mac,
            server_mac,
            (SERVER_IP.into(), port),
            load.quiet,
            |nic| load::drive(&mut stack, nic, clock, client, self.times, ctl, watch),
        )?;
        load::write_outputs(
            load,
            "sluice bench: latency by percentile",
            &outcome.result.latency,
            &[&outcome.intervals],
            start,
        )?;
        Ok(outcome)
    }

    /// `drive` for `--family 6`: an IPv6 client shard.
    fn drive6(self) -> anyhow::Result<Outcome> {
        let load = &self.args.load;
        let stop = super::stop_flag();
        let sources = sources6(self.src.1);
        let iface = Iface {
            ip_count: 0,
            ..Iface::new(self.mac, Ipv4Addr::UNSPECIFIED)
        }
        .with_ipv6(sources);
        let mut cfg = StackConfig::new(iface, self.tcp.clone());
        cfg.capacity = super::runtime::table_capacity(load.connections);
        if load.client_closes_first() {
            cfg.time_wait_reserve = load.time_wait_records(self.times);
        }
        let clock = self.clock;
        let mut stack = Stack::<Ipv6Addr>::new_family(cfg, clock.now());
        if load.keep_alive {
            stack.reserve_connections(load.connections as usize);
        }
        stack.add_neighbour(SERVER_IP6, self.server_mac);
        let mut nic = crate::shard::CapturedNic::new(
            DpdkNic::new(self.queue, self.pool.clone()),
            open_pcap(load.pcap.as_deref(), load.pcap_count)?,
        );
        let port = if load.echo > 0 { 7 } else { 80 };
        // The schedule walks source indexes (0.0.0.0 + i): the i-th address of `sources`.
        let client = load.client_config(
            SocketAddrV4::new(SERVER_IP, port),
            self.requests,
            (Ipv4Addr::UNSPECIFIED, self.src.1),
            self.ports,
        );
        let (server_pub, nic_ports) = (self.server_pub, self.nic_ports);
        let mut reporter = Reporter::new(clock.now(), load.quiet, load.stats.as_deref())?;
        if load.keep_alive && load.cps == 0 {
            reporter.show_opening(u64::from(load.connections));
        }
        let watch = reporter.wanted().then_some((&mut reporter, || {
            (server_pub.load(), super::runtime::nic_counters(nic_ports))
        }));
        let ctl = load::Control {
            stop: &stop,
            publish: None,
            intervals: load.hlog.is_some(),
            pacing: load.pacing(),
        };
        let start = (clock.now(), std::time::SystemTime::now());
        let to = Some((SocketAddrV6::new(SERVER_IP6, port, 0, 0), sources));
        let outcome = flooded(
            self.args.flood.syn_flood,
            &mut nic,
            clock,
            self.mac,
            Some(self.server_mac),
            (SERVER_IP6.into(), port),
            load.quiet,
            |nic| load::drive_family(&mut stack, nic, clock, client, to, self.times, ctl, watch),
        )?;
        load::write_outputs(
            load,
            "sluice bench: latency by percentile",
            &outcome.result.latency,
            &[&outcome.intervals],
            start,
        )?;
        Ok(outcome)
    }
}

/// Runs the load (`run`) over `nic`, or, with `--syn-flood`, over `nic`
/// with a SYN flood to `dst` (behind `dst_mac`) beside it on the same link
/// (`tools::flood`), and says what the flood did.
#[cfg(feature = "dpdk")]
#[allow(clippy::too_many_arguments)]
fn flooded(
    rate: Option<super::flood::FloodRate>,
    nic: &mut dyn Nic,
    clock: &TscClock,
    mac: EthernetAddress,
    dst_mac: Option<EthernetAddress>,
    dst: (std::net::IpAddr, u16),
    quiet: bool,
    run: impl FnOnce(&mut dyn Nic) -> Outcome,
) -> anyhow::Result<Outcome> {
    let Some(rate) = rate else {
        return Ok(run(nic));
    };
    let dst_mac = dst_mac.context("the server's MAC is unknown")?;
    let c = *clock;
    let t0 = c.now();
    let mut flood = super::flood::FloodNic::new(
        nic,
        move || c.now(),
        rate,
        mac,
        dst_mac,
        dst,
        crate::dpdk::rdtsc(),
    );
    let o = run(&mut flood);
    let f = flood.stats;
    let secs = c.now().saturating_since(t0).as_secs_f64();
    if !quiet {
        eprintln!(
            "sluice bench: SYN flood ({rate:?}): {} SYNs sent ({:.0}/s), {} refused by the link, {} answers to spoofed sources dropped, the link full after {} turns",
            f.syns_sent,
            f.syns_sent as f64 / secs.max(1e-9),
            f.syns_dropped,
            f.answers_dropped,
            f.link_full
        );
    }
    Ok(o)
}
