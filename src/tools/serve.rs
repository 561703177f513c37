//! `sluice server`: listens on one or more ports, each with its own
//! application, of an IPv4 address, an IPv6 address or one of each on a DPDK
//! port (one shard per core; dual-stack: each shard an IPv4 stack with an
//! IPv6 half) or, with `--kernel`, of one or more IPv4 and IPv6 addresses on
//! Linux sockets (one event loop per core).

use super::runtime::{Reporter, join_all, parse_cores, spawn_pinned};
use super::{EalArgs, stop_flag};
use crate::app::ServerApp;
use crate::stats::{Published, ShardStats};
use anyhow::bail;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
#[cfg(feature = "dpdk")]
use {
    super::runtime::{open_pcap, open_port, shut_down, spawn_shard, steering_inboxes},
    crate::dpdk::{DpdkError, TscClock},
    crate::shard::stack::StackFamily,
    crate::shard::{DpdkNic, Iface, Nic, Stack, StackConfig},
    crate::tcp::TcpConfig,
    crate::wire::IpFamily,
    crate::wire::{EthernetAddress, FamilySocketAddr, Ipv6Range},
    std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6},
    std::sync::atomic::AtomicBool,
};

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Our address on the link, IPv4 or IPv6 (e.g. 2001:db8::1, brackets
    /// allowed). With --kernel also :: for every address ([::]), and
    /// repeatable: every --listen port on every address (e.g. --ip 0.0.0.0
    /// --ip [::] for both families, each on its own socket). Over DPDK one
    /// address of either family, or one of each (dual-stack: --ip 10.0.0.2
    /// --ip 2001:db8::2).
    #[arg(long, value_parser = parse_ip, required = true)]
    pub ip: Vec<IpAddr>,
    /// A listening port and its application (repeatable): PORT:APP with APP
    /// one of http, echo, discard, close, drain-reply.
    #[arg(long = "listen", value_name = "PORT:APP", default_value = "80:http")]
    pub listen: Vec<String>,
    /// HTTP (and drain-reply) response body bytes.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    pub body: usize,
    /// HTTP: close a connection after this many requests (0: keep it open).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub close_after: u32,
    /// DPDK port name (default: the first port).
    #[arg(long)]
    pub port: Option<String>,
    /// Cores, one shard (and queue pair) each; the first runs on EAL's main
    /// lcore. E.g. 0 or 0,1 or 0-3.
    #[arg(long, default_value = "0", value_name = "LIST")]
    pub cores: String,
    /// 2MSL: how long TIME_WAIT is held, seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub time_wait: f64,
    /// Stop after this many seconds (default: until Ctrl-C / SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Write the final counters as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// No live line.
    #[arg(short, long)]
    pub quiet: bool,
    /// Capture the first --pcap-count frames the first shard receives and
    /// sends to a pcap file (tcpdump/tshark/Wireshark read it).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Frames --pcap writes at most.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub pcap_count: u64,
    /// Serve over Linux sockets (mio, one event loop per core in --cores)
    /// instead of DPDK: the same applications and counters, the kernel's TCP.
    #[arg(long)]
    pub kernel: bool,
    // Watching a run from outside (issue 15).
    /// Write every field of the live line, once a second, to FILE as JSON
    /// Lines (one object a line, with `unix_s` and `elapsed_s`); --quiet
    /// does not stop it.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<String>,
    /// Serve every counter, the connections per TCP state and the latency
    /// histograms in Prometheus' text format at http://ADDR:PORT/metrics
    /// (a kernel socket, e.g. 127.0.0.1:9100 or 0.0.0.0:9100).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,
    #[command(flatten)]
    pub syn_defence: super::flood::SynDefenceArgs,
}

/// `--metrics`: serves the sum of what `pubs` (every shard's) hold.
fn start_metrics(
    addr: Option<&str>,
    pubs: &[Arc<Published>],
) -> anyhow::Result<Option<crate::stats::metrics::MetricsServer>> {
    use crate::stats::metrics::{MetricsServer, Snapshot};
    let Some(addr) = addr else { return Ok(None) };
    let pubs = pubs.to_vec();
    let t0 = std::time::Instant::now();
    let m = MetricsServer::start(
        addr,
        Arc::new(move || {
            let all: Vec<ShardStats> = pubs.iter().map(|p| p.load()).collect();
            Snapshot {
                stats: ShardStats::sum(all.iter()),
                latency: None,
                uptime_s: t0.elapsed().as_secs_f64(),
            }
        }),
    )?;
    eprintln!("sluice server: metrics on http://{}/metrics", m.addr);
    Ok(Some(m))
}

impl ServerArgs {
    /// When `--duration` ends a run that started at `start`, if given.
    fn deadline(&self, start: crate::time::Instant) -> Option<crate::time::Instant> {
        self.duration
            .map(|d| start + Duration::from_secs_f64(d.max(0.0)))
    }
}

/// `--ip`: an IPv4 or IPv6 address, the latter bare or in brackets.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse()
        .map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address"))
}

/// Parses `80:http` and friends.
pub fn parse_listen(s: &str, body: usize, close_after: u32) -> anyhow::Result<(u16, ServerApp)> {
    let Some((port, app)) = s.split_once(':') else {
        bail!("--listen {s:?}: use PORT:APP, e.g. 80:http or 7:echo");
    };
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 => p,
        _ => bail!("--listen {s:?}: bad port {port:?}"),
    };
    let app = match app {
        "http" => ServerApp::http(body, close_after),
        "echo" => ServerApp::Echo,
        "discard" => ServerApp::Discard,
        "close" => ServerApp::Close,
        "drain-reply" => ServerApp::DrainReply {
            reply: crate::app::http::response(body, true).into(),
        },
        other => bail!(
            "--listen {s:?}: unknown application {other:?} (http, echo, discard, close, drain-reply)"
        ),
    };
    Ok((port, app))
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    pub tool: String,
    pub port: String,
    /// The first --ip.
    pub ip: IpAddr,
    /// Every --ip, in the order given.
    pub ips: Vec<IpAddr>,
    pub listen: Vec<String>,
    pub seconds: f64,
    /// Shards (one per core and queue pair).
    pub shards: usize,
    /// Frames that arrived on another shard's queue and were handed over.
    pub steered: u64,
    pub accepted: u64,
    pub accepts_per_sec: f64,
    pub responses: u64,
    pub rsts_in: u64,
    pub rsts_out: u64,
    pub syn_cookies_sent: u64,
    pub syn_cookies_accepted: u64,
    pub retransmits: u64,
    pub time_wait_entered: u64,
    pub time_wait_held_at_end: u64,
    pub closes: BTreeMap<&'static str, u64>,
    /// Dropped frames and refused connections, by reason.
    pub drops: BTreeMap<&'static str, u64>,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Frames the port dropped before sluice read them (its receive ring was
    /// full: `imissed`, e.g. af_packet's socket drops); 0 in kernel mode.
    pub nic_missed: u64,
}

pub fn run(eal_args: &EalArgs, args: &ServerArgs) -> anyhow::Result<ServerReport> {
    let apps: Vec<(u16, ServerApp)> = args
        .listen
        .iter()
        .map(|l| parse_listen(l, args.body, args.close_after))
        .collect::<anyhow::Result<_>>()?;
    for (i, ip) in args.ip.iter().enumerate() {
        if args.ip[..i].contains(ip) {
            bail!("--ip {ip} is given twice: give each address once");
        }
    }
    if args.kernel {
        eal_args.refuse_without_dpdk()?;
        return run_kernel(args, apps);
    }
    run_dpdk(eal_args, args, apps)
}

/// Without DPDK only kernel mode serves.
#[cfg(not(feature = "dpdk"))]
fn run_dpdk(_: &EalArgs, _: &ServerArgs, _: Vec<(u16, ServerApp)>) -> anyhow::Result<ServerReport> {
    Err(super::needs_dpdk("`sluice server` without --kernel"))
}

/// `sluice server` on a DPDK port: one shard per core in `--cores`, each
/// with its queue pair, the first on the calling thread.
#[cfg(feature = "dpdk")]
fn run_dpdk(
    eal_args: &EalArgs,
    args: &ServerArgs,
    apps: Vec<(u16, ServerApp)>,
) -> anyhow::Result<ServerReport> {
    let v6_iface = |ip: Ipv6Addr| -> anyhow::Result<Ipv6Range> {
        if ip.is_unspecified() || ip.is_multicast() {
            bail!("--ip {ip}: over DPDK give the server's own unicast IPv6 address");
        }
        Ok(Ipv6Range::single(ip))
    };
    match args.ip[..] {
        [IpAddr::V4(ip)] => {
            let iface = move |mac| Iface::new(mac, ip);
            run_dpdk_on(eal_args, args, apps, ip, iface, no_half)
        }
        [IpAddr::V6(ip)] => {
            let range = v6_iface(ip)?;
            // No IPv4 address at all (none owned: ARP for any is not ours).
            let iface = move |mac| {
                Iface {
                    ip_count: 0,
                    ..Iface::new(mac, Ipv4Addr::UNSPECIFIED)
                }
                .with_ipv6(range)
            };
            run_dpdk_on::<Ipv6Addr>(eal_args, args, apps, ip, iface, no_half)
        }
        // Dual-stack: each shard an IPv4 stack with an IPv6 half, every
        // --listen port on both addresses.
        [IpAddr::V4(ip4), IpAddr::V6(ip6)] | [IpAddr::V6(ip6), IpAddr::V4(ip4)] => {
            let range = v6_iface(ip6)?;
            let iface = move |mac| Iface::new(mac, ip4).with_ipv6(range);
            let apps6 = apps.clone();
            let half = move |s: &mut Stack, tcp: &TcpConfig, now| {
                let tcp = TcpConfig {
                    // 1440 on a 1500-byte MTU (RFC 9293 3.7.1).
                    mss: Ipv6Addr::MSS_1500,
                    ..tcp.clone()
                };
                let v6 = s.add_ipv6(tcp, now);
                for (p, app) in &apps6 {
                    v6.listen(SocketAddrV6::new(ip6, *p, 0, 0), app.clone());
                }
            };
            run_dpdk_on::<Ipv4Addr>(eal_args, args, apps, ip4, iface, half)
        }
        _ => bail!(
            "--ip given {} times ({}): over DPDK the server takes one IPv4 address, one IPv6 address, or one of each (dual-stack); --kernel serves more",
            args.ip.len(),
            args.ip
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A server of one family: nothing added to its shards.
#[cfg(feature = "dpdk")]
fn no_half<A: StackFamily>(_: &mut Stack<A>, _: &TcpConfig, _: crate::time::Instant) {}

/// `run_dpdk` for the server's address `ip`, of family `A`; `half` adds to
/// each shard's stack what else it serves (a dual-stack server's IPv6 half,
/// given the IPv4 half's TCP settings).
#[cfg(feature = "dpdk")]
fn run_dpdk_on<A: StackFamily>(
    eal_args: &EalArgs,
    args: &ServerArgs,
    apps: Vec<(u16, ServerApp)>,
    ip: A,
    iface: impl Fn(EthernetAddress) -> Iface + Clone + Send + 'static,
    half: impl Fn(&mut Stack<A>, &TcpConfig, crate::time::Instant) + Clone + Send + 'static,
) -> anyhow::Result<ServerReport> {
    let time_wait = super::runtime::secs(args.time_wait, "time-wait")?;
    let cores = parse_cores(&args.cores)?;
    let n = cores.len();
    // Every shard's published counters, shard 0's first.
    let all_pubs: Vec<Arc<Published>> = (0..n).map(|_| Arc::default()).collect();
    let metrics = start_metrics(args.metrics.as_deref(), &all_pubs)?;
    let mut reporter = Reporter::new(crate::time::Instant(0), args.quiet, args.stats.as_deref())?;
    let eal = super::init_eal(eal_args, cores[0])?;
    let mut port = open_port(args.port.as_deref(), 32767 * n as u32, n as u16)?;
    let tcp = TcpConfig {
        msl: time_wait / 2,
        // 1460 for IPv4, 1440 for IPv6 (RFC 9293 3.7.1, a 1500-byte MTU).
        mss: A::MSS_1500,
        ..TcpConfig::default()
    };
    let clock = TscClock::new();
    // One shard per core, each with its own queue pair. A flow belongs to
    // `flow_owner`'s shard; frames that arrive on another shard's queue (no
    // RSS, or RSS disagreeing) are handed over through bounded queues.
    let inboxes = steering_inboxes(n);
    let syn_budget = args.syn_defence.syn_budget.0;
    let make_stack = {
        let ownership = port.ownership.clone();
        let (mac, ip, apps, tcp, inboxes) =
            (port.mac, ip, apps.clone(), tcp.clone(), inboxes.clone());
        let (iface, half) = (iface.clone(), half.clone());
        move |shard: usize, now| {
            let mut cfg = StackConfig::new(iface(mac), tcp.clone());
            cfg.syn_budget = syn_budget;
            let mut stack = super::runtime::shard_stack::<A>(cfg, shard, &ownership, &inboxes, now);
            for (p, app) in &apps {
                stack.listen(A::SocketAddr::from_parts(ip, *p), app.clone());
            }
            half(&mut stack, &tcp, now);
            stack
        }
    };
    let stop_workers = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    let mut pubs = Vec::new();
    for (shard, &core) in cores.iter().enumerate().skip(1) {
        let queue = port.queues[shard]
            .take()
            .ok_or_else(|| DpdkError::msg("port", "no queue"))?;
        let pool = Arc::clone(&port.pool);
        let out = all_pubs[shard].clone();
        pubs.push(out.clone());
        let make = make_stack.clone();
        workers.push(spawn_shard(
            format!("sluice-shard{shard}"),
            core,
            clock,
            out,
            stop_workers.clone(),
            move || {
                (
                    make(shard, clock.now()),
                    Box::new(DpdkNic::new(queue, pool)) as Box<dyn Nic + Send>,
                )
            },
        )?);
    }
    let mut stack = make_stack(0, clock.now());
    let queue = port.queues[0]
        .take()
        .ok_or_else(|| DpdkError::msg("port", "no queue"))?;
    let pcap = open_pcap(args.pcap.as_deref(), args.pcap_count)?;
    let mut nic = crate::shard::CapturedNic::new(DpdkNic::new(queue, Arc::clone(&port.pool)), pcap);
    // A line scripts can wait for.
    eprintln!(
        "sluice server: ready on {} ({}) mac={} ip={} listening {} shards {} memory: {}",
        port.name,
        port.driver,
        port.mac,
        args.ip
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(","),
        args.listen.join(","),
        n,
        eal.memory_mode()
    );
    let stop = stop_flag();
    let start = clock.now();
    let deadline = args.deadline(start);
    reporter.restart(start);
    let mut next_line = start + Duration::from_secs(1);
    let total = |own: &ShardStats| {
        let others: Vec<ShardStats> = pubs.iter().map(|p| p.load()).collect();
        ShardStats::sum(std::iter::once(own).chain(others.iter()))
    };
    loop {
        let now = clock.now();
        let got = stack.poll(now, &mut nic);
        if now >= next_line {
            next_line = now + Duration::from_secs(1);
            stack.count_states();
            let own = stack.total_stats();
            all_pubs[0].store(&own);
            if reporter.wanted() {
                let nic = super::runtime::nic_counters(&[&port.port]);
                reporter.tick(now, &ShardStats::default(), &total(&own), Some(nic));
            }
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
                break;
            }
        }
        if n == 1 && got == 0 && stack.connections() == 0 {
            // Idle, nothing open: do not burn the core.
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    // Clean exit: reset what is still open so peers know, then report.
    let end = clock.now();
    stop_workers.store(true, Ordering::Relaxed);
    shut_down(&mut stack, &mut nic, &clock);
    let own = stack.total_stats();
    all_pubs[0].store(&own);
    let results = join_all(workers)?;
    drop(metrics);
    drop(nic);
    let name = port.name.clone();
    let nic_missed = port.port.stats().map_or(0, |st| st.imissed);
    port.shut()?;
    drop(eal);
    let held =
        stack.time_wait_records() as u64 + results.iter().map(|r| r.time_wait_held).sum::<u64>();
    let all = ShardStats::sum(std::iter::once(&own).chain(results.iter().map(|r| &r.stats)));
    let s = &all;
    let secs = (end - start).as_secs_f64();
    Ok(ServerReport {
        tool: "sluice server".into(),
        port: name,
        ip: args.ip[0],
        ips: args.ip.clone(),
        listen: args.listen.clone(),
        seconds: secs,
        shards: n,
        steered: s.steered_out,
        accepted: s.accepted,
        accepts_per_sec: s.accepted as f64 / secs.max(1e-9),
        responses: s.responses,
        rsts_in: s.rsts_in,
        rsts_out: s.tcp.rsts_out,
        syn_cookies_sent: s.syn_cookies_sent,
        syn_cookies_accepted: s.syn_cookies_accepted,
        retransmits: s.tcp.retransmits,
        time_wait_entered: s.time_wait_entered,
        time_wait_held_at_end: held,
        closes: s.closes_map(),
        drops: s.drops_map(),
        rx_packets: s.rx_packets,
        tx_packets: s.tx_packets,
        nic_missed,
    })
}

/// `sluice server --kernel`: the same applications on Linux sockets, one
/// mio loop per core, each with its own SO_REUSEPORT listener per port.
fn run_kernel(args: &ServerArgs, apps: Vec<(u16, ServerApp)>) -> anyhow::Result<ServerReport> {
    use crate::kernel::{Clock, KernelShard};
    if args.pcap.is_some() {
        bail!("--pcap captures DPDK frames; with --kernel, capture with tcpdump instead");
    }
    let cores = parse_cores(&args.cores)?;
    let clock = Clock::new();
    let stop = stop_flag();
    let mut workers = Vec::new();
    let pubs: Vec<Arc<Published>> = cores.iter().map(|_| Arc::default()).collect();
    let metrics = start_metrics(args.metrics.as_deref(), &pubs)?;
    let mut reporter = Reporter::new(clock.now(), args.quiet, args.stats.as_deref())?;
    let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    for (i, &core) in cores.iter().enumerate() {
        let out = pubs[i].clone();
        let (apps, ips, stop, tx) = (apps.clone(), args.ip.clone(), stop.clone(), tx.clone());
        // Every port is on every address: with an IPv4 address among them,
        // the IPv6 sockets take IPv6 only (IPV6_V6ONLY), so IPv4 goes to the
        // IPv4 socket as asked and not to a `[::]` one as a mapped address
        // (Linux's `[::]` takes IPv4 too unless told not to).
        let v6_only = ips.iter().any(|ip| ip.is_ipv4());
        workers.push(spawn_pinned(format!("sluice-kernel{i}"), core, move || {
            let setup = || -> anyhow::Result<KernelShard> {
                let mut shard = KernelShard::new()?;
                for (ip, (p, app)) in ips.iter().flat_map(|ip| apps.iter().map(move |a| (ip, a))) {
                    let addr = SocketAddr::new(*ip, *p);
                    shard.listen_with(addr, app.clone(), ip.is_ipv6() && v6_only).map_err(|e| {
                        anyhow::anyhow!(
                            "cannot listen on {addr}: {e} (is the address on this host, the port free, and are you root for ports below 1024?)"
                        )
                    })?;
                }
                Ok(shard)
            };
            // Said once, then the sender goes, so the wait below ends even
            // when a thread could not start at all.
            let mut shard = match setup() {
                Ok(s) => {
                    let _ = tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    let _ = tx.send(Err(e));
                    bail!("{msg}");
                }
            };
            drop(tx);
            crate::kernel::serve(&mut shard, &clock, &out, &stop)?;
            Ok(shard.stats)
        })?);
    }
    drop(tx);
    let mut ready = 0;
    for r in rx.iter() {
        if let Err(e) = r {
            stop.store(true, Ordering::Relaxed);
            let _ = join_all(workers);
            return Err(e);
        }
        ready += 1;
    }
    if ready < cores.len() {
        // A thread ended before it could say (it could not be pinned).
        stop.store(true, Ordering::Relaxed);
        join_all(workers)?;
        bail!("a server thread ended before it was ready");
    }
    eprintln!(
        "sluice server: ready on kernel sockets ip={} listening {} cores {:?}",
        args.ip
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(","),
        args.listen.join(","),
        cores
    );
    let start = clock.now();
    let deadline = args.deadline(start);
    reporter.restart(start);
    let mut next_line = start + Duration::from_secs(1);
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = clock.now();
        if reporter.wanted() && now >= next_line {
            next_line = now + Duration::from_secs(1);
            let all: Vec<ShardStats> = pubs.iter().map(|p| p.load()).collect();
            reporter.tick(
                now,
                &ShardStats::default(),
                &ShardStats::sum(all.iter()),
                None,
            );
        }
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
            break;
        }
    }
    let end = clock.now();
    stop.store(true, Ordering::Relaxed);
    let results = join_all(workers)?;
    drop(metrics);
    let s = ShardStats::sum(results.iter());
    let secs = (end - start).as_secs_f64();
    Ok(ServerReport {
        tool: "sluice server --kernel".into(),
        port: "kernel".into(),
        ip: args.ip[0],
        ips: args.ip.clone(),
        listen: args.listen.clone(),
        seconds: secs,
        shards: cores.len(),
        steered: 0,
        accepted: s.accepted,
        accepts_per_sec: s.accepted as f64 / secs.max(1e-9),
        responses: s.responses,
        rsts_in: s.rsts_in,
        rsts_out: 0,
        syn_cookies_sent: 0,
        syn_cookies_accepted: 0,
        retransmits: 0,
        time_wait_entered: 0,
        time_wait_held_at_end: 0,
        closes: s.closes_map(),
        drops: s.drops_map(),
        rx_packets: 0,
        tx_packets: 0,
        nic_missed: 0,
    })
}
