//! `sluice smoke`: two DPDK ports in one process, linked by `net_ring` or a
//! `net_memif` pair; frames go both ways and every one is checked (count,
//! order, contents). Exits non-zero on any loss or corruption.

#[cfg(feature = "dpdk")]
use {
    super::{EalArgs, stop_flag},
    crate::dpdk::{Eal, EthPort, Mbuf, PktPool, PortConfig, Queue, ring_pair},
    crate::wire::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr},
    anyhow::Context,
    std::sync::atomic::Ordering,
    std::time::{Duration, Instant},
};

/// A local experimental EtherType (IEEE 802), so no stack mistakes our frames.
#[cfg(feature = "dpdk")]
const ETHERTYPE_SMOKE: u16 = 0x88b5;
#[cfg(feature = "dpdk")]
const BURST: usize = 32;
/// Payload header: direction (1 byte), 7 bytes padding, sequence (8 bytes).
#[cfg(feature = "dpdk")]
const HDR: usize = 14 + 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    Ring,
    Memif,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SmokeArgs {
    /// How the two ports are linked.
    #[arg(long, value_enum, default_value_t = Link::Memif)]
    pub link: Link,
    /// Frames to send in each direction.
    #[arg(long, default_value_t = 1_000_000)]
    pub frames: u64,
    /// Frame size in bytes (Ethernet header included), 30..=1514.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(30..=1514))]
    pub size: u16,
    /// Give up when no frame moves for this many seconds.
    #[arg(long, default_value_t = 5)]
    pub stall_secs: u64,
    /// Write the result as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// One direction's bookkeeping.
#[cfg(feature = "dpdk")]
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DirStats {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub out_of_order: u64,
    pub corrupt: u64,
    pub tx_refused: u64,
    pub foreign: u64,
    #[serde(skip)]
    next_build: u64,
    #[serde(skip)]
    next_expected: u64,
}

#[cfg(feature = "dpdk")]
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmokeResult {
    pub link: Link,
    pub frames_per_direction: u64,
    pub frame_size: u16,
    pub memory: String,
    pub seconds: f64,
    pub mpps: f64,
    pub gbps: f64,
    pub a_to_b: DirStats,
    pub b_to_a: DirStats,
    pub ok: bool,
}

#[cfg(feature = "dpdk")]
struct End {
    port: EthPort,
    queue: Queue,
    mac: EthernetAddress,
}

#[cfg(feature = "dpdk")]
fn fill(
    m: &mut Mbuf,
    size: usize,
    src: EthernetAddress,
    dst: EthernetAddress,
    dir: u8,
    seq: u64,
) -> bool {
    let Some(buf) = m.append(size) else {
        return false;
    };
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype: EtherType::Unknown(ETHERTYPE_SMOKE),
    }
    .emit(&mut f);
    let p = f.payload_mut();
    p[..8].fill(0);
    p[0] = dir;
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[16..].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_add(i as u8);
    }
    true
}

#[cfg(feature = "dpdk")]
fn check(frame: &[u8], dir: u8, size: usize, st: &mut DirStats) {
    let Ok(f) = EthernetFrame::new_checked(frame) else {
        st.foreign += 1;
        return;
    };
    if f.ethertype() != EtherType::Unknown(ETHERTYPE_SMOKE) {
        st.foreign += 1;
        return;
    }
    let p = f.payload();
    if frame.len() != size || p.len() < 16 || p[0] != dir {
        st.corrupt += 1;
        return;
    }
    let seq = u64::from_be_bytes(p[8..16].try_into().expect("8 bytes"));
    if p[16..]
        .iter()
        .enumerate()
        .any(|(i, b)| *b != (seq as u8).wrapping_add(i as u8))
    {
        st.corrupt += 1;
        return;
    }
    st.received += 1;
    match seq.cmp(&st.next_expected) {
        std::cmp::Ordering::Equal => st.next_expected += 1,
        std::cmp::Ordering::Greater => {
            st.lost += seq - st.next_expected;
            st.next_expected = seq + 1;
        }
        std::cmp::Ordering::Less => st.out_of_order += 1,
    }
}

/// Sends one burst from `from` and drains what `to` has received.
#[cfg(feature = "dpdk")]
#[allow(clippy::too_many_arguments)]
fn step(
    pool: &PktPool,
    from: &mut End,
    to: &mut End,
    dir: u8,
    frames: u64,
    size: usize,
    pending: &mut Vec<Mbuf>,
    rx: &mut Vec<Mbuf>,
    st: &mut DirStats,
) -> bool {
    let mut moved = false;
    while pending.len() < BURST && st.next_build < frames {
        let Some(mut m) = Mbuf::alloc(pool) else {
            break;
        };
        if !fill(&mut m, size, from.mac, to.mac, dir, st.next_build) {
            break;
        }
        pending.push(m);
        st.next_build += 1;
    }
    if !pending.is_empty() {
        let before = pending.len();
        let sent = from.queue.tx_burst(pending);
        st.sent += sent as u64;
        st.tx_refused += (before - sent) as u64;
        moved |= sent > 0;
    }
    rx.clear();
    let n = to.queue.rx_burst(rx, BURST);
    for m in rx.iter() {
        check(m.data(), dir, size, st);
    }
    rx.clear();
    moved | (n > 0)
}

#[cfg(feature = "dpdk")]
pub fn run(eal_args: &EalArgs, args: &SmokeArgs) -> anyhow::Result<SmokeResult> {
    let mut opts = eal_args.to_options();
    let sock = format!("/tmp/sluice-smoke-{}.sock", std::process::id());
    if args.link == Link::Memif {
        opts.vdevs.extend(super::memif_pair(&sock, "", false));
    }
    let eal = Eal::init(&opts)?;
    let memory = eal.memory_mode().to_string();
    if !args.quiet {
        eprintln!("sluice smoke: EAL up, memory: {memory}");
    }
    let pool = PktPool::new("smoke_pool", 16383, 256, -1)?;
    let (pa, pb) = match args.link {
        Link::Ring => ring_pair("ring_a", "ring_b", 1024)?,
        Link::Memif => (
            EthPort::by_name("net_memif0")?,
            EthPort::by_name("net_memif1")?,
        ),
    };
    let cfg = PortConfig::default();
    pa.configure(&cfg, &pool)?;
    pb.configure(&cfg, &pool)?;
    let mut a = End {
        queue: pa.start(1)?.pop().context("port a has no queue")?,
        mac: pa.mac()?,
        port: pa,
    };
    let mut b = End {
        queue: pb.start(1)?.pop().context("port b has no queue")?,
        mac: pb.mac()?,
        port: pb,
    };
    // memif: the server cannot send until the client has polled rx once, and the
    // link comes up asynchronously; poll both sides until both links are up.
    super::runtime::wait_for_link(
        &[&a.port, &b.port],
        &mut [&mut a.queue, &mut b.queue],
        &format!("the {:?} link", args.link),
    )?;
    let stop = stop_flag();
    let mut rx: Vec<Mbuf> = Vec::with_capacity(BURST);
    let size = usize::from(args.size).max(HDR);
    let (mut ab, mut ba) = (DirStats::default(), DirStats::default());
    let (mut pend_a, mut pend_b) = (Vec::with_capacity(BURST), Vec::with_capacity(BURST));
    let start = Instant::now();
    let mut last_progress = start;
    let mut last_report = start;
    let stall = Duration::from_secs(args.stall_secs);
    let done = |s: &DirStats| s.received + s.lost + s.corrupt >= args.frames;
    while !(done(&ab) && done(&ba)) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let m1 = step(
            &pool,
            &mut a,
            &mut b,
            1,
            args.frames,
            size,
            &mut pend_a,
            &mut rx,
            &mut ab,
        );
        let m2 = step(
            &pool,
            &mut b,
            &mut a,
            2,
            args.frames,
            size,
            &mut pend_b,
            &mut rx,
            &mut ba,
        );
        let now = Instant::now();
        if m1 || m2 {
            last_progress = now;
        } else if now - last_progress > stall {
            break;
        }
        if !args.quiet && now - last_report >= Duration::from_secs(1) {
            last_report = now;
            let secs = (now - start).as_secs_f64();
            eprintln!(
                "smoke {:?}: a->b {}/{} b->a {}/{} {:.2} Mpps",
                args.link,
                ab.received,
                args.frames,
                ba.received,
                args.frames,
                (ab.received + ba.received) as f64 / secs / 1e6
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Frames never received count as lost (sent or not).
    for s in [&mut ab, &mut ba] {
        let unaccounted = args.frames.saturating_sub(s.received + s.lost + s.corrupt);
        s.lost += unaccounted;
    }
    drop(pend_a);
    drop(pend_b);
    drop(rx);
    // Stop traffic before tearing down (memif's teardown under load is unsafe).
    super::close_pair(&a.port, &b.port)?;
    drop(pool);
    drop(eal);
    let _ = std::fs::remove_file(&sock);
    let total = (ab.received + ba.received) as f64;
    let ok = [&ab, &ba]
        .iter()
        .all(|s| s.received == args.frames && s.lost == 0 && s.corrupt == 0 && s.out_of_order == 0);
    Ok(SmokeResult {
        link: args.link,
        frames_per_direction: args.frames,
        frame_size: size as u16,
        memory,
        seconds: secs,
        mpps: total / secs / 1e6,
        gbps: total * size as f64 * 8.0 / secs / 1e9,
        a_to_b: ab,
        b_to_a: ba,
        ok,
    })
}
