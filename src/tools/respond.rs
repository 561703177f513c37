//! `sluice respond`: answers ARP and ICMP echo for one IPv4 address on a DPDK
//! port — the first real peer for the kernel (ping from a namespace).

use std::net::Ipv4Addr;
#[cfg(feature = "dpdk")]
use {
    super::{EalArgs, stop_flag},
    crate::dpdk::{Eal, EthPort, Mbuf, PktPool, PortConfig},
    crate::shard::{Iface, Responder},
    anyhow::Context,
    std::sync::atomic::Ordering,
    std::time::{Duration, Instant},
};

#[cfg(feature = "dpdk")]
const BURST: usize = 32;
/// Replies waiting for tx room beyond this are dropped (and counted).
#[cfg(feature = "dpdk")]
const MAX_PENDING: usize = 1024;

#[derive(Debug, Clone, clap::Args)]
pub struct RespondArgs {
    /// Our IPv4 address on the link.
    #[arg(long)]
    pub ip: Ipv4Addr,
    /// DPDK port name (default: the first port).
    #[arg(long)]
    pub port: Option<String>,
    /// Stop after this many seconds (default: until Ctrl-C / SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Write final counters as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// No periodic status line.
    #[arg(long, short)]
    pub quiet: bool,
}

#[cfg(feature = "dpdk")]
#[derive(Debug, Clone, serde::Serialize)]
pub struct RespondResult {
    pub port: String,
    pub mac: String,
    pub ip: Ipv4Addr,
    pub seconds: f64,
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub arp_requests_answered: u64,
    pub arp_replies_received: u64,
    pub icmp_echo_answered: u64,
    pub drops: serde_json::Value,
    pub tx_dropped_no_room: u64,
    pub tx_dropped_no_mbuf: u64,
    pub rx_multi_segment: u64,
    pub nic: serde_json::Value,
}

#[cfg(feature = "dpdk")]
pub fn run(eal_args: &EalArgs, args: &RespondArgs) -> anyhow::Result<RespondResult> {
    let eal = Eal::init(&eal_args.to_options())?;
    let port = match &args.port {
        Some(name) => EthPort::by_name(name)?,
        None => *EthPort::all().first().context(
            "no DPDK port: give one with --vdev (e.g. --vdev net_af_packet0,iface=veth0)",
        )?,
    };
    let pool = PktPool::new("respond_pool", 8191, 256, -1)?;
    port.configure(&PortConfig::default(), &pool)?;
    let mut queue = port.start(1)?.pop().context("port has no queue")?;
    let mac = port.mac()?;
    let name = port.name();
    let mut responder = Responder::new(Iface::new(mac, args.ip));
    // A line scripts can wait for.
    eprintln!(
        "sluice respond: ready on {name} ({}) mac={mac} ip={} memory: {}",
        port.info()?.driver,
        args.ip,
        eal.memory_mode()
    );
    let stop = stop_flag();
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + Duration::from_secs_f64(d));
    let mut rx: Vec<Mbuf> = Vec::with_capacity(BURST);
    let mut tx: Vec<Mbuf> = Vec::with_capacity(MAX_PENDING + BURST);
    let mut scratch = vec![0u8; 2048];
    let (mut tx_frames, mut no_room, mut no_mbuf, mut multi_seg) = (0u64, 0u64, 0u64, 0u64);
    let mut last_status = start;
    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let n = queue.rx_burst(&mut rx, BURST);
        for m in rx.drain(..) {
            if m.segments() != 1 {
                multi_seg += 1;
                continue;
            }
            if let Ok(Some(len)) = responder.handle(m.data(), &mut scratch) {
                if tx.len() >= MAX_PENDING {
                    no_room += 1;
                } else if let Some(out) = Mbuf::from_slice(&pool, &scratch[..len]) {
                    tx.push(out);
                } else {
                    no_mbuf += 1;
                }
            }
        }
        tx_frames += queue.tx_burst(&mut tx) as u64;
        if n == 0 && tx.is_empty() {
            // An idle virtual device: yield a little instead of burning the core.
            std::thread::sleep(Duration::from_micros(50));
        }
        if !args.quiet && last_status.elapsed() >= Duration::from_secs(5) {
            last_status = Instant::now();
            let s = &responder.stats;
            eprintln!(
                "respond: rx={} arp_answered={} echo_answered={} drops: {}",
                s.rx_frames,
                s.arp_requests_answered,
                s.icmp_echo_answered,
                s.drop_summary()
            );
        }
    }
    // Replies still waiting are dropped on purpose at exit; say how many.
    no_room += tx.len() as u64;
    drop(tx);
    let nic = port.stats()?;
    port.close()?;
    drop(pool);
    drop(eal);
    let s = &responder.stats;
    let drops: serde_json::Map<String, serde_json::Value> = crate::stats::DropReason::ALL
        .iter()
        .map(|d| (d.name().to_string(), s.dropped(*d).into()))
        .collect();
    Ok(RespondResult {
        port: name,
        mac: mac.to_string(),
        ip: args.ip,
        seconds: start.elapsed().as_secs_f64(),
        rx_frames: s.rx_frames,
        tx_frames,
        arp_requests_answered: s.arp_requests_answered,
        arp_replies_received: s.arp_replies_received,
        icmp_echo_answered: s.icmp_echo_answered,
        drops: drops.into(),
        tx_dropped_no_room: no_room,
        tx_dropped_no_mbuf: no_mbuf,
        rx_multi_segment: multi_seg,
        nic: serde_json::json!({
            "ipackets": nic.ipackets, "opackets": nic.opackets, "imissed": nic.imissed,
            "ierrors": nic.ierrors, "oerrors": nic.oerrors, "rx_nombuf": nic.rx_nombuf,
        }),
    })
}
