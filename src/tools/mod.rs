//! The commands: the TCP server and load generator (on a DPDK port, or with
//! `--kernel` on Linux sockets), the bench (both in one process), the link
//! smoke test, the ARP/ICMP responder and the port lister; and the shard
//! runtime they share.
//!
//! Without the `dpdk` feature the options parse as ever and kernel mode runs;
//! what needs DPDK (its commands, the server and client without `--kernel`,
//! EAL options) is compiled out and refused in one line ([`needs_dpdk`]).

pub mod bench;
pub mod client;
pub mod flood;
pub mod load;
#[cfg(feature = "dpdk")]
pub mod ports;
pub mod request;
pub mod respond;
pub mod runtime;
pub mod serve;
pub mod smoke;
pub mod split;

#[cfg(feature = "dpdk")]
use crate::dpdk::{EalOptions, MemoryMode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The one-line error for `what` (a command or an option) in a build
/// without DPDK.
pub fn needs_dpdk(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "sluice was built without DPDK, so {what} is not available: only `server --kernel`, `client --kernel`, `merge` and `version` are; rebuild with the default features for the rest"
    )
}

/// EAL options shared by every DPDK command.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct EalArgs {
    /// A DPDK virtual device, as EAL's --vdev takes it (repeatable), e.g.
    /// `net_af_packet0,iface=veth0` or `net_tap0,iface=sl0`.
    #[arg(long = "vdev", value_name = "SPEC")]
    pub vdevs: Vec<String>,
    /// EAL core list (-l), e.g. `0` or `0-1`.
    #[arg(long, value_name = "LIST")]
    pub lcores: Option<String>,
    /// Memory (MB) when running without hugepages.
    #[arg(long, default_value_t = 512, value_name = "MB")]
    pub no_huge_mb: u32,
    /// Memory mode: `auto` uses hugepages when reserved, else `--no-huge`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "hugepages", "no-huge"])]
    pub memory: String,
    /// Scan PCI for real NICs (bound with dpdk-devbind.py). Off: virtual devices only.
    #[arg(long)]
    pub pci: bool,
    /// EAL log level: error, warning, notice, info, debug.
    #[arg(long, default_value = "notice", value_name = "LEVEL")]
    pub eal_log_level: String,
    /// One more raw EAL argument (repeatable), e.g. `--eal=--huge-dir=/mnt/huge`.
    #[arg(long = "eal", value_name = "ARG", allow_hyphen_values = true)]
    pub eal_extra: Vec<String>,
}

impl EalArgs {
    /// Kernel mode ignores the EAL options; a build without DPDK refuses
    /// them, so no one thinks they took effect.
    pub fn refuse_without_dpdk(&self) -> anyhow::Result<()> {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            eal: EalArgs,
        }
        if cfg!(feature = "dpdk") || *self == <Defaults as clap::Parser>::parse_from(["sluice"]).eal
        {
            return Ok(());
        }
        Err(needs_dpdk(
            "an EAL option (--vdev, --lcores, --memory, ...)",
        ))
    }

    #[cfg(feature = "dpdk")]
    pub fn to_options(&self) -> EalOptions {
        EalOptions {
            vdevs: self.vdevs.clone(),
            lcores: self.lcores.clone(),
            no_huge_mb: self.no_huge_mb,
            memory: match self.memory.as_str() {
                "hugepages" => Some(MemoryMode::Hugepages),
                "no-huge" => Some(MemoryMode::NoHuge {
                    mb: self.no_huge_mb,
                }),
                _ => None,
            },
            pci: self.pci,
            log_level: self.eal_log_level.clone(),
            extra: self.eal_extra.clone(),
        }
    }
}

/// The `--vdev` arguments for a memif pair in one process (`net_memif0` the
/// server end, `net_memif1` the client end) over the Unix socket `sock`;
/// `extra` is appended to both (e.g. `,rsize=12`). With `zero_copy` the
/// client end runs zero-copy (its mbufs go to the peer as they are, which
/// copies them once; EAL gets `--single-file-segments` for it, which both
/// memory modes allow). `sluice bench` and `sluice smoke` do not: on DPDK
/// 22.11 it costs fewer instructions but more time (keep-alive RPS 3.5 M
/// copying, 2.1 M zero-copy, one run each on this 2-core machine).
pub fn memif_pair(sock: &str, extra: &str, zero_copy: bool) -> [String; 2] {
    let zc = if zero_copy { ",zero-copy=yes" } else { "" };
    [
        format!("net_memif0,role=server,id=0,socket={sock},socket-abstract=no{extra}"),
        format!("net_memif1,role=client,id=0,socket={sock},socket-abstract=no{zc}{extra}"),
    ]
}

/// `rte_eth_dev_start` refused on a memif client end: no memif server
/// listens on its socket. Says so, and which side to start first.
#[cfg(feature = "dpdk")]
pub fn memif_hint(e: anyhow::Error, vdevs: &[String]) -> anyhow::Error {
    let text = format!("{e:#}");
    if !text.contains("rte_eth_dev_start") {
        return e;
    }
    let Some(spec) = vdevs
        .iter()
        .find(|v| v.starts_with("net_memif") && !v.split(',').any(|kv| kv == "role=server"))
    else {
        return e;
    };
    let param = |key: &str| {
        spec.split(',')
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    let socket = param("socket").unwrap_or("/run/memif.sock");
    let name = spec.split(',').next().unwrap_or(spec);
    anyhow::anyhow!(
        "{name}: no memif server listens on socket {socket}: start the side with role=server on that socket first (e.g. `sluice server --vdev net_memif0,role=server,socket={socket},...`), then this client (role=client)"
    )
}

/// Stops and closes the two ends of an in-process link (memif or ring).
///
/// memif handles each end's control channel on EAL's interrupt thread:
/// stopping one end makes the other end's handler, on that thread,
/// disconnect it (freeing its regions and channel). Stopping that end from
/// this thread at the same time frees them twice, which EAL reports as
/// `EAL: Error: Invalid memory`. So the client end is stopped first; then,
/// once the server end has seen it (its link is down, 1 s at most), this
/// waits for the interrupt thread to finish that handler; only then is the
/// server end stopped, and both closed.
#[cfg(feature = "dpdk")]
pub fn close_pair(
    server: &crate::dpdk::EthPort,
    client: &crate::dpdk::EthPort,
) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    client.stop()?;
    if server.info()?.driver.contains("memif") {
        let t0 = Instant::now();
        while server.link().map(|l| l.up).unwrap_or(false) && t0.elapsed() < Duration::from_secs(1)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        // It returns as soon as the thread gets to the mark; the bound only
        // stops a stuck thread from hanging the exit (generous: a busy machine).
        crate::dpdk::interrupt_thread_barrier(Duration::from_secs(5))?;
    }
    server.stop()?;
    client.close()?;
    server.close()?;
    Ok(())
}

/// Initialises EAL with `main_core` as its main lcore (unless `--lcores`
/// chose already): the shard on that core runs on the calling thread.
#[cfg(feature = "dpdk")]
pub fn init_eal(eal_args: &EalArgs, main_core: usize) -> anyhow::Result<crate::dpdk::Eal> {
    let mut opts = eal_args.to_options();
    opts.lcores.get_or_insert_with(|| main_core.to_string());
    Ok(crate::dpdk::Eal::init(&opts)?)
}

/// Set by SIGINT/SIGTERM: long-running commands stop at the next loop.
pub fn stop_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        let g = f.clone();
        // If a handler is already installed (tests), the flag simply never trips.
        let _ = ctrlc::set_handler(move || g.store(true, Ordering::SeqCst));
        f
    })
    .clone()
}
