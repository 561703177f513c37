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
    /// The turn's budget of SYNs answered (`StackConfig::syn_budget`): set
    /// only while the shard is behind and past the half-open limit (both
    /// halves of a dual-stack shard, each by its own listeners).
    #[inline]
    pub(super) fn start_syn_budget(&mut self) {
        self.syn_left = match self.cfg.syn_budget {
            Some(b) if self.rx_behind && self.half_open >= self.cfg.tcp.syn_cookie_threshold => b,
            _ => usize::MAX,
        };
        self.shedding = self.syn_left == 0;
        if let Some(v6) = &mut self.ipv6 {
            v6.start_syn_budget();
        }
    }

    /// Whether the turn's receive burst was full (both halves).
    #[inline]
    pub(super) fn set_rx_behind(&mut self, behind: bool) {
        self.rx_behind = behind;
        self.stats.rx_full_bursts += u64::from(behind);
        if let Some(v6) = &mut self.ipv6 {
            v6.rx_behind = behind;
        }
    }

    /// A SYN answered with a cookie: one less in the turn's budget (an
    /// unlimited turn's never reaches 0).
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
