//! Running shards on cores, for every command: a shard thread pinned to a
//! core (registered with DPDK when it uses DPDK queues), its start and its
//! end, each shard's share of the load, the live progress line, a DPDK
//! port opened and its link up, and the option parsers the server, client
//! and bench commands share. The DPDK items are absent without the `dpdk`
//! feature.

use crate::app::ClientConfig;
use crate::shard::stack::StackFamily;
use crate::shard::{PcapWriter, Stack};
use crate::stats::progress::{NicCounts, Progress, StatsStream};
use crate::stats::{Latency, ShardStats, human_rate};
use crate::time::Instant;
use anyhow::{Context, bail};
use std::net::Ipv4Addr;
use std::time::Duration;
#[cfg(feature = "dpdk")]
use {
    crate::dpdk::{self, EthPort, Mbuf, Queue, TscClock},
    crate::shard::Nic,
    crate::stats::Published,
    std::sync::Arc,
    std::sync::atomic::{AtomicBool, Ordering},
};

/// What a shard thread hands back when it stops.
pub struct ShardResult {
    pub stats: ShardStats,
    pub latency: Latency,
    pub time_wait_held: u64,
}

impl ShardResult {
    /// What `stack` has counted and holds at the end of its run (both
    /// halves of a dual-stack shard).
    pub fn of<A: StackFamily>(stack: &Stack<A>) -> ShardResult {
        ShardResult {
            stats: stack.total_stats(),
            latency: stack.total_latency(),
            time_wait_held: stack.time_wait_records() as u64,
        }
    }
}

/// Counting connections per state walks the whole table: at ten million
/// connections a walk takes about a second, and a shard that stops that long
/// makes its peers retransmit. So the walk is done a part at a time: each
/// `tick` walks slots for at most `STATE_WALK` of the shard's time, and the
/// counts shown are the last whole walk's (at millions of connections a few
/// seconds to some tens of seconds old; the generator's gauges stay current).
#[cfg(feature = "dpdk")]
#[derive(Debug, Default)]
pub struct StateCount {
    /// Where the walk goes on, and what it has counted so far.
    at: usize,
    counts: [u64; crate::stats::STATES.len()],
    /// Slots a part walks (grown or shrunk to take about `STATE_WALK`).
    part: usize,
}

/// The most time one `StateCount::tick` spends walking the table.
#[cfg(feature = "dpdk")]
const STATE_WALK: Duration = Duration::from_millis(2);

#[cfg(feature = "dpdk")]
impl StateCount {
    /// Walks the next part of `stack`'s table; publishes the counts when the
    /// walk has passed the end.
    pub fn tick<A: StackFamily>(&mut self, stack: &mut Stack<A>, clock: &TscClock) {
        let t0 = clock.now();
        if self.part == 0 {
            self.part = 16_384;
        }
        let whole_part = match stack.count_states_part(self.at, self.part, &mut self.counts) {
            Some(next) => {
                self.at = next;
                stack.client_gauges();
                true
            }
            None => {
                stack.set_state_counts(std::mem::take(&mut self.counts));
                self.at = 0;
                false
            }
        };
        // Grown only on a part walked whole: a table that is small now (a
        // run opening) must not grow it to a size that, once the table is
        // large, walks it all at once.
        let took = clock.now() - t0;
        if took > STATE_WALK {
            self.part = (self.part / 2).max(1024);
        } else if took < STATE_WALK / 2 && whole_part {
            self.part = self.part.saturating_mul(2).min(1 << 24);
        }
    }
}

/// How often a shard publishes its counters (and walks a part of its table
/// for the state counts).
#[cfg(feature = "dpdk")]
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// Runs `stack` on `nic` until `stop` is set, publishing counters to `out`.
/// On stop it resets what is still open, so the peer is told.
#[cfg(feature = "dpdk")]
pub fn shard_loop<A: StackFamily>(
    stack: &mut Stack<A>,
    nic: &mut dyn Nic,
    clock: &TscClock,
    out: &Published,
    stop: &AtomicBool,
) {
    let mut next_publish = clock.now();
    let mut states = StateCount::default();
    loop {
        let now = clock.now();
        stack.poll(now, nic);
        if now >= next_publish {
            next_publish = now + PUBLISH_EVERY;
            states.tick(stack, clock);
            out.store(&stack.total_stats());
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    shut_down(stack, nic, clock);
    out.store(&stack.total_stats());
}

/// The end of a shard's run: resets every connection still open (the peer
/// is told), gives the resets a few turns to leave (and, while the device's
/// ring is full, up to 100 ms more for it to drain), and counts the states.
#[cfg(feature = "dpdk")]
pub fn shut_down<A: StackFamily>(stack: &mut Stack<A>, nic: &mut dyn Nic, clock: &TscClock) {
    stack.abort_all();
    for _ in 0..8 {
        stack.poll(clock.now(), nic);
    }
    let until = clock.now() + Duration::from_millis(100);
    while nic.tx_pending() > 0 && clock.now() < until {
        stack.poll(clock.now(), nic);
    }
    stack.count_states();
}

/// Starts `body` on a thread of its own named `name`, pinned to `core`.
pub fn spawn_pinned<T, F>(
    name: String,
    core: usize,
    body: F,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                bail!("cannot pin a shard to core {core} (does this machine have it? see nproc)");
            }
            body()
        })
        .context("cannot start a shard thread")
}

/// `body` as a DPDK lcore (what a thread that uses DPDK queues runs, given
/// to `spawn_pinned`): the thread is registered with DPDK while it runs.
#[cfg(feature = "dpdk")]
pub fn as_lcore<T>(
    body: impl FnOnce() -> anyhow::Result<T> + Send,
) -> impl FnOnce() -> anyhow::Result<T> + Send {
    move || {
        dpdk::register_thread()?;
        let r = body();
        dpdk::unregister_thread();
        r
    }
}

/// Starts a shard that serves until `stop` (`shard_loop`) on its own lcore
/// thread on `core`. `make` builds the stack and NIC on that thread.
#[cfg(feature = "dpdk")]
pub fn spawn_shard<A: StackFamily, F>(
    name: String,
    core: usize,
    clock: TscClock,
    out: Arc<Published>,
    stop: Arc<AtomicBool>,
    make: F,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<ShardResult>>>
where
    F: FnOnce() -> (Stack<A>, Box<dyn Nic + Send>) + Send + 'static,
{
    spawn_pinned(
        name,
        core,
        as_lcore(move || {
            let (mut stack, mut nic) = make();
            shard_loop(&mut stack, nic.as_mut(), &clock, &out, &stop);
            Ok(ShardResult::of(&stack))
        }),
    )
}

/// One shard's part of a load that `shards` shards share: the connections
/// and the rates divided among them, rounded up.
pub fn shard_share(mut client: ClientConfig, shards: usize) -> ClientConfig {
    let share = |x: u64| x.div_ceil(shards.max(1) as u64);
    client.connections = share(u64::from(client.connections)) as u32;
    client.cps = share(client.cps);
    client.rps = share(client.rps);
    client
}

/// `--pcap FILE`: the capture file for the first `count` frames, if asked for.
pub fn open_pcap(path: Option<&str>, count: u64) -> anyhow::Result<Option<PcapWriter>> {
    path.map(|p| PcapWriter::create(p, count).map_err(|e| anyhow::anyhow!("--pcap {p}: {e}")))
        .transpose()
}

/// Polls `queues` until the link of every port in `ports` is up (memif's
/// comes up once both ends have polled), 10 s at most; Ctrl-C gives up.
/// `what` names the link in the error.
#[cfg(feature = "dpdk")]
pub fn wait_for_link(
    ports: &[&EthPort],
    queues: &mut [&mut Queue],
    what: &str,
) -> anyhow::Result<()> {
    let stop = super::stop_flag();
    let mut scratch: Vec<Mbuf> = Vec::with_capacity(32);
    let t0 = std::time::Instant::now();
    loop {
        for q in queues.iter_mut() {
            q.rx_burst(&mut scratch, 32);
        }
        scratch.clear();
        let mut up = true;
        for p in ports {
            up &= p.link()?.up;
        }
        if up {
            return Ok(());
        }
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted while waiting for {what} to come up");
        }
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("{what} did not come up within 10 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The live line: rates over the last interval, from published counters;
/// connections per TCP state (CL LI SS SR E FW1 FW2 CW C LA TW = CLOSED,
/// LISTEN (listeners), SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1,
/// FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT records). The fields
/// are gathered once ([`LiveLine::sample`], a [`Progress`]); the line and
/// the `--stats` stream both read them.
pub struct LiveLine {
    last: Option<(Instant, ShardStats, ShardStats)>,
    start: Instant,
    /// NIC counters to append (missed, errors), set by the caller.
    pub nic: Option<NicCounts>,
    /// Connections the generator was asked to hold (0: not shown), and
    /// whether they have all been open at once (the opening is over).
    pub open_target: u64,
    opened_all: bool,
}

impl LiveLine {
    pub fn new(start: Instant) -> LiveLine {
        LiveLine {
            last: None,
            start,
            nic: None,
            open_target: 0,
            opened_all: false,
        }
    }

    /// The last interval's fields from the client-side and server-side
    /// totals now (the next interval starts here).
    pub fn sample(&mut self, now: Instant, client: &ShardStats, server: &ShardStats) -> Progress {
        let (dt, pc, ps) = match &self.last {
            Some((t, c, s)) => ((now - *t).as_secs_f64(), *c, *s),
            None => (
                (now - self.start).as_secs_f64(),
                ShardStats::default(),
                ShardStats::default(),
            ),
        };
        self.last = Some((now, *client, *server));
        let mut p = Progress::between(
            (client, server),
            (&pc, &ps),
            dt,
            (now - self.start).as_secs_f64(),
            self.nic,
        );
        p.open_target = self.open_target;
        self.opened_all |= p.open >= self.open_target;
        p.opening = !self.opened_all;
        p
    }

    /// One line (stderr) from the client-side and server-side totals now.
    pub fn line(&mut self, now: Instant, client: &ShardStats, server: &ShardStats) -> String {
        let p = self.sample(now, client, server);
        render(&p)
    }
}

/// The live line for `p`.
pub fn render(p: &Progress) -> String {
    // Drops by reason (the non-zero ones), else 0.
    let by_reason = p.drops_nonzero();
    let drops = if by_reason.is_empty() {
        "0".to_string()
    } else {
        by_reason.join(",")
    };
    let states = ShardStats {
        states: p.state_counts,
        ..ShardStats::default()
    };
    let opening = p
        .opening_part()
        .map(|o| format!("{o} | "))
        .unwrap_or_default();
    format!(
        "[{:>5.1}s] {opening}cps {} rps {} active {} busy c/s {:.0}%/{:.0}% | {} | retx {} rst in/out {}/{} drops {} | rx {}pps {:.2}Gb/s tx {}pps {:.2}Gb/s{}",
        p.elapsed_s,
        human_rate(p.cps),
        human_rate(p.rps),
        p.active,
        p.busy_client_pct,
        p.busy_server_pct,
        crate::stats::states_line(&[&states]),
        p.retransmits,
        p.rsts_in,
        p.rsts_out,
        drops,
        human_rate(p.rx_pps),
        p.rx_gbps,
        human_rate(p.tx_pps),
        p.tx_gbps,
        p.nic
            .map(|n| format!(" | nic missed {} errors {}", n.missed, n.errors))
            .unwrap_or_default(),
    )
}

/// Each second's report: the live line on stderr (unless quiet) and a line
/// of `--stats`, from one sample.
pub struct Reporter {
    live: LiveLine,
    quiet: bool,
    stats: Option<StatsStream>,
}

impl Reporter {
    /// Opens `--stats` (if given) for a run starting at `start`.
    pub fn new(start: Instant, quiet: bool, stats: Option<&str>) -> anyhow::Result<Reporter> {
        Ok(Reporter {
            live: LiveLine::new(start),
            quiet,
            stats: stats.map(StatsStream::create).transpose()?,
        })
    }

    /// Whether anything is reported (else the caller need not gather).
    pub fn wanted(&self) -> bool {
        !self.quiet || self.stats.is_some()
    }

    /// Starts the run's clock again at `start` (the load begins).
    pub fn restart(&mut self, start: Instant) {
        let (nic, target) = (self.live.nic, self.live.open_target);
        self.live = LiveLine::new(start);
        self.live.nic = nic;
        self.live.open_target = target;
    }

    /// The live line shows the opening (`open 412.0k/1.00M`) until this many
    /// connections are open at once.
    pub fn show_opening(&mut self, target: u64) {
        self.live.open_target = target;
    }

    /// Reports the second that ends at `now`.
    pub fn tick(
        &mut self,
        now: Instant,
        client: &ShardStats,
        server: &ShardStats,
        nic: Option<NicCounts>,
    ) {
        self.live.nic = nic;
        let p = self.live.sample(now, client, server);
        if !self.quiet {
            eprintln!("{}", render(&p));
        }
        if let Some(s) = self.stats.as_mut() {
            s.write(&p);
        }
    }
}

/// `10.1.0.0/16` or `10.1.0.5` → (first address, count).
pub fn parse_ip_range(s: &str) -> anyhow::Result<(Ipv4Addr, u32)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, p)) => {
            let p: u32 = p
                .parse()
                .ok()
                .filter(|p| (8..=32).contains(p))
                .with_context(|| {
                    format!("bad prefix length in {s:?} (use 8..32, e.g. 10.1.0.0/16)")
                })?;
            (ip, p)
        }
        None => (s, 32),
    };
    let ip: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("bad IPv4 address {ip:?} (e.g. 10.1.0.0/16)"))?;
    Ok((ip, 1u32 << (32 - len)))
}

/// `1024-65535` or `5000` → inclusive range.
pub fn parse_port_range(s: &str) -> anyhow::Result<(u16, u16)> {
    let bad = || format!("bad port range {s:?} (e.g. 1024-65535)");
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().ok().with_context(bad)?,
            b.parse::<u16>().ok().with_context(bad)?,
        ),
        None => {
            let p = s.parse::<u16>().ok().with_context(bad)?;
            (p, p)
        }
    };
    if a == 0 || a > b {
        bail!("{}", bad());
    }
    Ok((a, b))
}

/// A duration in seconds from the command line.
pub fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(0.0..=86_400.0).contains(&s) || s.is_nan() {
        bail!("--{what} must be between 0 and 86400 seconds (got {s})");
    }
    Ok(Duration::from_secs_f64(s))
}

/// A DPDK port opened for one shard: configured, started with one queue, link up.
#[cfg(feature = "dpdk")]
pub struct OpenPort {
    pub port: crate::dpdk::EthPort,
    /// One rx/tx queue pair per shard, taken by the shards.
    pub queues: Vec<Option<crate::dpdk::Queue>>,
    pub mac: crate::wire::EthernetAddress,
    pub pool: Arc<crate::dpdk::PktPool>,
    pub name: String,
    pub driver: String,
    /// Flow ownership that matches where the device's RSS delivers.
    pub ownership: crate::shard::Ownership,
}

/// Opens `name` (or the first port) with `queues` queue pairs (RSS with the
/// symmetric key where the device has it) and waits up to 10 s for its link.
#[cfg(feature = "dpdk")]
pub fn open_port(name: Option<&str>, mbufs: u32, queues: u16) -> anyhow::Result<OpenPort> {
    use crate::dpdk::{PktPool, PortConfig};
    let port = match name {
        Some(n) => EthPort::by_name(n)?,
        None => *EthPort::all().first().context(
            "no DPDK port: give one with --vdev (e.g. --vdev net_af_packet0,iface=veth0)",
        )?,
    };
    let pool = Arc::new(PktPool::new("shard_pool", mbufs, 256, -1)?);
    let cfg = PortConfig {
        rx_queues: queues,
        tx_queues: queues,
        rss: queues > 1,
        rss_key: Some(crate::shard::rss::SYMMETRIC_KEY.to_vec()),
        ..PortConfig::default()
    };
    port.configure(&cfg, &pool)?;
    let info = port.info()?;
    // After configuring RSS, drivers fill the redirection table round-robin
    // over the rx queues (DPDK's default); ownership follows it. Should a
    // driver differ, frames still reach their owner through software steering.
    let ownership = if queues > 1 && info.supports_rss() && info.reta_size > 0 {
        crate::shard::Ownership::Rss(Arc::new(crate::shard::rss::Reta::round_robin(
            usize::from(info.reta_size),
            queues,
        )))
    } else {
        crate::shard::Ownership::Hash
    };
    let mut qs = port.start(queues)?;
    if qs.is_empty() {
        bail!("the port has no queue");
    }
    wait_for_link(
        &[&port],
        &mut qs.iter_mut().collect::<Vec<_>>(),
        &format!("the link of {}", port.name()),
    )?;
    Ok(OpenPort {
        mac: port.mac()?,
        name: port.name(),
        driver: info.driver,
        ownership,
        port,
        queues: qs.into_iter().map(Some).collect(),
        pool,
    })
}

#[cfg(feature = "dpdk")]
impl OpenPort {
    /// Stops and closes the port (after every queue user is done).
    pub fn shut(self) -> anyhow::Result<()> {
        self.port.stop()?;
        self.port.close()?;
        drop(self.pool);
        Ok(())
    }
}

/// A port's own counters (zero where unreadable).
#[cfg(feature = "dpdk")]
pub fn nic_counters(ports: &[&crate::dpdk::EthPort]) -> NicCounts {
    let mut n = NicCounts::default();
    for p in ports {
        if let Ok(s) = p.stats() {
            n.missed += s.imissed;
            n.errors += s.ierrors + s.oerrors;
        }
    }
    n
}

/// Connections a shard's table holds at least (bench, client).
pub const TABLE_CAPACITY: usize = 1 << 20;
/// Connections a run may ask for at most (a table's handles are 32-bit).
pub const MAX_CONNECTIONS: u32 = 1 << 26;

/// A shard's table for `connections` open at once: room for them and an
/// eighth more (connections closing while their replacements open).
pub fn table_capacity(connections: u32) -> usize {
    TABLE_CAPACITY.max(connections as usize + connections as usize / 8)
}

/// Resident bytes an open connection end takes: its table slot (control
/// block and application state), index entry, timer entry and, while data is
/// in flight, buffers. Measured: 516 B per idle endpoint (VmRSS delta over
/// 2 M endpoints, `bench/scale.sh --size 1000000`); buffers go back to the
/// shard's pool once both rings are empty, so only connections with data in
/// flight hold them. 640 leaves room for those and for the index's rounding
/// up to a power of two. (It was 1,088 when every connection kept the
/// buffers it grew: 22.7 GB asked for `-c 10000000`, about all a 24 GiB
/// machine has.)
pub const BYTES_PER_END: u64 = 640;

/// Refuses, in one line, a run the table or the machine's memory cannot hold:
/// `connections` open at once, with `ends` of each in this process (2 for
/// `sluice bench`), and `time_wait` records reserved.
pub fn check_capacity(connections: u32, time_wait: usize, ends: u64) -> anyhow::Result<()> {
    if connections > MAX_CONNECTIONS {
        bail!("--connections {connections} is more than a run holds ({MAX_CONNECTIONS}); lower it");
    }
    let need = connections as u64 * ends * BYTES_PER_END + time_wait as u64 * 96;
    let avail = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024);
    if let Some(avail) = avail {
        if need > avail {
            bail!(
                "{connections} connections need about {} MB, but only {} MB are available: lower --connections (or --duration, which sizes TIME_WAIT)",
                need >> 20,
                avail >> 20
            );
        }
    }
    Ok(())
}

/// `0,2-3` → [0, 2, 3]: cores for shards, the first for EAL's main lcore.
pub fn parse_cores(s: &str) -> anyhow::Result<Vec<usize>> {
    let bad = || format!("bad core list {s:?} (e.g. 0 or 0,1 or 0-3)");
    let mut v = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().ok().with_context(bad)?,
                    b.trim().parse().ok().with_context(bad)?,
                );
                if a > b {
                    bail!("{}", bad());
                }
                v.extend(a..=b);
            }
            None => v.push(part.trim().parse().ok().with_context(bad)?),
        }
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(c) = v.iter().find(|&&c| c >= n) {
        bail!(
            "core {c} is not on this machine (cores 0..{}; see nproc)",
            n - 1
        );
    }
    let mut seen = v.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != v.len() || v.is_empty() {
        bail!("{}: each core once", bad());
    }
    Ok(v)
}

/// Joins shard threads, each handing back a result; a panic is an error.
pub fn join_all<T>(
    workers: Vec<std::thread::JoinHandle<anyhow::Result<T>>>,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::with_capacity(workers.len());
    for w in workers {
        match w.join() {
            Ok(r) => out.push(r?),
            Err(_) => bail!("a shard thread panicked"),
        }
    }
    Ok(out)
}

/// Shard `shard`'s stack on a port shared by `queues.shards()` shards: flow
/// ownership as the port delivers it, and software steering when there are
/// several.
pub fn shard_stack<A: StackFamily>(
    mut cfg: crate::shard::StackConfig,
    shard: usize,
    ownership: &crate::shard::Ownership,
    queues: &crate::shard::SteerQueues,
    now: Instant,
) -> Stack<A> {
    cfg.shard = shard as u32;
    cfg.shards = queues.shards() as u32;
    cfg.ownership = ownership.clone();
    let mut stack = Stack::new_family(cfg, now);
    if queues.shards() > 1 {
        stack.set_steering(queues.clone());
    }
    stack
}

/// The software-steering queues for a port's shards (8192 frames each).
pub fn steering_inboxes(shards: usize) -> crate::shard::SteerQueues {
    crate::shard::SteerQueues::new(shards, 8192)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_ip_range("10.1.0.0/16").unwrap(),
            (Ipv4Addr::new(10, 1, 0, 0), 65536)
        );
        assert_eq!(parse_ip_range("10.1.0.9").unwrap().1, 1);
        assert!(parse_ip_range("10.1.0.0/40").is_err());
        assert_eq!(parse_port_range("1024-65535").unwrap(), (1024, 65535));
        assert!(parse_port_range("9-3").is_err());
        assert!(parse_port_range("0").is_err());
        assert_eq!(parse_cores("0").unwrap(), vec![0]);
        assert!(parse_cores("0,0").is_err());
        assert!(parse_cores("1-0").is_err());
        assert!(parse_cores("4096").is_err());
    }
}
