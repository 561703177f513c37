use super::error::{DpdkError, check};
use super::ffi;
use super::mbuf::Mbuf;
use super::mempool::PktPool;
use crate::wire::EthernetAddress;
use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

/// RSS hash functions (`RTE_ETH_RSS_*` bits, rte_ethdev.h) with their names.
const RSS_BITS: &[(u32, &str)] = &[
    (2, "ipv4"),
    (3, "frag-ipv4"),
    (4, "ipv4-tcp"),
    (5, "ipv4-udp"),
    (6, "ipv4-sctp"),
    (7, "ipv4-other"),
    (8, "ipv6"),
    (9, "frag-ipv6"),
    (10, "ipv6-tcp"),
    (11, "ipv6-udp"),
    (12, "ipv6-sctp"),
    (13, "ipv6-other"),
    (14, "l2-payload"),
    (18, "port"),
    (24, "eth"),
];
/// `RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP`: what sluice hashes on.
const RSS_IPV4_TCP: u64 = (1 << 2) | (1 << 4);
/// `RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_TCP`: and over IPv6, as
/// `shard::rss::hash` does (a client's ports chosen for its queue bring its
/// IPv6 replies there too), where the device can.
const RSS_IPV6_TCP: u64 = (1 << 8) | (1 << 10);
/// `RTE_ETH_{RX,TX}_OFFLOAD_{IPV4,UDP,TCP}_CKSUM`.
const OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;
const OFFLOAD_UDP_CKSUM: u64 = 1 << 2;
const OFFLOAD_TCP_CKSUM: u64 = 1 << 3;

/// Drivers whose transmit copies a packet's bytes out and frees its mbuf
/// before returning (memif in its default copy mode, af_packet, tap): their
/// queues keep the mbufs they send (`Queue::tx_burst_keep`). A memif end in
/// zero-copy mode hands the peer the mbuf itself and frees it once the peer
/// is done: its queue lends them (`TxMode::Lend`).
const TX_COPIES: &[&str] = &["net_memif", "net_af_packet", "net_tap"];

/// MACs set by sluice on ports whose driver cannot set one (see `set_mac`).
static MAC_OVERRIDE: std::sync::Mutex<[Option<EthernetAddress>; ffi::RTE_MAX_ETHPORTS as usize]> =
    std::sync::Mutex::new([None; ffi::RTE_MAX_ETHPORTS as usize]);

/// ENOTSUP on Linux.
const fn libc_enotsup() -> i32 {
    95
}

/// What a device says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevInfo {
    pub name: String,
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub reta_size: u16,
    pub hash_key_size: u8,
    /// Names of the RSS hash functions the device offers (empty: no RSS).
    pub rss_hash_functions: Vec<&'static str>,
    pub rss_offloads: u64,
    pub rx_ipv4_cksum: bool,
    pub rx_tcp_cksum: bool,
    pub rx_udp_cksum: bool,
    pub tx_ipv4_cksum: bool,
    pub tx_tcp_cksum: bool,
    pub tx_udp_cksum: bool,
    pub max_rx_pktlen: u32,
    pub socket: i32,
}

impl DevInfo {
    pub fn supports_rss(&self) -> bool {
        self.rss_offloads & RSS_IPV4_TCP != 0 && self.max_rx_queues > 1
    }
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// The port counters sluice reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// How to configure a port.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Spread flows over rx queues with RSS (only if the device supports it).
    pub rss: bool,
    /// RSS key (e.g. a symmetric one); `None` keeps the driver's.
    pub rss_key: Option<Vec<u8>>,
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss: false,
            rss_key: None,
            promiscuous: true,
        }
    }
}

/// An ethdev port, by id. Configure, start, then take its queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthPort {
    id: u16,
}

impl EthPort {
    pub(crate) fn from_id(id: u16) -> EthPort {
        EthPort { id }
    }

    /// Finds a port by its device name (e.g. `net_memif0`).
    pub fn by_name(name: &str) -> Result<EthPort, DpdkError> {
        let c = CString::new(name).map_err(|_| DpdkError::msg("port name", "NUL byte"))?;
        let mut id = 0u16;
        // SAFETY: c is a valid C string; id is a valid out pointer.
        let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if rc < 0 {
            let known: Vec<String> = EthPort::all().iter().map(|p| p.name()).collect();
            return Err(DpdkError::msg(
                format!("port '{name}'"),
                format!(
                    "no such DPDK device (known: {}); add it with --vdev or bind a NIC with dpdk-devbind.py",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        Ok(EthPort { id })
    }

    /// All ports EAL found (virtual devices and bound NICs).
    pub fn all() -> Vec<EthPort> {
        let mut v = Vec::new();
        // SAFETY: rte_eth_find_next only reads the port table.
        let mut id = unsafe { ffi::rte_eth_find_next(0) };
        while u32::from(id) < ffi::RTE_MAX_ETHPORTS {
            v.push(EthPort { id });
            // SAFETY: as above.
            id = unsafe { ffi::rte_eth_find_next(id + 1) };
        }
        v
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name.
    pub fn name(&self) -> String {
        let mut buf = [0 as std::os::raw::c_char; ffi::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes, as the API requires.
        let rc = unsafe { ffi::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr()) };
        if rc < 0 {
            return format!("port{}", self.id);
        }
        // SAFETY: on success buf holds a NUL-terminated string.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    pub fn info(&self) -> Result<DevInfo, DpdkError> {
        let mut raw = ffi::rte_eth_dev_info::default();
        // SAFETY: raw is a valid out pointer of the right type.
        check("rte_eth_dev_info_get", unsafe {
            ffi::rte_eth_dev_info_get(self.id, &mut raw)
        })?;
        let driver = if raw.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name points at the driver's static name string.
            unsafe { CStr::from_ptr(raw.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        let rss = raw.flow_type_rss_offloads;
        Ok(DevInfo {
            name: self.name(),
            driver,
            max_rx_queues: raw.max_rx_queues,
            max_tx_queues: raw.max_tx_queues,
            reta_size: raw.reta_size,
            hash_key_size: raw.hash_key_size,
            rss_hash_functions: RSS_BITS
                .iter()
                .filter(|(b, _)| rss & (1u64 << b) != 0)
                .map(|(_, n)| *n)
                .collect(),
            rss_offloads: rss,
            rx_ipv4_cksum: raw.rx_offload_capa & OFFLOAD_IPV4_CKSUM != 0,
            rx_tcp_cksum: raw.rx_offload_capa & OFFLOAD_TCP_CKSUM != 0,
            rx_udp_cksum: raw.rx_offload_capa & OFFLOAD_UDP_CKSUM != 0,
            tx_ipv4_cksum: raw.tx_offload_capa & OFFLOAD_IPV4_CKSUM != 0,
            tx_tcp_cksum: raw.tx_offload_capa & OFFLOAD_TCP_CKSUM != 0,
            tx_udp_cksum: raw.tx_offload_capa & OFFLOAD_UDP_CKSUM != 0,
            max_rx_pktlen: raw.max_rx_pktlen,
            // SAFETY: reads the port's NUMA node.
            socket: unsafe { ffi::rte_eth_dev_socket_id(self.id) },
        })
    }

    pub fn mac(&self) -> Result<EthernetAddress, DpdkError> {
        if let Some(Some(m)) = MAC_OVERRIDE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(usize::from(self.id))
        {
            return Ok(*m);
        }
        let mut a = ffi::rte_ether_addr::default();
        // SAFETY: a is a valid out pointer.
        check("rte_eth_macaddr_get", unsafe {
            ffi::rte_eth_macaddr_get(self.id, &mut a)
        })?;
        Ok(EthernetAddress(a.addr_bytes))
    }

    /// Sets the port's MAC address. Devices that cannot (net_ring, whose ports
    /// start with all zeros and do no filtering) get it recorded in sluice, and
    /// `mac()` reports it.
    pub fn set_mac(&self, mac: EthernetAddress) -> Result<(), DpdkError> {
        let mut a = ffi::rte_ether_addr { addr_bytes: mac.0 };
        // SAFETY: a is a valid rte_ether_addr for the duration of the call.
        let rc = unsafe { ffi::rte_eth_dev_default_mac_addr_set(self.id, &mut a) };
        if rc == -(libc_enotsup()) {
            let mut t = MAC_OVERRIDE.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = t.get_mut(usize::from(self.id)) {
                *slot = Some(mac);
                return Ok(());
            }
        }
        check("rte_eth_dev_default_mac_addr_set", rc).map(|_| ())
    }

    /// Configures queues (each rx queue fills from `pool`). Returns the queues to
    /// hand to the cores that will poll them, after `start`.
    pub fn configure(&self, cfg: &PortConfig, pool: &PktPool) -> Result<(), DpdkError> {
        let info = self.info()?;
        if cfg.rx_queues == 0
            || cfg.tx_queues == 0
            || cfg.rx_queues > info.max_rx_queues
            || cfg.tx_queues > info.max_tx_queues
        {
            return Err(DpdkError::msg(
                format!("configure {}", info.name),
                format!(
                    "{} rx / {} tx queues asked, the device ({}) has at most {} rx / {} tx; use fewer cores",
                    cfg.rx_queues,
                    cfg.tx_queues,
                    info.driver,
                    info.max_rx_queues,
                    info.max_tx_queues
                ),
            ));
        }
        let mut conf = ffi::rte_eth_conf::default();
        let mut key = cfg.rss_key.clone().unwrap_or_default();
        if cfg.rss && cfg.rx_queues > 1 && info.supports_rss() {
            conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = (RSS_IPV4_TCP | RSS_IPV6_TCP) & info.rss_offloads;
            if !key.is_empty() {
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
            }
        }
        // SAFETY: conf is a valid, initialised rte_eth_conf; `key` outlives the call.
        check("rte_eth_dev_configure", unsafe {
            ffi::rte_eth_dev_configure(self.id, cfg.rx_queues, cfg.tx_queues, &conf)
        })?;
        let (mut rxd, mut txd) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid out pointers; clamps descriptor counts to the device's limits.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            ffi::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rxd, &mut txd)
        })?;
        let socket = info.socket as u32; // SOCKET_ID_ANY (-1) passes through as is
        for q in 0..cfg.rx_queues {
            // SAFETY: null rx_conf means the driver's defaults; the pool outlives the port
            // (the caller stops the port before dropping the pool).
            check("rte_eth_rx_queue_setup", unsafe {
                ffi::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    rxd,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            })?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: null tx_conf means the driver's defaults.
            check("rte_eth_tx_queue_setup", unsafe {
                ffi::rte_eth_tx_queue_setup(self.id, q, txd, socket, std::ptr::null())
            })?;
        }
        if cfg.promiscuous {
            // Best effort: virtual devices may not support it, and do not need it.
            // SAFETY: plain call on a configured port.
            let _ = unsafe { ffi::rte_eth_promiscuous_enable(self.id) };
        }
        Ok(())
    }

    /// Starts the port and returns one handle per queue pair (rx q, tx q).
    pub fn start(&self, queues: u16) -> Result<Vec<Queue>, DpdkError> {
        // SAFETY: plain call on a configured port.
        check("rte_eth_dev_start", unsafe {
            ffi::rte_eth_dev_start(self.id)
        })?;
        let copies = self
            .info()
            .is_ok_and(|i| TX_COPIES.contains(&i.driver.as_str()));
        let mode = match (copies, self.zero_copy()) {
            (_, true) => TxMode::Lend,
            (true, false) => TxMode::Keep,
            (false, false) => TxMode::Plain,
        };
        Ok((0..queues)
            .map(|q| Queue {
                port: self.id,
                queue: q,
                mode,
                lent: Vec::new(),
            })
            .collect())
    }

    /// The device's driver arguments (a vdev's `role=client,...`; empty
    /// when it has none).
    pub fn dev_args(&self) -> String {
        // SAFETY: plain call; it returns a valid C string (the devargs' own,
        // alive as long as the device, or a static "").
        let p = unsafe { ffi::sluice_dev_args(self.id) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-null and NUL-terminated (above); copied out at once.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// A memif end running zero-copy (`zero-copy=yes`): its transmit hands
    /// the mbufs themselves to the peer.
    pub fn zero_copy(&self) -> bool {
        self.info().is_ok_and(|i| i.driver == "net_memif")
            && self.dev_args().split(',').any(|kv| kv == "zero-copy=yes")
    }

    pub fn stop(&self) -> Result<(), DpdkError> {
        // SAFETY: plain call; stopping a stopped port is harmless.
        check("rte_eth_dev_stop", unsafe {
            ffi::rte_eth_dev_stop(self.id)
        })
        .map(|_| ())
    }

    /// Stops (if needed) and releases the port.
    pub fn close(&self) -> Result<(), DpdkError> {
        let _ = self.stop();
        // SAFETY: plain call; no queue handle may be used after this (caller's order).
        check("rte_eth_dev_close", unsafe {
            ffi::rte_eth_dev_close(self.id)
        })
        .map(|_| ())
    }

    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut l = ffi::rte_eth_link::default();
        // SAFETY: l is a valid out pointer.
        check("rte_eth_link_get_nowait", unsafe {
            ffi::rte_eth_link_get_nowait(self.id, &mut l)
        })?;
        Ok(LinkStatus {
            up: u32::from(l.link_status()) == ffi::RTE_ETH_LINK_UP,
            speed_mbps: l.link_speed,
            full_duplex: l.link_duplex() != 0,
        })
    }

    /// Polls the link until it is up or `timeout` passes.
    pub fn wait_link_up(&self, timeout: Duration) -> Result<LinkStatus, DpdkError> {
        let start = Instant::now();
        loop {
            let l = self.link()?;
            if l.up {
                return Ok(l);
            }
            if start.elapsed() >= timeout {
                return Err(DpdkError::msg(
                    format!("link of {}", self.name()),
                    format!("still down after {timeout:?} (is the peer running?)"),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: s is a valid out pointer.
        check("rte_eth_stats_get", unsafe {
            ffi::rte_eth_stats_get(self.id, &mut s)
        })?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }
}

/// Packets offered to the driver in one call by `Queue::tx_burst_keep`: a
/// backlog goes out a chunk at a time until the device refuses, so that a
/// full ring costs one chunk's work, not a touch of every mbuf waiting (with
/// thousands waiting, that touch was most of a shard's time).
const TX_CHUNK: usize = 64;

/// One rx/tx queue pair of a started port. Not `Clone`: DPDK queues are
/// single-consumer, so exactly one owner (one core) polls each.
#[derive(Debug)]
pub struct Queue {
    port: u16,
    queue: u16,
    /// What `tx_burst_keep` does.
    mode: TxMode,
    /// `TxMode::Lend`: sent mbufs the driver may still hold, in the order
    /// sent, each with a reference of ours.
    lent: Vec<Mbuf>,
}

/// How a queue gets its sent mbufs back (`Queue::tx_burst_keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxMode {
    /// It does not: the driver frees them (`tx_burst`).
    Plain,
    /// The driver is done with a packet once sent (`TX_COPIES`): back at once.
    Keep,
    /// The driver holds each until its peer is done (memif zero-copy), then
    /// frees it: back once it has.
    Lend,
}

impl Queue {
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `max` packets, appended to `out` (which should have the
    /// capacity reserved, so the fast path never allocates). Returns the count.
    #[inline]
    pub fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        out.reserve(max);
        let n = max.min(usize::from(u16::MAX)) as u16;
        let len = out.len();
        // SAFETY: Mbuf is repr(transparent) over a non-null rte_mbuf pointer, so the
        // spare capacity is room for `n` rte_mbuf pointers; the driver writes `got`
        // valid mbufs it hands over to us, which become the next `got` elements.
        unsafe {
            let dst = out.as_mut_ptr().add(len) as *mut *mut ffi::rte_mbuf;
            let got = ffi::sluice_rx_burst(self.port, self.queue, dst, n);
            out.set_len(len + usize::from(got));
            usize::from(got)
        }
    }

    /// Sends packets from the front of `pkts`. Sent ones are removed (the driver
    /// owns them now); refused ones stay in `pkts` for the caller to retry or drop.
    #[inline]
    pub fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        if pkts.is_empty() {
            return 0;
        }
        let n = pkts.len().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the vector holds `n` owned mbufs laid out as rte_mbuf pointers
        // (repr(transparent)); the driver takes ownership of the first `sent`.
        let sent = usize::from(unsafe {
            ffi::sluice_tx_burst(
                self.port,
                self.queue,
                pkts.as_mut_ptr() as *mut *mut ffi::rte_mbuf,
                n,
            )
        });
        Self::drop_sent(pkts, sent);
        sent
    }

    /// Removes the first `sent` elements of `pkts` without dropping them
    /// (the driver owns them now).
    #[inline]
    fn drop_sent(pkts: &mut Vec<Mbuf>, sent: usize) {
        if sent > 0 {
            let rest = pkts.len() - sent;
            // SAFETY: the first `sent` elements are no longer ours: move the unsent
            // tail (usually none) over them without dropping, then shorten the vector.
            unsafe {
                if rest > 0 {
                    let p = pkts.as_mut_ptr();
                    std::ptr::copy(p.add(sent), p, rest);
                }
                pkts.set_len(rest);
            }
        }
    }

    /// Offers `pkts` to `send` a chunk (at most `TX_CHUNK`) at a time, until
    /// one is not taken whole, so that a long backlog meeting a full ring
    /// costs one refused chunk, not a touch of every waiting mbuf. `send`
    /// returns how many of its chunk the driver took (no longer ours); those
    /// are then forgotten here. Returns how many were sent.
    #[inline(always)]
    fn offer_in_chunks(pkts: &mut Vec<Mbuf>, mut send: impl FnMut(&mut [Mbuf]) -> usize) -> usize {
        let total = pkts.len();
        let mut off = 0usize;
        while off < total {
            let end = total.min(off + TX_CHUNK);
            let n = end - off;
            let sent = send(&mut pkts[off..end]);
            off += sent;
            if sent < n {
                break;
            }
        }
        Self::drop_sent(pkts, off);
        off
    }

    /// `tx_burst_keep` on a device that holds sent mbufs until its peer is
    /// done (memif zero-copy): each sent one gets a second reference, ours,
    /// kept in `lent`, so the driver's free only drops its own; the ones it
    /// has dropped by now (at the front of `lent`: it frees them in the order
    /// sent, during a transmit) come back as fresh ones (`reclaim`).
    fn tx_burst_lend(&mut self, pkts: &mut Vec<Mbuf>, fresh: &mut Vec<Mbuf>, cap: usize) -> usize {
        let (port, queue, kept_refs) = (self.port, self.queue, &mut self.lent);
        let sent = Self::offer_in_chunks(pkts, |chunk| {
            let mut lent = 0i32;
            // SAFETY: `chunk` holds owned mbufs laid out as rte_mbuf pointers
            // (repr(transparent)), each one segment and ours alone (the
            // caller's contract). The driver takes the first `sent`; with
            // `lent` set, each of those still carries a reference of ours.
            let sent = usize::from(unsafe {
                ffi::sluice_tx_burst_lend(
                    port,
                    queue,
                    chunk.as_mut_ptr() as *mut *mut ffi::rte_mbuf,
                    chunk.len() as u16,
                    &mut lent,
                )
            });
            if lent != 0 && sent > 0 {
                kept_refs.reserve(sent);
                let len = kept_refs.len();
                // SAFETY: our references to the `sent` sent ones move to
                // `lent`'s reserved spare capacity (bitwise, each owned once:
                // `offer_in_chunks` forgets them in `pkts`).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        chunk.as_ptr(),
                        kept_refs.as_mut_ptr().add(len),
                        sent,
                    );
                    kept_refs.set_len(len + sent);
                }
            }
            sent
        });
        self.reclaim(fresh, cap);
        sent
    }

    /// Takes back, from the front of `lent`, the mbufs the driver has freed
    /// (our reference the only one left): pushed on `fresh` while it has
    /// fewer than `cap` (its last element staying last), else freed.
    fn reclaim(&mut self, fresh: &mut Vec<Mbuf>, cap: usize) {
        if self.lent.is_empty() {
            return;
        }
        let room = cap.saturating_sub(fresh.len()).min(self.lent.len());
        fresh.reserve(room);
        let len = fresh.len();
        let mut kept = 0u32;
        // SAFETY: `lent` holds owned mbufs (one reference each, ours) laid out
        // as rte_mbuf pointers; the shim takes its first `taken` (stored in
        // `fresh`'s reserved spare capacity, at most `room` of them, or
        // freed), which `drop_sent` then forgets here.
        let taken = unsafe {
            ffi::sluice_tx_reclaim(
                self.lent.as_mut_ptr() as *mut *mut ffi::rte_mbuf,
                self.lent.len().min(u32::MAX as usize) as u32,
                fresh.as_mut_ptr().add(len) as *mut *mut ffi::rte_mbuf,
                room as u32,
                &mut kept,
            )
        } as usize;
        // SAFETY: the shim wrote `kept` (at most `room`) valid mbufs there.
        unsafe { fresh.set_len(len + kept as usize) };
        if len > 0 && kept > 0 {
            fresh.swap(len - 1, len + kept as usize - 1);
        }
        Self::drop_sent(&mut self.lent, taken);
    }

    /// `tx_burst`, and on a device that is done with a packet once sent
    /// (memif, af_packet, tap: they copy it out), the sent mbufs come back
    /// as fresh ones (empty, one segment) instead of going to the pool and
    /// out again: pushed on `fresh` while it has fewer than `cap`, its last
    /// element staying last (a frame may be being built there). The driver's
    /// free then only drops a reference, and the next frames need no
    /// allocation. A zero-copy memif end: the same, once the peer is done
    /// (`tx_burst_lend`). Other devices: `tx_burst`. `pkts` must hold one-segment
    /// mbufs of ours alone (frames built in fresh mbufs are).
    #[inline]
    pub fn tx_burst_keep(
        &mut self,
        pkts: &mut Vec<Mbuf>,
        fresh: &mut Vec<Mbuf>,
        cap: usize,
    ) -> usize {
        match self.mode {
            TxMode::Plain => return self.tx_burst(pkts),
            TxMode::Lend => return self.tx_burst_lend(pkts, fresh, cap),
            TxMode::Keep => {}
        }
        let (port, queue) = (self.port, self.queue);
        Self::offer_in_chunks(pkts, |chunk| {
            let room = cap.saturating_sub(fresh.len()).min(chunk.len());
            fresh.reserve(room);
            let len = fresh.len();
            let mut kept = 0u32;
            // SAFETY: `chunk` holds owned mbufs laid out as rte_mbuf pointers
            // (repr(transparent)), each one segment and ours alone (the
            // caller's contract); the driver takes the first `sent` and the
            // shim hands back at most `room` of them, sole-owned again,
            // written into `fresh`'s reserved spare capacity, which become its
            // next elements. The sent ones are no longer ours either way
            // (`offer_in_chunks` forgets them).
            let sent = usize::from(unsafe {
                ffi::sluice_tx_burst_keep(
                    port,
                    queue,
                    chunk.as_mut_ptr() as *mut *mut ffi::rte_mbuf,
                    chunk.len() as u16,
                    fresh.as_mut_ptr().add(len) as *mut *mut ffi::rte_mbuf,
                    room as u32,
                    &mut kept,
                )
            });
            // SAFETY: the shim wrote `kept` (at most `room`) valid mbufs there.
            unsafe { fresh.set_len(len + kept as usize) };
            if len > 0 && kept > 0 {
                fresh.swap(len - 1, len + kept as usize - 1);
            }
            sent
        })
    }
}
