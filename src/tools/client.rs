//! `sluice client`: the HTTP load generator on a DPDK port (one shard on the
//! main lcore), closed loop (`--connections`) or open loop (`--cps`), with
//! the same report and JSON as `sluice bench`.

use super::bench::CloseFirst;
use super::runtime::{LiveLine, ShardResult, open_port, parse_ip_range, parse_port_range, secs};
use super::{EalArgs, stop_flag};
use crate::app::{ClientConfig, http};
use crate::dpdk::{DpdkError, Eal, TscClock};
use crate::shard::{DpdkNic, Iface, Stack, StackConfig};
use crate::stats::ShardStats;
use crate::stats::report::{Report, RunInfo, Window};
use crate::tcp::TcpConfig;
use anyhow::{Context, bail};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// What to load: http://IP[:PORT][/PATH] or IP:PORT.
    pub target: String,
    /// Our source addresses: one address or a prefix (TIME_WAIT holds each
    /// 4-tuple for 2MSL, so high rates want many).
    #[arg(long, value_name = "CIDR")]
    pub ip: String,
    /// Source ports.
    #[arg(long, default_value = "1024-65535", value_name = "LO-HI")]
    pub src_ports: String,
    /// Resolve this address's MAC (a router) instead of the target's.
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// Seconds of load.
    #[arg(short, long, default_value_t = 10.0, value_name = "SECS")]
    pub duration: f64,
    /// Seconds at the start not counted.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub warmup: f64,
    /// Concurrent connections (closed loop), or the most open at once (--cps).
    #[arg(short, long, default_value_t = 64)]
    pub connections: u32,
    /// Requests per connection.
    #[arg(short, long, default_value_t = 1)]
    pub requests: u32,
    /// Keep connections open for the whole run.
    #[arg(long)]
    pub keep_alive: bool,
    /// Open loop: new connections per second (latency from the scheduled time).
    #[arg(long, default_value_t = 0)]
    pub cps: u64,
    /// Milliseconds between a response and the next request.
    #[arg(long, default_value_t = 0.0, value_name = "MS")]
    pub think: f64,
    /// Which side closes first (see `sluice bench --help`).
    #[arg(long, value_enum, default_value = "server")]
    pub close: CloseFirst,
    /// DPDK port name (default: the first port).
    #[arg(long)]
    pub port: Option<String>,
    /// 2MSL, seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub time_wait: f64,
    /// Write the result as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// No live line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `http://10.0.0.2:8080/x` or `10.0.0.2:8080` → (address, path).
pub fn parse_target(s: &str) -> anyhow::Result<(SocketAddrV4, String)> {
    let bad = || format!("bad target {s:?}: use http://IP[:PORT][/PATH] or IP:PORT (no DNS)");
    if let Some(rest) = s.strip_prefix("http://") {
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let addr = match hostport.split_once(':') {
            Some((h, p)) => SocketAddrV4::new(
                h.parse().ok().with_context(bad)?,
                p.parse().ok().with_context(bad)?,
            ),
            None => SocketAddrV4::new(hostport.parse().ok().with_context(bad)?, 80),
        };
        return Ok((addr, path));
    }
    if s.contains("://") {
        bail!("{}: only http:// is supported", bad());
    }
    Ok((s.parse().ok().with_context(bad)?, "/".into()))
}

pub fn run(eal_args: &EalArgs, args: &ClientArgs) -> anyhow::Result<Report> {
    let (target, path) = parse_target(&args.target)?;
    let (src_first, src_count) = parse_ip_range(&args.ip)?;
    let ports = parse_port_range(&args.src_ports)?;
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
    super::runtime::check_capacity(args.connections, 0)?;
    let eal = Eal::init(&eal_args.to_options())?;
    let mut port = open_port(args.port.as_deref(), 32767)?;
    let tcp = TcpConfig {
        msl: time_wait / 2,
        ..TcpConfig::default()
    };
    let clock = TscClock::new();
    let core = crate::dpdk::lcore_id() as usize;
    let mut iface = Iface::new(port.mac, src_first);
    iface.ip_count = src_count;
    let mut cfg = StackConfig::new(iface, tcp.clone());
    if args.close == CloseFirst::Client {
        cfg.time_wait_reserve = (duration.min(tcp.time_wait()).as_secs_f64() * 200_000.0) as usize;
    }
    let mut stack = Stack::new(cfg, clock.now());
    let queue = port
        .queue
        .take()
        .ok_or_else(|| DpdkError::msg("port", "no queue"))?;
    let mut nic = DpdkNic::new(queue, Arc::clone(&port.pool));
    let stop = stop_flag();

    // The next hop's MAC: ARP with retries.
    let hop = args.gateway.unwrap_or(*target.ip());
    let mut tries = 0;
    let mut next_try = clock.now();
    while stack.neighbour(hop).is_none() {
        let now = clock.now();
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted while resolving {hop}");
        }
        if now >= next_try {
            if tries == 10 {
                bail!(
                    "no ARP reply from {hop} after 10 tries over 3 s: is it on this link (else give --gateway)?"
                );
            }
            tries += 1;
            stack.request_arp(hop);
            next_try = now + Duration::from_millis(300);
        }
        stack.poll(now, &mut nic);
    }
    if !args.quiet {
        eprintln!(
            "sluice client: {} on {} ({}), {hop} is at {}, memory: {}",
            args.target,
            port.name,
            port.driver,
            stack
                .neighbour(hop)
                .map(|m| m.to_string())
                .unwrap_or_default(),
            eal.memory_mode()
        );
    }
    if let Some(mac) = stack.neighbour(hop) {
        stack.add_neighbour(*target.ip(), mac);
    }
    let host = if target.port() == 80 {
        target.ip().to_string()
    } else {
        target.to_string()
    };
    let client = ClientConfig {
        target,
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
        request: http::request(&host, &path, false).into(),
        request_last: http::request(
            &host,
            &path,
            args.close == CloseFirst::Server && !args.keep_alive,
        )
        .into(),
        think: Duration::from_secs_f64(args.think.max(0.0) / 1000.0),
        open_burst: 32,
    };
    let start = clock.now();
    stack.start_client(client, start, duration, warmup);
    let (warm_at, end_at) = (start + warmup, start + duration);
    let (mut w0, mut w1) = (None, None);
    let mut live = LiveLine::new(start);
    let mut next_line = start + Duration::from_secs(1);
    let mut drain_until = None;
    let snapshot = |s: &Stack| Window {
        completed: s.stats.completed,
        responses: s.stats.responses,
    };
    loop {
        let now = clock.now();
        stack.poll(now, &mut nic);
        if w0.is_none() && now >= warm_at {
            w0 = Some((now, snapshot(&stack)));
        }
        if w1.is_none() && now >= end_at {
            w1 = Some((now, snapshot(&stack)));
            drain_until = Some(now + Duration::from_secs(5));
        }
        if now >= next_line {
            next_line = now + Duration::from_secs(1);
            stack.count_states();
            if !args.quiet {
                live.nic = Some(super::runtime::nic_counters(&[&port.port]));
                eprintln!("{}", live.line(now, &stack.stats, &ShardStats::default()));
            }
            if stop.load(Ordering::Relaxed) && drain_until.is_none() {
                stack.stop_client(now);
                w1.get_or_insert((now, snapshot(&stack)));
                drain_until = Some(now + Duration::from_secs(2));
            }
        }
        if drain_until.is_some_and(|d| stack.client_active() == 0 || now >= d) {
            break;
        }
    }
    // Reset anything still open (the peer is told), then report.
    stack.abort_all(clock.now());
    for _ in 0..8 {
        stack.poll(clock.now(), &mut nic);
    }
    stack.count_states();
    drop(nic);
    let name = port.name.clone();
    port.shut()?;
    drop(eal);
    let (t0, a) = w0.unwrap_or((start, Window::default()));
    let (t1, b) = w1.unwrap_or((clock.now(), snapshot(&stack)));
    let res = ShardResult {
        stats: stack.stats,
        time_wait_held: stack.time_wait_records() as u64,
        latency: stack.latency.clone(),
    };
    let info = RunInfo {
        tool: "sluice client".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        link: name,
        target: args.target.clone(),
        duration_s: args.duration,
        warmup_s: args.warmup,
        connections: args.connections,
        requests_per_connection: if args.keep_alive { 0 } else { args.requests },
        keep_alive: args.keep_alive,
        target_cps: args.cps,
        body_bytes: 0,
        time_wait_s: args.time_wait,
        client_cores: vec![core],
        server_cores: vec![],
    };
    Ok(Report::build(
        info,
        &res.stats,
        None,
        &res.latency,
        (a, b),
        (t1 - t0).as_secs_f64(),
        res.time_wait_held,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (a, p) = parse_target("http://10.0.0.2:8080/x/y").unwrap();
        assert_eq!(
            (a.to_string(), p.as_str()),
            ("10.0.0.2:8080".into(), "/x/y")
        );
        assert_eq!(parse_target("http://10.0.0.2").unwrap().0.port(), 80);
        assert_eq!(parse_target("10.0.0.2:7").unwrap().0.port(), 7);
        assert!(parse_target("https://10.0.0.2/").is_err());
        assert!(parse_target("example.com:80").is_err());
    }
}
