//! `sluice bench --syn-flood RATE`: a SYN flood from random spoofed sources
//! beside the normal load, to see whether the server keeps its established
//! connections served (RFC 4987: past the half-open limit it answers with SYN
//! cookies and keeps nothing).
//!
//! The flood rides on the client's link: [`FloodNic`] wraps the client
//! shard's NIC and, each turn, after the shard's own frames are out, adds
//! the SYNs due at the rate asked (or, with `max`, a burst every turn the
//! transmit queue is empty: whatever room the link has left). Each SYN comes
//! from a random unicast address and MAC, port and sequence number, so the
//! server's SYN-ACKs go nowhere; the wrapper drops them (and anything else
//! not addressed to the client) before the client shard sees them.

use crate::shard::Nic;
use crate::time::Instant;
use crate::wire::EthernetAddress;
use crate::wire::checksum::transport_checksum_v6;
use crate::wire::checksum::{checksum, transport_checksum};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How fast the flood goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodRate {
    /// SYNs per second.
    PerSecond(u64),
    /// As fast as the link takes them: a burst every turn the transmit
    /// queue is empty (the normal client's frames go first).
    Max,
}

impl std::str::FromStr for FloodRate {
    type Err = String;
    fn from_str(s: &str) -> Result<FloodRate, String> {
        if s == "max" {
            return Ok(FloodRate::Max);
        }
        match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(FloodRate::PerSecond(n)),
            _ => Err(format!(
                "'{s}': a rate in SYNs per second (e.g. 1000000), or 'max'"
            )),
        }
    }
}

/// `--syn-budget`: SYNs a server shard answers a turn at most while it is
/// behind and past its half-open limit (`StackConfig::syn_budget`), or
/// `off` (every SYN answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynBudget(pub Option<usize>);

impl Default for SynBudget {
    fn default() -> SynBudget {
        SynBudget(Some(crate::shard::stack::DEFAULT_SYN_BUDGET))
    }
}

impl std::fmt::Display for SynBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("off"),
        }
    }
}

impl std::str::FromStr for SynBudget {
    type Err = String;
    fn from_str(s: &str) -> Result<SynBudget, String> {
        if s == "off" {
            return Ok(SynBudget(None));
        }
        s.parse::<usize>().map(|n| SynBudget(Some(n))).map_err(|_| {
            format!("'{s}': SYNs answered a turn while the server is behind (e.g. 8), or 'off'")
        })
    }
}

/// The server's SYN flood defence (`sluice server`, `sluice bench`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SynDefenceArgs {
    /// Under a SYN flood (past the half-open limit, answering with SYN
    /// cookies) and only while a shard is behind (its receive bursts come
    /// back full): SYNs it answers a turn (a burst of 32) at most; the rest
    /// are dropped before they are parsed (`syn_shed`), so that established
    /// connections' frames behind them wait less. A real client's SYN
    /// dropped so is retransmitted. `off`: answer every SYN (Linux's way).
    #[arg(long, value_name = "N|off", default_value_t = SynBudget::default())]
    pub syn_budget: SynBudget,
}

/// The flood's options (`sluice bench`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FloodArgs {
    /// Also flood the server with SYNs from random spoofed sources, RATE a
    /// second or `max` (what the link has room for): the normal client's
    /// latency shows what the flood costs it.
    #[arg(long, value_name = "RATE")]
    pub syn_flood: Option<FloodRate>,
}

/// What the flood did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FloodStats {
    /// SYNs handed to the link.
    pub syns_sent: u64,
    /// SYNs the link refused (its queue full) or that found no buffer.
    pub syns_dropped: u64,
    /// Frames not for the client (the server's answers to spoofed sources)
    /// dropped before the client shard.
    pub answers_dropped: u64,
    /// Turns the flood found the link full (the normal client's frames
    /// still waiting, or the device refusing a burst of SYNs): the server
    /// is what limits the rate.
    pub link_full: u64,
}

/// SYNs a turn at most at a set rate.
const BURST: u64 = 64;
/// SYNs a turn with `max`, while the link takes them.
const MAX_BURST: u64 = 1024;
/// Billionths of a SYN in one (the credit's unit).
const NANO: u128 = 1_000_000_000;
/// Receive bursts a turn at most while they are mostly the flood's answers.
const RX_BURSTS: usize = 256;
/// Ethernet + IPv6 + TCP with an MSS option: the longer SYN (IPv4's is
/// 20 bytes shorter).
const SYN6_LEN: usize = 14 + 40 + 24;

/// A NIC that also sends a SYN flood (see the module's notes).
pub struct FloodNic<N, C> {
    inner: N,
    clock: C,
    rate: FloodRate,
    /// The client's MAC: frames to any other are the flood's answers.
    mac: EthernetAddress,
    dst_mac: EthernetAddress,
    dst: (IpAddr, u16),
    /// When the credit was last topped up, and SYNs owed since (in
    /// billionths of a SYN, so that low rates come out right).
    last: Option<Instant>,
    credit_nano: u128,
    rng: u64,
    /// SYNs the device has not taken yet, at the head of the inner NIC's
    /// transmit backlog (the flood adds SYNs only to an empty backlog, so
    /// they are ahead of whatever the shard queues after them).
    pending: usize,
    pub stats: FloodStats,
}

impl<N: Nic, C: FnMut() -> Instant> FloodNic<N, C> {
    /// Wraps the client's `inner` NIC (its MAC `mac`) to flood `dst`
    /// (behind `dst_mac`) at `rate`; `clock` reads the time. The SYNs are
    /// of `dst`'s family (IPv4 or IPv6).
    pub fn new(
        inner: N,
        clock: C,
        rate: FloodRate,
        mac: EthernetAddress,
        dst_mac: EthernetAddress,
        dst: (impl Into<IpAddr>, u16),
        seed: u64,
    ) -> Self {
        FloodNic {
            inner,
            clock,
            rate,
            mac,
            dst_mac,
            dst: (dst.0.into(), dst.1),
            last: None,
            credit_nano: 0,
            rng: seed | 1,
            pending: 0,
            stats: FloodStats::default(),
        }
    }

    pub fn into_inner(self) -> N {
        self.inner
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: fast, and no two SYNs alike.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Tops up the SYNs owed at a set rate (every turn, sent or not).
    fn accrue(&mut self) {
        let FloodRate::PerSecond(rate) = self.rate else {
            return;
        };
        let now = (self.clock)();
        let Some(last) = self.last.replace(now) else {
            return;
        };
        let ns = u128::from(now.saturating_since(last).as_nanos() as u64);
        // Owed SYNs beyond a burst are forgotten: a turn the link was full
        // does not come back as a burst it cannot take.
        self.credit_nano =
            (self.credit_nano + ns * u128::from(rate)).min(u128::from(MAX_BURST) * NANO);
    }

    /// SYNs due now.
    fn due(&self) -> u64 {
        match self.rate {
            FloodRate::Max => MAX_BURST,
            FloodRate::PerSecond(_) => (self.credit_nano / NANO) as u64,
        }
    }

    /// Writes one SYN from a random source into `buf`; its length.
    fn syn(&mut self, buf: &mut [u8; SYN6_LEN]) -> usize {
        let r = self.next();
        let r2 = self.next();
        let port = 1024 + ((r >> 32) as u16 % (65535 - 1024));
        let seq = (r2 >> 32) as u32;
        // A locally administered unicast MAC.
        let mut mac = [0u8; 6];
        mac[..].copy_from_slice(&r2.to_be_bytes()[..6]);
        mac[0] = (mac[0] & 0xfc) | 0x02;
        buf[0..6].copy_from_slice(&self.dst_mac.0);
        buf[6..12].copy_from_slice(&mac);
        let (ip_len, mss) = match self.dst.0 {
            IpAddr::V4(dst) => {
                // A unicast address no sender check refuses: first octet
                // 1..=223, not 127 (loopback) and not the server's own.
                let mut a = (r as u32).to_be_bytes();
                a[0] = 1 + (a[0] % 223);
                if a[0] == 127 {
                    a[0] = 128;
                }
                if Ipv4Addr::from(a) == dst {
                    a[3] ^= 1;
                }
                buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
                // IPv4, no options, DF.
                let ip = &mut buf[14..34];
                ip.copy_from_slice(&[
                    0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ]);
                ip[4..6].copy_from_slice(&(r2 as u16).to_be_bytes());
                ip[12..16].copy_from_slice(&a);
                ip[16..20].copy_from_slice(&dst.octets());
                let c = checksum(ip);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                (20, 1460u16)
            }
            IpAddr::V6(dst) => {
                // A global unicast address (2000::/3), not the server's own.
                let r3 = self.next();
                let mut a = (u128::from(r) << 64 | u128::from(r3)).to_be_bytes();
                a[0] = 0x20 | (a[0] & 0x1f);
                if Ipv6Addr::from(a) == dst {
                    a[15] ^= 1;
                }
                buf[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
                // IPv6: no flow label, 24 bytes of TCP, hop limit 64.
                let ip = &mut buf[14..54];
                ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 24, 6, 64]);
                ip[8..24].copy_from_slice(&a);
                ip[24..40].copy_from_slice(&dst.octets());
                (40, 1440u16)
            }
        };
        // TCP: SYN, window 64240, the MSS of a 1500-byte MTU.
        let tcp = &mut buf[14 + ip_len..14 + ip_len + 24];
        tcp[0..2].copy_from_slice(&port.to_be_bytes());
        tcp[2..4].copy_from_slice(&self.dst.1.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&[0; 4]);
        tcp[12] = 6 << 4; // data offset: 24 bytes
        tcp[13] = 0x02; // SYN
        tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
        tcp[16..20].copy_from_slice(&[0; 4]);
        tcp[20..22].copy_from_slice(&[2, 4]);
        tcp[22..24].copy_from_slice(&mss.to_be_bytes());
        let c = match self.dst.0 {
            IpAddr::V4(dst) => {
                let src = Ipv4Addr::from(<[u8; 4]>::try_from(&buf[26..30]).unwrap());
                transport_checksum(src, dst, 6, &buf[34..58])
            }
            IpAddr::V6(dst) => {
                let src = Ipv6Addr::from(<[u8; 16]>::try_from(&buf[22..38]).unwrap());
                transport_checksum_v6(&src, &dst, 6, &buf[54..78])
            }
        };
        buf[14 + ip_len + 16..14 + ip_len + 18].copy_from_slice(&c.to_be_bytes());
        14 + ip_len + 24
    }

    /// The SYNs due, after the shard's own frames (with `max`, in bursts
    /// while the link takes them).
    fn flood(&mut self) {
        let n = self.due();
        let mut sent: u64 = 0;
        for i in 0..n {
            if i % BURST == BURST - 1 && self.rate == FloodRate::Max {
                self.inner.flush();
                if self.inner.tx_pending() > 0 {
                    break;
                }
            }
            // (The frame is built in a local, then copied: the borrow of
            // the NIC's buffer and of `self` do not overlap.)
            let mut f = [0u8; SYN6_LEN];
            let len = self.syn(&mut f);
            let Some(buf) = self.inner.tx_buf(len) else {
                self.stats.syns_dropped += 1;
                continue;
            };
            buf[..len].copy_from_slice(&f[..len]);
            self.inner.tx_commit(len);
            self.stats.syns_sent += 1;
            sent += 1;
        }
        self.credit_nano = self.credit_nano.saturating_sub(u128::from(sent) * NANO);
    }
}

impl<N: Nic, C: FnMut() -> Instant> Nic for FloodNic<N, C> {
    fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        // The server's answers to spoofed sources would go to other hosts:
        // they are dropped here, and more bursts are read while they fill
        // them, so that they do not hold up the client's own frames.
        let (mac, dropped) = (self.mac, &mut self.stats.answers_dropped);
        let mut total = 0;
        for _ in 0..RX_BURSTS {
            let mut answers = 0;
            let n = self.inner.rx(&mut |frame| {
                if frame.len() >= 6 && frame[..6] != mac.0 && frame[0] & 1 == 0 {
                    answers += 1;
                } else {
                    f(frame);
                }
            });
            *dropped += answers as u64;
            total += n - answers;
            // A burst that was not full, or mostly the client's: done.
            if n < 32 || answers < n / 2 {
                break;
            }
        }
        total
    }

    fn tx_buf(&mut self, max: usize) -> Option<&mut [u8]> {
        self.inner.tx_buf(max)
    }

    fn tx_commit(&mut self, len: usize) {
        self.inner.tx_commit(len)
    }

    fn flush(&mut self) -> u64 {
        // The shard's frames first, and what the link refused of them is
        // theirs to count; the flood only takes room left over.
        let before = self.inner.tx_pending();
        let dropped = self.inner.flush();
        let after = self.inner.tx_pending();
        // The backlog goes oldest first: the flood's SYNs left from the last
        // turn before the shard's frames.
        let went = (before - after).saturating_sub(dropped as usize);
        self.pending = self.pending.saturating_sub(went);
        self.accrue();
        if after == 0 {
            self.flood();
            let lost = self.inner.flush();
            self.stats.syns_dropped += lost;
            self.stats.syns_sent -= lost.min(self.stats.syns_sent);
            self.pending = self.inner.tx_pending();
        }
        if self.inner.tx_pending() > 0 {
            self.stats.link_full += 1;
        }
        dropped
    }

    /// The shard's own frames waiting: the flood's SYNs at the head of the
    /// backlog are not the shard's back-pressure (else a client that lost
    /// the race for the link to its own flood would stop making requests,
    /// and its latency would hide the ones it never sent).
    fn tx_pending(&self) -> usize {
        self.inner.tx_pending() - self.pending.min(self.inner.tx_pending())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::MemNic;
    use crate::wire::{ChecksumMode, TcpControl, parse_tcp_frame};
    use std::cell::Cell;
    use std::rc::Rc;

    const ME: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const SERVER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn syns_are_valid_spoofed_and_paced() {
        let (ours, peer) = MemNic::pair(1 << 16);
        let t = Rc::new(Cell::new(Instant::from_millis(1)));
        let tc = t.clone();
        let rate = FloodRate::PerSecond(100_000);
        let mut f = FloodNic::new(ours, move || tc.get(), rate, ME, SERVER, (SERVER_IP, 80), 7);
        // The first turn starts the clock; then 10 ms in turns of 100 µs:
        // 1000 SYNs at 100 k/s.
        f.flush();
        for _ in 0..100 {
            t.set(t.get() + std::time::Duration::from_micros(100));
            f.flush();
        }
        assert_eq!(f.stats.syns_sent, 1000);
        let mut sources = std::collections::HashSet::new();
        let mut n = 0;
        while let Some(frame) = peer.rx.pop() {
            let p = parse_tcp_frame(&frame, ChecksumMode::Verify)
                .expect("checksums verify")
                .expect("TCP");
            assert_eq!(p.seg.control, TcpControl::Syn);
            assert_eq!(p.seg.ack_number, None);
            assert_eq!(
                (p.dst_addr, p.seg.dst_port, p.eth_dst),
                (SERVER_IP, 80, SERVER)
            );
            assert!(p.eth_src.is_unicast() && p.eth_src != ME);
            let a = p.src_addr.octets();
            assert!((1..=223).contains(&a[0]) && a[0] != 127, "{}", p.src_addr);
            sources.insert(p.src_addr);
            n += 1;
        }
        assert_eq!(n, 1000);
        assert!(sources.len() > 990, "random sources: {}", sources.len());
    }

    /// Over IPv6 (RFC 8200 header, RFC 9293 3.1 pseudo-header checksum
    /// over it, MSS 1440 for a 1500-byte MTU): global unicast sources, none
    /// the server's.
    #[test]
    fn ipv6_syns_are_valid_spoofed_and_carry_the_ipv6_mss() {
        let server6: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let (ours, peer) = MemNic::pair(4096);
        let mut f = FloodNic::new(
            ours,
            || Instant::ZERO,
            FloodRate::Max,
            ME,
            SERVER,
            (server6, 80),
            11,
        );
        f.flush();
        assert!(f.stats.syns_sent > 0);
        let mut sources = std::collections::HashSet::new();
        while let Some(frame) = peer.rx.pop() {
            assert_eq!(frame.len(), SYN6_LEN);
            let p = crate::wire::parse_tcp6_frame(&frame, ChecksumMode::Verify)
                .expect("checksums verify")
                .expect("TCP over IPv6");
            assert_eq!(p.seg.control, TcpControl::Syn);
            assert_eq!(p.seg.max_seg_size, Some(1440));
            assert_eq!(
                (p.dst_addr, p.seg.dst_port, p.eth_dst),
                (server6, 80, SERVER)
            );
            assert!(p.eth_src.is_unicast() && p.eth_src != ME);
            assert_eq!(p.src_addr.octets()[0] & 0xe0, 0x20, "{}", p.src_addr);
            assert_ne!(p.src_addr, server6);
            sources.insert(p.src_addr);
        }
        assert_eq!(sources.len() as u64, f.stats.syns_sent, "random sources");
    }

    #[test]
    fn answers_to_spoofed_sources_never_reach_the_client() {
        let (ours, peer) = MemNic::pair(64);
        let mut f = FloodNic::new(
            ours,
            || Instant::ZERO,
            FloodRate::Max,
            ME,
            SERVER,
            (SERVER_IP, 80),
            1,
        );
        let mut frame = vec![0u8; 60];
        frame[..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
        peer.tx.push(frame.clone()).unwrap();
        frame[..6].copy_from_slice(&ME.0);
        peer.tx.push(frame.clone()).unwrap();
        frame[..6].copy_from_slice(&[0xff; 6]);
        peer.tx.push(frame).unwrap();
        let mut seen = 0;
        f.rx(&mut |_| seen += 1);
        assert_eq!(seen, 2, "ours and the broadcast");
        assert_eq!(f.stats.answers_dropped, 1);
    }

    /// The flood's SYNs the link had no room for wait at the head of the
    /// backlog, but they are not the shard's back-pressure: a client whose
    /// own flood filled the link still makes its requests (and its frames go
    /// right after those SYNs, never behind new ones).
    #[test]
    fn the_floods_leftover_syns_do_not_hold_back_the_client() {
        let (ours, peer) = MemNic::pair(100);
        let mut f = FloodNic::new(
            ours,
            || Instant::ZERO,
            FloodRate::Max,
            ME,
            SERVER,
            (SERVER_IP, 80),
            3,
        );
        f.flush();
        assert_eq!(peer.rx.len(), 100, "the link is full");
        assert!(f.inner.tx_pending() > 0, "SYNs wait for room");
        assert_eq!(f.tx_pending(), 0, "none of them is the client's");
        assert_eq!(f.stats.link_full, 1);
        // A frame of the client's: its own back-pressure while it waits.
        f.tx_buf(60).expect("a buffer")[..6].copy_from_slice(&[0xaa; 6]);
        f.tx_commit(60);
        f.flush();
        assert_eq!(f.tx_pending(), 1);
        // The link drains: the client's frame goes after the SYNs that
        // waited, and no SYN is added while it waits.
        let mut syns = 0;
        while let Some(frame) = peer.rx.pop() {
            assert_ne!(frame[..6], [0xaa; 6]);
            syns += 1;
        }
        let waiting = f.inner.tx_pending() - 1;
        f.flush();
        assert_eq!(f.tx_pending(), 0);
        let mut order = vec![];
        while let Some(frame) = peer.rx.pop() {
            order.push(frame[..6] == [0xaa; 6]);
        }
        assert_eq!(order.iter().position(|&c| c), Some(waiting));
        // Every SYN counted as sent went or waits at the head again.
        assert_eq!(
            syns + order.len() - 1 + f.inner.tx_pending(),
            f.stats.syns_sent as usize
        );
    }

    #[test]
    fn rate_parses() {
        assert_eq!("max".parse(), Ok(FloodRate::Max));
        assert_eq!("250000".parse(), Ok(FloodRate::PerSecond(250_000)));
        assert!("0".parse::<FloodRate>().is_err());
        assert!("fast".parse::<FloodRate>().is_err());
    }
}
