//! `sluice client`: the HTTP load generator on a DPDK port (one shard per
//! core) or, with `--kernel`, on Linux sockets; closed loop (`--connections`)
//! or open loop (`--cps`, `--rps`), with the same report and JSON as
//! `sluice bench`.

use super::load::{self, LoadArgs};
use super::request::ClientRequestArgs;
use super::runtime::{Reporter, join_all, parse_cores, parse_ip_range, shard_share, spawn_pinned};
use super::split::Split;
use super::{EalArgs, stop_flag};
use crate::app::Request;
use crate::app::window::Measured;
use crate::stats::output::Intervals;
use crate::stats::report::{Report, RunInfo, Window};
use crate::stats::{Latency, Published, ShardStats};
use anyhow::{Context, bail};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
#[cfg(feature = "dpdk")]
use {
    super::runtime::{
        as_lcore, nic_counters, open_pcap, open_port, parse_port_range, steering_inboxes,
    },
    crate::dpdk::{DpdkError, TscClock},
    crate::shard::{DpdkNic, Iface, StackConfig},
};

#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// What to load: http://HOST[:PORT][/PATH] or HOST:PORT (a host name is
    /// resolved once, at start; an IPv6 address in brackets, --kernel only
    /// for now: http://[::1]:8080/). Several URLs (one host:port), or paths like
    /// /b on the first URL's host, are requested in turn.
    #[arg(value_name = "URL", required_unless_present = "urls")]
    pub targets: Vec<String>,
    /// Our source addresses: one address or a prefix (TIME_WAIT holds each
    /// 4-tuple for 2MSL, so high rates want many). Required with DPDK; with
    /// --kernel optional (connections take the addresses in turn, the kernel
    /// picks ports; without it the kernel picks both), and IPv6 for an IPv6
    /// target (e.g. 2001:db8:1::/64, any prefix length).
    #[arg(long, value_name = "CIDR")]
    pub ip: Option<String>,
    /// Source ports.
    #[arg(long, default_value = "1024-65535", value_name = "LO-HI")]
    pub src_ports: String,
    /// Resolve this address's MAC (a router) instead of the target's (of
    /// the target's family: ARP for IPv4, Neighbor Solicitation for IPv6).
    #[arg(long)]
    pub gateway: Option<IpAddr>,
    /// DPDK port name (default: the first port).
    #[arg(long)]
    pub port: Option<String>,
    /// Cores, one shard (and queue pair) each; the first runs on EAL's main
    /// lcore. E.g. 0 or 0,1.
    #[arg(long, default_value = "0", value_name = "LIST")]
    pub cores: String,
    /// Load over Linux sockets (mio, one event loop per core in --cores)
    /// instead of DPDK: the same generator, counters and histograms.
    #[arg(long)]
    pub kernel: bool,
    #[command(flatten)]
    pub load: LoadArgs,
    // One test from several machines (issue 15).
    /// Take the K-th of N disjoint slices of the source addresses (or, with
    /// fewer addresses than N, of the ports) and 1/N of --connections,
    /// --cps and --rps: run the same command on N machines, K = 1..N, then
    /// `sluice merge` their --hlog files.
    #[arg(long, value_name = "K/N")]
    pub split: Option<String>,
    #[command(flatten)]
    pub requests: ClientRequestArgs,
}

impl ClientArgs {
    /// `--split`, parsed, if given.
    fn split(&self) -> anyhow::Result<Option<Split>> {
        self.split.as_deref().map(Split::parse).transpose()
    }

    /// The load options with this machine's share of the connections and
    /// rates under `--split` (a part of 0 is refused: nothing to run).
    fn split_load(&self) -> anyhow::Result<LoadArgs> {
        let mut load = self.load.clone();
        let Some(split) = self.split()? else {
            return Ok(load);
        };
        let part = |what: &str, total: u64| -> anyhow::Result<u64> {
            let p = split.share(total);
            if p == 0 && total > 0 {
                bail!(
                    "--split {split}: {what} {total} leaves slice {} nothing; give at least {}",
                    split.k,
                    split.n
                );
            }
            Ok(p)
        };
        load.connections = part("--connections", u64::from(load.connections))? as u32;
        load.cps = part("--cps", load.cps)?;
        load.rps = part("--rps", load.rps)?;
        Ok(load)
    }

    /// This machine's source addresses and ports under `--split`.
    #[cfg(feature = "dpdk")]
    fn split_sources(
        &self,
        src: (Ipv4Addr, u32),
        ports: (u16, u16),
    ) -> anyhow::Result<((Ipv4Addr, u32), (u16, u16))> {
        match self.split()? {
            Some(s) if !src.0.is_unspecified() => s.sources(src, ports),
            _ => Ok((src, ports)),
        }
    }
}

/// A load target: where to connect, the path to ask for, and the host name
/// it was given by (for the Host header), if not an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub host: Option<String>,
}

/// `http://HOST[:PORT][/PATH]` or `HOST:PORT` → the target, a host name
/// resolved once, here (as wrk does), to its first IPv4 address, else its
/// first IPv6 one. An IPv6 literal is written in brackets (RFC 3986 3.2.2):
/// `http://[::1]:8080/`, `[2001:db8::1]:80`.
pub fn parse_target(s: &str) -> anyhow::Result<Target> {
    let bad = || format!("bad target {s:?}: use http://HOST[:PORT][/PATH] or HOST:PORT");
    let (hostport, path, default_port) = if let Some(rest) = s.strip_prefix("http://") {
        match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string(), Some(80)),
            None => (rest, "/".to_string(), Some(80)),
        }
    } else if s.contains("://") {
        bail!("{}: only http:// is supported", bad());
    } else {
        (s, "/".to_string(), None)
    };
    // [IPv6]:PORT, [IPv6], or HOST[:PORT] (a bare IPv6 literal is ambiguous).
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let Some((lit, after)) = rest.split_once(']') else {
            bail!("{}: no ']' after the IPv6 address", bad());
        };
        let ip: Ipv6Addr = lit
            .parse()
            .with_context(|| format!("{}: {lit:?} is not an IPv6 address", bad()))?;
        let port = match (after.strip_prefix(':'), default_port) {
            (Some(p), _) => p.parse::<u16>().ok().with_context(bad)?,
            (None, Some(p)) if after.is_empty() => p,
            (None, None) if after.is_empty() => bail!("{}: the port is missing", bad()),
            _ => bail!("{}", bad()),
        };
        return Ok(Target {
            addr: SocketAddr::new(IpAddr::V6(ip), port),
            path,
            host: None,
        });
    } else if hostport.matches(':').count() > 1 {
        bail!(
            "{}: write an IPv6 address in brackets, e.g. http://[::1]:8080/",
            bad()
        );
    } else {
        match (hostport.rsplit_once(':'), default_port) {
            (Some((h, p)), _) => (h, p.parse::<u16>().ok().with_context(bad)?),
            (None, Some(p)) => (hostport, p),
            (None, None) => bail!("{}: the port is missing", bad()),
        }
    };
    if host.is_empty() {
        bail!("{}", bad());
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Target {
            addr: SocketAddr::new(IpAddr::V4(ip), port),
            path,
            host: None,
        });
    }
    let addrs = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map_err(|e| {
        anyhow::anyhow!(
            "target {s:?}: cannot resolve {host:?}: {e} (check the name, /etc/hosts and DNS, or give an address)"
        )
    })?;
    let addrs: Vec<SocketAddr> = addrs.collect();
    let Some(addr) = pick_address(&addrs) else {
        bail!("target {s:?}: {host:?} resolves to no address");
    };
    Ok(Target {
        addr,
        path,
        host: Some(host.to_string()),
    })
}

/// Of a name's addresses, the first IPv4 one, else the first IPv6 one (a
/// name with both is loaded over IPv4, as before IPv6 was there).
fn pick_address(addrs: &[SocketAddr]) -> Option<SocketAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

pub fn run(eal_args: &EalArgs, args: &ClientArgs) -> anyhow::Result<Report> {
    let t = super::request::targets(&args.targets, args.requests.urls.as_deref())?;
    let requests = args
        .load
        .requests(&t.host, &t.paths, args.requests.body.as_deref())?;
    let target = (t.addr, requests, t.label.as_str());
    if args.kernel {
        eal_args.refuse_without_dpdk()?;
        return run_kernel(args, target);
    }
    run_dpdk(eal_args, args, target)
}

/// Where the load goes, what it sends (built once) and what the report
/// calls it.
type Aim<'a> = (SocketAddr, Arc<[Request]>, &'a str);

/// Without DPDK only kernel mode loads.
#[cfg(not(feature = "dpdk"))]
fn run_dpdk(_: &EalArgs, _: &ClientArgs, _: Aim<'_>) -> anyhow::Result<Report> {
    Err(super::needs_dpdk("`sluice client` without --kernel"))
}

/// `sluice client` on a DPDK port: one shard per core in `--cores`, each
/// with its queue pair and its share of the load, the first on the calling
/// thread.
#[cfg(feature = "dpdk")]
fn run_dpdk(
    eal_args: &EalArgs,
    args: &ClientArgs,
    (target, requests, label): Aim<'_>,
) -> anyhow::Result<Report> {
    let Some(ip) = &args.ip else {
        bail!("--ip is required: our source address (or prefix) on the link, e.g. --ip 10.0.0.9");
    };
    let ports = parse_port_range(&args.src_ports)?;
    match target {
        SocketAddr::V4(t) => {
            let (src, ports) = args.split_sources(parse_ip_range(ip)?, ports)?;
            let iface = move |mac| {
                let mut iface = Iface::new(mac, src.0);
                iface.ip_count = src.1;
                iface
            };
            let hop = match args.gateway {
                None => *t.ip(),
                Some(IpAddr::V4(g)) => g,
                Some(g) => bail!("--gateway {g}: an IPv6 gateway for an IPv4 target ({t})"),
            };
            let aim = (t, requests, label);
            run_dpdk_on::<Ipv4Addr>(eal_args, args, aim, src, ports, iface, None, hop)
        }
        SocketAddr::V6(t) => {
            let hop = match args.gateway {
                None => *t.ip(),
                Some(IpAddr::V6(g)) => g,
                Some(g) => bail!("--gateway {g}: an IPv4 gateway for an IPv6 target ({t})"),
            };
            let (first, count) = parse_ip6_range(ip)?;
            let (sources, ports) = match args.split()? {
                None => (crate::wire::Ipv6Range { first, count }, ports),
                Some(s) => s.sources6(crate::wire::Ipv6Range { first, count }, ports)?,
            };
            let iface = move |mac| {
                Iface {
                    ip_count: 0,
                    ..Iface::new(mac, Ipv4Addr::UNSPECIFIED)
                }
                .with_ipv6(sources)
            };
            // The schedule walks source indexes (0.0.0.0 + i: the i-th
            // address of `sources`), at most 2^32 of them.
            let src = (
                Ipv4Addr::UNSPECIFIED,
                u32::try_from(count).unwrap_or(u32::MAX),
            );
            let aim = (
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, t.port()),
                requests,
                label,
            );
            let to = Some((t, sources));
            run_dpdk_on::<Ipv6Addr>(eal_args, args, aim, src, ports, iface, to, hop)
        }
    }
}

/// `run_dpdk` for a target of family `A`: `aim`'s IPv4 target stands for
/// it in the schedule (an IPv6 one is `to`'s, with its sources).
#[cfg(feature = "dpdk")]
#[allow(clippy::too_many_arguments)]
fn run_dpdk_on<A: crate::shard::stack::StackFamily + std::fmt::Display>(
    eal_args: &EalArgs,
    args: &ClientArgs,
    (target, requests, label): (SocketAddrV4, Arc<[Request]>, &str),
    src: (Ipv4Addr, u32),
    ports: (u16, u16),
    iface: impl Fn(crate::wire::EthernetAddress) -> Iface + Clone + Send + 'static,
    to: Option<(A::SocketAddr, crate::wire::Ipv6Range)>,
    hop: A,
) -> anyhow::Result<Report> {
    let load = &args.split_load()?;
    let times = load.check()?;
    let cores = parse_cores(&args.cores)?;
    let n = cores.len();
    let eal = super::init_eal(eal_args, cores[0])?;
    let mut port = open_port(args.port.as_deref(), 32767 * n as u32, n as u16)
        .map_err(|e| super::memif_hint(e, &eal_args.vdevs))?;
    let mut tcp = load.tcp(&times);
    // The family's MSS on a 1500-byte MTU (1440 over IPv6, RFC 9293 3.7.1).
    tcp.mss = tcp.mss.min(A::MSS_1500);
    let clock = TscClock::new();
    // One shard per core and queue pair; each opens only connections it owns
    // (`flow_owner`) and frames that reach another shard are handed over.
    let inboxes = steering_inboxes(n);
    let make_stack = {
        let ownership = port.ownership.clone();
        let (mac, inboxes, tw) = (
            port.mac,
            inboxes.clone(),
            if load.client_closes_first() {
                load.time_wait_records(&times) / n
            } else {
                0
            },
        );
        let capacity = super::runtime::table_capacity(load.connections.div_ceil(n as u32));
        let hold = if load.keep_alive {
            load.connections.div_ceil(n as u32) as usize
        } else {
            0
        };
        move |shard: usize, now| {
            let mut cfg = StackConfig::new(iface(mac), tcp.clone());
            cfg.time_wait_reserve = tw;
            cfg.capacity = capacity;
            let mut s = super::runtime::shard_stack::<A>(cfg, shard, &ownership, &inboxes, now);
            // Keep-alive: every connection stays open; room for them all.
            s.reserve_connections(hold);
            s
        }
    };
    let mut stack = make_stack(0, clock.now());
    let queue = port.queues[0]
        .take()
        .ok_or_else(|| DpdkError::msg("port", "no queue"))?;
    let mut nic = crate::shard::CapturedNic::new(
        DpdkNic::new(queue, Arc::clone(&port.pool)),
        open_pcap(load.pcap.as_deref(), load.pcap_count)?,
    );
    let stop = stop_flag();
    let mut reporter = Reporter::new(clock.now(), load.quiet, load.stats.as_deref())?;
    if load.keep_alive && load.cps == 0 {
        reporter.show_opening(u64::from(load.connections));
    }
    let intervals = load.hlog.is_some();
    let pacing = load.pacing();
    let mut other_nics = Vec::new();
    for q in port.queues.iter_mut().skip(1) {
        let q = q.take().ok_or_else(|| DpdkError::msg("port", "no queue"))?;
        other_nics.push(DpdkNic::new(q, Arc::clone(&port.pool)));
    }
    load::resolve(&mut stack, &mut nic, &mut other_nics, &clock, hop, &stop)?;
    let mac = stack.neighbour(hop).context("resolved")?;
    let target_ip = match to {
        Some((t, _)) => crate::wire::FamilySocketAddr::host(&t),
        None => A::from_v4(*target.ip()).context("an IPv4 target")?,
    };
    stack.add_neighbour(target_ip, mac);
    if !load.quiet {
        eprintln!(
            "sluice client: {} on {} ({}), {hop} is at {mac}, {n} shard(s), memory: {}",
            label,
            port.name,
            port.driver,
            eal.memory_mode()
        );
    }
    // Each shard takes its share of the connections and rates.
    let client = shard_share(load.client_config(target, requests, src, ports), n);
    let mut workers = Vec::new();
    let mut pubs = Vec::new();
    let start = (clock.now(), std::time::SystemTime::now());
    for ((shard, &core), mut nic) in cores.iter().enumerate().skip(1).zip(other_nics) {
        let (out, stop, make, client, hop) = (
            Arc::new(Published::default()),
            stop.clone(),
            make_stack.clone(),
            client.clone(),
            target_ip,
        );
        pubs.push(out.clone());
        workers.push(spawn_pinned(
            format!("sluice-client{shard}"),
            core,
            as_lcore(move || {
                let mut stack = make(shard, clock.now());
                stack.add_neighbour(hop, mac);
                let ctl = load::Control {
                    stop: &stop,
                    publish: Some(&out),
                    intervals,
                    pacing,
                };
                let none = None::<(
                    &mut Reporter,
                    fn() -> (ShardStats, crate::stats::progress::NicCounts),
                )>;
                Ok(load::drive_family(
                    &mut stack, &mut nic, &clock, client, to, &times, ctl, none,
                ))
            }),
        )?);
    }
    let outcome = {
        let p = &port.port;
        let watch = reporter.wanted().then_some((&mut reporter, || {
            let others: Vec<ShardStats> = pubs.iter().map(|p| p.load()).collect();
            (ShardStats::sum(others.iter()), nic_counters(&[p]))
        }));
        let ctl = load::Control {
            stop: &stop,
            publish: None,
            intervals,
            pacing,
        };
        load::drive_family(&mut stack, &mut nic, &clock, client, to, &times, ctl, watch)
    };
    let mut outcomes = vec![outcome];
    outcomes.extend(join_all(workers)?);
    drop(nic);
    let name = port.name.clone();
    port.shut()?;
    drop(eal);
    let mut info = load.info("sluice client", name, label.to_string(), None);
    info.client_cores = cores.clone();
    info.split = args.split.clone();
    let shards: Vec<ShardRun> = outcomes
        .iter()
        .map(|o| ShardRun {
            stats: &o.result.stats,
            latency: &o.result.latency,
            measured: &o.measured,
            intervals: &o.intervals,
        })
        .collect();
    let held = outcomes.iter().map(|o| o.result.time_wait_held).sum();
    let mut report = combine(load, info, &shards, held, start)?;
    outcomes[0].annotate(&mut report);
    // Every shard's connections open: when the last shard got there.
    report.opened_all_s = outcomes
        .iter()
        .map(|o| o.opened_all_s)
        .collect::<Option<Vec<f64>>>()
        .map(|v| v.into_iter().fold(0.0, f64::max));
    Ok(report)
}

/// One shard's part of a finished load run (DPDK or kernel mode).
struct ShardRun<'a> {
    stats: &'a ShardStats,
    latency: &'a Latency,
    measured: &'a Measured,
    intervals: &'a Intervals,
}

/// The report over every shard (DPDK or kernel mode), after writing the
/// latency outputs asked for. The first shard's window gives the measured
/// time; the counts are every shard's.
fn combine(
    load: &LoadArgs,
    info: RunInfo,
    shards: &[ShardRun<'_>],
    time_wait_held: u64,
    start: (crate::time::Instant, std::time::SystemTime),
) -> anyhow::Result<Report> {
    let stats = ShardStats::sum(shards.iter().map(|s| s.stats));
    let mut latency = Latency::default();
    let (mut w0, mut w1) = (Window::default(), Window::default());
    for s in shards {
        latency.merge(s.latency);
        w0.completed += s.measured.from.completed;
        w0.responses += s.measured.from.responses;
        w1.completed += s.measured.to.completed;
        w1.responses += s.measured.to.responses;
    }
    let intervals: Vec<&Intervals> = shards.iter().map(|s| s.intervals).collect();
    let title = format!("{}: latency by percentile", info.tool);
    load::write_outputs(load, &title, &latency, &intervals, start)?;
    Ok(Report::build(
        info,
        &stats,
        None,
        &latency,
        (w0, w1),
        shards.first().map_or(0.0, |s| s.measured.seconds),
        time_wait_held,
    ))
}

/// `sluice client --kernel`: the same load over Linux sockets, one mio loop
/// per core, each with its share of the connections and rates.
fn run_kernel(args: &ClientArgs, (target, requests, label): Aim<'_>) -> anyhow::Result<Report> {
    use crate::kernel::{Clock, KernelShard, drive_client};
    let load = &args.split_load()?;
    if load.pcap.is_some() {
        bail!("--pcap captures DPDK frames; with --kernel, capture with tcpdump instead");
    }
    let times = load.check()?;
    let cores = parse_cores(&args.cores)?;
    let n = cores.len();
    // Over IPv6 the generator's ClientConfig holds no address (it is IPv4
    // only, as the DPDK shards are for now): each shard is aimed below.
    let v6 = match target {
        SocketAddr::V4(_) => None,
        SocketAddr::V6(t) => Some((t, kernel_sources_v6(args)?)),
    };
    let src = match (&args.ip, v6) {
        (Some(ip), None) if ip.contains(':') => {
            bail!("--ip {ip}: an IPv6 source for an IPv4 target ({target})")
        }
        (Some(ip), None) => parse_ip_range(ip)?,
        _ => (Ipv4Addr::UNSPECIFIED, 1),
    };
    let target = match target {
        SocketAddr::V4(t) => t,
        SocketAddr::V6(t) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, t.port()),
    };
    // The kernel picks the ports: only addresses are split.
    let src = match args.split()? {
        Some(s) if !src.0.is_unspecified() && src.1 >= s.n => s.sources(src, (1024, 65535))?.0,
        _ => src,
    };
    if load.ramp.is_some() {
        bail!("--ramp paces the DPDK generator's handshakes; with --kernel, use --cps");
    }
    // (No pacing: it learns from the engine's handshakes; kernel sockets
    // open as fast as the kernel takes them.)
    let client = shard_share(load.client_config(target, requests, src, (1024, 65535)), n);
    let clock = Clock::new();
    let stop = stop_flag();
    let mut reporter = Reporter::new(clock.now(), load.quiet, load.stats.as_deref())?;
    let record_intervals = load.hlog.is_some();
    if !load.quiet {
        eprintln!("sluice client: {label} on kernel sockets, {n} core(s)");
    }
    let mut workers = Vec::new();
    let mut pubs = Vec::new();
    for (i, &core) in cores.iter().enumerate() {
        let out = Arc::new(Published::default());
        pubs.push(out.clone());
        let (client, stop) = (client.clone(), stop.clone());
        workers.push(spawn_pinned(
            format!("sluice-kclient{i}"),
            core,
            move || {
                let mut shard = KernelShard::new()?;
                if let Some((t, sources)) = v6 {
                    shard.aim_v6(t, sources);
                }
                let o = drive_client(
                    &mut shard,
                    &clock,
                    client,
                    (times.duration, times.warmup),
                    &stop,
                    record_intervals,
                    |s| out.store(s),
                )?;
                out.store(&o.stats);
                Ok(o)
            },
        )?);
    }
    let start = (clock.now(), std::time::SystemTime::now());
    reporter.restart(start.0);
    let mut next_line = start.0 + std::time::Duration::from_secs(1);
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = clock.now();
        if reporter.wanted() && now >= next_line {
            next_line = now + std::time::Duration::from_secs(1);
            let all: Vec<ShardStats> = pubs.iter().map(|p| p.load()).collect();
            reporter.tick(
                now,
                &ShardStats::sum(all.iter()),
                &ShardStats::default(),
                None,
            );
        }
    }
    let outcomes = join_all(workers)?;
    let mut info = load.info(
        "sluice client --kernel",
        "kernel".into(),
        label.to_string(),
        None,
    );
    info.client_cores = cores.clone();
    info.split = args.split.clone();
    let shards: Vec<ShardRun> = outcomes
        .iter()
        .map(|o| ShardRun {
            stats: &o.stats,
            latency: &o.latency,
            measured: &o.measured,
            intervals: &o.intervals,
        })
        .collect();
    combine(load, info, &shards, 0, start)
}

/// `--ip` for a load over IPv6 in kernel mode: an IPv6 address or prefix
/// (any length; connections take its addresses in turn), or none.
fn kernel_sources_v6(args: &ClientArgs) -> anyhow::Result<Option<(Ipv6Addr, u128)>> {
    let Some(ip) = &args.ip else { return Ok(None) };
    let (first, count) = parse_ip6_range(ip)?;
    // The kernel picks the ports: only addresses are split (as over IPv4).
    match args.split()? {
        Some(s) if count >= u128::from(s.n) => {
            let (r, _) = s.sources6(crate::wire::Ipv6Range { first, count }, (1024, 65535))?;
            Ok(Some((r.first, r.count)))
        }
        _ => Ok(Some((first, count))),
    }
}

/// `2001:db8:1::/64` or `2001:db8:1::5` → the first address and how many
/// (all of a /0 counts as u128::MAX).
pub fn parse_ip6_range(s: &str) -> anyhow::Result<(Ipv6Addr, u128)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, p)) => (
            ip,
            p.parse::<u32>()
                .ok()
                .filter(|p| *p <= 128)
                .with_context(|| {
                    format!("bad prefix length in {s:?} (use 0..128, e.g. 2001:db8:1::/64)")
                })?,
        ),
        None => (s, 128),
    };
    let ip: Ipv6Addr = ip.parse().with_context(|| {
        format!("--ip {s:?}: the target is IPv6, so the source is an IPv6 address or prefix (e.g. 2001:db8:1::/64)")
    })?;
    // From the address as given, as for IPv4 (`parse_ip_range`).
    let count = 1u128.checked_shl(128 - len).unwrap_or(u128::MAX);
    Ok((ip, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("http://10.0.0.2:8080/x/y").unwrap();
        assert_eq!(
            (t.addr.to_string(), t.path.as_str(), t.host),
            ("10.0.0.2:8080".into(), "/x/y", None)
        );
        assert_eq!(parse_target("http://10.0.0.2").unwrap().addr.port(), 80);
        assert_eq!(parse_target("10.0.0.2:7").unwrap().addr.port(), 7);
        assert!(parse_target("https://10.0.0.2/").is_err());
        assert!(parse_target("10.0.0.2").is_err(), "no port");
        assert!(parse_target("http://10.0.0.2:x/").is_err());
    }

    /// IPv6 literals in brackets (RFC 3986 3.2.2), with or without a port
    /// and path; unbracketed or malformed ones are refused in one line.
    #[test]
    fn ipv6_targets_in_brackets() {
        let t = parse_target("http://[::1]:8080/a/b").unwrap();
        assert_eq!(t.addr, "[::1]:8080".parse().unwrap());
        assert_eq!((t.path.as_str(), t.host), ("/a/b", None));
        let t = parse_target("http://[2001:db8::1]:80/").unwrap();
        assert_eq!(t.addr, "[2001:db8::1]:80".parse().unwrap());
        let t = parse_target("http://[2001:db8::1]").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (80, "/"));
        let t = parse_target("[fe80::1]:7").unwrap();
        assert_eq!(t.addr, "[fe80::1]:7".parse().unwrap());
        assert_eq!(
            parse_target("http://[::ffff:10.0.0.2]:81/").unwrap().addr,
            "[::ffff:10.0.0.2]:81".parse().unwrap()
        );
        for bad in [
            "http://::1:8080/",
            "::1:8080",
            "[::1]",
            "http://[::1/",
            "http://[::1]x/",
            "http://[::1]:/",
            "http://[::1]:99999/",
            "http://[10.0.0.1]:80/",
            "http://[zz::1]:80/",
        ] {
            let e = parse_target(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("bad target") && !e.contains('\n'),
                "{bad}: {e}"
            );
        }
        assert!(
            parse_target("::1:8080")
                .unwrap_err()
                .to_string()
                .contains("in brackets")
        );
    }

    /// A name's first IPv4 address is taken, else its first IPv6 one.
    #[test]
    fn a_name_with_only_ipv6_is_loaded_over_ipv6() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let v6_only = [a("[2001:db8::2]:80"), a("[2001:db8::3]:80")];
        assert_eq!(pick_address(&v6_only), Some(v6_only[0]));
        let both = [a("[::1]:80"), a("127.0.0.1:80")];
        assert_eq!(pick_address(&both), Some(both[1]));
        assert_eq!(pick_address(&[]), None);
    }

    #[test]
    fn ipv6_source_prefixes() {
        let p = |s| parse_ip6_range(s).unwrap();
        assert_eq!(
            p("2001:db8:1::/64"),
            ("2001:db8:1::".parse().unwrap(), 1 << 64)
        );
        assert_eq!(p("2001:db8::5"), ("2001:db8::5".parse().unwrap(), 1));
        assert_eq!(p("::/0").1, u128::MAX);
        assert_eq!(p("2001:db8::/127").1, 2);
        for bad in ["2001:db8::/129", "10.0.0.1", "2001:db8::/x", "::/-1"] {
            assert!(parse_ip6_range(bad).is_err(), "{bad}");
        }
    }

    /// Host names are resolved once, at start (`localhost` is in every
    /// /etc/hosts); a name that resolves nowhere says so in one line.
    #[test]
    fn host_names_resolve_at_start() {
        let t = parse_target("http://localhost:8080/a").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (t.path.as_str(), t.host.as_deref()),
            ("/a", Some("localhost"))
        );
        assert_eq!(parse_target("localhost:7").unwrap().addr.port(), 7);
        let e = parse_target("http://no-such-host.invalid/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot resolve") && !e.contains('\n'), "{e}");
    }
}
