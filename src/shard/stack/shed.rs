//! A SYN flood past what the shard can answer (issue 12): SYNs shed early.
//!
//! Past the half-open limit a listener answers SYNs with cookies (RFC 4987)
//! and keeps nothing, but each answer still costs a parse, a lookup, a keyed
//! hash and a frame out, and a flood from spoofed sources at the link's rate
//! keeps the receive queue full: every frame of an established connection
//! waits behind a queue of SYNs. So, in a turn that starts behind (its last
//! receive burst was full) while past the half-open limit, the shard answers
//! at most `StackConfig::syn_budget` SYNs; after that, a frame that is a SYN
//! at fixed offsets is dropped before it is parsed (`syn_shed`), for a few
//! loads and compares. The queue then drains several times faster, and the
//! way back is not filled with answers to spoofed sources.
//!
//! A real client's SYN shed so is retransmitted (RFC 6298 5.7: after 1 s,
//! then 3 s, 7 s, ...) and may be answered the next time. A source that has
//! completed a cookie handshake lately (a blind spoofer cannot: it never
//! sees the cookie) is not shed, up to `VERIFIED_RATE` SYNs a second each:
//! a client that already holds connections here opens more without waiting
//! for its retransmissions. A new source's SYN is answered only as the budget
//! allows: under a flood larger than the shard can answer, some new clients
//! wait (or, after their last retransmission, fail), which is what a full
//! queue would do to them too, with every established connection behind it.

use super::{Stack, StackFamily};
use crate::shard::nic::Nic;
use crate::stats::DropReason;
use crate::time::Instant;

/// How long a source stays verified after its last cookie handshake.
const VERIFIED_FOR_NS: u64 = 60_000_000_000;
/// SYNs a verified source may send a second past the budget (a spoofer
/// that guessed one cannot bring the flood back through it).
const VERIFIED_RATE: u32 = 4096;
/// Slots in the table of verified sources (one source a slot: a newer one
/// whose hash lands there takes it).
const VERIFIED_SLOTS: usize = 4096;

/// One verified source: until when, and its SYNs let past in this second.
#[derive(Debug, Clone, Copy)]
struct Verified<A> {
    addr: A,
    until_ns: u64,
    second: u32,
    count: u32,
}

/// Sources that completed a SYN cookie handshake lately: a direct-mapped
/// table under a keyed hash, allocated on the first one (a shard that never
/// sees a flood keeps nothing).
pub(super) struct VerifiedSources<A> {
    slots: Option<Box<[Option<Verified<A>>]>>,
    key: u64,
}

impl<A: StackFamily> VerifiedSources<A> {
    /// Keyed from `seed` (repeatable measurements), else from std's
    /// per-process randomness.
    pub(super) fn new(seed: Option<u64>) -> VerifiedSources<A> {
        let key = match seed {
            Some(s) => s.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995,
            None => {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
            }
        };
        VerifiedSources {
            slots: None,
            key: key | 1,
        }
    }

    #[inline]
    fn slot(&self, addr: &A) -> usize {
        let h = (addr.fold64() ^ (self.key >> 17)).wrapping_mul(self.key);
        (h >> 52) as usize % VERIFIED_SLOTS
    }

    /// `addr` completed a cookie handshake at `now`.
    pub(super) fn insert(&mut self, addr: A, now: Instant) {
        let i = self.slot(&addr);
        let slots = self
            .slots
            .get_or_insert_with(|| vec![None; VERIFIED_SLOTS].into_boxed_slice());
        let until_ns = now.0.saturating_add(VERIFIED_FOR_NS);
        slots[i] = Some(match slots[i] {
            Some(v) if v.addr == addr => Verified { until_ns, ..v },
            _ => Verified {
                addr,
                until_ns,
                second: 0,
                count: 0,
            },
        });
    }

    /// Whether a SYN from `addr` at `now` is let past the budget (and
    /// counted against its rate if so).
    #[inline]
    pub(super) fn admits(&mut self, addr: A, now: Instant) -> bool {
        let i = self.slot(&addr);
        let Some(Some(v)) = self.slots.as_mut().map(|s| &mut s[i]) else {
            return false;
        };
        if v.addr != addr || now.0 >= v.until_ns {
            return false;
        }
        let second = (now.0 / 1_000_000_000) as u32;
        if v.second != second {
            v.second = second;
            v.count = 0;
        }
        v.count += 1;
        v.count <= VERIFIED_RATE
    }
}

impl<A: StackFamily> Stack<A> {
    /// Whether a turn behind may shed SYNs: past the half-open limit (or a
    /// dual-stack shard, whose IPv6 half may be).
    #[inline(always)]
    pub(super) fn may_shed(&self) -> bool {
        self.half_open >= self.cfg.tcp.syn_cookie_threshold || self.ipv6.is_some()
    }

    /// A turn's receive when the last burst was full and the shard may
    /// shed: with a budget of SYNs if past the half-open limit, shedding
    /// once it is spent.
    #[cold]
    #[inline(never)]
    pub(super) fn rx_behind_turn(&mut self, now: Instant, nic: &mut dyn Nic) -> usize {
        if let Some(v6) = &mut self.ipv6 {
            v6.rx_behind = true;
        }
        self.start_syn_budget();
        if self.syn_left == usize::MAX {
            nic.rx(&mut |frame| self.input(now, frame))
        } else {
            nic.rx(&mut |frame| self.input_shedding(now, frame))
        }
    }

    /// The turn's budget of SYNs answered (`StackConfig::syn_budget`): set
    /// only while the shard is behind and past the half-open limit (both
    /// halves of a dual-stack shard, each by its own listeners). A turn not
    /// behind leaves `syn_left` and `shedding` as they were: only
    /// `input_shedding` reads them, in a turn that set them first.
    fn start_syn_budget(&mut self) {
        self.syn_left = match self.cfg.syn_budget {
            Some(b) if self.rx_behind && self.half_open >= self.cfg.tcp.syn_cookie_threshold => b,
            _ => usize::MAX,
        };
        self.shedding = self.syn_left == 0;
        if let Some(v6) = &mut self.ipv6 {
            v6.start_syn_budget();
        }
    }

    /// A SYN answered with a cookie: one less in the turn's budget (an
    /// unlimited turn's never reaches 0; a turn without one never reads it).
    #[inline]
    pub(super) fn spend_syn_budget(&mut self) {
        self.syn_left = self.syn_left.saturating_sub(1);
        self.shedding = self.syn_left == 0;
    }

    /// A source completed a cookie handshake: its SYNs are not shed for a
    /// while (`VERIFIED_FOR_NS`).
    #[inline]
    pub(super) fn verified_source(&mut self, addr: A, now: Instant) {
        self.verified.insert(addr, now);
    }

    /// `input` in a turn with a budget of SYNs: once it is spent, a SYN from
    /// a source not verified is dropped before it is parsed.
    #[inline(never)]
    pub(super) fn input_shedding(&mut self, now: Instant, frame: &[u8]) {
        if self.shedding
            && let Some(src) = A::bare_syn_source(frame)
        {
            if !self.verified.admits(src, now) {
                self.stats.rx_packets += 1;
                self.stats.rx_bytes += frame.len() as u64;
                return self.stats.drop(DropReason::SynShed);
            }
            self.stats.syns_verified += 1;
        }
        self.input(now, frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::MemNic;
    use crate::tools::flood::{FloodNic, FloodRate};
    use crate::wire::{ChecksumMode, EthernetAddress};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const ME: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const SERVER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    /// SYNs from the flood generator, to `dst`.
    fn syns(dst: IpAddr) -> Vec<Vec<u8>> {
        let (ours, peer) = MemNic::pair(64);
        let mut f = FloodNic::new(
            ours,
            || Instant::ZERO,
            FloodRate::Max,
            ME,
            SERVER,
            (dst, 80),
            3,
        );
        f.flush();
        std::iter::from_fn(|| peer.rx.pop()).collect()
    }

    #[test]
    fn a_bare_syn_is_told_at_fixed_offsets_and_nothing_else_is() {
        let v4 = syns(Ipv4Addr::new(10, 0, 0, 2).into());
        assert_eq!(v4.len(), 64);
        for f in &v4 {
            let p = crate::wire::parse_tcp_frame(f, ChecksumMode::Verify)
                .unwrap()
                .unwrap();
            assert_eq!(Ipv4Addr::bare_syn_source(f), Some(p.src_addr));
            assert_eq!(Ipv6Addr::bare_syn_source(f), None, "not IPv6");
        }
        let f = &v4[0];
        // SYN-ACK, RST, FIN with SYN: not a connection request.
        for flags in [0x12, 0x06, 0x03, 0x10] {
            let mut g = f.clone();
            g[47] = flags;
            assert_eq!(Ipv4Addr::bare_syn_source(&g), None, "{flags:#x}");
        }
        // ECN set-up (ECE, CWR) and PSH leave it a SYN.
        let mut g = f.clone();
        g[47] = 0xc2;
        assert!(Ipv4Addr::bare_syn_source(&g).is_some());
        // A fragment (more fragments, or an offset), IPv4 options, UDP, a
        // short frame: not read as one.
        for (at, v) in [(20, 0x60), (21, 1), (14, 0x46), (23, 17)] {
            let mut g = f.clone();
            g[at] = v;
            assert_eq!(Ipv4Addr::bare_syn_source(&g), None, "byte {at} = {v:#x}");
        }
        assert_eq!(Ipv4Addr::bare_syn_source(&f[..47]), None);

        let v6 = syns("2001:db8::2".parse::<Ipv6Addr>().unwrap().into());
        for f in &v6 {
            let p = crate::wire::parse_tcp6_frame(f, ChecksumMode::Verify)
                .unwrap()
                .unwrap();
            assert_eq!(Ipv6Addr::bare_syn_source(f), Some(p.src_addr));
            assert_eq!(Ipv4Addr::bare_syn_source(f), None, "not IPv4");
        }
        let mut g = v6[0].clone();
        g[67] = 0x12;
        assert_eq!(Ipv6Addr::bare_syn_source(&g), None, "a SYN-ACK");
        g[67] = 0x02;
        g[20] = 0; // a hop-by-hop header first
        assert_eq!(Ipv6Addr::bare_syn_source(&g), None);
        assert_eq!(Ipv6Addr::bare_syn_source(&v6[0][..67]), None);
    }

    #[test]
    fn a_verified_source_is_let_through_for_a_while_and_at_a_bounded_rate() {
        let mut v = VerifiedSources::<Ipv4Addr>::new(Some(9));
        let (a, b) = (Ipv4Addr::new(10, 1, 0, 0), Ipv4Addr::new(10, 1, 0, 1));
        let t = Instant::from_millis(500);
        assert!(!v.admits(a, t), "nothing verified yet");
        v.insert(a, t);
        assert!(v.admits(a, t + std::time::Duration::from_millis(1)));
        assert!(!v.admits(b, t), "another source");
        // Up to VERIFIED_RATE a second (the first was counted above).
        let t1 = Instant::from_millis(700);
        let let_through = (0..VERIFIED_RATE + 10).filter(|_| v.admits(a, t1)).count();
        assert_eq!(let_through as u32, VERIFIED_RATE - 1);
        assert!(v.admits(a, Instant::from_millis(1_000)), "a new second");
        // Forgotten after VERIFIED_FOR_NS, unless it completes another.
        let later = Instant(t.0 + VERIFIED_FOR_NS);
        assert!(!v.admits(a, later));
        v.insert(a, later);
        assert!(v.admits(a, later));
    }
}
