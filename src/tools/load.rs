//! What `sluice bench` and `sluice client` share: the load options and the
//! latency outputs (kernel mode too); on DPDK, ARP resolution of the next
//! hop and the load loop with its live line and clean stop (the measuring
//! window is `app::window`'s, as in kernel mode).

use super::request::RequestArgs;
use super::runtime::{check_capacity, secs};
use crate::app::{ClientConfig, Pacing, Request};
use crate::stats::Latency;
use crate::stats::output::Intervals;
use crate::stats::report::RunInfo;
use crate::tcp::TcpConfig;
use anyhow::bail;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "dpdk")]
use {
    super::runtime::{Reporter, ShardResult, shut_down},
    crate::app::window::{MeasureWindow, Measured},
    crate::dpdk::TscClock,
    crate::shard::stack::StackFamily,
    crate::shard::{Nic, Stack},
    crate::stats::ShardStats,
    crate::stats::progress::NicCounts,
    crate::stats::report::Window,
    std::sync::atomic::{AtomicBool, Ordering},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CloseFirst {
    Server,
    Client,
}

/// The load options.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
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
    /// Open loop: this many new connections per second, latency counted from
    /// when each was due (0: closed loop).
    #[arg(long, default_value_t = 0)]
    pub cps: u64,
    /// Closed loop: open the --connections evenly over this many seconds
    /// (within the handshake window). Without it (and without --cps) the
    /// opening paces itself: at most a window of handshakes in flight, grown
    /// while they complete fast, halved when they are slow or fail (DPDK
    /// only; kernel mode opens as fast as the kernel takes them).
    #[arg(long, value_name = "SECS")]
    pub ramp: Option<f64>,
    /// Open loop: this many requests per second over the open connections
    /// (keep-alive), each counted from when it was due, as wrk2 -R does
    /// (0: each connection sends its next request on the last response).
    #[arg(long, default_value_t = 0)]
    pub rps: u64,
    /// Raw echo instead of HTTP: send this many bytes per request and expect
    /// them back, checked (against an echo server; 0: HTTP).
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub echo: u32,
    /// HTTP: pad each request (with an X-Pad header) to at least this many bytes.
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub request_bytes: usize,
    /// Milliseconds between a response and the next request on a connection
    /// (closed loop: each connection's first request comes at a point spread
    /// evenly over its first think time, so connections opened together do
    /// not ask in lockstep).
    #[arg(long, default_value_t = 0.0, value_name = "MS")]
    pub think: f64,
    /// Which side closes first (and so holds TIME_WAIT): `server` asks with
    /// `Connection: close` on the last request, as wrk -H "Connection: close"
    /// does against nginx; `client` closes after the last response.
    #[arg(long, value_enum, default_value = "server")]
    pub close: CloseFirst,
    /// 2MSL: how long TIME_WAIT is held, seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub time_wait: f64,
    /// Write the result as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// Write each latency histogram in HdrHistogram's percentile-distribution
    /// format (as wrk2 prints it; the HdrHistogram plotter reads it):
    /// FILE.connect.hgrm, FILE.first_byte.hgrm, FILE.request.hgrm.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<String>,
    /// Draw latency by percentile (connect, first byte, request) to an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<String>,
    /// Write one-second interval histograms in HdrHistogram's log format
    /// (merge the logs of several machines with `sluice merge`).
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<String>,
    /// Capture the first --pcap-count frames the first shard receives and
    /// sends to a pcap file (tcpdump/tshark/Wireshark read it).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Frames --pcap writes at most.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub pcap_count: u64,
    /// No live line.
    #[arg(short, long)]
    pub quiet: bool,
    // Watching a run from outside (issue 15).
    /// Write every field of the live line, once a second, to FILE as JSON
    /// Lines (one object a line, with `unix_s` and `elapsed_s`); --quiet
    /// does not stop it.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<String>,
    #[command(flatten)]
    pub request: RequestArgs,
}

/// Checked durations.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub duration: Duration,
    pub warmup: Duration,
    pub time_wait: Duration,
}

impl LoadArgs {
    /// Checks the options (one-line errors) and the memory they need.
    pub fn check(&self) -> anyhow::Result<Times> {
        let t = Times {
            duration: secs(self.duration, "duration")?,
            warmup: secs(self.warmup, "warmup")?,
            time_wait: secs(self.time_wait, "time-wait")?,
        };
        if t.warmup >= t.duration {
            bail!(
                "--warmup ({}s) must be shorter than --duration ({}s)",
                self.warmup,
                self.duration
            );
        }
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if let Some(r) = self.ramp {
            let r = secs(r, "ramp")?;
            if self.cps > 0 {
                bail!("--ramp paces a closed loop; --cps already sets the opening rate: give one");
            }
            if r >= t.duration {
                bail!(
                    "--ramp ({}s) must be shorter than --duration ({}s)",
                    r.as_secs_f64(),
                    self.duration
                );
            }
        }
        check_capacity(self.connections, self.time_wait_records(&t), 1)?;
        Ok(t)
    }

    /// TIME_WAIT records to make room for on the side that closes first: a
    /// fast run's worth over min(duration, 2MSL).
    /// TIME_WAIT records to make room for up front: growing the record index
    /// mid-run (a rehash of millions of entries) stalls the shard for
    /// hundreds of milliseconds, long enough for peers' retransmission
    /// timers to fire. Sized for 1 M connections a second per shard (a
    /// bench shard pair reaches ~0.75 M here; 0.4 M, the old figure, was
    /// outrun and cost 96 retransmits in a 10 s run).
    /// Keep-alive connections close once, at the end, the client first: a
    /// record each.
    pub fn time_wait_records(&self, t: &Times) -> usize {
        if self.keep_alive {
            return self.connections as usize;
        }
        (t.duration.min(t.time_wait).as_secs_f64() * 1_000_000.0) as usize
    }

    /// Whether the client closes first (and so holds TIME_WAIT): asked for,
    /// or keep-alive connections, which the generator closes at the end.
    pub fn client_closes_first(&self) -> bool {
        self.close == CloseFirst::Client || self.keep_alive
    }

    pub fn tcp(&self, t: &Times) -> TcpConfig {
        TcpConfig {
            msl: t.time_wait / 2,
            ..TcpConfig::default()
        }
    }

    /// The requests these options ask for, built once: `paths` in turn on
    /// `host`, with the request options (`body_inline`: the client's
    /// `--body`); with --echo, the echo bytes.
    pub fn requests(
        &self,
        host: &str,
        paths: &[String],
        body_inline: Option<&str>,
    ) -> anyhow::Result<Arc<[Request]>> {
        let r = &self.request;
        if self.echo > 0 {
            if !r.headers.is_empty() || r.method.is_some() || r.body_file.is_some() {
                bail!("--echo sends raw bytes, not HTTP: -H, --method and bodies do not apply");
            }
            let bytes: Vec<u8> = (0..self.echo as usize).map(crate::app::echo_byte).collect();
            return Ok(Request::only(bytes.clone(), bytes));
        }
        let server_closes = self.close == CloseFirst::Server && !self.keep_alive;
        super::request::build(
            r,
            body_inline,
            host,
            paths,
            server_closes,
            self.request_bytes,
        )
    }

    /// How the closed loop opens: `--ramp`, else paced by its handshakes.
    pub fn pacing(&self) -> Pacing {
        match self.ramp {
            Some(r) if r > 0.0 => Pacing::Ramp(Duration::from_secs_f64(r)),
            _ => Pacing::Adaptive,
        }
    }

    /// The generator's settings for `target` from these options, sending
    /// `request_list` (from [`LoadArgs::requests`]).
    pub fn client_config(
        &self,
        target: SocketAddrV4,
        request_list: Arc<[Request]>,
        (src_first, src_count): (Ipv4Addr, u32),
        ports: (u16, u16),
    ) -> ClientConfig {
        ClientConfig {
            target,
            src_first,
            src_count,
            ports,
            connections: self.connections,
            requests: if self.keep_alive {
                u32::MAX
            } else {
                self.requests.max(1)
            },
            cps: self.cps,
            rps: self.rps,
            echo: (self.echo > 0).then_some(self.echo),
            request_list,
            think: Duration::from_secs_f64(self.think.max(0.0) / 1000.0),
            open_burst: 32,
        }
    }

    /// The run settings as the report echoes them.
    pub fn info(&self, tool: &str, link: String, target: String, body: Option<usize>) -> RunInfo {
        RunInfo {
            tool: tool.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            link,
            target,
            duration_s: self.duration,
            warmup_s: self.warmup,
            connections: self.connections,
            requests_per_connection: if self.keep_alive { 0 } else { self.requests },
            keep_alive: self.keep_alive,
            target_cps: self.cps,
            target_rps: self.rps,
            body_bytes: body,
            time_wait_s: self.time_wait,
            client_cores: vec![],
            server_cores: vec![],
            split: None,
        }
    }
}

/// Finds `hop`'s MAC with ARP: 10 requests, 300 ms apart. `others` are the
/// other shards' queues, not running yet: the reply may arrive on any.
#[cfg(feature = "dpdk")]
pub fn resolve<A: StackFamily + std::fmt::Display>(
    stack: &mut Stack<A>,
    nic: &mut dyn Nic,
    others: &mut [crate::shard::DpdkNic],
    clock: &TscClock,
    hop: A,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let asked = if hop.to_v4().is_some() {
        "ARP reply"
    } else {
        "Neighbor Advertisement"
    };
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
                    "no {asked} from {hop} after 10 tries over 3 s: is it up and on this link (else give --gateway)?"
                );
            }
            tries += 1;
            stack.request_arp(hop);
            next_try = now + Duration::from_millis(300);
        }
        stack.poll(now, nic);
        for o in others.iter_mut() {
            o.rx(&mut |frame| stack.input(now, frame));
        }
    }
    Ok(())
}

/// How a load run is stopped and watched.
#[cfg(feature = "dpdk")]
#[derive(Clone, Copy)]
pub struct Control<'a> {
    /// Set by Ctrl-C / SIGTERM.
    pub stop: &'a AtomicBool,
    /// Where this shard publishes its counters each second (other shards).
    pub publish: Option<&'a crate::stats::Published>,
    /// Keep one-second interval histograms (`--hlog`).
    pub intervals: bool,
    /// How the closed loop opens (`LoadArgs::pacing`).
    pub pacing: Pacing,
}

/// A finished load run.
#[cfg(feature = "dpdk")]
pub struct Outcome {
    pub result: ShardResult,
    /// The measured window's counts and length.
    pub measured: Measured,
    /// One-second latency intervals (with `Control::intervals`).
    pub intervals: Intervals,
    /// Seconds from the start until every connection was open at once.
    pub opened_all_s: Option<f64>,
    /// The measuring waited for that (a paced opening).
    pub waited_for_open: bool,
}

#[cfg(feature = "dpdk")]
impl Outcome {
    /// What the report says about the opening and the measured window.
    pub fn annotate(&self, r: &mut crate::stats::report::Report) {
        r.opened_all_s = self.opened_all_s;
        r.waited_for_open = self.waited_for_open;
        r.measured_from_s = self.measured.from_s;
    }
}

#[cfg(feature = "dpdk")]
fn counts<A: StackFamily>(s: &Stack<A>) -> Window {
    Window {
        completed: s.stats.completed,
        responses: s.stats.responses,
    }
}

/// Runs the load: opens connections for `duration` (paced, see
/// `app::Pacing`), measures after `warmup` and, when paced, once every
/// connection is open; reports each second (`watch`: the reporter, and what
/// gives the other side's counters and the NIC's; None when nothing is
/// reported); at the end closes idle connections and lets the others finish
/// (`app::window`: while connections keep closing, `DRAIN` after the last;
/// 2 s after Ctrl-C), resets what is left, and hands back the counters.
#[cfg(feature = "dpdk")]
pub fn drive(
    stack: &mut Stack,
    nic: &mut dyn Nic,
    clock: &TscClock,
    client: ClientConfig,
    t: &Times,
    ctl: Control<'_>,
    watch: Option<(&mut Reporter, impl FnMut() -> (ShardStats, NicCounts))>,
) -> Outcome {
    drive_family(stack, nic, clock, client, None, t, ctl, watch)
}

/// `drive` for a shard of either family: `to` gives an IPv6 shard its
/// target and source range (`Stack::start_client_to`); None: the client
/// configuration's IPv4 ones.
#[cfg(feature = "dpdk")]
#[allow(clippy::too_many_arguments)]
pub fn drive_family<A: StackFamily>(
    stack: &mut Stack<A>,
    nic: &mut dyn Nic,
    clock: &TscClock,
    client: ClientConfig,
    to: Option<(A::SocketAddr, crate::wire::Ipv6Range)>,
    t: &Times,
    ctl: Control<'_>,
    mut watch: Option<(&mut Reporter, impl FnMut() -> (ShardStats, NicCounts))>,
) -> Outcome {
    let start = clock.now();
    match to {
        Some((target, sources)) => {
            stack.start_client_to(client, target, sources, start, t.duration, t.warmup)
        }
        None => stack.start_client(client, start, t.duration, t.warmup),
    }
    stack.pace_client(ctl.pacing);
    let mut window = MeasureWindow::new(start, t.duration, t.warmup);
    // The generator closes its idle connections at the end (a burst a
    // turn): the drain lasts while they close.
    window.drain_by_progress();
    let paced = stack.client_paced();
    if paced {
        window.wait_for_open();
    }
    let mut opened_all = None;
    let mut states = super::runtime::StateCount::default();
    let mut next_states = start;
    if let Some((reporter, _)) = watch.as_mut() {
        reporter.restart(start);
    }
    let mut intervals = Intervals::default();
    if ctl.intervals {
        intervals.tick(start, &stack.latency);
    }
    loop {
        let now = clock.now();
        stack.poll(now, nic);
        if opened_all.is_none() {
            opened_all = stack.client_all_open_at();
            if opened_all.is_some() {
                window.all_open();
            }
        }
        let turn = window.turn(now, counts(stack), ctl.stop.load(Ordering::Relaxed));
        if now >= next_states {
            next_states = now + super::runtime::PUBLISH_EVERY;
            states.tick(stack, clock);
        }
        if turn.second {
            if ctl.intervals {
                intervals.tick(now, &stack.latency);
            }
            if let Some(p) = ctl.publish {
                p.store(&stack.stats);
            }
            if let Some((reporter, peek)) = watch.as_mut() {
                let (other, nic) = peek();
                reporter.tick(now, &stack.stats, &other, Some(nic));
            }
        }
        if turn.stop_client {
            // Ctrl-C / SIGTERM: no new connections; 2 s for the open ones.
            stack.stop_client(now);
        }
        if window.done(now, stack.client_active()) {
            break;
        }
    }
    // Let the last ACKs out, then reset anything still open (the peer is told).
    let settle = clock.now() + Duration::from_millis(100);
    while clock.now() < settle {
        stack.poll(clock.now(), nic);
    }
    shut_down(stack, nic, clock);
    if ctl.intervals {
        intervals.tick(clock.now(), &stack.latency);
    }
    Outcome {
        measured: window.measured(clock.now(), counts(stack)),
        result: ShardResult::of(stack),
        intervals,
        opened_all_s: opened_all.map(|at| (at - start).as_secs_f64()),
        waited_for_open: paced,
    }
}

/// Writes what --hgrm, --plot and --hlog ask for. `t0` and `wall0` are the
/// run's start on the shard clock and on the wall clock.
pub fn write_outputs(
    args: &LoadArgs,
    title: &str,
    latency: &Latency,
    intervals: &[&Intervals],
    (t0, wall0): (crate::time::Instant, std::time::SystemTime),
) -> anyhow::Result<()> {
    use crate::stats::output;
    let say = |what: String| {
        if !args.quiet {
            eprintln!("wrote {what}");
        }
    };
    if let Some(p) = &args.hgrm {
        let files =
            output::write_hgrm_files(p, latency).map_err(|e| anyhow::anyhow!("--hgrm {p}: {e}"))?;
        say(files.join(", "));
    }
    if let Some(p) = &args.plot {
        output::write_svg(p, title, latency).map_err(|e| anyhow::anyhow!("--plot {p}: {e}"))?;
        say(p.clone());
    }
    if let Some(p) = &args.hlog {
        let all: Vec<_> = intervals
            .iter()
            .flat_map(|i| i.list.iter().cloned())
            .collect();
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| anyhow::anyhow!("--hlog {p}: {e}"))?,
        );
        output::write_hlog(&mut f, wall0, t0, &all)
            .and_then(|_| std::io::Write::flush(&mut f))
            .map_err(|e| anyhow::anyhow!("--hlog {p}: {e}"))?;
        say(format!("{p} ({} intervals)", all.len()));
    }
    Ok(())
}
