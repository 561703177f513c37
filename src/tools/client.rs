//! `sluice client`: the HTTP load generator on a DPDK port (one shard on the
//! main lcore), closed loop (`--connections`) or open loop (`--cps`), with
//! the same report and JSON as `sluice bench`.

use super::load::{self, CloseFirst, LoadArgs};
use super::runtime::{nic_counters, open_port, parse_ip_range, parse_port_range};
use super::{EalArgs, stop_flag};
use crate::dpdk::{DpdkError, Eal, TscClock};
use crate::shard::{DpdkNic, Iface, Stack, StackConfig};
use crate::stats::ShardStats;
use crate::stats::report::Report;
use anyhow::{Context, bail};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

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
    /// DPDK port name (default: the first port).
    #[arg(long)]
    pub port: Option<String>,
    #[command(flatten)]
    pub load: LoadArgs,
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
    let load = &args.load;
    let (target, path) = parse_target(&args.target)?;
    let src = parse_ip_range(&args.ip)?;
    let ports = parse_port_range(&args.src_ports)?;
    let times = load.check()?;
    let eal = Eal::init(&eal_args.to_options())?;
    let mut port = open_port(args.port.as_deref(), 32767, 1)?;
    let tcp = load.tcp(&times);
    let clock = TscClock::new();
    let core = crate::dpdk::lcore_id() as usize;
    let mut iface = Iface::new(port.mac, src.0);
    iface.ip_count = src.1;
    let mut cfg = StackConfig::new(iface, tcp);
    if load.close == CloseFirst::Client {
        cfg.time_wait_reserve = load.time_wait_records(&times);
    }
    let mut stack = Stack::new(cfg, clock.now());
    let queue = port.queues[0]
        .take()
        .ok_or_else(|| DpdkError::msg("port", "no queue"))?;
    let mut nic = DpdkNic::new(queue, Arc::clone(&port.pool));
    let stop = stop_flag();
    let hop = args.gateway.unwrap_or(*target.ip());
    load::resolve(&mut stack, &mut nic, &clock, hop, &stop)?;
    if let Some(mac) = stack.neighbour(hop) {
        stack.add_neighbour(*target.ip(), mac);
        if !load.quiet {
            eprintln!(
                "sluice client: {} on {} ({}), {hop} is at {mac}, memory: {}",
                args.target,
                port.name,
                port.driver,
                eal.memory_mode()
            );
        }
    }
    let client = load.client_config(target, &path, src, ports);
    let outcome = {
        let p = &port.port;
        let peek = (!load.quiet).then_some(|| (ShardStats::default(), nic_counters(&[p])));
        load::drive(&mut stack, &mut nic, &clock, client, &times, &stop, peek)
    };
    drop(nic);
    let name = port.name.clone();
    port.shut()?;
    drop(eal);
    let mut info = load.info("sluice client", name, args.target.clone(), 0);
    info.client_cores = vec![core];
    let res = outcome.result;
    Ok(Report::build(
        info,
        &res.stats,
        None,
        &res.latency,
        outcome.window,
        outcome.measured_s,
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
